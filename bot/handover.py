"""What delivery hands a sender: the rows a notice is rendered from, and the rules that hold it
back, skip it or give it up.

Senders (`bot/adapters/`) translate a notice into platform calls and nothing else: every read
of the database a notice needs is here, and so is every rule about its order (an update never
overtakes the post it edits), about skipping it (a reminder for a request already decided) and
about giving it up (a recipient who cannot be written to any more). The drainer itself is
`bot/delivery.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from sqlalchemy import func, select

from bot.delivery import Outgoing, RetryLater, Undeliverable
from bot.models import OPEN_STATUSES, ActorKind, ChannelKind, Language, Outcome, RequestStatus
from bot.render.words import language_of
from bot.report_types import Report
from bot.reports import build_report, usage_csv
from bot.workflow import Desk, GrantSummary, NotFound, agency_outcomes, queries
from storage.queries import RequestView, card_ref, load_request_view
from storage.tables import Agency, Artist, Creator, Notice

log = logging.getLogger(__name__)

# When a board notice finds an earlier one of its request still waiting, look again this soon.
EARLIER_NOTICE_WAIT = 1.0
# A card update that finds its card still queued looks again this soon.
CARD_NOT_OUT_WAIT = 2.0


def open_for(view: RequestView) -> bool:
    """Whether the request still waits for its artist's decision."""
    artist_decided = any(d.actor_kind == ActorKind.artist.value for d in view.decisions)
    return RequestStatus(view.request.status) in OPEN_STATUSES and not artist_decided


# ---------------------------------------------------------------- Telegram


@dataclass(frozen=True)
class Recipient:
    """Where and how a notice's recipient is written to."""

    chat_id: int
    language: Language
    timezone: str
    name: str


@dataclass(frozen=True)
class CardPlace:
    """A request as its artist's card shows it, and where that card was posted (if it was)."""

    view: RequestView
    posted: tuple[int, int] | None
    recipient: Recipient


async def telegram_artist(desk: Desk, artist_id: str, default_timezone: str) -> Recipient:
    """The artist's chat; an artist without one cannot be written to (given up)."""
    async with desk.db.read() as session:
        artist = await session.get(Artist, artist_id)
    if artist is None:
        raise Undeliverable("the artist has no linked Telegram chat")
    return _artist_recipient(artist, default_timezone)


def _artist_recipient(artist: Artist, default_timezone: str) -> Recipient:
    """The artist's chat; an artist without one cannot be written to (given up)."""
    if artist.telegram_chat_id is None:
        raise Undeliverable("the artist has no linked Telegram chat")
    return Recipient(
        artist.telegram_chat_id,
        language_of(artist.language),
        artist.timezone or default_timezone,
        artist.name,
    )


async def telegram_card(desk: Desk, request_id: str, artist_id: str, default_timezone: str) -> CardPlace:
    """The request and its card's place in the artist's chat; a request that is gone is given up."""
    async with desk.db.read(quick=True) as session:
        view = await load_request_view(session, request_id)
        ref = await card_ref(session, request_id, ChannelKind.telegram.value, artist_id)
    if view is None:
        raise Undeliverable(f"no request {request_id}")
    if view.artist.id == artist_id:  # the card's reader is the request's artist: read with the view
        recipient = _artist_recipient(view.artist, default_timezone)
    else:
        recipient = await telegram_artist(desk, artist_id, default_timezone)
    posted = (int(ref.chat_id), int(ref.message_id)) if ref is not None else None
    return CardPlace(view, posted, recipient)


async def grant_asked_about(desk: Desk, grant_id: str) -> GrantSummary:
    """The grant a question to the artist is about; a grant that is gone is given up."""
    summary = await queries.grant_summary(desk, grant_id)
    if summary is None:
        raise Undeliverable(f"no grant {grant_id}")
    return summary


async def card_to_edit(desk: Desk, notice: Outgoing, place: CardPlace) -> tuple[int, int] | None:
    """The card a card update edits; None (skip) when the card never reached the artist.

    An update never overtakes its card: while the card is still queued, the update waits.
    """
    if place.posted is not None:
        return place.posted
    async with desk.db.read() as session:
        queued = await session.execute(
            select(Notice.id)
            .where(
                Notice.request_id == notice.request_id,
                Notice.recipient_id == notice.recipient_id,
                Notice.channel == ChannelKind.telegram.value,
                Notice.kind == "card",
                Notice.status == "pending",
            )
            .limit(1)
        )
        if queued.first() is not None:
            raise RetryLater("the card itself is not sent yet", after=CARD_NOT_OUT_WAIT)
    return None  # e.g. the artist had blocked the bot: nothing to edit


def reminder_due(place: CardPlace) -> bool:
    """Whether a decision reminder still has something to remind of (skipped once decided or closed)."""
    return open_for(place.view)


@dataclass(frozen=True)
class CreatorStatus:
    """A studio's Telegram chat and the title its status update is about."""

    chat_id: int
    language: Language
    title: str


async def telegram_creator(desk: Desk, notice: Outgoing) -> CreatorStatus:
    """The creator's chat for a status update; a creator without one is given up."""
    async with desk.db.read() as session:
        creator = await session.get(Creator, notice.recipient_id)
        view = await load_request_view(session, notice.request_id) if notice.request_id else None
    if creator is None or creator.telegram_chat_id is None:
        raise Undeliverable("the creator has no linked Telegram chat")
    title = str(view.request.terms.get("project_title", "")) if view else ""
    return CreatorStatus(creator.telegram_chat_id, language_of(creator.language), title)


