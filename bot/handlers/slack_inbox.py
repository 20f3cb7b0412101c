"""Slack clicks that decide something, through the inbox: each is stored before Slack's ack (so
before the 3-second answer), then handled at once in the same listener; what a crash left
unfinished is handled when the service starts again, from the stored body."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot import workflow
from bot.workflow import Desk

log = logging.getLogger(__name__)

SOURCE = "slack"
# Seconds between looks for clicks whose handler's claim ran out (another instance died).
RETAKE_EVERY = 10.0

# What a click does once stored: its body, and the response_url's sender (None when handled
# after a restart: the answer then goes through chat.postEphemeral only).
Work = Callable[[dict[str, Any], AsyncRespond | None], Awaitable[None]]
Listener = Callable[[AsyncAck, dict[str, Any], AsyncRespond], Awaitable[None]]


def click_key(body: dict[str, Any]) -> str:
    """The inbox key of a click: who, and Slack's own stamp of the action (the form's view id for
    a submission); a repeat of the same click carries the same."""
    user = str((body.get("user") or {}).get("id") or "")
    if body.get("type") == "view_submission":
        stamp = "view:" + str((body.get("view") or {}).get("id") or "")
    else:
        action = (body.get("actions") or [{}])[0]
        stamp = str(action.get("action_ts") or "") or "trigger:" + str(body.get("trigger_id") or "")
    return f"{SOURCE}:{user}:{stamp}"[:160]


class SlackInbox:
    """Stores each deciding click before its ack and runs its work from there.

    Parameters:
        desk: the workflow's desk (the inbox lives in its database).
    """

    def __init__(self, desk: Desk) -> None:
        """No work is known until listeners are made."""
        self.desk = desk
        self.works: dict[str, Work] = {}
        self._handling: set[str] = set()
        self._loops: list[asyncio.Task[None]] = []

    def listener(self, kind: str, work: Work) -> Listener:
        """A Bolt listener that stores the click, acks it, then does `work` with it."""
        self.works[kind] = work

        async def listen(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
            await self.take(ack, kind, body, respond)

        return listen

    async def take(
        self, ack: AsyncAck, kind: str, body: dict[str, Any], respond: AsyncRespond | None
    ) -> None:
        """Stores the click (a repeat changes nothing), acks it, and handles it when it is new."""
        key = click_key(body)
        self._handling.add(key)  # before it is stored: a look for unfinished clicks leaves it alone
        try:
            new = await workflow.inbox.receive(self.desk, [workflow.inbox.Arrival(key, SOURCE, kind, body)])
            await ack()
            if key in new:
                await self._handle(key, kind, body, respond)
        finally:
            self._handling.discard(key)

    async def _handle(self, key: str, kind: str, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        work = self.works.get(kind)
        self._handling.add(key)
        try:
            if work is None:
                log.warning("a stored Slack click of unknown kind %r; dropped", kind)
                await workflow.inbox.handle_arrival(self.desk, key, _nothing)
            else:
                await workflow.inbox.handle_arrival(self.desk, key, lambda: work(body, respond))
        finally:
            self._handling.discard(key)

    async def start(self) -> None:
        """In the background: handles the clicks the last run left unfinished, then keeps looking
        for claims that ran out."""
        self._loops.append(asyncio.create_task(self._retake_loop(), name="slack-inbox-retake"))

    async def stop(self) -> None:
        """Stops looking."""
        for loop in self._loops:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops.clear()

    async def _retake(self, *, at_start: bool = False) -> None:
        taken = await workflow.inbox.take_unfinished(self.desk, SOURCE, at_start=at_start)
        if taken:
            log.info("inbox: handling %d Slack click(s) an earlier run left unfinished", len(taken))
        for arrival in taken:
            if arrival.key not in self._handling:
                try:
                    await self._handle(arrival.key, arrival.kind, arrival.payload, None)
                except Exception:
                    log.exception("a stored Slack click could not be handled")

    async def _retake_loop(self) -> None:
        at_start = True
        while True:
            try:
                await self._retake(at_start=at_start)
                at_start = False
            except Exception as error:  # the database away for a moment: the next look tries again
                log.warning("looking for unfinished Slack clicks failed: %s", type(error).__name__)
            await asyncio.sleep(RETAKE_EVERY)  # a cadence, not a wait for anything


async def _nothing() -> None:
    """What handling a click of unknown kind does."""
