"""SlackSender with the outbox against the Slack simulator, on SQLite and PostgreSQL, time under control."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select, update

from bot import workflow
from bot.adapters.slack import CHANNEL_PATIENCE, SlackSender
from bot.clock import FrozenClock
from bot.delivery import Outbox, Outgoing, RetryLater, Undeliverable, deliver
from bot.models import Actor, ActorKind, ChannelKind, Outcome, Policy
from bot.receipts import load_or_create_signer
from bot.render import slack as board
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, submit
from sandbox.slack import SlackSimulator
from storage.database import Database
from storage.tables import Agency, AuditEvent, CardRef, Notice, Request

TOKEN = "xoxb-sender-test"
CHANNEL = "C100"  # the factories' agency channel


@pytest.fixture
async def sim() -> AsyncIterator[SlackSimulator]:
    simulator = SlackSimulator(bot_token=TOKEN, signing_secret="unused")
    simulator.add_channel(CHANNEL, "star-board")
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def plain_desk(sqlite_url: str, clock: FrozenClock, tmp_path: Path) -> Desk:
    """A desk whose database these tests never touch (they talk to Slack only): no migrations."""
    return Desk(db=Database(sqlite_url), clock=clock, signer=load_or_create_signer(tmp_path / "key.pem"))


def sender_for(desk: Desk, sim: SlackSimulator, *, token: str = TOKEN, interval: float = 0.01) -> SlackSender:
    """A sender with a short post interval, so the tests do not wait a second per message."""
    client = AsyncWebClient(token=token, base_url=sim.api_base_url, retry_handlers=[])
    return SlackSender(desk, client, post_interval=interval)


async def slack_notices(desk: Desk, request_id: str) -> list[Notice]:
    """The request's Slack notices, oldest first."""
    async with desk.db.transaction() as session:
        rows = await session.execute(
            select(Notice)
            .where(Notice.request_id == request_id, Notice.channel == "slack")
            .order_by(Notice.created_at, Notice.id)
        )
        return list(rows.scalars())


async def approve_on_behalf(desk: Desk, request_id: str, agency_id: str) -> None:
    """A listed member approves in Slack."""
    async with desk.db.transaction() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        terms_hash = request.terms_hash
    await workflow.decide(
        desk, request_id=request_id, actor=member(agency_id), outcome=Outcome.approve, terms_hash=terms_hash
    )


def member(agency_id: str) -> Actor:
    """The factories' listed Slack member, acting for the agency."""
    return Actor(ActorKind.agency, agency_id, ChannelKind.slack, display="agent", member="U100")


async def test_an_update_never_overtakes_its_first_post_and_then_edits_it_and_replies_in_thread(
    desk: Desk, sim: SlackSimulator, clock: FrozenClock
) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    request_id = (await submit(desk, parties)).view.request.id
    clock.advance(timedelta(seconds=1))
    await approve_on_behalf(desk, request_id, parties.agency_id)
    sender = sender_for(desk, sim)
    outbox = Outbox(desk, [sender])

    sim.inject("503", methods="chat.postMessage")
    await outbox.drain_once()  # the post fails; the update behind it in the lane waits
    assert sim.messages(CHANNEL) == []
    post, update_notice = await slack_notices(desk, request_id)
    assert (post.kind, post.status, update_notice.kind, update_notice.status) == (
        "board_post",
        "pending",
        "board_update",
        "pending",
    )
    # Even handed over on its own, the update refuses to go before the post.
    with pytest.raises(RetryLater) as waiting:
        await deliver(desk, sender, Outgoing.of(update_notice))
    assert "earlier board notice" in waiting.value.reason

    clock.advance(timedelta(minutes=1))
    assert await outbox.drain_once() == 2
    [root] = sim.messages(CHANNEL)
    assert "*Approved* by *agent* (for the agency, in Slack)" in str(root["blocks"])
    assert len(root["edits"]) == 1
    [reply] = sim.thread(CHANNEL, root["ts"])
    assert reply["text"].startswith(":white_check_mark: Approved by *agent* in Slack")
    async with desk.db.transaction() as session:
        ref = await session.get(CardRef, (request_id, "slack", parties.agency_id))
    assert ref is not None and (ref.chat_id, ref.message_id) == (CHANNEL, root["ts"])


