"""The `likeness` commands about proof: public grant checks, audit checkpoints, key rotation.

Registered on the command's sub-apps by `bot.cli`; exit codes as there, plus 3 for "verified,
but the grant is not active".
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer

from bot import proof
from bot.cli_base import JsonFlag, _emit, _fail, _run, _settings, app, audit_app
from bot.keys import KeyRing, KeySet, ProofError, parse_key_set
from bot.models import GrantStatus
from bot.receipts import ReceiptError, read_json_file
from bot.workflow import Desk

NOT_ACTIVE = 3
MAX_PAGES = 100_000
grant_app = typer.Typer(help="Grants: check one's public status.", no_args_is_help=True)
keys_app = typer.Typer(help="The receipt key set and the button secrets.", no_args_is_help=True)
app.add_typer(grant_app, name="grant")
app.add_typer(keys_app, name="keys")


def _key_ring() -> KeyRing:
    settings = _settings()
    return KeyRing(settings.signing_key_path, settings.button_secret_path)


def fetch_json(url: str, what: str) -> Any:
    """GETs JSON; a 404 or any network trouble is one clear ProofError."""
    try:
        answer = httpx.get(url, timeout=10, follow_redirects=False)
    except httpx.HTTPError as error:
        raise ProofError(f"cannot reach {url} for {what}: {type(error).__name__}") from None
    if answer.status_code == 404:
        raise ProofError(f"{url}: not found ({what})")
    if answer.status_code != 200:
        raise ProofError(f"{url} answered {answer.status_code} ({what})")
    try:
        return answer.json()
    except ValueError:
        raise ProofError(f"{url} did not answer JSON ({what})") from None


def load_key_set(source: str | None, default_url: str | None) -> KeySet:
    """Keys from `--keys` (URL or file), else from `default_url`, else this service's key files."""
    if source is not None and source.startswith(("http://", "https://")):
        return parse_key_set(fetch_json(source, "public keys"))
    if source is not None:
        return parse_key_set(read_json_file(Path(source)))
    if default_url is not None:
        return parse_key_set(fetch_json(default_url, "public keys"))
    return parse_key_set(_key_ring().public_keys_document())


def split_grant_reference(reference: str, base: str | None) -> tuple[str, str]:
    """(base URL, grant id) from an id plus a base, or from a /g/ID or /public/grants/ID URL."""
    reference = reference.strip()
    if reference.startswith(("http://", "https://")):
        parts = urlsplit(reference)
        path = parts.path.rstrip("/")
        for marker in ("/public/grants/", "/g/"):
            prefix, found, grant_id = path.rpartition(marker)
            if found and grant_id:
                if not proof.is_grant_id(grant_id):
                    raise ProofError(f"{grant_id[:40]!r} is not a grant id like grt_0123456789abcdef")
                return f"{parts.scheme}://{parts.netloc}{prefix}", grant_id
        raise ProofError(f"{reference[:100]} is not a grant status URL (…/g/ID or …/public/grants/ID)")
    if not proof.is_grant_id(reference):
        raise ProofError(f"{reference[:40]!r} is not a grant id like grt_0123456789abcdef")
    if base is None:
        settings = _settings()
        base = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    if not base.startswith(("http://", "https://")):
        raise ProofError(f"--url {base[:100]!r} is not an http(s) base URL")
    return base.rstrip("/"), reference


def check_online(base: str, grant_id: str, keys_source: str | None) -> dict[str, Any]:
    """Fetches a grant's public status and verifies its signed statement; returns the statement's fields."""
    answer = fetch_json(f"{base}/public/grants/{grant_id}", f"grant {grant_id}")
    if not isinstance(answer, dict):
        raise ProofError("the status answer is not a JSON object")
    keys = load_key_set(keys_source, f"{base}/.well-known/likeness-keys.json")
    fields = proof.verify_statement(answer.get("statement"), keys, datetime.now(UTC))
    if fields["id"] != grant_id:
        raise ProofError(f"the statement is about {fields['id']!r}, not {grant_id}")
    if any(answer.get(name) != value for name, value in fields.items()):
        raise ProofError("the answer's fields differ from its signed statement")
    return fields


def _report_status(fields: dict[str, Any], as_json: bool) -> None:
    status = fields["status"]
    active = status == GrantStatus.active.value
    human = (
        f"grant {fields['id']}: {status} (checked {fields['checked_at']}, signature valid)\n"
        f"{fields['artist']['name']} → {fields['creator']['name']}: {fields['project_title']}"
    )
    _emit(as_json, fields | {"valid": True, "active": active}, human)
    if not active:
        raise typer.Exit(NOT_ACTIVE)


