"""Talks to Slack's Web API: board posts and edits, thread replies, ephemerals, modals, uploads.

`SlackSender` is the outbox's way out to Slack. It keeps to Slack's limits itself (about one
message per second per channel, chat.update at tier 3) instead of finding them by 429, and
maps every Slack answer onto the drainer's vocabulary: `RetryLater` for 429 (after its
Retry-After), 5xx, network trouble and fixable set-up problems; `Undeliverable` only for
what can never succeed (a channel it cannot reach is `Unreachable`, which the drainer retries
for a while). It decides nothing about requests and reads nothing: what to show comes from
`bot.render.slack`, what happened from the notice, and the request and the board's place from
what the drainer hands it (`bot/handed.py`, read by `bot/handover.py`, which also holds back,
skips and gives up notices).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import IO, Any

import aiohttp
from aiolimiter import AsyncLimiter
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.slack_outputs import send_output_to_board
from bot.delivery import Delivered, Outgoing, RetryLater, Undeliverable, Unreachable
from bot.handed import BOARD_OUTPUT_NOTICES, AgencyBoard, AgencyReport, Board, Handover, OutputOnBoard
from bot.models import ChannelKind
from bot.pacing import SendBudget
from bot.render import slack as board
from bot.render import slack_answers as answers
from bot.render import violations
from bot.reports import ChartDrawer
from bot.workflow import MEMBER_NOTICE, Desk

log = logging.getLogger(__name__)

# Slack asks for about one message per second per channel.
POST_INTERVAL = 1.0
# chat.update is tier 3: 50+ a minute per workspace, short bursts allowed.
UPDATE_BURST, UPDATE_PERIOD = 10, 12.0
# How many times a missing channel, or a bot not in it, is retried (with the drainer's
# back-off, about half an hour in all) before the notice is given up: time for someone to
# invite the bot, without retrying a deleted channel for a day.
CHANNEL_PATIENCE = 10
_CHANNEL_ADVICE = "invite the bot to the channel, or fix `likeness agency add --slack-channel`"

_RETRY_ERRORS = frozenset(
    {
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)
_SETUP_ERRORS = frozenset(
    {
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "missing_scope",
        "no_permission",
        "org_login_required",
        "ekm_access_denied",
    }
)
_CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
_GONE_ERRORS = frozenset(
    {"message_not_found", "thread_not_found", "cant_update_message", "edit_window_closed"}
)
# Events worth showing in the channel, not only in the thread.
_BROADCAST_EVENTS = frozenset({"usage.violation", "reminder.escalation", "grant.revoked"})

# The bot token of the workspace being written to, when it is not the client's own (one app in
# many workspaces): set per notice by `send`, and by the Slack handlers per request they answer.
_workspace_token: ContextVar[str | None] = ContextVar("slack_workspace_token", default=None)
# Gives the bot token of an agency's workspace; None means the client's own token.
TokenSource = Callable[[str], Awaitable[str | None]]


def use_workspace_token(token: str | None) -> None:
    """Calls made from here on in this task (and tasks it starts) use this workspace's token."""
    _workspace_token.set(token)


def _auth() -> dict[str, Any]:
    token = _workspace_token.get()
    return {"token": token} if token else {}


class MessageGone(Exception):
    """The board message to edit or reply under no longer exists (deleted by someone)."""


class ChannelUnreachable(Exception):
    """The channel is gone or archived, or the bot was not invited to it."""


class ChannelPace:
    """Keeps one channel's messages at least `interval` apart as Slack receives them.

    A rate limiter spaces the moments requests *leave*; Slack counts when they *arrive*, and a
    slow first request followed by a quick second one arrives closer together than it left.
    So the next message starts only `interval` after the previous one was answered: it cannot
    arrive sooner. A 429's Retry-After holds the channel for everyone posting to it.

    With a shared budget (several instances) each message also books the channel's lane there,
    so the channel keeps its pace across instances; a 429 holds the lane for all of them.
    """

    def __init__(self, interval: float, *, lane: str = "", budget: SendBudget | None = None) -> None:
        """Prepares the pace; `interval` is in seconds; `lane` names the channel in `budget`."""
        self.interval = interval
        self._turns = asyncio.Lock()
        self._free_at = 0.0
        self._lane = lane
        self._budget = budget

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Waits for the channel's next free moment, then holds it for one request."""
        async with self._turns:
            loop = asyncio.get_running_loop()
            wait = self._free_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # the pace itself, not a synchronisation guess
            if self._budget is not None:
                await self._budget.wait_turn(self._lane, rate=1 / self.interval, burst=1)
            try:
                yield
            except RetryLater as limited:
                if limited.after is not None:
                    self.hold(limited.after)
                    if self._budget is not None:
                        await self._budget.hold(self._lane, limited.after)
                raise
            finally:
                self._free_at = max(self._free_at, loop.time() + self.interval)

    def hold(self, seconds: float) -> None:
        """Nothing goes to this channel for `seconds` (Slack said so)."""
        self._free_at = max(self._free_at, asyncio.get_running_loop().time() + seconds)


