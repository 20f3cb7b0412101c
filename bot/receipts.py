"""Ed25519 receipts: a grant's signed, offline-verifiable proof (DESIGN §7), and the same for a
creator's confirmation that it deleted what it made under an ended grant."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.models import canonical_json, sha256_hex, terms_hash

RECEIPT_VERSION = 1
# The `type` of each signed document; the signature covers it, so one cannot pass for the other.
GRANT_RECEIPT_TYPE = "likeness-consent-receipt"
DELETION_RECEIPT_TYPE = "likeness-deletion-receipt"
OUTPUT_RECEIPT_TYPE = "likeness-output-release-receipt"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ReceiptError(Exception):
    """A receipt or key file is not what it should be; the message says what."""


class SigningKeys(Protocol):
    """What the workflow and the channels need of the service's keys (`Signer` or `bot.keys.KeyRing`)."""

    @property
    def kid(self) -> str: ...

    def sign(self, body: dict[str, Any]) -> dict[str, Any]: ...

    def public_keys_document(self) -> dict[str, Any]: ...

    def callback_key(self) -> bytes: ...

    def callback_keys(self) -> tuple[bytes, ...]: ...

    def telegram_webhook_seed(self) -> bytes: ...


@dataclass(frozen=True)
class Signer:
    """The service's receipt key and its id."""

    private_key: Ed25519PrivateKey

    @cached_property
    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @cached_property
    def kid(self) -> str:
        """A short, stable id for the key: the start of the public key's SHA-256."""
        return sha256_hex(self.public_bytes)[:16]

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        """Returns `body` with `kid` and a signature over the canonical JSON of everything else."""
        unsigned = {k: v for k, v in body.items() if k != "signature"} | {"kid": self.kid}
        signature = self.private_key.sign(canonical_json(unsigned))
        return unsigned | {"signature": _b64(signature)}

    def callback_key(self) -> bytes:
        """A secret derived from the key for short HMACs (e.g. Telegram callback data)."""
        return sha256_hex(b"callback:" + self.private_key.private_bytes_raw()).encode("ascii")

    def callback_keys(self) -> tuple[bytes, ...]:
        """Every accepted button secret: this key's only."""
        return (self.callback_key(),)

    def telegram_webhook_seed(self) -> bytes:
        """The secret a Telegram webhook token is derived from."""
        return self.callback_key()

    def public_keys_document(self) -> dict[str, Any]:
        """The JSON served at /.well-known/likeness-keys.json."""
        return {"keys": [{"kid": self.kid, "alg": "Ed25519", "public_key": _b64(self.public_bytes)}]}


