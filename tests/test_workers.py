"""Several processes on one PostgreSQL: `serve --workers N`, separate instances sharing the outbox,
the platforms' limits (the send budget) and the decisions; the refusals where one process must do."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from bench._telegram import TOKEN, Crowd, end_crowd, free_port, make_crowd, ok_calls, poll_until
from bot.config import load_settings
from bot.workers import workers_refusal
from sandbox.service_process import ServiceProcess, run_cli, service_env, start_service
from sandbox.telegram.rules import SECRET_TOKEN_HEADER
from storage.database import Database
from storage.tables import Decision, Notice
from tests.pg_server import PgServer

WEBHOOK_SECRET = "workers-test-webhook-secret"


def serve_once(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str]:
    """Runs `likeness serve ARGS` expecting it to refuse at once; its exit code and stderr."""
    done = run_cli(env, cwd, "serve", *args)
    return done.returncode, done.stderr


def test_workers_on_sqlite_are_refused_in_one_line(tmp_path: Path) -> None:
    code, said = serve_once(service_env(tmp_path), tmp_path, "--workers", "2")
    assert code != 0
    assert said.strip().splitlines() == [
        "error: --workers 2 needs PostgreSQL: SQLite serves one process "
        "(set DATABASE_URL=postgresql+asyncpg://…, or run one worker)"
    ]
    assert "Traceback" not in said
    assert not (tmp_path / "data" / "likeness.db").exists()  # nothing was started or created


def test_workers_with_telegram_long_polling_are_refused_in_one_line(tmp_path: Path) -> None:
    env = service_env(
        tmp_path,
        DATABASE_URL="postgresql+asyncpg://app@127.0.0.1:1/never",
        TELEGRAM_BOT_TOKEN="7400001:WORKERS-test-token-0123456789abcdef",
    )
    code, said = serve_once(env, tmp_path, "--workers", "3")
    assert code != 0
    assert said.strip().splitlines() == [
        "error: --workers 3 needs Telegram's webhook mode (set TELEGRAM_WEBHOOK_URL): "
        "Telegram allows one long-polling getUpdates per bot"
    ]
    assert "WORKERS-test-token" not in said


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ({"sandbox": True}, "the sandbox runs in one process"),
        ({"sandbox": False, "clock_control": True}, "CLOCK_CONTROL moves the clock of one process only"),
    ],
)
def test_workers_refuse_what_lives_in_one_process(
    tmp_path: Path, setting: dict[str, bool], words: str
) -> None:
    settings = load_settings(
        database_url="postgresql+asyncpg://app@127.0.0.1:1/never", data_dir=tmp_path, **setting
    )
    refusal = workers_refusal(settings, 2)
    assert refusal is not None and words in refusal and "\n" not in refusal
    assert workers_refusal(settings, 1) is None


@pytest.mark.parametrize("count", ["0", "-1", "65", "two"])
def test_a_bad_worker_count_is_refused_without_a_traceback(tmp_path: Path, count: str) -> None:
    code, said = serve_once(service_env(tmp_path), tmp_path, "--workers", count)
    assert code == 2
    assert "--workers" in said and "Traceback" not in said


def test_two_workers_serve_one_port_and_both_answer(tmp_path: Path, pg_server: PgServer) -> None:
    env = service_env(tmp_path, DATABASE_URL=pg_server.create_database("workers_port"))
    service = start_service(env, tmp_path, args=("--workers", "2"), timeout=60)
    try:
        assert service.line_with("2 workers started")
        seen: Counter[str] = Counter()
        for _ in range(200):
            # A fresh connection each time: the kernel hands it to whichever worker accepts first.
            with httpx.Client(base_url=service.url, timeout=10) as client:
                answer = client.get("/healthz")
            assert answer.status_code == 200 and answer.json() == {"status": "ok"}
            seen[answer.headers["likeness-worker"]] += 1
            if len(seen) == 2:
                break
        assert set(seen) == {"1", "2"}
    finally:
        service.stop()
    assert service.process.returncode == 0
    assert "Traceback" not in service.log()


# ---------------------------------------------------------------- separate instances, one database


async def start_instances(crowd: Crowd, count: int) -> list[ServiceProcess]:
    """`count` separate `likeness serve` processes on the crowd's database, each with its webhook
    (the last one started holds Telegram's); started in threads so the simulator keeps answering."""
    envs = []
    for _ in range(count):
        port = free_port()
        envs.append(
            dict(
                crowd.env,
                HTTP_PORT=str(port),
                TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/webhook",
                TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
            )
        )
    starting = (asyncio.to_thread(start_service, env, crowd.folder, timeout=60) for env in envs)
    return list(await asyncio.gather(*starting))


async def stop_all(instances: list[ServiceProcess]) -> None:
    """SIGTERM to each, together."""
    await asyncio.gather(*(asyncio.to_thread(i.stop) for i in instances))
    for instance in instances:
        assert "Traceback" not in instance.log()


async def card_states(url: str) -> Counter[str]:
    """How many card notices are in each state."""
    database = Database(url)
    try:
        async with database.read() as session:
            rows = await session.execute(
                select(Notice.status, func.count()).where(Notice.kind == "card").group_by(Notice.status)
            )
            return Counter({status: count for status, count in rows.tuples()})
    finally:
        await database.dispose()


async def test_three_instances_share_a_fanout_without_429_or_a_notice_twice(pg_server: PgServer) -> None:
    url = pg_server.create_database("workers_fanout")
    # 120 cards: alone, each instance would send 28/s, 84/s together; the simulator allows 30/s.
    crowd = await make_crowd(120, prefix="test-workers-", DATABASE_URL=url)
    instances: list[ServiceProcess] = []
    try:
        instances = await start_instances(crowd, 3)
        sim = crowd.sim
        await poll_until(lambda: ok_calls(sim, "sendMessage") >= len(crowd.cards), timeout=60, every=0.1)
        states = await card_states(url)
        deadline = asyncio.get_running_loop().time() + 20
        while states["sent"] < len(crowd.cards) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)  # polling a condition with a deadline, not a guess
            states = await card_states(url)
        await stop_all(instances)
        instances = []
        assert states == Counter({"sent": len(crowd.cards)})
        delivered = crowd.delivered_cards()
        assert sorted(len(messages) for messages in delivered.values()) == [1] * len(crowd.cards)
        assert sim.rate_limited_count == 0
        assert all(sim.chat_stats(card.user_id)["max_in_1s"] <= 1 for card in crowd.cards)
    finally:
        await stop_all(instances)
        await end_crowd(crowd)
        shutil.rmtree(crowd.folder, ignore_errors=True)


