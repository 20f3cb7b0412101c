"""Hot writes on SQLite and PostgreSQL: the same rows, values and answers as SQLAlchemy's own
execution, each statement compiled once, seen by the engine's statement listeners, and a
constraint's refusal raised as SQLAlchemy's error with the transaction rolled back."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from bot.workflow import Desk
from storage.database import Database, writes_so_far
from storage.hot_writes import HotWrite
from storage.inbox import _insert_new
from storage.point_reads import PointRead
from storage.tables import InboxItem, Notice
from tests.conftest import logged, statements

NOTICES = cast(Table, Notice.__table__)
AT = datetime(2026, 11, 27, 9, 30, 15, 123456, tzinfo=UTC)


def notice_row(notice_id: str, **more: Any) -> dict[str, Any]:
    """A notice row that leaves `status` and `attempts` to their Python-side defaults."""
    return {
        "id": notice_id,
        "channel": "telegram",
        "recipient_kind": "artist",
        "recipient_id": "art_1",
        "kind": "card",
        "request_id": None,
        "grant_id": None,
        "payload": {"text": "Grüße ✓", "n": [1, 2.5, None]},
        "dedupe_key": None,
        "next_attempt_at": AT,
        "claimed_until": None,
        "sent_at": None,
        "last_error": None,
        "created_at": AT,
    } | more


async def test_a_hot_insert_writes_what_sqlalchemy_writes_defaults_included(desk: Desk) -> None:
    hot = HotWrite(insert(NOTICES))
    async with desk.db.transaction() as session:
        one = await hot.execute(session, notice_row("ntc_hot_1"))
        await hot.execute(session, [notice_row("ntc_hot_2"), notice_row("ntc_hot_4")])
        await hot.execute(session, notice_row("ntc_hot_3", attempts=4))
        await session.execute(insert(NOTICES), notice_row("ntc_orm_1"))  # SQLAlchemy's own way

    assert one.rowcount == 1
    async with desk.db.read() as session:
        rows = {n.id: n for n in (await session.execute(select(Notice))).scalars()}
    reference = rows["ntc_orm_1"]
    for notice_id in ("ntc_hot_1", "ntc_hot_2", "ntc_hot_4"):
        written = rows[notice_id]
        assert (written.status, written.attempts) == ("pending", 0)  # the columns' defaults
        assert written.payload == reference.payload == {"text": "Grüße ✓", "n": [1, 2.5, None]}
        assert written.next_attempt_at == reference.next_attempt_at == AT
        assert written.next_attempt_at.tzinfo is not None
    assert rows["ntc_hot_3"].attempts == 4


async def test_a_hot_update_counts_its_rows_and_an_on_conflict_insert_returns_the_new_keys(
    desk: Desk,
) -> None:
    moved = HotWrite(update(NOTICES).where(NOTICES.c.id == bindparam("nid")).values(status=bindparam("to")))
    new_items = HotWrite(_insert_new)
    item = {"source": "telegram", "kind": "update", "payload": {"a": 1}, "received_at": AT}
    item |= {"claimed_until": AT, "done_at": None}
    async with desk.db.transaction() as session:
        await HotWrite(insert(NOTICES)).execute(session, notice_row("ntc_hot_9"))
        hit = await moved.execute(session, {"nid": "ntc_hot_9", "to": "sent"})
        miss = await moved.execute(session, {"nid": "ntc_none", "to": "sent"})
        first = await new_items.execute(session, {"key": "k1"} | item)
        again = await new_items.execute(session, {"key": "k1"} | item)  # a repeat: nothing new

    assert (hit.rowcount, miss.rowcount) == (1, 0)
    assert (first.scalars(), again.scalars()) == (["k1"], [])
    async with desk.db.read() as session:
        assert (await session.get(Notice, "ntc_hot_9")).status == "sent"  # type: ignore[union-attr]
        stored = await session.get(InboxItem, "k1")
    assert stored is not None and stored.received_at == AT and stored.payload == {"a": 1}


async def test_each_form_of_a_hot_write_is_compiled_once(desk: Desk) -> None:
    built: list[str] = []

    def build(dialect: str) -> Any:
        built.append(dialect)
        return insert(NOTICES)

    hot = HotWrite(build)
    async with desk.db.transaction() as session:
        for n in range(3):
            await hot.execute(session, notice_row(f"ntc_once_{n}"))
        for n in range(2):
            await hot.execute(session, [notice_row(f"ntc_many_{n}_a"), notice_row(f"ntc_many_{n}_b")])

    assert built == [desk.db.dialect, desk.db.dialect]  # one row, many rows: each built once


async def test_hot_writes_are_seen_by_statement_listeners_and_counted_as_writes(desk: Desk) -> None:
    hot = HotWrite(insert(NOTICES))
    with statements(desk) as seen:
        async with desk.db.transaction() as session:
            before = await writes_so_far(session)
            await hot.execute(session, notice_row("ntc_seen"))
            after = await writes_so_far(session)

    assert after == before + 1
    assert sum(s.upper().startswith("INSERT INTO NOTICES") for s in seen) == 1


async def test_a_refused_hot_write_raises_sqlalchemys_error_and_rolls_back(desk: Desk) -> None:
    hot = HotWrite(insert(NOTICES))
    with pytest.raises(IntegrityError):
        async with desk.db.transaction() as session:
            await hot.execute(session, notice_row("ntc_twice_0"))
            await hot.execute(session, notice_row("ntc_twice_1", dedupe_key="same"))
            await hot.execute(session, notice_row("ntc_twice_2", dedupe_key="same"))

    async with desk.db.read() as session:
        left = (await session.execute(select(Notice.id).where(Notice.id.like("ntc_twice%")))).all()
    assert left == []  # the whole transaction rolled back
    async with desk.db.transaction() as session:  # and the writer is usable again
        assert (await hot.execute(session, notice_row("ntc_after"))).rowcount == 1


async def test_a_quick_write_commits_on_its_own_and_answers_like_a_transaction(desk: Desk) -> None:
    moved = HotWrite(update(NOTICES).where(NOTICES.c.id == bindparam("nid")).values(status=bindparam("to")))
    await desk.db.quick_write(HotWrite(insert(NOTICES)), notice_row("ntc_quick"))
    hit = await desk.db.quick_write(moved, {"nid": "ntc_quick", "to": "sent"})
    miss = await desk.db.quick_write(moved, {"nid": "ntc_none", "to": "sent"})

    assert (hit.rowcount, miss.rowcount) == (1, 0)
    async with desk.db.read() as session:
        written = await session.get(Notice, "ntc_quick")
    assert written is not None and (written.status, written.attempts) == ("sent", 0)
    with pytest.raises(IntegrityError):  # refused: SQLAlchemy's error, and nothing written
        await desk.db.quick_write(HotWrite(insert(NOTICES)), notice_row("ntc_quick"))
    assert (await desk.db.quick_write(moved, {"nid": "ntc_quick", "to": "pending"})).rowcount == 1


async def test_a_quick_write_that_finds_sqlite_locked_by_another_process_waits_off_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    await database.upgrade()
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer holds the lock
    with logged("storage.sqlite_driver", "locked") as waiting:
        try:
            other.execute("BEGIN IMMEDIATE")
            writing = asyncio.create_task(
                database.quick_write(HotWrite(insert(NOTICES)), notice_row("ntc_wait"))
            )
            await asyncio.wait_for(waiting.wait(), 10)  # its fallback waits for the lock, off the loop
            assert not writing.done()
            other.execute("COMMIT")
            assert (await asyncio.wait_for(writing, 30)).rowcount == 1
            async with database.read() as session:
                assert await session.get(Notice, "ntc_wait") is not None
        finally:
            other.close()
            await database.dispose()


async def test_a_point_read_never_sees_a_write_not_yet_committed(desk: Desk) -> None:
    # On SQLite point reads use the writer's connection while the pool holds it unused; while a
    # transaction has it, they must read elsewhere and see only what is committed.
    read = PointRead(select(Notice.id).where(Notice.id == bindparam("nid")))
    async with desk.db.transaction() as session:
        await HotWrite(insert(NOTICES)).execute(session, notice_row("ntc_uncommitted"))
        assert await desk.db.point_read(read, {"nid": "ntc_uncommitted"}) == []
    assert await desk.db.point_read(read, {"nid": "ntc_uncommitted"}) == [("ntc_uncommitted",)]
    await desk.db.quick_write(HotWrite(insert(NOTICES)), notice_row("ntc_quickly"))
    assert await desk.db.point_read(read, {"nid": "ntc_quickly"}) == [("ntc_quickly",)]


async def test_quick_writes_and_point_reads_never_use_a_writer_connection_sqlalchemy_holds(
    tmp_path: Path,
) -> None:
    # A checked-out connection may be waiting for another process's lock on aiosqlite's thread;
    # a call on it from the loop would block the loop behind that wait.
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'held.db'}")
    await database.upgrade()
    quick = database._quick_writer
    assert quick is not None
    try:
        idle = quick.idle_handle()
        assert idle is not None  # the connection the upgrade used, back in the pool
        async with database.engine.connect() as held:  # checked out, no transaction begun yet
            raw = await held.get_raw_connection()
            assert quick.idle_handle() is not raw.driver_connection._conn  # type: ignore[union-attr]
            assert quick.idle_handle() is None  # the pool has no other writer connection
            await database.quick_write(HotWrite(insert(NOTICES)), notice_row("ntc_meanwhile"))
        assert quick.idle_handle() is not None  # checked in again
        async with database.read() as session:
            assert await session.get(Notice, "ntc_meanwhile") is not None
    finally:
        await database.dispose()
