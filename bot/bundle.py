"""An artist's history bundle: theirs to keep, checkable offline by anyone with the public keys.

The bundle is a zip file (`likeness-history-<artist>.zip`) with three members:

- `bundle.json`: `{"type": "likeness-history-bundle", "version": 1, "artist": {...},
  "requests": [...]}`, every request about the artist with its terms, decisions, grant (and the
  grant's signed receipt), deletion confirmation (and its signed receipt), usage and violations;
- `history.csv`: the same records, one row each (request, decision, grant, deletion, usage,
  violation), for a spreadsheet;
- `manifest.json`: `{"type": "likeness-history-manifest", "version": 1, "artist_id",
  "issued_at", "files": {"bundle.json": <sha256 hex>, "history.csv": <sha256 hex>}, "kid",
  "signature"}`, signed with the receipt key like every receipt (Ed25519 over the canonical JSON
  of everything but `signature`; `kid` names the key in /.well-known/likeness-keys.json).

`verify_bundle` checks the manifest's signature, each member's SHA-256, that nothing else is in
the zip, and every grant and deletion receipt inside; the first failure raises `BundleError`.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.keys import KeySet, check_signature, parse_key_set, parse_time
from bot.models import sha256_hex, utc_iso
from bot.receipts import DELETION_RECEIPT_TYPE, GRANT_RECEIPT_TYPE, ReceiptError, SigningKeys, verify_receipt
from bot.receipts import parse_keys_document as receipt_keys
from bot.workflow.desk import Desk
from bot.workflow.history import artist_history

BUNDLE_TYPE = "likeness-history-bundle"
MANIFEST_TYPE = "likeness-history-manifest"
BUNDLE_VERSION = 1
BUNDLE_JSON, HISTORY_CSV, MANIFEST_JSON = "bundle.json", "history.csv", "manifest.json"
CSV_COLUMNS = (
    "record", "request_id", "grant_id", "id", "at", "status", "actor", "channel", "detail", "reason"
)  # fmt: skip
MAX_BUNDLE_BYTES = 64 * 1024 * 1024


class BundleError(ReceiptError):
    """A bundle that does not hold; the message names what failed."""


@dataclass(frozen=True)
class BundleChecked:
    """What a valid bundle holds."""

    artist_id: str
    requests: int
    receipts: int


def bundle_name(artist_id: str) -> str:
    """The file name a bundle is sent or saved under."""
    return f"likeness-history-{artist_id}.zip"


def _cell(value: Any) -> Any:
    """A text that a spreadsheet would run as a formula is quoted so it shows as written."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _row(
    record: str, request: dict[str, Any], record_id: Any, at: Any, status: Any, **cells: Any
) -> dict[str, Any]:
    """One line of history.csv: what it records, under which request, its id, time and status,
    and whichever other columns it fills."""
    return {
        "record": record,
        "request_id": request["id"],
        "id": record_id,
        "at": at,
        "status": status,
    } | cells


def _csv(history: dict[str, Any]) -> bytes:
    rows: list[dict[str, Any]] = []
    for request in history["requests"]:
        terms = request.get("terms") or {}
        rows.append(
            _row(
                "request",
                request,
                request["id"],
                request["created_at"],
                request["status"],
                actor=f"creator:{request['creator']['id']}",
                detail=f"{terms.get('project_title')} {terms.get('starts_at')}..{terms.get('ends_at')}",
                reason=request.get("reason") or "",
            )
        )
        for decision in request["decisions"]:
            rows.append(
                _row(
                    "decision",
                    request,
                    decision["id"],
                    decision["at"],
                    decision["outcome"],
                    actor=f"{decision['actor_kind']}:{decision['actor_id']}",
                    channel=decision["channel"],
                    detail=decision["terms_hash"],
                    reason=decision.get("reason") or "",
                )
            )
        grant = request.get("grant")
        if grant:
            window = f"{grant['starts_at']}..{grant['ends_at']}"
            rows.append(
                _row(
                    "grant",
                    request,
                    grant["id"],
                    grant["created_at"],
                    grant["status"],
                    grant_id=grant["id"],
                    detail=window,
                )
            )
            deletion = grant.get("deletion")
            if deletion:
                rows.append(
                    _row(
                        "deletion",
                        request,
                        grant["id"],
                        deletion["confirmed_at"] or deletion["due_at"],
                        "confirmed" if deletion["confirmed_at"] else "owed",
                        grant_id=grant["id"],
                        detail=deletion["cause"],
                        reason=deletion.get("statement") or "",
                    )
                )
        for event in request["usage"]:
            rows.append(
                _row(
                    "violation" if event["violation"] else "usage",
                    request,
                    event["violation_id"] or event["id"],
                    event["occurred_at"],
                    event["grant_status"],
                    grant_id=event["grant_id"],
                    detail=f"{event['kind']} x{event['count']} {event.get('media') or ''}".strip(),
                    reason=" ".join(event["reasons"]) or (event.get("note") or ""),
                )
            )
    for row in rows:
        for column, value in row.items():
            row[column] = _cell(value)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, restval="", lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    # A BOM so spreadsheet programs read the UTF-8 (Chinese names and terms) as UTF-8.
    return ("\ufeff" + text.getvalue()).encode("utf-8")


