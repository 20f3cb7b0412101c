"""What each party is told in Telegram, in their language: cards, updates, reminders, replies.

Everything here is pure: plain data in, Telegram HTML and abstract buttons out. The texts are
English message ids translated through the Babel catalogs in `bot/locale/` (`messages.pot` is
the template, one `messages.po` per language). The `.po` files are read at run time, so a
translator's edit needs no compile step. Values put into a text are HTML-escaped unless they
are `Html` already, so a studio's project title can never break or inject markup.
"""

from __future__ import annotations

import functools
import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_skeleton, format_timedelta
from babel.lists import format_list
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

from bot.models import (
    OPEN_STATUSES,
    ActorKind,
    Compensation,
    Language,
    Likeness,
    Media,
    Outcome,
    RequestStatus,
    Sensitive,
    Terms,
)

if TYPE_CHECKING:
    from bot.reports import Report

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
# Telegram refuses texts over 4096 characters; leave room for what Telegram itself counts differently.
MAX_TEXT = 4000
# answerCallbackQuery texts are cut by Telegram at 200 characters.
MAX_ALERT = 200
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


# ---------------------------------------------------------------- buttons


class Action(StrEnum):
    """What a button asks for; handlers register one callback handler per action."""

    approve = "ok"
    confirm_ai = "ai"
    deny = "no"
    reason = "why"  # followed by '.' and a reason code, e.g. 'why.pay'
    own_words = "own"
    back = "back"
    show_card = "card"
    revoke = "rv"
    revoke_yes = "rvy"
    revoke_no = "rvn"
    language = "lang"


@dataclass(frozen=True)
class Button:
    """One inline button: its label and what tapping it asks for (signed by the adapter)."""

    label: str
    action: str
    subject: str


Keyboard = tuple[tuple[Button, ...], ...]


@dataclass(frozen=True)
class Rendered:
    """A message ready to send: Telegram HTML and its buttons (none when empty)."""

    text: str
    keyboard: Keyboard = ()


# Reasons offered when denying: code → (button label, the reason recorded for studio and agency).
DENY_REASONS: dict[str, tuple[str, str]] = {
    "terms": (N_("I don't agree with these terms"), "The artist does not agree with these terms"),
    "pay": (N_("The compensation is too low"), "The compensation is too low"),
    "use": (N_("I don't want my likeness used this way"), "The artist does not want this use"),
    "ai": (N_("No AI training of my likeness"), "The artist does not allow AI training"),
}
# The deny prompt carries the request id in this language-independent form, so that the reply can
# be tied to its request without keeping any state (a ForceReply survives restarts).
DENY_PROMPT_MARK = re.compile(r"decline:(req_[0-9a-f]{16})")


# ---------------------------------------------------------------- the request card


_MEDIA = {
    Media.film: N_("film"),
    Media.series: N_("series"),
    Media.short_video: N_("short video"),
    Media.advertising: N_("advertising"),
    Media.game: N_("game"),
    Media.music: N_("music"),
    Media.social: N_("social media"),
    Media.other: N_("other media"),
}
_LIKENESS = {
    Likeness.face: N_("face"),
    Likeness.voice: N_("voice"),
    Likeness.body: N_("body"),
    Likeness.name: N_("name"),
}
_SENSITIVE = {
    Sensitive.sexual_content: N_("sexual content"),
    Sensitive.political: N_("political content"),
    Sensitive.religious: N_("religious content"),
    Sensitive.endorsement: N_("endorsement of a product or cause"),
    Sensitive.physical_alteration: N_("altering your body or face"),
    Sensitive.real_time_interactive: N_("real-time interactive use (chatbot, live avatar)"),
}
_ACTOR_KIND = {
    ActorKind.artist.value: N_("artist"),
    ActorKind.agency.value: N_("agency"),
    ActorKind.system.value: N_("automatic"),
    ActorKind.admin.value: N_("administrator"),
}
_CHANNEL = {"telegram": "Telegram", "slack": "Slack", "api": "API", "cli": "CLI", "system": "system"}


@dataclass(frozen=True)
class DecisionLine:
    """One recorded decision, as the card shows it."""

    outcome: str
    actor_kind: str
    name: str
    channel: str
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class Card:
    """Everything a request card shows: the terms, who asks, where the request stands."""

    request_id: str
    terms: Terms
    creator_name: str
    status: RequestStatus
    decisions: tuple[DecisionLine, ...]
    updated_at: datetime
    language: Language
    timezone: str
    reason: str | None = None
    nudge: bool = False

    @property
    def artist_has_decided(self) -> bool:
        """Whether the artist's own decision is already recorded (e.g. awaiting the co-signature)."""
        return any(d.actor_kind == ActorKind.artist.value for d in self.decisions)

    @property
    def open_for_artist(self) -> bool:
        """Whether the card still asks the artist to decide (and so shows buttons)."""
        return self.status in OPEN_STATUSES and not self.artist_has_decided


