"""What every Telegram handler shares: who is tapping, the signed tap, and how to answer."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import CallbackQuery, InlineKeyboardMarkup, Update, User
from telegram.constants import ParseMode
from telegram.error import BadRequest
from telegram.ext import Application, ContextTypes, ExtBot

from bot import workflow
from bot.clean_text import MAX_REASON, hidden_character, visible_text
from bot.models import Actor, ActorKind, ChannelKind, Language
from bot.render import telegram as texts
from bot.render import words
from bot.render.buttons import CallbackSigner, Tap
from bot.workflow import Artist, Desk, queries

log = logging.getLogger("bot.handlers.telegram")

Context = ContextTypes.DEFAULT_TYPE
TelegramApp = Application[ExtBot[int], Context, dict[Any, Any], dict[Any, Any], dict[Any, Any], None]

DEPS_KEY = "likeness"


@dataclass(frozen=True)
class Deps:
    """What the handlers need, kept in the Application's bot_data."""

    desk: Desk
    signer: CallbackSigner
    default_timezone: str


@dataclass(frozen=True)
class Person:
    """The Telegram user behind an update: the linked artist, or a stranger."""

    actor: Actor
    artist: Artist | None
    language: Language
    timezone: str


def deps_of(context: Context) -> Deps:
    deps = context.bot_data[DEPS_KEY]
    assert isinstance(deps, Deps)
    return deps


async def person_of(deps: Deps, user: User) -> Person:
    artist = await queries.artist_of_telegram_user(deps.desk, user.id)
    if artist is None:
        actor = Actor(
            ActorKind.stranger, str(user.id), ChannelKind.telegram, display=visible_text(user.full_name)
        )
        return Person(actor, None, words.language_of(user.language_code), deps.default_timezone)
    actor = Actor(ActorKind.artist, artist.id, ChannelKind.telegram, display=artist.name)
    return Person(actor, artist, words.language_of(artist.language), artist.timezone)


async def read_tap(update: Update, context: Context) -> tuple[CallbackQuery, Tap, Person] | None:
    """The tap and the tapper, or None after refusing a button whose data we did not sign."""
    query = update.callback_query
    if query is None:
        return None
    deps = deps_of(context)
    person = await person_of(deps, query.from_user)
    tap = deps.signer.read(query.data)
    if tap is None:
        log.warning("refused a button with unsigned data from Telegram user %s", query.from_user.id)
        await workflow.record_refusal(
            deps.desk,
            actor=person.actor,
            action="button",
            subject_kind="telegram_callback",
            subject_id=str(query.id),
            reason="the button's data does not carry our signature",
        )
        await query.answer(texts.forged_button(person.language), show_alert=True)
        return None
    return query, tap, person


