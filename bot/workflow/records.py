"""The records operators keep: agencies, artists and creators listed, shown, changed and
deactivated, each change audited with who made it and told to the parties it concerns.

- An artist whose record changes is told in Telegram (`record_update`), once their chat is linked.
- A creator whose name or webhook URL changes is told by a signed webhook (`creator.updated`).
- A deactivated artist accepts no new requests (`Deactivated`, 409 on the API); their grants stand.
- A deactivated creator's API keys are refused and its webhooks stop.

The inputs arrive checked (clean names, Slack ids, time zones, webhook addresses) by the caller;
the rules that join records (a shared policy needs an agency, an agency must exist) live here.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypedDict, TypeVar, Unpack

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import (
    ActorKind,
    ChannelKind,
    Language,
    Policy,
    RedLines,
    utc_iso,
)
from bot.workflow.desk import (
    Desk,
    Recipient,
    audit,
    queue_notice,
    tell_artist,
    tell_board_of_open_requests,
    transition,
)
from bot.workflow.errors import NotFound
from bot.workflow.parties import check_policy_has_agency, operator
from bot.workflow.slack_links import slack_status
from storage.tables import Agency, Artist, Creator, CreatorKey, Grant, Request

_Deactivated = TypeVar("_Deactivated", Artist, Creator)

MEMBER_NOTICE = "agency_member"  # the notice kind that tells a board its members changed


def _when(value: datetime | None) -> str | None:
    return utc_iso(value) if value is not None else None


# ---------------------------------------------------------------- how records read


def agency_record(agency: Agency, artists: int = 0) -> dict[str, Any]:
    """An agency as the CLI shows it."""
    return {
        "id": agency.id,
        "name": agency.name,
        "slack_channel_id": agency.slack_channel_id,
        "slack_member_ids": list(agency.slack_member_ids or []),
        "timezone": agency.timezone,
        "language": agency.language,
        "slack_team_id": agency.slack_team_id,
        "slack_status": slack_status(agency),
        "slack_disconnected_at": _when(agency.slack_disconnected_at),
        "artists": artists,
        "created_at": _when(agency.created_at),
    }


def artist_record(artist: Artist) -> dict[str, Any]:
    """An artist as the CLI shows it (never the Telegram ids, only whether the chat is linked)."""
    return artist.columns("id", "name", "agency_id", "policy", "language", "timezone") | {
        "red_lines": RedLines.model_validate(artist.red_lines or {}).model_dump(mode="json"),
        "require_preview": bool(artist.require_preview),
        "telegram_linked": artist.telegram_chat_id is not None,
        "paused": artist.paused_at is not None,
        "deactivated_at": _when(artist.deactivated_at),
        "created_at": _when(artist.created_at),
    }


def creator_record(creator: Creator, keys: int = 0) -> dict[str, Any]:
    """A creator as the CLI shows it (never a key or a secret)."""
    return {
        "id": creator.id,
        "name": creator.name,
        "webhook_url": creator.webhook_url,
        "telegram_linked": creator.telegram_chat_id is not None,
        "live_keys": keys,
        "deactivated_at": _when(creator.deactivated_at),
        "created_at": _when(creator.created_at),
    }


async def _agency(session: AsyncSession, agency_id: str, *, lock: bool = False) -> Agency:
    agency = await session.get(Agency, agency_id, with_for_update=lock)
    if agency is None:
        raise NotFound(f"no agency {agency_id}")
    return agency


async def _artist(session: AsyncSession, artist_id: str, *, lock: bool = False) -> Artist:
    artist = await session.get(Artist, artist_id, with_for_update=lock)
    if artist is None:
        raise NotFound(f"no artist {artist_id}")
    return artist


async def _creator(session: AsyncSession, creator_id: str, *, lock: bool = False) -> Creator:
    creator = await session.get(Creator, creator_id, with_for_update=lock)
    if creator is None:
        raise NotFound(f"no creator {creator_id}")
    return creator


async def _live_keys(session: AsyncSession, creator_id: str) -> int:
    added = await session.scalar(
        select(func.count())
        .select_from(CreatorKey)
        .where(CreatorKey.creator_id == creator_id, CreatorKey.revoked_at.is_(None))
    )
    return 1 + int(added or 0)


# ---------------------------------------------------------------- agencies


async def list_agencies(desk: Desk) -> list[dict[str, Any]]:
    """Every agency, oldest first, with how many artists it has."""
    async with desk.db.read() as session:
        grouped = await session.execute(select(Artist.agency_id, func.count()).group_by(Artist.agency_id))
        counts: dict[str | None, int] = {agency_id: int(count) for agency_id, count in grouped.all()}
        agencies = (await session.execute(select(Agency).order_by(Agency.created_at, Agency.id))).scalars()
        return [agency_record(a, int(counts.get(a.id, 0))) for a in agencies]


async def show_agency(desk: Desk, agency_id: str) -> dict[str, Any]:
    """One agency with its artists' ids; NotFound when there is none."""
    async with desk.db.read() as session:
        agency = await _agency(session, agency_id)
        artists = list(
            (
                await session.execute(
                    select(Artist.id).where(Artist.agency_id == agency_id).order_by(Artist.created_at)
                )
            ).scalars()
        )
        return agency_record(agency, len(artists)) | {"artist_ids": artists}


