"""The artists' Telegram bot: onboarding, deciding on cards, commands; and its place in the service.

Each handler reads one update, calls one workflow step and renders the answer (bot/render/).
Nothing is kept between updates: a button carries its request or grant id in signed callback
data, and a reason typed in one's own words answers a prompt that names its request, so a tap
or a reply works the same after a restart, on any instance.

Card edits after a decision are not made here: the workflow queues a `card_update` notice and
the outbox edits the card (bot/adapters/telegram.py), so a crash between the decision and the
edit cannot leave a card showing buttons for a decided request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse, Response
from telegram import (
    BotCommand,
    CallbackQuery,
    ForceReply,
    InlineKeyboardMarkup,
    ReplyParameters,
    Update,
    User,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ExtBot,
    MessageHandler,
    filters,
)

from bot import workflow
from bot.adapters.telegram import ChatRateLimiter, TelegramSender, card_from_view, open_for
from bot.api.ratelimit import refuse_unauthenticated, too_many
from bot.clean_text import MAX_REASON, hidden_character, visible_text
from bot.models import OPEN_STATUSES, Actor, ActorKind, ChannelKind, GrantStatus, Language, Outcome
from bot.render import telegram as texts
from bot.render import telegram_cards as cards
from bot.render import words
from bot.render.buttons import Action, CallbackSigner, Tap
from bot.workflow import Desk, grant_status_at
from storage.queries import (
    RequestView,
    artist_by_telegram_user,
    artist_grants,
    artist_requests,
    load_request_view,
)
from storage.tables import Artist, Creator, Grant, Request

if TYPE_CHECKING:
    from bot.app import Service

log = logging.getLogger(__name__)

Context = ContextTypes.DEFAULT_TYPE
TelegramApp = Application[ExtBot[int], Context, dict[Any, Any], dict[Any, Any], dict[Any, Any], None]

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
# How long start-up waits for Telegram before serving anyway (the bot keeps connecting meanwhile).
CONNECT_WAIT = 5.0
_DEPS = "likeness"


# ---------------------------------------------------------------- who is tapping


@dataclass(frozen=True)
class Deps:
    """What the handlers need, kept in the Application's bot_data."""

    desk: Desk
    signer: CallbackSigner
    sender: TelegramSender
    default_timezone: str


@dataclass(frozen=True)
class Person:
    """The Telegram user behind an update: the linked artist, or a stranger."""

    actor: Actor
    artist: Artist | None
    language: Language
    timezone: str


def _deps(context: Context) -> Deps:
    deps = context.bot_data[_DEPS]
    assert isinstance(deps, Deps)
    return deps


async def _person(deps: Deps, user: User) -> Person:
    async with deps.desk.db.read() as session:
        artist = await artist_by_telegram_user(session, user.id)
    if artist is None:
        actor = Actor(
            ActorKind.stranger, str(user.id), ChannelKind.telegram, display=visible_text(user.full_name)
        )
        return Person(actor, None, words.language_of(user.language_code), deps.default_timezone)
    actor = Actor(ActorKind.artist, artist.id, ChannelKind.telegram, display=artist.name)
    return Person(actor, artist, words.language_of(artist.language), artist.timezone)


async def _tapped(update: Update, context: Context) -> tuple[CallbackQuery, Tap, Person] | None:
    """The tap and the tapper, or None after refusing a button whose data we did not sign."""
    query = update.callback_query
    if query is None:
        return None
    deps = _deps(context)
    person = await _person(deps, query.from_user)
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


async def _may_deny(
    update: Update, context: Context
) -> tuple[CallbackQuery, Tap, Person, RequestView] | None:
    """The tap, the tapper and the request once the workflow agrees they may deny it now (the tap
    answered); None after answering why not."""
    tapped = await _tapped(update, context)
    if tapped is None:
        return None
    query, tap, person = tapped
    try:
        view = await workflow.check_decision(
            _deps(context).desk, request_id=tap.subject, actor=person.actor, outcome=Outcome.deny
        )
    except workflow.Refused as why:
        await _refuse(query, why, person)
        return None
    await query.answer()
    return query, tap, person, view


