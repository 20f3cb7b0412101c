"""Proof that anyone can check: signed grant-status statements and signed audit checkpoints.

A statement says what a grant's status was at `checked_at`, signed with the receipt key set; it
holds for STATEMENT_VALIDITY. A checkpoint signs the audit chain's head `{seq, head_hash,
created_at, kid}`; copies kept outside the database (Slack reports, operators' files) let
`likeness audit verify --checkpoints` see a rewrite of the chain by whoever runs the database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy.exc import IntegrityError

from bot.keys import KeySet, ProofError, check_signature, parse_time
from bot.models import GrantStatus, utc_iso
from bot.workflow import Desk, NotFound, grant_status_at
from storage.audit import GENESIS_HASH
from storage.checkpoints import (
    ChainHashes,
    add_checkpoint,
    audit_head,
    chain_hashes_at,
    chain_holds_between,
    checkpoints_after,
    latest_checkpoint,
)
from storage.tables import Artist, Creator, Grant, Request

STATEMENT_VALIDITY = timedelta(hours=24)
# Clocks differ a little between a service and a verifier; a statement from "just ahead" is fine.
CLOCK_TOLERANCE = timedelta(minutes=5)


class GrantStatusFields(TypedDict):
    """What a grant-status statement says about a grant (and signs), field by field."""

    id: str
    status: str
    artist: dict[str, str]
    creator: dict[str, str]
    project_title: str
    terms_hash: str
    starts_at: str
    ends_at: str
    ai_training: bool
    checked_at: str


STATEMENT_FIELDS = tuple(GrantStatusFields.__annotations__)
CHECKPOINT_FIELDS = ("seq", "head_hash", "created_at")
GRANT_ID = re.compile(r"^grt_[0-9a-f]{16}$")


def is_grant_id(text: str) -> bool:
    """True for text shaped like a grant id; anything else is never looked up."""
    return GRANT_ID.fullmatch(text) is not None


def public_status(grant: Grant, artist: Artist | None, moment: datetime) -> GrantStatus:
    """A grant's status for the public: revoked and expired first, then paused, then the window."""
    status = grant_status_at(grant, moment)
    if status in {GrantStatus.revoked, GrantStatus.expired, GrantStatus.paused}:
        return status
    paused = grant.status == GrantStatus.paused.value or grant.paused_at is not None
    if paused or (artist is not None and artist.paused_at is not None):
        return GrantStatus.paused
    return status


async def grant_statement(desk: Desk, grant_id: str) -> dict[str, Any]:
    """The public status of a grant with its signed statement; NotFound for an unknown id."""
    if not is_grant_id(grant_id):
        raise NotFound("no grant with this id")
    now = desk.clock.now()
    async with desk.db.read() as session:
        grant = await session.get(Grant, grant_id)
        if grant is None:
            raise NotFound(f"no grant {grant_id}")
        request = await session.get(Request, grant.request_id)
        artist = await session.get(Artist, grant.artist_id)
        creator = await session.get(Creator, grant.creator_id)
    assert request is not None and artist is not None and creator is not None
    body: GrantStatusFields = {
        "id": grant.id,
        "status": public_status(grant, artist, now).value,
        "artist": {"id": artist.id, "name": artist.name},
        "creator": {"id": creator.id, "name": creator.name},
        "project_title": str(request.terms.get("project_title", "")),
        "terms_hash": request.terms_hash,
        "starts_at": utc_iso(grant.starts_at),
        "ends_at": utc_iso(grant.ends_at),
        "ai_training": bool(request.ai_training),
        "checked_at": utc_iso(now),
    }
    unsigned = dict(body)
    return unsigned | {"statement": desk.signer.sign(unsigned)}


def verify_statement(statement: Any, keys: KeySet, now: datetime) -> dict[str, Any]:
    """Checks a statement's signature, shape and age; returns its fields or raises ProofError."""
    if not isinstance(statement, dict):
        raise ProofError("the statement is not a JSON object")
    expected = {*STATEMENT_FIELDS, "kid", "signature"}
    if set(statement) != expected:
        raise ProofError("the statement does not hold exactly the fields of a grant status")
    checked_at = parse_time(statement["checked_at"], "checked_at")
    check_signature(statement, keys, signed_at=checked_at)
    if checked_at > now + CLOCK_TOLERANCE:
        raise ProofError(f"the statement is dated in the future ({statement['checked_at']})")
    if now - checked_at > STATEMENT_VALIDITY:
        raise ProofError(f"the statement from {statement['checked_at']} is older than 24 h; ask again")
    return {name: statement[name] for name in STATEMENT_FIELDS}


