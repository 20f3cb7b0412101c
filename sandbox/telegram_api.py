"""A Telegram Bot API simulator: a real HTTP server for tests, benchmarks and the browser sandbox.

It speaks the subset of the Bot API this service uses, so python-telegram-bot talks to it exactly
as it talks to api.telegram.org (``Bot(token, base_url=sim.api_base_url)``). A test then acts as
the users (:meth:`TelegramSimulator.send_text`, :meth:`TelegramSimulator.tap`), reads what the bot
did (:meth:`TelegramSimulator.messages`, :meth:`TelegramSimulator.calls`) and waits for it without
sleeping (:meth:`TelegramSimulator.wait_for`).

Telegram's rules that bite only in production are enforced here on purpose: rate limits answered
with 429 and ``retry_after``, "message is not modified", callback queries answered twice, HTML
that does not parse, bots writing to users who never pressed Start, callback data over 64 bytes.
Faults (5xx, 429, dropped connections, latency) can be injected per method.

The same state is reachable over a JSON control API under ``/control/`` for the browser sandbox
and for tests that run the simulator as a subprocess::

    python -m sandbox.telegram_api --port 8081 --bot 123456:TEST-TOKEN:likeness_test_bot
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import math
import re
import signal
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from html.parser import HTMLParser
from types import TracebackType
from typing import Any, TypeVar, cast

import aiohttp
from aiohttp import web

__all__ = [
    "COUNTED_METHODS",
    "FAULT_KINDS",
    "SECRET_TOKEN_HEADER",
    "ApiError",
    "Fault",
    "HtmlParseError",
    "RateLimits",
    "TelegramSimulator",
    "main",
    "parse_html",
]

log = logging.getLogger(__name__)

JSONDict = dict[str, Any]
T = TypeVar("T")

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
MAX_COMMANDS = 100
SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"

#: Methods that count against Telegram's flood limits by default.
COUNTED_METHODS = frozenset(
    {"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageReplyMarkup"}
)
FAULT_KINDS = frozenset({"500", "502", "429", "drop", "latency"})

NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CANT_INITIATE = "Forbidden: bot can't initiate conversation with a user"
BLOCKED = "Forbidden: bot was blocked by the user"
POLL_WHILE_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)
POLL_TERMINATED = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)

# Form-encoded requests carry every value as a string; these tell which ones to convert back.
# Free-text parameters (text, caption, callback_data...) must never be converted: "123" stays text.
_INT_PARAMS = frozenset(
    {
        "chat_id",
        "message_id",
        "offset",
        "limit",
        "max_connections",
        "cache_time",
        "reply_to_message_id",
        "message_thread_id",
        "user_id",
        "from_chat_id",
    }
)
_BOOL_PARAMS = frozenset(
    {
        "show_alert",
        "drop_pending_updates",
        "disable_notification",
        "protect_content",
        "disable_web_page_preview",
        "disable_content_type_detection",
        "has_spoiler",
        "show_caption_above_media",
        "allow_sending_without_reply",
    }
)
_JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
    }
)
_BUTTON_KINDS = (
    "callback_data",
    "url",
    "web_app",
    "login_url",
    "switch_inline_query",
    "switch_inline_query_current_chat",
    "switch_inline_query_chosen_chat",
    "copy_text",
    "callback_game",
    "pay",
)


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and optional response parameters."""

    def __init__(self, code: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        """The JSON object Telegram sends for this error."""
        body: JSONDict = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class _Dropped(Exception):
    """Internal: an injected "drop" fault; the connection is closed without an answer."""


def _bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")


# --------------------------------------------------------------------------------------------
# Settings


@dataclass(frozen=True)
class RateLimits:
    """Flood limits, enforced per bot and per chat as GCRA buckets (rate per second, burst size).

    Parameters:
        enabled: ``False`` turns every limit off.
        per_bot_rate / per_bot_burst: all counted calls of one bot (Telegram: ~30 messages/s).
        private_chat_rate / private_chat_burst: one private chat (Telegram: ~1 message/s).
        group_chat_rate / group_chat_burst: one group chat (Telegram: 20 messages/minute).
        methods: which API methods count.
    """

    enabled: bool = True
    per_bot_rate: float = 30.0
    per_bot_burst: int = 30
    private_chat_rate: float = 1.0
    private_chat_burst: int = 3
    group_chat_rate: float = 20 / 60
    group_chat_burst: int = 3
    methods: frozenset[str] = COUNTED_METHODS


@dataclass
class Fault:
    """One injected failure kind, consumed by the next ``count`` calls of matching methods.

    ``kind`` is one of ``"500"``, ``"502"``, ``"429"`` (answered with ``retry_after``), ``"drop"``
    (the connection is closed without an answer, the call has no effect) or ``"latency"`` (the
    call waits ``delay`` seconds, then runs normally). ``methods=None`` matches every method.
    """

    kind: str
    count: int = 1
    methods: frozenset[str] | None = None
    delay: float = 0.0
    retry_after: int = 1

    def matches(self, method: str) -> bool:
        """Whether this fault applies to a call of ``method``."""
        return self.count > 0 and (self.methods is None or method in self.methods)

    def view(self) -> JSONDict:
        """A JSON-friendly description."""
        data = asdict(self)
        data["methods"] = sorted(self.methods) if self.methods is not None else None
        return data


class _Gcra:
    """Generic cell rate algorithm: the leaky bucket Telegram-like limits are best modelled by."""

    __slots__ = ("interval", "tat", "tolerance")

    def __init__(self, rate: float, burst: int) -> None:
        self.interval = 1.0 / rate
        self.tolerance = self.interval * (max(burst, 1) - 1)
        self.tat = -math.inf  # theoretical arrival time of the next conforming request

    def wait_needed(self, now: float) -> float:
        """Seconds until a request would conform; 0 when it conforms now."""
        return max(0.0, max(self.tat, now) - self.tolerance - now)

    def consume(self, now: float) -> float:
        """Counts one request; returns the previous state so a failed call can be refunded."""
        previous = self.tat
        self.tat = max(self.tat, now) + self.interval
        return previous


def _refund(bucket: _Gcra, previous_tat: float) -> Callable[[], None]:
    """An undo for one consume(): failed calls must not use up a chat's allowance."""

    def undo() -> None:
        bucket.tat = previous_tat

    return undo


@dataclass
class _ChatStats:
    accepted: int = 0
    rate_limited: int = 0
    max_in_1s: int = 0
    max_in_60s: int = 0
    recent: deque[float] = field(default_factory=deque)

    def record_accept(self, now: float) -> None:
        self.accepted += 1
        self.recent.append(now)
        while self.recent and now - self.recent[0] >= 60.0:
            self.recent.popleft()
        self.max_in_60s = max(self.max_in_60s, len(self.recent))
        in_1s = 0
        for stamp in reversed(self.recent):
            if now - stamp >= 1.0:
                break
            in_1s += 1
        self.max_in_1s = max(self.max_in_1s, in_1s)

    def forget_last(self) -> None:
        self.accepted -= 1
        if self.recent:
            self.recent.pop()

    def view(self) -> JSONDict:
        return {
            "accepted": self.accepted,
            "rate_limited": self.rate_limited,
            "max_in_1s": self.max_in_1s,
            "max_in_60s": self.max_in_60s,
        }


# --------------------------------------------------------------------------------------------
# Text: HTML parse mode, entities, trimming


class HtmlParseError(ValueError):
    """Raised for HTML Telegram would refuse with "can't parse entities"."""


_TAG_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}


def _utf16_len(text: str) -> int:
    # Entity offsets and lengths are counted in UTF-16 code units, as in the real API.
    return len(text.encode("utf-16-le")) // 2


