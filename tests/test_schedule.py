"""On schedule: reminders, lapse, activation, expiry, reports and webhooks, exactly once."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot import workflow
from bot.adapters.webhook import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSender,
    verify_webhook,
)
from bot.app import build_desk
from bot.clock import FrozenClock
from bot.config import load_settings
from bot.delivery import Outbox
from bot.models import ActorKind
from bot.workflow import Desk
from sandbox.factories import make_parties, submit
from sandbox.pg_server import PgServer
from sandbox.service_process import service_env, start_service
from scheduler import jobs
from scheduler.cron import queue_due_reports
from scheduler.jobs import Schedule
from storage.tables import Notice, ReportRun
from tests.test_workflow import approve, link_artist
from tests.webhook_receiver import LOOPBACK_HOOKS, WebhookReceiver


async def test_webhooks_are_signed_and_retried_until_the_endpoint_answers(
    desk: Desk, clock: FrozenClock, receiver: WebhookReceiver
) -> None:
    receiver.fail_first = 2
    parties = await make_parties(desk, webhook_url=receiver.url)
    async with desk.db.transaction() as session:
        from storage.tables import Creator

        secret = (await session.get(Creator, parties.creator_id)).webhook_secret  # type: ignore[union-attr]
    await submit(desk, parties)
    outbox = Outbox(desk, [WebhookSender(desk, policy=LOOPBACK_HOOKS)])
    assert await outbox.drain_once() == 1  # answered 500
    assert await outbox.drain_once() == 0  # not due yet: backing off
    clock.advance(timedelta(seconds=3))
    assert await outbox.drain_once() == 1  # answered 500 again
    clock.advance(timedelta(seconds=5))
    assert await outbox.drain_once() == 1  # delivered
    assert [r.status for r in receiver.received] == [500, 500, 200]
    ids = {r.headers[EVENT_ID_HEADER] for r in receiver.received}
    assert len(ids) == 1  # the same event id on every retry, for de-duplication
    last = receiver.received[-1]
    assert secret and verify_webhook(
        secret,
        last.headers[TIMESTAMP_HEADER],
        last.body,
        last.headers[SIGNATURE_HEADER],
        now=clock.now().timestamp(),
    )
    assert not verify_webhook(
        "whsec_wrong",
        last.headers[TIMESTAMP_HEADER],
        last.body,
        last.headers[SIGNATURE_HEADER],
        now=clock.now().timestamp(),
    )
    assert last.event["type"] == "request.submitted"
    assert await outbox.pending_count() == 0


async def test_a_webhook_that_keeps_failing_is_given_up_after_24_hours(
    desk: Desk, clock: FrozenClock, receiver: WebhookReceiver
) -> None:
    receiver.fail_first = 10_000
    parties = await make_parties(desk, webhook_url=receiver.url)
    await submit(desk, parties)
    outbox = Outbox(desk, [WebhookSender(desk, policy=LOOPBACK_HOOKS)])
    attempts = 0
    while await outbox.pending_count():
        attempts += await outbox.drain_once()
        clock.advance(timedelta(minutes=5))
    async with desk.db.transaction() as session:
        notice = (await session.execute(select(Notice).where(Notice.channel == "webhook"))).scalar_one()
    assert notice.status == "failed" and "500" in (notice.last_error or "")
    assert attempts > 250  # retried with capped backoff for the whole day


async def test_weekly_reports_fall_due_in_each_recipients_time_zone_once(
    desk: Desk, clock: FrozenClock
) -> None:
    parties = await make_parties(desk)
    await link_artist(desk, parties.artist_id)
    async with desk.db.transaction() as session:
        from storage.tables import Agency, Artist

        (await session.get(Artist, parties.artist_id)).timezone = "Asia/Shanghai"  # type: ignore[union-attr]
        (await session.get(Agency, parties.agency_id)).timezone = "Europe/Berlin"  # type: ignore[union-attr]
        for table in (Artist, Agency):
            for row in (await session.execute(select(table))).scalars():
                row.created_at = datetime(2026, 11, 1, tzinfo=UTC)
    cron = "0 9 * * mon"
    clock.current = datetime(2026, 11, 30, 0, 59, tzinfo=UTC)  # Monday 08:59 in Shanghai
    # Last week's Monday 09:00 already passed for both; take those as sent to start clean.
    assert await queue_due_reports(desk, cron=cron) == 2
    clock.current = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert await queue_due_reports(desk, cron=cron) == 1
    assert await queue_due_reports(desk, cron=cron) == 0
    clock.current = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    assert await queue_due_reports(desk, cron=cron) == 1
    async with desk.db.transaction() as session:
        runs = sorted(
            (r.recipient_kind, r.period) for r in (await session.execute(select(ReportRun))).scalars()
        )
    assert runs[-2:] == [
        ("agency", "week:2026-11-30T08:00:00Z"),
        ("artist", "week:2026-11-30T01:00:00Z"),
    ] or (("artist", "week:2026-11-30T01:00:00Z") in runs and ("agency", "week:2026-11-30T08:00:00Z") in runs)


async def test_a_report_asked_for_now_is_queued_each_time(desk: Desk) -> None:
    parties = await make_parties(desk)
    await link_artist(desk, parties.artist_id)
    assert await workflow.queue_report(desk, recipient_kind=ActorKind.artist, recipient_id=parties.artist_id)
    assert await workflow.queue_report(desk, recipient_kind=ActorKind.agency, recipient_id=parties.agency_id)
    async with desk.db.transaction() as session:
        kinds = [
            (n.channel, n.kind)
            for n in (await session.execute(select(Notice).where(Notice.kind == "report"))).scalars()
        ]
    assert sorted(kinds) == [("slack", "report"), ("telegram", "report")]


# ---------------------------------------------------------------- the running service


async def _approved_grants(
    env: dict[str, str], count: int, *, starts: timedelta, ends: timedelta, webhook: str, creators: int = 1
) -> list[str]:
    """Approved grants made straight through the workflow on the service's own database."""
    settings = load_settings(database_url=env["DATABASE_URL"], data_dir=Path(env["DATA_DIR"]))
    desk = build_desk(settings)
    await desk.db.upgrade()
    try:
        everyone = [await make_parties(desk, webhook_url=webhook) for _ in range(creators)]
        now = desk.clock.now()
        grants = []
        for number in range(count):
            parties = everyone[number % creators]
            submitted = await submit(
                desk,
                parties,
                project_title=f"Spot {number}",
                starts_at=(now + starts).isoformat(),
                ends_at=(now + ends).isoformat(),
                # Approved at once, so the deadline only has to outlast making them all, however busy
                # the machine; half the window keeps it before the end even for a short grant.
                decision_due_at=(now + min(ends / 2, timedelta(hours=1))).isoformat(),
            )
            decided = await approve(desk, submitted.view.request.id, parties.artist())
            assert decided.view.grant is not None
            grants.append(decided.view.grant.id)
        return grants
    finally:
        await desk.db.dispose()


