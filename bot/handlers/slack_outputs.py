"""The board's Release / Reject buttons under an output in a request's thread: the agency acts on
the artist's behalf where the policy lets it; the workflow checks that and audits a refusal."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot import workflow
from bot.adapters.slack import SlackSender
from bot.handlers.slack import slack_actor
from bot.render import slack as board
from bot.render.slack_outputs import ACTION_REJECT, ACTION_RELEASE
from bot.workflow import Desk

log = logging.getLogger(__name__)
AGENCY_REJECT_REASON = "rejected by the agency on the artist's behalf"


@dataclass
class OutputListeners:
    """Release and Reject clicks under an output."""

    desk: Desk
    slack: SlackSender

    async def _decide(self, body: dict[str, Any], respond: AsyncRespond, *, release: bool) -> None:
        action = (body.get("actions") or [{}])[0]
        output_id = str(action.get("value") or "")
        user = body.get("user") or {}
        user_id = str(user.get("id") or "")
        channel = str(
            (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or ""
        )
        if not output_id.startswith("out_") or len(output_id) > 64:
            await respond(text="This button is not one of the board's.", response_type="ephemeral")
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
            await respond(text=board.refusal_text(why), response_type="ephemeral", replace_original=False)
            return
        await respond(
            text="Released." if release else "Rejected.", response_type="ephemeral", replace_original=False
        )

    async def release(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Releases the output on the artist's behalf."""
        await ack()
        await self._decide(body, respond, release=True)

    async def reject(self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        """Rejects the output on the artist's behalf."""
        await ack()
        await self._decide(body, respond, release=False)


def register_output_actions(app: AsyncApp, desk: Desk, slack: SlackSender) -> None:
    """Adds the output buttons' listeners to the bolt app."""
    listeners = OutputListeners(desk, slack)
    app.action(ACTION_RELEASE)(listeners.release)
    app.action(ACTION_REJECT)(listeners.reject)
