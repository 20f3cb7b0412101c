"""What the simulated Slack workspace remembers: messages, files, modals, response_urls, stats."""

from __future__ import annotations

import copy
import mimetypes
import urllib.parse
from dataclasses import dataclass, field

from sandbox.sim.limits import max_in_window
from sandbox.slack.rules import JSON


@dataclass
class ChannelStats:
    posted: int = 0
    limited: int = 0
    over_limit: int = 0
    accepted_at: list[float] = field(default_factory=list)

    def to_dict(self) -> JSON:
        return {
            "posted": self.posted,
            "limited": self.limited,
            "over_limit": self.over_limit,
            "max_per_second": max_in_window(self.accepted_at, 1.0),
        }


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[JSON]
    user: str
    bot_id: str
    app_id: str
    team: str
    thread_ts: str | None = None
    reply_broadcast: bool = False
    attachments: list[JSON] | None = None
    metadata: JSON | None = None
    file_ids: list[str] = field(default_factory=list)
    edits: list[JSON] = field(default_factory=list)
    edited: JSON | None = None
    deleted: bool = False
    replies: list[Message] = field(default_factory=list)

    def slack_json(self, files: list[JSON]) -> JSON:
        """The message as Slack's API shows it (what payloads and responses carry)."""
        out: JSON = {
            "type": "message",
            "user": self.user,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team,
            "text": self.text,
            "ts": self.ts,
        }
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.metadata:
            out["metadata"] = copy.deepcopy(self.metadata)
        if self.thread_ts is not None:
            out["thread_ts"] = self.thread_ts
            if self.reply_broadcast:
                out["subtype"] = "thread_broadcast"
        elif self.replies:
            out["thread_ts"] = self.ts
            out["reply_count"] = len(self.replies)
            out["latest_reply"] = self.replies[-1].ts
        if self.edited:
            out["edited"] = dict(self.edited)
        if files:
            out["files"] = files
            out["upload"] = True
        return out


@dataclass
class File:
    id: str
    name: str
    length: int
    created: float
    upload_key: str
    title: str = ""
    data: bytes | None = None
    channel: str | None = None
    thread_ts: str | None = None
    message_ts: str | None = None

    @property
    def mimetype(self) -> str:
        return mimetypes.guess_type(self.name)[0] or "application/octet-stream"

    def slack_json(self, base_url: str, user: str) -> JSON:
        ext = self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary"
        url = f"{base_url}/files/{self.id}/{urllib.parse.quote(self.name)}"
        out: JSON = {
            "id": self.id,
            "created": int(self.created),
            "timestamp": int(self.created),
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "filetype": ext,
            "size": len(self.data) if self.data is not None else self.length,
            "user": user,
            "url_private": url,
            "url_private_download": url,
            "channels": [self.channel] if self.channel else [],
        }
        if self.channel and self.message_ts:
            share: JSON = {"ts": self.message_ts}
            if self.thread_ts:
                share["thread_ts"] = self.thread_ts
            out["shares"] = {"public": {self.channel: [share]}}
        return out


@dataclass
class View:
    id: str
    user_id: str
    view: JSON
    open: bool = True
    errors: JSON | None = None
    submissions: int = 0


@dataclass
class Hook:
    """A response_url: where it came from, so a POST to it can act on the right message."""

    channel: str
    user_id: str
    message_ts: str | None
    uses: int = 0


@dataclass
class Team:
    """A workspace: its bot's identity there and the bot tokens an install gave it."""

    id: str
    domain: str
    bot_user_id: str
    bot_id: str
    tokens: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.domain.replace("-", " ").title()


@dataclass
class Grant:
    """A code handed to the app's redirect URL, waiting to be exchanged."""

    team_id: str
    user_id: str
    channel_id: str | None
    scope: str
    redirect_uri: str | None
    used: bool = False
