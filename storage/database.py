"""The engine and the unit of work: one transaction per workflow step, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from storage.hot_writes import HotWrite, Params, SqliteQuickWriter, WriteResult, session_connection
from storage.migrations import at_head, run_upgrade
from storage.point_reads import PointRead, Row, SqlitePointReader, core_rows
from storage.sqlite_driver import handle_of, one_hop_dbapi

log = logging.getLogger(__name__)
SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseError(Exception):
    """The database is missing, unreachable or its address is malformed; the message says which."""


def parse_database_url(url: str) -> URL:
    """Checks a DATABASE_URL names a supported driver and is well formed."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise DatabaseError(f"DATABASE_URL is malformed: {_hide_password(url)!r}") from None
    if parsed.drivername not in {"sqlite+aiosqlite", "postgresql+asyncpg"}:
        raise DatabaseError(
            f"DATABASE_URL uses {parsed.drivername!r}; use sqlite+aiosqlite:// or postgresql+asyncpg://"
        )
    if parsed.drivername.startswith("sqlite") and not parsed.database:
        raise DatabaseError("DATABASE_URL names no SQLite file, e.g. sqlite+aiosqlite:///./data/likeness.db")
    return parsed


def _hide_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url.split("@")[-1]


class Database:
    """Owns the engine; hands out transactions (the unit of work)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        """Builds the engine for `url` (nothing connects until first use).

        Parameters:
            url: an SQLAlchemy async URL (sqlite+aiosqlite or postgresql+asyncpg).
            echo: log every statement.
        """
        self.url = parse_database_url(url)
        self.dialect = "sqlite" if self.url.drivername.startswith("sqlite") else "postgresql"
        options: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = self.url.database or ""
            if database != ":memory:":
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            # The writer's statements run on the event loop's thread (see storage/sqlite_driver.py);
            # the readers' hop to a thread of their own, so a long report never holds up the loop.
            options["module"] = one_hop_dbapi(inline_wait_ms=SQLITE_BUSY_TIMEOUT_MS)
            # Every session ends its transaction (commit or rollback) and SQLAlchemy's Connection
            # rolls back one left open when it closes, so the pool's own ROLLBACK on every return
            # is a redundant trip to aiosqlite's thread.
            options["pool_reset_on_return"] = None
        else:
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        self.read_engine = self.quick_read_engine = self.engine
        self.checkpoints: WalCheckpoints | None = None
        self._point_reader: SqlitePointReader | None = None
        self._quick_writer: SqliteQuickWriter | None = None
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, immediate=True, busy_timeout_ms=0, checkpoints=False)
            # Readers get their own engine with deferred transactions: in WAL they never wait for a writer.
            self.read_engine = create_async_engine(self.url, **{**options, "module": one_hop_dbapi()})
            _configure_sqlite(self.read_engine, immediate=False, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
            # The writer's commits run on the loop, so the WAL checkpoints (which copy pages into the
            # database file and sync it) move to a reader's thread, every CHECKPOINT_EVERY commits.
            checkpoints = self.checkpoints = WalCheckpoints(self.read_engine)
            event.listen(self.engine.sync_engine, "commit", lambda _connection: checkpoints.committed())
            # Point reads on the hot paths (who tapped, the card to edit, the API key) run inline.
            self.quick_read_engine = create_async_engine(self.url, **options)
            _configure_sqlite(self.quick_read_engine, immediate=False, busy_timeout_ms=0)
            if database not in ("", ":memory:"):
                self._point_reader = SqlitePointReader(database, self.engine.dialect, self.read_engine)
                self._quick_writer = _quick_writer(self.engine)
                self._point_reader.warm = self._quick_writer.idle_handle
        _count_writes(self.engine)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._quick_read_sessions = async_sessionmaker(self.quick_read_engine, expire_on_commit=False)
        # SQLite has one writer at a time. Queueing writers here, in order, is far cheaper than
        # letting them collide in SQLite's busy handler, which sleeps and retries.
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def supports_skip_locked(self) -> bool:
        """PostgreSQL claims rows with FOR UPDATE SKIP LOCKED; SQLite serialises writers instead."""
        return self.dialect == "postgresql"

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends normally, rolled back on any exception."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            session = await stack.enter_async_context(self._sessions())
            await stack.enter_async_context(session.begin())
            yield session

    @contextlib.asynccontextmanager
    async def core_transaction(self) -> AsyncIterator[AsyncConnection]:
        """One transaction on a bare connection (SQLAlchemy Core, no ORM session): the cheaper way
        to run a statement or two; committed when the block ends normally, else rolled back."""
        async with contextlib.AsyncExitStack() as stack:
            if self._write_lock is not None:
                await stack.enter_async_context(self._write_lock)
            yield await stack.enter_async_context(self.engine.begin())

    async def quick_write(self, hot: HotWrite, params: Params) -> WriteResult:
        """One write in a transaction of its own (storage/hot_writes.py): on SQLite on the writer's
        connection while the pool holds it unused, on the event loop's thread, without SQLAlchemy's
        session or pool; elsewhere, with no idle connection, or when another process holds
        SQLite's write lock, as a Core transaction."""
        if self._quick_writer is not None:
            assert self._write_lock is not None
            async with self._write_lock:
                done = self._quick_writer.write(hot, params)
            if done is not None:
                if self.checkpoints is not None:
                    self.checkpoints.committed()
                return done
        async with self.core_transaction() as connection:
            return await hot.execute(connection, params)

    @contextlib.asynccontextmanager
    async def read(self, *, quick: bool = False) -> AsyncIterator[AsyncSession]:
        """A read-only view of the database that never waits for writers; do not write through it.

        `quick` is for a few rows found by key on a hot path: on SQLite its statements run on the
        event loop's thread instead of hopping to a connection's thread (see
        storage/sqlite_driver.py). A read that may scan many rows must not be quick: it would hold
        up the loop for as long as SQLite takes."""
        sessions = self._quick_read_sessions if quick else self._read_sessions
        async with sessions() as session, session.begin():
            yield session

    async def point_read(self, read: PointRead, params: dict[str, Any]) -> list[Row]:
        """The few rows `read` finds by key (storage/point_reads.py): on SQLite without SQLAlchemy's
        session and execution machinery, on the event loop's thread; never for a read that scans."""
        return (await self.point_reads((read, params)))[0]

    async def point_reads(self, *reads: tuple[PointRead, dict[str, Any]]) -> list[list[Row]]:
        """Several `point_read`s that see one snapshot of the database."""
        if self._point_reader is not None:
            return await self._point_reader.rows(*reads)
        return await core_rows(self.quick_read_engine, *reads)

    async def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except (OSError, DBAPIError, OperationalError):
            return False
        return True

    async def migrated(self) -> bool:
        """True when every migration is applied; False when some are missing or it cannot tell."""
        try:
            async with self.engine.connect() as connection:
                return await connection.run_sync(at_head)
        except (OSError, DBAPIError, OperationalError):
            return False

    async def upgrade(self) -> None:
        """Applies every Alembic migration not yet applied."""
        try:
            async with self.engine.begin() as connection:
                if self.dialect == "postgresql":
                    # Several instances may start together; one migrates, the others wait and find it done.
                    await connection.execute(text("SELECT pg_advisory_xact_lock(72616701)"))
                await connection.run_sync(run_upgrade)
        except (OSError, DBAPIError) as error:
            raise DatabaseError(
                f"cannot reach the database at {self.url.render_as_string(hide_password=True)}: "
                f"{_first_line(error)}"
            ) from None

    async def dispose(self) -> None:
        """Closes every pooled connection (after a WAL checkpoint under way has finished)."""
        if self.checkpoints is not None:
            await self.checkpoints.finish()
        if self._point_reader is not None:
            self._point_reader.close()
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
            await self.quick_read_engine.dispose()


