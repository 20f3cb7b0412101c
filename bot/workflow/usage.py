"""Usage reports from creators: stored, and raised to the agency as a violation when the grant
was not active at the moment of use."""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import CLOCK_SKEW, Actor, ActorKind, ChannelKind, FieldError, GrantStatus, UsageIn
from bot.workflow.desk import Desk, audit, load_view, new_id, tell_agency, transition
from bot.workflow.errors import InvalidInput, NotFound
from bot.workflow.grants import grant_status_at
from bot.workflow.idempotency import Idempotency, idempotent_replay, remember_answer
from storage.tables import Artist, Grant, UsageEvent


@dataclass(frozen=True)
class UsageRecorded:
    """A stored usage event; `violation` when the grant was not active."""

    event: UsageEvent
    replayed: bool = False


async def record_usage(
    desk: Desk, *, creator_id: str, grant_id: str, usage: UsageIn, idempotency: Idempotency | None = None
) -> UsageRecorded:
    """Stores a creator's usage report; outside an active grant it is a violation raised to the agency."""
    actor = Actor(ActorKind.creator, creator_id, ChannelKind.api)
    now = desk.clock.now()
    async with transition(desk, actor, "usage.record", "grant", grant_id) as session:
        replay = await idempotent_replay(session, creator_id, idempotency)
        if replay is not None:
            event = await session.get(UsageEvent, replay.resource_id)
            assert event is not None
            return UsageRecorded(event, replayed=True)
        grant = await session.get(Grant, grant_id)
        if grant is None or grant.creator_id != creator_id:
            raise NotFound(f"no grant {grant_id}")
        # The artist's row orders this use against a pause or resume; then the grant as it is now.
        await session.get(Artist, grant.artist_id, with_for_update=True, populate_existing=True)
        await session.refresh(grant)
        occurred = usage.occurred_at or now
        if occurred > now + CLOCK_SKEW:
            raise InvalidInput([FieldError("occurred_at", "must not be in the future")])
        status = grant_status_at(grant, occurred)
        violation = status is not GrantStatus.active
        event = UsageEvent(
            id=new_id("use"),
            grant_id=grant.id,
            creator_id=creator_id,
            artist_id=grant.artist_id,
            kind=usage.kind.value,
            count=usage.count,
            note=usage.note,
            violation=violation,
            grant_status=status.value,
            occurred_at=occurred,
            received_at=now,
        )
        session.add(event)
        await session.flush()
        if violation:
            await audit(
                session,
                desk,
                actor,
                "usage.violation",
                "grant",
                grant.id,
                {
                    "usage_id": event.id,
                    "grant_status": status.value,
                    "kind": usage.kind.value,
                    "count": usage.count,
                },
            )
            view = await load_view(session, grant.request_id)
            tell_agency(
                session,
                now,
                view.agency,
                "board_update",
                request_id=grant.request_id,
                grant_id=grant.id,
                payload={
                    "event": "usage.violation",
                    "usage_id": event.id,
                    "kind": usage.kind.value,
                    "count": usage.count,
                    "grant_status": status.value,
                },
            )
        remember_answer(session, now, creator_id, idempotency, "usage", event.id, 409 if violation else 201)
        return UsageRecorded(event)
    raise AssertionError("unreachable")  # pragma: no cover
