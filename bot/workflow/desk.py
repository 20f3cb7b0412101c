"""The desk every transition works at: one transaction that writes the state change, its audit
event and the notices it causes (outbox rows) together, or nothing at all.

A refused transition raises a `Refused` subclass after committing only an audit event that
records the refusal.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Unpack

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.audit_cap import RefusalAuditCap
from bot.clock import Clock
from bot.models import OPEN_STATUSES, Actor, ActorKind, ChannelKind, utc_iso
from bot.output_files import OutputFiles
from bot.receipts import SigningKeys
from bot.workflow.errors import NotFound, Refused
from bot.workflow.handling import mark_handled
from bot.workflow.notices import NoticeDetail as NoticeDetail
from bot.workflow.notices import Recipient as Recipient
from bot.workflow.notices import queue_notice as queue_notice
from bot.workflow.notices import queued_on
from storage.audit import append_audit
from storage.database import Database, writes_so_far
from storage.deferred import discard_deferred
from storage.personal import PERSONAL_FIELDS, seal_personal
from storage.queries import RequestView, load_request_view
from storage.tables import Agency, Artist, Creator, Grant, Request

# ---------------------------------------------------------------- the desk


@dataclass(frozen=True)
class Rules:
    """The configurable parts of the rules."""

    max_grant_days: int = 365
    default_decision_window: timedelta = timedelta(hours=72)
    decision_reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=2))
    grant_reminders: tuple[timedelta, ...] = (timedelta(days=7), timedelta(days=1))
    # After a deletion fell due, shortest first (unlike the reminders before a deadline).
    deletion_reminders: tuple[timedelta, ...] = (timedelta(days=3), timedelta(days=7))
    deletion_window: timedelta = timedelta(days=14)
    # Bytes of outputs one creator may keep (OUTPUT_QUOTA).
    output_quota: int = 1024**3


@dataclass
class Desk:
    """What every transition needs: the database, the clock, the receipt key and the rules."""

    db: Database
    clock: Clock
    signer: SigningKeys
    rules: Rules = field(default_factory=Rules)
    # Where the public routes are reachable (PUBLIC_URL); receipts then carry the grant's status_url.
    public_url: str | None = None
    # Called after every committed step with the channels it queued notices on (None: any may
    # have), e.g. to wake the outbox drainer; must not block.
    on_commit: list[Callable[[frozenset[ChannelKind] | None], None]] = field(default_factory=list)
    # Bounds the audit rows one caller's refusals can add (REFUSAL_AUDIT_PER_HOUR).
    refusal_cap: RefusalAuditCap = field(default_factory=RefusalAuditCap)
    # Where output files are kept (DATA_DIR/outputs); None: outputs are not accepted.
    output_files: OutputFiles | None = None

    def audits_refusal(self, actor: Actor) -> bool:
        """True when a refusal of `actor` goes on the record; False past their hourly cap."""
        caller = f"{actor.channel.value}:{actor.kind.value}:{actor.member or actor.id}"
        return self.refusal_cap.admit(caller, actor.channel.value, self.clock.now())

    def committed(self, channels: frozenset[ChannelKind] | None = None) -> None:
        """Tells the listeners that a step committed and may have queued notices on `channels`."""
        for listener in self.on_commit:
            listener(channels)


def new_id(prefix: str) -> str:
    """A random, URL-safe id with a readable prefix, e.g. `req_9f2c4e1a7b3d5e60`."""
    return f"{prefix}_{secrets.token_hex(8)}"


def hash_secret(secret: str) -> str:
    """How API keys and invite tokens are kept: SHA-256, never the secret itself."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def reminders_already_past(due: datetime, offsets: tuple[timedelta, ...], now: datetime) -> int:
    """How many reminders are already meaningless at creation (their moment has passed)."""
    return sum(1 for offset in offsets if due - offset <= now)


# ---------------------------------------------------------------- the transaction and its audit


@contextlib.asynccontextmanager
async def transition(
    desk: Desk, actor: Actor, action: str, subject_kind: str, subject_id: str
) -> AsyncIterator[AsyncSession]:
    """A transaction whose refusal commits only the refusal's audit event (none past the actor's
    hourly cap) and the handled inbox row's mark. A step that refuses before writing (its guard
    read, then said no) commits the refusal in its own transaction, its row locks still held, so
    the chain puts it before a change that waited on those rows; one that wrote is rolled back and
    audited in a transaction of its own. The step that goes through pays for no savepoint."""
    refused: Refused | None = None
    try:
        async with desk.db.transaction() as session:
            arrival = await mark_handled(session, desk.clock.now())  # the inbox row, in the same commit
            before = await writes_so_far(session)
            try:
                yield session
            except Refused as why:
                if session.new or session.dirty or session.deleted or await writes_so_far(session) != before:
                    raise
                discard_deferred(session)  # the step's notices and events: it did not happen
                if desk.audits_refusal(actor):
                    refusal = {"code": why.code, "message": why.message}
                    await audit(session, desk, actor, f"{action}.refused", subject_kind, subject_id, refusal)
                refused = why
            queued = queued_on(session)
    except Refused as why:  # the step wrote: rolled back with the inbox row's mark, both made anew
        await record_refusal(
            desk,
            actor=actor,
            action=action,
            subject_kind=subject_kind,
            subject_id=subject_id,
            reason=why.message,
            code=why.code,
        )
        raise
    if arrival is not None:
        arrival.done = True
    if refused is not None:
        raise refused
    if queued:
        desk.committed(frozenset(queued))


