"""Usage reports: content, the chart is a real PNG, the CSV parses, weeks follow the recipient's zone."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from bot import chart, reports, workflow
from bot.clock import FrozenClock
from bot.models import Language, UsageKind
from bot.render import slack as board
from bot.render import telegram_reports as texts
from bot.reports import (
    ChartDrawer,
    ChartError,
    GrantUsage,
    Report,
    _week_starts,
    build_report,
    chart_spec,
    usage_csv,
)
from bot.workflow import Desk
from sandbox.factories import make_parties, submit
from sandbox.factories import stated_use as stated
from tests.test_workflow import approve


def from_now(clock: FrozenClock, *, days: int) -> dict[str, str]:
    """The terms' window from now for ``days`` days, as `submit` takes it."""
    return {"starts_at": clock.now().isoformat(), "ends_at": (clock.now() + timedelta(days=days)).isoformat()}


async def test_report_counts_uses_by_grant_and_kind_and_marks_violations(
    desk: Desk, clock: FrozenClock
) -> None:
    parties = await make_parties(desk)
    used = await submit(desk, parties, **from_now(clock, days=5))
    grant = (await approve(desk, used.view.request.id, parties.artist())).view.grant
    assert grant is not None
    waiting = await submit(desk, parties, project_title="Still Waiting")
    for kind, count in [(UsageKind.render, 3), (UsageKind.render, 2), (UsageKind.publish, 1)]:
        await workflow.record_usage(
            desk, creator_id=parties.creator_id, grant_id=grant.id, usage=stated(kind, count)
        )
    await workflow.revoke_grant(desk, grant_id=grant.id, actor=parties.artist())
    clock.advance(timedelta(minutes=1))
    await workflow.record_usage(
        desk, creator_id=parties.creator_id, grant_id=grant.id, usage=stated(UsageKind.train, 4)
    )

    report = await build_report(desk, artist_id=parties.artist_id)
    [usage] = report.grants
    assert usage.uses_by_kind == {"publish": 1, "render": 5}
    assert usage.violations == 4
    assert usage.status == "revoked"
    assert report.total_uses == 6 and report.total_violations == 4
    assert [p.project_title for p in report.pending] == ["Still Waiting"]
    assert [p.request_id for p in report.pending] == [waiting.view.request.id]
    agency_report = await build_report(desk, agency_id=parties.agency_id)
    assert agency_report.total_uses == 6

    charts = ChartDrawer()
    try:
        png = await charts.draw(report)
    finally:
        await charts.close()
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (800, 400)

    with await usage_csv(desk, agency_report) as table:
        rows = list(csv.DictReader(io.StringIO(table.read().decode())))
    assert len(rows) == 4
    assert sorted(r["violation"] for r in rows) == ["no", "no", "no", "yes"]
    assert {r["project_title"] for r in rows} == {"Moonlight Drama S2"}


async def test_report_lists_grants_expiring_within_a_week(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk)
    soon = await submit(desk, parties, **from_now(clock, days=3))
    later = await submit(desk, parties, project_title="Long Running")
    await approve(desk, soon.view.request.id, parties.artist())
    await approve(desk, later.view.request.id, parties.artist())
    report = await build_report(desk, artist_id=parties.artist_id)
    assert [e.project_title for e in report.expiring_soon] == ["Moonlight Drama S2"]


def test_weeks_start_on_monday_midnight_in_the_recipients_time_zone(clock: FrozenClock) -> None:
    # 09:00 UTC on Wed 2026-11-25 is 17:00 in Shanghai; its week began Monday 00:00 there (Sun 16:00 UTC).
    starts = _week_starts(clock.now(), "Asia/Shanghai", 2)
    assert starts[-1].isoformat() == "2026-11-22T16:00:00+00:00"
    assert starts[0] == starts[-1] - timedelta(weeks=1)
    assert _week_starts(clock.now(), "UTC", 1)[0].isoformat() == "2026-11-23T00:00:00+00:00"


def _report_with(*weekly: list[tuple[str, int, int]]) -> Report:
    now = datetime(2026, 11, 25, 9, tzinfo=UTC)
    grants = [
        GrantUsage(f"g{i}", f"r{i}", f"Project {i}", "Lin", "active", {"render": 1}, 0, w)
        for i, w in enumerate(weekly)
    ]
    return Report("artist", "a1", "Lin", "Asia/Shanghai", now - timedelta(days=7), now, grants, [], [])


WEEKS = [("2026-11-09", 3, 0), ("2026-11-16", 0, 2), ("2026-11-23", 5, 1)]


async def test_charts_of_a_burst_share_one_child_process_that_exits_when_idle() -> None:
    charts = ChartDrawer(idle=0.01)
    try:
        first = await charts.draw(_report_with(WEEKS))
        child = charts._child
        second = await charts.draw(_report_with(WEEKS, WEEKS))
        assert child is not None and charts._child is child and charts.children_started == 1
        assert await child.wait() == 0  # idle: told to exit, and it does, cleanly
        assert charts._child is None
        third = await charts.draw(_report_with(WEEKS))
        assert charts.children_started == 2
        for png in (first, second, third):
            assert Image.open(io.BytesIO(png)).format == "PNG"
    finally:
        await charts.close()


