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
    """The events a transaction appended, not yet linked into the chain nor written."""

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, Any], datetime]] = []  # (hashed content, its time)

    def __call__(self, session: Session) -> None:
        if not self.events:
            return
        head = session.execute(_HEAD_FOR_UPDATE).one()
        seq, prev_hash = head.last_seq, head.last_hash
        rows = []
        for content, at in self.events:
            seq += 1
            content["seq"] = seq
            digest = event_hash(prev_hash, content)
            rows.append(content | {"at": at, "prev_hash": prev_hash, "hash": digest})
            prev_hash = digest
        session.execute(insert(_EVENTS), rows)
        session.execute(update(_HEAD).where(_HEAD.c.id == 1).values(last_seq=seq, last_hash=prev_hash))
        self.events = []


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

    The events are linked into the chain and written when the transaction commits
    (storage/deferred.py), after its other writes: the head row is read and locked then (FOR
    UPDATE on PostgreSQL; SQLite's write lock does the same), each event gets the next number and
    its hash, and one INSERT writes them all, one UPDATE moves the head. So concurrent
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
