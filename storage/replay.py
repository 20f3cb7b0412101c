"""Signed requests already handled, kept in the database so every instance refuses a replay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from storage.tables import SlackSeenRequest


async def add_seen_signature(
    session: AsyncSession, *, signature: str, signed_at: datetime, forget_before: datetime
) -> None:
    """Stores a handled request's signature and drops those signed before `forget_before`.

    A signature stored before makes the commit fail with IntegrityError: the request is a replay.
    """
    await session.execute(delete(SlackSeenRequest).where(SlackSeenRequest.signed_at < forget_before))
    session.add(SlackSeenRequest(signature=signature, signed_at=signed_at))
