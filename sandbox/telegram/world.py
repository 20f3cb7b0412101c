"""The state of the simulated Telegram and the ways to set it up and read it: bots, users, groups,
their chats, what the bots called, and waiting for any of it to change."""

from __future__ import annotations

import copy
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar, Unpack, cast

import aiohttp

from sandbox.sim.faults import Fault, FaultInjection, FaultQueue
from sandbox.sim.server import HttpServer
from sandbox.sim.waiting import Changes
from sandbox.telegram.files import File, FileStore
from sandbox.telegram.limits import FloodLimiter, RateLimits
from sandbox.telegram.params import Params
from sandbox.telegram.rules import FAULT_KINDS, JSONDict
from sandbox.telegram.state import Body, BotAccount, CallbackQuery, Group, Message, Parts, User, bot_id

T = TypeVar("T")
ApiMethod = Callable[[BotAccount, Params], Awaitable[Any]]


class TelegramWorld(FaultInjection):
    """What the simulator knows and remembers; :class:`sandbox.telegram.TelegramSimulator` documents
    the parameters."""

    def __init__(
        self,
        *,
        bots: Mapping[str, str] | None = None,
        limits: RateLimits | None = None,
        faults: Iterable[Fault] = (),
        webhook_retry_delays: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
        webhook_timeout: float = 10.0,
        require_https_webhook: bool = False,
        callback_query_ttl: float | None = None,
        call_history_limit: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        access_log: bool = False,
    ) -> None:
        self._methods = self._api_methods()
        # Telegram matches method names case-insensitively.
        self._method_names = {name.lower(): name for name in self._methods}
        self._flood = FloodLimiter(limits or RateLimits())
        self._faults = FaultQueue(FAULT_KINDS, check=self._check_fault)
        for fault in faults:
            self._faults.append(replace(fault))
        self.webhook_retry_delays = webhook_retry_delays or (1.0,)
        self.webhook_timeout = webhook_timeout
        self.require_https_webhook = require_https_webhook
        self.callback_query_ttl = callback_query_ttl
        self._clock = clock
        self._access_log = access_log

        self._bots: dict[str, BotAccount] = {}
        self._users: dict[int, User] = {}
        self._groups: dict[int, Group] = {}
        self._started: set[tuple[str, int]] = set()
        self._blocked: set[tuple[str, int]] = set()
        self._chats: dict[tuple[str, int], dict[int, Message]] = {}
        self._queries: dict[str, CallbackQuery] = {}
        self._files = FileStore()
        self._calls: deque[JSONDict] = deque(maxlen=call_history_limit)
        self._deliveries: list[JSONDict] = []
        self._call_seq = 0
        self._query_seq = 0
        self._message_seq = 0
        self._changes = Changes()
        self._stopping = False
        self._server = HttpServer("the simulator is not running; await start() first")
        self._session: aiohttp.ClientSession | None = None
        for token, username in (bots or {}).items():
            self.add_bot(token, username)

    def _api_methods(self) -> dict[str, ApiMethod]:
        """The Bot API methods by name; :class:`sandbox.telegram.methods.BotApi` has them."""
        return {}

    @property
    def version(self) -> int:
        """A number that grows with every change of state."""
        return self._changes.version

    @property
    def rate_limited_count(self) -> int:
        """How many calls the flood limits refused (injected 429 faults not included)."""
        return self._flood.rate_limited_count

    # ---------------------------------------------------------------- world set-up

    def add_bot(self, token: str, username: str, first_name: str | None = None) -> None:
        """Registers a bot token; calls with other tokens are answered 401."""
        if not token or "/" in token:
            raise ValueError(f"unusable bot token {token!r}")
        self._bots[token] = BotAccount(
            token=token, username=username.lstrip("@"), id=bot_id(token), first_name=first_name or username
        )
        self._changes.notify()

    def add_user(
        self, user_id: int, first_name: str, language_code: str = "en", username: str | None = None
    ) -> None:
        """Registers a Telegram user; their private chat with any bot has the same id."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        self._users[user_id] = User(user_id, first_name, language_code, username)
        self._changes.notify()

    def add_group(self, chat_id: int, title: str, member_ids: Iterable[int]) -> None:
        """Registers a group chat (negative id) with the given users as members; bots are members."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        members = set(member_ids)
        unknown = members - self._users.keys()
        if unknown:
            raise KeyError(f"unknown users {sorted(unknown)}; add_user() them first")
        self._groups[chat_id] = Group(chat_id, title, members)
        self._changes.notify()

    def mark_started(self, bot_token: str, user_id: int) -> None:
        """Records that the user pressed Start in the bot's chat earlier: the bot may write to them.

        Unlike ``send_text(..., "/start")`` it produces no update, so the bot sees no greeting to answer.
        """
        bot = self._bot(bot_token)
        self._user(user_id)
        self._started.add((bot.token, user_id))
        self._changes.notify()

    def block_bot(self, bot_token: str, user_id: int, blocked: bool = True) -> None:
        """Makes the user block (or unblock) the bot: sends to them then fail with 403."""
        bot = self._bot(bot_token)
        self._user(user_id)
        if blocked:
            self._blocked.add((bot.token, user_id))
        else:
            self._blocked.discard((bot.token, user_id))
        self._changes.notify()

    @property
    def limits(self) -> RateLimits:
        """Current flood limits."""
        return self._flood.limits

    @limits.setter
    def limits(self, limits: RateLimits) -> None:
        self._flood.limits = limits

    def set_rate_limits(self, **changes: Any) -> RateLimits:
        """Changes some flood-limit settings, e.g. ``set_rate_limits(enabled=False)``."""
        if "methods" in changes and changes["methods"] is not None:
            changes["methods"] = frozenset(changes["methods"])
        self.limits = replace(self.limits, **changes)
        return self.limits

    def reset(self) -> None:
        """Forgets everything that happened (messages, calls, updates, files, faults, counters, webhooks,
        commands, who started which bot); keeps the registered bots, users and groups."""
        for bot in self._bots.values():
            bot.pending.clear()
            bot.update_log.clear()
            bot.webhook = None
            bot.commands.clear()
            bot.next_message_id.clear()
            bot.wake.set()
        self._started.clear()
        self._blocked.clear()
        self._chats.clear()
        self._queries.clear()
        self._files.clear()
        self._calls.clear()
        self._deliveries.clear()
        self._flood.reset()
        self._faults.clear()
        self._changes.notify()

    # ---------------------------------------------------------------- acting as a user

    # ---------------------------------------------------------------- reading what the bot did

    def messages(
        self, chat_id: int, bot_token: str | None = None, include_user: bool = False
    ) -> list[JSONDict]:
        """Current state of the bot messages in a chat, oldest first (with the user's too if asked).

        Each has message_id, chat_id, bot, from_bot, kind, text (the caption for media), html (the
        raw HTML when sent with parse_mode HTML), entities, reply_markup, photo/document file info,
        edit_count, history (earlier versions), date and edit_date.
        """
        found: list[Message] = []
        for (token, chat), chat_messages in self._chats.items():
            if chat == chat_id and (bot_token is None or token == bot_token):
                found.extend(m for m in chat_messages.values() if m.from_bot or include_user)
        found.sort(key=lambda m: m.seq)
        return [self._message_view(m) for m in found]

    def message(self, chat_id: int, message_id: int, bot_token: str | None = None) -> JSONDict | None:
        """One message's current state, or None."""
        for (token, chat), chat_messages in self._chats.items():
            if chat == chat_id and (bot_token is None or token == bot_token) and message_id in chat_messages:
                return self._message_view(chat_messages[message_id])
        return None

    def calls(self, method: str | None = None, bot_token: str | None = None) -> list[JSONDict]:
        """Every recorded API call: seq, time, duration, bot, method, params, status (None when the
        connection ended without an answer), ok, description, parameters (e.g. retry_after), fault."""
        username = self._bots[bot_token].username if bot_token in self._bots else None
        return [
            copy.deepcopy(call)
            for call in self._calls
            if (method is None or call["method"] == method) and (bot_token is None or call["bot"] == username)
        ]

    def updates(self, bot_token: str | None = None) -> list[JSONDict]:
        """Every update produced for the bot so far, delivered or not."""
        return copy.deepcopy(self._default_bot(bot_token).update_log)

    def pending_updates(self, bot_token: str | None = None) -> list[JSONDict]:
        """Updates not yet confirmed by getUpdates or accepted by the webhook."""
        return copy.deepcopy(self._default_bot(bot_token).pending)

    def is_polling(self, bot_token: str | None = None) -> bool:
        """Whether a getUpdates long poll of the bot is waiting right now."""
        return self._default_bot(bot_token).active_polls > 0

    def webhook_deliveries(self) -> list[JSONDict]:
        """Every webhook delivery attempt: time, bot, update_id, url, status, error."""
        return copy.deepcopy(self._deliveries)

    def callback_answer(self, query_id: str) -> JSONDict | None:
        """How the bot answered a callback query (text, show_alert, url, cache_time), or None."""
        query = self._queries.get(query_id)
        return copy.deepcopy(query.answer) if query and query.answer is not None else None

    def commands(
        self, language_code: str | None = None, scope: JSONDict | None = None, bot_token: str | None = None
    ) -> list[JSONDict]:
        """The command list the bot set for a language (None: the default list) and scope."""
        bot = self._default_bot(bot_token)
        return copy.deepcopy(bot.commands.get(self._commands_key(scope, language_code), []))

    @staticmethod
    def _commands_key(scope: Any, language_code: str | None) -> tuple[str, str]:
        scope = scope if isinstance(scope, dict) and scope else {"type": "default"}
        return json.dumps(scope, sort_keys=True), language_code or ""

    def file_bytes(self, file_id: str) -> bytes:
        """The bytes the bot uploaded under this file id."""
        file = self._files.get(file_id)
        if file is None:
            raise KeyError(f"unknown file id {file_id!r}")
        return file.data

    def chat_stats(self, chat_id: int, bot_token: str | None = None) -> JSONDict:
        """Flood-limit statistics of one chat: accepted, rate_limited, max_in_1s, max_in_60s."""
        total = {"accepted": 0, "rate_limited": 0, "max_in_1s": 0, "max_in_60s": 0}
        for (token, chat), stats in self._flood.chat_stats.items():
            if chat == chat_id and (bot_token is None or token == bot_token):
                view = stats.view()
                for key in ("accepted", "rate_limited"):
                    total[key] += view[key]
                for key in ("max_in_1s", "max_in_60s"):
                    total[key] = max(total[key], view[key])
        return total

    def rate_stats(self) -> dict[int, JSONDict]:
        """Flood-limit statistics of every chat that saw counted calls."""
        return {chat: self.chat_stats(chat) for _token, chat in self._flood.chat_stats}

    # ---------------------------------------------------------------- synchronisation

    # The `timeout` argument is the documented interface tests use; asyncio.timeout would be clumsier.
    async def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Waits until ``predicate()`` returns something truthy and returns it.

        The predicate is re-checked whenever the simulator's state changes (a call, an update, a
        webhook delivery), so tests need no sleeps. Raises TimeoutError listing recent calls.
        """
        return await self._changes.wait_for(predicate, timeout, self._timeout_report)

    def _timeout_report(self, timeout: float) -> str:
        recent = list(self._calls)[-10:]
        lines = [f"condition still not met after {timeout}s; last {len(recent)} API calls:"]
        for call in recent:
            params = json.dumps(call["params"], ensure_ascii=False, default=str)
            if len(params) > 160:
                params = params[:157] + "..."
            lines.append(f"  #{call['seq']} {call['method']} -> {call['status']} {call['description'] or ''}")
            lines.append(f"      {params}")
        pending = {bot.username: len(bot.pending) for bot in self._bots.values()}
        lines.append(f"pending updates per bot: {pending}")
        return "\n".join(lines)

    # ---------------------------------------------------------------- fault injection

    @property
    def faults(self) -> list[Fault]:
        """Faults not yet consumed."""
        return self._faults.pending()

    def _check_fault(self, fault: Fault) -> None:
        if fault.retry_after < 1:
            raise ValueError("retry_after is a whole number of seconds >= 1")
        if fault.methods is not None:
            unknown = {m for m in fault.methods if m not in self._methods}
            if unknown:
                raise ValueError(f"unknown methods {sorted(unknown)} in fault")

    # ---------------------------------------------------------------- internals: lookups

    def _bot(self, token: str) -> BotAccount:
        bot = self._bots.get(token)
        if bot is None:
            raise KeyError("unknown bot token; add_bot() it first")
        return bot

    def _default_bot(self, token: str | None) -> BotAccount:
        if token is not None:
            return self._bot(token)
        if len(self._bots) == 1:
            return next(iter(self._bots.values()))
        raise ValueError(f"{len(self._bots)} bots are registered; say which one (bot_token)")

    def _user(self, user_id: int) -> User:
        user = self._users.get(user_id)
        if user is None:
            raise KeyError(f"unknown user {user_id}; add_user() them first")
        return user

    def _chat_api(self, chat_id: int) -> JSONDict:
        if chat_id > 0:
            user = self._users[chat_id]
            chat: JSONDict = {"id": chat_id, "type": "private", "first_name": user.first_name}
            if user.username:
                chat["username"] = user.username
            return chat
        group = self._groups[chat_id]
        kind = "supergroup" if chat_id <= -1_000_000_000_000 else "group"
        return {"id": chat_id, "type": kind, "title": group.title}

    def _next_message_id(self, bot: BotAccount, chat_id: int) -> int:
        number = bot.next_message_id.get(chat_id, 1)
        bot.next_message_id[chat_id] = number + 1
        return number

    def _post(self, bot: BotAccount, chat_id: int, kind: str, body: Body, **parts: Unpack[Parts]) -> Message:
        """Stores a new message of the chat, dated now: the bot's unless ``user_id`` wrote it."""
        message = Message(
            bot_token=bot.token,
            chat_id=chat_id,
            message_id=self._next_message_id(bot, chat_id),
            date=int(time.time()),
            from_bot=parts.get("user_id") is None,
            kind=kind,
            body=body,
            **parts,
        )
        self._message_seq += 1
        message.seq = self._message_seq
        self._chats.setdefault((message.bot_token, message.chat_id), {})[message.message_id] = message
        self._changes.notify()
        return message

    def _message_api(self, message: Message) -> JSONDict:
        bot = self._bots[message.bot_token]
        data: JSONDict = {
            "message_id": message.message_id,
            "from": bot.user() if message.from_bot else self._users[cast(int, message.user_id)].api(),
            "chat": self._chat_api(message.chat_id),
            "date": message.date,
        }
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.kind == "text":
            data["text"] = message.body.text
            if message.body.entities:
                data["entities"] = copy.deepcopy(message.body.entities)
        else:
            file = cast(File, message.file)
            if message.kind == "photo":
                data["photo"] = file.photo_sizes()
            elif message.kind in ("video", "audio"):
                data[message.kind] = file.media()
            else:
                data["document"] = file.document()
            if message.body.text:
                data["caption"] = message.body.text
                if message.body.entities:
                    data["caption_entities"] = copy.deepcopy(message.body.entities)
        if message.reply_markup is not None and "inline_keyboard" in message.reply_markup:
            data["reply_markup"] = copy.deepcopy(message.reply_markup)
        return data

    def _message_view(self, message: Message) -> JSONDict:
        return {
            "message_id": message.message_id,
            "chat_id": message.chat_id,
            "bot": self._bots[message.bot_token].username,
            "from_bot": message.from_bot,
            "from_user_id": message.user_id,
            "kind": message.kind,
            "text": message.body.text,
            "html": message.body.html,
            "parse_mode": message.body.parse_mode,
            "entities": copy.deepcopy(message.body.entities),
            "caption": message.body.text if message.kind != "text" else None,
            "reply_markup": copy.deepcopy(message.reply_markup),
            "photo": message.file.view() if message.file and message.kind == "photo" else None,
            "document": message.file.view() if message.file and message.kind == "document" else None,
            "video": message.file.view() if message.file and message.kind == "video" else None,
            "audio": message.file.view() if message.file and message.kind == "audio" else None,
            "reply_to_message_id": message.reply_to_message_id,
            "edit_count": len(message.history),
            "history": copy.deepcopy(message.history),
            "date": message.date,
            "edit_date": message.edit_date,
        }

    # ---------------------------------------------------------------- internals: HTTP
