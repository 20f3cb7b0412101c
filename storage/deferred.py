"""Writes a transaction gathers and makes at its commit, each kind in one statement.

A step may append several audit events and queue several notices; written one by one, each is
a statement (and an ORM flush). Here each kind is kept in the session until the transaction
commits, then written in one executemany: all of a step's notices in one INSERT, all of its
audit events in one INSERT plus the head's UPDATE. A rolled-back transaction writes nothing.
A writer registered `last` runs after the others: the audit chain's, which locks its head row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_WRITERS = "likeness.deferred"  # session.info key: name -> the writer run at commit
_LAST = "likeness.deferred.last"  # session.info key: the names of the writers run last

Writer = Callable[[Session], None]


def defer(
    session: AsyncSession | Session, name: str, make: Callable[[], Writer], *, last: bool = False
) -> None:
    """Registers the writer `name` for this transaction's commit, made by `make` the first time;
    a `last` one runs after every other."""
    writers: dict[str, Writer] = session.info.setdefault(_WRITERS, {})
    if name not in writers:
        writers[name] = make()
        if last:
            session.info.setdefault(_LAST, set()).add(name)


def deferred(session: AsyncSession | Session, name: str) -> Any:
    """The writer registered as `name` in this transaction, or None."""
    return session.info.get(_WRITERS, {}).get(name)


def write_deferred(session: Session) -> None:
    """Makes every deferred write now (in registration order), after flushing the ORM's changes
    that they may refer to; the commit runs this by itself."""
    writers: dict[str, Writer] = session.info.pop(_WRITERS, {})
    last: set[str] = session.info.pop(_LAST, set())
    if not writers:
        return
    session.flush()
    for name in sorted(writers, key=lambda name: name in last):  # a stable sort: order kept otherwise
        writers[name](session)


def discard_deferred(session: AsyncSession | Session) -> None:
    """Drops every write gathered so far in this transaction, unwritten."""
    session.info.pop(_WRITERS, None)
    session.info.pop(_LAST, None)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    write_deferred(session)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_WRITERS, None)
    session.info.pop(_LAST, None)
