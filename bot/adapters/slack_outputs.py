"""Slack's side of outputs: the file uploaded into the request's thread (files.getUploadURLExternal
and files.completeUploadExternal, through files_upload_v2) with Release / Reject where the policy
lets the agency decide, and the outcome as a thread line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.delivery import Delivered, Outgoing
from bot.handover_outputs import output_for_board
from bot.render import slack_outputs as texts

if TYPE_CHECKING:
    from bot.adapters.slack import SlackSender

BOARD_OUTPUT_NOTICES = frozenset({"output_post", "output_update"})
_EXTENSION = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
}


async def send_output_to_board(sender: SlackSender, notice: Outgoing) -> Delivered:
    """Posts an output (or its outcome) in the request's thread on the agency's board."""
    posting = notice.kind == "output_post"
    shown = await output_for_board(sender.desk, notice, with_file=posting)
    if not posting:
        text = texts.output_outcome(shown.agency, dict(notice.payload), shown.reason)
        await sender.post(shown.channel, text, thread_ts=shown.thread_ts)
        return Delivered()
    if shown.status != "pending":
        return Delivered()  # decided before it could be shown: its outcome line follows
    name = f"{shown.sha256[:16]}.{_EXTENSION.get(shown.media_type, 'bin')}"
    comment = texts.output_comment(
        shown.agency,
        artist=shown.artist_name,
        title=shown.title,
        description=shown.description,
        sha256=shown.sha256,
        due_at=shown.release_due_at,
    )
    await sender.upload(
        shown.channel,
        comment=comment,
        files=[(name, shown.data, shown.title or name)],
        thread_ts=shown.thread_ts,
    )
    actions = texts.output_actions(shown.agency, shown.output_id, agency_may_decide=shown.agency_may_decide)
    await sender.post(shown.channel, actions, thread_ts=shown.thread_ts)
    return Delivered()
