"""The weekly usage report as a Telegram reader gets it: the message, the chart's words, its caption."""

from __future__ import annotations

from bot.models import Language
from bot.render.telegram import MAX_TEXT
from bot.render.words import N_, Voice, esc, plain_length, reason_on_card
from bot.report_types import Report

_USAGE_KIND = {
    "render": N_("renders"),
    "publish": N_("publications"),
    "train": N_("training runs"),
    "fine_tune": N_("fine-tuning runs"),
    "distribute": N_("distributions"),
    "other": N_("other uses"),
}


def report_text(language: Language, report: Report) -> str:
    """The weekly usage report as a chat message (the chart follows as a photo)."""
    v = Voice(language, report.timezone)
    lines = [
        v._(
            "📊 <b>Usage report</b> %(start)s – %(end)s",
            start=v.day(report.period_start),
            end=v.day(report.period_end),
        ),
        v._(
            "Uses: %(uses)s · Violations: %(violations)s",
            uses=report.total_uses,
            violations=report.total_violations,
        ),
        "",
    ]
    tail: list[str] = []
    if report.pending:
        tail += ["", v._("Waiting for your decision: %(count)s (see /pending)", count=len(report.pending))]
    for item in report.expiring_soon[:10]:
        tail.append(
            v._("⏳ “%(title)s” ends on %(when)s", title=item.project_title, when=v.day(item.ends_at))
        )
    budget = MAX_TEXT - plain_length("\n".join(lines + tail)) - 100
    for number, grant in enumerate(report.grants):
        kinds = v.listing(
            f"{v.number(count)} {v.label(_USAGE_KIND.get(kind, N_('other uses')))}"
            for kind, count in grant.uses_by_kind.items()
        )
        title = esc(grant.project_title or grant.grant_id)
        used = esc(kinds) if kinds else v._("no use")
        line = f"• <b>{title}</b>: {used}"
        if grant.violations:
            line += " " + v._("⚠️ %(count)s uses outside the consent", count=grant.violations)
            broken = (f"{v.label(reason_on_card(code))} ({n})" for code, n in grant.reasons.items())
            line += (": " + esc(v.listing(broken))) if grant.reasons else ""
        budget -= plain_length(line) + 1
        if budget < 0:
            # A long report keeps its totals; the chart and /grants show the rest.
            lines.append(v._("… and %(count)s more", count=len(report.grants) - number))
            break
        lines.append(line)
    if not report.grants:
        lines.append(v._("No consents were used this week."))
    return "\n".join(lines + tail)


def chart_labels(language: Language, report: Report) -> dict[str, str]:
    """The words on the report's chart, in the reader's language (the chart draws them as given)."""
    v = Voice(language)
    return {
        "title": v.label(N_("Likeness uses per week: %(name)s")) % {"name": report.recipient_name},
        "x_label": v.label(N_("week starting (%(zone)s)")) % {"zone": report.timezone},
        "y_label": v.label(N_("uses")),
        "violations_label": v.label(N_("violations")),
    }


def report_caption(language: Language) -> str:
    """The caption of the report's chart."""
    return Voice(language)._("Uses per week (violations in red)")
