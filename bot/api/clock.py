"""Testing and sandbox only: read and move the service's clock (never mounted in production)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel

from bot.clock import OffsetClock
from bot.config import parse_duration
from bot.models import utc_iso

# One skip may move the clock at most this far; more takes several deliberate calls.
MAX_SKIP = timedelta(days=400)


class ClockOut(BaseModel):
    """The service's time and how far it was moved."""

    now: str
    offset_seconds: float


def json_only(request: Request) -> None:
    """415 unless the body is declared JSON: a web page elsewhere cannot send it without asking."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HTTPException(415, "send the body as application/json")


def clock_router(clock: OffsetClock, on_skip: Callable[[], None]) -> APIRouter:
    """Routes under /control/clock; `on_skip` runs after each move (e.g. to sweep at once)."""
    router = APIRouter(prefix="/control", tags=["testing"])

    def state() -> ClockOut:
        return ClockOut(now=utc_iso(clock.now()), offset_seconds=clock.offset.total_seconds())

    @router.get("/clock", response_model=ClockOut)
    async def read_clock() -> ClockOut:
        """The service's current time."""
        return state()

    @router.post("/clock", response_model=ClockOut, dependencies=[Depends(json_only)])
    async def skip_clock(
        skip: Annotated[str, Body(embed=True, max_length=32, examples=["2h"])],
    ) -> ClockOut:
        """Moves the clock forward by a duration like 30m, 2h or 7d (at most 400 days), then sweeps."""
        try:
            by = parse_duration(skip)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        if by > MAX_SKIP:
            raise HTTPException(422, f"{skip!r} is more than {MAX_SKIP.days} days; skip in smaller steps")
        clock.skip(by)
        on_skip()
        return state()

    return router
