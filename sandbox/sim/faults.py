"""Fault injection: failures queued by kind and method, consumed by the calls that match them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from sandbox.sim.waiting import Changes


@dataclass
class Fault:
    """One injected failure kind, consumed by the next ``count`` calls of matching methods.

    ``kind`` is a status code ("500", "502", "503"), ``"429"`` (answered with ``retry_after``),
    ``"drop"`` (the connection is closed without an answer, the call has no effect) or
    ``"latency"`` (the call waits ``delay`` seconds, then runs normally); which of them a
    simulator knows is its own. ``methods=None`` matches every method.
    """

    kind: str
    count: int = 1
    methods: frozenset[str] | None = None
    delay: float = 0.0
    retry_after: int = 1

    def matches(self, method: str) -> bool:
        """Whether this fault applies to a call of ``method``."""
        return self.count > 0 and (self.methods is None or method in self.methods)

    def view(self) -> dict[str, Any]:
        """A JSON-friendly description."""
        data = asdict(self)
        data["methods"] = sorted(self.methods) if self.methods is not None else None
        return data


class FaultQueue:
    """Faults in the order injected; each call takes the first that matches it.

    Parameters:
        kinds: the fault kinds this simulator knows.
        check: further checks of a new fault (raising ValueError), e.g. that its methods exist.
        count_error: what a fault with ``count < 1`` is told.
    """

    def __init__(
        self,
        kinds: frozenset[str],
        *,
        check: Callable[[Fault], None] | None = None,
        count_error: str = "a fault needs count >= 1",
    ) -> None:
        self.kinds = kinds
        self._check = check
        self._count_error = count_error
        self._faults: list[Fault] = []

    def validate(self, fault: Fault) -> None:
        """Raises ValueError for a fault this simulator cannot inject."""
        if fault.kind not in self.kinds:
            raise ValueError(f"unknown fault kind {fault.kind!r}; use one of {sorted(self.kinds)}")
        if fault.count < 1:
            raise ValueError(self._count_error)
        if self._check is not None:
            self._check(fault)

    def append(self, fault: Fault) -> None:
        """Queues a fault made elsewhere, after checking it."""
        self.validate(fault)
        self._faults.append(fault)

    def take(self, method: str) -> Fault | None:
        """The first fault matching a call of ``method``, used up by one; None when none matches."""
        for fault in self._faults:
            if fault.matches(method):
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        """Drops every fault not yet consumed."""
        self._faults.clear()

    def pending(self) -> list[Fault]:
        """Copies of the faults not yet consumed."""
        return [replace(f) for f in self._faults]

    def __iter__(self) -> Iterator[Fault]:
        return iter(self._faults)


class FaultInjection:
    """How a simulator is told to fail: ``inject`` and ``clear_faults`` over its ``FaultQueue``."""

    _faults: FaultQueue
    _changes: Changes

    def inject(
        self,
        kind: str,
        count: int = 1,
        methods: Iterable[str] | str | None = None,
        delay: float = 0.0,
        retry_after: int = 1,
    ) -> Fault:
        """Makes the next ``count`` calls of ``methods`` (all when None) fail as ``kind`` (one of the
        simulator's ``FAULT_KINDS``); faults are consumed in the order injected. ``delay`` is added
        before answering (the only effect of "latency"); ``retry_after`` is the 429's."""
        if isinstance(methods, str):
            methods = [methods]
        fault = Fault(
            kind=str(kind),
            count=count,
            methods=frozenset(methods) if methods is not None else None,
            delay=delay,
            retry_after=retry_after,
        )
        self._faults.append(fault)
        self._changes.notify()
        return fault

    def clear_faults(self) -> None:
        """Drops every fault not yet consumed."""
        self._faults.clear()
        self._changes.notify()