def load_or_create_signer(path: Path) -> Signer:
    """Reads the PEM key at `path`, or makes one there (mode 0600) on first start."""
    if path.exists():
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as error:
            raise ReceiptError(
                f"SIGNING_KEY_FILE {path} is not a PEM Ed25519 private key ({error})"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ReceiptError(f"SIGNING_KEY_FILE {path} holds a key that is not Ed25519")
        return Signer(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Write the whole key under a temporary name, then link it into place: a process that starts
    # at the same moment either wins or reads the winner's complete key, never half of one.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(pem)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return load_or_create_signer(path)
    finally:
        temporary.unlink(missing_ok=True)
    return Signer(key)


def parse_keys_document(document: Any) -> dict[str, Ed25519PublicKey]:
    """Public keys by kid from a likeness-keys.json document."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ReceiptError("the keys document has no 'keys' list")
    keys: dict[str, Ed25519PublicKey] = {}
    for entry in document["keys"]:
        try:
            keys[str(entry["kid"])] = Ed25519PublicKey.from_public_bytes(_unb64(str(entry["public_key"])))
        except (KeyError, TypeError, ValueError):
            raise ReceiptError("a key in the keys document is malformed") from None
    return keys


def check_signed(
    document: dict[str, Any],
    keys: Mapping[str, Ed25519PublicKey],
    refuse: type[ReceiptError],
    *,
    subject: str,
    content: str,
    kid_chars: int | None = None,
) -> str:
    """Raises `refuse` unless `document`'s `signature` holds over the rest of it, made by the key
    its `kid` names; returns that kid. `subject` and `content` word the refusals, which show at
    most `kid_chars` of an unknown kid (all of it for None)."""
    signature, kid = document.get("signature"), document.get("kid")
    if not isinstance(signature, str) or not isinstance(kid, str):
        raise refuse(f"{subject} has no signature or kid")
    key = keys.get(kid)
    if key is None:
        raise refuse(f"no public key with kid {kid[:kid_chars]!r}")
    unsigned = {k: v for k, v in document.items() if k != "signature"}
    try:
        key.verify(_unb64(signature), canonical_json(unsigned))
    except (InvalidSignature, ValueError):
        raise refuse(f"the signature does not match {content}") from None
    return kid


def verify_receipt(receipt: Any, keys: dict[str, Ed25519PublicKey]) -> None:
    """Raises ReceiptError unless the signature holds and the terms match their hash."""
    if not isinstance(receipt, dict):
        raise ReceiptError("a receipt is a JSON object")
    check_signed(receipt, keys, ReceiptError, subject="the receipt", content="the receipt's content")
    if receipt.get("type") == DELETION_RECEIPT_TYPE:
        _check_deletion(receipt)
        return
    if receipt.get("type") == OUTPUT_RECEIPT_TYPE:
        _check_output(receipt)
        return
    terms = receipt.get("terms")
    if not isinstance(terms, dict) or terms_hash(terms) != receipt.get("terms_hash"):
        raise ReceiptError("the terms do not match terms_hash")


def _check_deletion(receipt: dict[str, Any]) -> None:
    """A deletion receipt names its grant and holds a statement, deleted before it was confirmed."""
    grant = receipt.get("grant")
    deletion = receipt.get("deletion")
    if not isinstance(grant, dict) or not isinstance(grant.get("id"), str):
        raise ReceiptError("the deletion receipt names no grant")
    if not isinstance(deletion, dict) or not isinstance(deletion.get("statement"), str):
        raise ReceiptError("the deletion receipt holds no statement")
    if sha256_hex(deletion["statement"].encode("utf-8")) != deletion.get("statement_sha256"):
        raise ReceiptError("the statement does not match statement_sha256")
    deleted_at, confirmed_at = deletion.get("deleted_at"), deletion.get("confirmed_at")
    if not isinstance(deleted_at, str) or not isinstance(confirmed_at, str):
        raise ReceiptError("the deletion receipt has no deleted_at or confirmed_at")


def _check_output(receipt: dict[str, Any]) -> None:
    """A release receipt names its output's SHA-256, its grant and the terms hash it was released under."""
    output, grant = receipt.get("output"), receipt.get("grant")
    sha256 = output.get("sha256") if isinstance(output, dict) else None
    if not isinstance(sha256, str) or len(sha256) != 64:
        raise ReceiptError("the release receipt names no output sha256")
    if not isinstance(grant, dict) or not isinstance(grant.get("id"), str):
        raise ReceiptError("the release receipt names no grant")
    if not isinstance(receipt.get("terms_hash"), str):
        raise ReceiptError("the release receipt names no terms_hash")


def check_output_file(receipt: dict[str, Any], data_sha256: str) -> None:
    """ReceiptError unless the file's SHA-256 is the one the release receipt binds."""
    if receipt.get("output", {}).get("sha256") != data_sha256:
        raise ReceiptError("the file is not the released output: its SHA-256 differs from the receipt's")


def read_json_file(path: Path) -> Any:
    """Reads a JSON file, with a clear error when it is missing or not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReceiptError(f"{path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReceiptError(f"{path} is not JSON ({error})") from None
