"""Pause everything: an artist (or their agency where the policy lets it decide, or an operator)
stops every scheduled and active grant of the artist at once, and resumes them later.

Each is one transaction that locks the artist's row first: a decision or a usage report of the
same artist locks it too before it reads the pause, so on PostgreSQL one order wins and nothing
is half-done. Only the kind that paused resumes (the artist their own pause, the agency its own);
operators may resume any pause. A resumed grant takes the status its window implies now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clean_text import hidden_character
from bot.models import Actor, ActorKind, FieldError, GrantStatus, Policy, utc_iso
from bot.workflow.desk import (
    Desk,
    audit,
    load_view,
    tell_artist,
    tell_board_of_open_requests,
    tell_grant_parties,
    transition,
)
from bot.workflow.errors import InvalidInput, NotAllowed, NotFound, NotOpen
from storage.tables import Agency, Artist, Grant

MAX_PAUSE_REASON = 1000
# The policies under which the agency decides for the artist, and so may also pause for them.
_AGENCY_DECIDES = {Policy.agency_may_decide, Policy.both_required}


@dataclass(frozen=True)
class PauseChange:
    """What a pause or resume did: the artist, who did it, and each grant with its status after."""

    artist_id: str
    artist_name: str
    at: datetime
    by_kind: str
    reason: str | None
    grants: dict[str, str]


async def _locked_artist(session: AsyncSession, artist_id: str) -> Artist:
    """The artist's row, locked for this transaction: what orders pauses, decisions and uses."""
    artist = await session.get(Artist, artist_id, with_for_update=True, populate_existing=True)
    if artist is None:
        raise NotFound(f"no artist {artist_id}")
    return artist


async def _check_may_pause(session: AsyncSession, artist: Artist, actor: Actor) -> None:
    """Raises NotAllowed unless the actor is the artist, their deciding agency, or an operator."""
    if actor.kind is ActorKind.admin:
        return
    if actor.kind is ActorKind.artist:
        if actor.id != artist.id:
            raise NotAllowed("only the artist may pause their own consents")
        return
    if actor.kind is ActorKind.agency:
        agency = await session.get(Agency, artist.agency_id) if artist.agency_id else None
        if agency is None or agency.id != actor.id:
            raise NotAllowed("this artist is not on your agency's roster")
        if actor.member is not None and actor.member not in agency.slack_member_ids:
            raise NotAllowed("you are not one of the agency members allowed to act")
        if Policy(artist.policy) not in _AGENCY_DECIDES:
            raise NotAllowed("this artist decides alone (policy artist_only): only they can pause")
        return
    raise NotAllowed("you may not pause this artist's consents")


def _clean_reason(reason: str | None) -> str | None:
    text = (reason or "").strip()
    problem = hidden_character(text)
    if problem is not None:
        # Read by creators and the agency: a reason may not hide control or text-direction characters.
        raise InvalidInput([FieldError("reason", f"holds {problem}; type it again as plain text")])
    return text[:MAX_PAUSE_REASON] or None


async def _tell_about_grant(
    session: AsyncSession, now: datetime, grant: Grant, event: str, data: dict[str, Any]
) -> None:
    """Tells the grant's creator (webhook, Telegram if linked) and the agency's thread of its request.

    No dedupe key: a grant may be paused and resumed more than once, each a notice of its own.
    """
    view = await load_view(session, grant.request_id)
    tell_grant_parties(
        session,
        now,
        view,
        grant,
        creator=(event, {"status": grant.status} | data),
        agency={"event": event, "status": grant.status} | data,
    )


def _tell_artist_unless_actor(
    session: AsyncSession, now: datetime, artist: Artist, actor: Actor, payload: dict[str, Any]
) -> None:
    """The artist hears of a pause or resume made by someone else (their own tap is answered in place)."""
    if actor.kind is not ActorKind.artist:
        tell_artist(session, now, artist, "pause_update", payload=payload)


def check_may_ask_pause(artist: Artist) -> None:
    """`NotOpen` (status `paused`, with who paused and when) when every consent is paused already:
    the rule before a pause is offered, and again inside the pause's transaction."""
    if artist.paused_at is not None:
        raise NotOpen(
            "every consent of this artist is already paused",
            status="paused",
            paused_by=artist.paused_by_kind,
            paused_at=utc_iso(artist.paused_at),
        )


def check_may_ask_resume(artist: Artist) -> None:
    """`NotOpen` (status `not_paused`) when nothing is paused: there is nothing to resume."""
    if artist.paused_at is None:
        raise NotOpen("this artist's consents are not paused", status="not_paused")


