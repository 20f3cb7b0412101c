"""The agency's pause on the Slack board over real HTTP: `likeness serve` ↔ the Slack simulator."""

from __future__ import annotations

import pytest
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
    module_world,
    status_text,
    wait_ephemeral,
    wait_root,
    wait_status,
    wait_thread,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


world = module_world("slack_pause")


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

    answer = await world.command(f"pause {delegated} press   inquiry <!channel>")

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
    assert "already paused" in await world.command(f"pause {delegated}")

    answer = await world.command(f"resume {delegated}", user=PARTNER)  # any listed member of the agency

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
    solo = await world.command(f"pause {roster.solo}")
    assert solo == ":no_entry: Not done: this artist decides alone (policy artist_only): only they can pause."
    artist = Actor(ActorKind.artist, roster.shared, ChannelKind.telegram)
    await workflow.pause_artist(world.desk, artist_id=roster.shared, actor=artist)
    lifted = await world.command(f"resume {roster.shared}")
    assert lifted.startswith(":no_entry: Not done: only the artist can resume this pause")
    assert "No artist `art_nope`" in await world.command("pause art_nope")
    assert (await world.command("pause")).startswith("*`/likeness` on your agency's board channel:*")
    assert (await world.command(f"resume {roster.shared} now")).startswith("*`/likeness`")
    assert "Only the members listed" in await world.command(f"pause {roster.delegated}", user=STRANGER)
    await workflow.resume_artist(world.desk, artist_id=roster.shared, actor=artist)