def card(c: Card) -> Rendered:
    """The request card: every term, the AI-training warning, the deadline or the outcome."""
    v = Voice(c.language, c.timezone)
    terms = c.terms
    head: list[str] = []
    if c.nudge and c.open_for_artist:
        head.append(v._("🔔 <b>Your agency asks you to look at this request.</b>"))
    if terms.sensitive:
        flags = v.listing(v.label(_SENSITIVE[s]) for s in terms.sensitive)
        head.append(v._("<b>⚠️ Sensitive: %(flags)s</b>", flags=flags))
    head.append(v._("📝 <b>Likeness request: %(title)s</b>", title=terms.project_title))
    head.append(v._("From: %(creator)s", creator=c.creator_name))

    # Telegram takes 4096 characters; the API's limits allow a little more. Only what cannot fit is
    # shortened, least important first: reference links, then the labelling text, then (never in
    # practice) the description. Every term stays whole in the request record and the receipt.
    description, labeling = terms.use_description, terms.labeling
    references = [str(url) for url in terms.reference_urls]
    while True:
        body = _card_body(v, c, description, labeling, references)
        text = "\n".join([*head, "", *body])
        excess = plain_length(text) - MAX_TEXT
        if excess <= 0:
            break
        if references:
            references.pop()
        elif labeling and len(labeling) > 200:
            labeling = _shorten(labeling, len(labeling) - excess)
        elif len(description) > 200:
            description = _shorten(description, len(description) - excess)
        else:
            break  # cannot happen within the API's limits
    return Rendered(text, card_keyboard(c))


def _shorten(text: str, length: int) -> str:
    return text[: max(200, length - 1)].rstrip() + "…"


def _card_body(
    v: Voice, c: Card, description: str, labeling: str | None, references: Sequence[str]
) -> list[str]:
    terms = c.terms
    lines = [v._("<b>What will be made</b>"), esc(description), ""]
    lines.append(v._("<b>Media:</b> %(media)s", media=v.listing(v.label(_MEDIA[m]) for m in terms.media)))
    likeness = v.listing(v.label(_LIKENESS[x]) for x in terms.likeness)
    lines.append(v._("<b>Likeness:</b> %(likeness)s", likeness=likeness))
    territory = v.listing(v.territory(t) for t in terms.territory)
    lines.append(v._("<b>Territory:</b> %(territory)s", territory=territory))
    lines.append(
        v._("<b>Window:</b> %(start)s – %(end)s", start=v.day(terms.starts_at), end=v.day(terms.ends_at))
    )
    if isinstance(terms.compensation, Compensation):
        lines.append(v._("<b>Compensation:</b> %(amount)s", amount=v.money(terms.compensation)))
    elif terms.compensation == "none":
        lines.append(v._("<b>Compensation:</b> none (unpaid)"))
    else:
        lines.append(v._("<b>Compensation:</b> not stated"))
    if terms.sublicensing:
        lines.append(v._("<b>Sublicensing:</b> <b>allowed</b>: the studio may pass your likeness on"))
    else:
        lines.append(v._("<b>Sublicensing:</b> not allowed"))
    if labeling:
        lines.append(v._("<b>AI labelling:</b> %(labeling)s", labeling=labeling))
    else:
        lines.append(v._("<b>AI labelling:</b> not stated"))
    if references:
        links = ", ".join(f'<a href="{esc(url)}">{index}</a>' for index, url in enumerate(references, 1))
        lines.append(v._("<b>References:</b> %(links)s", links=Html(links)))
    lines.append("")
    if terms.ai_training:
        lines.append(
            v._(
                "🤖 <b>AI training requested.</b> If you approve, a model will learn your likeness "
                "and can make new images or sound of you by itself, beyond these scenes. You can "
                "revoke later; the studio must then delete the model and its training data."
            )
        )
    else:
        lines.append(v._("🤖 AI training: not requested; no model may learn your likeness."))
    lines.append("")
    lines.extend(_card_state(v, c))
    lines.append(v._("<i>Ref %(request_id)s</i>", request_id=c.request_id))
    return lines


