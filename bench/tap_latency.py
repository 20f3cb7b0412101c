"""Tap → answer: callback-to-answerCallbackQuery latency at 100 taps/s on SQLite.

Artists tap Approve on cards already delivered, one tap every 10 ms. The latency of a tap is
the moment the simulator received the bot's answerCallbackQuery minus the moment of the tap,
so it holds the whole way: delivery of the update to the service, the decision (one SQLite
transaction that also signs the grant's receipt and queues the card's edit), and the answer.

Measured twice on the same service and cards: with a webhook (what the service runs behind a
load balancer: Telegram allows one getUpdates poller per bot, so several instances cannot poll),
then with long polling (the default when TELEGRAM_WEBHOOK_URL is not set). The edits of the
decided cards (25/s, the bot's own flood limit) go on in the background, as in production.

The references, measured in the same run: for the webhook round at 100/s and the service's CPU
per tap, a python-telegram-bot Application that only answers the callback, served the same way
(bench/reference_bot.py: webhook route, uvicorn, uvloop) and tapped on the same cards at the
same rate; for the other rounds, a bare aiosqlite INSERT + COMMIT of one row in a file in the
same folder, with the service's pragmas (WAL, synchronous=NORMAL).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import psutil

from bench._telegram import (
    TOKEN,
    Card,
    Crowd,
    end_crowd,
    free_port,
    make_crowd,
    ok_calls,
    poll_until,
    tap_at_rate,
)
from bench.figures import Figure

ROOT = str(Path(__file__).resolve().parent.parent)
TAPS = 500  # per round at 100 taps/s: five seconds
INTERVAL = 0.010
CALM_TAPS = 125  # a first round at 25 taps/s, well below saturation: the latency of one tap
CALM_INTERVAL = 0.040
GOAL_MS = 50.0
CPU_GOAL_MS = 5.0
REFERENCE_WRITES = 1_000


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def _bare_commits(folder: Path) -> list[float]:
    """Milliseconds of each INSERT + COMMIT of one row through aiosqlite, as the service configures it."""
    timings = []
    async with aiosqlite.connect(folder / "reference.db", isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
        for number in range(REFERENCE_WRITES):
            started = time.perf_counter()
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("INSERT INTO rows (body) VALUES (?)", (f"row {number}",))
            await db.execute("COMMIT")
            timings.append((time.perf_counter() - started) * 1000)
    return timings


async def _wait_for_quiet(crowd: Crowd, edits: int) -> None:
    """Until every card is out and every decided card has been edited: nothing left in the outbox."""
    sim = crowd.sim
    await poll_until(
        lambda: (
            ok_calls(sim, "sendMessage") >= len(crowd.cards) and ok_calls(sim, "editMessageText") >= edits
        ),
        timeout=len(crowd.cards) / 20 + 120,
    )
    await asyncio.sleep(1.0)


@dataclass
class Round:
    """One round of taps: each tap's latency, the rates, and what the service spent on it."""

    latencies: list[float]
    offered: float  # taps per second
    answered: float  # answers per second, first tap to last answer
    wrong: int  # answers other than "Approved"
    cpu_ms: float = 0.0  # service CPU per tap, its card edit included

    @property
    def p50(self) -> float:
        """Median latency, ms."""
        return statistics.median(self.latencies)

    @property
    def p99(self) -> float:
        """99th percentile latency, ms."""
        return _percentile(self.latencies, 0.99)


async def _tap_round(
    crowd: Crowd,
    cards: list[Card],
    interval: float,
    process: psutil.Process,
    quiet: Callable[[], Awaitable[None]],
    callback_data: str | None = None,
) -> Round:
    """Taps each card every `interval` s (Approve, or `callback_data` for the reference bot);
    waits for every answer, then for `quiet` (every card edit done); CPU is `process`'s."""
    sim = crowd.sim
    cpu_before = sum(process.cpu_times()[:2])
    tapped = await tap_at_rate(crowd, cards, interval, callback_data)
    answers = [sim.callback_answer(q) for q, _ in tapped]
    latencies = [
        (float(a["time"]) - moment) * 1000 for a, (_, moment) in zip(answers, tapped, strict=True) if a
    ]
    last_answer = max(float(a["time"]) for a in answers if a)
    await quiet()
    cpu = sum(process.cpu_times()[:2]) - cpu_before
    return Round(
        latencies=latencies,
        offered=(len(tapped) - 1) / (tapped[-1][1] - tapped[0][1]),
        answered=len(tapped) / (last_answer - tapped[0][1]),
        wrong=sum(not str((a or {}).get("text") or "").startswith("Approved") for a in answers),
        cpu_ms=cpu / len(cards) * 1000,
    )


