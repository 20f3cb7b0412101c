"""Drains the outbox through the channel senders: at least once, in order per lane, never dropped.

A notice leaves only from here. For each notice `deliver` hands its sender what the notice is
rendered from (read by `bot/handover.py`, which also holds a notice back, skips it or gives it
up) and turns what came of the send into the notice's outcome: sent, retried, or given up (a
place that stays unreachable past the sender's patience, a notice older than 24 h). The senders
(`bot/adapters/`) only translate and send.

Rows are claimed with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL, so several instances
share the work), sent, and marked sent in one step with whatever the platform gave back (e.g.
a card's message id). A crash between the send and the mark leaves the notice claimed; when
the lease runs out it is sent again: the only way a duplicate can happen is a send in flight
at the crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, cast, get_origin

from sqlalchemy import ColumnElement, Select, String, Table, and_, bindparam, case, func, or_, select, update

from bot import handover, metrics
from bot.handed import Handover
from bot.models import ChannelKind
from bot.outgoing import Delivered as Delivered
from bot.outgoing import Outgoing as Outgoing
from bot.outgoing import RetryLater as RetryLater
from bot.outgoing import Skipped as Skipped
from bot.outgoing import Undeliverable as Undeliverable
from bot.outgoing import Unreachable as Unreachable
from bot.workflow import Desk
from storage.hot_writes import HotWrite
from storage.point_reads import PointRead
from storage.tables import CardRef, Notice

_NOTICE_ROWS = cast(Table, Notice.__table__)
# Built once: the outbox runs these on every pass and every message.
_NOW = bindparam("now", type_=Notice.next_attempt_at.type)  # bound at each pass


def _due(channel: ColumnElement[bool]) -> tuple[ColumnElement[bool], ...]:
    """What makes a notice of these channels due now: pending, its time come, claimed by nobody."""
    return (
        Notice.status == "pending",
        channel,
        Notice.next_attempt_at <= _NOW,
        or_(Notice.claimed_until.is_(None), Notice.claimed_until <= _NOW),
    )


_DUE_ONE = PointRead(select(Notice.id).where(*_due(Notice.channel == bindparam("channel"))).limit(1))
_CLAIM = (
    update(_NOTICE_ROWS)
    .where(_NOTICE_ROWS.c.id.in_(bindparam("ids", expanding=True)))
    .values(claimed_until=bindparam("until"))
)
_CARDS = cast(Table, CardRef.__table__)
# Where a card now lives: its row updated (the chat kept when the platform gave none), or none found.
_CARD_MOVED = HotWrite(
    update(_CARDS)
    .where(
        _CARDS.c.request_id == bindparam("request"),
        _CARDS.c.channel == bindparam("on_channel"),
        _CARDS.c.recipient_id == bindparam("recipient"),
    )
    .values(
        chat_id=func.coalesce(bindparam("chat", type_=String), _CARDS.c.chat_id),
        message_id=bindparam("message"),
    )
)
_SENT = HotWrite(
    update(_NOTICE_ROWS)
    .where(_NOTICE_ROWS.c.id == bindparam("notice_id"))
    .values(status="sent", sent_at=bindparam("now"), claimed_until=None, attempts=bindparam("tries"))
)

log = logging.getLogger(__name__)

MAX_NOTICE_AGE = timedelta(hours=24)
MAX_BACKOFF = timedelta(minutes=5)
STOP_GRACE = 5.0

T = TypeVar("T")


class Sender(Protocol):
    """One channel's way out: its lane rules (which lane a notice belongs to, how many of one
    lane a claim takes), and how to send a notice."""

    @property
    def channel(self) -> ChannelKind:
        """The channel this sender delivers."""
        ...

    @property
    def lane_slice(self) -> int | None:
        """How many notices of one recipient one claim takes at most, oldest first, and none
        while an older one waits for a retry or is held elsewhere (its lanes must then be its
        recipients); None takes every due notice. See `Outbox._claim`."""
        ...

    def lane(self, notice: Outgoing) -> str:
        """Notices of one lane (e.g. one chat) are sent one after another, in order."""
        ...

    async def send(self, notice: Outgoing, handed: Handover) -> Delivered:
        """Sends one notice, asking `handed` for what it is rendered from once the way out is
        open; raises RetryLater or Undeliverable when it cannot, Unreachable when the
        recipient's place is shut for now."""
        ...


