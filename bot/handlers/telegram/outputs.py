"""The artist's taps under an output: Release, Reject (with a reason from the list or in their own
words, as a reply to a prompt), Back.

The tapped message is edited here (its caption gains the outcome, its buttons go): the one edit
a handler makes itself. The creator and the agency hear of it through the outbox.
"""

from __future__ import annotations

from collections.abc import Callable

from telegram import CallbackQuery, Message, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest

from bot import workflow
from bot.handlers.telegram.common import (
    Context,
    Deps,
    Person,
    ask_in_own_words,
    deps_of,
    log,
    read_chosen_reason,
    read_tap,
    record_typed_reason,
    set_buttons,
    take_tap,
)
from bot.models import Language
from bot.render import telegram_outputs as output_texts
from bot.render.buttons import Action, Keyboard, Tap


async def _refuse(query: CallbackQuery, why: workflow.Refused, person: Person) -> None:
    await query.answer(output_texts.refusal(person.language, why.code), show_alert=True)


async def _settle(
    query: CallbackQuery, context: Context, person: Person, output_id: str, reason: str | None
) -> None:
    """Releases (no reason) or rejects the output, then shows the outcome under it."""
    deps = deps_of(context)
    release = reason is None
    try:
        output = await workflow.decide_output(
            deps.desk, output_id=output_id, actor=person.actor, release=release, reason=reason
        )
    except workflow.Refused as why:
        await _refuse(query, why, person)
        return
    await query.answer(output_texts.tap_answer(person.language, released=release))
    message = query.message
    if not isinstance(message, Message):
        return
    line = output_texts.outcome_line(
        person.language, person.timezone, released=release, at=output.decided_at or deps.desk.clock.now()
    )
    base = message.caption_html or ""
    room = output_texts.MAX_CAPTION - len(line) - 2
    try:
        await query.edit_message_caption(
            caption=f"{base[:room]}\n\n{line}", parse_mode=ParseMode.HTML, reply_markup=None
        )
    except BadRequest as error:
        # Recorded already; a caption that cannot be edited (deleted, too old) changes nothing.
        log.info("could not edit the output message: %s", error.message)


async def on_release(update: Update, context: Context) -> None:
    """Releases the output under the tapped message."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    await _settle(query, context, person, tap.subject, None)


async def _check(deps: Deps, tap: Tap, person: Person) -> object:
    return await workflow.check_output_decision(deps.desk, output_id=tap.subject, actor=person.actor)


async def _offer(update: Update, context: Context, keyboard: Callable[[Language, str], Keyboard]) -> None:
    """Puts `keyboard`'s buttons under the output, once the workflow agrees they may decide it."""
    taken = await take_tap(update, context, _check, refusal=_refuse)
    if taken is not None:
        query, tap, person, _ = taken
        await set_buttons(query, deps_of(context).signer.markup(keyboard(person.language, tap.subject)))


async def on_reject(update: Update, context: Context) -> None:
    """Offers the reasons to reject the output with, once the workflow agrees they may decide it."""
    await _offer(update, context, output_texts.reject_reasons_keyboard)


async def on_reject_reason(update: Update, context: Context) -> None:
    """Rejects the output with the reason chosen."""
    chosen = await read_chosen_reason(update, context, output_texts.recorded_reason)
    if chosen is not None:
        query, tap, person, reason = chosen
        await _settle(query, context, person, tap.subject, reason)


async def on_back(update: Update, context: Context) -> None:
    """Puts Release and Reject back under the output."""
    await _offer(update, context, output_texts.review_keyboard)


async def on_own_words(update: Update, context: Context) -> None:
    """Asks, through the outbox, for a reason in the artist's own words, as a reply to the output
    that names it, once the workflow agrees they may decide it."""
    await ask_in_own_words(
        update,
        context,
        lambda desk, tap, actor, output: workflow.ask_output_reason(
            desk, output_id=tap.subject, actor=actor, reply_to=output
        ),
        refusal=_refuse,
    )


async def reject_in_own_words(update: Update, context: Context, output_id: str) -> None:
    """Rejects the output named by the prompt the artist answered, with their words as the reason."""
    if update.effective_message is None or update.effective_user is None:
        return
    await record_typed_reason(
        update,
        context,
        update.effective_user,
        lambda desk, actor, reason: workflow.decide_output(
            desk, output_id=output_id, actor=actor, release=False, reason=reason
        ),
        refusal=lambda person, why: output_texts.refusal(person.language, why.code),
        recorded=lambda person, _: output_texts.rejection_recorded(person.language),
    )


OUTPUT_TAPS = (
    (Action.release, on_release),
    (Action.reject, on_reject),
    (Action.reject_reason, on_reject_reason),
    (Action.output_back, on_back),
    (Action.output_own_words, on_own_words),
)
