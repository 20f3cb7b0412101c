"""What the service counts for `GET /metrics`: refused callers, unaudited refusals, rate limiting.

Refusals that leave no record are still seen here, and in the log at most once a minute per
kind, so a flood of forged calls can fill neither the database nor the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest
from starlette.requests import Request
from starlette.responses import Response

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


async def metrics(_request: Request) -> Response:
    """The service's counters in the Prometheus text format."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
