"""The artist's pause in Telegram: /pause (or 暂停) and /resume (or 恢复), each confirmed with one
tap; a reason, when the artist wants to give one, answers a prompt that names the artist.

Like the rest of the bot nothing is kept between updates: the buttons carry the artist's id in
signed callback data, and the workflow refuses (and audits) anyone who is not that artist.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from telegram import CallbackQuery, Message, Update
from telegram.constants import ParseMode
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot import workflow
from bot.handlers.telegram.common import (
    Context,
    Deps,
    Person,
    Step,
    TelegramApp,
    answer_artist,
    callback_pattern,
    record_typed_reason,
    take_tap,
)
from bot.models import Language
from bot.render import telegram_pause as texts
from bot.render.buttons import Action, Tap
from bot.render.telegram import Rendered
from bot.render.words import parse_time
from bot.workflow import Artist


async def _refuse(query: CallbackQuery, why: workflow.Refused, person: Person) -> None:
    await query.answer(texts.refusal(person.language, why.code, why.details)[:200], show_alert=True)


async def on_pause(update: Update, context: Context) -> None:
    """Asks the artist to confirm pausing every consent (or says they are paused already)."""
    await answer_artist(update, context, _pause_question)


async def _pause_question(_deps: Deps, person: Person, artist: Artist) -> Rendered:
    try:
        workflow.check_may_ask_pause(artist)
    except workflow.NotOpen as why:
        by, at = why.details.get("paused_by"), parse_time(why.details.get("paused_at"))
        return Rendered(texts.already_paused(person.language, person.timezone, by, at))
    return Rendered(*texts.pause_question(person.language, artist.id))


async def on_resume(update: Update, context: Context) -> None:
    """Asks the artist to confirm lifting the pause (or says nothing is paused)."""
    await answer_artist(update, context, _resume_question)


async def _resume_question(_deps: Deps, person: Person, artist: Artist) -> Rendered:
    try:
        workflow.check_may_ask_resume(artist)
    except workflow.NotOpen:
        return Rendered(texts.not_paused(person.language))
    return Rendered(*texts.resume_question(person.language, artist.id))


async def on_word(update: Update, context: Context) -> None:
    """The command words typed as text: 暂停 pauses, 恢复 resumes (after the same confirmation)."""
    message = update.effective_message
    word = (message.text or "").strip() if message else ""
    if word in texts.PAUSE_WORDS:
        await on_pause(update, context)
    else:
        await on_resume(update, context)


async def _pause_now(deps: Deps, tap: Tap, person: Person) -> workflow.PauseChange:
    return await workflow.pause_artist(deps.desk, artist_id=tap.subject, actor=person.actor)


async def _ask_reason(deps: Deps, tap: Tap, person: Person) -> None:
    await workflow.ask_pause_reason(deps.desk, artist_id=tap.subject, actor=person.actor)


async def _resume(deps: Deps, tap: Tap, person: Person) -> workflow.PauseChange:
    return await workflow.resume_artist(deps.desk, artist_id=tap.subject, actor=person.actor)


async def _change(
    update: Update,
    context: Context,
    step: Step[workflow.PauseChange],
    said: Callable[[Language, str, int, datetime], str],
) -> None:
    """Makes the change the tap confirms and says, in the tapped message, how many grants it moved."""
    taken = await take_tap(update, context, step, refusal=_refuse)
    if taken is not None:
        query, _, person, change = taken
        text = said(person.language, person.timezone, len(change.grants), change.at)
        await query.edit_message_text(text, parse_mode=ParseMode.HTML)


async def on_pause_confirmed(update: Update, context: Context) -> None:
    """Pauses every consent of the artist: the one tap."""
    await _change(update, context, _pause_now, texts.paused)


async def on_pause_with_reason(update: Update, context: Context) -> None:
    """Asks, through the outbox, for the reason in the artist's own words, as a reply that names
    the artist; someone else's tap is refused and recorded by the workflow."""
    await take_tap(update, context, _ask_reason, refusal=_refuse)


async def on_resume_confirmed(update: Update, context: Context) -> None:
    """Lifts the pause: each grant returns to what its window implies."""
    await _change(update, context, _resume, texts.resumed)


async def _own_question(deps: Deps, tap: Tap, person: Person) -> None:
    workflow.check_own_question(person.actor, tap.subject)


async def on_cancel(update: Update, context: Context) -> None:
    """Leaves everything as it is."""
    taken = await take_tap(update, context, _own_question, refusal=_refuse)
    if taken is not None:
        query, _, person, _ = taken
        await query.edit_message_text(texts.kept(person.language), parse_mode=ParseMode.HTML)


async def on_reason(update: Update, context: Context) -> None:
    """Pauses with the artist's own words when they answer the reason prompt."""
    message, user = update.effective_message, update.effective_user
    replied = message.reply_to_message if message else None
    found = texts.PAUSE_PROMPT_MARK.search(replied.text or "") if replied else None
    if message is None or user is None or found is None:
        return
    if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
        return
    await record_typed_reason(
        update,
        context,
        user,
        lambda desk, actor, reason: workflow.pause_artist(
            desk, artist_id=found.group(1), actor=actor, reason=reason
        ),
        refusal=lambda person, why: texts.refusal(person.language, why.code, why.details),
        recorded=lambda person, change: texts.paused(
            person.language, person.timezone, len(change.grants), change.at
        ),
    )


class _AnswersPausePrompt(filters.MessageFilter):
    """A reply to the bot's pause-reason prompt."""

    def filter(self, message: Message) -> bool:
        replied = message.reply_to_message
        return replied is not None and texts.PAUSE_PROMPT_MARK.search(replied.text or "") is not None


def register_pause_handlers(application: TelegramApp) -> None:
    """The pause commands, words, buttons and reason replies (before the catch-all handlers)."""
    private = filters.ChatType.PRIVATE
    application.add_handler(CommandHandler("pause", on_pause, filters=private))
    application.add_handler(CommandHandler("resume", on_resume, filters=private))
    for action, handler in [
        (Action.pause_yes, on_pause_confirmed),
        (Action.pause_why, on_pause_with_reason),
        (Action.pause_no, on_cancel),
        (Action.resume_yes, on_resume_confirmed),
    ]:
        application.add_handler(CallbackQueryHandler(handler, pattern=callback_pattern(action)))
    application.add_handler(
        MessageHandler(
            private & filters.REPLY & filters.TEXT & ~filters.COMMAND & _AnswersPausePrompt(), on_reason
        )
    )
    words = "|".join(texts.PAUSE_WORDS + texts.RESUME_WORDS)
    # Not as a reply: a decline reason that happens to be the word stays a decline reason.
    word = filters.Regex(rf"^\s*({words})\s*$")
    application.add_handler(MessageHandler(private & ~filters.REPLY & word, on_word))
