"""The lifecycle on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from bot import workflow
from bot.clock import FrozenClock
from bot.models import (
    Actor,
    ActorKind,
    ChannelKind,
    Likeness,
    Media,
    Outcome,
    Policy,
    RedLines,
    Sensitive,
    UsageIn,
    UsageKind,
)
from bot.receipts import parse_keys_document, verify_receipt
from bot.workflow import Desk
from sandbox.factories import make_parties, submit
from storage.audit import verify_chain
from storage.tables import AuditEvent, Base, Decision, Grant, Notice, Request


async def row_counts(desk: Desk) -> dict[str, int]:
    """How many rows each table holds."""
    async with desk.db.transaction() as session:
        return {
            name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for name, table in Base.metadata.tables.items()
        }


async def notices(desk: Desk, request_id: str) -> list[tuple[str, str, str]]:
    """(channel, recipient kind, notice kind) of a request's notices, in order."""
    async with desk.db.transaction() as session:
        rows = await session.execute(
            select(Notice.channel, Notice.recipient_kind, Notice.kind)
            .where(Notice.request_id == request_id)
            .order_by(Notice.created_at, Notice.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


async def link_artist(desk: Desk, artist_id: str, telegram_user_id: int = 5001) -> None:
    """Links the artist's Telegram chat so cards can be sent."""
    token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=artist_id)
    await workflow.redeem_invite(
        desk, token=token, telegram_user_id=telegram_user_id, chat_id=telegram_user_id
    )


async def approve(desk: Desk, request_id: str, actor: Actor, **kw: object) -> workflow.Decided:
    async with desk.db.transaction() as session:
        terms_hash = (await session.get(Request, request_id)).terms_hash  # type: ignore[union-attr]
    return await workflow.decide(
        desk,
        request_id=request_id,
        actor=actor,
        outcome=Outcome.approve,
        terms_hash=terms_hash,
        **kw,  # type: ignore[arg-type]
    )


async def deny(desk: Desk, request_id: str, actor: Actor, reason: str | None = None) -> workflow.Decided:
    async with desk.db.transaction() as session:
        terms_hash = (await session.get(Request, request_id)).terms_hash  # type: ignore[union-attr]
    return await workflow.decide(
        desk, request_id=request_id, actor=actor, outcome=Outcome.deny, terms_hash=terms_hash, reason=reason
    )


async def test_submission_is_pending_and_queues_card_board_post_and_creator_update(desk: Desk) -> None:
    parties = await make_parties(desk, webhook_url="http://127.0.0.1:9/hook")
    await link_artist(desk, parties.artist_id)
    submitted = await submit(desk, parties)
    assert submitted.view.request.status == "pending"
    assert len(submitted.view.request.terms_hash) == 64
    assert sorted(await notices(desk, submitted.view.request.id)) == [
        ("slack", "agency", "board_post"),
        ("telegram", "artist", "card"),
        ("webhook", "creator", "status"),
    ]


async def test_cards_wait_for_the_artist_to_link_telegram(desk: Desk) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties)
    assert ("telegram", "artist", "card") not in await notices(desk, submitted.view.request.id)
    await link_artist(desk, parties.artist_id)
    assert ("telegram", "artist", "card") in await notices(desk, submitted.view.request.id)


async def test_red_line_denies_at_once_and_the_artist_gets_no_card(desk: Desk) -> None:
    parties = await make_parties(desk, red_lines=RedLines(sensitive=[Sensitive.political]))
    await link_artist(desk, parties.artist_id)
    submitted = await submit(desk, parties, sensitive=["political"])
    assert submitted.view.request.status == "denied"
    assert submitted.view.request.reason == "red line"
    assert all(kind != "card" for _, _, kind in await notices(desk, submitted.view.request.id))


async def test_artist_approval_creates_a_grant_with_a_valid_signed_receipt(desk: Desk) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties)
    decided = await approve(desk, submitted.view.request.id, parties.artist())
    assert decided.view.request.status == "approved"
    grant = decided.view.grant
    assert grant is not None and grant.status == "scheduled"
    receipt = grant.receipt
    assert receipt["terms_hash"] == submitted.view.request.terms_hash
    assert receipt["decisions"][0]["actor_kind"] == "artist"
    verify_receipt(receipt, parse_keys_document(desk.signer.public_keys_document()))


async def test_a_grant_never_starts_before_its_approval(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties, starts_at=(clock.now() - timedelta(minutes=3)).isoformat())
    clock.advance(timedelta(hours=1))
    decided = await approve(desk, submitted.view.request.id, parties.artist())
    assert decided.view.grant is not None
    assert decided.view.grant.starts_at == clock.now()
    assert decided.view.grant.status == "active"