async def _refuse(query: CallbackQuery, why: workflow.Refused, person: Person) -> None:
    """Answers the tap with why nothing changed (who decided and when, lapsed, withdrawn, ...)."""
    text = texts.refusal(person.language, person.timezone, why.code, why.message, why.details)
    await query.answer(text, show_alert=True)


async def _set_buttons(query: CallbackQuery, markup: InlineKeyboardMarkup | None) -> None:
    try:
        await query.edit_message_reply_markup(reply_markup=markup)
    except BadRequest as error:
        if "not modified" not in error.message:  # a second tap on the same step shows the same buttons
            raise


async def _terms_hash(deps: Deps, request_id: str) -> str:
    """The terms the card showed: the request's own (terms never change; a change is a new request)."""
    async with deps.desk.db.read() as session:
        request = await session.get(Request, request_id)
    if request is None:
        raise workflow.NotFound(f"no request {request_id}")
    return request.terms_hash


async def _decide(
    query: CallbackQuery,
    deps: Deps,
    person: Person,
    request_id: str,
    outcome: Outcome,
    *,
    reason: str | None = None,
    ai_training_confirmed: bool = False,
) -> bool:
    """One decision through the workflow; answers the tap either way; True when it was recorded."""
    try:
        await workflow.decide(
            deps.desk,
            request_id=request_id,
            actor=person.actor,
            outcome=outcome,
            terms_hash=await _terms_hash(deps, request_id),
            reason=reason,
            ai_training_confirmed=ai_training_confirmed,
        )
    except workflow.NeedsConfirmation:
        raise
    except workflow.Refused as why:
        await _refuse(query, why, person)
        return False
    await query.answer(texts.tap_answer(person.language, outcome))
    return True


# ---------------------------------------------------------------- buttons on the card


