"""Usage reports: what each artist and agency is told weekly (data, chart PNG, CSV).

The text around a report is rendered by the channel's renderer (bot/render/telegram.py for
Telegram, bot/render/slack.py for Slack) from the `Report` (bot/report_types.py) built here.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import itertools
import json
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from subprocess import PIPE
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import chart
from bot.models import OPEN_STATUSES, GrantStatus, ViolationReason, utc_iso
from bot.report_types import ExpiringItem, GrantUsage, PendingItem, Report
from bot.workflow import Desk, NotFound, grant_status_at
from storage.checkpoints import latest_checkpoint
from storage.tables import Agency, Artist, Grant, Request, UsageEvent

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
        reasons = await _reasons_in_period(session, artist_ids, period_start)
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
        latest = await latest_checkpoint(session) if kind == "agency" else None
    usages = [
        GrantUsage(
            grant_id=grant.id,
            request_id=grant.request_id,
            project_title=title or "",
            artist_name=names.get(grant.artist_id, grant.artist_id),
            status=grant_status_at(grant, now).value,
            uses_by_kind=dict(sorted(by_kind.get(grant.id, {}).items())),
            violations=violations_in_period.get(grant.id, 0),
            reasons=reasons.get(grant.id, {}),
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
    checkpoint = latest.document if latest is not None else None
    return Report(kind, rid, name, timezone, period_start, now, usages, pending, expiring, checkpoint)


async def _reasons_in_period(
    session: AsyncSession, artist_ids: list[str], since: datetime
) -> dict[str, dict[str, int]]:
    """Per grant, the terms its violations broke since `since` (reason code → uses), in the
    judge's order; a violation stored before uses were judged term by term was about the window."""
    found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    rows = await session.stream(
        select(UsageEvent.grant_id, UsageEvent.reasons, UsageEvent.count)
        .where(
            UsageEvent.artist_id.in_(artist_ids),
            UsageEvent.occurred_at >= since,
            UsageEvent.violation.is_(True),
        )
        .execution_options(yield_per=2000)
    )
    async for grant_id, codes, count in rows:
        for code in codes or [ViolationReason.grant_not_active.value]:
            found[grant_id][str(code)] += int(count)
    order = list(ViolationReason)
    return {
        grant: dict(sorted(counts.items(), key=lambda item: _rank(order, item[0])))
        for grant, counts in found.items()
    }


def _rank(order: list[ViolationReason], code: str) -> int:
    return next((i for i, reason in enumerate(order) if reason.value == code), len(order))