async def test_deny_records_the_reason(desk: Desk) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties)
    decided = await deny(desk, submitted.view.request.id, parties.artist(), reason="not my style")
    assert decided.view.request.status == "denied"
    assert decided.view.request.reason == "not my style"
    assert decided.view.grant is None


async def test_a_second_decision_is_refused_audited_and_changes_nothing_else(desk: Desk) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties)
    await approve(desk, submitted.view.request.id, parties.artist())
    before = await row_counts(desk)
    with pytest.raises(workflow.AlreadyDecided) as refusal:
        await deny(desk, submitted.view.request.id, parties.artist())
    after = await row_counts(desk)
    assert refusal.value.details["decided_by"] == "artist"
    assert after == before | {"audit_events": before["audit_events"] + 1}
    async with desk.db.transaction() as session:
        last = (
            await session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        ).scalar_one()
    assert last.action == "decision.deny.refused"


async def test_decisions_after_lapse_or_withdrawal_are_refused(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk)
    lapsing = await submit(desk, parties)
    withdrawn = await submit(desk, parties)
    await workflow.withdraw_request(desk, creator_id=parties.creator_id, request_id=withdrawn.view.request.id)
    clock.advance(timedelta(hours=73))
    assert await workflow.lapse_overdue_requests(desk) == 1
    with pytest.raises(workflow.NotOpen, match="lapsed"):
        await approve(desk, lapsing.view.request.id, parties.artist())
    with pytest.raises(workflow.NotOpen, match="withdrawn"):
        await approve(desk, withdrawn.view.request.id, parties.artist())


async def test_withdrawing_twice_is_refused(desk: Desk) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties)
    await workflow.withdraw_request(desk, creator_id=parties.creator_id, request_id=submitted.view.request.id)
    with pytest.raises(workflow.NotOpen):
        await workflow.withdraw_request(
            desk, creator_id=parties.creator_id, request_id=submitted.view.request.id
        )


async def test_another_artist_cannot_decide(desk: Desk) -> None:
    parties = await make_parties(desk)
    other = await workflow.add_artist(desk, name="Someone Else")
    submitted = await submit(desk, parties)
    stranger = Actor(ActorKind.artist, other.id, ChannelKind.telegram)
    with pytest.raises(workflow.NotAllowed):
        await approve(desk, submitted.view.request.id, stranger)


async def test_agency_cannot_decide_for_an_artist_only_artist(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.artist_only)
    submitted = await submit(desk, parties)
    with pytest.raises(workflow.NotAllowed, match="artist_only"):
        await approve(desk, submitted.view.request.id, parties.agency())


