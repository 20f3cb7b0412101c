"""Waiting without sleeping: a version that grows with every change, and waits re-checked on each."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Changes:
    """Signals every change of a simulator's state to whoever waits for one.

    A fresh event per change acts as a broadcast condition that synchronous code can signal.
    """

    def __init__(self) -> None:
        self.version = 0
        self._event = asyncio.Event()

    @property
    def event(self) -> asyncio.Event:
        """The event the next change sets; take it before checking, so a change is never missed."""
        return self._event

    def notify(self) -> None:
        """Records a change and wakes every waiter."""
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Waits until ``event`` is set or ``timeout`` seconds pass, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    async def wait_for(self, predicate: Callable[[], T], timeout: float, report: Callable[[float], str]) -> T:
        """Waits until ``predicate()`` returns something truthy and returns it, re-checking after
        every change; raises TimeoutError with ``report(timeout)`` when ``timeout`` seconds pass."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._event  # grab before checking: a change during the check is not lost
            result = predicate()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(report(timeout))
            await self.wait(changed, remaining)
