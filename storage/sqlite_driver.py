"""SQLAlchemy's aiosqlite adapter with one thread hop per statement, or none.

SQLAlchemy's adapter runs each statement as separate calls into aiosqlite's thread: open a
cursor, execute, fetch the rows, close the cursor, each a future resolved through the event
loop. On the tap path that was ~80 hops per decision, most of its CPU outside SQLite. Here a
statement (with its rows) is one function run on the connection's thread, one hop. Server-side
cursors (streamed results) keep SQLAlchemy's own cursor.

An *inline* connection (the write engine's) goes further: its statements, commits and rollbacks
run on the event loop's own thread, with no hop at all. A writer's statements take microseconds
and in WAL mode they never wait for a lock once `BEGIN IMMEDIATE` holds the write lock; only
taking that lock can wait, for another process's writer. So an inline connection keeps SQLite's
busy timeout at 0: a statement that finds the database locked fails at once, without blocking
the loop, and is run again on the connection's thread with the full busy timeout, where waiting
blocks nothing else. A statement that fails with SQLITE_BUSY has changed nothing, so running it
again is safe.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_only

_Outcome = tuple[Any, list[Any] | None, Any, int]  # description, rows, lastrowid, rowcount
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DirectSql:
    """A statement compiled by SQLAlchemy for SQLite, ready to run on a bare sqlite3 handle with
    SQLAlchemy's own value processing: the point reads' and the hot writes' common part."""

    sql: str
    names: tuple[str, ...]  # the bound parameters, in the order of the SQL's placeholders
    fixed: dict[str, Any]  # values bound in the statement itself
    binds: tuple[Callable[[Any], Any] | None, ...]
    results: tuple[Callable[[Any], Any] | None, ...]  # each result column's processor

    @classmethod
    def of(cls, compiled: Any, dialect: Any) -> DirectSql:
        """The parts of a `Compiled` (SQLite's) that running it directly needs."""
        names = tuple(compiled.positiontup or ())
        processors = compiled._bind_processors
        return cls(
            sql=compiled.string,
            names=names,
            fixed={name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required},
            binds=tuple(processors.get(name) for name in names),
            results=tuple(
                column[3]._cached_result_processor(dialect, None) for column in compiled._result_columns
            ),
        )

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The placeholders' values, in order, as SQLAlchemy would bind them (`fixed` under `values`)."""
        given = self.fixed | dict(values)
        return [
            value if bind is None else bind(value)
            for bind, value in zip(self.binds, (given[name] for name in self.names), strict=True)
        ]

    def typed(self, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Result rows with each value as SQLAlchemy would return it."""
        results = self.results
        return [
            tuple(
                value if result is None else result(value) for result, value in zip(results, row, strict=True)
            )
            for row in rows
        ]


def _run(connection: sqlite3.Connection, operation: str, parameters: Any, many: bool) -> _Outcome:
    """Runs on the connection's thread: the statement, its rows if it has any, then closes the cursor."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        if cursor.description:
            return cursor.description, cursor.fetchall(), -1, -1
        return None, None, cursor.lastrowid, cursor.rowcount
    finally:
        cursor.close()


def handle_of(adapted: Any) -> sqlite3.Connection | None:
    """The sqlite3 connection under SQLAlchemy's adapted aiosqlite one (what the pool holds and
    its events carry); None when it is gone (closed, or never opened)."""
    handle = getattr(getattr(adapted, "_connection", None), "_conn", None)
    return handle if isinstance(handle, sqlite3.Connection) else None


def is_busy(error: BaseException) -> bool:
    """SQLITE_BUSY (or SQLITE_LOCKED): the statement found the database locked and changed nothing."""
    if not isinstance(error, sqlite3.OperationalError):
        return False
    message = str(error).lower()
    return "locked" in message or "busy" in message


async def _nothing() -> None:
    """Awaited by an inline statement: SQLAlchemy's Core refuses a statement that never awaits
    (it takes that for a blocking driver); this await costs a greenlet switch, not a loop turn."""


def _run_waiting(
    connection: sqlite3.Connection, wait_ms: int, operation: str, parameters: Any, many: bool
) -> _Outcome:
    """Runs on the connection's thread: the statement with the full busy timeout, then back to 0."""
    connection.execute(f"PRAGMA busy_timeout={wait_ms}")
    try:
        return _run(connection, operation, parameters, many)
    finally:
        connection.execute("PRAGMA busy_timeout=0")


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose execute is one call on aiosqlite's thread (none when inline)."""

    __slots__ = ()

    def _outcome(self, operation: Any, parameters: Any, many: bool) -> _Outcome:
        raw: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        wait_ms = self._adapt_connection.inline_wait_ms  # type: ignore[attr-defined]
        if wait_ms is not None:
            self.await_(_nothing())
            try:
                return _run(raw._conn, operation, parameters, many)
            except sqlite3.OperationalError as error:
                if not is_busy(error):
                    raise
            log.debug("the database is locked by another connection; waiting off the event loop")
            return self.await_(  # type: ignore[no-any-return]
                raw._execute(_run_waiting, raw._conn, wait_ms, operation, parameters, many)  # type: ignore[no-untyped-call]
            )
        return self.await_(  # type: ignore[no-any-return]
            raw._execute(_run, raw._conn, operation, parameters, many)  # type: ignore[no-untyped-call]
        )

    def _one_hop(self, operation: Any, parameters: Any, many: bool) -> None:
        try:
            description, rows, lastrowid, rowcount = self._outcome(operation, parameters, many)
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self.description = description
        if rows is not None:
            self._rows = deque(rows)
            self.lastrowid = self.rowcount = -1
        else:
            self.lastrowid = lastrowid
            self.rowcount = rowcount

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        """Executes one statement and buffers its rows, in one hop."""
        self._one_hop(operation, parameters, many=False)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        """Executes one statement for each parameter set, in one hop."""
        self._one_hop(operation, seq_of_parameters, many=True)


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's adapted aiosqlite connection, handing out one-hop cursors.

    `inline_wait_ms` is None for a connection whose work hops to aiosqlite's thread; for an
    inline one, the busy timeout a locked statement gets when it is run again on that thread."""

    __slots__ = ("inline_wait_ms",)

    def __init__(self, dbapi: Any, connection: Any, inline_wait_ms: int | None = None) -> None:
        """Adapts `connection`; inline when `inline_wait_ms` is given."""
        super().__init__(dbapi, connection)
        self.inline_wait_ms = inline_wait_ms

    def _end(self, how: str) -> None:
        raw: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            if self.inline_wait_ms is not None:
                try:
                    getattr(raw._conn, how)()
                    return
                except sqlite3.OperationalError as error:
                    if not is_busy(error):
                        raise
            self.await_(getattr(raw, how)())
        except Exception as error:
            self._handle_exception(error)

    def commit(self) -> None:
        """Commits, on the loop's thread when inline."""
        self._end("commit")

    def rollback(self) -> None:
        """Rolls back, on the loop's thread when inline."""
        self._end("rollback")

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        """A one-hop cursor; a server-side (streaming) one stays SQLAlchemy's."""
        if server_side:
            return super().cursor(server_side=True)
        return OneHopCursor(self)


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module handed to `create_async_engine(module=...)`."""

    def __init__(self, inline_wait_ms: int | None = None) -> None:
        """Connections run their statements inline when `inline_wait_ms` is given (see the module)."""
        super().__init__(aiosqlite, sqlite3)
        self.inline_wait_ms = inline_wait_ms

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        """Opens an aiosqlite connection (its thread a daemon, as SQLAlchemy does) and adapts it."""
        kw.pop("async_fallback", None)
        if self.inline_wait_ms is not None:
            # Used from the loop's thread and, when a statement must wait, from aiosqlite's: never
            # both at once, since each call is awaited before the next is made.
            kw["check_same_thread"] = False
            kw["timeout"] = 0
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True
        return OneHopConnection(self, await_only(connection), self.inline_wait_ms)


def one_hop_dbapi(inline_wait_ms: int | None = None) -> OneHopDBAPI:
    """The module for `create_async_engine(url, module=one_hop_dbapi())` on sqlite+aiosqlite.

    With `inline_wait_ms`, statements run on the event loop's thread, with SQLite's busy timeout
    at 0; one that finds the database locked runs again on aiosqlite's thread, waiting up to
    `inline_wait_ms`. For a writer's engine, whose transactions are short."""
    return OneHopDBAPI(inline_wait_ms)
