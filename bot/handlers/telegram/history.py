"""`/history` in Telegram: the linked artist gets their signed history bundle as a file.

The file is built and sent by the outbox (notice kind `history`), so a slow database or a
Telegram hiccup retries like every other notice; anyone who is not a linked artist is told how to
link and gets nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import Update
from telegram.ext import CommandHandler, filters

from bot.handlers.telegram.common import Context, deps_of, linked_artist, reply
from bot.render import telegram_history as texts
from bot.workflow.history import queue_history

if TYPE_CHECKING:
    from bot.handlers.telegram.common import TelegramApp


async def on_history(update: Update, context: Context) -> None:
    """Queues the artist's own history bundle for their chat; only their own, never another's."""
    linked = await linked_artist(update, context)
    if linked is None:
        return
    person, artist = linked
    await queue_history(deps_of(context).desk, artist_id=artist.id)
    await reply(update, texts.queued(person.language))


def register_history_handler(application: TelegramApp) -> None:
    """Adds /history (private chats only)."""
    application.add_handler(CommandHandler("history", on_history, filters=filters.ChatType.PRIVATE))
