"""How many refusals of one authenticated caller the audit chain takes in an hour.

A refused but authenticated caller (a member not listed for the agency, another Telegram user
tapping an artist's button) is audited, up to `per_hour` refusals in each hour from their first;
beyond that the refusal is only counted (`likeness_refusals_unaudited_total`), so that no one
can fill the chain. The windows are kept in memory, per instance, on the desk's clock.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot import metrics

log = logging.getLogger(__name__)

WINDOW = timedelta(hours=1)
DEFAULT_PER_HOUR = 30
MAX_CALLERS = 10_000


@dataclass
class RefusalAuditCap:
    """Counts each caller's audited refusals per hour; says whether one more may be audited."""

    per_hour: int = DEFAULT_PER_HOUR
    max_callers: int = MAX_CALLERS
    _windows: OrderedDict[str, tuple[datetime, int]] = field(default_factory=OrderedDict)

    def admit(self, caller: str, channel: str, now: datetime) -> bool:
        """True when this refusal of `caller` goes on the record; False when it is only counted."""
        started, count = self._windows.pop(caller, (now, 0))
        if now - started >= WINDOW or now < started:
            started, count = now, 0
        self._windows[caller] = (started, count + 1)
        while len(self._windows) > self.max_callers:
            self._windows.popitem(last=False)
        if count < self.per_hour:
            return True
        metrics.REFUSALS_UNAUDITED.labels(channel=channel).inc()
        if count == self.per_hour:
            log.warning(
                "%s was refused more than %d times within an hour; further refusals until %s are counted,"
                " not audited",
                caller,
                self.per_hour,
                (started + WINDOW).isoformat(timespec="seconds"),
            )
        return False
