"""Rows written with one Core statement each, without the unit of work's flush.

The decision path writes a handful of rows it already holds as objects (a decision, the
request's new status, a grant). Flushing them through the ORM's unit of work costs far more CPU
than the statements themselves; here each is one `HotWrite` (an INSERT or UPDATE compiled once, run
straight on SQLite's writer connection, see `storage/hot_writes.py`), and the objects stay
usable as values (a new row stays transient; an updated one shows its new values, not dirty).
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, inspect, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm.attributes import set_committed_value

from storage.hot_writes import HotWrite

_INSERTS: dict[str, HotWrite] = {}


def _table(row: DeclarativeBase) -> Table:
    return cast(Table, type(row).__table__)


async def insert_row(session: AsyncSession, row: DeclarativeBase) -> None:
    """Inserts a new (transient) object's row: the columns it was given, the others by their
    defaults; the object is not added to the session."""
    table = _table(row)
    statement = _INSERTS.get(table.name)
    if statement is None:
        statement = _INSERTS[table.name] = HotWrite(insert(table))
    given = inspect(row).dict
    await statement.execute(session, {c.key: given[c.key] for c in table.columns if c.key in given})


_UPDATES: dict[tuple[str, tuple[str, ...]], HotWrite] = {}


async def update_row(session: AsyncSession, row: DeclarativeBase, **values: Any) -> None:
    """Updates a loaded object's row by its primary key, and the object with it (left clean); the
    object may belong to the session or to none (a point read's)."""
    table = _table(row)
    key = inspect(type(row)).primary_key_from_instance(row)
    names = tuple(sorted(values))
    statement = _UPDATES.get((table.name, names))
    if statement is None:
        # Built once per table and set of columns, keys and values bound: "pk_" and "new_" keep
        # the names apart from the columns', which an UPDATE reserves for itself.
        where = [column == bindparam(f"pk_{column.key}") for column in table.primary_key.columns]
        new: dict[str, Any] = {name: bindparam(f"new_{name}") for name in names}
        statement = _UPDATES[(table.name, names)] = HotWrite(update(table).where(*where).values(new))
    bound = {f"pk_{column.key}": value for column, value in zip(table.primary_key.columns, key, strict=True)}
    await statement.execute(session, bound | {f"new_{name}": value for name, value in values.items()})
    for name, value in values.items():
        set_committed_value(row, name, value)
