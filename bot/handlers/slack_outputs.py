"""The board's Release / Reject buttons under an output in a request's thread: the agency acts on
the artist's behalf where the policy lets it; the workflow checks that and audits a refusal."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot import workflow
from bot.adapters.slack import SlackSender
from bot.handlers.slack import board_agency, slack_actor
from bot.handlers.slack_inbox import SlackInbox
from bot.render import slack as board
from bot.render import slack_answers as answers
from bot.render import slack_outputs as texts
from bot.render.slack_outputs import ACTION_REJECT, ACTION_RELEASE
from bot.workflow import Desk

log = logging.getLogger(__name__)
AGENCY_REJECT_REASON = "rejected by the agency on the artist's behalf"


@dataclass
class OutputListeners:
    """Release and Reject clicks under an output, each taken through the inbox before its ack."""

    desk: Desk
    slack: SlackSender

    async def _decide(self, body: dict[str, Any], respond: AsyncRespond | None, *, release: bool) -> None:
        action = (body.get("actions") or [{}])[0]
        output_id = str(action.get("value") or "")
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        channel = str(
            (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
        )
        agency = await board_agency(self.desk, channel)
        if not output_id.startswith("out_") or len(output_id) > 64:
            await self._tell(channel, user_id, answers.foreign_button(agency), respond)
            return
        actor = await slack_actor(
            self.desk,
            channel_id=channel,
            user_id=user_id,
            user_name=str(user.get("name") or user.get("username") or user_id),
        )
        try:
            await workflow.decide_output(
                self.desk,
                output_id=output_id,
                actor=actor,
                release=release,
                reason=None if release else AGENCY_REJECT_REASON,
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

    async def reject(self, body: dict[str, Any], respond: AsyncRespond | None) -> None:
        """Rejects the output on the artist's behalf."""
        await self._decide(body, respond, release=False)


def register_output_actions(app: AsyncApp, desk: Desk, slack: SlackSender, inbox: SlackInbox) -> None:
    """Adds the output buttons' listeners to the bolt app; the clicks go through the inbox."""
    listeners = OutputListeners(desk, slack)
    app.action(ACTION_RELEASE)(inbox.listener("output_release", listeners.release))
    app.action(ACTION_REJECT)(inbox.listener("output_reject", listeners.reject))
