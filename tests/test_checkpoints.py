"""Signed audit checkpoints: a rewrite of the chain by whoever runs the database is detected."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, func, select, update

from bot import workflow
from bot.api import create_api
from bot.clock import FrozenClock
from bot.keys import KeyRing
from bot.proof import CheckpointRefused, interval_slot, take_checkpoint
from bot.render.slack import report_comment
from bot.reports import build_report
from bot.workflow import Desk, Rules
from sandbox.factories import make_parties
from scheduler import Schedule
from storage.audit import GENESIS_HASH, event_content, event_hash
from storage.database import Database
from storage.tables import AuditCheckpoint, AuditEvent, AuditHead
from tests.test_cli import likeness

Tamper = Callable[[Database], Awaitable[None]]


async def _rehash_from(database: Database, first: int) -> None:
    """Re-computes every hash from event `first` on and moves the head: a careful forger's work."""
    async with database.transaction() as session:
        events = list((await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars())
        prev = GENESIS_HASH
        for event in events:
            if event.seq >= first:
                event.prev_hash = prev
                event.hash = event_hash(prev, event_content(event))
            prev = event.hash
        head = await session.get(AuditHead, 1)
        assert head is not None
        head.last_seq, head.last_hash = (events[-1].seq, prev) if events else (0, GENESIS_HASH)


async def truncate_and_rewind(database: Database) -> None:
    async with database.transaction() as session:
        last = (await session.execute(select(func.max(AuditEvent.seq)))).scalar_one()
        await session.execute(delete(AuditEvent).where(AuditEvent.seq > last - 3))
    await _rehash_from(database, 10**9)


async def rewrite_and_rehash(database: Database) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(AuditEvent).where(AuditEvent.seq == 2).values(data={"name": "Someone Else"})
        )
    await _rehash_from(database, 2)


async def delete_a_middle_event(database: Database) -> None:
    async with database.transaction() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.seq == 3))


async def reorder(database: Database) -> None:
    async with database.transaction() as session:
        await session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(seq=-2))
        await session.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(seq=2))
        await session.execute(update(AuditEvent).where(AuditEvent.seq == -2).values(seq=3))


async def renumber_after_deleting(database: Database) -> None:
    """Deletes event 3, moves every later event down by one and re-hashes: nothing looks missing."""
    async with database.transaction() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.seq == 3))
        last = (await session.execute(select(func.max(AuditEvent.seq)))).scalar_one()
        for seq in range(4, last + 1):
            await session.execute(update(AuditEvent).where(AuditEvent.seq == seq).values(seq=seq - 1))
    await _rehash_from(database, 3)


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def _events(env: dict[str, str], count: int) -> None:
    for number in range(count):
        assert likeness(env, "agency", "add", "--name", f"Agency {number}")[0] == 0


def _witnessed(env: dict[str, str], tmp_path: Path, count: int) -> Path:
    """`count` audit events, then a signed checkpoint of the head kept in a witness file; its path."""
    _events(env, count)
    witness = tmp_path / "witness.json"
    assert likeness(env, "audit", "checkpoint", "--out", str(witness))[0] == 0
    return witness


@pytest.mark.parametrize(
    "tamper",
    [truncate_and_rewind, rewrite_and_rehash, delete_a_middle_event, reorder, renumber_after_deleting],
)
def test_audit_verify_names_the_checkpoint_the_tampered_chain_no_longer_reaches(
    env: dict[str, str], tmp_path: Path, tamper: Tamper
) -> None:
    _events(env, 6)
    witness = tmp_path / "witness.json"
    code, out, err = likeness(env, "audit", "checkpoint", "--out", str(witness), "--json")
    assert code == 0, err
    signed = json.loads(out)
    assert set(signed) == {"seq", "head_hash", "created_at", "kid", "signature"} and signed["seq"] == 6
    assert json.loads(witness.read_text()) == signed
    _events(env, 2)
    assert likeness(env, "audit", "verify", "--checkpoints", str(witness))[0] == 0

    asyncio.run(_run_tamper(env["DATABASE_URL"], tamper))
    code, out, err = likeness(env, "audit", "verify", "--checkpoints", str(witness), "--json")
    assert code == 1, out
    assert "checkpoint seq 6" in err and err.count("\n") == 1
    assert json.loads(out)["broken_checkpoint"] == signed


async def _run_tamper(url: str, tamper: Tamper) -> None:
    database = Database(url)
    try:
        await tamper(database)
    finally:
        await database.dispose()


def test_a_rewound_and_rehashed_chain_passes_plain_verify_but_not_the_checkpoints(
    env: dict[str, str], tmp_path: Path
) -> None:
    witness = _witnessed(env, tmp_path, 5)
    asyncio.run(_run_tamper(env["DATABASE_URL"], truncate_and_rewind))
    assert likeness(env, "audit", "verify")[0] == 0  # the chain alone cannot tell
    assert likeness(env, "audit", "verify", "--checkpoints", str(witness))[0] == 1
    # ...and the service refuses to sign the rewound head.
    code, _, err = likeness(env, "audit", "checkpoint")
    assert code == 1 and "checkpoint seq 5" in err


