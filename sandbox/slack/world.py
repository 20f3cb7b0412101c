"""The state of the simulated Slack workspace and the ways to set it up and read it: channels,
users, messages and threads, ephemerals, modals, files, the calls received, and waiting for change."""

from __future__ import annotations

import copy
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar, cast

import aiohttp

from sandbox.sim.faults import FaultInjection, FaultQueue
from sandbox.sim.limits import Buckets
from sandbox.sim.server import HttpServer
from sandbox.sim.waiting import Changes
from sandbox.slack.rules import FAULT_KINDS, JSON, SlackError
from sandbox.slack.state import ChannelStats, File, Grant, Hook, Message, Team, View

T = TypeVar("T")


class SlackWorld(FaultInjection):
    """What the simulator knows and remembers; :class:`sandbox.slack.SlackSimulator` documents the
    parameters. Faults may name Web API methods, "upload" (the file upload URL) and "response_url"."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-sandbox",
        signing_secret: str = "sandbox-signing-secret",
        team_id: str = "T0SANDBOX",
        team_domain: str = "sandbox",
        bot_user_id: str = "U0LIKENESS",
        bot_id: str = "B0LIKENESS",
        api_app_id: str = "A0LIKENESS",
        app_url: str | None = None,
        verification_token: str = "sandbox-verification-token",
        rate_limits_enabled: bool = True,
        post_message_rate: float = 1.0,
        post_message_burst: int = 3,
        tier_limits_enabled: bool = False,
        latency: float = 0.0,
        trigger_ttl: float = 3.0,
        app_timeout: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        max_calls: int = 100_000,
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",
    ) -> None:
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.api_app_id = api_app_id
        self.app_url = app_url
        self.verification_token = verification_token
        self.rate_limits_enabled = rate_limits_enabled
        self.post_message_rate = post_message_rate
        self.post_message_burst = post_message_burst
        self.tier_limits_enabled = tier_limits_enabled
        self.latency = latency
        self.trigger_ttl = trigger_ttl
        self.app_timeout = app_timeout
        self._clock = clock
        self._max_calls = max_calls
        self.client_id = client_id
        self.client_secret = client_secret
        # Workspaces: the first is the one of `bot_token`; more join with add_workspace.
        self._teams: dict[str, Team] = {team_id: Team(team_id, team_domain, bot_user_id, bot_id, {bot_token})}
        self._channel_teams: dict[str, str] = {}  # channel id -> team id
        self._user_teams: dict[str, str] = {}  # user id -> team id
        self._acting: Team | None = None  # the workspace of the Web API call being answered
        self._codes: dict[str, Grant] = {}  # OAuth codes handed out by the authorize page

        self._channels: dict[str, str] = {}  # id -> name
        self._users: dict[str, str] = {}  # id -> name
        self._server = HttpServer("SlackSimulator is not started")
        self._session: aiohttp.ClientSession | None = None
        self._changes = Changes()
        self._last_ts_micros = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self._roots: dict[str, list[Message]] = {cid: [] for cid in self._channels}
        self._by_ts: dict[tuple[str, str], Message] = {}
        self._ephemerals: list[JSON] = []
        self._views: dict[str, View] = {}
        self._files: dict[str, File] = {}
        self._uploads: dict[str, str] = {}  # upload key -> file id
        self._triggers: dict[str, tuple[float, str, bool]] = {}  # id -> (issued, user, used)
        self._hooks: dict[str, Hook] = {}
        self._calls: deque[JSON] = deque(maxlen=self._max_calls)
        self._sent: list[JSON] = []
        self._faults = FaultQueue(FAULT_KINDS, count_error="count must be at least 1")
        self._buckets = Buckets()
        self._channel_stats: dict[str, ChannelStats] = {}
        self._rate_limited_count = 0
        self._last_sent: tuple[str, str, dict[str, str]] | None = None

    # ------------------------------------------------------------------ addresses

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:41234``."""
        return self._server.url

    @property
    def api_base_url(self) -> str:
        """The Web API base for ``AsyncWebClient(base_url=...)``: ``url + "/api/"``."""
        return self.url + "/api/"

    # ------------------------------------------------------------------ setup

    def add_channel(self, channel_id: str, name: str, team_id: str | None = None) -> None:
        """Create a channel (or rename an existing one), in the first workspace unless named."""
        self._channels[channel_id] = name
        self._channel_teams[channel_id] = team_id or self.team_id
        self._roots.setdefault(channel_id, [])
        self._changes.notify()

    def add_user(self, user_id: str, name: str, team_id: str | None = None) -> None:
        """Register a workspace member (of the first workspace unless named); payloads show their name."""
        self._users[user_id] = name
        self._user_teams[user_id] = team_id or self.team_id
        self._changes.notify()

    def add_workspace(self, team_id: str, domain: str, *, bot_user_id: str | None = None) -> None:
        """Another workspace; the app gets a bot token there when it is installed (oauth.v2.access)."""
        suffix = team_id.removeprefix("T")
        self._teams[team_id] = Team(team_id, domain, bot_user_id or f"U0BOT{suffix}", f"B0BOT{suffix}")
        self._changes.notify()

    def team(self, team_id: str | None = None) -> Team:
        """A workspace (the first one by default)."""
        return self._teams[team_id or self.team_id]

    def team_of_channel(self, channel_id: str) -> Team:
        """The workspace a channel belongs to."""
        return self._teams[self._channel_teams.get(channel_id, self.team_id)]

    def _team_of_token(self, token: str) -> Team | None:
        for team in self._teams.values():
            if any(hmac.compare_digest(token, known) for known in team.tokens):
                return team
        return None

    @property
    def _here(self) -> Team:
        """The workspace of the call being answered (the first one outside a call)."""
        return self._acting or self._teams[self.team_id]

    def reset(self) -> None:
        """Forget messages, calls, files, views, faults and limiter state; keep channels and users."""
        self._reset_state()
        self._changes.notify()

    # ------------------------------------------------------------------ reading state

    def messages(self, channel: str, *, include_broadcasts: bool = False) -> list[JSON]:
        """Root messages of a channel in order, each with text, blocks, ts, edits and ``replies``.

        Thread replies sent with reply_broadcast live under their root; pass
        ``include_broadcasts=True`` to also list them among the roots, as Slack's channel view does.
        """
        roots = self._roots.get(self._resolve_channel(channel) or channel)
        if roots is None:
            raise KeyError(f"unknown channel {channel!r}")
        out = [self._message_dict(m) for m in roots]
        if include_broadcasts:
            broadcasts = [self._message_dict(r) for m in roots for r in m.replies if r.reply_broadcast]
            out = sorted(out + broadcasts, key=lambda m: float(m["ts"]))
        return out

    def message(self, channel: str, ts: str) -> JSON:
        """One message (root or reply) by channel and ts."""
        msg = self._by_ts.get((self._resolve_channel(channel) or channel, ts))
        if msg is None:
            raise KeyError(f"no message {ts} in {channel}")
        return self._message_dict(msg)

    def thread(self, channel: str, ts: str) -> list[JSON]:
        """The replies under root ``ts``, in order (the root itself excluded)."""
        return cast(list[JSON], self.message(channel, ts)["replies"])

    def ephemerals(self, channel: str | None = None, user: str | None = None) -> list[JSON]:
        """Ephemeral messages shown so far, optionally only those in a channel and/or for a user."""
        return [
            copy.deepcopy(e)
            for e in self._ephemerals
            if (channel is None or e["channel"] == channel) and (user is None or e["user"] == user)
        ]

    def views(self) -> list[JSON]:
        """Modals opened so far: ``{"id", "user_id", "open", "errors", "view"}`` in opening order."""
        return [
            {
                "id": v.id,
                "user_id": v.user_id,
                "open": v.open,
                "errors": copy.deepcopy(v.errors),
                "view": copy.deepcopy(v.view),
            }
            for v in self._views.values()
        ]

    def files(self, channel: str | None = None) -> list[JSON]:
        """Uploaded files (Slack's file JSON plus ``channel``, ``thread_ts``, ``uploaded``)."""
        out = []
        for f in self._files.values():
            if channel is not None and f.channel != channel:
                continue
            info = f.slack_json(self.url if self._server.running else "", self.bot_user_id)
            info.update({"channel": f.channel, "thread_ts": f.thread_ts, "uploaded": f.data is not None})
            out.append(info)
        return out

    def file_bytes(self, file_id: str) -> bytes:
        """The exact bytes uploaded for ``file_id``."""
        data = self._files[file_id].data
        if data is None:
            raise KeyError(f"file {file_id} was never uploaded")
        return data

    def calls(self, method: str | None = None) -> list[JSON]:
        """Every call received, oldest first: method, time, params (token removed), status, answer."""
        return [copy.deepcopy(c) for c in self._calls if method is None or c["method"] == method]

    def call_count(self, method: str | None = None) -> int:
        """How many calls were received (cheap: no copying, for predicates polled by ``wait_for``)."""
        if method is None:
            return len(self._calls)
        return sum(1 for c in self._calls if c["method"] == method)

    def sent_to_app(self) -> list[JSON]:
        """Every request sent to the app as Slack: kind, body, headers, the app's status and body."""
        return copy.deepcopy(self._sent)

    @property
    def rate_limited_count(self) -> int:
        """How many 429s the rate limiter gave (injected 429 faults not included)."""
        return self._rate_limited_count

    def rate_limit_stats(self) -> dict[str, JSON]:
        """Per channel chat.postMessage stats: posted, limited (429s), over_limit, max_per_second.

        ``over_limit`` counts posts beyond the limit whether or not limits are enforced, so a test
        running with limits off can still assert that the app kept to them.
        """
        return {cid: s.to_dict() for cid, s in self._channel_stats.items()}

    # A timeout argument (not asyncio.timeout around the call) keeps test code short and gives
    # the TimeoutError its list of recent calls.
    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Wait until ``predicate()`` is truthy, re-checking after every state change; return its value."""
        return await self._changes.wait_for(predicate, timeout, self._timeout_report)

    def _timeout_report(self, timeout: float) -> str:
        recent = [call_summary(c) for c in list(self._calls)[-10:]]
        return f"condition not met within {timeout}s; recent calls: {recent or 'none'}"

    # ------------------------------------------------------------------ faults

    def faults(self) -> list[JSON]:
        """Pending faults with their remaining counts."""
        # Slack's control API has always said "remaining" for what the fault still has to do.
        return [{("remaining" if k == "count" else k): v for k, v in f.view().items()} for f in self._faults]

    def _record(
        self, method: str, params: JSON, status: int, answer: Any, *, fault: str | None = None
    ) -> None:
        self._calls.append(
            {
                "method": method,
                "time": time.time(),
                "params": params,
                "status": status,
                "answer": answer,
                "fault": fault,
            }
        )
        self._changes.notify()

    def _resolve_channel(self, channel: Any) -> str | None:
        """Channel id from an id, "name" or "#name" (chat.postMessage accepts all three)."""
        if not channel:
            return None
        wanted = str(channel)
        if wanted in self._channels:
            return wanted
        name = wanted.removeprefix("#")
        for cid, cname in self._channels.items():
            if cname == name:
                return cid
        return None

    @staticmethod
    def _json_param(params: JSON, key: str, error: str) -> Any:
        value = params.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise SlackError(error) from exc
        return value

    def _new_ts(self) -> str:
        # Slack's ts is unique per channel; keeping it strictly increasing globally is simpler.
        micros = max(int(time.time() * 1_000_000), self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _root_for(self, channel: str, thread_ts: Any) -> Message | None:
        if not thread_ts:
            return None
        msg = self._by_ts.get((channel, str(thread_ts)))
        if msg is None:
            # Real Slack may accept an unknown thread_ts silently; failing loudly catches app bugs.
            raise SlackError("thread_not_found")
        if msg.thread_ts is not None:
            msg = self._by_ts[(channel, msg.thread_ts)]
        return msg

    def _post(
        self,
        channel: str,
        text: str,
        blocks: list[JSON] | None,
        *,
        thread_ts: Any = None,
        reply_broadcast: bool = False,
        attachments: list[JSON] | None = None,
        metadata: JSON | None = None,
        file_ids: list[str] | None = None,
    ) -> Message:
        root = self._root_for(channel, thread_ts)
        msg = Message(
            channel=channel,
            ts=self._new_ts(),
            text=text,
            blocks=blocks or [],
            user=self._here.bot_user_id,
            bot_id=self._here.bot_id,
            app_id=self.api_app_id,
            team=self._here.id,
            thread_ts=root.ts if root else None,
            reply_broadcast=reply_broadcast and root is not None,
            attachments=attachments,
            metadata=metadata,
            file_ids=file_ids or [],
        )
        if root is not None:
            root.replies.append(msg)
        else:
            self._roots[channel].append(msg)
        self._by_ts[(channel, msg.ts)] = msg
        return msg

    def _edit(self, msg: Message, text: str | None, blocks: list[JSON] | None) -> None:
        """Change a message, keeping its earlier versions in ``edits`` (Slack keeps none; tests want them)."""
        now_ts = self._new_ts()
        msg.edits.append({"text": msg.text, "blocks": copy.deepcopy(msg.blocks), "replaced_at": now_ts})
        if text is not None:
            msg.text = text
        # As in Slack, leaving blocks out keeps the old ones; an empty list removes them.
        if blocks is not None:
            msg.blocks = blocks
        msg.edited = {"user": self.bot_user_id, "ts": now_ts}

    def _ephemeral(
        self,
        channel: str,
        user: str,
        text: str,
        blocks: list[JSON] | None,
        *,
        thread_ts: Any = None,
        source: str,
    ) -> JSON:
        entry: JSON = {
            "channel": channel,
            "user": user,
            "text": text,
            "blocks": blocks or [],
            "message_ts": self._new_ts(),
            "thread_ts": str(thread_ts) if thread_ts else None,
            "source": source,
        }
        self._ephemerals.append(entry)
        return entry

    def _complete_view(self, view: JSON, view_id: str) -> JSON:
        """The view as Slack returns it: ids filled in, empty state, a fresh hash."""
        stored = copy.deepcopy(view)
        for block in stored.get("blocks", []):
            # Slack invents block_id/action_id when the app leaves them out; so do we.
            block.setdefault("block_id", secrets.token_hex(3))
            element = block.get("element")
            if isinstance(element, dict):
                element.setdefault("action_id", secrets.token_hex(3))
        stored.update(
            {
                "id": view_id,
                "team_id": self._here.id,
                "app_id": self.api_app_id,
                "bot_id": self._here.bot_id,
                "callback_id": view.get("callback_id", ""),
                "private_metadata": view.get("private_metadata", ""),
                "external_id": view.get("external_id", ""),
                "state": {"values": {}},
                "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
                "root_view_id": view_id,
                "previous_view_id": None,
            }
        )
        return stored

    # ------------------------------------------------------------------ views into state

    def _file_jsons(self, msg: Message) -> list[JSON]:
        base = self.url if self._server.running else ""
        return [self._files[f].slack_json(base, self.bot_user_id) for f in msg.file_ids if f in self._files]

    def _slack_json(self, msg: Message) -> JSON:
        return msg.slack_json(self._file_jsons(msg))

    def _message_dict(self, msg: Message) -> JSON:
        return {
            "channel": msg.channel,
            "ts": msg.ts,
            "text": msg.text,
            "blocks": copy.deepcopy(msg.blocks),
            "attachments": copy.deepcopy(msg.attachments),
            "metadata": copy.deepcopy(msg.metadata),
            "user": msg.user,
            "thread_ts": msg.thread_ts,
            "reply_broadcast": msg.reply_broadcast,
            "files": self._file_jsons(msg),
            "edits": copy.deepcopy(msg.edits),
            "edited": copy.deepcopy(msg.edited),
            "deleted": msg.deleted,
            "replies": [self._message_dict(r) for r in msg.replies],
        }

    # ------------------------------------------------------------------ acting as Slack towards the app

    def _user_json(self, user_id: str) -> JSON:
        name = self._users.setdefault(user_id, user_id)
        team_id = self._user_teams.get(user_id, self.team_id)
        return {"id": user_id, "username": name, "name": name, "team_id": team_id}

    def _new_trigger(self, user_id: str) -> str:
        trigger_id = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = (self._clock(), user_id, False)
        return trigger_id

    def _new_response_url(self, channel: str, user_id: str, message_ts: str | None) -> str:
        key = secrets.token_urlsafe(18)
        self._hooks[key] = Hook(channel, user_id, message_ts)
        return f"{self.url}/response/{key}"

    def _team_json(self, channel_id: str | None = None) -> JSON:
        team = self.team_of_channel(channel_id) if channel_id else self._teams[self.team_id]
        return {"id": team.id, "domain": team.domain}


def call_summary(call: JSON) -> str:
    answer = call["answer"]
    error = answer.get("error", "") if isinstance(answer, dict) else ""
    return f"{call['method']} -> {call['status']} {error}".rstrip()
