"""What operators read to run the service: the outbox's backlog per channel, for `/metrics`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from bot.workflow.desk import Desk
from storage.tables import Notice


@dataclass(frozen=True)
class Backlog:
    """The notices of one channel still waiting to go, and when the oldest of them was queued."""

    channel: str
    pending: int
    oldest_at: datetime | None


async def outbox_backlog(desk: Desk) -> list[Backlog]:
    """Pending notices per channel with the oldest one's age: one grouped query on the outbox's
    (status, next_attempt_at) index."""
    async with desk.db.read() as session:
        rows = await session.execute(
            select(Notice.channel, func.count(), func.min(Notice.created_at))
            .where(Notice.status == "pending")
            .group_by(Notice.channel)
        )
        return [Backlog(channel, int(count), oldest) for channel, count, oldest in rows.all()]
