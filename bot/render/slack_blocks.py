"""Block Kit's small pieces: the message shape, escaping, Slack dates, sections and buttons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

Block = dict[str, Any]

# Slack's limit on a section's text (Block Kit reference); longer texts are cut with an ellipsis.
SECTION_MAX = 3000


@dataclass(frozen=True)
class SlackMessage:
    """A message as chat.postMessage / chat.update take it: fallback text, blocks, metadata."""

    text: str
    blocks: list[Block]
    metadata: dict[str, Any] | None = None


# ---------------------------------------------------------------- small pieces


def escape(text: str) -> str:
    """Escapes &, < and > so that text from creators can never ping @channel or forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """The text, or its first `limit - 1` characters and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_date(moment: datetime, style: str = "{date_short_pretty} {time}") -> str:
    """A date every reader sees in their own time zone, with UTC as the fallback text."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{style}|{fallback}>"


def iso_date(value: Any) -> str:
    """A stored ISO timestamp as a Slack date; anything unreadable as it is."""
    try:
        return slack_date(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return escape(str(value))


def mention(member: str | None) -> str:
    """A Slack member as a mention, or their id as escaped text when it is not a member id."""
    # Slack member ids are upper-case alphanumerics; anything else is shown, not linked.
    return f"<@{member}>" if member and member.isalnum() else escape(member or "someone")


def mrkdwn(text: str) -> Block:
    """A mrkdwn text object."""
    return {"type": "mrkdwn", "text": text}


def section(text: str) -> Block:
    """A section block, its text cut to Slack's limit."""
    return {"type": "section", "text": mrkdwn(cut(text, SECTION_MAX))}


def button(action_id: str, label: str, value: str, style: str | None = None) -> Block:
    """A Block Kit button carrying `value` back when pressed."""
    button: Block = {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label, "emoji": True},
        "value": value,
    }
    if style:
        button["style"] = style
    return button
