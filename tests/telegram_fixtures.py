"""A world for Telegram tests: the Bot API simulator in the test process, `likeness serve` as a
subprocess talking to it over real HTTP, and a desk on the same SQLite file for setting up parties.

The service's start and stop run in a thread: while the test's event loop waits for them, the
simulator (on that same loop) must go on answering the service's getMe, setMyCommands and polls.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from bot import workflow
from bot.clock import SystemClock
from bot.models import ActorKind, Language, Policy
from bot.receipts import load_or_create_signer
from bot.workflow import Desk
from sandbox.factories import terms_at
from sandbox.service_process import ServiceProcess, run_cli, service_env, start_service
from sandbox.telegram import TelegramSimulator
from storage.database import Database

TOKEN = "7000001:TEST-likeness_consent-token-0123456789"
BOT_USERNAME = "likeness_test_bot"


@dataclass
class Party:
    """An artist linked to a simulated Telegram user, and a creator that may ask them."""

    artist_id: str
    user_id: int
    creator_id: str
    api_key: str
    name: str


@dataclass
class World:
    """The simulator, the service and a desk, with the steps tests take as users and creators."""

    sim: TelegramSimulator
    desk: Desk
    root: Path
    env: dict[str, str]
    service: ServiceProcess | None = None
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30))
    _next_user: int = 5000

    # ------------------------------------------------------------ the service

    async def start(self, **extra: str) -> ServiceProcess:
        """Starts `likeness serve` against the simulator."""
        self.env.update(extra)
        self.service = await asyncio.to_thread(start_service, dict(self.env), self.root)
        return self.service

    async def stop(self) -> None:
        """SIGTERM and wait."""
        if self.service is not None:
            await asyncio.to_thread(self.service.stop)

    async def kill(self) -> None:
        """SIGKILL: a crash, no clean-up."""
        assert self.service is not None
        await asyncio.to_thread(self.service.kill)

    @property
    def url(self) -> str:
        """Where the service listens."""
        assert self.service is not None
        return self.service.url

    async def cli(self, *args: str) -> str:
        """Runs one `likeness` command (in a thread: it may ask the simulator for getMe)."""
        done = await asyncio.to_thread(run_cli, dict(self.env), self.root, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    # ------------------------------------------------------------ parties

    def new_user(self, first_name: str, language_code: str = "en") -> int:
        """A fresh simulated Telegram user."""
        self._next_user += 1
        self.sim.add_user(self._next_user, first_name, language_code=language_code)
        return self._next_user

    async def party(
        self,
        name: str = "Li Wei",
        *,
        language: Language = Language.en,
        timezone: str = "Asia/Shanghai",
        policy: Policy = Policy.artist_only,
        link: bool = True,
    ) -> Party:
        """Registers an artist (and a creator for them) and, unless told not to, links their Telegram."""
        agency = await workflow.add_agency(self.desk, name=f"{name}'s agency")
        artist = await workflow.add_artist(
            self.desk, name=name, agency_id=agency.id, language=language, timezone=timezone, policy=policy
        )
        creator = await workflow.add_creator(self.desk, name="Dream Studio")
        user = self.new_user(name.split()[0], "zh-hans" if language is Language.zh_hans else "en")
        party = Party(artist.id, user, creator.creator.id, creator.api_key, name)
        if link:
            # Linked as /start would link them, minus the greeting: every message in a private chat
            # spends its flood allowance (1/s), and the onboarding tests check the greeting already.
            token = await workflow.create_invite(
                self.desk, subject_kind=ActorKind.artist, subject_id=artist.id
            )
            await workflow.redeem_invite(self.desk, token=token, telegram_user_id=user, chat_id=user)
            self.sim.mark_started(TOKEN, user)  # the user has pressed Start in the bot's chat
        return party

    async def linked_studio(self, party: Party) -> int:
        """The party's creator links a Telegram chat for its status updates; the chat's user id."""
        studio = self.new_user("Studio")
        token = await workflow.create_invite(
            self.desk, subject_kind=ActorKind.creator, subject_id=party.creator_id
        )
        await self.sim.send_text(TOKEN, studio, f"/start {token}")
        await self.wait_text(studio, "Status updates")
        return studio

    async def crowd(self, count: int) -> list[Party]:
        """Many linked artists asked by one creator, for bursts (one party per artist)."""
        creator = await workflow.add_creator(self.desk, name="Burst Studio")
        crowd = []
        for number in range(count):
            artist = await workflow.add_artist(self.desk, name=f"Artist {number}", timezone="Europe/Paris")
            user = self.new_user(f"Artist{number}")
            token = await workflow.create_invite(
                self.desk, subject_kind=ActorKind.artist, subject_id=artist.id
            )
            await workflow.redeem_invite(self.desk, token=token, telegram_user_id=user, chat_id=user)
            self.sim.mark_started(TOKEN, user)
            crowd.append(Party(artist.id, user, creator.creator.id, creator.api_key, artist.name))
        return crowd

    async def file_directly(self, party: Party, **overrides: Any) -> str:
        """Files a request straight into the database, as another instance would (no wake-up)."""
        from bot.models import TermsIn

        terms = TermsIn.model_validate(self.terms(party, **overrides))
        submitted = await workflow.submit_request(self.desk, creator_id=party.creator_id, terms_in=terms)
        return submitted.view.request.id

    # ------------------------------------------------------------ creators' API

    def terms(self, party: Party, **overrides: Any) -> dict[str, Any]:
        """Valid terms for the party's artist, relative to now."""
        return terms_at(datetime.now(UTC), party.artist_id, **overrides)

    async def submit(self, party: Party, **overrides: Any) -> str:
        """Files a request through the service's API (which wakes its outbox at once); its id."""
        answer = await self.http.post(
            f"{self.url}/v1/requests",
            json=self.terms(party, **overrides),
            headers={"Authorization": f"Bearer {party.api_key}"},
        )
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    async def withdraw(self, party: Party, request_id: str) -> None:
        """The creator takes the request back through the API."""
        answer = await self.http.post(
            f"{self.url}/v1/requests/{request_id}/withdraw",
            headers={"Authorization": f"Bearer {party.api_key}"},
        )
        assert answer.status_code == 200, answer.text

    # ------------------------------------------------------------ reading the chat

    def texts(self, chat_id: int) -> list[str]:
        """Every bot message text (or caption) in a chat, oldest first."""
        return [m["text"] for m in self.sim.messages(chat_id, TOKEN)]

    async def wait_text(self, chat_id: int, fragment: str, timeout: float = 10) -> dict[str, Any]:
        """The newest bot message containing `fragment`, once there is one."""

        def found() -> dict[str, Any] | None:
            matches = [m for m in self.sim.messages(chat_id, TOKEN) if fragment in (m["text"] or "")]
            return matches[-1] if matches else None

        result: dict[str, Any] = await self.sim.wait_for(found, timeout=timeout)
        return result

    def cards(self, chat_id: int, request_id: str) -> list[dict[str, Any]]:
        """Every card message of a request in a chat, oldest first (a card ends with its reference)."""
        ref = re.compile(rf"(Ref|编号) {request_id}$")
        return [m for m in self.sim.messages(chat_id, TOKEN) if ref.search(m["text"] or "")]

    async def card(self, chat_id: int, request_id: str, timeout: float = 10) -> dict[str, Any]:
        """The newest card of a request, once it has arrived."""

        def found() -> dict[str, Any] | None:
            cards = self.cards(chat_id, request_id)
            return cards[-1] if cards else None

        result: dict[str, Any] = await self.sim.wait_for(found, timeout=timeout)
        return result

    async def card_where(
        self, chat_id: int, request_id: str, check: Any, timeout: float = 10
    ) -> dict[str, Any]:
        """The request's newest card once `check(card)` holds (e.g. after an edit)."""

        def found() -> dict[str, Any] | None:
            cards = self.cards(chat_id, request_id)
            return cards[-1] if cards and check(cards[-1]) else None

        result: dict[str, Any] = await self.sim.wait_for(found, timeout=timeout)
        return result

    async def tap(
        self, user_id: int, message: dict[str, Any], button: str, *, as_user: int | None = None
    ) -> dict[str, Any]:
        """Taps a button of a bot message as a user; returns the bot's answer to the tap."""
        query = await self.sim.tap(
            TOKEN, as_user or user_id, user_id, message["message_id"], button_text=button
        )
        return await self.answer(query)

    async def answer(self, query_id: str, timeout: float = 10) -> dict[str, Any]:
        """How the bot answered a callback query, once it did."""
        result: dict[str, Any] = await self.sim.wait_for(
            lambda: self.sim.callback_answer(query_id), timeout=timeout
        )
        return result

    async def close(self) -> None:
        """Stops the service, the client and the database."""
        await self.stop()
        await self.http.aclose()
        await self.desk.db.dispose()


