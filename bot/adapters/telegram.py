"""Telegram's side of delivery: flood limits and the outbox sender.

Two parts, each about talking to the Bot API and nothing else (the signed button data they send
is `bot.render.buttons.CallbackSigner`):

- `ChatRateLimiter` (in `telegram_limits.py`, importable from here) keeps every call under
  Telegram's limits before Telegram has to say so.
- `TelegramSender` turns one outbox notice into Bot API calls (send, edit in place, upload) and
  maps Telegram's answers onto the drainer's vocabulary: `RetryLater` for 429, 5xx and network
  trouble, `Undeliverable` for what can never succeed (e.g. the user blocked the bot).

The sender reads nothing itself: the drainer hands it what each notice is rendered from (the
request, the card's place, the recipient's chat; `bot/handed.py`), having held back, skipped or
given up what `bot/handover.py` says; every write goes through the drainer.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
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
from telegram.warnings import PTBUserWarning

from bot.adapters.telegram_limits import ChatRateLimiter as ChatRateLimiter
from bot.adapters.telegram_outputs import send_output_notice
from bot.bundle import bundle_name
from bot.delivery import Delivered, Outgoing, RetryLater, Undeliverable
from bot.handed import (
    ARTIST_OUTPUT_NOTICES,
    CardEdit,
    CardPlace,
    Handover,
    OutputToShow,
    Recipient,
    ToChat,
)
from bot.models import ActorKind, ChannelKind
from bot.render import telegram as texts
from bot.render import telegram_cards as cards
from bot.render import telegram_deletion as deletion_texts
from bot.render import telegram_history as history_texts
from bot.render import telegram_outputs as output_texts
from bot.render import telegram_pause as pause_texts
from bot.render import telegram_prompts as prompts
from bot.render import telegram_records as record_texts
from bot.render import telegram_reports as report_texts
from bot.render import violations, words
from bot.render.buttons import NO_BUTTONS, CallbackSigner
from bot.render.telegram_cards import card_from_view as card_from_view
from bot.report_types import Report
from bot.reports import ChartDrawer
from bot.workflow import Desk, GrantSummary
from bot.workflow.history import HISTORY_NOTICE

log = logging.getLogger(__name__)

# PTB asks that a method it has be called by name, not through `do_api_request`; the card edit
# does so on purpose (see `_update_card`).
_EDIT_TEXT = "edit_message_text"
warnings.filterwarnings("ignore", message=f"Please use 'Bot.{_EDIT_TEXT}'", category=PTBUserWarning)


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
        desk: for the time reminders are written at.
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

    async def send(self, notice: Outgoing, handed: Handover) -> Delivered:
        """Sends one notice with what `handed` gives; Telegram's refusals become RetryLater or
        Undeliverable."""
        if not self.is_ready():
            raise RetryLater("the Telegram bot is not connected yet", after=5)
        try:
            return await self._send(notice, handed)
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

    async def _send(self, notice: Outgoing, handed: Handover) -> Delivered:
        if notice.recipient_kind == ActorKind.creator.value:
            return await self._send_creator_status(notice, await handed(ToChat[str]))
        kind = notice.kind
        if kind == "card":
            return await self.post_card(await handed(CardPlace), nudge=bool(notice.payload.get("nudge")))
        if kind == "card_update":
            return await self._update_card(await handed(CardEdit))
        if kind == "decision_reminder":
            return await self._remind_decision(notice, await handed(CardPlace))
        if kind in {"grant_reminder", "grant_expired", "violation", "deletion_confirmed"}:
            return await self._tell_about_grant(notice, await handed(CardPlace))
        if kind == "report":
            return await self._send_report(notice, await handed(ToChat[Report]))
        if kind == "revoke_question":
            question = await handed(ToChat[GrantSummary])
            language = question.recipient.language
            rendered = texts.revoke_question(language, texts.grant_line(question.subject))
            await self._send_text(question.recipient.chat_id, rendered)
            return Delivered()
        if kind == "deny_prompt":
            return await self._ask_deny_reason(notice, await handed(CardPlace))
        if kind in ARTIST_OUTPUT_NOTICES:
            return await send_output_notice(self, notice, await handed(OutputToShow))
        if kind == HISTORY_NOTICE:
            bundle = await handed(ToChat[bytes])
            caption = history_texts.caption(bundle.recipient.language)
            name = bundle_name(notice.recipient_id)
            await self.bot.send_document(
                bundle.recipient.chat_id, bundle.subject, filename=name, caption=caption
            )
            return Delivered()
        artist = await handed(Recipient)  # gives up a kind the handover has nothing for
        if kind == "output_prompt":
            text = output_texts.reject_prompt(artist.language, str(notice.payload.get("output_id", "")))
            return await self._ask(artist, text, prompts.reason_placeholder(artist.language), notice)
        if kind == "pause_update":  # someone else paused
            text = pause_texts.artist_notice(artist.language, artist.timezone, notice.payload)
        elif kind == "record_update":  # someone changed the record
            text = record_texts.artist_notice(artist.language, notice.payload)
        else:  # the reason to pause
            text = pause_texts.reason_prompt(artist.language, notice.recipient_id)
            return await self._ask(artist, text, prompts.reason_placeholder(artist.language), None)
        await self._send_text(artist.chat_id, texts.Rendered(text))
        return Delivered()

    def _card(self, place: CardPlace, *, nudge: bool = False) -> cards.Card:
        return card_from_view(place.view, timezone=place.recipient.timezone, nudge=nudge)

    # ------------------------------------------------------------ cards

    async def post_card(self, place: CardPlace, *, nudge: bool = False) -> Delivered:
        """Sends the request's card as a new message and takes the buttons off the previous one."""
        rendered = cards.card(self._card(place, nudge=nudge))
        message = await self._send_text(place.recipient.chat_id, rendered)
        old = place.posted
        if old is not None and old != (message.chat_id, message.message_id):
            # A nudge or a re-sent card: only the newest one may be tapped, so the older one
            # cannot show stale buttons. Best effort: the new card is out already.
            await self._remove_buttons(*old)
        return Delivered(str(message.chat_id), str(message.message_id))

    async def _update_card(self, edit: CardEdit) -> Delivered:
        place, posted = edit.place, edit.posted
        rendered = cards.card(self._card(place))
        try:
            # Through `do_api_request`: the edited message Telegram sends back is not needed, and
            # turning it into a `Message` (every entity of the card an object) cost ~0.2 ms a tap.
            await self.bot.do_api_request(
                _EDIT_TEXT,
                api_kwargs={
                    "chat_id": posted[0],
                    "message_id": posted[1],
                    "text": rendered.text,
                    "parse_mode": ParseMode.HTML,
                    "reply_markup": self.signer.markup(rendered.keyboard),
                    "link_preview_options": LinkPreviewOptions(is_disabled=True),
                },
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

    async def _ask_deny_reason(self, notice: Outgoing, place: CardPlace) -> Delivered:
        artist, title = place.recipient, self._card(place).terms.project_title
        text = cards.deny_prompt(artist.language, notice.request_id or "", title)
        return await self._ask(artist, text, prompts.reason_placeholder(artist.language), notice)

    async def _ask(
        self, artist: Recipient, text: str, placeholder: str, notice: Outgoing | None
    ) -> Delivered:
        """A question the artist answers with a reply, to the message `notice` names (if any)."""
        reply_to = notice.payload.get("reply_to") if notice is not None else None
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

    async def _remind_decision(self, notice: Outgoing, place: CardPlace) -> Delivered:
        card, recipient = self._card(place), place.recipient
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

    async def _tell_about_grant(self, notice: Outgoing, place: CardPlace) -> Delivered:
        card, recipient = self._card(place), place.recipient
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

    async def _send_report(self, notice: Outgoing, handed: ToChat[Report]) -> Delivered:
        recipient, report = handed.recipient, handed.subject
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

    async def _send_creator_status(self, notice: Outgoing, status: ToChat[str]) -> Delivered:
        studio = status.recipient
        text = texts.creator_status(studio.language, self.default_timezone, status.subject, notice.payload)
        await self._send_text(studio.chat_id, texts.Rendered(text))
        return Delivered()
