"""Telegram's side of delivery: flood limits and the outbox sender.

Two parts, each about talking to the Bot API and nothing else (the signed button data they send
is `bot.render.buttons.CallbackSigner`):

- `ChatRateLimiter` keeps every call under Telegram's limits before Telegram has to say so:
  PTB's `AIORateLimiter` for the whole bot and for groups, plus an aiolimiter bucket per private
  chat, which `AIORateLimiter` does not have. Answers to button taps carry no chat id, so they
  never wait behind a busy chat.
- `TelegramSender` turns one outbox notice into Bot API calls (send, edit in place, upload) and
  maps Telegram's answers onto the drainer's vocabulary: `RetryLater` for 429, 5xx and network
  trouble, `Undeliverable` for what can never succeed (e.g. the user blocked the bot).

The sender reads what it renders (the request, the card's location) through storage queries;
every write goes through the workflow or the drainer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiolimiter import AsyncLimiter
from sqlalchemy import select
from telegram import (
    Bot,
    LinkPreviewOptions,
    Message,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, BaseRateLimiter

from bot.bundle import build_bundle, bundle_name
from bot.delivery import Delivered, Outgoing, RetryLater, Undeliverable
from bot.models import OPEN_STATUSES, ActorKind, ChannelKind, GrantStatus, Language, RequestStatus, Terms
from bot.render import telegram as texts
from bot.render import telegram_cards as cards
from bot.render import telegram_deletion as deletion_texts
from bot.render import telegram_history as history_texts
from bot.render import telegram_pause as pause_texts
from bot.render import violations, words
from bot.render.buttons import NO_BUTTONS, CallbackSigner
from bot.reports import ChartDrawer, build_report
from bot.workflow import Desk
from bot.workflow.history import HISTORY_NOTICE
from storage.queries import RequestView, card_ref, load_request_view
from storage.tables import Artist, CardRef, Creator, Notice

log = logging.getLogger(__name__)

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]

# ---------------------------------------------------------------- flood limits

# Telegram allows about 30 messages a second per bot; staying a little below keeps network jitter
# (two calls arriving closer together than they left) from ever making us the 31st.
BOT_MESSAGES_PER_SECOND = 28
GROUP_MESSAGES_PER_MINUTE = 20
# About one message a second per private chat, with short bursts allowed. Our burst (2) is
# smaller than what Telegram tolerates, for the same reason as above.
PRIVATE_CHAT_RATE = 1.0
PRIVATE_CHAT_BURST = 2
_IDLE_LIMITERS = 1024


def _counts_against_chat(endpoint: str) -> bool:
    """Calls that put something into a chat (messages and edits); typing indicators do not."""
    return endpoint.startswith(("send", "edit", "copyMessage", "forwardMessage")) and endpoint != (
        "sendChatAction"
    )


class _ExpectedFloodControl(logging.Filter):
    """Drops AIORateLimiter's traceback for a 429 it was told not to retry: the outbox retries it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Rate limit hit after maximum of")


def _quiet_expected_429s() -> None:
    logger = logging.getLogger("telegram.ext.AIORateLimiter")
    if not any(isinstance(f, _ExpectedFloodControl) for f in logger.filters):
        logger.addFilter(_ExpectedFloodControl())