async def on_approve(update: Update, context: Context) -> None:
    """Approves the card's request, or first asks for the explicit AI-training confirmation."""
    tapped = await _tapped(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    deps = _deps(context)
    try:
        await _decide(query, deps, person, tap.subject, Outcome.approve)
    except workflow.NeedsConfirmation:
        await query.answer(texts.confirm_ai_hint(person.language))
        keyboard = cards.ai_confirmation_keyboard(person.language, tap.subject)
        await _set_buttons(query, deps.signer.markup(keyboard))


async def on_confirm_ai(update: Update, context: Context) -> None:
    """Approves a request including AI training: the second, explicit tap."""
    tapped = await _tapped(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    await _decide(query, _deps(context), person, tap.subject, Outcome.approve, ai_training_confirmed=True)


async def on_deny(update: Update, context: Context) -> None:
    """Offers the reasons to deny with, once it is sure this person may deny this request now."""
    denying = await _may_deny(update, context)
    if denying is None:
        return
    query, tap, person, view = denying
    deps = _deps(context)
    keyboard = cards.deny_reasons_keyboard(person.language, tap.subject, ai_training=view.request.ai_training)
    await _set_buttons(query, deps.signer.markup(keyboard))


async def on_deny_reason(update: Update, context: Context) -> None:
    """Denies the request with the reason chosen from the list."""
    tapped = await _tapped(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    reason = cards.recorded_reason(tap.action.partition(".")[2])
    if reason is None:
        await query.answer(texts.forged_button(person.language), show_alert=True)
        return
    await _decide(query, _deps(context), person, tap.subject, Outcome.deny, reason=reason)


async def on_own_words(update: Update, context: Context) -> None:
    """Asks for a reason in the artist's own words, as a reply that names the request."""
    denying = await _may_deny(update, context)
    if denying is None:
        return
    query, tap, person, view = denying
    chat = update.effective_chat
    if chat is None:
        return
    title = str(view.request.terms.get("project_title", ""))
    card_message = query.message.message_id if query.message else None
    await context.bot.send_message(
        chat.id,
        cards.deny_prompt(person.language, tap.subject, title),
        parse_mode=ParseMode.HTML,
        reply_markup=ForceReply(input_field_placeholder=cards.deny_placeholder(person.language)),
        reply_parameters=(
            ReplyParameters(message_id=card_message, allow_sending_without_reply=True)
            if card_message
            else None
        ),
    )


async def on_back(update: Update, context: Context) -> None:
    """Puts Approve and Deny back on the card (from the AI confirmation or the reasons)."""
    denying = await _may_deny(update, context)
    if denying is None:
        return
    query, _tap, person, view = denying
    deps = _deps(context)
    card = card_from_view(view, timezone=person.timezone)
    await _set_buttons(query, deps.signer.markup(cards.card_keyboard(card)))


async def on_show_card(update: Update, context: Context) -> None:
    """Sends a pending request's card again (from /pending); the older card loses its buttons."""
    tapped = await _tapped(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    deps = _deps(context)
    async with deps.desk.db.read() as session:
        view = await load_request_view(session, tap.subject)
    if view is None or person.artist is None or view.artist.id != person.artist.id:
        await _refuse(query, workflow.NotAllowed("not this person's request"), person)
        return
    await query.answer()
    delivered = await deps.sender.post_card(view.request.id, view.artist.id)
    await workflow.remember_card(
        deps.desk,
        request_id=view.request.id,
        channel=ChannelKind.telegram,
        recipient_id=view.artist.id,
        chat_id=delivered.card_chat_id or "",
        message_id=delivered.card_message_id or "",
    )


# ---------------------------------------------------------------- consents


async def _grant_line(deps: Deps, grant_id: str) -> tuple[Grant, texts.GrantLine] | None:
    async with deps.desk.db.read() as session:
        grant = await session.get(Grant, grant_id)
        if grant is None:
            return None
        request = await session.get(Request, grant.request_id)
        creator = await session.get(Creator, grant.creator_id)
    assert request is not None and creator is not None  # foreign keys
    line = texts.GrantLine(
        grant_id=grant.id,
        title=str(request.terms.get("project_title", "")),
        creator_name=creator.name,
        starts_at=grant.starts_at,
        ends_at=grant.ends_at,
        status=grant.status,
        ai_training=request.ai_training,
    )
    return grant, line


async def on_revoke(update: Update, context: Context) -> None:
    """Asks the artist to confirm revoking one consent."""
    tapped = await _tapped(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    deps = _deps(context)
    found = await _grant_line(deps, tap.subject)
    if found is None:
        await _refuse(query, workflow.NotFound("no such consent"), person)
        return
    grant, line = found
    if person.artist is None or grant.artist_id != person.artist.id:
        # Not theirs: the workflow refuses and records the attempt in the audit chain.
        try:
            await workflow.revoke_grant(deps.desk, grant_id=grant.id, actor=person.actor)
        except workflow.Refused as why:
            await _refuse(query, why, person)
        return
    status = grant_status_at(grant, deps.desk.clock.now())
    if status in {GrantStatus.revoked, GrantStatus.expired}:
        await _refuse(query, workflow.NotOpen("closed", status=status.value), person)
        return
    await query.answer()
    question = texts.revoke_question(person.language, line)
    if update.effective_chat is not None:
        await context.bot.send_message(
            update.effective_chat.id,
            question.text,
            parse_mode=ParseMode.HTML,
            reply_markup=deps.signer.markup(question.keyboard),
        )


async def on_revoke_confirmed(update: Update, context: Context) -> None:
    """Revokes the consent: it ends now; the studio and the agency are told by the workflow."""
    tapped = await _tapped(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    deps = _deps(context)
    try:
        grant = await workflow.revoke_grant(
            deps.desk, grant_id=tap.subject, actor=person.actor, reason="revoked by the artist in Telegram"
        )
    except workflow.Refused as why:
        await _refuse(query, why, person)
        return
    await query.answer()
    found = await _grant_line(deps, grant.id)
    title = found[1].title if found else grant.id
    at = grant.revoked_at or deps.desk.clock.now()
    await query.edit_message_text(
        texts.revoked(person.language, person.timezone, title, at), parse_mode=ParseMode.HTML
    )


async def on_revoke_kept(update: Update, context: Context) -> None:
    """Leaves the consent as it is."""
    tapped = await _tapped(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    found = await _grant_line(_deps(context), tap.subject)
    if found is None or person.artist is None or found[0].artist_id != person.artist.id:
        await _refuse(query, workflow.NotAllowed("not this person's consent"), person)
        return
    await query.answer()
    await query.edit_message_text(
        texts.revoke_kept(person.language, found[1].title), parse_mode=ParseMode.HTML
    )


async def on_language_choice(update: Update, context: Context) -> None:
    """Switches the language of everything the bot writes to this person from now on."""
    tapped = await _tapped(update, context)
    if tapped is None:
        return
    query, tap, person = tapped
    try:
        language = Language(tap.subject)
        await workflow.set_language(
            _deps(context).desk, telegram_user_id=query.from_user.id, language=language
        )
    except ValueError:
        await query.answer(texts.forged_button(person.language), show_alert=True)
        return
    except workflow.NotFound:
        await query.answer(texts.not_linked(person.language)[: texts.MAX_ALERT], show_alert=True)
        return
    await query.answer()
    await query.edit_message_text(texts.language_set(language), parse_mode=ParseMode.HTML)


async def on_unknown_button(update: Update, context: Context) -> None:
    """Refuses a button whose data names no action of ours (an old or forged client)."""
    query = update.callback_query
    if query is None:
        return
    person = await _person(_deps(context), query.from_user)
    log.warning("refused a button with unknown data from Telegram user %s", query.from_user.id)
    await query.answer(texts.forged_button(person.language), show_alert=True)


# ---------------------------------------------------------------- commands


async def _reply(update: Update, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    message = update.effective_message
    if message is not None:
        await message.reply_text(text, parse_mode=ParseMode.HTML, reply_markup=markup, do_quote=False)


async def _command_person(update: Update, context: Context) -> Person | None:
    user = update.effective_user
    return None if user is None else await _person(_deps(context), user)


async def _linked_artist(update: Update, context: Context) -> tuple[Person, Artist] | None:
    """The artist behind a command; None, after telling the user how to link, when there is none."""
    person = await _command_person(update, context)
    if person is None or person.artist is None:
        await _reply(update, texts.not_linked(person.language if person else Language.en))
        return None
    return person, person.artist


async def on_start(update: Update, context: Context) -> None:
    """Links this Telegram account with the one-time token of an invite link, and greets."""
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    deps = _deps(context)
    token = context.args[0] if context.args else ""
    language = words.language_of(user.language_code)
    if not token:
        person = await _person(deps, user)
        if person.artist is None:
            await _reply(update, texts.not_linked(language))
        else:
            await _reply(update, texts.welcome(person.language, person.artist.name, ActorKind.artist))
        return
    try:
        linked = await workflow.redeem_invite(
            deps.desk, token=token, telegram_user_id=user.id, chat_id=chat.id
        )
    except workflow.InviteInvalid as why:
        await _reply(update, texts.invite_refused(language, str(why.details.get("why", "unknown"))))
        return
    except workflow.NotAllowed:
        await _reply(update, texts.already_linked_elsewhere(language))
        return
    await _reply(update, texts.welcome(linked.language, linked.name, linked.kind))


async def on_help(update: Update, context: Context) -> None:
    """Explains the cards and lists the commands."""
    person = await _command_person(update, context)
    if person is not None:
        await _reply(update, texts.help_text(person.language))


async def on_pending(update: Update, context: Context) -> None:
    """Lists the requests waiting for the artist's decision."""
    linked = await _linked_artist(update, context)
    if linked is None:
        return
    person, artist = linked
    deps = _deps(context)
    async with deps.desk.db.read() as session:
        requests = await artist_requests(session, artist.id, {s.value for s in OPEN_STATUSES})
        views = [await load_request_view(session, request.id) for request in requests]
    items = [
        texts.PendingLine(
            request_id=view.request.id,
            title=str(view.request.terms.get("project_title", "")),
            due_at=view.request.decision_due_at,
            ai_training=view.request.ai_training,
        )
        for view in views
        if view is not None and open_for(view)
    ]
    rendered = texts.pending_list(person.language, person.timezone, items)
    await _reply(update, rendered.text, deps.signer.markup(rendered.keyboard))


async def on_grants(update: Update, context: Context) -> None:
    """Lists the artist's active and upcoming consents, each with a Revoke button."""
    linked = await _linked_artist(update, context)
    if linked is None:
        return
    person, artist = linked
    deps = _deps(context)
    now = deps.desk.clock.now()
    live = {GrantStatus.active.value, GrantStatus.scheduled.value}
    async with deps.desk.db.read() as session:
        grants = await artist_grants(session, artist.id, live)
        grant_ids = [g.id for g in grants if grant_status_at(g, now).value in live]
    lines = [found[1] for found in [await _grant_line(deps, gid) for gid in grant_ids] if found]
    rendered = texts.grants_list(person.language, person.timezone, lines)
    await _reply(update, rendered.text, deps.signer.markup(rendered.keyboard))


async def on_report(update: Update, context: Context) -> None:
    """Queues this week's usage report for the artist now; the outbox sends text and chart."""
    linked = await _linked_artist(update, context)
    if linked is None:
        return
    person, artist = linked
    await workflow.queue_report(_deps(context).desk, recipient_kind=ActorKind.artist, recipient_id=artist.id)
    await _reply(update, texts.report_queued(person.language))


_LANGUAGE_WORDS = {"zh": Language.zh_hans, "zh-hans": Language.zh_hans, "中文": Language.zh_hans}
_LANGUAGE_WORDS |= {"en": Language.en, "english": Language.en}


async def on_language(update: Update, context: Context) -> None:
    """Sets the language from `/language en|zh`, or offers the choice as buttons."""
    user = update.effective_user
    if user is None:
        return
    deps = _deps(context)
    language = words.language_of(user.language_code)
    chosen = _LANGUAGE_WORDS.get(context.args[0].lower()) if context.args else None
    if chosen is None:
        person = await _person(deps, user)
        menu = texts.language_menu(person.language)
        await _reply(update, menu.text, deps.signer.markup(menu.keyboard))
        return
    try:
        await workflow.set_language(deps.desk, telegram_user_id=user.id, language=chosen)
    except workflow.NotFound:
        await _reply(update, texts.not_linked(language))
        return
    await _reply(update, texts.language_set(chosen))


async def on_reply(update: Update, context: Context) -> None:
    """Denies with the artist's own words when they answer the reason prompt; else explains."""
    message = update.effective_message
    replied = message.reply_to_message if message else None
    found = None
    if replied is not None and replied.from_user is not None and replied.from_user.id == context.bot.id:
        found = cards.DENY_PROMPT_MARK.search(replied.text or "")
    if message is None or found is None or update.effective_user is None:
        await on_text(update, context)
        return
    deps = _deps(context)
    person = await _person(deps, update.effective_user)
    reason = (message.text or "").strip()[:MAX_REASON] or None
    if reason is not None and hidden_character(reason) is not None:
        # Nothing is recorded: the artist is asked to type the reason again as plain text.
        text = texts.refusal(person.language, person.timezone, "hidden_characters", "", {})
        await _reply(update, words.esc(text))
        return
    try:
        await workflow.decide(
            deps.desk,
            request_id=found.group(1),
            actor=person.actor,
            outcome=Outcome.deny,
            terms_hash=await _terms_hash(deps, found.group(1)),
            reason=reason,
        )
    except workflow.Refused as why:
        await _reply(
            update,
            words.esc(texts.refusal(person.language, person.timezone, why.code, why.message, why.details)),
        )
        return
    await _reply(update, texts.decline_recorded(person.language))


async def on_text(update: Update, context: Context) -> None:
    """Points anyone writing free text to the buttons and commands."""
    person = await _command_person(update, context)
    if person is None:
        return
    if person.artist is None:
        await _reply(update, texts.not_linked(person.language))
    else:
        await _reply(update, texts.unknown_text(person.language))


async def on_error(update: object, context: Context) -> None:
    """Logs a failed update in one line (never the token) and tells a waiting tap to try again."""
    error = context.error
    if isinstance(error, TelegramError):
        log.warning("a Telegram update failed: %s: %s", type(error).__name__, error.message)
    else:
        log.error("a Telegram update failed", exc_info=error)
    if isinstance(update, Update) and update.callback_query is not None:
        with contextlib.suppress(TelegramError):
            language = words.language_of(update.callback_query.from_user.language_code)
            await update.callback_query.answer(texts.refusal(language, "UTC", "invalid_input", "", {}))


# ---------------------------------------------------------------- the channel in the service


def _callback(action: str) -> str:
    # The separator after the action keeps 'rv' from matching 'rvy:...'.
    return "^" + re.escape(action) + "[:.]"


def register_handlers(application: TelegramApp) -> None:
    """Every command, button and text handler, private chats only (artists decide alone)."""
    private = filters.ChatType.PRIVATE
    for name, handler in [
        ("start", on_start),
        ("help", on_help),
        ("pending", on_pending),
        ("grants", on_grants),
        ("report", on_report),
        ("language", on_language),
    ]:
        application.add_handler(CommandHandler(name, handler, filters=private))
    for action, tap_handler in [
        (Action.approve, on_approve),
        (Action.confirm_ai, on_confirm_ai),
        (Action.deny, on_deny),
        (Action.reason, on_deny_reason),
        (Action.own_words, on_own_words),
        (Action.back, on_back),
        (Action.show_card, on_show_card),
        (Action.revoke_yes, on_revoke_confirmed),
        (Action.revoke_no, on_revoke_kept),
        (Action.revoke, on_revoke),
        (Action.language, on_language_choice),
    ]:
        application.add_handler(CallbackQueryHandler(tap_handler, pattern=_callback(action)))
    # The pause has its own module, which uses this one's helpers: imported here, not at the top.
    from bot.handlers.telegram_history import register_history_handler
    from bot.handlers.telegram_pause import register_pause_handlers

    register_pause_handlers(application)
    register_history_handler(application)
    application.add_handler(CallbackQueryHandler(on_unknown_button))
    application.add_handler(
        MessageHandler(private & filters.REPLY & filters.TEXT & ~filters.COMMAND, on_reply)
    )
    application.add_handler(MessageHandler(private & filters.TEXT, on_text))
    application.add_error_handler(on_error)


class TokenRedactor(logging.Filter):
    """Replaces the bot token in every log line: it is part of every Bot API URL."""

    def __init__(self, secret: str) -> None:
        """Remembers what to hide."""
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrites the record's message and traceback when they contain the token."""
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, "<bot-token>"), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text and self.secret in record.exc_text:
            record.exc_text = record.exc_text.replace(self.secret, "<bot-token>")
        return True


class TelegramChannel:
    """The bot inside `likeness serve`: builds the Application, connects, listens, stops.

    Parameters:
        service: the service being built; its settings say polling or webhook.
    """

    def __init__(self, service: Service) -> None:
        """Builds the Application and the sender; nothing connects until `start`."""
        settings = service.settings
        assert settings.telegram_bot_token is not None
        self.token = settings.telegram_bot_token.get_secret_value()
        self.desk = service.desk
        self.webhook_url = settings.telegram_webhook_url
        given = settings.telegram_webhook_secret
        # Without a configured secret, one derived from the key files' webhook seed: the same on every
        # instance sharing them and across restarts and rotations, and never a webhook anyone could call.
        seed = self.desk.signer.telegram_webhook_seed()
        self.webhook_secret = (
            given.get_secret_value()
            if given is not None
            else hmac.new(seed, b"telegram-webhook", hashlib.sha256).hexdigest()
        )
        builder = (
            ApplicationBuilder()
            .token(self.token)
            .base_url(settings.telegram_api_base_url)
            .rate_limiter(ChatRateLimiter())
            .job_queue(None)
            # Taps from many artists are independent and each is one transaction: no need to queue them.
            .concurrent_updates(64)
            .connect_timeout(5)
            .read_timeout(10)
            .write_timeout(20)
            .pool_timeout(10)
        )
        if self.webhook_url:
            builder = builder.updater(None)
        self.application: TelegramApp = builder.build()
        self.signer = CallbackSigner(self.desk.signer.callback_keys)
        self.connected = False
        self.sender = TelegramSender(
            self.application.bot,
            self.desk,
            self.signer,
            default_timezone=settings.default_timezone,
            is_ready=lambda: self.connected,
            charts=service.charts,
        )
        self.application.bot_data[_DEPS] = Deps(
            self.desk, self.signer, self.sender, settings.default_timezone
        )
        register_handlers(self.application)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connects, waiting briefly so the outbox finds the bot ready; keeps trying in the background."""
        self._task = asyncio.create_task(self._connect(), name="telegram-connect")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._task), timeout=CONNECT_WAIT)

    async def _connect(self) -> None:
        delay = 1.0
        while True:
            try:
                await self._connect_once()
            except InvalidToken:
                log.error("Telegram refused the bot token (TELEGRAM_BOT_TOKEN); the channel stays off")
                return
            except TelegramError as error:
                log.warning("cannot reach Telegram (%s); trying again in %.0f s", error.message, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)
                continue
            self.connected = True
            mode = f"webhook at {self.webhook_url}" if self.webhook_url else "long polling"
            log.info("Telegram bot @%s connected (%s)", self.application.bot.username, mode)
            return

    async def _connect_once(self) -> None:
        application = self.application
        await application.initialize()
        bot = application.bot
        await bot.set_my_commands([BotCommand(c, d) for c, d in texts.commands(Language.en)])
        await bot.set_my_commands(
            [BotCommand(c, d) for c, d in texts.commands(Language.zh_hans)], language_code="zh"
        )
        if self.webhook_url:
            await bot.set_webhook(
                self.webhook_url, secret_token=self.webhook_secret, allowed_updates=ALLOWED_UPDATES
            )
        else:
            assert application.updater is not None
            if not application.updater.running:
                await application.updater.start_polling(
                    allowed_updates=ALLOWED_UPDATES, error_callback=self._polling_error
                )
        if not application.running:
            await application.start()

    @staticmethod
    def _polling_error(error: TelegramError) -> None:
        # PTB keeps polling with backoff; one line is enough (its default prints a traceback).
        log.warning("Telegram polling: %s: %s", type(error).__name__, error.message)

    async def stop(self) -> None:
        """Stops listening and closes the connections; a webhook stays set for the next start."""
        self.connected = False
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        application = self.application
        if application.updater is not None and application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()

    async def receive(self, request: HttpRequest) -> Response:
        """The webhook: checks Telegram's secret, queues the update and answers at once."""
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), self.webhook_secret.encode()):
            # No one we know: counted, never stored.
            limited = await refuse_unauthenticated(
                request, "telegram_secret", "wrong or missing secret token"
            )
            if limited is not None:
                return too_many(limited.scope_name, limited.retry_after)
            return JSONResponse({"detail": "wrong or missing secret token"}, status_code=403)
        if not self.connected:
            # Telegram keeps the update and delivers it again; accepting it now could lose it.
            return JSONResponse({"detail": "the bot is starting"}, status_code=503)
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise TypeError("an update is a JSON object")
            update = Update.de_json(body, self.application.bot)
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            return JSONResponse({"detail": "not a Telegram update"}, status_code=400)
        await self.application.update_queue.put(update)
        return Response(status_code=200)


def hide_token_in_logs(token: str) -> None:
    """Adds the token redactor to every handler of the root logger."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, TokenRedactor) and f.secret == token for f in handler.filters):
            handler.addFilter(TokenRedactor(token))


def attach_telegram(service: Service) -> None:
    """Switches the Telegram channel on: the bot's start and stop, its webhook route, its sender."""
    # Opt in to PTB's timedelta durations now, instead of a deprecation warning on every 429.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    channel = TelegramChannel(service)
    hide_token_in_logs(channel.token)
    service.on_start.append(channel.start)
    service.on_stop.append(channel.stop)
    service.senders.append(channel.sender)
    if channel.webhook_url:
        service.api.add_api_route(WEBHOOK_PATH, channel.receive, methods=["POST"], include_in_schema=False)
