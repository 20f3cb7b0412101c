"""What is due now, read from the rows' own columns: the sweeps' and the weekly reports' queries.

Every sweep query locks the rows it returns and skips rows another instance holds, so instances
sweeping at once share the work instead of doing it twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.models import OPEN_STATUSES, ActorKind, GrantStatus
from storage.tables import Agency, Artist, Deletion, Grant, Output, ReportRun, Request

_OPEN = [s.value for s in OPEN_STATUSES]
_NOT_ENDED = [GrantStatus.scheduled.value, GrantStatus.active.value]

Row = TypeVar("Row", Request, Grant, Deletion, Output)
Reminded = TypeVar("Reminded", Request, Grant, Output)


async def _locked(session: AsyncSession, query: Select[tuple[Row]], limit: int) -> list[Row]:
    """The first `limit` rows of `query`, locked for this transaction; rows held elsewhere skipped."""
    return list((await session.execute(query.limit(limit).with_for_update(skip_locked=True))).scalars())


# What a row must still be to be reminded of, and the column of its deadline, by table.
_WAITING: dict[
    type[Request | Grant | Output], tuple[ColumnElement[bool], InstrumentedAttribute[datetime]]
] = {
    Request: (Request.status.in_(_OPEN), Request.decision_due_at),
    Grant: (Grant.status.in_(_NOT_ENDED), Grant.ends_at),
    Output: (Output.status == "pending", Output.release_due_at),
}


async def rows_to_remind(
    session: AsyncSession,
    table: type[Reminded],
    now: datetime,
    *,
    index: int,
    within: timedelta,
    limit: int,
) -> list[Reminded]:
    """Open requests, scheduled or active grants, or pending outputs whose deadline (decision, end,
    release) falls within `within` and that have not had reminder `index` yet, earliest first."""
    waiting, due_at = _WAITING[table]
    query = (
        select(table)
        .where(waiting, table.reminders_sent <= index, due_at > now, due_at <= now + within)
        .order_by(due_at)
    )
    return await _locked(session, query, limit)


async def overdue_requests(session: AsyncSession, now: datetime, limit: int) -> list[Request]:
    """Open requests whose decision deadline has passed, earliest deadline first."""
    query = (
        select(Request)
        .where(Request.status.in_(_OPEN), Request.decision_due_at <= now)
        .order_by(Request.decision_due_at)
    )
    return await _locked(session, query, limit)


async def grants_to_start(session: AsyncSession, now: datetime, limit: int) -> list[Grant]:
    """Scheduled grants whose window has begun, earliest start first."""
    query = (
        select(Grant)
        .where(Grant.status == GrantStatus.scheduled.value, Grant.starts_at <= now)
        .order_by(Grant.starts_at)
    )
    return await _locked(session, query, limit)


async def grants_to_end(session: AsyncSession, now: datetime, limit: int) -> list[Grant]:
    """Scheduled or active grants whose window has ended, earliest end first."""
    query = select(Grant).where(Grant.status.in_(_NOT_ENDED), Grant.ends_at <= now).order_by(Grant.ends_at)
    return await _locked(session, query, limit)


async def deletions_to_remind(
    session: AsyncSession, now: datetime, *, index: int, after: timedelta, limit: int
) -> list[Deletion]:
    """Unconfirmed deletions due at least `after` ago that have not had reminder `index` yet."""
    query = (
        select(Deletion)
        .where(
            Deletion.confirmed_at.is_(None),
            Deletion.reminders_sent <= index,
            Deletion.due_at <= now - after,
        )
        .order_by(Deletion.due_at)
    )
    return await _locked(session, query, limit)


async def deletions_to_escalate(
    session: AsyncSession, now: datetime, *, window: timedelta, limit: int
) -> list[Deletion]:
    """Unconfirmed deletions due longer than `window` ago that were not raised to the agency yet."""
    query = (
        select(Deletion)
        .where(
            Deletion.confirmed_at.is_(None),
            Deletion.escalated_at.is_(None),
            Deletion.due_at <= now - window,
        )
        .order_by(Deletion.due_at)
    )
    return await _locked(session, query, limit)


def _report_recipients(kind: ActorKind) -> tuple[type[Artist] | type[Agency], ColumnElement[bool]]:
    """The table of a kind of report recipient and what makes one reachable."""
    if kind is ActorKind.artist:
        return Artist, Artist.telegram_chat_id.is_not(None)
    if kind is ActorKind.agency:
        return Agency, Agency.slack_channel_id.is_not(None)
    raise ValueError(f"reports do not go to {kind.value}")


async def report_time_zones(session: AsyncSession, kind: ActorKind) -> list[str]:
    """The time zones of the reachable recipients of this kind."""
    table, reachable = _report_recipients(kind)
    return list((await session.execute(select(table.timezone).where(reachable).distinct())).scalars())


async def recipients_due_report(
    session: AsyncSession, kind: ActorKind, *, zone: str, fired: datetime, period: str, limit: int
) -> list[str]:
    """Ids of reachable recipients in `zone`, registered by `fired`, with no report for `period` yet."""
    table, reachable = _report_recipients(kind)
    already = select(ReportRun.recipient_id).where(
        ReportRun.recipient_kind == kind.value, ReportRun.period == period
    )
    query = (
        select(table.id)
        .where(reachable, table.timezone == zone, table.created_at <= fired, table.id.not_in(already))
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def overdue_outputs(session: AsyncSession, now: datetime, limit: int) -> list[Output]:
    """Outputs still waiting for release past their deadline, earliest first."""
    query = (
        select(Output)
        .where(Output.status == "pending", Output.release_due_at <= now)
        .order_by(Output.release_due_at)
    )
    return await _locked(session, query, limit)


async def outputs_of_ended_grants(session: AsyncSession, now: datetime, limit: int) -> list[Output]:
    """Outputs still waiting for release under a grant that ended (revoked, expired, or past its end)."""
    query = (
        select(Output)
        .join(Grant, Grant.id == Output.grant_id)
        .where(
            Output.status == "pending",
            (Grant.status.in_(["revoked", "expired"])) | (Grant.ends_at <= now),
        )
        .order_by(Output.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Output)
    )
    return list((await session.execute(query)).scalars())