async def test_a_chart_that_cannot_be_drawn_is_an_error_and_the_next_one_is_drawn() -> None:
    charts = ChartDrawer()
    try:
        with pytest.raises(ChartError, match="ValueError"):
            await charts.draw(_report_with(WEEKS, WEEKS[:2]))  # weeks of unequal length
        png = await charts.draw(_report_with(WEEKS))
        assert Image.open(io.BytesIO(png)).format == "PNG" and charts.children_started == 1
    finally:
        await charts.close()


async def test_a_chart_process_that_died_while_idle_is_replaced_without_an_error() -> None:
    charts = ChartDrawer()
    try:
        await charts.draw(_report_with(WEEKS))
        child = charts._child
        assert child is not None
        child.kill()
        await child.wait()
        png = await charts.draw(_report_with(WEEKS))
        assert Image.open(io.BytesIO(png)).format == "PNG" and charts.children_started == 2
    finally:
        await charts.close()


async def test_the_usage_csv_of_a_big_week_is_spooled_to_disk_not_held_in_memory(
    desk: Desk, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reports, "CSV_IN_MEMORY", 4096)
    parties = await make_parties(desk)
    submitted = await submit(desk, parties, starts_at=clock.now().isoformat())
    grant = (await approve(desk, submitted.view.request.id, parties.artist())).view.grant
    assert grant is not None
    for _ in range(300):
        await workflow.record_usage(
            desk, creator_id=parties.creator_id, grant_id=grant.id, usage=stated(UsageKind.render)
        )
    report = await build_report(desk, artist_id=parties.artist_id)
    with await usage_csv(desk, report) as table:
        assert table._rolled  # type: ignore[attr-defined]  # past the limit: a real file on disk
        rows = list(csv.DictReader(io.StringIO(table.read().decode())))
    assert len(rows) == 300 and {r["kind"] for r in rows} == {"render"}


def test_the_chart_speaks_the_artists_language_and_english_on_the_board() -> None:
    report = _report_with(WEEKS)
    chinese = chart_spec(report, texts.chart_labels(Language.zh_hans, report))
    assert (chinese["title"], chinese["x_label"], chinese["y_label"], chinese["violations_label"]) == (
        "肖像每周使用次数：Lin",
        "每周起始日（Asia/Shanghai）",
        "使用次数",
        "违规",
    )
    english = chart_spec(report)  # the agency's board in Slack
    assert english["title"] == "Likeness uses per week: Lin"
    assert english["x_label"] == "week starting (Asia/Shanghai)"
    assert english["weeks"] == ["2026-11-09", "2026-11-16", "2026-11-23"]
    assert english["grants"] == [{"label": "Project 0", "uses": [3, 0, 5], "violations": [0, 2, 1]}]


def test_a_chart_process_whose_parent_went_away_exits_quietly() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "bot.chart"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None and child.stderr is not None
    child.stdout.close()  # the service was killed: nobody will read the answer
    spec = json.dumps(chart_spec(_report_with(WEEKS))).encode()
    child.stdin.write(chart.HEADER.pack(len(spec)) + spec)
    child.stdin.close()
    assert child.wait(timeout=60) == 0
    assert child.stderr.read() == b""  # nothing for the service's log: no traceback, no warning


async def test_reports_list_violations_with_the_terms_they_broke(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk)
    submitted = await submit(desk, parties, starts_at=clock.now().isoformat())
    grant = (await approve(desk, submitted.view.request.id, parties.artist())).view.grant
    assert grant is not None
    clock.advance(timedelta(minutes=1))
    for use in (
        stated(UsageKind.train, 2),  # no AI training in the factory terms
        stated(UsageKind.publish, 1, media="game", territory=["US"]),
        stated(UsageKind.render, 5),  # inside every term
        stated(UsageKind.fine_tune, 1),
    ):
        await workflow.record_usage(desk, creator_id=parties.creator_id, grant_id=grant.id, usage=use)
        clock.advance(timedelta(seconds=1))

    report = await build_report(desk, artist_id=parties.artist_id)
    [usage] = report.grants
    assert usage.violations == 4 and usage.uses_by_kind == {"render": 5}
    assert usage.reasons == {"ai_training_not_granted": 3, "media_not_granted": 1, "territory_not_granted": 1}

    english = texts.report_text(Language.en, report)
    assert "4 uses outside the consent: AI training was not part of your consent (3)" in english
    assert "this territory is outside the ones you approved (1)" in english
    chinese = texts.report_text(Language.zh_hans, report)
    assert "你的授权不包括 AI 训练 (3)" in chinese
    agency = await build_report(desk, agency_id=parties.agency_id)
    comment = board.report_comment(agency)
    assert (
        "*4 violation(s)*: AI training was not granted (3); the medium is not among those granted (1)"
        in comment
    )

    with await usage_csv(desk, report) as table:
        rows = list(csv.DictReader(io.StringIO(table.read().decode())))
    flagged = [r for r in rows if r["violation"] == "yes"]
    assert [r["reasons"] for r in flagged] == [
        "ai_training_not_granted",
        "media_not_granted territory_not_granted",
        "ai_training_not_granted",
    ]
    assert all(r["violation_id"].startswith("vio_") for r in flagged)
    assert flagged[1]["media"] == "game" and flagged[1]["territory"] == "US"
    assert [r["violation_id"] for r in rows if r["violation"] == "no"] == [""]
