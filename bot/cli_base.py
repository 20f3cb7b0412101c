"""What every part of the `likeness` command shares: the typer apps, reading settings, running one
workflow step, printing, and checking common inputs. The commands live in bot/cli*.py.

With `--json` an admin command prints one JSON object on stdout. Errors are one line on
stderr: exit 1 for bad input, 2 for bad usage; never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console

from bot import workflow
from bot.app import build_desk, configure_logging
from bot.clean_text import MAX_NAME, hidden_character
from bot.config import ConfigError, Settings, load_settings
from bot.models import Actor, ActorKind, ChannelKind
from bot.receipts import (
    ReceiptError,
)
from bot.workflow import Desk
from storage.database import DatabaseError

app = typer.Typer(
    help="likeness-consent: actors approve every use of their AI likeness.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
agency_app = typer.Typer(help="Agencies and their Slack channels.", no_args_is_help=True)
artist_app = typer.Typer(help="Artists, their policies and Telegram links.", no_args_is_help=True)
creator_app = typer.Typer(help="Creators (studios) and their API keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit chain.", no_args_is_help=True)
receipt_app = typer.Typer(help="Signed receipts of grants and deletion confirmations.", no_args_is_help=True)
report_app = typer.Typer(help="Usage reports.", no_args_is_help=True)
for name, sub in [
    ("report", report_app),
    ("db", db_app),
    ("agency", agency_app),
    ("artist", artist_app),
    ("creator", creator_app),
    ("audit", audit_app),
    ("receipt", receipt_app),
]:
    app.add_typer(sub, name=name)

_err = Console(stderr=True, highlight=False, soft_wrap=True)
_out = Console(highlight=False, soft_wrap=True)
T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ADMIN = Actor(ActorKind.admin, "admin", ChannelKind.cli)


class BadInput(Exception):
    """A command-line value that is well formed but not acceptable."""


def _fail(message: str, code: int = 1) -> NoReturn:
    _err.print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as error:
        _fail(f"configuration: {error}")


def _run(work: Callable[[Desk], Awaitable[T]], *, migrate: bool = True) -> T:
    """Builds the desk, migrates if asked, runs one async step, and turns known failures into one line."""
    settings = _settings()
    configure_logging("WARNING")

    async def main() -> T:
        desk = build_desk(settings)
        try:
            if migrate:
                await desk.db.upgrade()
            return await work(desk)
        finally:
            await desk.db.dispose()

    try:
        return asyncio.run(main())
    except (DatabaseError, ReceiptError, BadInput) as error:
        _fail(str(error))
    except workflow.Refused as refusal:
        _fail(refusal.message)


def _emit(as_json: bool, data: dict[str, Any], human: str) -> None:
    if as_json:
        sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        _out.print(human, markup=False)


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"--timezone {value!r} is not an IANA time zone such as Asia/Shanghai") from None
    return value


def _check_name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME:
        raise BadInput(f"--name must be 1 to {MAX_NAME} characters")
    hidden = hidden_character(value, multiline=False)
    if hidden is not None:
        raise BadInput(f"--name must not contain {hidden}")
    return value


def _check_slack_id(option: str, value: str, example: str) -> str:
    value = value.strip()
    if not value or not value.isascii() or not value.isalnum() or len(value) > 64:
        raise BadInput(f"{option} {value!r} is not a Slack id like {example}")
    return value
