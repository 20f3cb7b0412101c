"""The `likeness` command (DESIGN §9): serve, migrate, and the admin commands.

The shared apps and helpers are in bot/cli_base.py; the commands of bot/cli_*.py register there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from pydantic import ValidationError

from bot import workflow
from bot.app import serve
from bot.cli_base import (
    ADMIN,
    BadInput,
    JsonFlag,
    _emit,
    _fail,
    _run,
    _settings,
    app,
    artist_app,
    audit_app,
    creator_app,
    db_app,
    receipt_app,
    report_app,
)
from bot.cli_outputs import check_release, release_online, release_summary
from bot.cli_verify import KeysOption, keys_document, not_valid
from bot.config import ConfigError, Settings
from bot.exposure import startup_refusal
from bot.models import ActorKind
from bot.receipts import (
    DELETION_RECEIPT_TYPE,
    OUTPUT_RECEIPT_TYPE,
    ReceiptError,
    parse_keys_document,
    read_json_file,
    verify_receipt,
)
from bot.workers import MAX_WORKERS, serve_workers, workers_refusal
from bot.workflow import Desk
from storage.audit import verify_chain
from storage.database import DatabaseError


@app.command("serve")
def serve_command(
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=MAX_WORKERS,
            help="Processes sharing the port (PostgreSQL and, with Telegram, webhook mode).",
        ),
    ] = 1,
) -> None:
    """Runs the HTTP API, the Telegram bot, the Slack app and the scheduler (in N processes)."""
    settings = _settings()
    refusal = startup_refusal(settings) or workers_refusal(settings, workers)
    if refusal is not None:
        _fail(refusal, 2)
    try:
        if workers > 1:
            raise typer.Exit(serve_workers(settings, workers))
        serve(settings)
    except ConfigError as error:
        _fail(str(error), 2)
    except (DatabaseError, ReceiptError) as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot listen on {settings.http_host}:{settings.http_port}: {error.strerror or error}")
    except KeyboardInterrupt:
        pass


@db_app.command("upgrade")
def db_upgrade(as_json: JsonFlag = False) -> None:
    """Applies the database migrations (serve does it too on start)."""

    async def work(desk: Desk) -> None:
        await desk.db.upgrade()

    _run(work, migrate=False)
    _emit(as_json, {"upgraded": True}, "database is up to date")


# ---------------------------------------------------------------- agencies, artists, creators


async def _bot_username(settings: Settings) -> str:
    """The bot's username from getMe, so invite links point at the right bot."""
    if settings.telegram_bot_token is None:
        raise BadInput("the Telegram channel is off: set TELEGRAM_BOT_TOKEN to make invite links")
    url = f"{settings.telegram_api_base_url}{settings.telegram_bot_token.get_secret_value()}/getMe"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = (await client.get(url)).json()
    except (httpx.HTTPError, ValueError):
        raise BadInput("cannot reach the Telegram Bot API to learn the bot's username (getMe)") from None
    if not answer.get("ok"):
        raise BadInput(f"Telegram refused getMe: {answer.get('description', 'unknown error')}")
    return str(answer["result"]["username"])


def _invite(kind: ActorKind, subject_id: str, as_json: bool) -> None:
    settings = _settings()

    async def work(desk: Desk) -> dict[str, str]:
        username = await _bot_username(settings)
        token = await workflow.create_invite(desk, subject_kind=kind, subject_id=subject_id)
        return {"token": token, "link": f"https://t.me/{username}?start={token}"}

    result = _run(work)
    _emit(as_json, result, f"send this one-time link (valid 7 days): {result['link']}")


# Unlike the record commands' ART and CRT, these arguments show under their parameter names.
ArtistIdArg = Annotated[str, typer.Argument(help="The artist's id.")]
CreatorIdArg = Annotated[str, typer.Argument(help="The creator's id.")]


@artist_app.command("invite")
def artist_invite(artist_id: ArtistIdArg, as_json: JsonFlag = False) -> None:
    """Makes a one-time Telegram link that connects the artist's chat."""
    _invite(ActorKind.artist, artist_id, as_json)


def _emit_pause(as_json: bool, change: workflow.PauseChange, verb: str) -> None:
    data = {"artist_id": change.artist_id, "at": change.at.isoformat(), "grants": change.grants}
    _emit(as_json, data, f"{verb} {len(change.grants)} grant(s) of {change.artist_id}")


