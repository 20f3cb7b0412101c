"""What the agency's Slack board shows: Block Kit for a request's root message and its thread.

Pure rendering: every function takes what the workflow stored and returns Slack payloads in the
agency's language (`bot.render.slack_words`, over the same catalogs as the artist's card); the
words it shares with the card are in `bot.render.words`. Which decision buttons appear is the
workflow's answer (`workflow.agency_outcomes`: what the artist's policy leaves to the agency,
DESIGN §4), handed in by the caller; the workflow checks again when a button is pressed, so a
button shown here is a convenience, never a permission. Forms and answers to one person are in
`bot.render.slack_answers`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from bot.models import OPEN_STATUSES, RED_LINE_REASON, ActorKind, Outcome, Policy, RequestStatus
from bot.render.buttons import button_value
from bot.render.slack_answers import (
    DENY_FORM as DENY_FORM,
)
from bot.render.slack_answers import (
    PENDING_SHOWN as PENDING_SHOWN,
)
from bot.render.slack_answers import (
    REASON_BLOCK as REASON_BLOCK,
)
from bot.render.slack_answers import (
    REASON_INPUT as REASON_INPUT,
)
from bot.render.slack_answers import (
    STATUS_WORDS,
)
from bot.render.slack_answers import (
    deny_form as deny_form,
)
from bot.render.slack_answers import (
    help_text as help_text,
)
from bot.render.slack_answers import (
    pending_text as pending_text,
)
from bot.render.slack_answers import (
    refusal_text as refusal_text,
)
from bot.render.slack_answers import (
    report_comment as report_comment,
)
from bot.render.slack_blocks import Block as Block
from bot.render.slack_blocks import SlackMessage as SlackMessage
from bot.render.slack_blocks import button, cut, mention, mrkdwn, section
from bot.render.slack_blocks import escape as escape
from bot.render.slack_blocks import slack_date as slack_date
from bot.render.slack_pause import PAUSE_EVENTS
from bot.render.slack_pause import thread_line as pause_thread_line
from bot.render.slack_words import BoardVoice, Mrkdwn, board_voice
from bot.render.words import (
    LIKENESS,
    MEDIA,
    N_,
    channel_on_board,
    role_on_board,
    sensitive_on_board,
)

if TYPE_CHECKING:
    # The rows the board is drawn from; only their attributes are read, so the type stays here.
    from storage.queries import RequestView
    from storage.tables import Decision


ACTION_APPROVE = "board_approve"
ACTION_DENY = "board_deny"
ACTION_NUDGE = "board_nudge"
METADATA_EVENT = "likeness_request"

# Slack's own limits (Block Kit reference); longer texts are cut with an ellipsis.
_HEADER_MAX = 150
_FIELD_MAX = 2000
_DESCRIPTION_SHOWN = 700
_REASON_MAX = 500

_POLICY_WORDS = {
    Policy.artist_only: N_("the artist decides alone"),
    Policy.agency_may_decide: N_("the agency may decide"),
    Policy.both_required: N_("artist and agency must both approve"),
}


# ---------------------------------------------------------------- who decided, in words


def _who(v: BoardVoice, view: RequestView, decision: Decision) -> Mrkdwn:
    if decision.actor_kind == ActorKind.artist.value:
        name = decision.actor_display or view.artist.name
    elif decision.actor_kind == ActorKind.agency.value:
        name = decision.actor_display or (view.agency.name if view.agency else v.label(N_("the agency")))
    else:
        name = decision.actor_display or decision.actor_kind
    where = v.label(channel_on_board(decision.channel, decision.channel))
    return v._(
        "*%(name)s* (%(role)s, %(where)s)",
        name=name,
        role=v.label(role_on_board(decision.actor_kind)),
        where=where,
    )


def _reason(v: BoardVoice, reason: str | None) -> str:
    return "\n>" + v._("Reason: %(reason)s", reason=cut(reason, _REASON_MAX)) if reason else ""


def _grant_line(v: BoardVoice, view: RequestView) -> str:
    grant = view.grant
    if grant is None:
        return ""
    starts, ends = v.date(grant.starts_at, day_only=True), v.date(grant.ends_at, day_only=True)
    if grant.status == "scheduled":
        return ":calendar: " + v._("Grant starts %(starts)s → %(ends)s", starts=starts, ends=ends)
    if grant.status == "active":
        return ":large_green_circle: " + v._("Grant active %(starts)s → %(ends)s", starts=starts, ends=ends)
    if grant.status == "expired":
        return ":white_circle: " + v._("Grant expired (%(starts)s → %(ends)s)", starts=starts, ends=ends)
    if grant.status == "paused":
        return ":double_vertical_bar: " + v._(
            "*Grant paused* (%(starts)s → %(ends)s) — the artist paused everything", starts=starts, ends=ends
        )
    if grant.status == "revoked":
        when = Mrkdwn(f" · {v.date(grant.revoked_at)}" if grant.revoked_at else "")
        return ":no_entry: " + v._(
            "*Consent revoked*%(when)s — the creator must stop use and delete", when=when
        )
    return v._("Grant %(status)s", status=grant.status)


def status_line(view: RequestView) -> str:
    """The request's current status in one mrkdwn line, grant included once there is one."""
    v = board_voice(view.agency)
    request = view.request
    status = RequestStatus(request.status)
    decisions = view.decisions
    if status is RequestStatus.pending:
        line = ":hourglass_flowing_sand: " + v._(
            "*Waiting for %(artist)s* — decide by %(due)s",
            artist=view.artist.name,
            due=v.date(request.decision_due_at),
        )
    elif status is RequestStatus.awaiting_cosign:
        first = decisions[0] if decisions else None
        by = _who(v, view, first) if first else v._("one side")
        due = v.date(request.decision_due_at)
        if first and first.actor_kind == ActorKind.artist.value:
            line = v._("*Approved by %(by)s; waiting for the agency to co-sign* — by %(due)s", by=by, due=due)
        else:
            line = v._("*Approved by %(by)s; waiting for the artist to co-sign* — by %(due)s", by=by, due=due)
        line = ":hourglass: " + line
    elif status is RequestStatus.approved:
        approvers = v.listing([_who(v, view, d) for d in decisions])  # both, when both had to sign
        line = ":white_check_mark: " + (
            v._("*Approved* by %(who)s", who=Mrkdwn(approvers)) if approvers else v._("*Approved*")
        )
        if request.decided_at:
            line += f" · {v.date(request.decided_at)}"
    elif status is RequestStatus.denied:
        denial = next((d for d in decisions if d.outcome == Outcome.deny.value), None)
        if denial is None and request.reason == RED_LINE_REASON:
            line = ":no_entry_sign: " + v._("*Denied at once: it crosses one of the artist's red lines*")
        else:
            line = ":x: " + (
                v._("*Denied* by %(who)s", who=_who(v, view, denial)) if denial else v._("*Denied*")
            )
            if request.decided_at:
                line += f" · {v.date(request.decided_at)}"
            line += _reason(v, request.reason)
    elif status is RequestStatus.lapsed:
        line = ":alarm_clock: " + v._("*Lapsed* — nobody decided before the deadline")
    else:
        line = ":leftwards_arrow_with_hook: " + v._("*Withdrawn by the creator*")
    grant_line = _grant_line(v, view)
    return line + ("\n" + grant_line if grant_line else "")


