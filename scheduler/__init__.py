"""APScheduler set-up: periodic sweeps over database columns; every job is one call into the workflow."""

from scheduler.jobs import Schedule

__all__ = ["Schedule"]