async def _service_round(crowd: Crowd, cards: list[Card], interval: float, edits_before: int) -> Round:
    """A round against `likeness serve`: done when every decided card has been edited."""
    assert crowd.service is not None
    return await _tap_round(
        crowd,
        cards,
        interval,
        psutil.Process(crowd.service.process.pid),
        lambda: _wait_for_quiet(crowd, edits_before + len(cards)),
    )


async def _reference_round(crowd: Crowd, cards: list[Card]) -> Round:
    """The same taps at 100/s on the same cards, answered by the PTB reference bot (webhook)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.reference_bot",
        TOKEN,
        crowd.sim.api_base_url,
        str(port),
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
        if b"listening" not in line:
            raise RuntimeError("the reference bot did not start")
        await asyncio.sleep(1.0)
        return await _tap_round(
            crowd, cards, INTERVAL, psutil.Process(process.pid), lambda: asyncio.sleep(1.0), "ref:tap"
        )
    finally:
        process.terminate()
        await process.wait()


async def _measure() -> tuple[dict[str, Round], list[float]]:
    crowd = await make_crowd(CALM_TAPS + 2 * TAPS, prefix="bench-tap-")
    calm = crowd.cards[:CALM_TAPS]
    first = crowd.cards[CALM_TAPS : CALM_TAPS + TAPS]
    second = crowd.cards[CALM_TAPS + TAPS :]
    rounds: dict[str, Round] = {}
    try:
        port = free_port()
        await crowd.start(
            HTTP_PORT=str(port), TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook"
        )
        await _wait_for_quiet(crowd, 0)
        rounds["calm"] = await _service_round(crowd, calm, CALM_INTERVAL, 0)
        rounds["webhook"] = await _service_round(crowd, first, INTERVAL, CALM_TAPS)
        await crowd.stop()
        rounds["reference"] = await _reference_round(crowd, first)
        del crowd.env["TELEGRAM_WEBHOOK_URL"]
        crowd.env["HTTP_PORT"] = "0"
        await crowd.start()
        await crowd.sim.wait_for(lambda: crowd.sim.is_polling(TOKEN), timeout=30)
        await asyncio.sleep(1.0)
        rounds["polling"] = await _service_round(crowd, second, INTERVAL, CALM_TAPS + TAPS)
        reference = await _bare_commits(crowd.folder)
    finally:
        await end_crowd(crowd)
    return rounds, reference


def run() -> list[Figure]:
    """p50 and p99 of each round beside the PTB reference bot's (webhook) or the bare commit's,
    and the service's CPU per tap beside the reference bot's."""
    rounds, reference = asyncio.run(_measure())
    bot = rounds["reference"]
    ref50, ref99 = statistics.median(reference), _percentile(reference, 0.99)
    figures = []
    for key, label, goal in (
        ("webhook", "100 taps/s, webhook (production), one process", True),
        ("polling", "100 taps/s, long polling", False),
        ("calm", "25 taps/s, webhook", False),
    ):
        got = rounds[key]
        note = (
            f"{len(got.latencies)} taps offered at {got.offered:.0f}/s, answered at {got.answered:.0f}/s; "
            f"max {max(got.latencies):,.0f} ms; {got.wrong} answers other than 'Approved'"
        )
        if key == "webhook":
            references = ("PTB bot that only answers, webhook, 100/s", bot.p50, bot.p99)
            note += (
                f"; reference answered {len(bot.latencies)} taps at {bot.answered:.0f}/s, "
                f"max {max(bot.latencies):,.0f} ms"
            )
        else:
            references = ("bare aiosqlite INSERT+COMMIT", ref50, ref99)
        name, p50, p99 = references
        figures += [
            Figure(f"tap → answer p50 ({label})", got.p50, "ms", f"{name} p50", p50),
            Figure(
                f"tap → answer p99 ({label})",
                got.p99,
                "ms",
                f"{name} p99",
                p99,
                goal="≤ 50 ms" if goal else "",
                met=got.p99 <= GOAL_MS if goal else None,
                note=note,
            ),
        ]
    busy = rounds["webhook"]
    figures.append(
        Figure(
            "service CPU per tap (decision + answer + card edit, 100 taps/s, webhook)",
            busy.cpu_ms,
            "ms",
            "PTB bot that only answers the callback, same taps, webhook",
            bot.cpu_ms,
            goal=f"≤ {CPU_GOAL_MS:.0f} ms",
            met=busy.cpu_ms <= CPU_GOAL_MS,
            note=(
                f"all threads of the serve process, over the round until every card edit was done; "
                f"bare commit p50 {ref50:.2f} ms, p99 {ref99:.2f} ms in the same folder"
            ),
        )
    )
    return figures
