"""The inbox beside the outbox: a Telegram update or a Slack click is stored before the platform
is told it arrived, handled from there, and marked done in the transaction of its effect, so a
crash at any moment loses nothing acknowledged and a replay changes nothing twice.

The channel that received an arrival handles it at once, holding it for `LEASE`; what a crashed
run left unfinished is taken over at start-up (SQLite: one instance, so all of it) or once its
claim runs out (PostgreSQL, several instances, FOR UPDATE SKIP LOCKED).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

from bot.workflow.desk import Desk
from bot.workflow.handling import HANDLING, AlreadyHandled, Handling
from storage.inbox import Arrival, add_arrivals, claim_unfinished, forget_done, mark_done

log = logging.getLogger("bot.inbox")

# How long the instance handling an arrival holds it before another may take it over.
LEASE = timedelta(seconds=60)
# Handled arrivals are kept this long (a platform repeating an event later than this is not expected).
KEEP_DONE = timedelta(days=1)
TAKE_BATCH = 100

__all__ = ["AlreadyHandled", "Arrival", "handle_arrival", "prune_inbox", "receive", "take_unfinished"]


async def receive(desk: Desk, arrivals: Sequence[Arrival]) -> set[str]:
    """Stores arrivals in one statement before they are acknowledged; returns the keys that are new
    (and so this caller's to handle now); a key seen before is left alone."""
    now = desk.clock.now()
    return await add_arrivals(desk.db, arrivals, now=now, claimed_until=now + LEASE)


async def take_unfinished(desk: Desk, source: str, *, at_start: bool = False) -> list[Arrival]:
    """Claims arrivals of one source left unfinished (a crash, a failure); at start-up on a
    one-instance database every unfinished one, held or not (its holder is gone)."""
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        return await claim_unfinished(
            session,
            source=source,
            now=now,
            claimed_until=now + LEASE,
            limit=TAKE_BATCH,
            skip_locked=desk.db.supports_skip_locked,
            everything=at_start and not desk.db.supports_skip_locked,
        )


async def handle_arrival(desk: Desk, key: str, work: Callable[[], Awaitable[None]]) -> None:
    """Runs `work` for one arrival and marks it done: in its first committed transition when it
    has one (so effect and mark commit together), else once it returns or fails. Cancelled (the
    service stopping), it stays unfinished for the next start."""
    handling = Handling(key)
    token = HANDLING.set(handling)
    try:
        await work()
    except AlreadyHandled:
        log.info("inbox %s was handled by another run; this one changed nothing", key)
        return
    except Exception:
        await _finish(desk, handling)
        raise
    finally:
        HANDLING.reset(token)
    await _finish(desk, handling)


async def _finish(desk: Desk, handling: Handling) -> None:
    if not handling.done:
        async with desk.db.core_transaction() as connection:
            handling.done = await mark_done(connection, handling.key, now=desk.clock.now())


async def prune_inbox(desk: Desk) -> int:
    """Forgets arrivals handled more than KEEP_DONE ago; how many."""
    async with desk.db.transaction() as session:
        return await forget_done(session, before=desk.clock.now() - KEEP_DONE)
