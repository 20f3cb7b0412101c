"""The audit chain: append one event at a time, and verify that nothing was edited, removed or moved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.models import canonical_json, sha256_hex, utc_iso
from storage.deferred import defer, deferred
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
    """The events a transaction appended, not yet written, and the head they lead to."""

    def __init__(self, last_seq: int, last_hash: str) -> None:
        self.head_seq, self.head_hash = last_seq, last_hash
        self.rows: list[dict[str, Any]] = []

    def __call__(self, session: Session) -> None:
        if not self.rows:
            return
        session.execute(insert(_EVENTS), self.rows)
        session.execute(
            update(_HEAD).where(_HEAD.c.id == 1).values(last_seq=self.head_seq, last_hash=self.head_hash)
        )
        self.rows = []


_PENDING = "audit_events"
_HEAD_FOR_UPDATE = select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.id == 1).with_for_update()


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

    The head row is read and locked once per transaction (FOR UPDATE on PostgreSQL; SQLite's
    write lock does the same), so concurrent appends queue and the chain stays a single line.
    The transaction's events are written when it commits (storage/deferred.py): one INSERT for
    all of them and one UPDATE of the head, however many it appended.
    """
    pending: _PendingEvents | None = deferred(session, _PENDING)
    if pending is None:
        head = (await session.execute(_HEAD_FOR_UPDATE)).one()
        found = _PendingEvents(head.last_seq, head.last_hash)
        defer(session, _PENDING, lambda: found)
        pending = found
    content: dict[str, Any] = {
        "seq": pending.head_seq + 1,
        "at": utc_iso(at),
        "actor_kind": actor_kind,
        "actor_id": actor_id,
        "channel": channel,
        "action": action,
        "subject_kind": subject_kind,
        "subject_id": subject_id,
        "data": data or {},
    }
    digest = event_hash(pending.head_hash, content)
    pending.rows.append(content | {"at": at, "prev_hash": pending.head_hash, "hash": digest})
    pending.head_seq, pending.head_hash = content["seq"], digest


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
