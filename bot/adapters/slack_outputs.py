"""Slack's side of outputs: the file uploaded into the request's thread (files.getUploadURLExternal
and files.completeUploadExternal, through files_upload_v2) with Release / Reject where the policy
lets the agency decide, and the outcome as a thread line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.delivery import Delivered, Outgoing
from bot.handed import OutputOnBoard
from bot.render import slack_outputs as texts

if TYPE_CHECKING:
    from bot.adapters.slack import SlackSender


async def send_output_to_board(sender: SlackSender, notice: Outgoing, shown: OutputOnBoard) -> Delivered:
    """Posts an output (one still to decide) or its outcome in the request's thread on the board."""
    if notice.kind != "output_post":
        text = texts.output_outcome(shown.agency, dict(notice.payload), shown.reason)
        await sender.post(shown.channel, text, thread_ts=shown.thread_ts)
        return Delivered()
    name = shown.filename
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
