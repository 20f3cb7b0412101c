"""Races across channels on PostgreSQL: the artist's tap, the agent's click, the creator's withdrawal
and the deadline, all at once on one request, leave exactly one outcome and audit every loser.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.render.buttons import Action
from sandbox.pg_server import PgServer
from storage.audit import verify_chain
from storage.tables import AuditEvent
from tests.faults.exposed import (
    outcome,
)
from tests.faults.world import (
    AGENT,
    APPROVED,
    DECLINED,
    TOKEN,
    Artist,
    Creator,
    FaultWorld,
    board_status,
    callback_data,
    close_world,
    open_world,
    scaled,
    seeded_rng,
    tracebacks,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.timeout(scaled(120, 900))
async def test_race_of_telegram_tap_slack_click_withdrawal_and_lapse_on_postgresql_has_one_outcome(
    tmp_path: Path, pg_server: PgServer
) -> None:
    rng = seeded_rng("race")
    rounds, at_once = scaled(1, 6), 4
    world = await open_world(tmp_path, database_url=pg_server.create_database("faults_race"))
    try:
        boards = [await world.board(f"Race Agency {n}") for n in range(rounds * at_once)]
        artists = [await world.artist(f"Race Artist {n}", board) for n, board in enumerate(boards)]
        creator = await world.creator("Race Studio", webhook=False)
        await world.start()
        winners: Counter[str] = Counter()
        async with world.client() as http:
            for first in range(0, len(artists), at_once):
                winners.update(await _race(world, http, rng, creator, artists[first : first + at_once]))
        print(f"winners over {len(artists)} races: {dict(winners)}")
        async with world.desk.db.read() as session:
            chain = await verify_chain(session)
        assert chain.intact, chain
        await world.stop()
        assert tracebacks(world.log()) == []
    finally:
        await close_world(world)


@dataclass
class Contest:
    """One request raced for: its card and board message, what the racers did, what came back."""

    request_id: str
    artist: Artist
    card: dict[str, Any]
    root: dict[str, Any]
    tap_outcome: str = "approve"
    told_before: int = 0
    tapped: dict[str, Any] = field(default_factory=dict)
    clicked: int = 0
    withdrawn: int = 0


async def _race(
    world: FaultWorld, http: httpx.AsyncClient, rng: random.Random, creator: Creator, artists: list[Artist]
) -> list[str]:
    """One request per artist, all due at the same moment; on each, at once, the artist's tap, the
    agent's click and the creator's withdrawal, while the clock reaches the deadline (the sweep
    runs at once). Checks that exactly one racer took effect on each request and that every other
    was refused and audited; returns the winners."""
    auth = {"Authorization": f"Bearer {creator.api_key}"}
    now = await world.service_now(http)
    due = (now + timedelta(minutes=10)).isoformat()
    contests = []
    for artist in artists:
        filed = await http.post(
            f"{world.url}/v1/requests", headers=auth, json=world.terms(artist, now, decision_due_at=due)
        )
        assert filed.status_code == 201, filed.text
        request_id = filed.json()["id"]
        channel = artist.board.channel
        card = (await world.tg.wait_for(lambda a=artist, r=request_id: world.cards(a.user_id, r)))[0]
        root = (await world.slack.wait_for(lambda c=channel, r=request_id: world.roots(c, r)))[0]
        told = len(world.slack.ephemerals(channel=channel, user=AGENT))
        contests.append(Contest(request_id, artist, card, root, rng.choice(["approve", "deny"]), told))

    async def after(delay: float, act: Awaitable[Any]) -> Any:
        await asyncio.sleep(delay)
        return await act

    async def tap(contest: Contest) -> None:
        data = (
            callback_data(contest.card, "Approve")
            if contest.tap_outcome == "approve"
            else world.signer().sign(f"{Action.reason}.terms", contest.request_id)
        )
        user = contest.artist.user_id
        query = await world.tg.tap(TOKEN, user, user, contest.card["message_id"], callback_data=data)
        contest.tapped = await world.tg.wait_for(lambda: world.tg.callback_answer(query))

    async def click(contest: Contest) -> None:
        channel = contest.artist.board.channel
        assert channel is not None
        contest.clicked = (
            await world.slack.click(AGENT, channel, contest.root["ts"], "board_approve")
        ).status

    async def withdraw(contest: Contest) -> None:
        answer = await http.post(f"{world.url}/v1/requests/{contest.request_id}/withdraw", headers=auth)
        contest.withdrawn = answer.status_code

    # Who starts first is seeded. The slower paths start a little earlier: a click crosses Slack's
    # signature and replay checks before its decision, a tap the simulator and the bot's update
    # queue; a withdrawal or the clock is one HTTP call.
    racers = [after(rng.uniform(0.02, 0.09), world.skip(http, 10))]
    for contest in contests:
        racers += [
            after(rng.uniform(0, 0.02), tap(contest)),
            after(rng.uniform(0, 0.01), click(contest)),
            after(rng.uniform(0.01, 0.07), withdraw(contest)),
        ]
    skipped, *_ = await asyncio.gather(*racers)
    assert skipped.status_code == 200

    winners = []
    for contest in contests:
        request_id, channel, ts = contest.request_id, contest.artist.board.channel, contest.root["ts"]
        assert contest.clicked == 200 and channel is not None
        # The board shows the outcome once it is recorded; a losing click is told why.
        await world.slack.wait_for(
            lambda c=channel, t=ts: "Waiting" not in board_status(world.slack.message(c, t))
        )
        status, decisions, grants = await outcome(world, request_id)
        slack_won = any(kind == "agency" for kind, _outcome in decisions)
        if not slack_won:
            await world.slack.wait_for(
                lambda c=channel, n=contest.told_before: (
                    len(world.slack.ephemerals(channel=c, user=AGENT)) > n
                )
            )
        won = {
            "telegram": contest.tapped["text"] in (APPROVED, DECLINED),
            "slack": slack_won,
            "withdrawal": contest.withdrawn == 200,
            "lapse": status == "lapsed",
        }
        assert sum(won.values()) == 1, (request_id, status, won, contest, decisions)
        winner = next(name for name, did in won.items() if did)
        winners.append(winner)
        assert (
            status
            == {
                "telegram": "approved" if contest.tap_outcome == "approve" else "denied",
                "slack": "approved",
                "withdrawal": "withdrawn",
                "lapse": "lapsed",
            }[winner]
        )
        assert len(decisions) == (1 if winner in ("telegram", "slack") else 0), decisions
        assert grants == (1 if status == "approved" else 0)
        if winner != "telegram":
            assert contest.tapped["show_alert"], contest.tapped
        if winner != "withdrawal":
            assert contest.withdrawn == 409
        # Every loser that acted was refused, and the refusal is in the audit chain.
        losers = {"telegram", "slack", "withdrawal"} - {winner}
        assert await _refusals(world, request_id) == len(losers), (winner, request_id)
    return winners


async def _refusals(world: FaultWorld, subject_id: str) -> int:
    """How many refusals about one request or grant the audit chain holds."""
    async with world.desk.db.read() as session:
        found = await session.execute(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.subject_id == subject_id, AuditEvent.action.like("%.refused"))
        )
        return int(found.scalar_one())
