"""An in-process `likeness serve` for hostile-caller tests: the real HTTP app on a real socket, with
Telegram (webhook mode) and Slack switched on against their simulators, on either database, with
the desk on a frozen clock and every log record captured.

It runs in the test's own event loop (uvicorn as a task), so a test can read the database, move
the clock and read the metrics between calls without waiting on another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from prometheus_client import REGISTRY

from bot import proof, workflow
from bot.app import Service, bind_socket, build_service
from bot.clock import FrozenClock
from bot.config import Settings
from bot.handlers.telegram import TelegramChannel
from sandbox.slack import SlackSimulator
from sandbox.telegram import TelegramSimulator
from tests.conftest import START
from tests.test_workflow import row_counts

TOKEN = "7000099:HOSTILE-telegram-bot-token_Kp4Wq"
BOT_USERNAME = "likeness_hostile_bot"
SLACK_TOKEN = "xoxb-hostile-slack-token-9Fd2"
SIGNING_SECRET = "hostile-slack-signing-secret-Q7w"
WEBHOOK_SECRET = "hostile-telegram-webhook-secret-Z3x"
BOARD = "C0HOSTILE"
MEMBER = "U0MEMBER"
STRANGER = "U0STRANGER"
GENEROUS = "1000/s,1000"


@dataclass
class Hostile:
    """The service under attack, its simulators, and ways to call it as anyone."""

    service: Service
    url: str
    tg: TelegramSimulator
    slack: SlackSimulator
    clock: FrozenClock
    http: httpx.AsyncClient
    agency_id: str
    log: pytest.LogCaptureFixture

    async def rows(self) -> dict[str, int]:
        """How many rows every table holds."""
        return await row_counts(self.service.desk)

    async def slack_post(
        self,
        body: bytes,
        *,
        sign: bool = True,
        timestamp: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POSTs to /slack/events, signed with the real secret unless `sign` is False."""
        stamp = timestamp if timestamp is not None else str(int(time.time()))
        sent = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": stamp}
        if sign:
            sent["X-Slack-Signature"] = signed(body, stamp)
        return await self.http.post(
            f"{self.url}/slack/events", content=body, headers=_raw(sent | (headers or {}))
        )

    async def telegram_post(self, body: bytes, secret: str | None = WEBHOOK_SECRET) -> httpx.Response:
        """POSTs to /telegram/webhook with the given secret header (none when None)."""
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        return await self.http.post(f"{self.url}/telegram/webhook", content=body, headers=_raw(headers))

    def tracebacks(self) -> list[str]:
        """Every captured log record that carries a traceback."""
        return [
            f"{r.name}: {r.getMessage()}"
            for r in self.log.records
            if r.exc_info or r.exc_text or "Traceback" in r.getMessage()
        ]

    def lines(self, words: str) -> list[str]:
        """The captured log lines that contain `words`."""
        return [r.getMessage() for r in self.log.records if words in r.getMessage()]


def _raw(headers: dict[str, str]) -> dict[str, bytes]:
    # Any byte a hostile client can put in a header, not only ASCII (httpx would refuse those).
    return {k: v.encode("latin-1") for k, v in headers.items()}


def signed(body: bytes, timestamp: str) -> str:
    """Slack's signature of `body` at `timestamp`, with the service's signing secret (any bytes)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()


def payload(data: Any) -> bytes:
    """An interactivity payload as Slack posts it."""
    return urllib.parse.urlencode({"payload": json.dumps(data)}).encode()


def metric(name: str, **labels: str) -> float:
    """A counter's current value (0 before its first increment)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def open_world(
    db_url: str, root: Path, log: pytest.LogCaptureFixture, **settings: Any
) -> AsyncIterator[Hostile]:
    """Starts the simulators and the service; stops them all on the way out."""
    log.set_level(logging.INFO)
    tg = TelegramSimulator(bots={TOKEN: BOT_USERNAME})
    slack = SlackSimulator(bot_token=SLACK_TOKEN, signing_secret=SIGNING_SECRET)
    slack.add_channel(BOARD, "hostile-board")
    for user in (MEMBER, STRANGER):
        slack.add_user(user, user.lower())
    await tg.start()
    await slack.start()
    sock = bind_socket("127.0.0.1", 0)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db_url,
        data_dir=root / "data",
        telegram_bot_token=TOKEN,
        telegram_api_base_url=tg.api_base_url,
        telegram_webhook_url=f"{url}/telegram/webhook",
        telegram_webhook_secret=WEBHOOK_SECRET,
        slack_bot_token=SLACK_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base_url=slack.api_base_url,
        sandbox=False,
        sweep_interval="1h",
        **({"address_rate_limit": GENEROUS, "api_rate_limit": GENEROUS} | settings),
    )
    (root / "data").mkdir(parents=True, exist_ok=True)
    clock = FrozenClock(START)
    service = build_service(config, clock)
    await service.db.upgrade()
    agency = await workflow.add_agency(
        service.desk, name="Hostile Agency", slack_channel_id=BOARD, slack_member_ids=[MEMBER]
    )
    # The service signs the audit head when it starts; signed now, that start-up checkpoint finds
    # nothing new, so no row appears while a test counts them.
    await proof.take_checkpoint(service.desk)
    started = asyncio.Event()

    async def mark_started() -> None:
        started.set()

    service.on_start.append(mark_started)
    server = uvicorn.Server(
        uvicorn.Config(service.api, log_level="warning", access_log=False, lifespan="on", log_config=None)
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await asyncio.wait_for(started.wait(), timeout=30)
        # The schedule's start-up checkpoint runs on its own: let it end before a test counts rows,
        # or an event the test makes first would be signed in the middle of its count.
        schedule = service.schedule
        if schedule is not None and schedule.checkpoint_interval is not None:
            await asyncio.wait_for(schedule.checkpointed.wait(), timeout=30)
        channel = next(
            r.endpoint.__self__ for r in service.api.routes if getattr(r, "path", "") == "/telegram/webhook"
        )
        assert isinstance(channel, TelegramChannel)
        if channel._task is not None:
            await asyncio.wait_for(asyncio.shield(channel._task), timeout=30)
        assert channel.connected
        slack.app_url = f"{url}/slack/events"
        async with httpx.AsyncClient(timeout=30) as http:
            yield Hostile(service, url, tg, slack, clock, http, agency.id, log)
    finally:
        server.should_exit = True
        await serving
        await slack.stop()
        await tg.stop()
