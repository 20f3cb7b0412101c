"""What each party is told in Telegram, in their language: answers, lists, reminders, reports.

Everything here is pure: plain data in, Telegram HTML and abstract buttons out, worded through
`bot.render.words`. The request card and its decision buttons are in `telegram_cards.py`.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.models import ActorKind, Language, Outcome, RequestStatus
from bot.render import telegram_deletion
from bot.render.buttons import Action, Button, Keyboard
from bot.render.telegram_pause import creator_line
from bot.render.violations import creator_line as violation_line
from bot.render.words import N_, Voice, actor_on_card, esc, parse_time

if TYPE_CHECKING:
    # A consent as the workflow reads it; only its attributes are read, so the type stays here.
    from bot.workflow.queries import GrantSummary

# Telegram refuses texts over 4096 characters; leave room for what Telegram itself counts differently.
MAX_TEXT = 4000
# answerCallbackQuery texts are cut by Telegram at 200 characters.
MAX_ALERT = 200


@dataclass(frozen=True)
class Rendered:
    """A message ready to send: Telegram HTML and its buttons (none when empty)."""

    text: str
    keyboard: Keyboard = ()


# ---------------------------------------------------------------- answers to taps and commands


_REFUSAL_TEXTS = {
    "not_allowed": N_("Only the artist this request is for can decide it."),
    "not_found": N_("This request no longer exists."),
    "terms_changed": N_("The terms changed; please look at the newest card."),
    "needs_confirmation": N_("Approving AI training needs the extra confirmation."),
    "invalid_input": N_("That did not work; please try again."),
    "hidden_characters": N_(
        "Your reason holds hidden control or text-direction characters. Please type it again as plain text."
    ),
}
_NOT_OPEN = {
    RequestStatus.lapsed.value: N_("Too late: this request lapsed at its deadline."),
    RequestStatus.withdrawn.value: N_("This request was withdrawn by the studio."),
    RequestStatus.approved.value: N_("This request was already approved."),
    RequestStatus.denied.value: N_("This request was already declined."),
    "revoked": N_("This consent was already revoked."),
    "expired": N_("This consent has already ended."),
}


def refusal(language: Language, timezone: str, code: str, message: str, details: Mapping[str, Any]) -> str:
    """Why a tap changed nothing, as plain text short enough for a Telegram alert."""
    v = Voice(language, timezone)
    text: str
    if code == "already_decided":
        when = parse_time(details.get("decided_at"))
        status = str(details.get("status", ""))
        who = str(details.get("decided_by_name") or "") or v.label(
            actor_on_card(str(details.get("decided_by", "")), N_("someone"))
        )
        if status == RequestStatus.awaiting_cosign.value:
            text = v.label(N_("You already approved; waiting for your agency's co-signature."))
        elif status == RequestStatus.denied.value:
            text = v._(
                "Already declined by %(who)s on %(when)s.", who=who, when=v.when(when) if when else "?"
            )
        else:
            text = v._(
                "Already approved by %(who)s on %(when)s.", who=who, when=v.when(when) if when else "?"
            )
        text = html.unescape(text)
    elif code == "not_open":
        text = v.label(_NOT_OPEN.get(str(details.get("status", "")), N_("This is no longer open.")))
        if details.get("status") == RequestStatus.lapsed.value and "deadline" in message:
            text = v.label(N_("Too late: the decision deadline has passed."))
    else:
        text = v.label(_REFUSAL_TEXTS.get(code, N_("That is not possible right now.")))
    return text[:MAX_ALERT]


def forged_button(language: Language) -> str:
    """The answer to a button whose data does not carry our signature."""
    return Voice(language).label(N_("This button is not valid."))


def tap_answer(language: Language, outcome: Outcome) -> str:
    """The short confirmation shown after a decision was recorded."""
    v = Voice(language)
    if outcome is Outcome.approve:
        return v.label(N_("Approved. Thank you."))
    return v.label(N_("Declined. Thank you."))


def confirm_ai_hint(language: Language) -> str:
    """Shown when Approve was tapped on a request that includes AI training."""
    return Voice(language).label(N_("This request includes AI training: please confirm below."))


def decline_recorded(language: Language) -> str:
    """The reply to an artist's own-words reason once the decline is recorded."""
    return Voice(language)._("❌ Declined. Your reason was recorded and sent to the studio.")


