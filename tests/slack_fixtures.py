"""A Slack workspace (the simulator) and a real `likeness serve` wired to it, for the Slack tests."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from bot import workflow
from bot.clock import SystemClock
from bot.models import Actor, ActorKind, ChannelKind, Outcome, Policy
from bot.receipts import load_or_create_signer
from bot.workflow import Desk, decide
from sandbox.factories import terms_at
from sandbox.service_process import ServiceProcess, service_env, start_service
from sandbox.slack import SlackSimulator
from storage.database import Database
from storage.tables import AuditEvent, Request
from tests.conftest import stored_status

TOKEN = "xoxb-likeness-test"
SECRET = "likeness-test-signing-secret"
BOARD = "C0BOARD"
ELSEWHERE = "C0RANDOM"
AGENT = "U0AGENT1"
PARTNER = "U0AGENT2"
STRANGER = "U0STRANGER"


async def cli(env: dict[str, str], cwd: Path, *args: str) -> dict[str, Any]:
    """Runs one `likeness ... --json` command without blocking the event loop the simulator runs in."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        "--json",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return dict(json.loads(out))


@dataclass
class Roster:
    """The parties every board test uses."""

    creator_key: str
    agency: str
    solo: str  # artist_only
    delegated: str  # agency_may_decide
    shared: str  # both_required
    names: dict[str, str] = field(default_factory=dict)


async def make_roster(desk: Desk) -> Roster:
    """An agency on the board channel with two members, one artist per policy, and a creator, made
    in-process (the CLI's own tests cover the commands; five CLI starts per world cost the most)."""
    agency = await workflow.add_agency(
        desk, name="Star Agency", slack_channel_id=BOARD, slack_member_ids=[AGENT, PARTNER]
    )
    creator = await workflow.add_creator(desk, name="Dream Studio")
    artists = [
        ("Solo Sun", Policy.artist_only),
        ("Li Wei", Policy.agency_may_decide),
        ("Mei Lin", Policy.both_required),
    ]
    ids = [(await workflow.add_artist(desk, name=n, agency_id=agency.id, policy=p)).id for n, p in artists]
    solo, delegated, shared = ids
    names = {i: a[0] for i, a in zip(ids, artists, strict=True)}
    return Roster(creator.api_key, agency.id, solo, delegated, shared, names)


@dataclass
class SlackWorld:
    """The simulator, the service under test, its parties, and a desk on the same database."""

    sim: SlackSimulator
    service: ServiceProcess
    env: dict[str, str]
    cwd: Path
    roster: Roster
    desk: Desk

    async def restart(self, *, crash: bool) -> None:
        """Stops the service (SIGKILL when `crash`) and starts it again on the same database.

        Waiting for the process happens in a thread: the simulator shares this event loop and
        must keep answering the service meanwhile.
        """
        await asyncio.to_thread(self.service.kill if crash else self.service.stop)
        self.service = await asyncio.to_thread(start_service, self.env, self.cwd, tag="slack-restart")
        self.sim.app_url = self.service.url + "/slack/events"

    def http(self) -> httpx.AsyncClient:
        """A client for the creators' API, with the roster's creator key."""
        return httpx.AsyncClient(
            base_url=self.service.url,
            headers={"Authorization": f"Bearer {self.roster.creator_key}"},
            timeout=10,
        )

    async def submit(self, artist_id: str, **overrides: Any) -> str:
        """Submits a request through the HTTP API; returns its id."""
        body = terms_at(datetime.now(UTC), artist_id, labeling=None) | overrides
        async with self.http() as client:
            answer = await client.post("/v1/requests", json=body)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def posted(self, artist_id: str, **overrides: Any) -> tuple[str, dict[str, Any]]:
        """Submits a request through the HTTP API and waits for its root message on the board:
        (its id, the root message)."""
        request_id = await self.submit(artist_id, **overrides)
        return request_id, await wait_root(self.sim, BOARD, request_id)

    async def command(self, text: str, *, user: str = AGENT, channel: str = BOARD) -> str:
        """Types `/likeness text` as `user` in `channel`; the answer shown to the user (the command is
        acknowledged at once, with an empty body, and answered afterwards)."""
        sim = self.sim
        before = len([e for e in sim.ephemerals(user=user) if e["source"] == "response_url"])
        answer = await sim.slash_command(user, channel, text=text)
        assert answer.status == 200 and answer.body == ""
        shown = await sim.wait_for(
            lambda: [x for x in sim.ephemerals(user=user) if x["source"] == "response_url"][before:]
        )
        return str(shown[0]["text"])

    async def status(self, request_id: str) -> str:
        """The request's status as stored."""
        return await stored_status(self.desk, Request, request_id)

    async def audit(self, request_id: str) -> list[tuple[str, str]]:
        """(action, actor id) of every audit event about a request, in order."""
        async with self.desk.db.transaction() as session:
            rows = await session.execute(
                select(AuditEvent.action, AuditEvent.actor_id)
                .where(AuditEvent.subject_id == request_id)
                .order_by(AuditEvent.seq)
            )
            return [(a, b) for a, b in rows.tuples()]

    async def artist_decides(
        self, request_id: str, artist_id: str, outcome: Outcome = Outcome.approve
    ) -> None:
        """The artist's tap in Telegram, as the Telegram handler would record it."""
        async with self.desk.db.transaction() as session:
            request = await session.get(Request, request_id)
            assert request is not None
            terms_hash = request.terms_hash
        actor = Actor(ActorKind.artist, artist_id, ChannelKind.telegram, display=self.roster.names[artist_id])
        await decide(
            self.desk,
            request_id=request_id,
            actor=actor,
            outcome=outcome,
            terms_hash=terms_hash,
            ai_training_confirmed=True,  # the card's second tap, for requests that include AI training
        )


