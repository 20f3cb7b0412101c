"""Faults over real HTTP: SIGKILL at random moments during a mixed burst, races of every channel on
one request on PostgreSQL, storms from both platforms at once, and the refusals a hostile caller
meets (with a scan of everything the service said for its secrets).

The simulators and the creator's webhook endpoint run in the test process; `likeness serve` is a
subprocess. Random moments come from a seeded RNG (the seed is printed; LIKENESS_FAULT_SEED
replays it) and LIKENESS_SOAK=1 (`make soak`) makes every run longer.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot import workflow
from bot.adapters.webhook import verify_webhook
from bot.models import Actor as WorkflowActor
from bot.models import ActorKind, ChannelKind, Outcome
from bot.notices import Action
from storage.audit import verify_chain
from storage.tables import AuditEvent, Decision, Grant, Request
from tests.fault_fixtures import (
    AGENT,
    AGENT_NAME,
    APPROVED,
    DECLINED,
    SIGNING_SECRET,
    SLACK_TOKEN,
    TELEGRAM_WEBHOOK_SECRET,
    TOKEN,
    Artist,
    Creator,
    FaultWorld,
    board_buttons,
    board_status,
    callback_data,
    close_world,
    keyboard,
    open_world,
    request_of,
    request_of_card,
    scaled,
    seeded_rng,
    tracebacks,
    utc_now,
)
from tests.pg_server import PgServer, free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

OPEN = ("pending", "awaiting_cosign")
SKIPS = (4, 8, 12, 16)  # minutes the clock jumps at a time during the crash burst


# ================================================================ crash anywhere


@dataclass
class Ledger:
    """What the outside world was told was done, and so must survive any crash."""

    submitted: dict[str, Artist] = field(default_factory=dict)  # answered 201
    withdrawn: set[str] = field(default_factory=set)  # answered 200
    taps: dict[str, tuple[str, str]] = field(default_factory=dict)  # query id → (request, outcome)
    clicks: set[str] = field(default_factory=set)  # requests whose Approve click Slack acknowledged
    skips: int = 0
    unexpected: list[str] = field(default_factory=list)  # answers no caller should ever get


Step = Callable[[httpx.AsyncClient, random.Random], Awaitable[None]]


class Burst:
    """Creators, artists, agents and the clock acting at once, each at random moments."""

    def __init__(
        self, world: FaultWorld, rng: random.Random, creator: Creator, artists: list[Artist]
    ) -> None:
        self.world = world
        self.rng = rng
        self.creator = creator
        self.artists = artists
        self.channels = sorted({a.board.channel for a in artists if a.board.channel is not None})
        self.ledger = Ledger()
        self.stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._auth = {"Authorization": f"Bearer {creator.api_key}"}
        self._signer = world.signer()

    def start(self) -> None:
        """Starts every actor, each with its own pace (seconds between steps)."""
        actors: list[tuple[Step, float, float]] = [
            (self.submit, 0.25, 0.6),
            (self.tap, 0.3, 0.7),
            (self.click, 0.2, 0.5),
            (self.withdraw, 0.3, 0.8),
            (self.skip, 0.5, 1.2),
        ]
        for step, fastest, slowest in actors:
            rng = random.Random(self.rng.getrandbits(64))
            task = asyncio.create_task(self._act(step, rng, fastest, slowest), name=step.__name__)
            self._tasks.append(task)

    async def stop(self) -> None:
        """Lets every actor finish its current step, then stops."""
        self.stopping = True
        await asyncio.gather(*self._tasks)

    async def _act(self, step: Step, rng: random.Random, fastest: float, slowest: float) -> None:
        async with self.world.client() as http:
            while not self.stopping:
                await step(http, rng)
                # Random pacing from the seeded RNG: when each actor acts is part of the experiment.
                await asyncio.sleep(rng.uniform(fastest, slowest))

    def taps_confirmed(self) -> int:
        """Taps the bot answered as recorded ("Approved" / "Declined")."""
        answers = (self.world.tg.callback_answer(query) for query in self.ledger.taps)
        return sum(1 for answer in answers if answer is not None and answer["text"] in (APPROVED, DECLINED))

    def _unexpected(self, what: str, answer: httpx.Response) -> None:
        self.ledger.unexpected.append(f"{what}: {answer.status_code} {answer.text[:200]}")

    async def submit(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        """A creator files a request that will be decided, withdrawn, lapse or expire within the skips."""
        await self.world.up.wait()
        artist = rng.choice(self.artists)
        try:
            now = await self.world.service_now(http)
            # Every moment lies further ahead than one skip (at most SKIPS[-1] minutes), so a skip
            # landing between reading the clock and filing the request cannot make the terms
            # invalid; and a few skips see the request lapse, or its grant start and end.
            starts = now + timedelta(minutes=SKIPS[-1] + 1)
            body = self.world.terms(
                artist,
                now,
                project_title=f"Crash take {len(self.ledger.submitted) + 1}",
                starts_at=starts.isoformat(),
                ends_at=(starts + timedelta(minutes=rng.randint(25, 60))).isoformat(),
                decision_due_at=(now + timedelta(minutes=rng.randint(SKIPS[-1] + 1, 35))).isoformat(),
            )
            answer = await http.post(f"{self.world.url}/v1/requests", json=body, headers=self._auth)
        except httpx.HTTPError:
            return  # the service died under the call: not acknowledged, so nothing is owed
        if answer.status_code == 201:
            self.ledger.submitted[answer.json()["id"]] = artist
        else:
            self._unexpected("submit", answer)

    async def tap(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        """An artist taps Approve, or a reason to deny, on a card that still shows its buttons.

        Taps go to the simulator, which keeps them while the service is down, as Telegram does.
        """
        open_cards = [
            (artist, card)
            for artist in self.artists
            for card in self.world.cards(artist.user_id)
            if "Approve" in keyboard(card)
        ]
        if not open_cards:
            return
        artist, card = rng.choice(open_cards)
        request_id = request_of_card(card)
        assert request_id is not None
        if rng.random() < 0.7:
            data, outcome = callback_data(card, "Approve"), "approve"
        else:  # the reason buttons Deny would show, tapped straight away
            data, outcome = self._signer.sign(f"{Action.reason}.pay", request_id), "deny"
        query = await self.world.tg.tap(
            TOKEN, artist.user_id, artist.user_id, card["message_id"], callback_data=data
        )
        self.ledger.taps[query] = (request_id, outcome)

    async def click(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        """An agent approves on the artist's behalf on a board message that still offers it."""
        await self.world.up.wait()
        open_roots = [
            (channel, root)
            for channel in self.channels
            for root in self.world.roots(channel)
            if "board_approve" in board_buttons(root)
        ]
        if not open_roots:
            return
        channel, root = rng.choice(open_roots)
        try:
            answer = await self.world.slack.click(AGENT, channel, root["ts"], "board_approve")
        except aiohttp.ClientError:
            return  # the service died under the click: Slack shows the agent an error
        if answer.status == 200:
            self.ledger.clicks.add(str(root["metadata"]["event_payload"]["request_id"]))
        elif not answer.timed_out:
            self.ledger.unexpected.append(f"click: {answer.status} {answer.body[:200]}")

    async def withdraw(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        """The creator takes back one of its requests (refused when it is no longer open)."""
        await self.world.up.wait()
        if not self.ledger.submitted:
            return
        request_id = rng.choice(sorted(self.ledger.submitted))
        try:
            answer = await http.post(
                f"{self.world.url}/v1/requests/{request_id}/withdraw", headers=self._auth
            )
        except httpx.HTTPError:
            return
        if answer.status_code == 200:
            self.ledger.withdrawn.add(request_id)
        elif answer.status_code != 409:
            self._unexpected("withdraw", answer)

    async def skip(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        """Time jumps a few minutes: the sweep at once reminds, lapses, activates and expires."""
        await self.world.up.wait()
        try:
            await self.world.skip(http, rng.choice(SKIPS))
        except httpx.HTTPError:
            pass  # cut off by a kill: the restart starts from the skipped time anyway
        self.ledger.skips += 1


@pytest.mark.timeout(scaled(240, 900))
async def test_crash_anywhere_during_a_mixed_burst_loses_no_request_decision_or_notice(
    tmp_path: Path,
) -> None:
    rng = seeded_rng("crash")
    kills = scaled(3, 15)
    world = await open_world(tmp_path, DECISION_REMINDERS="10m", GRANT_REMINDERS="10m")
    try:
        # One artist per agency. Three agencies have a board in Slack, each its own channel (a
        # channel takes about a post a second, and every board update also spends one of the
        # workspace's ten chat.update calls per 12 s); the others follow in no channel at all.
        boards = [await world.board(f"Crash Agency {n}", slack=n % 3 == 0) for n in range(8)]
        artists = [await world.artist(f"Crash Artist {n}", board) for n, board in enumerate(boards)]
        creator = await world.creator("Crash Studio")
        await world.start()
        burst = Burst(world, rng, creator, artists)
        burst.start()
        for _kill in range(kills):
            # A random moment, from the seeded RNG: whatever is under way then is cut off.
            await asyncio.sleep(rng.uniform(0.25, 0.9))
            await world.kill()
            await world.start()
        await asyncio.sleep(rng.uniform(0.25, 0.9))  # the burst goes on against the last start a while
        # On a slow or busy machine the kills may leave the burst little time to act: it goes on
        # against the last start until something was filed and some tap was confirmed, so the
        # checks below have something to check.
        await world.tg.wait_for(
            lambda: len(burst.ledger.submitted) >= 3 and burst.taps_confirmed() >= 1, timeout=90
        )
        await burst.stop()
        ledger = burst.ledger

        # A day later every request is over and every grant has expired: the final state is known.
        async with world.client() as http:
            await world.skip(http, 24 * 60)
        db = world.watch
        assert db is not None
        await world.tg.wait_for(lambda: not world.tg.pending_updates(TOKEN), timeout=30)
        await db.wait_for(
            lambda: (
                db.value("SELECT count(*) FROM notices WHERE status = 'pending'") == 0
                and db.value("SELECT count(*) FROM requests WHERE status IN (?, ?)", *OPEN) == 0
                and db.value("SELECT count(*) FROM grants WHERE status IN ('scheduled', 'active')") == 0
            ),
            timeout=scaled(60, 240),
        )
        await world.stop()

        print(
            f"{len(ledger.submitted)} submitted, {len(ledger.taps)} taps, {len(ledger.clicks)} clicks, "
            f"{len(ledger.withdrawn)} withdrawn, {ledger.skips} skips, {world.kills} kills"
        )
        assert ledger.unexpected == []
        _every_acknowledged_request_and_decision_is_stored(world, ledger)
        _every_request_has_one_outcome(world)
        _every_notice_arrived_and_only_sends_in_flight_repeated(world, ledger, artists)
        code, out, err = await world.cli("audit", "verify", "--json")
        assert code == 0 and json.loads(out)["intact"], out + err
        assert tracebacks(world.log()) == []
    finally:
        await close_world(world)


def _every_acknowledged_request_and_decision_is_stored(world: FaultWorld, ledger: Ledger) -> None:
    """201s, withdrawals answered 200, taps the bot confirmed, clicks the board confirmed."""
    db = world.watch
    assert db is not None
    assert len(ledger.submitted) >= 3, "the burst filed almost nothing"
    requests = dict(db.rows("SELECT id, status FROM requests"))
    assert set(ledger.submitted) <= set(requests), "an acknowledged submission is missing"
    assert all(requests[r] == "withdrawn" for r in ledger.withdrawn)
    decided = {
        (r, kind, outcome)
        for r, kind, outcome in db.rows("SELECT request_id, actor_kind, outcome FROM decisions")
    }
    confirmed = 0
    for query, (request_id, outcome) in ledger.taps.items():
        answer = world.tg.callback_answer(query)
        if answer is not None and answer["text"] in (APPROVED, DECLINED):  # "recorded", said the bot
            confirmed += 1
            assert (request_id, "artist", outcome) in decided, (query, request_id, answer)
    for request_id in ledger.clicks:
        channel = ledger.submitted[request_id].board.channel
        assert channel is not None
        replies = [
            reply["text"]
            for root in world.roots(channel, request_id)
            for reply in world.slack.thread(channel, root["ts"])
        ]
        if any(t.startswith(f":white_check_mark: Approved by *{AGENT_NAME}*") for t in replies):
            confirmed += 1  # the board told the agency it was recorded
            assert (request_id, "agency", "approve") in decided, request_id
    assert confirmed >= 1, "no decision was confirmed during the burst"


def _every_request_has_one_outcome(world: FaultWorld) -> None:
    """Decided, withdrawn or lapsed; at most one decision; a grant exactly for the approved ones."""
    db = world.watch
    assert db is not None
    decisions = Counter(r for (r,) in db.rows("SELECT request_id FROM decisions"))
    grants = {r for (r,) in db.rows("SELECT request_id FROM grants")}
    for request_id, status in db.rows("SELECT id, status FROM requests"):
        assert status in {"approved", "denied", "withdrawn", "lapsed"}, (request_id, status)
        assert (request_id in grants) == (status == "approved"), request_id
        assert decisions[request_id] == (1 if status in {"approved", "denied"} else 0), request_id


def _every_notice_arrived_and_only_sends_in_flight_repeated(
    world: FaultWorld, ledger: Ledger, artists: list[Artist]
) -> None:
    """Nothing pending or given up; each card, board message and webhook event arrived at least
    once and the edits too; more than once only for a send in flight at a kill: at most one per
    lane (chat, channel, webhook creator) and kill."""
    db = world.watch
    assert db is not None
    assert db.rows("SELECT id, channel, kind, last_error FROM notices WHERE status != 'sent'") == []
    artist_of = {a.artist_id: a for a in artists}
    for request_id, artist_id in db.rows("SELECT id, artist_id FROM requests"):
        artist = artist_of[artist_id]
        assert world.cards(artist.user_id, request_id), f"no card for {request_id}"
        if artist.board.channel is not None:
            assert world.roots(artist.board.channel, request_id), f"no board message for {request_id}"
    # The card and the board message show each request's outcome: their edits arrived too.
    for request_id, chat, message in db.rows(
        "SELECT request_id, chat_id, message_id FROM card_refs WHERE channel = 'telegram'"
    ):
        card = world.tg.message(int(chat), int(message), TOKEN)
        assert card is not None and keyboard(card) == [], f"the card of {request_id} still has buttons"
    for request_id, channel, ts in db.rows(
        "SELECT request_id, chat_id, message_id FROM card_refs WHERE channel = 'slack'"
    ):
        assert "Waiting" not in board_status(world.slack.message(channel, ts)), request_id
    events = Counter(r.headers["Likeness-Event-Id"] for r in world.hooks.received if r.status == 200)
    webhooks = {n for (n,) in db.rows("SELECT id FROM notices WHERE channel = 'webhook'")}
    assert webhooks and webhooks <= set(events), "a webhook event never arrived"

    assert sum(n - 1 for n in events.values()) <= world.kills  # one creator: one lane
    for artist in artists:
        cards = Counter(request_of_card(c) for c in world.cards(artist.user_id))
        assert sum(n - 1 for n in cards.values()) <= world.kills, (artist, cards)
        channel = artist.board.channel
        if channel is None:
            continue
        roots = Counter(request_of(m) for m in world.roots(channel))
        replies = sum(len(world.slack.thread(channel, m["ts"])) for m in world.roots(channel))
        updates = db.value(
            "SELECT count(*) FROM notices WHERE channel = 'slack' AND kind = 'board_update' "
            "AND recipient_id = ?",
            artist.board.agency_id,
        )
        assert replies >= updates, f"a board update never arrived on {channel}"
        assert sum(n - 1 for n in roots.values()) + replies - updates <= world.kills, (channel, roots)


# ================================================================ races across channels, on PostgreSQL


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
        status, decisions, grants = await _outcome(world, request_id)
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


async def _outcome(world: FaultWorld, request_id: str) -> tuple[str, list[tuple[str, str]], int]:
    """The request's status, its decisions (actor kind, outcome) and how many grants it has."""
    async with world.desk.db.read() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        decisions = await session.execute(
            select(Decision.actor_kind, Decision.outcome).where(Decision.request_id == request_id)
        )
        grants = await session.execute(
            select(func.count()).select_from(Grant).where(Grant.request_id == request_id)
        )
        return request.status, [(a, b) for a, b in decisions.tuples()], int(grants.scalar_one())


async def _refusals(world: FaultWorld, subject_id: str) -> int:
    """How many refusals about one request or grant the audit chain holds."""
    async with world.desk.db.read() as session:
        found = await session.execute(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.subject_id == subject_id, AuditEvent.action.like("%.refused"))
        )
        return int(found.scalar_one())


# ================================================================ one service with every secret set


@dataclass
class Exposed:
    """A service with every secret configured (webhook mode for Telegram), and its parties."""

    world: FaultWorld
    artists: list[Artist]
    studio: Creator
    rival: Creator

    def by_board(self) -> list[Artist]:
        """The first artist of each board."""
        seen: dict[str, Artist] = {}
        for artist in self.artists:
            seen.setdefault(artist.board.channel, artist)
        return list(seen.values())


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def exposed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Exposed]:
    port = free_port()  # Telegram needs the webhook's address before the service starts
    world = await open_world(
        tmp_path_factory.mktemp("faults-exposed"),
        HTTP_PORT=str(port),
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
        TELEGRAM_WEBHOOK_SECRET=TELEGRAM_WEBHOOK_SECRET,
        SWEEP_INTERVAL="1h",
        LOG_LEVEL="DEBUG",  # the most the service ever logs: the secret scan reads all of it
    )
    try:
        boards = [await world.board(f"Storm Agency {n}") for n in range(6)]
        artists = [await world.artist(f"Storm Artist {n}", boards[n % 6]) for n in range(12)]
        studio = await world.creator("Storm Studio")
        rival = await world.creator("Rival Studio")
        await world.start()
        yield Exposed(world, artists, studio, rival)
    finally:
        await close_world(world)


