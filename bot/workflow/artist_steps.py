"""The artist's small steps around the transitions: the checks made before asking them to confirm
a revocation, and their card sent again (through the outbox, like every message to a person)."""

from __future__ import annotations

from bot.models import Actor, ActorKind, ChannelKind, GrantStatus
from bot.workflow.desk import Desk, Recipient, queue_notice
from bot.workflow.errors import NotAllowed, NotFound, NotOpen
from bot.workflow.grants import grant_status_at, revoke_grant
from bot.workflow.queries import GrantSummary, RequestView, grant_summary, request_view


def _owns(actor: Actor, artist_id: str) -> bool:
    return actor.kind is ActorKind.artist and actor.id == artist_id


async def check_revoke(desk: Desk, *, grant_id: str, actor: Actor) -> GrantSummary:
    """The grant this artist may revoke now, before they are asked to confirm; `Refused` otherwise
    (someone else's grant is refused by `revoke_grant` itself, which records the attempt)."""
    summary = await grant_summary(desk, grant_id)
    if summary is None:
        raise NotFound("no such consent")
    if not _owns(actor, summary.grant.artist_id):
        if actor.kind in {ActorKind.artist, ActorKind.stranger}:
            await revoke_grant(desk, grant_id=grant_id, actor=actor)  # refuses: not theirs
        raise NotAllowed("not this person's consent")
    status = grant_status_at(summary.grant, desk.clock.now())
    if status in {GrantStatus.revoked, GrantStatus.expired}:
        raise NotOpen("closed", status=status.value)
    return summary


async def own_grant(desk: Desk, *, grant_id: str, actor: Actor) -> GrantSummary:
    """The grant when it is this artist's; `NotAllowed` otherwise (nothing recorded)."""
    summary = await grant_summary(desk, grant_id)
    if summary is None or not _owns(actor, summary.grant.artist_id):
        raise NotAllowed("not this person's consent")
    return summary


async def resend_card(desk: Desk, *, request_id: str, actor: Actor) -> RequestView:
    """Queues the request's card for its artist again; the outbox sends it as a new message and
    takes the buttons off the older one. `NotAllowed` when it is not this artist's request."""
    view = await request_view(desk, request_id)
    if view is None or not _owns(actor, view.artist.id):
        raise NotAllowed("not this person's request")
    to = Recipient(ChannelKind.telegram, ActorKind.artist, view.artist.id)
    async with desk.db.transaction() as session:
        queue_notice(session, desk.clock.now(), to, "card", request_id=view.request.id)
    desk.committed(frozenset({ChannelKind.telegram}))
    return view
