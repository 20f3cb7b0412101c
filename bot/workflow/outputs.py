"""Outputs: a file a creator made under a grant, submitted for the artist to release or reject.

A submission is checked (type, size, whole) and staged before any transaction; the transaction
then checks the grant (the creator's own, active now), that the same file is not pending or
decided under it already, and the creator's quota, and only then keeps the file and writes the
row, its audit event and the notices. A refusal anywhere leaves no row and no file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clean_text import MAX_DESCRIPTION, CleanText
from bot.models import Actor, ActorKind, ChannelKind, FieldError, GrantStatus, utc_iso
from bot.output_files import OutputFiles, Sha256Mismatch, Staged
from bot.workflow.desk import (
    Desk,
    audit,
    load_creators_grant,
    new_id,
    tell_agency,
    tell_artist,
    transition,
)
from bot.workflow.errors import GrantNotActive, InvalidInput, NotFound, OutputExists, OverQuota
from bot.workflow.grants import grant_status_at
from storage.queries import RequestView, load_request_view
from storage.tables import Artist, Grant, Output

# mypy reads this Annotated form as `type[str]` or not depending on which files it checks together.
_DESCRIPTION: TypeAdapter[str] = TypeAdapter(
    Annotated[CleanText, Field(min_length=1, max_length=MAX_DESCRIPTION)]  # type: ignore[arg-type, unused-ignore]
)


# A notice about an output: its kind, its payload, and the start of its dedupe key (the output's id
# ends it, so each party hears of one output once).
OutputNotice = tuple[str, dict[str, Any], str]


def tell_of_output(
    session: AsyncSession,
    now: datetime,
    view: RequestView,
    output: Output,
    *,
    artist: OutputNotice | None,
    agency: OutputNotice,
) -> None:
    """Queues a notice about an output for the artist (unless `artist` is None), then for the
    agency's board."""
    for tell, notice in (
        (partial(tell_artist, session, now, view.artist), artist),
        (partial(tell_agency, session, now, view.agency), agency),
    ):
        if notice is not None:
            kind, payload, key = notice
            tell(
                kind,
                request_id=view.request.id,
                grant_id=output.grant_id,
                payload=payload,
                dedupe_key=f"{key}:{output.id}",
            )


class OutputStatus:
    """Where an output stands."""

    pending = "pending"
    released = "released"
    rejected = "rejected"


def check_description(value: str | None) -> str:
    """The output's description, cleaned; InvalidInput (field `description`) otherwise."""
    try:
        return _DESCRIPTION.validate_python((value or "").strip())
    except ValidationError as error:
        message = str(error.errors()[0].get("msg", "is not valid")).removeprefix("Value error, ")
        raise InvalidInput([FieldError("description", message)]) from None


def files_of(desk: Desk) -> OutputFiles:
    """The desk's output folder; outputs are refused (404-free, plainly) when none is set."""
    if desk.output_files is None:
        raise InvalidInput([FieldError("file", "this service keeps no output files (no DATA_DIR)")])
    return desk.output_files


async def submit_output(
    desk: Desk,
    *,
    creator_id: str,
    grant_id: str,
    declared_type: str | None,
    chunks: AsyncIterator[bytes],
    description: str | None,
    expected_sha256: str | None = None,
) -> Output:
    """Keeps a creator's output of one of its active grants, pending the artist's release; the
    artist is sent it in Telegram, the agency in the request's thread."""
    text = check_description(description)
    files = files_of(desk)
    staged = await files.stage(declared_type, chunks)
    try:
        if expected_sha256 is not None and staged.sha256 != expected_sha256.lower():
            raise Sha256Mismatch(f"the file's SHA-256 is {staged.sha256}, not the {expected_sha256} stated")
        return await _record(desk, files, staged, creator_id=creator_id, grant_id=grant_id, text=text)
    except BaseException:
        OutputFiles.drop(staged)
        raise