async def deliver(
    desk: Desk, sender: Sender, notice: Outgoing, *, default_timezone: str = "UTC"
) -> Delivered:
    """Sends one notice through its sender, handing it what `bot.handover` reads for the notice.

    A notice with nothing left to send (Skipped) counts as delivered; an unreachable place is
    retried until the sender's patience runs out, then given up. Raises RetryLater or
    Undeliverable for the drainer to record.
    """

    async def handed(kind: type[T]) -> T:
        value = await handover.prepare(desk, notice, default_timezone)
        expected = get_origin(kind) or kind  # a generic kind (`ToChat[Report]`) is checked by its class
        if not isinstance(value, expected):
            raise TypeError(
                f"a {notice.kind!r} notice is handed a {type(value).__name__}, not a {expected.__name__}"
            )
        return cast(T, value)

    try:
        return await sender.send(notice, handed)
    except Skipped:
        return Delivered()
    except Unreachable as shut:
        raise _unreachable(notice, shut) from shut


def _unreachable(notice: Outgoing, shut: Unreachable) -> RetryLater | Undeliverable:
    """A place that is gone or lacks the bot: retried `shut.patience` times, then given up."""
    if notice.attempts + 1 >= shut.patience:
        return Undeliverable(f"{shut.place} unreachable: {shut.why}")
    log.warning(
        "%s of %s %s unreachable (%s): %s; retrying",
        shut.place,
        notice.recipient_kind,
        notice.recipient_id,
        shut.why,
        shut.advice,
    )
    return RetryLater(f"channel unreachable: {shut.why}")


