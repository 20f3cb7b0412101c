"""The lifecycle of DESIGN §4: every transition as one named function and one transaction.

Each transition writes the state change, its audit event and the notices it causes (outbox
rows) together, or nothing at all. A refused transition raises a `Refused` subclass after
committing only an audit event that records the refusal.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.models import (
    CLOCK_SKEW,
    OPEN_STATUSES,
    RED_LINE_REASON,
    Actor,
    ActorKind,
    ChannelKind,
    FieldError,
    GrantStatus,
    Language,
    Outcome,
    Policy,
    RedLines,
    RequestStatus,
    Terms,
    TermsIn,
    UsageIn,
    canonical_json,
    check_terms_timing,
    sha256_hex,
    utc_iso,
)
from bot.receipts import RECEIPT_VERSION, SigningKeys
from storage.audit import append_audit
from storage.database import Database
from storage.queries import RequestView, load_request_view
from storage.tables import (
    Agency,
    Artist,
    CardRef,
    Creator,
    Decision,
    Grant,
    IdempotencyKey,
    Invite,
    Notice,
    ReportRun,
    Request,
    UsageEvent,
)

INVITE_LIFETIME = timedelta(days=7)
NUDGE_INTERVAL = timedelta(hours=1)
SWEEP_BATCH = 500


# ---------------------------------------------------------------- refusals


class Refused(Exception):
    """A transition that is not allowed; nothing changed but an audit event."""

    code = "refused"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(Refused):
    """No such thing, or not one the actor may see."""

    code = "not_found"


class NotAllowed(Refused):
    """The actor may not do this."""

    code = "not_allowed"


class AlreadyDecided(Refused):
    """Someone decided first; details carry who and when."""

    code = "already_decided"


class NotOpen(Refused):
    """The request or grant is no longer in a state that allows this (lapsed, withdrawn, ...)."""

    code = "not_open"


class NeedsConfirmation(Refused):
    """Approving AI training takes a second, explicit confirmation."""

    code = "needs_confirmation"


class TermsChanged(Refused):
    """The decision was made on terms other than the request's."""

    code = "terms_changed"


class InvalidInput(Refused):
    """Field-level problems with the input."""

    code = "invalid_input"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
        self.errors = errors


class IdempotencyConflict(Refused):
    """The same Idempotency-Key was used before with a different body."""

    code = "idempotency_conflict"


class InviteInvalid(Refused):
    """The invite token is unknown, used or expired; `details['why']` says which."""

    code = "invite_invalid"


# ---------------------------------------------------------------- the desk


@dataclass(frozen=True)
class Rules:
    """The configurable parts of the rules."""

    max_grant_days: int = 365
    default_decision_window: timedelta = timedelta(hours=72)
    decision_reminders: tuple[timedelta, ...] = (timedelta(hours=24), timedelta(hours=2))
    grant_reminders: tuple[timedelta, ...] = (timedelta(days=7), timedelta(days=1))


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

    def committed(self, channels: frozenset[ChannelKind] | None = None) -> None:
        """Tells the listeners that a step committed and may have queued notices on `channels`."""
        for listener in self.on_commit:
            listener(channels)


@dataclass(frozen=True)
class Idempotency:
    """An Idempotency-Key with what it was sent with."""

    key: str
    scope: str
    body_hash: str


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: the request, and whether this is a replay."""

    view: RequestView
    replayed: bool = False


@dataclass(frozen=True)
class Decided:
    """The outcome of a decision: the request as it now stands."""

    view: RequestView
    decision: Decision


def new_id(prefix: str) -> str:
    """A random, URL-safe id with a readable prefix, e.g. `req_9f2c4e1a7b3d5e60`."""
    return f"{prefix}_{secrets.token_hex(8)}"


_notice_sequence = itertools.count()


def _notice_id() -> str:
    """A notice id that sorts in the order notices were queued by this process.

    Notices written in one transaction share `created_at`; the outbox breaks the tie by id, so
    the cards queued together at /start, say, leave in the order they were queued.
    """
    return f"ntc_{time.time_ns():016x}{next(_notice_sequence) % 0x10000:04x}"


def hash_secret(secret: str) -> str:
    """How API keys and invite tokens are kept: SHA-256, never the secret itself."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@contextlib.asynccontextmanager
async def _transition(
    desk: Desk, actor: Actor, action: str, subject_kind: str, subject_id: str
) -> AsyncIterator[AsyncSession]:
    """A transaction whose refusal rolls back the work and commits only the refusal's audit event."""
    refusal: Refused | None = None
    async with desk.db.transaction() as session:
        try:
            async with session.begin_nested():
                yield session
        except Refused as why:
            refusal = why
            await _audit(
                session,
                desk,
                actor,
                f"{action}.refused",
                subject_kind,
                subject_id,
                {"code": why.code, "message": why.message},
            )
        queued: set[ChannelKind] = session.info.get(_QUEUED_ON, set())
    if queued and refusal is None:
        desk.committed(frozenset(queued))
    if refusal is not None:
        raise refusal


async def _audit(
    session: AsyncSession,
    desk: Desk,
    actor: Actor,
    action: str,
    subject_kind: str,
    subject_id: str,
    data: dict[str, Any] | None = None,
) -> None:
    await append_audit(
        session,
        at=desk.clock.now(),
        actor_kind=actor.kind.value,
        actor_id=actor.member or actor.id,
        channel=actor.channel.value,
        action=action,
        subject_kind=subject_kind,
        subject_id=subject_id,
        data=(data or {}) | ({"on_behalf_of": actor.id} if actor.member else {}),
    )


_QUEUED_ON = "likeness.queued_on"  # session.info key: the channels a transaction queued notices on


