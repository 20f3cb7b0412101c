"""`GET /readyz`: whether this instance can do its work now — the database answers, its migrations
are at head, and each configured channel is connected. 200 when all are, else 503 naming which
part is not ready.

Telegram is ready once the bot connected (getMe and its webhook or polling); Slack once its token
answered `auth.test`, asked at most once per `SLACK_CHECK_INTERVAL` so probes cost Slack little (with
installs only, there is no token of the service's own to ask with).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi.responses import JSONResponse

if TYPE_CHECKING:
    from bot.app import Service

SLACK_CHECK_INTERVAL = 30.0


@dataclass
class Readiness:
    """The checks behind `/readyz` for one service."""

    service: Service
    monotonic: Callable[[], float] = time.monotonic
    _slack_ok_until: float = field(default=-1.0)

    async def parts(self) -> dict[str, str]:
        """Each part's state: 'ok', or a short reason it is not ready."""
        db = self.service.desk.db
        found: dict[str, str] = {}
        reachable = await db.ping()
        found["database"] = "ok" if reachable else "unreachable"
        if reachable:
            found["migrations"] = "ok" if await db.migrated() else "not at head: run `likeness db upgrade`"
        else:
            found["migrations"] = "unknown: the database is unreachable"
        found |= await self._channels()
        return found

    async def _channels(self) -> dict[str, str]:
        from bot.adapters.slack import SlackSender
        from bot.adapters.telegram import TelegramSender

        found: dict[str, str] = {}
        for sender in self.service.senders:
            if isinstance(sender, TelegramSender):
                found["telegram"] = "ok" if sender.is_ready() else "not connected"
            elif isinstance(sender, SlackSender):
                found["slack"] = await self._slack(sender)
        return found

    async def _slack(self, sender: object) -> str:
        from bot.adapters.slack import SlackSender

        assert isinstance(sender, SlackSender)
        if not sender.client.token:
            return "ok"  # one app in many workspaces: each workspace's token is checked as it is used
        now = self.monotonic()
        if now < self._slack_ok_until:
            return "ok"
        try:
            me = await sender.whoami()
        except Exception as error:  # any failure is an answer here: not connected
            return f"not connected: {type(error).__name__}"
        if not me.get("ok", True):
            return "not connected"
        self._slack_ok_until = now + SLACK_CHECK_INTERVAL
        return "ok"

    async def answer(self) -> JSONResponse:
        """The `/readyz` response: 200 with every part ok, else 503 naming the parts that are not."""
        parts = await self.parts()
        waiting = sorted(name for name, state in parts.items() if state != "ok")
        body = {"status": "ready" if not waiting else "not ready", "parts": parts, "not_ready": waiting}
        return JSONResponse(body, status_code=200 if not waiting else 503)


def add_readiness(service: Service) -> None:
    """Adds `GET /readyz` to the service's HTTP app."""
    readiness = Readiness(service)

    async def readyz() -> JSONResponse:
        """200 when the database, its migrations and each configured channel are ready, else 503."""
        return await readiness.answer()

    service.api.add_api_route("/readyz", readyz, methods=["GET"], tags=["operations"])