def _slack_failure(method: str, error: SlackApiError) -> Exception:
    """The drainer's reading of a Slack error answer."""
    response = error.response
    status = int(getattr(response, "status_code", 200) or 200)
    code = str(response.get("error") or "") if hasattr(response, "get") else ""
    if status == 429 or code == "ratelimited":
        headers = getattr(response, "headers", {}) or {}
        retry_after = headers.get("Retry-After") or headers.get("retry-after") or "1"
        try:
            after = max(1.0, float(retry_after))
        except ValueError:
            after = 1.0
        return RetryLater(f"{method}: rate limited", after=after)
    if status >= 500 or code in _RETRY_ERRORS:
        return RetryLater(f"{method}: {code or f'HTTP {status}'}")
    if code in _SETUP_ERRORS:
        # The token or the app's scopes need fixing; notices wait (up to a day) instead of being lost.
        log.error("Slack refused %s with %s: check SLACK_BOT_TOKEN and the app's scopes", method, code)
        return RetryLater(f"{method}: {code}")
    if code in _CHANNEL_ERRORS:
        return ChannelUnreachable(code)
    if code in _GONE_ERRORS:
        return MessageGone(code)
    return Undeliverable(f"{method}: {code or f'HTTP {status}'}")


async def _call(method: str, call: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    """Awaits one Web API call, turning its failures into RetryLater / Undeliverable / the two above."""
    try:
        return await call
    except SlackApiError as error:
        raise _slack_failure(method, error) from error
    except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as error:
        raise RetryLater(f"{method}: {type(error).__name__}") from error


class SlackSender:
    """Sends the agency board's notices to Slack and offers the calls the Slack handlers need."""

    channel = ChannelKind.slack
    # A claim takes at most this many notices of one agency, oldest first, and none while an older
    # one waits for a retry: the board keeps its order and a paced channel never outlasts the lease.
    lane_slice = 3

    def __init__(
        self,
        desk: Desk,
        client: AsyncWebClient,
        *,
        post_interval: float = POST_INTERVAL,
        update_burst: int = UPDATE_BURST,
        update_period: float = UPDATE_PERIOD,
        charts: ChartDrawer | None = None,
        tokens: TokenSource | None = None,
        budget: SendBudget | None = None,
    ) -> None:
        """Prepares the sender; nothing is called until the first notice.

        Parameters:
            desk: the workflow's desk; nothing is read through it (what a notice shows is handed over).
            client: a slack_sdk client with the bot token and the Web API base URL.
            post_interval: seconds between two messages to one channel.
            update_burst, update_period: chat.update allowance (per workspace).
            charts: draws the report charts (shared with the other senders).
            tokens: the bot token of an agency's own workspace (one app, many workspaces).
            budget: the deployment's send budget (several instances); None paces this process alone.
        """
        self.desk = desk
        self.charts = charts or ChartDrawer()
        self.client = client
        self.tokens = tokens
        self.post_interval = post_interval
        self._paces: dict[str, ChannelPace] = {}
        self._budget = budget
        self._updates = AsyncLimiter(update_burst, update_period)
        # Roots posted by a send that then failed (its thread reply hit a 429, say), so the drainer
        # never stored them: the retry edits them instead of posting a second root.
        self._unrecorded_roots: dict[tuple[str, str], tuple[str, str]] = {}

    # ------------------------------------------------------------ the outbox's side

    def lane(self, notice: Outgoing) -> str:
        """One lane per agency: its board is one channel, so this keeps each channel's posts in order."""
        return notice.recipient_id

    async def send(self, notice: Outgoing, handed: Handover) -> Delivered:
        """Posts, edits or uploads what one notice says, with what `handed` gives; raises
        RetryLater / Undeliverable when it cannot, Unreachable for a channel it cannot reach."""
        token = await self.tokens(notice.recipient_id) if self.tokens is not None else None
        if token is None and not self.client.token:
            raise Undeliverable(f"agency {notice.recipient_id} has not connected a Slack workspace")
        use_workspace_token(token)
        try:
            if notice.kind == "report":
                return await self._report(await handed(AgencyReport))
            if notice.kind == MEMBER_NOTICE:
                found = await handed(AgencyBoard)
                await self.post(found.channel, answers.member_notice(found.agency, notice.payload))
                return Delivered()
            if notice.kind in BOARD_OUTPUT_NOTICES:
                return await send_output_to_board(self, notice, await handed(OutputOnBoard))
            # board_post, board_update and any later kind about a request: the root posted or
            # edited, a line in its thread (a kind without a request is given up by the handover).
            reply = None if notice.kind == "board_post" else {"event": notice.kind} | notice.payload
            return await self._publish(notice, await handed(Board), reply=reply)
        except ChannelUnreachable as why:
            raise Unreachable(
                "Slack channel", str(why), patience=CHANNEL_PATIENCE, advice=_CHANNEL_ADVICE
            ) from why

    async def _publish(self, notice: Outgoing, state: Board, *, reply: dict[str, Any] | None) -> Delivered:
        """Brings the root message to the request's current state; adds the event to its thread."""
        key = (state.view.request.id, notice.recipient_id)
        channel = state.channel
        root = state.root if state.root and state.root[0] == channel else None
        if root is None:
            remembered = self._unrecorded_roots.get(key)
            root = remembered if remembered and remembered[0] == channel else None
        message = board.root_message(state.view, agency_may=state.agency_may)
        if root is not None:
            try:
                await self.update(channel, root[1], message)
            except MessageGone:
                log.info("board message of %s was deleted; posting it again", state.view.request.id)
                root = None
        if root is None:
            root = (channel, await self.post(channel, message))
            self._unrecorded_roots[key] = root
        if reply is not None:
            text: board.SlackMessage | str = (
                violations.board_reply(state.view, reply)
                if reply.get("event") == "usage.violation"
                else board.thread_reply(state.view, reply)
            )
            broadcast = str(reply.get("event")) in _BROADCAST_EVENTS
            try:
                await self.post(channel, text, thread_ts=root[1], broadcast=broadcast)
            except MessageGone:
                self._unrecorded_roots.pop(key, None)
                raise RetryLater("the board message went away under the reply") from None
        # Sent: the drainer stores a new root's place together with the sent mark.
        self._unrecorded_roots.pop(key, None)
        if state.root == root:
            return Delivered()
        return Delivered(card_chat_id=root[0], card_message_id=root[1])

    async def _report(self, found: AgencyReport) -> Delivered:
        """The usage report: a summary with the chart PNG and the CSV, in one upload message."""
        report = found.report
        with found.table as table:
            # Drawn in a child process: matplotlib never enters (or holds up) this one.
            chart = await self.charts.draw(report)
            stamp = report.period_end.strftime("%Y-%m-%d")
            await self.upload(
                found.board.channel,
                comment=board.report_comment(report, found.board.agency),
                files=[
                    (f"likeness-usage-{stamp}.png", chart, "Uses per week"),
                    (f"likeness-usage-{stamp}.csv", table, "Usage events"),
                ],
            )
        return Delivered()

    # ------------------------------------------------------------ Web API calls, limited and mapped

    def _pace(self, channel: str) -> ChannelPace:
        pace = self._paces.get(channel)
        if pace is None:
            pace = ChannelPace(self.post_interval, lane=f"slack:channel:{channel}", budget=self._budget)
            self._paces[channel] = pace
        return pace

    async def post(
        self,
        channel: str,
        message: board.SlackMessage | str,
        *,
        thread_ts: str | None = None,
        broadcast: bool = False,
    ) -> str:
        """Posts a message (or a thread reply) at the channel's pace; returns its ts."""
        if isinstance(message, str):
            message = board.SlackMessage(text=message, blocks=[])
        async with self._pace(channel).turn():
            response = await _call(
                "chat.postMessage",
                self.client.chat_postMessage(
                    **_auth(),
                    channel=channel,
                    text=message.text,
                    blocks=message.blocks or None,
                    metadata=message.metadata,
                    thread_ts=thread_ts,
                    reply_broadcast=broadcast or None,
                    unfurl_links=False,
                    unfurl_media=False,
                ),
            )
        return str(response["ts"])

    async def update(self, channel: str, ts: str, message: board.SlackMessage) -> None:
        """Replaces a message's text and blocks."""
        async with self._updates:
            await _call(
                "chat.update",
                self.client.chat_update(
                    **_auth(),
                    channel=channel,
                    ts=ts,
                    text=message.text,
                    blocks=message.blocks,
                    metadata=message.metadata,
                ),
            )

    async def ephemeral(self, channel: str, user: str, text: str) -> None:
        """Shows a message to one person in a channel (refusals, answers to clicks)."""
        await _call(
            "chat.postEphemeral",
            self.client.chat_postEphemeral(**_auth(), channel=channel, user=user, text=text),
        )

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        """Opens a modal; the trigger from a click lasts 3 seconds, so this is called right after ack."""
        await _call("views.open", self.client.views_open(**_auth(), trigger_id=trigger_id, view=view))

    async def upload(
        self,
        channel: str,
        *,
        comment: str,
        files: list[tuple[str, bytes | IO[bytes], str]],
        thread_ts: str | None = None,
    ) -> None:
        """Uploads files as one message with a comment (files_upload_v2), at the channel's pace;
        into a thread when `thread_ts` names one."""
        async with self._pace(channel).turn():
            await _call(
                "files.upload",
                self.client.files_upload_v2(
                    **_auth(),
                    channel=channel,
                    thread_ts=thread_ts,
                    initial_comment=comment,
                    file_uploads=[
                        {"file": data, "filename": name, "title": title} for name, data, title in files
                    ],
                ),
            )

    async def whoami(self) -> dict[str, Any]:
        """auth.test: which bot and workspace the token belongs to."""
        response = await _call("auth.test", self.client.auth_test())
        return dict(response.data) if isinstance(response.data, dict) else {}
