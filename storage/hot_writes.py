"""Writes on the hot paths, run as directly as the database allows.

A tap writes about ten rows (its inbox row, the decision, the request's status, the grant, the
notices, the audit events and head, the notice's mark). Through SQLAlchemy each statement costs
~0.15-0.2 ms of CPU on the benchmark machine (an ORM or Core execution context, parameter and
result machinery, a greenlet switch), while SQLite runs it in ~0.03 ms. A `HotWrite` is an
INSERT or UPDATE built once with SQLAlchemy and compiled once per dialect, set of parameter names
and one-row or many-row form:

- on SQLite's writer connection (the one whose statements run on the event loop's thread, see
  `storage/sqlite_driver.py`) it runs straight on that connection's sqlite3 handle, inside the
  transaction SQLAlchemy began, with SQLAlchemy's own bind processing, Python-side column
  defaults and RETURNING result processing applied, the engine's `before_cursor_execute`
  listeners told (statement logs, tests, `writes_so_far`), and a driver error raised as the
  `sqlalchemy.exc` error SQLAlchemy would raise;
- anywhere else (PostgreSQL, a reader's connection) its compiled form runs through SQLAlchemy.

Either way it returns the same `WriteResult`. A statement SQLAlchemy does not cache (a dialect's
INSERT … ON CONFLICT has no cache key in SQLAlchemy 2.0) is compiled once here all the same.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import Compiled

from storage.sqlite_driver import DirectSql, handle_of, is_busy

Params = Mapping[str, Any] | Sequence[Mapping[str, Any]]
_CONNECTION = "likeness.hot_writes.connection"  # session.info key: (its transaction, its Connection)


@dataclass(frozen=True)
class WriteResult:
    """What a write did: the rows it changed (for many rows: their sum, or -1 where the driver does
    not say, as asyncpg's executemany), and what RETURNING gave."""

    rowcount: int
    rows: list[tuple[Any, ...]]

    def scalars(self) -> list[Any]:
        """The first column of each returned row."""
        return [row[0] for row in self.rows]


@dataclass(frozen=True)
class _RawForm:
    direct: DirectSql
    defaults: tuple[tuple[str, Callable[[], Any]], ...]  # Python-side column defaults to compute
    returning: bool


def _rows(params: Params) -> tuple[Sequence[Mapping[str, Any]], bool]:
    """The rows of parameters, and whether there are many (an executemany) or one."""
    if isinstance(params, Mapping):
        return [params], False
    return params, True


def _column_default(default: Any) -> Callable[[], Any]:
    if default.is_scalar:
        value = default.arg
        return lambda: value
    if default.is_callable:
        function = default.arg  # SQLAlchemy's wrapper, which takes the execution context
        return lambda: function(None)
    raise NotImplementedError("a SQL expression default is rendered in the statement, not computed")


class HotWrite:
    """An INSERT or UPDATE run as directly as the database allows (see the module's text).

    Parameters:
        statement: the statement, or a function making it for a dialect name ("sqlite",
            "postgresql") when the dialects need different ones.
    """

    def __init__(self, statement: ClauseElement | Callable[[str], ClauseElement]) -> None:
        """Keeps the statement; it is compiled the first time it runs on each dialect."""
        self._build = statement if callable(statement) else (lambda _dialect: statement)
        self._compiled: dict[tuple[str, tuple[str, ...], bool], Compiled] = {}
        self._raw: dict[tuple[str, tuple[str, ...], bool], _RawForm | None] = {}

    def compiled(self, dialect: Dialect, names: tuple[str, ...], many: bool) -> Compiled:
        """The statement compiled for `dialect` with parameters `names`, for one row or many."""
        key = (dialect.name, names, many)
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self._build(dialect.name).compile(
                dialect=dialect, column_keys=list(names), for_executemany=many
            )
        return found

    def _raw_form(self, dialect: Dialect, names: tuple[str, ...], many: bool) -> _RawForm | None:
        key = (dialect.name, names, many)
        if key in self._raw:
            return self._raw[key]
        compiled: Any = self.compiled(dialect, names, many)
        form: _RawForm | None = None
        returning = bool(compiled.effective_returning)
        # Expanding IN lists are rendered per run, and sqlite3's executemany returns no rows:
        # those run through SQLAlchemy.
        if "POSTCOMPILE" not in compiled.string and not (many and returning):
            prefetch = [(column, column.default) for column in compiled.insert_prefetch]
            prefetch += [(column, column.onupdate) for column in compiled.update_prefetch]
            try:
                defaults = tuple((column.key, _column_default(default)) for column, default in prefetch)
            except NotImplementedError:
                pass  # a default computed from the execution context: SQLAlchemy's way, then
            else:
                form = _RawForm(DirectSql.of(compiled, dialect), defaults, returning)
        self._raw[key] = form
        return form

    def _direct(
        self, connection: Connection, params: Params
    ) -> tuple[sqlite3.Connection, _RawForm, Sequence[Mapping[str, Any]], bool] | None:
        """How the write runs straight on `connection`'s sqlite3 handle; None when it cannot."""
        raw = _inline_sqlite(connection)
        if raw is None:
            return None
        rows, many = _rows(params)
        form = self._raw_form(connection.dialect, tuple(rows[0]), many)
        return None if form is None else (raw, form, rows, many)

    def _compiled_for(self, connection: Connection, params: Params) -> Any:
        rows, many = _rows(params)
        return self.compiled(connection.dialect, tuple(rows[0]), many)

    def run(self, connection: Connection, params: Params) -> WriteResult:
        """Runs the write on `connection` (a sync Connection, in its transaction)."""
        direct = self._direct(connection, params)
        if direct is not None:
            return _run_raw(*direct, connection.dialect, connection)
        return _result_of(connection.execute(self._compiled_for(connection, params), params))

    async def execute(self, target: AsyncSession | AsyncConnection, params: Params) -> WriteResult:
        """Runs the write in the session's (or connection's) transaction."""
        if isinstance(target, AsyncConnection):
            if not target.in_transaction():
                await target.begin()  # what running a statement on it would do (autobegin)
            connection = target.sync_connection
            assert connection is not None
        else:
            if target.new or target.deleted or target.dirty:
                await target.flush()  # what the session would do before running a statement
            connection = await session_connection(target)
        direct = self._direct(connection, params)
        if direct is not None:
            return _run_raw(*direct, connection.dialect, connection)
        on = target if isinstance(target, AsyncConnection) else await target.connection()
        return _result_of(await on.execute(self._compiled_for(connection, params), params))

    def run_alone(self, raw: sqlite3.Connection, dialect: Dialect, params: Params) -> WriteResult | None:
        """Runs the write on a bare sqlite3 connection in its transaction (`SqliteQuickWriter`);
        None when this form must run through SQLAlchemy (see `_raw_form`)."""
        rows, many = _rows(params)
        form = self._raw_form(dialect, tuple(rows[0]), many)
        return None if form is None else _run_raw(raw, form, rows, many, dialect, None)


def _result_of(result: Any) -> WriteResult:
    """A SQLAlchemy result as a `WriteResult`."""
    return WriteResult(result.rowcount, [tuple(row) for row in result.all()] if result.returns_rows else [])


class SqliteQuickWriter:
    """Write transactions of one statement on the writer engine's own SQLite connection, on the
    event loop's thread: BEGIN IMMEDIATE, the write, COMMIT, with no session, pool checkout or
    execution context.

    For the single writes a tap makes outside its decision (storing the update before the
    webhook's 200, marking the card edit sent). They use the sqlite3 handle of a writer
    connection while the pool holds it unused (between a check-in and the next check-out): a
    connection of their own would make every other commit invalidate the writer's page cache,
    and each decision would read its pages afresh. The caller holds the database's write lock,
    and a write runs without an await from BEGIN to COMMIT, so nothing else in the process uses
    the handle meanwhile. The point reads use an idle handle the same way (`idle_handle`). When
    another process holds SQLite's write lock, or no idle handle is at hand, `write` answers
    None at once and the caller runs the write through the writer engine instead, which waits
    off the loop. These statements reach no statement listener (they run in no SQLAlchemy
    connection).
    """

    def __init__(self, dialect: Dialect) -> None:
        """Writes with `dialect`'s compiled forms, on the handles it is given."""
        self._dialect = dialect
        self._idle: list[sqlite3.Connection] = []

    def checked_in(self, handle: sqlite3.Connection) -> None:
        """The pool holds the writer connection `handle`, unused: SQLAlchemy will not touch it
        (nor a thread of aiosqlite's, which waits for a lock on a checked-out one) until it is
        checked out again."""
        if handle not in self._idle:
            self._idle.append(handle)

    def checked_out(self, handle: sqlite3.Connection) -> None:
        """The pool handed `handle` out (or closed it): no longer this writer's to use."""
        if handle in self._idle:
            self._idle.remove(handle)

    def idle_handle(self) -> sqlite3.Connection | None:
        """A writer handle the pool holds unused, not in a transaction (it sees only committed
        rows), or None."""
        return next((h for h in self._idle if not h.in_transaction), None)

    def write(self, hot: HotWrite, params: Params) -> WriteResult | None:
        """Runs `hot` in a transaction of its own and commits; None when nothing was done (no idle
        handle, the database locked by another process, or a write that must run through
        SQLAlchemy)."""
        handle = self.idle_handle()
        if handle is None:
            return None
        try:
            handle.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            if is_busy(error):
                return None
            raise
        try:
            result = hot.run_alone(handle, self._dialect, params)
            handle.execute("COMMIT" if result is not None else "ROLLBACK")
        except BaseException:
            if handle.in_transaction:
                handle.execute("ROLLBACK")
            raise
        return result


async def session_connection(session: AsyncSession) -> Connection:
    """The session's (sync) Connection in its current transaction, begun if it was not; found
    once per transaction (`session.connection()` is a trip through SQLAlchemy's greenlet)."""
    transaction = session.sync_session.get_transaction()
    cached = session.info.get(_CONNECTION)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cast(Connection, cached[1])
    connection = (await session.connection()).sync_connection
    assert connection is not None
    session.info[_CONNECTION] = (session.sync_session.get_transaction(), connection)
    return connection


async def inline_handle(session: AsyncSession) -> tuple[Connection, sqlite3.Connection] | None:
    """The session's Connection and the sqlite3 handle under it, when it is SQLite's inline
    writer (its statements run on the event loop's thread); else None."""
    connection = await session_connection(session)
    handle = _inline_sqlite(connection)
    return None if handle is None else (connection, handle)


def tell_listeners(connection: Connection, sql: str, parameters: Any, many: bool) -> Any:
    """Tells `connection`'s `before_cursor_execute` listeners (statement logs, tests,
    `writes_so_far`) of a statement run on its handle directly; the parameters they return."""
    if connection._has_events or connection.engine._has_events:
        for listener in connection.dispatch.before_cursor_execute:
            _sql, parameters = listener(connection, None, sql, parameters, None, many)
    return parameters


def _inline_sqlite(connection: Connection) -> sqlite3.Connection | None:
    """The sqlite3 handle of an inline (event-loop thread) SQLite writer connection, else None."""
    if connection.dialect.name != "sqlite":
        return None
    adapted = connection.connection.dbapi_connection
    if getattr(adapted, "inline_wait_ms", None) is None:
        return None
    return handle_of(adapted)


def _run_raw(
    raw: sqlite3.Connection,
    form: _RawForm,
    rows: Sequence[Mapping[str, Any]],
    many: bool,
    dialect: Dialect,
    connection: Connection | None,
) -> WriteResult:
    """Runs a compiled write on a sqlite3 handle; `connection`'s statement listeners are told."""
    direct = form.direct
    args: list[list[Any]] = []
    for row in rows:
        values = dict(row)
        for name, make in form.defaults:  # columns the row leaves out, by their Python-side default
            if name not in values:
                values[name] = make()
        args.append(direct.args(values))
    parameters: Any = args if many else args[0]
    if connection is not None:
        parameters = tell_listeners(connection, direct.sql, parameters, many)
    try:
        cursor = raw.executemany(direct.sql, parameters) if many else raw.execute(direct.sql, parameters)
        try:
            found = cursor.fetchall() if form.returning else []
            count = cursor.rowcount
        finally:
            cursor.close()
    except sqlite3.Error as error:
        raise DBAPIError.instance(
            direct.sql, parameters, error, sqlite3.Error, dialect=dialect, ismulti=many
        ) from error
    return WriteResult(count, direct.typed(found))
