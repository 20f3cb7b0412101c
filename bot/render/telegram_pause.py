"""What Telegram says about pausing everything: the artist's /pause and /resume questions and
answers, the notice when someone else paused for them, and the studio's status line.

Pure like the rest of `bot/render/`: texts and abstract buttons, each as `(text, keyboard)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.models import Language
from bot.render.buttons import Action, Button, Keyboard
from bot.render.telegram_prompts import reply_prompt
from bot.render.words import N_, Html, Voice, parse_time

# The reason prompt names the artist it is for; the artist answers it with Telegram's reply.
PAUSE_PROMPT_MARK = re.compile(r"pause:(art_[0-9a-f]{16})")
# The command words as plain text (Telegram commands are Latin only).
PAUSE_WORDS = ("暂停",)
RESUME_WORDS = ("恢复",)

_BY = {
    "artist": N_("you"),
    "agency": N_("your agency"),
    "admin": N_("the service's operators"),
}
_RESUMED_AS = {
    "active": N_("▶️ The consent for “%(title)s” was resumed and is active again."),
    "scheduled": N_("▶️ The consent for “%(title)s” was resumed; it starts as scheduled."),
    "expired": N_("🔚 The consent for “%(title)s” was resumed, but its window ended while paused."),
}


def pause_question(language: Language, artist_id: str) -> tuple[str, Keyboard]:
    """The one-tap confirmation asked after /pause."""
    v = Voice(language)
    text = "\n".join(
        [
            v._("⏸ <b>Pause every consent?</b>"),
            v._(
                "Every studio must stop using your likeness at once, and your agency is told. "
                "Nothing is revoked: /resume brings each consent back."
            ),
        ]
    )
    keyboard = (
        (Button(v.label(N_("⏸ Pause everything")), Action.pause_yes, artist_id),),
        (Button(v.label(N_("⏸ Pause and give a reason")), Action.pause_why, artist_id),),
        (Button(v.label(N_("Cancel")), Action.pause_no, artist_id),),
    )
    return text, keyboard


def resume_question(language: Language, artist_id: str) -> tuple[str, Keyboard]:
    """The one-tap confirmation asked after /resume."""
    v = Voice(language)
    text = "\n".join(
        [
            v._("▶️ <b>Resume your consents?</b>"),
            v._("Each one returns to what its dates allow: active, not started yet, or ended."),
        ]
    )
    keyboard = (
        (
            Button(v.label(N_("▶️ Resume")), Action.resume_yes, artist_id),
            Button(v.label(N_("Cancel")), Action.pause_no, artist_id),
        ),
    )
    return text, keyboard


def already_paused(language: Language, timezone: str, by: str | None, at: datetime | None) -> str:
    """The answer to /pause while everything is paused already."""
    v = Voice(language, timezone)
    who = v.label(_BY.get(by or "", N_("someone")))
    return v._(
        "⏸ Your consents are already paused (by %(who)s, %(when)s). Send /resume to lift the pause.",
        who=who,
        when=v.when(at) if at else "?",
    )


def not_paused(language: Language) -> str:
    """The answer to /resume when nothing is paused."""
    return Voice(language)._("Nothing is paused. Send /pause to stop every consent at once.")


def paused(language: Language, timezone: str, count: int, at: datetime) -> str:
    """The confirmation, once everything is paused."""
    v = Voice(language, timezone)
    return "\n".join(
        [
            v._("⏸ <b>Paused</b> · %(when)s", when=v.when(at)),
            v._(
                "%(count)s consent(s) paused. The studios were told to stop, and your agency was told. "
                "New approvals start paused too. Send /resume to lift the pause.",
                count=count,
            ),
        ]
    )


def resumed(language: Language, timezone: str, count: int, at: datetime) -> str:
    """The confirmation, once the pause is lifted."""
    v = Voice(language, timezone)
    return v._(
        "▶️ <b>Resumed</b> · %(when)s. %(count)s consent(s) are back to what their dates allow; "
        "the studios and your agency were told.",
        when=v.when(at),
        count=count,
    )


def kept(language: Language) -> str:
    """The answer to Cancel."""
    return Voice(language)._("Nothing changed.")


def reason_prompt(language: Language, artist_id: str) -> str:
    """Asks for the reason of a pause, as a message the artist answers with Telegram's reply."""
    question = Voice(language)._(
        "✍️ Reply to this message with your reason for pausing; the studios and your agency see it."
    )
    return reply_prompt(question, "pause", artist_id)


def refusal(language: Language, code: str, details: Mapping[str, Any]) -> str:
    """Why a pause or resume changed nothing, short enough for a Telegram alert."""
    v = Voice(language)
    if code == "not_allowed" and details.get("paused_by") == "agency":
        return v.label(N_("Your agency paused your consents; only your agency can resume them."))
    if code == "not_allowed" and details.get("paused_by") == "admin":
        return v.label(N_("The service's operators paused your consents; ask them to resume."))
    if code == "not_allowed":
        return v.label(N_("Only the artist can pause or resume their consents."))
    if code == "not_open" and details.get("status") == "paused":
        return v.label(N_("Your consents are already paused."))
    if code == "not_open":
        return v.label(N_("Nothing is paused."))
    return v.label(N_("That is not possible right now."))


def artist_notice(language: Language, timezone: str, payload: Mapping[str, Any]) -> str:
    """Tells the artist that their agency or an operator paused or resumed their consents."""
    v = Voice(language, timezone)
    who = v.label(_BY.get(str(payload.get("by") or ""), N_("someone")))
    if payload.get("event") == "artist.resumed":
        at = parse_time(payload.get("resumed_at"))
        return v._(
            "▶️ %(who)s resumed your consents (%(when)s); each is back to what its dates allow.",
            who=who,
            when=v.when(at) if at else "?",
        )
    at = parse_time(payload.get("paused_at"))
    lines = [
        v._(
            "⏸ %(who)s <b>paused every consent</b> of yours (%(when)s); the studios must stop using your "
            "likeness until the pause is lifted.",
            who=who,
            when=v.when(at) if at else "?",
        )
    ]
    if payload.get("reason"):
        lines.append(v._("Reason: %(reason)s", reason=str(payload["reason"])))
    return "\n".join(lines)


def creator_line(v: Voice, event: str, title: str, payload: Mapping[str, Any]) -> Html:
    """A studio's status line for `grant.paused` / `grant.resumed`."""
    if event == "grant.resumed":
        message = _RESUMED_AS.get(str(payload.get("status")), _RESUMED_AS["active"])
        return v._(message, title=title)
    line = v._(
        "⏸ The consent for “%(title)s” is <b>paused</b>: <b>stop all use now</b> until it is resumed.",
        title=title,
    )
    if payload.get("reason"):
        line = Html(line + "\n" + v._("Reason: %(reason)s", reason=str(payload["reason"])))
    return line
