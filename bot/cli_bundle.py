"""`likeness artist export`, `likeness bundle verify` and `likeness artist erase` (registered by
bot.cli): an artist's signed history bundle, the offline check of one (see bot/bundle.py for the
format), and erasure of the artist's personal data (see bot/workflow/erasure.py)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from bot.bundle import BundleError, build_bundle, verify_bundle
from bot.cli_base import ADMIN, BadInput, JsonFlag, _emit, _fail, _run, app, artist_app
from bot.cli_verify import KeysOption, keys_document, not_valid
from bot.receipts import ReceiptError
from bot.workflow import Desk
from bot.workflow.erasure import Erased, erase_artist

bundle_app = typer.Typer(help="Artists' signed history bundles.", no_args_is_help=True)
app.add_typer(bundle_app, name="bundle")


def _write_private(path: Path, data: bytes) -> None:
    """Writes the whole file under a temporary name (mode 0600: it holds personal data), then moves it."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise BadInput(f"cannot write {path}: {error.strerror or error}") from None


@artist_app.command("export")
def artist_export(
    artist_id: Annotated[str, typer.Argument(metavar="ART", help="The artist's id.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the bundle (.zip).")],
    as_json: JsonFlag = False,
) -> None:
    """Writes the artist's signed history bundle: requests, terms, decisions, grants, receipts, usage."""
    if out.is_dir():
        _fail(f"--out {out} is a directory; give a file name")
    if not out.parent.is_dir():
        _fail(f"--out: the folder {out.parent} does not exist")

    async def work(desk: Desk) -> int:
        data = await build_bundle(desk, artist_id=artist_id)
        _write_private(out, data)
        return len(data)

    size = _run(work)
    _emit(as_json, {"artist_id": artist_id, "file": str(out), "bytes": size}, f"wrote {out} ({size} bytes)")


@bundle_app.command("verify")
def bundle_verify(
    file: Annotated[Path, typer.Argument(help="The bundle (.zip).")],
    keys: KeysOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Exit 0 when the manifest's signature, every member's hash and every receipt inside hold."""
    try:
        try:
            data = file.read_bytes()
        except OSError as error:
            raise BundleError(f"cannot read {file}: {error.strerror or error}") from None
        checked = verify_bundle(data, keys_document(keys))
    except ReceiptError as error:
        not_valid("bundle", error, as_json)
    found = {
        "valid": True,
        "artist_id": checked.artist_id,
        "requests": checked.requests,
        "receipts": checked.receipts,
    }
    human = f"bundle valid: artist {checked.artist_id}, {checked.requests} requests"
    human += f", {checked.receipts} receipts"
    _emit(as_json, found, human)


@artist_app.command("erase")
def artist_erase(
    artist_id: Annotated[str, typer.Argument(metavar="ART", help="The artist's id.")],
    confirm: Annotated[bool, typer.Option("--confirm", help="Erasure cannot be undone: say so.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Removes the artist's personal data (name, Telegram ids, texts they wrote); the records and the
    audit chain stay verifiable. Export the history first if the artist wants it."""
    if not confirm:
        _fail("erasure cannot be undone; run again with --confirm", 2)

    async def work(desk: Desk) -> Erased:
        return await erase_artist(desk, artist_id=artist_id, actor=ADMIN)

    done = _run(work)
    found = {"artist_id": done.artist_id, "erased": True, "requests": done.requests}
    _emit(as_json, found, f"erased the personal data of {done.artist_id} ({done.requests} requests kept)")
