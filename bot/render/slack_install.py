"""The pages an agency's installer sees around "Add to Slack": connected, or why not; in English
and Chinese on one page (the installer's language is not known yet)."""

from __future__ import annotations

from bot.models import Language
from bot.render.words import N_, Html, Voice, esc

TITLE = N_("Connect Slack")
_TEXTS = {
    "connected": N_("Slack is connected for %(agency)s. Its board posts in this workspace from now on."),
    "no_channel": N_(
        "Slack is connected for %(agency)s, but no channel was chosen: ask the service's operator "
        "to set the board's channel."
    ),
    "invalid": N_("This install link is not valid. Ask the service's operator for a new one."),
    "used": N_("This install link was used already. Ask the service's operator for a new one."),
    "expired": N_("This install link has expired. Ask the service's operator for a new one."),
    "no_link": N_(
        "This page was not reached from an install link. Open the link the service's operator gave you."
    ),
    "failed": N_("The install did not complete (%(reason)s). Open your install link again to retry."),
}
OUTCOMES = frozenset(_TEXTS)


def install_page(outcome: str, *, agency: str = "", reason: str = "") -> str:
    """The whole HTML page for one outcome (see `OUTCOMES`), English first, then Chinese."""
    message = _TEXTS[outcome]
    parts = []
    for language in (Language.en, Language.zh_hans):
        voice = Voice(language)
        lang = "en" if language is Language.en else "zh-Hans"
        text = voice._(message, agency=agency, reason=reason) if "%(" in message else voice._(message)
        parts.append(f'<section lang="{lang}"><h1>{esc(voice.label(TITLE))}</h1><p>{text}</p></section>')
    body = Html("".join(parts))
    return (
        '<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">'
        f"<title>Connect Slack</title></head><body>{body}</body></html>"
    )
