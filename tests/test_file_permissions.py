"""Files at rest: the data folder, the database and the signing key are made private, and a start
with looser ones warns (and changes nothing the operator set)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.file_modes import secure_data_files, sqlite_path
from sandbox.service_process import run_cli, service_env, start_service


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The common default umask (022), under which plain mkdir/open would make world-readable files."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_a_first_start_makes_the_folder_database_and_key_private(tmp_path: Path, open_umask: None) -> None:
    env = service_env(tmp_path)
    done = run_cli(env, tmp_path, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert "files at rest" not in done.stderr
    data = tmp_path / "data"
    assert mode(data) == 0o700
    assert mode(data / "likeness.db") == 0o600
    assert mode(data / "signing_key.pem") == 0o600
    for side in ("likeness.db-wal", "likeness.db-shm"):
        if (data / side).exists():
            assert mode(data / side) & 0o077 == 0, side


def test_a_start_with_readable_files_warns_and_leaves_them_as_they_are(
    tmp_path: Path, open_umask: None
) -> None:
    env = service_env(tmp_path)
    assert run_cli(env, tmp_path, "db", "upgrade").returncode == 0
    data = tmp_path / "data"
    data.chmod(0o755)
    (data / "likeness.db").chmod(0o644)
    (data / "signing_key.pem").chmod(0o640)
    service = start_service(env, tmp_path, tag="modes")
    try:
        log = service.log()
    finally:
        service.stop()
    warnings = [line for line in log.splitlines() if "files at rest" in line]
    assert len(warnings) == 3, log
    assert any(f"chmod 700 {data}" in w for w in warnings)
    assert any(f"chmod 600 {data / 'likeness.db'}" in w for w in warnings)
    assert any(f"chmod 600 {data / 'signing_key.pem'}" in w for w in warnings)
    assert (mode(data), mode(data / "likeness.db"), mode(data / "signing_key.pem")) == (0o755, 0o644, 0o640)
    assert "Traceback" not in service.log()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://app:pw@127.0.0.1:5432/likeness",
        "sqlite+aiosqlite:///{tmp}/db/nested/likeness.db",
    ],
)
def test_both_databases_get_a_private_data_folder(tmp_path: Path, url: str, open_umask: None) -> None:
    url = url.format(tmp=tmp_path)
    data = tmp_path / "data"
    warnings = secure_data_files(data, url, data / "keys" / "signing_key.pem")
    assert warnings == []
    assert mode(data) == 0o700 and mode(data / "keys") == 0o700
    database = sqlite_path(url)
    if database is None:
        assert not list(data.glob("*.db"))  # PostgreSQL keeps its own files
    else:
        assert mode(database) == 0o600
        assert mode(database.parent) == 0o700 and mode(database.parent.parent) == 0o700
