"""Slack's side of the conversation with the app: signed button clicks, modal submissions and slash
commands sent to ``app_url``, and what Slack does with the app's answers and response_urls."""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from aiohttp import web

from sandbox.slack.blocks import find_element, state_values
from sandbox.slack.files import SlackFiles
from sandbox.slack.rules import FORM, JSON, STALE_BY_SECONDS, flag, new_id
from sandbox.slack.state import View

Tamper = Literal["bad_signature", "stale_timestamp", "missing_signature"]


def sign_request(signing_secret: str, timestamp: str, body: str) -> str:
    """Return Slack's request signature: ``v0=`` + hex HMAC-SHA256 over ``v0:{timestamp}:{body}``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


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


class AppRequests(SlackFiles):
    """Acting as Slack towards the app."""

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
        found_block, element = find_element(blocks, action_id)
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
            "team": self._team_json(channel_id),
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
        view["state"] = {"values": state_values(view, values)}
        payload: JSON = {
            "type": "view_submission",
            "team": self._team_json(self._view_channel(view)),
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

    def _apply_view_answer(self, stored: View, answer: AppResponse) -> None:
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
            pushed_id = new_id("V")
            self._views[pushed_id] = View(
                pushed_id, stored.user_id, self._complete_view(cast(JSON, body)["view"], pushed_id)
            )
        elif action == "clear":
            for v in self._views.values():
                if v.user_id == stored.user_id:
                    v.open = False
        else:
            stored.open = False
            stored.errors = None
        self._changes.notify()

    async def slash_command(
        self,
        user_id: str,
        channel: str,
        command: str = "/likeness",
        text: str = "",
        *,
        tamper: Tamper | None = None,
        team_id: str | None = None,
    ) -> AppResponse:
        """Type a slash command in a channel; a non-empty answer is shown as Slack shows it.

        ``team_id`` claims another workspace than the channel's (what no real Slack would send).
        """
        channel_id = self._resolve_channel(channel)
        if channel_id is None:
            raise KeyError(f"unknown channel {channel!r}")
        user = self._user_json(user_id)
        team = self.team(team_id) if team_id else self.team_of_channel(channel_id)
        fields = {
            "token": self.verification_token,
            "team_id": team.id,
            "team_domain": team.domain,
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

    def _view_channel(self, view: JSON) -> str | None:
        """The channel a modal came from, when its private metadata names one of ours."""
        metadata = str(view.get("private_metadata") or "")
        return next((cid for cid in self._channels if cid in metadata), None)

    @staticmethod
    def _payload_body(payload: JSON) -> str:
        return urllib.parse.urlencode({"payload": json.dumps(payload)})

    async def _send_to_app(
        self, kind: str, body: str, tamper: Tamper | None, content_type: str = FORM
    ) -> AppResponse:
        if tamper not in (None, "bad_signature", "stale_timestamp", "missing_signature"):
            raise ValueError(f"unknown tamper {tamper!r}")
        timestamp = int(time.time())
        if tamper == "stale_timestamp":
            timestamp -= STALE_BY_SECONDS
        signature = sign_request(self.signing_secret, str(timestamp), body)
        if tamper == "bad_signature":
            signature = sign_request(self.signing_secret + "-wrong", str(timestamp), body)
        headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": str(timestamp)}
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
        self._changes.notify()
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
        if flag(reply.get("delete_original", False)):
            if original is not None:
                original.deleted = True
            elif original_ephemeral is not None:
                self._ephemerals.remove(original_ephemeral)
        elif flag(reply.get("replace_original", False)):
            if original is not None:
                self._edit(original, text, blocks)
            elif original_ephemeral is not None:
                original_ephemeral.update({"text": text, "blocks": blocks or []})
        elif reply.get("response_type") == "in_channel":
            self._post(channel, text, blocks, thread_ts=reply.get("thread_ts"))
        else:
            self._ephemeral(channel, user_id, text, blocks, thread_ts=reply.get("thread_ts"), source=source)
        self._changes.notify()

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
