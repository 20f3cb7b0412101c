"""Webhook mode over real HTTP: Telegram (the simulator) posts updates to `likeness serve`, which
takes them only with the right X-Telegram-Bot-Api-Secret-Token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from bot import workflow
from bot.models import ActorKind
from sandbox.pg_server import free_port
from storage.tables import Artist, InboxItem
from tests.telegram_fixtures import TOKEN, World, buttons, end_world, make_world
from tests.test_inbox import decision_and_events

pytestmark = pytest.mark.asyncio(loop_scope="module")

SECRET = "webhook-Secret_0123456789"
HEADER = "X-Telegram-Bot-Api-Secret-Token"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """The service in webhook mode; its address is known before it starts, as Telegram needs it."""
    port = free_port()
    built = await make_world(
        tmp_path_factory.mktemp("telegram-webhook"),
        HTTP_PORT=str(port),
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    await built.start()
    yield built
    await end_world(built)


def start_update(user_id: int, text: str) -> dict[str, Any]:
    """An update as Telegram would post it: a user writing to the bot."""
    return {
        "update_id": 900_000 + user_id,
        "message": {
            "message_id": 1,
            "date": 1_800_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Eve"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Eve"},
            "text": text,
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }


async def test_the_service_registers_its_webhook_with_the_secret_and_never_polls(world: World) -> None:
    [registered] = [c for c in world.sim.calls("setWebhook") if c["ok"]]

    assert registered["params"]["url"] == f"{world.url}/telegram/webhook"
    assert registered["params"]["secret_token"] == SECRET
    assert world.sim.calls("getUpdates") == []


async def test_updates_with_the_right_secret_are_handled(world: World) -> None:
    party = await world.party("Webhook Artist")
    request_id = await world.submit(party)
    card = await world.card(party.user_id, request_id)

    answer = await world.tap(party.user_id, card, "Approve")

    assert answer["text"] == "Approved. Thank you."
    await world.card_where(party.user_id, request_id, lambda c: not buttons(c))
    deliveries = world.sim.webhook_deliveries()
    assert deliveries and all(d["status"] == 200 for d in deliveries)


async def test_calls_without_the_right_secret_are_refused_and_change_nothing(world: World) -> None:
    artist = await workflow.add_artist(world.desk, name="Target")
    token = await workflow.create_invite(world.desk, subject_kind=ActorKind.artist, subject_id=artist.id)
    intruder = world.new_user("Eve")
    world.sim.mark_started(TOKEN, intruder)
    update = start_update(intruder, f"/start {token}")
    hook = f"{world.url}/telegram/webhook"

    missing = await world.http.post(hook, json=update)
    wrong = await world.http.post(hook, json=update, headers={HEADER: "not-the-secret"})
    garbage = await world.http.post(hook, content=b"{not json", headers={HEADER: "x" * 300})

    assert [missing.status_code, wrong.status_code, garbage.status_code] == [403, 403, 403]
    # The same update with the right secret is taken: the refusal was about the secret alone.
    accepted = await world.http.post(hook, json=update, headers={HEADER: SECRET})
    assert accepted.status_code == 200
    await world.wait_text(intruder, "linked")
    async with world.desk.db.read() as session:
        linked = await session.get(Artist, artist.id)
    assert linked is not None and linked.telegram_user_id == intruder
    refused_then = [m for m in world.sim.messages(intruder, TOKEN)]
    assert len(refused_then) == 1  # only the greeting of the accepted call


async def test_a_body_that_is_not_an_update_is_a_400(world: World) -> None:
    answer = await world.http.post(
        f"{world.url}/telegram/webhook", content=b"[1, 2", headers={HEADER: SECRET}
    )

    assert answer.status_code == 400


async def test_telegram_sending_an_update_again_has_one_effect(world: World) -> None:
    party = await world.party("Repeat Artist")
    request_id = await world.submit(party)
    card = await world.card(party.user_id, request_id)
    query = await world.sim.tap(
        TOKEN, party.user_id, party.user_id, card["message_id"], button_text="Approve"
    )
    assert (await world.answer(query))["text"] == "Approved. Thank you."
    [tapped] = [u for u in world.sim.updates(TOKEN) if (u.get("callback_query") or {}).get("id") == query]

    # Telegram repeats an update it did not see answered in time; the inbox already holds this one.
    again = await world.http.post(f"{world.url}/telegram/webhook", json=tapped, headers={HEADER: SECRET})

    assert again.status_code == 200
    decisions, events = await decision_and_events(world.desk, request_id)
    async with world.desk.db.read() as session:
        row = await session.scalar(
            select(InboxItem).where(InboxItem.key.like(f"telegram:%:{tapped['update_id']}:%"))
        )
    assert (decisions, events) == (1, 1)
    assert row is not None and row.done_at is not None
    assert (
        len([c for c in world.sim.calls("answerCallbackQuery") if c["params"]["callback_query_id"] == query])
        == 1
    )
