"""Small, well-formed files of every accepted output type, made here (no fixtures on disk)."""

from __future__ import annotations

import io
import struct

from PIL import Image


def image(kind: str, colour: tuple[int, int, int] = (200, 30, 60)) -> bytes:
    """A 16×16 image as JPEG, PNG or WEBP."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), colour).save(buffer, format=kind)
    return buffer.getvalue()


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4() -> bytes:
    """An MP4's top-level boxes: ftyp, moov (empty movie header) and mdat."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    moov = _box(b"moov", _box(b"mvhd", bytes(100)))
    return ftyp + moov + _box(b"mdat", bytes(64))


def mp3() -> bytes:
    """An ID3v2 tag and two MPEG-1 Layer III frames of silence."""
    tag = b"ID3\x04\x00\x00" + bytes([0, 0, 0, 10]) + bytes(10)
    frame = b"\xff\xfb\x90\x64" + bytes(413)
    return tag + frame + frame


def ogg() -> bytes:
    """Two Ogg pages, each with one 30-byte segment."""

    def page(sequence: int, flags: int) -> bytes:
        header = b"OggS" + bytes([0, flags]) + struct.pack("<qIII", 0, 1, sequence, 0) + bytes([1, 30])
        return header + bytes(30)

    return page(0, 2) + page(1, 4)


SAMPLES: dict[str, bytes] = {}


def sample(media_type: str) -> bytes:
    """A valid file of an accepted type."""
    if media_type not in SAMPLES:
        SAMPLES[media_type] = {
            "image/jpeg": lambda: image("JPEG"),
            "image/png": lambda: image("PNG"),
            "image/webp": lambda: image("WEBP"),
            "video/mp4": mp4,
            "audio/mpeg": mp3,
            "audio/ogg": ogg,
        }[media_type]()
    return SAMPLES[media_type]
