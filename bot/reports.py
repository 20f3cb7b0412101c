"""Usage reports: what each artist and agency is told weekly (data, chart PNG, CSV).

The text around a report is rendered by the channel's renderer (bot/notices.py for Telegram,
bot/board.py for Slack) from the `Report` built here.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.models import OPEN_STATUSES, GrantStatus, utc_iso
from bot.workflow import Desk, NotFound, grant_status_at
from storage.tables import Agency, Artist, Grant, Request, UsageEvent


@dataclass(frozen=True)
class GrantUsage:
    """How one grant was used during the report's period (and in the weeks before, for the chart)."""

    grant_id: str
    request_id: str
    project_title: str
    artist_name: str
    status: str
    uses_by_kind: dict[str, int]
    violations: int
    # (week start as YYYY-MM-DD in the recipient's time zone, uses, violations), oldest first.
    weekly: list[tuple[str, int, int]] = field(default_factory=list)


@dataclass(frozen=True)
class PendingItem:
    """A request still waiting for a decision."""

    request_id: str
    project_title: str
    artist_name: str
    due_at: datetime


@dataclass(frozen=True)
class ExpiringItem:
    """A grant that ends soon."""

    grant_id: str
    project_title: str
    artist_name: str
    ends_at: datetime


@dataclass(frozen=True)
class Report:
    """One recipient's usage report."""

    recipient_kind: str
    recipient_id: str
    recipient_name: str
    timezone: str
    period_start: datetime
    period_end: datetime
    grants: list[GrantUsage]
    pending: list[PendingItem]
    expiring_soon: list[ExpiringItem]

    @property
    def total_uses(self) -> int:
        """Uses of all grants in the period."""
        return sum(sum(g.uses_by_kind.values()) for g in self.grants)

    @property
    def total_violations(self) -> int:
        """Violations in the period."""
        return sum(g.violations for g in self.grants)


WEEKS_IN_CHART = 8
EXPIRING_WITHIN = timedelta(days=7)
_OPEN = [s.value for s in OPEN_STATUSES]


def _week_starts(now: datetime, timezone: str, weeks: int) -> list[datetime]:
    """Monday 00:00 in the recipient's time zone for the last `weeks` weeks, oldest first, as UTC."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    monday = datetime.combine(local.date() - timedelta(days=local.weekday()), time(0), tzinfo=zone)
    return [(monday - timedelta(weeks=i)).astimezone(UTC) for i in reversed(range(weeks))]


async def build_report(desk: Desk, *, artist_id: str | None = None, agency_id: str | None = None) -> Report:
    """Builds the usage report for one artist or one agency's roster over the last 7 days."""
    if (artist_id is None) == (agency_id is None):
        raise ValueError("give exactly one of artist_id or agency_id")
    now = desk.clock.now()
    async with desk.db.read() as session:
        if artist_id is not None:
            artist = await session.get(Artist, artist_id)
            if artist is None:
                raise NotFound(f"no artist {artist_id}")
            kind, rid, name, timezone = "artist", artist.id, artist.name, artist.timezone
            artist_ids = [artist.id]
        else:
            agency = await session.get(Agency, agency_id)
            if agency is None:
                raise NotFound(f"no agency {agency_id}")
            kind, rid, name, timezone = "agency", agency.id, agency.name, agency.timezone
            artist_ids = list(
                (await session.execute(select(Artist.id).where(Artist.agency_id == agency.id))).scalars()
            )
        name_rows = await session.execute(select(Artist.id, Artist.name).where(Artist.id.in_(artist_ids)))
        names = {artist: artist_name for artist, artist_name in name_rows.tuples()}
        period_start = now - timedelta(days=7)
        week_starts = _week_starts(now, timezone, WEEKS_IN_CHART)
        boundaries = [*week_starts, now + timedelta(microseconds=1)]  # include what happened just now
        # One grouped query per week: portable across SQLite and PostgreSQL and served by the
        # (artist_id, occurred_at) index, so a million events never come into memory.
        weekly: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
        for index, (start, end) in enumerate(itertools.pairwise(boundaries)):
            rows = await session.execute(
                select(UsageEvent.grant_id, UsageEvent.violation, func.sum(UsageEvent.count))
                .where(
                    UsageEvent.artist_id.in_(artist_ids),
                    UsageEvent.occurred_at >= start,
                    UsageEvent.occurred_at < end,
                )
                .group_by(UsageEvent.grant_id, UsageEvent.violation)
            )
            for grant_id, violation, total in rows.tuples():
                uses, violations = weekly[grant_id].get(index, (0, 0))
                if violation:
                    violations += int(total)
                else:
                    uses += int(total)
                weekly[grant_id][index] = (uses, violations)
        by_kind_rows = await session.execute(
            select(UsageEvent.grant_id, UsageEvent.kind, UsageEvent.violation, func.sum(UsageEvent.count))
            .where(UsageEvent.artist_id.in_(artist_ids), UsageEvent.occurred_at >= period_start)
            .group_by(UsageEvent.grant_id, UsageEvent.kind, UsageEvent.violation)
        )
        by_kind: dict[str, dict[str, int]] = defaultdict(dict)
        violations_in_period: dict[str, int] = defaultdict(int)
        for grant_id, usage_kind, violation, total in by_kind_rows.tuples():
            if violation:
                violations_in_period[grant_id] += int(total)
            else:
                by_kind[grant_id][usage_kind] = by_kind[grant_id].get(usage_kind, 0) + int(total)
        live = [GrantStatus.active.value, GrantStatus.scheduled.value]
        grants = list(
            (
                await session.execute(
                    select(Grant, Request.terms["project_title"].as_string())
                    .join(Request, Request.id == Grant.request_id)
                    .where(
                        Grant.artist_id.in_(artist_ids),
                        (Grant.status.in_(live)) | (Grant.id.in_(list(weekly))),
                    )
                    .order_by(Grant.ends_at)
                )
            ).tuples()
        )
        pending_rows = (
            await session.execute(
                select(
                    Request.id,
                    Request.terms["project_title"].as_string(),
                    Request.artist_id,
                    Request.decision_due_at,
                )
                .where(Request.artist_id.in_(artist_ids), Request.status.in_(_OPEN))
                .order_by(Request.decision_due_at)
            )
        ).tuples()
        pending = [PendingItem(r, title or "", names.get(a, a), due) for r, title, a, due in pending_rows]
    usages = [
        GrantUsage(
            grant_id=grant.id,
            request_id=grant.request_id,
            project_title=title or "",
            artist_name=names.get(grant.artist_id, grant.artist_id),
            status=grant_status_at(grant, now).value,
            uses_by_kind=dict(sorted(by_kind.get(grant.id, {}).items())),
            violations=violations_in_period.get(grant.id, 0),
            weekly=[
                (start.astimezone(ZoneInfo(timezone)).date().isoformat(), *weekly[grant.id].get(i, (0, 0)))
                for i, start in enumerate(week_starts)
            ],
        )
        for grant, title in grants
    ]
    expiring = [
        ExpiringItem(g.grant_id, g.project_title, g.artist_name, grant.ends_at)
        for g, (grant, _) in zip(usages, grants, strict=True)
        if g.status in live and grant.ends_at - now <= EXPIRING_WITHIN
    ]
    return Report(kind, rid, name, timezone, period_start, now, usages, pending, expiring)


