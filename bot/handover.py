"""What delivery hands a sender: the rows each notice is rendered from, read here, and the rules
that hold a notice back, skip it or give it up.

`prepare` reads what one notice needs, by its channel and kind, and returns one typed value of
`bot/handed.py`: the request and its card's place, the board, the recipient's chat, the
webhook target, a report, an output's file. The rules live beside the reads: an update never
overtakes the post it edits (held back), a reminder for a request already decided has nothing
left to say (skipped), a recipient who cannot be written to any more is given up. The drainer
(`bot/delivery.py`) calls `prepare` for a sender; the senders (`bot/adapters/`) never read.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from bot.bundle import build_bundle
from bot.handed import (
    ARTIST_OUTPUT_NOTICES,
    BOARD_OUTPUT_NOTICES,
    AgencyBoard,
    AgencyReport,
    Board,
    CardEdit,
    CardPlace,
    Handed,
    OutputOnBoard,
    OutputToShow,
    Recipient,
    ToChat,
    WebhookTarget,
)
from bot.models import OPEN_STATUSES, ActorKind, ChannelKind, Policy, RequestStatus
from bot.outgoing import Outgoing, RetryLater, Skipped, Undeliverable
from bot.render.words import language_of
from bot.reports import build_report, usage_csv
from bot.workflow import MEMBER_NOTICE, QUESTIONS, Desk, NotFound, agency_outcomes, queries
from bot.workflow.history import HISTORY_NOTICE
from storage.queries import RequestView, card_ref, load_request_view, request_view_and_card
from storage.tables import Agency, Artist, Creator, Notice, Output

# When a board notice finds an earlier one of its request still waiting, look again this soon.
EARLIER_NOTICE_WAIT = 1.0
# A card update that finds its card still queued looks again this soon.
CARD_NOT_OUT_WAIT = 2.0
# Telegram notices to an artist that show the request's card or speak of its grant.
_CARD_NOTICES = frozenset(
    {"card", "deny_prompt", "grant_reminder", "grant_expired", "violation", "deletion_confirmed"}
)
_EXTENSION = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
}


async def prepare(desk: Desk, notice: Outgoing, default_timezone: str) -> Handed:
    """What `notice` is rendered from; raises RetryLater (held back), Skipped (nothing left to
    send) or Undeliverable (given up). `default_timezone` is for recipients without their own."""
    if notice.channel == ChannelKind.telegram:
        return await _for_telegram(desk, notice, default_timezone)
    if notice.channel == ChannelKind.slack:
        return await _for_slack(desk, notice)
    return await webhook_target(desk, notice.recipient_id)


def open_for(view: RequestView) -> bool:
    """Whether the request still waits for its artist's decision."""
    artist_decided = any(d.actor_kind == ActorKind.artist.value for d in view.decisions)
    return RequestStatus(view.request.status) in OPEN_STATUSES and not artist_decided


# ---------------------------------------------------------------- Telegram


async def _for_telegram(desk: Desk, notice: Outgoing, default_timezone: str) -> Handed:
    kind, artist_id, request_id = notice.kind, notice.recipient_id, notice.request_id or ""
    if notice.recipient_kind == ActorKind.creator.value:
        if kind != "status":
            raise Undeliverable(f"unknown creator notice kind {kind!r}")
        return await telegram_creator(desk, notice, default_timezone)
    if notice.recipient_kind != ActorKind.artist.value:
        raise Undeliverable(f"no Telegram notices for a {notice.recipient_kind}")
    if kind in _CARD_NOTICES:
        return await telegram_card(desk, request_id, artist_id, default_timezone)
    if kind == "card_update":
        place = await telegram_card(desk, request_id, artist_id, default_timezone)
        return CardEdit(place, await card_to_edit(desk, notice, place))
    if kind == "decision_reminder":
        place = await telegram_card(desk, request_id, artist_id, default_timezone)
        if not open_for(place.view):
            raise Skipped("decided or closed since the reminder was queued: nothing to remind")
        return place
    if kind in ARTIST_OUTPUT_NOTICES:
        output_id = str(notice.payload.get("output_id", ""))
        review = kind == "output_review"
        shown = await output_for_artist(desk, output_id, artist_id, default_timezone, with_file=review)
        if kind != "output_decided" and shown.status != "pending":
            raise Skipped("decided before it could be shown: nothing to ask any more")
        return shown
    if kind not in QUESTIONS | {"report", HISTORY_NOTICE, "pause_update", "record_update"}:
        raise Undeliverable(f"unknown Telegram notice kind {kind!r}")
    recipient = await telegram_artist(desk, artist_id, default_timezone)
    if kind == "report":
        return ToChat(recipient, await build_report(desk, artist_id=artist_id))
    if kind == "revoke_question":
        return ToChat(recipient, await grant_asked_about(desk, notice.grant_id or ""))
    if kind == HISTORY_NOTICE:  # the artist's signed history bundle, built as it is sent
        return ToChat(recipient, await build_bundle(desk, artist_id=artist_id))
    return recipient  # the other questions, and a pause or a record changed by someone else


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
    view, ref = await request_view_and_card(desk.db, request_id, ChannelKind.telegram.value, artist_id)
    if view is None:
        raise Undeliverable(f"no request {request_id}")
    if view.artist.id == artist_id:  # the card's reader is the request's artist: read with the view
        recipient = _artist_recipient(view.artist, default_timezone)
    else:
        recipient = await telegram_artist(desk, artist_id, default_timezone)
    posted = (int(ref.chat_id), int(ref.message_id)) if ref is not None else None
    return CardPlace(view, posted, recipient)


