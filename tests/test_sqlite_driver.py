"""The one-hop aiosqlite driver behaves like SQLAlchemy's own: rows, counts, errors, many rows; the
writer's statements run on the loop's thread, and one that finds the database locked waits off it."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError

from storage.database import CHECKPOINT_EVERY, Database
from tests.conftest import logged


async def test_one_hop_cursor_returns_rows_counts_and_errors_like_the_stock_driver(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'one-hop.db'}")
    try:
        async with database.transaction() as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT UNIQUE)"))
            await session.execute(
                text("INSERT INTO t (body) VALUES (:body)"), [{"body": f"row {n}"} for n in range(5)]
            )
            changed = await session.execute(text("UPDATE t SET body = body || '!' WHERE id <= 2"))
            assert changed.rowcount == 2  # type: ignore[attr-defined]
        async with database.read() as session:
            rows = (await session.execute(text("SELECT id, body FROM t ORDER BY id"))).all()
            assert [tuple(r) for r in rows] == [
                (1, "row 0!"),
                (2, "row 1!"),
                (3, "row 2"),
                (4, "row 3"),
                (5, "row 4"),
            ]
            streamed = await session.stream(text("SELECT body FROM t ORDER BY id"))
            assert [r[0] async for r in streamed] == ["row 0!", "row 1!", "row 2", "row 3", "row 4"]
        with pytest.raises(IntegrityError):
            async with database.transaction() as session:
                await session.execute(text("INSERT INTO t (body) VALUES ('row 2')"))
        async with database.read() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar_one() == 5
    finally:
        await database.dispose()


def _with_thread_id(database: Database) -> None:
    """Every connection of both engines gets `thread_id()`: the thread a statement runs on."""
    for engine in (database.engine, database.read_engine, database.quick_read_engine):

        @event.listens_for(engine.sync_engine, "connect")
        def _register(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.create_function("thread_id", 0, threading.get_ident)


async def test_the_writers_and_quick_readers_statements_run_on_the_loops_thread_the_others_on_their_own(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}")
    _with_thread_id(database)
    try:
        async with database.transaction() as session:
            writer = (await session.execute(text("SELECT thread_id()"))).scalar_one()
        async with database.read() as session:
            reader = (await session.execute(text("SELECT thread_id()"))).scalar_one()
        async with database.read(quick=True) as session:
            quick = (await session.execute(text("SELECT thread_id()"))).scalar_one()
    finally:
        await database.dispose()
    assert writer == quick == threading.get_ident()
    assert reader != threading.get_ident()


async def test_a_write_that_finds_the_database_locked_waits_off_the_loop_then_lands(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    with logged("storage.sqlite_driver", "locked") as waiting:
        try:
            async with database.transaction() as session:
                await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
            other = sqlite3.connect(path, isolation_level=None)  # another process's writer
            other.execute("BEGIN IMMEDIATE")

            async def write() -> None:
                async with database.transaction() as session:
                    await session.execute(text("INSERT INTO t (body) VALUES ('after the wait')"))

            writing = asyncio.create_task(write())
            await waiting.wait()
            # Back here while the writer's BEGIN IMMEDIATE waits for the lock: the loop is not blocked.
            assert not writing.done()
            other.execute("INSERT INTO t (body) VALUES ('first')")
            other.execute("COMMIT")
            other.close()
            await asyncio.wait_for(writing, timeout=30)
            async with database.read() as session:
                rows = (await session.execute(text("SELECT body FROM t ORDER BY id"))).scalars().all()
            assert rows == ["first", "after the wait"]
            async with database.transaction() as session:  # the busy timeout is back to 0 afterwards
                timeout = (await session.execute(text("PRAGMA busy_timeout"))).scalar_one()
            assert timeout == 0
        finally:
            await database.dispose()


def _rows_in_the_database_file(path: Path) -> int:
    """Rows of `t` in the database file itself, ignoring the WAL (immutable: read as it is on disk)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM t").fetchone()[0])


async def test_wal_checkpoints_run_off_the_loop_every_so_many_commits(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    assert database.checkpoints is not None
    try:
        async with database.transaction() as session:
            await session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            autocheckpoint = (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar_one()
        assert autocheckpoint == 0  # the writer's commits, on the loop, copy nothing into the file
        for _ in range(CHECKPOINT_EVERY - 2):
            async with database.transaction() as session:
                await session.execute(text("INSERT INTO t DEFAULT VALUES"))
        await database.checkpoints.finish()
        assert database.checkpoints.done == 0
        with pytest.raises(sqlite3.OperationalError, match="no such table"):
            _rows_in_the_database_file(path)  # everything so far is in the WAL only
        async with database.transaction() as session:  # the commit that reaches CHECKPOINT_EVERY
            await session.execute(text("INSERT INTO t DEFAULT VALUES"))
        await database.checkpoints.finish()
        assert database.checkpoints.done == 1
        assert _rows_in_the_database_file(path) == CHECKPOINT_EVERY - 1
    finally:
        await database.dispose()
