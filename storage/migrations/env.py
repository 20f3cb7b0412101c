"""Alembic environment: migrations always run on a connection handed over by storage.database."""

from __future__ import annotations

from alembic import context

from storage.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `likeness db upgrade`, which provides the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
