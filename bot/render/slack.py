"""What the agency's Slack board shows: Block Kit for a request's root message, its thread, forms.

Pure rendering: every function takes what the workflow stored and returns Slack payloads, in
English; the words it shares with the Telegram card are in `bot.render.words`.
Which decision buttons appear is the workflow's answer (`workflow.agency_outcomes`: what the
artist's policy leaves to the agency, DESIGN §4), handed in by the caller; the workflow checks
again when a button is pressed, so a button shown here is a convenience, never a permission.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from bot.models import OPEN_STATUSES, RED_LINE_REASON, ActorKind, Outcome, Policy, RequestStatus
from bot.render.buttons import DenyForm, button_value
from bot.render.slack_blocks import Block as Block
from bot.render.slack_blocks import SlackMessage as SlackMessage
from bot.render.slack_blocks import button, cut, iso_date, mention, mrkdwn, section
from bot.render.slack_blocks import escape as escape
from bot.render.slack_blocks import slack_date as slack_date
from bot.render.slack_pause import PAUSE_EVENTS
from bot.render.slack_pause import thread_line as pause_thread_line
from bot.render.words import Refusal, channel_on_board, reason_on_board, role_on_board, sensitive_on_board
from bot.report_types import Report

if TYPE_CHECKING:
    # The rows the board is drawn from; only their attributes are read, so the type stays here.
    from storage.queries import RequestView
    from storage.tables import Decision


ACTION_APPROVE = "board_approve"
ACTION_DENY = "board_deny"
ACTION_NUDGE = "board_nudge"
DENY_FORM = "board_deny_reason"
REASON_BLOCK = "reason"
REASON_INPUT = "reason_text"
METADATA_EVENT = "likeness_request"

# Slack's own limits (Block Kit reference); longer texts are cut with an ellipsis.
_HEADER_MAX = 150
_FIELD_MAX = 2000
_DESCRIPTION_SHOWN = 700
_REASON_MAX = 500
PENDING_SHOWN = 40

_POLICY_WORDS = {
    Policy.artist_only: "the artist decides alone",
    Policy.agency_may_decide: "the agency may decide",
    Policy.both_required: "artist and agency must both approve",
}


# ---------------------------------------------------------------- who decided, in words


def _who(view: RequestView, decision: Decision) -> str:
    if decision.actor_kind == ActorKind.artist.value:
        name = decision.actor_display or view.artist.name
    elif decision.actor_kind == ActorKind.agency.value:
        name = decision.actor_display or (view.agency.name if view.agency else "the agency")
    else:
        name = decision.actor_display or decision.actor_kind
    where = channel_on_board(decision.channel, decision.channel)
    return f"*{escape(name)}* ({role_on_board(decision.actor_kind)}, {where})"


def status_line(view: RequestView) -> str:
    """The request's current status in one mrkdwn line, grant included once there is one."""
    request = view.request
    status = RequestStatus(request.status)
    decisions = view.decisions
    if status is RequestStatus.pending:
        line = f":hourglass_flowing_sand: *Waiting for {escape(view.artist.name)}* — decide by "
        line += slack_date(request.decision_due_at)
    elif status is RequestStatus.awaiting_cosign:
        first = decisions[0] if decisions else None
        other = "the agency" if first and first.actor_kind == ActorKind.artist.value else "the artist"
        by = _who(view, first) if first else "one side"
        line = f":hourglass: *Approved by {by}; waiting for {other} to co-sign* — by "
        line += slack_date(request.decision_due_at)
    elif status is RequestStatus.approved:
        approvers = " and ".join(_who(view, d) for d in decisions)  # both, when both had to sign
        line = ":white_check_mark: *Approved*" + (f" by {approvers}" if approvers else "")
        if request.decided_at:
            line += f" · {slack_date(request.decided_at)}"
    elif status is RequestStatus.denied:
        denial = next((d for d in decisions if d.outcome == Outcome.deny.value), None)
        if denial is None and request.reason == RED_LINE_REASON:
            line = ":no_entry_sign: *Denied at once: it crosses one of the artist's red lines*"
        else:
            line = ":x: *Denied*" + (f" by {_who(view, denial)}" if denial else "")
            if request.decided_at:
                line += f" · {slack_date(request.decided_at)}"
            if request.reason:
                line += f"\n>Reason: {escape(cut(request.reason, _REASON_MAX))}"
    elif status is RequestStatus.lapsed:
        line = ":alarm_clock: *Lapsed* — nobody decided before the deadline"
    else:
        line = ":leftwards_arrow_with_hook: *Withdrawn by the creator*"
    grant = view.grant
    if grant is not None:
        window = (
            f"{slack_date(grant.starts_at, '{date_short}')} → {slack_date(grant.ends_at, '{date_short}')}"
        )
        grant_line = {
            "scheduled": f":calendar: Grant starts {window}",
            "active": f":large_green_circle: Grant active {window}",
            "expired": f":white_circle: Grant expired ({window})",
            "paused": f":double_vertical_bar: *Grant paused* ({window}) — the artist paused everything",
            "revoked": ":no_entry: *Consent revoked*"
            + (f" · {slack_date(grant.revoked_at)}" if grant.revoked_at else "")
            + " — the creator must stop use and delete",
        }.get(grant.status, f"Grant {escape(grant.status)}")
        line += "\n" + grant_line
    return line


