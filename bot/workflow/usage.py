"""Usage reports from creators: each use judged against every term the artist approved, stored,
and, when it breaks one, told at once to the artist, the agency and the creator."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import metrics
from bot.models import (
    CLOCK_SKEW,
    Actor,
    ActorKind,
    ChannelKind,
    FieldError,
    UsageIn,
    judge_use,
    utc_iso,
)
from bot.workflow.decisions import agency_may_withdraw
from bot.workflow.desk import (
    Desk,
    audit,
    load_creators_grant,
    load_view,
    new_id,
    tell_grant_parties,
    transition,
)
from bot.workflow.errors import InvalidInput
from bot.workflow.grants import grant_status_at
from bot.workflow.idempotency import Idempotency, remember_answer, replayed_row
from bot.workflow.outputs import released_outputs
from storage.queries import RequestView
from storage.tables import Artist, Grant, Request, UsageEvent


@dataclass(frozen=True)
class UsageRecorded:
    """A stored usage event; `event.violation` (with its id and reasons) when it broke a term."""

    event: UsageEvent
    replayed: bool = False


async def record_usage(
    desk: Desk, *, creator_id: str, grant_id: str, usage: UsageIn, idempotency: Idempotency | None = None
) -> UsageRecorded:
    """Stores a creator's usage report, judged against every approved term at the grant's status
    when it happened; a use that breaks any is a violation told to artist, agency and creator."""
    missing = usage.missing_fields()
    if missing:
        # A body that does not say what the use is: refused before any transaction, so it leaves
        # no trace at all (no row, no audit event).
        raise InvalidInput(missing)
    actor = Actor(ActorKind.creator, creator_id, ChannelKind.api)
    now = desk.clock.now()
    async with transition(desk, actor, "usage.record", "grant", grant_id) as session:
        replayed = await replayed_row(session, creator_id, idempotency, UsageEvent)
        if replayed is not None:
            return UsageRecorded(replayed, replayed=True)
        grant = await load_creators_grant(session, grant_id, creator_id)
        # The artist's row orders this use against a pause or resume; then the grant as it is now.
        await session.get(Artist, grant.artist_id, with_for_update=True, populate_existing=True)
        await session.refresh(grant)
        occurred = usage.occurred_at or now
        if occurred > now + CLOCK_SKEW:
            raise InvalidInput([FieldError("occurred_at", "must not be in the future")])
        status = grant_status_at(grant, occurred)
        request = await session.get(Request, grant.request_id)
        assert request is not None  # a grant's request is never deleted
        released = await released_outputs(session, grant.id) if request.terms.get("preview_required") else ()
        reasons = [reason.value for reason in judge_use(request.terms, usage, status, released)]
        event = UsageEvent(
            id=new_id("use"),
            grant_id=grant.id,
            creator_id=creator_id,
            artist_id=grant.artist_id,
            kind=usage.kind.value,
            count=usage.count,
            note=usage.note,
            media=usage.media.value if usage.media is not None else None,
            territory=usage.territory,
            likeness=[part.value for part in usage.likeness] if usage.likeness is not None else None,
            output_sha256=usage.output_sha256,
            violation=bool(reasons),
            violation_id=new_id("vio") if reasons else None,
            reasons=reasons,
            grant_status=status.value,
            occurred_at=occurred,
            received_at=now,
        )
        session.add(event)
        await session.flush()
        if reasons:
            await audit(session, desk, actor, "usage.violation", "grant", grant.id, violation_data(event))
            tell_violation(session, now, await load_view(session, grant.request_id), grant, event)
        remember_answer(session, now, creator_id, idempotency, "usage", event.id, 409 if reasons else 201)
    if reasons:
        metrics.VIOLATIONS.inc()
    return UsageRecorded(event)


def violation_data(event: UsageEvent) -> dict[str, Any]:
    """What a violation is, as its audit event, its notices and the creator's webhook carry it."""
    return {
        "usage_id": event.id,
        "violation_id": event.violation_id,
        "reasons": list(event.reasons),
        "kind": event.kind,
        "count": event.count,
        "media": event.media,
        "territory": event.territory,
        "likeness": event.likeness,
        "grant_status": event.grant_status,
        "output_sha256": event.output_sha256,
        "occurred_at": utc_iso(event.occurred_at),
    }


def tell_violation(
    session: AsyncSession, now: datetime, view: RequestView, grant: Grant, event: UsageEvent
) -> None:
    """Tells everyone whose consent a use breaks, in the transaction that stores it: the artist in
    Telegram (with Revoke), the agency in the request's thread (Revoke on behalf where the policy
    lets it decide), the creator by webhook `usage.violation`; each violation every time."""
    data = violation_data(event)
    tell_grant_parties(
        session,
        now,
        view,
        grant,
        artist=("violation", data),
        agency={"event": "usage.violation", "agency_may_revoke": agency_may_withdraw(view)} | data,
        creator=("usage.violation", data),
    )
