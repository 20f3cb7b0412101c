"""Erasure on request: an artist's personal data removed while the records of what was agreed stay.

What goes: the output files that show the artist (bot/output_files.py; their hashes stay), the
artist's name, Telegram user and chat ids (and the invites and card references that hold them),
the free texts they wrote (deny reasons, pause reasons), their name in stored receipts and in
queued or sent notices, every notice addressed to them, and the key that sealed their personal
values in the audit chain (storage/personal.py). What stays: ids, terms, decisions' outcomes,
grants and their windows, usage, and the audit chain itself, byte for byte, so
`likeness audit verify` still passes. Receipts handed out before stay verifiable with the
published keys; the stored copies lose the name and record the SHA-256 of the receipt as issued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import OPEN_STATUSES, Actor, ActorKind, canonical_json, sha256_hex
from bot.workflow.desk import Desk, audit
from bot.workflow.errors import NotFound
from storage.personal import PERSONAL_FIELDS, destroy_key, open_sealed
from storage.tables import (
    Artist,
    AuditEvent,
    CardRef,
    Decision,
    Deletion,
    Grant,
    Invite,
    Notice,
    Output,
    Request,
    UsageEvent,
)

ERASED = "[erased]"
# A redacted stored receipt keeps the hash of the receipt as signed (deletion receipts cite it).
ISSUED_SHA256 = "erased_receipt_sha256"


@dataclass(frozen=True)
class Erased:
    """What erasure touched."""

    artist_id: str
    requests: int
    notices_removed: int


def _scrub(value: Any, texts: list[str]) -> Any:
    """`value` with every occurrence of the given texts replaced, in any string at any depth."""
    if isinstance(value, str):
        for text in texts:
            # A very short text (a chosen reason's code) only where it is the whole value.
            value = value.replace(text, ERASED) if len(text) >= 4 or value == text else value
        return value
    if isinstance(value, dict):
        return {key: _scrub(item, texts) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, texts) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and str(value) in texts:
        return None
    return value


def _redacted(receipt: dict[str, Any] | None, texts: list[str]) -> dict[str, Any] | None:
    if receipt is None or ISSUED_SHA256 in receipt:
        return receipt
    issued = sha256_hex(canonical_json(receipt))
    return dict(_scrub(receipt, texts)) | {ISSUED_SHA256: issued}


def issued_receipt_sha256(receipt: dict[str, Any]) -> str:
    """The SHA-256 of a receipt as it was signed, also after erasure redacted the stored copy."""
    return str(receipt.get(ISSUED_SHA256) or sha256_hex(canonical_json(receipt)))


async def _sealed_texts(session: AsyncSession, subject_ids: list[str]) -> list[str]:
    """The texts sealed in the audit events about these subjects, read while the key still exists."""
    found: list[str] = []
    query = select(AuditEvent.data).where(AuditEvent.subject_id.in_(subject_ids))
    for data in (await session.scalars(query)).all():
        for field in PERSONAL_FIELDS:
            value = await open_sealed(session, (data or {}).get(field))
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                found.append(str(value))
    return found


async def _scrub_outputs(session: AsyncSession, artist_id: str, texts: list[str]) -> list[str]:
    """The artist's outputs' texts scrubbed; the SHA-256s of their files that no other artist's
    output shares (those files are removed once the erasure commits)."""
    outputs = (await session.scalars(select(Output).where(Output.artist_id == artist_id))).all()
    for output in outputs:
        output.description = _scrub(output.description, texts)
        output.reason = _scrub(output.reason, texts)
    hashes = {output.sha256 for output in outputs}
    if not hashes:
        return []
    shared = await session.scalars(
        select(Output.sha256).where(Output.sha256.in_(hashes), Output.artist_id != artist_id)
    )
    return sorted(hashes - set(shared))


async def erase_artist(desk: Desk, *, artist_id: str, actor: Actor) -> Erased:
    """Removes the artist's personal data (see the module's description); NotFound when unknown."""
    async with desk.db.transaction() as session:
        artist = await session.get(Artist, artist_id, with_for_update=True)
        if artist is None:
            raise NotFound(f"no artist {artist_id}")
        requests = list((await session.scalars(select(Request).where(Request.artist_id == artist_id))).all())
        request_ids = [r.id for r in requests]
        decisions = list(
            (await session.scalars(select(Decision).where(Decision.request_id.in_(request_ids)))).all()
        )
        grants = list((await session.scalars(select(Grant).where(Grant.artist_id == artist_id))).all())
        grant_ids = [g.id for g in grants]
        # Longest first, so a name inside a reason goes with the reason.
        written = [d.reason for d in decisions if d.actor_kind == ActorKind.artist.value and d.reason]
        written += await _sealed_texts(session, [artist_id, *request_ids, *grant_ids])
        texts = sorted({t for t in [artist.name, artist.pause_reason, *written] if t}, key=len, reverse=True)
        texts += [str(n) for n in (artist.telegram_user_id, artist.telegram_chat_id) if n is not None]
        for decision in decisions:
            if decision.actor_kind == ActorKind.artist.value:
                decision.reason, decision.actor_display = None, ""
        for request in requests:
            request.reason = _scrub(request.reason, texts)
            if request.status not in OPEN_STATUSES:
                # Decided: the terms are only shown now. An open request keeps its terms whole, or
                # the receipt of its approval would not match its terms_hash.
                request.terms = _scrub(request.terms, texts)
        usage = select(UsageEvent).where(UsageEvent.artist_id == artist_id)
        for event in (await session.scalars(usage)).all():
            event.note = _scrub(event.note, texts)
        for grant in grants:
            grant.receipt = _redacted(grant.receipt, texts) or {}
        for deletion in (
            await session.scalars(select(Deletion).where(Deletion.grant_id.in_(grant_ids)))
        ).all():
            deletion.receipt = _redacted(deletion.receipt, texts)
            deletion.statement = _scrub(deletion.statement, texts)
        to_artist = (Notice.recipient_kind == ActorKind.artist.value) & (Notice.recipient_id == artist_id)
        removed = len((await session.scalars(select(Notice.id).where(to_artist))).all())
        await session.execute(delete(Notice).where(to_artist))
        unattached = Notice.request_id.is_(None) & Notice.grant_id.is_(None)
        about = or_(Notice.request_id.in_(request_ids), Notice.grant_id.in_(grant_ids), unattached)
        for notice in (await session.scalars(select(Notice).where(about))).all():
            if notice.request_id is None and notice.grant_id is None and artist_id not in str(notice.payload):
                continue
            notice.payload = _scrub(notice.payload, texts)
            notice.last_error = _scrub(notice.last_error, texts)
        await session.execute(
            delete(CardRef).where(CardRef.recipient_id == artist_id, CardRef.request_id.in_(request_ids))
        )
        await session.execute(
            delete(Invite).where(
                Invite.subject_kind == ActorKind.artist.value, Invite.subject_id == artist_id
            )
        )
        # Output files show the artist: each goes (its hash stays in rows and receipts) unless the
        # same bytes were also submitted for another artist.
        erased_files = await _scrub_outputs(session, artist_id, texts)
        artist.name, artist.pause_reason = ERASED, None
        artist.telegram_user_id = artist.telegram_chat_id = None
        await destroy_key(session, artist_id)
        await audit(session, desk, actor, "artist.erased", "artist", artist_id, {"requests": len(requests)})
    if desk.output_files is not None:
        for sha256 in erased_files:
            desk.output_files.forget(sha256)
    return Erased(artist_id, len(requests), removed)
