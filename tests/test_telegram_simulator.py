"""The Telegram Bot API simulator, exercised through a real python-telegram-bot client over HTTP."""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from sandbox.telegram import SECRET_TOKEN_HEADER, RateLimits, TelegramSimulator
from tests.conftest import FakeClock, running_module

TOKEN = "123456:TEST-token_for-the-simulator"
BOT_USERNAME = "likeness_test_bot"
ADA = 1001
EVE = 1002
NEWCOMER = 1003


@pytest.fixture(autouse=True)
def retry_after_as_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opts in to PTB's future RetryAfter.retry_after type; PTB 22 warns on every 429 otherwise."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[TelegramSimulator]:
    simulator = TelegramSimulator(bots={TOKEN: BOT_USERNAME}, clock=clock)
    simulator.add_user(ADA, "Ada", language_code="en", username="ada")
    simulator.add_user(EVE, "Eve", language_code="de")
    simulator.add_user(NEWCOMER, "Nell")
    await simulator.start()
    await simulator.send_text(TOKEN, ADA, "/start")  # Ada has opened the bot; Nell never has
    yield simulator
    await simulator.stop()


@pytest.fixture
async def bot(sim: TelegramSimulator) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=sim.api_base_url, base_file_url=sim.file_base_url) as client:
        yield client


def approve_deny(request_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Approve", callback_data=f"approve:{request_id}"),
                InlineKeyboardButton("Deny", callback_data=f"deny:{request_id}"),
            ]
        ]
    )


def tiny_png(width: int = 3, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress((b"\x00" + b"\xff\x00\x00" * width) * height)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


# ------------------------------------------------------------------ identity and errors


async def test_get_me_describes_the_registered_bot(bot: Bot) -> None:
    me = await bot.get_me()

    assert me.username == BOT_USERNAME
    assert me.id == 123456
    assert me.is_bot


async def test_a_wrong_token_is_unauthorized_and_an_unknown_method_is_not_found(
    sim: TelegramSimulator, bot: Bot
) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("999:wrong", base_url=sim.api_base_url) as stranger:
            await stranger.get_me()

    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": ADA})

    assert [c["status"] for c in sim.calls() if c["method"] in ("getMe", "sendTelepathy")][-2:] == [401, 404]


# ------------------------------------------------------------------ messages


async def test_a_card_sent_with_html_and_buttons_then_edited_shows_every_version_in_the_control_view(
    sim: TelegramSimulator, bot: Bot
) -> None:
    sent = await bot.send_message(
        ADA,
        "<b>Request #7</b>\nVoice for <i>Ad &amp; Co</i>",
        parse_mode="HTML",
        reply_markup=approve_deny(7),
    )
    assert sent.text == "Request #7\nVoice for Ad & Co"
    assert [e.type for e in sent.entities] == ["bold", "italic"]
    assert sent.reply_markup == approve_deny(7)

    edited = await bot.edit_message_text(
        "<b>Request #7</b>\nApproved by Ada", chat_id=ADA, message_id=sent.message_id, parse_mode="HTML"
    )

    assert isinstance(edited, Message) and edited.reply_markup is None
    [card] = sim.messages(ADA)
    assert card["message_id"] == sent.message_id
    assert card["text"] == "Request #7\nApproved by Ada"
    assert card["html"] == "<b>Request #7</b>\nApproved by Ada"
    assert card["reply_markup"] is None  # an edit without reply_markup removes the buttons, as on Telegram
    assert card["edit_count"] == 1
    assert card["history"][0]["html"] == "<b>Request #7</b>\nVoice for <i>Ad &amp; Co</i>"
    assert card["history"][0]["reply_markup"] == approve_deny(7).to_dict()


async def test_an_edit_that_changes_nothing_is_refused_as_not_modified(
    sim: TelegramSimulator, bot: Bot
) -> None:
    sent = await bot.send_message(ADA, "Pending", reply_markup=approve_deny(1))

    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "Pending", chat_id=ADA, message_id=sent.message_id, reply_markup=approve_deny(1)
        )
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_reply_markup(
            chat_id=ADA, message_id=sent.message_id, reply_markup=approve_deny(1)
        )
    await bot.edit_message_reply_markup(chat_id=ADA, message_id=sent.message_id, reply_markup=None)

    assert sim.messages(ADA)[0]["reply_markup"] is None
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=ADA, message_id=999)