def test_checkpoint_files_that_are_forged_or_malformed_are_refused_plainly(
    env: dict[str, str], tmp_path: Path
) -> None:
    witness = _witnessed(env, tmp_path, 3)
    signed = json.loads(witness.read_text())
    cases: list[tuple[str, str]] = [
        (json.dumps(signed | {"seq": 2}), "signature"),
        (json.dumps(signed | {"extra": 1}), "exactly"),
        ("not json at all {", "neither JSON"),
        (json.dumps([]), "no checkpoint"),
        (json.dumps(signed | {"seq": "1; DROP TABLE"}), "positive whole number"),
    ]
    for text, message in cases:
        witness.write_text(text)
        code, _, err = likeness(env, "audit", "verify", "--checkpoints", str(witness))
        assert code == 1 and message in err and "Traceback" not in err, (text, err)
    code, _, err = likeness(env, "audit", "verify", "--checkpoints", str(tmp_path / "missing.json"))
    assert code == 1 and "not a file" in err
    code, _, err = likeness(env, "audit", "checkpoint", "--out", str(tmp_path))
    assert code == 1 and "folder" in err


def test_an_operator_file_of_json_lines_and_an_empty_chain(env: dict[str, str], tmp_path: Path) -> None:
    likeness(env, "db", "upgrade")
    code, _, err = likeness(env, "audit", "checkpoint")
    assert code == 1 and "empty" in err
    lines = []
    for _ in range(3):
        _events(env, 2)
        lines.append(likeness(env, "audit", "checkpoint", "--json")[1].strip())
    (tmp_path / "kept.jsonl").write_text("\n".join(lines) + "\n")
    code, out, _ = likeness(env, "audit", "verify", "--checkpoints", str(tmp_path / "kept.jsonl"), "--json")
    assert code == 0 and json.loads(out)["checkpoints"] == 3


# ---------------------------------------------------------------- in-process, both databases


@pytest.fixture
async def ring(desk: Desk, tmp_path: Path) -> Desk:
    desk.signer = KeyRing(tmp_path / "key.pem", tmp_path / "buttons.json")
    return desk


async def test_three_instances_make_one_checkpoint_per_interval(
    ring: Desk, db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    await make_parties(ring)
    others = [
        Desk(Database(db_url), clock, KeyRing(tmp_path / "key.pem", tmp_path / "buttons.json"), Rules())
        for _ in range(2)
    ]
    schedules = [
        Schedule(
            d,
            sweep_interval=timedelta(seconds=30),
            report_cron="0 9 * * mon",
            checkpoint_interval=timedelta(hours=1),
        )
        for d in [ring, *others]
    ]
    try:
        made = await asyncio.gather(*(s.checkpoint() for s in schedules))
        assert sorted(made) == [False, False, True]
        clock.advance(timedelta(minutes=30))
        await workflow.add_agency(ring, name="Another")
        assert not any(await asyncio.gather(*(s.checkpoint() for s in schedules)))  # same interval
        clock.advance(timedelta(minutes=31))
        made = await asyncio.gather(*(s.checkpoint() for s in schedules))
        assert sorted(made) == [False, False, True]
        clock.advance(timedelta(hours=1))
        assert not any(await asyncio.gather(*(s.checkpoint() for s in schedules)))  # nothing new to sign
    finally:
        for other in others:
            await other.db.dispose()
    async with ring.db.read() as session:
        rows = list((await session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.seq))).scalars())
    assert len(rows) == 2
    assert rows[0].slot == interval_slot(clock.now() - timedelta(hours=2, minutes=1), timedelta(hours=1))


async def test_checkpoints_are_published_and_paged(ring: Desk, clock: FrozenClock) -> None:
    transport = httpx.ASGITransport(app=create_api(ring))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        assert (await api.get("/.well-known/likeness-audit.json")).status_code == 404
        assert (await api.get("/public/audit/checkpoints")).json() == {"checkpoints": [], "next_after": None}
        for number in range(5):
            await workflow.add_agency(ring, name=f"A{number}")
            clock.advance(timedelta(minutes=1))
            await take_checkpoint(ring)
        latest = (await api.get("/.well-known/likeness-audit.json")).json()
        assert latest["seq"] == 5
        first = (await api.get("/public/audit/checkpoints?limit=2")).json()
        assert [c["seq"] for c in first["checkpoints"]] == [1, 2] and first["next_after"] == 2
        rest = (await api.get("/public/audit/checkpoints?after=2&limit=100")).json()
        assert [c["seq"] for c in rest["checkpoints"]] == [3, 4, 5] and rest["next_after"] is None
        assert rest["checkpoints"][-1] == latest
        for hostile in [
            "?after=-1",
            "?after=1e99",
            "?after=99999999999999999999999",
            "?limit=0",
            "?limit=5000",
        ]:
            answer = await api.get("/public/audit/checkpoints" + hostile)
            assert answer.status_code == 422, hostile
        huge = await api.get(f"/public/audit/checkpoints?after={2**63 - 1}")
        assert huge.status_code == 200 and huge.json()["checkpoints"] == []


async def test_the_service_refuses_to_sign_a_chain_cut_under_it(ring: Desk, clock: FrozenClock) -> None:
    await make_parties(ring)
    taken = await take_checkpoint(ring)
    assert taken is not None and taken.created
    await workflow.add_agency(ring, name="Later")
    await rewrite_and_rehash(ring.db)
    with pytest.raises(CheckpointRefused, match="checkpoint seq"):
        await take_checkpoint(ring)


async def test_the_agency_report_carries_the_latest_checkpoint(ring: Desk) -> None:
    parties = await make_parties(ring)
    taken = await take_checkpoint(ring)
    assert taken is not None
    report = await build_report(ring, agency_id=parties.agency_id)
    assert report.checkpoint == taken.document
    text = report_comment(report)
    assert json.dumps(taken.document, sort_keys=True) in text and "Audit checkpoint" in text
    artist_report = await build_report(ring, artist_id=parties.artist_id)
    assert artist_report.checkpoint is None