async def artist_report(desk: Desk, artist_id: str) -> Report:
    """The artist's usage report as it stands now."""
    return await build_report(desk, artist_id=artist_id)


# ---------------------------------------------------------------- Slack


@dataclass(frozen=True)
class Board:
    """What one board notice needs: the request, where the board is, where its root message is,
    and which decisions the agency may make on it (the workflow's answer, shown as buttons)."""

    view: RequestView
    channel: str
    root: tuple[str, str] | None
    agency_may: tuple[Outcome, ...]


async def slack_board(desk: Desk, notice: Outgoing) -> Board:
    """The request and the agency's board; held back while an earlier board notice of it waits."""
    if notice.request_id is None:
        raise Undeliverable("a board notice without a request")
    async with desk.db.transaction() as session:
        view = await load_request_view(session, notice.request_id)
        agency = await session.get(Agency, notice.recipient_id)
        ref = await card_ref(session, notice.request_id, ChannelKind.slack.value, notice.recipient_id)
        # An earlier board notice of this request still waiting (e.g. behind a 429, or its
        # first post): the drainer keeps a lane in order only within one claimed batch.
        earlier_due = (
            await session.execute(
                select(func.min(Notice.next_attempt_at)).where(
                    Notice.request_id == notice.request_id,
                    Notice.recipient_id == notice.recipient_id,
                    Notice.channel == ChannelKind.slack.value,
                    Notice.kind.in_(["board_post", "board_update"]),
                    Notice.status == "pending",
                    Notice.created_at < notice.created_at,
                )
            )
        ).scalar_one_or_none()
    if view is None:
        raise Undeliverable(f"no request {notice.request_id}")
    if agency is None or not agency.slack_channel_id:
        raise Undeliverable(f"agency {notice.recipient_id} has no Slack channel")
    if earlier_due is not None:
        # Never overtake: the first post shows the request and the thread keeps the order of
        # events. (Without any post at all, e.g. a channel set later, the root is posted then.)
        wait = (earlier_due - desk.clock.now()).total_seconds()
        raise RetryLater(
            "an earlier board notice of this request is not out yet", after=max(EARLIER_NOTICE_WAIT, wait)
        )
    root = (ref.chat_id, ref.message_id) if ref is not None else None
    return Board(view, agency.slack_channel_id, root, agency_outcomes(view))


@dataclass(frozen=True)
class AgencyReport:
    """An agency's usage report and the channel it goes to; `agency` says the board's language."""

    channel: str
    report: Report
    agency: Agency | None = None


@dataclass(frozen=True)
class AgencyBoard:
    """An agency and its board channel, for a notice about the agency itself (not a request)."""

    channel: str
    agency: Agency


async def agency_board(desk: Desk, agency_id: str) -> AgencyBoard:
    """The agency and its board channel; an agency without one (or gone) is given up."""
    async with desk.db.transaction() as session:
        agency = await session.get(Agency, agency_id)
    if agency is None or not agency.slack_channel_id:
        raise Undeliverable(f"agency {agency_id} has no Slack channel")
    return AgencyBoard(agency.slack_channel_id, agency)


async def agency_report(desk: Desk, agency_id: str) -> AgencyReport:
    """The agency's usage report; an agency without a board channel (or gone) is given up."""
    board = await agency_board(desk, agency_id)
    try:
        report = await build_report(desk, agency_id=board.agency.id)
    except NotFound as why:
        raise Undeliverable(why.message) from why
    return AgencyReport(board.channel, report, board.agency)


async def usage_table(desk: Desk, report: Report) -> IO[bytes]:
    """The report's usage events as a CSV file (closed by the caller)."""
    return await usage_csv(desk, report)


def channel_unreachable(notice: Outgoing, why: str, patience: int) -> RetryLater | Undeliverable:
    """A board channel that is gone or lacks the bot: retried `patience` times, then given up."""
    if notice.attempts + 1 >= patience:
        return Undeliverable(f"Slack channel unreachable: {why}")
    log.warning(
        "Slack channel of agency %s unreachable (%s): invite the bot to the channel, or fix "
        "`likeness agency add --slack-channel`; retrying",
        notice.recipient_id,
        why,
    )
    return RetryLater(f"channel unreachable: {why}")


# ---------------------------------------------------------------- webhooks


@dataclass(frozen=True)
class WebhookTarget:
    """Where a creator's webhook goes and the secrets it is signed with."""

    webhook_url: str
    webhook_secret: str
    webhook_secret_previous: str | None
    webhook_secret_previous_until: datetime | None


async def webhook_target(desk: Desk, creator_id: str) -> WebhookTarget:
    """The creator's webhook; a creator without a URL or secret any more is given up."""
    async with desk.db.read() as session:
        creator = await session.get(Creator, creator_id)
    if creator is None or not creator.webhook_url or not creator.webhook_secret:
        raise Undeliverable("the creator has no webhook URL any more")
    if creator.deactivated_at is not None:
        raise Undeliverable("the creator is deactivated: its webhooks stopped")
    return WebhookTarget(
        creator.webhook_url,
        creator.webhook_secret,
        creator.webhook_secret_previous,
        creator.webhook_secret_previous_until,
    )
