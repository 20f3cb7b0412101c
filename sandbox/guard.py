"""The sandbox's door: what a request to `/sandbox/...` or `/control/...` must bring.

- On a public address (`SANDBOX_PUBLIC=true`) a random token, printed once in the log as part
  of the page's URL: the first visit with `?token=` sets a same-site cookie, later calls bring
  the cookie (or an `X-Sandbox-Token` header).
- On loopback, a Host header naming loopback, so a web page elsewhere cannot rebind its name
  to 127.0.0.1 and read the demo key.
- A POST, PUT, PATCH or DELETE with a body declares `application/json` (else 415), so a form or a
  `text/plain` fetch from another site cannot act as a demo user.
- A path stays inside its prefix: `.` and `..` segments (also percent-encoded) are 404.
"""

from __future__ import annotations

import hmac
import json
import secrets
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, unquote, urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from bot.exposure import is_loopback_host

COOKIE = "likeness_sandbox"
HEADER = b"x-sandbox-token"
GUARDED = ("/sandbox", "/control")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def new_token() -> str:
    """A fresh access token for a public sandbox."""
    return secrets.token_urlsafe(24)


def leaves_prefix(path: str) -> bool:
    """True when a path holds a `.` or `..` segment, a backslash or a NUL, decoded or not."""
    for text in (path, unquote(path)):
        if "\\" in text or "\x00" in text:
            return True
        if any(segment in {".", ".."} for segment in text.split("/")):
            return True
    return False


class SandboxGuard:
    """ASGI middleware in front of the whole app; only guarded paths are looked at.

    Parameters:
        app: the application behind the door.
        token: the access token when the sandbox is public; None on loopback.
    """

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        """Wraps `app`."""
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answers 401, 403, 404 or 415 for requests that may not pass; hands the rest on."""
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(GUARDED):
            await self.app(scope, receive, send)
            return
        raw_path = bytes(scope.get("raw_path") or b"").decode("latin-1")
        if leaves_prefix(path) or leaves_prefix(raw_path):
            await _answer(send, 404, "not found")
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is None:
            if not is_loopback_host(_host_name(headers.get("host", ""))):
                await _answer(send, 403, "the sandbox answers only on this machine's loopback address")
                return
        else:
            given, from_query = self._given_token(scope, headers)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                await _answer(send, 401, "this sandbox needs the token printed in its log (?token=...)")
                return
            if from_query:
                # The token leaves the address bar: a cookie carries it from now on.
                await _redirect_with_cookie(send, path, self.token)
                return
        method = str(scope.get("method", "GET")).upper()
        if method in _BODY_METHODS and _has_body(headers):
            media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media_type != "application/json":
                await _answer(send, 415, "send the body as application/json")
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _given_token(scope: Scope, headers: dict[str, str]) -> tuple[str | None, bool]:
        if HEADER.decode() in headers:
            return headers[HEADER.decode()], False
        query = parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"))
        if query.get("token") and scope.get("method") == "GET":
            return query["token"][0], True
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is simply no token
            return None, False
        morsel = cookie.get(COOKIE)
        return (morsel.value if morsel is not None else None), False


def _host_name(header: str) -> str | None:
    try:
        return urlsplit("//" + header).hostname
    except ValueError:
        return None


def _has_body(headers: dict[str, str]) -> bool:
    return headers.get("content-length", "0") not in {"", "0"} or "transfer-encoding" in headers


async def _answer(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _redirect_with_cookie(send: Send, path: str, token: str) -> None:
    cookie = f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", path.encode("latin-1", "replace")),
                (b"set-cookie", cookie.encode()),
                (b"cache-control", b"no-store"),
                (b"content-length", b"0"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
