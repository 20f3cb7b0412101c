"""The button protocol: what a tap asks for, and how its data travels out and back unforged.

- Telegram: abstract `Button`s in a `Keyboard`; `CallbackSigner` packs a button's action and
  subject (a request or grant id) into `callback_data` with a truncated HMAC, so a modified client
  cannot turn "approve req_A" into "approve req_B": the data fits Telegram's 64 bytes and survives
  restarts (no server state).
- Slack: a board button's value names the request and the exact terms it was shown with; the deny
  form carries what is denied, on which terms and where, in its private metadata; the form behind
  an output's Reject carries the output and where, signed (`RejectForm`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

# ---------------------------------------------------------------- Telegram


class Action(StrEnum):
    """What a button asks for; handlers register one callback handler per action."""

    approve = "ok"
    confirm_ai = "ai"
    deny = "no"
    reason = "why"  # followed by '.' and a reason code, e.g. 'why.pay'
    own_words = "own"
    back = "back"
    show_card = "card"
    revoke = "rv"
    revoke_yes = "rvy"
    revoke_no = "rvn"
    language = "lang"
    pause_yes = "ps"
    pause_why = "psw"
    pause_no = "psn"
    resume_yes = "rs"
    release = "orl"
    reject = "orj"
    reject_reason = "orw"  # followed by '.' and a reason code, e.g. 'orw.look'
    output_back = "orb"
    output_own_words = "oro"


@dataclass(frozen=True)
class Button:
    """One inline button: its label and what tapping it asks for (signed by `CallbackSigner`)."""

    label: str
    action: str
    subject: str


Keyboard = tuple[tuple[Button, ...], ...]
NO_BUTTONS: Keyboard = ()

MAC_BYTES = 9  # 72 bits: guessing one takes ~10^21 taps, and the answer is always "not valid"
_CALLBACK = re.compile(r"^([a-z][a-z.]{0,11}):([A-Za-z0-9_-]{1,32}):([A-Za-z0-9_-]{12})$")


@dataclass(frozen=True)
class Tap:
    """A button tap whose data carried our signature: what it asks for, and about what."""

    action: str
    subject: str


class CallbackSigner:
    """Signs and checks `callback_data` as `action:subject:mac` (at most 57 bytes).

    Parameters:
        key: the HMAC secret, the same in every instance; or a function giving the accepted
            secrets newest first (`desk.signer.callback_keys`), read at each use so that a
            rotated secret signs at once while buttons signed with an older one still work.
    """

    def __init__(self, key: bytes | Callable[[], tuple[bytes, ...]]) -> None:
        """Keeps the secret, or where to read the secrets."""
        self._keys: Callable[[], tuple[bytes, ...]] = key if callable(key) else (lambda: (key,))

    @staticmethod
    def _mac_with(key: bytes, action: str, subject: str) -> str:
        digest = hmac.new(key, f"{action}:{subject}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:MAC_BYTES]).decode("ascii")

    def sign(self, action: str, subject: str) -> str:
        """The callback_data for a button."""
        data = f"{action}:{subject}:{self._mac_with(self._keys()[0], action, subject)}"
        if not _CALLBACK.match(data):
            raise ValueError(f"cannot put {action!r}/{subject!r} in callback data")
        return data

    def read(self, data: str | None) -> Tap | None:
        """The tap a callback_data stands for, or None when it is malformed or its MAC is wrong."""
        match = _CALLBACK.match(data or "")
        if match is None:
            return None
        action, subject, mac = match.groups()
        if not any(hmac.compare_digest(mac, self._mac_with(k, action, subject)) for k in self._keys()):
            return None
        return Tap(action, subject)

    def markup(self, keyboard: Keyboard) -> InlineKeyboardMarkup | None:
        """The inline keyboard for abstract buttons; None when there are none (removes buttons)."""
        if not keyboard:
            return None
        return InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(b.label, callback_data=self.sign(b.action, b.subject)) for b in row]
                for row in keyboard
            ]
        )


SEEN_TERMS = 8  # hex characters of the terms hash that a card's buttons carry


def seen_subject(request_id: str, terms_hash: str) -> str:
    """A card button's subject: the request and the start of the hash of the terms the card showed."""
    return f"{request_id}-{terms_hash[:SEEN_TERMS]}"


