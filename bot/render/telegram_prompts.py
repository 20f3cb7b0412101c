"""A question the artist answers by replying to it (a reason to decline, to reject an output,
to pause): its text, with the marker line that names what the reply is about, and the hint in
the input field."""

from __future__ import annotations

from bot.models import Language
from bot.render.words import N_, Voice, esc


def reply_prompt(question: str, tag: str, subject: str) -> str:
    """The question (Telegram HTML) above the marker `tag:subject` in italics."""
    return "\n".join([question, f"<i>{tag}:{esc(subject)}</i>"])


def reason_placeholder(language: Language) -> str:
    """The hint in the input field while the artist writes their reason."""
    return Voice(language).label(N_("Your reason"))
