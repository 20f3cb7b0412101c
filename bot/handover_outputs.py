"""What delivery hands a sender about an output: the file, the words around it and whether it is
still worth sending (an output decided meanwhile is not sent for review any more)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.delivery import Outgoing, RetryLater, Undeliverable
from bot.handover import CARD_NOT_OUT_WAIT, Recipient, slack_board, telegram_artist
from bot.models import Policy
from bot.workflow import Desk
from storage.queries import load_request_view
from storage.tables import Agency, Output


@dataclass(frozen=True)
class OutputToShow:
    """An output as the artist is shown it: the file's bytes and type, and its caption's parts."""

    recipient: Recipient
    output_id: str
    media_type: str
    sha256: str
    data: bytes
    description: str
    status: str
    release_due_at: datetime
    title: str
    creator_name: str


async def output_for_artist(
    desk: Desk, output_id: str, artist_id: str, default_timezone: str, *, with_file: bool = True
) -> OutputToShow:
    """The output and its file for the artist's chat; given up when it is gone or not theirs."""
    recipient = await telegram_artist(desk, artist_id, default_timezone)
    async with desk.db.read() as session:
        output = await session.get(Output, output_id)
        view = await load_request_view(session, output.request_id) if output is not None else None
    if output is None or view is None or output.artist_id != artist_id:
        raise Undeliverable(f"no output {output_id} for this artist")
    data = b""
    if with_file and output.status == "pending":
        if desk.output_files is None:
            raise Undeliverable("this service keeps no output files")
        try:
            data = desk.output_files.read(output.sha256)
        except FileNotFoundError:
            raise Undeliverable(f"the file of output {output_id} is missing") from None
    return OutputToShow(
        recipient=recipient,
        output_id=output.id,
        media_type=output.media_type,
        sha256=output.sha256,
        data=data,
        description=output.description,
        status=output.status,
        release_due_at=output.release_due_at,
        title=str(view.request.terms.get("project_title", "")),
        creator_name=view.creator.name,
    )


@dataclass(frozen=True)
class OutputOnBoard:
    """An output as the agency's board shows it in the request's thread."""

    channel: str
    thread_ts: str
    output_id: str
    media_type: str
    sha256: str
    data: bytes
    description: str
    status: str
    reason: str | None
    release_due_at: datetime
    title: str
    artist_name: str
    agency_may_decide: bool
    agency: Agency | None


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
    data = b""
    if with_file:
        if desk.output_files is None:
            raise Undeliverable("this service keeps no output files")
        try:
            data = desk.output_files.read(output.sha256)
        except FileNotFoundError:
            raise Undeliverable(f"the file of output {output_id} is missing") from None
    return OutputOnBoard(
        channel=board.channel,
        thread_ts=board.root[1],
        output_id=output.id,
        media_type=output.media_type,
        sha256=output.sha256,
        data=data,
        description=output.description,
        status=output.status,
        reason=output.reason,
        release_due_at=output.release_due_at,
        title=str(board.view.request.terms.get("project_title", "")),
        artist_name=board.view.artist.name,
        agency_may_decide=board.view.artist.policy == Policy.agency_may_decide.value,
        agency=board.view.agency,
    )
