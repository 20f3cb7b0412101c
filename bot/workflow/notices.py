"""Outbox rows: how a step queues a notice. A step's notices are written together, in one
INSERT, when its transaction commits; the drainer (`bot/delivery.py`) is woken for their
channels once it has committed."""

from __future__ import annotations

import itertools
import time
from datetime import datetime
from typing import Any, NamedTuple, TypedDict, Unpack, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.models import ActorKind, ChannelKind
from storage.deferred import defer, deferred
from storage.hot_writes import HotWrite
from storage.tables import Notice

_NOTICES = cast(Table, Notice.__table__)
_QUEUED_ON = "likeness.queued_on"  # session.info key: the channels a transaction queued notices on


class Recipient(NamedTuple):
    """Who a notice is for, and on which channel."""

    channel: ChannelKind
    kind: ActorKind
    id: str


class NoticeDetail(TypedDict, total=False):
    """What a notice carries besides its kind and request: the grant, the payload, and the key
    that makes it once only however often its cause runs."""

    grant_id: str | None
    payload: dict[str, Any] | None
    dedupe_key: str | None


_notice_sequence = itertools.count()


def _notice_id() -> str:
    """A notice id that sorts in the order notices were queued by this process: notices written in
    one transaction share `created_at`, and the outbox breaks the tie by id."""
    return f"ntc_{time.time_ns():016x}{next(_notice_sequence) % 0x10000:04x}"


_INSERT_NOTICES = HotWrite(insert(_NOTICES))


class _PendingNotices:
    """The outbox rows a transaction queued, written in one INSERT when it commits."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def __call__(self, session: Session) -> None:
        if self.rows:
            _INSERT_NOTICES.run(session.connection(), self.rows)  # no ORM execution path
            self.rows = []


def queued_on(session: AsyncSession) -> set[ChannelKind]:
    """The channels the transaction queued notices on (the drainer is woken for these)."""
    channels: set[ChannelKind] = session.info.get(_QUEUED_ON, set())
    return channels


def queue_notice(
    session: AsyncSession,
    now: datetime,
    to: Recipient,
    kind: str,
    *,
    request_id: str | None = None,
    **detail: Unpack[NoticeDetail],
) -> None:
    """Adds one outbox row to the transaction (all of them written together at its commit); the
    drainer is woken when it commits."""
    session.info.setdefault(_QUEUED_ON, set()).add(to.channel)
    defer(session, "notices", _PendingNotices)
    pending: _PendingNotices = deferred(session, "notices")
    pending.rows.append(
        {
            "id": _notice_id(),
            "channel": to.channel.value,
            "recipient_kind": to.kind.value,
            "recipient_id": to.id,
            "kind": kind,
            "request_id": request_id,
            "grant_id": detail.get("grant_id"),
            "payload": detail.get("payload") or {},
            "dedupe_key": detail.get("dedupe_key"),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "claimed_until": None,
            "sent_at": None,
            "last_error": None,
            "created_at": now,
        }
    )