def _queue(
    session: AsyncSession,
    now: datetime,
    *,
    channel: ChannelKind,
    recipient_kind: ActorKind,
    recipient_id: str,
    kind: str,
    request_id: str | None = None,
    grant_id: str | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> None:
    session.info.setdefault(_QUEUED_ON, set()).add(channel)
    session.add(
        Notice(
            id=_notice_id(),
            channel=channel.value,
            recipient_kind=recipient_kind.value,
            recipient_id=recipient_id,
            kind=kind,
            request_id=request_id,
            grant_id=grant_id,
            payload=payload or {},
            dedupe_key=dedupe_key,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
    )


def _tell_creator(
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
    if creator.webhook_url:
        _queue(
            session,
            now,
            channel=ChannelKind.webhook,
            recipient_kind=ActorKind.creator,
            recipient_id=creator.id,
            kind="status",
            request_id=request_id,
            grant_id=grant_id,
            payload=payload,
            dedupe_key=f"{dedupe_key}:webhook" if dedupe_key else None,
        )
    if creator.telegram_chat_id is not None:
        _queue(
            session,
            now,
            channel=ChannelKind.telegram,
            recipient_kind=ActorKind.creator,
            recipient_id=creator.id,
            kind="status",
            request_id=request_id,
            grant_id=grant_id,
            payload=payload,
            dedupe_key=f"{dedupe_key}:telegram" if dedupe_key else None,
        )


def _tell_artist(
    session: AsyncSession,
    now: datetime,
    artist: Artist,
    kind: str,
    *,
    request_id: str | None = None,
    grant_id: str | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> None:
    """A Telegram message for the artist, once they have linked their chat."""
    if artist.telegram_chat_id is None:
        return
    _queue(
        session,
        now,
        channel=ChannelKind.telegram,
        recipient_kind=ActorKind.artist,
        recipient_id=artist.id,
        kind=kind,
        request_id=request_id,
        grant_id=grant_id,
        payload=payload,
        dedupe_key=dedupe_key,
    )


def _tell_agency(
    session: AsyncSession,
    now: datetime,
    agency: Agency | None,
    kind: str,
    *,
    request_id: str,
    grant_id: str | None = None,
    payload: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> None:
    """A post or thread reply on the agency's Slack board, when it has a channel."""
    if agency is None or not agency.slack_channel_id:
        return
    _queue(
        session,
        now,
        channel=ChannelKind.slack,
        recipient_kind=ActorKind.agency,
        recipient_id=agency.id,
        kind=kind,
        request_id=request_id,
        grant_id=grant_id,
        payload=payload,
        dedupe_key=dedupe_key,
    )


def _announce(session: AsyncSession, now: datetime, view: RequestView, event: str, **data: Any) -> None:
    """Tells every party that a request changed: card edited, board updated, creator informed."""
    request = view.request
    _tell_artist(session, now, view.artist, "card_update", request_id=request.id, payload={"event": event})
    _tell_agency(
        session, now, view.agency, "board_update", request_id=request.id, payload={"event": event} | data
    )
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
    _tell_creator(
        session,
        now,
        view.creator,
        event,
        request_id=request.id,
        grant_id=grant.id if grant else None,
        data={"status": request.status} | data,
    )


def _announce_grant(
    session: AsyncSession,
    now: datetime,
    view: RequestView,
    grant: Grant,
    event: str,
    *,
    artist_kind: str | None = None,
    creator_data: dict[str, Any] | None = None,
) -> None:
    """Tells the creator and the agency board (and, with `artist_kind`, the artist) that a grant
    changed state; each party once per grant and event, however often a sweep runs."""
    key = f"{event}:{grant.id}"
    status = event.removeprefix("grant.")
    if artist_kind is not None:
        _tell_artist(
            session,
            now,
            view.artist,
            artist_kind,
            request_id=grant.request_id,
            grant_id=grant.id,
            dedupe_key=f"{key}:artist",
        )
    _tell_creator(
        session,
        now,
        view.creator,
        event,
        request_id=grant.request_id,
        grant_id=grant.id,
        data={"status": status} | (creator_data or {}),
        dedupe_key=key,
    )
    _tell_agency(
        session,
        now,
        view.agency,
        "board_update",
        request_id=grant.request_id,
        grant_id=grant.id,
        payload={"event": event},
        dedupe_key=f"{key}:agency",
    )


async def _view(session: AsyncSession, request_id: str) -> RequestView:
    view = await load_request_view(session, request_id)
    if view is None:
        raise NotFound(f"no request {request_id}")
    return view


def _reminders_already_past(due: datetime, offsets: tuple[timedelta, ...], now: datetime) -> int:
    """How many reminders are already meaningless at creation (their moment has passed)."""
    return sum(1 for offset in offsets if due - offset <= now)


# ---------------------------------------------------------------- set-up


async def add_agency(
    desk: Desk,
    *,
    name: str,
    slack_channel_id: str | None = None,
    slack_member_ids: list[str] | None = None,
    timezone: str = "UTC",
    actor: Actor | None = None,
) -> Agency:
    """Registers an agency with its Slack channel and the members allowed to act."""
    actor = actor or Actor(ActorKind.admin, "admin", ChannelKind.cli)
    now = desk.clock.now()
    agency = Agency(
        id=new_id("agy"),
        name=name,
        slack_channel_id=slack_channel_id,
        slack_member_ids=sorted(set(slack_member_ids or [])),
        timezone=timezone,
        created_at=now,
    )
    async with _transition(desk, actor, "agency.add", "agency", agency.id) as session:
        session.add(agency)
        await _audit(session, desk, actor, "agency.added", "agency", agency.id, {"name": name})
    return agency


async def add_artist(
    desk: Desk,
    *,
    name: str,
    agency_id: str | None = None,
    policy: Policy = Policy.artist_only,
    language: Language = Language.en,
    timezone: str = "UTC",
    red_lines: RedLines | None = None,
    actor: Actor | None = None,
) -> Artist:
    """Registers an artist with their decision policy, language, time zone and red lines."""
    actor = actor or Actor(ActorKind.admin, "admin", ChannelKind.cli)
    now = desk.clock.now()
    artist = Artist(
        id=new_id("art"),
        name=name,
        agency_id=agency_id,
        policy=policy.value,
        language=language.value,
        timezone=timezone,
        red_lines=(red_lines or RedLines()).model_dump(mode="json"),
        created_at=now,
    )
    async with _transition(desk, actor, "artist.add", "artist", artist.id) as session:
        if agency_id is not None and await session.get(Agency, agency_id) is None:
            raise NotFound(f"no agency {agency_id}")
        if policy is not Policy.artist_only and agency_id is None:
            raise InvalidInput([FieldError("policy", f"{policy.value} needs an agency")])
        session.add(artist)
        await _audit(
            session, desk, actor, "artist.added", "artist", artist.id, {"name": name, "policy": policy.value}
        )
    return artist


@dataclass(frozen=True)
class NewCreator:
    """A registered creator and the secrets shown to it exactly once."""

    creator: Creator
    api_key: str
    webhook_secret: str | None


async def add_creator(
    desk: Desk, *, name: str, webhook_url: str | None = None, actor: Actor | None = None
) -> NewCreator:
    """Registers a creator; its API key is returned once and kept only as a hash."""
    actor = actor or Actor(ActorKind.admin, "admin", ChannelKind.cli)
    now = desk.clock.now()
    api_key = "lk_" + secrets.token_urlsafe(32)
    webhook_secret = "whsec_" + secrets.token_urlsafe(32) if webhook_url else None
    creator = Creator(
        id=new_id("crt"),
        name=name,
        api_key_hash=hash_secret(api_key),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        language="en",
        created_at=now,
    )
    async with _transition(desk, actor, "creator.add", "creator", creator.id) as session:
        session.add(creator)
        await _audit(session, desk, actor, "creator.added", "creator", creator.id, {"name": name})
    return NewCreator(creator, api_key, webhook_secret)


async def create_invite(
    desk: Desk, *, subject_kind: ActorKind, subject_id: str, actor: Actor | None = None
) -> str:
    """Makes a one-time Telegram link token for an artist or creator; valid for 7 days."""
    actor = actor or Actor(ActorKind.admin, "admin", ChannelKind.cli)
    now = desk.clock.now()
    token = secrets.token_urlsafe(24)
    async with _transition(desk, actor, "invite.create", subject_kind.value, subject_id) as session:
        table = {ActorKind.artist: Artist, ActorKind.creator: Creator}.get(subject_kind)
        if table is None or await session.get(table, subject_id) is None:
            raise NotFound(f"no {subject_kind.value} {subject_id}")
        session.add(
            Invite(
                token_hash=hash_secret(token),
                subject_kind=subject_kind.value,
                subject_id=subject_id,
                created_at=now,
                expires_at=now + INVITE_LIFETIME,
            )
        )
        await _audit(session, desk, actor, "invite.created", subject_kind.value, subject_id)
    return token


@dataclass(frozen=True)
class Linked:
    """Who a Telegram user became by redeeming an invite."""

    kind: ActorKind
    id: str
    name: str
    language: Language


async def redeem_invite(desk: Desk, *, token: str, telegram_user_id: int, chat_id: int) -> Linked:
    """Links a Telegram user to the invite's artist or creator; queues the artist's open cards."""
    actor = Actor(ActorKind.stranger, str(telegram_user_id), ChannelKind.telegram)
    now = desk.clock.now()
    async with _transition(desk, actor, "invite.redeem", "invite", hash_secret(token)[:16]) as session:
        invite = await session.get(Invite, hash_secret(token), with_for_update=True)
        if invite is None:
            raise InviteInvalid("this link is not valid", why="unknown")
        if invite.used_at is not None:
            raise InviteInvalid("this link was already used", why="used")
        if invite.expires_at <= now:
            raise InviteInvalid("this link has expired", why="expired")
        invite.used_at = now
        invite.used_by = telegram_user_id
        linked: Linked
        if invite.subject_kind == ActorKind.artist.value:
            artist = await session.get(Artist, invite.subject_id)
            assert artist is not None
            other = (
                await session.execute(select(Artist).where(Artist.telegram_user_id == telegram_user_id))
            ).scalar_one_or_none()
            if other is not None and other.id != artist.id:
                raise NotAllowed("this Telegram account is already linked to another artist")
            artist.telegram_user_id = telegram_user_id
            artist.telegram_chat_id = chat_id
            await session.flush()
            # Cards for requests that arrived before the artist linked their chat.
            for request in (
                await session.execute(
                    select(Request)
                    .where(
                        Request.artist_id == artist.id, Request.status.in_([s.value for s in OPEN_STATUSES])
                    )
                    .order_by(Request.created_at)
                )
            ).scalars():
                _tell_artist(
                    session, now, artist, "card", request_id=request.id, dedupe_key=f"card:{request.id}"
                )
            linked = Linked(ActorKind.artist, artist.id, artist.name, Language(artist.language))
        else:
            creator = await session.get(Creator, invite.subject_id)
            assert creator is not None
            creator.telegram_user_id = telegram_user_id
            creator.telegram_chat_id = chat_id
            linked = Linked(ActorKind.creator, creator.id, creator.name, Language(creator.language))
        await _audit(
            session,
            desk,
            Actor(linked.kind, linked.id, ChannelKind.telegram),
            "telegram.linked",
            linked.kind.value,
            linked.id,
            {"telegram_user_id": telegram_user_id},
        )
    return linked


async def set_language(desk: Desk, *, telegram_user_id: int, language: Language) -> None:
    """Sets the language of the artist or creator linked to a Telegram user."""
    actor = Actor(ActorKind.stranger, str(telegram_user_id), ChannelKind.telegram)
    async with _transition(desk, actor, "language.set", "telegram_user", str(telegram_user_id)) as session:
        artist = (
            await session.execute(select(Artist).where(Artist.telegram_user_id == telegram_user_id))
        ).scalar_one_or_none()
        subject: Artist | Creator | None = artist
        if subject is None:
            subject = (
                await session.execute(select(Creator).where(Creator.telegram_user_id == telegram_user_id))
            ).scalar_one_or_none()
        if subject is None:
            raise NotFound("this Telegram account is not linked")
        subject.language = language.value
        kind = "artist" if isinstance(subject, Artist) else "creator"
        await _audit(
            session,
            desk,
            Actor(ActorKind(kind), subject.id, ChannelKind.telegram),
            "language.set",
            kind,
            subject.id,
            {"language": language.value},
        )


# ---------------------------------------------------------------- requests


async def _idempotent_replay(
    session: AsyncSession, creator_id: str, idem: Idempotency | None
) -> IdempotencyKey | None:
    if idem is None:
        return None
    row = await session.get(IdempotencyKey, (creator_id, idem.key))
    if row is None:
        return None
    if row.scope != idem.scope or row.body_hash != idem.body_hash:
        raise IdempotencyConflict("this Idempotency-Key was already used with a different request")
    return row


def _remember(
    session: AsyncSession,
    now: datetime,
    creator_id: str,
    idem: Idempotency | None,
    kind: str,
    rid: str,
    status: int,
) -> None:
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


async def submit_request(
    desk: Desk, *, creator_id: str, terms_in: TermsIn, idempotency: Idempotency | None = None
) -> Submitted:
    """Files a creator's request (pending: card, board post, status update); a red line denies it at once."""
    actor = Actor(ActorKind.creator, creator_id, ChannelKind.api)
    now = desk.clock.now()
    request_id = new_id("req")
    try:
        async with _transition(desk, actor, "request.submit", "request", request_id) as session:
            replay = await _idempotent_replay(session, creator_id, idempotency)
            if replay is not None:
                return Submitted(await _view(session, replay.resource_id), replayed=True)
            artist = await session.get(Artist, terms_in.artist_id)
            if artist is None:
                raise InvalidInput([FieldError("artist_id", f"no artist {terms_in.artist_id}")])
            due = terms_in.decision_due_at or min(
                now + desk.rules.default_decision_window, terms_in.ends_at - timedelta(seconds=1)
            )
            errors = check_terms_timing(
                terms_in, now=now, max_grant_days=desk.rules.max_grant_days, decision_due_at=due
            )
            if errors:
                raise InvalidInput(errors)
            terms = Terms.from_input(terms_in, creator_id=creator_id, decision_due_at=due)
            crossed = RedLines.model_validate(artist.red_lines).crossed_by(terms)
            request = Request(
                id=request_id,
                creator_id=creator_id,
                artist_id=artist.id,
                terms=terms.canonical(),
                terms_hash=terms.terms_hash,
                status=RequestStatus.denied.value if crossed else RequestStatus.pending.value,
                ai_training=terms.ai_training,
                decision_due_at=due,
                reminders_sent=_reminders_already_past(due, desk.rules.decision_reminders, now),
                reason=RED_LINE_REASON if crossed else None,
                created_at=now,
                updated_at=now,
                decided_at=now if crossed else None,
            )
            session.add(request)
            await session.flush()
            await _audit(
                session,
                desk,
                actor,
                "request.submitted",
                "request",
                request.id,
                {"terms_hash": request.terms_hash, "artist_id": artist.id},
            )
            creator = await session.get(Creator, creator_id)
            if creator is None:
                raise NotFound(f"no creator {creator_id}")
            agency = await session.get(Agency, artist.agency_id) if artist.agency_id else None
            # A new request has no decisions and no grant: no need to read them back.
            view = RequestView(request, [], None, artist, agency, creator)
            if crossed:
                system = Actor(ActorKind.system, "red-lines", ChannelKind.system)
                await _audit(
                    session,
                    desk,
                    system,
                    "request.denied",
                    "request",
                    request.id,
                    {"reason": RED_LINE_REASON, "crossed": crossed},
                )
                _tell_agency(
                    session,
                    now,
                    view.agency,
                    "board_post",
                    request_id=request.id,
                    dedupe_key=f"board:{request.id}",
                )
                _tell_creator(
                    session,
                    now,
                    view.creator,
                    "request.denied",
                    request_id=request.id,
                    data={"status": request.status, "reason": RED_LINE_REASON},
                )
            else:
                _tell_artist(
                    session, now, artist, "card", request_id=request.id, dedupe_key=f"card:{request.id}"
                )
                _tell_agency(
                    session,
                    now,
                    view.agency,
                    "board_post",
                    request_id=request.id,
                    dedupe_key=f"board:{request.id}",
                )
                _tell_creator(
                    session,
                    now,
                    view.creator,
                    "request.submitted",
                    request_id=request.id,
                    data={"status": request.status},
                )
            _remember(session, now, creator_id, idempotency, "request", request.id, 201)
            return Submitted(view)
    except IntegrityError:
        # Two submissions with one Idempotency-Key raced; the other one won, so replay it.
        if idempotency is None:
            raise
        async with desk.db.transaction() as session:
            replay = await _idempotent_replay(session, creator_id, idempotency)
            if replay is None:
                raise
            return Submitted(await _view(session, replay.resource_id), replayed=True)
    raise AssertionError("unreachable")  # pragma: no cover


def _who_decided(view: RequestView) -> dict[str, Any]:
    decisive = [d for d in view.decisions if d.outcome == Outcome.deny.value] or view.decisions
    if not decisive:
        return {"status": view.request.status}
    last = decisive[-1]
    return {
        "status": view.request.status,
        "decided_by": last.actor_kind,
        "decided_by_name": last.actor_display,
        "channel": last.channel,
        "decided_at": utc_iso(last.created_at),
    }


def _check_may_decide(view: RequestView, actor: Actor, outcome: Outcome, ai_training_confirmed: bool) -> None:
    """Raises NotAllowed / NeedsConfirmation unless this actor may make this decision."""
    policy = Policy(view.artist.policy)
    if actor.kind is ActorKind.artist:
        if actor.id != view.artist.id:
            raise NotAllowed("only the artist this request is for may decide it")
        if outcome is Outcome.approve and view.request.ai_training and not ai_training_confirmed:
            raise NeedsConfirmation("approving AI training needs a second, explicit confirmation")
        return
    if actor.kind is ActorKind.agency:
        agency = view.agency
        if agency is None or actor.id != agency.id:
            raise NotAllowed("this artist is not on your agency's roster")
        if actor.member is not None and actor.member not in agency.slack_member_ids:
            raise NotAllowed("you are not one of the agency members allowed to act")
        if policy is Policy.artist_only:
            raise NotAllowed("this artist decides alone (policy artist_only)")
        if outcome is Outcome.approve and view.request.ai_training and policy is Policy.agency_may_decide:
            raise NotAllowed("AI training is personal consent: only the artist can approve it")
        return
    raise NotAllowed("you may not decide this request")


async def decide(
    desk: Desk,
    *,
    request_id: str,
    actor: Actor,
    outcome: Outcome,
    terms_hash: str,
    reason: str | None = None,
    ai_training_confirmed: bool = False,
) -> Decided:
    """Records one approve or deny; exactly one decision wins when several race."""
    now = desk.clock.now()
    async with _transition(desk, actor, f"decision.{outcome.value}", "request", request_id) as session:
        request = await session.get(Request, request_id, with_for_update=True)
        if request is None:
            raise NotFound(f"no request {request_id}")
        view = await _view(session, request_id)
        status = RequestStatus(request.status)
        already = {d.actor_kind for d in view.decisions}
        if status not in OPEN_STATUSES:
            if status in {RequestStatus.approved, RequestStatus.denied}:
                raise AlreadyDecided(f"this request was already {status.value}", **_who_decided(view))
            raise NotOpen(f"this request is {status.value}", status=status.value)
        _check_may_decide(view, actor, outcome, ai_training_confirmed)
        if actor.kind.value in already:
            raise AlreadyDecided("you already approved; waiting for the co-signature", **_who_decided(view))
        if terms_hash != request.terms_hash:
            raise TermsChanged("the terms you saw are not this request's terms")
        if now >= request.decision_due_at:
            raise NotOpen("the decision deadline has passed", status=RequestStatus.lapsed.value)
        decision = Decision(
            id=new_id("dec"),
            request_id=request.id,
            actor_kind=actor.kind.value,
            actor_id=actor.member or actor.id,
            actor_display=actor.display,
            channel=actor.channel.value,
            outcome=outcome.value,
            terms_hash=terms_hash,
            ai_training_confirmed=ai_training_confirmed,
            reason=reason,
            created_at=now,
        )
        session.add(decision)
        await session.flush()
        policy = Policy(view.artist.policy)
        if outcome is Outcome.deny:
            request.status = RequestStatus.denied.value
            request.reason = reason
            request.decided_at = now
        elif policy is Policy.both_required and not already:
            request.status = RequestStatus.awaiting_cosign.value
        else:
            request.status = RequestStatus.approved.value
            request.decided_at = now
        request.updated_at = now
        await session.flush()
        await _audit(
            session,
            desk,
            actor,
            f"decision.{outcome.value}",
            "request",
            request.id,
            {
                "terms_hash": terms_hash,
                "status": request.status,
                "reason": reason,
                "ai_training_confirmed": ai_training_confirmed,
            },
        )
        # The view read at the start is still right but for this decision and the grant: extend it
        # instead of reading it all again (the tap path is latency-bound).
        view = dataclasses.replace(view, decisions=[*view.decisions, decision])
        if request.status == RequestStatus.approved.value:
            view = dataclasses.replace(view, grant=await _create_grant(session, desk, view, now))
        _announce(session, now, view, f"request.{request.status}", **_who_decided(view))
        return Decided(view, decision)
    raise AssertionError("unreachable")  # pragma: no cover


async def _create_grant(session: AsyncSession, desk: Desk, view: RequestView, now: datetime) -> Grant:
    request = view.request
    terms = request.terms
    starts_at = max(datetime.fromisoformat(terms["starts_at"]), now)  # never before the approval
    ends_at = datetime.fromisoformat(terms["ends_at"])
    grant_id = new_id("grt")
    receipt = desk.signer.sign(
        {
            "receipt_version": RECEIPT_VERSION,
            "type": "likeness-consent-receipt",
            "issued_at": utc_iso(now),
            "request_id": request.id,
            "grant": {"id": grant_id, "starts_at": utc_iso(starts_at), "ends_at": utc_iso(ends_at)},
            **({"status_url": f"{desk.public_url}/g/{grant_id}"} if desk.public_url else {}),
            "artist": {"id": view.artist.id, "name": view.artist.name},
            "creator": {"id": view.creator.id, "name": view.creator.name},
            "terms": terms,
            "terms_hash": request.terms_hash,
            "decisions": [
                {
                    "actor_kind": d.actor_kind,
                    "actor_id": d.actor_id,
                    "channel": d.channel,
                    "outcome": d.outcome,
                    "terms_hash": d.terms_hash,
                    "ai_training_confirmed": d.ai_training_confirmed,
                    "at": utc_iso(d.created_at),
                }
                for d in view.decisions
            ],
        }
    )
    grant = Grant(
        id=grant_id,
        request_id=request.id,
        creator_id=request.creator_id,
        artist_id=request.artist_id,
        status=GrantStatus.active.value if starts_at <= now else GrantStatus.scheduled.value,
        starts_at=starts_at,
        ends_at=ends_at,
        reminders_sent=_reminders_already_past(ends_at, desk.rules.grant_reminders, now),
        receipt=receipt,
        created_at=now,
        updated_at=now,
    )
    session.add(grant)
    await session.flush()
    system = Actor(ActorKind.system, "workflow", ChannelKind.system)
    await _audit(
        session,
        desk,
        system,
        "grant.created",
        "grant",
        grant.id,
        {
            "request_id": request.id,
            "status": grant.status,
            "receipt_sha256": sha256_hex(canonical_json(receipt)),
        },
    )
    return grant


async def withdraw_request(
    desk: Desk, *, creator_id: str, request_id: str, idempotency: Idempotency | None = None
) -> RequestView:
    """The creator takes back an undecided request; the card and board show it withdrawn."""
    actor = Actor(ActorKind.creator, creator_id, ChannelKind.api)
    now = desk.clock.now()
    async with _transition(desk, actor, "request.withdraw", "request", request_id) as session:
        replay = await _idempotent_replay(session, creator_id, idempotency)
        if replay is not None:
            return await _view(session, replay.resource_id)
        request = await session.get(Request, request_id, with_for_update=True)
        if request is None or request.creator_id != creator_id:
            raise NotFound(f"no request {request_id}")
        status = RequestStatus(request.status)
        if status not in OPEN_STATUSES:
            raise NotOpen(f"this request is already {status.value}", status=status.value)
        request.status = RequestStatus.withdrawn.value
        request.updated_at = now
        await session.flush()
        await _audit(session, desk, actor, "request.withdrawn", "request", request.id)
        view = await _view(session, request_id)
        _announce(session, now, view, "request.withdrawn")
        _remember(session, now, creator_id, idempotency, "request", request.id, 200)
        return view
    raise AssertionError("unreachable")  # pragma: no cover


async def nudge_artist(desk: Desk, *, request_id: str, actor: Actor) -> RequestView:
    """Re-sends the artist's card for an open request, at most once an hour."""
    now = desk.clock.now()
    async with _transition(desk, actor, "request.nudge", "request", request_id) as session:
        request = await session.get(Request, request_id, with_for_update=True)
        if request is None:
            raise NotFound(f"no request {request_id}")
        view = await _view(session, request_id)
        if view.agency is None or actor.kind is not ActorKind.agency or actor.id != view.agency.id:
            raise NotAllowed("only the artist's agency may nudge")
        if actor.member is not None and actor.member not in view.agency.slack_member_ids:
            raise NotAllowed("you are not one of the agency members allowed to act")
        if RequestStatus(request.status) not in OPEN_STATUSES:
            raise NotOpen(f"this request is {request.status}", status=request.status)
        if request.nudged_at is not None and now - request.nudged_at < NUDGE_INTERVAL:
            raise NotAllowed(
                "the artist was nudged less than an hour ago",
                next_at=utc_iso(request.nudged_at + NUDGE_INTERVAL),
            )
        request.nudged_at = now
        await _audit(session, desk, actor, "request.nudged", "request", request.id)
        _tell_artist(session, now, view.artist, "card", request_id=request.id, payload={"nudge": True})
        _tell_agency(
            session,
            now,
            view.agency,
            "board_update",
            request_id=request.id,
            payload={"event": "request.nudged", "by": actor.member or actor.id},
        )
        return view
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- grants and usage


def grant_status_at(grant: Grant, moment: datetime) -> GrantStatus:
    """What a grant's status is at a moment, whether or not the sweep has caught up yet."""
    if (
        grant.status == GrantStatus.revoked.value
        and grant.revoked_at is not None
        and moment >= grant.revoked_at
    ):
        return GrantStatus.revoked
    if moment < grant.starts_at:
        return GrantStatus.scheduled
    if moment >= grant.ends_at:
        return GrantStatus.expired
    return GrantStatus.active


async def revoke_grant(desk: Desk, *, grant_id: str, actor: Actor, reason: str | None = None) -> Grant:
    """The artist withdraws consent: the grant ends now and the creator must stop and delete."""
    now = desk.clock.now()
    async with _transition(desk, actor, "grant.revoke", "grant", grant_id) as session:
        grant = await session.get(Grant, grant_id, with_for_update=True)
        if grant is None:
            raise NotFound(f"no grant {grant_id}")
        if actor.kind is not ActorKind.artist or actor.id != grant.artist_id:
            if actor.kind is not ActorKind.admin:
                raise NotAllowed("only the artist may revoke their consent")
        current = grant_status_at(grant, now)
        if current in {GrantStatus.revoked, GrantStatus.expired}:
            raise NotOpen(f"this grant is already {current.value}", status=current.value)
        grant.status = GrantStatus.revoked.value
        grant.revoked_at = now
        grant.updated_at = now
        await _audit(session, desk, actor, "grant.revoked", "grant", grant.id, {"reason": reason})
        view = await _view(session, grant.request_id)
        # PIPL Art. 47: the creator must stop using the likeness and confirm deletion.
        stop = {"stop_use": True, "confirm_deletion": True, "revoked_at": utc_iso(now)}
        _announce_grant(session, now, view, grant, "grant.revoked", creator_data=stop)
        return grant
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class UsageRecorded:
    """A stored usage event; `violation` when the grant was not active."""

    event: UsageEvent
    replayed: bool = False


async def record_usage(
    desk: Desk, *, creator_id: str, grant_id: str, usage: UsageIn, idempotency: Idempotency | None = None
) -> UsageRecorded:
    """Stores a creator's usage report; outside an active grant it is a violation raised to the agency."""
    actor = Actor(ActorKind.creator, creator_id, ChannelKind.api)
    now = desk.clock.now()
    async with _transition(desk, actor, "usage.record", "grant", grant_id) as session:
        replay = await _idempotent_replay(session, creator_id, idempotency)
        if replay is not None:
            event = await session.get(UsageEvent, replay.resource_id)
            assert event is not None
            return UsageRecorded(event, replayed=True)
        grant = await session.get(Grant, grant_id)
        if grant is None or grant.creator_id != creator_id:
            raise NotFound(f"no grant {grant_id}")
        occurred = usage.occurred_at or now
        if occurred > now + CLOCK_SKEW:
            raise InvalidInput([FieldError("occurred_at", "must not be in the future")])
        status = grant_status_at(grant, occurred)
        violation = status is not GrantStatus.active
        event = UsageEvent(
            id=new_id("use"),
            grant_id=grant.id,
            creator_id=creator_id,
            artist_id=grant.artist_id,
            kind=usage.kind.value,
            count=usage.count,
            note=usage.note,
            violation=violation,
            grant_status=status.value,
            occurred_at=occurred,
            received_at=now,
        )
        session.add(event)
        await session.flush()
        if violation:
            await _audit(
                session,
                desk,
                actor,
                "usage.violation",
                "grant",
                grant.id,
                {
                    "usage_id": event.id,
                    "grant_status": status.value,
                    "kind": usage.kind.value,
                    "count": usage.count,
                },
            )
            view = await _view(session, grant.request_id)
            _tell_agency(
                session,
                now,
                view.agency,
                "board_update",
                request_id=grant.request_id,
                grant_id=grant.id,
                payload={
                    "event": "usage.violation",
                    "usage_id": event.id,
                    "kind": usage.kind.value,
                    "count": usage.count,
                    "grant_status": status.value,
                },
            )
        _remember(session, now, creator_id, idempotency, "usage", event.id, 409 if violation else 201)
        return UsageRecorded(event)
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------- sweeps (called by scheduler/)

_SYSTEM = Actor(ActorKind.system, "scheduler", ChannelKind.system)


async def lapse_overdue_requests(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Open requests past their deadline become lapsed; cards lose their buttons; parties are told."""
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        rows = list(
            (
                await session.execute(
                    select(Request)
                    .where(
                        Request.status.in_([s.value for s in OPEN_STATUSES]), Request.decision_due_at <= now
                    )
                    .order_by(Request.decision_due_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        for request in rows:
            request.status = RequestStatus.lapsed.value
            request.updated_at = now
            await session.flush()
            await _audit(session, desk, _SYSTEM, "request.lapsed", "request", request.id)
            _announce(session, now, await _view(session, request.id), "request.lapsed")
    return len(rows)


async def send_decision_reminders(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Reminds artists at each offset before the deadline, once each; the last reminder escalates."""
    now = desk.clock.now()
    offsets = desk.rules.decision_reminders
    sent = 0
    async with desk.db.transaction() as session:
        # Latest reminder first: a request that slept through several gets only the one still meaningful.
        for index in reversed(range(len(offsets))):
            rows = list(
                (
                    await session.execute(
                        select(Request)
                        .where(
                            Request.status.in_([s.value for s in OPEN_STATUSES]),
                            Request.reminders_sent <= index,
                            Request.decision_due_at > now,
                            Request.decision_due_at <= now + offsets[index],
                        )
                        .order_by(Request.decision_due_at)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            for request in rows:
                request.reminders_sent = index + 1
                view = await _view(session, request.id)
                last = index == len(offsets) - 1
                payload = {"due_at": utc_iso(request.decision_due_at), "index": index, "escalation": last}
                _tell_artist(
                    session,
                    now,
                    view.artist,
                    "decision_reminder",
                    request_id=request.id,
                    payload=payload,
                    dedupe_key=f"decision_reminder:{request.id}:{index}:artist",
                )
                if last:
                    _tell_agency(
                        session,
                        now,
                        view.agency,
                        "board_update",
                        request_id=request.id,
                        payload={"event": "reminder.escalation"} | payload,
                        dedupe_key=f"decision_reminder:{request.id}:{index}:agency",
                    )
                await _audit(session, desk, _SYSTEM, "reminder.decision", "request", request.id, payload)
                sent += 1
    return sent


async def activate_due_grants(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Scheduled grants whose window has begun become active; the creator and agency are told."""
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        rows = list(
            (
                await session.execute(
                    select(Grant)
                    .where(Grant.status == GrantStatus.scheduled.value, Grant.starts_at <= now)
                    .order_by(Grant.starts_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        for grant in rows:
            grant.status = GrantStatus.active.value
            grant.updated_at = now
            await _audit(session, desk, _SYSTEM, "grant.activated", "grant", grant.id)
            _announce_grant(session, now, await _view(session, grant.request_id), grant, "grant.active")
    return len(rows)


async def expire_due_grants(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Grants whose window has ended become expired; artist, agency and creator are told."""
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        rows = list(
            (
                await session.execute(
                    select(Grant)
                    .where(
                        Grant.status.in_([GrantStatus.scheduled.value, GrantStatus.active.value]),
                        Grant.ends_at <= now,
                    )
                    .order_by(Grant.ends_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        for grant in rows:
            grant.status = GrantStatus.expired.value
            grant.updated_at = now
            await _audit(session, desk, _SYSTEM, "grant.expired", "grant", grant.id)
            view = await _view(session, grant.request_id)
            _announce_grant(session, now, view, grant, "grant.expired", artist_kind="grant_expired")
    return len(rows)


async def send_grant_reminders(desk: Desk, *, limit: int = SWEEP_BATCH) -> int:
    """Reminds artist, agency and creator before a grant ends, at each configured offset, once each."""
    now = desk.clock.now()
    offsets = desk.rules.grant_reminders
    sent = 0
    async with desk.db.transaction() as session:
        for index in reversed(range(len(offsets))):
            rows = list(
                (
                    await session.execute(
                        select(Grant)
                        .where(
                            Grant.status.in_([GrantStatus.scheduled.value, GrantStatus.active.value]),
                            Grant.reminders_sent <= index,
                            Grant.ends_at > now,
                            Grant.ends_at <= now + offsets[index],
                        )
                        .order_by(Grant.ends_at)
                        .limit(limit)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            for grant in rows:
                grant.reminders_sent = index + 1
                view = await _view(session, grant.request_id)
                payload = {"ends_at": utc_iso(grant.ends_at), "index": index}
                key = f"grant_reminder:{grant.id}:{index}"
                _tell_artist(
                    session,
                    now,
                    view.artist,
                    "grant_reminder",
                    request_id=grant.request_id,
                    grant_id=grant.id,
                    payload=payload,
                    dedupe_key=f"{key}:artist",
                )
                _tell_agency(
                    session,
                    now,
                    view.agency,
                    "board_update",
                    request_id=grant.request_id,
                    grant_id=grant.id,
                    payload={"event": "reminder.grant_expiry"} | payload,
                    dedupe_key=f"{key}:agency",
                )
                _tell_creator(
                    session,
                    now,
                    view.creator,
                    "grant.expiring",
                    request_id=grant.request_id,
                    grant_id=grant.id,
                    data=payload,
                    dedupe_key=key,
                )
                await _audit(session, desk, _SYSTEM, "reminder.grant_expiry", "grant", grant.id, payload)
                sent += 1
    return sent


async def run_sweeps(desk: Desk) -> dict[str, int]:
    """One pass of every sweep, in the order that keeps reminders meaningful."""
    done = {
        "lapsed": await lapse_overdue_requests(desk),
        "decision_reminders": await send_decision_reminders(desk),
        "activated": await activate_due_grants(desk),
        "expired": await expire_due_grants(desk),
        "grant_reminders": await send_grant_reminders(desk),
    }
    if any(done.values()):
        desk.committed()
    return done


async def remember_card(
    desk: Desk, *, request_id: str, channel: ChannelKind, recipient_id: str, chat_id: str, message_id: str
) -> None:
    """Stores where a request's card or board message was posted, so later events edit it in place."""
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        existing = await session.get(CardRef, (request_id, channel.value, recipient_id))
        if existing is None:
            session.add(
                CardRef(
                    request_id=request_id,
                    channel=channel.value,
                    recipient_id=recipient_id,
                    chat_id=chat_id,
                    message_id=message_id,
                    created_at=now,
                )
            )
        else:
            await session.execute(
                update(CardRef)
                .where(
                    CardRef.request_id == request_id,
                    CardRef.channel == channel.value,
                    CardRef.recipient_id == recipient_id,
                )
                .values(chat_id=chat_id, message_id=message_id)
            )


# ---------------------------------------------------------------- reports


async def queue_report(
    desk: Desk, *, recipient_kind: ActorKind, recipient_id: str, period: str | None = None
) -> bool:
    """Queues a usage report for an artist (Telegram) or agency (Slack).

    With `period` (the weekly cron's week key) it is queued at most once per recipient and
    period, whatever the number of instances or restarts; without, it is sent now on request.
    Returns False when the recipient has no channel to receive it (or it was already queued).
    """
    try:
        queued = await _queue_report(desk, recipient_kind, recipient_id, period)
    except IntegrityError:
        return False  # another instance queued this period's report at the same moment
    if queued:
        desk.committed()
    return queued


async def _queue_report(desk: Desk, recipient_kind: ActorKind, recipient_id: str, period: str | None) -> bool:
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        if recipient_kind is ActorKind.artist:
            artist = await session.get(Artist, recipient_id)
            if artist is None:
                raise NotFound(f"no artist {recipient_id}")
            channel, reachable = ChannelKind.telegram, artist.telegram_chat_id is not None
        elif recipient_kind is ActorKind.agency:
            agency = await session.get(Agency, recipient_id)
            if agency is None:
                raise NotFound(f"no agency {recipient_id}")
            channel, reachable = ChannelKind.slack, bool(agency.slack_channel_id)
        else:
            raise NotAllowed("reports go to artists and agencies")
        if not reachable:
            return False
        if period is not None:
            if await session.get(ReportRun, (recipient_kind.value, recipient_id, period)) is not None:
                return False
            session.add(
                ReportRun(
                    recipient_kind=recipient_kind.value,
                    recipient_id=recipient_id,
                    period=period,
                    created_at=now,
                )
            )
        _queue(
            session,
            now,
            channel=channel,
            recipient_kind=recipient_kind,
            recipient_id=recipient_id,
            kind="report",
            payload={"period": period, "generated_at": utc_iso(now)},
            dedupe_key=f"report:{recipient_kind.value}:{recipient_id}:{period}" if period else None,
        )
    return True


def last_fire_before(
    cron: str, timezone: str, now: datetime, lookback: timedelta = timedelta(days=8)
) -> datetime | None:
    """The latest moment at or before `now` when `cron` fired in `timezone` (within `lookback`)."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))
    moment: datetime | None = trigger.get_next_fire_time(None, now - lookback)
    last: datetime | None = None
    for _ in range(20_000):  # a weekly cron takes one or two steps; this bounds a per-minute one
        if moment is None or moment > now:
            break
        last = moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    return last.astimezone(UTC) if last else None


async def queue_due_reports(desk: Desk, *, cron: str, limit: int = SWEEP_BATCH) -> int:
    """Queues each recipient's report for the latest cron moment in their own time zone, once.

    Run on every sweep, so a report that fell due while the service was down goes out when it
    returns; the report_runs row makes it once per recipient and period on any number of instances.
    """
    now = desk.clock.now()
    due: list[tuple[ActorKind, str, str]] = []
    async with desk.db.transaction() as session:
        for kind, table, reachable in (
            (ActorKind.artist, Artist, Artist.telegram_chat_id.is_not(None)),
            (ActorKind.agency, Agency, Agency.slack_channel_id.is_not(None)),
        ):
            zones = (await session.execute(select(table.timezone).where(reachable).distinct())).scalars()
            for zone in list(zones):
                fired = last_fire_before(cron, zone, now)
                if fired is None:
                    continue
                period = f"week:{utc_iso(fired)}"
                already = select(ReportRun.recipient_id).where(
                    ReportRun.recipient_kind == kind.value, ReportRun.period == period
                )
                ids = (
                    await session.execute(
                        select(table.id)
                        .where(
                            reachable,
                            table.timezone == zone,
                            table.created_at <= fired,
                            table.id.not_in(already),
                        )
                        .limit(limit)
                    )
                ).scalars()
                due += [(kind, rid, period) for rid in ids]
    queued = 0
    for kind, rid, period in due:
        queued += await queue_report(desk, recipient_kind=kind, recipient_id=rid, period=period)
    return queued


# ---------------------------------------------------------------- Slack board (appended for issue 4)

SLACK_REPLAY_MEMORY = timedelta(minutes=10)


async def check_decision(desk: Desk, *, request_id: str, actor: Actor, outcome: Outcome) -> RequestView:
    """Checks, without deciding, that `actor` may make this decision now (e.g. before a deny form opens).

    The same checks as `decide` in the same order; a refusal is audited like a refused decision.
    """
    async with _transition(desk, actor, f"decision.{outcome.value}", "request", request_id) as session:
        view = await _view(session, request_id)
        status = RequestStatus(view.request.status)
        if status not in OPEN_STATUSES:
            if status in {RequestStatus.approved, RequestStatus.denied}:
                raise AlreadyDecided(f"this request was already {status.value}", **_who_decided(view))
            raise NotOpen(f"this request is {status.value}", status=status.value)
        _check_may_decide(view, actor, outcome, ai_training_confirmed=False)
        if actor.kind.value in {d.actor_kind for d in view.decisions}:
            raise AlreadyDecided("you already approved; waiting for the co-signature", **_who_decided(view))
        if desk.clock.now() >= view.request.decision_due_at:
            raise NotOpen("the decision deadline has passed", status=RequestStatus.lapsed.value)
        return view
    raise AssertionError("unreachable")  # pragma: no cover


async def remember_slack_request(desk: Desk, *, signature: str, signed_at: datetime) -> bool:
    """True the first time a signed Slack request is seen; False for a replay of one already handled.

    Rows older than the replay window are dropped on the way: Slack's signature check refuses a
    timestamp more than 5 minutes from now, so a request signed 10 minutes before this one can
    never come back.
    """
    # Imported here so that this appended section leaves the file's header as it is.
    from sqlalchemy import delete

    from storage.tables import SlackSeenRequest

    try:
        async with desk.db.transaction() as session:
            await session.execute(
                delete(SlackSeenRequest).where(SlackSeenRequest.signed_at < signed_at - SLACK_REPLAY_MEMORY)
            )
            session.add(SlackSeenRequest(signature=signature, signed_at=signed_at))
    except IntegrityError:
        return False  # this signature was stored before, by this instance or another one
    return True


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
    """Audits a refusal that came before any transition could run: a forged button, a bad
    signature, a stranger's `/likeness` on an agency's board."""
    async with desk.db.transaction() as session:
        await _audit(
            session,
            desk,
            actor,
            f"{action}.refused",
            subject_kind,
            subject_id[:64],
            {"code": code, "message": reason},
        )
