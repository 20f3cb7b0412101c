"""An agency's language in storage: agencies registered before it existed speak English."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.database import Database
from storage.migrations import alembic_config


def _to_0007(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "0007")


async def test_agencies_made_before_the_language_column_speak_english(db_url: str) -> None:
    database = Database(db_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(_to_0007)
            await connection.execute(
                text(
                    "INSERT INTO agencies (id, name, slack_member_ids, timezone, created_at) "
                    "VALUES ('agy_old', 'Old Agency', '[]', 'UTC', :now)"
                ),
                {"now": datetime.now(UTC)},
            )
        await database.upgrade()
        async with database.engine.connect() as connection:
            language = await connection.scalar(text("SELECT language FROM agencies WHERE id = 'agy_old'"))
    finally:
        await database.dispose()
    assert language == "en"