async def test_an_update_for_a_request_never_posted_posts_the_root_first(
    desk: Desk, sim: SlackSimulator, clock: FrozenClock
) -> None:
    # The agency had no channel when the request came; it was set afterwards.
    agency = await workflow.add_agency(desk, name="Late Agency", slack_member_ids=["U100"])
    artist = await workflow.add_artist(
        desk, name="Li Wei", agency_id=agency.id, policy=Policy.agency_may_decide
    )
    creator = await workflow.add_creator(desk, name="Dream Studio")
    parties = Parties(agency.id, artist.id, creator.creator.id, creator.api_key)
    request_id = (await submit(desk, parties)).view.request.id
    assert await slack_notices(desk, request_id) == []
    async with desk.db.transaction() as session:
        await session.execute(update(Agency).where(Agency.id == agency.id).values(slack_channel_id=CHANNEL))
    clock.advance(timedelta(seconds=1))
    await approve_on_behalf(desk, request_id, agency.id)

    outbox = Outbox(desk, [sender_for(desk, sim)])
    sim.inject("latency", methods="chat.postMessage")  # the root goes through...
    sim.inject("503", methods="chat.postMessage")  # ...its thread reply does not
    await outbox.drain_once()
    [root] = sim.messages(CHANNEL)
    assert root["edits"] == []  # posted as it stands now: already approved
    assert "*Approved*" in str(root["blocks"])
    assert sim.thread(CHANNEL, root["ts"]) == []

    clock.advance(timedelta(minutes=1))
    await outbox.drain_once()  # the retry edits the root it posted instead of posting another
    [again] = sim.messages(CHANNEL)
    assert again["ts"] == root["ts"] and len(again["edits"]) == 1
    assert len(sim.thread(CHANNEL, root["ts"])) == 1
    async with desk.db.transaction() as session:
        ref = await session.get(CardRef, (request_id, "slack", agency.id))
    assert ref is not None and ref.message_id == root["ts"]


async def test_a_deleted_board_message_is_posted_again_and_remembered(
    desk: Desk, sim: SlackSimulator, clock: FrozenClock
) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    request_id = (await submit(desk, parties)).view.request.id
    outbox = Outbox(desk, [sender_for(desk, sim)])
    await outbox.drain_once()
    await workflow.remember_card(
        desk,
        request_id=request_id,
        channel=ChannelKind.slack,
        recipient_id=parties.agency_id,
        chat_id=CHANNEL,
        message_id="1.000001",  # a message that is no longer there
    )
    clock.advance(timedelta(seconds=1))
    await approve_on_behalf(desk, request_id, parties.agency_id)
    await outbox.drain_once()

    first, second = sim.messages(CHANNEL)
    assert "*Approved*" in str(second["blocks"]) and len(sim.thread(CHANNEL, second["ts"])) == 1
    async with desk.db.transaction() as session:
        ref = await session.get(CardRef, (request_id, "slack", parties.agency_id))
    assert ref is not None and ref.message_id == second["ts"]
    assert first["ts"] != second["ts"]


async def test_slack_answers_map_to_retry_later_or_undeliverable(
    plain_desk: Desk, sim: SlackSimulator
) -> None:
    desk = plain_desk
    sender = sender_for(desk, sim)
    for fault in ("500", "503", "drop"):
        sim.inject(fault, methods="chat.postMessage")
        with pytest.raises(RetryLater) as failing:
            await sender.post(CHANNEL, "hello")
        assert failing.value.after is None  # the drainer's back-off decides
    with pytest.raises(RetryLater):  # a token problem is fixable: wait, do not drop
        await sender_for(desk, sim, token="xoxb-wrong").post(CHANNEL, "hello")
    too_many = board.SlackMessage(text="x", blocks=[{"type": "divider"}] * 51)
    with pytest.raises(Undeliverable):  # our own malformed message can never succeed
        await sender.post(CHANNEL, too_many)
    sim.inject("429", methods="chat.postMessage", retry_after=7)
    with pytest.raises(RetryLater) as limited:
        await sender.post(CHANNEL, "hello")
    assert limited.value.after == 7  # and the channel is held that long for every later post
    assert sim.messages(CHANNEL) == []


