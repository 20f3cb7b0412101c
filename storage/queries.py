"""Reads that several rooms need; every write goes through bot/workflow/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database
from storage.hot_writes import inline_handle
from storage.point_reads import PointRead, Row, columns_of, fetch_on, loaded
from storage.tables import Agency, Artist, CardRef, Creator, Decision, Deletion, Grant, Request


@dataclass(frozen=True)
class RequestView:
    """A request with everything needed to show it: decisions, grant, artist and agency."""

    request: Request
    decisions: list[Decision]
    grant: Grant | None
    artist: Artist
    agency: Agency | None
    creator: Creator
    deletion: Deletion | None = None  # the deletion confirmation the grant owes, if any


# Built once: a statement object that is reused keeps its cache key, so SQLAlchemy neither
# rebuilds nor re-keys it on every call (the tap path reads these on every tap).
_VIEW_ROWS = (
    select(Request, Artist, Creator, Agency, Grant, Deletion)
    .join(Artist, Artist.id == Request.artist_id)
    .join(Creator, Creator.id == Request.creator_id)
    .outerjoin(Agency, Agency.id == Artist.agency_id)
    .outerjoin(Grant, Grant.request_id == Request.id)
    .outerjoin(Deletion, Deletion.grant_id == Grant.id)
    .where(Request.id == bindparam("request_id"))
)
_VIEW_ROWS_LOCKED = _VIEW_ROWS.with_for_update(of=[Request.__table__, Artist.__table__]).execution_options(
    populate_existing=True
)
_DECISIONS = (
    select(Decision).where(Decision.request_id == bindparam("request_id")).order_by(Decision.created_at)
)
_ARTIST_WITH_AGENCY = (
    select(Artist, Agency)
    .outerjoin(Agency, Agency.id == Artist.agency_id)
    .where(Artist.id == bindparam("artist_id"))
)
_ARTIST_BY_TELEGRAM_USER = select(Artist).where(Artist.telegram_user_id == bindparam("user_id"))
# Who tapped: a point read on every tap (storage/point_reads.py); `loaded(Artist, row)` is the artist.
ARTIST_BY_TELEGRAM_USER = PointRead(_ARTIST_BY_TELEGRAM_USER.with_only_columns(*columns_of(Artist)))


# The same view, and a card's place, as point reads (storage/point_reads.py): the outbox reads them
# for every card it edits.
_VIEW_ENTITIES: tuple[type[Any], ...] = (Request, Artist, Creator, Agency, Grant, Deletion)
_VIEW_POINT = PointRead(
    _VIEW_ROWS.with_only_columns(*(column for entity in _VIEW_ENTITIES for column in columns_of(entity)))
)


def _slices() -> list[tuple[type[Any], slice, int]]:
    """Each view entity, where its columns lie in a `_VIEW_POINT` row, and its key's place among them."""
    parts, start = [], 0
    for entity in _VIEW_ENTITIES:
        columns = columns_of(entity)
        key = next(i for i, column in enumerate(columns) if column.primary_key)
        parts.append((entity, slice(start, start + len(columns)), key))
        start += len(columns)
    return parts


_VIEW_SLICES = _slices()
_DECISIONS_POINT = PointRead(
    select(*columns_of(Decision))
    .where(Decision.request_id == bindparam("request_id"))
    .order_by(Decision.created_at)
)
_CARD_REF_POINT = PointRead(
    select(*columns_of(CardRef)).where(
        CardRef.request_id == bindparam("request_id"),
        CardRef.channel == bindparam("channel"),
        CardRef.recipient_id == bindparam("recipient_id"),
    )
)


async def request_view_and_card(
    db: Database, request_id: str, channel: str, recipient_id: str
) -> tuple[RequestView | None, CardRef | None]:
    """A request's view (as `load_request_view` reads it) and where its card was posted for one
    recipient, as point reads of one snapshot: neither belongs to a session."""
    key = {"request_id": request_id}
    found, decisions, refs = await db.point_reads(
        (_VIEW_POINT, key),
        (_DECISIONS_POINT, key),
        (_CARD_REF_POINT, key | {"channel": channel, "recipient_id": recipient_id}),
    )
    return _view_of(found, decisions), loaded(CardRef, refs[0]) if refs else None


def _view_of(found: list[Row], decisions: list[Row]) -> RequestView | None:
    """The view from a `_VIEW_POINT` row (none: no such request) and its `_DECISIONS_POINT` rows."""
    if not found:
        return None
    row = found[0]
    parts: list[Any] = []
    for entity, at, pk in _VIEW_SLICES:
        values = row[at]
        parts.append(loaded(entity, values) if values[pk] is not None else None)  # an outer join's absence
    request, artist, creator, agency, grant, deletion = parts
    return RequestView(
        request, [loaded(Decision, d) for d in decisions], grant, artist, agency, creator, deletion
    )