class _Changes(TypedDict, total=False):
    """What an operator may change of an agency or an artist (None, or left out: unchanged)."""

    name: str | None
    language: Language | None
    timezone: str | None


class AgencyChanges(_Changes, total=False):
    """What `update_agency` may change besides."""

    slack_channel_id: str | None


class ArtistChanges(_Changes, total=False):
    """What `update_artist` may change besides."""

    agency_id: str | None
    policy: Policy | None
    red_lines: RedLines | None
    require_preview: bool | None


async def update_agency(
    desk: Desk, agency_id: str, *, by: str, **wanted: Unpack[AgencyChanges]
) -> dict[str, Any]:
    """Changes an agency's name, Slack channel, time zone or language; audited with the changes."""
    actor = operator(by)
    async with transition(desk, actor, "agency.update", "agency", agency_id) as session:
        agency = await _agency(session, agency_id, lock=True)
        changes = _apply(agency, _stored(wanted))
        if changes:
            await audit(session, desk, actor, "agency.updated", "agency", agency.id, {"changes": changes})
        return agency_record(agency) | {"changed": sorted(changes)}


async def change_agency_member(
    desk: Desk, agency_id: str, member_id: str, *, by: str, add: bool
) -> dict[str, Any]:
    """Adds (or removes) a Slack member allowed to act for the agency; audited when it changes, and
    said on the agency's board channel (`agency_member` notice), where the member and their
    colleagues read it."""
    actor = operator(by)
    action = "agency.member_added" if add else "agency.member_removed"
    async with transition(desk, actor, action.replace("_", "."), "agency", agency_id) as session:
        agency = await _agency(session, agency_id, lock=True)
        members = set(agency.slack_member_ids or [])
        before = set(members)
        if add:
            members.add(member_id)
        else:
            if member_id not in members:
                raise NotFound(f"{member_id} is not a member of agency {agency_id}")
            members.discard(member_id)
        if members != before:
            agency.slack_member_ids = sorted(members)
            await audit(session, desk, actor, action, "agency", agency.id, {"member": member_id})
            if agency.slack_channel_id:
                queue_notice(
                    session,
                    desk.clock.now(),
                    Recipient(ChannelKind.slack, ActorKind.agency, agency.id),
                    MEMBER_NOTICE,
                    payload={"event": action, "member": member_id},
                )
        return agency_record(agency) | {"changed": members != before}


# ---------------------------------------------------------------- artists


async def list_artists(desk: Desk, *, agency_id: str | None = None) -> list[dict[str, Any]]:
    """Every artist (or an agency's), oldest first; NotFound for an unknown agency."""
    async with desk.db.read() as session:
        query = select(Artist).order_by(Artist.created_at, Artist.id)
        if agency_id is not None:
            await _agency(session, agency_id)
            query = query.where(Artist.agency_id == agency_id)
        return [artist_record(a) for a in (await session.execute(query)).scalars()]


async def show_artist(desk: Desk, artist_id: str) -> dict[str, Any]:
    """One artist with counts of their requests and grants; NotFound when there is none."""
    async with desk.db.read() as session:
        artist = await _artist(session, artist_id)
        requests = await session.scalar(
            select(func.count()).select_from(Request).where(Request.artist_id == artist_id)
        )
        grants = await session.scalar(
            select(func.count()).select_from(Grant).where(Grant.artist_id == artist_id)
        )
        return artist_record(artist) | {"requests": int(requests or 0), "grants": int(grants or 0)}


async def update_artist(
    desk: Desk, artist_id: str, *, by: str, **wanted: Unpack[ArtistChanges]
) -> dict[str, Any]:
    """Changes an artist's record; a decision made after it commits reads the new policy and red
    lines. The artist is told in Telegram what changed."""
    actor = operator(by)
    async with transition(desk, actor, "artist.update", "artist", artist_id) as session:
        artist = await _artist(session, artist_id, lock=True)
        agency_id = wanted.get("agency_id")
        if agency_id is not None:
            await _agency(session, agency_id)
        changes = _apply(artist, _stored(wanted))
        check_policy_has_agency(artist.policy, artist.agency_id)
        if changes:
            await audit(session, desk, actor, "artist.updated", "artist", artist.id, {"changes": changes})
            tell_artist(
                session, desk.clock.now(), artist, "record_update", payload={"changes": sorted(changes)}
            )
            if "policy" in changes:
                await tell_board_of_open_requests(
                    session, desk.clock.now(), artist, {"event": "artist.updated", "policy": artist.policy}
                )
        return artist_record(artist) | {"changed": sorted(changes)}


