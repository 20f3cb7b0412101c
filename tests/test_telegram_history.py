"""`/history` over real HTTP: `likeness serve` ↔ the Bot API simulator. The linked artist gets
their own signed bundle as a file; a stranger gets the way to link and no file."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from bot import workflow
from bot.bundle import bundle_name, verify_bundle
from bot.models import Actor, ActorKind, ChannelKind, Outcome
from storage.tables import Request
from tests.telegram_fixtures import TOKEN, World, module_world

pytestmark = pytest.mark.asyncio(loop_scope="module")


# The simulator and one running service.
world = module_world("history")


def documents(world: World, chat_id: int) -> list[dict[str, Any]]:
    return [m for m in world.sim.messages(chat_id, TOKEN) if m["kind"] == "document"]


async def test_history_sends_the_artist_their_own_signed_bundle(world: World) -> None:
    party = await world.party("Zhou Xun")
    other = await world.party("Sun Li")
    request_id = await world.file_directly(party)
    async with world.desk.db.read() as session:
        request = await session.get(Request, request_id)
    assert request is not None
    decided = await workflow.decide(
        world.desk,
        request_id=request_id,
        actor=Actor(ActorKind.artist, party.artist_id, ChannelKind.telegram),
        outcome=Outcome.approve,
        terms_hash=request.terms_hash,
    )
    assert decided.view.grant is not None

    await world.sim.send_text(TOKEN, party.user_id, "/history")

    await world.wait_text(party.user_id, "on its way as a file")
    sent = await world.sim.wait_for(lambda: documents(world, party.user_id))
    assert "consent history" in sent[0]["text"]
    data = world.sim.file_bytes(sent[0]["document"]["file_id"])
    checked = verify_bundle(data, world.desk.signer.public_keys_document())
    assert (checked.artist_id, checked.requests, checked.receipts) == (party.artist_id, 1, 1)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        bundle = json.loads(archive.read("bundle.json"))
    assert bundle["artist"]["name"] == "Zhou Xun" and bundle["requests"][0]["id"] == request_id
    assert sent[0]["document"]["file_name"] == bundle_name(party.artist_id)
    assert documents(world, other.user_id) == []  # nobody else's chat gets it


async def test_a_stranger_asking_for_history_is_refused_and_gets_no_file(world: World) -> None:
    await world.party("Ma Yili")  # an artist exists; the stranger is not them
    stranger = world.new_user("Passer-by")

    await world.sim.send_text(TOKEN, stranger, "/history")

    assert "invite link" in (await world.wait_text(stranger, "invite"))["text"]
    assert documents(world, stranger) == []