@dataclass
class DeliveryStats:
    """Counters for tests, benchmarks and logs."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    by_channel: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Outbox:
    """The drainer: claims due notices, sends them through the senders, records the outcome."""

    def __init__(
        self,
        desk: Desk,
        senders: Iterable[Sender],
        *,
        batch: int = 200,
        lease: timedelta = timedelta(seconds=60),
        poll_interval: float = 1.0,
        concurrency: int = 64,
        default_timezone: str = "UTC",
    ) -> None:
        """Prepares a drainer; `run()` starts it.

        Parameters:
            desk: the workflow's desk (database and clock).
            senders: one sender per channel that is switched on.
            batch: how many notices one claim takes at most.
            lease: how long a claim lasts before another instance may take the notice over.
            poll_interval: how often to look for work that another process queued.
            concurrency: how many lanes send at the same time.
            default_timezone: the time zone of recipients without one of their own.

        Each sender declares its lane rules (`Sender.lane`, `Sender.lane_slice`).
        """
        self.desk = desk
        self.senders = {sender.channel: sender for sender in senders}
        self.batch = batch
        self.lease = lease
        self.poll_interval = poll_interval
        self.default_timezone = default_timezone
        self.stats = DeliveryStats()
        self._lanes = asyncio.Semaphore(concurrency)
        # One drain loop per channel, each with its own wake-up: a slow channel (Slack's pace, a
        # webhook endpoint that takes its time) never holds up the notices of another.
        self._wakes = {channel: asyncio.Event() for channel in self.senders}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Notices this process is sending (claimed, not yet settled): when their lease runs out in
        # flight (a slow send, the sandbox's clock jumping ahead), a claim here renews it but does
        # not send them again, so one process never sends a notice twice.
        self._in_flight: set[str] = set()
        self._claims: dict[tuple[str, ...], Select[Any]] = {}  # the claim statement per channel set

    def wake(self, channels: Iterable[ChannelKind] | None = None) -> None:
        """Something was queued (on `channels`, or anywhere): look now instead of at the next poll."""
        for channel in self._wakes if channels is None else channels:
            if channel in self._wakes:
                self._wakes[channel].set()

    async def start(self) -> None:
        """Releases claims left by a crashed run of this single-file database, then starts draining."""
        if not self.desk.db.supports_skip_locked:
            # SQLite serves one instance; claims still held are from a process that died.
            async with self.desk.db.transaction() as session:
                await session.execute(
                    update(Notice).where(Notice.status == "pending").values(claimed_until=None)
                )
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self.run(channel), name=f"outbox-{channel.value}") for channel in self.senders
        ]

    async def stop(self) -> None:
        """Stops after the sends in flight finish."""
        self._stopping.set()
        self.wake()
        if self._tasks:
            try:
                # Sends in flight get a moment to finish; after that they are cut off, and their
                # notices, still claimed, are sent again once the lease runs out (at least once).
                async with asyncio.timeout(STOP_GRACE):
                    await asyncio.gather(*self._tasks)
            except (TimeoutError, asyncio.CancelledError):
                log.warning("outbox stopped with sends in flight; they will be retried")
            self._tasks = []

    async def run(self, channel: ChannelKind) -> None:
        """Drains one channel until stopped; errors are logged and the loop goes on."""
        wake = self._wakes[channel]
        while not self._stopping.is_set():
            # Cleared before the pass looks: a notice queued while it looks wakes the next one.
            wake.clear()
            try:
                handled = await self.drain_once([channel])
            except Exception:
                log.exception("outbox pass on %s failed; trying again", channel.value)
                handled = 0
            if handled == 0 and not self._stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=self.poll_interval)

    async def drain_once(self, channels: Iterable[ChannelKind] | None = None) -> int:
        """Claims one batch of due notices (of `channels`, or all) and sends it; returns how many."""
        claimed = await self._claim(list(self.senders if channels is None else channels))
        if not claimed:
            return 0
        lanes: dict[tuple[ChannelKind, str], list[Outgoing]] = defaultdict(list)
        for notice in claimed:
            lanes[(notice.channel, self.senders[notice.channel].lane(notice))].append(notice)
        await asyncio.gather(*(self._send_lane(items) for items in lanes.values()))
        return len(claimed)

    async def pending_count(self) -> int:
        """How many notices on this drainer's channels still wait to be sent (for tests and health)."""
        channels = [c.value for c in self.senders]
        async with self.desk.db.read() as session:
            query = select(func.count()).select_from(Notice)
            query = query.where(Notice.status == "pending", Notice.channel.in_(channels))
            return int((await session.execute(query)).scalar_one())

    async def _claim(self, of: list[ChannelKind]) -> list[Outgoing]:
        now = self.desk.clock.now()
        channels = [c.value for c in of]
        if not channels:
            return []
        # Look before taking the write lock: most passes find nothing, and on SQLite every write
        # transaction queues behind the decisions and submissions that users wait for.
        for channel in channels:
            if await self.desk.db.point_read(_DUE_ONE, {"channel": channel, "now": now}):
                break
        else:
            return []
        claim = self._claims.get(tuple(channels))
        if claim is None:
            claim = self._claims[tuple(channels)] = self._claim_statement(of)
        async with self.desk.db.transaction() as session:
            rows = (await session.execute(claim, {"now": now})).all()
            if rows:
                await session.execute(_CLAIM, {"ids": [row.id for row in rows], "until": now + self.lease})
        # A notice this process is still sending keeps its renewed claim but is not sent again.
        taken = [Outgoing.of(row) for row in rows if row.id not in self._in_flight]
        self._in_flight.update(notice.id for notice in taken)
        return taken

    def _claim_statement(self, of: list[ChannelKind]) -> Select[Any]:
        """The SELECT that claims a batch of due notices of these channels (`now` bound at each pass)."""
        channels = [c.value for c in of]
        due = _due(Notice.channel.in_(channels))
        # Senders whose `lane_slice` is set (Telegram: a chat takes about a message a second) have each
        # recipient's pending notices ranked in queue order, and only the oldest few are taken, and
        # only while none of that recipient's notices waits for a retry (it goes first) or is held
        # by another instance (the lane is busy there): a recipient's notices leave in order, from
        # one place, and one busy chat cannot make a whole pass wait on it.
        sliced = {
            c.value: s.lane_slice for c, s in self.senders.items() if c in of and s.lane_slice is not None
        }
        fair: ColumnElement[bool] = Notice.channel.in_(channels)
        if sliced:
            recipient = (Notice.channel, Notice.recipient_kind, Notice.recipient_id)
            order = (Notice.created_at, Notice.id)
            held = and_(Notice.claimed_until.is_not(None), Notice.claimed_until > _NOW)
            ranked = (
                select(
                    Notice.id,
                    Notice.channel,
                    func.row_number().over(partition_by=recipient, order_by=order).label("place"),
                    func.sum(case((Notice.next_attempt_at > _NOW, 1), else_=0))
                    .over(partition_by=recipient, order_by=order)
                    .label("waiting_before"),
                    func.max(case((held, 1), else_=0)).over(partition_by=recipient).label("busy"),
                )
                .where(Notice.status == "pending", Notice.channel.in_(list(sliced)))
                .subquery()
            )
            takeable = select(ranked.c.id).where(
                ranked.c.place <= case(*((ranked.c.channel == c, n) for c, n in sliced.items())),
                ranked.c.waiting_before == 0,
                ranked.c.busy == 0,
            )
            fair = or_(
                and_(Notice.channel.in_(channels), Notice.channel.not_in(list(sliced))),
                Notice.id.in_(takeable),
            )
        return (
            select(*_NOTICE_ROWS.columns)
            .where(fair, *due)
            .order_by(Notice.created_at, Notice.id)
            .limit(self.batch)
            .with_for_update(skip_locked=True)
        )

    async def _send_lane(self, notices: list[Outgoing]) -> None:
        try:
            await self._send_in_order(notices)
        finally:
            self._in_flight.difference_update(notice.id for notice in notices)

    async def _send_in_order(self, notices: list[Outgoing]) -> None:
        async with self._lanes:
            for position, notice in enumerate(notices):
                sender = self.senders[notice.channel]
                try:
                    delivered = await deliver(
                        self.desk, sender, notice, default_timezone=self.default_timezone
                    )
                except RetryLater as wait:
                    metrics.delivery_retried(notice.channel.value, wait.reason)
                    retry_at = await self._retry(notice, wait.reason, wait.after)
                    # Keep the lane in order: what follows waits for the one that could not go.
                    await self._release(notices[position + 1 :], retry_at)
                    return
                except Undeliverable as why:
                    await self._fail(notice, str(why))
                    continue
                except Exception as error:  # a bug or an unexpected platform answer: retry, never drop
                    log.warning("sending notice %s failed: %s", notice.id, type(error).__name__)
                    retry_at = await self._retry(notice, f"{type(error).__name__}: {error}", None)
                    await self._release(notices[position + 1 :], retry_at)
                    return
                await self._mark_sent(notice, delivered)

    async def _mark_sent(self, notice: Outgoing, delivered: Delivered) -> None:
        now = self.desk.clock.now()
        sent = {"notice_id": notice.id, "now": now, "tries": notice.attempts + 1}
        if delivered.card_message_id is None or notice.request_id is None:
            # Once per message sent: one UPDATE in a transaction of its own, the cheapest way.
            await self.desk.db.quick_write(_SENT, sent)
            self._count_sent(notice)
            return
        async with self.desk.db.transaction() as session:
            await _SENT.execute(session, sent)
            # Where the new card now lives: its row moved, or made the first time.
            place = {
                "request": notice.request_id,
                "on_channel": notice.channel.value,
                "recipient": notice.recipient_id,
                "chat": delivered.card_chat_id or None,
                "message": delivered.card_message_id,
            }
            moved = await _CARD_MOVED.execute(session, place)
            if not moved.rowcount:
                session.add(
                    CardRef(
                        request_id=notice.request_id,
                        channel=notice.channel.value,
                        recipient_id=notice.recipient_id,
                        chat_id=delivered.card_chat_id or "",
                        message_id=delivered.card_message_id,
                        created_at=now,
                    )
                )
        self._count_sent(notice)

    def _count_sent(self, notice: Outgoing) -> None:
        self.stats.sent += 1
        self.stats.by_channel[notice.channel.value] += 1

    async def _retry(self, notice: Outgoing, reason: str, after: float | None) -> datetime:
        now = self.desk.clock.now()
        attempts = notice.attempts + 1
        if after is None:
            backoff = min(MAX_BACKOFF.total_seconds(), 2 ** min(attempts, 12))
            after = backoff * (0.5 + random.random() / 2)
        retry_at = now + timedelta(seconds=after)
        dead = retry_at - notice.created_at > MAX_NOTICE_AGE
        async with self.desk.db.transaction() as session:
            await session.execute(
                update(Notice)
                .where(Notice.id == notice.id)
                .values(
                    attempts=attempts,
                    next_attempt_at=retry_at,
                    claimed_until=None,
                    last_error=reason[:1000],
                    status="failed" if dead else "pending",
                )
            )
        if dead:
            log.error("notice %s given up after 24 h: %s", notice.id, reason)
            metrics.delivery_failed(notice.channel.value)
            self.stats.failed += 1
        else:
            self.stats.retried += 1
        return retry_at

    async def _release(self, notices: list[Outgoing], not_before: datetime) -> None:
        if not notices:
            return
        async with self.desk.db.transaction() as session:
            await session.execute(
                update(Notice)
                .where(Notice.id.in_([n.id for n in notices]))
                .values(claimed_until=None, next_attempt_at=not_before)
            )

    async def _fail(self, notice: Outgoing, reason: str) -> None:
        log.warning("notice %s cannot be delivered: %s", notice.id, reason)
        metrics.delivery_failed(notice.channel.value)
        async with self.desk.db.transaction() as session:
            await session.execute(
                update(Notice)
                .where(Notice.id == notice.id)
                .values(
                    status="failed",
                    claimed_until=None,
                    last_error=reason[:1000],
                    attempts=notice.attempts + 1,
                )
            )
        self.stats.failed += 1
