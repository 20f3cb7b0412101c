"""The shape of a send budget shared by every instance of the deployment.

The platforms limit a bot, a chat, a channel, not a process. With several instances each keeps
its own in-process limiter only when it runs alone (SQLite); on PostgreSQL the senders are
handed a `SendBudget` (bot/send_budget.py, on the database) and book every send on it. The
adapters know this protocol and nothing of where the budget lives.
"""

from __future__ import annotations

from typing import Protocol


class SendBudget(Protocol):
    """Turns on named lanes (a bot, a chat, a channel), kept across every instance."""

    async def wait_turn(self, lane: str, *, rate: float, burst: int) -> None:
        """Books the lane's next send and returns when it may go: `rate` per second on average,
        at most `burst` at once after a quiet spell."""
        ...

    async def hold(self, lane: str, seconds: float) -> None:
        """Nothing goes on the lane for `seconds` (the platform answered 429 with Retry-After)."""
        ...