def _who(v: Voice, decision: DecisionLine) -> str:
    kind = v.label(_ACTOR_KIND.get(decision.actor_kind, decision.actor_kind))
    name = decision.name or kind
    return f"{name} ({kind}, {_CHANNEL.get(decision.channel, decision.channel)})"


def _card_state(v: Voice, c: Card) -> list[Html]:
    """The closing lines: the deadline while open, otherwise the outcome, who and when."""
    decisive = [d for d in c.decisions if d.outcome == Outcome.deny.value] or list(c.decisions)
    last = decisive[-1] if decisive else None
    status = c.status
    if status is RequestStatus.approved and last is not None:
        # With a co-signature both approvals are shown, in the order they were given.
        return [
            v._("✅ <b>Approved</b> by %(who)s · %(when)s", who=_who(v, d), when=v.when(d.at))
            for d in c.decisions
            if d.outcome == Outcome.approve.value
        ]
    if status is RequestStatus.denied:
        if last is None:
            lines = [v._("❌ <b>Declined</b> · %(when)s", when=v.when(c.updated_at))]
        else:
            lines = [v._("❌ <b>Declined</b> by %(who)s · %(when)s", who=_who(v, last), when=v.when(last.at))]
        reason = (last.reason if last else None) or c.reason
        if reason:
            lines.append(v._("Reason: %(reason)s", reason=reason))
        return lines
    if status is RequestStatus.lapsed:
        return [
            v._(
                "⌛ <b>Lapsed</b>: no decision before the deadline (%(when)s)",
                when=v.when(c.terms.decision_due_at),
            )
        ]
    if status is RequestStatus.withdrawn:
        return [v._("↩️ <b>Withdrawn by the studio</b> · %(when)s", when=v.when(c.updated_at))]
    lines = []
    if status is RequestStatus.awaiting_cosign and last is not None:
        if c.artist_has_decided:
            return [
                v._(
                    "🕓 <b>You approved</b> · %(when)s. Waiting for your agency's co-signature.",
                    when=v.when(last.at),
                )
            ]
        lines.append(v._("🕓 Your agency approved (%(who)s); your approval completes it.", who=_who(v, last)))
    lines.append(v._("⏳ <b>Decide by:</b> %(when)s", when=v.when(c.terms.decision_due_at)))
    return lines


def card_keyboard(c: Card) -> Keyboard:
    """Approve and Deny while the artist still has to decide; nothing afterwards."""
    if not c.open_for_artist:
        return ()
    v = Voice(c.language)
    return (
        (
            Button(v.label(N_("Approve")), Action.approve, c.request_id),
            Button(v.label(N_("Deny")), Action.deny, c.request_id),
        ),
    )


def ai_confirmation_keyboard(language: Language, request_id: str) -> Keyboard:
    """The second, explicit step that approving AI training takes."""
    v = Voice(language)
    return (
        (Button(v.label(N_("Also allow AI training of my likeness")), Action.confirm_ai, request_id),),
        (Button(v.label(N_("Cancel")), Action.back, request_id),),
    )


def deny_reasons_keyboard(language: Language, request_id: str, *, ai_training: bool) -> Keyboard:
    """Reasons to choose from when denying, a way to write one's own, and a way back."""
    v = Voice(language)
    rows = [
        (Button(v.label(label), f"{Action.reason}.{code}", request_id),)
        for code, (label, _recorded) in DENY_REASONS.items()
        if code != "ai" or ai_training
    ]
    rows.append((Button(v.label(N_("Write my own reason…")), Action.own_words, request_id),))
    rows.append((Button(v.label(N_("Back")), Action.back, request_id),))
    return tuple(rows)


def recorded_reason(code: str) -> str | None:
    """The reason stored for a reason button's code, or None for an unknown code."""
    found = DENY_REASONS.get(code)
    return found[1] if found else None


def deny_prompt(language: Language, request_id: str, title: str) -> str:
    """Asks for the artist's own reason, as a message they answer with Telegram's reply."""
    v = Voice(language)
    return "\n".join(
        [
            v._("✍️ Reply to this message with your reason for declining “%(title)s”.", title=title),
            f"<i>decline:{esc(request_id)}</i>",
        ]
    )


