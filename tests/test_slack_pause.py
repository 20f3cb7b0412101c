"""The agency's pause on the Slack board over real HTTP: `likeness serve` ↔ the Slack simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from bot import workflow
from bot.models import Actor, ActorKind, ChannelKind
from storage.tables import AuditEvent, Grant
from tests.slack_fixtures import (
    AGENT,
    BOARD,
    PARTNER,
    STRANGER,
    SlackWorld,
    buttons,
    start_world,
    status_text,
    stop_world,
    wait_ephemeral,
    wait_root,
    wait_status,
    wait_thread,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SlackWorld]:
    started = await start_world(Path(tmp_path_factory.mktemp("slack_pause")))
    try:
        yield started
    finally:
        await stop_world(started)


async def command(world: SlackWorld, text: str, user: str = AGENT) -> str:
    """Runs `/likeness <text>` on the board as `user`; the ephemeral answer."""
    sim = world.sim
    before = len([e for e in sim.ephemerals(user=user) if e["source"] == "response_url"])
    answer = await sim.slash_command(user, BOARD, text=text)
    assert answer.status == 200
    shown = await sim.wait_for(
        lambda: [x for x in sim.ephemerals(user=user) if x["source"] == "response_url"][before:]
    )
    return str(shown[0]["text"])


async def grant_status(world: SlackWorld, request_id: str) -> str:
    async with world.desk.db.read() as session:
        grant = (await session.execute(select(Grant).where(Grant.request_id == request_id))).scalar_one()
    return grant.status


async def test_a_deciding_agency_pauses_and_resumes_from_the_board(world: SlackWorld) -> None:
    sim, delegated = world.sim, world.roster.delegated
    approved = await world.submit(delegated, project_title="Harbour Lights")
    ts = (await wait_root(sim, BOARD, approved))["ts"]
    await world.artist_decides(approved, delegated)
    await wait_thread(sim, BOARD, ts, 1)
    pending = await world.submit(delegated, project_title="Second Season")
    pending_root = await wait_root(sim, BOARD, pending)
    pending_ts = pending_root["ts"]
    assert "board_approve" in buttons(pending_root)
    approve_value = next(
        e["value"]
        for b in pending_root["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "board_approve"
    )

    answer = await command(world, f"pause {delegated} press   inquiry <!channel>")

    assert answer.startswith(":double_vertical_bar: Paused 1 grant(s) of *Li Wei*")
    assert await grant_status(world, approved) == "paused"
    replies = await wait_thread(sim, BOARD, ts, 2)
    assert replies[-1].startswith(
        ":double_vertical_bar: *All of Li Wei's consents are paused* (by the agency)"
    )
    assert "Reason: press   inquiry &lt;!channel&gt;" in replies[-1]
    root = await wait_status(sim, BOARD, ts, "Grant paused")
    assert "the artist paused everything" in status_text(root)
    # While paused, the open request's post offers no approval on the artist's behalf, and says why.
    pending_replies = await wait_thread(sim, BOARD, pending_ts, 1)
    assert "only the artist can approve this request" in pending_replies[-1]
    assert "board_approve" not in buttons(sim.message(BOARD, pending_ts))
    assert "board_deny" in buttons(sim.message(BOARD, pending_ts))
    # A click from a board that still shows the old button is refused all the same.
    await sim.click(PARTNER, BOARD, pending_ts, "board_approve", value=approve_value)
    refused = await wait_ephemeral(sim, PARTNER, "paused every consent")
    assert refused["text"].startswith(":no_entry: Not done:")
    assert await world.status(pending) == "pending"
    assert "already paused" in await command(world, f"pause {delegated}")

    answer = await command(world, f"resume {delegated}", user=PARTNER)  # any listed member of the agency

    assert answer.startswith(":arrow_forward: Resumed 1 grant(s) of *Li Wei*")
    await wait_thread(sim, BOARD, pending_ts, 2)
    assert "board_approve" in buttons(sim.message(BOARD, pending_ts))
    assert await grant_status(world, approved) == "scheduled"
    replies = await wait_thread(sim, BOARD, ts, 3)
    assert replies[-1] == (
        ":arrow_forward: The pause was lifted by the agency: the grant starts as scheduled. "
        "Dream Studio was told."
    )
    async with world.desk.db.read() as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.actor_id).where(AuditEvent.subject_id == delegated)
        )
        actions = list(rows.tuples())
    assert ("artist.paused", AGENT) in actions and ("artist.resumed", PARTNER) in actions


async def test_the_board_cannot_pause_a_solo_artist_nor_lift_the_artists_own_pause(world: SlackWorld) -> None:
    roster = world.roster
    solo = await command(world, f"pause {roster.solo}")
    assert solo == ":no_entry: Not done: this artist decides alone (policy artist_only): only they can pause."
    artist = Actor(ActorKind.artist, roster.shared, ChannelKind.telegram)
    await workflow.pause_artist(world.desk, artist_id=roster.shared, actor=artist)
    lifted = await command(world, f"resume {roster.shared}")
    assert lifted.startswith(":no_entry: Not done: only the artist can resume this pause")
    assert "No artist `art_nope`" in await command(world, "pause art_nope")
    assert (await command(world, "pause")).startswith("*`/likeness` on your agency's board channel:*")
    assert (await command(world, f"resume {roster.shared} now")).startswith("*`/likeness`")
    assert "Only the members listed" in await command(world, f"pause {roster.delegated}", user=STRANGER)
    await workflow.resume_artist(world.desk, artist_id=roster.shared, actor=artist)
