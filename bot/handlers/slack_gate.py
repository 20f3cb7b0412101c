"""The door of `POST /slack/events`: a request must be signed, fresh and readable before bolt sees it.

Bolt would answer a malformed timestamp or an unreadable `payload=` with an exception (a 500),
and it parses the body before it checks the signature. Here the signature is checked first, on
the raw bytes; a request that fails is counted and answered 401, and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.request.async_request import AsyncBoltRequest
from starlette.datastructures import Headers

from bot.api.ratelimit import refuse_unauthenticated, too_many

FRESHNESS_SECONDS = 5 * 60  # Slack's own window: a signed request older than this is refused
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_SIGNATURE = re.compile(r"^v0=[0-9a-f]{64}$")


def signature_problem(
    body: bytes, *, timestamp: str | None, signature: str | None, secret: str, now: float
) -> str | None:
    """None when Slack signed this body within the last five minutes; else the problem, in a few words."""
    if not timestamp or not signature:
        return "missing signature"
    if not _TIMESTAMP.match(timestamp) or not _SIGNATURE.match(signature):
        return "malformed signature headers"
    if abs(now - int(timestamp)) > FRESHNESS_SECONDS:
        return "stale timestamp"
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    if not hmac.compare_digest("v0=" + expected.hexdigest(), signature):
        return "wrong signature"
    return None


def body_problem(body: bytes, headers: Headers) -> str | None:
    """None when bolt can read this body (UTF-8; JSON where JSON is due); else what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "the body is not UTF-8"
    try:
        # The same parse bolt does before it dispatches, so that it cannot fail there.
        AsyncBoltRequest(body=text, headers={k: v for k, v in headers.items()})
    except Exception:
        return "the body is not one Slack sends"
    return None


async def refuse_unsigned(_request: Request) -> Response:
    """Without a signing secret no request can be trusted."""
    return PlainTextResponse("SLACK_SIGNING_SECRET is not set", status_code=401)


def events_route(
    handler: AsyncSlackRequestHandler, signing_secret: str
) -> Callable[[Request], Awaitable[Response]]:
    """`POST /slack/events`: what passes the door goes to bolt; what does not is counted and refused."""

    async def slack_events(request: Request) -> Response:
        """Events, interactivity and slash commands, all on one URL as Slack's app settings have it."""
        body = await request.body()
        problem = signature_problem(
            body,
            timestamp=request.headers.get("x-slack-request-timestamp"),
            signature=request.headers.get("x-slack-signature"),
            secret=signing_secret,
            now=time.time(),
        )
        if problem is None:
            unreadable = body_problem(body, request.headers)
            if unreadable is not None:
                return PlainTextResponse(unreadable, status_code=400)
            response: Response = await handler.handle(request)
            if response.status_code != 401:
                return response
            problem = bytes(response.body).decode(errors="replace")[:100]  # a replay, refused by bolt
        # Whoever sent it is no one we know: counted, never stored.
        kind = "slack_replay" if "replayed" in problem else "slack_signature"
        limited = await refuse_unauthenticated(request, kind, problem)
        if limited is not None:
            return too_many(limited.scope_name, limited.retry_after)
        return PlainTextResponse("replayed request" if kind == "slack_replay" else "invalid request", 401)

    return slack_events
