"""`likeness serve --workers N`: N processes serving one port, each the whole service.

The parent migrates the database, reserves the port and forks N workers; each listens on the
port with SO_REUSEPORT, so the kernel spreads new connections evenly over them (one inherited
socket would let whichever worker wakes first take a whole burst of keep-alive connections). Every worker runs
everything (API, Telegram webhook, Slack events, outbox, scheduler): what several instances
share is already in PostgreSQL (outbox claims with leases and SKIP LOCKED, sweeps, unique report
runs and checkpoints, the send budgets), so N workers on one machine behave as N instances behind
a load balancer. The parent only waits: it prints "listening on" once every worker has started,
passes SIGTERM and SIGINT on, and when a worker dies on its own it stops the others and exits 1,
for the process supervisor to restart the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import select
import signal
import sys
import time
from types import FrameType

from starlette.types import ASGIApp, Message

from bot.app import (
    bind_socket,
    build_service,
    configure_logging,
    event_loop_factory,
    run_service,
    socket_url,
)
from bot.config import Settings
from bot.metrics import AnswerStartHook
from storage.database import upgrade_database

log = logging.getLogger("likeness.workers")

MAX_WORKERS = 64
# How long the workers together may take to start (connect the channels, start the loops).
START_TIMEOUT = 120.0
WORKER_HEADER = b"likeness-worker"
_PR_SET_PDEATHSIG = 1


def workers_refusal(settings: Settings, workers: int) -> str | None:
    """Why these settings cannot run `workers` processes, in one line; None when they can."""
    if workers == 1:
        return None
    if not settings.database_url.startswith("postgresql"):
        return (
            f"--workers {workers} needs PostgreSQL: SQLite serves one process "
            "(set DATABASE_URL=postgresql+asyncpg://…, or run one worker)"
        )
    if settings.sandbox_enabled:
        return (
            f"--workers {workers}: the sandbox runs in one process "
            "(set the platform tokens, or run one worker)"
        )
    if settings.clock_control:
        return f"--workers {workers}: CLOCK_CONTROL moves the clock of one process only (run one worker)"
    if settings.telegram_bot_token is not None and not settings.telegram_webhook_url:
        return (
            f"--workers {workers} needs Telegram's webhook mode (set TELEGRAM_WEBHOOK_URL): "
            "Telegram allows one long-polling getUpdates per bot"
        )
    return None


class WorkerHeader(AnswerStartHook):
    """Names the worker that answered in a `Likeness-Worker` header (1…N), for operators and tests."""

    def __init__(self, app: ASGIApp, index: int) -> None:
        """Wraps `app`; `index` is this worker's number."""
        super().__init__(app)
        self.value = str(index).encode()

    def on_start(self, message: Message) -> None:
        """Adds the header to the answer."""
        message["headers"] = [*message.get("headers", []), (WORKER_HEADER, self.value)]


def serve_workers(settings: Settings, workers: int) -> int:
    """Runs `workers` processes on one port until SIGTERM or SIGINT; returns the exit code."""
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(upgrade_database(settings.database_url))
    # The port is reserved, not listened on: only the workers' sockets take connections.
    reserved = bind_socket(settings.http_host, settings.http_port, reuse_port=True, listen=False)
    url = socket_url(reserved)
    port = int(reserved.getsockname()[1])
    ready_in, ready_out = os.pipe()
    children: dict[int, int] = {}
    for index in range(1, workers + 1):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, measured by the tests from outside
            code = 1
            try:
                os.close(ready_in)
                reserved.close()
                code = _worker(settings, port, index, ready_out)
            finally:
                os._exit(code)  # never back into the parent's code, whatever was raised
        children[pid] = index
    os.close(ready_out)
    try:
        return _watch(children, ready_in, url, workers)
    finally:
        reserved.close()


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM when the parent dies, so none serves on alone."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _worker(settings: Settings, port: int, index: int, ready_out: int) -> int:
    """One worker: the whole service on its own socket of the port; tells the parent once started."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    _die_with_parent()
    os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the parent, which stops the workers in order
    try:
        sock = bind_socket(settings.http_host, port, reuse_port=True)
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            service = build_service(settings)
            service.api.add_middleware(WorkerHeader, index=index)

            async def tell_parent() -> None:
                os.write(ready_out, bytes([index]))
                log.info("worker %d (pid %d) serving", index, os.getpid())

            service.on_start.append(tell_parent)
            runner.run(run_service(service, sock, announce=False))
    except KeyboardInterrupt:
        return 0
    except Exception:
        log.exception("worker %d failed", index)
        return 1
    return 0


def _watch(children: dict[int, int], ready_in: int, url: str, workers: int) -> int:
    """Waits for every worker to start, announces, then waits for them to end."""
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    failed = False
    started = 0
    deadline = time.monotonic() + START_TIMEOUT
    while started < workers and not stopping:
        readable, _, _ = select.select([ready_in], [], [], 0.2)
        if readable:
            started += len(os.read(ready_in, 64))
        if _reap(children, stopping) or time.monotonic() > deadline:
            failed = True
            stop(signal.SIGTERM, None)
            break
    os.close(ready_in)
    if not failed and not stopping:
        print(f"{workers} workers started", flush=True)
        print(f"likeness-consent listening on {url}", flush=True)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if index is not None and not stopping:
            code = os.waitstatus_to_exitcode(status)
            print(f"worker {index} exited ({code}); stopping the others", file=sys.stderr, flush=True)
            failed = True
            stop(signal.SIGTERM, None)
    return 1 if failed else 0


def _reap(children: dict[int, int], stopping: bool) -> bool:
    """Collects workers that ended; True when one ended on its own."""
    ended = False
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return ended
        index = children.pop(pid, None)
        if index is not None and not stopping:
            code = os.waitstatus_to_exitcode(status)
            print(f"worker {index} exited ({code}) while starting", file=sys.stderr, flush=True)
            ended = True
    return ended