async def upgrade_database(url: str) -> None:
    """Applies every migration not yet applied to the database at `url`, with an engine of its own."""
    database = Database(url)
    try:
        await database.upgrade()
    finally:
        await database.dispose()


_WRITES = "likeness.writes"  # connection info key: statements other than SELECT run so far


def _count_writes(engine: AsyncEngine) -> None:
    """Counts, per connection, every statement that is not a SELECT (run or attempted)."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _counted(connection: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if not statement.lstrip()[:6].upper().startswith("SELECT"):
            connection.info[_WRITES] = connection.info.get(_WRITES, 0) + 1


async def writes_so_far(session: AsyncSession) -> int:
    """How many statements other than SELECT the session's connection has run (or tried): compare
    two readings to learn whether anything was written in between."""
    connection = await session_connection(session)
    return int(connection.info.get(_WRITES, 0))


def _first_line(error: BaseException) -> str:
    message = str(getattr(error, "orig", None) or error).strip().splitlines()
    return message[0] if message else type(error).__name__


CHECKPOINT_EVERY = 200  # the writer's commits between two WAL checkpoints (SQLite's own: 1,000 pages)


class WalCheckpoints:
    """SQLite's WAL checkpoints, run on a reader's thread instead of inside the writer's commit.

    A checkpoint copies the WAL's pages into the database file and syncs it: milliseconds, more on
    a busy disk. SQLite runs one inside whichever commit crosses its threshold, and the writer's
    commits run on the event loop, so the writer's own checkpoints are off and these run instead,
    PASSIVE (they never wait for, nor hold up, a writer or a reader), one at a time."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Checkpoints through `engine`'s connections, whose work runs on their own threads."""
        self.engine = engine
        self.commits = 0
        self.done = 0
        self._running: asyncio.Task[None] | None = None

    def committed(self) -> None:
        """Counts a commit; every CHECKPOINT_EVERY, starts a checkpoint unless one is under way."""
        self.commits += 1
        if self.commits >= CHECKPOINT_EVERY and (self._running is None or self._running.done()):
            self.commits = 0
            self._running = asyncio.get_running_loop().create_task(self._checkpoint(), name="wal-checkpoint")

    async def _checkpoint(self) -> None:
        try:
            async with self.engine.connect() as connection:
                driver: Any = (await connection.get_raw_connection()).driver_connection
                cursor = await driver.execute("PRAGMA wal_checkpoint(PASSIVE)")
                await cursor.close()
            self.done += 1
        except Exception as error:  # the next one tries again; SQLite's data is safe in the WAL meanwhile
            log.warning("WAL checkpoint failed: %s", _first_line(error))

    async def finish(self) -> None:
        """Waits for a checkpoint under way."""
        if self._running is not None:
            await asyncio.shield(self._running)


