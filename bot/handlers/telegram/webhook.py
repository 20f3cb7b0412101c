"""The Telegram webhook route: checks Telegram's secret, stores the update in the inbox, answers,
and has it handled in this process."""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING

from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse, Response
from telegram import Update

from bot.api.ratelimit import refuse_unauthenticated, too_many

if TYPE_CHECKING:
    from bot.handlers.telegram.intake import TelegramIntake

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


async def receive_update(
    request: HttpRequest, *, secret: str, connected: bool, intake: TelegramIntake
) -> Response:
    """Stores one webhook update in the inbox once its secret is right, then answers 200 (a repeat
    of a stored update changes nothing); its handling starts at once."""
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
        update = Update.de_json(body, intake.application.bot)
        if type(body.get("update_id")) is not int:  # a bool is no update id either
            raise TypeError("an update has an integer update_id")
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return JSONResponse({"detail": "not a Telegram update"}, status_code=400)
    # Before the 200: once Telegram has it, it never sends the update again.
    await intake.accept([(update, body)])
    return Response(status_code=200)