async def test_taps_on_one_card_racing_in_two_instances_have_one_winner(pg_server: PgServer) -> None:
    url = pg_server.create_database("workers_race")
    crowd = await make_crowd(20, prefix="test-workers-race-", DATABASE_URL=url)
    instances: list[ServiceProcess] = []
    try:
        instances = await start_instances(crowd, 2)
        sim = crowd.sim
        await poll_until(lambda: ok_calls(sim, "sendMessage") >= len(crowd.cards), timeout=60, every=0.1)
        # The taps are handed to the instances here, one of each pair to each instance.
        async with httpx.AsyncClient(timeout=10) as client:
            hook = f"{sim.api_base_url}{TOKEN}/deleteWebhook"
            assert (await client.post(hook)).json()["ok"]
            pairs = []
            for card in crowd.cards:
                # The artist taps Approve twice (two devices, say): two updates, one decision to make.
                message_id = sim.messages(card.user_id, TOKEN)[-1]["message_id"]
                taps = [
                    await sim.tap(TOKEN, card.user_id, card.user_id, message_id, button_text="Approve")
                    for _ in range(2)
                ]
                pairs.append((taps[0], taps[1]))
            updates = {u["callback_query"]["id"]: u for u in sim.updates(TOKEN) if "callback_query" in u}
            headers = {SECRET_TOKEN_HEADER: WEBHOOK_SECRET}

            async def deliver(instance: ServiceProcess, query_id: str) -> int:
                answer = await client.post(
                    f"{instance.url}/telegram/webhook", json=updates[query_id], headers=headers
                )
                return answer.status_code

            sent = await asyncio.gather(
                *(deliver(instances[0], a) for a, _ in pairs), *(deliver(instances[1], b) for _, b in pairs)
            )
        assert set(sent) == {200}
        every_query = [q for pair in pairs for q in pair]
        await poll_until(lambda: all(sim.callback_answer(q) for q in every_query), timeout=30, every=0.1)
        database = Database(url)
        try:
            async with database.read() as session:
                rows = await session.execute(
                    select(Decision.request_id, func.count()).group_by(Decision.request_id)
                )
                decided = {request_id: count for request_id, count in rows.tuples()}
        finally:
            await database.dispose()
        assert decided == {card.request_id: 1 for card in crowd.cards}
        # Each pair: one tap made the decision, the other was told it was already made.
        for first, second in pairs:
            texts = sorted(str((sim.callback_answer(q) or {}).get("text") or "") for q in (first, second))
            assert texts[0].startswith("Already approved by") and texts[1].startswith("Approved"), texts
    finally:
        await stop_all(instances)
        await end_crowd(crowd)
        shutil.rmtree(crowd.folder, ignore_errors=True)
