"""Telegram's flood limits: per bot and per chat, answered with 429 and ``retry_after``."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from sandbox.sim.limits import Buckets
from sandbox.telegram.rules import COUNTED_METHODS, ApiError, JSONDict, attributes


@dataclass(frozen=True)
class RateLimits:
    """Flood limits, enforced per bot and per chat as GCRA buckets (rate per second, burst size).

    Parameters:
        enabled: ``False`` turns every limit off.
        per_bot_rate / per_bot_burst: all counted calls of one bot (Telegram: ~30 messages/s).
        private_chat_rate / private_chat_burst: one private chat (Telegram: ~1 message/s).
        group_chat_rate / group_chat_burst: one group chat (Telegram: 20 messages/minute).
        methods: which API methods count.
    """

    enabled: bool = True
    per_bot_rate: float = 30.0
    per_bot_burst: int = 30
    private_chat_rate: float = 1.0
    private_chat_burst: int = 3
    group_chat_rate: float = 20 / 60
    group_chat_burst: int = 3
    methods: frozenset[str] = COUNTED_METHODS


@dataclass
class ChatStats:
    """What one chat's counted calls did: accepted, refused, and the busiest second and minute."""

    accepted: int = 0
    rate_limited: int = 0
    max_in_1s: int = 0
    max_in_60s: int = 0
    recent: deque[float] = field(default_factory=deque)

    def record_accept(self, now: float) -> None:
        """Counts one accepted call at ``now``."""
        self.accepted += 1
        self.recent.append(now)
        while self.recent and now - self.recent[0] >= 60.0:
            self.recent.popleft()
        self.max_in_60s = max(self.max_in_60s, len(self.recent))
        in_1s = 0
        for stamp in reversed(self.recent):
            if now - stamp >= 1.0:
                break
            in_1s += 1
        self.max_in_1s = max(self.max_in_1s, in_1s)

    def forget_last(self) -> None:
        """Uncounts the last accepted call (it failed after all)."""
        self.accepted -= 1
        if self.recent:
            self.recent.pop()

    def view(self) -> JSONDict:
        """A JSON-friendly summary."""
        return attributes(self, "accepted", "rate_limited", "max_in_1s", "max_in_60s")


class FloodLimiter:
    """Counts the calls of every bot and chat against ``limits`` and refuses those over them."""

    def __init__(self, limits: RateLimits) -> None:
        self._limits = limits
        self._buckets = Buckets()
        self.chat_stats: dict[tuple[str, int], ChatStats] = {}
        self.rate_limited_count = 0

    @property
    def limits(self) -> RateLimits:
        """Current flood limits."""
        return self._limits

    @limits.setter
    def limits(self, limits: RateLimits) -> None:
        self._limits = limits
        self._buckets.clear()  # buckets are built from the limits; start them afresh

    def reset(self) -> None:
        """Forgets every count; keeps the limits."""
        self._buckets.clear()
        self.chat_stats.clear()
        self.rate_limited_count = 0

    def check(self, bot_token: str, method: str, chat_id: int | None, now: float) -> list[Callable[[], None]]:
        """Raises 429 when a counted call would break a limit; otherwise counts it and returns the
        refunds to apply if the call then fails (failed calls do not count, so stats stay honest)."""
        limits = self._limits
        if not limits.enabled or method not in limits.methods:
            return []
        buckets = [self._buckets.get(("bot", bot_token), limits.per_bot_rate, limits.per_bot_burst)]
        stats: ChatStats | None = None
        if chat_id is not None:
            if chat_id > 0:
                rate, burst = limits.private_chat_rate, limits.private_chat_burst
            else:
                rate, burst = limits.group_chat_rate, limits.group_chat_burst
            buckets.append(self._buckets.get(("chat", bot_token, chat_id, rate, burst), rate, burst))
            stats = self.chat_stats.setdefault((bot_token, chat_id), ChatStats())
        wait = max(bucket.wait_needed(now) for bucket in buckets)
        if wait > 0:
            self.rate_limited_count += 1
            if stats is not None:
                stats.rate_limited += 1
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        refunds = [bucket.consume(now) for bucket in buckets]
        if stats is not None:
            stats.record_accept(now)
            refunds.append(stats.forget_last)
        return refunds
