"""The inbox on both databases: an arrival is stored once, handled once, taken over when its
handler died, never by two instances at once, and forgotten a day after it was handled."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import func, select

from bot import workflow
from bot.clock import FrozenClock
from bot.models import Actor, ActorKind, ChannelKind, Outcome
from bot.workflow import Desk
from bot.workflow.inbox import LEASE, Arrival
from sandbox.factories import make_parties, submit
from storage.database import Database
from storage.tables import AuditEvent, Decision, InboxItem, Request


def tap(update_id: int) -> Arrival:
    """A Telegram update as the inbox keeps it."""
    return Arrival(f"telegram:7:{update_id}", "telegram", "update", {"update_id": update_id})


async def decision_and_events(desk: Desk, request_id: str) -> tuple[int, int]:
    """How many decisions a request has, and how many decision events (recorded or refused)."""
    async with desk.db.read() as session:
        decisions = await session.scalar(
            select(func.count()).select_from(Decision).where(Decision.request_id == request_id)
        )
        events = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.subject_id == request_id, AuditEvent.action.like("decision.%"))
        )
    return int(decisions or 0), int(events or 0)


async def approval(desk: Desk) -> tuple[str, Actor, str]:
    """A pending request, its artist as the actor, and the terms hash a tap on its card carries."""
    parties = await make_parties(desk)
    submitted = await submit(desk, parties)
    request_id = submitted.view.request.id
    async with desk.db.read() as session:
        request = await session.get(Request, request_id)
    assert request is not None
    return request_id, Actor(ActorKind.artist, parties.artist_id, ChannelKind.telegram), request.terms_hash


async def test_an_arrival_repeated_by_the_platform_is_new_only_once(desk: Desk) -> None:
    first = await workflow.inbox.receive(desk, [tap(1), tap(2)])
    again = await workflow.inbox.receive(desk, [tap(2), tap(3)])

    assert first == {tap(1).key, tap(2).key}
    assert again == {tap(3).key}


async def test_a_handled_arrival_is_done_in_the_decisions_own_commit_and_a_replay_changes_nothing(
    desk: Desk,
) -> None:
    request_id, artist, terms_hash = await approval(desk)
    await workflow.inbox.receive(desk, [tap(10)])

    async def work() -> None:
        await workflow.decide(
            desk, request_id=request_id, actor=artist, outcome=Outcome.approve, terms_hash=terms_hash
        )

    await workflow.inbox.handle_arrival(desk, tap(10).key, work)
    # A run that died after the decision committed finds nothing to take over at start-up...
    assert await workflow.inbox.take_unfinished(desk, "telegram", at_start=True) == []
    # ...and one that handles it anyway (its claim had run out) changes nothing.
    await workflow.inbox.handle_arrival(desk, tap(10).key, work)

    assert await decision_and_events(desk, request_id) == (1, 1)


async def test_a_refused_decision_marks_the_arrival_done_with_its_audit_event(desk: Desk) -> None:
    request_id, artist, _terms = await approval(desk)
    await workflow.inbox.receive(desk, [tap(11)])

    async def stale_tap() -> None:
        try:
            await workflow.decide(
                desk, request_id=request_id, actor=artist, outcome=Outcome.approve, terms_hash="0" * 64
            )
        except workflow.Refused:
            pass

    await workflow.inbox.handle_arrival(desk, tap(11).key, stale_tap)
    await workflow.inbox.handle_arrival(desk, tap(11).key, stale_tap)

    assert await decision_and_events(desk, request_id) == (0, 1)


async def test_what_a_dead_handler_left_is_taken_at_start_or_once_its_claim_ran_out(
    desk: Desk, clock: FrozenClock
) -> None:
    await workflow.inbox.receive(desk, [tap(20)])  # stored; the process died before handling it

    at_start = await workflow.inbox.take_unfinished(desk, "telegram", at_start=True)
    if desk.db.supports_skip_locked:
        # Several instances: the claim may be a live one's, so only an expired claim is taken.
        assert at_start == []
        clock.advance(LEASE)
        at_start = await workflow.inbox.take_unfinished(desk, "telegram")
    assert [a.key for a in at_start] == [tap(20).key]
    assert await workflow.inbox.take_unfinished(desk, "telegram") == []  # now claimed again
    assert await workflow.inbox.take_unfinished(desk, "slack") == []


async def test_two_instances_taking_over_at_once_never_take_the_same_arrival(
    desk: Desk, clock: FrozenClock, db_url: str
) -> None:
    await workflow.inbox.receive(desk, [tap(n) for n in range(30, 60)])
    clock.advance(LEASE)
    other = dataclasses.replace(desk, db=Database(db_url))
    try:
        mine, theirs = await asyncio.gather(
            workflow.inbox.take_unfinished(desk, "telegram"),
            workflow.inbox.take_unfinished(other, "telegram"),
        )
    finally:
        await other.db.dispose()

    keys = [a.key for a in mine] + [a.key for a in theirs]
    assert sorted(keys) == sorted(tap(n).key for n in range(30, 60))


async def test_two_instances_handling_one_arrival_at_once_decide_once(desk: Desk, db_url: str) -> None:
    request_id, artist, terms_hash = await approval(desk)
    await workflow.inbox.receive(desk, [tap(70)])
    other = dataclasses.replace(desk, db=Database(db_url))

    def work(on: Desk) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                await workflow.decide(
                    on, request_id=request_id, actor=artist, outcome=Outcome.approve, terms_hash=terms_hash
                )
            except workflow.Refused:
                pass

        return run

    try:
        await asyncio.gather(
            workflow.inbox.handle_arrival(desk, tap(70).key, work(desk)),
            workflow.inbox.handle_arrival(other, tap(70).key, work(other)),
        )
    finally:
        await other.db.dispose()

    assert await decision_and_events(desk, request_id) == (1, 1)


async def test_handled_arrivals_are_forgotten_after_a_day_unfinished_ones_kept(
    desk: Desk, clock: FrozenClock
) -> None:
    await workflow.inbox.receive(desk, [tap(80), tap(81)])

    async def nothing() -> None:
        return None

    await workflow.inbox.handle_arrival(desk, tap(80).key, nothing)
    clock.advance(timedelta(days=1))
    assert await workflow.inbox.prune_inbox(desk) == 0
    clock.advance(timedelta(seconds=1))
    assert await workflow.inbox.prune_inbox(desk) == 1

    async with desk.db.read() as session:
        left = list(await session.scalars(select(InboxItem.key)))
    assert left == [tap(81).key]


async def test_a_handled_arrival_keeps_its_key_but_not_its_content(desk: Desk) -> None:
    await workflow.inbox.receive(desk, [Arrival("telegram:7:90", "telegram", "update", {"text": "Li Wei"})])

    async def nothing() -> None:
        return None

    await workflow.inbox.handle_arrival(desk, "telegram:7:90", nothing)

    async with desk.db.read() as session:
        row = await session.get(InboxItem, "telegram:7:90")
    assert row is not None and row.done_at is not None and row.payload == {}
