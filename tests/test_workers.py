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
from bot.models import ActorKind
from bot.workers import workers_refusal
from sandbox.pg_server import PgServer
from sandbox.service_process import ServiceProcess, run_cli, service_env, start_service
from sandbox.telegram.rules import SECRET_TOKEN_HEADER
from storage.database import Database
from storage.tables import Decision, Notice

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


def test_a_worker_that_dies_stops_the_others_and_the_parent_exits_1(
    tmp_path: Path, pg_server: PgServer
) -> None:
    import signal

    import psutil

    env = service_env(tmp_path, DATABASE_URL=pg_server.create_database("workers_death"))
    service = start_service(env, tmp_path, args=("--workers", "2"), timeout=60)
    try:
        workers = psutil.Process(service.process.pid).children()
        assert len(workers) == 2
        workers[0].send_signal(signal.SIGKILL)
        assert service.process.wait(timeout=30) == 1
        _gone, alive = psutil.wait_procs(workers, timeout=10)
        assert alive == []
        assert "exited (-9); stopping the others" in service.log()
    finally:
        service.stop()


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
    from bench._telegram import _terms
    from bot import workflow
    from bot.app import build_desk

    url = pg_server.create_database("workers_fanout")
    crowd = await make_crowd(0, prefix="test-workers-", DATABASE_URL=url, API_RATE_LIMIT="1000/s,1000")
    sim = crowd.sim
    desk = build_desk(load_settings(database_url=url, data_dir=Path(crowd.env["DATA_DIR"])))
    bodies: list[list[dict[str, object]]] = [[], [], []]
    chats = []
    try:
        creator = await workflow.add_creator(desk, name="Bench Studio")
        # 90 artists with one request and 10 with three; every instance is handed a third of them,
        # and each of the ten busy artists' three requests goes to a different instance.
        for number in range(100):
            artist = await workflow.add_artist(desk, name=f"Artist {number}", timezone="UTC")
            token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=artist.id)
            user_id = 300_000 + number
            await workflow.redeem_invite(desk, token=token, telegram_user_id=user_id, chat_id=user_id)
            sim.add_user(user_id, f"Artist{number}")
            sim.mark_started(TOKEN, user_id)
            chats.append(user_id)
            for copy in range(3 if number < 10 else 1):
                body = _terms(desk, artist.id, number * 10 + copy).model_dump(mode="json")
                bodies[(number + copy) % 3].append(body)
    finally:
        await desk.db.dispose()
    instances: list[ServiceProcess] = []
    try:
        instances = await start_instances(crowd, 3)
        headers = {"Authorization": f"Bearer {creator.api_key}"}
        async with httpx.AsyncClient(headers=headers, timeout=30) as client:

            async def submit(instance: ServiceProcess, body: dict[str, object]) -> int:
                return (await client.post(f"{instance.url}/v1/requests", json=body)).status_code

            # Alone, each instance would send its cards at 28/s, 84/s together; Telegram allows 30/s.
            handed = [
                (instance, body) for instance, own in zip(instances, bodies, strict=True) for body in own
            ]
            answers = await asyncio.gather(*(submit(instance, body) for instance, body in handed))
        assert answers == [201] * 120
        await poll_until(lambda: ok_calls(sim, "sendMessage") >= 120, timeout=60, every=0.1)
        states = await card_states(url)
        deadline = asyncio.get_running_loop().time() + 20
        while states["sent"] < 120 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)  # polling a condition with a deadline, not a guess
            states = await card_states(url)
        await stop_all(instances)
        instances = []
        assert states == Counter({"sent": 120})
        cards = [m for chat in chats for m in sim.messages(chat, TOKEN)]
        assert len(cards) == 120
        assert ok_calls(sim, "sendMessage") == 120  # none sent twice
        assert sim.rate_limited_count == 0
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


async def test_two_instances_keep_one_slack_channel_at_its_pace(tmp_path: Path, pg_server: PgServer) -> None:
    from bench._telegram import _terms  # the same terms the Telegram crowd uses
    from bot import workflow
    from bot.app import build_desk
    from sandbox.slack import SlackSimulator
    from tests.slack_fixtures import BOARD, SECRET
    from tests.slack_fixtures import TOKEN as SLACK_TOKEN

    sim = SlackSimulator(bot_token=SLACK_TOKEN, signing_secret=SECRET)
    sim.add_channel(BOARD, "star-board")
    await sim.start()
    env = service_env(
        tmp_path,
        DATABASE_URL=pg_server.create_database("workers_slack"),
        SLACK_BOT_TOKEN=SLACK_TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_BASE_URL=sim.api_base_url,
        LOG_LEVEL="WARNING",
        API_RATE_LIMIT="1000/s,1000",
    )
    desk = build_desk(load_settings(database_url=env["DATABASE_URL"], data_dir=Path(env["DATA_DIR"])))
    await desk.db.upgrade()
    try:
        # Two agencies share one board channel. Each instance is handed one agency's requests, so
        # each posts its own: alone each would post 1/s, together 2/s, over Slack's ~1/s (burst 3).
        creator = await workflow.add_creator(desk, name="Dream Studio")
        artists = []
        for name in ("Star Agency", "Moon Agency"):
            agency = await workflow.add_agency(desk, name=name, slack_channel_id=BOARD)
            artists.append((await workflow.add_artist(desk, name=f"{name} artist", agency_id=agency.id)).id)
        bodies = [[_terms(desk, a, n).model_dump(mode="json") for n in range(5)] for a in artists]
    finally:
        await desk.db.dispose()
    instances: list[ServiceProcess] = []
    try:
        starting = (
            asyncio.to_thread(start_service, dict(env, HTTP_PORT=str(free_port())), tmp_path, timeout=60)
            for _ in range(2)
        )
        instances = list(await asyncio.gather(*starting))
        headers = {"Authorization": f"Bearer {creator.api_key}"}
        async with httpx.AsyncClient(headers=headers, timeout=10) as client:

            async def submit(instance: ServiceProcess, body: dict[str, object]) -> int:
                return (await client.post(f"{instance.url}/v1/requests", json=body)).status_code

            answers = await asyncio.gather(
                *(
                    submit(instance, body)
                    for instance, own in zip(instances, bodies, strict=True)
                    for body in own
                )
            )
        assert answers == [201] * 10
        await poll_until(lambda: len(sim.messages(BOARD)) >= 10, timeout=60, every=0.2)
        await stop_all(instances)
        instances = []
        assert len(sim.messages(BOARD)) == 10
        assert sim.rate_limited_count == 0
    finally:
        await stop_all(instances)
        await sim.stop()
