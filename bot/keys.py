"""The service's key files: the receipt key with its retired predecessors, and the button secrets.

Where they live (every instance must see the same files, e.g. one mounted volume or secret):

- `SIGNING_KEY_FILE` (default `DATA_DIR/signing_key.pem`): the active Ed25519 private key.
- next to it, `<name>.retired.json`: the public half of every retired key with `retired_at`, so
  receipts, statements and checkpoints signed before a rotation still verify.
- `BUTTON_SECRET_FILE` (default `DATA_DIR/button_secrets.json`): the HMAC secrets of Telegram
  button data, newest first; older ones stay accepted so cards already sent keep working.

An instance stats the key files whenever it signs or publishes keys and reloads them when they
changed, so a rotation by `likeness keys rotate` reaches every instance without a restart.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.models import utc_iso
from bot.receipts import ReceiptError, Signer, check_signed, load_or_create_signer

# A signature made a little after its key was retired is still accepted: an instance may sign
# once more between the rotation's two file writes.
RETIREMENT_TOLERANCE = timedelta(minutes=5)
MAX_BUTTON_SECRETS = 8


class ProofError(ReceiptError):
    """A signed document, key set or witness file does not hold; the message says what."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_time(value: Any, what: str) -> datetime:
    """Reads an ISO 8601 time with a zone, naming the field when it is not one."""
    if not isinstance(value, str):
        raise ProofError(f"{what} is not a time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ProofError(f"{what} {value[:40]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ProofError(f"{what} has no time zone")
    return moment


@dataclass(frozen=True)
class PublicKey:
    """One public key of the set, and when it stopped signing (None while it signs)."""

    key: Ed25519PublicKey
    retired_at: datetime | None = None


KeySet = dict[str, PublicKey]


def parse_key_set(document: Any) -> KeySet:
    """The keys of a likeness-keys.json document by kid, with their retirement times."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ProofError("the keys document has no 'keys' list")
    keys: KeySet = {}
    for entry in document["keys"]:
        try:
            key = Ed25519PublicKey.from_public_bytes(_unb64(str(entry["public_key"])))
            retired = entry.get("retired_at")
            keys[str(entry["kid"])] = PublicKey(key, parse_time(retired, "retired_at") if retired else None)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise ProofError("a key in the keys document is malformed") from None
    return keys


def check_signature(document: dict[str, Any], keys: KeySet, *, signed_at: datetime | None = None) -> None:
    """Raises ProofError unless `signature` holds over the rest, made by a key not yet retired then."""
    public = {kid: known.key for kid, known in keys.items()}
    kid = check_signed(document, public, ProofError, subject="it", content="the content", kid_chars=40)
    retired_at = keys[kid].retired_at
    if signed_at is not None and retired_at is not None and signed_at > retired_at + RETIREMENT_TOLERANCE:
        raise ProofError(f"it is dated after its key {kid} was retired ({utc_iso(retired_at)})")


# ---------------------------------------------------------------- files


def _write_atomically(path: Path, data: bytes) -> None:
    """Writes all of `data` under a temporary name (mode 0600), then renames it into place."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside `path`, so two rotations never interleave their writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProofError(f"{path} is not JSON ({error})") from None


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return (found.st_mtime_ns, found.st_size, found.st_ino)


@dataclass(frozen=True)
class _Loaded:
    stamp: tuple[int, int, int] | None
    signer: Signer
    retired: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class _Buttons:
    stamp: tuple[int, int, int] | None
    secrets: tuple[bytes, ...]
    seed: bytes


class _Stamped(Protocol):
    @property
    def stamp(self) -> tuple[int, int, int] | None: ...


_S = TypeVar("_S", bound=_Stamped)


class _Watched(Generic[_S]):
    """What `load` reads from `path`, read again once the file's stamp changes."""

    def __init__(self, path: Path, load: Callable[[], _S], lock: threading.Lock) -> None:
        self.path = path
        self._load = load
        self._lock = lock
        self.value = load()

    def current(self) -> _S:
        """The value, read again first when the file changed since."""
        value = self.value
        if _stamp(self.path) != value.stamp:
            value = self.reload()
        return value

    def reload(self) -> _S:
        """Reads the file again now."""
        with self._lock:
            value = self.value = self._load()
        return value


class KeyRing:
    """The receipt key set and the button secrets, read from their files and reloaded on change.

    Parameters:
        key_file: the active Ed25519 key (PEM); made on first use when missing.
        button_file: the button secrets (JSON); made on first use when missing.
    """

    def __init__(self, key_file: Path, button_file: Path) -> None:
        """Reads (or makes) both files now, so a bad file stops start-up."""
        self.key_file = key_file
        self.retired_file = key_file.with_name(key_file.stem + ".retired.json")
        self.button_file = button_file
        lock = threading.Lock()
        self._keys = _Watched(key_file, self._load_keys, lock)
        self._buttons = _Watched(button_file, self._load_buttons, lock)

    # ------------------------------------------------------------ receipt keys

    def _load_keys(self) -> _Loaded:
        signer = load_or_create_signer(self.key_file)
        document = _read_json(self.retired_file, {"keys": []})
        parse_key_set(document)  # a malformed file is an error now, not at the next verification
        retired = tuple(e for e in document["keys"] if e.get("kid") != signer.kid)
        return _Loaded(_stamp(self.key_file), signer, retired)

    @property
    def kid(self) -> str:
        """The id of the key that signs now."""
        return self._keys.current().signer.kid

    def sign(self, body: dict[str, Any]) -> dict[str, Any]:
        """Signs with the active key (see `Signer.sign`)."""
        return self._keys.current().signer.sign(body)

    def public_keys_document(self) -> dict[str, Any]:
        """The active key and every retired one, as served at /.well-known/likeness-keys.json."""
        loaded = self._keys.current()
        active = loaded.signer.public_keys_document()["keys"]
        return {"keys": [*active, *loaded.retired]}

    def rotate(self, now: datetime) -> tuple[str, str]:
        """Makes a new key the signer and keeps the old public key as retired; returns (old, new) kids."""
        with _locked(self.key_file):
            old = load_or_create_signer(self.key_file)
            document = _read_json(self.retired_file, {"keys": []})
            entries = [e for e in document.get("keys", []) if e.get("kid") != old.kid]
            entries.insert(0, old.public_keys_document()["keys"][0] | {"retired_at": utc_iso(now)})
            # The retired key is published before the new one signs: no moment has a signature
            # whose key is missing from the document.
            _write_atomically(self.retired_file, json.dumps({"keys": entries}, indent=2).encode())
            new = Ed25519PrivateKey.generate()
            pem = new.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            _write_atomically(self.key_file, pem)
        return old.kid, self._keys.reload().signer.kid

    # ------------------------------------------------------------ button secrets

    def _load_buttons(self) -> _Buttons:
        stamp = _stamp(self.button_file)
        if stamp is None:
            with _locked(self.button_file):
                if _stamp(self.button_file) is None:
                    # The first secret is the one earlier versions derived from the receipt key, so
                    # buttons on cards already sent keep working after an upgrade.
                    legacy = load_or_create_signer(self.key_file).callback_key()
                    document = {"secrets": [legacy.decode("ascii")], "webhook_seed": legacy.decode("ascii")}
                    _write_atomically(self.button_file, json.dumps(document, indent=2).encode())
            stamp = _stamp(self.button_file)
        document = _read_json(self.button_file, {})
        values = document.get("secrets") if isinstance(document, dict) else None
        seed = document.get("webhook_seed") if isinstance(document, dict) else None
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            raise ProofError(f"BUTTON_SECRET_FILE {self.button_file} has no list of secrets")
        if not isinstance(seed, str) or not seed:
            raise ProofError(f"BUTTON_SECRET_FILE {self.button_file} has no webhook_seed")
        return _Buttons(stamp, tuple(v.encode("ascii") for v in values), seed.encode("ascii"))

    def callback_key(self) -> bytes:
        """The secret that signs new button data."""
        return self._buttons.current().secrets[0]

    def callback_keys(self) -> tuple[bytes, ...]:
        """Every secret whose button data is accepted, newest first."""
        return self._buttons.current().secrets

    def telegram_webhook_seed(self) -> bytes:
        """A stable secret the Telegram webhook token is derived from; button rotation leaves it."""
        return self._buttons.current().seed

    def rotate_buttons(self, *, drop_old: bool = False) -> int:
        """A new button secret signs from now on; old ones stay accepted unless `drop_old`."""
        with _locked(self.button_file):
            current = self._load_buttons()
            fresh = secrets.token_hex(32).encode("ascii")
            kept = () if drop_old else current.secrets[: MAX_BUTTON_SECRETS - 1]
            document = {
                "secrets": [s.decode("ascii") for s in (fresh, *kept)],
                "webhook_seed": current.seed.decode("ascii"),
            }
            _write_atomically(self.button_file, json.dumps(document, indent=2).encode())
        return len(self._buttons.reload().secrets)
