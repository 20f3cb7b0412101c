"""The refusals: a transition that is not allowed raises one of these, and nothing changes but
an audit event that records it."""

from __future__ import annotations

from typing import Any

from bot.models import FieldError


class Refused(Exception):
    """A transition that is not allowed; nothing changed but an audit event."""

    code = "refused"

    def __init_subclass__(cls, *, code: str | None = None, **kwargs: Any) -> None:
        """A refusal names its API reason code in its class statement: `class X(Refused, code=...)`."""
        super().__init_subclass__(**kwargs)
        if code is not None:
            cls.code = code

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(Refused, code="not_found"):
    """No such thing, or not one the actor may see."""


class NotAllowed(Refused, code="not_allowed"):
    """The actor may not do this."""


class AlreadyDecided(Refused, code="already_decided"):
    """Someone decided first; details carry who and when."""


class NotOpen(Refused, code="not_open"):
    """The request or grant is no longer in a state that allows this (lapsed, withdrawn, ...)."""


class Deactivated(NotOpen, code="deactivated"):
    """The artist (or creator) was deactivated by an operator: nothing new is accepted for them."""


class NeedsConfirmation(Refused, code="needs_confirmation"):
    """Approving AI training takes a second, explicit confirmation."""


class TermsChanged(Refused, code="terms_changed"):
    """The decision was made on terms other than the request's."""


class InvalidInput(Refused, code="invalid_input"):
    """Field-level problems with the input."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors), errors=errors)
        self.errors = errors


class IdempotencyConflict(Refused, code="idempotency_conflict"):
    """The same Idempotency-Key was used before with a different body."""


class InviteInvalid(Refused, code="invite_invalid"):
    """The invite token is unknown, used or expired; `details['why']` says which."""


class OverQuota(Refused, code="output_quota_exceeded"):
    """The creator's kept outputs would pass OUTPUT_QUOTA (answered 413)."""


class GrantNotActive(NotOpen, code="grant_not_active"):
    """The grant is not active now (scheduled, paused, expired or revoked)."""


class OutputExists(NotOpen, code="output_exists"):
    """The same file was submitted under this grant already; `details['id']` names it."""
