"""The weekly usage report's data: what one recipient is told about the grants it holds; pure, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class GrantUsage:
    """How one grant was used during the report's period (and in the weeks before, for the chart)."""

    grant_id: str
    request_id: str
    project_title: str
    artist_name: str
    status: str
    uses_by_kind: dict[str, int]
    violations: int
    # (week start as YYYY-MM-DD in the recipient's time zone, uses, violations), oldest first.
    weekly: list[tuple[str, int, int]] = field(default_factory=list)
    # The terms broken in the period: ViolationReason code → uses that broke it.
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class PendingItem:
    """A request still waiting for a decision."""

    request_id: str
    project_title: str
    artist_name: str
    due_at: datetime


@dataclass(frozen=True)
class ExpiringItem:
    """A grant that ends soon."""

    grant_id: str
    project_title: str
    artist_name: str
    ends_at: datetime


@dataclass(frozen=True)
class Report:
    """One recipient's usage report."""

    recipient_kind: str
    recipient_id: str
    recipient_name: str
    timezone: str
    period_start: datetime
    period_end: datetime
    grants: list[GrantUsage]
    pending: list[PendingItem]
    expiring_soon: list[ExpiringItem]
    # The newest signed audit checkpoint, for agencies: their channel keeps a copy as a witness.
    checkpoint: dict[str, Any] | None = None

    @property
    def total_uses(self) -> int:
        """Uses of all grants in the period."""
        return sum(sum(g.uses_by_kind.values()) for g in self.grants)

    @property
    def total_violations(self) -> int:
        """Violations in the period."""
        return sum(g.violations for g in self.grants)
