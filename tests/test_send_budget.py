"""The deployment's send budget: GCRA lanes booked in PostgreSQL, and the senders that book them."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from bot.adapters.slack import ChannelPace
from bot.adapters.telegram_limits import ChatRateLimiter
from bot.delivery import RetryLater
from bot.send_budget import DatabaseBudget
from sandbox.pg_server import PgServer
from storage.database import Database
from storage.send_budgets import book_turn, forget_idle_lanes, hold_lane

_names = itertools.count()


@pytest.fixture
async def pg_db(pg_server: PgServer) -> Any:
    """A migrated PostgreSQL database."""
    database = Database(pg_server.create_database(f"budget_{next(_names)}"))
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


async def test_a_lane_lets_its_burst_go_at_once_then_one_per_interval(pg_db: Database) -> None:
    async with pg_db.engine.begin() as connection:
        started = time.monotonic()
        waits = [await book_turn(connection, lane="bot", rate=10, burst=2) for _ in range(5)]
        taken = time.monotonic() - started
    assert waits[:2] == [0.0, 0.0]
    # Each later send is booked one interval (0.1 s) after the one before, less the time the
    # bookings themselves took (measured, so a busy machine does not make the test lie).
    for number, wait in enumerate(waits[2:], start=1):
        assert 0.1 * number - taken - 0.01 < wait <= 0.1 * number


async def test_lanes_are_independent_and_a_hold_pushes_one_lane_only(pg_db: Database) -> None:
    async with pg_db.engine.begin() as connection:
        await hold_lane(connection, lane="chat:1", seconds=30)
        held = await book_turn(connection, lane="chat:1", rate=1, burst=2)
        free = await book_turn(connection, lane="chat:2", rate=1, burst=2)
    assert 27 < held <= 30
    assert free == 0.0


async def test_idle_lanes_are_forgotten(pg_db: Database) -> None:
    async with pg_db.engine.begin() as connection:
        await book_turn(connection, lane="quiet", rate=1, burst=1)
        await hold_lane(connection, lane="busy", seconds=120)
        assert await forget_idle_lanes(connection, idle_seconds=-5) == 1  # 'quiet' ended a second ago


async def test_instances_sharing_the_database_share_one_pace(pg_db: Database) -> None:
    # Two budgets as two instances hold them: 12 sends at 20/s (burst 2) take ≥ 0.5 s together.
    first, second = DatabaseBudget(pg_db), DatabaseBudget(pg_db)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.gather(*(b.wait_turn("shared", rate=20, burst=2) for b in [first, second] * 6))
    assert loop.time() - started >= 0.45
    assert first.booked == second.booked == 6


class Booked:
    """A SendBudget that records what was booked, in order, and never waits."""

    def __init__(self) -> None:
        self.turns: list[tuple[str, float, int]] = []
        self.holds: list[tuple[str, float]] = []

    async def wait_turn(self, lane: str, *, rate: float, burst: int) -> None:
        self.turns.append((lane, rate, burst))

    async def hold(self, lane: str, seconds: float) -> None:
        self.holds.append((lane, seconds))


async def test_telegram_books_the_chat_then_the_bot_and_leaves_answers_to_taps_alone() -> None:
    budget = Booked()
    limiter = ChatRateLimiter(shared=budget, bot_id="7400001")

    async def call(**_: Any) -> bool:
        return True

    await limiter.process_request(call, (), {}, "sendMessage", {"chat_id": 42, "text": "hi"}, None)
    await limiter.process_request(call, (), {}, "editMessageText", {"chat_id": -100, "text": "x"}, None)
    await limiter.process_request(call, (), {}, "answerCallbackQuery", {"callback_query_id": "1"}, None)
    await limiter.process_request(call, (), {}, "sendChatAction", {"chat_id": 42}, None)
    assert [lane for lane, _, _ in budget.turns] == [
        "telegram:bot:7400001:chat:42",
        "telegram:bot:7400001",
        "telegram:bot:7400001:chat:-100",
        "telegram:bot:7400001",
    ]
    assert budget.turns[0][1:] == (1.0, 2) and budget.turns[2][1] == pytest.approx(20 / 60)


async def test_a_slack_channel_books_its_lane_and_a_429_holds_it_for_everyone() -> None:
    budget = Booked()
    async with ChannelPace(1.0, lane="slack:channel:C1", budget=budget).turn():
        pass
    with pytest.raises(RetryLater):
        async with ChannelPace(1.0, lane="slack:channel:C2", budget=budget).turn():
            raise RetryLater("ratelimited", after=7)
    assert budget.turns == [("slack:channel:C1", 1.0, 1), ("slack:channel:C2", 1.0, 1)]
    assert budget.holds == [("slack:channel:C2", 7)]


def test_the_budget_is_shared_on_postgresql_and_in_memory_on_sqlite(
    tmp_path: Any, pg_server: PgServer
) -> None:
    from bot.app import build_service
    from bot.config import load_settings

    def budget_of(url: str) -> object:
        settings = load_settings(database_url=url, data_dir=tmp_path / "data", sandbox_enabled=False)
        return build_service(settings).send_budget

    assert budget_of(f"sqlite+aiosqlite:///{tmp_path / 'one.db'}") is None
    assert isinstance(budget_of(pg_server.url("postgres")), DatabaseBudget)


@pytest.mark.parametrize("shared", [True, False])
async def test_two_bots_on_one_budget_stay_under_telegrams_limit(
    pg_db: Database, shared: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    from telegram.error import RetryAfter
    from telegram.ext import ExtBot

    from sandbox.telegram import TelegramSimulator

    token = "7400002:BUDGET-test-token-0123456789abcdef"
    async with TelegramSimulator(bots={token: "budget_test_bot"}) as sim:
        for chat in range(1, 81):
            sim.add_user(chat, f"User{chat}")
            sim.mark_started(token, chat)

        def limiter() -> ChatRateLimiter:
            return ChatRateLimiter(shared=DatabaseBudget(pg_db) if shared else None, bot_id="7400002")

        # Two instances' bots, each with its own limiter, sending 40 messages each at once.
        async with (
            ExtBot(token, base_url=sim.api_base_url, rate_limiter=limiter()) as first,
            ExtBot(token, base_url=sim.api_base_url, rate_limiter=limiter()) as second,
        ):
            sends = [(first if chat % 2 else second).send_message(chat, "hello") for chat in range(1, 81)]
            results = await asyncio.gather(*sends, return_exceptions=True)
    refused = [r for r in results if isinstance(r, RetryAfter)]
    if shared:
        assert refused == [] and sim.rate_limited_count == 0
    else:  # the same two bots, each limited alone: together they break the bot's limit
        assert sim.rate_limited_count > 0
