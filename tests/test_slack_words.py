"""The Slack board's words: every text it can show has a Chinese translation with the same
placeholders and mrkdwn, and a zh-Hans agency reads each thread line, pause line, violation and
report in Chinese while an en agency reads English (rendered from requests the workflow made)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from babel.messages.extract import extract
from babel.messages.pofile import read_po

from bot import workflow
from bot.models import Language, Policy
from bot.render import slack as board
from bot.render import slack_answers as answers
from bot.render import slack_outputs, slack_pause, violations
from bot.render.words import LOCALE_DIR, Voice
from bot.report_types import ExpiringItem, GrantUsage, Report
from bot.workflow import Desk
from sandbox.factories import make_parties, submit
from storage.queries import RequestView, load_request_view

CHINESE = re.compile(r"[\u4e00-\u9fff]")
# The modules whose texts the Slack board shows (words.py holds the board's words for values).
SLACK_MODULES = (
    "slack.py",
    "slack_answers.py",
    "slack_outputs.py",
    "slack_pause.py",
    "slack_words.py",
    "violations.py",
    "words.py",
)
EVENTS: dict[str, dict[str, Any]] = {
    "request.approved": {
        "decided_by_name": "Li Wei",
        "channel": "telegram",
        "decided_at": "2026-11-25T09:00:00Z",
    },
    "request.awaiting_cosign": {"decided_by_name": "agent", "channel": "slack"},
    "request.denied": {"decided_by_name": "agent", "channel": "slack"},
    "request.lapsed": {},
    "request.withdrawn": {},
    "request.nudged": {"by": "U100"},
    "reminder.escalation": {"due_at": "2026-11-28T09:00:00Z"},
    "reminder.grant_expiry": {"ends_at": "2027-01-01T00:00:00Z"},
    "grant.active": {},
    "grant.expired": {},
    "grant.revoked": {"revoked_by": "agency", "by": "U100"},
    "grant.paused": {"paused_by": "artist", "reason": "休息"},
    "grant.resumed": {"resumed_by": "agency", "status": "active"},
    "artist.paused": {"paused_by": "agency"},
    "artist.resumed": {"resumed_by": "admin"},
    "deletion.escalation": {"due_at": "2026-12-01T00:00:00Z"},
    "deletion.confirmed": {"deleted_at": "2026-12-01T00:00:00Z"},
    "artist.updated": {},
}


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Rendering does not depend on the database; the workflow's own tests cover both."""
    return sqlite_url


async def view_of(desk: Desk, language: Language, policy: Policy = Policy.agency_may_decide) -> RequestView:
    parties = await make_parties(desk, policy=policy, agency_language=language)
    request_id = (await submit(desk, parties)).view.request.id
    async with desk.db.transaction() as session:
        view = await load_request_view(session, request_id)
    assert view is not None
    return view


def english_words(text: str) -> list[str]:
    """Words of English left in a text, leaving out names, ids, emoji codes, dates and code."""
    text = re.sub(
        r"`[^`]*`|<[^>]*>|:[a-z_]+:|Li Wei|agent|Dream Studio|Star Agency|Moonlight Drama S2", "", text
    )
    return [w for w in re.findall(r"[A-Za-z]{3,}", text) if w not in {"Telegram", "Slack", "API", "CLI"}]


def texts_of(blocks: Any) -> list[str]:
    """Every text a reader sees in Block Kit (the values of its "text" keys)."""
    if isinstance(blocks, list):
        return [t for b in blocks for t in texts_of(b)]
    if isinstance(blocks, dict):
        found = [blocks["text"]] if isinstance(blocks.get("text"), str) else []
        return found + [
            t for k, v in blocks.items() if k != "text" or not isinstance(v, str) for t in texts_of(v)
        ]
    return []


async def test_every_thread_line_of_a_chinese_agency_is_chinese(desk: Desk) -> None:
    view = await view_of(desk, Language.zh_hans)
    for event, extra in EVENTS.items():
        line = board.thread_reply(view, {"event": event} | extra)
        assert CHINESE.search(line) and not english_words(line), (event, line)
    english = await view_of(desk, Language.en)
    for event, extra in EVENTS.items():
        assert not CHINESE.search(board.thread_reply(english, {"event": event} | extra).replace("休息", ""))


