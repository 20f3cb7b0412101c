"""`likeness receipt verify` for output release receipts: the receipt's fields, (with --file)
whether a file is byte for byte the output that was released, and (with --online) whether the
service still lists the release and its grant is in force."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from bot.cli_base import _emit, _fail, _settings
from bot.cli_proof import NOT_ACTIVE, fetch_json
from bot.keys import ProofError
from bot.output_files import file_sha256
from bot.receipts import OUTPUT_RECEIPT_TYPE, ReceiptError, check_output_file


def check_release(receipt: dict[str, Any], output_file: Path | None) -> dict[str, Any]:
    """What a verified release receipt says; ReceiptError when `output_file` is not the released file."""
    if receipt.get("type") != OUTPUT_RECEIPT_TYPE:
        raise ReceiptError("--file checks an output release receipt; this receipt is another kind")
    if output_file is not None:
        try:
            found = file_sha256(output_file)
        except OSError as error:
            raise ReceiptError(f"cannot read {output_file}: {error.strerror or error}") from None
        check_output_file(receipt, found)
    return {
        "valid": True,
        "type": OUTPUT_RECEIPT_TYPE,
        "output_id": receipt["output"].get("id"),
        "output_sha256": receipt["output"]["sha256"],
        "grant_id": receipt["grant"]["id"],
        "terms_hash": receipt["terms_hash"],
        "released_at": receipt.get("released_at"),
        "file_checked": output_file is not None,
    }


def release_summary(release: dict[str, Any]) -> str:
    """The human line of a valid release receipt."""
    checked = "the file matches" if release["file_checked"] else "no file checked (give --file)"
    return (
        f"release receipt valid: output {release['output_sha256'][:16]}… released under grant "
        f"{release['grant_id']} at {release['released_at']}; {checked}"
    )


def _base_of(receipt: dict[str, Any], url: str | None) -> str:
    """The service to ask: --url, else the receipt's status_url, else this service's address."""
    if url is None:
        status_url = receipt.get("status_url")
        if isinstance(status_url, str) and "/public/outputs/" in status_url:
            url = status_url.split("/public/outputs/")[0]
    if url is None:
        settings = _settings()
        url = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    if not url.startswith(("http://", "https://")):
        raise ProofError(f"--url {url[:100]!r} is not an http(s) base URL")
    return url.rstrip("/")


def release_online(release: dict[str, Any], receipt: dict[str, Any], url: str | None, as_json: bool) -> None:
    """After the offline check: whether the service still lists this release and its grant is in
    force now; exit 3 when the grant no longer is, 1 when the release is not listed."""
    try:
        base = _base_of(receipt, url)
        answer = fetch_json(f"{base}/public/outputs/{release['output_sha256']}", "the output's releases")
        listed = [
            r
            for r in (answer.get("releases") or [])
            if isinstance(r, dict) and r.get("grant_id") == release["grant_id"]
        ]
        if not listed:
            raise ProofError("the service does not list this release")
    except ReceiptError as error:
        if as_json:
            sys.stdout.write(json.dumps({"valid": False, "problem": str(error)}) + "\n")
        _fail(f"online check failed: {error}")
    now = listed[0]
    found = release | {"grant_status": now.get("grant_status"), "in_force": bool(now.get("in_force"))}
    human = release_summary(release) + f"\ngrant {release['grant_id']} is {now.get('grant_status')} now"
    _emit(as_json, found, human)
    if not found["in_force"]:
        raise typer.Exit(NOT_ACTIVE)