async def grant_asked_about(desk: Desk, grant_id: str) -> queries.GrantSummary:
    """The grant a question to the artist is about; a grant that is gone is given up."""
    summary = await queries.grant_summary(desk, grant_id)
    if summary is None:
        raise Undeliverable(f"no grant {grant_id}")
    return summary


async def card_to_edit(desk: Desk, notice: Outgoing, place: CardPlace) -> tuple[int, int]:
    """The card a card update edits; skipped when the card never reached the artist.

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
    raise Skipped("the card never reached the artist (e.g. they had blocked the bot): nothing to edit")


async def telegram_creator(desk: Desk, notice: Outgoing, default_timezone: str) -> ToChat[str]:
    """The creator's chat and the title a status update is about; a creator without a chat is
    given up."""
    async with desk.db.read() as session:
        creator = await session.get(Creator, notice.recipient_id)
        view = await load_request_view(session, notice.request_id) if notice.request_id else None
    if creator is None or creator.telegram_chat_id is None:
        raise Undeliverable("the creator has no linked Telegram chat")
    title = str(view.request.terms.get("project_title", "")) if view else ""
    chat = Recipient(creator.telegram_chat_id, language_of(creator.language), default_timezone, creator.name)
    return ToChat(chat, title)


# ---------------------------------------------------------------- Slack


async def _for_slack(desk: Desk, notice: Outgoing) -> Handed:
    if notice.kind == "board_post":
        return await slack_board(desk, notice)
    if notice.kind == "report":
        return await agency_report(desk, notice.recipient_id)
    if notice.kind == MEMBER_NOTICE:
        return await agency_board(desk, notice.recipient_id)
    if notice.kind in BOARD_OUTPUT_NOTICES:
        posting = notice.kind == "output_post"
        shown = await output_for_board(desk, notice, with_file=posting)
        if posting and shown.status != "pending":
            raise Skipped("decided before it could be shown: its outcome line follows")
        return shown
    if notice.request_id is not None:
        # board_update, and any later kind about a request: the root edited, a line in its thread.
        return await slack_board(desk, notice)
    raise Undeliverable(f"the Slack board has no use for a {notice.kind!r} notice")


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


async def agency_board(desk: Desk, agency_id: str) -> AgencyBoard:
    """The agency and its board channel; an agency without one (or gone) is given up."""
    async with desk.db.transaction() as session:
        agency = await session.get(Agency, agency_id)
    if agency is None or not agency.slack_channel_id:
        raise Undeliverable(f"agency {agency_id} has no Slack channel")
    return AgencyBoard(agency.slack_channel_id, agency)


async def agency_report(desk: Desk, agency_id: str) -> AgencyReport:
    """The agency's usage report and its usage events as a CSV file (the sender closes it); an
    agency without a board channel (or gone) is given up."""
    board = await agency_board(desk, agency_id)
    try:
        report = await build_report(desk, agency_id=board.agency.id)
    except NotFound as why:
        raise Undeliverable(why.message) from why
    return AgencyReport(board, report, await usage_csv(desk, report))


# ---------------------------------------------------------------- outputs


async def output_for_artist(
    desk: Desk, output_id: str, artist_id: str, default_timezone: str, *, with_file: bool
) -> OutputToShow:
    """The output and its file (while it waits for the artist) for the artist's chat; given up
    when it is gone or not theirs."""
    recipient = await telegram_artist(desk, artist_id, default_timezone)
    async with desk.db.read() as session:
        output = await session.get(Output, output_id)
        view = await load_request_view(session, output.request_id) if output is not None else None
    if output is None or view is None or output.artist_id != artist_id:
        raise Undeliverable(f"no output {output_id} for this artist")
    data = _output_file(desk, output) if with_file and output.status == "pending" else b""
    return OutputToShow(**_shown(output, view, data), recipient=recipient, creator_name=view.creator.name)


async def output_for_board(desk: Desk, notice: Outgoing, *, with_file: bool) -> OutputOnBoard:
    """The output and the thread it goes to; held back until the request's board post is out."""
    board = await slack_board(desk, notice)
    if board.root is None or board.root[0] != board.channel:
        raise RetryLater("the request's board post is not out yet", after=CARD_NOT_OUT_WAIT)
    output_id = str(notice.payload.get("output_id", ""))
    async with desk.db.read() as session:
        output = await session.get(Output, output_id)
    if output is None or output.request_id != board.view.request.id:
        raise Undeliverable(f"no output {output_id} of this request")
    view = board.view
    return OutputOnBoard(
        **_shown(output, view, _output_file(desk, output) if with_file else b""),
        channel=board.channel,
        thread_ts=board.root[1],
        reason=output.reason,
        artist_name=view.artist.name,
        agency_may_decide=view.artist.policy == Policy.agency_may_decide.value,
        agency=view.agency,
    )


def _shown(output: Output, view: RequestView, data: bytes) -> dict[str, Any]:
    """What either side is shown of an output (`bot.handed.ShownOutput`'s fields), its file `data`
    sent under the start of its hash and its type's extension."""
    return {
        "output_id": output.id,
        "media_type": output.media_type,
        "sha256": output.sha256,
        "filename": f"{output.sha256[:16]}.{_EXTENSION.get(output.media_type, 'bin')}",
        "data": data,
        "description": output.description,
        "status": output.status,
        "release_due_at": output.release_due_at,
        "title": str(view.request.terms.get("project_title", "")),
    }


def _output_file(desk: Desk, output: Output) -> bytes:
    """The output's file from the service's store; given up when it is not kept or is missing."""
    if desk.output_files is None:
        raise Undeliverable("this service keeps no output files")
    try:
        return desk.output_files.read(output.sha256)
    except FileNotFoundError:
        raise Undeliverable(f"the file of output {output.id} is missing") from None


# ---------------------------------------------------------------- webhooks


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
