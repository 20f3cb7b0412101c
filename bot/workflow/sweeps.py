"""The sweeps (run by scheduler/): what fell due since the last pass, read from the rows' own
columns, so a restart forgets nothing and each step happens once.

Every sweep has one shape, `_sweep`: in one transaction, each pass reads its due rows and steps
each one (its state change, audit event and notices).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Actor, ActorKind, ChannelKind, GrantStatus, RequestStatus, utc_iso
from bot.workflow.deletions import allowed_ai_training, owe_deletion
from bot.workflow.desk import (
    Desk,
    announce,
    announce_grant,
    audit,
    load_view,
    tell_artist,
    tell_board,
    tell_grant_parties,
)
from bot.workflow.output_release import ENDED_REASON, LAPSED_REASON, settle_output
from storage import due
from storage.tables import Deletion, Grant, Output, Request

SWEEP_BATCH = 500

_SYSTEM = Actor(ActorKind.system, "scheduler", ChannelKind.system)

Row = TypeVar("Row", Request, Grant, Deletion, Output)
DueRows = Callable[[AsyncSession, datetime], Awaitable[list[Row]]]
Step = Callable[[AsyncSession, datetime, Row], Awaitable[None]]


async def _sweep(desk: Desk, *passes: tuple[DueRows[Row], Step[Row]]) -> int:
    """Runs each pass in one transaction: reads its due rows, then steps each; returns the rows stepped."""
    now = desk.clock.now()
    done = 0
    async with desk.db.transaction() as session:
        for due_rows, step in passes:
            for row in await due_rows(session, now):
                await step(session, now, row)
                done += 1
    return done


def _reminder_passes(
    offsets: tuple[timedelta, ...],
    due_rows: Callable[[AsyncSession, datetime, int, timedelta], Awaitable[list[Row]]],
    remind: Callable[[AsyncSession, datetime, Row, int], Awaitable[None]],
) -> list[tuple[DueRows[Row], Step[Row]]]:
    """One pass per reminder offset, latest first: a row that slept through several reminders gets
    only the one still meaningful (its `reminders_sent` then rules out the earlier ones)."""

    def reminder(index: int) -> tuple[DueRows[Row], Step[Row]]:
        async def rows(session: AsyncSession, now: datetime) -> list[Row]:
            return await due_rows(session, now, index, offsets[index])

        async def step(session: AsyncSession, now: datetime, row: Row) -> None:
            row.reminders_sent = index + 1
            await remind(session, now, row, index)

        return rows, step

    return [reminder(index) for index in reversed(range(len(offsets)))]


async def lapse_overdue_requests(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Open requests past their deadline become lapsed; cards lose their buttons; parties are told."""

    async def rows(session: AsyncSession, now: datetime) -> list[Request]:
        return await due.overdue_requests(session, now, limit)

    async def lapse(session: AsyncSession, now: datetime, request: Request) -> None:
        request.status = RequestStatus.lapsed.value
        request.updated_at = now
        await session.flush()
        await audit(session, desk, _SYSTEM, "request.lapsed", "request", request.id)
        announce(session, now, await load_view(session, request.id), "request.lapsed")

    return await _sweep(desk, (rows, lapse))


