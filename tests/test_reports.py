"""Usage reports: content, the chart is a real PNG, the CSV parses, weeks follow the recipient's zone."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from PIL import Image

from bot import workflow
from bot.clock import FrozenClock
from bot.models import UsageIn, UsageKind
from bot.reports import _week_starts, build_report, chart_png, usage_csv
from bot.workflow import Desk
from tests.factories import make_parties, submit
from tests.test_workflow import approve


async def test_report_counts_uses_by_grant_and_kind_and_marks_violations(
    desk: Desk, clock: FrozenClock
) -> None:
    parties = await make_parties(desk)
    used = await submit(
        desk,
        parties,
        starts_at=clock.now().isoformat(),
        ends_at=(clock.now() + timedelta(days=5)).isoformat(),
    )
    grant = (await approve(desk, used.view.request.id, parties.artist())).view.grant
    assert grant is not None
    waiting = await submit(desk, parties, project_title="Still Waiting")
    for kind, count in [(UsageKind.render, 3), (UsageKind.render, 2), (UsageKind.publish, 1)]:
        await workflow.record_usage(
            desk, creator_id=parties.creator_id, grant_id=grant.id, usage=UsageIn(kind=kind, count=count)
        )
    await workflow.revoke_grant(desk, grant_id=grant.id, actor=parties.artist())
    clock.advance(timedelta(minutes=1))
    await workflow.record_usage(
        desk, creator_id=parties.creator_id, grant_id=grant.id, usage=UsageIn(kind=UsageKind.train, count=4)
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

    png = chart_png(report)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (800, 400)

    rows = list(csv.DictReader(io.StringIO((await usage_csv(desk, agency_report)).decode())))
    assert len(rows) == 4
    assert sorted(r["violation"] for r in rows) == ["no", "no", "no", "yes"]
    assert {r["project_title"] for r in rows} == {"Moonlight Drama S2"}


async def test_report_lists_grants_expiring_within_a_week(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk)
    soon = await submit(
        desk,
        parties,
        starts_at=clock.now().isoformat(),
        ends_at=(clock.now() + timedelta(days=3)).isoformat(),
    )
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