class _TelegramHtml(HTMLParser):
    """Parses Telegram's HTML dialect into plain text and entities, refusing what Telegram refuses."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self._source = source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self._parts: list[str] = []
        self._length16 = 0
        self._open: list[tuple[str, JSONDict | None]] = []
        self.entities: list[JSONDict] = []

    def _fail(self, what: str) -> None:
        line, column = self.getpos()
        index = self._line_starts[line - 1] + column
        offset = len(self._source[:index].encode())
        raise HtmlParseError(f"can't parse entities: {what} at byte offset {offset}")

    def handle_data(self, data: str) -> None:
        self._parts.append(data)
        self._length16 += _utf16_len(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = _TAG_ENTITY.get(tag)
        if kind is None:
            self._fail(f'Unsupported start tag "{tag}"')
            return
        attributes = dict(attrs)
        entity: JSONDict = {"type": kind, "offset": self._length16}
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            self._fail('Tag "span" must have class "tg-spoiler"')
        elif tag == "a":
            entity["url"] = attributes.get("href") or ""
        elif tag == "blockquote" and "expandable" in attributes:
            entity["type"] = "expandable_blockquote"
        elif tag == "tg-emoji":
            if not attributes.get("emoji-id"):
                self._fail('Tag "tg-emoji" must have attribute "emoji-id"')
            entity["custom_emoji_id"] = attributes["emoji-id"]
        elif tag == "code" and self._open and self._open[-1][0] == "pre":
            # <pre><code class="language-x"> is one pre entity with a language, not two entities.
            language = (attributes.get("class") or "").removeprefix("language-")
            pre = self._open[-1][1]
            if pre is not None and language:
                pre["language"] = language
                self._open.append((tag, None))
                return
        self._open.append((tag, entity))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f'Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self._open:
            self._fail(f'Unexpected end tag "{tag}"')
            return
        open_tag, entity = self._open.pop()
        if open_tag != tag:
            self._fail(f'Unmatched end tag "{tag}", expected "</{open_tag}>"')
        if entity is not None:
            length = self._length16 - entity["offset"]
            if length > 0:
                entity["length"] = length
                self.entities.append(entity)

    def handle_comment(self, data: str) -> None:
        self._fail("Comments are not supported")

    def handle_decl(self, decl: str) -> None:
        self._fail("Declarations are not supported")

    def handle_pi(self, data: str) -> None:
        self._fail("Processing instructions are not supported")

    def unknown_decl(self, data: str) -> None:
        self._fail("Declarations are not supported")

    def run(self) -> tuple[str, list[JSONDict]]:
        self.feed(self._source)
        self.close()
        if self._open:
            raise HtmlParseError(
                f"can't parse entities: Can't find end tag corresponding to start tag \"{self._open[-1][0]}\""
            )
        self.entities.sort(key=lambda e: (e["offset"], -e["length"]))
        return "".join(self._parts), self.entities


def parse_html(source: str) -> tuple[str, list[JSONDict]]:
    """Turns Telegram-HTML into (plain text, entities); raises HtmlParseError on malformed markup."""
    return _TelegramHtml(source).run()


def _trim(text: str, entities: list[JSONDict]) -> tuple[str, list[JSONDict]]:
    # Telegram strips surrounding whitespace from texts and clips the entities to match.
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead16 = _utf16_len(text[: len(text) - len(text.lstrip())])
    total16 = _utf16_len(stripped)
    clipped = []
    for entity in entities:
        start = max(0, entity["offset"] - lead16)
        end = min(total16, entity["offset"] + entity["length"] - lead16)
        if end > start:
            clipped.append({**entity, "offset": start, "length": end - start})
    return stripped, clipped


_COMMAND = re.compile(r"(?<!\S)/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?")


def _command_entities(text: str) -> list[JSONDict]:
    return [
        {"type": "bot_command", "offset": _utf16_len(text[: m.start()]), "length": _utf16_len(m.group())}
        for m in _COMMAND.finditer(text)
    ]


# --------------------------------------------------------------------------------------------
# Files


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            index += 2
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return width, height
        index += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        b = data[21:25]
        return 1 + (((b[1] & 0x3F) << 8) | b[0]), 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | (b[1] >> 6))
    return 0, 0


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, JPEG, GIF, BMP or WebP image; None when it is not one."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return width, abs(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


@dataclass
class _Upload:
    filename: str | None
    data: bytes
    content_type: str | None


@dataclass
class _File:
    file_id: str
    file_unique_id: str
    kind: str  # "photo" or "document"
    data: bytes
    file_name: str | None
    mime_type: str | None
    file_path: str
    width: int = 0
    height: int = 0

    def photo_sizes(self) -> list[JSONDict]:
        # Telegram returns several scaled copies; one full-size entry is enough for clients.
        return [
            {
                "file_id": self.file_id,
                "file_unique_id": self.file_unique_id,
                "file_size": len(self.data),
                "width": self.width,
                "height": self.height,
            }
        ]

    def document(self) -> JSONDict:
        doc: JSONDict = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
        }
        if self.file_name:
            doc["file_name"] = self.file_name
        if self.mime_type:
            doc["mime_type"] = self.mime_type
        return doc

    def view(self) -> JSONDict:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "kind": self.kind,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": len(self.data),
            "file_path": self.file_path,
            "width": self.width,
            "height": self.height,
        }


# --------------------------------------------------------------------------------------------
# State


@dataclass
class _Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class _Bot:
    token: str
    username: str
    id: int
    first_name: str
    next_update_id: int = 1
    pending: list[JSONDict] = field(default_factory=list)
    update_log: list[JSONDict] = field(default_factory=list)
    webhook: _Webhook | None = None
    poll_generation: int = 0
    active_polls: int = 0
    commands: dict[tuple[str, str], list[JSONDict]] = field(default_factory=dict)
    next_message_id: dict[int, int] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None

    def user(self) -> JSONDict:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


@dataclass
class _User:
    id: int
    first_name: str
    language_code: str
    username: str | None

    def api(self) -> JSONDict:
        user: JSONDict = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user


@dataclass
class _Group:
    id: int
    title: str
    member_ids: set[int]


@dataclass
class _Body:
    text: str
    html: str | None
    entities: list[JSONDict]
    parse_mode: str | None


@dataclass
class _Message:
    bot_token: str
    chat_id: int
    message_id: int
    date: int
    from_bot: bool
    user_id: int | None
    kind: str  # "text", "photo" or "document"
    body: _Body
    reply_markup: JSONDict | None = None
    file: _File | None = None
    reply_to_message_id: int | None = None
    edit_date: int | None = None
    history: list[JSONDict] = field(default_factory=list)
    seq: int = 0  # creation order across bots, for listing a chat in the order it happened

    def version(self) -> JSONDict:
        return {
            "text": self.body.text,
            "html": self.body.html,
            "entities": copy.deepcopy(self.body.entities),
            "reply_markup": copy.deepcopy(self.reply_markup),
            "date": self.edit_date or self.date,
        }


@dataclass
class _CallbackQuery:
    id: str
    bot_token: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answer: JSONDict | None = None


class _Params:
    """Request parameters with Telegram's typing, whatever encoding the client used."""

    def __init__(self, values: Mapping[str, Any], uploads: Mapping[str, _Upload]) -> None:
        self.values = dict(values)
        self.uploads = dict(uploads)

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def get_str(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        return json.dumps(value)

    def get_int(self, name: str) -> int | None:
        value = self.values.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _bad(f'field "{name}" must be of type Integer')

    def get_float(self, name: str) -> float | None:
        value = self.values.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise _bad(f'field "{name}" must be a Number') from None

    def get_bool(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("true", "1") if value is not None else False

    def get_json(self, name: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value  # the caller refuses it with its own, method-specific error
        return value

    def chat_id(self) -> int:
        value = self.values.get("chat_id")
        if value in (None, ""):
            raise _bad("chat_id is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _bad("chat not found")  # "@channelname" and the like: no such chats here

    def recorded(self) -> JSONDict:
        params = copy.deepcopy(self.values)
        for name, upload in self.uploads.items():
            params[name] = {"upload": upload.filename, "size": len(upload.data), "mime": upload.content_type}
        return params


def _normalise(raw: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            stripped = value.strip()
            if name in _INT_PARAMS and re.fullmatch(r"-?\d+", stripped):
                value = int(stripped)
            elif name in _BOOL_PARAMS and stripped.lower() in ("true", "false", "1", "0"):
                value = stripped.lower() in ("true", "1")
            elif name in _JSON_PARAMS:
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
        values[name] = value
    return values


def _bot_id(token: str) -> int:
    prefix = token.split(":", 1)[0]
    if prefix.isdigit():
        return int(prefix)
    # Tokens without the numeric prefix still need a stable id.
    return 1_000_000 + sum((i + 1) * ord(c) for i, c in enumerate(token)) % 8_000_000


def _validate_keyboard(rows: Any) -> JSONDict | None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise _bad('can\'t parse inline keyboard: field "inline_keyboard" must be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict):
                raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            text = button.get("text")
            if not isinstance(text, str) or not text.strip():
                raise _bad("BUTTON_TEXT_INVALID")
            kinds = [kind for kind in _BUTTON_KINDS if kind in button]
            if not kinds:
                raise _bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if len(kinds) > 1:
                raise _bad("can't parse inline keyboard button: only one optional field may be used")
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise _bad("BUTTON_DATA_INVALID")
            if "url" in button and (not isinstance(button["url"], str) or not button["url"].strip()):
                raise _bad("BUTTON_URL_INVALID")
    if not any(rows):
        return None  # an empty keyboard is no keyboard, as far as "not modified" is concerned
    return {"inline_keyboard": copy.deepcopy(rows)}


ApiMethod = Callable[[_Bot, _Params], Awaitable[Any]]


# --------------------------------------------------------------------------------------------
# The simulator


class TelegramSimulator:
    """An in-process Telegram Bot API server with hooks to act as users and inspect the bot.

    Parameters:
        bots: token → username of the bots the server knows; others get 401.
        limits: flood limits (``RateLimits(enabled=False)`` turns them off).
        faults: faults to inject from the start (see :meth:`inject`).
        webhook_retry_delays: pauses between webhook redelivery attempts; the last one repeats.
        webhook_timeout: seconds a webhook receiver has to answer.
        require_https_webhook: refuse ``http://`` webhook URLs as Telegram does.
        callback_query_ttl: seconds after which a callback query is "too old" (None: never).
        call_history_limit: keep only this many recorded calls (None: all).
        clock: monotonic clock used by the rate limits, replaceable to control time in tests.
        access_log: log every HTTP request (useful when run as a standalone server).
    """

    def __init__(
        self,
        *,
        bots: Mapping[str, str] | None = None,
        limits: RateLimits | None = None,
        faults: Iterable[Fault] = (),
        webhook_retry_delays: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
        webhook_timeout: float = 10.0,
        require_https_webhook: bool = False,
        callback_query_ttl: float | None = None,
        call_history_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        access_log: bool = False,
    ) -> None:
        self._limits = limits or RateLimits()
        self._faults: list[Fault] = [replace(f) for f in faults]
        for fault in self._faults:
            self._check_fault(fault)
        self.webhook_retry_delays = webhook_retry_delays or (1.0,)
        self.webhook_timeout = webhook_timeout
        self.require_https_webhook = require_https_webhook
        self.callback_query_ttl = callback_query_ttl
        self._clock = clock
        self._access_log = access_log

        self._bots: dict[str, _Bot] = {}
        self._users: dict[int, _User] = {}
        self._groups: dict[int, _Group] = {}
        self._started: set[tuple[str, int]] = set()
        self._blocked: set[tuple[str, int]] = set()
        self._chats: dict[tuple[str, int], dict[int, _Message]] = {}
        self._queries: dict[str, _CallbackQuery] = {}
        self._files: dict[str, _File] = {}
        self._calls: deque[JSONDict] = deque(maxlen=call_history_limit)
        self._deliveries: list[JSONDict] = []
        self._buckets: dict[tuple[Any, ...], _Gcra] = {}
        self._chat_stats: dict[tuple[str, int], _ChatStats] = {}
        self.rate_limited_count = 0
        self._call_seq = 0
        self._query_seq = 0
        self._file_seq = 0
        self._message_seq = 0
        self.version = 0
        self._changed = asyncio.Event()
        self._stopping = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._host = "127.0.0.1"
        self._port = 0

        self._methods: dict[str, ApiMethod] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "editMessageCaption": self._edit_message_caption,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "getFile": self._get_file,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendChatAction": self._send_chat_action,
            "close": self._close,
            "logOut": self._log_out,
        }
        # Telegram matches method names case-insensitively.
        self._method_names = {name.lower(): name for name in self._methods}
        for token, username in (bots or {}).items():
            self.add_bot(token, username)

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Starts serving HTTP on host:port (port 0 picks a free one)."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")
        self._stopping = False
        # A fresh connection per request: reusing one that the app's server is just closing for
        # being idle fails with 'Server disconnected', a race real Slack and Telegram never show us.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
        # handler_cancellation: a long poll whose client went away must not linger until timeout.
        runner = web.AppRunner(
            self._build_app(),
            handler_cancellation=True,
            access_log=logging.getLogger("aiohttp.access") if self._access_log else None,
            shutdown_timeout=5.0,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])
        self._host = "127.0.0.1" if host in ("", "0.0.0.0") else ("[::1]" if host == "::" else host)

    async def stop(self) -> None:
        """Stops the server: ends long polls, webhook deliveries and open connections."""
        self._stopping = True
        self._notify()
        workers = [bot.worker for bot in self._bots.values() if bot.worker is not None]
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for bot in self._bots.values():
            bot.worker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> TelegramSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """Root URL of the running server, e.g. ``http://127.0.0.1:43211``."""
        if self._runner is None:
            raise RuntimeError("the simulator is not running; await start() first")
        return f"http://{self._host}:{self._port}"

    @property
    def api_base_url(self) -> str:
        """Value for PTB's ``base_url``: PTB appends ``<token>/<method>``."""
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        """Value for PTB's ``base_file_url``: PTB appends ``<token>/<file_path>``."""
        return f"{self.url}/file/bot"

    # ---------------------------------------------------------------- world set-up

    def add_bot(self, token: str, username: str, first_name: str | None = None) -> None:
        """Registers a bot token; calls with other tokens are answered 401."""
        if not token or "/" in token:
            raise ValueError(f"unusable bot token {token!r}")
        self._bots[token] = _Bot(
            token=token, username=username.lstrip("@"), id=_bot_id(token), first_name=first_name or username
        )
        self._notify()

    def add_user(
        self, user_id: int, first_name: str, language_code: str = "en", username: str | None = None
    ) -> None:
        """Registers a Telegram user; their private chat with any bot has the same id."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        self._users[user_id] = _User(user_id, first_name, language_code, username)
        self._notify()

    def add_group(self, chat_id: int, title: str, member_ids: Iterable[int]) -> None:
        """Registers a group chat (negative id) with the given users as members; bots are members."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        members = set(member_ids)
        unknown = members - self._users.keys()
        if unknown:
            raise KeyError(f"unknown users {sorted(unknown)}; add_user() them first")
        self._groups[chat_id] = _Group(chat_id, title, members)
        self._notify()

    def mark_started(self, bot_token: str, user_id: int) -> None:
        """Records that the user pressed Start in the bot's chat earlier: the bot may write to them.

        Unlike ``send_text(..., "/start")`` it produces no update, so the bot sees no greeting to answer.
        """
        bot = self._bot(bot_token)
        self._user(user_id)
        self._started.add((bot.token, user_id))
        self._notify()

    def block_bot(self, bot_token: str, user_id: int, blocked: bool = True) -> None:
        """Makes the user block (or unblock) the bot: sends to them then fail with 403."""
        bot = self._bot(bot_token)
        self._user(user_id)
        if blocked:
            self._blocked.add((bot.token, user_id))
        else:
            self._blocked.discard((bot.token, user_id))
        self._notify()

    @property
    def limits(self) -> RateLimits:
        """Current flood limits."""
        return self._limits

    @limits.setter
    def limits(self, limits: RateLimits) -> None:
        self._limits = limits
        self._buckets.clear()  # buckets are built from the limits; start them afresh

    def set_rate_limits(self, **changes: Any) -> RateLimits:
        """Changes some flood-limit settings, e.g. ``set_rate_limits(enabled=False)``."""
        if "methods" in changes and changes["methods"] is not None:
            changes["methods"] = frozenset(changes["methods"])
        self.limits = replace(self._limits, **changes)
        return self._limits

    def reset(self) -> None:
        """Forgets everything that happened (messages, calls, updates, files, faults, counters, webhooks,
        commands, who started which bot); keeps the registered bots, users and groups."""
        for bot in self._bots.values():
            bot.pending.clear()
            bot.update_log.clear()
            bot.webhook = None
            bot.commands.clear()
            bot.next_message_id.clear()
            bot.wake.set()
        self._started.clear()
        self._blocked.clear()
        self._chats.clear()
        self._queries.clear()
        self._files.clear()
        self._calls.clear()
        self._deliveries.clear()
        self._buckets.clear()
        self._chat_stats.clear()
        self._faults.clear()
        self.rate_limited_count = 0
        self._notify()

    # ---------------------------------------------------------------- acting as a user

    async def send_text(
        self,
        bot_token: str,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """The user writes ``text`` to the bot (private chat unless ``chat_id`` names a group);
        returns the update id. ``/start abc`` and other commands carry a bot_command entity.

        ``reply_to_message_id`` makes it a reply (Telegram's Reply, as a ForceReply prompt invites)
        to a message of that chat; the update then carries it as ``reply_to_message``.
        """
        bot = self._bot(bot_token)
        self._user(user_id)
        target = user_id if chat_id is None else chat_id
        original: _Message | None = None
        if reply_to_message_id is not None:
            original = self._chats.get((bot.token, target), {}).get(reply_to_message_id)
            if original is None:
                raise LookupError(f"no message {reply_to_message_id} in chat {target} to reply to")
        if target > 0:
            if target != user_id:
                raise ValueError(f"user {user_id} cannot write in the private chat of user {target}")
            # Writing to a bot is what "starting" it means; it also lifts a block.
            self._started.add((bot.token, user_id))
            self._blocked.discard((bot.token, user_id))
        else:
            group = self._groups.get(target)
            if group is None:
                raise KeyError(f"unknown group {target}; add_group() it first")
            if user_id not in group.member_ids:
                raise ValueError(f"user {user_id} is not a member of group {target}")
        body = _Body(text=text, html=None, entities=_command_entities(text), parse_mode=None)
        message = self._store(
            _Message(
                bot_token=bot.token,
                chat_id=target,
                message_id=self._next_message_id(bot, target),
                date=int(time.time()),
                from_bot=False,
                user_id=user_id,
                kind="text",
                body=body,
                reply_to_message_id=reply_to_message_id,
            )
        )
        payload = self._message_api(message)
        if original is not None:
            payload["reply_to_message"] = self._message_api(original)
        return self._enqueue_update(bot, {"message": payload})

    async def tap(
        self,
        bot_token: str,
        user_id: int,
        chat_id: int,
        message_id: int,
        callback_data: str | None = None,
        button_text: str | None = None,
    ) -> str:
        """The user taps a button of a bot message; returns the callback query id.

        Give ``button_text`` to tap a button that is really on the message (its callback data is
        used), or ``callback_data`` to send arbitrary data, as a forged client could. The tapping
        user may differ from the chat's owner.
        """
        bot = self._bot(bot_token)
        user = self._user(user_id)
        message = self._chats.get((bot.token, chat_id), {}).get(message_id)
        if message is None or not message.from_bot:
            raise LookupError(f"bot {bot.username} has no message {message_id} in chat {chat_id}")
        if button_text is not None:
            buttons = [b for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]
            found = [b for b in buttons if b.get("text") == button_text and "callback_data" in b]
            if not found:
                shown = [b.get("text") for b in buttons]
                raise LookupError(
                    f"message {message_id} in chat {chat_id} has no callback button {button_text!r}; "
                    f"its buttons: {shown}"
                )
            data = found[0]["callback_data"]
        elif callback_data is not None:
            data = callback_data
        else:
            raise ValueError("tap() needs button_text or callback_data")
        self._query_seq += 1
        query_id = str(4_000_000_000_000_000_000 + bot.id * 1_000_000 + self._query_seq)
        self._queries[query_id] = _CallbackQuery(
            id=query_id,
            bot_token=bot.token,
            user_id=user_id,
            chat_id=chat_id,
            message_id=message_id,
            data=data,
            created=self._clock(),
        )
        query: JSONDict = {
            "id": query_id,
            "from": user.api(),
            "message": self._message_api(message),
            "chat_instance": str(abs(chat_id) * 7919 + bot.id),
            "data": data,
        }
        self._enqueue_update(bot, {"callback_query": query})
        return query_id

    # ---------------------------------------------------------------- reading what the bot did

    def messages(
        self, chat_id: int, bot_token: str | None = None, include_user: bool = False
    ) -> list[JSONDict]:
        """Current state of the bot messages in a chat, oldest first (with the user's too if asked).

        Each has message_id, chat_id, bot, from_bot, kind, text (the caption for media), html (the
        raw HTML when sent with parse_mode HTML), entities, reply_markup, photo/document file info,
        edit_count, history (earlier versions), date and edit_date.
        """
        found: list[_Message] = []
        for (token, chat), chat_messages in self._chats.items():
            if chat == chat_id and (bot_token is None or token == bot_token):
                found.extend(m for m in chat_messages.values() if m.from_bot or include_user)
        found.sort(key=lambda m: m.seq)
        return [self._message_view(m) for m in found]

    def message(self, chat_id: int, message_id: int, bot_token: str | None = None) -> JSONDict | None:
        """One message's current state, or None."""
        for (token, chat), chat_messages in self._chats.items():
            if chat == chat_id and (bot_token is None or token == bot_token) and message_id in chat_messages:
                return self._message_view(chat_messages[message_id])
        return None

    def calls(self, method: str | None = None, bot_token: str | None = None) -> list[JSONDict]:
        """Every recorded API call: seq, time, duration, bot, method, params, status (None when the
        connection ended without an answer), ok, description, parameters (e.g. retry_after), fault."""
        username = self._bots[bot_token].username if bot_token in self._bots else None
        return [
            copy.deepcopy(call)
            for call in self._calls
            if (method is None or call["method"] == method) and (bot_token is None or call["bot"] == username)
        ]

    def updates(self, bot_token: str | None = None) -> list[JSONDict]:
        """Every update produced for the bot so far, delivered or not."""
        return copy.deepcopy(self._default_bot(bot_token).update_log)

    def pending_updates(self, bot_token: str | None = None) -> list[JSONDict]:
        """Updates not yet confirmed by getUpdates or accepted by the webhook."""
        return copy.deepcopy(self._default_bot(bot_token).pending)

    def is_polling(self, bot_token: str | None = None) -> bool:
        """Whether a getUpdates long poll of the bot is waiting right now."""
        return self._default_bot(bot_token).active_polls > 0

    def webhook_deliveries(self) -> list[JSONDict]:
        """Every webhook delivery attempt: time, bot, update_id, url, status, error."""
        return copy.deepcopy(self._deliveries)

    def callback_answer(self, query_id: str) -> JSONDict | None:
        """How the bot answered a callback query (text, show_alert, url, cache_time), or None."""
        query = self._queries.get(query_id)
        return copy.deepcopy(query.answer) if query and query.answer is not None else None

    def commands(
        self, language_code: str | None = None, scope: JSONDict | None = None, bot_token: str | None = None
    ) -> list[JSONDict]:
        """The command list the bot set for a language (None: the default list) and scope."""
        bot = self._default_bot(bot_token)
        return copy.deepcopy(bot.commands.get(self._commands_key(scope, language_code), []))

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes the bot uploaded under this file id."""
        file = self._files.get(file_id)
        if file is None:
            raise KeyError(f"unknown file id {file_id!r}")
        return file.data

    def chat_stats(self, chat_id: int, bot_token: str | None = None) -> JSONDict:
        """Flood-limit statistics of one chat: accepted, rate_limited, max_in_1s, max_in_60s."""
        total = {"accepted": 0, "rate_limited": 0, "max_in_1s": 0, "max_in_60s": 0}
        for (token, chat), stats in self._chat_stats.items():
            if chat == chat_id and (bot_token is None or token == bot_token):
                view = stats.view()
                for key in ("accepted", "rate_limited"):
                    total[key] += view[key]
                for key in ("max_in_1s", "max_in_60s"):
                    total[key] = max(total[key], view[key])
        return total

    def rate_stats(self) -> dict[int, JSONDict]:
        """Flood-limit statistics of every chat that saw counted calls."""
        return {chat: self.chat_stats(chat) for _token, chat in self._chat_stats}

    # ---------------------------------------------------------------- synchronisation

    # The `timeout` argument is the documented interface tests use; asyncio.timeout would be clumsier.
    async def wait_for(
        self,
        predicate: Callable[[], T | bool | None],
        timeout: float = 10.0,
    ) -> T:
        """Waits until ``predicate()`` returns something truthy and returns it.

        The predicate is re-checked whenever the simulator's state changes (a call, an update, a
        webhook delivery), so tests need no sleeps. Raises TimeoutError listing recent calls.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed  # grab before checking: a change during the check is not lost
            result = predicate()
            if result:
                return cast(T, result)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._timeout_report(timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _timeout_report(self, timeout: float) -> str:
        recent = list(self._calls)[-10:]
        lines = [f"condition still not met after {timeout}s; last {len(recent)} API calls:"]
        for call in recent:
            params = json.dumps(call["params"], ensure_ascii=False, default=str)
            if len(params) > 160:
                params = params[:157] + "..."
            lines.append(f"  #{call['seq']} {call['method']} -> {call['status']} {call['description'] or ''}")
            lines.append(f"      {params}")
        pending = {bot.username: len(bot.pending) for bot in self._bots.values()}
        lines.append(f"pending updates per bot: {pending}")
        return "\n".join(lines)

    def _notify(self) -> None:
        # A fresh Event per change acts as a broadcast condition that sync code can signal.
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    # ---------------------------------------------------------------- fault injection

    def inject(
        self,
        kind: str,
        count: int = 1,
        methods: Iterable[str] | str | None = None,
        delay: float = 0.0,
        retry_after: int = 1,
    ) -> Fault:
        """Makes the next ``count`` calls of ``methods`` (all when None) fail as ``kind``
        ("500", "502", "429", "drop", "latency"); faults are consumed in the order injected."""
        if isinstance(methods, str):
            methods = [methods]
        fault = Fault(
            kind=str(kind),
            count=count,
            methods=frozenset(methods) if methods is not None else None,
            delay=delay,
            retry_after=retry_after,
        )
        self._check_fault(fault)
        self._faults.append(fault)
        self._notify()
        return fault

    def clear_faults(self) -> None:
        """Removes every fault not yet consumed."""
        self._faults.clear()
        self._notify()

    @property
    def faults(self) -> list[Fault]:
        """Faults not yet consumed."""
        return [replace(f) for f in self._faults]

    def _check_fault(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; use one of {sorted(FAULT_KINDS)}")
        if fault.count < 1:
            raise ValueError("a fault needs count >= 1")
        if fault.retry_after < 1:
            raise ValueError("retry_after is a whole number of seconds >= 1")
        if fault.methods is not None:
            unknown = {m for m in fault.methods if m not in self._methods}
            if unknown:
                raise ValueError(f"unknown methods {sorted(unknown)} in fault")

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method):
                fault.count -= 1
                if fault.count == 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ---------------------------------------------------------------- internals: lookups

    def _bot(self, token: str) -> _Bot:
        bot = self._bots.get(token)
        if bot is None:
            raise KeyError("unknown bot token; add_bot() it first")
        return bot

    def _default_bot(self, token: str | None) -> _Bot:
        if token is not None:
            return self._bot(token)
        if len(self._bots) == 1:
            return next(iter(self._bots.values()))
        raise ValueError(f"{len(self._bots)} bots are registered; say which one (bot_token)")

    def _user(self, user_id: int) -> _User:
        user = self._users.get(user_id)
        if user is None:
            raise KeyError(f"unknown user {user_id}; add_user() them first")
        return user

    def _chat_api(self, chat_id: int) -> JSONDict:
        if chat_id > 0:
            user = self._users[chat_id]
            chat: JSONDict = {"id": chat_id, "type": "private", "first_name": user.first_name}
            if user.username:
                chat["username"] = user.username
            return chat
        group = self._groups[chat_id]
        kind = "supergroup" if chat_id <= -1_000_000_000_000 else "group"
        return {"id": chat_id, "type": kind, "title": group.title}

    def _next_message_id(self, bot: _Bot, chat_id: int) -> int:
        number = bot.next_message_id.get(chat_id, 1)
        bot.next_message_id[chat_id] = number + 1
        return number

    def _store(self, message: _Message) -> _Message:
        self._message_seq += 1
        message.seq = self._message_seq
        self._chats.setdefault((message.bot_token, message.chat_id), {})[message.message_id] = message
        self._notify()
        return message

    def _enqueue_update(self, bot: _Bot, payload: JSONDict) -> int:
        update = {"update_id": bot.next_update_id, **payload}
        bot.next_update_id += 1
        bot.pending.append(update)
        bot.update_log.append(copy.deepcopy(update))
        bot.wake.set()
        if bot.webhook is not None:
            self._ensure_webhook_worker(bot)
        self._notify()
        return int(update["update_id"])

    def _message_api(self, message: _Message) -> JSONDict:
        bot = self._bots[message.bot_token]
        data: JSONDict = {
            "message_id": message.message_id,
            "from": bot.user() if message.from_bot else self._users[cast(int, message.user_id)].api(),
            "chat": self._chat_api(message.chat_id),
            "date": message.date,
        }
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.kind == "text":
            data["text"] = message.body.text
            if message.body.entities:
                data["entities"] = copy.deepcopy(message.body.entities)
        else:
            file = cast(_File, message.file)
            if message.kind == "photo":
                data["photo"] = file.photo_sizes()
            else:
                data["document"] = file.document()
            if message.body.text:
                data["caption"] = message.body.text
                if message.body.entities:
                    data["caption_entities"] = copy.deepcopy(message.body.entities)
        if message.reply_markup is not None and "inline_keyboard" in message.reply_markup:
            data["reply_markup"] = copy.deepcopy(message.reply_markup)
        return data

    def _message_view(self, message: _Message) -> JSONDict:
        return {
            "message_id": message.message_id,
            "chat_id": message.chat_id,
            "bot": self._bots[message.bot_token].username,
            "from_bot": message.from_bot,
            "from_user_id": message.user_id,
            "kind": message.kind,
            "text": message.body.text,
            "html": message.body.html,
            "parse_mode": message.body.parse_mode,
            "entities": copy.deepcopy(message.body.entities),
            "caption": message.body.text if message.kind != "text" else None,
            "reply_markup": copy.deepcopy(message.reply_markup),
            "photo": message.file.view() if message.file and message.kind == "photo" else None,
            "document": message.file.view() if message.file and message.kind == "document" else None,
            "reply_to_message_id": message.reply_to_message_id,
            "edit_count": len(message.history),
            "history": copy.deepcopy(message.history),
            "date": message.date,
            "edit_date": message.edit_date,
        }

    # ---------------------------------------------------------------- internals: HTTP

    def _build_app(self) -> web.Application:
        @web.middleware
        async def control_middleware(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            if not request.path.startswith("/control/"):
                return await handler(request)
            response: web.StreamResponse
            if request.method == "OPTIONS":
                response = web.Response(status=204)
            else:
                try:
                    response = await handler(request)
                except (KeyError, ValueError, LookupError, TypeError) as exc:
                    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
                    response = web.json_response({"ok": False, "error": str(message)}, status=400)
            # The browser sandbox may be served from another origin.
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
            return response

        # Telegram accepts uploads up to 50 MB; aiohttp's default body limit is 1 MB.
        app = web.Application(middlewares=[control_middleware], client_max_size=MAX_DOCUMENT_BYTES + 1024**2)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file_download)
        self._add_control_routes(app)
        return app

    async def _read_params(self, request: web.Request) -> _Params:
        raw: dict[str, Any] = dict(request.query)
        uploads: dict[str, _Upload] = {}
        if request.method == "POST" and request.body_exists:
            content_type = request.content_type
            if content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise _bad("can't parse JSON object") from None
                if not isinstance(body, dict):
                    raise _bad("JSON object expected")
                raw.update(body)
            elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        uploads[name] = _Upload(value.filename, value.file.read(), value.content_type)
                    elif isinstance(value, bytes):
                        uploads[name] = _Upload(None, value, None)
                    else:
                        raw[name] = value
        return _Params(_normalise(raw), uploads)

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        started = time.time()
        token = request.match_info["token"]
        bot = self._bots.get(token)
        method = self._method_names.get(request.match_info["method"].lower(), request.match_info["method"])
        params = _Params({}, {})
        fault_kind: str | None = None
        refunds: list[Callable[[], None]] = []
        try:
            if bot is None:
                raise ApiError(401, "Unauthorized")
            if method not in self._methods:
                raise ApiError(404, "Not Found: method not found")
            params = await self._read_params(request)
            fault = self._take_fault(method)
            if fault is not None:
                fault_kind = fault.kind
                if fault.kind == "drop":
                    raise _Dropped
                if fault.kind == "latency":
                    await asyncio.sleep(fault.delay)
                elif fault.kind == "429":
                    retry = fault.retry_after
                    raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
                elif fault.kind == "500":
                    raise ApiError(500, "Internal Server Error")
                elif fault.kind == "502":
                    raise ApiError(502, "Bad Gateway")
            refunds = self._apply_rate_limits(bot, method, params)
            result = await self._methods[method](bot, params)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as error:
            for refund in refunds:
                refund()
            status, body = error.code, error.body()
        except _Dropped:
            self._record(bot, method, params, None, "connection dropped (injected fault)", "drop", started)
            # Closing the transport makes the client see the connection end without any answer;
            # cancelling is how aiohttp lets a handler finish without writing a response.
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError from None
        except asyncio.CancelledError:
            # The client went away (e.g. PTB cancelling its long poll on shutdown).
            self._record(bot, method, params, None, "cancelled: client closed the connection", None, started)
            raise
        self._record(
            bot, method, params, status, body.get("description"), fault_kind, started, body.get("parameters")
        )
        return web.json_response(body, status=status)

    def _record(
        self,
        bot: _Bot | None,
        method: str,
        params: _Params,
        status: int | None,
        description: str | None,
        fault: str | None,
        started: float,
        parameters: JSONDict | None = None,
    ) -> None:
        self._call_seq += 1
        self._calls.append(
            {
                "seq": self._call_seq,
                "time": started,
                "duration": time.time() - started,
                "bot": bot.username if bot else None,
                "method": method,
                "params": params.recorded(),
                "status": status,
                "ok": status == 200,
                "description": description,
                "parameters": parameters,
                "fault": fault,
            }
        )
        self._notify()

    def _apply_rate_limits(self, bot: _Bot, method: str, params: _Params) -> list[Callable[[], None]]:
        """Raises 429 when a counted call would break a limit; otherwise counts it and returns the
        refunds to apply if the call then fails (failed calls do not count, so stats stay honest)."""
        limits = self._limits
        if not limits.enabled or method not in limits.methods:
            return []
        try:
            chat_id: int | None = params.chat_id()
        except ApiError:
            chat_id = None
        now = self._clock()
        buckets = [self._bucket(("bot", bot.token), limits.per_bot_rate, limits.per_bot_burst)]
        stats: _ChatStats | None = None
        if chat_id is not None:
            if chat_id > 0:
                rate, burst = limits.private_chat_rate, limits.private_chat_burst
            else:
                rate, burst = limits.group_chat_rate, limits.group_chat_burst
            buckets.append(self._bucket(("chat", bot.token, chat_id, rate, burst), rate, burst))
            stats = self._chat_stats.setdefault((bot.token, chat_id), _ChatStats())
        wait = max(bucket.wait_needed(now) for bucket in buckets)
        if wait > 0:
            self.rate_limited_count += 1
            if stats is not None:
                stats.rate_limited += 1
            retry = max(1, math.ceil(wait))
            raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
        refunds: list[Callable[[], None]] = []
        for bucket in buckets:
            refunds.append(_refund(bucket, bucket.consume(now)))
        if stats is not None:
            stats.record_accept(now)
            refunds.append(stats.forget_last)
        return refunds

    def _bucket(self, key: tuple[Any, ...], rate: float, burst: int) -> _Gcra:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Gcra(rate, burst)
        return bucket

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] not in self._bots:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        path = request.match_info["path"]
        for file in self._files.values():
            if file.file_path == path:
                return web.Response(body=file.data, content_type=file.mime_type or "application/octet-stream")
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    # ---------------------------------------------------------------- Bot API methods

    async def _get_me(self, bot: _Bot, params: _Params) -> JSONDict:
        return {
            **bot.user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, bot: _Bot, params: _Params) -> list[JSONDict]:
        if bot.webhook is not None:
            raise ApiError(409, POLL_WHILE_WEBHOOK)
        offset = params.get_int("offset")
        limit = min(max(params.get_int("limit") or 100, 1), 100)
        timeout = max(params.get_float("timeout") or 0.0, 0.0)
        if offset:
            # A positive offset confirms every earlier update; a negative one keeps only the last few.
            if offset > 0:
                bot.pending[:] = [u for u in bot.pending if u["update_id"] >= offset]
            else:
                del bot.pending[: max(len(bot.pending) + offset, 0)]
        # Only one poller per bot: a newer getUpdates ends an older one with 409, as in Telegram.
        bot.poll_generation += 1
        generation = bot.poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        bot.active_polls += 1
        self._notify()  # lets a test wait until the bot is really listening (is_polling)
        try:
            while True:
                changed = self._changed
                if bot.poll_generation != generation:
                    raise ApiError(409, POLL_WHILE_WEBHOOK if bot.webhook else POLL_TERMINATED)
                remaining = deadline - loop.time()
                if bot.pending or remaining <= 0 or self._stopping:
                    return copy.deepcopy(bot.pending[:limit])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            bot.active_polls -= 1

    async def _set_webhook(self, bot: _Bot, params: _Params) -> bool:
        url = (params.get_str("url") or "").strip()
        if not url:
            return await self._delete_webhook(bot, params)
        if not url.startswith(("http://", "https://")):
            raise _bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        if self.require_https_webhook and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get_str("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _bad("secret token contains unallowed characters")
        allowed = params.get_json("allowed_updates")
        if params.get_bool("drop_pending_updates"):
            bot.pending.clear()
        bot.webhook = _Webhook(
            url=url,
            secret_token=secret or None,
            max_connections=params.get_int("max_connections") or 40,
            allowed_updates=allowed if isinstance(allowed, list) else None,
        )
        bot.poll_generation += 1  # a long poll in progress ends with 409
        bot.wake.set()
        self._ensure_webhook_worker(bot)
        return True

    async def _delete_webhook(self, bot: _Bot, params: _Params) -> bool:
        bot.webhook = None
        if params.get_bool("drop_pending_updates"):
            bot.pending.clear()
        bot.wake.set()
        return True

    async def _get_webhook_info(self, bot: _Bot, params: _Params) -> JSONDict:
        hook = bot.webhook
        info: JSONDict = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.pending),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    def _check_recipient(self, bot: _Bot, params: _Params) -> int:
        chat_id = params.chat_id()
        if chat_id > 0:
            if chat_id not in self._users:
                raise _bad("chat not found")
            if (bot.token, chat_id) in self._blocked:
                raise ApiError(403, BLOCKED)
            if (bot.token, chat_id) not in self._started:
                raise ApiError(403, CANT_INITIATE)
        elif chat_id not in self._groups:
            raise _bad("chat not found")
        return chat_id

    def _parse_body(self, raw: str, params: _Params, entities_param: str, limit: int, too_long: str) -> _Body:
        mode = (params.get_str("parse_mode") or "").strip()
        html: str | None = None
        if mode.lower() == "html":
            try:
                text, entities = parse_html(raw)
            except HtmlParseError as error:
                raise _bad(str(error)) from None
            html = raw
        elif mode == "":
            text = raw
            given = params.get_json(entities_param)
            if given is not None and not isinstance(given, list):
                raise _bad(f"can't parse {entities_param} JSON object")
            entities = copy.deepcopy(given or [])
        elif mode.lower() in ("markdown", "markdownv2"):
            # Not interpreted: kept verbatim so tests can still read it.
            text, entities = raw, []
        else:
            raise _bad(f"unsupported parse_mode {mode!r}")
        text, entities = _trim(text, entities)
        if len(text) > limit:
            raise _bad(too_long)
        return _Body(text=text, html=html, entities=entities, parse_mode=mode or None)

    def _parse_markup(self, params: _Params, inline_only: bool = False) -> JSONDict | None:
        if not params.has("reply_markup"):
            return None
        markup = params.get_json("reply_markup")
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            return _validate_keyboard(markup["inline_keyboard"])
        if inline_only:
            raise _bad("inline keyboard expected")
        if any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
            return copy.deepcopy(markup)
        raise _bad("can't parse reply keyboard markup JSON object")

    def _new_bot_message(
        self,
        bot: _Bot,
        chat_id: int,
        params: _Params,
        kind: str,
        body: _Body,
        markup: JSONDict | None,
        file: _File | None = None,
    ) -> JSONDict:
        reply_to = params.get_int("reply_to_message_id")
        reply_parameters = params.get_json("reply_parameters")
        if reply_to is None and isinstance(reply_parameters, dict):
            reply_to = reply_parameters.get("message_id")
        message = self._store(
            _Message(
                bot_token=bot.token,
                chat_id=chat_id,
                message_id=self._next_message_id(bot, chat_id),
                date=int(time.time()),
                from_bot=True,
                user_id=None,
                kind=kind,
                body=body,
                reply_markup=markup,
                file=file,
                reply_to_message_id=reply_to,
            )
        )
        return self._message_api(message)

    async def _send_message(self, bot: _Bot, params: _Params) -> JSONDict:
        chat_id = self._check_recipient(bot, params)
        raw = params.get_str("text") or ""
        if not raw.strip():
            raise _bad("message text is empty")
        body = self._parse_body(raw, params, "entities", MAX_MESSAGE_LENGTH, "message is too long")
        if not body.text:
            raise _bad("message text is empty")
        markup = self._parse_markup(params)
        return self._new_bot_message(bot, chat_id, params, "text", body, markup)

    def _message_to_edit(self, bot: _Bot, params: _Params) -> _Message:
        if params.has("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")  # inline messages are not simulated
        chat_id = params.chat_id()
        if chat_id not in self._users and chat_id not in self._groups:
            raise _bad("chat not found")
        message_id = params.get_int("message_id")
        if message_id is None:
            raise _bad("message identifier is not specified")
        message = self._chats.get((bot.token, chat_id), {}).get(message_id)
        if message is None:
            raise _bad("message to edit not found")
        if not message.from_bot:
            raise _bad("message can't be edited")
        return message

    def _apply_edit(self, message: _Message, body: _Body, markup: JSONDict | None) -> JSONDict:
        if (body.text, body.entities, markup) == (
            message.body.text,
            message.body.entities,
            message.reply_markup,
        ):
            raise ApiError(400, NOT_MODIFIED)
        message.history.append(message.version())
        message.body = body
        message.reply_markup = markup
        message.edit_date = int(time.time())
        self._notify()
        return self._message_api(message)

    async def _edit_message_text(self, bot: _Bot, params: _Params) -> JSONDict:
        message = self._message_to_edit(bot, params)
        if message.kind != "text":
            raise _bad("there is no text in the message to edit")
        raw = params.get_str("text") or ""
        if not raw.strip():
            raise _bad("message text is empty")
        body = self._parse_body(raw, params, "entities", MAX_MESSAGE_LENGTH, "MESSAGE_TOO_LONG")
        if not body.text:
            raise _bad("message text is empty")
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        return self._apply_edit(message, body, self._parse_markup(params, inline_only=True))

    async def _edit_message_caption(self, bot: _Bot, params: _Params) -> JSONDict:
        message = self._message_to_edit(bot, params)
        if message.kind == "text":
            raise _bad("there is no caption in the message to edit")
        body = self._parse_body(
            params.get_str("caption") or "",
            params,
            "caption_entities",
            MAX_CAPTION_LENGTH,
            "MESSAGE_TOO_LONG",
        )
        return self._apply_edit(message, body, self._parse_markup(params, inline_only=True))

    async def _edit_message_reply_markup(self, bot: _Bot, params: _Params) -> JSONDict:
        message = self._message_to_edit(bot, params)
        body = replace(message.body, entities=copy.deepcopy(message.body.entities))
        return self._apply_edit(message, body, self._parse_markup(params, inline_only=True))

    async def _delete_message(self, bot: _Bot, params: _Params) -> bool:
        chat_id = params.chat_id()
        message_id = params.get_int("message_id")
        chat = self._chats.get((bot.token, chat_id), {})
        if message_id is None or message_id not in chat:
            raise _bad("message to delete not found")
        if chat_id > 0 and not chat[message_id].from_bot:
            raise _bad("message can't be deleted for everyone")
        del chat[message_id]
        return True

    async def _answer_callback_query(self, bot: _Bot, params: _Params) -> bool:
        query = self._queries.get(params.get_str("callback_query_id") or "")
        if query is None or query.bot_token != bot.token or query.answer is not None:
            raise ApiError(400, QUERY_TOO_OLD)
        if self.callback_query_ttl is not None and self._clock() - query.created > self.callback_query_ttl:
            raise ApiError(400, QUERY_TOO_OLD)
        text = params.get_str("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise _bad("MESSAGE_TOO_LONG")
        query.answer = {
            "text": text,
            "show_alert": params.get_bool("show_alert"),
            "url": params.get_str("url"),
            "cache_time": params.get_int("cache_time"),
            "time": time.time(),
        }
        return True

    def _file_from_request(self, params: _Params, name: str, kind: str) -> _File:
        upload = params.uploads.get(name)
        value = params.values.get(name)
        if upload is None and isinstance(value, str) and value.startswith("attach://"):
            upload = params.uploads.get(value.removeprefix("attach://"))
        if upload is None:
            if isinstance(value, str) and value:
                known = self._files.get(value)
                if known is not None:
                    return known  # resending by file_id reuses the stored file, as in Telegram
                raise _bad("wrong file identifier/HTTP URL specified")
            raise _bad(f"there is no {name} in the request")
        if not upload.data:
            raise _bad("file must be non-empty")
        size = (0, 0)
        if kind == "photo":
            if len(upload.data) > MAX_PHOTO_BYTES:
                raise _bad("PHOTO_INVALID_DIMENSIONS")
            found = _image_size(upload.data)
            if found is None:
                raise _bad("IMAGE_PROCESS_FAILED")
            size = found
        elif len(upload.data) > MAX_DOCUMENT_BYTES:
            raise ApiError(413, "Request Entity Too Large")
        self._file_seq += 1
        number = self._file_seq
        extension = ""
        if upload.filename and "." in upload.filename:
            extension = "." + upload.filename.rsplit(".", 1)[1]
        prefix = "AgACAgIAAxk" if kind == "photo" else "BQACAgIAAxk"
        file = _File(
            file_id=f"{prefix}{number:08d}",
            file_unique_id=f"AQAD{number:08d}",
            kind=kind,
            data=upload.data,
            file_name=upload.filename if kind == "document" else None,
            mime_type=upload.content_type if kind == "document" else "image/jpeg",
            file_path=f"{kind}s/file_{number}{extension if kind == 'document' else '.jpg'}",
            width=size[0],
            height=size[1],
        )
        self._files[file.file_id] = file
        return file

    async def _send_media(self, bot: _Bot, params: _Params, kind: str) -> JSONDict:
        chat_id = self._check_recipient(bot, params)
        file = self._file_from_request(params, kind, kind)
        body = self._parse_body(
            params.get_str("caption") or "",
            params,
            "caption_entities",
            MAX_CAPTION_LENGTH,
            "message caption is too long",
        )
        markup = self._parse_markup(params)
        return self._new_bot_message(bot, chat_id, params, kind, body, markup, file)

    async def _send_photo(self, bot: _Bot, params: _Params) -> JSONDict:
        return await self._send_media(bot, params, "photo")

    async def _send_document(self, bot: _Bot, params: _Params) -> JSONDict:
        return await self._send_media(bot, params, "document")

    async def _get_file(self, bot: _Bot, params: _Params) -> JSONDict:
        file = self._files.get(params.get_str("file_id") or "")
        if file is None:
            raise _bad("invalid file_id")
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": len(file.data),
            "file_path": file.file_path,
        }

    @staticmethod
    def _commands_key(scope: Any, language_code: str | None) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) and scope else {"type": "default"}
        return json.dumps(scope, sort_keys=True), language_code or ""

    def _commands_key_from(self, params: _Params) -> tuple[str, str]:
        scope = params.get_json("scope")
        if scope is not None and not isinstance(scope, dict):
            raise _bad("can't parse BotCommandScope JSON object")
        language = params.get_str("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad("invalid language code specified")
        return self._commands_key(scope, language)

    async def _set_my_commands(self, bot: _Bot, params: _Params) -> bool:
        commands = params.get_json("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise _bad("too many commands specified")
        stored: list[JSONDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name.lstrip("/")):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": name.lstrip("/"), "description": description})
        key = self._commands_key_from(params)
        if stored:
            bot.commands[key] = stored
        else:
            bot.commands.pop(key, None)
        return True

    async def _get_my_commands(self, bot: _Bot, params: _Params) -> list[JSONDict]:
        return copy.deepcopy(bot.commands.get(self._commands_key_from(params), []))

    async def _delete_my_commands(self, bot: _Bot, params: _Params) -> bool:
        bot.commands.pop(self._commands_key_from(params), None)
        return True

    async def _send_chat_action(self, bot: _Bot, params: _Params) -> bool:
        self._check_recipient(bot, params)
        return True

    async def _close(self, bot: _Bot, params: _Params) -> bool:
        return True

    async def _log_out(self, bot: _Bot, params: _Params) -> bool:
        return True

    # ---------------------------------------------------------------- webhook delivery

    def _ensure_webhook_worker(self, bot: _Bot) -> None:
        if self._stopping or self._session is None:
            return
        if bot.worker is None or bot.worker.done():
            bot.worker = asyncio.get_running_loop().create_task(
                self._deliver_webhook_updates(bot), name=f"telegram-sim-webhook-{bot.username}"
            )

    async def _deliver_webhook_updates(self, bot: _Bot) -> None:
        """Posts pending updates to the bot's webhook one at a time, retrying failures with backoff
        like Telegram does (an update is dropped only once the receiver answers 2xx)."""
        failures = 0
        while not self._stopping:
            hook = bot.webhook
            if hook is None:
                return
            if not bot.pending:
                bot.wake.clear()
                await bot.wake.wait()
                continue
            update = bot.pending[0]
            status, error = await self._post_update(hook, update)
            self._deliveries.append(
                {
                    "time": time.time(),
                    "bot": bot.username,
                    "update_id": update["update_id"],
                    "url": hook.url,
                    "status": status,
                    "error": error,
                }
            )
            if error is None:
                failures = 0
                if bot.pending and bot.pending[0] is update:
                    bot.pending.pop(0)
                self._notify()
                continue
            failures += 1
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            log.info("webhook delivery of update %s failed: %s", update["update_id"], error)
            self._notify()
            delays = self.webhook_retry_delays
            await asyncio.sleep(delays[min(failures, len(delays)) - 1])

    async def _post_update(self, hook: _Webhook, update: JSONDict) -> tuple[int | None, str | None]:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers[SECRET_TOKEN_HEADER] = hook.secret_token
        try:
            async with self._session.post(
                hook.url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return response.status, None
                return (
                    response.status,
                    f"Wrong response from the webhook: {response.status} {response.reason}",
                )
        except TimeoutError:
            return None, "Connection timed out"
        except aiohttp.ClientError as error:
            return None, f"Connection failed: {error.__class__.__name__}: {error}"

    # ---------------------------------------------------------------- control API

    def _add_control_routes(self, app: web.Application) -> None:
        routes = app.router
        routes.add_get("/control/state", self._c_state)
        routes.add_get("/control/changes", self._c_changes)
        routes.add_post("/control/bots", self._c_add_bot)
        routes.add_post("/control/users", self._c_add_user)
        routes.add_post("/control/groups", self._c_add_group)
        routes.add_post("/control/block", self._c_block)
        routes.add_post("/control/send_text", self._c_send_text)
        routes.add_post("/control/tap", self._c_tap)
        routes.add_get("/control/messages", self._c_messages)
        routes.add_get("/control/calls", self._c_calls)
        routes.add_get("/control/updates", self._c_updates)
        routes.add_get("/control/webhook_deliveries", self._c_deliveries)
        routes.add_get("/control/callback_answers/{query_id}", self._c_callback_answer)
        routes.add_get("/control/commands", self._c_commands)
        routes.add_get("/control/rate_stats", self._c_rate_stats)
        routes.add_post("/control/rate_limits", self._c_rate_limits)
        routes.add_post("/control/faults", self._c_inject)
        routes.add_get("/control/faults", self._c_faults)
        routes.add_delete("/control/faults", self._c_clear_faults)
        routes.add_get("/control/files/{file_id}", self._c_file)
        routes.add_post("/control/reset", self._c_reset)

    @staticmethod
    async def _json_body(request: web.Request) -> JSONDict:
        if not request.body_exists:
            return {}
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("a JSON object is expected")
        return body

    @staticmethod
    def _query_int(request: web.Request, name: str) -> int | None:
        value = request.query.get(name)
        return int(value) if value else None

    async def _c_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "version": self.version,
                "bots": [
                    {
                        "token": b.token,
                        "username": b.username,
                        "id": b.id,
                        "webhook": b.webhook.url if b.webhook else None,
                        "pending_updates": len(b.pending),
                    }
                    for b in self._bots.values()
                ],
                "users": [asdict(u) for u in self._users.values()],
                "groups": [
                    {"chat_id": g.id, "title": g.title, "member_ids": sorted(g.member_ids)}
                    for g in self._groups.values()
                ],
                "chats": sorted({chat for _token, chat in self._chats}),
                "rate_limits": {**asdict(self._limits), "methods": sorted(self._limits.methods)},
                "rate_limited_count": self.rate_limited_count,
                "faults": [f.view() for f in self._faults],
            }
        )

    async def _c_changes(self, request: web.Request) -> web.Response:
        """Long poll for the sandbox UI: answers once the state version passes ``after``."""
        after = self._query_int(request, "after") or 0
        timeout = float(request.query.get("timeout", "25"))
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: self.version > after or self._stopping, timeout=timeout)
        return web.json_response({"version": self.version})

    async def _c_add_bot(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        self.add_bot(body["token"], body["username"], body.get("first_name"))
        return web.json_response({"ok": True})

    async def _c_add_user(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        self.add_user(
            int(body["user_id"]), body["first_name"], body.get("language_code", "en"), body.get("username")
        )
        return web.json_response({"ok": True})

    async def _c_add_group(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        self.add_group(int(body["chat_id"]), body["title"], [int(i) for i in body.get("member_ids", [])])
        return web.json_response({"ok": True})

    async def _c_block(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        bot = self._default_bot(body.get("bot_token"))
        self.block_bot(bot.token, int(body["user_id"]), bool(body.get("blocked", True)))
        return web.json_response({"ok": True})

    async def _c_send_text(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        bot = self._default_bot(body.get("bot_token"))
        chat_id = body.get("chat_id")
        reply_to = body.get("reply_to_message_id")
        update_id = await self.send_text(
            bot.token,
            int(body["user_id"]),
            str(body["text"]),
            int(chat_id) if chat_id is not None else None,
            reply_to_message_id=int(reply_to) if reply_to is not None else None,
        )
        return web.json_response({"ok": True, "update_id": update_id})

    async def _c_tap(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        bot = self._default_bot(body.get("bot_token"))
        query_id = await self.tap(
            bot.token,
            int(body["user_id"]),
            int(body["chat_id"]),
            int(body["message_id"]),
            callback_data=body.get("callback_data"),
            button_text=body.get("button_text"),
        )
        return web.json_response({"ok": True, "callback_query_id": query_id})

    async def _c_messages(self, request: web.Request) -> web.Response:
        chat_id = self._query_int(request, "chat_id")
        if chat_id is None:
            raise ValueError("chat_id is required")
        include_user = request.query.get("include_user", "").lower() in ("1", "true", "yes")
        found = self.messages(chat_id, request.query.get("bot_token"), include_user=include_user)
        return web.json_response({"messages": found})

    async def _c_calls(self, request: web.Request) -> web.Response:
        since = self._query_int(request, "since") or 0
        found = [c for c in self.calls(request.query.get("method")) if c["seq"] > since]
        return web.json_response({"calls": found})

    async def _c_updates(self, request: web.Request) -> web.Response:
        return web.json_response({"updates": self.updates(request.query.get("bot_token"))})

    async def _c_deliveries(self, request: web.Request) -> web.Response:
        return web.json_response({"deliveries": self.webhook_deliveries()})

    async def _c_callback_answer(self, request: web.Request) -> web.Response:
        return web.json_response({"answer": self.callback_answer(request.match_info["query_id"])})

    async def _c_commands(self, request: web.Request) -> web.Response:
        commands = self.commands(request.query.get("language_code"), bot_token=request.query.get("bot_token"))
        return web.json_response({"commands": commands})

    async def _c_rate_stats(self, request: web.Request) -> web.Response:
        stats = {str(chat): view for chat, view in self.rate_stats().items()}
        return web.json_response({"rate_limited_count": self.rate_limited_count, "chats": stats})

    async def _c_rate_limits(self, request: web.Request) -> web.Response:
        limits = self.set_rate_limits(**await self._json_body(request))
        return web.json_response({**asdict(limits), "methods": sorted(limits.methods)})

    async def _c_inject(self, request: web.Request) -> web.Response:
        body = await self._json_body(request)
        fault = self.inject(
            str(body["kind"]),
            count=int(body.get("count", 1)),
            methods=body.get("methods"),
            delay=float(body.get("delay", 0.0)),
            retry_after=int(body.get("retry_after", 1)),
        )
        return web.json_response({"ok": True, "fault": fault.view()})

    async def _c_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.view() for f in self._faults]})

    async def _c_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"ok": True})

    async def _c_file(self, request: web.Request) -> web.Response:
        file = self._files.get(request.match_info["file_id"])
        if file is None:
            return web.json_response({"ok": False, "error": "unknown file id"}, status=404)
        return web.Response(body=file.data, content_type=file.mime_type or "application/octet-stream")

    async def _c_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


# --------------------------------------------------------------------------------------------
# Standalone server


def _parse_bot(value: str) -> tuple[str, str]:
    # Tokens contain a colon themselves ("123:ABC"), so the username is what follows the last one.
    token, sep, username = value.rpartition(":")
    if not sep or ":" not in token or not username:
        raise argparse.ArgumentTypeError("expected TOKEN:USERNAME, e.g. 123456:ABC-DEF:my_bot")
    return token, username


def _parse_user(value: str) -> tuple[int, str, str]:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not parts[0].isdigit():
        raise argparse.ArgumentTypeError("expected ID:FIRST_NAME[:LANGUAGE], e.g. 1001:Ada:en")
    return int(parts[0]), parts[1], parts[2] if len(parts) == 3 else "en"


async def _serve(args: argparse.Namespace) -> None:
    simulator = TelegramSimulator(
        bots=dict(args.bot or []),
        limits=RateLimits(enabled=not args.no_rate_limits),
        call_history_limit=args.history,
        access_log=args.access_log,
    )
    for user_id, first_name, language in args.user or []:
        simulator.add_user(user_id, first_name, language)
    await simulator.start(args.host, args.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bots = ", ".join(f"@{b.username}" for b in simulator._bots.values()) or "none"
    print(f"Telegram Bot API simulator on {simulator.url} (bots: {bots})", flush=True)
    print(f"  PTB: Bot(token, base_url='{simulator.api_base_url}')  control: {simulator.url}/control/state")
    try:
        await stop.wait()
    finally:
        await simulator.stop()


def main(argv: list[str] | None = None) -> None:
    """Runs the simulator as a standalone server until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.telegram_api", description="Serve a simulated Telegram Bot API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--bot", action="append", type=_parse_bot, metavar="TOKEN:USERNAME")
    parser.add_argument("--user", action="append", type=_parse_user, metavar="ID:FIRST_NAME[:LANG]")
    parser.add_argument("--no-rate-limits", action="store_true", help="turn Telegram's flood limits off")
    parser.add_argument("--history", type=int, default=10_000, help="API calls to keep (default 10000)")
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
