"""The Telegram sender in-process, on SQLite and PostgreSQL, against the simulator over HTTP:
what each notice becomes, how Telegram's answers map to retry or give-up, and the flood limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import event, select, update
from telegram.ext import ExtBot

from bot import workflow
from bot.adapters.telegram import ChatRateLimiter, TelegramSender
from bot.adapters.webhook import WebhookSender
from bot.clock import FrozenClock
from bot.delivery import Delivered, Outbox, Outgoing, RetryLater, Undeliverable, deliver
from bot.models import ActorKind, ChannelKind, Language, Outcome
from bot.render.buttons import CallbackSigner, read_seen_subject, seen_subject
from bot.reports import ChartDrawer, ChartError
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, submit
from sandbox.telegram import RateLimits, TelegramSimulator
from storage.tables import Notice
from tests.webhook_receiver import LOOPBACK_HOOKS, WebhookReceiver

TOKEN = "7000002:TEST-sender-token"
# What does not touch the outbox's claim query runs on SQLite only; the claim runs on both databases.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
ARTIST_CHAT = 3001


@pytest.fixture(autouse=True)
def retry_after_as_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opts in to PTB's future RetryAfter type, as the service does."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def sim() -> AsyncIterator[TelegramSimulator]:
    """The simulator, with chats ten times as patient as Telegram's (the limit tests set them back)."""
    simulator = TelegramSimulator(bots={TOKEN: "sender_test_bot"})
    simulator.set_rate_limits(private_chat_rate=10, private_chat_burst=5)
    simulator.add_user(ARTIST_CHAT, "Li", language_code="zh-hans")
    await simulator.start()
    await simulator.send_text(TOKEN, ARTIST_CHAT, "hello")  # the artist has opened the bot
    yield simulator
    await simulator.stop()


@pytest.fixture
async def bot(sim: TelegramSimulator) -> AsyncIterator[ExtBot[int]]:
    """A bot whose own chat limit stays inside the simulator's (faster than production's)."""
    limiter = ChatRateLimiter(private_rate=5, private_burst=3)
    async with ExtBot(TOKEN, base_url=sim.api_base_url, rate_limiter=limiter) as client:
        yield client


@pytest.fixture
async def real_limits(sim: TelegramSimulator) -> AsyncIterator[ExtBot[int]]:
    """Telegram's limits in the simulator, and the bot with the service's own limiter."""
    sim.limits = RateLimits()
    async with ExtBot(TOKEN, base_url=sim.api_base_url, rate_limiter=ChatRateLimiter()) as client:
        yield client


@pytest.fixture
async def sender(bot: ExtBot[int], desk: Desk) -> AsyncIterator[TelegramSender]:
    sending = TelegramSender(bot, desk, CallbackSigner(desk.signer.callback_key()))
    try:
        yield sending
    finally:
        await sending.charts.close()  # a report test leaves its chart process idle


@pytest.fixture
async def parties(desk: Desk) -> Parties:
    """The factories' parties, with the artist's Telegram linked to ARTIST_CHAT."""
    found = await make_parties(desk, language=Language.zh_hans)
    token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=found.artist_id)
    await workflow.redeem_invite(desk, token=token, telegram_user_id=ARTIST_CHAT, chat_id=ARTIST_CHAT)
    return found


async def queued(desk: Desk, kind: str, request_id: str | None = None) -> Outgoing:
    """The newest Telegram notice of a kind, as the drainer would hand it to the sender."""
    async with desk.db.read() as session:
        query = select(Notice).where(Notice.channel == "telegram", Notice.kind == kind)
        if request_id is not None:
            query = query.where(Notice.request_id == request_id)
        row = (await session.execute(query.order_by(Notice.created_at.desc()).limit(1))).scalar_one()
    return Outgoing.of(row)


