"""A fault storm from both platforms at once (429s, 5xx, dropped connections, a failing creator
webhook) delays delivery but loses and repeats nothing; and nothing the service said in it carries
a secret.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.faults.exposed import (
    Exposed,
    file_request,
    said_by,
    secrets_of,
)
from tests.faults.world import (
    APPROVED,
    TOKEN,
    Artist,
    board_status,
    keyboard,
    scaled,
    seeded_rng,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.timeout(scaled(120, 900))
async def test_fault_storm_from_both_platforms_with_drops_delays_delivery_but_loses_and_repeats_nothing(
    exposed: Exposed,
) -> None:
    world = exposed.world
    rng = seeded_rng("storm")
    size = scaled(1, 3)
    assert world.watch is not None
    faulted_before = (
        Counter(c["fault"] for c in world.tg.calls() if c["fault"]),
        Counter(c["fault"] for c in world.slack.calls() if c["fault"]),
    )
    # About one failure per lane (chat, channel, webhook): a lane that meets several in a row backs
    # off longer each time, and the run should stay short. Sends meet the first kinds, the edits of
    # the cards and of the board after a decision meet the others.
    telegram_sends = {"429": 3 * size, "500": 2 * size, "502": 2 * size, "drop": 3 * size}
    telegram_edits = {"500": 1 * size, "drop": 1 * size, "429": 1 * size}
    slack_posts = {"429": 3 * size, "500": 2 * size, "503": 1 * size, "drop": 3 * size}
    slack_updates = {"503": 1 * size, "drop": 1 * size}
    for kind, count in telegram_sends.items():
        world.tg.inject(kind, count=count, methods="sendMessage", retry_after=1)
    for kind, count in telegram_edits.items():
        world.tg.inject(kind, count=count, methods="editMessageText", retry_after=1)
    for kind, count in slack_posts.items():
        world.slack.inject(kind, count=count, methods="chat.postMessage", retry_after=1)
    for kind, count in slack_updates.items():
        world.slack.inject(kind, count=count, methods="chat.update", retry_after=1)
    world.hooks.fail_first = size

    # The burst: a request to each artist; half of them approved as soon as their card shows.
    deciding = exposed.by_board()
    artists = list(exposed.artists)
    rng.shuffle(artists)
    approved: dict[str, str] = {}

    async def one(artist: Artist) -> str:
        request_id = await file_request(world, exposed.studio, artist)
        if artist in deciding:
            card = (await world.tg.wait_for(lambda: world.cards(artist.user_id, request_id), timeout=30))[0]
            query = await world.tg.tap(
                TOKEN, artist.user_id, artist.user_id, card["message_id"], button_text="Approve"
            )
            answer = await world.tg.wait_for(lambda: world.tg.callback_answer(query), timeout=30)
            assert answer["text"] == APPROVED
            approved[request_id] = query
        return request_id

    ids = await asyncio.gather(*(one(a) for a in artists))
    filed = dict(zip(ids, artists, strict=True))

    db = world.watch
    marks = ",".join("?" * len(filed))
    await db.wait_for(
        lambda: (
            db.value(
                f"SELECT count(*) FROM notices WHERE status != 'sent' AND request_id IN ({marks})", *filed
            )
            == 0
        ),
        timeout=60,
    )
    # Every failure was met and got past: delivery was delayed, by exactly the injected faults.
    assert world.tg.faults == [] and world.slack.faults() == [] and world.hooks.fail_first <= 0
    telegram_faulted = Counter(c["fault"] for c in world.tg.calls() if c["fault"]) - faulted_before[0]
    slack_faulted = Counter(c["fault"] for c in world.slack.calls() if c["fault"]) - faulted_before[1]
    assert telegram_faulted == Counter(telegram_sends) + Counter(telegram_edits)
    assert slack_faulted == Counter(slack_posts) + Counter(slack_updates)
    # Nothing lost, nothing twice: one card and one board message per request, one thread reply
    # per decision, the decided cards edited in place, each webhook event accepted once.
    for request_id, artist in filed.items():
        [card] = world.cards(artist.user_id, request_id)
        [root] = world.roots(artist.board.channel, request_id)
        replies = world.slack.thread(artist.board.channel, root["ts"])
        if request_id in approved:
            assert keyboard(card) == [] and "Approved" in card["text"]
            assert "Approved" in board_status(root)
            assert [r["text"].split(" by ")[0] for r in replies] == [":white_check_mark: Approved"]
        else:
            assert keyboard(card) == ["Approve", "Deny"] and replies == []
    events = Counter(r.headers["Likeness-Event-Id"] for r in world.hooks.received if r.status == 200)
    webhooks = {
        n
        for (n,) in db.rows(
            f"SELECT id FROM notices WHERE channel = 'webhook' AND request_id IN ({marks})", *filed
        )
    }
    assert len(webhooks) == len(filed) + len(approved)  # submitted, and approved
    assert {n: events[n] for n in webhooks} == dict.fromkeys(webhooks, 1)


async def test_no_secret_appears_in_the_storm_log_or_in_any_answer(exposed: Exposed) -> None:
    world = exposed.world
    await world.stop()  # the log is complete once the service has exited

    said = said_by(world)
    assert "listening on" in said["stderr log"]
    leaks = [
        (what, where)
        for what, secret in secrets_of(exposed).items()
        for where, text in said.items()
        if secret in text
    ]
    assert leaks == []
