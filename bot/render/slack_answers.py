"""What the agency's Slack board says to one person or about itself: the deny form, refusals,
`/likeness` answers, the usage report's comment and a change of the board's members.

Pure rendering in the agency's language (`bot.render.slack_words`): the handler hands in the
agency (or None in a channel that is no board) and what happened, and gets text back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from bot.models import Policy, RequestStatus
from bot.render.buttons import DenyForm
from bot.render.slack_blocks import cut, mention, section
from bot.render.slack_words import Audience, BoardVoice, Mrkdwn, board_voice, escape
from bot.render.words import N_, USE_KINDS, Refusal, channel_on_board, reason_on_board, role_on_board
from bot.report_types import Report

if TYPE_CHECKING:
    from storage.queries import RequestView

DENY_FORM = "board_deny_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_text"
PENDING_SHOWN = 40
_REASON_MAX = 500

STATUS_WORDS = {
    RequestStatus.pending.value: N_("pending"),
    RequestStatus.awaiting_cosign.value: N_("awaiting co-sign"),
    RequestStatus.approved.value: N_("approved"),
    RequestStatus.denied.value: N_("denied"),
    RequestStatus.lapsed.value: N_("lapsed"),
    RequestStatus.withdrawn.value: N_("withdrawn"),
    "active": N_("active"),
    "scheduled": N_("scheduled"),
    "expired": N_("expired"),
    "revoked": N_("revoked"),
    "paused": N_("paused"),
}
# The workflow's reasons for a refusal that the board can meet, so that they read in Chinese too.
WORKFLOW_REASONS = (
    N_("this artist is not on your agency's roster"),
    N_("you are not one of the agency members allowed to act"),
    N_("the artist has paused every consent: only the artist can approve now"),
    N_("you may not decide this request"),
    N_("this artist decides alone (policy artist_only)"),
    N_("AI training is personal consent: only the artist can approve it"),
    N_("only the artist's agency may act on the artist's behalf"),
    N_("only the artist's agency may nudge"),
    N_("the artist was nudged less than an hour ago"),
    N_("the terms you saw are not this request's terms"),
    N_("the decision deadline has passed"),
    N_("every consent of this artist is already paused"),
    N_("this artist's consents are not paused"),
    N_("this artist decides alone (policy artist_only): only they can pause"),
    N_("you may not pause this artist's consents"),
    N_("only the artist can resume this pause (or an operator)"),
    N_("only the agency can resume this pause (or an operator)"),
    N_("only an operator can resume this pause (or an operator)"),
    N_("only the artist may revoke their consent"),
)


def _status(v: BoardVoice, status: str) -> str:
    words = STATUS_WORDS.get(status)
    return v.label(words) if words else status.replace("_", " ")


def _why(v: BoardVoice, why: Refusal) -> str:
    """The workflow's reason in the agency's language; a reason the catalog lacks, by its kind."""
    if v.language.value == "en":
        return escape(why.message)
    if why.code == "not_open" and why.message.startswith("this "):
        status = str(why.details.get("status") or "")
        if status in STATUS_WORDS and why.message.endswith(status):
            noun = v.label(N_("this grant")) if "grant" in why.message else v.label(N_("this request"))
            return escape(v._("%(what)s is %(status)s", what=noun, status=_status(v, status)))
    if why.message not in WORKFLOW_REASONS:
        return v.label(N_("this is not possible now"))
    return escape(v.label(why.message))


# ---------------------------------------------------------------- the deny form


def deny_form(view: RequestView, *, channel_id: str, message_ts: str, terms_hash: str) -> dict[str, Any]:
    """The modal that asks why, opened by Deny; its private metadata says what is denied, on which terms."""
    v = board_voice(view.agency)
    request = view.request
    title = str(request.terms.get("project_title") or request.id)
    artist = view.artist.name
    if Policy(view.artist.policy) is Policy.both_required:
        intro = v._("Deny *%(title)s* for *%(artist)s*.", title=title, artist=artist)
    else:
        intro = v._("Deny *%(title)s* on behalf of *%(artist)s*.", title=title, artist=artist)
    form = DenyForm(request.id, terms_hash, channel_id, message_ts)
    return reason_form(
        v,
        callback_id=DENY_FORM,
        private_metadata=form.private_metadata(),
        title=v.label(N_("Deny request")),
        submit=v.label(N_("Deny")),
        intro=intro + " " + v._("The creator and the artist are told; this cannot be undone."),
        placeholder=v.label(N_("e.g. the fee is below the agreed rate")),
    )


def reason_form(
    v: BoardVoice,
    *,
    callback_id: str,
    private_metadata: str,
    title: str,
    submit: str,
    intro: str,
    placeholder: str,
) -> dict[str, Any]:
    """A modal that asks why, in words of the board's voice: `intro` above one required reason
    (REASON_BLOCK, REASON_INPUT, up to 500 characters) with `placeholder` in it."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": v.label(N_("Cancel"))},
        "blocks": [
            section(intro),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": v.label(N_("Reason"))},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": _REASON_MAX,
                    "placeholder": {"type": "plain_text", "text": placeholder},
                },
            },
        ],
    }


