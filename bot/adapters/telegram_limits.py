"""Telegram's flood limits, kept before Telegram has to say so.

`ChatRateLimiter` is PTB's `AIORateLimiter` for the whole bot and for groups, plus an aiolimiter
bucket per private chat, which `AIORateLimiter` does not have. Answers to button taps carry no
chat id, so they never wait behind a busy chat.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.ext import AIORateLimiter, BaseRateLimiter

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]

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
