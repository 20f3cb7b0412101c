"""Point reads on the hot paths, run as directly as the database allows.

Every API call reads its key, every tap its tapper. Through an ORM session such a read costs
~0.2-0.35 ms of CPU on the benchmark machine (checking out a connection, BEGIN, SQLAlchemy's
execution context and result machinery, loading an object, ROLLBACK), while SQLite itself
answers in ~15 us. A `PointRead` is a SELECT built once with SQLAlchemy and compiled once per
dialect; on SQLite it runs in autocommit mode (each statement reads one consistent snapshot, in
WAL never waiting for a writer) on the event loop's thread, with SQLAlchemy's own type processing
applied to the values: on a writer connection while the pool holds it unused (its page cache is
current; see `storage/hot_writes.SqliteQuickWriter`), else on a read-only connection of its own.
On PostgreSQL, or when SQLite is busy, it runs through SQLAlchemy Core as any other read. Either
way it returns the same tuples.

Only for a few rows found by key: a read that may scan must not hold up the loop.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Select, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import DeclarativeBase, class_mapper

from storage.hot_writes import tell_listeners
from storage.sqlite_driver import DirectSql, is_busy

log = logging.getLogger(__name__)
Row = tuple[Any, ...]
Entity = TypeVar("Entity", bound=DeclarativeBase)


class PointRead:
    """A SELECT of a few rows by key, built once and run as a point read (`SqlitePointReader`)."""

    def __init__(self, statement: Select[Any]) -> None:
        """Keeps `statement`; it is compiled for SQLite the first time it runs there."""
        self.statement = statement
        self._compiled: dict[str, DirectSql] = {}

    def compiled(self, dialect: Dialect) -> DirectSql:
        """The statement's SQL for `dialect`, its parameters' order and the values' processors."""
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = DirectSql.of(
                self.statement.compile(dialect=dialect), dialect
            )
        return found


class SqlitePointReader:
    """Point reads on a SQLite connection of their own, on the event loop's thread."""

    def __init__(self, path: str, dialect: Dialect, fallback: AsyncEngine) -> None:
        """Reads the database file at `path`; `fallback` runs a read that finds it busy."""
        self._path = path
        self._dialect = dialect
        self._fallback = fallback
        self._connection: sqlite3.Connection | None = None
        # A writer connection the pool holds unused, when there is one: its page cache is current,
        # where this reader's own is invalidated by every commit the writer makes (`Database`).
        self.warm: Callable[[], sqlite3.Connection | None] | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            # Autocommit: each SELECT is a transaction of its own. A busy timeout of 0: the
            # loop never waits here; a busy read goes to the fallback, off the loop.
            # mode=rw: never creates the file (the service's migrations do, through its engine).
            uri = Path(self._path).expanduser().absolute().as_uri() + "?mode=rw"
            connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA busy_timeout=0")
            connection.execute("PRAGMA query_only=ON")
            self._connection = connection
        return self._connection

    async def rows(self, *reads: tuple[PointRead, dict[str, Any]]) -> list[list[Row]]:
        """The rows each read finds with its parameters, typed as SQLAlchemy would type them; several
        reads see one snapshot (one read transaction)."""
        connection = (self.warm() if self.warm is not None else None) or self._connect()
        try:
            if len(reads) == 1:  # autocommit: a statement is a snapshot of its own
                return [self._fetch(connection, *reads[0])]
            connection.execute("BEGIN")
            try:
                return [self._fetch(connection, read, params) for read, params in reads]
            finally:
                connection.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
            log.debug("a point read found the database busy; reading off the event loop")
            return await core_rows(self._fallback, *reads)

    def _fetch(self, connection: sqlite3.Connection, read: PointRead, params: dict[str, Any]) -> list[Row]:
        return fetch_on(connection, self._dialect, read, params)

    def close(self) -> None:
        """Closes the connection (a later read opens it again)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def fetch_on(
    connection: sqlite3.Connection,
    dialect: Dialect,
    read: PointRead,
    params: dict[str, Any],
    told: Connection | None = None,
) -> list[Row]:
    """The rows `read` finds on a sqlite3 connection, typed as SQLAlchemy would type them (also
    inside a write transaction on the writer's own connection, which sees its uncommitted rows;
    `told` is then that SQLAlchemy Connection, whose statement listeners hear of the read)."""
    compiled = read.compiled(dialect)
    args: Any = compiled.args(params)
    if told is not None:
        args = tell_listeners(told, compiled.sql, args, False)
    return compiled.typed(connection.execute(compiled.sql, args).fetchall())


async def core_rows(engine: AsyncEngine, *reads: tuple[PointRead, dict[str, Any]]) -> list[list[Row]]:
    """The rows each read finds with its parameters, through SQLAlchemy Core on `engine`, in one
    transaction."""
    async with engine.connect() as connection:
        return [
            [tuple(row) for row in await connection.execute(read.statement, params)] for read, params in reads
        ]


_LOADERS: dict[type[Any], tuple[tuple[str, ...], Any]] = {}  # entity -> (attribute names, class manager)


def columns_of(entity: type[DeclarativeBase]) -> list[Any]:
    """The columns of `entity`'s table, in order: what `loaded` takes the values of."""
    table: Table = entity.__table__  # type: ignore[assignment]
    return list(table.columns)


def loaded(entity: type[Entity], values: Sequence[Any]) -> Entity:
    """An object of `entity` holding a row's values (the first ones, its `columns_of`, in order),
    as if loaded by a session: nothing marked changed, attached to no session."""
    found = _LOADERS.get(entity)
    if found is None:
        mapper = class_mapper(entity)
        names = tuple(mapper.get_property_by_column(column).key for column in columns_of(entity))
        found = _LOADERS[entity] = (names, mapper.class_manager)
    names, manager = found
    instance: Entity = manager.new_instance()
    instance.__dict__.update(zip(names, values[: len(names)], strict=True))
    return instance
