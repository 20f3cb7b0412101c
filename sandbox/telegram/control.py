"""The simulator's JSON control API under ``/control/``, for the browser sandbox and for tests that
run the simulator as a subprocess."""

from __future__ import annotations

import contextlib
from dataclasses import asdict

from aiohttp import web

from sandbox.sim.control import control, fault_request, json_object, query_int
from sandbox.telegram.methods import BotApi


class ControlRoutes(BotApi):
    """The control API's handlers, each marked with its route."""

    @control("GET", "/control/state")
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
                "rate_limits": {**asdict(self.limits), "methods": sorted(self.limits.methods)},
                "rate_limited_count": self.rate_limited_count,
                "faults": [f.view() for f in self._faults],
            }
        )

    @control("GET", "/control/changes")
    async def _c_changes(self, request: web.Request) -> web.Response:
        """Long poll for the sandbox UI: answers once the state version passes ``after``."""
        after = query_int(request, "after") or 0
        timeout = float(request.query.get("timeout", "25"))
        with contextlib.suppress(TimeoutError):
            await self.wait_for(lambda: self.version > after or self._stopping, timeout=timeout)
        return web.json_response({"version": self.version})

    @control("POST", "/control/bots")
    async def _c_add_bot(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        self.add_bot(body["token"], body["username"], body.get("first_name"))
        return web.json_response({"ok": True})

    @control("POST", "/control/users")
    async def _c_add_user(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        self.add_user(
            int(body["user_id"]), body["first_name"], body.get("language_code", "en"), body.get("username")
        )
        return web.json_response({"ok": True})

    @control("POST", "/control/groups")
    async def _c_add_group(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        self.add_group(int(body["chat_id"]), body["title"], [int(i) for i in body.get("member_ids", [])])
        return web.json_response({"ok": True})

    @control("POST", "/control/block")
    async def _c_block(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        bot = self._default_bot(body.get("bot_token"))
        self.block_bot(bot.token, int(body["user_id"]), bool(body.get("blocked", True)))
        return web.json_response({"ok": True})

    @control("POST", "/control/send_text")
    async def _c_send_text(self, request: web.Request) -> web.Response:
        body = await json_object(request)
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

    @control("POST", "/control/tap")
    async def _c_tap(self, request: web.Request) -> web.Response:
        body = await json_object(request)
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

    @control("GET", "/control/messages")
    async def _c_messages(self, request: web.Request) -> web.Response:
        chat_id = query_int(request, "chat_id")
        if chat_id is None:
            raise ValueError("chat_id is required")
        include_user = request.query.get("include_user", "").lower() in ("1", "true", "yes")
        found = self.messages(chat_id, request.query.get("bot_token"), include_user=include_user)
        return web.json_response({"messages": found})

    @control("GET", "/control/calls")
    async def _c_calls(self, request: web.Request) -> web.Response:
        since = query_int(request, "since") or 0
        found = [c for c in self.calls(request.query.get("method")) if c["seq"] > since]
        return web.json_response({"calls": found})

    @control("GET", "/control/updates")
    async def _c_updates(self, request: web.Request) -> web.Response:
        return web.json_response({"updates": self.updates(request.query.get("bot_token"))})

    @control("GET", "/control/webhook_deliveries")
    async def _c_deliveries(self, request: web.Request) -> web.Response:
        return web.json_response({"deliveries": self.webhook_deliveries()})

    @control("GET", "/control/callback_answers/{query_id}")
    async def _c_callback_answer(self, request: web.Request) -> web.Response:
        return web.json_response({"answer": self.callback_answer(request.match_info["query_id"])})

    @control("GET", "/control/commands")
    async def _c_commands(self, request: web.Request) -> web.Response:
        commands = self.commands(request.query.get("language_code"), bot_token=request.query.get("bot_token"))
        return web.json_response({"commands": commands})

    @control("GET", "/control/rate_stats")
    async def _c_rate_stats(self, request: web.Request) -> web.Response:
        stats = {str(chat): view for chat, view in self.rate_stats().items()}
        return web.json_response({"rate_limited_count": self.rate_limited_count, "chats": stats})

    @control("POST", "/control/rate_limits")
    async def _c_rate_limits(self, request: web.Request) -> web.Response:
        limits = self.set_rate_limits(**await json_object(request))
        return web.json_response({**asdict(limits), "methods": sorted(limits.methods)})

    @control("POST", "/control/faults")
    async def _c_inject(self, request: web.Request) -> web.Response:
        body = await json_object(request)
        fault = self.inject(**fault_request(body))
        return web.json_response({"ok": True, "fault": fault.view()})

    @control("GET", "/control/faults")
    async def _c_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.view() for f in self._faults]})

    @control("DELETE", "/control/faults")
    async def _c_clear_faults(self, request: web.Request) -> web.Response:
        self.clear_faults()
        return web.json_response({"ok": True})

    @control("GET", "/control/files/{file_id}")
    async def _c_file(self, request: web.Request) -> web.Response:
        file = self._files.get(request.match_info["file_id"])
        if file is None:
            return web.json_response({"ok": False, "error": "unknown file id"}, status=404)
        return web.Response(body=file.data, content_type=file.mime_type or "application/octet-stream")

    @control("POST", "/control/reset")
    async def _c_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})
