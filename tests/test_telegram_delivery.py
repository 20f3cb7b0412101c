"""Delivery to Telegram under pressure, over real HTTP: a burst of 200 cards through storms of
429s and 5xx answers, and a SIGKILL of the service in the middle of a burst."""

from __future__ import annotations

from collections import Counter

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from sandbox.telegram import RateLimits
from storage.tables import Notice
from tests.telegram_fixtures import TOKEN, Party, World, end_world, make_world, module_world

pytestmark = pytest.mark.asyncio(loop_scope="module")

ARTISTS = 50
CARDS_EACH = 4


# One service and fifty linked artists, shared by the two bursts.
world = module_world("telegram-burst")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def crowd(world: World) -> list[Party]:
    return await world.crowd(ARTISTS)


def cards_by_request(world: World, crowd: list[Party], request_ids: set[str]) -> Counter[str]:
    """How many card messages each of the given requests has in its artist's chat."""
    seen: Counter[str] = Counter()
    for party in crowd:
        for message in world.sim.messages(party.user_id, TOKEN):
            last_line = (message["text"] or "").rsplit("\n", 1)[-1]
            request_id = last_line.removeprefix("Ref ")
            if request_id in request_ids:
                seen[request_id] += 1
    return seen


async def burst(world: World, crowd: list[Party], each: int = CARDS_EACH) -> set[str]:
    """Files requests for each of the fifty artists, interleaved, as fast as the database takes them."""
    request_ids = set()
    for _round in range(each):
        for party in crowd:
            request_ids.add(await world.file_directly(party))
    return request_ids


async def unsent(world: World) -> int:
    async with world.desk.db.read() as session:
        query = select(func.count()).select_from(Notice)
        query = query.where(Notice.channel == "telegram", Notice.status != "sent")
        return int((await session.execute(query)).scalar_one())


async def test_200_cards_through_429_and_5xx_storms_arrive_once_each_within_the_limits(
    world: World, crowd: list[Party]
) -> None:
    request_ids = await burst(world, crowd)
    await world.sim.wait_for(lambda: sum(cards_by_request(world, crowd, request_ids).values()) >= 30)

    # The storm: answers Telegram gives when it is in trouble, in the middle of the burst.
    for _wave in range(2):
        world.sim.inject("429", count=10, methods="sendMessage", retry_after=1)
        world.sim.inject("500", count=8, methods="sendMessage")
        world.sim.inject("502", count=6, methods="sendMessage")
        world.sim.inject("drop", count=4, methods="sendMessage")

    await world.sim.wait_for(
        lambda: len(cards_by_request(world, crowd, request_ids)) == len(request_ids), timeout=45
    )

    counts = cards_by_request(world, crowd, request_ids)
    assert len(request_ids) == ARTISTS * CARDS_EACH
    assert set(counts.values()) == {1}, "a card was sent twice"
    assert world.sim.faults == []  # every injected failure was met, and got past
    faulted = [c for c in world.sim.calls("sendMessage") if c["fault"]]
    assert Counter(c["fault"] for c in faulted) == {"429": 20, "500": 16, "502": 12, "drop": 8}
    # Telegram never had to say "too many": no 429 of its own, no chat above its burst.
    assert world.sim.rate_limited_count == 0
    limits: RateLimits = world.sim.limits
    for party in crowd:
        stats = world.sim.chat_stats(party.user_id, TOKEN)
        assert stats["rate_limited"] == 0
        assert stats["max_in_1s"] <= limits.private_chat_burst
    # retry_after was obeyed: the next try for that chat came at least a second later.
    calls = world.sim.calls("sendMessage")
    for index, call in enumerate(calls):
        if call["fault"] == "429":
            chat = call["params"]["chat_id"]
            following = next(c for c in calls[index + 1 :] if c["params"]["chat_id"] == chat)
            assert following["time"] - call["time"] >= 0.95
    # A clean stop lets the last sends be marked; then the outbox must be empty.
    await world.stop()
    assert await unsent(world) == 0
    assert world.service is not None
    log = world.service.log()
    assert "Traceback" not in log and TOKEN not in log  # a storm is business as usual


async def test_every_card_arrives_after_a_sigkill_in_the_middle_of_a_burst(
    world: World, crowd: list[Party]
) -> None:
    if world.service is None or world.service.process.poll() is not None:
        await world.start()
    request_ids = await burst(world, crowd, each=2)  # a hundred cards
    await world.sim.wait_for(lambda: sum(cards_by_request(world, crowd, request_ids).values()) >= 30)

    await world.kill()
    delivered_before = cards_by_request(world, crowd, request_ids)
    assert len(delivered_before) < len(request_ids), "the burst was over before the crash"
    await world.start()

    await world.sim.wait_for(
        lambda: len(cards_by_request(world, crowd, request_ids)) == len(request_ids), timeout=45
    )
    counts = cards_by_request(world, crowd, request_ids)
    duplicates = sum(n - 1 for n in counts.values())
    # Only a send in flight at the crash can repeat: at most one per chat (lane).
    assert duplicates <= ARTISTS
    assert all(counts[r] >= 1 for r in request_ids)
    await world.stop()
    assert await unsent(world) == 0


async def test_a_bot_that_cannot_reach_telegram_at_start_keeps_trying_then_delivers(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    alone = await make_world(tmp_path_factory.mktemp("telegram-reconnect"))
    try:
        party = await alone.party("Reconnect Artist")
        request_id = await alone.file_directly(party)  # queued while the service is down
        alone.sim.inject("502", count=2, methods="getMe")  # Telegram is in trouble at start-up
        service = await alone.start()  # serves the API at once; the bot keeps trying behind it

        card = await alone.card(party.user_id, request_id, timeout=30)
        assert card["reply_markup"] is not None  # the card, with its buttons
        assert [c["fault"] for c in alone.sim.calls("getMe")][:3] == ["502", "502", None]
        await alone.stop()
        log = service.log()
        assert log.count("cannot reach Telegram") == 2  # one line per failed try, no traceback
        assert "Traceback" not in log and TOKEN not in log
    finally:
        await end_world(alone)