def deny_placeholder(language: Language) -> str:
    """The hint in the input field while the artist writes their reason."""
    return Voice(language).label(N_("Your reason"))


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
            _ACTOR_KIND.get(str(details.get("decided_by", "")), N_("someone"))
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


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp from a payload, or None when there is none."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


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
    if not items:
        return Rendered(v._("✅ Nothing is waiting for your decision."))
    lines: list[str] = [v._("<b>Waiting for your decision (%(count)s):</b>", count=len(items))]
    buttons = []
    for number, item in enumerate(items, 1):
        marker = " 🤖" if item.ai_training else ""
        lines.append(
            v._(
                "%(number)s. %(title)s — by %(when)s",
                number=number,
                title=item.title,
                when=v.when(item.due_at),
            )
            + marker
        )
        label = v.label(N_("Show card %(number)s")) % {"number": number}
        buttons.append((Button(label, Action.show_card, item.request_id),))
    return Rendered("\n".join(lines), tuple(buttons[:50]))


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


def grants_list(language: Language, timezone: str, items: Sequence[GrantLine]) -> Rendered:
    """The /grants answer: each active or upcoming consent with a Revoke button."""
    v = Voice(language, timezone)
    if not items:
        return Rendered(v._("You have no active consents."))
    lines: list[str] = [v._("<b>Your consents (%(count)s):</b>", count=len(items))]
    buttons = []
    for number, item in enumerate(items, 1):
        lines.append(
            v._(
                "%(number)s. %(title)s — %(creator)s, %(start)s – %(end)s",
                number=number,
                title=item.title,
                creator=item.creator_name,
                start=v.day(item.starts_at),
                end=v.day(item.ends_at),
            )
            + (" 🤖" if item.ai_training else "")
        )
        label = v.label(N_("Revoke %(number)s")) % {"number": number}
        buttons.append((Button(label, Action.revoke, item.grant_id),))
    lines.append(v._("Revoking ends a consent at once; the studio must stop and delete."))
    return Rendered("\n".join(lines), tuple(buttons[:50]))


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
    else:
        line = v._("“%(title)s”: %(event)s", title=title, event=event or "update")
    return "\n".join(part for part in (line, ref) if part)


_USAGE_KIND = {
    "render": N_("renders"),
    "publish": N_("publications"),
    "train": N_("training runs"),
    "fine_tune": N_("fine-tuning runs"),
    "distribute": N_("distributions"),
    "other": N_("other uses"),
}


def report_text(language: Language, report: Report) -> str:
    """The weekly usage report as a chat message (the chart follows as a photo)."""
    v = Voice(language, report.timezone)
    lines = [
        v._(
            "📊 <b>Usage report</b> %(start)s – %(end)s",
            start=v.day(report.period_start),
            end=v.day(report.period_end),
        ),
        v._(
            "Uses: %(uses)s · Violations: %(violations)s",
            uses=report.total_uses,
            violations=report.total_violations,
        ),
        "",
    ]
    tail: list[str] = []
    if report.pending:
        tail += ["", v._("Waiting for your decision: %(count)s (see /pending)", count=len(report.pending))]
    for item in report.expiring_soon[:10]:
        tail.append(
            v._("⏳ “%(title)s” ends on %(when)s", title=item.project_title, when=v.day(item.ends_at))
        )
    budget = MAX_TEXT - plain_length("\n".join(lines + tail)) - 100
    for number, grant in enumerate(report.grants):
        kinds = v.listing(
            f"{v.number(count)} {v.label(_USAGE_KIND.get(kind, N_('other uses')))}"
            for kind, count in grant.uses_by_kind.items()
        )
        title = esc(grant.project_title or grant.grant_id)
        used = esc(kinds) if kinds else v._("no use")
        line = f"• <b>{title}</b>: {used}"
        if grant.violations:
            line += " " + v._("⚠️ %(count)s uses outside the consent", count=grant.violations)
        budget -= plain_length(line) + 1
        if budget < 0:
            # A long report keeps its totals; the chart and /grants show the rest.
            lines.append(v._("… and %(count)s more", count=len(report.grants) - number))
            break
        lines.append(line)
    if not report.grants:
        lines.append(v._("No consents were used this week."))
    return "\n".join(lines + tail)


def chart_labels(language: Language, report: Report) -> dict[str, str]:
    """The words on the report's chart, in the reader's language (the chart draws them as given)."""
    v = Voice(language)
    return {
        "title": v.label(N_("Likeness uses per week: %(name)s")) % {"name": report.recipient_name},
        "x_label": v.label(N_("week starting (%(zone)s)")) % {"zone": report.timezone},
        "y_label": v.label(N_("uses")),
        "violations_label": v.label(N_("violations")),
    }


def report_caption(language: Language) -> str:
    """The caption of the report's chart."""
    return Voice(language)._("Uses per week (violations in red)")
