"""Cron arithmetic for the weekly reports: when a crontab last fired in a recipient's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot import workflow
from bot.workflow import SWEEP_BATCH, Desk


def last_fire_before(
    cron: str, timezone: str, now: datetime, lookback: timedelta = timedelta(days=8)
) -> datetime | None:
    """The latest moment at or before `now` when `cron` fired in `timezone` (within `lookback`)."""
    trigger = CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))
    moment: datetime | None = trigger.get_next_fire_time(None, now - lookback)
    last: datetime | None = None
    for _ in range(20_000):  # a weekly cron takes one or two steps; this bounds a per-minute one
        if moment is None or moment > now:
            break
        last = moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    return last.astimezone(UTC) if last else None


async def queue_due_reports(desk: Desk, *, cron: str, limit: int = SWEEP_BATCH) -> int:
    """Queues each recipient's report for the latest moment `cron` fired in their own time zone, once."""

    def last_fire(timezone: str, now: datetime) -> datetime | None:
        return last_fire_before(cron, timezone, now)

    return await workflow.queue_due_reports(desk, last_fire=last_fire, limit=limit)
