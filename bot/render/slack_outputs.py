"""What the agency's board shows of an output in the request's thread: the file's comment, the
Release / Reject buttons where the policy lets the agency decide, and the outcome, in the
agency's language. Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.render.slack_answers import reason_form
from bot.render.slack_blocks import SlackMessage, button, cut, section
from bot.render.slack_words import Audience, Mrkdwn, board_voice, escape
from bot.render.words import N_

ACTION_RELEASE = "output_release"
ACTION_REJECT = "output_reject"
REJECT_FORM = "board_output_reject_reason"
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


def reject_form(agency: Audience | None, output_id: str, *, private_metadata: str) -> dict[str, Any]:
    """The modal that asks why, opened by Reject; its signed metadata names the output. The reason
    is required: Slack refuses to submit the form empty."""
    v = board_voice(agency)
    output = Mrkdwn(f"`{escape(output_id[:64])}`")
    intro = v._(
        "Reject output %(output)s on the artist's behalf. The creator and the artist are told; "
        "this cannot be undone.",
        output=output,
    )
    return reason_form(
        v,
        callback_id=REJECT_FORM,
        private_metadata=private_metadata,
        title=v.label(N_("Reject output")),
        submit=v.label(N_("Reject")),
        intro=intro,
        placeholder=v.label(N_("e.g. the face does not look like the artist")),
    )


def form_refused(agency: Audience | None) -> str:
    """The form's error when its metadata is not ours (forged, or signed with a retired key)."""
    return board_voice(agency).label(
        N_("This form was not made by this service; nothing was changed. Press Reject again.")
    )


def form_not_opened(agency: Audience | None) -> str:
    """Slack refused to open the reject form (its trigger lives 3 seconds)."""
    return board_voice(agency).label(N_("The reject form could not be opened in time; press Reject again."))


def reason_missing(agency: Audience | None) -> str:
    """The form's error when the reason holds nothing but spaces."""
    return board_voice(agency).label(N_("Please type why this output is rejected."))
