"""A Bot API request's parameters, typed as Telegram types them whatever encoding the client used,
and the inline keyboards they carry."""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from sandbox.telegram.files import Upload
from sandbox.telegram.rules import MAX_CALLBACK_DATA_BYTES, JSONDict, bad

# Form-encoded requests carry every value as a string; these tell which ones to convert back.
# Free-text parameters (text, caption, callback_data...) must never be converted: "123" stays text.
INT_PARAMS = frozenset(
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
BOOL_PARAMS = frozenset(
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
JSON_PARAMS = frozenset(
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
BUTTON_KINDS = (
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


class Params:
    """Request parameters with Telegram's typing, whatever encoding the client used."""

    def __init__(self, values: Mapping[str, Any], uploads: Mapping[str, Upload]) -> None:
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
        raise bad(f'field "{name}" must be of type Integer')

    def get_float(self, name: str) -> float | None:
        value = self.values.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(str(value))
        except ValueError:
            raise bad(f'field "{name}" must be a Number') from None

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
            raise bad("chat_id is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad("chat not found")  # "@channelname" and the like: no such chats here

    def recorded(self) -> JSONDict:
        params = copy.deepcopy(self.values)
        for name, upload in self.uploads.items():
            params[name] = {"upload": upload.filename, "size": len(upload.data), "mime": upload.content_type}
        return params


def normalise(raw: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            stripped = value.strip()
            if name in INT_PARAMS and re.fullmatch(r"-?\d+", stripped):
                value = int(stripped)
            elif name in BOOL_PARAMS and stripped.lower() in ("true", "false", "1", "0"):
                value = stripped.lower() in ("true", "1")
            elif name in JSON_PARAMS:
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
        values[name] = value
    return values


def validate_keyboard(rows: Any) -> JSONDict | None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad('can\'t parse inline keyboard: field "inline_keyboard" must be an Array of Arrays')
    for row in rows:
        for button in row:
            if not isinstance(button, dict):
                raise bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            text = button.get("text")
            if not isinstance(text, str) or not text.strip():
                raise bad("BUTTON_TEXT_INVALID")
            kinds = [kind for kind in BUTTON_KINDS if kind in button]
            if not kinds:
                raise bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if len(kinds) > 1:
                raise bad("can't parse inline keyboard button: only one optional field may be used")
            if "callback_data" in button:
                data = button["callback_data"]
                if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
                    raise bad("BUTTON_DATA_INVALID")
            if "url" in button and (not isinstance(button["url"], str) or not button["url"].strip()):
                raise bad("BUTTON_URL_INVALID")
    if not any(rows):
        return None  # an empty keyboard is no keyboard, as far as "not modified" is concerned
    return {"inline_keyboard": copy.deepcopy(rows)}


async def read_params(request: web.Request) -> Params:
    """The parameters of a Bot API request, from its query string and its JSON, form or multipart body."""
    raw: dict[str, Any] = dict(request.query)
    uploads: dict[str, Upload] = {}
    if request.method == "POST" and request.body_exists:
        content_type = request.content_type
        if content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad("can't parse JSON object") from None
            if not isinstance(body, dict):
                raise bad("JSON object expected")
            raw.update(body)
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, web.FileField):
                    uploads[name] = Upload(value.filename, value.file.read(), value.content_type)
                elif isinstance(value, bytes):
                    uploads[name] = Upload(None, value, None)
                else:
                    raw[name] = value
    return Params(normalise(raw), uploads)