@sqlite_only
async def test_a_card_goes_to_the_artists_chat_in_their_language_with_signed_buttons(
    desk: Desk, parties: Parties, sender: TelegramSender, sim: TelegramSimulator
) -> None:
    request = (await submit(desk, parties)).view.request
    request_id = request.id

    delivered = await deliver(desk, sender, await queued(desk, "card", request_id))

    [message] = [m for m in sim.messages(ARTIST_CHAT) if m["from_bot"]]
    assert delivered == Delivered(str(ARTIST_CHAT), str(message["message_id"]))
    assert message["text"].startswith("📝 肖像使用请求：Moonlight Drama S2")
    keyboard = message["reply_markup"]["inline_keyboard"]
    taps = [sender.signer.read(button["callback_data"]) for button in keyboard[0]]
    assert [(t.action, read_seen_subject(t.subject)[0]) for t in taps if t] == [
        ("ok", request_id),
        ("no", request_id),
    ]
    # Each carries the terms the card showed, so a decision is checked against what the artist saw.
    assert {t.subject for t in taps if t} == {seen_subject(request_id, request.terms_hash)}
    assert sender.lane(await queued(desk, "card", request_id)) == f"artist:{parties.artist_id}"


@sqlite_only
async def test_a_blocked_chat_is_undeliverable(
    desk: Desk, parties: Parties, sender: TelegramSender, sim: TelegramSimulator
) -> None:
    request_id = (await submit(desk, parties)).view.request.id
    sim.block_bot(TOKEN, ARTIST_CHAT)

    with pytest.raises(Undeliverable, match="blocked"):
        await deliver(desk, sender, await queued(desk, "card", request_id))


@sqlite_only
@pytest.mark.parametrize(("fault", "after"), [("429", 7.0), ("500", None), ("502", None), ("drop", None)])
async def test_telegram_trouble_becomes_retry_later_and_429_says_how_long(
    desk: Desk,
    parties: Parties,
    sender: TelegramSender,
    sim: TelegramSimulator,
    fault: str,
    after: float | None,
) -> None:
    request_id = (await submit(desk, parties)).view.request.id
    sim.inject(fault, methods="sendMessage", retry_after=7)

    with pytest.raises(RetryLater) as raised:
        await deliver(desk, sender, await queued(desk, "card", request_id))

    assert raised.value.after == after
    assert [m for m in sim.messages(ARTIST_CHAT) if m["from_bot"]] == []


async def approve(desk: Desk, parties: Parties, request_id: str) -> None:
    """The artist approves, a moment after the request came (notices are ordered by time)."""
    assert isinstance(desk.clock, FrozenClock)
    desk.clock.advance(timedelta(seconds=1))
    decided = await workflow.decide(
        desk,
        request_id=request_id,
        actor=parties.artist(),
        outcome=Outcome.approve,
        terms_hash=await terms_hash(desk, request_id),
    )
    assert decided.view.request.status == "approved"


async def terms_hash(desk: Desk, request_id: str) -> str:
    from storage.tables import Request

    async with desk.db.read() as session:
        request = await session.get(Request, request_id)
    assert request is not None
    return request.terms_hash


def bot_messages(sim: TelegramSimulator) -> list[dict[str, object]]:
    return [m for m in sim.messages(ARTIST_CHAT) if m["from_bot"]]


async def test_a_card_update_waits_while_its_card_is_still_queued(
    desk: Desk, parties: Parties, sender: TelegramSender, sim: TelegramSimulator
) -> None:
    request_id = (await submit(desk, parties)).view.request.id
    await approve(desk, parties, request_id)

    with pytest.raises(RetryLater) as raised:
        await deliver(desk, sender, await queued(desk, "card_update", request_id))
    assert raised.value.after == 2

    await Outbox(desk, [sender]).drain_once()  # the card, then its update, in the lane's order
    [card] = bot_messages(sim)
    assert "✅ <b>已同意</b>" in str(card["html"]) and card["reply_markup"] is None
    assert card["edit_count"] == 0  # the card went out already decided; the update changed nothing


