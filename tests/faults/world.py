"""A world for fault tests: both platform simulators and a creator's webhook endpoint in the test
process, `likeness serve` as a subprocess that can be killed and started again, and waits that
re-check database state on every commit (watched with inotify), so nothing sleeps to synchronise.

Every random choice comes from a seeded RNG whose seed is printed (pytest shows it on failure);
`LIKENESS_FAULT_SEED=<n>` replays a run, `LIKENESS_SOAK=1` makes the runs longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from watchfiles import awatch

from bot import workflow
from bot.clock import SystemClock
from bot.models import ActorKind, Policy
from bot.receipts import load_or_create_signer
from bot.render.buttons import CallbackSigner
from bot.workflow import Desk
from sandbox.service_process import ServiceProcess, run_cli, service_env, start_service
from sandbox.slack import SlackSimulator
from sandbox.telegram import TelegramSimulator
from storage.database import Database
from tests.webhook_receiver import WebhookReceiver

T = TypeVar("T")

# Every secret is distinctive, so that a scan for it finds nothing by accident.
TOKEN = "7000042:FAULTS-telegram-bot-token_Zq81xV"
BOT_USERNAME = "likeness_faults_bot"
SLACK_TOKEN = "xoxb-faults-slack-token-7Hq2Lp9Wd"
SIGNING_SECRET = "faults-slack-signing-secret-K3vR8m"
TELEGRAM_WEBHOOK_SECRET = "faults-telegram-webhook-secret-Yb5Nc"
AGENT = "U0FAGENT"
AGENT_NAME = "ann.agent"

SOAK = os.environ.get("LIKENESS_SOAK", "") not in ("", "0")
APPROVED = "Approved. Thank you."
DECLINED = "Declined. Thank you."
_CARD_REF = re.compile(r"(?:Ref|编号) (req_[0-9a-f]{16})$")


def scaled(quick: int, soak: int) -> int:
    """`quick` in `make test`, `soak` under `make soak`."""
    return soak if SOAK else quick


def seeded_rng(name: str) -> random.Random:
    """A random source for one test; its seed is printed so that a failure can be replayed."""
    given = os.environ.get("LIKENESS_FAULT_SEED")
    seed = int(given) if given else random.SystemRandom().randrange(2**32)
    print(f"{name}: LIKENESS_FAULT_SEED={seed}")
    return random.Random(seed)


# ---------------------------------------------------------------- waiting on the database


class DatabaseWatch:
    """Wakes waiters on every change of the SQLite files (each commit writes the WAL).

    The outbox marks a notice sent after the platform saw it, so "nothing is pending" can only
    be seen in the database; this waits for it without polling.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._changed = asyncio.Event()
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Starts watching; returns once the watch is in place."""
        self._task = asyncio.create_task(self._run(), name="database-watch")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def _run(self) -> None:
        # yield_on_timeout: the first (empty) yield tells that the watch is registered; after that
        # only real changes wake anyone.
        async for changes in awatch(
            self.path.parent,
            watch_filter=None,
            debounce=100,
            step=5,
            stop_event=self._stop,
            rust_timeout=200,
            yield_on_timeout=True,
        ):
            self._ready.set()
            if changes:
                self._changed.set()
                self._changed = asyncio.Event()

    async def stop(self) -> None:
        """Stops watching."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Runs one query on the database file (read only, never waits for the service's writes)."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as db:
            return list(db.execute(sql, params).fetchall())

    def value(self, sql: str, *params: Any) -> Any:
        """The first column of the first row."""
        return self.rows(sql, *params)[0][0]

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 30.0) -> T:
        """Waits until `predicate()` is truthy, re-checking after every change of the database."""
        async with asyncio.timeout(timeout):
            while True:
                changed = self._changed  # before the check: a change during it is not lost
                result = predicate()
                if result:
                    return result
                await changed.wait()


# ---------------------------------------------------------------- parties


@dataclass(frozen=True)
class Board:
    """An agency and its Slack channel (None: the agency has no board in Slack)."""

    agency_id: str
    channel: str | None


@dataclass(frozen=True)
class Artist:
    """An artist linked to a simulated Telegram user, on an agency's roster."""

    artist_id: str
    user_id: int
    board: Board


@dataclass(frozen=True)
class Creator:
    """A studio with its API key and, when it has a webhook, the secret that signs it."""

    creator_id: str
    api_key: str
    webhook_secret: str | None


# ---------------------------------------------------------------- the world


