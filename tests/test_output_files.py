"""The output files' rules on their own: types read from bytes, whole files, sizes in settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import byte_size
from bot.output_files import LIMITS, Corrupt, OutputFiles, check_whole, declared_type, sniff
from tests.output_samples import sample


@pytest.mark.parametrize("media_type", sorted(LIMITS))
def test_each_sample_is_read_as_its_type_and_whole(media_type: str, tmp_path: Path) -> None:
    data = sample(media_type)
    assert sniff(data[:16]) == media_type
    path = tmp_path / "f"
    path.write_bytes(data)
    check_whole(media_type, path)


@pytest.mark.parametrize("media_type", sorted(LIMITS))
def test_every_type_cut_short_is_corrupt(media_type: str, tmp_path: Path) -> None:
    data = sample(media_type)
    path = tmp_path / "f"
    path.write_bytes(data[: max(12, len(data) // 3)])
    if media_type == "audio/mpeg":
        path.write_bytes(data[:14])
    with pytest.raises(Corrupt):
        check_whole(media_type, path)


def test_declared_types_are_read_without_parameters_or_case() -> None:
    assert declared_type("Image/PNG; charset=binary") == "image/png"
    for refused in (None, "", "image/gif", "text/html", "image/svg+xml"):
        with pytest.raises(Exception, match="not accepted"):
            declared_type(refused)


def test_a_stored_path_is_only_ever_a_sha256(tmp_path: Path) -> None:
    files = OutputFiles(tmp_path)
    assert files.path_of("ab" * 32) == tmp_path / "ab" / ("ab" * 32)
    for bad in ("../../etc/passwd", "AB" * 32, "ab" * 31, ""):
        with pytest.raises(ValueError):
            files.path_of(bad)


def test_quota_sizes_read_units_in_1024s() -> None:
    assert byte_size("1GB") == 1024**3
    assert byte_size("500mb") == 500 * 1024**2
    assert byte_size("2 GiB") == 2 * 1024**3
    assert byte_size(4096) == 4096
    for bad in ("", "1.5GB", "-1", "lots", "0", True):
        with pytest.raises(ValueError):
            byte_size(bad)
