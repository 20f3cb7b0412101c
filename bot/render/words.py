"""The words every audience shares, and the i18n engine that puts them in a reader's language.

The texts are English message ids translated through the Babel catalogs in `bot/locale/`
(`messages.pot` is the template, one `messages.po` per language). The `.po` files are read at run
time, so a translator's edit needs no compile step. Values put into a text are HTML-escaped unless
they are `Html` already, so a studio's project title can never break or inject markup. After a
text in `bot/render/` changes: `pybabel extract --no-location -o bot/locale/messages.pot
bot/render`, then `pybabel update --no-location -i bot/locale/messages.pot -d bot/locale`.

The word tables name the models' values once for every audience: the artist's Telegram card
and, where it says them differently, the agency's Slack board (both translated where shown).
"""

from __future__ import annotations

import functools
import html
import io
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_skeleton, format_timedelta
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

from bot.models import (
    ActorKind,
    Compensation,
    Language,
    Likeness,
    Media,
    Sensitive,
    UsageKind,
    ViolationReason,
)

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "messages"
_FOLDERS = {Language.zh_hans: "zh_Hans", Language.en: "en"}


def N_(message: str) -> str:
    """Marks a text for the catalogs without translating it yet (it is translated where shown)."""
    return message


# ---------------------------------------------------------------- HTML


class Html(str):
    """Text that is Telegram HTML already: put into another text as it is, never escaped twice."""

    __slots__ = ()


def esc(text: str) -> Html:
    """Plain text made safe for Telegram's HTML parse mode."""
    return text if isinstance(text, Html) else Html(html.escape(text, quote=True))


def plain_length(text: str) -> int:
    """How many characters Telegram will count once it has parsed the HTML."""
    return len(html.unescape(re.sub(r"<[^>]+>", "", text)).strip())


# ---------------------------------------------------------------- languages


def language_of(code: str | None) -> Language:
    """Our language for a stored value or a Telegram `language_code`: Chinese for zh*, else English."""
    if code and code.lower().startswith("zh"):
        return Language.zh_hans
    return Language.en


@functools.cache
def translations(language: Language) -> Translations:
    """The language's catalog, read from its .po file once per process."""
    folder = _FOLDERS[language]
    path = LOCALE_DIR / folder / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=folder, domain=DOMAIN)
    # Babel reads .mo, so the catalog is compiled in memory; fuzzy entries are left out, as msgfmt does.
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


class Voice:
    """One reader's way of being spoken to: translated texts, and dates in their time zone.

    Parameters:
        language: the reader's language.
        timezone: IANA name of the reader's time zone; an unknown one falls back to UTC.
    """

    def __init__(self, language: Language, timezone: str = "UTC") -> None:
        """Prepares the catalog and time zone for one reader."""
        self.language = language
        self.locale = Locale.parse(_FOLDERS[language])
        try:
            self.zone = ZoneInfo(timezone)
            self.zone_name = timezone
        except (ZoneInfoNotFoundError, ValueError):
            self.zone, self.zone_name = ZoneInfo("UTC"), "UTC"
        self._catalog = translations(language)

    def _(self, message: str, **values: object) -> Html:
        """The translation of `message` with `values` escaped and filled in (`%(name)s`)."""
        text = self._catalog.gettext(message)
        if not values:
            return Html(text)
        return Html(text % {k: _html_value(v) for k, v in values.items()})

    def label(self, message: str) -> str:
        """The translation of a text marked with N_, as plain text."""
        return str(self._catalog.gettext(message))

    def when(self, moment: datetime) -> str:
        """Date and time in the reader's zone, e.g. 'Sat, Nov 28, 2026 17:00 (Asia/Shanghai)'."""
        local = moment.astimezone(self.zone)
        day = format_skeleton("yMMMEd", local, tzinfo=self.zone, locale=self.locale)
        clock = format_skeleton("Hm", local, tzinfo=self.zone, locale=self.locale)
        return f"{day} {clock} ({self.zone_name})"

    def day(self, moment: datetime) -> str:
        """The date alone in the reader's zone, e.g. 'Nov 28, 2026'."""
        return format_skeleton("yMMMd", moment.astimezone(self.zone), tzinfo=self.zone, locale=self.locale)

    def within(self, delta: timedelta) -> str:
        """A duration from now, e.g. 'in 2 hours'."""
        return format_timedelta(delta, add_direction=True, locale=self.locale, threshold=1.1)

    def listing(self, items: Iterable[str]) -> str:
        """Items joined the language's way ('a, b, and c' or 'a、b和c')."""
        items = list(items)
        return format_list(items, locale=self.locale) if items else ""

    def money(self, compensation: Compensation) -> str:
        """An amount in its currency, formatted for the reader."""
        return format_currency(compensation.amount, compensation.currency, locale=self.locale)

    def number(self, value: int | Decimal) -> str:
        """A number with the reader's grouping."""
        return format_decimal(value, locale=self.locale)

    def territory(self, code: str) -> str:
        """A country's name in the reader's language ('CN' → 'China' / '中国')."""
        if code == "worldwide":
            return self.label(N_("worldwide"))
        return str(self.locale.territories.get(code, code))


