"""What the channel edges read: the views and rows a handler or an API route shows, one read each.

Handlers and routes never open a session themselves; they ask here, and the names of the stored
rows they receive are re-exported so that no edge imports `storage/`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.models import OPEN_STATUSES, ActorKind, GrantStatus, RequestStatus
from bot.workflow.decisions import seen_terms_hash
from bot.workflow.desk import Desk
from bot.workflow.errors import NotFound
from bot.workflow.grants import grant_status_at
from storage.point_reads import loaded
from storage.queries import (
    ARTIST_BY_TELEGRAM_USER,
    RequestView,
    agency_by_slack_channel,
    agency_requests,
    artist_grants,
    artist_requests,
    list_creator_requests,
    load_request_view,
)
from storage.tables import Agency, Artist, Creator, Decision, Deletion, Grant, Request, UsageEvent

__all__ = [
    "Agency",
    "Artist",
    "Creator",
    "Decision",
    "Deletion",
    "Grant",
    "GrantSummary",
    "RequestView",
    "UsageEvent",
    "agency_of_slack_channel",
    "agency_open_requests",
    "agency_request",
    "artist_live_grants",
    "artist_of_telegram_user",
    "artist_open_requests",
    "artist_row",
    "creator_request_ids",
    "deletion_of",
    "grant_of",
    "grant_summary",
    "request_view",
    "terms_seen",
    "waits_for_artist",
]


@dataclass(frozen=True)
class GrantSummary:
    """A grant with what a line about it shows: the project's title and the creator's name."""

    grant: Grant
    title: str
    creator_name: str
    ai_training: bool


def waits_for_artist(view: RequestView) -> bool:
    """Whether the request still waits for its artist's decision."""
    artist_decided = any(d.actor_kind == ActorKind.artist.value for d in view.decisions)
    return RequestStatus(view.request.status) in OPEN_STATUSES and not artist_decided


async def request_view(desk: Desk, request_id: str) -> RequestView | None:
    """The request with its decisions, grant, artist, agency and creator; None when there is none."""
    async with desk.db.read() as session:
        return await load_request_view(session, request_id)


async def artist_row(desk: Desk, artist_id: str) -> Artist | None:
    """The artist's row; None when there is no such artist."""
    async with desk.db.read() as session:
        return await session.get(Artist, artist_id)


async def artist_of_telegram_user(desk: Desk, telegram_user_id: int) -> Artist | None:
    """The artist linked to this Telegram user, if any."""
    rows = await desk.db.point_read(ARTIST_BY_TELEGRAM_USER, {"user_id": telegram_user_id})
    return loaded(Artist, rows[0]) if rows else None


async def artist_open_requests(desk: Desk, artist_id: str) -> list[RequestView]:
    """The artist's requests still waiting for their decision, soonest deadline first."""
    async with desk.db.read() as session:
        requests = await artist_requests(session, artist_id, {s.value for s in OPEN_STATUSES})
        views = [await load_request_view(session, request.id) for request in requests]
    return [view for view in views if view is not None and waits_for_artist(view)]


async def grant_summary(desk: Desk, grant_id: str) -> GrantSummary | None:
    """The grant with its project's title and creator's name; None when there is no such grant."""
    async with desk.db.read() as session:
        grant = await session.get(Grant, grant_id)
        if grant is None:
            return None
        request = await session.get(Request, grant.request_id)
        creator = await session.get(Creator, grant.creator_id)
    assert request is not None and creator is not None  # foreign keys
    title = str(request.terms.get("project_title", ""))
    return GrantSummary(grant, title, creator.name, request.ai_training)


async def artist_live_grants(desk: Desk, artist_id: str) -> list[GrantSummary]:
    """The artist's active and upcoming grants (by their window now), soonest end first."""
    now = desk.clock.now()
    live = {GrantStatus.active.value, GrantStatus.scheduled.value}
    async with desk.db.read() as session:
        grants = await artist_grants(session, artist_id, live)
        grant_ids = [g.id for g in grants if grant_status_at(g, now).value in live]
    found = [await grant_summary(desk, grant_id) for grant_id in grant_ids]
    return [summary for summary in found if summary is not None]


async def agency_of_slack_channel(desk: Desk, channel_id: str) -> Agency | None:
    """The agency whose board is this Slack channel, if any."""
    async with desk.db.transaction() as session:
        return await agency_by_slack_channel(session, channel_id)


async def agency_open_requests(
    desk: Desk, agency_id: str, statuses: set[str], shown: int
) -> tuple[list[RequestView], int]:
    """The first `shown` of the agency's requests in these statuses, and how many there are."""
    async with desk.db.transaction() as session:
        requests = await agency_requests(session, agency_id, statuses)
        views = [await load_request_view(session, r.id) for r in requests[:shown]]
    return [v for v in views if v is not None], len(requests)


async def agency_request(desk: Desk, agency_id: str, request_id: str) -> RequestView | None:
    """The request when it belongs to this agency's roster; another agency's is None, as if absent."""
    async with desk.db.transaction() as session:
        view = await load_request_view(session, request_id)
    if view is None or view.agency is None or view.agency.id != agency_id:
        return None
    return view


async def creator_request_ids(desk: Desk, creator_id: str, *, status: str | None, limit: int) -> list[str]:
    """Ids of a creator's requests, newest first, optionally of one status."""
    async with desk.db.read() as session:
        return await list_creator_requests(session, creator_id, status=status, limit=limit)


async def grant_of(desk: Desk, grant_id: str) -> Grant | None:
    """The grant with this id, if any."""
    async with desk.db.read() as session:
        return await session.get(Grant, grant_id)


async def deletion_of(desk: Desk, grant_id: str) -> Deletion | None:
    """The deletion the grant owes or was confirmed for, if any."""
    async with desk.db.read() as session:
        return await session.get(Deletion, grant_id)


async def terms_seen(desk: Desk, request_id: str, seen: str | None) -> str:
    """The hash of the terms a button showed, from the start of it the button carried (signed).

    A button that carries none (the request's line in /pending, the reason prompt) stands for the
    request's own terms, which never change (a change is a new request). A start that is not the
    request's is returned as it is, so that `decide` refuses it as changed terms.
    """
    async with desk.db.read() as session:
        request = await session.get(Request, request_id)
    if request is None:
        raise NotFound(f"no request {request_id}")
    return seen_terms_hash(request.terms_hash, seen)
