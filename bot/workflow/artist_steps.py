"""The artist's small steps around the transitions: the checks made before asking them something
(confirm a revocation, give a reason), the question itself and their card sent again, each
through the outbox like every message to a person."""

from __future__ import annotations

from typing import Unpack

from bot.models import Actor, ActorKind, ChannelKind, GrantStatus, Outcome
from bot.workflow.decisions import check_decision
from bot.workflow.desk import Desk, NoticeDetail, Recipient, queue_notice
from bot.workflow.errors import NotAllowed, NotFound, NotOpen
from bot.workflow.grants import grant_status_at, revoke_grant
from bot.workflow.output_release import check_output_decision
from bot.workflow.pause import check_may_ask_pause, pause_artist
from bot.workflow.queries import GrantSummary, RequestView, artist_row, grant_summary, request_view

# The questions put to an artist, each a notice kind the Telegram sender renders.
REVOKE_QUESTION = "revoke_question"
DENY_PROMPT = "deny_prompt"
PAUSE_PROMPT = "pause_prompt"
OUTPUT_PROMPT = "output_prompt"
QUESTIONS = frozenset({REVOKE_QUESTION, DENY_PROMPT, PAUSE_PROMPT, OUTPUT_PROMPT})


def _owns(actor: Actor, artist_id: str) -> bool:
    return actor.kind is ActorKind.artist and actor.id == artist_id


def check_own_question(actor: Actor, artist_id: str) -> None:
    """`NotAllowed` unless the actor is the artist a question was put to (only they may cancel it)."""
    if not _owns(actor, artist_id):
        raise NotAllowed("not this person's consents")


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
    await _tell(desk, view.artist.id, "card", request_id=view.request.id)
    return view


async def _tell(
    desk: Desk,
    artist_id: str,
    kind: str,
    *,
    request_id: str | None = None,
    **detail: Unpack[NoticeDetail],
) -> None:
    """Queues one message for the artist alone; nothing else changes, so nothing is audited."""
    to = Recipient(ChannelKind.telegram, ActorKind.artist, artist_id)
    async with desk.db.transaction() as session:
        queue_notice(session, desk.clock.now(), to, kind, request_id=request_id, **detail)
    desk.committed(frozenset({ChannelKind.telegram}))


async def ask_to_revoke(desk: Desk, *, grant_id: str, actor: Actor) -> GrantSummary:
    """Asks the artist, through the outbox, to confirm revoking the grant; `Refused` as `check_revoke`."""
    summary = await check_revoke(desk, grant_id=grant_id, actor=actor)
    await _tell(desk, summary.grant.artist_id, REVOKE_QUESTION, grant_id=grant_id)
    return summary


async def ask_deny_reason(desk: Desk, *, request_id: str, actor: Actor, reply_to: int | None) -> RequestView:
    """Asks the artist for a reason in their own words, as a reply to the card (`reply_to`, the
    card's message) once they may deny the request now; `Refused` (and audited) otherwise."""
    view = await check_decision(desk, request_id=request_id, actor=actor, outcome=Outcome.deny)
    await _tell(desk, view.artist.id, DENY_PROMPT, request_id=request_id, payload={"reply_to": reply_to})
    return view


async def ask_pause_reason(desk: Desk, *, artist_id: str, actor: Actor) -> None:
    """Asks the artist why they pause, once they may pause now; someone else's attempt is refused
    by `pause_artist` itself, which records it; `NotOpen` when everything is paused already."""
    if not _owns(actor, artist_id):
        if actor.kind in {ActorKind.artist, ActorKind.stranger}:
            await pause_artist(desk, artist_id=artist_id, actor=actor)  # refuses: not theirs
        raise NotAllowed("only the artist may pause their own consents")
    artist = await artist_row(desk, artist_id)
    if artist is None:
        raise NotFound(f"no artist {artist_id}")
    check_may_ask_pause(artist)
    await _tell(desk, artist_id, PAUSE_PROMPT)


async def ask_output_reason(desk: Desk, *, output_id: str, actor: Actor, reply_to: int | None) -> None:
    """Asks the artist why they reject the output, as a reply to it (`reply_to`, the output's
    message), once they may decide it now; `Refused` (and audited) otherwise."""
    output = await check_output_decision(desk, output_id=output_id, actor=actor)
    await _tell(desk, output.artist_id, OUTPUT_PROMPT, payload={"output_id": output.id, "reply_to": reply_to})