# ---------------------------------------------------------------- the root message


def decision_buttons(view: RequestView, agency_may: Collection[Outcome]) -> list[Block]:
    """The buttons for an open request: Approve / Deny for the decisions the agency may make
    (`agency_may`, the workflow's answer), Nudge while the artist has not decided; none once closed.

    Under `agency_may_decide` they decide on the artist's behalf; under `both_required` the
    agency's approval is a co-signature.
    """
    request = view.request
    if RequestStatus(request.status) not in OPEN_STATUSES:
        return []
    both = Policy(view.artist.policy) is Policy.both_required
    value = button_value(request.id, request.terms_hash)
    artist = escape(view.artist.name)
    buttons: list[Block] = []
    if Outcome.approve in agency_may:
        if both:
            approve = button(ACTION_APPROVE, "Approve (co-sign)", value, "primary")
            approve["confirm"] = {
                "title": {"type": "plain_text", "text": "Co-sign?"},
                "text": mrkdwn(f"The agency's approval; *{artist}* must approve too before it counts."),
                "confirm": {"type": "plain_text", "text": "Co-sign"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            }
        else:
            approve = button(ACTION_APPROVE, "Approve on behalf", value, "primary")
            approve["confirm"] = {
                "title": {"type": "plain_text", "text": "Approve on behalf?"},
                "text": mrkdwn(
                    f"This grants *{artist}*'s consent to these exact terms, recorded in your name."
                ),
                "confirm": {"type": "plain_text", "text": "Approve"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            }
        buttons.append(approve)
    if Outcome.deny in agency_may:
        buttons.append(button(ACTION_DENY, "Deny" if both else "Deny on behalf", value, "danger"))
    if ActorKind.artist.value not in {d.actor_kind for d in view.decisions}:
        buttons.append(button(ACTION_NUDGE, "Nudge artist", value))
    return buttons


def _sensitive_block(terms: dict[str, Any]) -> Block | None:
    flags = [sensitive_on_board(str(s)) for s in terms.get("sensitive") or []]
    if not flags:
        return None
    return section(":warning: *Sensitive:* " + ", ".join(f"*{escape(f)}*" for f in flags))


def _ai_training_block(view: RequestView) -> Block | None:
    if not view.request.ai_training:
        return None
    who = escape(view.artist.name)
    return section(
        ":robot_face: *AI training requested* — the likeness may train or fine-tune a model. "
        f"This is separate, personal consent: only *{who}* can approve it, with a second confirmation."
    )


def _compensation(terms: dict[str, Any]) -> str:
    value = terms.get("compensation")
    if value == "none":
        return "none"
    if isinstance(value, dict):
        return f"{escape(str(value.get('amount')))} {escape(str(value.get('currency')))}"
    return "not stated"


def _fields(view: RequestView) -> list[Block]:
    terms = view.request.terms
    policy = _POLICY_WORDS.get(Policy(view.artist.policy), view.artist.policy)
    window = f"{iso_date(terms.get('starts_at'))} →\n{iso_date(terms.get('ends_at'))}"
    territory = ", ".join(escape(str(t)) for t in terms.get("territory") or [])
    sublicensing = "*yes* — may pass it on to third parties" if terms.get("sublicensing") else "no"
    pairs = [
        ("Artist", f"{escape(view.artist.name)}\n_{policy}_"),
        ("Creator", escape(view.creator.name)),
        ("Media", ", ".join(escape(str(m)).replace("_", " ") for m in terms.get("media") or [])),
        ("Likeness", ", ".join(escape(str(x)) for x in terms.get("likeness") or [])),
        ("Territory", territory),
        ("Window", window),
        ("Compensation", _compensation(terms)),
        ("Sublicensing", sublicensing),
        ("Decide by", slack_date(view.request.decision_due_at)),
        ("AI labelling", escape(cut(str(terms.get("labeling") or "not stated"), 300))),
    ]
    return [mrkdwn(cut(f"*{name}*\n{value or '—'}", _FIELD_MAX)) for name, value in pairs]


def request_blocks(
    view: RequestView, *, agency_may: Collection[Outcome] = (), with_buttons: bool = True
) -> list[Block]:
    """The board's picture of one request: flags first, then the terms in short, then its status."""
    request = view.request
    terms = request.terms
    title = str(terms.get("project_title") or request.id)
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": cut(f"🎭 {title}", _HEADER_MAX)}}
    ]
    for flag in (_sensitive_block(terms), _ai_training_block(view)):
        if flag is not None:
            blocks.append(flag)
    description = escape(cut(str(terms.get("use_description") or ""), _DESCRIPTION_SHOWN))
    blocks.append(section(f"*Use:* {description}"))
    if terms.get("preview_required"):
        blocks.append(section("*Outputs:* each must be released by the artist before it is published"))
    blocks.append({"type": "section", "fields": _fields(view)})
    blocks.append({"type": "divider"})
    blocks.append({"type": "section", "block_id": "status", "text": mrkdwn(status_line(view))})
    buttons = decision_buttons(view, agency_may) if with_buttons else []
    if buttons:
        blocks.append({"type": "actions", "block_id": f"board:{request.id}", "elements": buttons})
    blocks.append(
        {
            "type": "context",
            "elements": [
                mrkdwn(
                    f"Request `{request.id}` · terms `{request.terms_hash[:12]}` · "
                    f"`/likeness status {request.id}`"
                )
            ],
        }
    )
    return blocks


def root_message(view: RequestView, *, agency_may: Collection[Outcome] = ()) -> SlackMessage:
    """The request's root message on the board, as it stands now; `agency_may` is
    `workflow.agency_outcomes(view)`, the decisions offered as buttons."""
    request = view.request
    title = escape(str(request.terms.get("project_title") or request.id))
    text = f"Likeness request for {escape(view.artist.name)}: {title} — {request.status.replace('_', ' ')}"
    if request.ai_training:
        text += " (AI training requested)"
    metadata = {
        "event_type": METADATA_EVENT,
        "event_payload": {"request_id": request.id, "status": request.status},
    }
    return SlackMessage(text=text, blocks=request_blocks(view, agency_may=agency_may), metadata=metadata)


# ---------------------------------------------------------------- thread replies


def thread_reply(view: RequestView, payload: dict[str, Any]) -> str:
    """One line in the request's thread for a `board_update` notice's event."""
    event = str(payload.get("event") or "update")
    artist = escape(view.artist.name)
    creator = escape(view.creator.name)
    by = escape(str(payload.get("decided_by_name") or payload.get("decided_by") or "someone"))
    where = channel_on_board(str(payload.get("channel")), "")
    when = f" · {iso_date(payload['decided_at'])}" if payload.get("decided_at") else ""
    if event == "request.approved":
        return (
            f":white_check_mark: Approved by *{by}* {where}{when}. The grant and its signed receipt are made."
        )
    if event == "request.awaiting_cosign":
        return f":hourglass: *{by}* approved {where}{when}; it needs the co-signature before it counts."
    if event == "request.denied":
        reason = view.request.reason
        text = f":x: Denied by *{by}* {where}{when}."
        return text + (f"\n>Reason: {escape(cut(reason, _REASON_MAX))}" if reason else "")
    if event == "request.lapsed":
        return ":alarm_clock: The deadline passed without a decision; the request lapsed."
    if event == "request.withdrawn":
        return f":leftwards_arrow_with_hook: {creator} withdrew the request."
    if event == "request.nudged":
        who = mention(str(payload.get("by") or ""))
        return f":bell: {who} nudged {artist}; the card was sent to them again in Telegram."
    if event == "reminder.escalation":
        due = iso_date(payload.get("due_at") or view.request.decision_due_at.isoformat())
        return f":rotating_light: Still no decision from {artist}; it lapses {due}. Time to call them?"
    if event == "reminder.grant_expiry":
        return (
            f":calendar: The grant ends {iso_date(payload.get('ends_at'))}. Renewal is always a new request."
        )
    if event == "grant.active":
        return ":large_green_circle: The grant is now active."
    if event == "grant.expired":
        return ":white_circle: The grant expired; any further use is a violation."
    if event == "grant.revoked":
        who = artist
        if payload.get("revoked_by") == ActorKind.agency.value:
            who = f"{mention(str(payload.get('by') or ''))} (for the agency, on behalf of {artist})"
        return (
            f":no_entry: {who} revoked consent. {creator} was told to stop use at once and to confirm "
            "deletion of training data and models."
        )
    if event in PAUSE_EVENTS:
        return pause_thread_line(view.artist.name, view.creator.name, payload)
    if event == "deletion.escalation":
        due = iso_date(payload.get("due_at"))
        return f":rotating_light: {creator} has not confirmed deleting {artist}'s likeness data, due {due}."
    if event == "deletion.confirmed":
        done = iso_date(payload.get("deleted_at"))
        return (
            f":wastebasket: {creator} confirmed the deletion (done {done}); the signed confirmation is kept."
        )
    if event == "artist.updated":  # an operator changed who may decide: the buttons above follow it
        return "The artist's decision policy changed; the buttons follow it."
    return f"Update: {escape(event)}"


# ---------------------------------------------------------------- deny form


def deny_form(view: RequestView, *, channel_id: str, message_ts: str, terms_hash: str) -> dict[str, Any]:
    """The modal that asks why, opened by Deny; its private metadata says what is denied, on which terms."""
    request = view.request
    title = escape(str(request.terms.get("project_title") or request.id))
    both = Policy(view.artist.policy) is Policy.both_required
    intro = (
        f"Deny *{title}* for *{escape(view.artist.name)}*."
        if both
        else f"Deny *{title}* on behalf of *{escape(view.artist.name)}*."
    )
    form = DenyForm(request.id, terms_hash, channel_id, message_ts)
    return {
        "type": "modal",
        "callback_id": DENY_FORM,
        "private_metadata": form.private_metadata(),
        "title": {"type": "plain_text", "text": "Deny request"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(intro + " The creator and the artist are told; this cannot be undone."),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_INPUT,
                    "multiline": True,
                    "max_length": _REASON_MAX,
                    "placeholder": {"type": "plain_text", "text": "e.g. the fee is below the agreed rate"},
                },
            },
        ],
    }


