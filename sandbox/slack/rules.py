"""Slack's rules as the simulator keeps them: limits on content, ids, flags, errors, rate tiers."""

from __future__ import annotations

import secrets
from typing import Any

JSON = dict[str, Any]

FAULT_KINDS = frozenset({"500", "503", "429", "drop", "latency"})

# Slack's published tiers, as (requests per minute, burst). Slack only says "N+ per minute"
# and "occasional bursts are allowed"; the bursts here are our guess at "occasional".
TIER_LIMITS: dict[int, tuple[float, int]] = {1: (1.0, 1), 2: (20.0, 5), 3: (50.0, 10), 4: (100.0, 20)}
METHOD_TIERS: dict[str, int] = {
    "auth.test": 4,
    "chat.update": 3,
    "chat.postEphemeral": 4,
    "views.open": 4,
    "views.update": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
}

ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
FORM = "application/x-www-form-urlencoded"
MAX_BLOCKS = 50
MAX_TEXT = 40_000
# Slack refuses requests whose timestamp is more than five minutes off; "stale" must exceed that.
STALE_BY_SECONDS = 6 * 60


def new_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def flag(value: Any) -> bool:
    """Read a boolean the way Slack does: JSON true, or "1"/"true" in a form."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes"}


class SlackError(Exception):
    """A Web API error answered as ``{"ok": false, "error": code}`` with HTTP 200, as Slack does."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