def welcome(language: Language, name: str, kind: ActorKind) -> str:
    """The greeting after a Telegram account was linked."""
    v = Voice(language)
    if kind is ActorKind.creator:
        return v._(
            "👋 Hello, %(name)s. Status updates on your likeness requests will arrive in this chat.",
            name=name,
        )
    return "\n".join(
        [
            v._("👋 Welcome, %(name)s. Your Telegram is now linked.", name=name),
            v._(
                "Every request to use your likeness will arrive here as a card with "
                "<b>Approve</b> and <b>Deny</b> buttons. Nothing is allowed unless you approve it."
            ),
            v._("Send /help to see what else you can do."),
        ]
    )


def invite_refused(language: Language, why: str) -> str:
    """The reply to a used, expired or unknown invite link; nothing was linked."""
    v = Voice(language)
    if why == "used":
        return v._("⚠️ This invite link was already used. Ask your agency for a new one.")
    if why == "expired":
        return v._("⚠️ This invite link has expired. Ask your agency for a new one.")
    return v._("⚠️ This invite link is not valid. Check that you opened the whole link, or ask for a new one.")


def already_linked_elsewhere(language: Language) -> str:
    """The reply when this Telegram account already belongs to another artist."""
    return Voice(language)._("⚠️ This Telegram account is already linked to another artist.")


def not_linked(language: Language) -> str:
    """The reply to anyone who has not linked their account with an invite link."""
    return Voice(language)._(
        "This bot is for artists and studios invited by an agency. "
        "Open the personal invite link you were given to connect."
    )


def artists_only(language: Language) -> str:
    """The reply to a creator using an artist's command."""
    return Voice(language)._(
        "This command is for artists. Status updates for studios arrive here on their own."
    )


def help_text(language: Language) -> str:
    """What the bot does and which commands it knows."""
    v = Voice(language)
    lines = [
        v._("<b>Your likeness, your decision.</b>"),
        v._(
            "Each request arrives as a card with every term. Tap <b>Approve</b> or <b>Deny</b>; "
            "AI training always needs a second, explicit confirmation."
        ),
        "",
    ]
    lines += [f"/{name} — {esc(description)}" for name, description in commands(language)]
    return "\n".join(lines)


def commands(language: Language) -> list[tuple[str, str]]:
    """The command menu (setMyCommands) in one language."""
    v = Voice(language)
    return [
        ("pending", v.label(N_("Requests waiting for your decision"))),
        ("grants", v.label(N_("Your active consents, with Revoke"))),
        ("report", v.label(N_("This week's usage report, now"))),
        ("pause", v.label(N_("Pause every consent at once (暂停)"))),
        ("resume", v.label(N_("Lift the pause (恢复)"))),
        ("language", v.label(N_("中文 / English"))),
        ("help", v.label(N_("What this bot does"))),
    ]


@dataclass(frozen=True)
class PendingLine:
    """A request in the /pending list."""

    request_id: str
    title: str
    due_at: datetime
    ai_training: bool


def pending_list(language: Language, timezone: str, items: Sequence[PendingLine]) -> Rendered:
    """The /pending answer: each open request with its deadline, and a button to show its card."""
    v = Voice(language, timezone)
    rows = [
        (
            v._("%(number)s. %(title)s — by %(when)s", number=n, title=item.title, when=v.when(item.due_at))
            + _ai_marker(item.ai_training),
            Button(v.label(N_("Show card %(number)s")) % {"number": n}, Action.show_card, item.request_id),
        )
        for n, item in enumerate(items, 1)
    ]
    return _numbered(
        rows,
        empty=v._("✅ Nothing is waiting for your decision."),
        heading=v._("<b>Waiting for your decision (%(count)s):</b>", count=len(items)),
    )