async def test_the_bot_cannot_write_first_to_a_user_who_never_started_it(
    sim: TelegramSimulator, bot: Bot
) -> None:
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(NEWCOMER, "Hello?")

    await sim.send_text(TOKEN, NEWCOMER, "/start")
    await bot.send_message(NEWCOMER, "Hello!")

    sim.block_bot(TOKEN, NEWCOMER)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(NEWCOMER, "Still there?")


async def test_a_user_marked_as_started_can_be_written_to_without_any_update(
    sim: TelegramSimulator, bot: Bot
) -> None:
    sim.mark_started(TOKEN, NEWCOMER)

    await bot.send_message(NEWCOMER, "Hello!")

    assert [m["text"] for m in sim.messages(NEWCOMER)] == ["Hello!"]
    assert [u["message"]["from"]["id"] for u in sim.updates()] == [ADA]  # only the fixture's /start
    with pytest.raises(KeyError, match="unknown user 4242"):
        sim.mark_started(TOKEN, 4242)


async def test_a_reply_to_a_bot_message_carries_it_as_reply_to_message(
    sim: TelegramSimulator, bot: Bot
) -> None:
    [start] = await bot.get_updates()
    prompt = await bot.send_message(ADA, "Why do you decline? (ref req_1)")

    sent_id = await sim.send_text(TOKEN, ADA, "Not for ads", reply_to_message_id=prompt.message_id)

    [update] = await bot.get_updates(offset=start.update_id + 1)
    assert update.update_id == sent_id and update.message is not None
    replied = update.message.reply_to_message
    assert replied is not None and replied.message_id == prompt.message_id
    assert replied.text == "Why do you decline? (ref req_1)" and replied.from_user is not None
    assert replied.from_user.is_bot
    assert sim.messages(ADA, include_user=True)[-1]["reply_to_message_id"] == prompt.message_id
    with pytest.raises(LookupError, match="no message 99"):
        await sim.send_text(TOKEN, ADA, "to nothing", reply_to_message_id=99)


async def test_malformed_html_long_texts_and_oversized_callback_data_are_refused(bot: Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(ADA, "<b>unclosed", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(ADA, "<b><i>crossed</b></i>", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(ADA, "line<br>break", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)too long"):
        await bot.send_message(ADA, "x" * 4097)
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("Approve", callback_data="a" * 65)]])
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(ADA, "Card", reply_markup=too_long)


async def test_a_photo_upload_round_trips_its_bytes(sim: TelegramSimulator, bot: Bot) -> None:
    picture = tiny_png(width=3, height=2)

    sent = await bot.send_photo(ADA, picture, caption="<b>Monthly report</b>", parse_mode="HTML")

    largest = sent.photo[-1]
    assert (largest.width, largest.height) == (3, 2)
    assert sent.caption == "Monthly report"
    assert sim.file_bytes(largest.file_id) == picture
    [message] = sim.messages(ADA)
    assert message["kind"] == "photo" and message["photo"]["file_size"] == len(picture)
    downloaded = await (await bot.get_file(largest.file_id)).download_as_bytearray()
    assert bytes(downloaded) == picture

    document = await bot.send_document(ADA, b"id,status\n7,approved\n", filename="grants.csv")
    assert document.document.file_name == "grants.csv"
    assert sim.file_bytes(document.document.file_id) == b"id,status\n7,approved\n"
    with pytest.raises(BadRequest, match=r"(?i)IMAGE_PROCESS_FAILED"):
        await bot.send_photo(ADA, b"not an image")


