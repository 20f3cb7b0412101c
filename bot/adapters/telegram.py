"""Telegram's side of delivery: flood limits and the outbox sender.

Two parts, each about talking to the Bot API and nothing else (the signed button data they send
is `bot.render.buttons.CallbackSigner`):

- `ChatRateLimiter` (in `telegram_limits.py`, importable from here) keeps every call under
  Telegram's limits before Telegram has to say so.
- `TelegramSender` turns one outbox notice into Bot API calls (send, edit in place, upload) and
  maps Telegram's answers onto the drainer's vocabulary: `RetryLater` for 429, 5xx and network
  trouble, `Undeliverable` for what can never succeed (e.g. the user blocked the bot).

The sender reads nothing itself: `bot.handover` reads what each notice is rendered from (the
request, the card's place, the recipient's chat) and holds back, skips or gives up notices;
every write goes through the drainer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from telegram import (
    Bot,
    ForceReply,
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

from bot import handover
from bot.adapters.telegram_limits import ChatRateLimiter as ChatRateLimiter
from bot.adapters.telegram_outputs import OUTPUT_NOTICES, send_output_notice
from bot.bundle import build_bundle, bundle_name
from bot.delivery import Delivered, Outgoing, RetryLater, Undeliverable
from bot.handover import open_for as open_for
from bot.models import ActorKind, ChannelKind
from bot.render import telegram as texts
from bot.render import telegram_cards as cards
from bot.render import telegram_deletion as deletion_texts
from bot.render import telegram_history as history_texts
from bot.render import telegram_outputs as output_texts
from bot.render import telegram_pause as pause_texts
from bot.render import telegram_records as record_texts
from bot.render import telegram_reports as report_texts
from bot.render import violations, words
from bot.render.buttons import NO_BUTTONS, CallbackSigner
from bot.render.telegram_cards import card_from_view as card_from_view
from bot.reports import ChartDrawer
from bot.workflow import QUESTIONS, Desk
from bot.workflow.history import HISTORY_NOTICE

log = logging.getLogger(__name__)


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
        if notice.kind in QUESTIONS:
            return await self._ask(notice)
        if notice.kind in OUTPUT_NOTICES:
            return await send_output_notice(self, notice)
        if notice.kind == HISTORY_NOTICE:  # the artist's signed history bundle, built as it is sent
            artist = await self._artist(notice.recipient_id)
            bundle = await build_bundle(self.desk, artist_id=notice.recipient_id)
            caption = history_texts.caption(artist.language)
            await self.bot.send_document(
                artist.chat_id, bundle, filename=bundle_name(notice.recipient_id), caption=caption
            )
            return Delivered()
        if notice.kind in {"pause_update", "record_update"}:  # someone else paused, or changed the record
            artist = await self._artist(notice.recipient_id)
            if notice.kind == "pause_update":
                text = pause_texts.artist_notice(artist.language, artist.timezone, notice.payload)
            else:
                text = record_texts.artist_notice(artist.language, notice.payload)
            await self._send_text(artist.chat_id, texts.Rendered(text))
            return Delivered()
        raise Undeliverable(f"unknown Telegram notice kind {notice.kind!r}")

    # ------------------------------------------------------------ what handover reads

    async def _artist(self, artist_id: str) -> handover.Recipient:
        return await handover.telegram_artist(self.desk, artist_id, self.default_timezone)

    async def _card(
        self, request_id: str, artist_id: str, *, nudge: bool = False
    ) -> tuple[cards.Card, handover.CardPlace]:
        place = await handover.telegram_card(self.desk, request_id, artist_id, self.default_timezone)
        return card_from_view(place.view, timezone=place.recipient.timezone, nudge=nudge), place

    # ------------------------------------------------------------ cards

    async def post_card(self, request_id: str, artist_id: str, *, nudge: bool = False) -> Delivered:
        """Sends the request's card as a new message and takes the buttons off the previous one."""
        card, place = await self._card(request_id, artist_id, nudge=nudge)
        rendered = cards.card(card)
        message = await self._send_text(place.recipient.chat_id, rendered)
        old = place.posted
        if old is not None and old != (message.chat_id, message.message_id):
            # A nudge or a re-sent card: only the newest one may be tapped, so the older one
            # cannot show stale buttons. Best effort: the new card is out already.
            await self._remove_buttons(*old)
        return Delivered(str(message.chat_id), str(message.message_id))

    async def _update_card(self, notice: Outgoing) -> Delivered:
        request_id = notice.request_id or ""
        card, place = await self._card(request_id, notice.recipient_id)
        posted = await handover.card_to_edit(self.desk, notice, place)
        if posted is None:
            return Delivered()  # the card never reached the artist: nothing to edit
        rendered = cards.card(card)
        try:
            await self.bot.edit_message_text(
                rendered.text,
                chat_id=posted[0],
                message_id=posted[1],
                parse_mode=ParseMode.HTML,
                reply_markup=self.signer.markup(rendered.keyboard),
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except BadRequest as error:
            if _is(error, "message is not modified"):
                return Delivered()  # already shows this state (e.g. a retry after a crash)
            if _is(error, "message to edit not found", "message can't be edited"):
                # The artist deleted the card: the outcome still reaches them, as a new message.
                message = await self._send_text(place.recipient.chat_id, rendered)
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

    # ------------------------------------------------------------ questions to the artist

    async def _ask(self, notice: Outgoing) -> Delivered:
        """A question the artist answers: confirm a revocation (buttons), or a reason (a reply)."""
        if notice.kind == "revoke_question":
            artist = await self._artist(notice.recipient_id)
            summary = await handover.grant_asked_about(self.desk, notice.grant_id or "")
            await self._send_text(
                artist.chat_id, texts.revoke_question(artist.language, texts.grant_line(summary))
            )
            return Delivered()
        if notice.kind == "deny_prompt":
            card, place = await self._card(notice.request_id or "", notice.recipient_id)
            artist = place.recipient
            text = cards.deny_prompt(artist.language, notice.request_id or "", card.terms.project_title)
            placeholder = cards.deny_placeholder(artist.language)
            reply_to = notice.payload.get("reply_to")
        elif notice.kind == "output_prompt":
            artist = await self._artist(notice.recipient_id)
            text = output_texts.reject_prompt(artist.language, str(notice.payload.get("output_id", "")))
            placeholder = cards.deny_placeholder(artist.language)
            reply_to = notice.payload.get("reply_to")
        else:
            artist = await self._artist(notice.recipient_id)
            text = pause_texts.reason_prompt(artist.language, notice.recipient_id)
            placeholder, reply_to = pause_texts.reason_placeholder(artist.language), None
        await self.bot.send_message(
            artist.chat_id,
            text,
            parse_mode=ParseMode.HTML,
            reply_markup=ForceReply(input_field_placeholder=placeholder),
            reply_parameters=(
                ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)
                if isinstance(reply_to, int)
                else None
            ),
        )
        return Delivered()

    # ------------------------------------------------------------ reminders and reports

    async def _remind_decision(self, notice: Outgoing) -> Delivered:
        card, place = await self._card(notice.request_id or "", notice.recipient_id)
        if not handover.reminder_due(place):
            return Delivered()  # decided or closed since the reminder was queued: nothing to remind
        recipient = place.recipient
        text = texts.decision_reminder(
            recipient.language,
            recipient.timezone,
            card.terms.project_title,
            card.terms.decision_due_at,
            self.desk.clock.now(),
            escalation=bool(notice.payload.get("escalation")),
        )
        # A reply to the card takes the artist straight to its buttons.
        reply_to = place.posted[1] if place.posted is not None else None
        await self._send_text(recipient.chat_id, texts.Rendered(text), reply_to=reply_to)
        return Delivered()

    async def _tell_about_grant(self, notice: Outgoing) -> Delivered:
        card, place = await self._card(notice.request_id or "", notice.recipient_id)
        recipient = place.recipient
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
        report = await handover.artist_report(self.desk, notice.recipient_id)
        # Drawn in a child process: matplotlib never enters (or holds up) this one. Drawn before
        # the text goes out, so a chart that fails is retried without sending the text twice.
        chart = await self.charts.draw(report, report_texts.chart_labels(recipient.language, report))
        await self._send_text(
            recipient.chat_id, texts.Rendered(report_texts.report_text(recipient.language, report))
        )
        caption = report_texts.report_caption(recipient.language)
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
        status = await handover.telegram_creator(self.desk, notice)
        text = texts.creator_status(status.language, self.default_timezone, status.title, notice.payload)
        await self._send_text(status.chat_id, texts.Rendered(text))
        return Delivered()
