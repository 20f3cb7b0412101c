"""A creator's webhook endpoint for tests: records every POST, can fail the first N."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from bot.webhook_address import WebhookPolicy

T = TypeVar("T")
# The receiver listens on loopback over plain http, as ALLOW_PRIVATE_WEBHOOKS=true allows.
LOOPBACK_HOOKS = WebhookPolicy(allow_private=True, allow_http=True)


@dataclass
class Received:
    """One POST as it arrived."""

    body: bytes
    headers: dict[str, str]
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class WebhookReceiver:
    """Answers `fail_first` POSTs with 500, then 200; `wait_for` re-checks on every arrival.

    While `hold` is set to an unset event, every POST waits for it before being answered (a slow
    endpoint); `arrivals` counts POSTs as they come in, answered or not.
    """

    fail_first: int = 0
    hold: asyncio.Event | None = None
    arrivals: int = 0
    received: list[Received] = field(default_factory=list)
    url: str = ""
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.arrivals += 1
        self._changed.set()
        if self.hold is not None:
            await self.hold.wait()
        status = 500 if self.fail_first > 0 else 200
        self.fail_first -= 1
        self.received.append(Received(body, dict(request.headers), status))
        self._changed.set()
        return web.Response(status=status, text="ok" if status == 200 else "boom")

    def accepted(self) -> list[dict[str, Any]]:
        """Events answered 200, in arrival order."""
        return [r.event for r in self.received if r.status == 200]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 20.0) -> T:
        """Waits until `predicate()` is truthy, re-checking after each arrival."""
        async with asyncio.timeout(timeout):
            while True:
                value = predicate()
                if value:
                    return value
                self._changed.clear()
                await self._changed.wait()
