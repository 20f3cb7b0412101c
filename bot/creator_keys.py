"""Creators' API keys (several, named, revocable) and webhook secrets (rotated with an overlap).

Every API call looks its key up in the database, so a revoked key is refused by every instance
from the next call on; `last_used_at` is written at most once a minute per key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import FieldError, utc_iso
from bot.workflow import Desk, InvalidInput, NotFound, hash_secret, new_id
from storage.audit import append_audit
from storage.point_reads import PointRead, columns_of, loaded
from storage.tables import Creator, CreatorKey

# Built once, read on every API call: a reused statement keeps its SQLAlchemy cache key.
# A named key and its creator in one row (the creator's columns, then the key's id, revoked_at
# and last_used_at); or a creator by the single key of the first versions. Point reads: every
# API call makes one.
_KEY_BY_HASH = PointRead(
    select(*columns_of(Creator), CreatorKey.id, CreatorKey.revoked_at, CreatorKey.last_used_at)
    .join(CreatorKey, CreatorKey.creator_id == Creator.id)
    .where(CreatorKey.key_hash == bindparam("key_hash"))
)
_CREATOR_BY_KEY_HASH = PointRead(
    select(*columns_of(Creator)).where(Creator.api_key_hash == bindparam("key_hash"))
)
WEBHOOK_OVERLAP = timedelta(hours=24)
LAST_USED_RESOLUTION = timedelta(minutes=1)
DEFAULT_KEY_NAME = "default"


@dataclass(frozen=True)
class KeyInfo:
    """One key as listed: never the key itself."""

    id: str
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None


async def _audit(
    session: AsyncSession, now: datetime, action: str, creator_id: str, data: dict[str, Any]
) -> None:
    """An operator's change to a creator's keys or secret, on the audit chain."""
    await append_audit(
        session,
        at=now,
        actor_kind="admin",
        actor_id="admin",
        channel="cli",
        action=action,
        subject_kind="creator",
        subject_id=creator_id,
        data=data,
    )


async def _creator(session: AsyncSession, creator_id: str) -> Creator:
    creator = await session.get(Creator, creator_id, with_for_update=True)
    if creator is None:
        raise NotFound(f"no creator {creator_id}")
    return creator


async def add_key(desk: Desk, *, creator_id: str, name: str) -> tuple[str, str]:
    """Makes a new key for the creator; returns (key id, the key), the key shown this once."""
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidInput([FieldError("name", "must be 1 to 100 characters")])
    now = desk.clock.now()
    api_key = "lk_" + secrets.token_urlsafe(32)
    async with desk.db.transaction() as session:
        await _creator(session, creator_id)
        taken = await session.execute(
            select(CreatorKey.id).where(CreatorKey.creator_id == creator_id, CreatorKey.name == name)
        )
        if taken.first() is not None or name == DEFAULT_KEY_NAME:
            raise InvalidInput([FieldError("name", f"the creator already has a key named {name!r}")])
        key = CreatorKey(
            id=new_id("key"), creator_id=creator_id, name=name, key_hash=hash_secret(api_key), created_at=now
        )
        session.add(key)
        await _audit(session, now, "creator.key_added", creator_id, {"key_id": key.id, "name": name})
    return key.id, api_key


async def list_keys(desk: Desk, *, creator_id: str) -> list[KeyInfo]:
    """Every key of the creator, the default one first, with when each was last used."""
    async with desk.db.read() as session:
        creator = await session.get(Creator, creator_id)
        if creator is None:
            raise NotFound(f"no creator {creator_id}")
        rows = list(
            (
                await session.execute(
                    select(CreatorKey)
                    .where(CreatorKey.creator_id == creator_id)
                    .order_by(CreatorKey.created_at)
                )
            ).scalars()
        )
    keys = [_info(row) for row in rows]
    if not any(row.key_hash == creator.api_key_hash for row in rows):
        used = utc_iso(creator.api_key_last_used_at) if creator.api_key_last_used_at else None
        keys.insert(0, KeyInfo(DEFAULT_KEY_NAME, DEFAULT_KEY_NAME, utc_iso(creator.created_at), used, None))
    return keys


def _info(row: CreatorKey) -> KeyInfo:
    return KeyInfo(
        row.id,
        row.name,
        utc_iso(row.created_at),
        utc_iso(row.last_used_at) if row.last_used_at else None,
        utc_iso(row.revoked_at) if row.revoked_at else None,
    )


async def revoke_key(desk: Desk, *, creator_id: str, key: str) -> KeyInfo:
    """Revokes a key (by id or name); every instance refuses it from the next call."""
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        creator = await _creator(session, creator_id)
        row = (
            await session.execute(
                select(CreatorKey).where(
                    CreatorKey.creator_id == creator_id, (CreatorKey.id == key) | (CreatorKey.name == key)
                )
            )
        ).scalar_one_or_none()
        if row is None and key == DEFAULT_KEY_NAME:
            row = CreatorKey(
                id=new_id("key"),
                creator_id=creator_id,
                name=DEFAULT_KEY_NAME,
                key_hash=creator.api_key_hash,
                created_at=creator.created_at,
                last_used_at=creator.api_key_last_used_at,
            )
            session.add(row)
        if row is None:
            raise NotFound(f"creator {creator_id} has no key {key[:100]!r}")
        if row.revoked_at is None:
            row.revoked_at = now
            await _audit(
                session, now, "creator.key_revoked", creator_id, {"key_id": row.id, "name": row.name}
            )
        await session.flush()
        return _info(row)
    raise AssertionError("unreachable")  # pragma: no cover


async def authenticate(desk: Desk, api_key: str) -> Creator | None:
    """The creator whose live key this is, or None (unknown or revoked); notes when it was used."""
    key_hash = hash_secret(api_key)
    now = desk.clock.now()
    key = {"key_hash": key_hash}
    key_id: str | None = None
    creator: Creator | None = None
    rows = await desk.db.point_read(_KEY_BY_HASH, key)
    if rows:
        key_id, revoked_at, last = rows[0][-3:]
        if revoked_at is not None:
            return None
        creator = loaded(Creator, rows[0])
    else:
        rows = await desk.db.point_read(_CREATOR_BY_KEY_HASH, key)
        if rows:
            creator = loaded(Creator, rows[0])
            last = creator.api_key_last_used_at
    if creator is None or creator.deactivated_at is not None:
        return None
    if last is None or now - last >= LAST_USED_RESOLUTION:
        await _note_use(desk, creator.id, key_id, now)
    return creator


async def _note_use(desk: Desk, creator_id: str, key_id: str | None, now: datetime) -> None:
    """Stamps the key's last use: an update of one column, never a new row."""
    async with desk.db.transaction() as session:
        if key_id is None:
            await session.execute(
                update(Creator).where(Creator.id == creator_id).values(api_key_last_used_at=now)
            )
        else:
            await session.execute(
                update(CreatorKey)
                .where(CreatorKey.id == key_id, CreatorKey.revoked_at.is_(None))
                .values(last_used_at=now)
            )


async def rotate_webhook_secret(desk: Desk, *, creator_id: str) -> tuple[str, str]:
    """A new webhook secret; the old one signs beside it for WEBHOOK_OVERLAP. Returns (secret, until)."""
    now = desk.clock.now()
    fresh = "whsec_" + secrets.token_urlsafe(32)
    async with desk.db.transaction() as session:
        creator = await _creator(session, creator_id)
        if not creator.webhook_url or not creator.webhook_secret:
            raise InvalidInput([FieldError("creator", f"creator {creator_id} has no webhook URL")])
        creator.webhook_secret_previous = creator.webhook_secret
        creator.webhook_secret_previous_until = now + WEBHOOK_OVERLAP
        creator.webhook_secret = fresh
        await _audit(
            session,
            now,
            "creator.webhook_secret_rotated",
            creator_id,
            {"previous_until": utc_iso(now + WEBHOOK_OVERLAP)},
        )
    return fresh, utc_iso(now + WEBHOOK_OVERLAP)
