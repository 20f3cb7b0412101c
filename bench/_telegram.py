"""What the Telegram benchmarks share: the Bot API simulator, a crowd of linked artists with a
request each (set up in-process on the service's SQLite file), and `likeness serve` against both.

Set-up goes through the workflow, not the API, so it costs no HTTP and no flood allowance:
every artist is linked as `/start <invite>` would link them (chat id = user id) and marked as
having pressed Start in the simulator, and every request queues one `card` notice. The service
starts afterwards and finds the cards waiting in its outbox.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import workflow
from bot.app import build_desk, settle_heap
from bot.config import load_settings
from bot.models import ActorKind, TermsIn
from bot.workflow import Desk
from sandbox.factories import terms_data
from sandbox.pg_server import free_port as free_port  # the benchmarks' webhook ports
from sandbox.service_process import ServiceProcess, service_env, start_service
from sandbox.telegram import TelegramSimulator

TOKEN = "7400001:BENCH-likeness_consent-token-0123456789"
BOT_USERNAME = "likeness_bench_bot"
FIRST_USER = 100_000


@dataclass(frozen=True)
class Card:
    """One artist's pending request, and the Telegram user who decides it."""

    artist_id: str
    user_id: int
    request_id: str


@dataclass
class Crowd:
    """A simulator, a database with linked artists and queued cards, and the env to serve them."""

    sim: TelegramSimulator
    folder: Path
    env: dict[str, str]
    cards: list[Card] = field(default_factory=list)
    service: ServiceProcess | None = None

    @property
    def database(self) -> Path:
        """The service's SQLite file."""
        return Path(self.env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))

    async def start(self, *args: str, **extra: str) -> ServiceProcess:
        """Starts `likeness serve [args]` in a thread, so the simulator on this loop keeps answering it."""
        self.env.update(extra)
        self.service = await asyncio.to_thread(
            start_service, dict(self.env), self.folder, timeout=60.0, args=args
        )
        return self.service

    async def stop(self) -> None:
        """SIGTERM and wait."""
        if self.service is not None:
            await asyncio.to_thread(self.service.stop)
            self.service = None

    def delivered_cards(self) -> dict[int, list[dict[str, Any]]]:
        """Card messages (the bot's messages with buttons) per chat."""
        found: dict[int, list[dict[str, Any]]] = {}
        for card in self.cards:
            chat = self.sim.messages(card.user_id, TOKEN)
            messages = [m for m in chat if card.request_id in (m["text"] or "")]
            if messages:
                found[card.user_id] = messages
        return found


async def poll_until(check: Callable[[], bool], timeout: float, every: float = 0.2) -> None:
    """Waits until `check()` holds, looking every `every` seconds.

    Not the simulator's `wait_for`: that re-checks on every change, and a check that copies
    thousands of recorded calls, run hundreds of times a second, would take CPU from the service
    being measured on this same machine.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise TimeoutError(f"still not done after {timeout:.0f} s")
        await asyncio.sleep(every)


def ok_calls(sim: TelegramSimulator, method: str) -> int:
    """How many calls of `method` the simulator answered with success."""
    return sum(1 for call in sim.calls(method) if call["ok"])


def _terms(desk: Desk, artist_id: str, number: int) -> TermsIn:
    return TermsIn.model_validate(terms_data(desk, artist_id, project_title=f"Moonlight Drama S{number}"))


async def make_crowd(size: int, *, prefix: str, **extra: str) -> Crowd:
    """Starts the simulator and queues one card for each of `size` freshly linked artists.

    The artists belong to no agency and the creator has no webhook, so the cards are the only
    notices in the outbox.
    """
    sim = TelegramSimulator(bots={TOKEN: BOT_USERNAME})
    await sim.start()
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    env = service_env(
        folder,
        LOG_LEVEL="WARNING",
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=sim.api_base_url,
        PTB_TIMEDELTA="true",
        **extra,
    )
    desk = build_desk(load_settings(database_url=env["DATABASE_URL"], data_dir=Path(env["DATA_DIR"])))
    await desk.db.upgrade()
    crowd = Crowd(sim, folder, env)
    try:
        creator = await workflow.add_creator(desk, name="Bench Studio")
        for number in range(size):
            user_id = FIRST_USER + number
            artist = await workflow.add_artist(desk, name=f"Artist {number}", timezone="Asia/Shanghai")
            token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=artist.id)
            await workflow.redeem_invite(desk, token=token, telegram_user_id=user_id, chat_id=user_id)
            sim.add_user(user_id, f"Artist{number}")
            sim.mark_started(TOKEN, user_id)
            submitted = await workflow.submit_request(
                desk, creator_id=creator.creator.id, terms_in=_terms(desk, artist.id, number)
            )
            crowd.cards.append(Card(artist.id, user_id, submitted.view.request.id))
    finally:
        await desk.db.dispose()
    # The simulator and the 1,000 artists' set-up live in this process for the whole run; frozen,
    # the collector's full passes no longer walk them mid-burst (100-130 ms each, measured), which
    # held up the simulator's record of the answers and so the measured latency.
    settle_heap()
    return crowd


async def end_crowd(crowd: Crowd) -> None:
    """The service first, so it never talks to a stopped simulator."""
    try:
        await crowd.stop()
    finally:
        await crowd.sim.stop()


async def tap_at_rate(
    crowd: Crowd, cards: list[Card], interval: float, callback_data: str | None = None
) -> list[tuple[str, float]]:
    """Taps each card's last message every `interval` s: its Approve, or the button carrying
    `callback_data`; returns each tap's callback query id and wall-clock moment, then waits for
    every tap to be answered."""
    sim = crowd.sim
    messages = {card.user_id: sim.messages(card.user_id, TOKEN)[-1] for card in cards}
    tapped: list[tuple[str, float]] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    for number, card in enumerate(cards):
        delay = start + number * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        moment = time.time()
        query_id = await sim.tap(
            TOKEN,
            card.user_id,
            card.user_id,
            messages[card.user_id]["message_id"],
            callback_data=callback_data,
            button_text=None if callback_data else "Approve",
        )
        tapped.append((query_id, moment))
    await poll_until(lambda: all(sim.callback_answer(q) for q, _ in tapped), timeout=300, every=0.05)
    return tapped
