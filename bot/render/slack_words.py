"""The agency board's voice: the Babel catalogs of `bot.render.words`, spoken in Slack's mrkdwn.

Each agency has a language (`en` or `zh-Hans`); every text the board, its threads, its forms
and `/likeness` show is an English message id translated through the same catalogs as the
artist's Telegram texts. Values put into a text are escaped the Slack way (`&`, `<`, `>`)
unless they are `Mrkdwn` already (a mention, a date token), so a studio's project title can
never ping a channel or forge a link. Dates are Slack date tokens, which each reader's Slack
shows in their own zone; the text that stands in for them is the agency's locale and zone.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from bot.models import Language
from bot.render.words import Voice, language_of


class Mrkdwn(str):
    """Text that is Slack mrkdwn already: put into another text as it is, never escaped twice."""

    __slots__ = ()


def escape(text: str) -> str:
    """Escapes &, < and > so that text from creators can never ping @channel or forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Audience(Protocol):
    """What the board needs to know of an agency to speak to it: its language and time zone."""

    @property
    def language(self) -> str:
        """'en' or 'zh-Hans' (anything else reads as English)."""

    @property
    def timezone(self) -> str:
        """IANA name of the agency's time zone."""


class BoardVoice:
    """One agency's way of being spoken to on Slack.

    Parameters:
        language: the agency's language.
        timezone: IANA name of the agency's zone, for the text that stands in for a date token.
    """

    def __init__(self, language: Language = Language.en, timezone: str = "UTC") -> None:
        """Prepares the catalog, locale and zone."""
        self.voice = Voice(language, timezone)
        self.language = language

    def _(self, message: str, **values: object) -> Mrkdwn:
        """The translation of `message` with `values` escaped and filled in (`%(name)s`)."""
        text = self.label(message)
        if not values:
            return Mrkdwn(text)
        return Mrkdwn(text % {key: _mrkdwn_value(value) for key, value in values.items()})

    def label(self, message: str) -> str:
        """The translation of a text marked with N_, as plain text ('' stays '', not the header)."""
        return self.voice.label(message) if message else ""

    def date(self, moment: datetime, *, day_only: bool = False) -> Mrkdwn:
        """A Slack date token each reader sees in their zone; the agency's locale as its fallback."""
        if day_only:
            return Mrkdwn(f"<!date^{int(moment.timestamp())}^{{date_short}}|{self.voice.day(moment)}>")
        style = "{date_short_pretty} {time}"
        return Mrkdwn(f"<!date^{int(moment.timestamp())}^{style}|{self.voice.when(moment)}>")

    def iso(self, value: Any) -> Mrkdwn:
        """A stored ISO timestamp as a date token; anything unreadable as escaped text."""
        try:
            return self.date(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
        except ValueError:
            return Mrkdwn(escape(str(value)))

    def listing(self, items: list[str]) -> str:
        """Items joined the language's way ('a, b, and c' or 'a、b和c')."""
        return self.voice.listing(items)

    def join(self, items: list[str]) -> str:
        """Items joined with the language's comma ('a, b' or 'a、b')."""
        return ("、" if self.language is Language.zh_hans else ", ").join(items)


def board_voice(agency: Audience | None) -> BoardVoice:
    """The voice for an agency (English for none, or for a row that names no language)."""
    if agency is None:
        return BoardVoice()
    language = language_of(getattr(agency, "language", None))
    return BoardVoice(language, getattr(agency, "timezone", None) or "UTC")


def _mrkdwn_value(value: object) -> object:
    if isinstance(value, Mrkdwn) or isinstance(value, int | float | Decimal):
        return value
    return escape(str(value))