class ChatRateLimiter(BaseRateLimiter[int]):
    """PTB's AIORateLimiter (per bot, per group) plus one aiolimiter bucket per private chat.

    A 429 is not retried here (``max_retries=0``): it goes back to the outbox as RetryLater, which
    keeps the notice and tries again after `retry_after` without holding other chats up.
    """

    def __init__(
        self,
        *,
        per_bot: float = BOT_MESSAGES_PER_SECOND,
        group_per_minute: float = GROUP_MESSAGES_PER_MINUTE,
        private_rate: float = PRIVATE_CHAT_RATE,
        private_burst: int = PRIVATE_CHAT_BURST,
    ) -> None:
        """Prepares the limits.

        Parameters:
            per_bot: calls with a chat id per second, for the whole bot.
            group_per_minute: messages per minute into one group.
            private_rate: messages per second into one private chat, on average.
            private_burst: how many may go at once into a private chat that was quiet.
        """
        self._inner = AIORateLimiter(
            overall_max_rate=per_bot,
            overall_time_period=1,
            group_max_rate=group_per_minute,
            group_time_period=60,
            max_retries=0,
        )
        self._private_rate = private_rate
        self._private_burst = private_burst
        self._chats: dict[int, AsyncLimiter] = {}
        _quiet_expected_429s()

    async def initialize(self) -> None:
        """Nothing to set up."""
        await self._inner.initialize()

    async def shutdown(self) -> None:
        """Nothing to release."""
        await self._inner.shutdown()

    def _chat(self, chat_id: int) -> AsyncLimiter:
        limiter = self._chats.get(chat_id)
        if limiter is None:
            if len(self._chats) > _IDLE_LIMITERS:
                # Forget buckets that are full again: they hold no information any more.
                for key, idle in list(self._chats.items()):
                    if idle.has_capacity(idle.max_rate):
                        del self._chats[key]
            limiter = AsyncLimiter(self._private_burst, self._private_burst / self._private_rate)
            self._chats[chat_id] = limiter
        return limiter

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> JSONResult:
        """Waits for the private chat's bucket (if any), then for the bot's and group's."""
        chat_id = data.get("chat_id")
        with contextlib.suppress(TypeError, ValueError):
            chat_id = int(chat_id)  # type: ignore[arg-type]
        if isinstance(chat_id, int) and chat_id > 0 and _counts_against_chat(endpoint):
            async with self._chat(chat_id):
                return await self._inner.process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
        return await self._inner.process_request(callback, args, kwargs, endpoint, data, rate_limit_args)


# ---------------------------------------------------------------- reading what to render


@dataclass(frozen=True)
class Recipient:
    """Where and how a notice's recipient is written to."""

    chat_id: int
    language: Language
    timezone: str
    name: str


def card_from_view(view: RequestView, *, timezone: str, nudge: bool = False) -> cards.Card:
    """The request card's content for the request's artist."""
    request = view.request
    return cards.Card(
        request_id=request.id,
        terms=Terms.model_validate(request.terms),
        creator_name=view.creator.name,
        status=RequestStatus(request.status),
        decisions=tuple(
            cards.DecisionLine(
                outcome=d.outcome,
                actor_kind=d.actor_kind,
                name=d.actor_display,
                channel=d.channel,
                at=d.created_at,
                reason=d.reason,
            )
            for d in view.decisions
        ),
        updated_at=request.updated_at,
        language=words.language_of(view.artist.language),
        timezone=view.artist.timezone or timezone,
        reason=request.reason,
        nudge=nudge,
        grant_paused=view.grant is not None and view.grant.status == GrantStatus.paused.value,
    )


def _retry_after_seconds(error: RetryAfter) -> float:
    value: int | timedelta = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _is(error: BadRequest, *phrases: str) -> bool:
    text = error.message.lower()
    return any(phrase in text for phrase in phrases)


# ---------------------------------------------------------------- the sender


