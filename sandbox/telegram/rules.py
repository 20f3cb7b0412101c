"""Telegram's limits and error answers, as the Bot API states them."""

from __future__ import annotations

from typing import Any

JSONDict = dict[str, Any]


def attributes(thing: object, *names: str) -> JSONDict:
    """A JSON object of `thing`'s attributes `names`, in that order."""
    return {name: getattr(thing, name) for name in names}


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
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendVideo",
        "sendAudio",
        "editMessageText",
        "editMessageReplyMarkup",
    }
)
FAULT_KINDS = frozenset({"500", "502", "429", "404", "drop", "latency"})

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


class Dropped(Exception):
    """Internal: an injected "drop" fault; the connection is closed without an answer."""


def bad(description: str) -> ApiError:
    """A 400 answer: "Bad Request: <description>"."""
    return ApiError(400, f"Bad Request: {description}")