async def send_decision_reminders(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Reminds artists at each offset before the deadline, once each; the last reminder escalates."""
    offsets = desk.rules.decision_reminders

    async def rows(session: AsyncSession, now: datetime, index: int, within: timedelta) -> list[Request]:
        return await due.rows_to_remind(session, Request, now, index=index, within=within, limit=limit)

    async def remind(session: AsyncSession, now: datetime, request: Request, index: int) -> None:
        view = await load_view(session, request.id)
        last = index == len(offsets) - 1
        payload = {"due_at": utc_iso(request.decision_due_at), "index": index, "escalation": last}
        key = f"decision_reminder:{request.id}:{index}"
        tell_artist(
            session,
            now,
            view.artist,
            "decision_reminder",
            request_id=request.id,
            payload=payload,
            dedupe_key=f"{key}:artist",
        )
        if last:
            tell_board(session, now, view, "reminder.escalation", payload, dedupe_key=f"{key}:agency")
        await audit(session, desk, _SYSTEM, "reminder.decision", "request", request.id, payload)

    return await _sweep(desk, *_reminder_passes(offsets, rows, remind))


def _move_grant(desk: Desk, to: GrantStatus, action: str, *, artist_kind: str | None = None) -> Step[Grant]:
    """The step of a grant whose window began or ended: its new status, audited and announced."""

    async def step(session: AsyncSession, now: datetime, grant: Grant) -> None:
        grant.status = to.value
        grant.updated_at = now
        await audit(session, desk, _SYSTEM, action, "grant", grant.id)
        view = await load_view(session, grant.request_id)
        announce_grant(session, now, view, grant, f"grant.{to.value}", artist_kind=artist_kind)

    return step


async def activate_due_grants(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Scheduled grants whose window has begun become active; the creator and agency are told."""

    async def rows(session: AsyncSession, now: datetime) -> list[Grant]:
        return await due.grants_to_start(session, now, limit)

    return await _sweep(desk, (rows, _move_grant(desk, GrantStatus.active, "grant.activated")))


async def expire_due_grants(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Grants whose window has ended become expired; artist, agency and creator are told."""

    async def rows(session: AsyncSession, now: datetime) -> list[Grant]:
        return await due.grants_to_end(session, now, limit)

    move = _move_grant(desk, GrantStatus.expired, "grant.expired", artist_kind="grant_expired")

    async def expire(session: AsyncSession, now: datetime, grant: Grant) -> None:
        await move(session, now, grant)
        # A likeness that may have trained a model leaves a tail: the creator owes a deletion.
        if await allowed_ai_training(session, grant):
            await owe_deletion(session, desk, _SYSTEM, grant, cause="expired", due_at=grant.ends_at)

    return await _sweep(desk, (rows, expire))


async def send_grant_reminders(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Reminds artist, agency and creator before a grant ends, at each configured offset, once each."""

    async def rows(session: AsyncSession, now: datetime, index: int, within: timedelta) -> list[Grant]:
        return await due.rows_to_remind(session, Grant, now, index=index, within=within, limit=limit)

    async def remind(session: AsyncSession, now: datetime, grant: Grant, index: int) -> None:
        view = await load_view(session, grant.request_id)
        payload = {"ends_at": utc_iso(grant.ends_at), "index": index}
        tell_grant_parties(
            session,
            now,
            view,
            grant,
            key=f"grant_reminder:{grant.id}:{index}",
            artist=("grant_reminder", payload),
            agency={"event": "reminder.grant_expiry"} | payload,
            creator=("grant.expiring", payload),
        )
        await audit(session, desk, _SYSTEM, "reminder.grant_expiry", "grant", grant.id, payload)

    return await _sweep(desk, *_reminder_passes(desk.rules.grant_reminders, rows, remind))


async def send_deletion_reminders(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Reminds the creator of an unconfirmed deletion at each offset after it fell due, once each."""
    offsets = desk.rules.deletion_reminders

    async def rows(session: AsyncSession, now: datetime, index: int, after: timedelta) -> list[Deletion]:
        return await due.deletions_to_remind(session, now, index=index, after=after, limit=limit)

    async def remind(session: AsyncSession, now: datetime, deletion: Deletion, index: int) -> None:
        grant = await session.get(Grant, deletion.grant_id)
        assert grant is not None  # a deletion's grant is never removed
        view = await load_view(session, grant.request_id)
        payload = {
            "cause": deletion.cause,
            "due_at": utc_iso(deletion.due_at),
            "index": index,
            "escalates_at": utc_iso(deletion.due_at + desk.rules.deletion_window),
            "confirm_at": f"/v1/grants/{grant.id}/deletion",
        }
        key = f"deletion_reminder:{grant.id}:{index}"
        tell_grant_parties(session, now, view, grant, key=key, creator=("deletion.reminder", payload))
        await audit(session, desk, _SYSTEM, "reminder.deletion", "grant", grant.id, payload)

    return await _sweep(desk, *_reminder_passes(offsets, rows, remind))


async def escalate_overdue_deletions(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Raises a deletion still unconfirmed after DELETION_WINDOW to the agency's thread, once."""

    async def rows(session: AsyncSession, now: datetime) -> list[Deletion]:
        return await due.deletions_to_escalate(session, now, window=desk.rules.deletion_window, limit=limit)

    async def escalate(session: AsyncSession, now: datetime, deletion: Deletion) -> None:
        deletion.escalated_at = now
        grant = await session.get(Grant, deletion.grant_id)
        assert grant is not None
        view = await load_view(session, grant.request_id)
        payload = {"cause": deletion.cause, "due_at": utc_iso(deletion.due_at)}
        key = f"deletion.escalation:{grant.id}"
        tell_grant_parties(
            session, now, view, grant, key=key, agency={"event": "deletion.escalation"} | payload
        )
        await audit(session, desk, _SYSTEM, "deletion.escalated", "grant", grant.id, payload)

    return await _sweep(desk, (rows, escalate))


async def reject_overdue_outputs(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Outputs nobody released by their deadline, or whose grant ended, are rejected; the creator is told."""

    async def rows(session: AsyncSession, now: datetime) -> list[Output]:
        return await due.overdue_outputs(session, now, limit)

    async def reject(session: AsyncSession, now: datetime, output: Output) -> None:
        await settle_output(session, desk, now, output, actor=_SYSTEM, release=False, reason=LAPSED_REASON)

    async def ended(session: AsyncSession, now: datetime) -> list[Output]:
        return await due.outputs_of_ended_grants(session, now, limit)

    async def reject_ended(session: AsyncSession, now: datetime, output: Output) -> None:
        await settle_output(session, desk, now, output, actor=_SYSTEM, release=False, reason=ENDED_REASON)

    # Outputs under a consent that ended can never be released: rejected at once, not at their deadline.
    return await _sweep(desk, (ended, reject_ended), (rows, reject))


async def send_output_reminders(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Reminds artists of outputs waiting for release, at the decision reminders' offsets."""

    async def rows(session: AsyncSession, now: datetime, index: int, within: timedelta) -> list[Output]:
        return await due.rows_to_remind(session, Output, now, index=index, within=within, limit=limit)

    async def remind(session: AsyncSession, now: datetime, output: Output, index: int) -> None:
        view = await load_view(session, output.request_id)
        payload = {"output_id": output.id, "due_at": utc_iso(output.release_due_at), "index": index}
        tell_artist(
            session,
            now,
            view.artist,
            "output_reminder",
            request_id=output.request_id,
            grant_id=output.grant_id,
            payload=payload,
            dedupe_key=f"output_reminder:{output.id}:{index}",
        )
        await audit(session, desk, _SYSTEM, "reminder.output", "output", output.id, payload)

    return await _sweep(desk, *_reminder_passes(desk.rules.decision_reminders, rows, remind))


async def run_sweeps(desk: Desk) -> dict[str, int]:
    """One pass of every sweep, in the order that keeps reminders meaningful."""
    done = {
        "lapsed": await lapse_overdue_requests(desk),
        "decision_reminders": await send_decision_reminders(desk),
        "activated": await activate_due_grants(desk),
        "expired": await expire_due_grants(desk),
        "grant_reminders": await send_grant_reminders(desk),
        "deletion_reminders": await send_deletion_reminders(desk),
        "deletion_escalations": await escalate_overdue_deletions(desk),
        "output_reminders": await send_output_reminders(desk),
        "outputs_rejected": await reject_overdue_outputs(desk),
    }
    if any(done.values()):
        desk.committed()
    return done
