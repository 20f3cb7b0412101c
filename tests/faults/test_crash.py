"""Crash anywhere: SIGKILL at random moments during a mixed burst of creators, artists, agents and
the clock loses no request, decision or notice; and a kill right after Telegram (long polling)
and Slack were told that taps and clicks arrived loses none of them and doubles none (the inbox).

The simulators and the creator's webhook endpoint run in the test process; `likeness serve` is a
subprocess. Random moments come from a seeded RNG (the seed is printed; LIKENESS_FAULT_SEED
replays it) and LIKENESS_SOAK=1 (`make soak`) makes every run longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import aiohttp
import httpx
import pytest

from bot.render.buttons import Action
from sandbox.pg_server import free_port
from sandbox.slack.interactions import AppResponse
from tests.faults.world import (
    AGENT,
    AGENT_NAME,
    APPROVED,
    DECLINED,
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
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

OPEN = ("pending", "awaiting_cosign")
SKIPS = (4, 8, 12, 16)  # minutes the clock jumps at a time during the crash burst
# Every refused tap or click is audited (no hourly cap), so each handled one leaves one event.
EVERY_REFUSAL = "100000"


@dataclass
class Ledger:
    """What the outside world was told was done, and so must survive any crash."""

    submitted: dict[str, Artist] = field(default_factory=dict)  # answered 201
    withdrawn: set[str] = field(default_factory=set)  # answered 200
    taps: dict[str, tuple[str, str]] = field(default_factory=dict)  # query id → (request, outcome)
    clicks: Counter[str] = field(default_factory=Counter)  # Approve clicks Slack acknowledged, per request
    clicked: Counter[str] = field(default_factory=Counter)  # Approve clicks sent, acknowledged or not
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
        request_id = str(root["metadata"]["event_payload"]["request_id"])
        self.ledger.clicked[request_id] += 1
        try:
            answer = await self.world.slack.click(AGENT, channel, root["ts"], "board_approve")
        except aiohttp.ClientError:
            return  # the service died under the click: Slack shows the agent an error
        if answer.status == 200:
            self.ledger.clicks[request_id] += 1
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
    world = await open_world(
        tmp_path, DECISION_REMINDERS="10m", GRANT_REMINDERS="10m", REFUSAL_AUDIT_PER_HOUR=EVERY_REFUSAL
    )
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
        _each_tap_and_acknowledged_click_was_handled_once(world, ledger.taps, ledger.clicks, ledger.clicked)
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
    for request_id in sorted(ledger.clicks):
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


def _each_tap_and_acknowledged_click_was_handled_once(
    world: FaultWorld, taps: dict[str, tuple[str, str]], clicks: Counter[str], clicked: Counter[str]
) -> None:
    """Nothing left in the inbox; each tap (Telegram had them all confirmed) left exactly one
    decision event, recorded or refused, and each click Slack acknowledged one, at most one per
    click sent: none lost, none handled twice."""
    db = world.watch
    assert db is not None
    assert db.rows("SELECT key FROM inbox WHERE done_at IS NULL") == []
    events = Counter(
        (kind, request_id)
        for kind, request_id in db.rows(
            "SELECT actor_kind, subject_id FROM audit_events "
            "WHERE subject_kind = 'request' AND action LIKE 'decision.%'"
        )
    )
    tapped = Counter(request_id for request_id, _outcome in taps.values())
    for request_id in {r for _kind, r in events} | set(tapped) | set(clicked):
        assert events["artist", request_id] == tapped[request_id], ("taps", request_id, events, tapped)
        handled = events["agency", request_id]
        assert clicks[request_id] <= handled <= clicked[request_id], ("clicks", request_id, handled, clicks)


@dataclass
class Acknowledged:
    """The taps and clicks of the inbox test: sent, and acknowledged by the service."""

    taps: dict[str, tuple[str, str]] = field(default_factory=dict)  # query id → (request, outcome)
    clicks: Counter[str] = field(default_factory=Counter)  # answered 200, per request
    clicked: Counter[str] = field(default_factory=Counter)  # sent, per request


async def _file_one_each(
    world: FaultWorld, http: httpx.AsyncClient, auth: dict[str, str], artists: list[Artist]
) -> list[tuple[Artist, str]]:
    """One request for each artist; returns once every card and board message is out."""
    now = await world.service_now(http)
    filed: list[tuple[Artist, str]] = []
    for artist in artists:
        body = world.terms(artist, now, project_title="Inbox take")
        answer = await http.post(f"{world.url}/v1/requests", json=body, headers=auth)
        assert answer.status_code == 201, answer.text
        filed.append((artist, answer.json()["id"]))
    await world.tg.wait_for(lambda: all(world.cards(a.user_id, r) for a, r in filed), timeout=30)
    await world.slack.wait_for(lambda: all(world.roots(a.board.channel, r) for a, r in filed), timeout=30)
    return filed


async def _tap_click_and_kill(
    world: FaultWorld, rng: random.Random, filed: list[tuple[Artist, str]], seen: Acknowledged
) -> None:
    """Each request is tapped, clicked, or both (one of the two is then refused); the kill comes
    once Telegram has every tap confirmed or once Slack has every click answered (whichever the
    RNG says), then a random few milliseconds later, while decisions are still being made."""
    sent: list[tuple[str, asyncio.Task[AppResponse]]] = []
    for artist, request_id in filed:
        how = rng.choice(("tap", "click", "both"))
        if how in ("tap", "both"):
            [card] = world.cards(artist.user_id, request_id)
            query = await world.tg.tap(
                TOKEN, artist.user_id, artist.user_id, card["message_id"], button_text="Approve"
            )
            seen.taps[query] = (request_id, "approve")
        if how in ("click", "both"):
            channel = artist.board.channel
            assert channel is not None
            [root] = world.roots(channel, request_id)
            seen.clicked[request_id] += 1
            click = world.slack.click(AGENT, channel, root["ts"], "board_approve")
            sent.append((request_id, asyncio.create_task(click)))
    confirmed = asyncio.create_task(
        world.tg.wait_for(lambda: not world.tg.pending_updates(TOKEN), timeout=30)
    )

    async def all_answered() -> None:
        if sent:
            await asyncio.wait([task for _r, task in sent])

    answered = asyncio.create_task(all_answered())
    first = rng.choice((asyncio.FIRST_COMPLETED, asyncio.ALL_COMPLETED))
    await asyncio.wait([confirmed, answered], return_when=first)
    await asyncio.sleep(rng.uniform(0, 0.03))  # a random moment, from the seeded RNG
    await world.kill()
    for request_id, task in sent:
        with contextlib.suppress(aiohttp.ClientError):
            if (await task).status == 200:
                seen.clicks[request_id] += 1
    await world.start()
    await confirmed
    await answered
    db = world.watch
    assert db is not None
    await db.wait_for(lambda: db.value("SELECT count(*) FROM inbox WHERE done_at IS NULL") == 0, timeout=30)


@pytest.mark.timeout(scaled(120, 600))
@pytest.mark.parametrize("mode", ["long_polling", "webhook"])
async def test_a_kill_just_after_taps_and_clicks_are_acknowledged_loses_none_and_doubles_none(
    tmp_path: Path, mode: str
) -> None:
    """Long polling confirms an update with the next getUpdates, the webhook with its 200, and
    Slack's click is answered before its decision commits: a kill right then must find each in
    the inbox at restart."""
    rng = seeded_rng(f"inbox-crash-{mode}")
    rounds = scaled(3 if mode == "long_polling" else 2, 12)
    extra = {"REFUSAL_AUDIT_PER_HOUR": EVERY_REFUSAL}
    if mode == "webhook":
        port = free_port()  # the same address across restarts, as Telegram's webhook setting is
        extra |= {
            "HTTP_PORT": str(port),
            "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_WEBHOOK_SECRET,
        }
    world = await open_world(tmp_path, **extra)
    try:
        boards = [await world.board(f"Inbox Agency {n}") for n in range(3)]
        artists = [await world.artist(f"Inbox Artist {n}", boards[n % 3]) for n in range(6)]
        creator = await world.creator("Inbox Studio", webhook=False)
        auth = {"Authorization": f"Bearer {creator.api_key}"}
        await world.start()
        seen = Acknowledged()
        async with world.client() as http:
            for _round in range(rounds):
                filed = await _file_one_each(world, http, auth, artists)
                await _tap_click_and_kill(world, rng, filed, seen)
        await world.stop()
        print(
            f"{rounds} kills: {len(seen.taps)} taps, "
            f"{seen.clicked.total()} clicks, {seen.clicks.total()} answered"
        )
        _each_tap_and_acknowledged_click_was_handled_once(world, seen.taps, seen.clicks, seen.clicked)
        db = world.watch
        assert db is not None
        decisions = Counter(r for (r,) in db.rows("SELECT request_id FROM decisions"))
        assert max(decisions.values()) == 1, decisions
        code, out, err = await world.cli("audit", "verify", "--json")
        assert code == 0 and json.loads(out)["intact"], out + err
        assert tracebacks(world.log()) == []
    finally:
        await close_world(world)
