"""Where the service reads the time, so that tests and the sandbox can move it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """Returns the current time in UTC."""
        return datetime.now(UTC)


@dataclass
class OffsetClock:
    """The wall clock plus an offset that only ever grows (the sandbox's skip-ahead)."""

    offset: timedelta = field(default_factory=timedelta)

    def now(self) -> datetime:
        """Returns the wall-clock time moved forward by the offset."""
        return datetime.now(UTC) + self.offset

    def skip(self, by: timedelta) -> None:
        """Moves the clock forward; a negative skip is refused because time never runs back."""
        if by < timedelta(0):
            raise ValueError("the clock only moves forward")
        self.offset += by


@dataclass
class FrozenClock:
    """A clock that stands still until told to move; for tests."""

    current: datetime

    def now(self) -> datetime:
        """Returns the frozen time."""
        return self.current

    def advance(self, by: timedelta) -> None:
        """Moves the frozen time forward."""
        self.current += by
