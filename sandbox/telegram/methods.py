"""The Bot API methods the service uses, answered as Telegram answers them, with its rules
(flood limits, "message is not modified", callback data limits, HTML that must parse)."""

from __future__ import annotations

import asyncio
import copy
import re
import time
from collections.abc import Callable
from dataclasses import replace

from aiohttp import web

from sandbox.telegram.files import File
from sandbox.telegram.html import HtmlParseError, parse_html, trim
from sandbox.telegram.params import Params, read_params, validate_keyboard
from sandbox.telegram.rules import (
    BLOCKED,
    CANT_INITIATE,
    MAX_CALLBACK_ANSWER_LENGTH,
    MAX_CAPTION_LENGTH,
    MAX_COMMANDS,
    MAX_MESSAGE_LENGTH,
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    ApiError,
    Dropped,
    JSONDict,
    bad,
)
from sandbox.telegram.state import Body, BotAccount, Message
from sandbox.telegram.updates import Updates
from sandbox.telegram.world import ApiMethod


class BotApi(Updates):
    """Answers ``/bot<token>/<method>`` calls."""

    def _api_methods(self) -> dict[str, ApiMethod]:
        return {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "editMessageCaption": self._edit_message_caption,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendPhoto": self._send_photo,
            "sendDocument": self._send_document,
            "sendVideo": self._send_video,
            "sendAudio": self._send_audio,
            "getFile": self._get_file,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendChatAction": self._send_chat_action,
            "close": self._close,
            "logOut": self._log_out,
        }

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        started = time.time()
        token = request.match_info["token"]
        bot = self._bots.get(token)
        method = self._method_names.get(request.match_info["method"].lower(), request.match_info["method"])
        params = Params({}, {})
        fault_kind: str | None = None
        refunds: list[Callable[[], None]] = []
        try:
            if bot is None:
                raise ApiError(401, "Unauthorized")
            if method not in self._methods:
                raise ApiError(404, "Not Found: method not found")
            params = await read_params(request)
            fault = self._faults.take(method)
            if fault is not None:
                fault_kind = fault.kind
                if fault.kind == "drop":
                    raise Dropped
                if fault.kind == "latency":
                    await asyncio.sleep(fault.delay)
                elif fault.kind == "429":
                    retry = fault.retry_after
                    raise ApiError(429, f"Too Many Requests: retry after {retry}", {"retry_after": retry})
                elif fault.kind == "500":
                    raise ApiError(500, "Internal Server Error")
                elif fault.kind == "502":
                    raise ApiError(502, "Bad Gateway")
                elif fault.kind == "404":  # a Bot API server that lacks the method
                    raise ApiError(404, "Not Found: method not found")
            try:
                chat_id: int | None = params.chat_id()
            except ApiError:
                chat_id = None
            refunds = self._flood.check(bot.token, method, chat_id, self._clock())
            result = await self._methods[method](bot, params)
            status, body = 200, {"ok": True, "result": result}
        except ApiError as error:
            for refund in refunds:
                refund()
            status, body = error.code, error.body()
        except Dropped:
            self._record(bot, method, params, None, "connection dropped (injected fault)", "drop", started)
            # Closing the transport makes the client see the connection end without any answer;
            # cancelling is how aiohttp lets a handler finish without writing a response.
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError from None
        except asyncio.CancelledError:
            # The client went away (e.g. PTB cancelling its long poll on shutdown).
            self._record(bot, method, params, None, "cancelled: client closed the connection", None, started)
            raise
        self._record(
            bot, method, params, status, body.get("description"), fault_kind, started, body.get("parameters")
        )
        return web.json_response(body, status=status)

    def _record(
        self,
        bot: BotAccount | None,
        method: str,
        params: Params,
        status: int | None,
        description: str | None,
        fault: str | None,
        started: float,
        parameters: JSONDict | None = None,
    ) -> None:
        self._call_seq += 1
        self._calls.append(
            {
                "seq": self._call_seq,
                "time": started,
                "duration": time.time() - started,
                "bot": bot.username if bot else None,
                "method": method,
                "params": params.recorded(),
                "status": status,
                "ok": status == 200,
                "description": description,
                "parameters": parameters,
                "fault": fault,
            }
        )
        self._changes.notify()

    async def _handle_file_download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] not in self._bots:
            return web.json_response(ApiError(401, "Unauthorized").body(), status=401)
        file = self._files.by_path(request.match_info["path"])
        if file is not None:
            return web.Response(body=file.data, content_type=file.mime_type or "application/octet-stream")
        return web.json_response(ApiError(404, "Not Found").body(), status=404)

    # ---------------------------------------------------------------- Bot API methods

    async def _get_me(self, bot: BotAccount, params: Params) -> JSONDict:
        return {
            **bot.user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _check_recipient(self, bot: BotAccount, params: Params) -> int:
        chat_id = params.chat_id()
        if chat_id > 0:
            if chat_id not in self._users:
                raise bad("chat not found")
            if (bot.token, chat_id) in self._blocked:
                raise ApiError(403, BLOCKED)
            if (bot.token, chat_id) not in self._started:
                raise ApiError(403, CANT_INITIATE)
        elif chat_id not in self._groups:
            raise bad("chat not found")
        return chat_id

    def _text_body(self, params: Params, too_long: str) -> Body:
        """A message's ``text`` with its entities, refused when empty before or after parsing."""
        raw = params.get_str("text") or ""
        if not raw.strip():
            raise bad("message text is empty")
        body = self._parse_body(raw, params, "entities", MAX_MESSAGE_LENGTH, too_long)
        if not body.text:
            raise bad("message text is empty")
        return body

    def _parse_body(self, raw: str, params: Params, entities_param: str, limit: int, too_long: str) -> Body:
        mode = (params.get_str("parse_mode") or "").strip()
        html: str | None = None
        if mode.lower() == "html":
            try:
                text, entities = parse_html(raw)
            except HtmlParseError as error:
                raise bad(str(error)) from None
            html = raw
        elif mode == "":
            text = raw
            given = params.get_json(entities_param)
            if given is not None and not isinstance(given, list):
                raise bad(f"can't parse {entities_param} JSON object")
            entities = copy.deepcopy(given or [])
        elif mode.lower() in ("markdown", "markdownv2"):
            # Not interpreted: kept verbatim so tests can still read it.
            text, entities = raw, []
        else:
            raise bad(f"unsupported parse_mode {mode!r}")
        text, entities = trim(text, entities)
        if len(text) > limit:
            raise bad(too_long)
        return Body(text=text, html=html, entities=entities, parse_mode=mode or None)

    def _parse_markup(self, params: Params, inline_only: bool = False) -> JSONDict | None:
        if not params.has("reply_markup"):
            return None
        markup = params.get_json("reply_markup")
        if not isinstance(markup, dict):
            raise bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            return validate_keyboard(markup["inline_keyboard"])
        if inline_only:
            raise bad("inline keyboard expected")
        if any(key in markup for key in ("keyboard", "remove_keyboard", "force_reply")):
            return copy.deepcopy(markup)
        raise bad("can't parse reply keyboard markup JSON object")

    def _new_bot_message(
        self,
        bot: BotAccount,
        chat_id: int,
        params: Params,
        kind: str,
        body: Body,
        markup: JSONDict | None,
        file: File | None = None,
    ) -> JSONDict:
        reply_to = params.get_int("reply_to_message_id")
        reply_parameters = params.get_json("reply_parameters")
        if reply_to is None and isinstance(reply_parameters, dict):
            reply_to = reply_parameters.get("message_id")
        message = self._post(
            bot, chat_id, kind, body, reply_markup=markup, file=file, reply_to_message_id=reply_to
        )
        return self._message_api(message)

    async def _send_message(self, bot: BotAccount, params: Params) -> JSONDict:
        chat_id = self._check_recipient(bot, params)
        body = self._text_body(params, "message is too long")
        markup = self._parse_markup(params)
        return self._new_bot_message(bot, chat_id, params, "text", body, markup)

    def _message_to_edit(self, bot: BotAccount, params: Params) -> Message:
        if params.has("inline_message_id"):
            raise bad("MESSAGE_ID_INVALID")  # inline messages are not simulated
        chat_id = params.chat_id()
        if chat_id not in self._users and chat_id not in self._groups:
            raise bad("chat not found")
        message_id = params.get_int("message_id")
        if message_id is None:
            raise bad("message identifier is not specified")
        message = self._chats.get((bot.token, chat_id), {}).get(message_id)
        if message is None:
            raise bad("message to edit not found")
        if not message.from_bot:
            raise bad("message can't be edited")
        return message

    def _apply_edit(self, message: Message, body: Body, markup: JSONDict | None) -> JSONDict:
        if (body.text, body.entities, markup) == (
            message.body.text,
            message.body.entities,
            message.reply_markup,
        ):
            raise ApiError(400, NOT_MODIFIED)
        message.history.append(message.version())
        message.body = body
        message.reply_markup = markup
        message.edit_date = int(time.time())
        self._changes.notify()
        return self._message_api(message)

    async def _edit_message_text(self, bot: BotAccount, params: Params) -> JSONDict:
        message = self._message_to_edit(bot, params)
        if message.kind != "text":
            raise bad("there is no text in the message to edit")
        body = self._text_body(params, "MESSAGE_TOO_LONG")
        # Like Telegram: an edit without reply_markup removes the inline keyboard.
        return self._apply_edit(message, body, self._parse_markup(params, inline_only=True))

    async def _edit_message_caption(self, bot: BotAccount, params: Params) -> JSONDict:
        message = self._message_to_edit(bot, params)
        if message.kind == "text":
            raise bad("there is no caption in the message to edit")
        body = self._parse_body(
            params.get_str("caption") or "",
            params,
            "caption_entities",
            MAX_CAPTION_LENGTH,
            "MESSAGE_TOO_LONG",
        )
        return self._apply_edit(message, body, self._parse_markup(params, inline_only=True))

    async def _edit_message_reply_markup(self, bot: BotAccount, params: Params) -> JSONDict:
        message = self._message_to_edit(bot, params)
        body = replace(message.body, entities=copy.deepcopy(message.body.entities))
        return self._apply_edit(message, body, self._parse_markup(params, inline_only=True))

    async def _delete_message(self, bot: BotAccount, params: Params) -> bool:
        chat_id = params.chat_id()
        message_id = params.get_int("message_id")
        chat = self._chats.get((bot.token, chat_id), {})
        if message_id is None or message_id not in chat:
            raise bad("message to delete not found")
        if chat_id > 0 and not chat[message_id].from_bot:
            raise bad("message can't be deleted for everyone")
        del chat[message_id]
        return True

    async def _answer_callback_query(self, bot: BotAccount, params: Params) -> bool:
        query = self._queries.get(params.get_str("callback_query_id") or "")
        if query is None or query.bot_token != bot.token or query.answer is not None:
            raise ApiError(400, QUERY_TOO_OLD)
        if self.callback_query_ttl is not None and self._clock() - query.created > self.callback_query_ttl:
            raise ApiError(400, QUERY_TOO_OLD)
        text = params.get_str("text")
        if text is not None and len(text) > MAX_CALLBACK_ANSWER_LENGTH:
            raise bad("MESSAGE_TOO_LONG")
        query.answer = {
            "text": text,
            "show_alert": params.get_bool("show_alert"),
            "url": params.get_str("url"),
            "cache_time": params.get_int("cache_time"),
            "time": time.time(),
        }
        return True

    async def _send_media(self, bot: BotAccount, params: Params, kind: str) -> JSONDict:
        chat_id = self._check_recipient(bot, params)
        file = self._files.from_request(params.uploads, params.values, kind, kind)
        body = self._parse_body(
            params.get_str("caption") or "",
            params,
            "caption_entities",
            MAX_CAPTION_LENGTH,
            "message caption is too long",
        )
        markup = self._parse_markup(params)
        return self._new_bot_message(bot, chat_id, params, kind, body, markup, file)

    async def _send_photo(self, bot: BotAccount, params: Params) -> JSONDict:
        return await self._send_media(bot, params, "photo")

    async def _send_document(self, bot: BotAccount, params: Params) -> JSONDict:
        return await self._send_media(bot, params, "document")

    async def _send_video(self, bot: BotAccount, params: Params) -> JSONDict:
        return await self._send_media(bot, params, "video")

    async def _send_audio(self, bot: BotAccount, params: Params) -> JSONDict:
        return await self._send_media(bot, params, "audio")

    async def _get_file(self, bot: BotAccount, params: Params) -> JSONDict:
        file = self._files.get(params.get_str("file_id") or "")
        if file is None:
            raise bad("invalid file_id")
        return {
            "file_id": file.file_id,
            "file_unique_id": file.file_unique_id,
            "file_size": len(file.data),
            "file_path": file.file_path,
        }

    def _commands_key_from(self, params: Params) -> tuple[str, str]:
        scope = params.get_json("scope")
        if scope is not None and not isinstance(scope, dict):
            raise bad("can't parse BotCommandScope JSON object")
        language = params.get_str("language_code") or ""
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad("invalid language code specified")
        return self._commands_key(scope, language)

    async def _set_my_commands(self, bot: BotAccount, params: Params) -> bool:
        commands = params.get_json("commands")
        if not isinstance(commands, list):
            raise bad("can't parse commands JSON object")
        if len(commands) > MAX_COMMANDS:
            raise bad("too many commands specified")
        stored: list[JSONDict] = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad("can't parse BotCommand JSON object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name.lstrip("/")):
                raise bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise bad("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": name.lstrip("/"), "description": description})
        key = self._commands_key_from(params)
        if stored:
            bot.commands[key] = stored
        else:
            bot.commands.pop(key, None)
        return True

    async def _get_my_commands(self, bot: BotAccount, params: Params) -> list[JSONDict]:
        return copy.deepcopy(bot.commands.get(self._commands_key_from(params), []))

    async def _delete_my_commands(self, bot: BotAccount, params: Params) -> bool:
        bot.commands.pop(self._commands_key_from(params), None)
        return True

    async def _send_chat_action(self, bot: BotAccount, params: Params) -> bool:
        self._check_recipient(bot, params)
        return True

    async def _close(self, bot: BotAccount, params: Params) -> bool:
        return True

    async def _log_out(self, bot: BotAccount, params: Params) -> bool:
        return True
