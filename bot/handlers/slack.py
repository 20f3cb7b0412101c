"""Slack's way in: board buttons, the deny form and `/likeness`, each turned into one workflow call.

Every listener acknowledges first (Slack gives an app 3 seconds), then does its one piece of
work and tells the person ephemerally when nothing happened and why; a click that decides
something is stored in the inbox before its ack (slack_inbox.py). Bolt checks each
request's signature and its 5-minute window; a replay inside that window carries a valid
signature, so each signature is remembered in the database and a second sight is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

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
from bot.clean_text import MAX_REASON, hidden_character, visible_text
from bot.handlers.slack_gate import events_route, refuse_unsigned
from bot.handlers.slack_inbox import SlackInbox
from bot.handlers.slack_install import SlackInstallsPort, join_workspaces, workspace_agency
from bot.models import OPEN_STATUSES, Actor, ActorKind, ChannelKind, Outcome
from bot.render import buttons, violations
from bot.render import slack as board
from bot.render import slack_answers as answers
from bot.render import slack_pause as pause_board
from bot.workflow import Agency, Desk, RequestView

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bot.service import Service

log = logging.getLogger(__name__)
T = TypeVar("T")

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
    """The agency whose board is this channel, if any (in the workspace the request came from)."""
    return workspace_agency(await workflow.queries.agency_of_slack_channel(desk, channel_id))


async def slack_actor(desk: Desk, *, channel_id: str, user_id: str, user_name: str) -> Actor:
    """Who acts: the channel's agency through this member; in a channel that is no board, a stranger.

    Whether the member may act is the workflow's call, so that every refusal is audited.
    """
    agency = await board_agency(desk, channel_id)
    user_name = visible_text(user_name)
    if agency is None:
        return Actor(ActorKind.stranger, user_id, ChannelKind.slack, display=user_name)
    return Actor(ActorKind.agency, agency.id, ChannelKind.slack, display=user_name, member=user_id)


async def member_actor(desk: Desk, body: dict[str, Any], channel_id: str) -> Actor:
    """The member a Slack payload's `user` names, acting in `channel_id` (see `slack_actor`)."""
    user = body.get("user") or {}
    user_id = str(user.get("id") or "")
    user_name = str(user.get("name") or user.get("username") or user_id)
    return await slack_actor(desk, channel_id=channel_id, user_id=user_id, user_name=user_name)


# ---------------------------------------------------------------- listeners


