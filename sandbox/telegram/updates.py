"""How what users do reaches the bot: users writing and tapping make updates, which the bot
fetches with getUpdates long polls or receives on its webhook."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
import time

import aiohttp

from sandbox.telegram.html import command_entities
from sandbox.telegram.params import Params
from sandbox.telegram.rules import (
    POLL_TERMINATED,
    POLL_WHILE_WEBHOOK,
    SECRET_TOKEN_HEADER,
    ApiError,
    JSONDict,
    bad,
)
from sandbox.telegram.state import Body, BotAccount, CallbackQuery, Message, Webhook
from sandbox.telegram.world import TelegramWorld

log = logging.getLogger("sandbox.telegram")


class Updates(TelegramWorld):
    """Users acting, and their updates travelling to the bot."""

    # ---------------------------------------------------------------- acting as a user

    async def send_text(
        self,
        bot_token: str,
        user_id: int,
        text: str,
        chat_id: int | None = None,
        reply_to_message_id: int | None = None,
    ) -> int:
        """The user writes ``text`` to the bot (private chat unless ``chat_id`` names a group);
        returns the update id. ``/start abc`` and other commands carry a bot_command entity.

        ``reply_to_message_id`` makes it a reply (Telegram's Reply, as a ForceReply prompt invites)
        to a message of that chat; the update then carries it as ``reply_to_message``.
        """
        bot = self._bot(bot_token)
        self._user(user_id)
        target = user_id if chat_id is None else chat_id
        original: Message | None = None
        if reply_to_message_id is not None:
            original = self._chats.get((bot.token, target), {}).get(reply_to_message_id)
            if original is None:
                raise LookupError(f"no message {reply_to_message_id} in chat {target} to reply to")
        if target > 0:
            if target != user_id:
                raise ValueError(f"user {user_id} cannot write in the private chat of user {target}")
            # Writing to a bot is what "starting" it means; it also lifts a block.
            self._started.add((bot.token, user_id))
            self._blocked.discard((bot.token, user_id))
        else:
            group = self._groups.get(target)
            if group is None:
                raise KeyError(f"unknown group {target}; add_group() it first")
            if user_id not in group.member_ids:
                raise ValueError(f"user {user_id} is not a member of group {target}")
        body = Body(text=text, html=None, entities=command_entities(text), parse_mode=None)
        message = self._post(
            bot, target, "text", body, user_id=user_id, reply_to_message_id=reply_to_message_id
        )
        payload = self._message_api(message)
        if original is not None:
            payload["reply_to_message"] = self._message_api(original)
        return self._enqueue_update(bot, {"message": payload})

    async def tap(
        self,
        bot_token: str,
        user_id: int,
        chat_id: int,
        message_id: int,
        callback_data: str | None = None,
        button_text: str | None = None,
    ) -> str:
        """The user taps a button of a bot message; returns the callback query id.

        Give ``button_text`` to tap a button that is really on the message (its callback data is
        used), or ``callback_data`` to send arbitrary data, as a forged client could. The tapping
        user may differ from the chat's owner.
        """
        bot = self._bot(bot_token)
        user = self._user(user_id)
        message = self._chats.get((bot.token, chat_id), {}).get(message_id)
        if message is None or not message.from_bot:
            raise LookupError(f"bot {bot.username} has no message {message_id} in chat {chat_id}")
        if button_text is not None:
            buttons = [b for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]
            found = [b for b in buttons if b.get("text") == button_text and "callback_data" in b]
            if not found:
                shown = [b.get("text") for b in buttons]
                raise LookupError(
                    f"message {message_id} in chat {chat_id} has no callback button {button_text!r}; "
                    f"its buttons: {shown}"
                )
            data = found[0]["callback_data"]
        elif callback_data is not None:
            data = callback_data
        else:
            raise ValueError("tap() needs button_text or callback_data")
        self._query_seq += 1
        query_id = str(4_000_000_000_000_000_000 + bot.id * 1_000_000 + self._query_seq)
        self._queries[query_id] = CallbackQuery(
            id=query_id,
            bot_token=bot.token,
            user_id=user_id,
            chat_id=chat_id,
            message_id=message_id,
            data=data,
            created=self._clock(),
        )
        query: JSONDict = {
            "id": query_id,
            "from": user.api(),
            "message": self._message_api(message),
            "chat_instance": str(abs(chat_id) * 7919 + bot.id),
            "data": data,
        }
        self._enqueue_update(bot, {"callback_query": query})
        return query_id

    def _enqueue_update(self, bot: BotAccount, payload: JSONDict) -> int:
        update = {"update_id": bot.next_update_id, **payload}
        bot.next_update_id += 1
        bot.pending.append(update)
        bot.update_log.append(copy.deepcopy(update))
        bot.wake.set()
        if bot.webhook is not None:
            self._ensure_webhook_worker(bot)
        self._changes.notify()
        return int(update["update_id"])

    # ---------------------------------------------------------------- getUpdates and webhook settings

    async def _get_updates(self, bot: BotAccount, params: Params) -> list[JSONDict]:
        if bot.webhook is not None:
            raise ApiError(409, POLL_WHILE_WEBHOOK)
        offset = params.get_int("offset")
        limit = min(max(params.get_int("limit") or 100, 1), 100)
        timeout = max(params.get_float("timeout") or 0.0, 0.0)
        if offset:
            # A positive offset confirms every earlier update; a negative one keeps only the last few.
            if offset > 0:
                bot.pending[:] = [u for u in bot.pending if u["update_id"] >= offset]
            else:
                del bot.pending[: max(len(bot.pending) + offset, 0)]
        # Only one poller per bot: a newer getUpdates ends an older one with 409, as in Telegram.
        bot.poll_generation += 1
        generation = bot.poll_generation
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        bot.active_polls += 1
        self._changes.notify()  # lets a test wait until the bot is really listening (is_polling)
        try:
            while True:
                changed = self._changes.event
                if bot.poll_generation != generation:
                    raise ApiError(409, POLL_WHILE_WEBHOOK if bot.webhook else POLL_TERMINATED)
                remaining = deadline - loop.time()
                if bot.pending or remaining <= 0 or self._stopping:
                    return copy.deepcopy(bot.pending[:limit])
                await self._changes.wait(changed, remaining)
        finally:
            bot.active_polls -= 1

    async def _set_webhook(self, bot: BotAccount, params: Params) -> bool:
        url = (params.get_str("url") or "").strip()
        if not url:
            return await self._delete_webhook(bot, params)
        if not url.startswith(("http://", "https://")):
            raise bad("bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443")
        if self.require_https_webhook and not url.startswith("https://"):
            raise bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get_str("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise bad("secret token contains unallowed characters")
        allowed = params.get_json("allowed_updates")
        if params.get_bool("drop_pending_updates"):
            bot.pending.clear()
        bot.webhook = Webhook(
            url=url,
            secret_token=secret or None,
            max_connections=params.get_int("max_connections") or 40,
            allowed_updates=allowed if isinstance(allowed, list) else None,
        )
        bot.poll_generation += 1  # a long poll in progress ends with 409
        bot.wake.set()
        self._ensure_webhook_worker(bot)
        return True

    async def _delete_webhook(self, bot: BotAccount, params: Params) -> bool:
        bot.webhook = None
        if params.get_bool("drop_pending_updates"):
            bot.pending.clear()
        bot.wake.set()
        return True

    async def _get_webhook_info(self, bot: BotAccount, params: Params) -> JSONDict:
        hook = bot.webhook
        info: JSONDict = {
            "url": hook.url if hook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.pending),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.allowed_updates is not None:
                info["allowed_updates"] = hook.allowed_updates
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        return info

    # ---------------------------------------------------------------- webhook delivery

    def _ensure_webhook_worker(self, bot: BotAccount) -> None:
        if self._stopping or self._session is None:
            return
        if bot.worker is None or bot.worker.done():
            bot.worker = asyncio.get_running_loop().create_task(
                self._deliver_webhook_updates(bot), name=f"telegram-sim-webhook-{bot.username}"
            )

    # How many connections the webhook's updates are spread over (Telegram opens up to the
    # webhook's max_connections, 40 by default); 1 posts them one after another on one connection.
    webhook_connections = 1

    async def _deliver_webhook_updates(self, bot: BotAccount) -> None:
        """Posts pending updates to the bot's webhook one at a time, retrying failures with backoff
        like Telegram does (an update is dropped only once the receiver answers 2xx)."""
        if self.webhook_connections > 1:
            await self._deliver_on_connections(bot)
            return
        failures = 0
        while not self._stopping:
            hook = bot.webhook
            if hook is None:
                return
            if not bot.pending:
                bot.wake.clear()
                await bot.wake.wait()
                continue
            update = bot.pending[0]
            status, error = await self._post_update(hook, update)
            self._deliveries.append(
                {
                    "time": time.time(),
                    "bot": bot.username,
                    "update_id": update["update_id"],
                    "url": hook.url,
                    "status": status,
                    "error": error,
                }
            )
            if error is None:
                failures = 0
                if bot.pending and bot.pending[0] is update:
                    bot.pending.pop(0)
                self._changes.notify()
                continue
            failures += 1
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            log.info("webhook delivery of update %s failed: %s", update["update_id"], error)
            self._changes.notify()
            delays = self.webhook_retry_delays
            await asyncio.sleep(delays[min(failures, len(delays)) - 1])

    async def _deliver_on_connections(self, bot: BotAccount) -> None:
        """Spreads the updates over several connections (update id modulo their number), each in
        order with its own retries, so several processes behind one webhook address each get some."""
        hook = bot.webhook
        if hook is None:
            return
        count = max(1, min(self.webhook_connections, hook.max_connections))
        wakes = [asyncio.Event() for _ in range(count)]
        sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for _ in range(count)]

        async def lane(number: int) -> None:
            failures = 0
            while not self._stopping and bot.webhook is hook:
                wakes[number].clear()
                mine = next((u for u in bot.pending if u["update_id"] % count == number), None)
                if mine is None:
                    await wakes[number].wait()
                    continue
                status, error = await self._post_update(hook, mine, sessions[number])
                self._deliveries.append(
                    {
                        "time": time.time(),
                        "bot": bot.username,
                        "update_id": mine["update_id"],
                        "url": hook.url,
                        "status": status,
                        "error": error,
                    }
                )
                self._changes.notify()
                if error is None:
                    failures = 0
                    bot.pending[:] = [u for u in bot.pending if u is not mine]
                    continue
                failures += 1
                hook.last_error_date = int(time.time())
                hook.last_error_message = error
                delays = self.webhook_retry_delays
                await asyncio.sleep(delays[min(failures, len(delays)) - 1])

        lanes = [asyncio.create_task(lane(n)) for n in range(count)]
        try:
            while not self._stopping and bot.webhook is hook:
                bot.wake.clear()
                for wake in wakes:
                    wake.set()
                await bot.wake.wait()
        finally:
            for task in lanes:
                task.cancel()
            await asyncio.gather(*lanes, return_exceptions=True)
            for session in sessions:
                await session.close()

    async def _post_update(
        self, hook: Webhook, update: JSONDict, session: aiohttp.ClientSession | None = None
    ) -> tuple[int | None, str | None]:
        session = session or self._session
        assert session is not None
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers[SECRET_TOKEN_HEADER] = hook.secret_token
        try:
            async with session.post(
                hook.url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return response.status, None
                return (
                    response.status,
                    f"Wrong response from the webhook: {response.status} {response.reason}",
                )
        except TimeoutError:
            return None, "Connection timed out"
        except aiohttp.ClientError as error:
            return None, f"Connection failed: {error.__class__.__name__}: {error}"
