"""Runs the simulator as a standalone server: ``python -m sandbox.telegram --port 8081 --bot TOKEN:NAME``."""

from __future__ import annotations

import argparse
import asyncio
import logging

from sandbox.sim.server import serve_until_signalled
from sandbox.telegram.limits import RateLimits
from sandbox.telegram.server import TelegramSimulator


def _parse_bot(value: str) -> tuple[str, str]:
    # Tokens contain a colon themselves ("123:ABC"), so the username is what follows the last one.
    token, sep, username = value.rpartition(":")
    if not sep or ":" not in token or not username:
        raise argparse.ArgumentTypeError("expected TOKEN:USERNAME, e.g. 123456:ABC-DEF:my_bot")
    return token, username


def _parse_user(value: str) -> tuple[int, str, str]:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0].isdigit():
        raise argparse.ArgumentTypeError("expected ID:FIRST_NAME[:LANGUAGE], e.g. 1001:Ada:en")
    return int(parts[0]), parts[1], parts[2] if len(parts) == 3 else "en"


async def _serve(args: argparse.Namespace) -> None:
    simulator = TelegramSimulator(
        bots=dict(args.bot or []),
        limits=RateLimits(enabled=not args.no_rate_limits),
        call_history_limit=args.history,
        access_log=args.access_log,
    )
    for user_id, first_name, language in args.user or []:
        simulator.add_user(user_id, first_name, language)
    await simulator.start(args.host, args.port)
    bots = ", ".join(f"@{name}" for name in simulator.bot_usernames()) or "none"
    await serve_until_signalled(
        simulator.stop,
        f"Telegram Bot API simulator on {simulator.url} (bots: {bots})\n"
        f"  PTB: Bot(token, base_url='{simulator.api_base_url}')  control: {simulator.url}/control/state",
    )


def main(argv: list[str] | None = None) -> None:
    """Runs the simulator as a standalone server until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.telegram", description="Serve a simulated Telegram Bot API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--bot", action="append", type=_parse_bot, metavar="TOKEN:USERNAME")
    parser.add_argument("--user", action="append", type=_parse_user, metavar="ID:FIRST_NAME[:LANG]")
    parser.add_argument("--no-rate-limits", action="store_true", help="turn Telegram's flood limits off")
    parser.add_argument("--history", type=int, default=10_000, help="API calls to keep (default 10000)")
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(args))