async def audit(
    session: AsyncSession,
    desk: Desk,
    actor: Actor,
    action: str,
    subject_kind: str,
    subject_id: str,
    data: dict[str, Any] | None = None,
) -> None:
    """Appends one event to the audit chain; a member acting for an agency is named with it.

    Personal values (names, free texts, Telegram ids) in an event about an artist are sealed
    under that artist's key (storage/personal.py), so erasing the artist leaves the chain intact.
    """
    now = desk.clock.now()
    data = (data or {}) | ({"on_behalf_of": actor.id} if actor.member else {})
    await append_audit(
        session,
        at=now,
        actor_kind=actor.kind.value,
        actor_id=actor.member or actor.id,
        channel=actor.channel.value,
        action=action,
        subject_kind=subject_kind,
        subject_id=subject_id,
        data=await seal_personal(session, await _owner(session, subject_kind, subject_id, data), data, now),
    )


async def _owner(
    session: AsyncSession, subject_kind: str, subject_id: str, data: dict[str, Any]
) -> str | None:
    """The artist whose personal values an event holds, if any: the subject itself, or the artist
    of the request or grant it is about."""
    if not any(data.get(field) is not None for field in PERSONAL_FIELDS):
        return None
    if subject_kind == ActorKind.artist.value:
        return subject_id
    row: Request | Grant | None = None
    if subject_kind == "request":
        row = await session.get(Request, subject_id)
    elif subject_kind == "grant":
        row = await session.get(Grant, subject_id)
    return None if row is None else row.artist_id


async def record_refusal(
    desk: Desk,
    *,
    actor: Actor,
    action: str,
    subject_kind: str,
    subject_id: str,
    reason: str,
    code: str = "not_authentic",
) -> None:
    """Audits a refusal in a transaction of its own, marking the inbox row being handled: one that
    came before any transition could run (a forged button, a stranger's `/likeness` on an
    agency's board), or a transition's; past the actor's hourly cap, only counts it."""
    if not desk.audits_refusal(actor):
        return
    async with desk.db.transaction() as session:
        arrival = await mark_handled(session, desk.clock.now())
        refusal = {"code": code, "message": reason}
        await audit(session, desk, actor, f"{action}.refused", subject_kind, subject_id[:64], refusal)
    if arrival is not None:
        arrival.done = True


async def load_creators_grant(session: AsyncSession, grant_id: str, creator_id: str) -> Grant:
    """The creator's own grant; NotFound both when there is none and when it is another creator's,
    so a studio learns nothing of grants that are not theirs."""
    grant = await session.get(Grant, grant_id)
    if grant is None or grant.creator_id != creator_id:
        raise NotFound(f"no grant {grant_id}")
    return grant


async def load_view(session: AsyncSession, request_id: str, *, for_update: bool = False) -> RequestView:
    """The request and its surroundings (with `for_update`, the request and artist rows locked);
    NotFound when there is no such request."""
    view = await load_request_view(session, request_id, for_update=for_update)
    if view is None:
        raise NotFound(f"no request {request_id}")
    return view


# ---------------------------------------------------------------- notices (outbox rows)