def service_desk(env: dict[str, str]) -> Desk:
    """A desk on the database and receipt key the service in `env` uses (its data folder made)."""
    data = Path(env["DATA_DIR"])
    data.mkdir(parents=True, exist_ok=True)
    return Desk(
        db=Database(env["DATABASE_URL"]),
        clock=SystemClock(),
        signer=load_or_create_signer(data / "signing_key.pem"),
    )


async def start_world(tmp_path: Path) -> SlackWorld:
    """Starts the simulator, makes the roster with the CLI, then starts `likeness serve` against both."""
    sim = SlackSimulator(bot_token=TOKEN, signing_secret=SECRET)
    for channel, name in ((BOARD, "star-board"), (ELSEWHERE, "random")):
        sim.add_channel(channel, name)
    for user, name in ((AGENT, "kim.agent"), (PARTNER, "pat.partner"), (STRANGER, "sam.stranger")):
        sim.add_user(user, name)
    await sim.start()
    env = service_env(
        tmp_path,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_BASE_URL=sim.api_base_url,
        SWEEP_INTERVAL="1h",
    )
    desk = service_desk(env)
    try:
        await desk.db.upgrade()
        # The service needs no parties to start: it boots while they are made.
        service, roster = await asyncio.gather(
            asyncio.to_thread(start_service, env, tmp_path, tag="slack"), make_roster(desk)
        )
    except BaseException:
        await desk.db.dispose()
        await sim.stop()
        raise
    sim.app_url = service.url + "/slack/events"
    return SlackWorld(sim, service, env, tmp_path, roster, desk)


async def stop_world(world: SlackWorld) -> None:
    """Stops everything start_world started."""
    # In a thread: a send in flight at the stop needs the simulator (on this loop) to answer.
    await asyncio.to_thread(world.service.stop)
    await world.desk.db.dispose()
    await world.sim.stop()


def module_world(folder: str) -> Any:
    """A `world` fixture for a test module: one simulator and one service (its files in a temporary
    folder named `folder`) shared by the module's tests, each of which looks at its own requests."""

    @pytest_asyncio.fixture(loop_scope="module", scope="module", name="world")
    async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SlackWorld]:
        started = await start_world(tmp_path_factory.mktemp(folder))
        try:
            yield started
        finally:
            await stop_world(started)

    return world


# ---------------------------------------------------------------- reading the board


def request_of(message: dict[str, Any]) -> str | None:
    """The request a board root message is about (from its message metadata)."""
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    return payload.get("request_id")


def roots_of(sim: SlackSimulator, channel: str, request_id: str) -> list[dict[str, Any]]:
    """Every root message in the channel about one request (the board should have exactly one)."""
    return [m for m in sim.messages(channel) if request_of(m) == request_id]


async def wait_root(
    sim: SlackSimulator, channel: str, request_id: str, timeout: float = 10
) -> dict[str, Any]:
    """Waits for the request's root message to be posted and returns it."""
    roots = await sim.wait_for(lambda: roots_of(sim, channel, request_id), timeout=timeout)
    return roots[0]


def status_text(message: dict[str, Any]) -> str:
    """The status line of a board root message."""
    return next(str(b["text"]["text"]) for b in message["blocks"] if b.get("block_id") == "status")


def buttons(message: dict[str, Any]) -> list[str]:
    """The action ids of the buttons on a board root message."""
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def value_of(message: dict[str, Any]) -> str:
    """The value the board's buttons carry (request id and terms hash)."""
    return next(
        str(b["elements"][0]["value"]) for b in message["blocks"] if b["type"] == "actions" and b["elements"]
    )


async def wait_status(
    sim: SlackSimulator, channel: str, ts: str, words: str, timeout: float = 10
) -> dict[str, Any]:
    """Waits until the root's status line contains `words`; returns the message."""

    def current() -> dict[str, Any] | None:
        message = sim.message(channel, ts)
        return message if words in status_text(message) else None

    found = await sim.wait_for(current, timeout=timeout)
    assert found is not None
    return found


async def wait_thread(
    sim: SlackSimulator, channel: str, ts: str, count: int, timeout: float = 10
) -> list[str]:
    """Waits until the root has `count` thread replies; returns their texts."""

    def replies() -> list[str] | None:
        texts = [str(r["text"]) for r in sim.thread(channel, ts)]
        return texts if len(texts) >= count else None

    texts = await sim.wait_for(replies, timeout=timeout)
    assert texts is not None
    return texts


async def wait_ephemeral(sim: SlackSimulator, user: str, words: str, timeout: float = 10) -> dict[str, Any]:
    """Waits for an ephemeral message to `user` containing `words`."""

    def shown() -> dict[str, Any] | None:
        return next((e for e in sim.ephemerals(user=user) if words in e["text"]), None)

    found = await sim.wait_for(shown, timeout=timeout)
    assert found is not None
    return found


async def wait_new_ephemerals(sim: SlackSimulator, user: str, seen: int) -> list[dict[str, Any]]:
    """Waits for ephemerals to `user` beyond the first `seen`; returns the new ones."""
    return await sim.wait_for(lambda: sim.ephemerals(user=user)[seen:])


async def wait_form(sim: SlackSimulator, request_id: str) -> dict[str, Any]:
    """Waits for the deny form about `request_id` to be opened; returns the simulator's view entry."""

    def opened() -> dict[str, Any] | None:
        return next((v for v in sim.views() if request_id in v["view"]["private_metadata"]), None)

    found = await sim.wait_for(opened)
    assert found is not None
    return found
