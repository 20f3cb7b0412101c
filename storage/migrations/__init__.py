"""Alembic migrations for both databases, run in-process on a shared connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

HERE = Path(__file__).resolve().parent


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at this folder, optionally bound to a live connection."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def run_upgrade(connection: Connection) -> None:
    """Upgrades the database behind `connection` to the newest revision."""
    command.upgrade(alembic_config(connection), "head")


def at_head(connection: Connection) -> bool:
    """Whether the database behind `connection` has every migration applied (and no other)."""
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    return set(MigrationContext.configure(connection).get_current_heads()) == heads