@dataclass
class BoardListeners:
    """The Slack listeners; each one acknowledges, calls one workflow function, and answers."""

    desk: Desk
    slack: SlackSender
    inbox: SlackInbox

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

    async def _refusal(self, channel: str, why: workflow.Refused) -> str:
        """Why nothing happened, in the language of the agency whose board this channel is."""
        return board.refusal_text(why, await board_agency(self.desk, channel))

    async def _foreign(self, channel: str, respond: AsyncRespond | None) -> None:
        log.warning("a board button with an unreadable value was pressed")
        if respond is not None:
            text = answers.foreign_button(await board_agency(self.desk, channel))
            await respond(text=text, response_type="ephemeral")

    async def _take_click(
        self, body: dict[str, Any], respond: AsyncRespond | None, step: Callable[[Click, Actor], Awaitable[T]]
    ) -> tuple[Click, T] | None:
        """Reads the board click and runs its one workflow step; None after answering why not (a
        button that is not the board's, or the workflow's refusal)."""
        try:
            click = Click.of(body)
        except ValueError:
            await self._foreign(str((body.get("channel") or {}).get("id") or ""), respond)
            return None
        actor = await slack_actor(
            self.desk, channel_id=click.channel, user_id=click.user, user_name=click.user_name
        )
        try:
            return click, await step(click, actor)
        except workflow.Refused as why:
            await self._tell(click.channel, click.user, await self._refusal(click.channel, why), respond)
            return None

    async def approve(self, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        """Approve on behalf (or the agency's co-signature); the board itself follows through the outbox."""
        await self._take_click(
            body,
            respond,
            lambda click, actor: workflow.decide(
                self.desk,
                request_id=click.request_id,
                actor=actor,
                outcome=Outcome.approve,
                terms_hash=click.terms_hash,
            ),
        )

    async def deny(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Opens the form that asks why, once the workflow agrees this member may deny now."""
        await ack()
        taken = await self._take_click(
            body,
            respond,
            lambda click, actor: workflow.check_decision(
                self.desk, request_id=click.request_id, actor=actor, outcome=Outcome.deny
            ),
        )
        if taken is None:
            return
        click, view = taken
        form = board.deny_form(
            view, channel_id=click.channel, message_ts=click.message_ts, terms_hash=click.terms_hash
        )
        try:
            await self.slack.open_view(click.trigger_id, form)
        except Exception as error:
            # The trigger lives 3 seconds; past that Slack refuses to open the form.
            log.warning("views.open failed: %s", error)
            await self._tell(click.channel, click.user, answers.form_not_opened(view.agency), respond)

    async def deny_submitted(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Takes the deny form into the inbox; a reason with hidden characters is sent back to the
        form, naming the character."""
        reason = _typed_reason(view)
        hidden = hidden_character(reason)
        if hidden is not None or len(reason) > MAX_REASON:
            try:
                meta = buttons.parse_deny_form(str(view.get("private_metadata") or ""))
                agency = await board_agency(self.desk, meta.channel_id)
            except ValueError:
                agency = None
            problem = answers.reason_problem(agency, hidden, MAX_REASON)
            await ack(response_action="errors", errors={board.REASON_BLOCK: problem})
            return
        await self.inbox.take(ack, "deny_submitted", body, None)

    async def record_denial(self, body: dict[str, Any], _respond: AsyncRespond | None) -> None:
        """Records the denial with the reason typed into the form."""
        view = body.get("view") or {}
        reason = _typed_reason(view)
        try:
            form = buttons.parse_deny_form(str(view.get("private_metadata") or ""))
        except ValueError:
            log.warning("a deny form with unreadable metadata was submitted")
            return
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        actor = await member_actor(self.desk, body, form.channel_id)
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
            await self._tell(form.channel_id, user_id, await self._refusal(form.channel_id, why))

    async def nudge(self, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        """Sends the artist's card again (at most once an hour); the thread says who nudged."""
        await self._take_click(
            body,
            respond,
            lambda click, actor: workflow.nudge_artist(self.desk, request_id=click.request_id, actor=actor),
        )

    async def revoke(self, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        """Revoke on behalf, from a violation in a request's thread; the workflow checks the policy."""
        action = (body.get("actions") or [{}])[0]
        grant_id = str(action.get("value") or "")
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        channel = str(
            (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
        )
        if not grant_id.startswith("grt_"):
            await self._foreign(channel, respond)
            return
        actor = await member_actor(self.desk, body, channel)
        try:
            await workflow.revoke_grant(
                self.desk, grant_id=grant_id, actor=actor, reason="revoked on the artist's behalf in Slack"
            )
        except workflow.Refused as why:
            await self._tell(channel, user_id, await self._refusal(channel, why), respond)

    async def command(self, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        """`/likeness pending | status <id> | report | pause <artist> [reason] | resume <artist>`;
        anything else gets the help."""
        await ack()
        words = str(command.get("text") or "").split()
        verb = words[0].lower() if words else ""
        arity = {"pending": 1, "status": 2, "report": 1, "resume": 2}
        fits = len(words) >= 2 if verb == "pause" else arity.get(verb) == len(words)  # pause: reason optional
        agency = await board_agency(self.desk, str(command.get("channel_id") or ""))
        if not fits:
            await respond(text=board.help_text(agency), response_type="ephemeral")
            return
        if agency is None:
            await respond(text=answers.not_a_board(), response_type="ephemeral")
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
            await respond(text=answers.members_only(agency, agency.name), response_type="ephemeral")
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
            answer = await self._pause(verb, words[1], actor, reason, agency)
            await respond(text=answer, response_type="ephemeral")
        elif verb == "pending":
            views, total = await self._open_requests(agency)
            text = board.pending_text(agency.name, views, total, agency)
            await respond(text=text, response_type="ephemeral")
        elif verb == "status":
            shown = await self._request_of(agency, words[1])
            if shown is None:
                text = answers.no_such_request(agency, agency.name, words[1])
                await respond(text=text, response_type="ephemeral")
            else:
                message = board.status_message(shown)
                await respond(text=message.text, blocks=message.blocks, response_type="ephemeral")
        else:
            queued = await workflow.queue_report(
                self.desk, recipient_kind=ActorKind.agency, recipient_id=agency.id
            )
            await respond(text=answers.report_queued(agency, queued), response_type="ephemeral")

    async def _pause(
        self, verb: str, artist_id: str, actor: Actor, reason: str | None, agency: Agency
    ) -> str:
        """Pauses or resumes for the artist; the answer, or why not (the workflow audits refusals)."""
        try:
            if verb == "pause":
                change = await workflow.pause_artist(
                    self.desk, artist_id=artist_id, actor=actor, reason=reason
                )
            else:
                change = await workflow.resume_artist(self.desk, artist_id=artist_id, actor=actor)
        except workflow.NotFound:
            return answers.no_such_artist(agency, artist_id)
        except workflow.Refused as why:
            return board.refusal_text(why, agency)
        return pause_board.command_answer(verb, change.artist_name, change.grants, agency)

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


def _typed_reason(view: dict[str, Any]) -> str:
    values = (view.get("state") or {}).get("values") or {}
    return str(((values.get(board.REASON_BLOCK) or {}).get(board.REASON_INPUT) or {}).get("value") or "")


def _header(req: AsyncBoltRequest, name: str) -> str:
    values = req.headers.get(name) or []
    return str(values[0]) if values else ""


# ---------------------------------------------------------------- wiring


def _drop_unused_token_warning(record: logging.LogRecord) -> bool:
    # Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that it goes
    # unused because a client was given: true and meant (the client carries the token and the
    # base URL), so the line would only alarm whoever reads the log.
    return record.getMessage() != warning_client_prioritized_and_token_skipped()


def build_slack_app(
    desk: Desk,
    slack: SlackSender,
    signing_secret: str,
    installs: SlackInstallsPort | None = None,
    inbox: SlackInbox | None = None,
) -> AsyncApp:
    """The bolt app: signature check, replay refusal, the board's buttons, the form and /likeness;
    the clicks that decide something go through `inbox`."""
    inbox = inbox or SlackInbox(desk)
    listeners = BoardListeners(desk, slack, inbox)
    logging.getLogger("slack_bolt.AsyncApp").addFilter(_drop_unused_token_warning)
    app = AsyncApp(
        client=slack.client,
        signing_secret=signing_secret,
        name="likeness",
        # Before authorisation, so a replay costs no auth.test call either.
        before_authorize=listeners.refuse_replays,
        authorize=installs.authorize if installs else None,  # type: ignore[arg-type]  # None: refused
    )
    app.action(board.ACTION_APPROVE)(inbox.listener("approve", listeners.approve))
    app.action(board.ACTION_DENY)(listeners.deny)
    app.action(board.ACTION_NUDGE)(inbox.listener("nudge", listeners.nudge))
    app.action(violations.ACTION_REVOKE)(inbox.listener("revoke", listeners.revoke))
    inbox.works["deny_submitted"] = listeners.record_denial
    app.view(board.DENY_FORM)(listeners.deny_submitted)
    app.command("/likeness")(listeners.command)
    if installs is not None:
        join_workspaces(app, desk, installs)
    from bot.handlers.slack_outputs import register_output_actions  # it imports this module

    register_output_actions(app, desk, slack, inbox)
    return app


def _api_base_url(url: str) -> str:
    # slack_sdk joins base URL and method name as strings; the slash must be there.
    return url if url.endswith("/") else url + "/"


def attach_slack(service: Service, installs: SlackInstallsPort | None = None) -> None:
    """Switches the Slack board on: the sender joins the outbox, and POST /slack/events serves bolt."""
    settings = service.settings
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = AsyncWebClient(token=token, base_url=_api_base_url(settings.slack_api_base_url))
    tokens = installs.bot_token if installs is not None else None
    sender = SlackSender(
        service.desk, client, charts=service.charts, tokens=tokens, budget=service.send_budget
    )
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
        if token is not None:  # with installs only, each workspace's token is checked as it is used
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
        service.api.add_api_route(EVENTS_PATH, refuse_unsigned, methods=["POST"], include_in_schema=False)
        return
    inbox = SlackInbox(service.desk)
    handler = AsyncSlackRequestHandler(
        build_slack_app(service.desk, sender, secret.get_secret_value(), installs, inbox)
    )
    service.on_start.append(inbox.start)
    service.on_stop.append(inbox.stop)

    events = events_route(handler, secret.get_secret_value())
    service.api.add_api_route(EVENTS_PATH, events, methods=["POST"], include_in_schema=False)
