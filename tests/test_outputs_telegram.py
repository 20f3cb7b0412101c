"""The artist releases or rejects outputs in Telegram: the real service over HTTP against the Bot
API simulator; each type arrives as Telegram shows it, with its caption and buttons."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from bot import workflow
from bot.models import Actor, ActorKind, ChannelKind
from bot.receipts import parse_keys_document, verify_receipt
from sandbox.service_process import run_cli
from storage.tables import Notice
from tests.output_samples import sample
from tests.telegram_fixtures import TOKEN, Party, World, buttons, module_world
from tests.test_workflow import approve

KIND_OF = {
    "image/jpeg": "photo",
    "image/png": "photo",
    "image/webp": "document",
    "video/mp4": "video",
    "audio/mpeg": "audio",
    "audio/ogg": "document",
}


pytestmark = pytest.mark.asyncio(loop_scope="module")


# One service and simulator for the module; each test has its own party and chat.
world = module_world("outputs_telegram")


async def active_grant(world: World, party: Party) -> str:
    request_id = await world.submit(party, starts_at=datetime.now(UTC).isoformat())
    decided = await approve(
        world.desk, request_id, Actor(ActorKind.artist, party.artist_id, ChannelKind.telegram)
    )
    assert decided.view.grant is not None
    return decided.view.grant.id


async def upload(
    world: World, party: Party, grant_id: str, media_type: str, description: str
) -> dict[str, Any]:
    answer = await world.http.post(
        f"{world.url}/v1/grants/{grant_id}/outputs",
        files={"file": ("made.bin", sample(media_type), media_type)},
        data={"description": description},
        headers={"Authorization": f"Bearer {party.api_key}"},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def output_message(world: World, party: Party, description: str) -> dict[str, Any]:
    return await world.wait_text(party.user_id, description)


async def test_each_type_reaches_the_artist_as_telegram_shows_it_with_release_and_reject(
    world: World,
) -> None:
    party = await world.party()
    grant_id = await active_grant(world, party)
    for media_type, kind in KIND_OF.items():
        description = f"Scene made as {media_type}"
        await upload(world, party, grant_id, media_type, description)
        message = await output_message(world, party, description)
        assert message["kind"] == kind
        assert "Dream Studio made this with your likeness" in message["caption"]
        assert buttons(message) == ["✅ Release", "❌ Reject"]


async def test_release_by_tap_signs_a_receipt_and_edits_the_caption(world: World) -> None:
    party = await world.party()
    grant_id = await active_grant(world, party)
    made = await upload(world, party, grant_id, "image/png", "The poster, final cut")
    message = await output_message(world, party, "The poster, final cut")
    answer = await world.tap(party.user_id, message, "✅ Release")
    assert answer["text"] == "Released. Thank you."
    edited = await world.sim.wait_for(
        lambda: next(
            (m for m in world.sim.messages(party.user_id, TOKEN) if "Released" in (m["caption"] or "")), None
        )
    )
    assert buttons(edited) == []
    headers = {"Authorization": f"Bearer {party.api_key}"}
    fetched = (await world.http.get(f"{world.url}/v1/outputs/{made['id']}", headers=headers)).json()
    assert fetched["status"] == "released"
    receipt = (await world.http.get(f"{world.url}/v1/outputs/{made['id']}/receipt", headers=headers)).json()
    keys = (await world.http.get(f"{world.url}/.well-known/likeness-keys.json")).json()
    verify_receipt(receipt, parse_keys_document(keys))
    assert receipt["output"]["sha256"] == hashlib.sha256(sample("image/png")).hexdigest()
    assert receipt["grant"]["id"] == grant_id
    release_file, keys_file = world.root / "release.json", world.root / "keys.json"
    release_file.write_text(json.dumps(receipt))
    keys_file.write_text(json.dumps(keys))

    async def verify_online() -> tuple[int, dict[str, Any]]:
        args = (
            "receipt",
            "verify",
            str(release_file),
            "--keys",
            str(keys_file),
            "--online",
            "--url",
            world.url,
        )
        done = await asyncio.to_thread(run_cli, dict(world.env), world.root, *args, "--json")
        return done.returncode, json.loads(done.stdout.splitlines()[-1])

    assert await verify_online() == (0, await verify_online_expected(receipt, grant_id, "active", True))
    await workflow.revoke_grant(
        world.desk, grant_id=grant_id, actor=Actor(ActorKind.artist, party.artist_id, ChannelKind.telegram)
    )
    code, found = await verify_online()
    assert code == 3 and found["grant_status"] == "revoked" and found["in_force"] is False
    with pytest.raises(workflow.AlreadyDecided):  # a second decision changes nothing
        await workflow.decide_output(
            world.desk,
            output_id=made["id"],
            actor=Actor(ActorKind.artist, party.artist_id, ChannelKind.telegram),
            release=False,
        )


async def verify_online_expected(
    receipt: dict[str, Any], grant_id: str, status: str, in_force: bool
) -> dict[str, Any]:
    return {
        "valid": True,
        "type": "likeness-output-release-receipt",
        "output_id": receipt["output"]["id"],
        "output_sha256": receipt["output"]["sha256"],
        "grant_id": grant_id,
        "terms_hash": receipt["terms_hash"],
        "released_at": receipt["released_at"],
        "file_checked": False,
        "grant_status": status,
        "in_force": in_force,
    }


async def reject_tapped(
    world: World, media_type: str, description: str
) -> tuple[Party, dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A new party's active grant and an output on it whose Reject the artist taps: (the party, the
    output as uploaded, its message, the message offering the reasons)."""
    party = await world.party()
    grant_id = await active_grant(world, party)
    made = await upload(world, party, grant_id, media_type, description)
    message = await output_message(world, party, description)
    await world.tap(party.user_id, message, "❌ Reject")
    reasons = await world.sim.wait_for(
        lambda: next((m for m in world.sim.messages(party.user_id, TOKEN) if "Back" in buttons(m)), None)
    )
    return party, made, message, reasons


