"""The agency sees each output in the request's Slack thread (uploaded through
files.getUploadURLExternal / files.completeUploadExternal) and may release or reject it only where
the artist's policy lets the agency decide. The real service against the Slack simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.tables import Grant, InboxItem, Output
from tests.output_samples import sample
from tests.slack_fixtures import AGENT, BOARD, SlackWorld, start_world, stop_world, wait_ephemeral, wait_root


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[SlackWorld]:
    made = await start_world(tmp_path)
    try:
        yield made
    finally:
        await stop_world(made)


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


async def status_of(world: SlackWorld, output_id: str) -> str:
    async with world.desk.db.transaction() as session:
        output = await session.get(Output, output_id)
        assert output is not None
        return output.status


async def test_the_agency_releases_where_the_policy_lets_it_decide(world: SlackWorld) -> None:
    output_id, root_ts, actions = await output_in_thread(world, world.roster.delegated, "Trailer frame 12")
    elements = [e["action_id"] for b in actions["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert elements == ["output_release", "output_reject"]
    await world.sim.click(AGENT, BOARD, actions["ts"], "output_release")
    await world.sim.wait_for(
        lambda: any("released* by the agency" in r["text"] for r in world.sim.thread(BOARD, root_ts))
    )
    assert await status_of(world, output_id) == "released"
    async with world.desk.db.transaction() as session:
        stored = (await session.execute(select(InboxItem.kind, InboxItem.done_at))).all()
    # The click was stored before its ack and marked handled with the release.
    assert [(kind, done is not None) for kind, done in stored if kind.startswith("output_")] == [
        ("output_release", True)
    ]


async def test_the_agency_cannot_decide_for_an_artist_only_artist(world: SlackWorld) -> None:
    output_id, _root_ts, actions = await output_in_thread(
        world, world.roster.solo, "Poster for the solo artist"
    )
    assert "releases or rejects this output in Telegram" in actions["text"]
    assert not [b for b in actions["blocks"] if b["type"] == "actions"]
    # A forged click with the output's id: refused, nothing changes.
    await world.sim.click(AGENT, BOARD, actions["ts"], "output_release", value=output_id)
    await wait_ephemeral(world.sim, AGENT, "decides alone")
    assert await status_of(world, output_id) == "pending"
