"""Scale-out on PostgreSQL: one process against two (`likeness serve --workers 2`) on one server.

Three parts, all through real processes on a throwaway PostgreSQL server (sandbox/pg_server.py):

- **Fan-out with two processes**: 1,000 cards queued for 1,000 linked artists, sent by two
  workers sharing the send budget in PostgreSQL to the Bot API simulator, which enforces
  Telegram's limits (30/s per bot, 1/s per chat, burst 3) and answers 429 to anything over them.
  Rate from the first card's sendMessage to the last; 429s, cards lost, duplicates.
- **Taps, 1 and 2 processes**: artists tap Approve on those delivered cards, 400 taps offered at
  200/s (over either configuration's capacity) through the webhook, which the simulator spreads
  over 40 connections as Telegram does (max_connections). Rate = taps ÷ (last answer − first tap).
- **Intake, 1 and 2 processes**: `POST /v1/requests` from 64 concurrent clients for 10 s.

Each 2-process figure is printed beside the 1-process one of the same run. The note says where
the machine's CPU went during the 2-process part (the service, PostgreSQL, the load generator,
everything else), since the machine has two cores for all of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from sqlalchemy import func, select

from bench._telegram import Card, Crowd, end_crowd, free_port, make_crowd, ok_calls, poll_until, tap_at_rate
from bench.fanout import ALLOWED, Fanout, fanout_figures
from bench.figures import Figure
from bench.intake import submit_load
from sandbox.pg_server import PgServer, start_pg_server
from sandbox.service_process import ServiceProcess, run_cli, service_env, start_service
from storage.database import Database
from storage.tables import Notice

CARDS = 1_000
TAPS = 400
TAP_INTERVAL = 1 / 200
WEBHOOK_CONNECTIONS = 40
INTAKE_SECONDS = 10.0
INTAKE_CLIENTS = 64
RATIO_GOAL = 1.6


@dataclass
class CpuShare:
    """CPU seconds spent in one stretch, by whom."""

    wall: float = 0.0
    service: float = 0.0
    postgres: float = 0.0
    generator: float = 0.0
    machine: float = 0.0
    per_worker: tuple[float, ...] = ()

    def note(self) -> str:
        """One line: cores used by each part over the stretch."""
        others = max(0.0, self.machine - self.service - self.postgres - self.generator)
        cores = [
            f"service {self.service / self.wall:.2f}",
            f"PostgreSQL {self.postgres / self.wall:.2f}",
            f"load generator {self.generator / self.wall:.2f}",
            f"everything else on the machine {others / self.wall:.2f}",
        ]
        workers = ""
        if len(self.per_worker) > 1:
            workers = " (workers: " + " / ".join(f"{w / self.wall:.2f}" for w in self.per_worker) + ")"
        load = f", load average {os.getloadavg()[0]:.1f}"
        return "cores busy: " + ", ".join(cores) + workers + f" of {psutil.cpu_count()}" + load


def _processes(pid: int) -> list[psutil.Process]:
    try:
        top = psutil.Process(pid)
        return [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return float(times.user + times.system)
    except psutil.NoSuchProcess:
        return 0.0


def _postmaster(pg_data: Path) -> int:
    return int((pg_data / "postmaster.pid").read_text().splitlines()[0])


@contextmanager
def _measured(service: ServiceProcess, pg_data: Path) -> Iterator[CpuShare]:
    """Counts CPU of the service's processes, PostgreSQL's, this process's and the whole machine's."""
    share = CpuShare()
    service_procs = _processes(service.process.pid)
    workers = service_procs[1:] if len(service_procs) > 1 else service_procs
    pg_procs = {p.pid: p for p in _processes(_postmaster(pg_data))}
    me = psutil.Process()
    before_service = {p.pid: _seconds(p) for p in service_procs}
    before_pg = {pid: _seconds(p) for pid, p in pg_procs.items()}
    before_me = _seconds(me)
    before_machine = psutil.cpu_times()
    started = time.monotonic()
    yield share
    share.wall = time.monotonic() - started
    share.service = sum(_seconds(p) - before_service[p.pid] for p in service_procs)
    share.per_worker = tuple(_seconds(p) - before_service[p.pid] for p in workers)
    for p in _processes(_postmaster(pg_data)):  # backends come and go
        share.postgres += _seconds(p) - before_pg.get(p.pid, 0.0)
    share.generator = _seconds(me) - before_me
    after_machine = psutil.cpu_times()
    share.machine = sum(
        getattr(after_machine, f) - getattr(before_machine, f)
        for f in ("user", "system", "nice", "irq", "softirq", "steal")
        if hasattr(after_machine, f)
    )


# ---------------------------------------------------------------- fan-out and taps


async def _notice_states(url: str) -> dict[str, int]:
    database = Database(url)
    try:
        async with database.read() as session:
            rows = await session.execute(
                select(Notice.status, func.count()).where(Notice.kind == "card").group_by(Notice.status)
            )
            return {status: count for status, count in rows.tuples()}
    finally:
        await database.dispose()


async def _tap_round(crowd: Crowd, cards: list[Card], pg_data: Path) -> tuple[float, int, CpuShare]:
    """Taps each card's Approve; the answered rate, the answers other than 'Approved', CPU."""
    sim = crowd.sim
    assert crowd.service is not None
    edits = ok_calls(sim, "editMessageText")
    with _measured(crowd.service, pg_data) as cpu:
        tapped = await tap_at_rate(crowd, cards, TAP_INTERVAL)
    answers = [sim.callback_answer(q) for q, _ in tapped]
    last = max(float(a["time"]) for a in answers if a)
    wrong = sum(not str((a or {}).get("text") or "").startswith("Approved") for a in answers)
    # The decided cards' edits (28/s, the bot's limit) finish before the next round starts.
    await poll_until(lambda: ok_calls(sim, "editMessageText") >= edits + len(cards), timeout=300)
    return len(tapped) / (last - tapped[0][1]), wrong, cpu