# ---------------------------------------------------------------- the root message


def _confirm(v: BoardVoice, title: str, text: str, confirm: str) -> Block:
    return {
        "title": {"type": "plain_text", "text": title},
        "text": mrkdwn(text),
        "confirm": {"type": "plain_text", "text": confirm},
        "deny": {"type": "plain_text", "text": v.label(N_("Cancel"))},
    }


def decision_buttons(view: RequestView, agency_may: Collection[Outcome]) -> list[Block]:
    """The buttons for an open request: Approve / Deny for the decisions the agency may make
    (`agency_may`, the workflow's answer), Nudge while the artist has not decided; none once closed.

    Under `agency_may_decide` they decide on the artist's behalf; under `both_required` the
    agency's approval is a co-signature.
    """
    request = view.request
    if RequestStatus(request.status) not in OPEN_STATUSES:
        return []
    v = board_voice(view.agency)
    both = Policy(view.artist.policy) is Policy.both_required
    value = button_value(request.id, request.terms_hash)
    artist = view.artist.name
    buttons: list[Block] = []
    if Outcome.approve in agency_may:
        if both:
            approve = button(ACTION_APPROVE, v.label(N_("Approve (co-sign)")), value, "primary")
            approve["confirm"] = _confirm(
                v,
                v.label(N_("Co-sign?")),
                v._("The agency's approval; *%(artist)s* must approve too before it counts.", artist=artist),
                v.label(N_("Co-sign")),
            )
        else:
            approve = button(ACTION_APPROVE, v.label(N_("Approve on behalf")), value, "primary")
            approve["confirm"] = _confirm(
                v,
                v.label(N_("Approve on behalf?")),
                v._(
                    "This grants *%(artist)s*'s consent to these exact terms, recorded in your name.",
                    artist=artist,
                ),
                v.label(N_("Approve")),
            )
        buttons.append(approve)
    if Outcome.deny in agency_may:
        label = v.label(N_("Deny")) if both else v.label(N_("Deny on behalf"))
        buttons.append(button(ACTION_DENY, label, value, "danger"))
    if ActorKind.artist.value not in {d.actor_kind for d in view.decisions}:
        buttons.append(button(ACTION_NUDGE, v.label(N_("Nudge artist")), value))
    return buttons


