"""Personal values in the audit chain, sealed so that erasure can remove them without breaking it.

A value under one of `PERSONAL_FIELDS` in an event about an artist is stored, and hashed by the
chain, as `{"sealed": <base64 nonce + AES-256-GCM ciphertext>, "for": <artist id>}` under a key
kept only in `person_keys`. Reading it back needs that key; erasing the artist deletes it, so
the chain still verifies (its bytes never change) while the values can no longer be read.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.tables import PersonKey

# Free texts a person wrote and the values that name or reach them.
PERSONAL_FIELDS = frozenset({"name", "reason", "telegram_user_id"})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def _key(session: AsyncSession, owner_id: str, now: datetime) -> bytes:
    """The owner's key, made on first use; two transactions making it at once keep the first."""
    found = await session.get(PersonKey, owner_id)
    if found is None:
        values = {"subject_id": owner_id, "key": _b64(AESGCM.generate_key(bit_length=256)), "created_at": now}
        insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
        await session.execute(insert(PersonKey).values(**values).on_conflict_do_nothing())
        found = (
            await session.execute(select(PersonKey).where(PersonKey.subject_id == owner_id))
        ).scalar_one()
    return _unb64(found.key)


async def seal_personal(
    session: AsyncSession, owner_id: str | None, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """`data` with each personal value sealed under the owner's key (unchanged without an owner)."""
    if owner_id is None or not any(data.get(field) is not None for field in PERSONAL_FIELDS):
        return data
    key = await _key(session, owner_id, now)
    sealed = dict(data)
    for field in PERSONAL_FIELDS:
        if data.get(field) is not None:
            nonce = os.urandom(12)
            plain = json.dumps(data[field], ensure_ascii=False).encode("utf-8")
            cipher = AESGCM(key).encrypt(nonce, plain, owner_id.encode("ascii"))
            sealed[field] = {"sealed": _b64(nonce + cipher), "for": owner_id}
    return sealed


async def open_sealed(session: AsyncSession, value: Any) -> Any:
    """The plain value of a sealed one (None once its owner was erased); any other value as it is."""
    if not isinstance(value, dict) or set(value) != {"sealed", "for"}:
        return value
    found = await session.get(PersonKey, str(value["for"]))
    if found is None:
        return None
    data = _unb64(str(value["sealed"]))
    try:
        plain = AESGCM(_unb64(found.key)).decrypt(data[:12], data[12:], str(value["for"]).encode("ascii"))
    except InvalidTag:
        return None
    return json.loads(plain.decode("utf-8"))


async def destroy_key(session: AsyncSession, owner_id: str) -> None:
    """Erasure: every value sealed for the owner becomes unreadable for good."""
    await session.execute(delete(PersonKey).where(PersonKey.subject_id == owner_id))
