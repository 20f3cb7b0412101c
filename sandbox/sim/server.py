"""Serving a simulator over HTTP: starting and stopping it, its address, and running it standalone."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web


def client_session() -> aiohttp.ClientSession:
    """The client a simulator reaches the app with (webhooks, Slack's requests).

    A fresh connection per request: reusing one that the app's server is just closing for being
    idle fails with 'Server disconnected', a race real Slack and Telegram never show us.
    """
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


class HttpServer:
    """One aiohttp application served on a host and port.

    Parameters:
        not_running: what reading ``url`` says before ``start`` or after ``stop``.
    """

    def __init__(self, not_running: str) -> None:
        self._not_running = not_running
        self._runner: web.AppRunner | None = None
        self._host = "127.0.0.1"
        self._port = 0

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._runner is not None

    async def start(
        self,
        app: web.Application,
        host: str,
        port: int,
        *,
        access_log: bool = False,
        handler_cancellation: bool = False,
        shutdown_timeout: float = 60.0,
    ) -> None:
        """Serves ``app`` on host:port (port 0 picks a free one; read it back from ``url``)."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        runner = web.AppRunner(
            app,
            handler_cancellation=handler_cancellation,
            access_log=logging.getLogger("aiohttp.access") if access_log else None,
            shutdown_timeout=shutdown_timeout,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._host = "127.0.0.1" if host in ("", "0.0.0.0") else ("[::1]" if host == "::" else host)

    async def stop(self) -> None:
        """Stops serving and closes open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """Root URL of the running server, e.g. ``http://127.0.0.1:43211``."""
        if self._runner is None:
            raise RuntimeError(self._not_running)
        return f"http://{self._host}:{self._port}"


async def serve_until_signalled(stop: Callable[[], Awaitable[None]], banner: str) -> None:
    """How a simulator runs standalone: prints ``banner`` once SIGINT and SIGTERM are handled, and
    returns after either, once ``stop`` has run."""
    signalled = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, signalled.set)
    print(banner, flush=True)
    try:
        await signalled.wait()
    finally:
        await stop()
