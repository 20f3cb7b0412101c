"""A creator's requests: filed (a red line denies at once), withdrawn, and the artist nudged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError

from bot.models import (
    OPEN_STATUSES,
    RED_LINE_REASON,
    Actor,
    ActorKind,
    ChannelKind,
    FieldError,
    RedLines,
    RequestStatus,
    Terms,
    TermsIn,
    check_terms_timing,
    utc_iso,
)
from bot.workflow.desk import (
    Desk,
    announce,
    audit,
    load_view,
    new_id,
    reminders_already_past,
    tell_agency,
    tell_artist,
    tell_board,
    tell_creator,
    transition,
)
from bot.workflow.errors import Deactivated, InvalidInput, NotAllowed, NotFound, NotOpen
from bot.workflow.idempotency import Idempotency, idempotent_replay, remember_answer
from storage.queries import RequestView, artist_with_agency
from storage.tables import Creator, Request
from storage.writes import insert_row

NUDGE_INTERVAL = timedelta(hours=1)


@dataclass(frozen=True)
class Submitted:
    """The answer to a submission: the request, and whether this is a replay."""

    view: RequestView
    replayed: bool = False


async def submit_request(
    desk: Desk,
    *,
    creator_id: str,
    terms_in: TermsIn,
    idempotency: Idempotency | None = None,
    creator: Creator | None = None,
) -> Submitted:
    """Files a creator's request (pending: card, board post, status update); a red line denies it at once.

    `creator`, when the caller has just read it (the API's authentication), saves reading it again.
    """
    actor = Actor(ActorKind.creator, creator_id, ChannelKind.api)
    now = desk.clock.now()
    request_id = new_id("req")
    try:
        async with transition(desk, actor, "request.submit", "request", request_id) as session:
            replay = await idempotent_replay(session, creator_id, idempotency)
            if replay is not None:
                return Submitted(await load_view(session, replay.resource_id), replayed=True)
            found = await artist_with_agency(session, terms_in.artist_id)
            if found is None:
                raise InvalidInput([FieldError("artist_id", f"no artist {terms_in.artist_id}")])
            artist, agency = found
            if artist.deactivated_at is not None:
                raise Deactivated(f"artist {artist.id} is deactivated and accepts no new requests")
            due = terms_in.decision_due_at or min(
                now + desk.rules.default_decision_window, terms_in.ends_at - timedelta(seconds=1)
            )
            errors = check_terms_timing(
                terms_in, now=now, max_grant_days=desk.rules.max_grant_days, decision_due_at=due
            )
            if errors:
                raise InvalidInput(errors)
            terms = Terms.from_input(terms_in, creator_id=creator_id, decision_due_at=due)
            if artist.require_preview and not terms.preview_required:
                # The artist's standing condition, applied like a red line: no request goes without it.
                terms = terms.model_copy(update={"preview_required": True})
            crossed = RedLines.model_validate(artist.red_lines).crossed_by(terms)
            request = Request(
                id=request_id,
                creator_id=creator_id,
                artist_id=artist.id,
                terms=terms.canonical(),
                terms_hash=terms.terms_hash,
                status=RequestStatus.denied.value if crossed else RequestStatus.pending.value,
                ai_training=terms.ai_training,
                decision_due_at=due,
                reminders_sent=reminders_already_past(due, desk.rules.decision_reminders, now),
                reason=RED_LINE_REASON if crossed else None,
                created_at=now,
                updated_at=now,
                decided_at=now if crossed else None,
            )
            await insert_row(session, request)
            await audit(
                session,
                desk,
                actor,
                "request.submitted",
                "request",
                request.id,
                {"terms_hash": request.terms_hash, "artist_id": artist.id},
            )
            if creator is None or creator.id != creator_id:
                creator = await session.get(Creator, creator_id)
            if creator is None:
                raise NotFound(f"no creator {creator_id}")
            # A new request has no decisions and no grant: no need to read them back.
            view = RequestView(request, [], None, artist, agency, creator)
            if crossed:
                system = Actor(ActorKind.system, "red-lines", ChannelKind.system)
                await audit(
                    session,
                    desk,
                    system,
                    "request.denied",
                    "request",
                    request.id,
                    {"reason": RED_LINE_REASON, "crossed": crossed},
                )
            else:
                tell_artist(
                    session, now, artist, "card", request_id=request.id, dedupe_key=f"card:{request.id}"
                )
            tell_agency(
                session,
                now,
                view.agency,
                "board_post",
                request_id=request.id,
                dedupe_key=f"board:{request.id}",
            )
            tell_creator(
                session,
                now,
                view.creator,
                "request.denied" if crossed else "request.submitted",
                request_id=request.id,
                data={"status": request.status} | ({"reason": RED_LINE_REASON} if crossed else {}),
            )
            remember_answer(session, now, creator_id, idempotency, "request", request.id, 201)
            return Submitted(view)
    except IntegrityError:
        # Two submissions with one Idempotency-Key raced; the other one won, so replay it.
        if idempotency is None:
            raise
        async with desk.db.transaction() as session:
            replay = await idempotent_replay(session, creator_id, idempotency)
            if replay is None:
                raise
            return Submitted(await load_view(session, replay.resource_id), replayed=True)
    raise AssertionError("unreachable")  # pragma: no cover


async def withdraw_request(
    desk: Desk, *, creator_id: str, request_id: str, idempotency: Idempotency | None = None
) -> RequestView:
    """The creator takes back an undecided request; the card and board show it withdrawn."""
    actor = Actor(ActorKind.creator, creator_id, ChannelKind.api)
    now = desk.clock.now()
    async with transition(desk, actor, "request.withdraw", "request", request_id) as session:
        replay = await idempotent_replay(session, creator_id, idempotency)
        if replay is not None:
            return await load_view(session, replay.resource_id)
        request = await session.get(Request, request_id, with_for_update=True)
        if request is None or request.creator_id != creator_id:
            raise NotFound(f"no request {request_id}")
        status = RequestStatus(request.status)
        if status not in OPEN_STATUSES:
            raise NotOpen(f"this request is already {status.value}", status=status.value)
        request.status = RequestStatus.withdrawn.value
        request.updated_at = now
        await session.flush()
        await audit(session, desk, actor, "request.withdrawn", "request", request.id)
        view = await load_view(session, request_id)
        announce(session, now, view, "request.withdrawn")
        remember_answer(session, now, creator_id, idempotency, "request", request.id, 200)
        return view
    raise AssertionError("unreachable")  # pragma: no cover


async def nudge_artist(desk: Desk, *, request_id: str, actor: Actor) -> RequestView:
    """Re-sends the artist's card for an open request, at most once an hour."""
    now = desk.clock.now()
    async with transition(desk, actor, "request.nudge", "request", request_id) as session:
        request = await session.get(Request, request_id, with_for_update=True)
        if request is None:
            raise NotFound(f"no request {request_id}")
        view = await load_view(session, request_id)
        if view.agency is None or actor.kind is not ActorKind.agency or actor.id != view.agency.id:
            raise NotAllowed("only the artist's agency may nudge")
        if actor.member is not None and actor.member not in view.agency.slack_member_ids:
            raise NotAllowed("you are not one of the agency members allowed to act")
        if RequestStatus(request.status) not in OPEN_STATUSES:
            raise NotOpen(f"this request is {request.status}", status=request.status)
        if request.nudged_at is not None and now - request.nudged_at < NUDGE_INTERVAL:
            raise NotAllowed(
                "the artist was nudged less than an hour ago",
                next_at=utc_iso(request.nudged_at + NUDGE_INTERVAL),
            )
        request.nudged_at = now
        await audit(session, desk, actor, "request.nudged", "request", request.id)
        tell_artist(session, now, view.artist, "card", request_id=request.id, payload={"nudge": True})
        tell_board(session, now, view, "request.nudged", {"by": actor.member or actor.id})
        return view
    raise AssertionError("unreachable")  # pragma: no cover
