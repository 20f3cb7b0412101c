"""Telegram updates through the inbox: each is stored before Telegram is told it arrived (the
webhook's 200, or the offset of the next getUpdates), then handled at once in this process by
the Application's handlers. What a crash left unfinished is handled when the bot connects again.

Long polling is this module's own loop rather than PTB's Updater: the Updater confirms an update
with its next getUpdates while the update may still wait, unhandled, in the Application's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Sequence
from typing import Any

from telegram import Update
from telegram.error import TelegramError

from bot import workflow
from bot.handlers.telegram.common import TelegramApp
from bot.workflow import Desk

log = logging.getLogger("bot.handlers.telegram")

SOURCE = "telegram"
# Seconds one getUpdates long poll waits for an update.
POLL_TIMEOUT = 10
# Seconds between looks for updates whose handler's claim ran out (another instance died).
RETAKE_EVERY = 10.0
# Seconds a stopping service gives the updates being handled to finish.
STOP_WAIT = 5.0


class TelegramIntake:
    """Stores, then handles, every update the bot receives.

    Parameters:
        application: the PTB Application whose handlers handle each update.
        desk: the workflow's desk (the inbox lives in its database).
        allowed_updates: the update types long polling asks for.
    """

    def __init__(self, application: TelegramApp, desk: Desk, allowed_updates: list[str]) -> None:
        """Nothing runs until `start`."""
        self.application = application
        self.desk = desk
        self.allowed_updates = allowed_updates
        self._handling: dict[str, asyncio.Task[None]] = {}
        self._loops: list[asyncio.Task[None]] = []

    def key(self, update_id: int, payload: dict[str, Any]) -> str:
        """The inbox key of an update: its id, which a repeat of it carries, and a digest of its
        content, so that an id given again to another update (a Bot API server that restarted
        its count) is not mistaken for a repeat."""
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()
        return f"{SOURCE}:{self.application.bot.id}:{update_id}:{digest[:16]}"

    async def accept(self, updates: Sequence[tuple[Update, dict[str, Any]]]) -> None:
        """Stores the updates (one statement) and starts handling the new ones; returns once
        stored, which is when Telegram may be told they arrived."""
        arrivals = [
            workflow.inbox.Arrival(self.key(update.update_id, payload), SOURCE, "update", payload)
            for update, payload in updates
        ]
        new = await workflow.inbox.receive(self.desk, arrivals)
        for arrival, (update, _payload) in zip(arrivals, updates, strict=True):
            if arrival.key in new:
                self._handle_soon(arrival.key, update)

    def _handle_soon(self, key: str, update: Update) -> None:
        task = asyncio.create_task(self._handle(key, update), name=f"telegram-update-{update.update_id}")
        self._handling[key] = task
        task.add_done_callback(lambda _task: self._handling.pop(key, None))

    async def _handle(self, key: str, update: Update) -> None:
        application = self.application

        async def run() -> None:
            # Through the update processor: at most as many updates at once as it allows.
            await application.update_processor.process_update(update, application.process_update(update))

        try:
            await workflow.inbox.handle_arrival(self.desk, key, run)
        except Exception:
            log.exception("a Telegram update could not be handled")

    async def start(self, *, poll: bool) -> None:
        """Handles what the last run left unfinished, then (when `poll`) starts long polling."""
        await self._retake(at_start=True)
        self._loops.append(asyncio.create_task(self._retake_loop(), name="telegram-inbox-retake"))
        if poll:
            self._loops.append(asyncio.create_task(self._poll(), name="telegram-polling"))

    async def stop(self) -> None:
        """Stops polling; updates being handled get a moment to finish (the rest stay unfinished
        in the inbox and are handled at the next start)."""
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops.clear()
        if self._handling:
            await asyncio.wait(list(self._handling.values()), timeout=STOP_WAIT)
        for task in list(self._handling.values()):
            task.cancel()

    async def _retake(self, *, at_start: bool = False) -> None:
        taken = await workflow.inbox.take_unfinished(self.desk, SOURCE, at_start=at_start)
        if taken:
            log.info("inbox: handling %d Telegram update(s) an earlier run left unfinished", len(taken))
        for arrival in taken:
            if arrival.key in self._handling:
                continue  # this process is handling it right now
            try:
                update = Update.de_json(arrival.payload, self.application.bot)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                log.warning("a stored Telegram update is unreadable (%s); dropped", type(error).__name__)
                await workflow.inbox.handle_arrival(self.desk, arrival.key, _nothing)
                continue
            self._handle_soon(arrival.key, update)

    async def _retake_loop(self) -> None:
        while True:
            await asyncio.sleep(RETAKE_EVERY)  # a cadence, not a wait for anything
            try:
                await self._retake()
            except Exception as error:  # the database away for a moment: the next look tries again
                log.warning("looking for unfinished Telegram updates failed: %s", type(error).__name__)

    async def _poll(self) -> None:
        """getUpdates in a loop; each batch is stored before the next call confirms it."""
        bot = self.application.bot
        offset: int | None = None
        delay = 1.0
        while True:
            try:
                updates = await bot.get_updates(
                    offset=offset, timeout=POLL_TIMEOUT, allowed_updates=self.allowed_updates
                )
                if updates:
                    await self.accept([(update, update.to_dict()) for update in updates])
                    offset = updates[-1].update_id + 1
            except TelegramError as error:
                log.warning("Telegram polling: %s: %s", type(error).__name__, error.message)
            except Exception as error:  # e.g. the database, while storing: the batch comes again
                log.warning("Telegram polling: %s", type(error).__name__)
            else:
                delay = 1.0
                continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _nothing() -> None:
    """What handling an unreadable stored update does."""
