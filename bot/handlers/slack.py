"""Slack's way in: board buttons, the deny form and `/likeness`, each turned into one workflow call.

Every listener acknowledges first (Slack gives an app 3 seconds), then does its one piece of
work and tells the person ephemerally when nothing happened and why. Bolt checks each
request's signature and its 5-minute window; a replay inside that window carries a valid
signature, so each signature is remembered in the database and a second sight is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response
from slack_bolt import BoltResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.web.async_client import AsyncWebClient

from bot import workflow
from bot.adapters.slack import SlackSender
from bot.api.ratelimit import refuse_unauthenticated, too_many
from bot.clean_text import MAX_REASON, hidden_character, visible_text
from bot.handlers.slack_gate import body_problem, signature_problem
from bot.models import OPEN_STATUSES, Actor, ActorKind, ChannelKind, Outcome
from bot.render import buttons, violations
from bot.render import slack as board
from bot.render import slack_pause as pause_board
from bot.workflow import Agency, Desk, RequestView

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.service import Service

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
_OPEN = {s.value for s in OPEN_STATUSES}


# ---------------------------------------------------------------- what a click says


@dataclass(frozen=True)
class Click:
    """A board button press: who, where, on which request and which terms."""

    user: str
    user_name: str
    channel: str
    message_ts: str
    request_id: str
    terms_hash: str
    trigger_id: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Click:
        """Reads bolt's block_actions body; ValueError when the button is not one of the board's."""
        action = (body.get("actions") or [{}])[0]
        request_id, terms_hash = buttons.parse_button_value(str(action.get("value") or ""))
        user = body.get("user") or {}
        container = body.get("container") or {}
        return cls(
            user=str(user.get("id") or ""),
            user_name=str(user.get("name") or user.get("username") or user.get("id") or ""),
            channel=str((body.get("channel") or {}).get("id") or container.get("channel_id") or ""),
            message_ts=str(container.get("message_ts") or ""),
            request_id=request_id,
            terms_hash=terms_hash,
            trigger_id=str(body.get("trigger_id") or ""),
        )


async def board_agency(desk: Desk, channel_id: str) -> Agency | None:
    """The agency whose board is this channel, if any."""
    return await workflow.queries.agency_of_slack_channel(desk, channel_id)


async def slack_actor(desk: Desk, *, channel_id: str, user_id: str, user_name: str) -> Actor:
    """Who acts: the channel's agency through this member; in a channel that is no board, a stranger.

    Whether the member may act is the workflow's call, so that every refusal is audited.
    """
    agency = await board_agency(desk, channel_id)
    user_name = visible_text(user_name)
    if agency is None:
        return Actor(ActorKind.stranger, user_id, ChannelKind.slack, display=user_name)
    return Actor(ActorKind.agency, agency.id, ChannelKind.slack, display=user_name, member=user_id)


# ---------------------------------------------------------------- listeners


@dataclass
class BoardListeners:
    """The Slack listeners; each one acknowledges, calls one workflow function, and answers."""

    desk: Desk
    slack: SlackSender

    async def _tell(self, channel: str, user: str, text: str, respond: AsyncRespond | None = None) -> None:
        """An ephemeral answer; through the response_url when chat.postEphemeral cannot."""
        try:
            await self.slack.ephemeral(channel, user, text)
            return
        except Exception as error:
            log.warning("chat.postEphemeral to %s failed: %s", user, error)
        if respond is not None:
            try:
                await respond(text=text, response_type="ephemeral", replace_original=False)
            except Exception as error:
                log.warning("answering %s through the response_url failed: %s", user, error)

    async def _click(self, body: dict[str, Any], respond: AsyncRespond) -> tuple[Click, Actor] | None:
        try:
            click = Click.of(body)
        except ValueError:
            log.warning("a board button with an unreadable value was pressed")
            await respond(text="This button is not one of the board's.", response_type="ephemeral")
            return None
        actor = await slack_actor(
            self.desk, channel_id=click.channel, user_id=click.user, user_name=click.user_name
        )
        return click, actor

    async def approve(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Approve on behalf (or the agency's co-signature); the board itself follows through the outbox."""
        await ack()
        clicked = await self._click(body, respond)
        if clicked is None:
            return
        click, actor = clicked
        try:
            await workflow.decide(
                self.desk,
                request_id=click.request_id,
                actor=actor,
                outcome=Outcome.approve,
                terms_hash=click.terms_hash,
            )
        except workflow.Refused as why:
            await self._tell(click.channel, click.user, board.refusal_text(why), respond)

    async def deny(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Opens the form that asks why, once the workflow agrees this member may deny now."""
        await ack()
        clicked = await self._click(body, respond)
        if clicked is None:
            return
        click, actor = clicked
        try:
            view = await workflow.check_decision(
                self.desk, request_id=click.request_id, actor=actor, outcome=Outcome.deny
            )
        except workflow.Refused as why:
            await self._tell(click.channel, click.user, board.refusal_text(why), respond)
            return
        form = board.deny_form(
            view, channel_id=click.channel, message_ts=click.message_ts, terms_hash=click.terms_hash
        )
        try:
            await self.slack.open_view(click.trigger_id, form)
        except Exception as error:
            # The trigger lives 3 seconds; past that Slack refuses to open the form.
            log.warning("views.open failed: %s", error)
            await self._tell(
                click.channel, click.user, "Slack could not open the form in time; press Deny again.", respond
            )

    async def deny_submitted(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Records the denial with the reason typed into the form; a reason with hidden characters
        is sent back to the form, naming the character."""
        values = (view.get("state") or {}).get("values") or {}
        reason = str(
            ((values.get(board.REASON_BLOCK) or {}).get(board.REASON_INPUT) or {}).get("value") or ""
        )
        hidden = hidden_character(reason)
        if hidden is not None or len(reason) > MAX_REASON:
            problem = f"holds {hidden}" if hidden else f"is longer than {MAX_REASON} characters"
            await ack(
                response_action="errors",
                errors={board.REASON_BLOCK: f"The reason {problem}; please type it as plain text."},
            )
            return
        await ack()
        try:
            form = buttons.parse_deny_form(str(view.get("private_metadata") or ""))
        except ValueError:
            log.warning("a deny form with unreadable metadata was submitted")
            return
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        actor = await slack_actor(
            self.desk,
            channel_id=form.channel_id,
            user_id=user_id,
            user_name=str(user.get("name") or user.get("username") or user_id),
        )
        try:
            await workflow.decide(
                self.desk,
                request_id=form.request_id,
                actor=actor,
                outcome=Outcome.deny,
                terms_hash=form.terms_hash,
                reason=reason.strip() or None,
            )
        except workflow.Refused as why:
            await self._tell(form.channel_id, user_id, board.refusal_text(why))

    async def nudge(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Sends the artist's card again (at most once an hour); the thread says who nudged."""
        await ack()
        clicked = await self._click(body, respond)
        if clicked is None:
            return
        click, actor = clicked
        try:
            await workflow.nudge_artist(self.desk, request_id=click.request_id, actor=actor)
        except workflow.Refused as why:
            await self._tell(click.channel, click.user, board.refusal_text(why), respond)

    async def revoke(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Revoke on behalf, from a violation in a request's thread; the workflow checks the policy."""
        await ack()
        action = (body.get("actions") or [{}])[0]
        grant_id = str(action.get("value") or "")
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        channel = str(
            (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
        )
        if not grant_id.startswith("grt_"):
            await respond(text="This button is not one of the board's.", response_type="ephemeral")
            return
        actor = await slack_actor(
            self.desk,
            channel_id=channel,
            user_id=user_id,
            user_name=str(user.get("name") or user.get("username") or user_id),
        )
        try:
            await workflow.revoke_grant(
                self.desk, grant_id=grant_id, actor=actor, reason="revoked on the artist's behalf in Slack"
            )
        except workflow.Refused as why:
            await self._tell(channel, user_id, board.refusal_text(why), respond)

    async def command(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        """`/likeness pending | status <id> | report | pause <artist> [reason] | resume <artist>`;
        anything else gets the help."""
        await ack()
        words = str(command.get("text") or "").split()
        verb = words[0].lower() if words else ""
        arity = {"pending": 1, "status": 2, "report": 1, "resume": 2}
        fits = len(words) >= 2 if verb == "pause" else arity.get(verb) == len(words)  # pause: reason optional
        if not fits:
            await respond(text=board.help_text(), response_type="ephemeral")
            return
        agency = await board_agency(self.desk, str(command.get("channel_id") or ""))
        if agency is None:
            await respond(
                text="This channel is no agency's board; use `/likeness` in your agency's channel.",
                response_type="ephemeral",
            )
            return
        user_id = str(command.get("user_id") or "")
        if user_id not in agency.slack_member_ids:
            await workflow.record_refusal(
                self.desk,
                actor=Actor(
                    ActorKind.stranger,
                    user_id,
                    ChannelKind.slack,
                    display=visible_text(str(command.get("user_name") or "")),
                ),
                action=f"slack.command.{verb}",
                subject_kind="agency",
                subject_id=agency.id,
                reason="only the agency's listed members may use /likeness on its board",
                code="not_a_member",
            )
            who = board.escape(agency.name)
            text = f":no_entry: Only the members listed for {who} can use `/likeness` here."
            await respond(text=text, response_type="ephemeral")
            return
        if verb in {"pause", "resume"}:
            parts = str(command.get("text") or "").strip().split(maxsplit=2)  # the reason keeps its spaces
            actor = Actor(
                ActorKind.agency,
                agency.id,
                ChannelKind.slack,
                display=str(command.get("user_name") or ""),
                member=user_id,
            )
            reason = parts[2] if len(parts) > 2 else None
            await respond(text=await self._pause(verb, words[1], actor, reason), response_type="ephemeral")
        elif verb == "pending":
            views, total = await self._open_requests(agency)
            await respond(text=board.pending_text(agency.name, views, total), response_type="ephemeral")
        elif verb == "status":
            shown = await self._request_of(agency, words[1])
            if shown is None:
                text = f"No request `{board.escape(words[1])}` for an artist of {board.escape(agency.name)}."
                await respond(text=text, response_type="ephemeral")
            else:
                message = board.status_message(shown)
                await respond(text=message.text, blocks=message.blocks, response_type="ephemeral")
        else:
            queued = await workflow.queue_report(
                self.desk, recipient_kind=ActorKind.agency, recipient_id=agency.id
            )
            text = (
                ":bar_chart: The usage report is on its way to this channel."
                if queued
                else "No report: this agency has no Slack channel on record."
            )
            await respond(text=text, response_type="ephemeral")

    async def _pause(self, verb: str, artist_id: str, actor: Actor, reason: str | None) -> str:
        """Pauses or resumes for the artist; the answer, or why not (the workflow audits refusals)."""
        try:
            if verb == "pause":
                change = await workflow.pause_artist(
                    self.desk, artist_id=artist_id, actor=actor, reason=reason
                )
            else:
                change = await workflow.resume_artist(self.desk, artist_id=artist_id, actor=actor)
        except workflow.NotFound:
            return f":grey_question: No artist `{board.escape(artist_id[:64])}` on your agency's roster."
        except workflow.Refused as why:
            return board.refusal_text(why)
        return pause_board.command_answer(verb, change.artist_name, change.grants)

    async def _open_requests(self, agency: Agency) -> tuple[list[RequestView], int]:
        return await workflow.queries.agency_open_requests(self.desk, agency.id, _OPEN, board.PENDING_SHOWN)

    async def _request_of(self, agency: Agency, request_id: str) -> RequestView | None:
        # Another agency's request is "not found": its existence is not this channel's business.
        return await workflow.queries.agency_request(self.desk, agency.id, request_id)

    async def refuse_replays(
        self, req: AsyncBoltRequest, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        """Bolt middleware after the signature check: a request whose signature was seen before is refused."""
        signature = _header(req, "x-slack-signature")
        timestamp = _header(req, "x-slack-request-timestamp")
        try:
            signed_at = datetime.fromtimestamp(int(timestamp), UTC)
        except ValueError:
            return BoltResponse(status=401, body="invalid request")
        if not await workflow.remember_slack_request(self.desk, signature=signature, signed_at=signed_at):
            log.warning("refused a replayed Slack request (signed at %s)", signed_at.isoformat())
            return BoltResponse(status=401, body="replayed request")
        await next()
        return None


def _header(req: AsyncBoltRequest, name: str) -> str:
    values = req.headers.get(name) or []
    return str(values[0]) if values else ""


# ---------------------------------------------------------------- wiring


def _drop_unused_token_warning(record: logging.LogRecord) -> bool:
    # Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that it goes
    # unused because a client was given: true and meant (the client carries the token and the
    # base URL), so the line would only alarm whoever reads the log.
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


def build_slack_app(desk: Desk, slack: SlackSender, signing_secret: str) -> AsyncApp:
    """The bolt app: signature check, replay refusal, the board's buttons, the form and /likeness."""
    listeners = BoardListeners(desk, slack)
    logging.getLogger("slack_bolt.AsyncApp").addFilter(_drop_unused_token_warning)
    app = AsyncApp(
        client=slack.client,
        signing_secret=signing_secret,
        name="likeness",
        # Before authorisation, so a replay costs no auth.test call either.
        before_authorize=listeners.refuse_replays,
    )
    app.action(board.ACTION_APPROVE)(listeners.approve)
    app.action(board.ACTION_DENY)(listeners.deny)
    app.action(board.ACTION_NUDGE)(listeners.nudge)
    app.action(violations.ACTION_REVOKE)(listeners.revoke)
    app.view(board.DENY_FORM)(listeners.deny_submitted)
    app.command("/likeness")(listeners.command)
    return app


def _api_base_url(url: str) -> str:
    # slack_sdk joins base URL and method name as strings; the slash must be there.
    return url if url.endswith("/") else url + "/"


async def _refuse(_request: Request) -> Response:
    """Without a signing secret no request can be trusted."""
    return PlainTextResponse("SLACK_SIGNING_SECRET is not set", status_code=401)


def attach_slack(service: Service) -> None:
    """Switches the Slack board on: the sender joins the outbox, and POST /slack/events serves bolt."""
    settings = service.settings
    assert settings.slack_bot_token is not None  # attach_channels only calls this with a token
    client = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=_api_base_url(settings.slack_api_base_url),
    )
    sender = SlackSender(service.desk, client, charts=service.charts, budget=service.send_budget)
    service.senders.append(sender)
    checking: list[asyncio.Task[None]] = []

    async def say_who_we_are() -> None:
        try:
            me = await sender.whoami()
        except Exception as error:
            log.warning(
                "Slack did not answer auth.test (%s); the board will be retried through the outbox", error
            )
            return
        log.info("Slack board on: bot %s in workspace %s", me.get("user"), me.get("team"))

    async def start() -> None:
        # In the background: an unreachable Slack must not hold up the service's start.
        checking.append(asyncio.create_task(say_who_we_are(), name="slack-auth-test"))

    async def stop() -> None:
        for task in checking:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    service.on_start.append(start)
    service.on_stop.append(stop)

    secret = settings.slack_signing_secret
    if secret is None:
        log.warning(
            "SLACK_SIGNING_SECRET is not set: the board is posted, but clicks and /likeness are refused"
        )
        service.api.add_api_route(EVENTS_PATH, _refuse, methods=["POST"], include_in_schema=False)
        return
    handler = AsyncSlackRequestHandler(build_slack_app(service.desk, sender, secret.get_secret_value()))

    signing_secret = secret.get_secret_value()

    async def slack_events(request: Request) -> Response:
        """Events, interactivity and slash commands, all on one URL as Slack's app settings have it."""
        body = await request.body()
        problem = signature_problem(
            body,
            timestamp=request.headers.get("x-slack-request-timestamp"),
            signature=request.headers.get("x-slack-signature"),
            secret=signing_secret,
            now=time.time(),
        )
        if problem is None:
            unreadable = body_problem(body, request.headers)
            if unreadable is not None:
                return PlainTextResponse(unreadable, status_code=400)
            response: Response = await handler.handle(request)
            if response.status_code != 401:
                return response
            problem = bytes(response.body).decode(errors="replace")[:100]  # a replay, refused by bolt
        # Whoever sent it is no one we know: counted, never stored.
        kind = "slack_replay" if "replayed" in problem else "slack_signature"
        limited = await refuse_unauthenticated(request, kind, problem)
        if limited is not None:
            return too_many(limited.scope_name, limited.retry_after)
        return PlainTextResponse("replayed request" if kind == "slack_replay" else "invalid request", 401)

    service.api.add_api_route(EVENTS_PATH, slack_events, methods=["POST"], include_in_schema=False)
