"""The audit chain: append one event at a time, and verify that nothing was edited, removed or moved."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import canonical_json, sha256_hex, utc_iso
from storage.tables import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64


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
) -> AuditEvent:
    """Appends one event to the chain inside the caller's transaction.

    The head row is locked (FOR UPDATE on PostgreSQL; SQLite's write lock does the same),
    so concurrent appends queue and the chain stays a single line.
    """
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update())).scalar_one()
    event = AuditEvent(
        seq=head.last_seq + 1,
        at=at,
        actor_kind=actor_kind,
        actor_id=actor_id,
        channel=channel,
        action=action,
        subject_kind=subject_kind,
        subject_id=subject_id,
        data=data or {},
        prev_hash=head.last_hash,
        hash="",
    )
    event.hash = event_hash(head.last_hash, _content(event))
    head.last_seq = event.seq
    head.last_hash = event.hash
    session.add(event)
    await session.flush()
    return event


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