def _quick_writer(engine: AsyncEngine) -> SqliteQuickWriter:
    """A quick writer on the handles of `engine`'s (the inline writer's) pooled connections, each
    while the pool holds it unused."""
    quick = SqliteQuickWriter(engine.dialect)

    def _in(connection: Any, *_rest: Any) -> None:
        if (handle := handle_of(connection)) is not None:
            quick.checked_in(handle)

    def _out(connection: Any, *_rest: Any) -> None:
        if (handle := handle_of(connection)) is not None:
            quick.checked_out(handle)

    event.listen(engine.sync_engine, "checkin", _in)
    event.listen(engine.sync_engine, "checkout", _out)
    event.listen(engine.sync_engine, "close", _out)
    return quick


def _configure_sqlite(
    engine: AsyncEngine, *, immediate: bool, busy_timeout_ms: int, checkpoints: bool = True
) -> None:
    """WAL, a busy timeout, foreign keys; BEGIN IMMEDIATE for writers so they queue instead of
    deadlocking. An inline writer's busy timeout is 0: its driver waits on a thread instead; and it
    makes no WAL checkpoint of its own (`checkpoints=False`): WalCheckpoints does, off the loop."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads then writes can fail with SQLITE_BUSY when another
        # writer got there first; taking the write lock up front makes every step serialisable.
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
