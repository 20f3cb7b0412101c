"""The tables, as SQLAlchemy 2 typed mappings; the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base, UtcDateTime
from storage.slack_tables import (
    SEALED_COLUMNS,
    SlackInstallLink,
    slack_bots,
    slack_installations,
    slack_oauth_states,
)

__all__ = [
    "SEALED_COLUMNS",
    "Base",
    "SlackInstallLink",
    "UtcDateTime",
    "slack_bots",
    "slack_installations",
    "slack_oauth_states",
]


class Agency(Base):
    """An agency with its Slack channel and the members allowed to act."""

    __tablename__ = "agencies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slack_channel_id: Mapped[str | None] = mapped_column(String(64))
    slack_member_ids: Mapped[list[Any]] = mapped_column(default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # The language its board, thread replies, forms and /likeness answers speak ('en' or 'zh-Hans').
    language: Mapped[str] = mapped_column(String(16), default="en", server_default="en")
    created_at: Mapped[datetime]
    # Set by an install through the agency's link (one Slack app, many workspaces).
    slack_team_id: Mapped[str | None] = mapped_column(String(32), index=True)
    slack_connected_at: Mapped[datetime | None]
    slack_disconnected_at: Mapped[datetime | None]


class Artist(Base):
    """A person whose likeness is licensed."""

    __tablename__ = "artists"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    agency_id: Mapped[str | None] = mapped_column(ForeignKey("agencies.id"), index=True)
    policy: Mapped[str] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(16))
    timezone: Mapped[str] = mapped_column(String(64))
    red_lines: Mapped[dict[str, Any]] = mapped_column(default=dict)
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    # Set while every grant of the artist is paused; only the kind that paused may resume.
    paused_at: Mapped[datetime | None]
    paused_by_kind: Mapped[str | None] = mapped_column(String(16))
    paused_by_id: Mapped[str | None] = mapped_column(String(64))
    pause_reason: Mapped[str | None] = mapped_column(Text)
    # Set when an operator deactivated the artist: no new requests; existing grants stand.
    deactivated_at: Mapped[datetime | None]
    # Every request for the artist gets `preview_required` in its terms, as a red line is applied.
    require_preview: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Creator(Base):
    """A studio that asks to use likenesses; its API key is kept only as a hash."""

    __tablename__ = "creators"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # When the key above was last used (keys added later keep theirs in creator_keys).
    api_key_last_used_at: Mapped[datetime | None]
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    # The webhook secret must be kept readable to sign with it; it is shown to the creator once.
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    # After a rotation the old secret still signs, beside the new one, until the overlap ends.
    webhook_secret_previous: Mapped[str | None] = mapped_column(String(128))
    webhook_secret_previous_until: Mapped[datetime | None]
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(String(16), default="en")
    created_at: Mapped[datetime]
    # Set when an operator deactivated the creator: its keys are refused and its webhooks stop.
    deactivated_at: Mapped[datetime | None]


class Invite(Base):
    """A one-time Telegram link token, kept as a hash."""

    __tablename__ = "invites"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[int | None] = mapped_column(BigInteger)


class Request(Base):
    """One likeness-use request: its terms and where it stands."""

    __tablename__ = "requests"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"), index=True)
    artist_id: Mapped[str] = mapped_column(ForeignKey("artists.id"), index=True)
    terms: Mapped[dict[str, Any]]
    terms_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    ai_training: Mapped[bool] = mapped_column(Boolean)
    decision_due_at: Mapped[datetime]
    # Index of the next decision reminder to send (0 = none sent yet); the sweep moves it on.
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(Text)
    supersedes_id: Mapped[str | None] = mapped_column(String(32))
    nudged_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_requests_status_due", "status", "decision_due_at"),)


class Decision(Base):
    """Approve or deny by one actor on one terms_hash through one channel."""

    __tablename__ = "decisions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    actor_display: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    terms_hash: Mapped[str] = mapped_column(String(64))
    ai_training_confirmed: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    # One decision per kind of actor per request: a second tap can never be a second vote.
    __table_args__ = (UniqueConstraint("request_id", "actor_kind", name="uq_decisions_request_actor"),)


class Grant(Base):
    """The consent an approval creates, valid from starts_at to ends_at."""

    __tablename__ = "grants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), unique=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"), index=True)
    artist_id: Mapped[str] = mapped_column(ForeignKey("artists.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    receipt: Mapped[dict[str, Any]]
    revoked_at: Mapped[datetime | None]
    paused_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_grants_status_starts", "status", "starts_at"),
        Index("ix_grants_status_ends", "status", "ends_at"),
    )


class UsageEvent(Base):
    """A creator's report of one use; a use outside an active grant is a violation."""

    __tablename__ = "usage_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"))
    creator_id: Mapped[str] = mapped_column(String(32))
    artist_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    count: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(Text)
    violation: Mapped[bool] = mapped_column(Boolean)
    grant_status: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    media: Mapped[str | None] = mapped_column(String(16))
    territory: Mapped[list[Any] | None]
    likeness: Mapped[list[Any] | None]
    # The violation's own id and the terms it breaks (ViolationReason codes); empty when inside.
    violation_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    # The released output a publish or distribute use cites (see `Output`).
    output_sha256: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_usage_grant_time", "grant_id", "occurred_at"),
        Index("ix_usage_artist_time", "artist_id", "occurred_at"),
    )


