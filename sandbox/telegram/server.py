"""A Telegram Bot API simulator: a real HTTP server for tests, benchmarks and the browser sandbox."""

from __future__ import annotations

import asyncio
from types import TracebackType

from aiohttp import web

from sandbox.sim.control import add_routes, errors_as_json_with_cors, marked_routes
from sandbox.sim.server import client_session
from sandbox.telegram.control import ControlRoutes
from sandbox.telegram.rules import MAX_DOCUMENT_BYTES


class TelegramSimulator(ControlRoutes):
    """An in-process Telegram Bot API server with hooks to act as users and inspect the bot.

    Parameters:
        bots: token → username of the bots the server knows; others get 401.
        limits: flood limits (``RateLimits(enabled=False)`` turns them off).
        faults: faults to inject from the start (see :meth:`inject`).
        webhook_retry_delays: pauses between webhook redelivery attempts; the last one repeats.
        webhook_timeout: seconds a webhook receiver has to answer.
        require_https_webhook: refuse ``http://`` webhook URLs as Telegram does.
        callback_query_ttl: seconds after which a callback query is "too old" (None: never).
        call_history_limit: keep only this many recorded calls (None: all).
        clock: monotonic clock used by the rate limits, replaceable to control time in tests.
        access_log: log every HTTP request (useful when run as a standalone server).
    """

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Starts serving HTTP on host:port (port 0 picks a free one)."""
        if self._server.running:
            raise RuntimeError("the simulator is already running")
        self._stopping = False
        self._session = client_session()
        # handler_cancellation: a long poll whose client went away must not linger until timeout.
        await self._server.start(
            self._build_app(),
            host,
            port,
            access_log=self._access_log,
            handler_cancellation=True,
            shutdown_timeout=5.0,
        )

    async def stop(self) -> None:
        """Stops the server: ends long polls, webhook deliveries and open connections."""
        self._stopping = True
        self._changes.notify()
        workers = [bot.worker for bot in self._bots.values() if bot.worker is not None]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for bot in self._bots.values():
            bot.worker = None
        await self._server.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> TelegramSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Root URL of the running server, e.g. ``http://127.0.0.1:43211``."""
        return self._server.url

    @property
    def api_base_url(self) -> str:
        """Value for PTB's ``base_url``: PTB appends ``<token>/<method>``."""
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        """Value for PTB's ``base_file_url``: PTB appends ``<token>/<file_path>``."""
        return f"{self.url}/file/bot"

    def bot_usernames(self) -> list[str]:
        """The usernames of the registered bots."""
        return [bot.username for bot in self._bots.values()]

    def _build_app(self) -> web.Application:
        # Telegram accepts uploads up to 50 MB; aiohttp's default body limit is 1 MB.
        app = web.Application(
            middlewares=[errors_as_json_with_cors], client_max_size=MAX_DOCUMENT_BYTES + 1024**2
        )
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file_download)
        add_routes(app, marked_routes(self))
        return app
