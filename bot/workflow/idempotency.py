"""Idempotency-Key handling: a repeated call with the same key and body gets the first answer,
the same key with another body is refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.workflow.errors import IdempotencyConflict
from storage.tables import IdempotencyKey

_Row = TypeVar("_Row")


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key with what it was sent with."""

    key: str
    scope: str
    body_hash: str


async def idempotent_replay(
    session: AsyncSession, creator_id: str, idem: Idempotency | None
) -> IdempotencyKey | None:
    """The answer stored for this key, if the key was used before with the same call; None if new."""
    if idem is None:
        return None
    row = await session.get(IdempotencyKey, (creator_id, idem.key))
    if row is None:
        return None
    if row.scope != idem.scope or row.body_hash != idem.body_hash:
        raise IdempotencyConflict("this Idempotency-Key was already used with a different request")
    return row


async def replayed_row(
    session: AsyncSession, creator_id: str, idem: Idempotency | None, kind: type[_Row]
) -> _Row | None:
    """The row of `kind` this key answered with before (same call again); None if the key is new."""
    replay = await idempotent_replay(session, creator_id, idem)
    if replay is None:
        return None
    row = await session.get(kind, replay.resource_id)
    assert row is not None
    return row


def remember_answer(
    session: AsyncSession,
    now: datetime,
    creator_id: str,
    idem: Idempotency | None,
    kind: str,
    rid: str,
    status: int,
) -> None:
    """Stores which resource and status this key answered with, in the same transaction."""
    if idem is None:
        return
    session.add(
        IdempotencyKey(
            creator_id=creator_id,
            key=idem.key,
            scope=idem.scope,
            body_hash=idem.body_hash,
            status_code=status,
            resource_kind=kind,
            resource_id=rid,
            created_at=now,
        )
    )
