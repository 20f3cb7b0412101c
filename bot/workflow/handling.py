"""Which inbox arrival the running task is handling: the first transaction it commits also marks
the arrival done, so a replay after a crash finds it done and has no second effect."""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.inbox import mark_done


class AlreadyHandled(Exception):
    """The arrival being handled was marked done by another run: this one must change nothing."""


@dataclass
class Handling:
    """An arrival being handled by one task; `done` once a committed transaction marked it."""

    key: str
    task: asyncio.Task[object] | None = field(default_factory=asyncio.current_task)
    done: bool = False


HANDLING: ContextVar[Handling | None] = ContextVar("inbox_handling", default=None)


async def mark_handled(session: AsyncSession, now: datetime) -> Handling | None:
    """In a transaction of the task handling an arrival not yet marked: marks it in the same
    transaction and returns it (set `done` once committed); raises AlreadyHandled when another run
    marked it first. None when there is nothing to mark."""
    handling = HANDLING.get()
    if handling is None or handling.done or handling.task is not asyncio.current_task():
        return None  # a task started from the handling one inherits the context, not the arrival
    if not await mark_done(session, handling.key, now=now):
        raise AlreadyHandled(handling.key)
    return handling
