"""Usage reports queued for artists (Telegram) and agencies (Slack): on request, or weekly once
per recipient and period. What a report says is built in bot/reports.py when it is sent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from bot.models import ActorKind, ChannelKind, utc_iso
from bot.workflow.desk import Desk, Recipient, queue_notice
from bot.workflow.errors import NotAllowed, NotFound
from bot.workflow.sweeps import SWEEP_BATCH
from storage import due
from storage.tables import Agency, Artist, ReportRun

# The latest moment at or before `now` when the weekly report fell due in a time zone, or None.
LastFire = Callable[[str, datetime], datetime | None]


async def queue_report(
    desk: Desk, *, recipient_kind: ActorKind, recipient_id: str, period: str | None = None
) -> bool:
    """Queues a usage report for an artist (Telegram) or agency (Slack).

    With `period` (the weekly cron's week key) it is queued at most once per recipient and
    period, whatever the number of instances or restarts; without, it is sent now on request.
    Returns False when the recipient has no channel to receive it (or it was already queued).
    """
    try:
        queued = await _queue_report(desk, recipient_kind, recipient_id, period)
    except IntegrityError:
        return False  # another instance queued this period's report at the same moment
    if queued:
        desk.committed()
    return queued


async def _queue_report(desk: Desk, recipient_kind: ActorKind, recipient_id: str, period: str | None) -> bool:
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        if recipient_kind is ActorKind.artist:
            artist = await session.get(Artist, recipient_id)
            if artist is None:
                raise NotFound(f"no artist {recipient_id}")
            channel, reachable = ChannelKind.telegram, artist.telegram_chat_id is not None
        elif recipient_kind is ActorKind.agency:
            agency = await session.get(Agency, recipient_id)
            if agency is None:
                raise NotFound(f"no agency {recipient_id}")
            channel, reachable = ChannelKind.slack, bool(agency.slack_channel_id)
        else:
            raise NotAllowed("reports go to artists and agencies")
        if not reachable:
            return False
        if period is not None:
            if await session.get(ReportRun, (recipient_kind.value, recipient_id, period)) is not None:
                return False
            session.add(
                ReportRun(
                    recipient_kind=recipient_kind.value,
                    recipient_id=recipient_id,
                    period=period,
                    created_at=now,
                )
            )
        queue_notice(
            session,
            now,
            Recipient(channel, recipient_kind, recipient_id),
            "report",
            payload={"period": period, "generated_at": utc_iso(now)},
            dedupe_key=f"report:{recipient_kind.value}:{recipient_id}:{period}" if period else None,
        )
    return True


async def queue_due_reports(desk: Desk, *, last_fire: LastFire, limit: int = SWEEP_BATCH) -> int:
    """Queues each recipient's report for the latest moment it fell due in their own time zone, once.

    Run on every sweep, so a report that fell due while the service was down goes out when it
    returns; the report_runs row makes it once per recipient and period on any number of instances.
    """
    now = desk.clock.now()
    found: list[tuple[ActorKind, str, str]] = []
    async with desk.db.transaction() as session:
        for kind in (ActorKind.artist, ActorKind.agency):
            for zone in await due.report_time_zones(session, kind):
                fired = last_fire(zone, now)
                if fired is None:
                    continue
                period = f"week:{utc_iso(fired)}"
                ids = await due.recipients_due_report(
                    session, kind, zone=zone, fired=fired, period=period, limit=limit
                )
                found += [(kind, rid, period) for rid in ids]
    queued = 0
    for kind, rid, period in found:
        queued += await queue_report(desk, recipient_kind=kind, recipient_id=rid, period=period)
    return queued
