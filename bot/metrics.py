"""What the service counts for `GET /metrics`: HTTP answers by status, decisions, the outbox's
backlog (read at scrape time), failed and rate-limited deliveries, sweep durations, violations,
refused callers, unaudited refusals and rate limiting.

Refusals that leave no record are still seen here, and in the log at most once a minute per
kind, so a flood of forged calls can fill neither the database nor the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from bot.workflow import Desk

log = logging.getLogger(__name__)

AUTH_FAILURES = Counter(
    "likeness_auth_failures",
    "Calls refused because they failed authentication; nothing of them is stored.",
    ["kind"],
)
REFUSALS_UNAUDITED = Counter(
    "likeness_refusals_unaudited",
    "Refusals of authenticated callers beyond their hourly audit cap: counted, not audited.",
    ["channel"],
)
RATE_LIMITED = Counter(
    "likeness_rate_limited",
    "Calls answered 429 because a rate limit was reached.",
    ["scope"],
)

HTTP_RESPONSES = Counter(
    "likeness_http_responses",
    "HTTP requests answered, by status code.",
    ["status"],
)
DECISIONS = Counter(
    "likeness_decisions",
    "Decisions recorded, by the channel they came from and their outcome.",
    ["channel", "outcome"],
)
DELIVERIES_FAILED = Counter(
    "likeness_deliveries_failed",
    "Notices given up (undeliverable, or still failing after 24 h), by channel.",
    ["channel"],
)
DELIVERIES_RATE_LIMITED = Counter(
    "likeness_deliveries_rate_limited",
    "Sends a platform answered with 429 (rate limited); the notice is retried, by channel.",
    ["channel"],
)
SWEEP_SECONDS = Histogram(
    "likeness_sweep_duration_seconds",
    "How long one pass of the sweeps took.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
VIOLATIONS = Counter(
    "likeness_violations",
    "Usage reports that broke a term of their grant.",
)

LOG_INTERVAL = 60.0


@dataclass
class OncePerInterval:
    """Says yes to the first event of each kind in every interval, and counts the rest."""

    interval: float = LOG_INTERVAL
    clock: Callable[[], float] = time.monotonic
    _last: dict[str, float] = field(default_factory=dict)
    _quiet: dict[str, int] = field(default_factory=dict)

    def due(self, kind: str) -> int | None:
        """The number of events of `kind` kept quiet since the last yes, when one is due now; else None."""
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return None
        self._last[kind] = now
        return self._quiet.pop(kind, 0)


_auth_log = OncePerInterval()


def auth_failed(kind: str, detail: str, *, log_gate: OncePerInterval | None = None) -> None:
    """Counts a call that failed authentication; logs it when no line of its kind was written this minute."""
    AUTH_FAILURES.labels(kind=kind).inc()
    quiet = (log_gate or _auth_log).due(kind)
    if quiet is None:
        return
    more = f" ({quiet} more of this kind since the last line)" if quiet else ""
    # One line, and only the failure's kind and a short reason: nothing the caller sent verbatim.
    log.warning("refused an unauthenticated call (%s): %s%s", kind, detail, more)


def delivery_retried(channel: str, reason: str) -> None:
    """Counts a send the platform asked to wait for (a 429); other retries are not counted here."""
    if "429" in reason or "rate limited" in reason:
        DELIVERIES_RATE_LIMITED.labels(channel=channel).inc()


def delivery_failed(channel: str) -> None:
    """Counts a notice given up on."""
    DELIVERIES_FAILED.labels(channel=channel).inc()


# ---------------------------------------------------------------- the outbox, read at scrape time


@dataclass(frozen=True)
class ChannelBacklog:
    """One channel's pending notices and the age of the oldest, as one scrape read them."""

    channel: str
    pending: int
    oldest_age_seconds: float


class OutboxCollector(Collector):
    """Reports the outbox backlog read just before the scrape (see `metrics_route`)."""

    def __init__(self) -> None:
        """Starts with nothing read."""
        self.backlog: list[ChannelBacklog] = []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The pending notices and the oldest pending age per channel."""
        pending = GaugeMetricFamily(
            "likeness_notices_pending", "Notices waiting in the outbox, by channel.", labels=["channel"]
        )
        oldest = GaugeMetricFamily(
            "likeness_notice_oldest_pending_seconds",
            "Age of the oldest notice waiting in the outbox, by channel.",
            labels=["channel"],
        )
        for line in self.backlog:
            pending.add_metric([line.channel], line.pending)
            oldest.add_metric([line.channel], line.oldest_age_seconds)
        yield pending
        yield oldest


OUTBOX = OutboxCollector()
REGISTRY.register(OUTBOX)
_scrape_lock = asyncio.Lock()


def metrics_route(desk: Desk) -> Callable[[Request], Awaitable[Response]]:
    """`GET /metrics`: reads the outbox backlog (one grouped query), then every series."""
    from bot.workflow.operations import outbox_backlog

    async def scrape(_request: Request) -> Response:
        async with _scrape_lock:
            now: datetime = desk.clock.now()
            try:
                lines = await outbox_backlog(desk)
            except Exception as error:  # the database being down must not take /metrics with it
                log.warning("metrics: cannot read the outbox (%s)", type(error).__name__)
                lines = []
            OUTBOX.backlog = [
                ChannelBacklog(
                    line.channel,
                    line.pending,
                    max(0.0, (now - line.oldest_at).total_seconds()) if line.oldest_at else 0.0,
                )
                for line in lines
            ]
            body = generate_latest(REGISTRY)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return scrape


class AnswerStartHook:
    """ASGI middleware that shows `on_start` the start of every HTTP answer before it is sent."""

    def __init__(self, app: ASGIApp) -> None:
        """Wraps `app`."""
        self.app = app

    def on_start(self, message: Message) -> None:
        """Sees (and may change) one `http.response.start` message."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Passes the call through, handing the start of its answer to `on_start`."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def starting(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.on_start(message)
            await send(message)

        await self.app(scope, receive, starting)


class CountResponses(AnswerStartHook):
    """ASGI middleware counting every HTTP answer by its status code."""

    def on_start(self, message: Message) -> None:
        """Counts the answer's status."""
        HTTP_RESPONSES.labels(status=str(message["status"])).inc()
