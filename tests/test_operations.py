"""Running it by numbers: `/metrics` series (parsed as Prometheus reads them), `/readyz`, JSON
logs, and a set-up call that fails at start without holding the bot up."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import workflow
from bot.clock import FrozenClock
from bot.models import Actor, ActorKind, ChannelKind, Outcome
from bot.workflow import Desk
from sandbox.factories import make_parties, submit
from sandbox.service_process import service_env, start_service
from tests.telegram_fixtures import TOKEN, end_world, make_world

NEW_SERIES = {
    "likeness_http_responses",
    "likeness_decisions",
    "likeness_notices_pending",
    "likeness_notice_oldest_pending_seconds",
    "likeness_deliveries_failed",
    "likeness_deliveries_rate_limited",
    "likeness_sweep_duration_seconds",
    "likeness_violations",
    "likeness_auth_failures",
}


async def scrape(api: httpx.AsyncClient) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every family by name, and every sample by its own name (e.g. `..._total`)."""
    answer = await api.get("/metrics")
    assert answer.status_code == 200
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.text):
        found.setdefault(family.name, [])
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


async def test_metrics_parse_and_show_the_outbox_and_decisions(
    desk: Desk, clock: FrozenClock, api: httpx.AsyncClient
) -> None:
    parties = await make_parties(desk)
    request = (await submit(desk, parties)).view.request
    before = await scrape(api)
    await workflow.decide(
        desk,
        request_id=request.id,
        actor=Actor(ActorKind.artist, parties.artist_id, ChannelKind.telegram),
        outcome=Outcome.deny,
        terms_hash=request.terms_hash,
    )
    clock.advance(timedelta(minutes=5))
    assert (await api.get("/v1/requests/x")).status_code == 401

    families = await scrape(api)

    assert NEW_SERIES <= set(families), sorted(NEW_SERIES - set(families))

    def value(name: str, **labels: str) -> float:
        return sum(v for found, v in families.get(name, []) if labels.items() <= found.items())

    def earlier(name: str, **labels: str) -> float:
        return sum(v for found, v in before.get(name, []) if labels.items() <= found.items())

    assert value("likeness_decisions_total", channel="telegram", outcome="deny") == (
        earlier("likeness_decisions_total", channel="telegram", outcome="deny") + 1
    )
    assert value("likeness_http_responses_total", status="401") >= 1
    assert value("likeness_http_responses_total", status="200") >= 1  # the first scrape
    # The board post and its update wait for the Slack drainer, which is not running here.
    assert value("likeness_notices_pending", channel="slack") == 2
    assert value("likeness_notice_oldest_pending_seconds", channel="slack") == 300.0


def read_json_lines(log: str) -> list[dict[str, object]]:
    lines = [line for line in log.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


async def test_readyz_names_what_is_not_ready(tmp_path: Path) -> None:
    env = service_env(tmp_path, LOG_FORMAT="json")
    service = await asyncio.to_thread(start_service, env, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=10) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["parts"] == {"database": "ok", "migrations": "ok"}
            database = env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")
            with sqlite3.connect(database) as db:
                db.execute("UPDATE alembic_version SET version_num = '0005'")
            behind = await http.get("/readyz")
            assert behind.status_code == 503 and behind.json()["not_ready"] == ["migrations"]
    finally:
        await asyncio.to_thread(service.stop)
    records = read_json_lines(service.log())
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)


async def test_a_failing_set_up_call_never_holds_the_bot_up(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """setMyCommands is missing on this Bot API server at first: the bot still takes updates and
    sends cards, /readyz says Telegram is connected, and the commands arrive on a later try."""
    world = await make_world(tmp_path_factory.mktemp("setup-call"), LOG_FORMAT="json")
    try:
        party = await world.party("Setup Artist")
        world.sim.inject("404", count=1, methods="setMyCommands")
        await world.start()
        request_id = await world.file_directly(party)
        card = await world.card(party.user_id, request_id, timeout=30)
        assert card["reply_markup"] is not None
        async with httpx.AsyncClient(base_url=world.url, timeout=10) as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json()["parts"]["telegram"] == "ok", ready.text
        for _ in range(300):  # the background retry comes a few seconds later
            if world.sim.commands():
                break
            await asyncio.sleep(0.1)
        assert [c["command"] for c in world.sim.commands()], "setMyCommands was never retried"
        await world.stop()
        assert world.service is not None
        log = world.service.log()
        records = read_json_lines(log)
        assert any("setMyCommands failed" in str(r["message"]) for r in records)
        assert TOKEN not in log and "Traceback" not in log
    finally:
        await end_world(world)


async def test_readyz_is_503_while_telegram_is_unreachable(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    world = await make_world(tmp_path_factory.mktemp("unready"))
    try:
        world.sim.inject("502", count=1000, methods="getMe")
        await world.start()
        async with httpx.AsyncClient(base_url=world.url, timeout=10) as http:
            answer = await http.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["not_ready"] == ["telegram"]
        assert answer.json()["parts"]["database"] == "ok"
    finally:
        await end_world(world)
