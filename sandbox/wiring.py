"""The browser sandbox inside `likeness serve`: both simulators, the demo cast, and the page.

With no platform tokens, `bot.app.build_service` finds `prepare_sandbox` through the entry point
group `likeness.sandbox` (pyproject.toml) and asks it for settings that point
the Telegram bot and the Slack app at the in-repo simulators, and later calls `attach`. From then
on every part of the service runs exactly as in production: the bot long-polls the Telegram
simulator over HTTP, the Slack app posts to the Slack simulator and receives its signed clicks on
`/slack/events`, and the page (sandbox/page/) talks only to the creators' API and to the
simulators' control APIs.

The demo cast is made once through the same workflow functions the `likeness` CLI uses, and the
artists' chats are linked the real way: an invite, then `/start <token>` typed by the simulated
user. What was made is remembered in `DATA_DIR/sandbox.json`, so a restart seeds nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, SecretStr, ValidationError

from bot import workflow
from bot.config import Settings
from bot.models import Actor, ActorKind, ChannelKind, Language, Policy, RedLines, Sensitive
from sandbox.guard import SandboxGuard, new_token
from sandbox.slack import SlackSimulator
from sandbox.telegram import TelegramSimulator
from sandbox.workspaces import MOONRISE, install, open_workspace, secrets_key
from storage.queries import artist_by_telegram_user, creator_by_key_hash
from storage.tables import Agency

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger("likeness.sandbox")

SANDBOX_FILE = "sandbox.json"
# Secrets that never leave this machine: the simulators accept only these, and only on loopback.
BOT_TOKEN = "7000000001:sandbox-likeness-bot"
BOT_USERNAME = "likeness_sandbox_bot"
SLACK_TOKEN = "xoxb-sandbox-likeness"
LOOPBACK = "127.0.0.1"
SANDBOX_SWEEP_INTERVAL = timedelta(seconds=5)
SEEDER = Actor(ActorKind.admin, "sandbox", ChannelKind.cli, display="sandbox set-up")


# ---------------------------------------------------------------- the demo cast


@dataclass(frozen=True)
class DemoArtist:
    """One artist of the demo, with the Telegram user who plays them."""

    key: str
    name: str
    language: Language
    policy: Policy
    timezone: str
    telegram_user_id: int
    first_name: str
    language_code: str
    red_lines: RedLines
    agency: str = "starlight"  # whose roster: "starlight" (the token's workspace) or "moonrise"


@dataclass(frozen=True)
class DemoMember:
    """A Slack member in the agency's workspace; `listed` ones may act for the agency."""

    id: str
    name: str
    listed: bool
    agency: str = "starlight"


AGENCY_NAME = "Starlight Talent 星光经纪"
AGENCY_TIMEZONE = "Asia/Shanghai"
AGENCY_LANGUAGE = Language.zh_hans  # a Chinese agency: its board speaks Chinese
CHANNEL_ID = "C0STARLIGHT"
CHANNEL_NAME = "starlight-board"
# The second agency, in a workspace of its own, joins through its install link (sandbox/workspaces.py).
MOONRISE_NAME = "Moonrise Artists 月升艺人"
MOONRISE_TIMEZONE = "Asia/Tokyo"
CREATOR_NAME = "Aurora Pictures AI Lab"
# One row an artist: key, name, language, policy, timezone, Telegram user id and first name,
# Telegram language code, red lines, and whose roster.
ARTISTS = tuple(
    DemoArtist(key, name, language, policy, zone, user_id, first, code, red_lines, agency)
    for key, name, language, policy, zone, user_id, first, code, red_lines, agency in (
        ("lin", "林晓 Lin Xiao", Language.zh_hans, Policy.agency_may_decide, "Asia/Shanghai",
         7_000_101, "林晓", "zh-hans", RedLines(), "starlight"),
        ("maya", "Maya Brooks", Language.en, Policy.artist_only, "America/Los_Angeles",
         7_000_102, "Maya", "en", RedLines(sensitive=[Sensitive.political]), "starlight"),
        ("hana", "Hana Mori", Language.en, Policy.agency_may_decide, "Asia/Tokyo",
         7_000_103, "Hana", "en", RedLines(), "moonrise"),
    )
)  # fmt: skip
MEMBERS = (
    DemoMember("U0MEICHEN", "Mei Chen", listed=True),
    DemoMember("U0SAMGUEST", "Sam (guest)", listed=False),
    DemoMember(MOONRISE.installer, "Jun Park", listed=True, agency="moonrise"),
)


