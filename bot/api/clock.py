"""Testing and sandbox only: read and move the service's clock (never mounted in production)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException
from pydantic import BaseModel

from bot.clock import OffsetClock
from bot.config import parse_duration
from bot.models import utc_iso


class ClockOut(BaseModel):
    """The service's time and how far it was moved."""

    now: str
    offset_seconds: float


def clock_router(clock: OffsetClock, on_skip: Callable[[], None]) -> APIRouter:
    """Routes under /control/clock; `on_skip` runs after each move (e.g. to sweep at once)."""
    router = APIRouter(prefix="/control", tags=["testing"])

    def state() -> ClockOut:
        return ClockOut(now=utc_iso(clock.now()), offset_seconds=clock.offset.total_seconds())

    @router.get("/clock", response_model=ClockOut)
    async def read_clock() -> ClockOut:
        """The service's current time."""
        return state()

    @router.post("/clock", response_model=ClockOut)
    async def skip_clock(skip: Annotated[str, Body(embed=True, examples=["2h"])]) -> ClockOut:
        """Moves the clock forward by a duration like 30m, 2h or 7d, then runs the sweeps."""
        try:
            clock.skip(parse_duration(skip))
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        on_skip()
        return state()

    return router