@artist_app.command("pause")
def artist_pause(
    artist_id: ArtistIdArg,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why; told to the creators and the agency.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Pauses every scheduled and active grant of the artist at once (an operator's pause)."""

    async def work(desk: Desk) -> workflow.PauseChange:
        if reason is not None and (len(reason) > workflow.MAX_PAUSE_REASON or not reason.isprintable()):
            raise BadInput(f"--reason must be one line of at most {workflow.MAX_PAUSE_REASON} characters")
        return await workflow.pause_artist(desk, artist_id=artist_id, actor=ADMIN, reason=reason)

    _emit_pause(as_json, _run(work), "paused")


@artist_app.command("resume")
def artist_resume(artist_id: ArtistIdArg, as_json: JsonFlag = False) -> None:
    """Resumes the artist's paused grants, whoever paused them; each takes its window's status."""

    async def work(desk: Desk) -> workflow.PauseChange:
        return await workflow.resume_artist(desk, artist_id=artist_id, actor=ADMIN)

    _emit_pause(as_json, _run(work), "resumed")


@creator_app.command("invite")
def creator_invite(creator_id: CreatorIdArg, as_json: JsonFlag = False) -> None:
    """Makes a one-time Telegram link for a creator's status updates."""
    _invite(ActorKind.creator, creator_id, as_json)


# ---------------------------------------------------------------- proof


@audit_app.command("verify")
def audit_verify(
    checkpoints: Annotated[
        str | None,
        typer.Option("--checkpoints", help="Signed checkpoints (file or URL) the chain must still reach."),
    ] = None,
    keys: Annotated[
        str | None, typer.Option("--keys", help="likeness-keys.json file or URL for the checkpoints.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Exit 0 when the audit chain is intact (and reaches every checkpoint); else 1 naming what broke."""
    if checkpoints is not None:
        from bot.cli_proof import audit_verify_checkpoints

        audit_verify_checkpoints(checkpoints, keys, as_json)
        return

    async def work(desk: Desk) -> Any:
        async with desk.db.read() as session:
            return await verify_chain(session)

    report = _run(work)
    data = {
        "intact": report.intact,
        "checked": report.checked,
        "bad_seq": report.bad_seq,
        "problem": report.problem,
    }
    if report.intact:
        _emit(as_json, data, f"audit chain intact ({report.checked} events)")
        return
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
    _fail(f"audit chain broken at event {report.bad_seq}: {report.problem}")


@receipt_app.command("verify")
def receipt_verify(
    file: Annotated[Path, typer.Argument(help="The receipt JSON file.")],
    keys: KeysOption = None,
    online: Annotated[
        bool, typer.Option("--online", help="Also fetch the grant's status now: exit 3 when not active.")
    ] = False,
    url: Annotated[
        str | None, typer.Option("--url", help="With --online: the service's base URL (default: status_url).")
    ] = None,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="With a release receipt: the output file, which must be the one released."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Exit 0 when the receipt's (a grant's, a deletion confirmation's or an output release's)
    signature and content hold (with --online: and the grant is active; with --file: and the file
    is the released output, byte for byte)."""
    try:
        receipt = read_json_file(file)
        document = keys_document(keys)
        verify_receipt(receipt, parse_keys_document(document))
        check_issued_before_retirement(receipt, document)
        if receipt.get("type") == OUTPUT_RECEIPT_TYPE or output_file is not None:
            release = check_release(receipt, output_file)
    except ReceiptError as error:
        not_valid("receipt", error, as_json)
    if receipt.get("type") == OUTPUT_RECEIPT_TYPE:
        if online:
            release_online(release, receipt, url, as_json)
            return
        _emit(as_json, release, release_summary(release))
        return
    if receipt.get("type") == DELETION_RECEIPT_TYPE:
        found = {"valid": True, "grant_id": receipt["grant"]["id"], "type": DELETION_RECEIPT_TYPE}
        _emit(as_json, found, "deletion receipt valid")
        return
    if online:
        from bot.cli_proof import receipt_online

        receipt_online(receipt, url, keys, as_json)
        return
    _emit(as_json, {"valid": True, "grant_id": receipt.get("grant", {}).get("id")}, "receipt valid")


@report_app.command("send")
def report_send(
    artist: Annotated[str | None, typer.Option("--artist", help="Send to this artist (Telegram).")] = None,
    agency: Annotated[str | None, typer.Option("--agency", help="Send to this agency (Slack).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Queues the usage report now; the running service delivers it."""
    if (artist is None) == (agency is None):
        _fail("give exactly one of --artist ID or --agency ID", 2)

    async def work(desk: Desk) -> bool:
        if artist is not None:
            return await workflow.queue_report(desk, recipient_kind=ActorKind.artist, recipient_id=artist)
        assert agency is not None
        return await workflow.queue_report(desk, recipient_kind=ActorKind.agency, recipient_id=agency)

    queued = _run(work)
    if not queued:
        _fail("the recipient has no linked channel yet (Telegram for artists, a Slack channel for agencies)")
    _emit(as_json, {"queued": True}, "report queued; the running service sends it")


def check_issued_before_retirement(receipt: Any, document: Any) -> None:
    """A receipt signed by a retired key must have been issued before the key retired."""
    from bot.keys import check_signature, parse_key_set, parse_time

    check_signature(
        receipt, parse_key_set(document), signed_at=parse_time(receipt.get("issued_at"), "issued_at")
    )


def main() -> None:
    """Entry point of the `likeness` console script."""
    try:
        app()
    except ValidationError as error:  # pragma: no cover - a last guard: no traceback reaches a user
        _fail(str(error).splitlines()[0])


# The proof commands (grant check, audit checkpoint, keys rotate), the records commands (agencies,
# artists, creators: add, list, show, update, deactivate), the creators' keys and the history
# bundle (export, verify, erase) register on the apps above.
from bot import cli_bundle, cli_creators, cli_proof, cli_records, cli_slack  # noqa: E402, F401