async def test_commands_are_kept_per_language(sim: TelegramSimulator, bot: Bot) -> None:
    await bot.set_my_commands([("pending", "Open requests"), ("help", "How it works")])
    await bot.set_my_commands([("pending", "Offene Anfragen")], language_code="de")

    assert [c["command"] for c in sim.commands()] == ["pending", "help"]
    assert sim.commands("de") == [{"command": "pending", "description": "Offene Anfragen"}]
    assert [c.description for c in await bot.get_my_commands(language_code="de")] == ["Offene Anfragen"]

    await bot.delete_my_commands(language_code="de")
    assert sim.commands("de") == []


# ------------------------------------------------------------------ users acting: polling, taps, webhooks


async def test_a_start_link_reaches_a_polling_application_and_its_answer_to_a_tap_arrives(
    sim: TelegramSimulator,
) -> None:
    start_payloads: list[list[str]] = []

    async def on_start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Shows a request card."""
        assert update.effective_message is not None
        start_payloads.append(list(context.args or []))
        await update.effective_message.reply_text(
            "<b>Request #7</b>", parse_mode="HTML", reply_markup=approve_deny(7)
        )

    async def on_tap(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answers the tap, then records the decision on the card."""
        query = update.callback_query
        assert query is not None
        await query.answer("Approved", show_alert=True)
        await query.edit_message_text(f"Request #7: {query.data} by {query.from_user.first_name}")

    application = (
        Application.builder().token(TOKEN).base_url(sim.api_base_url).base_file_url(sim.file_base_url).build()
    )
    application.add_handler(CommandHandler("start", on_start))
    application.add_handler(CallbackQueryHandler(on_tap))
    async with application:
        assert application.updater is not None
        await application.start()
        await application.updater.start_polling(poll_interval=0.0, timeout=5, drop_pending_updates=True)
        try:
            await sim.send_text(TOKEN, ADA, "/start tok-123")
            card = await sim.wait_for(lambda: next(iter(sim.messages(ADA)), None))
            query_id = await sim.tap(TOKEN, ADA, ADA, card["message_id"], button_text="Approve")
            answer = await sim.wait_for(lambda: sim.callback_answer(query_id))
            edited = await sim.wait_for(lambda: [m for m in sim.messages(ADA) if m["edit_count"] == 1])
        finally:
            await application.updater.stop()
            await application.stop()

    assert start_payloads == [["tok-123"]]
    assert answer["text"] == "Approved" and answer["show_alert"] is True
    assert edited[0]["text"] == "Request #7: approve:7 by Ada"
    assert edited[0]["reply_markup"] is None


async def test_a_tap_may_come_from_another_user_with_forged_data_and_is_answered_only_once(
    sim: TelegramSimulator, bot: Bot
) -> None:
    card = await bot.send_message(ADA, "Request #7", reply_markup=approve_deny(7))
    await bot.get_updates()  # the fixture's /start
    with pytest.raises(LookupError, match="no callback button 'Maybe'"):
        await sim.tap(TOKEN, ADA, ADA, card.message_id, button_text="Maybe")

    query_id = await sim.tap(TOKEN, EVE, ADA, card.message_id, callback_data="approve:8")

    updates = await bot.get_updates(offset=-1)
    query = updates[-1].callback_query
    assert query is not None
    assert (query.id, query.data, query.from_user.id) == (query_id, "approve:8", EVE)
    assert query.message is not None and query.message.chat.id == ADA
    assert await query.answer("Not yours", show_alert=True)
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await query.answer()
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await bot.answer_callback_query("no-such-query")
    answer = sim.callback_answer(query_id)
    assert answer is not None and (answer["text"], answer["show_alert"]) == ("Not yours", True)


async def test_long_polling_waits_for_the_next_update_and_confirmed_updates_are_gone(
    sim: TelegramSimulator, bot: Bot
) -> None:
    [start] = await bot.get_updates()
    poll = asyncio.create_task(bot.get_updates(offset=start.update_id + 1, timeout=5))
    await sim.wait_for(lambda: sim.is_polling(TOKEN))

    sent_id = await sim.send_text(TOKEN, ADA, "hello")
    updates = await asyncio.wait_for(poll, 5)

    assert [u.update_id for u in updates] == [sent_id]
    assert [u["update_id"] for u in sim.pending_updates()] == [sent_id]
    assert await bot.get_updates(offset=sent_id + 1) == ()