def _sensitive_block(v: BoardVoice, terms: dict[str, Any]) -> Block | None:
    flags = [v.label(sensitive_on_board(str(s))) for s in terms.get("sensitive") or []]
    if not flags:
        return None
    shown = Mrkdwn(v.join([f"*{escape(f)}*" for f in flags]))
    return section(":warning: " + v._("*Sensitive:* %(flags)s", flags=shown))


def _ai_training_block(v: BoardVoice, view: RequestView) -> Block | None:
    if not view.request.ai_training:
        return None
    return section(
        ":robot_face: "
        + v._(
            "*AI training requested* — the likeness may train or fine-tune a model. This is separate, "
            "personal consent: only *%(artist)s* can approve it, with a second confirmation.",
            artist=view.artist.name,
        )
    )


def _compensation(v: BoardVoice, terms: dict[str, Any]) -> str:
    value = terms.get("compensation")
    if value == "none":
        return v.label(N_("none"))
    if isinstance(value, dict):
        return f"{escape(str(value.get('amount')))} {escape(str(value.get('currency')))}"
    return v.label(N_("not stated"))


def _term(v: BoardVoice, table: dict[Any, str], code: str) -> str:
    """A term's value in the agency's words ('short_video' → 'short video' / '短视频')."""
    words = table.get(code)
    return escape(v.label(words) if words else code.replace("_", " "))


def _territory(v: BoardVoice, code: str) -> str:
    # English boards keep the codes ('CN, SG'); others read the country's name.
    return escape(code if v.language.value == "en" else v.voice.territory(code))


def _fields(v: BoardVoice, view: RequestView) -> list[Block]:
    terms = view.request.terms
    policy = _POLICY_WORDS.get(Policy(view.artist.policy))
    window = f"{v.iso(terms.get('starts_at'))} →\n{v.iso(terms.get('ends_at'))}"
    sublicensing = (
        v.label(N_("*yes* — may pass it on to third parties"))
        if terms.get("sublicensing")
        else v.label(N_("no"))
    )
    pairs = [
        (N_("Artist"), f"{escape(view.artist.name)}\n_{v.label(policy) if policy else view.artist.policy}_"),
        (N_("Creator"), escape(view.creator.name)),
        (N_("Media"), v.join([_term(v, MEDIA, str(m)) for m in terms.get("media") or []])),
        (N_("Likeness"), v.join([_term(v, LIKENESS, str(x)) for x in terms.get("likeness") or []])),
        (N_("Territory"), v.join([_territory(v, str(t)) for t in terms.get("territory") or []])),
        (N_("Window"), window),
        (N_("Compensation"), _compensation(v, terms)),
        (N_("Sublicensing"), sublicensing),
        (N_("Decide by"), v.date(view.request.decision_due_at)),
        (N_("AI labelling"), escape(cut(str(terms.get("labeling") or v.label(N_("not stated"))), 300))),
    ]
    return [mrkdwn(cut(f"*{v.label(name)}*\n{value or '—'}", _FIELD_MAX)) for name, value in pairs]


def request_blocks(
    view: RequestView, *, agency_may: Collection[Outcome] = (), with_buttons: bool = True
) -> list[Block]:
    """The board's picture of one request: flags first, then the terms in short, then its status."""
    v = board_voice(view.agency)
    request = view.request
    terms = request.terms
    title = str(terms.get("project_title") or request.id)
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": cut(f"🎭 {title}", _HEADER_MAX)}}
    ]
    for flag in (_sensitive_block(v, terms), _ai_training_block(v, view)):
        if flag is not None:
            blocks.append(flag)
    description = cut(str(terms.get("use_description") or ""), _DESCRIPTION_SHOWN)
    blocks.append(section(v._("*Use:* %(description)s", description=description)))
    if terms.get("preview_required"):
        blocks.append(section(v._("*Outputs:* each must be released by the artist before it is published")))
    blocks.append({"type": "section", "fields": _fields(v, view)})
    blocks.append({"type": "divider"})
    blocks.append({"type": "section", "block_id": "status", "text": mrkdwn(status_line(view))})
    buttons = decision_buttons(view, agency_may) if with_buttons else []
    if buttons:
        blocks.append({"type": "actions", "block_id": f"board:{request.id}", "elements": buttons})
    reference = v._(
        "Request `%(request_id)s` · terms `%(terms)s` · `/likeness status %(request_id)s`",
        request_id=request.id,
        terms=request.terms_hash[:12],
    )
    blocks.append({"type": "context", "elements": [mrkdwn(reference)]})
    return blocks