async def read_chosen_reason(
    update: Update, context: Context, recorded: Callable[[str], str | None]
) -> tuple[CallbackQuery, Tap, Person, str] | None:
    """A tap that chose a reason from a list: the tap, the tapper and the reason as `recorded`
    words it; None after refusing an unsigned button or a reason no list offers (as forged)."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return None
    query, tap, person = tapped
    reason = recorded(tap.action.partition(".")[2])
    if reason is None:
        await query.answer(texts.forged_button(person.language), show_alert=True)
        return None
    return query, tap, person, reason


async def refuse(query: CallbackQuery, why: workflow.Refused, person: Person) -> None:
    """Answers the tap with why nothing changed (who decided and when, lapsed, withdrawn, ...)."""
    text = texts.refusal(person.language, person.timezone, why.code, why.message, why.details)
    await query.answer(text, show_alert=True)


T = TypeVar("T")
# One workflow step for a tap: what the tapper may do, given who they are and what the button says.
Step = Callable[["Deps", Tap, "Person"], Awaitable[T]]
Refusal = Callable[[CallbackQuery, workflow.Refused, "Person"], Awaitable[None]]


async def take_tap(
    update: Update, context: Context, step: Step[T], *, refusal: Refusal = refuse
) -> tuple[CallbackQuery, Tap, Person, T] | None:
    """Reads the signed tap, runs its one workflow step and answers the tap; None after answering
    why not (a forged button, or the workflow's refusal, worded by `refusal`)."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return None
    query, tap, person = tapped
    try:
        result = await step(deps_of(context), tap, person)
    except workflow.Refused as why:
        await refusal(query, why, person)
        return None
    await query.answer()
    return query, tap, person, result


ReasonAsker = Callable[[Desk, Tap, Actor, "int | None"], Awaitable[object]]


async def ask_in_own_words(
    update: Update, context: Context, ask: ReasonAsker, *, refusal: Refusal = refuse
) -> None:
    """Has the workflow ask, through the outbox, for a reason in the tapper's own words, as a
    reply to the message they tapped (`ask` gets its id); a refusal is answered by `refusal`."""
    tapped = update.callback_query
    message_id = tapped.message.message_id if tapped and tapped.message else None

    async def step(deps: Deps, tap: Tap, person: Person) -> object:
        return await ask(deps.desk, tap, person.actor, message_id)

    await take_tap(update, context, step, refusal=refusal)


async def set_buttons(query: CallbackQuery, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_reply_markup(reply_markup=markup)
    except BadRequest as error:
        if "not modified" not in error.message:  # a second tap on the same step shows the same buttons
            raise


async def reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup, do_quote=False)


async def typed_reason(update: Update, person: Person) -> tuple[bool, str | None]:
    """The reason a person typed in answer to a prompt (cut to MAX_REASON; None when blank), and
    whether it may be recorded: False after asking them to type it again as plain text, because
    it hides control or direction characters (nothing is recorded then)."""
    message = update.effective_message
    reason = ((message.text if message else None) or "").strip()[:MAX_REASON] or None
    if reason is not None and hidden_character(reason) is not None:
        text = texts.refusal(person.language, person.timezone, "hidden_characters", "", {})
        await reply(update, words.esc(text))
        return False, None
    return True, reason


# Records a typed reason through the workflow, for this actor (the reason is None when left blank).
ReasonTaker = Callable[[Desk, Actor, "str | None"], Awaitable[T]]


async def record_typed_reason(
    update: Update,
    context: Context,
    user: User,
    take: ReasonTaker[T],
    *,
    refusal: Callable[[Person, workflow.Refused], str],
    recorded: Callable[[Person, T], str],
) -> None:
    """Has `take` record the reason `user` typed in answer to a prompt, and replies with what
    `recorded` says of its result, or with the workflow's refusal as `refusal` words it; a reason
    hiding control or direction characters is not recorded (they are asked to type it again)."""
    deps = deps_of(context)
    person = await person_of(deps, user)
    usable, reason = await typed_reason(update, person)
    if not usable:
        return
    try:
        result = await take(deps.desk, person.actor, reason)
    except workflow.Refused as why:
        await reply(update, words.esc(refusal(person, why)))
        return
    await reply(update, recorded(person, result))


async def command_person(update: Update, context: Context) -> Person | None:
    user = update.effective_user
    return None if user is None else await person_of(deps_of(context), user)


async def linked_artist(update: Update, context: Context) -> tuple[Person, Artist] | None:
    """The artist behind a command; None, after telling the user how to link, when there is none."""
    person = await command_person(update, context)
    if person is None or person.artist is None:
        await reply(update, texts.not_linked(person.language if person else Language.en))
        return None
    return person, person.artist


ArtistAnswer = Callable[["Deps", "Person", Artist], Awaitable[texts.Rendered]]


async def answer_artist(update: Update, context: Context, answer: ArtistAnswer) -> None:
    """Answers a command only a linked artist may give with what `answer` says (and its buttons);
    anyone else is told how to link."""
    linked = await linked_artist(update, context)
    if linked is None:
        return
    person, artist = linked
    deps = deps_of(context)
    rendered = await answer(deps, person, artist)
    await reply(update, rendered.text, deps.signer.markup(rendered.keyboard))


def callback_pattern(action: str) -> str:
    # The separator after the action keeps 'rv' from matching 'rvy:...'.
    return "^" + re.escape(action) + "[:.]"