async def test_a_webhook_receives_updates_with_the_secret_header_and_failed_deliveries_are_retried(
    sim: TelegramSimulator, bot: Bot
) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []
    answers = [500]  # the receiver fails once, as after a deploy

    async def receive(request: web.Request) -> web.Response:
        received.append((request.headers.get(SECRET_TOKEN_HEADER), await request.json()))
        return web.Response(status=answers.pop(0) if answers else 200)

    receiver = web.Application()
    receiver.router.add_post("/telegram", receive)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(
            f"http://127.0.0.1:{port}/telegram", secret_token="s3cret-token", drop_pending_updates=True
        )
        with pytest.raises(Conflict, match="webhook is active"):
            await bot.get_updates()

        update_id = await sim.send_text(TOKEN, ADA, "/start tok-9")
        await sim.wait_for(lambda: len(received) == 2 and not sim.pending_updates())
        info = await bot.get_webhook_info()
    finally:
        await runner.cleanup()

    assert [secret for secret, _ in received] == ["s3cret-token", "s3cret-token"]
    update = Update.de_json(received[-1][1], bot)
    assert update.update_id == update_id
    assert update.message is not None and update.message.text == "/start tok-9"
    assert [d["status"] for d in sim.webhook_deliveries()] == [500, 200]
    assert info.pending_update_count == 0
    assert info.last_error_message is not None and "500" in info.last_error_message


# ------------------------------------------------------------------ flood limits and faults


async def test_quick_sends_to_one_chat_are_throttled_with_retry_after(
    sim: TelegramSimulator, bot: Bot, clock: FakeClock
) -> None:
    outcomes: list[str | float] = []
    for number in range(5):
        try:
            await bot.send_message(ADA, f"Notice {number}")
            outcomes.append("sent")
        except RetryAfter as limited:
            assert isinstance(limited.retry_after, timedelta)
            outcomes.append(limited.retry_after.total_seconds())

    assert outcomes == ["sent", "sent", "sent", 1, 1]  # a burst of 3, then 1 per second
    assert sim.rate_limited_count == 2
    assert sim.chat_stats(ADA) == {"accepted": 3, "rate_limited": 2, "max_in_1s": 3, "max_in_60s": 3}
    limited_call = sim.calls("sendMessage")[-1]
    assert limited_call["status"] == 429
    assert limited_call["description"] == "Too Many Requests: retry after 1"
    assert limited_call["parameters"] == {"retry_after": 1}

    clock.advance(1.0)
    await bot.send_message(ADA, "Notice after waiting")
    sim.set_rate_limits(enabled=False)
    for number in range(5):
        await bot.send_message(ADA, f"Unthrottled {number}")
    assert sim.chat_stats(ADA)["rate_limited"] == 2


async def test_injected_faults_reach_the_client_as_errors_and_are_consumed_in_order(
    sim: TelegramSimulator, bot: Bot
) -> None:
    sim.inject("500", methods=["sendMessage"])
    sim.inject("drop", methods=["sendMessage"])
    sim.inject("429", methods=["sendMessage"], retry_after=7)

    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(ADA, "one")
    with pytest.raises(NetworkError, match="disconnected"):
        await bot.send_message(ADA, "two")
    with pytest.raises(RetryAfter) as limited:
        await bot.send_message(ADA, "three")
    await bot.send_message(ADA, "four")

    assert limited.value.retry_after == timedelta(seconds=7)
    assert [c["fault"] for c in sim.calls("sendMessage")] == ["500", "drop", "429", None]
    assert [m["text"] for m in sim.messages(ADA)] == ["four"]  # faulted calls had no effect
    assert sim.faults == []


