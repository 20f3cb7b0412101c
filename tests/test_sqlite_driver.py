"""The one-hop aiosqlite driver behaves like SQLAlchemy's own: rows, counts, errors, many rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage.database import Database


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
