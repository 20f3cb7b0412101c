"""Send budgets shared by every instance on one PostgreSQL database: one GCRA bucket per lane.

A lane is what a platform limits (a bot, a chat, a Slack channel). Its row keeps the bucket's
theoretical arrival time (`free_at`) on the database's clock. Taking a turn is one atomic
INSERT … ON CONFLICT DO UPDATE … RETURNING: it books the lane's next slot and answers how long
the caller waits before sending. Every caller books a slot of its own, so nobody retries and
the row lock is held for one statement.
"""

from __future__ import annotations

from sqlalchemy import Float, bindparam, delete, func, literal_column
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.hot_writes import HotWrite
from storage.tables import SendBudget

# The database's clock in seconds: every instance, on every machine, reads the same one.
_NOW = func.extract("epoch", func.clock_timestamp())
_INTERVAL = bindparam("interval", type_=Float())
_TOLERANCE = bindparam("tolerance", type_=Float())

# Built and compiled once (SQLAlchemy does not cache an ON CONFLICT insert): a booking runs for
# every message sent.
_book = HotWrite(
    lambda _dialect: (
        insert(SendBudget)
        .values(lane=bindparam("lane"), free_at=_NOW + _INTERVAL)
        .on_conflict_do_update(
            index_elements=[SendBudget.lane],
            set_={"free_at": func.greatest(SendBudget.free_at, _NOW) + _INTERVAL},
        )
        .returning(func.greatest(literal_column("0.0"), SendBudget.free_at - _TOLERANCE - _NOW))
    )
)

_hold = HotWrite(
    lambda _dialect: (
        insert(SendBudget)
        .values(lane=bindparam("lane"), free_at=_NOW + bindparam("seconds", type_=Float()))
        .on_conflict_do_update(
            index_elements=[SendBudget.lane],
            set_={"free_at": func.greatest(SendBudget.free_at, _NOW + bindparam("seconds", type_=Float()))},
        )
    )
)


async def book_turn(connection: AsyncConnection, *, lane: str, rate: float, burst: int) -> float:
    """Books the lane's next send slot; returns the seconds to wait before sending (0: now).

    `rate` sends per second on average, `burst` at once after a quiet spell (GCRA: a slot is
    1/rate long and a send may go up to `burst` slots ahead of the lane's schedule).
    """
    interval = 1.0 / rate
    result = await _book.execute(
        connection, {"lane": lane, "interval": interval, "tolerance": burst * interval}
    )
    return float(result.rows[0][0])


async def hold_lane(connection: AsyncConnection, *, lane: str, seconds: float) -> None:
    """Nothing is booked on the lane sooner than `seconds` from now (the platform said wait)."""
    await _hold.execute(connection, {"lane": lane, "seconds": seconds})


async def forget_idle_lanes(connection: AsyncConnection, *, idle_seconds: float = 60.0) -> int:
    """Deletes lanes unused for `idle_seconds`: a full bucket holds nothing worth keeping."""
    result = await connection.execute(delete(SendBudget).where(SendBudget.free_at < _NOW - idle_seconds))
    return int(result.rowcount or 0)
