"""Rate limiting as the platforms do it: GCRA buckets, and the busiest window of accepted calls."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable


class Gcra:
    """Generic cell rate algorithm: a leaky bucket kept as one "theoretical arrival time".

    Parameters:
        rate: requests per second the bucket drains.
        burst: how many requests may arrive at once; the last of them is ``burst - 1`` intervals early.
    """

    __slots__ = ("interval", "tat", "tolerance")

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = 1.0 / rate
        self.tolerance = self.interval * (max(burst, 1) - 1)
        self.tat = -math.inf  # theoretical arrival time of the next conforming request

    def wait_needed(self, now: float) -> float:
        """Seconds until a request would conform; 0 when it conforms now."""
        return max(0.0, max(self.tat, now) - self.tolerance - now)

    def consume(self, now: float) -> Callable[[], None]:
        """Counts one request; returns the undo, so that a call that then fails uses up nothing."""
        previous = self.tat
        self.tat = max(self.tat, now) + self.interval

        def undo() -> None:
            self.tat = previous

        return undo

    def take(self, now: float) -> float:
        """Counts one request and returns 0, or returns the seconds to wait without counting it."""
        early = max(self.tat, now) - now - self.tolerance
        if early > 1e-9:
            return early
        self.consume(now)
        return 0.0


class Buckets:
    """GCRA buckets by key, made on first use; forgetting them starts every limit afresh."""

    def __init__(self) -> None:
        self._buckets: dict[Hashable, Gcra] = {}

    def get(self, key: Hashable, rate: float, burst: int) -> Gcra:
        """The bucket for ``key``, made with ``rate`` and ``burst`` if it is new."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = Gcra(rate, burst)
        return bucket

    def clear(self) -> None:
        """Forgets every bucket."""
        self._buckets.clear()


def max_in_window(times: list[float], window: float) -> int:
    """The most of ``times`` (ascending) that fall within any ``window`` seconds."""
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best
