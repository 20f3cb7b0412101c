"""An in-repo Slack Web API simulator: a real HTTP server that slack_sdk can talk to.

It keeps channels, messages, threads, ephemerals, modals and uploaded files in memory,
enforces Slack-like rate limits, injects faults on request, and plays Slack's part
towards the app: it sends signed button clicks, modal submissions and slash commands
to a configurable ``app_url``.

Typical use::

    sim = SlackSimulator(bot_token="xoxb-test", signing_secret="secret")
    sim.add_channel("C0AGENCY", "agency")
    await sim.start()
    client = AsyncWebClient(token="xoxb-test", base_url=sim.api_base_url)

Run standalone with ``python -m sandbox.slack_api --port 8082 --app-url ...``; the JSON
control API under ``/control/`` then drives it (see ``_control_routes``).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import hmac
import json
import math
import mimetypes
import os
import secrets
import signal
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import aiohttp
from aiohttp import web

__all__ = [
    "FAULT_KINDS",
    "METHOD_TIERS",
    "TIER_LIMITS",
    "AppResponse",
    "SlackSimulator",
    "Tamper",
    "main",
    "sign_request",
]

JSON = dict[str, Any]
T = TypeVar("T")

Tamper = Literal["bad_signature", "stale_timestamp", "missing_signature"]
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

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_FORM = "application/x-www-form-urlencoded"
_MAX_BLOCKS = 50
_MAX_TEXT = 40_000
# Slack refuses requests whose timestamp is more than five minutes off; "stale" must exceed that.
_STALE_BY_SECONDS = 6 * 60


def sign_request(signing_secret: str, timestamp: str, body: str) -> str:
    """Return Slack's request signature: ``v0=`` + hex HMAC-SHA256 over ``v0:{timestamp}:{body}``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def _new_id(prefix: str, length: int = 10) -> str:
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def _flag(value: Any) -> bool:
    """Read a boolean the way Slack does: JSON true, or "1"/"true" in a form."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes"}


@dataclass
class AppResponse:
    """What the app answered to a request the simulator sent it as Slack."""

    status: int
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    timed_out: bool = False

    def json(self) -> Any:
        """The body parsed as JSON, or None when the body is empty."""
        return json.loads(self.body) if self.body.strip() else None


class _SlackError(Exception):
    """A Web API error answered as ``{"ok": false, "error": code}`` with HTTP 200, as Slack does."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Fault:
    kind: str
    remaining: int
    methods: frozenset[str] | None
    delay: float
    retry_after: int

    def matches(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def to_dict(self) -> JSON:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "methods": sorted(self.methods) if self.methods is not None else None,
            "delay": self.delay,
            "retry_after": self.retry_after,
        }


class _Gcra:
    """Generic cell rate algorithm: a leaky bucket kept as one "theoretical arrival time"."""

    def __init__(self, rate_per_second: float, burst: int) -> None:
        self.interval = 1.0 / rate_per_second
        # A burst of b means b requests may arrive at once; the b-th is (b-1) intervals early.
        self.tolerance = self.interval * (max(burst, 1) - 1)
        self.tat = -math.inf

    def take(self, now: float) -> float:
        """Consume one slot and return 0, or return the seconds to wait without consuming."""
        tat = max(self.tat, now)
        early = tat - now - self.tolerance
        if early > 1e-9:
            return early
        self.tat = tat + self.interval
        return 0.0


@dataclass
class _ChannelStats:
    posted: int = 0
    limited: int = 0
    over_limit: int = 0
    accepted_at: list[float] = field(default_factory=list)

    def to_dict(self) -> JSON:
        return {
            "posted": self.posted,
            "limited": self.limited,
            "over_limit": self.over_limit,
            "max_per_second": _max_in_window(self.accepted_at, 1.0),
        }


def _max_in_window(times: list[float], window: float) -> int:
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


@dataclass
class _Message:
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
    replies: list[_Message] = field(default_factory=list)

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
class _File:
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
class _View:
    id: str
    user_id: str
    view: JSON
    open: bool = True
    errors: JSON | None = None
    submissions: int = 0


@dataclass
class _Hook:
    """A response_url: where it came from, so a POST to it can act on the right message."""

    channel: str
    user_id: str
    message_ts: str | None
    uses: int = 0


