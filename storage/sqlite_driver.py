"""SQLAlchemy's aiosqlite adapter with one thread hop per statement instead of three or four.

SQLAlchemy's adapter runs each statement as separate calls into aiosqlite's thread: open a
cursor, execute, fetch the rows, close the cursor, each a future resolved through the event
loop. On the tap path that was ~80 hops per decision, most of its CPU outside SQLite. Here a
statement (with its rows) is one function run on the connection's thread, one hop. Server-side
cursors (streamed results) keep SQLAlchemy's own cursor.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Sequence
from typing import Any

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_only

_Outcome = tuple[Any, list[Any] | None, int | None, int]


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


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """A buffered cursor whose execute is one call on aiosqlite's thread."""

    __slots__ = ()

    def _one_hop(self, operation: Any, parameters: Any, many: bool) -> None:
        raw: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        try:
            description, rows, lastrowid, rowcount = self.await_(
                raw._execute(_run, raw._conn, operation, parameters, many)  # type: ignore[no-untyped-call]
            )
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
    """SQLAlchemy's adapted aiosqlite connection, handing out one-hop cursors."""

    __slots__ = ()

    def cursor(self, server_side: bool = False) -> AsyncAdapt_aiosqlite_cursor:
        """A one-hop cursor; a server-side (streaming) one stays SQLAlchemy's."""
        if server_side:
            return super().cursor(server_side=True)
        return OneHopCursor(self)


class OneHopDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module handed to `create_async_engine(module=...)`."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        """Opens an aiosqlite connection (its thread a daemon, as SQLAlchemy does) and adapts it."""
        kw.pop("async_fallback", None)
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True
        return OneHopConnection(self, await_only(connection))


def one_hop_dbapi() -> OneHopDBAPI:
    """The module for `create_async_engine(url, module=one_hop_dbapi())` on sqlite+aiosqlite."""
    return OneHopDBAPI(aiosqlite, sqlite3)
