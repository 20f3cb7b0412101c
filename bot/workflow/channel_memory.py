"""What the channels ask the workflow to remember: where a card or board message was posted (so
later events edit it in place), and which signed Slack requests were already handled."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from bot.models import ChannelKind
from bot.workflow.desk import Desk
from storage.replay import add_seen_signature
from storage.tables import CardRef

# Slack's signature check refuses a timestamp more than 5 minutes from now, so a request signed
# this long before another can never come back.
SLACK_REPLAY_MEMORY = timedelta(minutes=10)


async def remember_card(
    desk: Desk, *, request_id: str, channel: ChannelKind, recipient_id: str, chat_id: str, message_id: str
) -> None:
    """Stores where a request's card or board message was posted, so later events edit it in place."""
    now = desk.clock.now()
    async with desk.db.transaction() as session:
        card = await session.get(CardRef, (request_id, channel.value, recipient_id))
        if card is None:
            card = CardRef(
                request_id=request_id, channel=channel.value, recipient_id=recipient_id, created_at=now
            )
            session.add(card)
        card.chat_id, card.message_id = chat_id, message_id


async def remember_slack_request(desk: Desk, *, signature: str, signed_at: datetime) -> bool:
    """True the first time a signed Slack request is seen; False for a replay of one already handled.

    Rows older than SLACK_REPLAY_MEMORY before this request are dropped on the way.
    """
    try:
        async with desk.db.transaction() as session:
            await add_seen_signature(
                session,
                signature=signature,
                signed_at=signed_at,
                forget_before=signed_at - SLACK_REPLAY_MEMORY,
            )
    except IntegrityError:
        return False  # this signature was stored before, by this instance or another one
    return True
