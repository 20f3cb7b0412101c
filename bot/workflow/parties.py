"""The parties and how they arrive: agencies, artists and creators registered, Telegram invites
made and redeemed, and each person's language."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import (
    OPEN_STATUSES,
    Actor,
    ActorKind,
    ChannelKind,
    FieldError,
    Language,
    Policy,
    RedLines,
)
from bot.workflow.desk import Desk, audit, hash_secret, new_id, tell_artist, transition
from bot.workflow.errors import InvalidInput, InviteInvalid, NotAllowed, NotFound
from storage.tables import Agency, Artist, Creator, Invite, Request

INVITE_LIFETIME = timedelta(days=7)


def operator(by: str) -> Actor:
    """The actor an operator's command acts as, named by who ran it."""
    return Actor(ActorKind.admin, by or "admin", ChannelKind.cli)


def check_policy_has_agency(policy: str, agency_id: str | None) -> None:
    """A policy that shares the decision (any but artist_only) needs an agency to share it with."""
    if policy != Policy.artist_only.value and agency_id is None:
        raise InvalidInput([FieldError("policy", f"{policy} needs an agency")])


async def _register(
    desk: Desk,
    actor: Actor | None,
    kind: str,
    row: Agency | Artist | Creator,
    data: dict[str, Any],
    check: Callable[[AsyncSession], Awaitable[None]] | None = None,
) -> None:
    """Adds a new party's row with its `<kind>.added` audit event in one transaction, acting as
    `actor` (an operator by default), once `check` has found nothing wrong."""
    actor = actor or operator("admin")
    async with transition(desk, actor, f"{kind}.add", kind, row.id) as session:
        if check is not None:
            await check(session)
        session.add(row)
        await audit(session, desk, actor, f"{kind}.added", kind, row.id, data)


async def add_agency(
    desk: Desk,
    *,
    name: str,
    slack_channel_id: str | None = None,
    slack_member_ids: list[str] | None = None,
    timezone: str = "UTC",
    language: Language = Language.en,
    actor: Actor | None = None,
) -> Agency:
    """Registers an agency with its Slack channel, the members allowed to act and its language."""
    agency = Agency(
        id=new_id("agy"),
        name=name,
        slack_channel_id=slack_channel_id,
        slack_member_ids=sorted(set(slack_member_ids or [])),
        timezone=timezone,
        language=language.value,
        created_at=desk.clock.now(),
    )
    await _register(desk, actor, "agency", agency, {"name": name})
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
    require_preview: bool = False,
) -> Artist:
    """Registers an artist with their decision policy, language, time zone and red lines."""

    async def check(session: AsyncSession) -> None:
        if agency_id is not None and await session.get(Agency, agency_id) is None:
            raise NotFound(f"no agency {agency_id}")
        check_policy_has_agency(policy.value, agency_id)

    artist = Artist(
        id=new_id("art"),
        name=name,
        agency_id=agency_id,
        policy=policy.value,
        language=language.value,
        timezone=timezone,
        red_lines=(red_lines or RedLines()).model_dump(mode="json"),
        require_preview=require_preview,
        created_at=desk.clock.now(),
    )
    await _register(desk, actor, "artist", artist, {"name": name, "policy": policy.value}, check)
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
    api_key = "lk_" + secrets.token_urlsafe(32)
    webhook_secret = "whsec_" + secrets.token_urlsafe(32) if webhook_url else None
    creator = Creator(
        id=new_id("crt"),
        name=name,
        api_key_hash=hash_secret(api_key),
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        language="en",
        created_at=desk.clock.now(),
    )
    await _register(desk, actor, "creator", creator, {"name": name})
    return NewCreator(creator, api_key, webhook_secret)


async def create_invite(
    desk: Desk, *, subject_kind: ActorKind, subject_id: str, actor: Actor | None = None
) -> str:
    """Makes a one-time Telegram link token for an artist or creator; valid for 7 days."""
    actor = actor or operator("admin")
    now = desk.clock.now()
    token = secrets.token_urlsafe(24)
    async with transition(desk, actor, "invite.create", subject_kind.value, subject_id) as session:
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
        await audit(session, desk, actor, "invite.created", subject_kind.value, subject_id)
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
    async with transition(desk, actor, "invite.redeem", "invite", hash_secret(token)[:16]) as session:
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
                tell_artist(
                    session, now, artist, "card", request_id=request.id, dedupe_key=f"card:{request.id}"
                )
            linked = Linked(ActorKind.artist, artist.id, artist.name, Language(artist.language))
        else:
            creator = await session.get(Creator, invite.subject_id)
            assert creator is not None
            creator.telegram_user_id = telegram_user_id
            creator.telegram_chat_id = chat_id
            linked = Linked(ActorKind.creator, creator.id, creator.name, Language(creator.language))
        await audit(
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
    async with transition(desk, actor, "language.set", "telegram_user", str(telegram_user_id)) as session:
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
        await audit(
            session,
            desk,
            Actor(ActorKind(kind), subject.id, ChannelKind.telegram),
            "language.set",
            kind,
            subject.id,
            {"language": language.value},
        )
