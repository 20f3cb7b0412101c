"""The Telegram channel inside `likeness serve`: the handlers registered on a PTB Application,
the bot's connection (polling or webhook), its sender, and the token kept out of the logs."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
from typing import TYPE_CHECKING

from fastapi import Request as HttpRequest
from fastapi.responses import Response
from telegram import BotCommand, Update
from telegram.error import InvalidToken, TelegramError
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.adapters.telegram import ChatRateLimiter, TelegramSender
from bot.adapters.telegram_http import AiohttpRequest
from bot.handlers.telegram import commands, consents, decisions
from bot.handlers.telegram.common import DEPS_KEY, Deps, TelegramApp, callback_pattern
from bot.handlers.telegram.history import register_history_handler
from bot.handlers.telegram.intake import TelegramIntake
from bot.handlers.telegram.outputs import OUTPUT_TAPS
from bot.handlers.telegram.pause import register_pause_handlers
from bot.handlers.telegram.webhook import WEBHOOK_PATH, receive_update
from bot.models import Language
from bot.render import telegram as texts
from bot.render.buttons import Action, CallbackSigner
from bot.setup_calls import try_now_or_keep_trying

if TYPE_CHECKING:
    from bot.service import Service

log = logging.getLogger("bot.handlers.telegram")

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
# How long start-up waits for Telegram before serving anyway (the bot keeps connecting meanwhile).
CONNECT_WAIT = 5.0


def register_handlers(application: TelegramApp) -> None:
    """Every command, button and text handler, private chats only (artists decide alone)."""
    private = filters.ChatType.PRIVATE
    for name, handler in [
        ("start", commands.on_start),
        ("help", commands.on_help),
        ("pending", commands.on_pending),
        ("grants", commands.on_grants),
        ("report", commands.on_report),
        ("language", commands.on_language),
    ]:
        application.add_handler(CommandHandler(name, handler, filters=private))
    for action, tap_handler in [
        (Action.approve, decisions.on_approve),
        (Action.confirm_ai, decisions.on_confirm_ai),
        (Action.deny, decisions.on_deny),
        (Action.reason, decisions.on_deny_reason),
        (Action.own_words, decisions.on_own_words),
        (Action.back, decisions.on_back),
        (Action.show_card, decisions.on_show_card),
        (Action.revoke_yes, consents.on_revoke_confirmed),
        (Action.revoke_no, consents.on_revoke_kept),
        (Action.revoke, consents.on_revoke),
        (Action.language, commands.on_language_choice),
        *OUTPUT_TAPS,
    ]:
        application.add_handler(CallbackQueryHandler(tap_handler, pattern=callback_pattern(action)))
    register_pause_handlers(application)
    register_history_handler(application)
    application.add_handler(CallbackQueryHandler(decisions.on_unknown_button))
    application.add_handler(
        MessageHandler(private & filters.REPLY & filters.TEXT & ~filters.COMMAND, decisions.on_reply)
    )
    application.add_handler(MessageHandler(private & filters.TEXT, commands.on_text))
    application.add_error_handler(commands.on_error)


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
            .rate_limiter(ChatRateLimiter(shared=service.send_budget, bot_id=self.token.split(":", 1)[0]))
            .job_queue(None)
            # Taps from many artists are independent and each is one transaction: no need to queue them.
            .concurrent_updates(64)
            .request(AiohttpRequest(connect_timeout=5, read_timeout=10, write_timeout=20, pool_timeout=10))
            # Long polling is TelegramIntake's loop, which stores each update before confirming it.
            .updater(None)
        )
        self.application: TelegramApp = builder.build()
        self.intake = TelegramIntake(self.application, self.desk, ALLOWED_UPDATES)
        self._intake_started = False
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
        self.application.bot_data[DEPS_KEY] = Deps(self.desk, self.signer, settings.default_timezone)
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
            await try_now_or_keep_trying("setMyCommands", self._set_commands, alive=lambda: self.connected)
            mode = f"webhook at {self.webhook_url}" if self.webhook_url else "long polling"
            log.info("Telegram bot @%s connected (%s)", self.application.bot.username, mode)
            return

    async def _connect_once(self) -> None:
        application = self.application
        await application.initialize()
        bot = application.bot
        if self.webhook_url:
            await bot.set_webhook(
                self.webhook_url, secret_token=self.webhook_secret, allowed_updates=ALLOWED_UPDATES
            )
        else:
            # getUpdates is refused while a webhook is set; its pending updates stay for the poll.
            await bot.delete_webhook()
        if not application.running:
            await application.start()
        if not self._intake_started:
            # Before any new update is taken: first what the last run left unfinished.
            await self.intake.start(poll=not self.webhook_url)
            self._intake_started = True

    async def _set_commands(self) -> None:
        bot = self.application.bot
        await bot.set_my_commands([BotCommand(c, d) for c, d in texts.commands(Language.en)])
        await bot.set_my_commands(
            [BotCommand(c, d) for c, d in texts.commands(Language.zh_hans)], language_code="zh"
        )

    async def stop(self) -> None:
        """Stops listening and closes the connections; a webhook stays set for the next start."""
        self.connected = False
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        application = self.application
        await self.intake.stop()
        if application.running:
            await application.stop()
        await application.shutdown()

    async def receive(self, request: HttpRequest) -> Response:
        """The webhook: checks Telegram's secret, stores the update in the inbox and answers."""
        return await receive_update(
            request, secret=self.webhook_secret, connected=self.connected, intake=self.intake
        )


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