async def _file(world: FaultWorld, creator: Creator, artist: Artist, **overrides: Any) -> str:
    """Files a request through the API as `creator`; its id."""
    async with world.client() as http:
        answer = await http.post(
            f"{world.url}/v1/requests",
            json=world.terms(artist, utc_now(), **overrides),
            headers={"Authorization": f"Bearer {creator.api_key}"},
        )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _approve(world: FaultWorld, request_id: str, artist: Artist) -> str:
    """The artist's approval, as the Telegram handler records it; the grant's id."""
    async with world.desk.db.read() as session:
        request = await session.get(Request, request_id)
        assert request is not None
        terms_hash = request.terms_hash
    decided = await workflow.decide(
        world.desk,
        request_id=request_id,
        actor=WorkflowActor(ActorKind.artist, artist.artist_id, ChannelKind.telegram, display="artist"),
        outcome=Outcome.approve,
        terms_hash=terms_hash,
    )
    assert decided.view.grant is not None
    return decided.view.grant.id


async def _settled(world: FaultWorld) -> None:
    """Waits until the outbox has sent everything queued so far."""
    db = world.watch
    assert db is not None
    await db.wait_for(lambda: db.value("SELECT count(*) FROM notices WHERE status = 'pending'") == 0)


def _row_counts(world: FaultWorld) -> dict[str, int]:
    assert world.watch is not None
    tables = [name for (name,) in world.watch.rows("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {t: int(world.watch.value(f'SELECT count(*) FROM "{t}"')) for t in tables}


def _audit_since(world: FaultWorld, seq: int) -> list[tuple[str, str, str, str]]:
    """(actor kind, actor id, action, subject) of every audit event after `seq`."""
    assert world.watch is not None
    return [
        (a, b, c, d)
        for a, b, c, d in world.watch.rows(
            "SELECT actor_kind, actor_id, action, subject_id FROM audit_events WHERE seq > ? ORDER BY seq",
            seq,
        )
    ]


def _last_seq(world: FaultWorld) -> int:
    assert world.watch is not None
    return int(world.watch.value("SELECT coalesce(max(seq), 0) FROM audit_events"))


# ---------------------------------------------------------------- storms


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
        request_id = await _file(world, exposed.studio, artist)
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


# ---------------------------------------------------------------- hostile callers


async def test_another_creators_grant_receipt_usage_and_withdrawal_are_not_found_audited_and_change_nothing(
    exposed: Exposed,
) -> None:
    world = exposed.world
    owner, other = exposed.artists[0], exposed.artists[1]
    pending = await _file(world, exposed.studio, owner)
    grant = await _approve(world, await _file(world, exposed.studio, other), other)
    rival = {"Authorization": f"Bearer {exposed.rival.api_key}"}
    await _settled(world)  # the cards and board posts of these two are out: nothing moves by itself
    before, seq = _row_counts(world), _last_seq(world)

    async with world.client(base_url=world.url, headers=rival) as http:
        answers = [
            await http.get(f"/v1/grants/{grant}"),
            await http.get(f"/v1/grants/{grant}/receipt"),
            await http.post(f"/v1/grants/{grant}/usage", json={"kind": "render", "count": 2}),
            await http.post(f"/v1/requests/{pending}/withdraw"),
        ]

    assert [a.status_code for a in answers] == [404] * 4, [a.text for a in answers]
    assert all(exposed.studio.creator_id not in a.text for a in answers)  # nothing about the owner
    # The two attempts to change something are in the audit chain; nothing else moved.
    assert _audit_since(world, seq) == [
        ("creator", exposed.rival.creator_id, "usage.record.refused", grant),
        ("creator", exposed.rival.creator_id, "request.withdraw.refused", pending),
    ]
    assert _row_counts(world) == before | {"audit_events": before["audit_events"] + 2}
    owner_auth = {"Authorization": f"Bearer {exposed.studio.api_key}"}
    async with world.client(base_url=world.url, headers=owner_auth) as http:
        assert (await http.get(f"/v1/requests/{pending}")).json()["status"] == "pending"
        assert (await http.get(f"/v1/grants/{grant}")).status_code == 200


async def test_a_creators_webhook_verifies_only_with_its_own_secret(exposed: Exposed) -> None:
    world = exposed.world
    request_id = await _file(world, exposed.studio, exposed.artists[2])
    event = await world.hooks.wait_for(
        lambda: next(
            (
                r
                for r in world.hooks.received
                if r.status == 200 and r.event["data"]["request_id"] == request_id
            ),
            None,
        )
    )
    stamp, signature = event.headers["Likeness-Timestamp"], event.headers["Likeness-Signature"]
    assert exposed.studio.webhook_secret and exposed.rival.webhook_secret

    assert verify_webhook(exposed.studio.webhook_secret, stamp, event.body, signature)
    assert not verify_webhook(exposed.rival.webhook_secret, stamp, event.body, signature)  # another's
    assert not verify_webhook(exposed.studio.webhook_secret + "x", stamp, event.body, signature)
    assert not verify_webhook(
        exposed.studio.webhook_secret, stamp, event.body.replace(b"pending", b"approved"), signature
    )


async def test_a_genuine_button_tapped_from_another_chat_is_refused_audited_and_changes_nothing(
    exposed: Exposed,
) -> None:
    world = exposed.world
    victim, other_artist = exposed.artists[3], exposed.artists[4]
    request_id = await _file(world, exposed.studio, victim)
    card = (await world.tg.wait_for(lambda: world.cards(victim.user_id, request_id)))[0]
    genuine = callback_data(card, "Approve")
    stranger = world.stranger("Mallory")
    seq = _last_seq(world)

    answers = []
    for user in (stranger, other_artist.user_id):
        # Each gets a message from the bot in their own chat, and puts the victim's button data on it.
        seen = len(world.tg.messages(user, TOKEN))
        await world.tg.send_text(TOKEN, user, "/help")
        own = await world.tg.wait_for(lambda u=user, n=seen: world.tg.messages(u, TOKEN)[n:])
        query = await world.tg.tap(TOKEN, user, user, own[0]["message_id"], callback_data=genuine)
        answers.append(await world.tg.wait_for(lambda q=query: world.tg.callback_answer(q)))

    assert all(a["show_alert"] and a["text"].startswith("Only the artist") for a in answers), answers
    assert (await _outcome(world, request_id))[:2] == ("pending", [])
    assert keyboard(world.cards(victim.user_id, request_id)[-1]) == ["Approve", "Deny"]
    refusals = [
        (kind, actor)
        for kind, actor, action, subject in _audit_since(world, seq)
        if subject == request_id and action == "decision.approve.refused"
    ]
    assert refusals == [("stranger", str(stranger)), ("artist", other_artist.artist_id)]


async def test_forged_callback_data_is_refused_audited_and_changes_nothing(exposed: Exposed) -> None:
    world = exposed.world
    artist, victim = exposed.artists[5], exposed.artists[6]
    mine = await _file(world, exposed.studio, artist)
    theirs = await _file(world, exposed.studio, victim)
    card = (await world.tg.wait_for(lambda: world.cards(artist.user_id, mine)))[0]
    genuine = callback_data(card, "Approve")
    forged = [
        genuine.replace(mine, theirs),  # another request under this one's MAC
        genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB"),  # a changed MAC
        f"ok:{theirs}",  # no MAC at all
    ]
    seq = _last_seq(world)

    for data in forged:
        query = await world.tg.tap(
            TOKEN, artist.user_id, artist.user_id, card["message_id"], callback_data=data
        )
        answer = await world.tg.wait_for(lambda q=query: world.tg.callback_answer(q))
        assert answer["show_alert"] and answer["text"] == "This button is not valid.", answer
    for request_id in (mine, theirs):
        assert (await _outcome(world, request_id))[:2] == ("pending", []), request_id
    # Each forged tap is on the record, as the artist who sent it; nothing else happened.
    audited = [(kind, actor, action) for kind, actor, action, _subject in _audit_since(world, seq)]
    assert audited == [("artist", artist.artist_id, "button.refused")] * len(forged)


async def test_unsigned_and_replayed_slack_requests_are_refused_counted_and_leave_no_record(
    exposed: Exposed,
) -> None:
    world = exposed.world
    artist = exposed.artists[7]
    channel = artist.board.channel
    request_id = await _file(world, exposed.studio, artist)
    root = (await world.slack.wait_for(lambda: world.roots(channel, request_id)))[0]
    seq = _last_seq(world)
    counted = await _auth_failures(world)

    statuses = []
    for tamper in ("bad_signature", "stale_timestamp", "missing_signature"):
        answer = await world.slack.click(AGENT, channel, root["ts"], "board_approve", tamper=tamper)
        statuses.append(answer.status)
    genuine = await world.slack.click(AGENT, channel, root["ts"], "board_nudge")
    await world.slack.wait_for(lambda: world.slack.thread(channel, root["ts"]))  # the nudge went through
    replay = await world.slack.replay_last()
    assert statuses == [401, 401, 401] and genuine.status == 200
    assert replay.status == 401 and "replayed" in replay.body
    assert (await _outcome(world, request_id))[:2] == ("pending", [])
    # The genuine nudge is the only thing that happened: callers that fail authentication are
    # counted in /metrics, never recorded.
    assert _audit_since(world, seq) == [("agency", AGENT, "request.nudged", request_id)]
    assert await _auth_failures(world) - counted == {"slack_signature": 3, "slack_replay": 1}


async def _auth_failures(world: FaultWorld) -> Counter[str]:
    async with world.client(base_url=world.url) as http:
        text = (await http.get("/metrics")).text
    found = re.findall(r'^likeness_auth_failures_total\{kind="(\w+)"\} ([0-9.]+)$', text, re.MULTILINE)
    return Counter({kind: int(float(value)) for kind, value in found})


# ---------------------------------------------------------------- last: what the service said


async def test_no_secret_appears_in_the_fault_burst_log_or_in_any_answer(exposed: Exposed) -> None:
    world = exposed.world
    owner = exposed.artists[8]
    studio = {"Authorization": f"Bearer {exposed.studio.api_key}"}
    # A burst of mistakes on top of the storms and refusals above: every one of them is answered
    # and most are logged, and none may carry a secret.
    request_id = await _file(world, exposed.studio, owner)
    grant = await _approve(world, await _file(world, exposed.studio, owner), owner)
    async with world.client(base_url=world.url) as http:
        body = world.terms(owner, utc_now())
        mistakes = [
            await http.post(
                "/v1/requests", content=b"{not json", headers=studio | {"Content-Type": "application/json"}
            ),
            await http.post(
                "/v1/requests", content=b"artist=1", headers=studio | {"Content-Type": "text/plain"}
            ),
            await http.post("/v1/requests", json=body | {"media": ["hologram"]}, headers=studio),
            await http.post(
                "/v1/requests", json=body | {"artist_id": "art_0000000000000000"}, headers=studio
            ),
            await http.post("/v1/requests", json=body, headers={"Authorization": "Bearer lk_not-a-key"}),
            await http.post("/v1/requests", json=body),
            await http.post("/v1/requests", json=body, headers=studio | {"Idempotency-Key": "k-1"}),
            await http.post(
                "/v1/requests",
                json=body | {"project_title": "Other"},
                headers=studio | {"Idempotency-Key": "k-1"},
            ),
            await http.post(f"/v1/requests/{request_id}/withdraw", headers=studio),
            await http.post(f"/v1/requests/{request_id}/withdraw", headers=studio),
            await http.post(f"/v1/grants/{grant}/usage", json={"kind": "train"}, headers=studio),
            await http.post(
                "/telegram/webhook",
                json={"update_id": 1},
                headers={"X-Telegram-Bot-Api-Secret-Token": "guess"},
            ),
            await http.post(
                "/telegram/webhook",
                content=b"[1,",
                headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_WEBHOOK_SECRET},
            ),
            await http.post(
                "/slack/events",
                content=b"payload=%7B%7D",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            ),
            await http.post("/control/clock", json={"skip": "forever"}),
        ]
    assert [m.status_code for m in mistakes] == [
        400,
        415,
        422,
        422,
        401,
        401,
        201,
        422,
        200,
        409,
        409,
        403,
        400,
        401,
        422,
    ], [(m.status_code, m.text[:80]) for m in mistakes]
    await world.stop()  # the log is complete once the service has exited

    secrets = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "the bot token's secret half": TOKEN.split(":", 1)[1],
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_WEBHOOK_SECRET,
        "the studio's API key": exposed.studio.api_key,
        "the rival's API key": exposed.rival.api_key,
        "the studio's webhook secret": str(exposed.studio.webhook_secret),
        "the rival's webhook secret": str(exposed.rival.webhook_secret),
    }
    said = {
        "stderr log": world.log(),
        "HTTP answers": "\n".join(f"{a.status_code} {dict(a.headers)} {a.text}" for a in world.answers),
        "answers to Slack": json.dumps([(s["status"], s["answer"]) for s in world.slack.sent_to_app()]),
        "calls to Slack": json.dumps(world.slack.calls(), default=str),
        # setWebhook is where the webhook secret must go: Telegram sends it back with every update.
        "calls to Telegram": json.dumps(
            [c | {"params": c["params"] | {"secret_token": ""}} for c in world.tg.calls()], default=str
        ),
        "answers to taps": json.dumps([world.tg.callback_answer(q) for q in world.tg._queries]),
        "webhook events": "\n".join(r.body.decode() for r in world.hooks.received),
    }
    assert len(world.answers) >= len(mistakes) and "401" in said["HTTP answers"]
    assert " WARNING " in said["stderr log"]  # the burst's errors were logged...
    leaks = [
        (what, where) for what, secret in secrets.items() for where, text in said.items() if secret in text
    ]
    assert leaks == []  # ...and no secret went with them