def buttons(message: dict[str, Any]) -> list[str]:
    """The labels of a message's inline buttons."""
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [button["text"] for row in keyboard for button in row]


async def make_world(root: Path, **extra: str) -> World:
    """A simulator, a migrated database with its signing key, and the env to serve them (not started)."""
    sim = TelegramSimulator(bots={TOKEN: BOT_USERNAME})
    await sim.start()
    env = service_env(
        root,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=sim.api_base_url,
        PTB_TIMEDELTA="true",
        **extra,
    )
    database = Database(env["DATABASE_URL"])
    await database.upgrade()
    signer = load_or_create_signer(Path(env["DATA_DIR"]) / "signing_key.pem")
    desk = Desk(db=database, clock=SystemClock(), signer=signer)
    return World(sim=sim, desk=desk, root=root, env=env)


async def end_world(world: World) -> None:
    """Tears the world down; the service first, so it never polls a stopped simulator."""
    try:
        await world.close()
    finally:
        await world.sim.stop()


def module_world(folder: str, **extra: str) -> Any:
    """A `world` fixture for a test module: one simulator and one started service (`extra` in its
    environment, its files in a temporary folder named `folder`), shared by the module's tests."""

    @pytest_asyncio.fixture(loop_scope="module", scope="module", name="world")
    async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
        built = await make_world(tmp_path_factory.mktemp(folder), **extra)
        await built.start()
        try:
            yield built
        finally:
            await end_world(built)

    return world


async def reply(sim: TelegramSimulator, user_id: int, to_message_id: int, text: str) -> int:
    """The user answers a bot message with Telegram's Reply (as a ForceReply prompt invites);
    returns the update id."""
    return await sim.send_text(TOKEN, user_id, text, reply_to_message_id=to_message_id)