async def _one_swept_grant(
    tmp_path: Path, receiver: WebhookReceiver, ends: timedelta
) -> tuple[dict[str, str], str]:
    """The environment of a service sweeping every second under clock control, and one grant on its
    database, from now for `ends`, whose creator's webhook is `receiver`: (environment, grant id)."""
    env = service_env(tmp_path, SWEEP_INTERVAL="1s", CLOCK_CONTROL="true")
    [grant] = await _approved_grants(env, 1, starts=timedelta(0), ends=ends, webhook=receiver.url)
    return env, grant


def _events(receiver: WebhookReceiver, kind: str) -> Counter[str]:
    return Counter(e["data"]["grant_id"] for e in receiver.accepted() if e["type"] == kind)


async def test_a_90_second_grant_expires_within_one_sweep_of_its_end(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    env, grant = await _one_swept_grant(tmp_path, receiver, ends=timedelta(seconds=90))
    service = await asyncio.to_thread(start_service, env, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=service.url) as client:
            await receiver.wait_for(lambda: _events(receiver, "request.approved"))
            assert not _events(receiver, "grant.expired")
            await client.post("/control/clock", json={"skip": "90s"})
            await receiver.wait_for(lambda: _events(receiver, "grant.expired"))
    finally:
        service.stop()
    assert _events(receiver, "grant.expired") == {grant: 1}


async def test_after_downtime_what_fell_due_is_done_once_and_stale_reminders_are_skipped(
    tmp_path: Path, receiver: WebhookReceiver
) -> None:
    env, grant = await _one_swept_grant(tmp_path, receiver, ends=timedelta(days=10))

    async def run_once(offset: str, expect: str) -> None:
        service = await asyncio.to_thread(start_service, env | {"CLOCK_OFFSET": offset}, tmp_path)
        try:
            await receiver.wait_for(lambda: _events(receiver, expect))
            async with httpx.AsyncClient(base_url=service.url) as client:
                # One more full sweep and drain after the expected event: nothing else may follow.
                await client.post("/control/clock", json={"skip": "1s"})
                await client.post("/control/clock", json={"skip": "1s"})
        finally:
            service.kill()

    await run_once("4d", "grant.expiring")  # the 7-day reminder fell due while the service was down
    await run_once("4d", "grant.expiring")  # same moment again: nothing new
    await run_once("11d", "grant.expired")  # the 1-day reminder no longer makes sense; expiry does
    expiring = [e for e in receiver.accepted() if e["type"] == "grant.expiring"]
    assert [e["data"]["index"] for e in expiring] == [0]
    assert _events(receiver, "grant.expired") == {grant: 1}


@pytest.mark.timeout(300)  # three service processes and 600 webhooks; a busy CI machine needs the room
async def test_three_instances_on_postgresql_send_each_of_300_reminders_exactly_once(
    tmp_path: Path, receiver: WebhookReceiver, pg_server: PgServer
) -> None:
    url = pg_server.create_database("multi_instance")
    env = service_env(tmp_path, DATABASE_URL=url, SWEEP_INTERVAL="1s", CLOCK_CONTROL="true")
    grants = await _approved_grants(
        env, 300, starts=timedelta(0), ends=timedelta(days=8), webhook=receiver.url
    )
    # Started from a thread so that this loop keeps answering the webhooks meanwhile.
    services = [
        await asyncio.to_thread(start_service, env | {"CLOCK_OFFSET": "1d"}, tmp_path, tag=f"i{n}")
        for n in range(3)
    ]
    try:
        await receiver.wait_for(lambda: len(_events(receiver, "grant.expiring")) == 300, timeout=150)
        await receiver.wait_for(lambda: len(_events(receiver, "request.approved")) == 300, timeout=60)
        async with httpx.AsyncClient() as client:
            for service in services:  # one more sweep and drain everywhere
                await client.post(f"{service.url}/control/clock", json={"skip": "1s"})
    finally:
        for service in services:
            service.stop()
    assert _events(receiver, "grant.expiring") == Counter({g: 1 for g in grants})
    ids = Counter(r.headers[EVENT_ID_HEADER] for r in receiver.received if r.status == 200)
    assert max(ids.values()) == 1  # no notice delivered twice
    assert all("Traceback" not in s.log() for s in services)


@pytest.fixture
def gated_sweeps(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """The real sweeps, held at the start of each pass until `release` is set (time control)."""
    started, release = asyncio.Event(), asyncio.Event()
    real = workflow.run_sweeps

    async def held(desk: Desk) -> dict[str, int]:
        started.set()
        await release.wait()
        return await real(desk)

    monkeypatch.setattr(workflow, "run_sweeps", held)
    return started, release


async def test_stopping_lets_a_running_sweep_finish_without_an_error_in_the_log(
    desk: Desk, gated_sweeps: tuple[asyncio.Event, asyncio.Event], caplog: pytest.LogCaptureFixture
) -> None:
    started, release = gated_sweeps
    schedule = Schedule(desk, sweep_interval=timedelta(hours=1), report_cron="0 9 * * 1")
    await schedule.start()
    await started.wait()
    stopping = asyncio.create_task(schedule.stop())
    release.set()  # the sweep may go on only after stop() has begun
    await stopping
    assert schedule.passes == 1 and not schedule.scheduler.running
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_sweep_still_running_after_the_grace_is_cut_off_with_a_warning_not_a_traceback(
    desk: Desk,
    gated_sweeps: tuple[asyncio.Event, asyncio.Event],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started, _never = gated_sweeps
    monkeypatch.setattr(jobs, "STOP_GRACE", 0.05)
    schedule = Schedule(desk, sweep_interval=timedelta(hours=1), report_cron="0 9 * * 1")
    await schedule.start()
    await started.wait()
    await schedule.stop()
    await schedule._idle.wait()  # the cancelled pass unwinds on the loop's next turns
    assert schedule.passes == 0
    assert any("cut off at shutdown" in r.getMessage() for r in caplog.records)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_checkpoint_still_running_after_the_grace_is_cut_off_with_a_warning_not_a_traceback(
    desk: Desk, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    started, never = asyncio.Event(), asyncio.Event()

    async def held(_desk: Desk, *, slot: object) -> None:
        started.set()
        await never.wait()

    monkeypatch.setattr(jobs.proof, "take_checkpoint", held)
    monkeypatch.setattr(jobs, "STOP_GRACE", 0.05)
    schedule = Schedule(
        desk,
        sweep_interval=timedelta(hours=1),
        report_cron="0 9 * * 1",
        checkpoint_interval=timedelta(hours=1),
    )
    await schedule.start()
    await started.wait()
    await schedule.stop()
    await schedule._checkpoint_idle.wait()  # the cancelled checkpoint unwinds on the loop's next turns
    assert any("checkpoint was cut off at shutdown" in r.getMessage() for r in caplog.records)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