async def test_a_missing_channel_is_retried_for_a_while_then_given_up(
    desk: Desk, sim: SlackSimulator
) -> None:
    parties = await make_parties(desk)
    request_id = (await submit(desk, parties)).view.request.id
    async with desk.db.transaction() as session:
        await session.execute(update(Agency).values(slack_channel_id="C0GONE"))
    [post] = await slack_notices(desk, request_id)
    sender = sender_for(desk, sim)
    with pytest.raises(RetryLater) as waiting:
        await deliver(desk, sender, Outgoing.of(post))
    assert "channel_not_found" in waiting.value.reason
    with pytest.raises(Undeliverable):
        await deliver(desk, sender, dataclasses.replace(Outgoing.of(post), attempts=CHANNEL_PATIENCE - 1))


async def test_posts_to_one_channel_keep_their_interval_and_other_channels_do_not_wait(
    plain_desk: Desk, sim: SlackSimulator
) -> None:
    desk = plain_desk
    sim.add_channel("C200", "other-board")
    sim.rate_limits_enabled = False  # the simulator's own 1/s would refuse this test's quicker pace
    sender = sender_for(desk, sim, interval=0.2)
    started = time.monotonic()
    for n in range(4):
        await sender.post(CHANNEL, f"message {n}")
    assert time.monotonic() - started >= 0.55  # three waits of 0.2 s, give or take the clock's grain
    quick = time.monotonic()
    await sender.post("C200", "another channel")
    assert time.monotonic() - quick < 0.15
    times = [c["time"] for c in sim.calls("chat.postMessage") if c["params"]["channel"] == CHANNEL]
    assert all(b - a >= 0.18 for a, b in itertools.pairwise(times))


# ---------------------------------------------------------------- the workflow functions the board adds


async def test_a_slack_request_is_remembered_once_and_forgotten_after_the_replay_window(desk: Desk) -> None:
    signed_at = desk.clock.now()
    assert await workflow.remember_slack_request(desk, signature="v0=abc", signed_at=signed_at)
    assert not await workflow.remember_slack_request(desk, signature="v0=abc", signed_at=signed_at)
    later = signed_at + workflow.SLACK_REPLAY_MEMORY + timedelta(seconds=1)
    assert await workflow.remember_slack_request(desk, signature="v0=def", signed_at=later)
    # The old signature was dropped on the way; bolt refuses its timestamp anyway by then.
    assert await workflow.remember_slack_request(desk, signature="v0=abc", signed_at=later)


async def test_checking_a_decision_changes_nothing_and_audits_a_refusal(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    request_id = (await submit(desk, parties)).view.request.id
    view = await workflow.check_decision(
        desk, request_id=request_id, actor=member(parties.agency_id), outcome=Outcome.deny
    )
    assert view.request.status == "pending" and view.decisions == []
    stranger = Actor(ActorKind.agency, parties.agency_id, ChannelKind.slack, display="x", member="U999")
    with pytest.raises(workflow.NotAllowed):
        await workflow.check_decision(desk, request_id=request_id, actor=stranger, outcome=Outcome.deny)
    async with desk.db.transaction() as session:
        actions = list(
            (
                await session.execute(
                    select(AuditEvent.action, AuditEvent.actor_id).where(AuditEvent.subject_id == request_id)
                )
            ).tuples()
        )
    assert ("decision.deny.refused", "U999") in actions
    assert not [a for a, _ in actions if a == "decision.deny"]