async def _record(
    desk: Desk, files: OutputFiles, staged: Staged, *, creator_id: str, grant_id: str, text: str
) -> Output:
    actor = Actor(ActorKind.creator, creator_id, ChannelKind.api)
    now = desk.clock.now()
    kept_now = False
    try:
        async with transition(desk, actor, "output.submit", "grant", grant_id) as session:
            grant = await load_creators_grant(session, grant_id, creator_id)
            # The artist's row orders this against a pause or resume, the grant's against a revocation.
            await session.get(Artist, grant.artist_id, with_for_update=True, populate_existing=True)
            await session.get(Grant, grant.id, with_for_update=True, populate_existing=True)
            status = grant_status_at(grant, now)
            if status is not GrantStatus.active:
                raise GrantNotActive(f"grant {grant_id} is {status.value}, not active", status=status.value)
            existing = await session.scalar(
                select(Output.id).where(Output.grant_id == grant.id, Output.sha256 == staged.sha256)
            )
            if existing is not None:
                raise OutputExists(f"this file was submitted under grant {grant_id} already", id=existing)
            used = await session.scalar(
                select(func.coalesce(func.sum(Output.size), 0)).where(Output.creator_id == creator_id)
            )
            if int(used or 0) + staged.size > desk.rules.output_quota:
                raise OverQuota(
                    f"your outputs would take {int(used or 0) + staged.size} bytes; "
                    f"OUTPUT_QUOTA allows {desk.rules.output_quota}",
                    used=int(used or 0),
                    quota=desk.rules.output_quota,
                )
            output = Output(
                id=new_id("out"),
                grant_id=grant.id,
                request_id=grant.request_id,
                creator_id=creator_id,
                artist_id=grant.artist_id,
                sha256=staged.sha256,
                media_type=staged.media_type,
                size=staged.size,
                description=text,
                status=OutputStatus.pending,
                release_due_at=min(now + desk.rules.default_decision_window, grant.ends_at),
                reminders_sent=0,
                created_at=now,
                updated_at=now,
            )
            session.add(output)
            await session.flush()
            await audit(session, desk, actor, "output.submitted", "output", output.id, output_data(output))
            view = await load_request_view(session, grant.request_id)
            if view is None:
                raise NotFound(f"no request {grant.request_id}")
            shown = {"output_id": output.id}
            tell_of_output(
                session,
                now,
                view,
                output,
                artist=("output_review", shown, "output"),
                agency=("output_post", shown, "output-board"),
            )
            kept_now = files.keep(staged)
    except BaseException:
        if kept_now:
            files.forget(staged.sha256)
        raise
    return output


def output_data(output: Output) -> dict[str, object]:
    """What the audit chain and notices carry of an output."""
    return (
        {"output_id": output.id}
        | output.columns("grant_id", "sha256", "media_type", "size", "status")
        | {"release_due_at": utc_iso(output.release_due_at)}
    )


@dataclass(frozen=True)
class OutputView:
    """An output as its creator reads it."""

    output: Output

    def public(self) -> dict[str, object]:
        """The JSON of GET /v1/outputs/{id}."""
        o = self.output
        return {
            "id": o.id,
            "grant_id": o.grant_id,
            "sha256": o.sha256,
            "media_type": o.media_type,
            "size": o.size,
            "description": o.description,
            "status": o.status,
            "reason": o.reason,
            "release_due_at": utc_iso(o.release_due_at),
            "decided_at": _when(o.decided_at),
            "created_at": utc_iso(o.created_at),
        }


def _when(moment: datetime | None) -> str | None:
    return utc_iso(moment) if moment is not None else None


async def creators_output(desk: Desk, output_id: str, creator_id: str) -> OutputView:
    """The creator's own output; NotFound for none and for another creator's."""
    async with desk.db.transaction() as session:
        output = await session.get(Output, output_id)
        if output is None or output.creator_id != creator_id:
            raise NotFound(f"no output {output_id}")
        return OutputView(output)


async def released_outputs(session: AsyncSession, grant_id: str) -> frozenset[str]:
    """The SHA-256s of a grant's released outputs (what a publish or distribute use may cite)."""
    rows = await session.scalars(
        select(Output.sha256).where(Output.grant_id == grant_id, Output.status == OutputStatus.released)
    )
    return frozenset(rows)


async def public_releases(desk: Desk, sha256: str) -> dict[str, object]:
    """Whether this exact file was released, under which grants and until when (no key needed).

    Only released outputs are named: a pending or rejected one reads as not released.
    """
    now = desk.clock.now()
    async with desk.db.read() as session:
        rows = (
            await session.execute(
                select(Output, Grant)
                .join(Grant, Grant.id == Output.grant_id)
                .where(Output.sha256 == sha256, Output.status == OutputStatus.released)
                .order_by(Output.decided_at)
            )
        ).all()
    releases = []
    for output, grant in rows:
        status = grant_status_at(grant, now)
        until = grant.revoked_at if status is GrantStatus.revoked and grant.revoked_at else grant.ends_at
        releases.append(
            {
                "grant_id": grant.id,
                "grant_status": status.value,
                "released_at": _when(output.decided_at),
                "valid_until": utc_iso(until),
                "in_force": status is GrantStatus.active,
                "status_url": f"/public/grants/{grant.id}",
                "receipt": output.receipt,
            }
        )
    return {"sha256": sha256, "released": bool(releases), "checked_at": utc_iso(now), "releases": releases}


async def released_of_grant(desk: Desk, grant_id: str) -> list[str]:
    """The SHA-256s of a grant's released outputs, oldest release first (the public page links them)."""
    async with desk.db.read() as session:
        rows = await session.scalars(
            select(Output.sha256)
            .where(Output.grant_id == grant_id, Output.status == OutputStatus.released)
            .order_by(Output.decided_at)
        )
        return list(rows)