class TelegramSender:
    """Delivers the outbox's Telegram notices: cards, card updates, reminders, reports, statuses.

    Parameters:
        bot: the Application's bot (its rate limiter applies to every call).
        desk: for reading the requests and cards to render.
        signer: signs the card's buttons.
        default_timezone: for recipients without a time zone of their own (creators).
        is_ready: whether the bot is connected; until then every send is retried later.
    """

    channel = ChannelKind.telegram
    # A chat takes about a message a second: the outbox takes three of a chat's notices per pass
    # (a pass waits for its slowest chat), so one busy chat never holds the others' notices back.
    lane_slice = 3

    def __init__(
        self,
        bot: Bot,
        desk: Desk,
        signer: CallbackSigner,
        *,
        default_timezone: str = "UTC",
        is_ready: Callable[[], bool] = lambda: True,
        charts: ChartDrawer | None = None,
    ) -> None:
        """Keeps what sending needs; `charts` draws report charts (shared with the other senders)."""
        self.bot = bot
        self.desk = desk
        self.signer = signer
        self.default_timezone = default_timezone
        self.is_ready = is_ready
        self.charts = charts or ChartDrawer()

    def lane(self, notice: Outgoing) -> str:
        """One recipient is one Telegram chat, so their notices keep their order.

        The lane has to be known without a database read; a recipient's chat never changes while
        notices are queued for it (re-linking queues fresh cards), so the recipient is the chat.
        """
        return f"{notice.recipient_kind}:{notice.recipient_id}"

    async def send(self, notice: Outgoing) -> Delivered:
        """Sends one notice; Telegram's refusals become RetryLater or Undeliverable."""
        if not self.is_ready():
            raise RetryLater("the Telegram bot is not connected yet", after=5)
        try:
            return await self._send(notice)
        except RetryAfter as error:
            raise RetryLater("Telegram flood control (429)", after=_retry_after_seconds(error)) from None
        except Forbidden as error:
            raise Undeliverable(f"Telegram refused: {error.message}") from None
        except InvalidToken:
            # Every call will fail the same way until the token is fixed; keep the notices meanwhile.
            raise RetryLater("Telegram refused the bot token", after=300) from None
        except ChatMigrated as error:
            raise Undeliverable(f"the chat moved to {error.new_chat_id}") from None
        except BadRequest as error:
            raise Undeliverable(f"Telegram refused the message: {error.message}") from None
        except Conflict as error:
            raise RetryLater(f"Telegram conflict: {error.message}") from None
        except NetworkError as error:  # 5xx, timeouts, dropped connections
            raise RetryLater(f"Telegram unreachable: {error.message}") from None

    async def _send(self, notice: Outgoing) -> Delivered:
        if notice.recipient_kind == ActorKind.creator.value:
            return await self._send_creator_status(notice)
        if notice.recipient_kind != ActorKind.artist.value:
            raise Undeliverable(f"no Telegram notices for a {notice.recipient_kind}")
        if notice.kind == "card":
            return await self.post_card(
                notice.request_id or "", notice.recipient_id, nudge=bool(notice.payload.get("nudge"))
            )
        if notice.kind == "card_update":
            return await self._update_card(notice)
        if notice.kind == "decision_reminder":
            return await self._remind_decision(notice)
        if notice.kind in {"grant_reminder", "grant_expired", "violation", "deletion_confirmed"}:
            return await self._tell_about_grant(notice)
        if notice.kind == "report":
            return await self._send_report(notice)
        if notice.kind == HISTORY_NOTICE:  # the artist's signed history bundle, built as it is sent
            artist = await self._artist(notice.recipient_id)
            bundle = await build_bundle(self.desk, artist_id=notice.recipient_id)
            caption = history_texts.caption(artist.language)
            await self.bot.send_document(
                artist.chat_id, bundle, filename=bundle_name(notice.recipient_id), caption=caption
            )
            return Delivered()
        if notice.kind == "pause_update":  # the agency or an operator paused or resumed for the artist
            artist = await self._artist(notice.recipient_id)
            text = pause_texts.artist_notice(artist.language, artist.timezone, notice.payload)
            await self._send_text(artist.chat_id, texts.Rendered(text))
            return Delivered()
        raise Undeliverable(f"unknown Telegram notice kind {notice.kind!r}")

    # ------------------------------------------------------------ reads

    async def _artist(self, artist_id: str) -> Recipient:
        async with self.desk.db.read() as session:
            artist = await session.get(Artist, artist_id)
        if artist is None or artist.telegram_chat_id is None:
            raise Undeliverable("the artist has no linked Telegram chat")
        return Recipient(
            artist.telegram_chat_id,
            words.language_of(artist.language),
            artist.timezone or self.default_timezone,
            artist.name,
        )

    async def _card(
        self, request_id: str, artist_id: str, *, nudge: bool = False
    ) -> tuple[cards.Card, CardRef | None, Recipient]:
        recipient = await self._artist(artist_id)
        async with self.desk.db.read() as session:
            view = await load_request_view(session, request_id)
            ref = await card_ref(session, request_id, ChannelKind.telegram.value, artist_id)
        if view is None:
            raise Undeliverable(f"no request {request_id}")
        return card_from_view(view, timezone=recipient.timezone, nudge=nudge), ref, recipient

    async def _card_still_queued(self, request_id: str, artist_id: str) -> bool:
        async with self.desk.db.read() as session:
            found = await session.execute(
                select(Notice.id)
                .where(
                    Notice.request_id == request_id,
                    Notice.recipient_id == artist_id,
                    Notice.channel == ChannelKind.telegram.value,
                    Notice.kind == "card",
                    Notice.status == "pending",
                )
                .limit(1)
            )
            return found.first() is not None

    # ------------------------------------------------------------ cards

    async def post_card(self, request_id: str, artist_id: str, *, nudge: bool = False) -> Delivered:
        """Sends the request's card as a new message and takes the buttons off the previous one."""
        card, ref, recipient = await self._card(request_id, artist_id, nudge=nudge)
        rendered = cards.card(card)
        message = await self._send_text(recipient.chat_id, rendered)
        if ref is not None and (ref.chat_id, ref.message_id) != (
            str(message.chat_id),
            str(message.message_id),
        ):
            # A nudge or a re-sent card: only the newest one may be tapped, so the older one
            # cannot show stale buttons. Best effort: the new card is out already.
            await self._remove_buttons(int(ref.chat_id), int(ref.message_id))
        return Delivered(str(message.chat_id), str(message.message_id))

    async def _update_card(self, notice: Outgoing) -> Delivered:
        request_id = notice.request_id or ""
        card, ref, recipient = await self._card(request_id, notice.recipient_id)
        if ref is None:
            if await self._card_still_queued(request_id, notice.recipient_id):
                raise RetryLater("the card itself is not sent yet", after=2)
            return Delivered()  # the card never reached the artist (e.g. blocked): nothing to edit
        rendered = cards.card(card)
        try:
            await self.bot.edit_message_text(
                rendered.text,
                chat_id=int(ref.chat_id),
                message_id=int(ref.message_id),
                parse_mode=ParseMode.HTML,
                reply_markup=self.signer.markup(rendered.keyboard),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except BadRequest as error:
            if _is(error, "message is not modified"):
                return Delivered()  # already shows this state (e.g. a retry after a crash)
            if _is(error, "message to edit not found", "message can't be edited"):
                # The artist deleted the card: the outcome still reaches them, as a new message.
                message = await self._send_text(recipient.chat_id, rendered)
                return Delivered(str(message.chat_id), str(message.message_id))
            raise
        return Delivered()

    async def _remove_buttons(self, chat_id: int, message_id: int) -> None:
        try:
            await self.bot.edit_message_reply_markup(
                chat_id=chat_id, message_id=message_id, reply_markup=None
            )
        except TelegramError as error:
            log.info("could not take the buttons off message %s: %s", message_id, error.message)

    async def _send_text(
        self, chat_id: int, rendered: texts.Rendered, *, reply_to: int | None = None
    ) -> Message:
        return await self.bot.send_message(
            chat_id,
            rendered.text,
            parse_mode=ParseMode.HTML,
            reply_markup=self.signer.markup(rendered.keyboard),
            link_preview_options=LinkPreviewOptions(is_disabled=True),
            reply_parameters=(
                ReplyParameters(message_id=reply_to, allow_sending_without_reply=True) if reply_to else None
            ),
        )

    # ------------------------------------------------------------ reminders and reports

    async def _remind_decision(self, notice: Outgoing) -> Delivered:
        card, ref, recipient = await self._card(notice.request_id or "", notice.recipient_id)
        if not card.open_for_artist:
            return Delivered()  # decided or closed since the reminder was queued: nothing to remind
        text = texts.decision_reminder(
            recipient.language,
            recipient.timezone,
            card.terms.project_title,
            card.terms.decision_due_at,
            self.desk.clock.now(),
            escalation=bool(notice.payload.get("escalation")),
        )
        # A reply to the card takes the artist straight to its buttons.
        reply_to = int(ref.message_id) if ref is not None else None
        await self._send_text(recipient.chat_id, texts.Rendered(text), reply_to=reply_to)
        return Delivered()

    async def _tell_about_grant(self, notice: Outgoing) -> Delivered:
        card, _ref, recipient = await self._card(notice.request_id or "", notice.recipient_id)
        title, keyboard = card.terms.project_title, NO_BUTTONS
        if notice.kind == "grant_expired":
            text = texts.grant_expired(recipient.language, title)
        elif notice.kind == "violation":
            text, keyboard = violations.artist_notice(
                recipient.language,
                recipient.timezone,
                title=title,
                creator_name=card.creator_name,
                grant_id=notice.grant_id or "",
                payload=notice.payload,
            )
        elif notice.kind == "deletion_confirmed":
            deleted_at = words.parse_time(notice.payload.get("deleted_at"))
            text = deletion_texts.artist_confirmed(
                recipient.language, recipient.timezone, title, card.creator_name, deleted_at
            )
        else:
            ends_at = words.parse_time(notice.payload.get("ends_at")) or card.terms.ends_at
            text = texts.grant_reminder(recipient.language, recipient.timezone, title, ends_at)
        await self._send_text(recipient.chat_id, texts.Rendered(text, keyboard))
        return Delivered()

    async def _send_report(self, notice: Outgoing) -> Delivered:
        recipient = await self._artist(notice.recipient_id)
        report = await build_report(self.desk, artist_id=notice.recipient_id)
        # Drawn in a child process: matplotlib never enters (or holds up) this one. Drawn before
        # the text goes out, so a chart that fails is retried without sending the text twice.
        chart = await self.charts.draw(report, texts.chart_labels(recipient.language, report))
        await self._send_text(
            recipient.chat_id, texts.Rendered(texts.report_text(recipient.language, report))
        )
        caption = texts.report_caption(recipient.language)
        for attempt in range(3):
            try:
                await self.bot.send_photo(
                    recipient.chat_id, chart, caption=caption, parse_mode=ParseMode.HTML
                )
                break
            except (RetryAfter, NetworkError) as error:
                if isinstance(error, BadRequest) or attempt == 2:
                    # The text is out; sending it again for the chart's sake would repeat it.
                    log.warning(
                        "the report chart for %s was not sent: %s", notice.recipient_id, error.message
                    )
                    break
                wait = _retry_after_seconds(error) if isinstance(error, RetryAfter) else 2.0**attempt
                await asyncio.sleep(min(wait, 30.0))
        return Delivered()

    async def _send_creator_status(self, notice: Outgoing) -> Delivered:
        if notice.kind != "status":
            raise Undeliverable(f"unknown creator notice kind {notice.kind!r}")
        async with self.desk.db.read() as session:
            creator = await session.get(Creator, notice.recipient_id)
            view = await load_request_view(session, notice.request_id) if notice.request_id else None
        if creator is None or creator.telegram_chat_id is None:
            raise Undeliverable("the creator has no linked Telegram chat")
        title = str(view.request.terms.get("project_title", "")) if view else ""
        text = texts.creator_status(
            words.language_of(creator.language), self.default_timezone, title, notice.payload
        )
        await self._send_text(creator.telegram_chat_id, texts.Rendered(text))
        return Delivered()


def open_for(view: RequestView) -> bool:
    """Whether the request still waits for its artist's decision."""
    artist_decided = any(d.actor_kind == ActorKind.artist.value for d in view.decisions)
    return RequestStatus(view.request.status) in OPEN_STATUSES and not artist_decided
