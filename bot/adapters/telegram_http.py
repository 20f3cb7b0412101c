"""python-telegram-bot's HTTP client on aiohttp instead of httpx.

Every tap costs two Bot API calls (the answer, then the card's edit). Through PTB's default
httpx client one call costs ~0.9 ms of CPU on the benchmark machine, through aiohttp ~0.2 ms
(ENVIRONMENT.md, measured); PTB accepts any `BaseRequest`. Long polling keeps PTB's own client.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


class AiohttpRequest(BaseRequest):
    """A `BaseRequest` over one pooled `aiohttp.ClientSession`, with PTB's timeouts.

    Parameters:
        connect_timeout: seconds to connect.
        read_timeout: seconds to wait for an answer.
        write_timeout: seconds to send a request (uploads get `media_write_timeout`).
        pool_timeout: seconds to wait for a free connection.
        connection_pool_size: connections kept open at most.
        media_write_timeout: seconds to send a request that uploads a file.
    """

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 5.0,
        write_timeout: float = 5.0,
        pool_timeout: float = 1.0,
        connection_pool_size: int = 256,
        media_write_timeout: float = 20.0,
    ) -> None:
        """Remembers the settings; the session opens in `initialize`."""
        self._timeouts = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": write_timeout,
            "pool": pool_timeout,
            "media_write": media_write_timeout,
        }
        self._pool_size = connection_pool_size
        self._session: aiohttp.ClientSession | None = None

    @property
    def read_timeout(self) -> float | None:
        """The default read timeout."""
        return self._timeouts["read"]

    async def initialize(self) -> None:
        """Opens the session (once)."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        """Closes the session and its connections."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _timeout(self, given: ODVInput[float], name: str) -> float | None:
        return self._timeouts[name] if isinstance(given, DefaultValue) else given

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """One Bot API call: form fields, or a multipart body when it uploads files."""
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        body: Any = fields
        if files:
            form = aiohttp.FormData()
            for name, value in (fields or {}).items():
                form.add_field(name, value)
            for name, (filename, content, mimetype) in files.items():
                form.add_field(name, content, filename=filename, content_type=mimetype)
            body = form
        write = self._timeout(write_timeout, "write" if not files else "media_write")
        read = self._timeout(read_timeout, "read")
        connect = self._timeout(connect_timeout, "connect")
        pool = self._timeout(pool_timeout, "pool")
        # aiohttp has no write timeout of its own: the whole call is bounded by all of them together.
        total = (
            None
            if None in (read, write, connect, pool)
            else sum(t or 0 for t in (read, write, connect, pool))
        )
        timeout = aiohttp.ClientTimeout(total=total, connect=pool, sock_connect=connect, sock_read=read)
        try:
            async with self._session.request(method, url, data=body, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as error:
            raise TimedOut from error
        except aiohttp.ClientError as error:
            raise NetworkError(f"aiohttp.{type(error).__name__}: {error}") from error