def reason_problem(agency: Audience | None, hidden: str | None, longest: int) -> str:
    """The form's error under the reason: it holds a hidden character, or is too long."""
    v = board_voice(agency)
    found = re.search(r"(U\+[0-9A-F]+)\) at position (\d+)", hidden or "")
    if found and v.language.value != "en":  # the description is English: said again from its parts
        text = N_(
            "The reason holds a hidden character (%(code)s) at position %(position)s; "
            "please type it as plain text."
        )
        return v.label(text) % {"code": found.group(1), "position": found.group(2)}
    if hidden:
        return v.label(N_("The reason holds %(character)s; please type it as plain text.")) % {
            "character": hidden
        }
    return v.label(N_("The reason is longer than %(count)s characters; please type it as plain text.")) % {
        "count": longest
    }


# ---------------------------------------------------------------- answers to one person


def refusal_text(why: Refusal, agency: Audience | None = None) -> str:
    """Tells the person who clicked why nothing happened; for a lost race, who decided and when."""
    v = board_voice(agency)
    if why.code == "already_decided":
        details = why.details
        kind = str(details.get("decided_by") or "")
        when = v.iso(details["decided_at"]) if details.get("decided_at") else v._("earlier")
        if "co-signature" in why.message:
            lead = v.label(N_("You already approved this one"))
        else:
            lead = v.label(N_("Too late"))
        return ":lock: " + v._(
            "%(lead)s: it is *%(status)s* — decided by *%(name)s* (%(role)s, %(where)s) at %(when)s.",
            lead=lead,
            status=_status(v, str(details.get("status") or "decided")),
            name=str(details.get("decided_by_name") or details.get("decided_by") or v.label(N_("someone"))),
            role=v.label(role_on_board(kind)),
            where=v.label(channel_on_board(str(details.get("channel")), "")),
            when=when,
        )
    if why.code == "not_open":
        return ":lock: " + v._("Nothing to do: %(why)s.", why=Mrkdwn(_why(v, why)))
    if why.code == "not_found":
        return ":grey_question: " + v._("That request does not exist (any more).")
    text = ":no_entry: " + v._("Not done: %(why)s.", why=Mrkdwn(_why(v, why)))
    if why.details.get("next_at"):
        text += " " + v._("Again from %(when)s.", when=v.iso(why.details["next_at"]))
    return text


def foreign_button(agency: Audience | None) -> str:
    """The answer to a button that is not one of the board's."""
    return board_voice(agency).label(N_("This button is not one of the board's."))


def form_not_opened(agency: Audience | None) -> str:
    """Slack refused to open the deny form (its trigger lives 3 seconds)."""
    return board_voice(agency).label(N_("Slack could not open the form in time; press Deny again."))


def help_text(agency: Audience | None = None) -> str:
    """What `/likeness` understands."""
    v = board_voice(agency)
    return "\n".join(
        [
            v._("*`/likeness` on your agency's board channel:*"),
            "• `/likeness pending` — " + v._("requests still waiting for a decision"),
            "• `/likeness status <request id>` — " + v._("where one request stands"),
            "• `/likeness report` — " + v._("the usage report (chart and CSV) posted here now"),
            "• `/likeness pause <artist id> [reason]` — " + v._("pause all of an artist's consents"),
            "• `/likeness resume <artist id>` — " + v._("lift a pause your agency made"),
            v._("Approve, Deny and Nudge are buttons on each request's message."),
        ]
    )


def not_a_board() -> str:
    """`/likeness` in a channel that is no agency's board (English: no agency to speak for)."""
    return BoardVoice().label(
        N_("This channel is no agency's board; use `/likeness` in your agency's channel.")
    )


def members_only(agency: Audience, name: str) -> str:
    """`/likeness` from someone who is not one of the agency's listed members."""
    v = board_voice(agency)
    return ":no_entry: " + v._(
        "Only the members listed for %(agency)s can use `/likeness` here.", agency=name
    )


def no_such_request(agency: Audience, name: str, request_id: str) -> str:
    """`/likeness status` for a request that is not the agency's (or does not exist)."""
    v = board_voice(agency)
    return v._("No request `%(request_id)s` for an artist of %(agency)s.", request_id=request_id, agency=name)


def no_such_artist(agency: Audience, artist_id: str) -> str:
    """`/likeness pause | resume` for an artist not on the agency's roster."""
    v = board_voice(agency)
    return ":grey_question: " + v._(
        "No artist `%(artist_id)s` on your agency's roster.", artist_id=artist_id[:64]
    )