def tell_creator(
    session: AsyncSession,
    now: datetime,
    creator: Creator,
    event: str,
    *,
    request_id: str,
    grant_id: str | None = None,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> None:
    """A status update for the creator on each channel it has (signed webhook, Telegram)."""
    payload = {"event": event, "request_id": request_id, "grant_id": grant_id} | (data or {})
    for channel, reachable in (
        (ChannelKind.webhook, bool(creator.webhook_url) and creator.deactivated_at is None),
        (ChannelKind.telegram, creator.telegram_chat_id is not None),
    ):
        if reachable:
            queue_notice(
                session,
                now,
                Recipient(channel, ActorKind.creator, creator.id),
                "status",
                request_id=request_id,
                grant_id=grant_id,
                payload=payload,
                dedupe_key=f"{dedupe_key}:{channel.value}" if dedupe_key else None,
            )


def tell_artist(
    session: AsyncSession,
    now: datetime,
    artist: Artist,
    kind: str,
    *,
    request_id: str | None = None,
    **detail: Unpack[NoticeDetail],
) -> None:
    """A Telegram message for the artist, once they have linked their chat."""
    if artist.telegram_chat_id is not None:
        to = Recipient(ChannelKind.telegram, ActorKind.artist, artist.id)
        queue_notice(session, now, to, kind, request_id=request_id, **detail)


def tell_agency(
    session: AsyncSession,
    now: datetime,
    agency: Agency | None,
    kind: str,
    *,
    request_id: str,
    **detail: Unpack[NoticeDetail],
) -> None:
    """A post or thread reply on the agency's Slack board, when it has a channel."""
    if agency is not None and agency.slack_channel_id:
        to = Recipient(ChannelKind.slack, ActorKind.agency, agency.id)
        queue_notice(session, now, to, kind, request_id=request_id, **detail)


def tell_board(
    session: AsyncSession,
    now: datetime,
    view: RequestView,
    event: str,
    data: dict[str, Any] | None = None,
    *,
    grant_id: str | None = None,
    dedupe_key: str | None = None,
) -> None:
    """The request's post on its agency's board is updated and `event` (with `data`) said in its
    thread, when the agency has a board."""
    payload = {"event": event} | (data or {})
    detail: NoticeDetail = {"grant_id": grant_id, "payload": payload, "dedupe_key": dedupe_key}
    tell_agency(session, now, view.agency, "board_update", request_id=view.request.id, **detail)


def announce(session: AsyncSession, now: datetime, view: RequestView, event: str, **data: Any) -> None:
    """Tells every party that a request changed: card edited, board updated, creator informed."""
    request = view.request
    tell_artist(session, now, view.artist, "card_update", request_id=request.id, payload={"event": event})
    tell_board(session, now, view, event, data)
    grant = view.grant
    if grant is not None:
        data = data | {
            "grant": {
                "id": grant.id,
                "status": grant.status,
                "starts_at": utc_iso(grant.starts_at),
                "ends_at": utc_iso(grant.ends_at),
            }
        }
    tell_creator(
        session,
        now,
        view.creator,
        event,
        request_id=request.id,
        grant_id=grant.id if grant else None,
        data={"status": request.status} | data,
    )


def tell_grant_parties(
    session: AsyncSession,
    now: datetime,
    view: RequestView,
    grant: Grant,
    *,
    key: str | None = None,
    artist: tuple[str, dict[str, Any] | None] | None = None,
    agency: dict[str, Any] | None = None,
    creator: tuple[str, dict[str, Any]] | None = None,
) -> None:
    """Tells the parties of a grant about one thing: the artist a notice `(kind, payload)`, the
    agency board `payload` (with its "event"), the creator `(event, data)`; each party named is
    told once per `key` however often the cause runs (no key: every time)."""

    def once(suffix: str) -> str | None:
        return f"{key}{suffix}" if key is not None else None

    request_id, grant_id = grant.request_id, grant.id
    if artist is not None:
        kind, payload = artist
        tell_artist(
            session,
            now,
            view.artist,
            kind,
            request_id=request_id,
            grant_id=grant_id,
            payload=payload,
            dedupe_key=once(":artist"),
        )
    if creator is not None:
        event, data = creator
        tell_creator(
            session,
            now,
            view.creator,
            event,
            request_id=request_id,
            grant_id=grant_id,
            data=data,
            dedupe_key=once(""),
        )
    if agency is not None:
        tell_board(session, now, view, agency["event"], agency, grant_id=grant_id, dedupe_key=once(":agency"))


def announce_grant(
    session: AsyncSession,
    now: datetime,
    view: RequestView,
    grant: Grant,
    event: str,
    *,
    artist_kind: str | None = None,
    creator_data: dict[str, Any] | None = None,
    board_data: dict[str, Any] | None = None,
) -> None:
    """Tells the creator and the agency board (and, with `artist_kind`, the artist) that a grant
    changed state; each party once per grant and event, however often a sweep runs."""
    status = event.removeprefix("grant.")
    tell_grant_parties(
        session,
        now,
        view,
        grant,
        key=f"{event}:{grant.id}",
        artist=(artist_kind, None) if artist_kind is not None else None,
        creator=(event, {"status": status} | (creator_data or {})),
        agency={"event": event} | (board_data or {}),
    )


async def tell_board_of_open_requests(
    session: AsyncSession, now: datetime, artist: Artist, payload: dict[str, Any]
) -> None:
    """Re-renders the board post of each open request of the artist (its buttons follow what
    changed) with `payload`'s event in its thread."""
    agency = await session.get(Agency, artist.agency_id) if artist.agency_id else None
    if agency is None:
        return
    open_requests = await session.execute(
        select(Request.id).where(
            Request.artist_id == artist.id, Request.status.in_([s.value for s in OPEN_STATUSES])
        )
    )
    for request_id in open_requests.scalars():
        tell_agency(session, now, agency, "board_update", request_id=request_id, payload=payload)