# ---------------------------------------------------------------- answers to one person


def refusal_text(why: Refusal) -> str:
    """Tells the person who clicked why nothing happened; for a lost race, who decided and when."""
    if why.code == "already_decided":
        details = why.details
        status = str(details.get("status") or "decided").replace("_", " ")
        name = escape(str(details.get("decided_by_name") or details.get("decided_by") or "someone"))
        kind = str(details.get("decided_by") or "")
        role = role_on_board(kind)
        where = channel_on_board(str(details.get("channel")), "")
        when = iso_date(details["decided_at"]) if details.get("decided_at") else "earlier"
        lead = "You already approved this one" if "co-signature" in why.message else "Too late"
        return f":lock: {lead}: it is *{status}* — decided by *{name}* ({role}, {where}) at {when}."
    if why.code == "not_open":
        return f":lock: Nothing to do: {escape(why.message)}."
    if why.code == "not_found":
        return ":grey_question: That request does not exist (any more)."
    text = f":no_entry: Not done: {escape(why.message)}."
    if why.details.get("next_at"):
        text += f" Again from {iso_date(why.details['next_at'])}."
    return text


def help_text() -> str:
    """What `/likeness` understands."""
    return (
        "*`/likeness` on your agency's board channel:*\n"
        "• `/likeness pending` — requests still waiting for a decision\n"
        "• `/likeness status <request id>` — where one request stands\n"
        "• `/likeness report` — the usage report (chart and CSV) posted here now\n"
        "• `/likeness pause <artist id> [reason]` — pause all of an artist's consents\n"
        "• `/likeness resume <artist id>` — lift a pause your agency made\n"
        "Approve, Deny and Nudge are buttons on each request's message."
    )


