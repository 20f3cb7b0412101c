"""What the simulated Telegram remembers: bots, users, groups, messages, callback queries."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import TypedDict

from sandbox.telegram.files import File
from sandbox.telegram.rules import JSONDict


@dataclass
class Webhook:
    url: str
    secret_token: str | None
    max_connections: int
    allowed_updates: list[str] | None
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass
class BotAccount:
    token: str
    username: str
    id: int
    first_name: str
    next_update_id: int = 1
    pending: list[JSONDict] = field(default_factory=list)
    update_log: list[JSONDict] = field(default_factory=list)
    webhook: Webhook | None = None
    poll_generation: int = 0
    active_polls: int = 0
    commands: dict[tuple[str, str], list[JSONDict]] = field(default_factory=dict)
    next_message_id: dict[int, int] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    worker: asyncio.Task[None] | None = None

    def user(self) -> JSONDict:
        return {"id": self.id, "is_bot": True, "first_name": self.first_name, "username": self.username}


@dataclass
class User:
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
class Group:
    id: int
    title: str
    member_ids: set[int]


@dataclass
class Body:
    text: str
    html: str | None
    entities: list[JSONDict]
    parse_mode: str | None


class Parts(TypedDict, total=False):
    """What a new message may carry besides its body: who wrote it (else the bot), buttons, a file,
    the message it replies to."""

    user_id: int | None
    reply_markup: JSONDict | None
    file: File | None
    reply_to_message_id: int | None


@dataclass
class Message:
    bot_token: str
    chat_id: int
    message_id: int
    date: int
    from_bot: bool
    kind: str  # "text", "photo", "document", "video" or "audio"
    body: Body
    user_id: int | None = None
    reply_markup: JSONDict | None = None
    file: File | None = None
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
class CallbackQuery:
    id: str
    bot_token: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    created: float
    answer: JSONDict | None = None


def bot_id(token: str) -> int:
    prefix = token.split(":", 1)[0]
    if prefix.isdigit():
        return int(prefix)
    # Tokens without the numeric prefix still need a stable id.
    return 1_000_000 + sum((i + 1) * ord(c) for i, c in enumerate(token)) % 8_000_000
