"""The audit chain: append one event at a time, and verify that nothing was edited, removed or moved."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.models import canonical_json, sha256_hex, utc_iso
from storage.deferred import defer, deferred
from storage.hot_writes import HotWrite
from storage.tables import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
_EVENTS = cast(Table, AuditEvent.__table__)
_HEAD = cast(Table, AuditHead.__table__)


def event_hash(prev_hash: str, content: dict[str, Any]) -> str:
    """The hash of one event: over the previous hash and the event's canonical content."""
    return sha256_hex(prev_hash.encode("ascii") + b"\n" + canonical_json(content))


def _content(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": utc_iso(event.at),
        "actor_kind": event.actor_kind,
        "actor_id": event.actor_id,
        "channel": event.channel,
        "action": event.action,
        "subject_kind": event.subject_kind,
        "subject_id": event.subject_id,
        "data": event.data,
    }


def event_content(event: AuditEvent) -> dict[str, Any]:
    """What an event's hash covers (besides the previous hash)."""
    return _content(event)


class _PendingEvents:
    """The events a transaction appended, not yet linked into the chain nor written."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, Any], datetime]] = []  # (hashed content, its time)

    def __call__(self, session: Session) -> None:
        if not self.events:
            return
        connection = session.connection()
        known = _KNOWN_HEADS.get(connection.engine)
        if known is not None:
            # The head this process last wrote, moved on only if nobody else moved it since: one
            # UPDATE, no read. Anybody else's append (another instance, a CLI command) changed
            # the row, the UPDATE matches nothing, and the head is read and locked below instead.
            rows, seq, head_hash = self._link(*known)
            moved = _MOVE_KNOWN_HEAD.run(
                connection,
                {"old_seq": known[0], "old_hash": known[1], "seq": seq, "hash": head_hash},
            )
            if moved.rowcount != 1:
                known = None
        if known is None:
            head = connection.execute(_HEAD_FOR_UPDATE).one()
            rows, seq, head_hash = self._link(head.last_seq, head.last_hash)
            _MOVE_HEAD.run(connection, {"seq": seq, "hash": head_hash})
        _INSERT_EVENTS.run(connection, rows)
        # Remembered before the commit: if it fails, the next append finds the row unchanged
        # and reads it afresh; a wrong guess costs one UPDATE that matches nothing.
        _KNOWN_HEADS[connection.engine] = (seq, head_hash)
        self.events = []

    def _link(self, seq: int, prev_hash: str) -> tuple[list[dict[str, Any]], int, str]:
        """Numbers and hashes the events after the head (seq, prev_hash): rows, new seq, new hash."""
        rows = []
        for content, at in self.events:
            seq += 1
            content["seq"] = seq
            digest = event_hash(prev_hash, content)
            rows.append(content | {"at": at, "prev_hash": prev_hash, "hash": digest})
            prev_hash = digest
        return rows, seq, prev_hash


_PENDING = "audit_events"
_HEAD_FOR_UPDATE = select(_HEAD.c.last_seq, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = HotWrite(
    update(_HEAD).where(_HEAD.c.id == 1).values(last_seq=bindparam("seq"), last_hash=bindparam("hash"))
)
_MOVE_KNOWN_HEAD = HotWrite(
    update(_HEAD)
    .where(
        _HEAD.c.id == 1, _HEAD.c.last_seq == bindparam("old_seq"), _HEAD.c.last_hash == bindparam("old_hash")
    )
    .values(last_seq=bindparam("seq"), last_hash=bindparam("hash"))
)
_INSERT_EVENTS = HotWrite(insert(_EVENTS))
# The head each database's writer last moved it to, per engine (so per database and process).
_KNOWN_HEADS: weakref.WeakKeyDictionary[Engine, tuple[int, str]] = weakref.WeakKeyDictionary()


async def append_audit(
    session: AsyncSession,
    *,
    at: datetime,
    actor_kind: str,
    actor_id: str,
    channel: str,
    action: str,
    subject_kind: str,
    subject_id: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Appends one event to the chain inside the caller's transaction.

    The events are linked into the chain and written when the transaction commits
    (storage/deferred.py), after its other writes: the head row is locked then, each event gets
    the next number and its hash, one UPDATE moves the head and one INSERT writes them all. The
    head is read (FOR UPDATE on PostgreSQL; SQLite's write lock does the same) only when the one
    this process last wrote has moved since; else the UPDATE, conditional on it, is the lock. So concurrent
    transactions queue on the head only for the last moment of their commit, and the chain stays
    a single line in commit order.
    """
    pending: _PendingEvents | None = deferred(session, _PENDING)
    if pending is None:
        found = _PendingEvents()
        defer(session, _PENDING, lambda: found, last=True)
        pending = found
    content: dict[str, Any] = {
        "seq": 0,  # numbered at commit
        "at": utc_iso(at),
        "actor_kind": actor_kind,
        "actor_id": actor_id,
        "channel": channel,
        "action": action,
        "subject_kind": subject_kind,
        "subject_id": subject_id,
        "data": data or {},
    }
    pending.events.append((content, at))


@dataclass(frozen=True)
class ChainReport:
    """What verification found: how many events were checked, and the first bad one."""

    checked: int
    bad_seq: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        """True when every event and the head agree."""
        return self.bad_seq is None and self.problem is None


async def verify_chain(session: AsyncSession, *, batch: int = 5000) -> ChainReport:
    """Walks the chain in order and names the first event whose content, link or position is wrong."""
    prev_hash = GENESIS_HASH
    expected_seq = 1
    checked = 0
    last_seq = 0
    while True:
        rows = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)
            )
        ).scalars()
        page = list(rows)
        if not page:
            break
        for event in page:
            if event.seq != expected_seq:
                return ChainReport(checked, expected_seq, f"event {expected_seq} is missing")
            if event.prev_hash != prev_hash:
                return ChainReport(checked, event.seq, "its link to the previous event is broken")
            if event_hash(prev_hash, _content(event)) != event.hash:
                return ChainReport(checked, event.seq, "its content does not match its hash")
            prev_hash = event.hash
            expected_seq += 1
            checked += 1
            last_seq = event.seq
        session.expunge_all()
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    if head.last_seq != checked or head.last_hash != prev_hash:
        return ChainReport(checked, checked + 1, "events at the end of the chain were removed")
    return ChainReport(checked)