def _ai_marker(ai_training: bool) -> str:
    return " 🤖" if ai_training else ""


def _numbered(
    rows: Sequence[tuple[str, Button]], *, empty: str, heading: str, footer: tuple[str, ...] = ()
) -> Rendered:
    """A heading, one line and one button per item (Telegram takes 50 rows of buttons), a footer;
    only `empty` when there are no items."""
    if not rows:
        return Rendered(empty)
    lines = [heading, *(line for line, _button in rows), *footer]
    return Rendered("\n".join(lines), tuple((button,) for _line, button in rows[:50]))


@dataclass(frozen=True)
class GrantLine:
    """A consent in the /grants list."""

    grant_id: str
    title: str
    creator_name: str
    starts_at: datetime
    ends_at: datetime
    status: str
    ai_training: bool


def grant_line(summary: GrantSummary) -> GrantLine:
    """How a line about the grant reads in a list or a question."""
    grant = summary.grant
    return GrantLine(
        grant_id=grant.id,
        title=summary.title,
        creator_name=summary.creator_name,
        starts_at=grant.starts_at,
        ends_at=grant.ends_at,
        status=grant.status,
        ai_training=summary.ai_training,
    )


def grants_list(language: Language, timezone: str, items: Sequence[GrantLine]) -> Rendered:
    """The /grants answer: each active or upcoming consent with a Revoke button."""
    v = Voice(language, timezone)
    rows = [
        (
            v._(
                "%(number)s. %(title)s — %(creator)s, %(start)s – %(end)s",
                number=n,
                title=item.title,
                creator=item.creator_name,
                start=v.day(item.starts_at),
                end=v.day(item.ends_at),
            )
            + _ai_marker(item.ai_training),
            Button(v.label(N_("Revoke %(number)s")) % {"number": n}, Action.revoke, item.grant_id),
        )
        for n, item in enumerate(items, 1)
    ]
    return _numbered(
        rows,
        empty=v._("You have no active consents."),
        heading=v._("<b>Your consents (%(count)s):</b>", count=len(items)),
        footer=(v._("Revoking ends a consent at once; the studio must stop and delete."),),
    )


def revoke_question(language: Language, grant: GrantLine) -> Rendered:
    """The confirmation asked before a consent is revoked."""
    v = Voice(language)
    text = "\n".join(
        [
            v._(
                "🛑 Revoke your consent for “%(title)s” (%(creator)s)?",
                title=grant.title,
                creator=grant.creator_name,
            ),
            v._(
                "The studio must stop using your likeness at once and delete any training data "
                "and models made from it. This cannot be undone."
            ),
        ]
    )
    keyboard = (
        (
            Button(v.label(N_("Yes, revoke")), Action.revoke_yes, grant.grant_id),
            Button(v.label(N_("Keep it")), Action.revoke_no, grant.grant_id),
        ),
    )
    return Rendered(text, keyboard)


def revoked(language: Language, timezone: str, title: str, at: datetime) -> str:
    """The confirmation question, once the consent is revoked."""
    v = Voice(language, timezone)
    return "\n".join(
        [
            v._("🛑 <b>Consent revoked</b> for “%(title)s” · %(when)s", title=title, when=v.when(at)),
            v._("The studio has been told to stop and delete; your agency has been told too."),
        ]
    )


def revoke_kept(language: Language, title: str) -> str:
    """The confirmation question, once the artist chose to keep the consent."""
    return Voice(language)._("Nothing changed: your consent for “%(title)s” stays.", title=title)


def report_queued(language: Language) -> str:
    """The reply to /report."""
    return Voice(language)._("📊 Your usage report is on its way.")


def language_menu(language: Language) -> Rendered:
    """The /language question with one button per language."""
    v = Voice(language)
    return Rendered(
        v._("Choose your language:"),
        (
            (
                Button("中文", Action.language, Language.zh_hans.value),
                Button("English", Action.language, Language.en.value),
            ),
        ),
    )


def language_set(language: Language) -> str:
    """Confirms the new language, in that language."""
    return Voice(language)._("✅ From now on I will write to you in English.")


