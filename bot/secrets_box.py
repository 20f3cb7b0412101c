"""Secrets at rest: Slack bot tokens (and the other secrets an install brings) sealed with Fernet.

The key is `SECRETS_KEY`, a Fernet key (32 random bytes, URL-safe base64). A sealed value
carries a prefix, so a value that is already sealed is never sealed twice and a plaintext value
(written before the key existed) is refused rather than used.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken

SEALED_PREFIX = "fernet:"
KEY_HINT = (
    "generate one with: "
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class SecretsKeyError(ValueError):
    """SECRETS_KEY is not a Fernet key."""


class SealBroken(ValueError):
    """A sealed value that this key cannot open (another key, or changed bytes)."""


def check_secrets_key(key: str) -> str:
    """The key as given when Fernet accepts it; SecretsKeyError (naming how to make one) otherwise."""
    try:
        Fernet(key.strip().encode())
    except (ValueError, TypeError):
        raise SecretsKeyError(f"is not a Fernet key; {KEY_HINT}") from None
    return key.strip()


class SecretsBox:
    """Seals and opens short secrets with one Fernet key."""

    def __init__(self, key: str) -> None:
        """Parameters:
        key: the Fernet key (SECRETS_KEY).
        """
        self._fernet = Fernet(check_secrets_key(key).encode())
        # A separate key for signing links, derived so that one setting serves both.
        self._signing_key = hashlib.sha256(b"likeness link signing\0" + key.strip().encode()).digest()

    def seal(self, value: str) -> str:
        """The value sealed (prefix + Fernet token); a sealed value is returned as it is."""
        if value.startswith(SEALED_PREFIX):
            return value
        return SEALED_PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, sealed: str) -> str:
        """The plaintext of a sealed value; SealBroken when it is not one this key sealed."""
        if not sealed.startswith(SEALED_PREFIX):
            raise SealBroken("the value is not sealed")
        try:
            return self._fernet.decrypt(sealed.removeprefix(SEALED_PREFIX).encode()).decode()
        except InvalidToken:
            raise SealBroken("the value was sealed with another key or changed") from None

    def sign(self, message: str) -> str:
        """An HMAC-SHA256 of the message (hex, 32 characters), for links the service hands out."""
        return hmac.new(self._signing_key, message.encode(), hashlib.sha256).hexdigest()[:32]

    def signed(self, message: str, signature: str) -> bool:
        """Whether `signature` is this box's signature of `message` (constant time)."""
        return hmac.compare_digest(self.sign(message).encode(), signature.encode("utf-8", "replace"))