def chart_png(report: Report) -> bytes:
    """A PNG bar chart of uses per week per grant, violations marked in red (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    # Names are often Chinese: use a CJK font where one is installed, DejaVu (Latin) otherwise.
    matplotlib.rcParams["font.sans-serif"] = [
        "Noto Sans CJK SC",
        "WenQuanYi Micro Hei",
        "WenQuanYi Zen Hei",
        "Source Han Sans SC",
        "DejaVu Sans",
    ]
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4), dpi=100)
    axes = figure.subplots()
    weeks = [w for w, _, _ in report.grants[0].weekly] if report.grants else []
    positions = list(range(len(weeks)))
    shown = sorted(report.grants, key=lambda g: -sum(u for _, u, _ in g.weekly))[:8]
    bottoms = [0] * len(weeks)
    colours = pyplot.get_cmap("tab10")
    for number, grant in enumerate(shown):
        values = [u for _, u, _ in grant.weekly]
        axes.bar(
            positions,
            values,
            bottom=bottoms,
            label=grant.project_title[:30] or grant.grant_id,
            color=colours(number),
        )
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    violations = [sum(g.weekly[i][2] for g in report.grants) for i in range(len(weeks))]
    flagged = [(p, b, v) for p, b, v in zip(positions, bottoms, violations, strict=True) if v]
    if flagged:
        axes.scatter(
            [p for p, _, _ in flagged],
            [b + 0.5 for _, b, _ in flagged],
            marker="x",
            color="red",
            s=80,
            label="violations",
        )
        for p, b, v in flagged:
            axes.annotate(
                str(v), (p, b + 0.5), textcoords="offset points", xytext=(0, 6), ha="center", color="red"
            )
    axes.set_xticks(positions, [w[5:] for w in weeks])
    axes.set_xlabel(f"week starting ({report.timezone})")
    axes.set_ylabel("uses")
    axes.set_title(f"Likeness uses per week: {report.recipient_name}")
    if shown or flagged:
        axes.legend(fontsize="small", loc="upper left")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


async def usage_csv(desk: Desk, report: Report) -> bytes:
    """Every usage event and violation of the report's period for its artists, as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "occurred_at",
            "received_at",
            "grant_id",
            "request_id",
            "project_title",
            "artist",
            "kind",
            "count",
            "violation",
            "grant_status",
        ]
    )
    titles = {g.grant_id: (g.request_id, g.project_title, g.artist_name) for g in report.grants}
    async with desk.db.read() as session:
        if report.recipient_kind == "artist":
            artist_ids = [report.recipient_id]
        else:
            artist_ids = list(
                (
                    await session.execute(select(Artist.id).where(Artist.agency_id == report.recipient_id))
                ).scalars()
            )
        result = await session.stream(
            select(UsageEvent)
            .where(
                UsageEvent.artist_id.in_(artist_ids),
                UsageEvent.occurred_at >= report.period_start,
                UsageEvent.occurred_at <= report.period_end,
            )
            .order_by(UsageEvent.occurred_at, UsageEvent.id)
            .execution_options(yield_per=2000)
        )
        async for event in result.scalars():
            request_id, title, artist = titles.get(event.grant_id, ("", "", event.artist_id))
            writer.writerow(
                [
                    utc_iso(event.occurred_at),
                    utc_iso(event.received_at),
                    event.grant_id,
                    request_id,
                    title,
                    artist,
                    event.kind,
                    event.count,
                    "yes" if event.violation else "no",
                    event.grant_status,
                ]
            )
    return buffer.getvalue().encode("utf-8")