def read_seen_subject(subject: str) -> tuple[str, str | None]:
    """(request id, start of the terms hash seen) from a button's subject; None when it carries none."""
    request_id, dash, seen = subject.rpartition("-")
    return (request_id, seen) if dash and request_id and seen else (subject, None)


# ---------------------------------------------------------------- the Slack board


def button_value(request_id: str, terms_hash: str) -> str:
    """The value a board button carries: the request and the exact terms it was shown with."""
    return f"{request_id}:{terms_hash}"


def parse_button_value(value: str) -> tuple[str, str]:
    """(request id, terms hash) from a board button's value; ValueError when it is not one of ours."""
    request_id, _, terms_hash = value.partition(":")
    if not request_id or not terms_hash:
        raise ValueError(f"not a board button value: {value!r}")
    return request_id, terms_hash


@dataclass(frozen=True)
class DenyForm:
    """What a deny form carries through Slack and back: the request, the terms seen, where it was opened."""

    request_id: str
    terms_hash: str
    channel_id: str
    message_ts: str

    def private_metadata(self) -> str:
        """The form's `private_metadata`, as short as Slack's 3,000 characters want it."""
        data = {"r": self.request_id, "h": self.terms_hash, "c": self.channel_id, "t": self.message_ts}
        return json.dumps(data, separators=(",", ":"))


def parse_deny_form(private_metadata: str) -> DenyForm:
    """What a submitted deny form was about; ValueError when the metadata is not ours."""
    try:
        data = json.loads(private_metadata)
        return DenyForm(str(data["r"]), str(data["h"]), str(data["c"]), str(data["t"]))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError("not a deny form") from error


FORM_MAC_BYTES = 16  # 128 bits: a form's metadata is long enough to carry a full-strength MAC


def _form_mac(key: bytes, kind: str, body: str) -> str:
    digest = hmac.new(key, f"slack-form:{kind}:{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:FORM_MAC_BYTES]).decode("ascii")


@dataclass(frozen=True)
class RejectForm:
    """What the form behind an output's Reject carries through Slack and back, signed: the output
    and where the form was opened, so a forged submission cannot name another output."""

    output_id: str
    channel_id: str
    message_ts: str

    def private_metadata(self, key: bytes) -> str:
        """The form's `private_metadata`: the fields and their MAC under `key`."""
        body = json.dumps(
            {"o": self.output_id, "c": self.channel_id, "t": self.message_ts}, separators=(",", ":")
        )
        return json.dumps({"b": body, "m": _form_mac(key, "reject", body)}, separators=(",", ":"))


def parse_reject_form(private_metadata: str, keys: tuple[bytes, ...]) -> RejectForm:
    """What a submitted reject form was about; ValueError when the metadata is not ours or its MAC
    fits none of `keys` (newest first)."""
    try:
        outer = json.loads(private_metadata)
        body, mac = str(outer["b"]), str(outer["m"])
        if not any(hmac.compare_digest(mac, _form_mac(k, "reject", body)) for k in keys):
            raise ValueError("a reject form whose metadata is not signed by this service")
        data = json.loads(body)
        return RejectForm(str(data["o"]), str(data["c"]), str(data["t"]))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError("not a reject form") from error


def claimed_reject_form(private_metadata: str) -> tuple[str, str]:
    """(output, channel) a reject form's metadata names, unchecked: only for the language and the
    audit line of its refusal; empty where unreadable."""
    try:
        data = json.loads(json.loads(private_metadata)["b"])
        return str(data.get("o") or "")[:64], str(data.get("c") or "")[:32]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return "", ""
