"""The artist (or, where the policy lets it decide, their agency) releases or rejects an output.

A release needs the grant active at that moment: the output's row, then the grant's, are locked,
so a release racing a revocation either lands before it or is refused after it. A release is
signed: its receipt binds the file's SHA-256, the grant and the terms hash (verifiable offline
like a grant receipt). An output nobody released by its deadline is rejected by the sweep.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Actor, ActorKind, Policy, utc_iso
from bot.receipts import OUTPUT_RECEIPT_TYPE, RECEIPT_VERSION
from bot.workflow.decisions import check_agency_may_withdraw
from bot.workflow.desk import Desk, audit, load_view, tell_creator, transition
from bot.workflow.errors import AlreadyDecided, GrantNotActive, NotAllowed, NotFound
from bot.workflow.grants import grant_status_at
from bot.workflow.outputs import OutputStatus, output_data, tell_of_output
from storage.queries import RequestView
from storage.tables import Grant, Output, Request

LAPSED_REASON = "not released by its deadline"
ENDED_REASON = "the consent ended before it was released"


def release_receipt(
    desk: Desk, output: Output, grant: Grant, request: Request, now: datetime
) -> dict[str, Any]:
    """The signed proof that this exact file was released under this grant and these terms."""
    return desk.signer.sign(
        {
            "receipt_version": RECEIPT_VERSION,
            "type": OUTPUT_RECEIPT_TYPE,
            "issued_at": utc_iso(now),
            "output": {
                "id": output.id,
                "sha256": output.sha256,
                "media_type": output.media_type,
                "size": output.size,
            },
            "grant": {
                "id": grant.id,
                "starts_at": utc_iso(grant.starts_at),
                "ends_at": utc_iso(grant.ends_at),
            },
            "request_id": request.id,
            "terms_hash": request.terms_hash,
            "released_at": utc_iso(now),
            **(
                {"status_url": f"{desk.public_url}/public/outputs/{output.sha256}"} if desk.public_url else {}
            ),
        }
    )


def _check_actor(view: RequestView, output: Output, actor: Actor) -> None:
    """NotAllowed unless the actor is the output's artist, or their agency where it may decide."""
    if actor.kind is ActorKind.artist:
        if actor.id != output.artist_id:
            raise NotAllowed("only the artist this output shows may release it")
        return
    if actor.kind is ActorKind.agency:
        check_agency_may_withdraw(view, actor)
        if Policy(view.artist.policy) is not Policy.agency_may_decide:
            raise NotAllowed("this artist releases their outputs themselves")
        return
    raise NotAllowed("only the artist (or their agency, where it may decide) releases outputs")


def _check_may_decide(view: RequestView, output: Output, actor: Actor) -> None:
    """The one guard of `decide_output` and `check_output_decision`: the actor may decide it, and
    it still waits for a decision."""
    _check_actor(view, output, actor)
    if output.status != OutputStatus.pending:
        raise AlreadyDecided(
            f"this output was {output.status} already",
            status=output.status,
            decided_at=utc_iso(output.decided_at or output.updated_at),
            decided_by=output.decided_by_kind or "",
        )


async def check_output_decision(desk: Desk, *, output_id: str, actor: Actor) -> Output:
    """Checks, without deciding, that `actor` may release or reject this output now (before the
    reasons are offered or a form opens); a refusal is audited like a refused decision."""
    async with transition(desk, actor, "output.reject", "output", output_id) as session:
        output = await session.get(Output, output_id)
        if output is None:
            raise NotFound(f"no output {output_id}")
        _check_may_decide(await load_view(session, output.request_id), output, actor)
        return output
    raise AssertionError("unreachable")  # pragma: no cover


async def decide_output(
    desk: Desk, *, output_id: str, actor: Actor, release: bool, reason: str | None = None
) -> Output:
    """Releases (signed receipt) or rejects (with a reason) a pending output; the creator is told."""
    now = desk.clock.now()
    action = "output.release" if release else "output.reject"
    async with transition(desk, actor, action, "output", output_id) as session:
        output = await session.get(Output, output_id, with_for_update=True, populate_existing=True)
        if output is None:
            raise NotFound(f"no output {output_id}")
        view = await load_view(session, output.request_id)
        _check_may_decide(view, output, actor)
        grant = await session.get(Grant, output.grant_id, with_for_update=True, populate_existing=True)
        assert grant is not None  # an output's grant is never deleted
        if release:
            status = grant_status_at(grant, now)
            if status.value != "active":
                raise GrantNotActive(
                    f"the grant is {status.value}: nothing can be released", status=status.value
                )
        await settle_output(
            session, desk, now, output, actor=actor, release=release, reason=reason, view=view
        )
    return output


async def settle_output(
    session: AsyncSession,
    desk: Desk,
    now: datetime,
    output: Output,
    *,
    actor: Actor,
    release: bool,
    reason: str | None,
    view: RequestView | None = None,
) -> None:
    """Records the outcome (and, for a release, its receipt), audits it and tells the parties."""
    view = view or await load_view(session, output.request_id)
    output.status = OutputStatus.released if release else OutputStatus.rejected
    output.reason = None if release else reason
    output.decided_at = now
    output.decided_by_kind = actor.kind.value
    output.decided_by_id = actor.member or actor.id
    output.updated_at = now
    if release:
        grant = view.grant
        assert grant is not None
        output.receipt = release_receipt(desk, output, grant, view.request, now)
    await session.flush()
    event = "output.released" if release else "output.rejected"
    data = output_data(output) | {"reason": output.reason, "decided_by": actor.kind.value}
    await audit(session, desk, actor, event, "output", output.id, data)
    tell_creator(
        session,
        now,
        view.creator,
        event,
        request_id=view.request.id,
        grant_id=output.grant_id,
        data={"output_id": output.id, "sha256": output.sha256, "reason": output.reason},
        dedupe_key=f"{event}:{output.id}",
    )
    decided = {"output_id": output.id, "status": output.status, "by": actor.kind.value}
    # The artist's own tap edits their message; anyone else's outcome reaches them as a message.
    to_artist = (
        ("output_decided", decided | {"ended": output.reason == ENDED_REASON}, "output_decided")
        if actor.kind is not ActorKind.artist
        else None
    )
    tell_of_output(
        session, now, view, output, artist=to_artist, agency=("output_update", decided, "output_update")
    )
