"""Intake: POST /v1/requests per second over HTTP, beside a constant-answer FastAPI route."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psutil

from bench.figures import Figure
from sandbox.service_process import run_cli, service_env, start_service

DURATION = 10.0
CONCURRENCY = 32
GOAL_RATE = 600
CPU_GOAL_MS = 1.5


def request_body(artist: str, number: int) -> dict[str, object]:
    """The body of request `number` for `artist`, starting tomorrow for 30 days."""
    now = datetime.now(UTC)
    return {
        "artist_id": artist,
        "project_title": f"Bench {number}",
        "use_description": "A digital double for a thirty second advertising spot, face only.",
        "media": ["advertising"],
        "likeness": ["face"],
        "territory": ["CN"],
        "starts_at": (now + timedelta(days=1)).isoformat(),
        "ends_at": (now + timedelta(days=30)).isoformat(),
        "ai_training": False,
    }


async def submit_load(
    url: str, headers: dict[str, str], artist: str, duration: float, clients: int = CONCURRENCY
) -> tuple[int, int]:
    """`clients` clients POST requests for `artist` back to back for `duration` seconds, each on a
    connection of its own; returns the answers (201, other)."""
    done = errors = 0
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:

        async def client(number: int) -> None:
            nonlocal done, errors
            sent = 0
            while time.perf_counter() < deadline:
                sent += 1
                body = request_body(artist, number * 1_000_000 + sent)
                async with session.post(f"{url}/v1/requests", json=body) as answer:
                    await answer.read()
                    if answer.status == 201:
                        done += 1
                    else:
                        errors += 1

        await asyncio.gather(*(client(i) for i in range(clients)))
    return done, errors


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _measured(url: str, headers: dict[str, str], artist: str, pid: int) -> tuple[int, int, float]:
    """Answers (201, other) in DURATION seconds after a 1 s warm-up, and the server's CPU seconds
    (all its threads) over the measured part."""
    asyncio.run(submit_load(url, headers, artist, 1.0))
    server = psutil.Process(pid)
    before = sum(server.cpu_times()[:2])
    done, errors = asyncio.run(submit_load(url, headers, artist, DURATION))
    return done, errors, sum(server.cpu_times()[:2]) - before


def run() -> list[Figure]:
    """Measures both servers for DURATION seconds each with CONCURRENCY clients."""
    folder = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    # The figure is the service's throughput, not the per-key limit (20/s by default).
    env = service_env(folder, LOG_LEVEL="WARNING", API_RATE_LIMIT="100000/s,100000")
    artist = json.loads(run_cli(env, folder, "artist", "add", "--name", "Bench", "--json").stdout)["id"]
    key = json.loads(run_cli(env, folder, "creator", "add", "--name", "Bench", "--json").stdout)["api_key"]
    service = start_service(env, folder)
    try:
        done, errors, cpu = _measured(
            service.url, {"Authorization": f"Bearer {key}"}, artist, service.process.pid
        )
    finally:
        service.stop()
    port = _free_port()
    reference = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.reference_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.1)
        ref_done, _, ref_cpu = _measured(f"http://127.0.0.1:{port}", {}, "x", reference.pid)
    finally:
        reference.terminate()
        reference.wait()
    rate, ref_rate = done / DURATION, ref_done / DURATION
    per_request, ref_per_request = cpu / max(done, 1) * 1000, ref_cpu / max(ref_done, 1) * 1000
    return [
        Figure(
            "intake POST /v1/requests, one process, SQLite",
            rate,
            "req/s",
            "constant FastAPI route",
            ref_rate,
            goal=f"≥ {GOAL_RATE}/s",
            met=rate >= GOAL_RATE,
            note=f"{errors} non-201 answers; {CONCURRENCY} clients on the same 2 cores",
        ),
        Figure(
            "service CPU per submission (POST /v1/requests)",
            per_request,
            "ms",
            "constant FastAPI route, same clients",
            ref_per_request,
            goal=f"≤ {CPU_GOAL_MS} ms",
            met=per_request <= CPU_GOAL_MS,
            note="all threads of the serve process over the measured 10 s, ÷ requests answered 201",
        ),
    ]
