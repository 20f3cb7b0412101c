"""What delivery hands a sender about an output: the file, the words around it and whether it is
still worth sending (an output decided meanwhile is not sent for review any more)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.delivery import Undeliverable
from bot.handover import Recipient, telegram_artist
from bot.workflow import Desk
from storage.queries import load_request_view
from storage.tables import Output


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
