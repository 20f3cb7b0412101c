"""Point reads (storage/point_reads.py) give what a session would, on SQLite and PostgreSQL; on
SQLite they bypass the session, and a read that finds the file locked waits off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import bindparam, event, select

from bot import workflow
from bot.clock import FrozenClock
from bot.creator_keys import authenticate
from bot.models import ActorKind, Outcome
from bot.workflow import Desk
from sandbox.factories import make_parties, submit
from storage.database import Database, upgrade_database
from storage.point_reads import PointRead, columns_of, loaded
from storage.queries import load_request_view, request_view_and_card
from storage.tables import Artist, Creator
from tests.conftest import logged, open_desk

_ARTIST = PointRead(select(*columns_of(Artist)).where(Artist.id == bindparam("artist_id")))


async def test_a_point_read_gives_the_row_a_session_loads_with_the_same_types(desk: Desk) -> None:
    parties = await make_parties(desk, webhook_url="http://127.0.0.1:9/hook")
    token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=parties.artist_id)
    await workflow.redeem_invite(desk, token=token, telegram_user_id=7001, chat_id=7001)
    async with desk.db.read() as session:
        expected = await session.get(Artist, parties.artist_id)
        assert expected is not None
        values = {column.key: getattr(expected, column.key) for column in Artist.__table__.columns}
    rows = await desk.db.point_read(_ARTIST, {"artist_id": parties.artist_id})
    assert len(rows) == 1
    artist = loaded(Artist, rows[0])
    got = {column.key: getattr(artist, column.key) for column in Artist.__table__.columns}
    assert got == values
    assert artist.created_at.tzinfo is not None  # typed as the column says: an aware datetime
    assert isinstance(artist.red_lines, dict)  # JSON decoded
    assert await desk.db.point_read(_ARTIST, {"artist_id": "art_nobody"}) == []


async def test_a_point_read_on_sqlite_runs_no_statement_through_the_session_engines(
    tmp_path: Path, clock: FrozenClock
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'points.db'}"
    await upgrade_database(url)
    async with open_desk(url, clock, tmp_path) as desk:
        await _reads_bypass_the_engines(desk)


async def _reads_bypass_the_engines(desk: Desk) -> None:
    parties = await make_parties(desk, webhook_url="http://127.0.0.1:9/hook")
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    engines = {
        desk.db.engine.sync_engine,
        desk.db.read_engine.sync_engine,
        desk.db.quick_read_engine.sync_engine,
    }
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        rows = await desk.db.point_read(_ARTIST, {"artist_id": parties.artist_id})
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)
    assert rows and rows[0][0] == parties.artist_id
    assert seen == []


async def test_authentication_by_point_read_refuses_revoked_and_unknown_keys(desk: Desk) -> None:
    added = await workflow.add_creator(desk, name="Studio")
    creator = await authenticate(desk, added.api_key)
    assert creator is not None and creator.id == added.creator.id and creator.name == "Studio"
    assert await authenticate(desk, "lc_not-a-key") is None
    await workflow.deactivate_creator(desk, added.creator.id, by="admin")
    assert await authenticate(desk, added.api_key) is None


async def test_a_point_read_that_finds_sqlite_locked_waits_off_the_loop_and_then_answers(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    await database.upgrade()
    await database.dispose()  # no connection of its own open: the holder below may lock the file whole
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute(
        "INSERT INTO creators (id, name, api_key_hash, language, created_at)"
        " VALUES ('cre_1', 'Studio', 'x', 'en', '2026-11-27 08:00:00.000000')"
    )
    # Exclusive locking mode: once it has written, no other connection may read until it lets go.
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE creators SET name = 'Studio B' WHERE id = 'cre_1'")
    holder.execute("COMMIT")
    read = PointRead(select(Creator.name).where(Creator.id == bindparam("id")))
    with logged("storage.point_reads", "busy") as said:
        try:
            pending = asyncio.create_task(database.point_read(read, {"id": "cre_1"}))
            await asyncio.wait_for(said.wait(), 10)
            ticks = 0
            while ticks < 5:  # the loop still runs while the read waits for the lock
                await asyncio.sleep(0)
                ticks += 1
            assert not pending.done()
            holder.close()  # lets the file go
            assert await asyncio.wait_for(pending, 30) == [("Studio B",)]
        finally:
            holder.close()
            await database.dispose()


async def test_a_point_read_never_creates_a_missing_database_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        with pytest.raises(sqlite3.OperationalError):
            await database.point_read(_ARTIST, {"artist_id": "art_1"})
        assert not path.exists()
    finally:
        await database.dispose()


def _columns(row: object | None) -> dict[str, object] | None:
    if row is None:
        return None
    return {column.key: getattr(row, column.key) for column in type(row).__table__.columns}  # type: ignore[attr-defined]


async def test_a_view_read_by_point_reads_equals_the_one_a_session_reads(desk: Desk) -> None:
    parties = await make_parties(desk, webhook_url="http://127.0.0.1:9/hook")
    token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=parties.artist_id)
    await workflow.redeem_invite(desk, token=token, telegram_user_id=7002, chat_id=7002)
    pending = (await submit(desk, parties)).view.request.id
    approved = (await submit(desk, parties)).view.request.id
    await workflow.decide(
        desk, request_id=approved, actor=parties.artist(), outcome=Outcome.approve, terms_seen=None
    )
    for request_id in (pending, approved):
        async with desk.db.read() as session:
            expected = await load_request_view(session, request_id)
        assert expected is not None
        view, ref = await request_view_and_card(desk.db, request_id, "telegram", parties.artist_id)
        assert view is not None and ref is None  # no card was sent in this test
        for part in ("request", "grant", "artist", "agency", "creator", "deletion"):
            assert _columns(getattr(view, part)) == _columns(getattr(expected, part)), part
        assert [_columns(d) for d in view.decisions] == [_columns(d) for d in expected.decisions]
    assert view.grant is not None and view.agency is not None  # the approved one, with its agency
    assert await request_view_and_card(desk.db, "req_missing", "telegram", parties.artist_id) == (None, None)
