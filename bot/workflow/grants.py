"""Grants: what a grant's status is at a moment, the grant an approval creates with its signed
receipt, and the artist's revocation."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Actor, ActorKind, ChannelKind, GrantStatus, canonical_json, sha256_hex, utc_iso
from bot.receipts import GRANT_RECEIPT_TYPE, RECEIPT_VERSION
from bot.workflow.deletions import owe_deletion
from bot.workflow.desk import (
    Desk,
    announce_grant,
    audit,
    load_view,
    new_id,
    reminders_already_past,
    transition,
)
from bot.workflow.errors import NotAllowed, NotFound, NotOpen
from storage.queries import RequestView
from storage.tables import Grant
from storage.writes import insert_row


def grant_status_at(grant: Grant, moment: datetime) -> GrantStatus:
    """What a grant's status is at a moment, whether or not the sweep has caught up yet."""
    if (
        grant.status == GrantStatus.revoked.value
        and grant.revoked_at is not None
        and moment >= grant.revoked_at
    ):
        return GrantStatus.revoked
    # A paused grant stays paused, even past its window, until it is resumed (see pause.py).
    if grant.status == GrantStatus.paused.value and grant.paused_at is not None and moment >= grant.paused_at:
        return GrantStatus.paused
    if moment < grant.starts_at:
        return GrantStatus.scheduled
    if moment >= grant.ends_at:
        return GrantStatus.expired
    return GrantStatus.active


async def create_grant(session: AsyncSession, desk: Desk, view: RequestView, now: datetime) -> Grant:
    """The grant an approval creates, with its signed receipt of the terms and the decisions; paused
    from the start when the artist has paused everything (they approved it while paused)."""
    request = view.request
    terms = request.terms
    starts_at = max(datetime.fromisoformat(terms["starts_at"]), now)  # never before the approval
    ends_at = datetime.fromisoformat(terms["ends_at"])
    grant_id = new_id("grt")
    receipt = desk.signer.sign(
        {
            "receipt_version": RECEIPT_VERSION,
            "type": GRANT_RECEIPT_TYPE,
            "issued_at": utc_iso(now),
            "request_id": request.id,
            "grant": {"id": grant_id, "starts_at": utc_iso(starts_at), "ends_at": utc_iso(ends_at)},
            **({"status_url": f"{desk.public_url}/g/{grant_id}"} if desk.public_url else {}),
            "artist": {"id": view.artist.id, "name": view.artist.name},
            "creator": {"id": view.creator.id, "name": view.creator.name},
            "terms": terms,
            "terms_hash": request.terms_hash,
            "decisions": [
                {
                    "actor_kind": d.actor_kind,
                    "actor_id": d.actor_id,
                    "channel": d.channel,
                    "outcome": d.outcome,
                    "terms_hash": d.terms_hash,
                    "ai_training_confirmed": d.ai_training_confirmed,
                    "at": utc_iso(d.created_at),
                }
                for d in view.decisions
            ],
        }
    )
    grant = Grant(
        id=grant_id,
        request_id=request.id,
        creator_id=request.creator_id,
        artist_id=request.artist_id,
        status=(
            GrantStatus.paused.value
            if view.artist.paused_at is not None
            else GrantStatus.active.value
            if starts_at <= now
            else GrantStatus.scheduled.value
        ),
        paused_at=now if view.artist.paused_at is not None else None,
        starts_at=starts_at,
        ends_at=ends_at,
        reminders_sent=reminders_already_past(ends_at, desk.rules.grant_reminders, now),
        receipt=receipt,
        created_at=now,
        updated_at=now,
    )
    await insert_row(session, grant)
    system = Actor(ActorKind.system, "workflow", ChannelKind.system)
    await audit(
        session,
        desk,
        system,
        "grant.created",
        "grant",
        grant.id,
        {
            "request_id": request.id,
            "status": grant.status,
            "receipt_sha256": sha256_hex(canonical_json(receipt)),
        },
    )
    return grant


async def revoke_grant(desk: Desk, *, grant_id: str, actor: Actor, reason: str | None = None) -> Grant:
    """The artist (or, where the policy lets it decide, their agency) withdraws consent: the grant
    ends now and the creator must stop and delete."""
    now = desk.clock.now()
    async with transition(desk, actor, "grant.revoke", "grant", grant_id) as session:
        grant = await session.get(Grant, grant_id, with_for_update=True)
        if grant is None:
            raise NotFound(f"no grant {grant_id}")
        if actor.kind is ActorKind.agency:
            # Where the policy lets the agency decide, it may also withdraw consent for the artist.
            from bot.workflow.decisions import check_agency_may_withdraw  # decisions imports this module

            check_agency_may_withdraw(await load_view(session, grant.request_id), actor)
        elif actor.kind is not ActorKind.artist or actor.id != grant.artist_id:
            if actor.kind is not ActorKind.admin:
                raise NotAllowed("only the artist may revoke their consent")
        current = grant_status_at(grant, now)
        if current in {GrantStatus.revoked, GrantStatus.expired}:
            raise NotOpen(f"this grant is already {current.value}", status=current.value)
        grant.status = GrantStatus.revoked.value
        grant.revoked_at = now
        grant.updated_at = now
        await audit(session, desk, actor, "grant.revoked", "grant", grant.id, {"reason": reason})
        view = await load_view(session, grant.request_id)
        # PIPL Art. 47: the creator must stop using the likeness and confirm deletion.
        stop = {"stop_use": True, "confirm_deletion": True, "revoked_at": utc_iso(now)}
        # Who withdrew it: the artist, or (where the policy lets it) a member for the agency.
        by = {"revoked_by": actor.kind.value} | ({"by": actor.member} if actor.member else {})
        announce_grant(session, now, view, grant, "grant.revoked", creator_data=stop | by, board_data=by)
        await owe_deletion(session, desk, actor, grant, cause="revoked", due_at=now)
        return grant
    raise AssertionError("unreachable")  # pragma: no cover
