"""An artist's whole history as plain data: every request about them with its terms, decisions,
grant and receipt, deletion confirmation, usage and violations. `bot.bundle` signs and packs it;
`queue_history` sends it to the artist's Telegram chat through the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.models import ActorKind, ChannelKind, utc_iso
from bot.workflow.desk import Desk, Recipient, queue_notice
from bot.workflow.erasure import ISSUED_SHA256
from bot.workflow.errors import NotFound
from storage.tables import Artist, Creator, Decision, Deletion, Grant, Request, UsageEvent

HISTORY_NOTICE = "history"


def _at(moment: datetime | None) -> str | None:
    return None if moment is None else utc_iso(moment)


def _decision(decision: Decision) -> dict[str, Any]:
    return {"id": decision.id, "at": _at(decision.created_at)} | decision.columns(
        "actor_kind",
        "actor_id",
        "actor_display",
        "channel",
        "outcome",
        "terms_hash",
        "ai_training_confirmed",
        "reason",
    )


def _usage(event: UsageEvent) -> dict[str, Any]:
    return (
        event.columns("id", "grant_id", "kind", "count", "media", "territory", "likeness", "note")
        | {"occurred_at": _at(event.occurred_at), "received_at": _at(event.received_at)}
        | event.columns("grant_status", "violation", "violation_id")
        | {"reasons": list(event.reasons or [])}
    )


def _receipt(receipt: dict[str, Any] | None) -> dict[str, Any]:
    """A stored receipt; once erasure redacted it, only the SHA-256 of the receipt as issued."""
    if receipt is not None and ISSUED_SHA256 in receipt:
        return {"receipt": None, "erased_receipt_sha256": receipt[ISSUED_SHA256]}
    return {"receipt": receipt}


def _deletion(deletion: Deletion | None) -> dict[str, Any] | None:
    if deletion is None:
        return None
    return {
        "cause": deletion.cause,
        "due_at": _at(deletion.due_at),
        "escalated_at": _at(deletion.escalated_at),
        "confirmed_at": _at(deletion.confirmed_at),
        "deleted_at": _at(deletion.deleted_at),
        "statement": deletion.statement,
        **_receipt(deletion.receipt),
    }


def _grant(grant: Grant | None, deletion: Deletion | None) -> dict[str, Any] | None:
    if grant is None:
        return None
    return {
        "id": grant.id,
        "status": grant.status,
        "starts_at": _at(grant.starts_at),
        "ends_at": _at(grant.ends_at),
        "revoked_at": _at(grant.revoked_at),
        "paused_at": _at(grant.paused_at),
        "created_at": _at(grant.created_at),
        **_receipt(grant.receipt),
        "deletion": _deletion(deletion),
    }


async def artist_history(desk: Desk, *, artist_id: str) -> dict[str, Any]:
    """Everything recorded about one artist's consents, oldest request first; NotFound when unknown."""
    async with desk.db.read() as session:
        artist = await session.get(Artist, artist_id)
        if artist is None:
            raise NotFound(f"no artist {artist_id}")
        in_order = (Request.created_at, Request.id)
        requests = list(
            (
                await session.scalars(
                    select(Request).where(Request.artist_id == artist_id).order_by(*in_order)
                )
            ).all()
        )
        ids = [r.id for r in requests]
        decisions = (
            await session.scalars(
                select(Decision)
                .where(Decision.request_id.in_(ids))
                .order_by(Decision.created_at, Decision.id)
            )
        ).all()
        grants = {
            g.request_id: g
            for g in (await session.scalars(select(Grant).where(Grant.artist_id == artist_id))).all()
        }
        grant_ids = [g.id for g in grants.values()]
        deletions = {
            d.grant_id: d
            for d in (await session.scalars(select(Deletion).where(Deletion.grant_id.in_(grant_ids)))).all()
        }
        usage = (
            await session.scalars(
                select(UsageEvent)
                .where(UsageEvent.artist_id == artist_id)
                .order_by(UsageEvent.received_at, UsageEvent.id)
            )
        ).all()
        creator_ids = {r.creator_id for r in requests}
        creators = {
            c.id: c.name
            for c in (await session.scalars(select(Creator).where(Creator.id.in_(creator_ids)))).all()
        }
        by_request: dict[str, list[dict[str, Any]]] = {}
        for decision in decisions:
            by_request.setdefault(decision.request_id, []).append(_decision(decision))
        usage_by_grant: dict[str, list[dict[str, Any]]] = {}
        for event in usage:
            usage_by_grant.setdefault(event.grant_id, []).append(_usage(event))
        entries = []
        for request in requests:
            grant = grants.get(request.id)
            entries.append(
                {
                    "id": request.id,
                    "creator": {"id": request.creator_id, "name": creators.get(request.creator_id)},
                    "status": request.status,
                    "terms": request.terms,
                    "terms_hash": request.terms_hash,
                    "created_at": _at(request.created_at),
                    "decision_due_at": _at(request.decision_due_at),
                    "decided_at": _at(request.decided_at),
                    "reason": request.reason,
                    "supersedes_id": request.supersedes_id,
                    "decisions": by_request.get(request.id, []),
                    "grant": _grant(grant, deletions.get(grant.id) if grant else None),
                    "usage": usage_by_grant.get(grant.id, []) if grant else [],
                }
            )
        return {
            "artist": {
                "id": artist.id,
                "name": artist.name,
                "agency_id": artist.agency_id,
                "policy": artist.policy,
                "language": artist.language,
                "timezone": artist.timezone,
                "red_lines": artist.red_lines,
            },
            "requests": entries,
        }


async def queue_history(desk: Desk, *, artist_id: str) -> bool:
    """Queues the artist's signed history bundle for their Telegram chat; False when none is linked."""
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        artist = await session.get(Artist, artist_id)
        if artist is None:
            raise NotFound(f"no artist {artist_id}")
        if artist.telegram_chat_id is None:
            return False
        to = Recipient(ChannelKind.telegram, ActorKind.artist, artist_id)
        queue_notice(session, now, to, HISTORY_NOTICE, payload={"requested_at": utc_iso(now)})
    desk.committed(frozenset({ChannelKind.telegram}))
    return True
