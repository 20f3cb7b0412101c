"""The public grant page at /g/{id}: one plain sentence for a person, in Chinese or English.

Every value from the database is escaped; the page has no script and a CSP that allows none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from babel.dates import format_datetime

from bot.models import GrantStatus, Language

_TEXTS: dict[Language, dict[str, str]] = {
    Language.en: {
        "title": "Likeness consent check",
        "active": "Allowed today: {artist} has consented to this use by {creator}.",
        "scheduled": "Not allowed yet: {artist}'s consent to {creator} starts on {starts}.",
        "paused": "Not allowed today: {artist} has paused this consent.",
        "revoked": "Not allowed: {artist} has withdrawn this consent.",
        "expired": "Not allowed any more: {artist}'s consent to {creator} ended on {ends}.",
        "project": "Project",
        "window": "Consent window",
        "ai_training": "AI training allowed",
        "yes": "yes",
        "no": "no",
        "checked": "Checked",
        "grant": "Grant",
        "terms_hash": "Terms hash",
        "proof": "Signed statement (JSON, verify with the public keys)",
        "missing": "There is no consent with this id. A use that claims it is not covered.",
        "outputs": "Outputs the artist released",
    },
    Language.zh_hans: {
        "title": "肖像授权查询",
        "active": "今天允许使用：{artist} 已同意 {creator} 的这项使用。",
        "scheduled": "尚未允许：{artist} 对 {creator} 的授权自 {starts} 起生效。",
        "paused": "今天不允许使用：{artist} 已暂停这项授权。",
        "revoked": "不允许使用：{artist} 已撤回这项授权。",
        "expired": "不再允许使用：{artist} 对 {creator} 的授权已于 {ends} 结束。",
        "project": "项目",
        "window": "授权期限",
        "ai_training": "允许用于 AI 训练",
        "yes": "是",
        "no": "否",
        "checked": "查询时间",
        "grant": "授权编号",
        "terms_hash": "条款哈希",
        "proof": "签名声明（JSON，可用公钥验证）",
        "missing": "没有这个编号的授权。声称依据它的使用不在授权范围内。",
        "outputs": "艺人已放行的生成内容",
    },
}

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}"
    ".verdict{font-size:1.25rem;padding:1rem;border-radius:.5rem}"
    ".allowed{background:#e6f4ea}.refused{background:#fde8e8}"
    "dt{font-weight:600;margin-top:.5rem}code{word-break:break-all}"
)
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def choose_language(query_lang: str | None, accept_language: str | None) -> Language:
    """`?lang=` when it names one we have, else the first Accept-Language we have, else English."""
    for candidate in [query_lang or "", *(accept_language or "").split(",")]:
        tag = candidate.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return Language.zh_hans
        if tag.startswith("en"):
            return Language.en
    return Language.en


def _day(value: str, language: Language) -> str:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    locale = "zh_Hans_CN" if language is Language.zh_hans else "en_GB"
    return format_datetime(moment, "yyyy-MM-dd HH:mm 'UTC'", tzinfo=moment.tzinfo, locale=locale)


def _page(language: Language, title: str, body: str) -> str:
    lang = "zh-Hans" if language is Language.zh_hans else "en"
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def grant_page(
    status: dict[str, Any], language: Language, json_url: str, *, released: Sequence[str] = ()
) -> str:
    """The page for a grant's public status (the JSON of GET /public/grants/{id}), linking the
    outputs the artist released under it (by SHA-256) to their public check."""
    words = _TEXTS[language]
    state = GrantStatus(status["status"])
    verdict = words[state.value].format(
        artist=escape(status["artist"]["name"]),
        creator=escape(status["creator"]["name"]),
        starts=escape(_day(status["starts_at"], language)),
        ends=escape(_day(status["ends_at"], language)),
    )
    css = "allowed" if state is GrantStatus.active else "refused"
    rows = [
        (words["project"], escape(status["project_title"])),
        (
            words["window"],
            f"{escape(_day(status['starts_at'], language))} – {escape(_day(status['ends_at'], language))}",
        ),
        (words["ai_training"], words["yes"] if status["ai_training"] else words["no"]),
        (words["checked"], escape(_day(status["checked_at"], language))),
        (words["grant"], f"<code>{escape(status['id'])}</code>"),
        (words["terms_hash"], f"<code>{escape(status['terms_hash'])}</code>"),
    ]
    if released:
        links = "<br>".join(
            f'<a href="/public/outputs/{escape(sha)}" rel="nofollow"><code>{escape(sha)}</code></a>'
            for sha in released
        )
        rows.append((words["outputs"], links))
    details = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows)
    body = (
        f'<p class="verdict {css}" id="verdict" data-status="{escape(state.value)}">{verdict}</p>'
        f"<dl>{details}</dl>"
        f'<p><a href="{escape(json_url)}" rel="nofollow">{escape(words["proof"])}</a></p>'
    )
    return _page(language, words["title"], body)


def missing_page(language: Language) -> str:
    """The page for an id that names no grant."""
    words = _TEXTS[language]
    return _page(
        language,
        words["title"],
        f'<p class="verdict refused" id="verdict" data-status="unknown">{escape(words["missing"])}</p>',
    )