async def _fanout_and_taps(pg: PgServer) -> dict[str, object]:
    url = pg.create_database("scale_taps")
    crowd = await make_crowd(CARDS, prefix="bench-scale-", DATABASE_URL=url)
    crowd.sim.webhook_connections = WEBHOOK_CONNECTIONS
    got: dict[str, object] = {}
    try:
        sim = crowd.sim
        port = free_port()
        hook = {"HTTP_PORT": str(port), "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook"}
        service = await crowd.start("--workers", "2", **hook)
        with _measured(service, pg.data_dir) as fan_cpu:
            await poll_until(lambda: ok_calls(sim, "sendMessage") >= CARDS, timeout=CARDS / ALLOWED * 4 + 60)
        await asyncio.sleep(2.0)  # the last sends are marked; a duplicate would show up now
        got["fanout"] = Fanout.of(crowd)
        got["not_marked"] = CARDS - (await _notice_states(url)).get("sent", 0)
        got["fanout_cpu"] = fan_cpu
        two = crowd.cards[:TAPS]
        one = crowd.cards[TAPS : 2 * TAPS]
        got["taps2"] = await _tap_round(crowd, two, pg.data_dir)
        await crowd.stop()
        await crowd.start(**hook)
        got["taps1"] = await _tap_round(crowd, one, pg.data_dir)
        got["429_total"] = sim.rate_limited_count
    finally:
        await end_crowd(crowd)
    return got


# ---------------------------------------------------------------- intake


async def _load(url: str, key: str, artist: str, duration: float) -> tuple[int, int]:
    return await submit_load(url, {"Authorization": f"Bearer {key}"}, artist, duration, INTAKE_CLIENTS)