class SeededArtist(BaseModel):
    """An artist the sandbox made, by demo key."""

    key: str
    id: str


class Seeded(BaseModel):
    """What the sandbox made once and keeps in DATA_DIR/sandbox.json."""

    version: int = 1
    agency_id: str
    moonrise_agency_id: str | None = None
    artists: list[SeededArtist]
    creator_id: str
    creator_api_key: str
    seeded_at: datetime

    def artist_id(self, key: str) -> str:
        """The stored id of a demo artist."""
        return next(a.id for a in self.artists if a.key == key)


# ---------------------------------------------------------------- set-up


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def read_seeded(path: Path) -> Seeded | None:
    """The remembered demo data, or None when there is none (or it cannot be read)."""
    try:
        return Seeded.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValidationError, ValueError) as error:
        log.warning("sandbox: ignoring %s (%s); making the demo data again", path, error)
        return None


def write_seeded(path: Path, seeded: Seeded) -> None:
    """Writes the demo data atomically, readable by this user only (it holds an API key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.tmp")
    partial.write_text(json.dumps(seeded.model_dump(mode="json"), indent=2) + "\n", encoding="utf-8")
    partial.chmod(0o600)
    os.replace(partial, path)


class Sandbox:
    """The simulators on two loopback ports chosen up front, and what the page needs from them.

    Parameters:
        settings: the settings `likeness serve` read; the sandbox's copy points the channels here.
    """

    def __init__(self, settings: Settings) -> None:
        """Chooses the ports and builds the settings; nothing starts until the service does."""
        self.telegram_port = free_port()
        self.slack_port = free_port()
        self.signing_secret = secrets.token_urlsafe(24)
        self.telegram_url = f"http://{LOOPBACK}:{self.telegram_port}"
        self.slack_url = f"http://{LOOPBACK}:{self.slack_port}"
        self.settings = settings.model_copy(
            update={
                "telegram_bot_token": SecretStr(BOT_TOKEN),
                "telegram_api_base_url": f"{self.telegram_url}/bot",
                "telegram_webhook_url": None,
                "slack_bot_token": SecretStr(SLACK_TOKEN),
                "slack_signing_secret": SecretStr(self.signing_secret),
                "slack_api_base_url": f"{self.slack_url}/api/",
                # One app in many workspaces: the second agency installs it in its own.
                "slack_client_id": "sandbox-client-id",
                "slack_client_secret": SecretStr("sandbox-client-secret"),
                "secrets_key": SecretStr(secrets_key(settings.data_dir)),
                "clock_control": True,
                # Skip-ahead runs a sweep at once; should one be running already, the next comes soon.
                "sweep_interval": min(settings.sweep_interval, SANDBOX_SWEEP_INTERVAL),
                # With the tokens set above the sandbox would look switched off; it is on.
                "sandbox": True,
            }
        )
        self.access_token = new_token() if settings.sandbox_public else None
        self.seed_path = settings.data_dir / SANDBOX_FILE
        self.telegram: TelegramSimulator | None = None
        self.slack: SlackSimulator | None = None
        self.seeded: Seeded | None = None
        self.service: Service | None = None
        self.on_close: list[Callable[[], Awaitable[None]]] = []

    def attach(self, service: Service) -> None:
        """Starts the simulators before anything else, stops them last, and mounts the page."""
        from sandbox.page_routes import mount_page

        self.service = service
        service.on_start.insert(0, self.start)
        service.on_stop.insert(0, self.stop)  # stops run in reverse: the simulators go last
        mount_page(service.api, self)
        service.api.add_middleware(SandboxGuard, token=self.access_token)
        if self.access_token is not None:
            # The only place the token is shown: the line that says where the page is.
            service.api.state.sandbox_entry = f"/sandbox?token={self.access_token}"
            log.warning("sandbox: public on %s; every sandbox route needs its token", self.settings.http_host)

    async def start(self) -> None:
        """Starts both simulators, makes the demo cast once, and opens the artists' chats."""
        assert self.service is not None
        base_url = getattr(self.service.api.state, "base_url", None) or (
            f"http://{self.settings.http_host}:{self.settings.http_port}"
        )
        telegram = TelegramSimulator(bots={BOT_TOKEN: BOT_USERNAME})
        for artist in ARTISTS:
            telegram.add_user(artist.telegram_user_id, artist.first_name, artist.language_code)
        await telegram.start(LOOPBACK, self.telegram_port)
        self.telegram = telegram
        slack = SlackSimulator(
            bot_token=SLACK_TOKEN,
            signing_secret=self.signing_secret,
            team_domain="starlight",
            app_url=f"{base_url}/slack/events",
        )
        slack.add_channel(CHANNEL_ID, CHANNEL_NAME)
        slack.add_user(slack.bot_user_id, "Likeness Consent")
        for member in MEMBERS:
            if member.agency == "starlight":
                slack.add_user(member.id, member.name)
        open_workspace(slack, MOONRISE, {m.id: m.name for m in MEMBERS if m.agency == "moonrise"})
        await slack.start(LOOPBACK, self.slack_port)
        self.slack = slack
        self.seeded = await self._seed_once()
        await self._open_chats(self.seeded)
        key = self.settings.secrets_key
        if self.seeded.moonrise_agency_id is not None and key is not None:
            connecting = asyncio.create_task(
                install(
                    self.service.desk,
                    slack,
                    base_url,
                    key.get_secret_value(),
                    self.seeded.moonrise_agency_id,
                    MOONRISE,
                )
            )
            self.on_close.append(lambda: _cancel(connecting))
        log.info("sandbox: Telegram simulator on %s, Slack simulator on %s", telegram.url, slack.url)

    async def stop(self) -> None:
        """Stops both simulators (after the bot and the Slack app have stopped)."""
        for close in self.on_close:
            with contextlib.suppress(Exception):
                await close()
        for simulator in (self.telegram, self.slack):
            if simulator is not None:
                with contextlib.suppress(Exception):
                    await simulator.stop()

    async def _seed_once(self) -> Seeded:
        """The demo data: read back when it is still in the database, else made now and remembered."""
        assert self.service is not None
        desk = self.service.desk
        known = read_seeded(self.seed_path)
        if known is not None:
            async with desk.db.transaction() as session:
                agency = await session.get(Agency, known.agency_id)
                creator = await creator_by_key_hash(session, workflow.hash_secret(known.creator_api_key))
            if agency is not None and creator is not None:
                log.info("sandbox: using the demo data remembered in %s", self.seed_path)
                if known.moonrise_agency_id is None:  # remembered before the second agency came
                    known = await self._seed_moonrise(known)
                    write_seeded(self.seed_path, known)
                return known
            log.warning("sandbox: %s names data this database does not have; seeding again", self.seed_path)
        agency_row = await workflow.add_agency(
            desk,
            name=AGENCY_NAME,
            slack_channel_id=CHANNEL_ID,
            slack_member_ids=[m.id for m in MEMBERS if m.listed],
            timezone=AGENCY_TIMEZONE,
            language=AGENCY_LANGUAGE,
            actor=SEEDER,
        )
        artists = await _seed_artists(desk, "starlight", agency_row.id)
        made = await workflow.add_creator(desk, name=CREATOR_NAME, actor=SEEDER)
        seeded = Seeded(
            agency_id=agency_row.id,
            artists=artists,
            creator_id=made.creator.id,
            creator_api_key=made.api_key,
            seeded_at=datetime.now(UTC),
        )
        seeded = await self._seed_moonrise(seeded)
        write_seeded(self.seed_path, seeded)
        log.info("sandbox: seeded the demo agencies, their artists and a creator (%s)", self.seed_path)
        return seeded

    async def _seed_moonrise(self, seeded: Seeded) -> Seeded:
        """The second agency (no channel yet: its install brings it) and its artists."""
        assert self.service is not None
        desk = self.service.desk
        agency = await workflow.add_agency(
            desk,
            name=MOONRISE_NAME,
            slack_channel_id=None,
            slack_member_ids=[m.id for m in MEMBERS if m.listed and m.agency == "moonrise"],
            timezone=MOONRISE_TIMEZONE,
            actor=SEEDER,
        )
        artists = list(seeded.artists) + await _seed_artists(desk, "moonrise", agency.id)
        return seeded.model_copy(update={"moonrise_agency_id": agency.id, "artists": artists})

    async def _open_chats(self, seeded: Seeded) -> None:
        """Each artist opens the bot: `/start <invite>` the first time, a plain `/start` after a restart.

        Typing to the bot is what lets it write to them (Telegram's rule, kept by the simulator),
        so this happens before the bot and the outbox start; the bot answers once it polls.
        """
        assert self.service is not None and self.telegram is not None
        desk = self.service.desk
        for artist in ARTISTS:
            artist_id = seeded.artist_id(artist.key)
            async with desk.db.transaction() as session:
                linked = await artist_by_telegram_user(session, artist.telegram_user_id)
            if linked is not None and linked.id == artist_id:
                text = "/start"
            else:
                token = await workflow.create_invite(
                    desk, subject_kind=ActorKind.artist, subject_id=artist_id, actor=SEEDER
                )
                text = f"/start {token}"
            await self.telegram.send_text(BOT_TOKEN, artist.telegram_user_id, text)

    # ---------------------------------------------------------------- what the page reads

    def slack_version(self) -> int:
        """A number that grows whenever the Slack simulator's state changes."""
        assert self.slack is not None
        return self.slack.call_count() + len(self.slack.sent_to_app())

    async def wait_for_change(self, telegram_seen: int, slack_seen: int, timeout: float) -> None:
        """Returns once either simulator moved past what the page has seen, or after `timeout`."""
        telegram, slack = self.telegram, self.slack
        if telegram is None or slack is None:
            return
        waits = {
            asyncio.ensure_future(telegram.wait_for(lambda: telegram.version != telegram_seen, timeout)),
            asyncio.ensure_future(slack.wait_for(lambda: self.slack_version() != slack_seen, timeout)),
        }
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also when the page goes away mid-wait: no waiter may be left to time out unobserved.
            for wait in waits:
                wait.cancel()
            # A timeout is the usual end of a quiet moment, not an error.
            await asyncio.gather(*waits, return_exceptions=True)

    def page_config(self) -> dict[str, object]:
        """Who is who in the demo, and the creator's API key: everything the page needs to act."""
        seeded = self.seeded
        assert seeded is not None
        return {
            "bot": {"username": BOT_USERNAME, "name": "Likeness Consent"},
            "agency": {
                "id": seeded.agency_id,
                "name": AGENCY_NAME,
                "channel": CHANNEL_ID,
                "channel_name": CHANNEL_NAME,
                "timezone": AGENCY_TIMEZONE,
            },
            # Each agency with its own board; a member acts in their agency's workspace.
            "agencies": [
                {
                    "id": seeded.agency_id,
                    "name": AGENCY_NAME,
                    "channel": CHANNEL_ID,
                    "channel_name": CHANNEL_NAME,
                    "timezone": AGENCY_TIMEZONE,
                    "key": "starlight",
                },
                {
                    "id": seeded.moonrise_agency_id,
                    "name": MOONRISE_NAME,
                    "channel": MOONRISE.channel_id,
                    "channel_name": MOONRISE.channel_name,
                    "timezone": MOONRISE_TIMEZONE,
                    "key": "moonrise",
                },
            ],
            "members": [
                {"id": m.id, "name": m.name, "listed": m.listed, "agency": m.agency} for m in MEMBERS
            ],
            "artists": [
                {
                    "key": a.key,
                    "id": seeded.artist_id(a.key),
                    "name": a.name,
                    "first_name": a.first_name,
                    "language": a.language.value,
                    "policy": a.policy.value,
                    "timezone": a.timezone,
                    "telegram_user_id": a.telegram_user_id,
                    "red_lines": a.red_lines.model_dump(mode="json"),
                }
                for a in ARTISTS
            ],
            "creator": {"id": seeded.creator_id, "name": CREATOR_NAME, "api_key": seeded.creator_api_key},
        }


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


def prepare_sandbox(settings: Settings) -> Sandbox:
    """The sandbox for settings without platform tokens: `.settings` to build with, `.attach` to wire."""
    return Sandbox(settings)


async def _seed_artists(desk: workflow.Desk, agency_key: str, agency_id: str) -> list[SeededArtist]:
    """Adds the demo artists of one agency (in the order ARTISTS lists them)."""
    seeded = []
    for artist in ARTISTS:
        if artist.agency == agency_key:
            row = await workflow.add_artist(
                desk,
                name=artist.name,
                agency_id=agency_id,
                policy=artist.policy,
                language=artist.language,
                timezone=artist.timezone,
                red_lines=artist.red_lines,
                actor=SEEDER,
            )
            seeded.append(SeededArtist(key=artist.key, id=row.id))
    return seeded
