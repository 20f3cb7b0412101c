"""Decisions: one guard says whether an actor may make a decision now; `decide` records it
(creating the grant on approval), `check_decision` asks the same guard without deciding."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import metrics
from bot.models import OPEN_STATUSES, Actor, ActorKind, ChannelKind, Outcome, Policy, RequestStatus, utc_iso
from bot.workflow.desk import Desk, announce, audit, load_view, new_id, transition
from bot.workflow.errors import AlreadyDecided, NeedsConfirmation, NotAllowed, NotOpen, TermsChanged
from bot.workflow.grants import create_grant
from storage.queries import RequestView
from storage.tables import Decision
from storage.writes import insert_row, update_row


@dataclass(frozen=True)
class Decided:
    """The outcome of a decision: the request as it now stands."""

    view: RequestView
    decision: Decision


def who_decided(view: RequestView) -> dict[str, Any]:
    """Who made the decisive decision, where and when: what a late decider is told."""
    decisive = [d for d in view.decisions if d.outcome == Outcome.deny.value] or view.decisions
    if not decisive:
        return {"status": view.request.status}
    last = decisive[-1]
    return {
        "status": view.request.status,
        "decided_by": last.actor_kind,
        "decided_by_name": last.actor_display,
        "channel": last.channel,
        "decided_at": utc_iso(last.created_at),
    }


def seen_terms_hash(request_terms_hash: str, seen: str | None) -> str:
    """The hash of the terms a button showed, from the start of it the button carried (signed).

    A button that carries none (the request's line in /pending, the reason prompt) stands for the
    request's own terms, which never change (a change is a new request). A start that is not the
    request's is returned as it is, so that the decision is refused as made on changed terms.
    """
    if seen is None or request_terms_hash.startswith(seen):
        return request_terms_hash
    return seen


def check_may_decide(
    view: RequestView,
    actor: Actor,
    outcome: Outcome,
    *,
    now: datetime,
    ai_training_confirmed: bool = False,
    terms_hash: str | None = None,
) -> None:
    """The guard of every decision, its refusals in this order: the request is still open, the
    actor may make this decision, their party has not decided yet, the terms they saw are the
    request's (when `terms_hash` is given), and the deadline has not passed."""
    status = RequestStatus(view.request.status)
    if status not in OPEN_STATUSES:
        if status in {RequestStatus.approved, RequestStatus.denied}:
            raise AlreadyDecided(f"this request was already {status.value}", **who_decided(view))
        raise NotOpen(f"this request is {status.value}", status=status.value)
    _check_role(view, actor, outcome, ai_training_confirmed)
    if actor.kind.value in {d.actor_kind for d in view.decisions}:
        raise AlreadyDecided("you already approved; waiting for the co-signature", **who_decided(view))
    if terms_hash is not None and terms_hash != view.request.terms_hash:
        raise TermsChanged("the terms you saw are not this request's terms")
    if now >= view.request.decision_due_at:
        raise NotOpen("the decision deadline has passed", status=RequestStatus.lapsed.value)


def _check_role(view: RequestView, actor: Actor, outcome: Outcome, ai_training_confirmed: bool) -> None:
    """Raises NotAllowed / NeedsConfirmation unless the actor's role and the artist's policy allow it."""
    policy = Policy(view.artist.policy)
    if actor.kind is ActorKind.artist:
        if actor.id != view.artist.id:
            raise NotAllowed("only the artist this request is for may decide it")
        if outcome is Outcome.approve and view.request.ai_training and not ai_training_confirmed:
            raise NeedsConfirmation("approving AI training needs a second, explicit confirmation")
        return
    if actor.kind is ActorKind.agency:
        agency = view.agency
        if agency is None or actor.id != agency.id:
            raise NotAllowed("this artist is not on your agency's roster")
        if actor.member is not None and actor.member not in agency.slack_member_ids:
            raise NotAllowed("you are not one of the agency members allowed to act")
        refusal = _policy_refusal(policy, outcome, ai_training=view.request.ai_training)
        if refusal is not None and policy is Policy.artist_only:
            raise NotAllowed(refusal)
        if outcome is Outcome.approve and view.artist.paused_at is not None:
            raise NotAllowed("the artist has paused every consent: only the artist can approve now")
        if refusal is not None:
            raise NotAllowed(refusal)
        return
    raise NotAllowed("you may not decide this request")


def _policy_refusal(policy: Policy, outcome: Outcome, *, ai_training: bool) -> str | None:
    """What the artist's policy says to their agency making `outcome`: None when it may."""
    if policy is Policy.artist_only:
        return "this artist decides alone (policy artist_only)"
    if outcome is Outcome.approve and ai_training and policy is Policy.agency_may_decide:
        return "AI training is personal consent: only the artist can approve it"
    return None


def agency_outcomes(view: RequestView) -> tuple[Outcome, ...]:
    """The decisions the artist's policy leaves to their agency on this request now (approve,
    deny, in that order): none once it is closed or the agency has decided. The board shows
    these as buttons (no approval while the artist has paused every consent); a click is checked again
    by `check_may_decide`."""
    if RequestStatus(view.request.status) not in OPEN_STATUSES:
        return ()
    if ActorKind.agency.value in {d.actor_kind for d in view.decisions}:
        return ()
    policy = Policy(view.artist.policy)
    paused = view.artist.paused_at is not None  # only the artist approves while everything is paused
    return tuple(
        outcome
        for outcome in (Outcome.approve, Outcome.deny)
        if _policy_refusal(policy, outcome, ai_training=view.request.ai_training) is None
        and not (paused and outcome is Outcome.approve)
    )


def check_agency_may_withdraw(view: RequestView, actor: Actor) -> None:
    """Whether an agency (member) may withdraw the artist's consent for them, e.g. revoke a grant:
    exactly where it may deny on the artist's behalf. Raises NotAllowed otherwise."""
    if actor.kind is not ActorKind.agency:
        raise NotAllowed("only the artist's agency may act on the artist's behalf")
    _check_role(view, actor, Outcome.deny, ai_training_confirmed=False)


def agency_may_withdraw(view: RequestView) -> bool:
    """Whether the artist's policy lets their agency withdraw consent on their behalf (the button
    shown on the board; the click is checked again by `check_agency_may_withdraw`)."""
    if view.agency is None:
        return False
    try:
        check_agency_may_withdraw(view, Actor(ActorKind.agency, view.agency.id, ChannelKind.slack))
    except NotAllowed:
        return False
    return True


async def decide(
    desk: Desk,
    *,
    request_id: str,
    actor: Actor,
    outcome: Outcome,
    terms_hash: str | None = None,
    terms_seen: str | None = None,
    reason: str | None = None,
    ai_training_confirmed: bool = False,
) -> Decided:
    """Records one approve or deny; exactly one decision wins when several race.

    The decider saw the terms `terms_hash`; a Telegram button carries only the start of that
    hash (`terms_seen`, read in the decision's own transaction by `seen_terms_hash`) and leaves
    `terms_hash` None."""
    now = desk.clock.now()
    async with transition(desk, actor, f"decision.{outcome.value}", "request", request_id) as session:
        # One read of the view, the request's and the artist's rows locked: the artist's row orders
        # this decision against a pause or resume (see pause.py).
        view = await load_view(session, request_id, for_update=True)
        request = view.request
        if terms_hash is None:
            terms_hash = seen_terms_hash(request.terms_hash, terms_seen)
        check_may_decide(
            view, actor, outcome, now=now, ai_training_confirmed=ai_training_confirmed, terms_hash=terms_hash
        )
        already = {d.actor_kind for d in view.decisions}
        decision = Decision(
            id=new_id("dec"),
            request_id=request.id,
            actor_kind=actor.kind.value,
            actor_id=actor.member or actor.id,
            actor_display=actor.display,
            channel=actor.channel.value,
            outcome=outcome.value,
            terms_hash=terms_hash,
            ai_training_confirmed=ai_training_confirmed,
            reason=reason,
            created_at=now,
        )
        await insert_row(session, decision)
        policy = Policy(view.artist.policy)
        if outcome is Outcome.deny:
            change = {"status": RequestStatus.denied.value, "reason": reason, "decided_at": now}
        elif policy is Policy.both_required and not already:
            change = {"status": RequestStatus.awaiting_cosign.value}
        else:
            change = {"status": RequestStatus.approved.value, "decided_at": now}
        await update_row(session, request, **change, updated_at=now)
        await audit(
            session,
            desk,
            actor,
            f"decision.{outcome.value}",
            "request",
            request.id,
            {
                "terms_hash": terms_hash,
                "status": request.status,
                "reason": reason,
                "ai_training_confirmed": ai_training_confirmed,
            },
        )
        # The view read at the start is still right but for this decision and the grant: extend it
        # instead of reading it all again (the tap path is latency-bound).
        view = dataclasses.replace(view, decisions=[*view.decisions, decision])
        if request.status == RequestStatus.approved.value:
            view = dataclasses.replace(view, grant=await create_grant(session, desk, view, now))
        announce(session, now, view, f"request.{request.status}", **who_decided(view))
        decided = Decided(view, decision)
    metrics.DECISIONS.labels(channel=actor.channel.value, outcome=outcome.value).inc()
    return decided


async def check_decision(desk: Desk, *, request_id: str, actor: Actor, outcome: Outcome) -> RequestView:
    """Checks, without deciding, that `actor` may make this decision now (e.g. before a deny form opens).

    The same guard as `decide`; a refusal is audited like a refused decision.
    """
    async with transition(desk, actor, f"decision.{outcome.value}", "request", request_id) as session:
        view = await load_view(session, request_id)
        check_may_decide(view, actor, outcome, now=desk.clock.now())
        return view
    raise AssertionError("unreachable")  # pragma: no cover
