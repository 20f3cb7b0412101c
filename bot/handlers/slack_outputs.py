"""The board's Release / Reject buttons under an output in a request's thread: the agency acts on
the artist's behalf where the policy lets it; the workflow checks that and audits a refusal.

Release is a deciding click, through the inbox. Reject opens a form asking why (like the board's
Deny); the form's metadata is signed, and its submission goes through the inbox."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot import workflow
from bot.adapters.slack import SlackSender
from bot.clean_text import MAX_REASON, hidden_character
from bot.handlers.slack import board_agency, member_actor
from bot.handlers.slack_inbox import SlackInbox
from bot.models import Actor, ActorKind, ChannelKind
from bot.render import buttons
from bot.render import slack as board
from bot.render import slack_answers as answers
from bot.render import slack_outputs as texts
from bot.render.slack_outputs import ACTION_REJECT, ACTION_RELEASE, REJECT_FORM
from bot.workflow import Desk

log = logging.getLogger(__name__)


@dataclass
class OutputListeners:
    """Release clicks under an output, and the reject form's submissions, each taken through the
    inbox before its ack; the Reject click only opens the form."""

    desk: Desk
    slack: SlackSender
    inbox: SlackInbox

    async def _decide(
        self,
        body: dict[str, Any],
        respond: AsyncRespond | None,
        *,
        release: bool,
        output_id: str | None = None,
        channel: str | None = None,
        reason: str | None = None,
    ) -> None:
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        if output_id is None or channel is None:
            output_id, channel = _clicked(body)
        agency = await board_agency(self.desk, channel)
        if not output_id.startswith("out_") or len(output_id) > 64:
            await self._tell(channel, user_id, answers.foreign_button(agency), respond)
            return
        actor = await member_actor(self.desk, body, channel)
        try:
            await workflow.decide_output(
                self.desk,
                output_id=output_id,
                actor=actor,
                release=release,
                reason=None if release else reason,
            )
        except workflow.Refused as why:
            await self._tell(channel, user_id, board.refusal_text(why, agency), respond)
            return
        await self._tell(channel, user_id, texts.click_answer(agency, release=release), respond)

    async def _tell(self, channel: str, user: str, text: str, respond: AsyncRespond | None) -> None:
        """An ephemeral answer: through the click's response_url, or (handled after a restart,
        when there is none) as an ephemeral message in the channel."""
        try:
            if respond is not None:
                await respond(text=text, response_type="ephemeral", replace_original=False)
            elif channel and user:
                await self.slack.ephemeral(channel, user, text)
        except Exception as error:  # the click is recorded either way; only its answer is lost
            log.warning("answering %s about an output failed: %s", user, error)

    async def release(self, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        """Releases the output on the artist's behalf."""
        await self._decide(body, respond, release=True)

    async def reject(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Opens the form that asks why, once the member may decide this output now; deciding waits
        for its submission (nothing to store yet)."""
        await ack()
        output_id, channel = _clicked(body)
        user_id = str((body.get("user") or {}).get("id") or "")
        agency = await board_agency(self.desk, channel)
        if not output_id.startswith("out_") or len(output_id) > 64:
            await self._tell(channel, user_id, answers.foreign_button(agency), respond)
            return
        actor = await member_actor(self.desk, body, channel)
        try:  # the same guard as the rejection itself, before anyone types a reason
            await workflow.check_output_decision(self.desk, output_id=output_id, actor=actor)
        except workflow.Refused as why:
            await self._tell(channel, user_id, board.refusal_text(why, agency), respond)
            return
        form = buttons.RejectForm(
            output_id, channel, str((body.get("container") or {}).get("message_ts") or "")
        )
        view = texts.reject_form(
            agency, output_id, private_metadata=form.private_metadata(self.desk.signer.callback_keys()[0])
        )
        try:
            await self.slack.open_view(str(body.get("trigger_id") or ""), view)
        except Exception as error:  # the trigger lives 3 seconds; past that Slack refuses the form
            log.warning("views.open for an output's reject form failed: %s", error)
            await self._tell(channel, user_id, texts.form_not_opened(agency), respond)

    async def reject_submitted(self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]) -> None:
        """Takes the reject form into the inbox; a reason with hidden characters, too long or blank,
        or a form this service did not make, is sent back to the form saying so (nothing stored)."""
        metadata = str(view.get("private_metadata") or "")
        try:
            form = buttons.parse_reject_form(metadata, self.desk.signer.callback_keys())
        except ValueError:
            claimed_output, claimed_channel = buttons.claimed_reject_form(metadata)
            agency = await board_agency(self.desk, claimed_channel)
            await ack(response_action="errors", errors={board.REASON_BLOCK: texts.form_refused(agency)})
            await self._refuse_forged(body, claimed_output, claimed_channel)
            return
        reason = _typed_reason(view)
        hidden = hidden_character(reason)
        if hidden is not None or len(reason) > MAX_REASON or not reason.strip():
            agency = await board_agency(self.desk, form.channel_id)
            if reason.strip():
                problem = answers.reason_problem(agency, hidden, MAX_REASON)
            else:  # Slack requires the input, but spaces alone pass its check
                problem = texts.reason_missing(agency)
            await ack(response_action="errors", errors={board.REASON_BLOCK: problem})
            return
        await self.inbox.take(ack, "output_reject_submitted", body, None)

    async def _refuse_forged(self, body: dict[str, Any], output_id: str, channel: str) -> None:
        """Audits a reject form whose metadata this service did not sign."""
        log.warning("a reject form with forged or unreadable metadata was submitted")
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        actor = await member_actor(self.desk, body, channel)
        if actor.kind is ActorKind.agency:  # who the form claims: unproven, so audited as a stranger
            actor = Actor(ActorKind.stranger, user_id, ChannelKind.slack, display=actor.display)
        await workflow.record_refusal(
            self.desk,
            actor=actor,
            action="output.reject",
            subject_kind="output",
            subject_id=output_id or "unknown",
            reason="the reject form's metadata is not signed by this service",
        )

    async def record_rejection(self, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        """Rejects the output on the artist's behalf with the reason typed into the form."""
        view = body.get("view") or {}
        try:
            form = buttons.parse_reject_form(
                str(view.get("private_metadata") or ""), self.desk.signer.callback_keys()
            )
        except ValueError:  # checked before it was stored; only a key retired since lands here
            log.warning("a stored reject form's metadata no longer verifies; dropped")
            return
        reason = _typed_reason(view).strip() or None  # checked before it was stored; None never in practice
        await self._decide(
            body, respond, release=False, output_id=form.output_id, channel=form.channel_id, reason=reason
        )


def _clicked(body: dict[str, Any]) -> tuple[str, str]:
    """(output id, channel) of a click on Release or Reject."""
    action = (body.get("actions") or [{}])[0]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return str(action.get("value") or ""), str(channel or "")


def _typed_reason(view: dict[str, Any]) -> str:
    values = (view.get("state") or {}).get("values") or {}
    return str(((values.get(board.REASON_BLOCK) or {}).get(board.REASON_INPUT) or {}).get("value") or "")


def register_output_actions(app: AsyncApp, desk: Desk, slack: SlackSender, inbox: SlackInbox) -> None:
    """Adds the output buttons' listeners to the bolt app; Release and the reject form's
    submission go through the inbox."""
    listeners = OutputListeners(desk, slack, inbox)
    app.action(ACTION_RELEASE)(inbox.listener("output_release", listeners.release))
    app.action(ACTION_REJECT)(listeners.reject)
    inbox.works["output_reject_submitted"] = listeners.record_rejection
    app.view(REJECT_FORM)(listeners.reject_submitted)