def pending_text(agency_name: str, views: list[RequestView], total: int) -> str:
    """The open requests of an agency's roster, soonest deadline first (`total` counts those not shown)."""
    if not views:
        return f":sparkles: Nothing is waiting for a decision at {escape(agency_name)}."
    lines = [f"*{total} waiting for a decision at {escape(agency_name)}:*"]
    for view in views:
        request = view.request
        title = escape(cut(str(request.terms.get("project_title") or ""), 80))
        status = " (awaiting co-sign)" if request.status == RequestStatus.awaiting_cosign.value else ""
        training = " :robot_face: AI training" if request.ai_training else ""
        lines.append(
            f"• `{request.id}` *{title}* — {escape(view.artist.name)}{status}{training} · "
            f"due {slack_date(request.decision_due_at)}"
        )
    if total > len(views):
        lines.append(f"…and {total - len(views)} more.")
    return "\n".join(lines)


def status_message(view: RequestView) -> SlackMessage:
    """One request's current picture for `/likeness status`, without buttons."""
    return SlackMessage(
        text=f"{view.request.id}: {view.request.status}", blocks=request_blocks(view, with_buttons=False)
    )


def report_comment(report: Report) -> str:
    """The text posted with the report's chart and CSV."""
    period = (
        f"{slack_date(report.period_start, '{date_short}')} – {slack_date(report.period_end, '{date_short}')}"
    )
    lines = [
        f":bar_chart: *Likeness usage report — {escape(report.recipient_name)}* ({period})",
        f"Uses: *{report.total_uses}* · Violations: *{report.total_violations}*"
        + (" :rotating_light:" if report.total_violations else ""),
    ]
    for grant in report.grants[:15]:
        uses = ", ".join(f"{n}× {escape(k)}" for k, n in grant.uses_by_kind.items()) or "no use"
        flag = f" · *{grant.violations} violation(s)*" if grant.violations else ""
        if grant.reasons:
            flag += ": " + "; ".join(f"{reason_on_board(code)} ({n})" for code, n in grant.reasons.items())
        lines.append(
            f"• {escape(grant.artist_name)} — {escape(cut(grant.project_title, 60))} "
            f"({grant.status}): {uses}{flag}"
        )
    if report.pending:
        lines.append(f"Waiting for a decision: {len(report.pending)}")
    for item in report.expiring_soon[:10]:
        lines.append(
            f":calendar: {escape(item.artist_name)} — {escape(cut(item.project_title, 60))} ends "
            f"{slack_date(item.ends_at)}"
        )
    if report.checkpoint is not None:
        # The whole signed checkpoint: this channel is a witness of the audit chain's head.
        lines.append(
            f":lock: Audit checkpoint at event {report.checkpoint.get('seq')} — keep this; "
            "`likeness audit verify --checkpoints FILE` checks the database still reaches it:"
        )
        lines.append("```" + escape(json.dumps(report.checkpoint, sort_keys=True)) + "```")
    return "\n".join(lines)
