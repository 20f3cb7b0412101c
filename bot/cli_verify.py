"""What the `verify` commands share (`receipt verify`, `bundle verify`): the `--keys` option and
the public keys document it names, and the one-line answer when what they check does not hold."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer

from bot.app import build_desk
from bot.cli_base import _fail, _settings
from bot.receipts import ReceiptError, read_json_file

KeysOption = Annotated[
    str | None,
    typer.Option("--keys", help="likeness-keys.json file or URL (default: this service's keys)."),
]


def load_keys(source: str) -> Any:
    """The public keys document at a URL or in a file."""
    if source.startswith(("http://", "https://")):
        try:
            answer = httpx.get(source, timeout=10)
            answer.raise_for_status()
            return answer.json()
        except (httpx.HTTPError, ValueError) as error:
            raise ReceiptError(f"cannot read keys from {source}: {error}") from None
    return read_json_file(Path(source))


def keys_document(source: str | None) -> Any:
    """The public keys document `--keys` names, or this service's own when it names none."""
    if source is not None:
        return load_keys(source)
    return build_desk(_settings()).signer.public_keys_document()


def not_valid(what: str, error: Exception, as_json: bool) -> NoReturn:
    """Says why `what` (a receipt, a bundle) does not hold, as JSON too when asked; exits 1."""
    if as_json:
        sys.stdout.write(json.dumps({"valid": False, "problem": str(error)}) + "\n")
    _fail(f"{what} not valid: {error}")
