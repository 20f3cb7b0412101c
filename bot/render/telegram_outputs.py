"""What the artist reads about an output in Telegram: the caption under the file, its Release and
Reject buttons, the reasons to reject with, the outcome, reminders. Pure, like `bot/render/`."""

from __future__ import annotations

import re
from datetime import datetime

from bot.models import Language
from bot.render.buttons import Action, Button, Keyboard
from bot.render.telegram_prompts import reply_prompt
from bot.render.words import N_, Voice, esc

MAX_CAPTION = 1024
REJECT_PROMPT_MARK = re.compile(r"reject:(out_[0-9a-f]{16})")
_DESCRIPTION_SHOWN = 600
# Reason code on the button → (label, the reason recorded, in English like the deny reasons).
REJECT_REASONS = {
    "terms": (N_("Not what I agreed to"), "not what the artist agreed to"),
    "look": (N_("I do not like how I appear"), "the artist does not like how they appear"),
    "other": (N_("Another reason"), "rejected by the artist"),
}


def review_caption(
    language: Language, timezone: str, *, title: str, creator: str, description: str, due_at: datetime
) -> str:
    """The caption under the output: whose, for which project, what it is, until when to decide."""
    v = Voice(language, timezone)
    shown = description if len(description) <= _DESCRIPTION_SHOWN else description[:_DESCRIPTION_SHOWN] + "…"
    lines = [
        v._(
            "🎬 <b>%(creator)s made this with your likeness</b> for “%(title)s”.",
            creator=creator,
            title=title,
        ),
        esc(shown),
        v._("Release it before %(when)s, or it stays unpublished.", when=v.when(due_at)),
    ]
    return "\n\n".join(lines)[:MAX_CAPTION]


def review_keyboard(language: Language, output_id: str) -> Keyboard:
    """Release and Reject under an output."""
    v = Voice(language)
    return (
        (
            Button(v.label(N_("✅ Release")), Action.release, output_id),
            Button(v.label(N_("❌ Reject")), Action.reject, output_id),
        ),
    )


def reject_reasons_keyboard(language: Language, output_id: str) -> Keyboard:
    """The reasons to reject an output with, and a way back."""
    v = Voice(language)
    rows = [
        (Button(v.label(label), f"{Action.reject_reason}.{code}", output_id),)
        for code, (label, _recorded) in REJECT_REASONS.items()
    ]
    rows.append((Button(v.label(N_("Write my own reason…")), Action.output_own_words, output_id),))
    rows.append((Button(v.label(N_("Back")), Action.output_back, output_id),))
    return tuple(rows)


def reject_prompt(language: Language, output_id: str) -> str:
    """Asks for the artist's own reason to reject an output, as a message they reply to."""
    question = Voice(language)._("✍️ Reply to this message with your reason for rejecting this output.")
    return reply_prompt(question, "reject", output_id)


def rejection_recorded(language: Language) -> str:
    """The reply to an artist's own-words reason once the output is rejected."""
    return Voice(language).label(N_("❌ Rejected. Your reason was recorded and sent to the studio."))


def recorded_reason(code: str) -> str | None:
    """The reason stored for a reject button's code, or None for an unknown code."""
    found = REJECT_REASONS.get(code)
    return found[1] if found else None


def outcome_line(language: Language, timezone: str, *, released: bool, at: datetime) -> str:
    """The line added under the caption once the artist decided."""
    v = Voice(language, timezone)
    if released:
        return v._("✅ <b>Released</b> on %(when)s.", when=v.when(at))
    return v._("❌ <b>Rejected</b> on %(when)s.", when=v.when(at))


def tap_answer(language: Language, *, released: bool) -> str:
    """The short answer to the tap that released or rejected."""
    v = Voice(language)
    return v.label(N_("Released. Thank you.")) if released else v.label(N_("Rejected. Thank you."))


def refusal(language: Language, code: str) -> str:
    """Why a tap on an output changed nothing."""
    v = Voice(language)
    if code == "already_decided":
        return v.label(N_("This output was released or rejected already."))
    if code == "grant_not_active":
        return v.label(N_("The consent is not active now: nothing can be released under it."))
    if code == "not_found":
        return v.label(N_("This output is not known (any more)."))
    return v.label(N_("That is not possible right now."))


def reminder(language: Language, timezone: str, *, title: str, due_at: datetime) -> str:
    """Reminds the artist of an output waiting for release."""
    v = Voice(language, timezone)
    return v._(
        "⏰ An output for “%(title)s” awaits your release until %(when)s.",
        title=title,
        when=v.when(due_at),
    )


def decided_elsewhere(language: Language, *, title: str, released: bool, by: str, ended: bool = False) -> str:
    """Tells the artist that their agency, the deadline or the consent's end decided an output."""
    v = Voice(language)
    if ended:
        return v._(
            "🔚 The consent for “%(title)s” ended: an output waiting for your release is rejected.",
            title=title,
        )
    if by == "agency":
        if released:
            return v._("✅ Your agency released an output for “%(title)s”.", title=title)
        return v._("❌ Your agency rejected an output for “%(title)s”.", title=title)
    return v._("⌛ An output for “%(title)s” was not released in time and is rejected.", title=title)
