"""The artist's taps on a request card: approve (with the AI-training confirmation), deny with a
reason from the list or in their own words, back, and the card sent again from /pending.

Card edits after a decision are not made here: the workflow queues a `card_update` notice and
the outbox edits the card (bot/adapters/telegram.py), so a crash between the decision and the
edit cannot leave a card showing buttons for a decided request.
"""

from __future__ import annotations

from telegram import CallbackQuery, Update

from bot import workflow
from bot.adapters.telegram import card_from_view
from bot.handlers.telegram.commands import on_text
from bot.handlers.telegram.common import (
    Context,
    Deps,
    Person,
    ask_in_own_words,
    deps_of,
    log,
    person_of,
    read_chosen_reason,
    read_tap,
    record_typed_reason,
    refuse,
    set_buttons,
    take_tap,
)
from bot.handlers.telegram.outputs import reject_in_own_words
from bot.models import Outcome
from bot.render import telegram as texts
from bot.render import telegram_cards as cards
from bot.render.buttons import Tap, read_seen_subject
from bot.render.telegram_outputs import REJECT_PROMPT_MARK
from bot.workflow import RequestView


def request_of(tap: Tap) -> str:
    """The request a card's button is about (its subject may also carry the terms it showed)."""
    return read_seen_subject(tap.subject)[0]


async def _check_deny(deps: Deps, tap: Tap, person: Person) -> RequestView:
    return await workflow.check_decision(
        deps.desk, request_id=request_of(tap), actor=person.actor, outcome=Outcome.deny
    )


async def _resend(deps: Deps, tap: Tap, person: Person) -> RequestView:
    return await workflow.resend_card(deps.desk, request_id=request_of(tap), actor=person.actor)


async def _decide(
    query: CallbackQuery,
    deps: Deps,
    person: Person,
    subject: str,
    outcome: Outcome,
    *,
    reason: str | None = None,
    ai_training_confirmed: bool = False,
) -> bool:
    """One decision on the terms the button showed, through the workflow; answers the tap either way;
    True when it was recorded."""
    request_id, seen = read_seen_subject(subject)
    try:
        await workflow.decide(
            deps.desk,
            request_id=request_id,
            actor=person.actor,
            outcome=outcome,
            terms_seen=seen,
            reason=reason,
            ai_training_confirmed=ai_training_confirmed,
        )
    except workflow.NeedsConfirmation:
        raise
    except workflow.Refused as why:
        await refuse(query, why, person)
        return False
    await query.answer(texts.tap_answer(person.language, outcome))
    return True


async def on_approve(update: Update, context: Context) -> None:
    """Approves the card's request, or first asks for the explicit AI-training confirmation."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    deps = deps_of(context)
    try:
        await _decide(query, deps, person, tap.subject, Outcome.approve)
    except workflow.NeedsConfirmation:
        await query.answer(texts.confirm_ai_hint(person.language))
        keyboard = cards.ai_confirmation_keyboard(person.language, tap.subject)
        await set_buttons(query, deps.signer.markup(keyboard))


async def on_confirm_ai(update: Update, context: Context) -> None:
    """Approves a request including AI training: the second, explicit tap."""
    tapped = await read_tap(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    await _decide(query, deps_of(context), person, tap.subject, Outcome.approve, ai_training_confirmed=True)


async def on_deny(update: Update, context: Context) -> None:
    """Offers the reasons to deny with, once it is sure this person may deny this request now."""
    denying = await take_tap(update, context, _check_deny)
    if denying is None:
        return
    query, tap, person, view = denying
    keyboard = cards.deny_reasons_keyboard(person.language, tap.subject, ai_training=view.request.ai_training)
    await set_buttons(query, deps_of(context).signer.markup(keyboard))


async def on_deny_reason(update: Update, context: Context) -> None:
    """Denies the request with the reason chosen from the list."""
    chosen = await read_chosen_reason(update, context, cards.recorded_reason)
    if chosen is not None:
        query, tap, person, reason = chosen
        await _decide(query, deps_of(context), person, tap.subject, Outcome.deny, reason=reason)


async def on_own_words(update: Update, context: Context) -> None:
    """Asks, through the outbox, for a reason in the artist's own words, as a reply to the card that
    names the request, once the workflow agrees they may deny it now."""
    await ask_in_own_words(
        update,
        context,
        lambda desk, tap, actor, card: workflow.ask_deny_reason(
            desk, request_id=request_of(tap), actor=actor, reply_to=card
        ),
    )


async def on_back(update: Update, context: Context) -> None:
    """Puts Approve and Deny back on the card (from the AI confirmation or the reasons)."""
    denying = await take_tap(update, context, _check_deny)
    if denying is None:
        return
    query, _tap, person, view = denying
    card = card_from_view(view, timezone=person.timezone)
    await set_buttons(query, deps_of(context).signer.markup(cards.card_keyboard(card)))


async def on_show_card(update: Update, context: Context) -> None:
    """Sends a pending request's card again (from /pending); the older card loses its buttons."""
    await take_tap(update, context, _resend)


async def on_reply(update: Update, context: Context) -> None:
    """Denies with the artist's own words when they answer the reason prompt; else explains."""
    message = update.effective_message
    replied = message.reply_to_message if message else None
    found = None
    if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
        rejecting = REJECT_PROMPT_MARK.search(replied.text or "")
        if rejecting is not None:
            await reject_in_own_words(update, context, rejecting.group(1))
            return
        found = cards.DENY_PROMPT_MARK.search(replied.text or "")
    if message is None or found is None or update.effective_user is None:
        await on_text(update, context)
        return
    await record_typed_reason(
        update,
        context,
        update.effective_user,
        lambda desk, actor, reason: workflow.decide(
            desk, request_id=found.group(1), actor=actor, outcome=Outcome.deny, terms_seen=None, reason=reason
        ),
        refusal=lambda person, why: texts.refusal(
            person.language, person.timezone, why.code, why.message, why.details
        ),
        recorded=lambda person, _: texts.decline_recorded(person.language),
    )


async def on_unknown_button(update: Update, context: Context) -> None:
    """Refuses a button whose data names no action of ours (an old or forged client)."""
    query = update.callback_query
    if query is None:
        return
    person = await person_of(deps_of(context), query.from_user)
    log.warning("refused a button with unknown data from Telegram user %s", query.from_user.id)
    await query.answer(texts.forged_button(person.language), show_alert=True)
