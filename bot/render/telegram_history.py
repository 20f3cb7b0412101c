"""What Telegram says about an artist's history bundle: the reply to /history and the caption of
the file. Pure like the rest of `bot/render/`."""

from __future__ import annotations

from bot.models import Language
from bot.render.words import Voice


def queued(language: Language) -> str:
    """The reply to /history: the file follows."""
    return Voice(language)._("🗂 Your consent history is on its way as a file.")


def caption(language: Language) -> str:
    """The caption of the bundle file (plain text)."""
    return Voice(language)._(
        "🗂 Your consent history: every request, decision, grant, receipt and use, signed by the service."
    )
