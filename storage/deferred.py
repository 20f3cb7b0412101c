"""Writes a transaction gathers and makes at its commit, each kind in one statement.

A step may append several audit events and queue several notices; written one by one, each is
a statement (and an ORM flush). Here each kind is kept in the session until the transaction
commits, then written in one executemany: all of a step's notices in one INSERT, all of its
audit events in one INSERT plus the head's UPDATE. A rolled-back transaction writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_WRITERS = "likeness.deferred"  # session.info key: name -> the writer run at commit

Writer = Callable[[Session], None]


def defer(session: AsyncSession | Session, name: str, make: Callable[[], Writer]) -> None:
    """Registers the writer `name` for this transaction's commit, made by `make` the first time."""
    writers: dict[str, Writer] = session.info.setdefault(_WRITERS, {})
    if name not in writers:
        writers[name] = make()


def deferred(session: AsyncSession | Session, name: str) -> Any:
    """The writer registered as `name` in this transaction, or None."""
    return session.info.get(_WRITERS, {}).get(name)


def write_deferred(session: Session) -> None:
    """Makes every deferred write now (in registration order), after flushing the ORM's changes
    that they may refer to; the commit runs this by itself."""
    writers: dict[str, Writer] = session.info.pop(_WRITERS, {})
    if not writers:
        return
    session.flush()
    for write in writers.values():
        write(session)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_deferred(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_WRITERS, None)