async def test_a_decision_edits_the_card_in_place_and_a_repeated_update_changes_nothing(
    desk: Desk, parties: Parties, sender: TelegramSender, sim: TelegramSimulator
) -> None:
    request_id = (await submit(desk, parties)).view.request.id
    outbox = Outbox(desk, [sender])
    await outbox.drain_once()
    await approve(desk, parties, request_id)

    await outbox.drain_once()
    [card] = bot_messages(sim)
    assert card["edit_count"] == 1 and card["reply_markup"] is None
    assert "已同意" in str(card["text"])

    again = await deliver(desk, sender, await queued(desk, "card_update", request_id))  # e.g. after a crash

    assert again == Delivered()
    assert bot_messages(sim)[0]["edit_count"] == 1


@sqlite_only  # the write engine's first commit is the claim (PostgreSQL's look commits there too)
async def test_a_card_update_still_in_flight_when_its_claim_runs_out_is_not_sent_again(
    desk: Desk, parties: Parties, sender: TelegramSender, sim: TelegramSimulator
) -> None:
    request_id = (await submit(desk, parties)).view.request.id
    outbox = Outbox(desk, [sender])
    await outbox.drain_once()  # the card
    await approve(desk, parties, request_id)
    sim.inject("latency", methods="editMessageText", delay=0.5)
    claimed = asyncio.Event()

    def committed(_connection: object) -> None:
        claimed.set()

    event.listen(desk.db.engine.sync_engine, "commit", committed)
    try:
        sending = asyncio.create_task(outbox.drain_once())  # claims the update; its edit is slow
        await claimed.wait()
    finally:
        event.remove(desk.db.engine.sync_engine, "commit", committed)
    assert isinstance(desk.clock, FrozenClock)
    desk.clock.advance(timedelta(minutes=5))  # the claim runs out while the edit is in flight

    assert await outbox.drain_once() == 0  # claimed again by the process sending it, not sent again
    assert await sending == 1

    [card] = bot_messages(sim)
    assert card["edit_count"] == 1 and "已同意" in str(card["text"])
    assert len(sim.calls("editMessageText")) == 1
    async with desk.db.read() as session:
        sent = select(Notice.status).where(Notice.kind == "card_update", Notice.request_id == request_id)
        assert (await session.execute(sent)).scalar_one() == "sent"


async def test_a_card_the_artist_deleted_is_replaced_by_a_new_message_with_the_outcome(
    desk: Desk, parties: Parties, sender: TelegramSender, sim: TelegramSimulator, bot: ExtBot[int]
) -> None:
    request_id = (await submit(desk, parties)).view.request.id
    outbox = Outbox(desk, [sender])
    await outbox.drain_once()
    [card] = bot_messages(sim)
    await bot.delete_message(ARTIST_CHAT, int(str(card["message_id"])))
    await approve(desk, parties, request_id)

    delivered = await deliver(desk, sender, await queued(desk, "card_update", request_id))

    [replacement] = bot_messages(sim)
    assert delivered == Delivered(str(ARTIST_CHAT), str(replacement["message_id"]))
    assert "已同意" in str(replacement["text"])


@sqlite_only
async def test_a_reminder_replies_to_the_open_card_and_is_dropped_once_decided(
    desk: Desk, parties: Parties, sender: TelegramSender, sim: TelegramSimulator
) -> None:
    request_id = (await submit(desk, parties)).view.request.id
    await Outbox(desk, [sender]).drain_once()
    [card] = bot_messages(sim)
    reminder = Outgoing(
        id="ntc_reminder",
        channel=ChannelKind.telegram,
        recipient_kind="artist",
        recipient_id=parties.artist_id,
        kind="decision_reminder",
        request_id=request_id,
        grant_id=None,
        payload={"index": 1, "escalation": True},
        attempts=0,
        created_at=desk.clock.now(),
    )

    await deliver(desk, sender, reminder)
    await approve(desk, parties, request_id)
    await deliver(desk, sender, reminder)

    [_card, sent] = bot_messages(sim)
    assert sent["reply_to_message_id"] == card["message_id"]
    assert "⏰" in str(sent["text"]) and "经纪公司" in str(sent["text"])


