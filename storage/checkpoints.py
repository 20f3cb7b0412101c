"""Audit checkpoints in the database, and the chain walk that compares the chain with them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.audit import GENESIS_HASH, event_content, event_hash
from storage.tables import AuditCheckpoint, AuditEvent, AuditHead


@dataclass
class ChainHashes:
    """One walk of the chain: the hashes at the asked-for events, and where the chain first breaks."""

    checked: int = 0
    hashes: dict[int, str] = field(default_factory=dict)
    first_bad: int | None = None
    problem: str | None = None


async def chain_hashes_at(session: AsyncSession, seqs: set[int], *, batch: int = 5000) -> ChainHashes:
    """Walks the chain from its start; records each asked-for event's hash while the chain still holds."""
    found = ChainHashes()
    prev_hash = GENESIS_HASH
    last_seq = 0
    while True:
        page = list(
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.seq > last_seq).order_by(AuditEvent.seq).limit(batch)
                )
            ).scalars()
        )
        if not page:
            break
        for event in page:
            expected = last_seq + 1
            if event.seq != expected:
                found.first_bad, found.problem = expected, "it is missing"
                return found
            if event.prev_hash != prev_hash:
                found.first_bad, found.problem = event.seq, "its link to the previous event is broken"
                return found
            if event_hash(prev_hash, event_content(event)) != event.hash:
                found.first_bad, found.problem = event.seq, "its content does not match its hash"
                return found
            if event.seq in seqs:
                found.hashes[event.seq] = event.hash
            prev_hash = event.hash
            last_seq = event.seq
            found.checked += 1
        session.expunge_all()
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    if head.last_seq != found.checked or head.last_hash != prev_hash:
        found.first_bad, found.problem = found.checked + 1, "events at the end of the chain were removed"
    return found


async def chain_holds_between(
    session: AsyncSession, start_seq: int, start_hash: str, end_seq: int, end_hash: str
) -> str | None:
    """None when the events after `start_seq` link from `start_hash` up to `end_hash`; else the problem."""
    prev_hash = start_hash
    expected = start_seq + 1
    rows = await session.stream_scalars(
        select(AuditEvent)
        .where(AuditEvent.seq > start_seq, AuditEvent.seq <= end_seq)
        .order_by(AuditEvent.seq)
    )
    async for event in rows:
        if event.seq != expected:
            return f"event {expected} is missing"
        if event.prev_hash != prev_hash or event_hash(prev_hash, event_content(event)) != event.hash:
            return f"event {event.seq} no longer links to the chain"
        prev_hash, expected = event.hash, expected + 1
    if expected != end_seq + 1 or prev_hash != end_hash:
        return f"the chain does not reach the head at event {end_seq}"
    return None


async def audit_head(session: AsyncSession) -> tuple[int, str]:
    """The chain's head as the database states it: (last seq, last hash)."""
    head = (await session.execute(select(AuditHead).where(AuditHead.id == 1))).scalar_one()
    return head.last_seq, head.last_hash


async def latest_checkpoint(session: AsyncSession) -> AuditCheckpoint | None:
    """The checkpoint of the highest seq, or None before the first."""
    return (
        await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))
    ).scalar_one_or_none()


async def checkpoints_after(session: AsyncSession, after: int, limit: int) -> list[AuditCheckpoint]:
    """Checkpoints with seq greater than `after`, oldest first, at most `limit`."""
    rows = await session.execute(
        select(AuditCheckpoint).where(AuditCheckpoint.seq > after).order_by(AuditCheckpoint.seq).limit(limit)
    )
    return list(rows.scalars())


def add_checkpoint(
    session: AsyncSession,
    *,
    seq: int,
    head_hash: str,
    created_at: datetime,
    slot: str | None,
    sign: Callable[[dict[str, Any]], dict[str, Any]],
    created_iso: str,
) -> AuditCheckpoint:
    """Signs `{seq, head_hash, created_at}` and adds the row; the caller's commit may find it taken."""
    document = sign({"seq": seq, "head_hash": head_hash, "created_at": created_iso})
    row = AuditCheckpoint(
        seq=seq,
        head_hash=head_hash,
        created_at=created_at,
        kid=str(document["kid"]),
        document=document,
        slot=slot,
    )
    session.add(row)
    return row