@grant_app.command("check")
def grant_check(
    reference: Annotated[str, typer.Argument(metavar="ID_OR_URL", help="A grant id or its status URL.")],
    url: Annotated[str | None, typer.Option("--url", help="The service's base URL (with an id).")] = None,
    keys: Annotated[
        str | None, typer.Option("--keys", help="likeness-keys.json URL or file (default: the service's).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Prints a grant's public status and verifies its statement: exit 0 active, 3 not active, 1 invalid."""
    try:
        base, grant_id = split_grant_reference(reference, url)
        fields = check_online(base, grant_id, keys)
    except ReceiptError as error:
        if as_json:
            sys.stdout.write(json.dumps({"valid": False, "problem": str(error)}) + "\n")
        _fail(f"grant check failed: {error}")
    _report_status(fields, as_json)


def receipt_online(receipt: dict[str, Any], url: str | None, keys: str | None, as_json: bool) -> None:
    """After an offline check: the receipt's grant as it stands now; exit 3 when no longer active."""
    grant_id = str(receipt.get("grant", {}).get("id", ""))
    status_url = receipt.get("status_url")
    try:
        if url is None and isinstance(status_url, str):
            base, found = split_grant_reference(status_url, None)
            if found != grant_id:
                raise ProofError("the receipt's status_url names another grant")
        else:
            base, _ = split_grant_reference(grant_id, url)
        fields = check_online(base, grant_id, keys)
        if fields["terms_hash"] != receipt.get("terms_hash"):
            raise ProofError("the grant's terms_hash now differs from the receipt's")
    except ReceiptError as error:
        if as_json:
            sys.stdout.write(json.dumps({"valid": False, "problem": str(error)}) + "\n")
        _fail(f"online check failed: {error}")
    _report_status(fields, as_json)


# ---------------------------------------------------------------- audit checkpoints


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[Path | None, typer.Option("--out", help="Also write the checkpoint to this file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Signs the audit chain's head now (or prints the newest checkpoint if the head is signed)."""
    if out is not None and out.is_dir():
        _fail(f"--out {out} is a folder; give a file name")

    async def work(desk: Desk) -> proof.Taken | None:
        return await proof.take_checkpoint(desk)

    taken = _run(work)
    if taken is None:
        _fail("the audit chain is empty; there is nothing to checkpoint yet")
    if out is not None:
        try:
            out.write_text(json.dumps(taken.document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        except OSError as error:
            _fail(f"cannot write {out}: {error.strerror or error}")
    seq = taken.document["seq"]
    state = "signed" if taken.created else "already signed"
    _emit(as_json, taken.document, f"checkpoint seq {seq} {state}" + (f", written to {out}" if out else ""))


def _documents_in(data: Any) -> list[Any]:
    if isinstance(data, dict) and isinstance(data.get("checkpoints"), list):
        return list(data["checkpoints"])
    if isinstance(data, list):
        return data
    return [data]


def load_checkpoint_documents(source: str) -> list[Any]:
    """Checkpoints from a file (one, a list, a page, or JSON lines) or a URL (followed page by page)."""
    if not source.startswith(("http://", "https://")):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, IsADirectoryError):
            raise ProofError(f"{source} is not a file") from None
        except (OSError, UnicodeDecodeError) as error:
            raise ProofError(f"cannot read {source}: {error}") from None
        try:
            return _documents_in(json.loads(text))
        except json.JSONDecodeError:
            try:
                return [json.loads(line) for line in text.splitlines() if line.strip()]
            except json.JSONDecodeError:
                raise ProofError(f"{source} is neither JSON nor JSON lines") from None
    parts = urlsplit(source)
    if parts.path.endswith("/likeness-audit.json"):
        return [fetch_json(source, "the latest checkpoint")]
    page_url = (
        source
        if "/public/audit/checkpoints" in parts.path
        else f"{source.rstrip('/')}/public/audit/checkpoints"
    )
    page_url = page_url.split("?")[0]
    documents: list[Any] = []
    after = 0
    for _ in range(MAX_PAGES):
        page = fetch_json(f"{page_url}?after={after}&limit=1000", "checkpoints")
        documents += _documents_in(page)
        following = page.get("next_after") if isinstance(page, dict) else None
        if not isinstance(following, int) or following <= after:
            break
        after = following
    return documents


def audit_verify_checkpoints(source: str, keys: str | None, as_json: bool) -> None:
    """Exit 0 when the chain reaches every checkpoint's head; else 1 naming the checkpoint."""
    try:
        key_set = load_key_set(keys, None)
        documents = load_checkpoint_documents(source)
        if not documents:
            raise ProofError(f"{source} holds no checkpoint")
        checkpoints = [proof.read_checkpoint(d, key_set) for d in documents]
    except ReceiptError as error:
        _fail(str(error))

    async def work(desk: Desk) -> proof.CheckpointReport:
        return await proof.verify_against_checkpoints(desk, checkpoints)

    report = _run(work)
    data = {
        "intact": report.intact,
        "checked": report.checked_events,
        "checkpoints": report.checkpoints,
        "broken_checkpoint": report.broken.document if report.broken else None,
        "problem": report.problem,
    }
    if report.intact:
        _emit(
            as_json,
            data,
            f"audit chain intact ({report.checked_events} events) and reaches "
            f"all {report.checkpoints} signed checkpoint(s)",
        )
        return
    if as_json:
        sys.stdout.write(json.dumps(data) + "\n")
    if report.broken is not None:
        _fail(f"audit chain no longer reaches {report.broken.name}: {report.problem}")
    _fail(f"audit chain broken at {report.problem}")


# ---------------------------------------------------------------- keys


@keys_app.command("rotate")
def keys_rotate(
    buttons: Annotated[
        bool, typer.Option("--buttons", help="Rotate the Telegram button secret instead of the receipt key.")
    ] = False,
    drop_old: Annotated[
        bool, typer.Option("--drop-old", help="With --buttons: stop accepting every older button secret.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Makes a new receipt key the signer (old public keys stay published), or a new button secret."""
    if drop_old and not buttons:
        _fail("--drop-old goes with --buttons: retired receipt keys always stay published", 2)
    try:
        ring = _key_ring()
        if buttons:
            accepted = ring.rotate_buttons(drop_old=drop_old)
            _emit(
                as_json,
                {"rotated": "buttons", "accepted_secrets": accepted},
                f"new button secret signs from now on; {accepted} secret(s) accepted",
            )
            return
        old, new = ring.rotate(datetime.now(UTC))
    except (ReceiptError, OSError) as error:
        _fail(f"cannot rotate: {error}")
    _emit(as_json, {"retired_kid": old, "kid": new}, f"key {new} signs from now on; {old} is retired")
