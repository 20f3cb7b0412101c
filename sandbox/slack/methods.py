"""The Web API methods the service uses (auth, chat, views), answered as Slack answers them, with
its rate limits and the faults injected."""

from __future__ import annotations

import asyncio
import copy
import json
import math
from collections.abc import Callable

from aiohttp import web

from sandbox.slack.rules import (
    JSON,
    MAX_BLOCKS,
    MAX_TEXT,
    METHOD_TIERS,
    TIER_LIMITS,
    SlackError,
    flag,
    new_id,
)
from sandbox.slack.state import ChannelStats, View
from sandbox.slack.world import SlackWorld


class SlackWebApi(SlackWorld):
    """Answers ``/api/<method>`` calls."""

    async def _apply_fault(self, request: web.Request, method: str, params: JSON) -> web.Response | None:
        """Delay and/or answer with the next matching fault; None means carry on normally."""
        fault = self._faults.take(method)
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

    async def _read_params(self, request: web.Request) -> JSON:
        """Merge query string, form and JSON body, as Slack accepts all three (slack_sdk uses each)."""
        params: JSON = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError as exc:
                raise SlackError("invalid_json") from exc
            if not isinstance(body, dict):
                raise SlackError("invalid_json")
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
        except SlackError as exc:
            answer: JSON = {"ok": False, "error": exc.code}
            self._record(method, {}, 200, answer)
            return web.json_response(answer)
        token = self._token_of(request, params)
        faulted = await self._apply_fault(request, method, params)
        if faulted is not None:
            return faulted
        team = self._team_of_token(token) if token else None
        # Slack distinguishes "no token" from "wrong token"; both come back as HTTP 200.
        if method == "oauth.v2.access":
            answer = self._oauth_access(request, params)
        elif not token:
            answer = {"ok": False, "error": "not_authed"}
        elif team is None:
            answer = {"ok": False, "error": "invalid_auth"}
        else:
            self._acting = team
            wait = self._check_rate_limit(method, params)
            if wait > 0:
                retry_after = max(1, math.ceil(wait))
                answer = {"ok": False, "error": "ratelimited"}
                self._record(method, params, 429, answer)
                return web.json_response(answer, status=429, headers={"Retry-After": str(retry_after)})
            handler = self._methods().get(method)
            try:
                if handler is None:
                    raise SlackError("unknown_method")
                answer = {"ok": True, **handler(params)}
            except SlackError as exc:
                answer = {"ok": False, "error": exc.code}
            finally:
                self._acting = None
        self._record(method, params, 200, answer)
        return web.json_response(answer)

    def _check_rate_limit(self, method: str, params: JSON) -> float:
        """Return 0 to go ahead, or seconds to wait; keeps per-channel stats even when limits are off."""
        now = self._clock()
        if method == "chat.postMessage":
            channel = self._resolve_channel(params.get("channel"))
            if channel is None:
                return 0.0  # the handler answers channel_not_found
            bucket = self._buckets.get(("post", channel), self.post_message_rate, self.post_message_burst)
            stats = self._channel_stats.setdefault(channel, ChannelStats())
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
        wait = self._buckets.get(("tier", method), per_minute / 60.0, burst).take(now)
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
        }

    def _oauth_access(self, request: web.Request, params: JSON) -> JSON:
        """oauth.v2.access; the OAuth part of the simulator (sandbox.slack.oauth) answers it."""
        return {"ok": False, "error": "unknown_method"}

    def _auth_test(self, params: JSON) -> JSON:
        here = self._here
        return {
            "url": f"https://{here.domain}.slack.com/",
            "team": here.domain,
            "user": self._users.get(here.bot_user_id, "likeness"),
            "team_id": here.id,
            "user_id": here.bot_user_id,
            "bot_id": here.bot_id,
            "app_id": self.api_app_id,
            "is_enterprise_install": False,
        }

    def _channel_param(self, params: JSON, key: str = "channel") -> str:
        channel = self._resolve_channel(params.get(key))
        # Another workspace's channel is not found, as in Slack.
        if channel is None or self.team_of_channel(channel).id != self._here.id:
            raise SlackError("channel_not_found")
        return channel

    def _content(self, params: JSON, *, required: bool) -> tuple[str | None, list[JSON] | None]:
        """Read text and blocks, validating them as far as Slack's cheap checks go."""
        text = params.get("text")
        blocks = self._json_param(params, "blocks", "invalid_blocks_format")
        if blocks is not None:
            if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
                raise SlackError("invalid_blocks")
            if not all(isinstance(b, dict) and "type" in b for b in blocks):
                raise SlackError("invalid_blocks")
        if required and not text and not blocks and not params.get("attachments"):
            raise SlackError("no_text")
        if text is not None and len(str(text)) > MAX_TEXT:
            raise SlackError("msg_too_long")
        return (str(text) if text is not None else None), blocks

    def _chat_post_message(self, params: JSON) -> JSON:
        channel = self._channel_param(params)
        text, blocks = self._content(params, required=True)
        msg = self._post(
            channel,
            text or "",
            blocks,
            thread_ts=params.get("thread_ts"),
            reply_broadcast=flag(params.get("reply_broadcast", False)),
            attachments=self._json_param(params, "attachments", "invalid_attachments"),
            metadata=self._json_param(params, "metadata", "invalid_metadata"),
        )
        return {"channel": channel, "ts": msg.ts, "message": self._slack_json(msg)}

    def _chat_update(self, params: JSON) -> JSON:
        channel = self._channel_param(params)
        msg = self._by_ts.get((channel, str(params.get("ts", ""))))
        if msg is None or msg.deleted:
            raise SlackError("message_not_found")
        text, blocks = self._content(params, required=True)
        self._edit(msg, text, blocks)
        return {"channel": channel, "ts": msg.ts, "text": msg.text, "message": self._slack_json(msg)}

    def _chat_post_ephemeral(self, params: JSON) -> JSON:
        channel = self._channel_param(params)
        user = str(params.get("user") or "")
        if user not in self._users:
            # Slack's answer when the user cannot see the channel; unknown users cannot either.
            raise SlackError("user_not_in_channel")
        text, blocks = self._content(params, required=True)
        entry = self._ephemeral(
            channel, user, text or "", blocks, thread_ts=params.get("thread_ts"), source="chat.postEphemeral"
        )
        return {"message_ts": entry["message_ts"]}

    def _views_open(self, params: JSON) -> JSON:
        trigger_id = str(params.get("trigger_id") or "")
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise SlackError("invalid_trigger_id")
        issued, user_id, used = trigger
        if used:
            raise SlackError("exchanged_trigger_id")
        if self._clock() - issued > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        view = self._view_param(params)
        if view.get("type") != "modal":
            raise SlackError("invalid_arguments")
        self._triggers[trigger_id] = (issued, user_id, True)
        view_id = new_id("V")
        stored = self._complete_view(view, view_id)
        self._views[view_id] = View(view_id, user_id, stored)
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
            raise SlackError("not_found")
        if params.get("hash") and params["hash"] != current.view.get("hash"):
            raise SlackError("hash_conflict")
        current.view = self._complete_view(self._view_param(params), current.id)
        return {"view": copy.deepcopy(current.view)}

    def _view_param(self, params: JSON) -> JSON:
        view = self._json_param(params, "view", "invalid_arguments")
        if not isinstance(view, dict) or "type" not in view:
            raise SlackError("invalid_arguments")
        return view