@sqlite_only
async def test_a_report_is_a_summary_and_a_chart(
    desk: Desk, parties: Parties, sender: TelegramSender, sim: TelegramSimulator
) -> None:
    assert await workflow.queue_report(desk, recipient_kind=ActorKind.artist, recipient_id=parties.artist_id)

    await deliver(desk, sender, await queued(desk, "report"))

    summary, chart = bot_messages(sim)
    assert str(summary["text"]).startswith("📊 使用报告")
    assert chart["kind"] == "photo" and chart["caption"] == "每周使用次数（红色为违规）"


@sqlite_only
async def test_a_report_whose_chart_cannot_be_drawn_sends_nothing_and_is_retried_whole(
    desk: Desk, parties: Parties, bot: ExtBot[int], sim: TelegramSimulator
) -> None:
    # No chart process answers within a millisecond: the chart fails before anything is sent.
    hasty = ChartDrawer(timeout=0.001)
    sender = TelegramSender(bot, desk, CallbackSigner(desk.signer.callback_key()), charts=hasty)
    assert await workflow.queue_report(desk, recipient_kind=ActorKind.artist, recipient_id=parties.artist_id)
    try:
        with pytest.raises(ChartError):
            await deliver(desk, sender, await queued(desk, "report"))
    finally:
        await hasty.close()
    assert bot_messages(sim) == []  # no summary without its chart: the retry sends both, once


@sqlite_only
async def test_a_studio_that_linked_telegram_is_told_in_its_language(
    desk: Desk, parties: Parties, sender: TelegramSender, sim: TelegramSimulator
) -> None:
    sim.add_user(3002, "Studio")
    await sim.send_text(TOKEN, 3002, "hi")
    token = await workflow.create_invite(desk, subject_kind=ActorKind.creator, subject_id=parties.creator_id)
    await workflow.redeem_invite(desk, token=token, telegram_user_id=3002, chat_id=3002)
    request_id = (await submit(desk, parties, project_title="Ads & <More>")).view.request.id

    await deliver(desk, sender, await queued(desk, "status", request_id))

    [told] = [m for m in sim.messages(3002) if m["from_bot"]]
    assert told["text"] == f"📨 “Ads & <More>” was sent to the artist.\nRef {request_id}"


# ---------------------------------------------------------------- flood limits


async def test_one_busy_chat_does_not_hold_back_another(desk: Desk, sim: TelegramSimulator) -> None:
    # Faster chats than Telegram's, on both sides, so the test takes a second, not ten.
    sim.set_rate_limits(private_chat_rate=20, private_chat_burst=3)
    async with ExtBot(
        TOKEN, base_url=sim.api_base_url, rate_limiter=ChatRateLimiter(private_rate=6, private_burst=1)
    ) as fast_bot:
        sender = TelegramSender(fast_bot, desk, CallbackSigner(desk.signer.callback_key()))
        busy, quiet = await make_parties(desk), await make_parties(desk)
        for party, chat in ((busy, ARTIST_CHAT), (quiet, 3003)):
            sim.add_user(chat, "Artist")
            await sim.send_text(TOKEN, chat, "hi")
            token = await workflow.create_invite(
                desk, subject_kind=ActorKind.artist, subject_id=party.artist_id
            )
            await workflow.redeem_invite(desk, token=token, telegram_user_id=chat, chat_id=chat)
        for _ in range(9):
            await submit(desk, busy)
        outbox = Outbox(desk, [sender], poll_interval=0.05)
        desk.on_commit.append(outbox.wake)
        await outbox.start()
        try:
            await sim.wait_for(lambda: bot_messages(sim))
            await submit(desk, quiet)  # arrives while the busy chat still has eight to go

            await sim.wait_for(lambda: [m for m in sim.messages(3003) if m["from_bot"]], timeout=10)
            assert len(bot_messages(sim)) < 9  # the quiet chat did not wait for the busy one
            await sim.wait_for(lambda: len(bot_messages(sim)) == 9, timeout=10)
        finally:
            await outbox.stop()
    assert sim.rate_limited_count == 0


