"""The simulator's JSON control API under ``/control/``, for the browser sandbox and subprocess use
(unauthenticated: bind to localhost)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from sandbox.sim.control import NotAnObject, control, fault_request, json_object
from sandbox.slack.interactions import AppResponse
from sandbox.slack.oauth import SlackOAuth
from sandbox.slack.rules import JSON


def _texts(body: JSON, *names: str) -> dict[str, str]:
    """The body's fields `names` as text, by name; KeyError names the first that is missing."""
    return {name: str(body[name]) for name in names}


class ControlRoutes(SlackOAuth):
    """The control API's handlers, each marked with its route."""

    @staticmethod
    async def _body(request: web.Request) -> JSON:
        try:
            return await json_object(request)
        except NotAnObject:
            raise web.HTTPBadRequest(text=json.dumps({"error": "expected a JSON object"})) from None
        except ValueError as exc:
            raise web.HTTPBadRequest(text=json.dumps({"error": "invalid JSON"})) from exc

    @staticmethod
    def _bad(error: str) -> web.Response:
        return web.json_response({"error": error}, status=400)

    @control("GET", "/control/channels")
    async def _c_channels(self, request: web.Request) -> web.Response:
        return web.json_response([{"id": cid, "name": name} for cid, name in self._channels.items()])

    @control("POST", "/control/channels")
    async def _c_add_channel(self, request: web.Request) -> web.Response:
        return await self._add_named(request, self.add_channel)

    @control("POST", "/control/users")
    async def _c_add_user(self, request: web.Request) -> web.Response:
        return await self._add_named(request, self.add_user)

    async def _add_named(
        self, request: web.Request, add: Callable[[str, str, str | None], None]
    ) -> web.Response:
        """Adds the body's `id` named `name` (else the id) through `add`, in its `team_id` if given."""
        body = await self._body(request)
        team = body.get("team_id")
        if team is not None and str(team) not in self._teams:
            return self._bad(f"no workspace {team}")
        add(str(body["id"]), str(body.get("name") or body["id"]), str(team) if team else None)
        return web.json_response({"ok": True})

    @control("POST", "/control/workspaces")
    async def _c_add_workspace(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if not body.get("id") or not body.get("domain"):
            return self._bad("id and domain are required")
        self.add_workspace(str(body["id"]), str(body["domain"]))
        return web.json_response({"ok": True})

    @control("POST", "/control/sign_in")
    async def _c_sign_in(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            channel = body.get("channel_id")
            self.sign_in(
                str(body["team_id"]),
                str(body["user_id"]),
                str(channel) if channel else None,
                deny=bool(body.get("deny")),
            )
        except KeyError as exc:
            return self._bad(f"missing or unknown {exc}")
        return web.json_response({"ok": True})

    @control("POST", "/control/uninstall")
    async def _c_uninstall(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        team = str(body.get("team_id") or "")
        if team not in self._teams:
            return self._bad(f"no workspace {team}")
        answer = await (self.revoke_tokens(team) if body.get("revoke_only") else self.uninstall(team))
        return web.json_response({"ok": True, "status": answer.status})

    @control("GET", "/control/messages")
    async def _c_messages(self, request: web.Request) -> web.Response:
        channel = request.query.get("channel")
        if channel is None:
            return web.json_response({cid: self.messages(cid) for cid in self._channels})
        try:
            return web.json_response(self.messages(channel))
        except KeyError as exc:
            return self._bad(str(exc))

    @control("GET", "/control/calls")
    async def _c_calls(self, request: web.Request) -> web.Response:
        calls = self.calls(request.query.get("method"))
        limit = int(request.query.get("limit", "0") or 0)
        return web.json_response(calls[-limit:] if limit else calls)

    @control("GET", "/control/ephemerals")
    async def _c_ephemerals(self, request: web.Request) -> web.Response:
        return web.json_response(self.ephemerals(request.query.get("channel"), request.query.get("user")))

    @control("GET", "/control/views")
    async def _c_views(self, request: web.Request) -> web.Response:
        return web.json_response(self.views())

    @control("GET", "/control/files")
    async def _c_files(self, request: web.Request) -> web.Response:
        return web.json_response(self.files(request.query.get("channel")))

    @control("GET", "/control/files/{file_id}")
    async def _c_file_bytes(self, request: web.Request) -> web.Response:
        file = self._files.get(request.match_info["file_id"])
        if file is None or file.data is None:
            return web.json_response({"error": "file_not_found"}, status=404)
        return web.Response(body=file.data, content_type=file.mimetype)

    @control("GET", "/control/sent")
    async def _c_sent(self, request: web.Request) -> web.Response:
        return web.json_response(self.sent_to_app())

    @control("GET", "/control/stats")
    async def _c_stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"rate_limited_count": self.rate_limited_count, "channels": self.rate_limit_stats()}
        )

    @control("GET", "/control/faults")
    async def _c_faults(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults())

    @control("POST", "/control/faults")
    async def _c_inject(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        try:
            self.inject(**fault_request(body))
        except (KeyError, ValueError) as exc:
            return self._bad(str(exc))
        return web.json_response({"ok": True, "faults": self.faults()})

    @control("DELETE", "/control/faults")
    async def _c_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"ok": True})

    @staticmethod
    def _answer_json(answer: AppResponse) -> JSON:
        return {"status": answer.status, "body": answer.body, "timed_out": answer.timed_out}

    async def _act(
        self,
        request: web.Request,
        act: Callable[[JSON], Awaitable[AppResponse]],
        refused: tuple[type[Exception], ...] = (KeyError, ValueError, RuntimeError),
    ) -> web.Response:
        """Acts as Slack towards the app as the body says; the app's answer, or 400 when refused."""
        body = await self._body(request)
        try:
            answer = await act(body)
        except refused as exc:
            return self._bad(str(exc))
        return web.json_response(self._answer_json(answer))

    @control("POST", "/control/click")
    async def _c_click(self, request: web.Request) -> web.Response:
        return await self._act(
            request,
            lambda body: self.click(
                **_texts(body, "user_id", "channel", "message_ts", "action_id"),
                value=body.get("value"),
                block_id=body.get("block_id"),
                tamper=body.get("tamper"),
            ),
        )

    @control("POST", "/control/submit_view")
    async def _c_submit_view(self, request: web.Request) -> web.Response:
        return await self._act(
            request,
            lambda body: self.submit_view(
                **_texts(body, "user_id", "view_id"),
                values=dict(body.get("values") or {}),
                tamper=body.get("tamper"),
            ),
            (KeyError, ValueError, RuntimeError, PermissionError),
        )

    @control("POST", "/control/slash_command")
    async def _c_slash_command(self, request: web.Request) -> web.Response:
        return await self._act(
            request,
            lambda body: self.slash_command(
                **_texts(body, "user_id", "channel"),
                command=str(body.get("command") or "/likeness"),
                text=str(body.get("text") or ""),
                tamper=body.get("tamper"),
            ),
        )

    @control("POST", "/control/config")
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

    @control("POST", "/control/reset")
    async def _c_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})
