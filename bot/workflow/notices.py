"""Outbox rows: how a step queues a notice, and the notices this process sends at once.

A step's notices are written together, in one INSERT, when its transaction commits. Most then
wait in the outbox for the drainer (`bot/delivery.py`) to claim them. On a database with one
writer (SQLite) a step's notices can skip that claim: when the transaction that queues them sees
no other notice waiting for the same recipient, it writes them already claimed by this process
and hands them to the drainer as soon as it commits (the *hand-over*). Nothing is lost by it: a
claimed notice is in the outbox like any other, and one whose process died is sent again once its
claim is released (at the next start on SQLite). A recipient with notices already waiting keeps
the usual path, so a recipient's notices still leave in the order they were queued.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypedDict, Unpack, cast

from sqlalchemy import Table, bindparam, insert, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.models import ActorKind, ChannelKind
from storage.deferred import defer, deferred
from storage.queries import RequestView
from storage.tables import Notice

_NOTICES = cast(Table, Notice.__table__)
_QUEUED_ON = "likeness.queued_on"  # session.info key: the channels whose notices wait in the outbox
_LANE = "likeness.hand_over"  # session.info key: the HandOver a transition opened, if any
_HANDED = "likeness.handed"  # session.info key: the rows written claimed, for after the commit
_VIEWS = "likeness.views"  # session.info key: request id -> the view a step ended with


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


@dataclass(frozen=True)
class Handed:
    """Notices a committed step wrote claimed by this process, and the views they show (by
    notice id: a card update rendered from the request as the step left it, without reading it)."""

    rows: list[dict[str, Any]]
    views: dict[str, RequestView]


@dataclass(frozen=True)
class HandOver:
    """The drainer's offer to send at once what a step queues on `channels`: the rows are written
    claimed for `lease`, then passed to `take` after the commit (which must not block)."""

    channels: frozenset[ChannelKind]
    lease: timedelta
    take: Callable[[Handed], None]


_notice_sequence = itertools.count()


def _notice_id() -> str:
    """A notice id that sorts in the order notices were queued by this process: notices written in
    one transaction share `created_at`, and the outbox breaks the tie by id."""
    return f"ntc_{time.time_ns():016x}{next(_notice_sequence) % 0x10000:04x}"


class _PendingNotices:
    """The outbox rows a transaction queued, written in one INSERT when it commits."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def __call__(self, session: Session) -> None:
        if not self.rows:
            return
        lane: HandOver | None = session.info.get(_LANE)
        handed = _claim_for_hand_over(session, lane, self.rows) if lane is not None else []
        session.execute(insert(_NOTICES), self.rows)
        waiting = {ChannelKind(row["channel"]) for row in self.rows if row["claimed_until"] is None}
        session.info[_QUEUED_ON] = waiting
        if handed:
            views: dict[str, RequestView] = session.info.get(_VIEWS, {})
            shown = {
                row["id"]: views[row["request_id"]]
                for row in handed
                if row["kind"] == "card_update" and row["request_id"] in views
            }
            session.info[_HANDED] = Handed(handed, shown)
        self.rows = []


_RECIPIENT = (_NOTICES.c.channel, _NOTICES.c.recipient_kind, _NOTICES.c.recipient_id)
# Built once: the recipients among `wanted` (channel, kind, id) that have a notice waiting.
_WAITING_FOR = select(*_RECIPIENT).where(
    _NOTICES.c.status == "pending", tuple_(*_RECIPIENT).in_(bindparam("wanted", expanding=True))
)


def _claim_for_hand_over(
    session: Session, lane: HandOver, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Marks claimed the rows on the lane's channels whose recipient has no notice waiting yet
    (one SELECT); returns them. The writer holds the database's one write lock, so no other
    step can queue for the same recipient in between."""

    def recipient(row: dict[str, Any]) -> tuple[str, str, str]:
        return row["channel"], row["recipient_kind"], row["recipient_id"]

    candidates = [row for row in rows if ChannelKind(row["channel"]) in lane.channels]
    if not candidates:
        return []
    wanted = sorted({recipient(row) for row in candidates})
    busy = {tuple(found) for found in session.execute(_WAITING_FOR, {"wanted": wanted})}
    handed = [row for row in candidates if recipient(row) not in busy]
    for row in handed:
        row["claimed_until"] = row["created_at"] + lane.lease
    return handed


def open_hand_over(session: AsyncSession, lane: HandOver | None) -> None:
    """Lets the transaction's notices on `lane`'s channels be handed over (see the module)."""
    if lane is not None:
        session.info[_LANE] = lane


def show_view(session: AsyncSession, view: RequestView) -> None:
    """Records the view a step ends with: a card update it queued, if handed over, shows it."""
    session.info.setdefault(_VIEWS, {})[view.request.id] = view


def after_commit(info: dict[str, Any]) -> tuple[set[ChannelKind], Handed | None]:
    """From a committed transaction's `session.info`: the channels whose notices wait in the
    outbox (the drainer is woken for these), and what was handed over."""
    return info.get(_QUEUED_ON, set()), info.get(_HANDED)


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