def _html_value(value: object) -> object:
    if isinstance(value, Html) or isinstance(value, int | float | Decimal):
        return value
    return esc(str(value))


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp from a payload, or None when there is none."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class Refusal(Protocol):
    """What a refused step (`workflow.Refused`) gives either renderer to word it from."""

    @property
    def code(self) -> str:
        """Which refusal: 'already_decided', 'not_open', 'not_found', ..."""

    @property
    def message(self) -> str:
        """Why, in English."""

    @property
    def details(self) -> Mapping[str, Any]:
        """Who decided and when, the status, when to try again."""


# ---------------------------------------------------------------- the models' values in words


class Wording(NamedTuple):
    """One value's words: `card` on the artist's card, `board` on Slack (both marked for translation)."""

    card: str
    board: str | None = None


MEDIA = {
    Media.film: N_("film"),
    Media.series: N_("series"),
    Media.short_video: N_("short video"),
    Media.advertising: N_("advertising"),
    Media.game: N_("game"),
    Media.music: N_("music"),
    Media.social: N_("social media"),
    Media.other: N_("other media"),
}
LIKENESS = {
    Likeness.face: N_("face"),
    Likeness.voice: N_("voice"),
    Likeness.body: N_("body"),
    Likeness.name: N_("name"),
}
# What a reported use did, as the artist reads it in a violation notice.
USE_KINDS = {
    UsageKind.render: N_("rendering"),
    UsageKind.publish: N_("publication"),
    UsageKind.train: N_("AI training"),
    UsageKind.fine_tune: N_("fine-tuning"),
    UsageKind.distribute: N_("distribution"),
    UsageKind.other: N_("other use"),
}
# The terms a use breaks: said to the artist whose consent it is, and on the agency's board.
VIOLATION_REASONS: dict[str, Wording] = {
    ViolationReason.grant_not_active: Wording(
        N_("the consent was not in force at the time (before its start, after its end, or revoked)"),
        N_("the grant was not active at the time of use"),
    ),
    ViolationReason.grant_paused: Wording(
        N_("you had paused your consents"), N_("the artist had paused their consents")
    ),
    ViolationReason.ai_training_not_granted: Wording(
        N_("AI training was not part of your consent"), N_("AI training was not granted")
    ),
    ViolationReason.media_not_granted: Wording(
        N_("this medium is not one you approved"), N_("the medium is not among those granted")
    ),
    ViolationReason.territory_not_granted: Wording(
        N_("this territory is outside the ones you approved"),
        N_("the territory is outside the one granted"),
    ),
    ViolationReason.likeness_not_granted: Wording(
        N_("this part of your likeness was not part of your consent"),
        N_("the likeness used goes beyond what was granted"),
    ),
    ViolationReason.output_not_released: Wording(
        N_("what was published is not an output you released"),
        "the published output was not released by the artist",
    ),
}
SENSITIVE: dict[str, Wording] = {
    Sensitive.sexual_content: Wording(N_("sexual content"), N_("sexual content")),
    Sensitive.political: Wording(N_("political content"), N_("political")),
    Sensitive.religious: Wording(N_("religious content"), N_("religious")),
    Sensitive.endorsement: Wording(N_("endorsement of a product or cause"), N_("endorsement")),
    Sensitive.physical_alteration: Wording(N_("altering your body or face"), N_("physical alteration")),
    Sensitive.real_time_interactive: Wording(
        N_("real-time interactive use (chatbot, live avatar)"), N_("real-time interaction")
    ),
}
# Who decided: the card names the kind; the board says the role it was decided in.
ACTOR_KINDS = {
    ActorKind.artist.value: Wording(N_("artist"), N_("the artist")),
    ActorKind.agency.value: Wording(N_("agency"), N_("for the agency")),
    ActorKind.system.value: Wording(N_("automatic")),
    ActorKind.admin.value: Wording(N_("administrator")),
}
# Where it was decided: the card names the channel; the board says how it came.
CHANNELS = {
    "telegram": Wording("Telegram", N_("in Telegram")),
    "slack": Wording("Slack", N_("in Slack")),
    "api": Wording("API", N_("through the API")),
    "cli": Wording("CLI", N_("by admin")),
    "system": Wording("system"),
}


def sensitive_on_board(flag: str) -> str:
    """The board's word for a sensitivity flag; an unknown flag as it is."""
    words = SENSITIVE.get(flag)
    return words.board if words and words.board else flag


def actor_on_card(kind: str, default: str) -> str:
    """The card's word for who decided ('artist'), still to be translated; else `default`."""
    words = ACTOR_KINDS.get(kind)
    return words.card if words else default


def role_on_board(kind: str) -> str:
    """The board's words for the role a decision was made in ('for the agency'); else the kind."""
    words = ACTOR_KINDS.get(kind)
    return words.board if words and words.board else kind


def channel_on_card(channel: str) -> str:
    """The card's name for the channel a decision came through ('Telegram'); else the channel."""
    words = CHANNELS.get(channel)
    return words.card if words else channel


def channel_on_board(channel: str, default: str) -> str:
    """The board's words for how a decision came ('through the API'), or `default`."""
    words = CHANNELS.get(channel)
    return words.board if words and words.board else default


def reason_on_card(code: str) -> str:
    """The artist's words for a broken term (still to be translated); an unknown code as it is."""
    words = VIOLATION_REASONS.get(code)
    return words.card if words else code


def reason_on_board(code: str) -> str:
    """The board's words for a broken term; an unknown code as it is."""
    words = VIOLATION_REASONS.get(code)
    return words.board if words and words.board else code