async def pause_artist(desk: Desk, *, artist_id: str, actor: Actor, reason: str | None = None) -> PauseChange:
    """Pauses every scheduled and active grant of the artist in one transaction; tells every party."""
    now = desk.clock.now()
    reason = _clean_reason(reason)
    async with transition(desk, actor, "artist.pause", "artist", artist_id) as session:
        artist = await _locked_artist(session, artist_id)
        await _check_may_pause(session, artist, actor)
        check_may_ask_pause(artist)
        artist.paused_at = now
        artist.paused_by_kind = actor.kind.value
        artist.paused_by_id = actor.id
        artist.pause_reason = reason
        live = [GrantStatus.scheduled.value, GrantStatus.active.value]
        rows = await session.execute(
            select(Grant)
            .where(Grant.artist_id == artist.id, Grant.status.in_(live))
            .order_by(Grant.created_at, Grant.id)
            .with_for_update()
        )
        paused: dict[str, str] = {}
        data = {"paused_at": utc_iso(now), "paused_by": actor.kind.value, "reason": reason, "stop_use": True}
        for grant in rows.scalars():
            if now >= grant.ends_at:
                continue  # its window has ended: the expiry sweep ends it, as for any other grant
            grant.status = GrantStatus.paused.value
            grant.paused_at = now
            grant.updated_at = now
            paused[grant.id] = grant.status
            await audit(session, desk, actor, "grant.paused", "grant", grant.id, {"reason": reason})
            await _tell_about_grant(session, now, grant, "grant.paused", data)
        await audit(
            session,
            desk,
            actor,
            "artist.paused",
            "artist",
            artist.id,
            {"reason": reason, "grants": sorted(paused)},
        )
        _tell_artist_unless_actor(
            session, now, artist, actor, {"event": "artist.paused", "by": actor.kind.value} | data
        )
        # Open requests' posts lose their Approve on behalf while paused.
        await tell_board_of_open_requests(session, now, artist, {"event": "artist.paused"} | data)
        return PauseChange(artist.id, artist.name, now, actor.kind.value, reason, paused)
    raise AssertionError("unreachable")  # pragma: no cover


def _status_by_window(grant: Grant, now: datetime) -> GrantStatus:
    """What a resumed grant becomes: its window's status now (a window that ended while paused: expired)."""
    if now < grant.starts_at:
        return GrantStatus.scheduled
    if now >= grant.ends_at:
        return GrantStatus.expired
    return GrantStatus.active


async def resume_artist(desk: Desk, *, artist_id: str, actor: Actor) -> PauseChange:
    """Returns each paused grant of the artist to what its window implies; tells the same parties."""
    now = desk.clock.now()
    async with transition(desk, actor, "artist.resume", "artist", artist_id) as session:
        artist = await _locked_artist(session, artist_id)
        await _check_may_pause(session, artist, actor)
        check_may_ask_resume(artist)
        by = artist.paused_by_kind
        if actor.kind is not ActorKind.admin and (by != actor.kind.value or artist.paused_by_id != actor.id):
            who = "the artist" if by == ActorKind.artist.value else "the agency" if by else "an operator"
            raise NotAllowed(f"only {who} can resume this pause (or an operator)", paused_by=by)
        reason = artist.pause_reason
        artist.paused_at = artist.paused_by_kind = artist.paused_by_id = artist.pause_reason = None
        rows = await session.execute(
            select(Grant)
            .where(Grant.artist_id == artist.id, Grant.status == GrantStatus.paused.value)
            .order_by(Grant.created_at, Grant.id)
            .with_for_update()
        )
        resumed: dict[str, str] = {}
        data = {"resumed_at": utc_iso(now), "resumed_by": actor.kind.value}
        for grant in rows.scalars():
            grant.status = _status_by_window(grant, now).value
            grant.paused_at = None
            grant.updated_at = now
            resumed[grant.id] = grant.status
            await audit(session, desk, actor, "grant.resumed", "grant", grant.id, {"status": grant.status})
            await _tell_about_grant(session, now, grant, "grant.resumed", data)
        await audit(session, desk, actor, "artist.resumed", "artist", artist.id, {"grants": resumed})
        _tell_artist_unless_actor(
            session, now, artist, actor, {"event": "artist.resumed", "by": actor.kind.value} | data
        )
        await tell_board_of_open_requests(session, now, artist, {"event": "artist.resumed"} | data)
        return PauseChange(artist.id, artist.name, now, actor.kind.value, reason, resumed)
    raise AssertionError("unreachable")  # pragma: no cover