def root_message(view: RequestView, *, agency_may: Collection[Outcome] = ()) -> SlackMessage:
    """The request's root message on the board, as it stands now; `agency_may` is
    `workflow.agency_outcomes(view)`, the decisions offered as buttons."""
    v = board_voice(view.agency)
    request = view.request
    status = STATUS_WORDS.get(request.status)
    text: str = v._(
        "Likeness request for %(artist)s: %(title)s — %(status)s",
        artist=view.artist.name,
        title=str(request.terms.get("project_title") or request.id),
        status=v.label(status) if status else request.status.replace("_", " "),
    )
    if request.ai_training:
        text += " " + v._("(AI training requested)")
    metadata = {
        "event_type": METADATA_EVENT,
        "event_payload": {"request_id": request.id, "status": request.status},
    }
    return SlackMessage(text=text, blocks=request_blocks(view, agency_may=agency_may), metadata=metadata)


def status_message(view: RequestView) -> SlackMessage:
    """One request's current picture for `/likeness status`, without buttons."""
    status = STATUS_WORDS.get(view.request.status)
    said = board_voice(view.agency).label(status) if status else view.request.status
    return SlackMessage(text=f"{view.request.id}: {said}", blocks=request_blocks(view, with_buttons=False))


# ---------------------------------------------------------------- thread replies


def thread_reply(view: RequestView, payload: dict[str, Any]) -> str:
    """One line in the request's thread for a `board_update` notice's event."""
    v = board_voice(view.agency)
    event = str(payload.get("event") or "update")
    artist, creator = view.artist.name, view.creator.name
    by = str(payload.get("decided_by_name") or payload.get("decided_by") or v.label(N_("someone")))
    where = v.label(channel_on_board(str(payload.get("channel")), ""))
    when = Mrkdwn(f" · {v.iso(payload['decided_at'])}" if payload.get("decided_at") else "")
    said = {"by": by, "where": where, "when": when}
    if event == "request.approved":
        return ":white_check_mark: " + v._(
            "Approved by *%(by)s* %(where)s%(when)s. The grant and its signed receipt are made.", **said
        )
    if event == "request.awaiting_cosign":
        return ":hourglass: " + v._(
            "*%(by)s* approved %(where)s%(when)s; it needs the co-signature before it counts.", **said
        )
    if event == "request.denied":
        return ":x: " + v._("Denied by *%(by)s* %(where)s%(when)s.", **said) + _reason(v, view.request.reason)
    if event == "request.lapsed":
        return ":alarm_clock: " + v._("The deadline passed without a decision; the request lapsed.")
    if event == "request.withdrawn":
        return ":leftwards_arrow_with_hook: " + v._("%(creator)s withdrew the request.", creator=creator)
    if event == "request.nudged":
        who = Mrkdwn(mention(str(payload.get("by") or "")))
        return ":bell: " + v._(
            "%(who)s nudged %(artist)s; the card was sent to them again in Telegram.", who=who, artist=artist
        )
    if event == "reminder.escalation":
        due = v.iso(payload.get("due_at") or view.request.decision_due_at.isoformat())
        return ":rotating_light: " + v._(
            "Still no decision from %(artist)s; it lapses %(due)s. Time to call them?", artist=artist, due=due
        )
    if event == "reminder.grant_expiry":
        return ":calendar: " + v._(
            "The grant ends %(ends)s. Renewal is always a new request.", ends=v.iso(payload.get("ends_at"))
        )
    if event == "grant.active":
        return ":large_green_circle: " + v._("The grant is now active.")
    if event == "grant.expired":
        return ":white_circle: " + v._("The grant expired; any further use is a violation.")
    if event == "grant.revoked":
        who = Mrkdwn(escape(artist))
        if payload.get("revoked_by") == ActorKind.agency.value:
            member = Mrkdwn(mention(str(payload.get("by") or "")))
            who = v._("%(member)s (for the agency, on behalf of %(artist)s)", member=member, artist=artist)
        return ":no_entry: " + v._(
            "%(who)s revoked consent. %(creator)s was told to stop use at once and to confirm deletion "
            "of training data and models.",
            who=who,
            creator=creator,
        )
    if event in PAUSE_EVENTS:
        return pause_thread_line(view.artist.name, view.creator.name, payload, v)
    if event == "deletion.escalation":
        return ":rotating_light: " + v._(
            "%(creator)s has not confirmed deleting %(artist)s's likeness data, due %(due)s.",
            creator=creator,
            artist=artist,
            due=v.iso(payload.get("due_at")),
        )
    if event == "deletion.confirmed":
        return ":wastebasket: " + v._(
            "%(creator)s confirmed the deletion (done %(done)s); the signed confirmation is kept.",
            creator=creator,
            done=v.iso(payload.get("deleted_at")),
        )
    if event == "artist.updated":  # an operator changed who may decide: the buttons above follow it
        return v._("The artist's decision policy changed; the buttons follow it.")
    return v._("Update: %(event)s", event=event)