async def test_reject_takes_a_reason(world: World) -> None:
    party, made, _, reasons = await reject_tapped(world, "audio/mpeg", "The voice line for the trailer")
    answer = await world.tap(party.user_id, reasons, "I do not like how I appear")
    assert answer["text"] == "Rejected. Thank you."
    headers = {"Authorization": f"Bearer {party.api_key}"}
    fetched = (await world.http.get(f"{world.url}/v1/outputs/{made['id']}", headers=headers)).json()
    assert fetched["status"] == "rejected"
    assert fetched["reason"] == "the artist does not like how they appear"
    missing = await world.http.get(f"{world.url}/v1/outputs/{made['id']}/receipt", headers=headers)
    assert missing.status_code == 404


async def test_reject_in_the_artists_own_words(world: World) -> None:
    from tests.telegram_fixtures import reply

    party, made, message, _ = await reject_tapped(world, "video/mp4", "The teaser, 12 seconds")
    await world.tap(party.user_id, message, "Write my own reason…")
    prompt = await world.wait_text(party.user_id, "Reply to this message with your reason for rejecting")
    assert prompt["reply_to_message_id"] == message["message_id"]  # under the output it is about
    async with world.desk.db.read() as session:
        asked = (
            await session.execute(select(Notice.kind).where(Notice.recipient_id == party.artist_id))
        ).scalars()
        assert "output_prompt" in set(asked)  # the prompt left through the outbox
    await reply(world.sim, party.user_id, prompt["message_id"], "My face looks wrong in the last frame")
    await world.wait_text(party.user_id, "Your reason was recorded")
    headers = {"Authorization": f"Bearer {party.api_key}"}
    fetched = (await world.http.get(f"{world.url}/v1/outputs/{made['id']}", headers=headers)).json()
    assert (fetched["status"], fetched["reason"]) == ("rejected", "My face looks wrong in the last frame")


async def test_a_stranger_cannot_release_and_hidden_characters_are_no_reason(world: World) -> None:
    from tests.telegram_fixtures import reply

    party = await world.party()
    grant_id = await active_grant(world, party)
    made = await upload(world, party, grant_id, "image/jpeg", "Still from scene 9")
    message = await output_message(world, party, "Still from scene 9")
    stranger = world.new_user("Eve")
    refused = await world.tap(party.user_id, message, "✅ Release", as_user=stranger)
    assert refused["show_alert"] is True
    await world.tap(party.user_id, message, "❌ Reject")
    await world.sim.wait_for(
        lambda: next((m for m in world.sim.messages(party.user_id, TOKEN) if "Back" in buttons(m)), None)
    )
    await world.tap(party.user_id, message, "Write my own reason…")
    prompt = await world.wait_text(party.user_id, "Reply to this message with your reason for rejecting")
    await reply(world.sim, party.user_id, prompt["message_id"], "fine\u202e enif")
    await world.wait_text(party.user_id, "Please type it again as plain text")
    headers = {"Authorization": f"Bearer {party.api_key}"}
    fetched = (await world.http.get(f"{world.url}/v1/outputs/{made['id']}", headers=headers)).json()
    assert fetched["status"] == "pending"
