"""What the outbox, the handover and the senders say to one another about one notice: the
notice as claimed, what a send left behind, and the outcomes that are not a plain send
(wait, give up, nothing to send, a place that may come back)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.models import ChannelKind

if TYPE_CHECKING:
    from sqlalchemy import Row

    from storage.tables import Notice


@dataclass(frozen=True)
class Outgoing:
    """A claimed notice, as a sender sees it."""

    id: str
    channel: ChannelKind
    recipient_kind: str
    recipient_id: str
    kind: str
    request_id: str | None
    grant_id: str | None
    payload: dict[str, Any]
    attempts: int
    created_at: datetime

    @classmethod
    def of(cls, notice: Notice | Row[Any]) -> Outgoing:
        """A stored notice (an object, or a row of its columns) as the drainer hands it to a sender."""
        return cls(
            id=notice.id,
            channel=ChannelKind(notice.channel),
            recipient_kind=notice.recipient_kind,
            recipient_id=notice.recipient_id,
            kind=notice.kind,
            request_id=notice.request_id,
            grant_id=notice.grant_id,
            payload=dict(notice.payload),
            attempts=notice.attempts,
            created_at=notice.created_at,
        )


@dataclass(frozen=True)
class Delivered:
    """What a successful send leaves behind: where the card now lives, if it was one."""

    card_chat_id: str | None = None
    card_message_id: str | None = None


class RetryLater(Exception):
    """The platform asked us to wait (429) or is failing for now; try again after `after` seconds."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.after = after


class Undeliverable(Exception):
    """This notice can never be delivered (e.g. the user blocked the bot); it is kept as failed."""


class Skipped(Exception):
    """Nothing is left to send (a reminder for a request decided meanwhile, a card that never
    reached its reader): the notice counts as sent."""


class Unreachable(Exception):
    """The recipient's place (e.g. a Slack channel) is gone or shut to the bot, which someone may
    fix: retried `patience` times in all, then given up.

    Parameters:
        place: what is unreachable, as the messages name it ("Slack channel").
        why: the platform's word for it.
        patience: how many attempts the notice gets before it is given up.
        advice: what an operator can do, logged with each retry.
    """

    def __init__(self, place: str, why: str, *, patience: int, advice: str) -> None:
        super().__init__(why)
        self.place = place
        self.why = why
        self.patience = patience
        self.advice = advice
