"""The `likeness creator key ...` and `creator webhook-secret rotate` commands (registered by bot.cli)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from bot import creator_keys
from bot.cli import JsonFlag, _emit, _run, creator_app
from bot.workflow import Desk

key_app = typer.Typer(help="A creator's API keys: several, named, revocable.", no_args_is_help=True)
secret_app = typer.Typer(help="A creator's webhook signing secret.", no_args_is_help=True)
creator_app.add_typer(key_app, name="key")
creator_app.add_typer(secret_app, name="webhook-secret")

CreatorArg = Annotated[str, typer.Argument(metavar="CRT", help="The creator's id.")]


@key_app.command("add")
def key_add(
    creator_id: CreatorArg,
    name: Annotated[str, typer.Option("--name", help="What the key is for, e.g. render-farm.")],
    as_json: JsonFlag = False,
) -> None:
    """Makes another API key for the creator; prints it once."""

    async def work(desk: Desk) -> tuple[str, str]:
        return await creator_keys.add_key(desk, creator_id=creator_id, name=name)

    key_id, api_key = _run(work)
    _emit(
        as_json,
        {"id": key_id, "name": name.strip(), "api_key": api_key},
        f"key {key_id} ({name.strip()}): {api_key}\n(the key is shown only this once)",
    )


@key_app.command("list")
def key_list(creator_id: CreatorArg, as_json: JsonFlag = False) -> None:
    """Lists the creator's keys with when each was last used (never the keys themselves)."""

    async def work(desk: Desk) -> list[creator_keys.KeyInfo]:
        return await creator_keys.list_keys(desk, creator_id=creator_id)

    keys = _run(work)
    lines = [
        f"{k.id}  {k.name}  last used {k.last_used_at or 'never'}"
        + (f"  REVOKED {k.revoked_at}" if k.revoked_at else "")
        for k in keys
    ]
    data: dict[str, Any] = {"keys": [asdict(k) for k in keys]}
    _emit(as_json, data, "\n".join(lines))


@key_app.command("revoke")
def key_revoke(
    creator_id: CreatorArg,
    key: Annotated[
        str, typer.Argument(metavar="KEY", help="The key's id or name ('default': the first key).")
    ],
    as_json: JsonFlag = False,
) -> None:
    """Revokes a key: every instance refuses it from the next call."""

    async def work(desk: Desk) -> creator_keys.KeyInfo:
        return await creator_keys.revoke_key(desk, creator_id=creator_id, key=key)

    info = _run(work)
    _emit(as_json, asdict(info), f"key {info.id} ({info.name}) revoked at {info.revoked_at}")


@secret_app.command("rotate")
def secret_rotate(creator_id: CreatorArg, as_json: JsonFlag = False) -> None:
    """A new webhook secret; for 24 h both old and new signatures are sent."""

    async def work(desk: Desk) -> tuple[str, str]:
        return await creator_keys.rotate_webhook_secret(desk, creator_id=creator_id)

    secret, until = _run(work)
    _emit(
        as_json,
        {"webhook_secret": secret, "previous_valid_until": until},
        f"webhook_secret: {secret}\n(shown once; the old secret's signature is sent too until {until})",
    )