async def test_answers_to_taps_never_wait_behind_a_busy_chat(
    sim: TelegramSimulator, real_limits: ExtBot[int]
) -> None:
    bot = real_limits
    first = await bot.send_message(ARTIST_CHAT, "one")
    await bot.send_message(ARTIST_CHAT, "two")  # the chat's burst is used up now
    query = await sim.tap(TOKEN, ARTIST_CHAT, ARTIST_CHAT, first.message_id, callback_data="x")

    third = asyncio.create_task(bot.send_message(ARTIST_CHAT, "three"))
    await bot.answer_callback_query(query, "ok")

    assert not third.done()  # the message waits for the chat's limit; the tap's answer did not
    await third
    assert sim.callback_answer(query) is not None
    assert sim.chat_stats(ARTIST_CHAT)["rate_limited"] == 0


async def test_a_chat_gets_a_short_burst_then_one_message_a_second(
    sim: TelegramSimulator, real_limits: ExtBot[int]
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()

    await asyncio.gather(*(real_limits.send_message(ARTIST_CHAT, f"{n}") for n in range(3)))

    assert loop.time() - started >= 0.9  # two at once, then the third a second later
    stats = sim.chat_stats(ARTIST_CHAT)
    # Telegram never had to refuse; at most its short burst fell within any one second.
    assert stats["rate_limited"] == 0 and stats["max_in_1s"] <= sim.limits.private_chat_burst


async def test_old_claims_never_block_a_chat_forever(
    desk: Desk, parties: Parties, sender: TelegramSender
) -> None:
    """A claim left by a dead instance blocks its chat only until the lease runs out."""
    request_id = (await submit(desk, parties)).view.request.id
    async with desk.db.transaction() as session:
        await session.execute(
            update(Notice)
            .where(Notice.request_id == request_id)
            .values(claimed_until=desk.clock.now() + timedelta(seconds=30))
        )
    outbox = Outbox(desk, [sender])
    assert await outbox.drain_once() == 0
    assert isinstance(desk.clock, FrozenClock)
    desk.clock.advance(timedelta(seconds=31))
    assert await outbox.drain_once() == 1


async def test_a_held_webhook_does_not_hold_up_the_artists_card_edit(
    desk: Desk, sender: TelegramSender, sim: TelegramSimulator
) -> None:
    """Each channel drains on its own: a creator's endpoint that takes its time delays only itself."""
    receiver = WebhookReceiver(hold=asyncio.Event())
    await receiver.start()
    outbox = Outbox(desk, [sender, WebhookSender(desk, policy=LOOPBACK_HOOKS)])
    try:
        parties = await make_parties(desk, language=Language.zh_hans, webhook_url=receiver.url)
        token = await workflow.create_invite(
            desk, subject_kind=ActorKind.artist, subject_id=parties.artist_id
        )
        await workflow.redeem_invite(desk, token=token, telegram_user_id=ARTIST_CHAT, chat_id=ARTIST_CHAT)
        request_id = (await submit(desk, parties)).view.request.id  # the card, and a webhook event
        await outbox.start()
        await sim.wait_for(lambda: bot_messages(sim))
        await receiver.wait_for(lambda: receiver.arrivals == 1)  # at the endpoint, not answered

        await approve(desk, parties, request_id)  # the card's edit, and a second webhook event
        outbox.wake()
        [card] = await sim.wait_for(lambda: [m for m in bot_messages(sim) if m["edit_count"] == 1])
        assert "已同意" in str(card["text"])
        assert receiver.arrivals == 1 and receiver.accepted() == []  # the first event is still held

        receiver.hold.set()  # type: ignore[union-attr]
        events = await receiver.wait_for(lambda: receiver.accepted() if len(receiver.accepted()) == 2 else [])
        assert [e["type"] for e in events] == ["request.submitted", "request.approved"]
    finally:
        await outbox.stop()
        await receiver.stop()