@dataclass
class FaultWorld:
    """Simulators, webhook endpoint, service, and a desk on the same database for setting up parties."""

    root: Path
    env: dict[str, str]
    tg: TelegramSimulator
    slack: SlackSimulator
    hooks: WebhookReceiver
    desk: Desk
    watch: DatabaseWatch | None
    service: ServiceProcess | None = None
    services: list[ServiceProcess] = field(default_factory=list)
    # Sum of every clock skip sent (applied or cut off by a kill): a restart starts there, so the
    # service's clock never goes back.
    offset: timedelta = timedelta(0)
    kills: int = 0
    up: asyncio.Event = field(default_factory=asyncio.Event)
    answers: list[httpx.Response] = field(default_factory=list)
    _next_user: int = 7100
    _next_channel: int = 0

    # ------------------------------------------------------------ the service

    async def start(self) -> ServiceProcess:
        """Starts `likeness serve` (in a thread: the simulators on this loop must keep answering it)."""
        env = dict(self.env)
        seconds = int(self.offset.total_seconds())
        if seconds:
            env["CLOCK_OFFSET"] = f"{seconds}s"
        self.service = await asyncio.to_thread(start_service, env, self.root, tag="faults")
        self.services.append(self.service)
        self.slack.app_url = self.service.url + "/slack/events"
        self.up.set()
        return self.service

    async def kill(self) -> None:
        """SIGKILL: a crash at whatever the service was doing."""
        assert self.service is not None
        self.up.clear()
        await asyncio.to_thread(self.service.kill)
        self.kills += 1

    async def stop(self) -> None:
        """SIGTERM: sends in flight finish and are marked, then the process exits."""
        if self.service is not None and self.service.process.poll() is None:
            self.up.clear()
            await asyncio.to_thread(self.service.stop)

    @property
    def url(self) -> str:
        """Where the current service listens."""
        assert self.service is not None
        return self.service.url

    def log(self) -> str:
        """Everything every run of the service wrote to stderr."""
        return "".join(service.log() for service in self.services)

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An HTTP client whose every answer is kept (the log scan reads them)."""

        async def keep(response: httpx.Response) -> None:
            await response.aread()
            self.answers.append(response)

        return httpx.AsyncClient(timeout=10, event_hooks={"response": [keep]}, **kwargs)

    async def cli(self, *args: str) -> tuple[int, str, str]:
        """Runs one `likeness` command against the world's database."""
        done = await asyncio.to_thread(run_cli, dict(self.env), self.root, *args)
        return done.returncode, done.stdout, done.stderr

    # ------------------------------------------------------------ the service's clock

    async def service_now(self, http: httpx.AsyncClient) -> datetime:
        """The service's clock (it runs ahead of the wall clock by the skips so far)."""
        answer = await http.get(f"{self.url}/control/clock")
        answer.raise_for_status()
        body = answer.json()
        self.offset = max(self.offset, timedelta(seconds=body["offset_seconds"]))
        return datetime.fromisoformat(body["now"])

    async def skip(self, http: httpx.AsyncClient, minutes: int) -> httpx.Response:
        """Moves the service's clock forward (it sweeps at once); counted before it is sent."""
        self.offset += timedelta(minutes=minutes)
        return await http.post(f"{self.url}/control/clock", json={"skip": f"{minutes}m"})

    # ------------------------------------------------------------ parties

    async def board(self, name: str, *, slack: bool = True) -> Board:
        """An agency whose board is a fresh Slack channel (unless told not), with AGENT allowed to act."""
        channel = None
        if slack:
            self._next_channel += 1
            channel = f"C0FLT{self._next_channel:04d}"
            self.slack.add_channel(channel, f"board-{self._next_channel}")
        agency = await workflow.add_agency(
            self.desk, name=name, slack_channel_id=channel, slack_member_ids=[AGENT]
        )
        return Board(agency.id, channel)

    async def artist(self, name: str, board: Board, *, policy: Policy = Policy.agency_may_decide) -> Artist:
        """An artist on the board's roster, linked to a fresh Telegram user who has started the bot."""
        added = await workflow.add_artist(
            self.desk, name=name, agency_id=board.agency_id, policy=policy, timezone="Europe/Paris"
        )
        self._next_user += 1
        user = self._next_user
        self.tg.add_user(user, name.split()[0])
        token = await workflow.create_invite(self.desk, subject_kind=ActorKind.artist, subject_id=added.id)
        await workflow.redeem_invite(self.desk, token=token, telegram_user_id=user, chat_id=user)
        self.tg.mark_started(TOKEN, user)  # pressed Start, as /start with the invite would have
        return Artist(added.id, user, board)

    async def creator(self, name: str, *, webhook: bool = True) -> Creator:
        """A studio, with a signed webhook to the world's receiver unless told otherwise."""
        made = await workflow.add_creator(
            self.desk, name=name, webhook_url=self.hooks.url if webhook else None
        )
        return Creator(made.creator.id, made.api_key, made.webhook_secret)

    def stranger(self, name: str) -> int:
        """A Telegram user linked to nobody."""
        self._next_user += 1
        self.tg.add_user(self._next_user, name)
        return self._next_user

    def signer(self) -> CallbackSigner:
        """Signs button data exactly as the service does (same key file)."""
        return CallbackSigner(self.desk.signer.callback_key())

    # ------------------------------------------------------------ requests

    @staticmethod
    def terms(artist: Artist, now: datetime, **overrides: Any) -> dict[str, Any]:
        """Valid terms for the artist, relative to the service's `now`."""
        data: dict[str, Any] = {
            "artist_id": artist.artist_id,
            "project_title": "Night Shift Episode 3",
            "use_description": "A digital double in two crowd scenes of the third episode, face only.",
            "media": ["series"],
            "likeness": ["face"],
            "territory": ["FR", "SG"],
            "starts_at": (now + timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=30)).isoformat(),
            "ai_training": False,
            "compensation": {"amount": "1200", "currency": "EUR"},
        }
        return data | overrides

    # ------------------------------------------------------------ reading the platforms

    def cards(self, user_id: int, request_id: str | None = None) -> list[dict[str, Any]]:
        """The request cards in an artist's chat (a card ends with its reference), oldest first."""
        found = []
        for message in self.tg.messages(user_id, TOKEN):
            match = _CARD_REF.search(message["text"] or "")
            if match and (request_id is None or match.group(1) == request_id):
                found.append(message)
        return found

    def roots(self, channel: str | None, request_id: str | None = None) -> list[dict[str, Any]]:
        """The board's root messages about a request (or about any), oldest first."""
        if channel is None:
            return []
        return [
            m
            for m in self.slack.messages(channel)
            if (rid := request_of(m)) is not None and (request_id is None or rid == request_id)
        ]


