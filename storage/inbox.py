"""The inbox's statements: store arrivals (a repeat of a key changes nothing), claim the ones left
unfinished, mark one done, forget old done ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.database import Database
from storage.hot_writes import HotWrite
from storage.tables import InboxItem


@dataclass(frozen=True)
class Arrival:
    """One event to keep: its key (a platform's repeat has the same), where from, what, as received."""

    key: str
    source: str
    kind: str
    payload: dict[str, Any]


def _insert_new(dialect_name: str) -> Any:
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return dialect.insert(InboxItem).on_conflict_do_nothing(index_elements=["key"]).returning(InboxItem.key)


# Compiled once per dialect (SQLAlchemy does not cache an ON CONFLICT insert); a batch runs as one
# multi-row INSERT.
_INSERT_NEW = HotWrite(_insert_new)


async def add_arrivals(
    db: Database, arrivals: Sequence[Arrival], *, now: datetime, claimed_until: datetime
) -> set[str]:
    """Stores the arrivals in one statement, in a transaction of its own, claimed by the caller;
    returns the keys that were new (a key stored before is left as it is)."""
    if not arrivals:
        return set()
    rows = [
        {
            "key": a.key,
            "source": a.source,
            "kind": a.kind,
            "payload": a.payload,
            "received_at": now,
            "claimed_until": claimed_until,
            "done_at": None,
        }
        for a in arrivals
    ]
    return set((await db.quick_write(_INSERT_NEW, rows if len(rows) > 1 else rows[0])).scalars())


async def claim_unfinished(
    session: AsyncSession,
    *,
    source: str,
    now: datetime,
    claimed_until: datetime,
    limit: int,
    skip_locked: bool,
    everything: bool = False,
) -> list[Arrival]:
    """Claims unfinished arrivals of one source whose claim ran out (`everything`: held or not),
    oldest first; another instance's claim in progress is skipped (FOR UPDATE SKIP LOCKED)."""
    query = select(InboxItem).where(InboxItem.source == source, InboxItem.done_at.is_(None))
    if not everything:
        query = query.where(InboxItem.claimed_until <= now)
    query = query.order_by(InboxItem.received_at).limit(limit)
    if skip_locked:
        query = query.with_for_update(skip_locked=True)
    items = list((await session.execute(query)).scalars())
    if not items:
        return []
    await session.execute(
        update(InboxItem).where(InboxItem.key.in_([i.key for i in items])).values(claimed_until=claimed_until)
    )
    return [Arrival(i.key, i.source, i.kind, dict(i.payload)) for i in items]


_ITEMS = cast(Table, InboxItem.__table__)
# Built once, on the table (not the mapped class: no ORM bulk-update path): runs in every decision.
_MARK_DONE = HotWrite(
    update(_ITEMS)
    .where(_ITEMS.c.key == bindparam("item_key"), _ITEMS.c.done_at.is_(None))
    .values(done_at=bindparam("now"), payload=bindparam("emptied"))
)


async def mark_done(session: AsyncSession | AsyncConnection, key: str, *, now: datetime) -> bool:
    """Marks one arrival handled and drops its content (names, texts: only the key is needed to
    know a repeat); False when it was already handled (by this or another instance)."""
    result = await _MARK_DONE.execute(session, {"item_key": key, "now": now, "emptied": {}})
    return result.rowcount > 0


async def forget_done(session: AsyncSession, *, before: datetime) -> int:
    """Deletes arrivals handled before `before`; how many."""
    result = await session.execute(
        delete(InboxItem).where(InboxItem.done_at < before).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
