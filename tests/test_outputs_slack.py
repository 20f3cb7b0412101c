"""The agency sees each output in the request's Slack thread (uploaded through
files.getUploadURLExternal / files.completeUploadExternal) and may release or reject it only where
the artist's policy lets the agency decide. The real service against the Slack simulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from storage.tables import Artist, AuditEvent, Grant, InboxItem, Notice, Output
from tests.conftest import stored_status
from tests.output_samples import sample
from tests.slack_fixtures import AGENT, BOARD, SlackWorld, module_world, wait_ephemeral, wait_root

pytestmark = pytest.mark.asyncio(loop_scope="module")


# One service and simulator for the module: each test files its own requests and outputs,
# and looks only at what its own clicks stored.
world = module_world("outputs_slack")


async def output_in_thread(
    world: SlackWorld, artist_id: str, description: str
) -> tuple[str, str, dict[str, Any]]:
    """Files a request, has the artist approve, uploads an output; (output id, root ts, actions reply)."""
    request_id = await world.submit(artist_id, starts_at=datetime.now(UTC).isoformat())
    await world.artist_decides(request_id, artist_id)
    root = await wait_root(world.sim, BOARD, request_id)
    async with world.desk.db.transaction() as session:
        grant_id = (await session.scalars(select(Grant.id).where(Grant.request_id == request_id))).one()
    async with world.http() as client:
        answer = await client.post(
            f"/v1/grants/{grant_id}/outputs",
            files={"file": ("a.png", sample("image/png"), "image/png")},
            data={"description": description},
        )
    assert answer.status_code == 201, answer.text
    output_id = str(answer.json()["id"])

    def posted() -> tuple[dict[str, Any], dict[str, Any]] | None:
        replies = world.sim.thread(BOARD, root["ts"])
        upload = next((r for r in replies if r.get("files") and description in r["text"]), None)
        after = next((r for r in replies if "this output" in r["text"]), None)
        return (upload, after) if upload and after else None

    upload, actions = await world.sim.wait_for(posted, timeout=15)
    assert upload["files"][0]["name"].endswith(".png")
    return output_id, root["ts"], actions


async def test_the_agency_releases_where_the_policy_lets_it_decide(world: SlackWorld) -> None:
    output_id, root_ts, actions = await output_in_thread(world, world.roster.delegated, "Trailer frame 12")
    before = await inbox_keys(world)
    elements = [e["action_id"] for b in actions["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert elements == ["output_release", "output_reject"]
    await world.sim.click(AGENT, BOARD, actions["ts"], "output_release")
    await world.sim.wait_for(
        lambda: any("released* by the agency" in r["text"] for r in world.sim.thread(BOARD, root_ts))
    )
    assert await stored_status(world.desk, Output, output_id) == "released"
    # The click was stored before its ack and marked handled with the release.
    assert await inbox_since(world, before) == [("output_release", True)]


async def test_the_agency_cannot_decide_for_an_artist_only_artist(world: SlackWorld) -> None:
    output_id, _root_ts, actions = await output_in_thread(
        world, world.roster.solo, "Poster for the solo artist"
    )
    assert "releases or rejects this output in Telegram" in actions["text"]
    assert not [b for b in actions["blocks"] if b["type"] == "actions"]
    # A forged click with the output's id: refused, nothing changes.
    await world.sim.click(AGENT, BOARD, actions["ts"], "output_release", value=output_id)
    await wait_ephemeral(world.sim, AGENT, "decides alone")
    assert await stored_status(world.desk, Output, output_id) == "pending"
    # A forged Reject: refused before any form opens.
    await world.sim.click(AGENT, BOARD, actions["ts"], "output_reject", value=output_id)
    await world.sim.wait_for(
        lambda: len([e for e in world.sim.ephemerals(user=AGENT) if "decides alone" in e["text"]]) == 2
    )
    assert not [v for v in world.sim.views() if output_id in v["view"].get("private_metadata", "")]
    assert await stored_status(world.desk, Output, output_id) == "pending"


async def reject_form_of(world: SlackWorld, output_id: str, actions: dict[str, Any]) -> dict[str, Any]:
    """Clicks Reject under an output; the form it opens (the simulator's view entry)."""
    await world.sim.click(AGENT, BOARD, actions["ts"], "output_reject")

    def opened() -> dict[str, Any] | None:
        return next(
            (
                v
                for v in world.sim.views()
                if v["view"]["callback_id"] == "board_output_reject_reason"
                and output_id in v["view"]["private_metadata"]
            ),
            None,
        )

    form = await world.sim.wait_for(opened)
    assert form is not None
    return form


async def inbox_keys(world: SlackWorld) -> set[str]:
    """The keys in the inbox now, to tell a test's own arrivals from the module's earlier ones."""
    async with world.desk.db.transaction() as session:
        return set((await session.scalars(select(InboxItem.key))).all())


async def inbox_since(world: SlackWorld, before: set[str]) -> list[tuple[str, bool]]:
    """The output clicks stored since `before`, each with whether it was handled."""
    async with world.desk.db.transaction() as session:
        stored = (await session.execute(select(InboxItem.key, InboxItem.kind, InboxItem.done_at))).all()
    return [
        (kind, done is not None)
        for key, kind, done in stored
        if key not in before and kind.startswith("output_")
    ]


async def test_the_agency_rejects_with_the_reason_it_types(world: SlackWorld) -> None:
    output_id, root_ts, actions = await output_in_thread(world, world.roster.delegated, "Trailer frame 7")
    before = await inbox_keys(world)
    form = await reject_form_of(world, output_id, actions)
    # Nothing is decided by the click itself: the form asks why, and the reason is required.
    assert await stored_status(world.desk, Output, output_id) == "pending"
    assert await inbox_since(world, before) == []
    reason_input = next(b for b in form["view"]["blocks"] if b["type"] == "input")
    assert reason_input["block_id"] == "reason" and not reason_input.get("optional")
    async with world.desk.db.transaction() as session:  # the artist has linked Telegram
        artist = await session.get(Artist, world.roster.delegated)
        assert artist is not None
        artist.telegram_chat_id = 4242
    answer = await world.sim.submit_view(AGENT, form["id"], {"reason_text": "The jawline is not hers"})
    assert answer.status == 200 and not answer.body.strip()
    await world.sim.wait_for(
        lambda: any(
            "rejected* by the agency: The jawline is not hers" in r["text"]
            for r in world.sim.thread(BOARD, root_ts)
        )
    )
    await wait_ephemeral(world.sim, AGENT, "Rejected.")
    async with world.desk.db.transaction() as session:
        output = await session.get(Output, output_id)
        assert output is not None
        assert (output.status, output.reason, output.decided_by_kind) == (
            "rejected",
            "The jawline is not hers",
            "agency",
        )
        told = (
            await session.execute(
                select(Notice.recipient_id, Notice.payload).where(
                    Notice.kind == "output_decided", Notice.recipient_kind == "artist"
                )
            )
        ).all()
    # The artist is told in Telegram.
    assert [who for who, payload in told if payload.get("output_id") == output_id] == [world.roster.delegated]
    # The submission was stored before its ack and marked handled with the rejection.
    assert await inbox_since(world, before) == [("output_reject_submitted", True)]


async def test_a_blank_reason_or_one_with_a_hidden_character_goes_back_to_the_form(world: SlackWorld) -> None:
    output_id, _root_ts, actions = await output_in_thread(world, world.roster.delegated, "Poster B")
    before = await inbox_keys(world)
    form = await reject_form_of(world, output_id, actions)
    blank = await world.sim.submit_view(AGENT, form["id"], {"reason_text": "   "})
    assert blank.json()["response_action"] == "errors"
    assert next(v for v in world.sim.views() if v["id"] == form["id"])["errors"]["reason"] == (
        "Please type why this output is rejected."
    )
    answer = await world.sim.submit_view(AGENT, form["id"], {"reason_text": "too\u202edark"})
    assert answer.json()["response_action"] == "errors"
    shown = next(v for v in world.sim.views() if v["id"] == form["id"])
    assert shown["open"]
    assert shown["errors"]["reason"].startswith("The reason holds")
    assert "U+202E" in shown["errors"]["reason"]
    assert await stored_status(world.desk, Output, output_id) == "pending"
    assert await inbox_since(world, before) == []


async def test_a_forged_reject_form_naming_another_output_is_refused(world: SlackWorld) -> None:
    first, _root_ts, actions = await output_in_thread(world, world.roster.delegated, "Frame one")
    other, _other_root, _other_actions = await output_in_thread(world, world.roster.delegated, "Frame two")
    before = await inbox_keys(world)
    form = await reject_form_of(world, first, actions)
    # The form's metadata rewritten to name the other output, its MAC kept.
    signed = json.loads(form["view"]["private_metadata"])
    body = json.loads(signed["b"]) | {"o": other}
    forged = json.dumps({"b": json.dumps(body, separators=(",", ":")), "m": signed["m"]})
    world.sim._views[form["id"]].view["private_metadata"] = forged
    answer = await world.sim.submit_view(AGENT, form["id"], {"reason_text": "Not this one"})
    assert answer.json()["response_action"] == "errors"
    shown = next(v for v in world.sim.views() if v["id"] == form["id"])
    assert "not made by this service" in shown["errors"]["reason"]
    assert await stored_status(world.desk, Output, first) == "pending"
    assert await stored_status(world.desk, Output, other) == "pending"
    assert await inbox_since(world, before) == []
    async with world.desk.db.transaction() as session:
        refused = (
            await session.execute(
                select(AuditEvent.action, AuditEvent.actor_kind).where(AuditEvent.subject_id == other)
            )
        ).all()
    assert ("output.reject.refused", "stranger") in [tuple(r) for r in refused]
