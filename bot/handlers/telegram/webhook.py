"""The Telegram webhook route: checks Telegram's secret, queues the update and answers at once."""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING

from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse, Response
from telegram import Update

from bot.api.ratelimit import refuse_unauthenticated, too_many

if TYPE_CHECKING:
    from bot.handlers.telegram.common import TelegramApp

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def receive_update(
    request: HttpRequest, *, secret: str, connected: bool, application: TelegramApp
) -> Response:
    """Puts one webhook update on the application's queue once its secret is right; answers at once."""
    given = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        # No one we know: counted, never stored.
        limited = await refuse_unauthenticated(request, "telegram_secret", "wrong or missing secret token")
        if limited is not None:
            return too_many(limited.scope_name, limited.retry_after)
        return JSONResponse({"detail": "wrong or missing secret token"}, status_code=403)
    if not connected:
        # Telegram keeps the update and delivers it again; accepting it now could lose it.
        return JSONResponse({"detail": "the bot is starting"}, status_code=503)
    try:
        body = json.loads(await request.body())
        if not isinstance(body, dict):
            raise TypeError("an update is a JSON object")
        update = Update.de_json(body, application.bot)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return JSONResponse({"detail": "not a Telegram update"}, status_code=400)
    await application.update_queue.put(update)
    return Response(status_code=200)