async def test_rate_limits_can_be_configured_per_group_chat(sim: TelegramSimulator, bot: Bot) -> None:
    sim.add_group(-100, "Agency desk", [ADA, EVE])
    sim.limits = RateLimits(group_chat_rate=20 / 60, group_chat_burst=2)

    await bot.send_message(-100, "one")
    await bot.send_message(-100, "two")
    with pytest.raises(RetryAfter):
        await bot.send_message(-100, "three")

    assert sim.chat_stats(-100)["rate_limited"] == 1
    assert sim.chat_stats(ADA)["rate_limited"] == 0


# ------------------------------------------------------------------ control surface


async def test_the_control_api_drives_users_and_shows_what_the_bot_did(
    sim: TelegramSimulator, bot: Bot
) -> None:
    async with aiohttp.ClientSession(base_url=sim.url) as http:

        async def post(path: str, body: dict[str, Any]) -> Any:
            async with http.post(path, json=body) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        async def get(path: str) -> Any:
            async with http.get(path) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        await post("/control/users", {"user_id": 2002, "first_name": "Bo", "language_code": "fr"})
        sent = await post("/control/send_text", {"user_id": 2002, "text": "/start tok-5"})
        updates = await bot.get_updates()
        assert updates[-1].update_id == sent["update_id"]

        card = await bot.send_message(2002, "Hi <b>Bo</b>", parse_mode="HTML", reply_markup=approve_deny(5))
        listed = await get("/control/messages?chat_id=2002&include_user=1")
        assert [m["from_bot"] for m in listed["messages"]] == [False, True]
        assert listed["messages"][1]["html"] == "Hi <b>Bo</b>"

        tapped = await post(
            "/control/tap",
            {"user_id": 2002, "chat_id": 2002, "message_id": card.message_id, "button_text": "Deny"},
        )
        updates = await bot.get_updates(offset=updates[-1].update_id + 1)
        assert updates[-1].callback_query is not None
        assert updates[-1].callback_query.id == tapped["callback_query_id"]
        assert updates[-1].callback_query.data == "deny:5"

        replied = await post(
            "/control/send_text",
            {"user_id": 2002, "text": "Because", "reply_to_message_id": card.message_id},
        )
        updates = await bot.get_updates(offset=updates[-1].update_id + 1)
        assert updates[-1].update_id == replied["update_id"]
        assert updates[-1].message is not None and updates[-1].message.reply_to_message is not None
        assert updates[-1].message.reply_to_message.message_id == card.message_id

        await post("/control/faults", {"kind": "502", "methods": ["sendMessage"]})
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(2002, "lost")
        calls = await get("/control/calls?method=sendMessage")
        assert [c["status"] for c in calls["calls"]] == [200, 502]

        async with http.post(
            "/control/tap", json={"user_id": 2002, "chat_id": 2002, "message_id": 99}
        ) as bad:
            assert bad.status == 400 and "no message 99" in (await bad.json())["error"]

        await post("/control/reset", {})
        assert (await get("/control/messages?chat_id=2002"))["messages"] == []


async def test_wait_for_gives_up_with_a_list_of_recent_calls(sim: TelegramSimulator, bot: Bot) -> None:
    await bot.send_message(ADA, "Something else")

    with pytest.raises(TimeoutError, match=r"(?s)sendMessage -> 200.*Something else"):
        await sim.wait_for(lambda: sim.messages(EVE), timeout=0.05)


async def test_the_module_runs_as_a_standalone_server_until_terminated() -> None:
    args = ("--port", "0", "--bot", f"{TOKEN}:{BOT_USERNAME}", "--user", f"{ADA}:Ada:en")
    async with running_module("sandbox.telegram", *args, banner_timeout=15) as banner:
        url = banner.split(" on ", 1)[1].split()[0]
        async with Bot(TOKEN, base_url=f"{url}/bot") as client:
            assert (await client.get_me()).username == BOT_USERNAME
        async with aiohttp.ClientSession() as http, http.get(f"{url}/control/state") as response:
            state = await response.json()
        assert [u["id"] for u in state["users"]] == [ADA]