async def load_request_view(
    session: AsyncSession, request_id: str, *, for_update: bool = False
) -> RequestView | None:
    """The request and its surroundings, or None when there is no such request; two statements
    (one row of the request with its artist, creator, agency, grant and deletion; its decisions).

    With `for_update` the request's and the artist's rows are locked (PostgreSQL; SQLite's write
    lock already serialises writers) and read afresh, so a decision is ordered against a
    concurrent pause or resume of the artist.
    """
    key = {"request_id": request_id}
    if for_update:
        inline = await inline_handle(session)
        if inline is not None:
            # SQLite's writer: its transaction holds the database's write lock already, so the
            # view is read straight on its connection (its objects belong to no session: a change
            # to them is written with `storage.writes.update_row`, never by a flush).
            connection, handle = inline
            return _view_of(
                fetch_on(handle, connection.dialect, _VIEW_POINT, key, connection),
                fetch_on(handle, connection.dialect, _DECISIONS_POINT, key, connection),
            )
    row = (await session.execute(_VIEW_ROWS_LOCKED if for_update else _VIEW_ROWS, key)).first()
    if row is None:
        return None
    request, artist, creator, agency, grant, deletion = row
    decisions = list((await session.execute(_DECISIONS, key)).scalars())
    return RequestView(request, decisions, grant, artist, agency, creator, deletion)


async def artist_with_agency(session: AsyncSession, artist_id: str) -> tuple[Artist, Agency | None] | None:
    """An artist and its agency (None without one), in one statement; None when there is no such artist."""
    row = (await session.execute(_ARTIST_WITH_AGENCY, {"artist_id": artist_id})).first()
    return None if row is None else (row[0], row[1])


async def creator_by_key_hash(session: AsyncSession, key_hash: str) -> Creator | None:
    """The creator whose API key hashes to `key_hash`."""
    return (
        await session.execute(select(Creator).where(Creator.api_key_hash == key_hash))
    ).scalar_one_or_none()


async def artist_by_telegram_user(session: AsyncSession, telegram_user_id: int) -> Artist | None:
    """The artist linked to a Telegram user, if any."""
    return (
        await session.execute(_ARTIST_BY_TELEGRAM_USER, {"user_id": telegram_user_id})
    ).scalar_one_or_none()


async def list_creator_requests(
    session: AsyncSession, creator_id: str, *, status: str | None = None, limit: int = 100
) -> list[str]:
    """Ids of a creator's requests, newest first, optionally of one status."""
    query = select(Request.id).where(Request.creator_id == creator_id)
    if status is not None:
        query = query.where(Request.status == status)
    query = query.order_by(Request.created_at.desc(), Request.id).limit(limit)
    return list((await session.execute(query)).scalars())


async def artist_requests(session: AsyncSession, artist_id: str, statuses: set[str]) -> list[Request]:
    """An artist's requests in the given statuses, soonest deadline first."""
    query = (
        select(Request)
        .where(Request.artist_id == artist_id, Request.status.in_(statuses))
        .order_by(Request.decision_due_at)
    )
    return list((await session.execute(query)).scalars())


async def artist_grants(session: AsyncSession, artist_id: str, statuses: set[str]) -> list[Grant]:
    """An artist's grants in the given statuses, soonest end first."""
    query = (
        select(Grant).where(Grant.artist_id == artist_id, Grant.status.in_(statuses)).order_by(Grant.ends_at)
    )
    return list((await session.execute(query)).scalars())


async def card_ref(session: AsyncSession, request_id: str, channel: str, recipient_id: str) -> CardRef | None:
    """Where a request's card (Telegram) or board message (Slack) was posted for one recipient."""
    return await session.get(CardRef, (request_id, channel, recipient_id))


async def agency_requests(session: AsyncSession, agency_id: str, statuses: set[str]) -> list[Request]:
    """Requests for any artist on an agency's roster, in the given statuses, soonest deadline first."""
    query = (
        select(Request)
        .join(Artist, Artist.id == Request.artist_id)
        .where(Artist.agency_id == agency_id, Request.status.in_(statuses))
        .order_by(Request.decision_due_at)
    )
    return list((await session.execute(query)).scalars())


async def agency_by_slack_channel(session: AsyncSession, channel_id: str) -> Agency | None:
    """The agency whose board is this Slack channel."""
    return (
        await session.execute(select(Agency).where(Agency.slack_channel_id == channel_id).limit(1))
    ).scalar_one_or_none()