def pack_bundle(history: dict[str, Any], signer: SigningKeys, now: datetime) -> bytes:
    """The signed zip of an artist's history (see the module's description)."""
    document = {"type": BUNDLE_TYPE, "version": BUNDLE_VERSION, "generated_at": utc_iso(now)} | history
    members = {
        BUNDLE_JSON: json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8"),
        HISTORY_CSV: _csv(history),
    }
    manifest = signer.sign(
        {
            "type": MANIFEST_TYPE,
            "version": BUNDLE_VERSION,
            "artist_id": history["artist"]["id"],
            "issued_at": utc_iso(now),
            "files": {name: sha256_hex(data) for name, data in members.items()},
        }
    )
    members[MANIFEST_JSON] = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
    stamp = now.timetuple()[:6]
    out = io.BytesIO()
    # Stored, not compressed: every byte of a member in the file is a byte the manifest hashes.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        for name in (MANIFEST_JSON, BUNDLE_JSON, HISTORY_CSV):
            info = zipfile.ZipInfo(name, date_time=(max(stamp[0], 1980), *stamp[1:]))
            archive.writestr(info, members[name])
    return out.getvalue()


async def build_bundle(desk: Desk, *, artist_id: str) -> bytes:
    """Reads the artist's history and packs it, signed now with the desk's receipt key."""
    history = await artist_history(desk, artist_id=artist_id)
    return pack_bundle(history, desk.signer, desk.clock.now())


def _members(data: bytes) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if len(names) != len(set(names)) or set(names) != {MANIFEST_JSON, BUNDLE_JSON, HISTORY_CSV}:
                wanted = f"{MANIFEST_JSON}, {BUNDLE_JSON}, {HISTORY_CSV}"
                raise BundleError(f"the zip holds {sorted(names)!r}, not exactly {wanted}")
            members: dict[str, bytes] = {}
            for info in archive.infolist():
                if info.file_size > MAX_BUNDLE_BYTES:
                    raise BundleError(f"{info.filename} is larger than a bundle may be")
                try:
                    members[info.filename] = archive.read(info)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
                    raise BundleError(f"{info.filename} cannot be read from the zip ({error})") from None
            return members
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as error:
        raise BundleError(f"not a readable zip bundle ({error})") from None


def _json(name: str, data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BundleError(f"{name} is not JSON") from None
    if not isinstance(value, dict):
        raise BundleError(f"{name} is not a JSON object")
    return value


def _receipt(where: str, receipt: Any, expected_type: str, grant_id: Any, keys: KeySet, plain: Any) -> None:
    if not isinstance(receipt, dict) or receipt.get("type") != expected_type:
        raise BundleError(f"{where}: not a {expected_type}")
    try:
        verify_receipt(receipt, plain)
        check_signature(receipt, keys, signed_at=parse_time(receipt.get("issued_at"), "issued_at"))
    except ReceiptError as error:
        raise BundleError(f"{where}: {error}") from None
    if not isinstance(receipt.get("grant"), dict) or receipt["grant"].get("id") != grant_id:
        raise BundleError(f"{where}: the receipt is for another grant")


def verify_bundle(data: bytes, keys_document: Any) -> BundleChecked:
    """Checks every signature and hash of a bundle; raises BundleError naming the first failure."""
    if len(data) > MAX_BUNDLE_BYTES:
        raise BundleError("the file is larger than a bundle may be")
    keys, plain = parse_key_set(keys_document), receipt_keys(keys_document)
    members = _members(data)
    manifest = _json(MANIFEST_JSON, members[MANIFEST_JSON])
    if manifest.get("type") != MANIFEST_TYPE:
        raise BundleError(f"manifest.json is not a {MANIFEST_TYPE}")
    try:
        check_signature(manifest, keys, signed_at=parse_time(manifest.get("issued_at"), "issued_at"))
    except ReceiptError as error:
        raise BundleError(f"manifest.json: {error}") from None
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {BUNDLE_JSON, HISTORY_CSV}:
        raise BundleError("manifest.json does not list bundle.json and history.csv")
    for name, digest in sorted(files.items()):
        if sha256_hex(members[name]) != digest:
            raise BundleError(f"{name}: its SHA-256 does not match the manifest")
    bundle = _json(BUNDLE_JSON, members[BUNDLE_JSON])
    artist = bundle.get("artist")
    if bundle.get("type") != BUNDLE_TYPE or not isinstance(artist, dict):
        raise BundleError(f"bundle.json is not a {BUNDLE_TYPE}")
    if artist.get("id") != manifest.get("artist_id"):
        raise BundleError("bundle.json is about another artist than the manifest")
    requests = bundle.get("requests")
    if not isinstance(requests, list):
        raise BundleError("bundle.json has no requests list")
    receipts = 0
    for request in requests:
        grant = request.get("grant") if isinstance(request, dict) else None
        if not grant or (grant.get("receipt") is None and grant.get("erased_receipt_sha256")):
            continue  # no grant, or its stored receipt was redacted by erasure
        where = f"grant {str(grant.get('id'))[:40]}"
        _receipt(f"{where} receipt", grant.get("receipt"), GRANT_RECEIPT_TYPE, grant.get("id"), keys, plain)
        receipts += 1
        deletion = grant.get("deletion") or {}
        if deletion.get("receipt") is not None:
            receipt, grant_id = deletion["receipt"], grant.get("id")
            _receipt(f"{where} deletion receipt", receipt, DELETION_RECEIPT_TYPE, grant_id, keys, plain)
            receipts += 1
    return BundleChecked(artist_id=str(artist["id"]), requests=len(requests), receipts=receipts)