async def test_a_chinese_agencys_violation_report_and_pause_answers_are_chinese(desk: Desk) -> None:
    view = await view_of(desk, Language.zh_hans)
    payload = {
        "violation_id": "vio_1",
        "usage_id": "use_1",
        "kind": "train",
        "count": 2,
        "media": "short_video",
        "territory": ["CN", "US"],
        "likeness": ["face", "voice"],
        "reasons": ["ai_training_not_granted", "territory_not_granted"],
        "grant_status": "active",
        "occurred_at": "2026-11-25T09:00:00Z",
    }
    reply = violations.board_reply(view, payload)
    assert reply.text.startswith(
        ":rotating_light: *违规：* Dream Studio 报告的使用：2× AI 训练 · 短视频 · 中国、美国"
    )
    assert not english_words(reply.text.replace("AI", "")), reply.text
    assert not english_words(" ".join(texts_of(reply.blocks)).replace("AI", "")), reply.blocks
    answer = slack_pause.command_answer("pause", "王芳", {"grt_1": "paused"}, view.agency)
    assert answer.startswith(":double_vertical_bar: 已暂停 *王芳* 的 1 项授权。")
    assert answers.help_text(view.agency).startswith("*在经纪公司看板频道中使用 `/likeness`：*")
    form = answers.deny_form(view, channel_id="C100", message_ts="1.2", terms_hash=view.request.terms_hash)
    assert form["title"]["text"] == "拒绝请求" and not english_words(" ".join(texts_of(form["blocks"])))
    lost = workflow.AlreadyDecided(
        "this request was already approved",
        decided_by="artist",
        decided_by_name="王芳",
        channel="telegram",
        decided_at="2026-11-25T09:00:00Z",
        status="approved",
    )
    assert answers.refusal_text(lost, view.agency).startswith(
        ":lock: 为时已晚：当前为 *已同意* — 由 *王芳*（艺人本人，在 Telegram 中）于 <!date^"
    )
    assert answers.refusal_text(lost).startswith(":lock: Too late: it is *approved* — decided by *王芳*")


async def test_a_chinese_agencys_board_dates_read_as_the_telegram_side_writes_them(desk: Desk) -> None:
    view = await view_of(desk, Language.zh_hans)
    assert view.agency is not None
    due = view.request.decision_due_at
    line = board.status_line(view)
    stand_in = re.search(r"<!date\^\d+\^[^|]+\|([^>]+)>", line)
    assert stand_in is not None
    assert stand_in.group(1) == Voice(Language.zh_hans, view.agency.timezone).when(due)


# ---------------------------------------------------------------- the catalogs


async def test_a_chinese_board_escapes_what_creators_and_operators_typed(desk: Desk) -> None:
    parties = await make_parties(desk, agency_language=Language.zh_hans)
    hostile = "<!channel> *bold* & <https://evil.example|点我>"
    request_id = (
        await submit(desk, parties, project_title=hostile, use_description=hostile * 2)
    ).view.request.id
    async with desk.db.transaction() as session:
        view = await load_request_view(session, request_id)
    assert view is not None
    message = board.root_message(view, agency_may=workflow.agency_outcomes(view))
    shown = message.text + " ".join(texts_of(message.blocks[1:]))
    assert "<!channel>" not in shown and "<https://evil" not in shown
    assert "&lt;!channel&gt;" in message.text and "&amp;" in message.text
    form = answers.deny_form(view, channel_id="C100", message_ts="1.2", terms_hash=view.request.terms_hash)
    assert "<!channel>" not in str(form["blocks"])
    notice = answers.member_notice(view.agency, {"event": "agency.member_added", "member": "<!here>"})
    assert "<!here>" not in notice and "&lt;!here&gt;" in notice


