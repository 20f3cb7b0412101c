"""How a benchmark reports: one figure beside its same-run reference, as a ratio, with its goal."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One measured figure and the reference it is compared with."""

    name: str
    value: float
    unit: str
    reference_name: str
    reference: float
    goal: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        """value ÷ reference (0 when the reference is 0)."""
        return self.value / self.reference if self.reference else 0.0

    def line(self) -> str:
        """`name: value (reference: value, ratio: x)` plus the goal."""
        verdict = "" if self.met is None else (" ✓" if self.met else " ✗ goal missed")
        goal = f" [goal: {self.goal}{verdict}]" if self.goal else ""
        note = f" — {self.note}" if self.note else ""
        return (
            f"{self.name}: {self.value:,.2f} {self.unit} "
            f"(reference {self.reference_name}: {self.reference:,.2f}, ratio: {self.ratio:.2f}){goal}{note}"
        )