def _intake(pg: PgServer) -> dict[str, tuple[float, int, CpuShare]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-scale-intake-"))
    env = service_env(
        folder,
        LOG_LEVEL="WARNING",
        API_RATE_LIMIT="100000/s,100000",
        DATABASE_URL=pg.create_database("scale_intake"),
    )
    artist = json.loads(run_cli(env, folder, "artist", "add", "--name", "Bench", "--json").stdout)["id"]
    key = json.loads(run_cli(env, folder, "creator", "add", "--name", "Bench", "--json").stdout)["api_key"]
    got: dict[str, tuple[float, int, CpuShare]] = {}
    for label, args in (("1", ()), ("2", ("--workers", "2"))):
        service = start_service(env, folder, timeout=60.0, args=args)
        try:
            asyncio.run(_load(service.url, key, artist, 1.0))  # warm-up: every worker's first statements
            with _measured(service, pg.data_dir) as cpu:
                done, errors = asyncio.run(_load(service.url, key, artist, INTAKE_SECONDS))
        finally:
            service.stop()
        got[label] = (done / INTAKE_SECONDS, errors, cpu)
    return got


# ---------------------------------------------------------------- figures


def run() -> list[Figure]:
    """Fan-out with two processes, then taps and intake with one and two, on one PostgreSQL."""
    # The server runs as the postgres user, which cannot enter the benchmarks' private scratch folder.
    scratch, tempfile.tempdir = tempfile.tempdir, None
    try:
        pg = start_pg_server()
    finally:
        tempfile.tempdir = scratch
    try:
        telegram = asyncio.run(_fanout_and_taps(pg))
        intake = _intake(pg)
    finally:
        pg.stop()
    fan, fan_cpu = telegram["fanout"], telegram["fanout_cpu"]
    assert isinstance(fan, Fanout) and isinstance(fan_cpu, CpuShare)
    fan_note = (
        f"{fan.sent} cards in {fan.span:.1f} s (ideal {CARDS / ALLOWED:.1f} s) by 2 workers on "
        f"PostgreSQL; {fan.duplicates} duplicates; {telegram['not_marked']} notices not marked sent; at most "
        f"{fan.busiest_chat} message(s) in any chat within 1 s; {fan_cpu.note()}"
    )
    taps1, taps2 = telegram["taps1"], telegram["taps2"]
    assert isinstance(taps1, tuple) and isinstance(taps2, tuple)
    tap_ratio = taps2[0] / taps1[0]
    tap_note = (
        f"{TAPS} taps offered at {1 / TAP_INTERVAL:.0f}/s each; 1 process {taps1[0]:.0f}/s "
        f"({taps1[2].note()}); 2 processes {taps2[0]:.0f}/s ({taps2[2].note()}); "
        f"{taps1[1] + taps2[1]} answers other than 'Approved'; "
        f"429s over the whole run incl. the card edits: {telegram['429_total']}"
    )
    in1, in2 = intake["1"], intake["2"]
    intake_note = (
        f"{INTAKE_CLIENTS} clients, {INTAKE_SECONDS:.0f} s each; 1 process ({in1[2].note()}); "
        f"2 processes ({in2[2].note()}); non-201 answers: {in1[1]} / {in2[1]}"
    )
    return [
        *fanout_figures(fan, fan_note, ", 2 processes"),
        Figure(
            "taps answered, 2 processes (PostgreSQL, webhook)",
            taps2[0],
            "taps/s",
            "1 process, same run",
            taps1[0],
            goal=f"ratio ≥ {RATIO_GOAL}",
            met=tap_ratio >= RATIO_GOAL,
            note=tap_note,
        ),
        Figure(
            "intake POST /v1/requests, 2 processes (PostgreSQL)",
            in2[0],
            "req/s",
            "1 process, same run",
            in1[0],
            goal=f"ratio ≥ {RATIO_GOAL}",
            met=in2[0] / in1[0] >= RATIO_GOAL,
            note=intake_note,
        ),
    ]