def test_a_chinese_agencys_report_comment_is_chinese() -> None:
    class Agency:
        language = "zh-Hans"
        timezone = "Asia/Shanghai"

    start = datetime(2026, 11, 16, tzinfo=UTC)
    report = Report(
        recipient_kind="agency",
        recipient_id="agy_1",
        recipient_name="星光经纪",
        timezone="Asia/Shanghai",
        period_start=start,
        period_end=start + timedelta(days=7),
        grants=[
            GrantUsage(
                grant_id="grt_1",
                request_id="req_1",
                project_title="夜色",
                artist_name="王芳",
                status="active",
                uses_by_kind={"render": 3},
                violations=1,
                reasons={"media_not_granted": 1},
            )
        ],
        pending=[],
        expiring_soon=[ExpiringItem("grt_1", "夜色", "王芳", start + timedelta(days=9))],
    )
    comment = answers.report_comment(report, Agency())
    assert comment.startswith(":bar_chart: *肖像使用报告 — 星光经纪*（<!date^")
    assert "使用：*3* · 违规：*1*" in comment
    assert "• 王芳 — 夜色 (生效中)：" in comment or "• 王芳 — 夜色 (生效中): " in comment
    assert "3× 生成" in comment and "该媒介不在授权范围内 (1)" in comment
    assert not english_words(comment), comment
    assert answers.report_comment(report).startswith(
        ":bar_chart: *Likeness usage report — 星光经纪* (<!date^"
    )


def _slack_texts() -> set[str]:
    found: set[str] = set()
    for name in SLACK_MODULES:
        with (LOCALE_DIR.parent / "render" / name).open("rb") as handle:
            found |= {str(m[1]) for m in extract("python", handle, keywords={"_": (1,), "N_": (1,)})}
    return found


def test_every_slack_text_has_a_chinese_translation_with_the_same_placeholders_and_markup() -> None:
    with (LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        chinese = {m.id: m for m in read_po(handle) if m.id}
    texts = _slack_texts()
    assert len(texts) > 150  # the board, its threads, forms and answers
    missing = sorted(t for t in texts if t not in chinese or not chinese[t].string or chinese[t].fuzzy)
    assert not missing, missing
    placeholders = re.compile(r"%\(\w+\)s")
    for text in texts:
        translated = str(chinese[text].string)
        assert sorted(placeholders.findall(text)) == sorted(placeholders.findall(translated)), text
        # Slack's mrkdwn must survive translation: bold, code, and anything in angle brackets.
        for mark in ("*", "`", "<", ">"):
            assert text.count(mark) == translated.count(mark), (mark, text)
        words = re.sub(r"`[^`]*`|%\(\w+\)s", "", text)
        if re.search(r"[A-Za-z]{3,}", words):  # a text with words in it reads Chinese
            assert CHINESE.search(translated), text


async def test_a_chinese_agencys_output_posts_and_answers_are_chinese(desk: Desk) -> None:
    view = await view_of(desk, Language.zh_hans)
    agency = view.agency
    due = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    comment = slack_outputs.output_comment(
        agency,
        artist="Li Wei",
        title="Moonlight Drama S2",
        description="A <b>poster</b>",
        sha256="ab" * 32,
        due_at=due,
    )
    assert "待放行的生成内容" in comment and "A &lt;b&gt;poster&lt;/b&gt;" in comment
    assert not english_words(comment.replace("A &lt;b&gt;poster&lt;/b&gt;", "").replace("SHA-256", "")), (
        comment
    )
    for may in (True, False):
        actions = slack_outputs.output_actions(agency, "out_1", agency_may_decide=may)
        assert all(not english_words(t) for t in texts_of(actions.blocks)), actions.blocks
    for payload, reason in (
        ({"status": "released", "by": "agency", "output_id": "out_1"}, None),
        ({"status": "rejected", "by": "system", "output_id": "out_1"}, None),
        ({"status": "rejected", "by": "artist", "output_id": "out_1"}, "<!channel> 不合适"),
    ):
        line = slack_outputs.output_outcome(agency, payload, reason)
        assert "<!channel>" not in line, line  # what the artist typed cannot ping the channel
        assert not english_words(line.replace("&lt;!channel&gt;", "")), line
    assert slack_outputs.click_answer(agency, release=True) == "已放行。"
    english = slack_outputs.output_actions(None, "out_1", agency_may_decide=True)
    assert "Release or reject this output" in english.text