def report_queued(agency: Audience, queued: bool) -> str:
    """The answer to `/likeness report`."""
    v = board_voice(agency)
    if queued:
        return ":bar_chart: " + v._("The usage report is on its way to this channel.")
    return v._("No report: this agency has no Slack channel on record.")


def pending_text(
    agency_name: str, views: list[RequestView], total: int, agency: Audience | None = None
) -> str:
    """The open requests of an agency's roster, soonest deadline first (`total` counts those not shown)."""
    v = board_voice(agency)
    if not views:
        return ":sparkles: " + v._("Nothing is waiting for a decision at %(agency)s.", agency=agency_name)
    lines: list[str] = [
        v._("*%(count)s waiting for a decision at %(agency)s:*", count=total, agency=agency_name)
    ]
    for view in views:
        request = view.request
        title = escape(cut(str(request.terms.get("project_title") or ""), 80))
        status = ""
        if request.status == RequestStatus.awaiting_cosign.value:
            status = " " + v._("(awaiting co-sign)")
        training = " :robot_face: " + v._("AI training") if request.ai_training else ""
        due = v._("due %(due)s", due=v.date(request.decision_due_at))
        lines.append(
            f"• `{escape(request.id)}` *{title}* — {escape(view.artist.name)}{status}{training} · {due}"
        )
    if total > len(views):
        lines.append(v._("…and %(count)s more.", count=total - len(views)))
    return "\n".join(lines)


# ---------------------------------------------------------------- said on the board itself


def member_notice(agency: Audience, payload: Mapping[str, Any]) -> str:
    """The board's line when an operator lets a member act for the agency, or stops them."""
    v = board_voice(agency)
    member = Mrkdwn(mention(str(payload.get("member") or "")))
    if payload.get("event") == "agency.member_removed":
        return ":bust_in_silhouette: " + v._(
            "%(member)s can no longer act for the agency on this board (changed by an operator).",
            member=member,
        )
    return ":busts_in_silhouette: " + v._(
        "%(member)s can now approve, deny and nudge for the agency on this board, and use `/likeness` "
        "(changed by an operator).",
        member=member,
    )


def report_comment(report: Report, agency: Audience | None = None) -> str:
    """The text posted with the report's chart and CSV."""
    v = board_voice(agency)
    period = f"{v.date(report.period_start, day_only=True)} – {v.date(report.period_end, day_only=True)}"
    lines = [
        ":bar_chart: "
        + v._(
            "*Likeness usage report — %(recipient)s* (%(period)s)",
            recipient=report.recipient_name,
            period=Mrkdwn(period),
        ),
        v._(
            "Uses: *%(uses)s* · Violations: *%(violations)s*",
            uses=report.total_uses,
            violations=report.total_violations,
        )
        + (" :rotating_light:" if report.total_violations else ""),
    ]
    for grant in report.grants[:15]:
        uses = v.join([f"{n}× {escape(_use(v, k))}" for k, n in grant.uses_by_kind.items()]) or v.label(
            N_("no use")
        )
        flag = ""
        if grant.violations:
            flag = " · " + v._("*%(count)s violation(s)*", count=grant.violations)
        if grant.reasons:
            flag += ": " + "; ".join(
                f"{escape(v.label(reason_on_board(code)))} ({n})" for code, n in grant.reasons.items()
            )
        lines.append(
            f"• {escape(grant.artist_name)} — {escape(cut(grant.project_title, 60))} "
            f"({escape(_status(v, grant.status))}): {uses}{flag}"
        )
    if report.pending:
        lines.append(v._("Waiting for a decision: %(count)s", count=len(report.pending)))
    for item in report.expiring_soon[:10]:
        lines.append(
            ":calendar: "
            + v._(
                "%(artist)s — %(title)s ends %(ends)s",
                artist=item.artist_name,
                title=cut(item.project_title, 60),
                ends=v.date(item.ends_at),
            )
        )
    if report.checkpoint is not None:
        # The whole signed checkpoint: this channel is a witness of the audit chain's head.
        lines.append(
            ":lock: "
            + v._(
                "Audit checkpoint at event %(seq)s — keep this; `likeness audit verify --checkpoints FILE` "
                "checks the database still reaches it:",
                seq=str(report.checkpoint.get("seq")),
            )
        )
        lines.append("```" + escape(json.dumps(report.checkpoint, sort_keys=True)) + "```")
    return "\n".join(lines)


def _use(v: BoardVoice, kind: str) -> str:
    # English boards name the kind as reported ('render'); others read the catalog's word.
    words = USE_KINDS.get(kind)  # type: ignore[call-overload]
    return kind if v.language.value == "en" or words is None else v.label(words)
