"""The tap benchmark's reference: a python-telegram-bot Application whose one handler answers the
callback and does nothing else, served the way `likeness serve` serves its bot (a FastAPI
webhook route under uvicorn with uvloop and httptools that puts each update on the
Application's queue, the Application built with the service's options).

Run as `python -m bench.reference_bot TOKEN API_BASE_URL PORT`; prints `listening` once its
webhook is set.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response
from telegram import Update
from telegram.ext import ApplicationBuilder, CallbackQueryHandler, ContextTypes

SECRET = "reference-bot-secret"


async def on_tap(update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answers the tap; nothing else."""
    assert update.callback_query is not None
    await update.callback_query.answer("Approved")


async def main(token: str, base_url: str, port: int) -> None:
    """Builds the Application and the webhook route, sets the webhook, serves until SIGTERM."""
    application = (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .job_queue(None)
        .concurrent_updates(64)
        .connect_timeout(5)
        .read_timeout(10)
        .write_timeout(20)
        .pool_timeout(10)
        .updater(None)
        .build()
    )
    application.add_handler(CallbackQueryHandler(on_tap))
    app = FastAPI()

    @app.post("/telegram/webhook")
    async def receive(request: Request) -> Response:
        """Queues the update and answers at once, like the service's route."""
        if request.headers.get("X-Telegram-Bot-Api-Secret-Token") != SECRET:
            return Response(status_code=403)
        update = Update.de_json(json.loads(await request.body()), application.bot)
        await application.update_queue.put(update)
        return Response(status_code=200)

    await application.initialize()
    await application.bot.set_webhook(
        f"http://127.0.0.1:{port}/telegram/webhook", secret_token=SECRET, allowed_updates=["callback_query"]
    )
    await application.start()
    gc.collect()
    gc.freeze()  # as `likeness serve` does once started (bot/app.py: settle_heap)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    print("listening", flush=True)
    try:
        await server.serve()
    finally:
        await application.stop()
        await application.shutdown()


if __name__ == "__main__":
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
