"""Memory: RSS of `likeness serve` after 1,000,000 usage events and the weekly reports, vs at idle.

The million events are bulk-loaded into the service's SQLite file (through the API they would
take over an hour at the intake rate); 1,000 more arrive through the API while it runs. The
reports are then sent for real: the artist's in Telegram (text + chart) and the agency's in
Slack (chart + CSV of the period's events), through the in-repo simulators.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil

from bench.figures import Figure
from bot import workflow
from bot.app import build_desk
from bot.config import load_settings
from bot.models import ActorKind
from sandbox.factories import approve, make_parties, submit
from sandbox.service_process import run_cli, service_env, start_service
from sandbox.slack import SlackSimulator
from sandbox.telegram import TelegramSimulator

EVENTS = 1_000_000
TOKEN = "424242:BENCHMEMORY"
USER = 777_001


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def _prepare(env: dict[str, str]) -> tuple[str, str, str, str]:
    desk = build_desk(load_settings(database_url=env["DATABASE_URL"], data_dir=Path(env["DATA_DIR"])))
    await desk.db.upgrade()
    parties = await make_parties(desk)
    token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=parties.artist_id)
    await workflow.redeem_invite(desk, token=token, telegram_user_id=USER, chat_id=USER)
    now = desk.clock.now()
    submitted = await submit(
        desk, parties, starts_at=now.isoformat(), ends_at=(now + timedelta(days=300)).isoformat()
    )
    grant = await approve(desk, submitted, parties.artist())
    await desk.db.dispose()
    return parties.artist_id, parties.agency_id, grant.id, parties.api_key


def _bulk_usage(database: Path, grant_id: str, artist_id: str, creator_id: str) -> None:
    now = datetime.now(UTC)
    kinds = ["render", "publish", "train", "distribute"]
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA synchronous=OFF")
        for start in range(0, EVENTS, 100_000):
            rows = []
            for n in range(start, start + 100_000):
                at = now - timedelta(seconds=random.randrange(56 * 86400))
                rows.append(
                    (
                        f"use_{n:016x}",
                        grant_id,
                        creator_id,
                        artist_id,
                        kinds[n % 4],
                        1,
                        None,
                        0,
                        "active",
                        _ts(at),
                        _ts(at),
                    )
                )
            db.executemany(
                "INSERT INTO usage_events (id, grant_id, creator_id, artist_id, kind, count, note, "
                "violation, grant_status, occurred_at, received_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )


class _Peak(threading.Thread):
    """Samples a process's RSS until stopped; keeps the highest, and its children's (the chart)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.child_peak = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.05):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
                children = self.process.children(recursive=True)
            except psutil.Error:
                return
            for child in children:
                with contextlib.suppress(psutil.Error):  # it may have exited meanwhile
                    self.child_peak = max(self.child_peak, child.memory_info().rss)


@dataclass
class _Rss:
    """RSS in MiB at each step, and the highest seen while the reports were made."""

    idle: float = 0.0
    after_api: float = 0.0
    after_telegram: float = 0.0
    after_slack: float = 0.0
    peak: float = 0.0
    chart_peak: float = 0.0


async def _measure() -> _Rss:
    folder = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    telegram = TelegramSimulator(bots={TOKEN: "likeness_bench_bot"})
    slack = SlackSimulator(bot_token="xoxb-bench", signing_secret="bench-secret")
    await telegram.start()
    await slack.start()
    telegram.add_user(USER, "Bench Artist")
    telegram.mark_started(TOKEN, USER)
    slack.add_channel("C100", "agency")
    rss = _Rss()
    try:
        env = service_env(
            folder,
            LOG_LEVEL="WARNING",
            API_RATE_LIMIT="100000/s,100000",  # memory under load, not the per-key limit
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=telegram.api_base_url,
            SLACK_BOT_TOKEN="xoxb-bench",
            SLACK_SIGNING_SECRET="bench-secret",
            SLACK_API_BASE_URL=slack.api_base_url,
        )
        artist_id, agency_id, grant_id, key = await _prepare(env)
        database = Path(env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))
        with sqlite3.connect(database) as db:
            creator_id = db.execute("SELECT creator_id FROM grants WHERE id = ?", (grant_id,)).fetchone()[0]
        await asyncio.to_thread(_bulk_usage, database, grant_id, artist_id, creator_id)
        service = await asyncio.to_thread(start_service, env, folder)
        try:
            slack.app_url = f"{service.url}/slack/events"
            process = psutil.Process(service.process.pid)

            def now() -> float:
                return float(process.memory_info().rss) / 2**20

            await telegram.wait_for(lambda: telegram.calls("setMyCommands"), timeout=30)
            # The request's card and board post go out at start; let them, then measure the rest.
            await telegram.wait_for(lambda: telegram.messages(USER), timeout=30)
            await slack.wait_for(lambda: slack.messages("C100"), timeout=30)
            await asyncio.sleep(1.0)
            rss.idle = now()
            peak = _Peak(service.process.pid)
            peak.start()
            async with httpx.AsyncClient(
                base_url=service.url, headers={"Authorization": f"Bearer {key}"}
            ) as client:
                for _ in range(1000):
                    answer = await client.post(
                        f"/v1/grants/{grant_id}/usage", json={"kind": "render", "likeness": ["face"]}
                    )
                    assert answer.status_code == 201, answer.text
            rss.after_api = now()
            # One report after the other, so each step's cost shows on its own.
            result = await asyncio.to_thread(run_cli, env, folder, "report", "send", "--artist", artist_id)
            assert result.returncode == 0, result.stderr
            await telegram.wait_for(lambda: telegram.calls("sendPhoto"), timeout=120)
            await asyncio.sleep(1.0)
            rss.after_telegram = now()
            result = await asyncio.to_thread(run_cli, env, folder, "report", "send", "--agency", agency_id)
            assert result.returncode == 0, result.stderr
            await slack.wait_for(lambda: len(slack.files()) >= 2, timeout=300)
            await asyncio.sleep(1.0)
            rss.after_slack = now()
            peak.stopped.set()
            peak.join()
            rss.peak = max(peak.peak / 2**20, rss.after_slack)
            rss.chart_peak = peak.child_peak / 2**20
            csv_size = max(f.get("size") or 0 for f in slack.files())
        finally:
            service.stop()
    finally:
        await telegram.stop()
        await slack.stop()
    print(f"weekly CSV sent to Slack: {csv_size / 2**20:.1f} MiB", flush=True)
    return rss


def run() -> list[Figure]:
    """RSS at idle, after ingest and reports, and the peak in between."""
    rss = asyncio.run(_measure())
    return [
        Figure(
            "RSS after 1M usage events + weekly reports",
            rss.after_slack,
            "MiB",
            "RSS at idle",
            rss.idle,
            goal="≤ 200 MB (190.7 MiB)",
            met=rss.after_slack * 2**20 <= 200e6,
            note=(
                f"after 1,000 events through the API {rss.after_api:,.0f} MiB; after the artist's Telegram "
                f"report (text + chart) {rss.after_telegram:,.0f} MiB; after the agency's Slack report "
                f"(chart + CSV of the week) {rss.after_slack:,.0f} MiB; peak {rss.peak:,.0f} MiB; the chart "
                f"is drawn in a child process that exits when idle (its peak: {rss.chart_peak:,.0f} MiB)"
            ),
        )
    ]