def chart_spec(report: Report, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """What `bot.chart.draw` needs to draw the report's chart: plain JSON, no matplotlib here.

    `labels` are the chart's words in the reader's language (`render.telegram.chart_labels`); without
    them the chart is in English (the agencies' Slack board).
    """
    return {
        "title": f"Likeness uses per week: {report.recipient_name}",
        "x_label": f"week starting ({report.timezone})",
        "y_label": "uses",
        "violations_label": "violations",
        **(labels or {}),
        "weeks": [w for w, _, _ in report.grants[0].weekly] if report.grants else [],
        "grants": [
            {
                "label": g.project_title[:30] or g.grant_id,
                "uses": [u for _, u, _ in g.weekly],
                "violations": [v for _, _, v in g.weekly],
            }
            for g in report.grants
        ],
    }


class ChartError(Exception):
    """The chart could not be drawn (the child process failed, hung or refused the spec)."""


class ChartDrawer:
    """Draws report charts in a child process, so matplotlib (about 50 MiB) never enters this one.

    One child (`python -m bot.chart`) is started when a chart is wanted, draws the charts of a
    weekly burst one after another, and is told to exit after `idle` seconds without a chart.
    A child that fails, hangs past `timeout` or is interrupted mid-chart is killed; the next
    chart starts a fresh one.
    """

    def __init__(self, *, idle: float = 30.0, timeout: float = 60.0) -> None:
        """Nothing starts until the first `draw`."""
        self.idle = idle
        self.timeout = timeout
        self.children_started = 0
        self._child: asyncio.subprocess.Process | None = None
        self._lock: asyncio.Lock | None = None
        self._idle_close: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def draw(self, report: Report, labels: dict[str, str] | None = None) -> bytes:
        """The report's chart as PNG bytes (`labels` as in `chart_spec`); raises ChartError if it
        cannot be drawn."""
        payload = json.dumps(chart_spec(report, labels)).encode()
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._idle_close is not None:
                self._idle_close.cancel()
                self._idle_close = None
            while True:
                reused = self._child is not None and self._child.returncode is None
                try:
                    status, body = await self._ask(payload)
                    break
                except BaseException as error:
                    # Half a conversation leaves the pipe out of step: this child is done for.
                    self._kill()
                    if reused and isinstance(error, (OSError, asyncio.IncompleteReadError)):
                        continue  # the idle child had died meanwhile: once more with a fresh one
                    if isinstance(error, Exception):
                        raise ChartError(f"the chart process failed: {error!r}") from None
                    raise
            self._idle_close = asyncio.get_running_loop().call_later(self.idle, self._close_when_idle)
        if status != chart.OK:
            raise ChartError(body.decode(errors="replace"))
        return body

    async def close(self) -> None:
        """Lets the child finish and exit (the service is stopping)."""
        if self._idle_close is not None:
            self._idle_close.cancel()
            self._idle_close = None
        child, self._child = self._child, None
        if child is not None:
            await self._end(child)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _ask(self, payload: bytes) -> tuple[int, bytes]:
        if self._child is None or self._child.returncode is not None:
            self._child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.chart", stdin=PIPE, stdout=PIPE
            )
            self.children_started += 1
        child = self._child
        assert child.stdin is not None and child.stdout is not None
        async with asyncio.timeout(self.timeout):
            child.stdin.write(chart.HEADER.pack(len(payload)) + payload)
            await child.stdin.drain()
            head = await child.stdout.readexactly(1 + chart.HEADER.size)
            (size,) = chart.HEADER.unpack(head[1:])
            return head[0], await child.stdout.readexactly(size)

    def _close_when_idle(self) -> None:
        self._idle_close = None
        child, self._child = self._child, None
        if child is not None:
            task = asyncio.get_running_loop().create_task(self._end(child))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def _end(self, child: asyncio.subprocess.Process) -> None:
        if child.stdin is not None:
            child.stdin.close()  # end of input: the child leaves its loop and exits
        try:
            async with asyncio.timeout(5):
                await child.wait()
        except TimeoutError:
            self._signal(child)
            await child.wait()

    def _kill(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            self._signal(child)
            if child.stdin is not None:
                child.stdin.close()

    @staticmethod
    def _signal(child: asyncio.subprocess.Process) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.kill()


CSV_IN_MEMORY = 1 << 20  # a bigger CSV goes to a temporary file while it is written


async def usage_csv(desk: Desk, report: Report) -> IO[bytes]:
    """Every usage event and violation of the report's period for its artists, as a CSV file.

    The file (UTF-8, read from the start) is spooled to disk past 1 MiB, so a week of a million
    events is never held as text in memory; the caller closes it.
    """
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=CSV_IN_MEMORY)
    try:
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="", write_through=True)
        await _write_usage_rows(desk, report, csv.writer(text))
        text.detach()  # hand the spool back without closing it
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


async def _write_usage_rows(desk: Desk, report: Report, writer: Any) -> None:
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
            "media",
            "territory",
            "likeness",
            "violation_id",
            "reasons",
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
            select(
                UsageEvent.occurred_at,
                UsageEvent.received_at,
                UsageEvent.grant_id,
                UsageEvent.artist_id,
                UsageEvent.kind,
                UsageEvent.count,
                UsageEvent.violation,
                UsageEvent.grant_status,
                UsageEvent.media,
                UsageEvent.territory,
                UsageEvent.likeness,
                UsageEvent.violation_id,
                UsageEvent.reasons,
            )
            .where(
                UsageEvent.artist_id.in_(artist_ids),
                UsageEvent.occurred_at >= report.period_start,
                UsageEvent.occurred_at <= report.period_end,
            )
            .order_by(UsageEvent.occurred_at, UsageEvent.id)
            .execution_options(yield_per=2000)
        )
        async for row in result:
            occurred_at, received_at, grant_id, artist_id, kind, count, violation, status, *stated = row
            media, territory, likeness, violation_id, reasons = stated
            request_id, title, artist = titles.get(grant_id, ("", "", artist_id))
            if violation and not reasons:
                reasons = [ViolationReason.grant_not_active.value]  # judged on the window alone, then
            writer.writerow(
                [
                    utc_iso(occurred_at),
                    utc_iso(received_at),
                    grant_id,
                    request_id,
                    title,
                    artist,
                    kind,
                    count,
                    "yes" if violation else "no",
                    status,
                    media or "",
                    " ".join(territory or []),
                    " ".join(likeness or []),
                    violation_id or "",
                    " ".join(reasons or []),
                ]
            )
