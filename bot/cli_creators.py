"""The `likeness creator ...` commands: add, list, show, update, deactivate, `key ...` and
`webhook-secret rotate` (registered by bot.cli)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

import typer

from bot import creator_keys, workflow
from bot.app import webhook_policy
from bot.cli_base import (
    BadInput,
    JsonFlag,
    _check_name,
    _emit,
    _err,
    _run,
    _settings,
    creator_app,
)
from bot.cli_records import ByOption, add_show_command, by_of, emit_deactivated, emit_list
from bot.webhook_address import (
    WebhookAddressRefused,
    WebhookPolicy,
    check_url,
    checked_address,
    system_resolver,
)
from bot.workflow import Desk

key_app = typer.Typer(help="A creator's API keys: several, named, revocable.", no_args_is_help=True)
secret_app = typer.Typer(help="A creator's webhook signing secret.", no_args_is_help=True)
creator_app.add_typer(key_app, name="key")
creator_app.add_typer(secret_app, name="webhook-secret")

CreatorArg = Annotated[str, typer.Argument(metavar="CRT", help="The creator's id.")]
WebhookOption = Annotated[
    str | None, typer.Option("--webhook-url", help="Where signed status updates are POSTed.")
]


async def _check_webhook_url(url: str, policy: WebhookPolicy) -> None:
    """Refuses a webhook URL that is not https or whose host resolves to an inside address."""
    try:
        parsed = check_url(url, policy)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        await checked_address(parsed.host, port, policy, system_resolver)
    except WebhookAddressRefused as refused:
        raise BadInput(f"--webhook-url: {refused}") from None
    except OSError:
        # Not an error: the name may be set up later, and every send checks the address again.
        _err.print(
            f"warning: --webhook-url host {parsed.host} does not resolve yet; each send checks it again",
            markup=False,
        )


@creator_app.command("add")
def creator_add(
    name: Annotated[str, typer.Option("--name", help="The studio's name.")],
    webhook_url: WebhookOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Registers a creator; prints its API key (and webhook secret) once."""

    policy = webhook_policy(_settings())

    async def work(desk: Desk) -> dict[str, Any]:
        if webhook_url is not None:
            await _check_webhook_url(webhook_url, policy)
        new = await workflow.add_creator(desk, name=_check_name(name), webhook_url=webhook_url)
        data: dict[str, Any] = {"id": new.creator.id, "api_key": new.api_key}
        if new.webhook_secret:
            data["webhook_secret"] = new.webhook_secret
        return data

    data = _run(work)
    _emit(
        as_json, data, "\n".join(f"{k}: {v}" for k, v in data.items()) + "\n(the key is shown only this once)"
    )


@creator_app.command("list")
def creator_list(as_json: JsonFlag = False) -> None:
    """Lists the creators (never a key or a secret)."""
    emit_list(
        as_json, "creators", _run(workflow.list_creators), "id", "name", "webhook_url", "deactivated_at"
    )


add_show_command(
    creator_app,
    CreatorArg,
    workflow.show_creator,
    "Shows one creator: name, webhook URL, live keys, requests filed.",
)


@creator_app.command("update")
def creator_update(
    creator_id: CreatorArg,
    name: Annotated[str | None, typer.Option("--name", help="The studio's name.")] = None,
    webhook_url: WebhookOption = None,
    by: ByOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Changes a creator's name or webhook URL; the creator is told by a signed webhook. A first
    webhook URL prints its new signing secret once."""

    policy = webhook_policy(_settings())

    async def work(desk: Desk) -> dict[str, Any]:
        who = by_of(by)
        checked = _check_name(name) if name is not None else None
        if webhook_url is not None:
            await _check_webhook_url(webhook_url, policy)
        return await workflow.update_creator(desk, creator_id, by=who, name=checked, webhook_url=webhook_url)

    record = _run(work)
    changed = record.get("changed") or []
    human = f"creator {creator_id}: " + (f"changed {', '.join(changed)}" if changed else "nothing changed")
    if record.get("webhook_secret"):
        human += f"\nwebhook_secret: {record['webhook_secret']}\n(the secret is shown only this once)"
    _emit(as_json, record, human)


@creator_app.command("deactivate")
def creator_deactivate(creator_id: CreatorArg, by: ByOption = None, as_json: JsonFlag = False) -> None:
    """Refuses the creator's API keys from the next call and stops its webhooks."""
    emit_deactivated(as_json, "creator", workflow.deactivate_creator, creator_id, by)


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
