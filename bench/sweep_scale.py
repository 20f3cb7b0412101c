"""Sweep scale: one reminder/expiry sweep over 1,000,000 grants vs over 10,000, the same work due.

Rows are bulk-loaded with sqlite3 (the workflow would take hours for a million approvals);
the sweep itself is the real `workflow.run_sweeps`. A ratio near 1 means the sweep reads
indexes, not tables.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.figures import Figure
from bot import workflow
from bot.clock import SystemClock
from bot.receipts import load_or_create_signer
from bot.workflow import Desk
from storage.database import Database

DUE = 100  # rows each sweep has real work for, in both datasets
REPEATS = 5


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _load(path: Path, grants: int) -> None:
    now = datetime.now(UTC)
    terms = json.dumps({"project_title": "Bulk", "artist_id": "art_bulk"})
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA synchronous=OFF")
        db.execute(
            "INSERT INTO creators (id, name, api_key_hash, language, created_at) "
            "VALUES ('crt_bulk','Bulk','x','en',?)",
            (_ts(now),),
        )
        db.execute(
            "INSERT INTO artists (id, name, policy, language, timezone, red_lines, created_at) "
            "VALUES ('art_bulk','Bulk','artist_only','en','UTC','{}',?)",
            (_ts(now),),
        )
        batch = 50_000
        for start in range(0, grants, batch):
            requests, rows = [], []
            for n in range(start, min(grants, start + batch)):
                special = n < DUE
                ends = now + timedelta(days=3) if special else now + timedelta(days=30 + n % 300)
                rid, gid = f"req_{n:016x}", f"grt_{n:016x}"
                requests.append(
                    (
                        rid,
                        "crt_bulk",
                        "art_bulk",
                        terms,
                        "0" * 64,
                        "approved",
                        0,
                        _ts(now),
                        2,
                        _ts(now),
                        _ts(now),
                    )
                )
                rows.append(
                    (
                        gid,
                        rid,
                        "crt_bulk",
                        "art_bulk",
                        "active",
                        _ts(now - timedelta(days=1)),
                        _ts(ends),
                        0 if special else 2,
                        "{}",
                        _ts(now),
                        _ts(now),
                    )
                )
            db.executemany(
                "INSERT INTO requests (id, creator_id, artist_id, terms, terms_hash, status, ai_training, "
                "decision_due_at, reminders_sent, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                requests,
            )
            db.executemany(
                "INSERT INTO grants (id, request_id, creator_id, artist_id, status, starts_at, ends_at, "
                "reminders_sent, receipt, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
        db.execute("ANALYZE")


async def _time_sweeps(url: str, folder: Path) -> float:
    database = Database(url)
    desk = Desk(database, SystemClock(), load_or_create_signer(folder / "key.pem"))
    timings = []
    try:
        for _ in range(REPEATS):
            started = time.perf_counter()
            done = await workflow.run_sweeps(desk)
            timings.append(time.perf_counter() - started)
            assert done["grant_reminders"] == DUE, done
            async with database.transaction() as session:
                from sqlalchemy import text

                await session.execute(text("DELETE FROM notices"))
                await session.execute(
                    text("UPDATE grants SET reminders_sent = 0 WHERE id < :edge"), {"edge": f"grt_{DUE:016x}"}
                )
    finally:
        await database.dispose()
    return statistics.median(timings)


def _measure(grants: int) -> float:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-sweep-{grants}-"))
    url = f"sqlite+aiosqlite:///{folder / 'l.db'}"
    database = Database(url)
    asyncio.run(database.upgrade())
    asyncio.run(database.dispose())
    _load(folder / "l.db", grants)
    return asyncio.run(_time_sweeps(url, folder))


def run(large: int = 1_000_000, small: int = 10_000) -> list[Figure]:
    """Times the sweep on both datasets; each has exactly DUE grants with a reminder due."""
    small_time = _measure(small)
    large_time = _measure(large)
    ratio = large_time / small_time
    return [
        Figure(
            f"sweep with {large:,} grants",
            large_time * 1000,
            "ms",
            f"same sweep with {small:,} grants",
            small_time * 1000,
            goal="ratio ≤ 3",
            met=ratio <= 3,
            note=f"{DUE} reminders due in each",
        )
    ]