async def deactivate_artist(desk: Desk, artist_id: str, *, by: str) -> dict[str, Any]:
    """No new requests for the artist from now on (409 `deactivated`); their grants are untouched."""
    return await _deactivate(desk, "artist", artist_id, by=by, load=_artist, record=artist_record)


# ---------------------------------------------------------------- creators


async def list_creators(desk: Desk) -> list[dict[str, Any]]:
    """Every creator, oldest first."""
    async with desk.db.read() as session:
        creators = list(
            (await session.execute(select(Creator).order_by(Creator.created_at, Creator.id))).scalars()
        )
        return [creator_record(c, await _live_keys(session, c.id)) for c in creators]


async def show_creator(desk: Desk, creator_id: str) -> dict[str, Any]:
    """One creator with how many requests it filed; NotFound when there is none."""
    async with desk.db.read() as session:
        creator = await _creator(session, creator_id)
        requests = await session.scalar(
            select(func.count()).select_from(Request).where(Request.creator_id == creator_id)
        )
        return creator_record(creator, await _live_keys(session, creator_id)) | {
            "requests": int(requests or 0)
        }


async def update_creator(
    desk: Desk, creator_id: str, *, by: str, name: str | None = None, webhook_url: str | None = None
) -> dict[str, Any]:
    """Changes a creator's name or webhook URL (told to the creator by a signed webhook). Returns
    the record, with `webhook_secret` when a first webhook URL needed one."""
    actor = operator(by)
    secret: str | None = None
    async with transition(desk, actor, "creator.update", "creator", creator_id) as session:
        creator = await _creator(session, creator_id, lock=True)
        changes = _apply(creator, {"name": name, "webhook_url": webhook_url})
        if "webhook_url" in changes and not creator.webhook_secret:
            secret = creator.webhook_secret = "whsec_" + secrets.token_urlsafe(32)
        if changes:
            await audit(session, desk, actor, "creator.updated", "creator", creator.id, {"changes": changes})
            if creator.webhook_url and creator.deactivated_at is None:
                queue_notice(
                    session,
                    desk.clock.now(),
                    Recipient(ChannelKind.webhook, ActorKind.creator, creator.id),
                    "status",
                    payload={"event": "creator.updated", "changes": sorted(changes)},
                )
        record = creator_record(creator, await _live_keys(session, creator.id)) | {"changed": sorted(changes)}
    return record | ({"webhook_secret": secret} if secret else {})


async def deactivate_creator(desk: Desk, creator_id: str, *, by: str) -> dict[str, Any]:
    """Refuses the creator's API keys from the next call and stops its webhooks (pending ones too)."""
    return await _deactivate(desk, "creator", creator_id, by=by, load=_creator, record=creator_record)


async def _deactivate(
    desk: Desk,
    kind: str,
    record_id: str,
    *,
    by: str,
    load: Callable[..., Awaitable[_Deactivated]],
    record: Callable[[_Deactivated], dict[str, Any]],
) -> dict[str, Any]:
    """Marks an artist or a creator deactivated from now (audited, once); its record as shown."""
    actor = operator(by)
    async with transition(desk, actor, f"{kind}.deactivate", kind, record_id) as session:
        row = await load(session, record_id, lock=True)
        if row.deactivated_at is None:
            row.deactivated_at = desk.clock.now()
            await audit(session, desk, actor, f"{kind}.deactivated", kind, row.id)
        return record(row)


# ---------------------------------------------------------------- changes


def _stored(wanted: Mapping[str, Any]) -> dict[str, Any]:
    """The wanted values as their columns keep them: enums by value, red lines as JSON."""
    stored: dict[str, Any] = {}
    for field, value in wanted.items():
        if isinstance(value, Enum):
            value = value.value
        elif isinstance(value, RedLines):
            value = value.model_dump(mode="json")
        stored[field] = value
    return stored


def _apply(row: Any, wanted: dict[str, Any]) -> dict[str, Any]:
    """Sets each wanted field that is given and differs; returns {field: new value} of the changes."""
    changes: dict[str, Any] = {}
    for field, value in wanted.items():
        if value is not None and getattr(row, field) != value:
            setattr(row, field, value)
            changes[field] = value
    return changes
