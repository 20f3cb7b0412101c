"""What the agency's board shows of an output in the request's thread: the file's comment, the
Release / Reject buttons where the policy lets the agency decide, and the outcome. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.render.slack_blocks import SlackMessage, button, cut, escape, section, slack_date

ACTION_RELEASE = "output_release"
ACTION_REJECT = "output_reject"
_DESCRIPTION_SHOWN = 1500


def output_comment(*, artist: str, title: str, description: str, sha256: str, due_at: datetime) -> str:
    """The comment posted with the file in the request's thread."""
    return (
        f"🎬 *Output for release* — {escape(title)} ({escape(artist)})\n"
        f"{escape(cut(description, _DESCRIPTION_SHOWN))}\n"
        f"SHA-256 `{sha256}` · release by {slack_date(due_at)}"
    )


def output_actions(output_id: str, *, agency_may_decide: bool) -> SlackMessage:
    """The reply under the file: Release / Reject where the agency may decide, else who decides."""
    if not agency_may_decide:
        text = "The artist releases or rejects this output in Telegram."
        return SlackMessage(text=text, blocks=[section(text)])
    text = "Release or reject this output on the artist's behalf (the artist is told)."
    return SlackMessage(
        text=text,
        blocks=[
            section(text),
            {
                "type": "actions",
                "block_id": f"output:{output_id}",
                "elements": [
                    button(ACTION_RELEASE, "Release", output_id, "primary"),
                    button(ACTION_REJECT, "Reject", output_id, "danger"),
                ],
            },
        ],
    )


def output_outcome(payload: dict[str, Any], reason: str | None) -> str:
    """The thread line once an output was released or rejected, and by whom."""
    by = {"artist": "the artist", "agency": "the agency", "system": "its deadline"}.get(
        str(payload.get("by", "")), "someone"
    )
    if payload.get("status") == "released":
        return f"✅ Output `{escape(str(payload.get('output_id', '')))}` *released* by {by}."
    why = f": {escape(reason)}" if reason else ""
    return f"❌ Output `{escape(str(payload.get('output_id', '')))}` *rejected* by {by}{why}."
