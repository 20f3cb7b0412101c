"""The schedule: one sweep job every SWEEP_INTERVAL that runs the workflow's sweeps.

Nothing due lives in memory: what is due is read from database columns (decision_due_at,
reminders_sent, starts_at, ends_at, report_runs) on each sweep, so a restart forgets nothing
and catches up at once; the rows' own state makes each step happen once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot import metrics, proof, workflow
from bot.workflow import Desk
from scheduler.cron import queue_due_reports

log = logging.getLogger(__name__)

SWEEP_JOB = "sweeps"
CHECKPOINT_JOB = "audit-checkpoint"
STOP_GRACE = 5.0  # seconds a running sweep gets to finish when the service stops


class Schedule:
    """Owns the AsyncIOScheduler and its sweep job."""

    def __init__(
        self,
        desk: Desk,
        *,
        sweep_interval: timedelta,
        report_cron: str,
        checkpoint_interval: timedelta | None = None,
    ) -> None:
        """Prepares the scheduler; `start()` runs it in the current event loop.

        Parameters:
            desk: the workflow's desk.
            sweep_interval: how often to look for due work.
            report_cron: crontab of the weekly usage reports, applied in each recipient's time zone.
            checkpoint_interval: how often to sign the audit chain's head (None: never).
        """
        self.desk = desk
        self.checkpoint_interval = checkpoint_interval
        self.sweep_interval = sweep_interval
        self.report_cron = report_cron
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.passes = 0
        self._running = False
        self._again = False
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._checkpoint_idle = asyncio.Event()
        self._checkpoint_idle.set()
        self.checkpointed = asyncio.Event()  # set once a checkpoint run has ended, signed or not

    async def sweep(self) -> dict[str, int]:
        """One pass: lapses, reminders, activations, expiries, reports that fell due, old inbox rows."""
        with metrics.SWEEP_SECONDS.time():
            done = await workflow.run_sweeps(self.desk)
            done["reports"] = await queue_due_reports(self.desk, cron=self.report_cron)
            done["inbox_pruned"] = await workflow.inbox.prune_inbox(self.desk)
        self.passes += 1
        if any(done.values()):
            log.info("sweep: %s", ", ".join(f"{k}={v}" for k, v in done.items() if v))
        return done

    async def checkpoint(self) -> bool:
        """Signs the audit head for the current interval; True when this instance made the checkpoint.

        The interval's slot is unique in the database, so instances running this together make
        one checkpoint per interval, whichever gets there first.
        """
        assert self.checkpoint_interval is not None
        slot = proof.interval_slot(self.desk.clock.now(), self.checkpoint_interval)
        taken = await proof.take_checkpoint(self.desk, slot=slot)
        if taken is not None and taken.created:
            log.info("audit checkpoint signed at event %s", taken.document["seq"])
        return taken is not None and taken.created

    async def _guarded_checkpoint(self) -> None:
        if self._stopping:
            return
        self._checkpoint_idle.clear()
        try:
            await self.checkpoint()
        except proof.CheckpointRefused as why:
            # Loud, and nothing signed: the chain no longer reaches what was witnessed.
            log.error("audit checkpoint refused: %s", why)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cut off at shutdown after STOP_GRACE: nothing was signed; the next start signs it.
            log.warning("an audit checkpoint was cut off at shutdown; the next start makes it")
        except Exception:
            log.exception("audit checkpoint failed; trying again at the next interval")
        finally:
            self._checkpoint_idle.set()
            self.checkpointed.set()

    async def _guarded_sweep(self) -> None:
        if self._stopping:
            return
        self._running = True
        self._idle.clear()
        try:
            while True:
                self._again = False
                try:
                    await self.sweep()
                except Exception:
                    # A failed pass is retried at the next interval; what it did not finish is still due.
                    log.exception("sweep failed")
                if not self._again or self._stopping:
                    break
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # Cut off at shutdown after STOP_GRACE: the open transaction rolls back, and what it
            # had not committed is still due at the next start. Not an error, so no traceback.
            log.warning("a sweep was cut off at shutdown; what it had not finished runs at the next start")
        finally:
            self._running = False
            self._idle.set()

    async def start(self) -> None:
        """Starts the scheduler; the first sweep runs at once, catching up on anything missed."""
        jobs: list[tuple[Callable[[], Awaitable[None]], timedelta, str]] = [
            (self._guarded_sweep, self.sweep_interval, SWEEP_JOB)
        ]
        if self.checkpoint_interval is not None:
            jobs.append((self._guarded_checkpoint, self.checkpoint_interval, CHECKPOINT_JOB))
        for run, interval, job_id in jobs:
            self.scheduler.add_job(
                run,
                IntervalTrigger(seconds=interval.total_seconds()),
                id=job_id,
                next_run_time=datetime.now(UTC),
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )
        self.scheduler.start()

    async def stop(self) -> None:
        """Starts no new sweep or checkpoint, lets a running one finish (up to STOP_GRACE seconds),
        then shuts down.

        A sweep or checkpoint still running after the grace is cancelled; its transaction rolls
        back, and what it had not done is still due, so the next start does that work once.
        """
        if not self.scheduler.running:
            return
        self._stopping = True
        self.scheduler.pause()
        try:
            await asyncio.wait_for(
                asyncio.gather(self._idle.wait(), self._checkpoint_idle.wait()), timeout=STOP_GRACE
            )
        except TimeoutError:
            pass  # shutdown() below cancels it; the guarded job says so in the log
        self.scheduler.shutdown(wait=False)

    def run_soon(self) -> None:
        """Runs the next sweep now instead of at the next interval (used after the sandbox clock moves)."""
        if self._running:
            # APScheduler would skip a run while one is going; the running sweep goes round again.
            self._again = True
            return
        job = self.scheduler.get_job(SWEEP_JOB)
        if job is not None:
            job.modify(next_run_time=datetime.now(UTC))
