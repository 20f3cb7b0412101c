"""What the creators' API answers, as pydantic models (they also make the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from bot.clean_text import CleanText
from bot.models import GrantStatus, Likeness, Media, Terms, UsageKind, ViolationReason, aware_utc
from bot.workflow import Decision, Deletion, Grant, RequestView, UsageEvent


class DecisionOut(BaseModel):
    """One decision on the request."""

    # Read from the stored decision's attributes of the same names (its `created_at` is `at`).
    model_config = ConfigDict(from_attributes=True)

    actor_kind: str
    channel: str
    outcome: str
    terms_hash: str
    reason: str | None
    ai_training_confirmed: bool
    at: datetime = Field(validation_alias=AliasChoices("at", "created_at"))

    @classmethod
    def of(cls, decision: Decision) -> DecisionOut:
        """Shapes a stored decision for the API."""
        return cls.model_validate(decision)


class DeletionState(BaseModel):
    """The deletion confirmation a grant owes: `due` until the creator gives it, then `confirmed`."""

    status: Literal["due", "confirmed"]
    cause: Literal["revoked", "expired"]
    due_at: datetime
    confirmed_at: datetime | None
    reminders_sent: int = Field(
        description="How many DELETION_REMINDERS moments have passed, each reminded once (after "
        "downtime only the latest is sent)."
    )
    escalated_at: datetime | None = Field(description="When it was raised to the agency, overdue.")

    @classmethod
    def of(cls, deletion: Deletion | None) -> DeletionState | None:
        """Shapes a stored deletion; None when the grant owes none."""
        if deletion is None:
            return None
        return cls(
            status="confirmed" if deletion.confirmed_at is not None else "due",
            cause=deletion.cause,
            due_at=deletion.due_at,
            confirmed_at=deletion.confirmed_at,
            reminders_sent=deletion.reminders_sent,
            escalated_at=deletion.escalated_at,
        )


class GrantOut(BaseModel):
    """A grant: the consent an approval created."""

    id: str
    request_id: str
    status: GrantStatus
    starts_at: datetime
    ends_at: datetime
    revoked_at: datetime | None
    deletion: DeletionState | None = Field(
        default=None, description="The deletion confirmation the grant owes; null when none is owed."
    )

    @classmethod
    def of(cls, grant: Grant, status: GrantStatus, deletion: Deletion | None = None) -> GrantOut:
        """Shapes a stored grant with its status at this moment and any deletion it owes."""
        return cls(
            id=grant.id,
            request_id=grant.request_id,
            status=status,
            starts_at=grant.starts_at,
            ends_at=grant.ends_at,
            revoked_at=grant.revoked_at,
            deletion=DeletionState.of(deletion),
        )


class DeletionIn(BaseModel):
    """The creator's confirmation that it deleted what it made with the likeness under a grant."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    statement: CleanText = Field(
        min_length=10,
        max_length=4000,
        description="What was deleted (training data, models, outputs) and how, in the creator's words.",
    )
    deleted_at: datetime = Field(
        description="When it was deleted: with a time zone, not in the future, not before the grant began."
    )

    @field_validator("statement", mode="before")
    @classmethod
    def _one_line_break(cls, value: object) -> object:
        return value.replace("\r\n", "\n") if isinstance(value, str) else value

    @field_validator("deleted_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return aware_utc(value)


class DeletionOut(BaseModel):
    """A confirmed deletion; its signed receipt is at /v1/grants/{id}/deletion/receipt."""

    grant_id: str
    status: Literal["confirmed"]
    cause: str
    due_at: datetime
    deleted_at: datetime
    confirmed_at: datetime
    statement: str
    receipt_url: str

    @classmethod
    def of(cls, deletion: Deletion) -> DeletionOut:
        """Shapes a confirmed deletion."""
        assert deletion.confirmed_at and deletion.deleted_at and deletion.statement is not None
        return cls(
            grant_id=deletion.grant_id,
            status="confirmed",
            cause=deletion.cause,
            due_at=deletion.due_at,
            deleted_at=deletion.deleted_at,
            confirmed_at=deletion.confirmed_at,
            statement=deletion.statement,
            receipt_url=f"/v1/grants/{deletion.grant_id}/deletion/receipt",
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
            grant=GrantOut.of(view.grant, grant_status, view.deletion)
            if view.grant and grant_status
            else None,
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
