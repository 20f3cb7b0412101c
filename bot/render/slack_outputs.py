"""What the agency's board shows of an output in the request's thread: the file's comment, the
Release / Reject buttons where the policy lets the agency decide, and the outcome, in the
agency's language. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.render.slack_blocks import SlackMessage, button, cut, section
from bot.render.slack_words import Audience, Mrkdwn, board_voice, escape
from bot.render.words import N_

ACTION_RELEASE = "output_release"
ACTION_REJECT = "output_reject"
_DESCRIPTION_SHOWN = 1500
_BY = {"artist": N_("the artist"), "agency": N_("the agency"), "system": N_("its deadline")}


def output_comment(
    agency: Audience | None, *, artist: str, title: str, description: str, sha256: str, due_at: datetime
) -> str:
    """The comment posted with the file in the request's thread."""
    v = board_voice(agency)
    return "\n".join(
        [
            v._("🎬 *Output for release* — %(title)s (%(artist)s)", title=title, artist=artist),
            escape(cut(description, _DESCRIPTION_SHOWN)),
            v._(
                "SHA-256 %(sha256)s · release by %(due)s",
                sha256=Mrkdwn(f"`{sha256}`"),
                due=v.date(due_at),
            ),
        ]
    )


def output_actions(agency: Audience | None, output_id: str, *, agency_may_decide: bool) -> SlackMessage:
    """The reply under the file: Release / Reject where the agency may decide, else who decides."""
    v = board_voice(agency)
    if not agency_may_decide:
        text = v.label(N_("The artist releases or rejects this output in Telegram."))
        return SlackMessage(text=text, blocks=[section(text)])
    text = v.label(N_("Release or reject this output on the artist's behalf (the artist is told)."))
    return SlackMessage(
        text=text,
        blocks=[
            section(text),
            {
                "type": "actions",
                "block_id": f"output:{output_id}",
                "elements": [
                    button(ACTION_RELEASE, v.label(N_("Release")), output_id, "primary"),
                    button(ACTION_REJECT, v.label(N_("Reject")), output_id, "danger"),
                ],
            },
        ],
    )


def output_outcome(agency: Audience | None, payload: dict[str, Any], reason: str | None) -> str:
    """The thread line once an output was released or rejected, and by whom."""
    v = board_voice(agency)
    by = v.label(_BY.get(str(payload.get("by", "")), N_("someone")))
    output = Mrkdwn(f"`{escape(str(payload.get('output_id', ''))[:64])}`")
    if payload.get("status") == "released":
        return v._("✅ Output %(output)s *released* by %(by)s.", output=output, by=by)
    if reason:
        return v._(
            "❌ Output %(output)s *rejected* by %(by)s: %(reason)s", output=output, by=by, reason=reason
        )
    return v._("❌ Output %(output)s *rejected* by %(by)s.", output=output, by=by)


def click_answer(agency: Audience | None, *, release: bool) -> str:
    """The ephemeral answer to the member who released or rejected an output."""
    return board_voice(agency).label(N_("Released.") if release else N_("Rejected."))