async def test_agency_may_decide_when_policy_allows(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    submitted = await submit(desk, parties)
    decided = await approve(desk, submitted.view.request.id, parties.agency())
    assert decided.view.request.status == "approved"
    assert decided.decision.actor_id == parties.member


async def test_an_unlisted_agency_member_cannot_act(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    submitted = await submit(desk, parties)
    with pytest.raises(workflow.NotAllowed, match="members"):
        await approve(desk, submitted.view.request.id, parties.agency(member="U999"))


async def test_ai_training_is_never_approved_by_the_agency_but_may_be_denied(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    submitted = await submit(desk, parties, ai_training=True)
    with pytest.raises(workflow.NotAllowed, match="AI training"):
        await approve(desk, submitted.view.request.id, parties.agency())
    decided = await deny(desk, submitted.view.request.id, parties.agency(), reason="no training")
    assert decided.view.request.status == "denied"


async def test_ai_training_approval_needs_the_artists_explicit_confirmation(desk: Desk) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties, ai_training=True)
    with pytest.raises(workflow.NeedsConfirmation):
        await approve(desk, submitted.view.request.id, parties.artist())
    decided = await approve(desk, submitted.view.request.id, parties.artist(), ai_training_confirmed=True)
    assert decided.view.request.status == "approved"
    assert decided.view.grant is not None
    assert decided.view.grant.receipt["decisions"][0]["ai_training_confirmed"] is True


async def test_both_required_waits_for_the_cosignature(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.both_required)
    submitted = await submit(desk, parties)
    first = await approve(desk, submitted.view.request.id, parties.agency())
    assert first.view.request.status == "awaiting_cosign"
    assert first.view.grant is None
    second = await approve(desk, submitted.view.request.id, parties.artist())
    assert second.view.request.status == "approved"
    assert second.view.grant is not None
    assert {d["actor_kind"] for d in second.view.grant.receipt["decisions"]} == {"artist", "agency"}


async def test_both_required_either_party_may_deny_after_the_other_approved(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.both_required)
    submitted = await submit(desk, parties)
    await approve(desk, submitted.view.request.id, parties.artist())
    decided = await deny(desk, submitted.view.request.id, parties.agency(), reason="fee too low")
    assert decided.view.request.status == "denied"


async def test_revocation_ends_the_grant_and_tells_the_creator_to_stop_and_delete(desk: Desk) -> None:
    parties = await make_parties(desk, webhook_url="http://127.0.0.1:9/hook")
    submitted = await submit(desk, parties)
    decided = await approve(desk, submitted.view.request.id, parties.artist())
    assert decided.view.grant is not None
    grant = await workflow.revoke_grant(desk, grant_id=decided.view.grant.id, actor=parties.artist())
    assert grant.status == "revoked"
    async with desk.db.transaction() as session:
        payloads = [
            n.payload
            for n in (await session.execute(select(Notice).where(Notice.grant_id == grant.id))).scalars()
            if n.recipient_kind == "creator"
        ]
    revoked = [p for p in payloads if p["event"] == "grant.revoked"]
    assert revoked and revoked[-1]["stop_use"] is True and revoked[-1]["confirm_deletion"] is True
    assert [p["event"] for p in payloads][-2:] == ["grant.revoked", "deletion.due"]


async def test_usage_outside_an_active_grant_is_stored_as_a_violation(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties)
    decided = await approve(desk, submitted.view.request.id, parties.artist())
    assert decided.view.grant is not None
    grant_id = decided.view.grant.id

    async def use(usage: UsageIn) -> workflow.UsageRecorded:
        return await workflow.record_usage(
            desk, creator_id=parties.creator_id, grant_id=grant_id, usage=usage
        )

    early = await use(UsageIn(kind=UsageKind.render, likeness=[Likeness.face]))
    assert early.event.violation and early.event.grant_status == "scheduled"
    clock.advance(timedelta(days=2))
    fine = await use(UsageIn(kind=UsageKind.publish, count=3, media=Media.series, territory=["CN"]))
    assert not fine.event.violation
    await workflow.revoke_grant(desk, grant_id=grant_id, actor=parties.artist())
    late = await use(UsageIn(kind=UsageKind.train, likeness=[Likeness.face]))
    assert late.event.violation and late.event.grant_status == "revoked"
    assert late.event.reasons == ["grant_not_active", "ai_training_not_granted"]


async def test_exactly_one_of_many_simultaneous_decisions_wins(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    submitted = await submit(desk, parties)
    request_id = submitted.view.request.id
    attempts = [approve(desk, request_id, parties.artist()) for _ in range(5)]
    attempts += [deny(desk, request_id, parties.agency()) for _ in range(5)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [r for r in results if isinstance(r, workflow.Decided)]
    losers = [r for r in results if isinstance(r, workflow.AlreadyDecided)]
    assert len(winners) == 1
    assert len(losers) == 9
    async with desk.db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Decision))).scalar_one() == 1
        grants = (await session.execute(select(func.count()).select_from(Grant))).scalar_one()
    assert grants == (1 if winners[0].view.request.status == "approved" else 0)
    async with desk.db.transaction() as session:
        assert (await verify_chain(session)).intact


async def test_decision_reminders_are_sent_once_at_each_offset_and_the_last_escalates(
    desk: Desk, clock: FrozenClock
) -> None:
    parties = await make_parties(desk)
    await link_artist(desk, parties.artist_id)
    submitted = await submit(desk, parties)  # due in 72 h
    assert await workflow.send_decision_reminders(desk) == 0
    clock.advance(timedelta(hours=48, minutes=1))
    assert await workflow.send_decision_reminders(desk) == 1
    assert await workflow.send_decision_reminders(desk) == 0
    clock.advance(timedelta(hours=22))
    assert await workflow.send_decision_reminders(desk) == 1
    assert await workflow.send_decision_reminders(desk) == 0
    kinds = await notices(desk, submitted.view.request.id)
    assert kinds.count(("telegram", "artist", "decision_reminder")) == 2
    assert ("slack", "agency", "board_update") in kinds


async def test_after_downtime_only_the_reminder_that_still_makes_sense_is_sent(
    desk: Desk, clock: FrozenClock
) -> None:
    parties = await make_parties(desk)
    await link_artist(desk, parties.artist_id)
    submitted = await submit(desk, parties)
    clock.advance(timedelta(hours=71))  # both the 24 h and the 2 h moments passed while we were down
    assert await workflow.send_decision_reminders(desk) == 1
    kinds = await notices(desk, submitted.view.request.id)
    assert kinds.count(("telegram", "artist", "decision_reminder")) == 1


async def test_grants_activate_and_expire_on_their_window(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk)
    submitted = await submit(
        desk,
        parties,
        starts_at=(clock.now() + timedelta(minutes=10)).isoformat(),
        ends_at=(clock.now() + timedelta(minutes=10, seconds=90)).isoformat(),
        decision_due_at=(clock.now() + timedelta(minutes=5)).isoformat(),
    )
    decided = await approve(desk, submitted.view.request.id, parties.artist())
    assert decided.view.grant is not None and decided.view.grant.status == "scheduled"
    clock.advance(timedelta(minutes=10))
    assert await workflow.activate_due_grants(desk) == 1
    clock.advance(timedelta(seconds=90))
    assert await workflow.expire_due_grants(desk) == 1
    assert await workflow.expire_due_grants(desk) == 0
    async with desk.db.transaction() as session:
        grant = await session.get(Grant, decided.view.grant.id)
    assert grant is not None and grant.status == "expired"


async def test_audit_chain_verifies_and_detects_editing_removal_and_reordering(desk: Desk) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties)
    await approve(desk, submitted.view.request.id, parties.artist())
    async with desk.db.transaction() as session:
        report = await verify_chain(session)
    assert report.intact and report.checked >= 5

    async with desk.db.transaction() as session:
        await session.execute(text("UPDATE audit_events SET actor_id = 'mallory' WHERE seq = 3"))
        assert (await verify_chain(session)).bad_seq == 3
        await session.rollback()
    async with desk.db.transaction() as session:
        await session.execute(text("DELETE FROM audit_events WHERE seq = 2"))
        assert (await verify_chain(session)).bad_seq == 2
        await session.rollback()
    async with desk.db.transaction() as session:
        # Swap the content of two events but keep their positions: the links break.
        await session.execute(text("UPDATE audit_events SET seq = -1 WHERE seq = 2"))
        await session.execute(text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
        await session.execute(text("UPDATE audit_events SET seq = 3 WHERE seq = -1"))
        assert (await verify_chain(session)).bad_seq == 2
        await session.rollback()
    async with desk.db.transaction() as session:
        last = (await session.execute(select(func.max(AuditEvent.seq)))).scalar_one()
        await session.execute(text(f"DELETE FROM audit_events WHERE seq = {last}"))
        report = await verify_chain(session)
        assert not report.intact and report.bad_seq == last
        await session.rollback()


async def test_idempotency_key_replays_the_first_request(desk: Desk) -> None:
    parties = await make_parties(desk)
    from sandbox.factories import make_terms

    idem = workflow.Idempotency(key="k1", scope="POST /v1/requests", body_hash="h1")
    first = await workflow.submit_request(
        desk, creator_id=parties.creator_id, terms_in=make_terms(desk, parties.artist_id), idempotency=idem
    )
    again = await workflow.submit_request(
        desk, creator_id=parties.creator_id, terms_in=make_terms(desk, parties.artist_id), idempotency=idem
    )
    assert again.replayed and again.view.request.id == first.view.request.id
    other = workflow.Idempotency(key="k1", scope="POST /v1/requests", body_hash="h2")
    with pytest.raises(workflow.IdempotencyConflict):
        await workflow.submit_request(
            desk,
            creator_id=parties.creator_id,
            terms_in=make_terms(desk, parties.artist_id),
            idempotency=other,
        )


async def test_decisions_withdrawal_and_lapse_racing_on_one_request_leave_exactly_one_outcome(
    desk: Desk, clock: FrozenClock
) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    for at_deadline in (False, False, True):
        submitted = await submit(
            desk, parties, decision_due_at=(clock.now() + timedelta(minutes=5)).isoformat()
        )
        request_id = submitted.view.request.id
        # Before the deadline the parties race each other; at it, the lapse sweep races them too.
        clock.advance(timedelta(minutes=5) if at_deadline else timedelta(minutes=4))
        contenders = [
            approve(desk, request_id, parties.artist()),
            deny(desk, request_id, parties.agency(), reason="no"),
            workflow.withdraw_request(desk, creator_id=parties.creator_id, request_id=request_id),
            approve(desk, request_id, parties.agency()),
        ]
        results = await asyncio.gather(
            *contenders, workflow.lapse_overdue_requests(desk), return_exceptions=True
        )
        unexpected = [
            r for r in results if isinstance(r, BaseException) and not isinstance(r, workflow.Refused)
        ]
        assert not unexpected, unexpected
        async with desk.db.transaction() as session:
            request = await session.get(Request, request_id)
            decisions = (
                await session.execute(
                    select(func.count()).select_from(Decision).where(Decision.request_id == request_id)
                )
            ).scalar_one()
            grants = (
                await session.execute(
                    select(func.count()).select_from(Grant).where(Grant.request_id == request_id)
                )
            ).scalar_one()
        assert request is not None
        assert request.status in {"approved", "denied", "withdrawn", "lapsed"}
        assert decisions == (1 if request.status in {"approved", "denied"} else 0)
        assert grants == (1 if request.status == "approved" else 0)
    async with desk.db.transaction() as session:
        assert (await verify_chain(session)).intact
