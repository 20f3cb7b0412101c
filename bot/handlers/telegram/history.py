"""`/history` in Telegram: the linked artist gets their signed history bundle as a file.

The file is built and sent by the outbox (notice kind `history`), so a slow database or a
Telegram hiccup retries like every other notice; anyone who is not a linked artist is told how to
link and gets nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from telegram import Update
from telegram.ext import CommandHandler, filters

from bot.handlers.telegram.common import Context, Deps, Person, answer_artist
from bot.render import telegram_history as texts
from bot.render.telegram import Rendered
from bot.workflow import Artist
from bot.workflow.history import queue_history

if TYPE_CHECKING:
    from bot.handlers.telegram.common import TelegramApp


async def on_history(update: Update, context: Context) -> None:
    """Queues the artist's own history bundle for their chat; only their own, never another's."""
    await answer_artist(update, context, _queue_history)


async def _queue_history(deps: Deps, person: Person, artist: Artist) -> Rendered:
    await queue_history(deps.desk, artist_id=artist.id)
    return Rendered(texts.queued(person.language))


def register_history_handler(application: TelegramApp) -> None:
    """Adds /history (private chats only)."""
    application.add_handler(CommandHandler("history", on_history, filters=filters.ChatType.PRIVATE))