class Deletion(Base):
    """A deletion confirmation a creator owes after a grant ended (PIPL Art. 47)."""

    __tablename__ = "deletions"

    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), primary_key=True)
    creator_id: Mapped[str] = mapped_column(String(32), index=True)
    cause: Mapped[str] = mapped_column(String(16))  # revoked | expired
    due_at: Mapped[datetime]
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    statement: Mapped[str | None] = mapped_column(Text)
    receipt: Mapped[dict[str, Any] | None]

    __table_args__ = (Index("ix_deletions_open_due", "confirmed_at", "due_at"),)


class AuditEvent(Base):
    """One link of the tamper-evident chain: its hash covers its content and the previous hash."""

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime]
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row that every audit append locks, so the chain is appended one event at a time."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class Notice(Base):
    """One message to one recipient on one channel: the transactional outbox."""

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(48))
    request_id: Mapped[str | None] = mapped_column(String(32), index=True)
    grant_id: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    # Makes "send this once" a database fact: a sweep that runs twice inserts nothing twice.
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]

    __table_args__ = (Index("ix_notices_due", "status", "next_attempt_at"),)


class CardRef(Base):
    """Where a request's card or board message lives on a platform, to edit it in place."""

    __tablename__ = "card_refs"

    request_id: Mapped[str] = mapped_column(ForeignKey("requests.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class IdempotencyKey(Base):
    """The first answer to a POST with an Idempotency-Key, to replay it."""

    __tablename__ = "idempotency_keys"

    creator_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    scope: Mapped[str] = mapped_column(String(200))
    body_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    resource_kind: Mapped[str] = mapped_column(String(16))
    resource_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class ReportRun(Base):
    """A weekly report sent to one recipient for one period, so each is sent once."""

    __tablename__ = "report_runs"

    recipient_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime]


class SlackSeenRequest(Base):
    """A signed Slack request already handled, kept by signature so a replay is refused.

    Slack's signature covers the timestamp and the body, and requests older than five minutes
    are refused anyway, so a row is only needed for a few minutes; in the database (not in
    memory) so that every instance behind a load balancer sees every earlier request.
    """

    __tablename__ = "slack_seen_requests"

    signature: Mapped[str] = mapped_column(String(128), primary_key=True)
    # The request's own signed timestamp, not our clock: the replay window is measured in it.
    signed_at: Mapped[datetime] = mapped_column(index=True)


class AuditCheckpoint(Base):
    """A signed statement that the audit chain reached `head_hash` at event `seq`.

    One per head (seq is the key); a scheduled one also names its interval `slot`, unique, so
    several instances running the same job make one checkpoint per interval.
    """

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    head_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    kid: Mapped[str] = mapped_column(String(64))
    # The signed document exactly as signed, so it is served byte for byte as it was made.
    document: Mapped[dict[str, Any]]
    slot: Mapped[str | None] = mapped_column(String(64), unique=True)


class CreatorKey(Base):
    """A named API key of a creator, kept as a hash; a revoked key is refused at once.

    The key made by `creator add` lives in `creators.api_key_hash` and gets a row here (named
    `default`) only when it is revoked.
    """

    __tablename__ = "creator_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    creator_id: Mapped[str] = mapped_column(ForeignKey("creators.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class PersonKey(Base):
    """The key that seals one person's values in the audit chain (see storage/personal.py).

    Erasure deletes the row: the sealed values stay in the chain, hashed as they were, unreadable.
    """

    __tablename__ = "person_keys"

    subject_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]


class InboxItem(Base):
    """A Telegram update or a Slack click, stored before the platform is told it arrived, so a
    crash after the acknowledgement cannot lose it; `done_at` is set once it has been handled."""

    __tablename__ = "inbox"

    # "telegram:<update_id>" or "slack:<user id>:<action_ts or view id>": a platform's repeat of
    # the same event lands on the same key.
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    # The event as received, until it is handled (then emptied: it holds names and texts).
    payload: Mapped[dict[str, Any]]
    received_at: Mapped[datetime]
    # Who handles it holds it until then; past it, another instance may take it over.
    claimed_until: Mapped[datetime]
    done_at: Mapped[datetime | None] = mapped_column(index=True)


class Output(Base):
    """A file a creator made under a grant, kept by its SHA-256 until the artist releases or rejects it.

    The bytes live in DATA_DIR/outputs (content-addressed, see bot/output_files.py); the row says
    whose it is and where it stands: pending, released (with its signed receipt) or rejected.
    """

    __tablename__ = "outputs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    request_id: Mapped[str] = mapped_column(String(32))
    creator_id: Mapped[str] = mapped_column(String(32), index=True)
    artist_id: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(BigInteger)
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    release_due_at: Mapped[datetime]
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    decided_at: Mapped[datetime | None]
    decided_by_kind: Mapped[str | None] = mapped_column(String(16))
    decided_by_id: Mapped[str | None] = mapped_column(String(64))
    receipt: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("grant_id", "sha256", name="uq_outputs_grant_sha256"),
        Index("ix_outputs_status_due", "status", "release_due_at"),
    )


class SendBudget(Base):
    """One send lane's allowance, shared by every instance: a GCRA bucket (storage/send_budgets.py).

    `free_at` is the bucket's theoretical arrival time, in seconds since the epoch on the
    database's clock, so instances on different machines read one clock.
    """

    __tablename__ = "send_budgets"

    lane: Mapped[str] = mapped_column(String(200), primary_key=True)
    free_at: Mapped[float] = mapped_column(Double())
