"""Deletion is confirmed, not assumed: when a grant is revoked, or a grant that allowed AI training
ends, the creator owes a signed confirmation that it deleted what it made with the likeness
(PIPL Art. 47). Owed in the transaction that ended the grant; confirmed once, by the creator;
reminded and escalated by the sweeps (`sweeps.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import (
    CLOCK_SKEW,
    Actor,
    ActorKind,
    ChannelKind,
    FieldError,
    canonical_json,
    sha256_hex,
    utc_iso,
)
from bot.receipts import DELETION_RECEIPT_TYPE, RECEIPT_VERSION
from bot.workflow.desk import (
    Desk,
    audit,
    load_creators_grant,
    load_view,
    tell_creator,
    tell_grant_parties,
    transition,
)
from bot.workflow.erasure import issued_receipt_sha256
from bot.workflow.errors import InvalidInput, NotOpen
from bot.workflow.idempotency import Idempotency, remember_answer, replayed_row
from storage.tables import Deletion, Grant, Request


class DeletionNotOwed(NotOpen):
    """The grant owes no deletion confirmation (it is running, or ended without AI training)."""

    code = "deletion_not_owed"


class DeletionAlreadyConfirmed(NotOpen):
    """The deletion was confirmed already; a confirmation is given once."""

    code = "deletion_already_confirmed"


@dataclass(frozen=True)
class DeletionConfirmed:
    """A confirmed deletion; `replayed` when an Idempotency-Key repeated the first answer."""

    deletion: Deletion
    replayed: bool = False


async def allowed_ai_training(session: AsyncSession, grant: Grant) -> bool:
    """Whether the grant's terms let the likeness train or fine-tune a model."""
    request = await session.get(Request, grant.request_id)
    return bool(request is not None and request.terms.get("ai_training"))


async def owe_deletion(
    session: AsyncSession, desk: Desk, actor: Actor, grant: Grant, *, cause: str, due_at: datetime
) -> Deletion:
    """Records, in the transaction that ended the grant, that its creator owes a deletion
    confirmation from `due_at`, and tells the creator where to give it."""
    deletion = Deletion(
        grant_id=grant.id, creator_id=grant.creator_id, cause=cause, due_at=due_at, reminders_sent=0
    )
    session.add(deletion)
    await session.flush()
    data = {"cause": cause, "due_at": utc_iso(due_at)}
    await audit(session, desk, actor, "deletion.due", "grant", grant.id, data)
    view = await load_view(session, grant.request_id)
    tell_creator(
        session,
        desk.clock.now(),
        view.creator,
        "deletion.due",
        request_id=grant.request_id,
        grant_id=grant.id,
        data=data | {"confirm_at": f"/v1/grants/{grant.id}/deletion"},
        dedupe_key=f"deletion.due:{grant.id}",
    )
    return deletion


async def _check_moment(desk: Desk, creator_id: str, grant_id: str, deleted_at: datetime) -> None:
    """Refuses a `deleted_at` in the future or before the grant began, before any transaction, so a
    bad body leaves no trace; an unknown grant is left to the transition to refuse (and audit)."""
    async with desk.db.read() as session:
        grant = await session.get(Grant, grant_id)
    if grant is None or grant.creator_id != creator_id:
        return
    if deleted_at > desk.clock.now() + CLOCK_SKEW:
        raise InvalidInput([FieldError("deleted_at", "must not be in the future", "value_error")])
    if deleted_at < grant.starts_at:
        raise InvalidInput([FieldError("deleted_at", "must not be before the grant started", "value_error")])


async def confirm_deletion(
    desk: Desk,
    *,
    creator_id: str,
    grant_id: str,
    statement: str,
    deleted_at: datetime,
    idempotency: Idempotency | None = None,
) -> DeletionConfirmed:
    """The creator confirms it deleted what it made under the grant: signed, audited, and told to
    the artist (Telegram) and the agency's thread. Once only."""
    await _check_moment(desk, creator_id, grant_id, deleted_at)
    actor = Actor(ActorKind.creator, creator_id, ChannelKind.api)
    now = desk.clock.now()
    async with transition(desk, actor, "deletion.confirm", "grant", grant_id) as session:
        replayed = await replayed_row(session, creator_id, idempotency, Deletion)
        if replayed is not None:
            return DeletionConfirmed(replayed, replayed=True)
        grant = await load_creators_grant(session, grant_id, creator_id)
        deletion = await session.get(Deletion, grant_id, with_for_update=True)
        if deletion is None:
            raise DeletionNotOwed(f"grant {grant_id} owes no deletion confirmation")
        if deletion.confirmed_at is not None:
            raise DeletionAlreadyConfirmed(
                f"the deletion was already confirmed at {utc_iso(deletion.confirmed_at)}",
                confirmed_at=utc_iso(deletion.confirmed_at),
            )
        view = await load_view(session, grant.request_id)
        receipt = desk.signer.sign(
            {
                "receipt_version": RECEIPT_VERSION,
                "type": DELETION_RECEIPT_TYPE,
                "issued_at": utc_iso(now),
                "request_id": grant.request_id,
                "grant": {
                    "id": grant.id,
                    "starts_at": utc_iso(grant.starts_at),
                    "ends_at": utc_iso(grant.ends_at),
                    "receipt_sha256": issued_receipt_sha256(grant.receipt),
                },
                "artist": {"id": view.artist.id, "name": view.artist.name},
                "creator": {"id": view.creator.id, "name": view.creator.name},
                "deletion": {
                    "cause": deletion.cause,
                    "due_at": utc_iso(deletion.due_at),
                    "deleted_at": utc_iso(deleted_at),
                    "confirmed_at": utc_iso(now),
                    "statement": statement,
                    "statement_sha256": sha256_hex(statement.encode("utf-8")),
                },
            }
        )
        deletion.confirmed_at = now
        deletion.deleted_at = deleted_at
        deletion.statement = statement
        deletion.receipt = receipt
        data = {
            "deleted_at": utc_iso(deleted_at),
            "confirmed_at": utc_iso(now),
            "receipt_sha256": sha256_hex(canonical_json(receipt)),
        }
        await audit(session, desk, actor, "deletion.confirmed", "grant", grant.id, data)
        notice = {
            "event": "deletion.confirmed",
            "deleted_at": data["deleted_at"],
            "confirmed_at": data["confirmed_at"],
        }
        tell_grant_parties(
            session,
            now,
            view,
            grant,
            key=f"deletion.confirmed:{grant.id}",
            artist=("deletion_confirmed", notice),
            agency=notice,
            creator=("deletion.confirmed", {k: v for k, v in notice.items() if k != "event"}),
        )
        remember_answer(session, now, creator_id, idempotency, "deletion", grant.id, 201)
        return DeletionConfirmed(deletion)
    raise AssertionError("unreachable")  # pragma: no cover