# ---------------------------------------------------------------- checkpoints


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint as read from a witness: the chain reached `head_hash` at event `seq`."""

    seq: int
    head_hash: str
    created_at: str
    document: dict[str, Any]

    @property
    def name(self) -> str:
        """How a person refers to it."""
        return f"checkpoint seq {self.seq} ({self.created_at})"


def read_checkpoint(document: Any, keys: KeySet) -> Checkpoint:
    """Checks one checkpoint's shape and signature; raises ProofError naming what is wrong."""
    if not isinstance(document, dict) or set(document) != {*CHECKPOINT_FIELDS, "kid", "signature"}:
        raise ProofError("a checkpoint holds exactly seq, head_hash, created_at, kid and signature")
    seq, head_hash, created_at = document["seq"], document["head_hash"], document["created_at"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ProofError("a checkpoint's seq is a positive whole number")
    if not isinstance(head_hash, str) or not re.fullmatch(r"[0-9a-f]{64}", head_hash):
        raise ProofError(f"checkpoint seq {seq}: head_hash is not a SHA-256 hex digest")
    signed_at = parse_time(created_at, f"checkpoint seq {seq}: created_at")
    try:
        check_signature(document, keys, signed_at=signed_at)
    except ProofError as why:
        raise ProofError(f"checkpoint seq {seq} ({created_at}): {why}") from None
    return Checkpoint(seq, head_hash, str(created_at), document)


@dataclass(frozen=True)
class CheckpointReport:
    """What comparing the chain with the witnessed checkpoints found."""

    checked_events: int
    checkpoints: int
    broken: Checkpoint | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        """True when the chain reaches every checkpoint's head."""
        return self.broken is None and self.problem is None


def compare_with_checkpoints(chain: ChainHashes, checkpoints: Iterable[Checkpoint]) -> CheckpointReport:
    """Names the first checkpoint (by seq) that the chain as it is now no longer reaches."""
    ordered = sorted(checkpoints, key=lambda c: c.seq)
    for checkpoint in ordered:
        if chain.first_bad is not None and checkpoint.seq >= chain.first_bad:
            problem = f"the chain breaks before it: event {chain.first_bad}: {chain.problem}"
            return CheckpointReport(chain.checked, len(ordered), checkpoint, problem)
        found = chain.hashes.get(checkpoint.seq)
        if found is None:
            problem = f"the chain ends at event {chain.checked}; events up to {checkpoint.seq} were removed"
            return CheckpointReport(chain.checked, len(ordered), checkpoint, problem)
        if found != checkpoint.head_hash:
            problem = (
                f"event {checkpoint.seq} now hashes to {found[:16]}…, "
                f"not the signed {checkpoint.head_hash[:16]}…"
            )
            return CheckpointReport(chain.checked, len(ordered), checkpoint, problem)
    if chain.first_bad is not None:
        return CheckpointReport(
            chain.checked, len(ordered), None, f"event {chain.first_bad}: {chain.problem}"
        )
    return CheckpointReport(chain.checked, len(ordered))


async def verify_against_checkpoints(desk: Desk, checkpoints: list[Checkpoint]) -> CheckpointReport:
    """Walks the database's chain once and compares it with signed checkpoints from a witness."""
    async with desk.db.read() as session:
        chain = await chain_hashes_at(session, {c.seq for c in checkpoints})
    return compare_with_checkpoints(chain, checkpoints)


class CheckpointRefused(ProofError):
    """The chain in the database no longer reaches the last checkpoint: nothing new is signed."""


@dataclass(frozen=True)
class Taken:
    """A checkpoint document, and whether this call made it (False: it existed already)."""

    document: dict[str, Any]
    created: bool


def interval_slot(moment: datetime, interval: timedelta) -> str:
    """The name of the interval a moment falls in, the same on every instance."""
    seconds = max(1, int(interval.total_seconds()))
    return f"{seconds}s:{int(moment.timestamp()) // seconds}"


async def take_checkpoint(desk: Desk, *, slot: str | None = None) -> Taken | None:
    """Signs the chain's head unless it is already signed; None while the chain is empty.

    Before signing, the events since the last checkpoint must link from its head to the current
    one: the service never signs a chain that was cut or rewritten under it.
    """
    now = desk.clock.now()
    # The walk runs in a read transaction: on SQLite the write lock is held only for the insert,
    # never while a long chain is walked.
    async with desk.db.read() as session:
        seq, head_hash = await audit_head(session)
        latest = await latest_checkpoint(session)
        if seq == 0:
            return None
        start_seq, start_hash = (latest.seq, latest.head_hash) if latest else (0, GENESIS_HASH)
        if latest is not None and seq <= latest.seq:
            if seq == latest.seq and head_hash == latest.head_hash:
                return Taken(latest.document, created=False)
            raise CheckpointRefused(
                f"the audit head (event {seq}) no longer reaches checkpoint seq {latest.seq} "
                f"({latest.document.get('created_at')}); run likeness audit verify --checkpoints"
            )
        problem = await chain_holds_between(session, start_seq, start_hash, seq, head_hash)
    if problem is not None:
        name = f"checkpoint seq {start_seq}" if latest else "the start of the chain"
        raise CheckpointRefused(f"the chain since {name} does not hold: {problem}")
    try:
        async with desk.db.transaction() as session:
            row = add_checkpoint(
                session,
                seq=seq,
                head_hash=head_hash,
                created_at=now,
                slot=slot,
                sign=desk.signer.sign,
                created_iso=utc_iso(now),
            )
            await session.flush()
            return Taken(row.document, created=True)
    except IntegrityError:
        # Another instance signed this head, or this interval, first.
        async with desk.db.read() as session:
            found = await latest_checkpoint(session)
        return Taken(found.document, created=False) if found is not None else None
    raise AssertionError("unreachable")  # pragma: no cover


async def latest_checkpoint_document(desk: Desk) -> dict[str, Any] | None:
    """The newest signed checkpoint, as published at /.well-known/likeness-audit.json."""
    async with desk.db.read() as session:
        latest = await latest_checkpoint(session)
    return latest.document if latest is not None else None


async def checkpoint_page(desk: Desk, *, after: int, limit: int) -> dict[str, Any]:
    """Checkpoints after seq `after`, oldest first, with the `after` that fetches the next page."""
    async with desk.db.read() as session:
        rows = await checkpoints_after(session, after, limit)
    return {
        "checkpoints": [row.document for row in rows],
        "next_after": rows[-1].seq if len(rows) == limit else None,
    }
