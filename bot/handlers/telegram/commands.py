"""The artist's commands: /start (linking), /help, /pending, /grants, /report, /language; free
text and failed updates."""

from __future__ import annotations

import contextlib
import logging

from telegram import Update
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot import workflow
from bot.handlers.telegram.common import (
    Context,
    Deps,
    Person,
    answer_artist,
    command_person,
    deps_of,
    person_of,
    read_tap,
    reply,
)
from bot.models import ActorKind, Language
from bot.render import telegram as texts
from bot.render import words
from bot.workflow import Artist

log = logging.getLogger("bot.handlers.telegram")


async def on_start(update: Update, context: Context) -> None:
    """Links this Telegram account with the one-time token of an invite link, and greets."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    deps = deps_of(context)
    token = context.args[0] if context.args else ""
    language = words.language_of(user.language_code)
    if not token:
        person = await person_of(deps, user)
        if person.artist is None:
            await reply(update, texts.not_linked(language))
        else:
            await reply(update, texts.welcome(person.language, person.artist.name, ActorKind.artist))
        return
    try:
        linked = await workflow.redeem_invite(
            deps.desk, token=token, telegram_user_id=user.id, chat_id=chat.id
        )
    except workflow.InviteInvalid as why:
        await reply(update, texts.invite_refused(language, str(why.details.get("why", "unknown"))))
        return
    except workflow.NotAllowed:
        await reply(update, texts.already_linked_elsewhere(language))
        return
    await reply(update, texts.welcome(linked.language, linked.name, linked.kind))


async def on_help(update: Update, context: Context) -> None:
    """Explains the cards and lists the commands."""
    person = await command_person(update, context)
    if person is not None:
        await reply(update, texts.help_text(person.language))


async def on_pending(update: Update, context: Context) -> None:
    """Lists the requests waiting for the artist's decision."""
    await answer_artist(update, context, _pending)


async def _pending(deps: Deps, person: Person, artist: Artist) -> texts.Rendered:
    items = [
        texts.PendingLine(
            request_id=view.request.id,
            title=str(view.request.terms.get("project_title", "")),
            due_at=view.request.decision_due_at,
            ai_training=view.request.ai_training,
        )
        for view in await workflow.queries.artist_open_requests(deps.desk, artist.id)
    ]
    return texts.pending_list(person.language, person.timezone, items)


async def on_grants(update: Update, context: Context) -> None:
    """Lists the artist's active and upcoming consents, each with a Revoke button."""
    await answer_artist(update, context, _grants)


async def _grants(deps: Deps, person: Person, artist: Artist) -> texts.Rendered:
    lines = [
        texts.grant_line(summary)
        for summary in await workflow.queries.artist_live_grants(deps.desk, artist.id)
    ]
    return texts.grants_list(person.language, person.timezone, lines)


async def on_report(update: Update, context: Context) -> None:
    """Queues this week's usage report for the artist now; the outbox sends text and chart."""
    await answer_artist(update, context, _report)


async def _report(deps: Deps, person: Person, artist: Artist) -> texts.Rendered:
    await workflow.queue_report(deps.desk, recipient_kind=ActorKind.artist, recipient_id=artist.id)
    return texts.Rendered(texts.report_queued(person.language))


_LANGUAGE_WORDS = {"zh": Language.zh_hans, "zh-hans": Language.zh_hans, "中文": Language.zh_hans}
_LANGUAGE_WORDS |= {"en": Language.en, "english": Language.en}


async def on_language(update: Update, context: Context) -> None:
    """Sets the language from `/language en|zh`, or offers the choice as buttons."""
    user = update.effective_user
    if user is None:
        return
    deps = deps_of(context)
    language = words.language_of(user.language_code)
    chosen = _LANGUAGE_WORDS.get(context.args[0].lower()) if context.args else None
    if chosen is None:
        person = await person_of(deps, user)
        menu = texts.language_menu(person.language)
        await reply(update, menu.text, deps.signer.markup(menu.keyboard))
        return
    try:
        await workflow.set_language(deps.desk, telegram_user_id=user.id, language=chosen)
    except workflow.NotFound:
        await reply(update, texts.not_linked(language))
        return
    await reply(update, texts.language_set(chosen))


async def on_language_choice(update: Update, context: Context) -> None:
    """Switches the language of everything the bot writes to this person from now on."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    try:
        language = Language(tap.subject)
        await workflow.set_language(
            deps_of(context).desk, telegram_user_id=query.from_user.id, language=language
        )
    except ValueError:
        await query.answer(texts.forged_button(person.language), show_alert=True)
        return
    except workflow.NotFound:
        await query.answer(texts.not_linked(person.language)[: texts.MAX_ALERT], show_alert=True)
        return
    await query.answer()
    await query.edit_message_text(texts.language_set(language), parse_mode=ParseMode.HTML)


async def on_text(update: Update, context: Context) -> None:
    """Points anyone writing free text to the buttons and commands."""
    person = await command_person(update, context)
    if person is None:
        return
    if person.artist is None:
        await reply(update, texts.not_linked(person.language))
    else:
        await reply(update, texts.unknown_text(person.language))


async def on_error(update: object, context: Context) -> None:
    """Logs a failed update in one line (never the token) and tells a waiting tap to try again."""
    error = context.error
    if isinstance(error, workflow.inbox.AlreadyHandled):
        return  # another run handled this update; this one changed nothing and says nothing
    if isinstance(error, TelegramError):
        log.warning("a Telegram update failed: %s: %s", type(error).__name__, error.message)
    else:
        log.error("a Telegram update failed", exc_info=error)
    if isinstance(update, Update) and update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            language = words.language_of(update.callback_query.from_user.language_code)
            await update.callback_query.answer(texts.refusal(language, "UTC", "invalid_input", "", {}))