def request_of_card(message: dict[str, Any]) -> str | None:
    """The request a Telegram card is about."""
    match = _CARD_REF.search(message["text"] or "")
    return match.group(1) if match else None


def request_of(message: dict[str, Any]) -> str | None:
    """The request a board root message is about (its metadata says)."""
    payload = (message.get("metadata") or {}).get("event_payload") or {}
    found = payload.get("request_id")
    return str(found) if found else None


def keyboard(message: dict[str, Any]) -> list[str]:
    """The labels of a Telegram message's inline buttons."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button["text"] for row in rows for button in row]


def callback_data(message: dict[str, Any], label: str) -> str:
    """The data behind one of a Telegram message's buttons."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return next(str(b["callback_data"]) for row in rows for b in row if b["text"] == label)


def board_buttons(message: dict[str, Any]) -> list[str]:
    """The action ids of a board root message's buttons."""
    return [e["action_id"] for b in message["blocks"] if b["type"] == "actions" for e in b["elements"]]


def board_status(message: dict[str, Any]) -> str:
    """The status line of a board root message."""
    return next(str(b["text"]["text"]) for b in message["blocks"] if b.get("block_id") == "status")


async def open_world(root: Path, *, database_url: str | None = None, **extra: str) -> FaultWorld:
    """Starts the simulators and the receiver, migrates the database; the service is not started yet."""
    tg = TelegramSimulator(bots={TOKEN: BOT_USERNAME})
    slack = SlackSimulator(bot_token=SLACK_TOKEN, signing_secret=SIGNING_SECRET)
    slack.add_user(AGENT, AGENT_NAME)
    hooks = WebhookReceiver()
    await tg.start()
    await slack.start()
    await hooks.start()
    env = service_env(
        root,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=tg.api_base_url,
        SLACK_BOT_TOKEN=SLACK_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE_URL=slack.api_base_url,
        PTB_TIMEDELTA="true",
        CLOCK_CONTROL="true",
        SWEEP_INTERVAL="1s",
    )
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env.update(extra)
    data = Path(env["DATA_DIR"])
    await asyncio.to_thread(data.mkdir, parents=True, exist_ok=True)
    database = Database(env["DATABASE_URL"])
    await database.upgrade()
    desk = Desk(db=database, clock=SystemClock(), signer=load_or_create_signer(data / "signing_key.pem"))
    watch = None
    if database.dialect == "sqlite":
        watch = DatabaseWatch(Path(env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")))
        await watch.start()
    return FaultWorld(root=root, env=env, tg=tg, slack=slack, hooks=hooks, desk=desk, watch=watch)


async def close_world(world: FaultWorld) -> None:
    """Stops the service first (it must never talk to a stopped simulator), then everything else."""
    try:
        await world.stop()
    finally:
        if world.watch is not None:
            await world.watch.stop()
        await world.desk.db.dispose()
        await world.hooks.stop()
        await world.slack.stop()
        await world.tg.stop()


def tracebacks(log: str) -> list[str]:
    """Each traceback in a service log, with the line that announced it."""
    lines = log.splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)"):
            end = next(
                (n for n in range(index + 1, len(lines)) if lines[n] and not lines[n].startswith(" ")),
                len(lines) - 1,
            )
            found.append("\n".join(lines[max(index - 1, 0) : end + 1]))
    return found


def utc_now() -> datetime:
    """The wall clock, for code that has no service to ask."""
    return datetime.now(UTC)
