"""Output files at rest: what a file is by its bytes, whether it is whole, and where it is kept.

A creator's upload is staged under `DATA_DIR/outputs/.incoming` while its SHA-256 is taken and
its size counted against the limit of its type; only a file that passes every check is moved
(atomically, by rename) to `DATA_DIR/outputs/<first two hex digits>/<sha256>`. The same bytes
are kept once however many grants they are submitted under. Folders are 0700 and files 0600,
like the database and the key (bot/file_modes.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from bot.file_modes import PRIVATE_FILE, private_dir

MIB = 1024 * 1024
# Each accepted type and the largest file of it (MiB: 10 MB means 10 × 1,048,576 bytes).
LIMITS: dict[str, int] = {
    "image/jpeg": 10 * MIB,
    "image/png": 10 * MIB,
    "image/webp": 10 * MIB,
    "video/mp4": 50 * MIB,
    "audio/mpeg": 20 * MIB,
    "audio/ogg": 20 * MIB,
}
LARGEST = max(LIMITS.values())
_CHUNK = 64 * 1024


class FileRefused(Exception):
    """The file is refused; `code` is the API's reason code and `status` its HTTP status."""

    code = "file_refused"
    status = 422

    def __init_subclass__(cls, *, code: str | None = None, status: int | None = None, **kwargs: Any) -> None:
        """A refusal names its reason code and HTTP status in its class statement."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code
        if status is not None:
            cls.status = status

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedType(FileRefused, code="unsupported_media_type", status=415):
    """The declared type is not accepted, or the bytes are of another type (415)."""


class TooLarge(FileRefused, code="file_too_large", status=413):
    """The file is larger than its type allows (413)."""


class Corrupt(FileRefused, code="corrupt_file", status=422):
    """The file is empty, cut short or malformed for its type (422)."""


class Sha256Mismatch(FileRefused, code="sha256_mismatch", status=422):
    """The fetched file's SHA-256 is not the one the creator stated (422)."""


def sniff(head: bytes) -> str | None:
    """The accepted media type the first bytes show, or None for anything else."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def declared_type(value: str | None) -> str:
    """The declared type without parameters, lower case; UnsupportedType unless it is accepted."""
    media_type = (value or "").split(";")[0].strip().lower()
    if media_type not in LIMITS:
        accepted = ", ".join(LIMITS)
        raise UnsupportedType(f"{media_type or 'no type'} is not accepted; send one of {accepted}")
    return media_type


# ---------------------------------------------------------------- is the file whole


def _read_exact(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise Corrupt("the file ends in the middle of its structure")
    return data


def _check_png(handle: BinaryIO, size: int) -> None:
    handle.seek(8)
    first = True
    while True:
        length, kind = struct.unpack(">I4s", _read_exact(handle, 8))
        if first and kind != b"IHDR":
            raise Corrupt("a PNG must begin with its IHDR chunk")
        first = False
        if length > size:
            raise Corrupt("a PNG chunk is longer than the file")
        crc = zlib.crc32(kind)
        left = length
        while left:
            piece = _read_exact(handle, min(left, _CHUNK))
            crc = zlib.crc32(piece, crc)
            left -= len(piece)
        if struct.unpack(">I", _read_exact(handle, 4))[0] != crc:
            raise Corrupt(f"the PNG chunk {kind.decode('latin-1')!r} fails its checksum")
        if kind == b"IEND":
            return


def _check_jpeg(handle: BinaryIO, size: int) -> None:
    handle.seek(max(0, size - 256))
    if not handle.read().rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise Corrupt("the JPEG has no end-of-image marker (cut short?)")


def _check_webp(handle: BinaryIO, size: int) -> None:
    handle.seek(4)
    riff_size = struct.unpack("<I", _read_exact(handle, 4))[0]
    handle.seek(12)
    chunk = _read_exact(handle, 4)
    if riff_size + 8 != size:
        raise Corrupt("the WebP's RIFF size differs from the file's size")
    if chunk not in (b"VP8 ", b"VP8L", b"VP8X"):
        raise Corrupt("the WebP holds no image chunk")


def _check_mp4(handle: BinaryIO, size: int) -> None:
    position, kinds = 0, []
    while position < size:
        handle.seek(position)
        box_size, kind = struct.unpack(">I4s", _read_exact(handle, 8))
        if box_size == 1:
            box_size = struct.unpack(">Q", _read_exact(handle, 8))[0]
        elif box_size == 0:
            box_size = size - position
        if box_size < 8 or position + box_size > size:
            raise Corrupt("an MP4 box runs past the end of the file")
        kinds.append(kind)
        position += box_size
    if not kinds or kinds[0] != b"ftyp" or b"moov" not in kinds:
        raise Corrupt("an MP4 needs its ftyp and moov boxes")


def _check_ogg(handle: BinaryIO, size: int) -> None:
    position = 0
    while position < size:
        handle.seek(position)
        header = _read_exact(handle, 27)
        if header[:4] != b"OggS" or header[4] != 0:
            raise Corrupt("an Ogg page does not start where the last one ended")
        segments = _read_exact(handle, header[26])
        position += 27 + len(segments) + sum(segments)
    if position != size:
        raise Corrupt("the last Ogg page is cut short")


def _check_mpeg(handle: BinaryIO, size: int) -> None:
    handle.seek(0)
    head = _read_exact(handle, min(size, 10))
    start = 0
    if head.startswith(b"ID3"):
        if len(head) < 10:
            raise Corrupt("the MP3's ID3 tag is cut short")
        start = 10 + (
            (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9] & 0x7F
        )
    handle.seek(start)
    frame = handle.read(4)
    if len(frame) < 4 or frame[0] != 0xFF or frame[1] & 0xE0 != 0xE0 or frame[1] & 0x06 == 0:
        raise Corrupt("the MP3 has no audio frame")


_CHECKS = {
    "image/jpeg": _check_jpeg,
    "image/png": _check_png,
    "image/webp": _check_webp,
    "video/mp4": _check_mp4,
    "audio/ogg": _check_ogg,
    "audio/mpeg": _check_mpeg,
}


def check_whole(media_type: str, path: Path) -> None:
    """Corrupt unless the file's structure holds together for its type (cut short, broken boxes)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        try:
            _CHECKS[media_type](handle, size)
        except struct.error:
            raise Corrupt("the file ends in the middle of its structure") from None


