"""Set-up calls that are nice to have but must never hold a channel up (e.g. Telegram's
`setMyCommands`, which some Bot API servers lack): tried once at start, and on failure logged and
tried again in the background with backoff while the channel runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

FIRST_RETRY = 5.0
LONGEST_WAIT = 600.0

_running: set[asyncio.Task[None]] = set()


async def _failure(call: Callable[[], Awaitable[object]]) -> Exception | None:
    """What one try of `call` raised (a cancellation goes on up), or None when it succeeded."""
    try:
        await call()
    except asyncio.CancelledError:
        raise
    except Exception as error:
        return error
    return None


async def try_now_or_keep_trying(
    name: str, call: Callable[[], Awaitable[object]], *, alive: Callable[[], bool]
) -> bool:
    """Tries `call` once now; on failure logs it and keeps trying in the background (`keep_trying`).
    True when the first try succeeded."""
    error = await _failure(call)
    if error is None:
        return True
    log.warning(
        "set-up call %s failed (%s: %s); retrying in the background", name, type(error).__name__, error
    )
    keep_trying(name, call, alive=alive)
    return False


def keep_trying(
    name: str,
    call: Callable[[], Awaitable[object]],
    *,
    alive: Callable[[], bool],
    first_retry: float = FIRST_RETRY,
    longest_wait: float = LONGEST_WAIT,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> asyncio.Task[None]:
    """Runs `call` in the background until it succeeds or `alive()` turns false; each failure is
    one log line (its kind and message, no traceback), then a doubling wait."""

    async def attempts() -> None:
        wait = first_retry
        while alive():
            error = await _failure(call)
            if error is None:
                log.info("set-up call %s done", name)
                return
            log.warning(
                "set-up call %s failed (%s: %s); retrying in %.0f s", name, type(error).__name__, error, wait
            )
            await sleep(wait)
            wait = min(wait * 2, longest_wait)

    task = asyncio.create_task(attempts(), name=f"setup-{name}")
    _running.add(task)
    task.add_done_callback(_running.discard)
    return task
