"""ASGI guards in front of the API: body size and content type, checked before anything is parsed."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.output_files import LARGEST

MAX_BODY_BYTES = 1024 * 1024


# An output upload (POST /v1/grants/{id}/outputs, multipart) may carry the largest accepted file
# and its form fields; the route caps each file at its own type's limit as it reads it.
UPLOAD_MAX_BYTES = LARGEST + MAX_BODY_BYTES


def is_upload(path: str, content_type: str) -> bool:
    """True for a multipart body sent to an output upload route."""
    parts = path.split("/")
    return (
        len(parts) == 5
        and parts[1:3] == ["v1", "grants"]
        and parts[4] == "outputs"
        and content_type.split(";")[0].strip().lower() == "multipart/form-data"
    )


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyGuard:
    """Refuses request bodies over 1 MiB (413) and JSON API bodies of another content type (415)."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES, json_prefix: str = "/v1/") -> None:
        """Wraps `app`.

        Parameters:
            app: the ASGI app to protect.
            max_bytes: the largest body accepted.
            json_prefix: paths under which a body must be application/json.
        """
        self.app = app
        self.max_bytes = max_bytes
        self.json_prefix = json_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in {"POST", "PUT", "PATCH"}:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        length = headers.get("content-length")
        max_bytes = self.max_bytes
        upload = is_upload(scope["path"], headers.get("content-type", ""))
        if upload:
            max_bytes = UPLOAD_MAX_BYTES
        if length is not None and length.isdigit() and int(length) > max_bytes:
            await _answer(send, 413, f"the body is larger than {max_bytes} bytes")
            return
        if scope["path"].startswith(self.json_prefix) and not upload and (length not in (None, "0")):
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type != "application/json":
                await _answer(send, 415, "send the body as application/json")
                return
        received = 0
        refused = False
        app_started = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    # Answer 413 now and tell the app the client went away, so it writes nothing.
                    if not refused and not app_started:
                        refused = True
                        await _answer(send, 413, f"the body is larger than {max_bytes} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal app_started
            if refused:
                return
            if message["type"] == "http.response.start":
                app_started = True
            await send(message)

        await self.app(scope, limited_receive, guarded_send)
