"""What the creators' API answers, as pydantic models (they also make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from bot.models import GrantStatus, Likeness, Media, Terms, UsageKind, ViolationReason
from storage.queries import RequestView
from storage.tables import Decision, Grant, UsageEvent


class DecisionOut(BaseModel):
    """One decision on the request."""

    actor_kind: str
    channel: str
    outcome: str
    terms_hash: str
    reason: str | None
    ai_training_confirmed: bool
    at: datetime

    @classmethod
    def of(cls, decision: Decision) -> DecisionOut:
        """Shapes a stored decision for the API."""
        return cls(
            actor_kind=decision.actor_kind,
            channel=decision.channel,
            outcome=decision.outcome,
            terms_hash=decision.terms_hash,
            reason=decision.reason,
            ai_training_confirmed=decision.ai_training_confirmed,
            at=decision.created_at,
        )


class GrantOut(BaseModel):
    """A grant: the consent an approval created."""

    id: str
    request_id: str
    status: GrantStatus
    starts_at: datetime
    ends_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, grant: Grant, status: GrantStatus) -> GrantOut:
        """Shapes a stored grant with its status at this moment."""
        return cls(
            id=grant.id,
            request_id=grant.request_id,
            status=status,
            starts_at=grant.starts_at,
            ends_at=grant.ends_at,
            revoked_at=grant.revoked_at,
        )


class RequestOut(BaseModel):
    """A request with its terms, hash, decisions and (once approved) its grant."""

    id: str
    status: str
    terms: Terms
    terms_hash: str
    reason: str | None
    created_at: datetime
    updated_at: datetime
    decision_due_at: datetime
    decisions: list[DecisionOut]
    grant: GrantOut | None

    @classmethod
    def of(cls, view: RequestView, grant_status: GrantStatus | None) -> RequestOut:
        """Shapes a request view for the API."""
        request = view.request
        return cls(
            id=request.id,
            status=request.status,
            terms=Terms.model_validate(request.terms),
            terms_hash=request.terms_hash,
            reason=request.reason,
            created_at=request.created_at,
            updated_at=request.updated_at,
            decision_due_at=request.decision_due_at,
            decisions=[DecisionOut.of(d) for d in view.decisions],
            grant=GrantOut.of(view.grant, grant_status) if view.grant and grant_status else None,
        )


class RequestList(BaseModel):
    """A page of the creator's requests."""

    requests: list[RequestOut]


class ViolationOut(BaseModel):
    """A use outside the consent: its own id and every term it breaks."""

    id: str
    reasons: list[ViolationReason]


class UsageOut(BaseModel):
    """A stored usage report; `violation` is null when the use lies inside every term."""

    id: str
    violation: ViolationOut | None
    grant_id: str
    kind: UsageKind
    count: int
    media: Media | None = None
    territory: list[str] | None = None
    likeness: list[Likeness] | None = None
    occurred_at: datetime
    received_at: datetime
    grant_status: GrantStatus
    detail: str | None = None

    @classmethod
    def of(cls, event: UsageEvent) -> UsageOut:
        """Shapes a stored usage event; a violation carries its reasons and a sentence saying why."""
        violation = (
            # Violations stored before uses were judged term by term were about the window only.
            ViolationOut(
                id=event.violation_id or event.id,
                reasons=[ViolationReason(r) for r in event.reasons or [ViolationReason.grant_not_active]],
            )
            if event.violation
            else None
        )
        return cls(
            id=event.id,
            violation=violation,
            grant_id=event.grant_id,
            kind=UsageKind(event.kind),
            count=event.count,
            media=Media(event.media) if event.media else None,
            territory=event.territory,
            likeness=[Likeness(part) for part in event.likeness] if event.likeness is not None else None,
            occurred_at=event.occurred_at,
            received_at=event.received_at,
            grant_status=GrantStatus(event.grant_status),
            detail="this use breaks the consent: "
            + ", ".join(event.reasons)
            + "; it is recorded as a violation"
            if event.violation
            else None,
        )


class ErrorOut(BaseModel):
    """An error: a sentence, and details where there are some."""

    detail: Any
