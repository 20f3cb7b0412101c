"""Shared fixtures: real SQLite files, a real PostgreSQL server, a controllable clock."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from hypothesis import settings

from bot.api import create_api
from bot.clock import FrozenClock
from bot.receipts import load_or_create_signer
from bot.workflow import Desk, Rules
from storage.database import Database
from tests.pg_server import PgServer, start_pg_server

_db_names = itertools.count(1)

# Property tests: no per-example deadline (a GC pause or a first import on a busy machine is not
# a bug), and in `make test` the same examples on every run, so a red CI run replays as it was;
# `make soak` (LIKENESS_SOAK=1) draws fresh examples.
settings.register_profile(
    "suite", deadline=None, derandomize=os.environ.get("LIKENESS_SOAK", "") in ("", "0")
)
settings.load_profile("suite")
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server for the whole run; each test gets its own database."""
    try:
        server = start_pg_server()
    except FileNotFoundError as why:
        pytest.skip(f"PostgreSQL tests skipped: {why}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'likeness.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database(f"t{next(_db_names)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file URL."""
    return f"sqlite+aiosqlite:///{tmp_path / 'likeness.db'}"


@pytest.fixture
def clock() -> FrozenClock:
    """A clock that moves only when the test says so."""
    return FrozenClock(START)


@pytest.fixture
async def desk(db_url: str, clock: FrozenClock, tmp_path: Path) -> AsyncIterator[Desk]:
    """A migrated database with the workflow's desk around it."""
    database = Database(db_url)
    await database.upgrade()
    rules = Rules(decision_reminders=(timedelta(hours=24), timedelta(hours=2)))
    desk = Desk(db=database, clock=clock, signer=load_or_create_signer(tmp_path / "key.pem"), rules=rules)
    try:
        yield desk
    finally:
        await database.dispose()


@pytest.fixture
async def api(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    """The creators' REST API on the desk, called in-process over ASGI."""
    transport = httpx.ASGITransport(app=create_api(desk))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client
