"""Telegram's flood limits, kept before Telegram has to say so.

`ChatRateLimiter` is PTB's `AIORateLimiter` for the whole bot and for groups, plus an aiolimiter
bucket per private chat, which `AIORateLimiter` does not have. Answers to button taps carry no
chat id, so they never wait behind a busy chat.

Handed a shared `SendBudget` (several instances on PostgreSQL), it books the same limits on it
instead: the chat's lane first, then the bot's, so a send waiting for a busy chat holds no slot of
the bot's meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter, BaseRateLimiter

from bot.pacing import SendBudget

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]

# Telegram allows about 30 messages a second per bot; staying a little below keeps network jitter
# (two calls arriving closer together than they left) from ever making us the 31st.
BOT_MESSAGES_PER_SECOND = 28
GROUP_MESSAGES_PER_MINUTE = 20
# About one message a second per private chat, with short bursts allowed. Our burst (2) is
# smaller than what Telegram tolerates, for the same reason as above.
PRIVATE_CHAT_RATE = 1.0
PRIVATE_CHAT_BURST = 2
# With a shared budget: a small burst for the bot, so calls booked by different instances that
# arrive bunched by network jitter still stay under Telegram's count; 20 a minute into a group.
SHARED_BOT_BURST = 4
GROUP_CHAT_RATE = GROUP_MESSAGES_PER_MINUTE / 60
GROUP_CHAT_BURST = 3
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
        shared: SendBudget | None = None,
        bot_id: str = "",
    ) -> None:
        """Prepares the limits.

        Parameters:
            per_bot: calls with a chat id per second, for the whole bot.
            group_per_minute: messages per minute into one group.
            private_rate: messages per second into one private chat, on average.
            private_burst: how many may go at once into a private chat that was quiet.
            shared: the deployment's send budget; when given, every limit is booked there.
            bot_id: the bot's public id (the token's part before the colon, never the secret),
                which names its lanes in the shared budget.
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
        self._per_bot = per_bot
        self._shared = shared
        self._bot_lane = f"telegram:bot:{bot_id}"
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
        if self._shared is not None:
            return await self._shared_turn(self._shared, callback, args, kwargs, endpoint, chat_id)
        if isinstance(chat_id, int) and chat_id > 0 and _counts_against_chat(endpoint):
            async with self._chat(chat_id):
                return await self._inner.process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
        return await self._inner.process_request(callback, args, kwargs, endpoint, data, rate_limit_args)

    async def _shared_turn(
        self,
        budget: SendBudget,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        chat_id: object,
    ) -> JSONResult:
        """Books the chat's lane, then the bot's, on the shared budget; a 429 holds the lane."""
        if chat_id is None or not _counts_against_chat(endpoint):
            return await callback(*args, **kwargs)
        chat_lane = f"{self._bot_lane}:chat:{chat_id}"
        if isinstance(chat_id, int) and chat_id > 0:
            await budget.wait_turn(chat_lane, rate=self._private_rate, burst=self._private_burst)
        else:
            await budget.wait_turn(chat_lane, rate=GROUP_CHAT_RATE, burst=GROUP_CHAT_BURST)
        await budget.wait_turn(self._bot_lane, rate=self._per_bot, burst=SHARED_BOT_BURST)
        try:
            return await callback(*args, **kwargs)
        except RetryAfter as error:
            after = error.retry_after
            seconds = after.total_seconds() if not isinstance(after, int) else float(after)
            await budget.hold(chat_lane, seconds)
            raise