# ---------------------------------------------------------------- where files are kept


@dataclass(frozen=True)
class Staged:
    """A checked upload waiting to be kept: its path under .incoming, type, size and SHA-256."""

    path: Path
    media_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class OutputFiles:
    """The content-addressed folder of output files (DATA_DIR/outputs)."""

    root: Path

    def path_of(self, sha256: str) -> Path:
        """Where the file with this SHA-256 is kept."""
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 in hex")
        return self.root / sha256[:2] / sha256

    def read(self, sha256: str) -> bytes:
        """The kept file's bytes (FileNotFoundError when it is not kept)."""
        return self.path_of(sha256).read_bytes()

    async def stage(self, declared: str | None, chunks: AsyncIterator[bytes]) -> Staged:
        """Writes an upload under .incoming with its type's size cap, hashes it and checks it.

        The caller keeps the result (`keep`) or drops it (`drop`); a refused file is removed
        here, so a refusal leaves nothing behind.
        """
        media_type = declared_type(declared)
        limit = LIMITS[media_type]
        incoming = self.root / ".incoming"
        private_dir(incoming)
        path = incoming / f"{secrets.token_hex(12)}.part"
        digest, size, head = hashlib.sha256(), 0, b""
        try:
            with _private_writer(path) as handle:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"a {media_type} file may be at most {limit // MIB} MiB")
                    if len(head) < 16:
                        head = (head + chunk)[:16]
                    digest.update(chunk)
                    handle.write(chunk)
            if size == 0:
                raise Corrupt("the file is empty")
            found = sniff(head)
            if found != media_type:
                raise UnsupportedType(f"declared {media_type}, but the bytes are {found or 'another type'}")
            check_whole(media_type, path)
        except BaseException:
            path.unlink(missing_ok=True)
            closing = getattr(chunks, "aclose", None)
            if closing is not None:
                await closing()  # a fetch stopped early closes its connection now
            raise
        return Staged(path, media_type, size, digest.hexdigest())

    def keep(self, staged: Staged) -> bool:
        """Moves a staged file into place; True when it was not kept before (so `forget` may undo it)."""
        target = self.path_of(staged.sha256)
        private_dir(target.parent)
        if target.exists():
            staged.path.unlink(missing_ok=True)
            return False
        os.replace(staged.path, target)
        return True

    def forget(self, sha256: str) -> None:
        """Removes a kept file (after the transaction that would have named it failed)."""
        self.path_of(sha256).unlink(missing_ok=True)

    @staticmethod
    def drop(staged: Staged) -> None:
        """Removes a staged file that will not be kept."""
        staged.path.unlink(missing_ok=True)

    def kept(self) -> Iterator[Path]:
        """Every kept file (tests and operators: what is on disk)."""
        if self.root.exists():
            yield from (p for p in self.root.glob("??/*") if p.is_file())


@contextlib.contextmanager
def _private_writer(path: Path) -> Iterator[BinaryIO]:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    with os.fdopen(descriptor, "wb") as handle:
        yield handle


def file_sha256(path: Path) -> str:
    """SHA-256 hex of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