def unknown_text(language: Language) -> str:
    """The reply to a message the bot has no use for."""
    return Voice(language)._("I only understand the buttons and commands. Send /help to see them.")


# ---------------------------------------------------------------- notices from the outbox


def decision_reminder(
    language: Language, timezone: str, title: str, due_at: datetime, now: datetime, *, escalation: bool
) -> str:
    """A reminder that a request still needs the artist's decision."""
    v = Voice(language, timezone)
    lines = [
        v._(
            "⏰ <b>Reminder:</b> “%(title)s” needs your decision by %(when)s (%(left)s).",
            title=title,
            when=v.when(due_at),
            left=v.within(due_at - now),
        ),
        v._("Without a decision the request lapses and nothing is allowed."),
    ]
    if escalation:
        lines.append(v._("Your agency has been told as well."))
    return "\n".join(lines)


def grant_reminder(language: Language, timezone: str, title: str, ends_at: datetime) -> str:
    """A reminder that a consent ends soon."""
    v = Voice(language, timezone)
    return "\n".join(
        [
            v._("⏳ Your consent for “%(title)s” ends on %(when)s.", title=title, when=v.when(ends_at)),
            v._("It is never renewed automatically: the studio must send a new request."),
        ]
    )


def grant_expired(language: Language, title: str) -> str:
    """Tells the artist a consent has ended."""
    return Voice(language)._(
        "🔚 Your consent for “%(title)s” has ended. The studio may no longer use your likeness under it.",
        title=title,
    )


def creator_status(language: Language, timezone: str, title: str, payload: Mapping[str, Any]) -> str:
    """A status update for a studio that linked Telegram."""
    v = Voice(language, timezone)
    event = str(payload.get("event", ""))
    request_id = str(payload.get("request_id") or "")
    grant_id = str(payload.get("grant_id") or "")
    ref = v._("<i>Ref %(request_id)s</i>", request_id=request_id) if request_id else ""
    line: str
    if event == "request.submitted":
        line = v._("📨 “%(title)s” was sent to the artist.", title=title)
    elif event == "request.approved":
        line = v._("✅ “%(title)s” was <b>approved</b>. Grant %(grant)s.", title=title, grant=grant_id or "—")
    elif event == "request.denied":
        line = v._("❌ “%(title)s” was <b>declined</b>.", title=title)
        if payload.get("reason"):
            line += "\n" + v._("Reason: %(reason)s", reason=str(payload["reason"]))
    elif event == "request.awaiting_cosign":
        line = v._("🕓 “%(title)s” has one approval and waits for the co-signature.", title=title)
    elif event == "request.lapsed":
        line = v._("⌛ “%(title)s” lapsed: no decision before the deadline.", title=title)
    elif event == "request.withdrawn":
        line = v._("↩️ “%(title)s” was withdrawn.", title=title)
    elif event == "grant.active":
        line = v._("🟢 The consent for “%(title)s” is now active.", title=title)
    elif event == "grant.expiring":
        ends = parse_time(payload.get("ends_at"))
        line = v._(
            "⏳ The consent for “%(title)s” ends on %(when)s.",
            title=title,
            when=v.when(ends) if ends else "?",
        )
    elif event == "grant.expired":
        line = v._("🔚 The consent for “%(title)s” has ended. Stop all use under it.", title=title)
    elif event in {"grant.paused", "grant.resumed"}:
        line = creator_line(v, event, title, payload)
    elif event == "grant.revoked":
        line = "\n".join(
            [
                v._("🛑 <b>Consent revoked</b> for “%(title)s” (%(grant)s).", title=title, grant=grant_id),
                v._(
                    "<b>Stop all use of the likeness now</b> and confirm the deletion of training data "
                    "and models made from it."
                ),
            ]
        )
    elif event == "usage.violation":
        line = violation_line(v, title, payload)
    elif event.startswith("deletion."):
        line = telegram_deletion.creator_line(v, event, title, payload)
    else:
        line = v._("“%(title)s”: %(event)s", title=title, event=event or "update")
    return "\n".join(part for part in (line, ref) if part)
