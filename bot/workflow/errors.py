"""The refusals: a transition that is not allowed raises one of these, and nothing changes but
an audit event that records it."""

from __future__ import annotations

from typing import Any

from bot.models import FieldError


class Refused(Exception):
    """A transition that is not allowed; nothing changed but an audit event."""

    code = "refused"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(Refused):
    """No such thing, or not one the actor may see."""

    code = "not_found"


class NotAllowed(Refused):
    """The actor may not do this."""

    code = "not_allowed"


class AlreadyDecided(Refused):
    """Someone decided first; details carry who and when."""

    code = "already_decided"


class NotOpen(Refused):
    """The request or grant is no longer in a state that allows this (lapsed, withdrawn, ...)."""

    code = "not_open"


class Deactivated(NotOpen):
    """The artist (or creator) was deactivated by an operator: nothing new is accepted for them."""

    code = "deactivated"


class NeedsConfirmation(Refused):
    """Approving AI training takes a second, explicit confirmation."""

    code = "needs_confirmation"


class TermsChanged(Refused):
    """The decision was made on terms other than the request's."""

    code = "terms_changed"


class InvalidInput(Refused):
    """Field-level problems with the input."""

    code = "invalid_input"

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
        self.errors = errors


class IdempotencyConflict(Refused):
    """The same Idempotency-Key was used before with a different body."""

    code = "idempotency_conflict"


class InviteInvalid(Refused):
    """The invite token is unknown, used or expired; `details['why']` says which."""

    code = "invite_invalid"


class OverQuota(Refused):
    """The creator's kept outputs would pass OUTPUT_QUOTA (answered 413)."""

    code = "output_quota_exceeded"


class GrantNotActive(NotOpen):
    """The grant is not active now (scheduled, paused, expired or revoked)."""

    code = "grant_not_active"


class OutputExists(NotOpen):
    """The same file was submitted under this grant already; `details['id']` names it."""

    code = "output_exists"
