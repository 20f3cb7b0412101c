"""What every part of `likeness serve` is handed: the `Service` being built, and the shape of an
extension that joins it from outside `bot/` (the browser sandbox).

Channels (bot/handlers/) and extensions depend on this module, never on the composition root
(bot/app.py), so nothing imports its way back into the root.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from fastapi import FastAPI

from bot.config import Settings
from bot.delivery import Outbox, Sender
from bot.pacing import SendBudget
from bot.reports import ChartDrawer
from bot.workflow import Desk
from scheduler import Schedule
from storage.database import Database

Hook = Callable[[], Awaitable[None]]


@dataclass
class Service:
    """Everything `likeness serve` runs, built from settings; parts register start and stop hooks."""

    settings: Settings
    desk: Desk
    api: FastAPI
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    senders: list[Sender] = field(default_factory=list)
    outbox: Outbox | None = None
    schedule: Schedule | None = None
    charts: ChartDrawer = field(default_factory=ChartDrawer)  # one chart process for all senders
    # The platforms' limits for the whole deployment (PostgreSQL); None: each sender paces itself.
    send_budget: SendBudget | None = None

    @property
    def db(self) -> Database:
        """The service's database."""
        return self.desk.db


class Extension(Protocol):
    """A part that joins the service from outside `bot/`, found through a Python entry point.

    It is made from the settings before anything else is built (and may give back different
    settings, e.g. the simulators' addresses), and attached once the service exists, before the
    channels are.
    """

    @property
    def settings(self) -> Settings:
        """The settings the service is to be built with."""
        ...

    def attach(self, service: Service) -> None:
        """Adds the extension's routes, hooks and senders to the service."""
        ...


# The entry point group `likeness serve` looks in when SANDBOX is on; pyproject.toml declares
# `sandbox = "sandbox.wiring:prepare_sandbox"` in it.
SANDBOX_GROUP = "likeness.sandbox"
