"""Files the bot sends: image sizes read from the bytes, and the store of uploads by file id."""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.telegram.rules import (
    MAX_DOCUMENT_BYTES,
    MAX_PHOTO_BYTES,
    ApiError,
    JSONDict,
    attributes,
    bad,
)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            index += 2
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return width, height
        index += 2 + length
    return None


def webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        b = data[21:25]
        return 1 + (((b[1] & 0x3F) << 8) | b[0]), 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | (b[1] >> 6))
    return 0, 0


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG, GIF, BMP or WebP image; None when it is not one."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return width, abs(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return webp_size(data)
    if data.startswith(b"\xff\xd8"):
        return jpeg_size(data)
    return None


# What Telegram reports for a video or audio uploaded without a content type of its own.
_MIME = {"video": "video/mp4", "audio": "audio/mpeg"}


@dataclass
class Upload:
    filename: str | None
    data: bytes
    content_type: str | None


@dataclass
class File:
    file_id: str
    file_unique_id: str
    kind: str  # "photo", "document", "video" or "audio"
    data: bytes
    file_name: str | None
    mime_type: str | None
    file_path: str
    width: int = 0
    height: int = 0

    @property
    def file_size(self) -> int:
        """The size of the file in bytes."""
        return len(self.data)

    def photo_sizes(self) -> list[JSONDict]:
        # Telegram returns several scaled copies; one full-size entry is enough for clients.
        return [attributes(self, "file_id", "file_unique_id", "file_size", "width", "height")]

    def media(self) -> JSONDict:
        """A video's or audio's object, as Telegram describes them (no probing: duration 0)."""
        found = self.document() | {"duration": 0}
        if self.kind == "video":
            found |= {"width": self.width, "height": self.height}
        return found

    def document(self) -> JSONDict:
        doc = attributes(self, "file_id", "file_unique_id", "file_size")
        if self.file_name:
            doc["file_name"] = self.file_name
        if self.mime_type:
            doc["mime_type"] = self.mime_type
        return doc

    def view(self) -> JSONDict:
        return attributes(
            self,
            *("file_id", "file_unique_id", "kind", "file_name", "mime_type"),
            *("file_size", "file_path", "width", "height"),
        )


class FileStore:
    """Every file the bots uploaded, by file id; resending a known file id reuses the stored file."""

    def __init__(self) -> None:
        self.files: dict[str, File] = {}
        self._seq = 0

    def get(self, file_id: str) -> File | None:
        """The file with this id, or None."""
        return self.files.get(file_id)

    def by_path(self, path: str) -> File | None:
        """The file served at ``file_path``, or None."""
        return next((file for file in self.files.values() if file.file_path == path), None)

    def clear(self) -> None:
        """Forgets every file."""
        self.files.clear()

    def from_request(
        self, uploads: Mapping[str, Upload], values: Mapping[str, Any], name: str, kind: str
    ) -> File:
        """The file a request sends as ``name``: an upload (also by ``attach://``) or a known file id."""
        upload = uploads.get(name)
        value = values.get(name)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = uploads.get(value.removeprefix("attach://"))
        if upload is None:
            if isinstance(value, str) and value:
                known = self.files.get(value)
                if known is not None:
                    return known  # resending by file_id reuses the stored file, as in Telegram
                raise bad("wrong file identifier/HTTP URL specified")
            raise bad(f"there is no {name} in the request")
        if not upload.data:
            raise bad("file must be non-empty")
        size = (0, 0)
        if kind == "photo":
            if len(upload.data) > MAX_PHOTO_BYTES:
                raise bad("PHOTO_INVALID_DIMENSIONS")
            found = image_size(upload.data)
            if found is None:
                raise bad("IMAGE_PROCESS_FAILED")
            size = found
        elif len(upload.data) > MAX_DOCUMENT_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        self._seq += 1
        number = self._seq
        extension = ""
        if upload.filename and "." in upload.filename:
            extension = "." + upload.filename.rsplit(".", 1)[1]
        prefix = {"photo": "AgACAgIAAxk", "video": "BAACAgIAAxk", "audio": "CQACAgIAAxk"}.get(
            kind, "BQACAgIAAxk"
        )
        keeps_name = kind != "photo"
        file = File(
            file_id=f"{prefix}{number:08d}",
            file_unique_id=f"AQAD{number:08d}",
            kind=kind,
            data=upload.data,
            file_name=upload.filename if keeps_name else None,
            mime_type=(upload.content_type or _MIME.get(kind)) if keeps_name else "image/jpeg",
            file_path=f"{kind}s/file_{number}{extension if keeps_name else '.jpg'}",
            width=size[0],
            height=size[1],
        )
        self.files[file.file_id] = file
        return file