class SlackSimulator:
    """A Slack workspace in a box: the Web API over HTTP, plus Slack's requests to the app.

    Parameters:
        bot_token: the only token the Web API accepts.
        signing_secret: used to sign every request sent to ``app_url``.
        team_id, team_domain, bot_user_id, bot_id, api_app_id: identities shown in answers and payloads.
        app_url: where clicks, submissions and slash commands go (settable later).
        verification_token: the deprecated ``token`` field put in payloads.
        rate_limits_enabled: answer 429 when a limit is exceeded (stats are kept either way).
        post_message_rate, post_message_burst: chat.postMessage limit per channel (GCRA).
        tier_limits_enabled: also apply ``TIER_LIMITS`` to the methods in ``METHOD_TIERS``.
        latency: seconds added to every Web API answer (for benchmarks).
        trigger_ttl: seconds a trigger_id stays usable, 3 like Slack.
        app_timeout: seconds Slack waits for the app's answer before giving up, 3 like Slack.
        clock: monotonic seconds for rate limits and trigger expiry; tests pass a fake one.
        max_calls: how many recent calls ``calls()`` keeps.
    """

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

        self._channels: dict[str, str] = {}  # id -> name
        self._users: dict[str, str] = {}  # id -> name
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._url: str | None = None
        self._changed = asyncio.Event()
        self._last_ts_micros = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self._roots: dict[str, list[_Message]] = {cid: [] for cid in self._channels}
        self._by_ts: dict[tuple[str, str], _Message] = {}
        self._ephemerals: list[JSON] = []
        self._views: dict[str, _View] = {}
        self._files: dict[str, _File] = {}
        self._uploads: dict[str, str] = {}  # upload key -> file id
        self._triggers: dict[str, tuple[float, str, bool]] = {}  # id -> (issued, user, used)
        self._hooks: dict[str, _Hook] = {}
        self._calls: deque[JSON] = deque(maxlen=self._max_calls)
        self._sent: list[JSON] = []
        self._faults: list[_Fault] = []
        self._post_buckets: dict[str, _Gcra] = {}
        self._tier_buckets: dict[str, _Gcra] = {}
        self._channel_stats: dict[str, _ChannelStats] = {}
        self._rate_limited_count = 0
        self._last_sent: tuple[str, str, dict[str, str]] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving on host:port (port 0 picks a free one; read it back from ``url``)."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{key}", self._handle_upload)
        app.router.add_post("/response/{key}", self._handle_response_url)
        app.router.add_get("/files/{file_id}/{name}", self._handle_file_download)
        for method, path, handler in self._control_routes():
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}"
        # A fresh connection per request: reusing one that the app's server is just closing for
        # being idle fails with 'Server disconnected', a race real Slack and Telegram never show us.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))

    async def stop(self) -> None:
        """Stop serving and close the client used to reach the app."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SlackSimulator:
        """Start on a free local port unless already started."""
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop serving."""
        await self.stop()

    @property
    def url(self) -> str:
        """The server's root URL, e.g. ``http://127.0.0.1:41234``."""
        if self._url is None:
            raise RuntimeError("SlackSimulator is not started")
        return self._url

    @property
    def api_base_url(self) -> str:
        """The Web API base for ``AsyncWebClient(base_url=...)``: ``url + "/api/"``."""
        return self.url + "/api/"

    # ------------------------------------------------------------------ setup

    def add_channel(self, channel_id: str, name: str) -> None:
        """Create a channel (or rename an existing one)."""
        self._channels[channel_id] = name
        self._roots.setdefault(channel_id, [])
        self._touch()

    def add_user(self, user_id: str, name: str) -> None:
        """Register a workspace member; payloads show their name."""
        self._users[user_id] = name
        self._touch()

    def reset(self) -> None:
        """Forget messages, calls, files, views, faults and limiter state; keep channels and users."""
        self._reset_state()
        self._touch()

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
            info = f.slack_json(self.url if self._url else "", self.bot_user_id)
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
        try:
            async with asyncio.timeout(timeout):
                while True:
                    # Take the event before checking, so a change between check and wait is not lost.
                    changed = self._changed
                    result = predicate()
                    if result:
                        return result
                    await changed.wait()
        except TimeoutError:
            recent = [_call_summary(c) for c in list(self._calls)[-10:]]
            raise TimeoutError(
                f"condition not met within {timeout}s; recent calls: {recent or 'none'}"
            ) from None

    def _touch(self) -> None:
        """Wake every ``wait_for``: set the current event and start a fresh one for later waiters."""
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ faults

    def inject(
        self,
        kind: str,
        count: int = 1,
        methods: Iterable[str] | str | None = None,
        delay: float = 0.0,
        retry_after: int = 1,
    ) -> None:
        """Make the next ``count`` matching calls fail: "500", "503", "429", "drop" or "latency".

        Faults are consumed in the order injected. ``methods`` limits them to some Web API
        methods (also "upload" for the file upload URL and "response_url"); ``delay`` is added
        before answering (the only effect of "latency"); ``retry_after`` is the 429's header.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; use one of {sorted(FAULT_KINDS)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        wanted = (
            frozenset([methods] if isinstance(methods, str) else methods) if methods is not None else None
        )
        self._faults.append(_Fault(kind, count, wanted, delay, retry_after))

    def clear_faults(self) -> None:
        """Drop every pending fault."""
        self._faults.clear()

    def faults(self) -> list[JSON]:
        """Pending faults with their remaining counts."""
        return [f.to_dict() for f in self._faults]

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(method):
                fault.remaining -= 1
                if fault.remaining == 0:
                    self._faults.remove(fault)
                return fault
        return None

    async def _apply_fault(self, request: web.Request, method: str, params: JSON) -> web.Response | None:
        """Delay and/or answer with the next matching fault; None means carry on normally."""
        fault = self._take_fault(method)
        delay = self.latency + (fault.delay if fault else 0.0)
        if delay > 0:
            # Simulated network time, not synchronisation: this is the product feature.
            await asyncio.sleep(delay)
        if fault is None or fault.kind == "latency":
            return None
        if fault.kind == "drop":
            self._record(method, params, 0, None, fault="drop")
            if request.transport is not None:
                request.transport.close()
            # aiohttp cannot write to the closed transport; the client sees a disconnect.
            return web.Response(status=500)
        if fault.kind == "429":
            answer: JSON = {"ok": False, "error": "ratelimited"}
            self._record(method, params, 429, answer, fault="429")
            return web.json_response(answer, status=429, headers={"Retry-After": str(fault.retry_after)})
        status = int(fault.kind)
        answer = {"ok": False, "error": "internal_error" if status == 500 else "service_unavailable"}
        self._record(method, params, status, answer, fault=fault.kind)
        return web.json_response(answer, status=status)

    # ------------------------------------------------------------------ Web API

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
        self._touch()

    async def _read_params(self, request: web.Request) -> JSON:
        """Merge query string, form and JSON body, as Slack accepts all three (slack_sdk uses each)."""
        params: JSON = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError as exc:
                raise _SlackError("invalid_json") from exc
            if not isinstance(body, dict):
                raise _SlackError("invalid_json")
            params.update(body)
        else:
            form = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
        return params

    def _token_of(self, request: web.Request, params: JSON) -> str | None:
        token = params.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        return str(token) if token is not None else None

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            params = await self._read_params(request)
        except _SlackError as exc:
            answer: JSON = {"ok": False, "error": exc.code}
            self._record(method, {}, 200, answer)
            return web.json_response(answer)
        token = self._token_of(request, params)
        faulted = await self._apply_fault(request, method, params)
        if faulted is not None:
            return faulted
        # Slack distinguishes "no token" from "wrong token"; both come back as HTTP 200.
        if not token:
            answer = {"ok": False, "error": "not_authed"}
        elif not hmac.compare_digest(token, self.bot_token):
            answer = {"ok": False, "error": "invalid_auth"}
        else:
            wait = self._check_rate_limit(method, params)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                answer = {"ok": False, "error": "ratelimited"}
                self._record(method, params, 429, answer)
                return web.json_response(answer, status=429, headers={"Retry-After": str(retry_after)})
            handler = self._methods().get(method)
            try:
                if handler is None:
                    raise _SlackError("unknown_method")
                answer = {"ok": True, **handler(params)}
            except _SlackError as exc:
                answer = {"ok": False, "error": exc.code}
        self._record(method, params, 200, answer)
        return web.json_response(answer)

    def _check_rate_limit(self, method: str, params: JSON) -> float:
        """Return 0 to go ahead, or seconds to wait; keeps per-channel stats even when limits are off."""
        now = self._clock()
        if method == "chat.postMessage":
            channel = self._resolve_channel(params.get("channel"))
            if channel is None:
                return 0.0  # the handler answers channel_not_found
            bucket = self._post_buckets.setdefault(
                channel, _Gcra(self.post_message_rate, self.post_message_burst)
            )
            stats = self._channel_stats.setdefault(channel, _ChannelStats())
            wait = bucket.take(now)
            if wait > 0:
                stats.over_limit += 1
                if self.rate_limits_enabled:
                    stats.limited += 1
                    self._rate_limited_count += 1
                    return wait
            stats.posted += 1
            stats.accepted_at.append(now)
            return 0.0
        tier = METHOD_TIERS.get(method)
        if tier is None or not (self.tier_limits_enabled and self.rate_limits_enabled):
            return 0.0
        per_minute, burst = TIER_LIMITS[tier]
        wait = self._tier_buckets.setdefault(method, _Gcra(per_minute / 60.0, burst)).take(now)
        if wait > 0:
            self._rate_limited_count += 1
        return wait

    def _methods(self) -> dict[str, Callable[[JSON], JSON]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }

    def _auth_test(self, params: JSON) -> JSON:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_domain,
            "user": self._users.get(self.bot_user_id, "likeness"),
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.api_app_id,
            "is_enterprise_install": False,
        }

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

    def _channel_param(self, params: JSON, key: str = "channel") -> str:
        channel = self._resolve_channel(params.get(key))
        if channel is None:
            raise _SlackError("channel_not_found")
        return channel

    def _content(self, params: JSON, *, required: bool) -> tuple[str | None, list[JSON] | None]:
        """Read text and blocks, validating them as far as Slack's cheap checks go."""
        text = params.get("text")
        blocks = self._json_param(params, "blocks", "invalid_blocks_format")
        if blocks is not None:
            if not isinstance(blocks, list) or len(blocks) > _MAX_BLOCKS:
                raise _SlackError("invalid_blocks")
            if not all(isinstance(b, dict) and "type" in b for b in blocks):
                raise _SlackError("invalid_blocks")
        if required and not text and not blocks and not params.get("attachments"):
            raise _SlackError("no_text")
        if text is not None and len(str(text)) > _MAX_TEXT:
            raise _SlackError("msg_too_long")
        return (str(text) if text is not None else None), blocks

    @staticmethod
    def _json_param(params: JSON, key: str, error: str) -> Any:
        value = params.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise _SlackError(error) from exc
        return value

    def _new_ts(self) -> str:
        # Slack's ts is unique per channel; keeping it strictly increasing globally is simpler.
        micros = max(int(time.time() * 1_000_000), self._last_ts_micros + 1)
        self._last_ts_micros = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _root_for(self, channel: str, thread_ts: Any) -> _Message | None:
        if not thread_ts:
            return None
        msg = self._by_ts.get((channel, str(thread_ts)))
        if msg is None:
            # Real Slack may accept an unknown thread_ts silently; failing loudly catches app bugs.
            raise _SlackError("thread_not_found")
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
    ) -> _Message:
        root = self._root_for(channel, thread_ts)
        msg = _Message(
            channel=channel,
            ts=self._new_ts(),
            text=text,
            blocks=blocks or [],
            user=self.bot_user_id,
            bot_id=self.bot_id,
            app_id=self.api_app_id,
            team=self.team_id,
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

    def _chat_post_message(self, params: JSON) -> JSON:
        channel = self._channel_param(params)
        text, blocks = self._content(params, required=True)
        msg = self._post(
            channel,
            text or "",
            blocks,
            thread_ts=params.get("thread_ts"),
            reply_broadcast=_flag(params.get("reply_broadcast", False)),
            attachments=self._json_param(params, "attachments", "invalid_attachments"),
            metadata=self._json_param(params, "metadata", "invalid_metadata"),
        )
        return {"channel": channel, "ts": msg.ts, "message": self._slack_json(msg)}

    def _edit(self, msg: _Message, text: str | None, blocks: list[JSON] | None) -> None:
        """Change a message, keeping its earlier versions in ``edits`` (Slack keeps none; tests want them)."""
        now_ts = self._new_ts()
        msg.edits.append({"text": msg.text, "blocks": copy.deepcopy(msg.blocks), "replaced_at": now_ts})
        if text is not None:
            msg.text = text
        # As in Slack, leaving blocks out keeps the old ones; an empty list removes them.
        if blocks is not None:
            msg.blocks = blocks
        msg.edited = {"user": self.bot_user_id, "ts": now_ts}

    def _chat_update(self, params: JSON) -> JSON:
        channel = self._channel_param(params)
        msg = self._by_ts.get((channel, str(params.get("ts", ""))))
        if msg is None or msg.deleted:
            raise _SlackError("message_not_found")
        text, blocks = self._content(params, required=True)
        self._edit(msg, text, blocks)
        return {"channel": channel, "ts": msg.ts, "text": msg.text, "message": self._slack_json(msg)}

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

    def _chat_post_ephemeral(self, params: JSON) -> JSON:
        channel = self._channel_param(params)
        user = str(params.get("user") or "")
        if user not in self._users:
            # Slack's answer when the user cannot see the channel; unknown users cannot either.
            raise _SlackError("user_not_in_channel")
        text, blocks = self._content(params, required=True)
        entry = self._ephemeral(
            channel, user, text or "", blocks, thread_ts=params.get("thread_ts"), source="chat.postEphemeral"
        )
        return {"message_ts": entry["message_ts"]}

    def _views_open(self, params: JSON) -> JSON:
        trigger_id = str(params.get("trigger_id") or "")
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise _SlackError("invalid_trigger_id")
        issued, user_id, used = trigger
        if used:
            raise _SlackError("exchanged_trigger_id")
        if self._clock() - issued > self.trigger_ttl:
            raise _SlackError("expired_trigger_id")
        view = self._view_param(params)
        if view.get("type") != "modal":
            raise _SlackError("invalid_arguments")
        self._triggers[trigger_id] = (issued, user_id, True)
        view_id = _new_id("V")
        stored = self._complete_view(view, view_id)
        self._views[view_id] = _View(view_id, user_id, stored)
        return {"view": copy.deepcopy(stored)}

    def _views_update(self, params: JSON) -> JSON:
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        current = self._views.get(str(view_id)) if view_id else None
        if current is None and external_id:
            current = next(
                (v for v in self._views.values() if v.view.get("external_id") == external_id), None
            )
        if current is None:
            raise _SlackError("not_found")
        if params.get("hash") and params["hash"] != current.view.get("hash"):
            raise _SlackError("hash_conflict")
        current.view = self._complete_view(self._view_param(params), current.id)
        return {"view": copy.deepcopy(current.view)}

    def _view_param(self, params: JSON) -> JSON:
        view = self._json_param(params, "view", "invalid_arguments")
        if not isinstance(view, dict) or "type" not in view:
            raise _SlackError("invalid_arguments")
        return view

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
                "team_id": self.team_id,
                "app_id": self.api_app_id,
                "bot_id": self.bot_id,
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

    def _files_get_upload_url(self, params: JSON) -> JSON:
        filename = params.get("filename")
        try:
            length = int(params.get("length", ""))
        except ValueError as exc:
            raise _SlackError("invalid_arguments") from exc
        if not filename or length < 0:
            raise _SlackError("invalid_arguments")
        key = secrets.token_urlsafe(16)
        file = _File(id=_new_id("F"), name=str(filename), length=length, created=time.time(), upload_key=key)
        self._files[file.id] = file
        self._uploads[key] = file.id
        return {"upload_url": f"{self.url}/upload/v1/{key}", "file_id": file.id}

    def _files_complete_upload(self, params: JSON) -> JSON:
        items = self._json_param(params, "files", "invalid_arguments")
        if not isinstance(items, list) or not items:
            raise _SlackError("invalid_arguments")
        files: list[_File] = []
        for item in items:
            file = self._files.get(str(item.get("id"))) if isinstance(item, dict) else None
            if file is None or file.data is None:
                raise _SlackError("file_not_found")
            files.append(file)
        # slack_sdk sends channel_id for one channel, "channels" (comma separated) for several.
        channel_arg = params.get("channel_id") or str(params.get("channels") or "").split(",")[0]
        channel = self._resolve_channel(channel_arg) if channel_arg else None
        if channel_arg and channel is None:
            raise _SlackError("channel_not_found")
        for item, file in zip(items, files, strict=True):
            file.title = str(item.get("title") or file.name)
        if channel is not None:
            msg = self._post(
                channel,
                str(params.get("initial_comment") or ""),
                None,
                thread_ts=params.get("thread_ts"),
                file_ids=[f.id for f in files],
            )
            for file in files:
                file.channel, file.thread_ts, file.message_ts = channel, msg.thread_ts, msg.ts
        return {"files": [f.slack_json(self.url, self.bot_user_id) for f in files]}

    async def _handle_upload(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        file_id = self._uploads.get(key)
        params: JSON = {"file_id": file_id}
        faulted = await self._apply_fault(request, "upload", params)
        if faulted is not None:
            return faulted
        if file_id is None:
            self._record("upload", params, 404, "unknown upload url")
            return web.Response(status=404, text="unknown upload url")
        if request.content_type.startswith("multipart/"):
            data = await self._first_multipart_file(request)
        else:
            data = await request.read()
        file = self._files[file_id]
        file.data = data
        params["length"] = len(data)
        text = f"OK - {len(data)}"
        self._record("upload", params, 200, text)
        return web.Response(text=text)

    @staticmethod
    async def _first_multipart_file(request: web.Request) -> bytes:
        reader = await request.multipart()
        fallback = b""
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            data = await part.read(decode=True)
            if part.filename or part.name in {"file", "filename"}:
                return bytes(data)
            fallback = fallback or bytes(data)
        return fallback

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.removeprefix("Bearer ").strip(), self.bot_token):
            return web.Response(status=403, text="invalid_auth")
        file = self._files.get(request.match_info["file_id"])
        if file is None or file.data is None:
            return web.Response(status=404, text="file_not_found")
        return web.Response(body=file.data, content_type=file.mimetype)

    # ------------------------------------------------------------------ views into state

    def _file_jsons(self, msg: _Message) -> list[JSON]:
        base = self.url if self._url else ""
        return [self._files[f].slack_json(base, self.bot_user_id) for f in msg.file_ids if f in self._files]

    def _slack_json(self, msg: _Message) -> JSON:
        return msg.slack_json(self._file_jsons(msg))

    def _message_dict(self, msg: _Message) -> JSON:
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
        return {"id": user_id, "username": name, "name": name, "team_id": self.team_id}

    def _new_trigger(self, user_id: str) -> str:
        trigger_id = f"{int(time.time())}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        self._triggers[trigger_id] = (self._clock(), user_id, False)
        return trigger_id

    def _new_response_url(self, channel: str, user_id: str, message_ts: str | None) -> str:
        key = secrets.token_urlsafe(18)
        self._hooks[key] = _Hook(channel, user_id, message_ts)
        return f"{self.url}/response/{key}"

    def _team_json(self) -> JSON:
        return {"id": self.team_id, "domain": self.team_domain}

    async def click(
        self,
        user_id: str,
        channel: str,
        message_ts: str,
        action_id: str,
        value: str | None = None,
        block_id: str | None = None,
        *,
        tamper: Tamper | None = None,
    ) -> AppResponse:
        """Press a button on a message (or an ephemeral) and send Slack's block_actions payload to the app.

        ``block_id`` and ``value`` default to those of the button found by ``action_id``.
        ``tamper`` sends the request with a wrong/missing signature or a stale timestamp.
        """
        channel_id = self._resolve_channel(channel)
        if channel_id is None:
            raise KeyError(f"unknown channel {channel!r}")
        msg = self._by_ts.get((channel_id, message_ts))
        ephemeral = next(
            (e for e in self._ephemerals if e["channel"] == channel_id and e["message_ts"] == message_ts),
            None,
        )
        if msg is None and ephemeral is None:
            raise KeyError(f"no message {message_ts} in {channel}")
        blocks = msg.blocks if msg is not None else cast(list[JSON], ephemeral["blocks"] if ephemeral else [])
        found_block, element = _find_element(blocks, action_id)
        action: JSON = {
            "action_id": action_id,
            "block_id": block_id or found_block or "",
            "type": element.get("type", "button") if element else "button",
            "action_ts": f"{time.time():.6f}",
        }
        button_value = value if value is not None else (element or {}).get("value")
        if button_value is not None:
            action["value"] = button_value
        if element and isinstance(element.get("text"), dict):
            action["text"] = copy.deepcopy(element["text"])
        container: JSON = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": msg is None,
        }
        if msg is not None and msg.thread_ts:
            container["thread_ts"] = msg.thread_ts
        payload: JSON = {
            "type": "block_actions",
            "user": self._user_json(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "container": container,
            "trigger_id": self._new_trigger(user_id),
            "team": self._team_json(),
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": self._channels[channel_id]},
            "state": {"values": {}},
            "response_url": self._new_response_url(channel_id, user_id, message_ts),
            "actions": [action],
        }
        if msg is not None:
            payload["message"] = self._slack_json(msg)
        return await self._send_to_app("block_actions", self._payload_body(payload), tamper)

    async def submit_view(
        self, user_id: str, view_id: str, values: dict[str, Any], *, tamper: Tamper | None = None
    ) -> AppResponse:
        """Submit an open modal with input values and apply the app's ``response_action``.

        ``values`` maps block_id or action_id to a value (a string, an option value, a list for
        multi-selects), or block_id to ``{action_id: value}``; a dict with "type" is used verbatim.
        """
        stored = self._views.get(view_id)
        if stored is None or not stored.open:
            raise KeyError(f"no open view {view_id}")
        if stored.user_id != user_id:
            raise PermissionError(f"view {view_id} was opened by {stored.user_id}, not {user_id}")
        view = copy.deepcopy(stored.view)
        view["state"] = {"values": _state_values(view, values)}
        payload: JSON = {
            "type": "view_submission",
            "team": self._team_json(),
            "user": self._user_json(user_id),
            "api_app_id": self.api_app_id,
            "token": self.verification_token,
            "trigger_id": self._new_trigger(user_id),
            "view": view,
            "response_urls": [],
            "enterprise": None,
            "is_enterprise_install": False,
        }
        answer = await self._send_to_app("view_submission", self._payload_body(payload), tamper)
        if answer.status == 200:
            self._apply_view_answer(stored, answer)
        return answer

    def _apply_view_answer(self, stored: _View, answer: AppResponse) -> None:
        """Do what Slack does with the app's answer to a submission: close, show errors, update, push."""
        try:
            body = answer.json()
        except json.JSONDecodeError:
            body = None
        action = body.get("response_action") if isinstance(body, dict) else None
        stored.submissions += 1
        if action == "errors":
            stored.errors = cast(JSON, body)["errors"]
        elif action == "update":
            stored.view = self._complete_view(cast(JSON, body)["view"], stored.id)
            stored.errors = None
        elif action == "push":
            pushed_id = _new_id("V")
            self._views[pushed_id] = _View(
                pushed_id, stored.user_id, self._complete_view(cast(JSON, body)["view"], pushed_id)
            )
        elif action == "clear":
            for v in self._views.values():
                if v.user_id == stored.user_id:
                    v.open = False
        else:
            stored.open = False
            stored.errors = None
        self._touch()

    async def slash_command(
        self,
        user_id: str,
        channel: str,
        command: str = "/likeness",
        text: str = "",
        *,
        tamper: Tamper | None = None,
    ) -> AppResponse:
        """Type a slash command in a channel; a non-empty answer is shown as Slack shows it."""
        channel_id = self._resolve_channel(channel)
        if channel_id is None:
            raise KeyError(f"unknown channel {channel!r}")
        user = self._user_json(user_id)
        fields = {
            "token": self.verification_token,
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": self._channels[channel_id],
            "user_id": user_id,
            "user_name": user["name"],
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self._new_response_url(channel_id, user_id, None),
            "trigger_id": self._new_trigger(user_id),
        }
        answer = await self._send_to_app("slash_command", urllib.parse.urlencode(fields), tamper)
        if answer.status == 200 and answer.body.strip():
            try:
                reply = answer.json()
            except json.JSONDecodeError:
                reply = {"text": answer.body}
            if isinstance(reply, dict):
                self._show_reply(channel_id, user_id, None, reply, source="slash_command")
        return answer

    async def replay_last(self) -> AppResponse:
        """Send the last request to the app again, byte for byte and with the same headers."""
        if self._last_sent is None:
            raise RuntimeError("nothing sent yet")
        kind, body, headers = self._last_sent
        return await self._post_to_app(kind, body, dict(headers))

    @staticmethod
    def _payload_body(payload: JSON) -> str:
        return urllib.parse.urlencode({"payload": json.dumps(payload)})

    async def _send_to_app(self, kind: str, body: str, tamper: Tamper | None) -> AppResponse:
        if tamper not in (None, "bad_signature", "stale_timestamp", "missing_signature"):
            raise ValueError(f"unknown tamper {tamper!r}")
        timestamp = int(time.time())
        if tamper == "stale_timestamp":
            timestamp -= _STALE_BY_SECONDS
        signature = sign_request(self.signing_secret, str(timestamp), body)
        if tamper == "bad_signature":
            signature = sign_request(self.signing_secret + "-wrong", str(timestamp), body)
        headers = {"Content-Type": _FORM, "X-Slack-Request-Timestamp": str(timestamp)}
        if tamper != "missing_signature":
            headers["X-Slack-Signature"] = signature
        self._last_sent = (kind, body, headers)
        return await self._post_to_app(kind, body, dict(headers))

    async def _post_to_app(self, kind: str, body: str, headers: dict[str, str]) -> AppResponse:
        if not self.app_url:
            raise RuntimeError("app_url is not set")
        if self._session is None:
            raise RuntimeError("SlackSimulator is not started")
        record: JSON = {"kind": kind, "url": self.app_url, "body": body, "headers": headers}
        try:
            async with asyncio.timeout(self.app_timeout):
                async with self._session.post(self.app_url, data=body.encode(), headers=headers) as resp:
                    answer = AppResponse(resp.status, await resp.text(), dict(resp.headers))
        except TimeoutError:
            # Slack stops waiting after 3 s and shows the user an error; the app sees nothing of it.
            answer = AppResponse(0, "", {}, timed_out=True)
        record.update({"status": answer.status, "answer": answer.body, "timed_out": answer.timed_out})
        self._sent.append(record)
        self._touch()
        return answer

    def _show_reply(
        self, channel: str, user_id: str, message_ts: str | None, reply: JSON, *, source: str
    ) -> None:
        """Act on a message sent to a response_url or returned to a slash command, as Slack does."""
        text = str(reply.get("text") or "")
        blocks = reply.get("blocks") if isinstance(reply.get("blocks"), list) else None
        original = self._by_ts.get((channel, message_ts)) if message_ts else None
        original_ephemeral = next(
            (e for e in self._ephemerals if e["channel"] == channel and e["message_ts"] == message_ts), None
        )
        if _flag(reply.get("delete_original", False)):
            if original is not None:
                original.deleted = True
            elif original_ephemeral is not None:
                self._ephemerals.remove(original_ephemeral)
        elif _flag(reply.get("replace_original", False)):
            if original is not None:
                self._edit(original, text, blocks)
            elif original_ephemeral is not None:
                original_ephemeral.update({"text": text, "blocks": blocks or []})
        elif reply.get("response_type") == "in_channel":
            self._post(channel, text, blocks, thread_ts=reply.get("thread_ts"))
        else:
            self._ephemeral(channel, user_id, text, blocks, thread_ts=reply.get("thread_ts"), source=source)
        self._touch()

    async def _handle_response_url(self, request: web.Request) -> web.StreamResponse:
        hook = self._hooks.get(request.match_info["key"])
        try:
            body = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            body = None
        params = body if isinstance(body, dict) else {"raw": await request.text()}
        faulted = await self._apply_fault(request, "response_url", params)
        if faulted is not None:
            return faulted
        # Slack allows five uses of a response_url.
        if hook is None or hook.uses >= 5:
            answer: JSON = {"ok": False, "error": "expired_url"}
            self._record("response_url", params, 404, answer)
            return web.json_response(answer, status=404)
        if not isinstance(body, dict):
            answer = {"ok": False, "error": "invalid_payload"}
            self._record("response_url", params, 400, answer)
            return web.json_response(answer, status=400)
        hook.uses += 1
        self._show_reply(hook.channel, hook.user_id, hook.message_ts, body, source="response_url")
        answer = {"ok": True}
        self._record("response_url", params, 200, answer)
        return web.json_response(answer)

    # ------------------------------------------------------------------ control API

    def _control_routes(self) -> list[tuple[str, str, Callable[[web.Request], Any]]]:
        """JSON endpoints for the browser sandbox and subprocess use (unauthenticated: bind to localhost)."""
        return [
            ("GET", "/control/channels", self._c_channels),
            ("POST", "/control/channels", self._c_add_channel),
            ("POST", "/control/users", self._c_add_user),
            ("GET", "/control/messages", self._c_messages),
            ("GET", "/control/calls", self._c_calls),
            ("GET", "/control/ephemerals", self._c_ephemerals),
            ("GET", "/control/views", self._c_views),
            ("GET", "/control/files", self._c_files),
            ("GET", "/control/files/{file_id}", self._c_file_bytes),
            ("GET", "/control/sent", self._c_sent),
            ("GET", "/control/stats", self._c_stats),
            ("GET", "/control/faults", self._c_faults),
            ("POST", "/control/faults", self._c_inject),
            ("DELETE", "/control/faults", self._c_clear_faults),
            ("POST", "/control/click", self._c_click),
            ("POST", "/control/submit_view", self._c_submit_view),
            ("POST", "/control/slash_command", self._c_slash_command),
            ("POST", "/control/config", self._c_config),
            ("POST", "/control/reset", self._c_reset),
        ]

    @staticmethod
    async def _body(request: web.Request) -> JSON:
        try:
            body = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError as exc:
            raise web.HTTPBadRequest(text=json.dumps({"error": "invalid JSON"})) from exc
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text=json.dumps({"error": "expected a JSON object"}))
        return body

    @staticmethod
    def _bad(error: str) -> web.Response:
        return web.json_response({"error": error}, status=400)

    async def _c_channels(self, request: web.Request) -> web.Response:
        return web.json_response([{"id": cid, "name": name} for cid, name in self._channels.items()])

    async def _c_add_channel(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self.add_channel(str(body["id"]), str(body.get("name") or body["id"]))
        return web.json_response({"ok": True})

    async def _c_add_user(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        self.add_user(str(body["id"]), str(body.get("name") or body["id"]))
        return web.json_response({"ok": True})

    async def _c_messages(self, request: web.Request) -> web.Response:
        channel = request.query.get("channel")
        if channel is None:
            return web.json_response({cid: self.messages(cid) for cid in self._channels})
        try:
            return web.json_response(self.messages(channel))
        except KeyError as exc:
            return self._bad(str(exc))

    async def _c_calls(self, request: web.Request) -> web.Response:
        calls = self.calls(request.query.get("method"))
        limit = int(request.query.get("limit", "0") or 0)
        return web.json_response(calls[-limit:] if limit else calls)

    async def _c_ephemerals(self, request: web.Request) -> web.Response:
        return web.json_response(self.ephemerals(request.query.get("channel"), request.query.get("user")))

    async def _c_views(self, request: web.Request) -> web.Response:
        return web.json_response(self.views())

    async def _c_files(self, request: web.Request) -> web.Response:
        return web.json_response(self.files(request.query.get("channel")))

    async def _c_file_bytes(self, request: web.Request) -> web.Response:
        file = self._files.get(request.match_info["file_id"])
        if file is None or file.data is None:
            return web.json_response({"error": "file_not_found"}, status=404)
        return web.Response(body=file.data, content_type=file.mimetype)

    async def _c_sent(self, request: web.Request) -> web.Response:
        return web.json_response(self.sent_to_app())

    async def _c_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"rate_limited_count": self.rate_limited_count, "channels": self.rate_limit_stats()}
        )

    async def _c_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults())

    async def _c_inject(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            self.inject(
                str(body["kind"]),
                count=int(body.get("count", 1)),
                methods=body.get("methods"),
                delay=float(body.get("delay", 0.0)),
                retry_after=int(body.get("retry_after", 1)),
            )
        except (KeyError, ValueError) as exc:
            return self._bad(str(exc))
        return web.json_response({"ok": True, "faults": self.faults()})

    async def _c_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"ok": True})

    @staticmethod
    def _answer_json(answer: AppResponse) -> JSON:
        return {"status": answer.status, "body": answer.body, "timed_out": answer.timed_out}

    async def _c_click(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            answer = await self.click(
                str(body["user_id"]),
                str(body["channel"]),
                str(body["message_ts"]),
                str(body["action_id"]),
                value=body.get("value"),
                block_id=body.get("block_id"),
                tamper=body.get("tamper"),
            )
        except (KeyError, ValueError, RuntimeError) as exc:
            return self._bad(str(exc))
        return web.json_response(self._answer_json(answer))

    async def _c_submit_view(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            answer = await self.submit_view(
                str(body["user_id"]),
                str(body["view_id"]),
                dict(body.get("values") or {}),
                tamper=body.get("tamper"),
            )
        except (KeyError, ValueError, RuntimeError, PermissionError) as exc:
            return self._bad(str(exc))
        return web.json_response(self._answer_json(answer))

    async def _c_slash_command(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            answer = await self.slash_command(
                str(body["user_id"]),
                str(body["channel"]),
                command=str(body.get("command") or "/likeness"),
                text=str(body.get("text") or ""),
                tamper=body.get("tamper"),
            )
        except (KeyError, ValueError, RuntimeError) as exc:
            return self._bad(str(exc))
        return web.json_response(self._answer_json(answer))

    async def _c_config(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if "app_url" in body:
            self.app_url = body["app_url"] or None
        for key in ("rate_limits_enabled", "tier_limits_enabled"):
            if key in body:
                setattr(self, key, bool(body[key]))
        if "latency" in body:
            self.latency = float(body["latency"])
        return web.json_response(
            {
                "app_url": self.app_url,
                "rate_limits_enabled": self.rate_limits_enabled,
                "tier_limits_enabled": self.tier_limits_enabled,
                "latency": self.latency,
            }
        )

    async def _c_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


def _call_summary(call: JSON) -> str:
    answer = call["answer"]
    error = answer.get("error", "") if isinstance(answer, dict) else ""
    return f"{call['method']} -> {call['status']} {error}".rstrip()


def _find_element(blocks: list[JSON], action_id: str) -> tuple[str | None, JSON | None]:
    """The block_id and element carrying ``action_id`` in actions, section accessories or inputs."""
    for block in blocks:
        elements = list(block.get("elements") or [])
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        for element in elements:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block.get("block_id"), element
    return None, None


def _option(element: JSON, value: Any) -> JSON:
    for option in element.get("options") or []:
        if option.get("value") == value:
            return copy.deepcopy(cast(JSON, option))
    return {"text": {"type": "plain_text", "text": str(value)}, "value": str(value)}


_SINGLE_SELECTIONS = {
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
    "users_select": "selected_user",
    "conversations_select": "selected_conversation",
    "channels_select": "selected_channel",
    "multi_users_select": "selected_users",
    "multi_conversations_select": "selected_conversations",
    "multi_channels_select": "selected_channels",
}


def _element_state(element: JSON, value: Any) -> JSON:
    """One element's entry in state.values, shaped as Slack sends it for that element type."""
    kind = str(element.get("type", "plain_text_input"))
    if isinstance(value, dict) and "type" in value:
        return copy.deepcopy(value)
    if kind in {"static_select", "external_select", "radio_buttons"}:
        return {"type": kind, "selected_option": _option(element, value) if value is not None else None}
    if kind in {"multi_static_select", "multi_external_select", "checkboxes"}:
        chosen = value if isinstance(value, list) else ([] if value is None else [value])
        return {"type": kind, "selected_options": [_option(element, v) for v in chosen]}
    if kind in _SINGLE_SELECTIONS:
        return {"type": kind, _SINGLE_SELECTIONS[kind]: value}
    return {"type": kind, "value": None if value is None else str(value)}


def _state_values(view: JSON, values: dict[str, Any]) -> JSON:
    """Build ``view.state.values`` for every input block: the given values, None where left empty."""
    inputs: dict[str, tuple[str, JSON]] = {}  # block_id -> (action_id, element)
    for block in view.get("blocks", []):
        element = block.get("element")
        if block.get("type") == "input" and isinstance(element, dict):
            inputs[block["block_id"]] = (element["action_id"], element)
    state: JSON = {bid: {aid: _element_state(el, None)} for bid, (aid, el) in inputs.items()}
    by_action = {aid: bid for bid, (aid, _) in inputs.items()}
    for key, value in values.items():
        if key in inputs and isinstance(value, dict) and "type" not in value:
            for action_id, inner in value.items():
                state[key][action_id] = _element_state(inputs[key][1], inner)
        elif key in inputs:
            action_id, element = inputs[key]
            state[key][action_id] = _element_state(element, value)
        elif key in by_action:
            block_id = by_action[key]
            state[block_id][key] = _element_state(inputs[block_id][1], value)
        else:
            raise KeyError(f"no input block or action {key!r} in view {view.get('id')}")
    return state


# ---------------------------------------------------------------------- command line


def _pairs(specs: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for spec in specs:
        ident, _, name = spec.partition(":")
        out.append((ident, name or ident))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the simulator until SIGINT/SIGTERM: ``python -m sandbox.slack_api --port 8082 ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.slack_api", description="Serve the Slack Web API simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--token", default=os.environ.get("SLACK_BOT_TOKEN", "xoxb-sandbox"))
    parser.add_argument(
        "--signing-secret", default=os.environ.get("SLACK_SIGNING_SECRET", "sandbox-signing-secret")
    )
    parser.add_argument(
        "--app-url", default=None, help="where to send clicks, e.g. http://127.0.0.1:8080/slack/events"
    )
    parser.add_argument("--team-id", default="T0SANDBOX")
    parser.add_argument("--bot-user-id", default="U0LIKENESS")
    parser.add_argument("--channel", action="append", default=[], metavar="ID:NAME")
    parser.add_argument("--user", action="append", default=[], metavar="ID:NAME")
    parser.add_argument("--no-rate-limits", action="store_true")
    parser.add_argument("--tier-limits", action="store_true")
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))


async def _serve(args: argparse.Namespace) -> None:
    sim = SlackSimulator(
        bot_token=args.token,
        signing_secret=args.signing_secret,
        team_id=args.team_id,
        bot_user_id=args.bot_user_id,
        app_url=args.app_url,
        rate_limits_enabled=not args.no_rate_limits,
        tier_limits_enabled=args.tier_limits,
        latency=args.latency,
    )
    for cid, name in _pairs(args.channel):
        sim.add_channel(cid, name)
    for uid, name in _pairs(args.user):
        sim.add_user(uid, name)
    await sim.start(args.host, args.port)
    print(f"Slack simulator on {sim.url} (Web API base {sim.api_base_url})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


if __name__ == "__main__":
    main()
