"""Shared fixtures: real SQLite files, a real PostgreSQL server, a controllable clock."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import settings
from sqlalchemy import event

from bot.api import create_api
from bot.clock import FrozenClock
from bot.receipts import load_or_create_signer
from bot.workflow import Desk, Rules
from sandbox.factories import Parties, make_parties
from sandbox.pg_server import PgServer, start_pg_server
from sandbox.service_process import service_env
from storage.database import Database, upgrade_database
from tests.webhook_receiver import WebhookReceiver

_db_names = itertools.count(1)

# Property tests: no per-example deadline (a GC pause or a first import on a busy machine is not
# a bug), and in `make test` the same examples on every run, so a red CI run replays as it was;
# `make soak` (LIKENESS_SOAK=1) draws fresh examples.
settings.register_profile(
    "suite", deadline=None, derandomize=os.environ.get("LIKENESS_SOAK", "") in ("", "0")
)
settings.load_profile("suite")
START = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parent.parent


class FakeClock:
    """Monotonic time (as the simulators read it) that moves only when the test says so, so that
    rate limits and expiries never depend on the machine's speed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        """The current time, in seconds."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Moves the time on."""
        self.now += seconds


@asynccontextmanager
async def running_module(module: str, *args: str, banner_timeout: float) -> AsyncIterator[str]:
    """Runs ``python -m module *args`` from the repository root and yields the first line it
    prints (waited for up to ``banner_timeout`` seconds); on leaving, sends it SIGTERM and asserts
    that it exits with 0 within 10 seconds."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        yield (await asyncio.wait_for(process.stdout.readline(), banner_timeout)).decode()
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0


async def stored_status(desk: Desk, model: Any, row_id: str) -> str:
    """The status of one stored row (a request, grant, output …), found by its id."""
    async with desk.db.read() as session:
        row = await session.get(model, row_id)
    assert row is not None
    return str(row.status)


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


def _fresh_url(request: pytest.FixtureRequest, folder: Path) -> str:
    """A fresh, empty database URL of the kind `request.param` names (an SQLite file in `folder`)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{folder / 'likeness.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database(f"t{next(_db_names)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL, once on SQLite and once on PostgreSQL."""
    return _fresh_url(request, tmp_path)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file URL."""
    return f"sqlite+aiosqlite:///{tmp_path / 'likeness.db'}"


@pytest.fixture
def clock() -> FrozenClock:
    """A clock that moves only when the test says so."""
    return FrozenClock(START)


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Databases migrated once per test process, copied for each desk: an SQLite file, and (made on
    first use) a PostgreSQL template database. Tests of the migrations themselves use `db_url`."""
    return {"sqlite": str(tmp_path_factory.mktemp("template") / "likeness.db")}


def _migrated_copy(db_url: str, templates: dict[str, str], request: pytest.FixtureRequest) -> None:
    """Makes the fresh database at `db_url` a copy of a migrated template (made on first use)."""
    if db_url.startswith("sqlite"):
        template = Path(templates["sqlite"])
        if not template.exists():
            asyncio.run(upgrade_database(f"sqlite+aiosqlite:///{template}"))
        shutil.copyfile(template, db_url.removeprefix("sqlite+aiosqlite:///"))
        return
    server: PgServer = request.getfixturevalue("pg_server")
    if "postgresql" not in templates:
        templates["postgresql"] = server.create_database("migrated_template")
        asyncio.run(upgrade_database(templates["postgresql"]))
    server.create_database(db_url.rsplit("/", 1)[1], template="migrated_template", replace=True)


def _migrated_folder(folder: Path, templates: dict[str, str], request: pytest.FixtureRequest) -> Path:
    """Makes `service_env(folder)`'s SQLite database a copy of the migrated template, its data folder
    and file private as the service makes its own; `folder`."""
    (folder / "data").mkdir(mode=0o700)
    _migrated_copy(service_env(folder)["DATABASE_URL"], templates, request)
    (folder / "data" / "likeness.db").chmod(0o600)
    return folder


@pytest.fixture(scope="module")
def cli_folder(
    tmp_path_factory: pytest.TempPathFactory,
    migrated_templates: dict[str, str],
    request: pytest.FixtureRequest,
) -> Path:
    """A service folder (`service_env(folder)`) with a migrated database, shared by a module's
    refused commands: each must leave it as it is."""
    return _migrated_folder(tmp_path_factory.mktemp("cli"), migrated_templates, request)


@pytest.fixture
def cli_env(
    tmp_path: Path, migrated_templates: dict[str, str], request: pytest.FixtureRequest
) -> dict[str, str]:
    """`service_env(tmp_path)`, its database already migrated (a copy of the template)."""
    return service_env(_migrated_folder(tmp_path, migrated_templates, request))


@pytest.fixture
def migrated_url(db_url: str, migrated_templates: dict[str, str], request: pytest.FixtureRequest) -> str:
    """`db_url`, migrated to head (a copy of the migrated template, which is much quicker)."""
    _migrated_copy(db_url, migrated_templates, request)
    return db_url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_migrated_url(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    migrated_templates: dict[str, str],
) -> str:
    """`migrated_url` for a module's tests to share, once on SQLite and once on PostgreSQL."""
    url = _fresh_url(request, tmp_path_factory.mktemp("module_db"))
    _migrated_copy(url, migrated_templates, request)
    return url


@asynccontextmanager
async def open_desk(url: str, clock: FrozenClock, folder: Path) -> AsyncIterator[Desk]:
    """The workflow's desk around a migrated database, its receipt key in `folder`."""
    database = Database(url)
    await database.upgrade()  # at head already: only checks
    rules = Rules(decision_reminders=(timedelta(hours=24), timedelta(hours=2)))
    try:
        yield Desk(db=database, clock=clock, signer=load_or_create_signer(folder / "key.pem"), rules=rules)
    finally:
        await database.dispose()


@pytest.fixture
async def desk(migrated_url: str, clock: FrozenClock, tmp_path: Path) -> AsyncIterator[Desk]:
    """A migrated database with the workflow's desk around it."""
    async with open_desk(migrated_url, clock, tmp_path) as opened:
        yield opened


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def module_desk(
    module_migrated_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Desk]:
    """`desk` shared by a module's tests (on a frozen clock of its own), for tests that each compare
    only what their own calls wrote."""
    async with open_desk(module_migrated_url, FrozenClock(START), tmp_path_factory.mktemp("desk")) as opened:
        yield opened


@asynccontextmanager
async def api_client(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    """The creators' REST API on the desk, called in-process over ASGI."""
    transport = httpx.ASGITransport(app=create_api(desk))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


@dataclass
class Door:
    """The creators' API in front of a desk, and the parties on that desk."""

    api: httpx.AsyncClient
    desk: Desk
    parties: Parties


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def door(module_desk: Desk) -> AsyncIterator[Door]:
    """The API on `module_desk` with fresh parties, once per database for a module's tests that each
    compare only what their own calls wrote (a refusal: nothing)."""
    parties = await make_parties(module_desk)
    async with api_client(module_desk) as client:
        yield Door(client, module_desk, parties)


@pytest.fixture
async def api(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    """The creators' REST API on the desk, called in-process over ASGI."""
    async with api_client(desk) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A creator's webhook endpoint on loopback, keeping what it receives."""
    hook = WebhookReceiver()
    await hook.start()
    try:
        yield hook
    finally:
        await hook.stop()


class _Said(logging.Handler):
    def __init__(self, seen: asyncio.Event, words: str) -> None:
        super().__init__(logging.DEBUG)
        self.seen = seen
        self.words = words

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.seen.set()


@contextmanager
def logged(logger_name: str, words: str) -> Iterator[asyncio.Event]:
    """An event set once `logger_name` logs a record containing `words` (DEBUG ones included), for
    a test to wait for that moment (e.g. a driver saying it waits for a lock) instead of sleeping;
    the logger is as it was afterwards."""
    seen = asyncio.Event()
    logger = logging.getLogger(logger_name)
    handler, level = _Said(seen, words), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextmanager
def statements(desk: Desk) -> Iterator[list[str]]:
    """Every SQL statement the desk's write engine runs (or is told of) inside the block."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen.append(" ".join(statement.split()))

    engine = desk.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
