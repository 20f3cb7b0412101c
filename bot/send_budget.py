"""The deployment's send budget on PostgreSQL: every instance books each send in one table.

Each turn is one atomic statement (storage/send_budgets.py) on the database's clock, so the
platforms' limits hold for all instances together, on one machine or many, with nothing to elect
and nothing to fail over: an instance that dies holds no lane. The booked slot is kept even
when the caller is cut off before sending; that errs on the side of sending later.
"""

from __future__ import annotations

import asyncio
import logging
import time

from storage.database import Database
from storage.send_budgets import book_turn, forget_idle_lanes, hold_lane

log = logging.getLogger(__name__)

# Lanes unused for a minute are full again; their rows are dropped every ten minutes.
FORGET_EVERY = 600.0


class DatabaseBudget:
    """A `bot.pacing.SendBudget` on the service's PostgreSQL database.

    Parameters:
        db: the service's database (PostgreSQL; SQLite serves one process, which paces itself).
    """

    def __init__(self, db: Database) -> None:
        """Keeps the database; nothing is read until the first turn."""
        self.db = db
        # One statement each, committed on its own: no BEGIN and COMMIT round trips around it.
        self._engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.booked = 0
        self.waited = 0.0
        self._forgot_at = time.monotonic()

    async def wait_turn(self, lane: str, *, rate: float, burst: int) -> None:
        """Books the lane's next slot in one statement, then sleeps until it comes."""
        async with self._engine.connect() as connection:
            wait = await book_turn(connection, lane=lane, rate=rate, burst=burst)
            if time.monotonic() - self._forgot_at > FORGET_EVERY:
                self._forgot_at = time.monotonic()
                await forget_idle_lanes(connection)
        self.booked += 1
        if wait > 0:
            self.waited += wait
            await asyncio.sleep(wait)  # the booked slot itself, not a synchronisation guess

    async def hold(self, lane: str, seconds: float) -> None:
        """Pushes the lane's next free slot to `seconds` from now, for every instance."""
        async with self._engine.connect() as connection:
            await hold_lane(connection, lane=lane, seconds=seconds)
