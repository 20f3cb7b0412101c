"""A Telegram Bot API simulator: a real HTTP server for tests, benchmarks and the browser sandbox.

It speaks the subset of the Bot API this service uses, so python-telegram-bot talks to it exactly
as it talks to api.telegram.org (``Bot(token, base_url=sim.api_base_url)``). A test then acts as
the users (:meth:`TelegramSimulator.send_text`, :meth:`TelegramSimulator.tap`), reads what the bot
did (:meth:`TelegramSimulator.messages`, :meth:`TelegramSimulator.calls`) and waits for it without
sleeping (:meth:`TelegramSimulator.wait_for`).

Telegram's rules that bite only in production are enforced here on purpose: rate limits answered
with 429 and ``retry_after``, "message is not modified", callback queries answered twice, HTML
that does not parse, bots writing to users who never pressed Start, callback data over 64 bytes.
Faults (5xx, 429, dropped connections, latency) can be injected per method.

The same state is reachable over a JSON control API under ``/control/`` for the browser sandbox
and for tests that run the simulator as a subprocess::

    python -m sandbox.telegram --port 8081 --bot 123456:TEST-TOKEN:likeness_test_bot

The modules, by job: ``world`` (state, set-up, reading, waiting), ``updates`` (users acting;
getUpdates and webhook delivery), ``methods`` (the Bot API methods), ``html`` (the HTML parse
mode), ``files``, ``params``, ``limits`` (flood limits), ``control`` (the control API),
``server`` (serving it), ``cli`` (running it standalone).
"""

from sandbox.sim.faults import Fault
from sandbox.telegram.cli import main
from sandbox.telegram.html import HtmlParseError, parse_html
from sandbox.telegram.limits import RateLimits
from sandbox.telegram.rules import (
    COUNTED_METHODS,
    FAULT_KINDS,
    MAX_CALLBACK_DATA_BYTES,
    MAX_MESSAGE_LENGTH,
    SECRET_TOKEN_HEADER,
    ApiError,
)
from sandbox.telegram.server import TelegramSimulator

__all__ = [
    "COUNTED_METHODS",
    "FAULT_KINDS",
    "MAX_CALLBACK_DATA_BYTES",
    "MAX_MESSAGE_LENGTH",
    "SECRET_TOKEN_HEADER",
    "ApiError",
    "Fault",
    "HtmlParseError",
    "RateLimits",
    "TelegramSimulator",
    "main",
    "parse_html",
]
