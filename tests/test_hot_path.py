"""The decision and submission paths' statement shape, on SQLite and PostgreSQL: the request view
read once, a step's audit events in one INSERT, its notices in one INSERT, and a refused step
that leaves only its refusal on the chain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot import workflow
from bot.clock import FrozenClock
from bot.models import Actor, ActorKind, ChannelKind, Outcome
from bot.workflow import Desk
from sandbox.factories import make_parties, submit
from storage.audit import verify_chain
from storage.tables import AuditEvent, Notice
from tests.conftest import open_desk, statements


def starting(seen: list[str], prefix: str) -> list[str]:
    return [s for s in seen if s.upper().startswith(prefix.upper())]


async def linked(desk: Desk) -> tuple[Any, str]:
    parties = await make_parties(desk, webhook_url="http://127.0.0.1:9/hook")
    token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=parties.artist_id)
    await workflow.redeem_invite(desk, token=token, telegram_user_id=7001, chat_id=7001)
    submitted = await submit(desk, parties)
    return parties, submitted.view.request.id


async def test_an_approval_reads_the_view_once_and_writes_events_and_notices_in_one_statement_each(
    desk: Desk,
) -> None:
    parties, request_id = await linked(desk)
    with statements(desk) as seen:
        decided = await workflow.decide(
            desk,
            request_id=request_id,
            actor=parties.artist(),
            outcome=Outcome.approve,
            terms_seen=None,
        )
    assert decided.view.request.status == "approved" and decided.view.grant is not None
    assert len(starting(seen, "SELECT requests.id")) == 1  # the joined view row, once
    assert len(starting(seen, "SELECT decisions")) == 1
    assert len(starting(seen, "INSERT INTO audit_events")) == 1  # decision + grant events together
    assert len(starting(seen, "UPDATE audit_head")) == 1
    assert len(starting(seen, "INSERT INTO notices")) == 1  # card, board and webhook together
    assert not starting(seen, "SAVEPOINT")
    async with desk.db.read() as session:
        actions = (
            await session.execute(select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(2))
        ).scalars()
        assert sorted(actions) == ["decision.approve", "grant.created"]
        kinds = (await session.execute(select(Notice.kind).where(Notice.request_id == request_id))).scalars()
        assert {"card_update", "board_update", "status"} <= set(kinds)
        assert (await verify_chain(session)).intact


async def test_a_refused_decision_writes_only_its_refusal_and_the_chain_holds(desk: Desk) -> None:
    _parties, request_id = await linked(desk)
    stranger = Actor(ActorKind.artist, "art_someone_else", ChannelKind.telegram)
    async with desk.db.read() as session:
        before = (await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one()
        notices_before = (await session.execute(select(func.count()).select_from(Notice))).scalar_one()
    with pytest.raises(workflow.NotAllowed):
        await workflow.decide(
            desk, request_id=request_id, actor=stranger, outcome=Outcome.approve, terms_seen=None
        )
    async with desk.db.read() as session:
        events = list((await session.execute(select(AuditEvent).where(AuditEvent.seq > before))).scalars())
        assert [e.action for e in events] == ["decision.approve.refused"]
        assert (await session.execute(select(func.count()).select_from(Notice))).scalar_one() == (
            notices_before
        )
        assert (await verify_chain(session)).intact


async def test_a_button_showing_other_terms_is_refused_inside_the_decision(desk: Desk) -> None:
    parties, request_id = await linked(desk)
    with pytest.raises(workflow.TermsChanged):
        await workflow.decide(
            desk, request_id=request_id, actor=parties.artist(), outcome=Outcome.approve, terms_seen="00ff"
        )


async def test_a_submission_writes_its_event_and_notices_in_one_statement_each(desk: Desk) -> None:
    parties = await make_parties(desk, webhook_url="http://127.0.0.1:9/hook")
    with statements(desk) as seen:
        submitted = await submit(desk, parties)
    assert submitted.view.request.status == "pending"
    assert len(starting(seen, "INSERT INTO requests")) == 1
    assert len(starting(seen, "INSERT INTO audit_events")) == 1
    assert len(starting(seen, "INSERT INTO notices")) == 1  # board post and creator status together


async def test_a_step_after_this_process_own_moves_the_head_without_reading_it(desk: Desk) -> None:
    parties = await make_parties(desk, webhook_url="http://127.0.0.1:9/hook")
    await submit(desk, parties)
    with statements(desk) as seen:
        await submit(desk, parties)
    assert not starting(seen, "SELECT audit_head")
    assert len(starting(seen, "UPDATE audit_head")) == 1


async def test_a_head_moved_by_another_writer_is_read_afresh_and_the_chain_holds(
    desk: Desk, migrated_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    parties = await make_parties(desk, webhook_url="http://127.0.0.1:9/hook")
    await submit(desk, parties)
    # Another instance (or a `likeness` command) appends through a database connection of its own.
    async with open_desk(migrated_url, clock, tmp_path / "other") as other:
        await submit(other, parties)
    with statements(desk) as seen:
        await submit(desk, parties)
    assert len(starting(seen, "SELECT audit_head")) == 1  # the guess missed: read and locked
    assert len(starting(seen, "UPDATE audit_head")) == 2  # the guess, then the move
    async with desk.db.read() as session:
        report = await verify_chain(session)
        seqs = list((await session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq))).scalars())
    assert report.intact
    assert seqs == list(range(1, len(seqs) + 1))
