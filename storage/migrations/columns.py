"""What the migrations write their schema changes in: column type codes and three kinds of step.

A revision lists its steps once, `upgrade, downgrade = migration(step, ...)`: the upgrade takes
them in order, the downgrade undoes them in the reverse order. A `Table` is created (with its
indexes) and dropped; an `Alter` adds columns, unique constraints and indexes to a table in one
batch (SQLite rebuilds the table when it must) and removes them again; an `Execute` runs a
statement on the upgrade only (seed rows, gone with their table).

A column is `name='code'`: `str<N>` (a string of length N), `text`, `int`, `bigint`, `bool`,
`json`, `double`, `time` (with time zone), `naive_time` (without, as slack_sdk's tables keep
them) or `seq` (the audit chain's sequence: BIGINT, INTEGER on SQLite); a trailing `?` lets it be
NULL. A released revision must build the same schema for ever, so what a code or a step emits
never changes: a new need gets a new code or option.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations
from sqlalchemy.types import TypeEngine

Codes = Mapping[str, str]
"""Columns in order: name → type code."""

Options = Mapping[str, Mapping[str, Any]]
"""Further sa.Column arguments by column name (autoincrement, server_default)."""

Indexes = Mapping[str, tuple[str, ...]]
"""Indexes (not unique) in order: name → the columns."""

_TYPES: dict[str, Callable[[], TypeEngine[Any]]] = {
    "text": sa.Text,
    "int": sa.Integer,
    "bigint": sa.BigInteger,
    "bool": sa.Boolean,
    "json": sa.JSON,
    "double": sa.Double,
    "time": lambda: sa.DateTime(timezone=True),
    "naive_time": sa.DateTime,
    "seq": lambda: sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
}


def column_type(code: str) -> TypeEngine[Any]:
    """A new instance of the column type `code` names (without its `?`)."""
    if code.startswith("str"):
        return sa.String(length=int(code.removeprefix("str")))
    return _TYPES[code]()


def column(name: str, code: str, **options: Any) -> sa.Column[Any]:
    """A new column typed by `code`, NOT NULL unless the code ends in `?`."""
    return sa.Column(name, column_type(code.removesuffix("?")), nullable=code.endswith("?"), **options)


def columns(codes: Codes, options: Options | None = None) -> list[sa.Column[Any]]:
    """New columns, in the order of `codes`, with their further arguments from `options`."""
    options = options or {}
    return [column(name, code, **options.get(name, {})) for name, code in codes.items()]


def _create_indexes(batch_op: BatchOperations, indexes: Indexes) -> None:
    for name, on in indexes.items():
        batch_op.create_index(batch_op.f(name), list(on), unique=False)


def _drop_indexes(batch_op: BatchOperations, indexes: Indexes) -> None:
    for name in reversed(list(indexes)):
        batch_op.drop_index(batch_op.f(name))


class Step(Protocol):
    """One schema change of a revision, and how to undo it."""

    def up(self) -> None:
        """Makes the change."""

    def down(self) -> None:
        """Undoes it."""


@dataclass(frozen=True)
class Table:
    """A new table: its columns, then its foreign keys (column → "table.column"), primary key,
    unique columns and named unique constraints, in that order; its indexes are made right after."""

    name: str
    columns: Codes
    primary_key: tuple[str, ...] = ("id",)
    foreign_keys: Mapping[str, str] = field(default_factory=dict)
    unique: tuple[str, ...] = ()
    named_unique: Indexes = field(default_factory=dict)
    indexes: Indexes = field(default_factory=dict)
    options: Options = field(default_factory=dict)

    def up(self) -> None:
        """Creates the table, then its indexes."""
        op.create_table(
            self.name,
            *columns(self.columns, self.options),
            *(sa.ForeignKeyConstraint([column], [target]) for column, target in self.foreign_keys.items()),
            sa.PrimaryKeyConstraint(*self.primary_key),
            *(sa.UniqueConstraint(column) for column in self.unique),
            *(sa.UniqueConstraint(*on, name=name) for name, on in self.named_unique.items()),
        )
        if self.indexes:
            with op.batch_alter_table(self.name, schema=None) as batch_op:
                _create_indexes(batch_op, self.indexes)

    def down(self) -> None:
        """Drops the indexes (last made, first dropped), then the table."""
        if self.indexes:
            with op.batch_alter_table(self.name, schema=None) as batch_op:
                _drop_indexes(batch_op, self.indexes)
        op.drop_table(self.name)


@dataclass(frozen=True)
class Alter:
    """Columns, then named unique constraints, then indexes added to an existing table."""

    name: str
    columns: Codes = field(default_factory=dict)
    named_unique: Indexes = field(default_factory=dict)
    indexes: Indexes = field(default_factory=dict)
    options: Options = field(default_factory=dict)

    def up(self) -> None:
        """Adds them, in one batch."""
        with op.batch_alter_table(self.name, schema=None) as batch_op:
            for column in columns(self.columns, self.options):
                batch_op.add_column(column)
            for name, on in self.named_unique.items():
                batch_op.create_unique_constraint(name, list(on))
            _create_indexes(batch_op, self.indexes)

    def down(self) -> None:
        """Removes them in the reverse order, in one batch."""
        with op.batch_alter_table(self.name, schema=None) as batch_op:
            _drop_indexes(batch_op, self.indexes)
            for name in reversed(list(self.named_unique)):
                batch_op.drop_constraint(name, type_="unique")
            for name in reversed(list(self.columns)):
                batch_op.drop_column(name)


@dataclass(frozen=True)
class Execute:
    """A statement run on the upgrade; nothing to undo (the rows it writes go with their table)."""

    sql: str

    def up(self) -> None:
        """Runs the statement."""
        op.execute(self.sql)

    def down(self) -> None:
        """Nothing: the step that made the table drops it, rows and all."""


def migration(*steps: Step) -> tuple[Callable[[], None], Callable[[], None]]:
    """A revision's `upgrade` (the steps in order) and `downgrade` (each undone, last first)."""

    def upgrade() -> None:
        for step in steps:
            step.up()

    def downgrade() -> None:
        for step in reversed(steps):
            step.down()

    return upgrade, downgrade
