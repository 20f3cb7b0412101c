"""Each agency's board speaks its language: the root post, thread replies, the deny form,
ephemeral refusals and `/likeness` answers of a zh-Hans agency are Chinese, an en agency's are
English, all from the Babel catalogs; a change of an agency's members is said on its board.

Over real HTTP: `likeness serve` ↔ the Slack simulator, the parties made with the CLI."""

from __future__ import annotations

import re
from typing import Any

import pytest
import pytest_asyncio

from bot import workflow
from bot.models import Language, Policy
from tests.slack_fixtures import (
    AGENT,
    BOARD,
    PARTNER,
    STRANGER,
    SlackWorld,
    buttons,
    cli,
    module_world,
    status_text,
    value_of,
    wait_form,
    wait_root,
    wait_status,
    wait_thread,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

ZH_BOARD = "C0ZHBOARD"
CHINESE = re.compile(r"[\u4e00-\u9fff]")


world = module_world("slack_language")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def zh(world: SlackWorld) -> dict[str, str]:
    """A Chinese agency on its own board channel, with one member and an artist it may decide for."""
    world.sim.add_channel(ZH_BOARD, "xingguang-board")
    agency = await workflow.add_agency(
        world.desk,
        name="星光经纪",
        slack_channel_id=ZH_BOARD,
        slack_member_ids=[AGENT],
        language=Language.zh_hans,
        timezone="Asia/Shanghai",
    )
    artist = await workflow.add_artist(
        world.desk, name="王芳", agency_id=agency.id, policy=Policy.agency_may_decide
    )
    world.roster.names[artist.id] = "王芳"
    return {"agency": agency.id, "artist": artist.id}


def all_text(message: dict[str, Any]) -> str:
    """Every string in a message (text and blocks), to look for words in."""
    return str(message.get("text")) + " " + str(message.get("blocks"))


# ---------------------------------------------------------------- the board over HTTP


async def test_a_chinese_agencys_board_post_is_chinese_and_an_english_one_is_unchanged(
    world: SlackWorld, zh: dict[str, str]
) -> None:
    sim = world.sim
    chinese = await wait_root(sim, ZH_BOARD, await world.submit(zh["artist"], sensitive=["political"]))
    assert chinese["text"].startswith("王芳 的肖像请求：Moonlight Drama S2 — 待决定")
    assert status_text(chinese).startswith(":hourglass_flowing_sand: *等待 王芳 决定* — 截止 <!date^")
    shown = all_text(chinese)
    for words in (
        "*敏感内容：* *政治*",
        "*艺人*",
        "*制作方*",
        "中国、新加坡",
        "*决定期限*",
        "代为同意",
        "提醒艺人",
    ):
        assert words in shown, words
    assert "Waiting for" not in shown and "Approve" not in shown
    # The date token's stand-in text is the agency's locale and zone, as the Telegram side writes it.
    assert re.search(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|2\d{3}年\d+月\d+日", status_text(chinese))
    assert buttons(chinese) == ["board_approve", "board_deny", "board_nudge"]

    english = await wait_root(sim, BOARD, await world.submit(world.roster.delegated))
    assert status_text(english).startswith(
        ":hourglass_flowing_sand: *Waiting for Li Wei* — decide by <!date^"
    )
    assert "Approve on behalf" in all_text(english) and not CHINESE.search(all_text(english))


async def test_a_chinese_agencys_deny_form_and_thread_reply_are_chinese(
    world: SlackWorld, zh: dict[str, str]
) -> None:
    sim = world.sim
    request_id = await world.submit(zh["artist"], project_title="夜色")
    ts = (await wait_root(sim, ZH_BOARD, request_id))["ts"]

    await sim.click(AGENT, ZH_BOARD, ts, "board_deny")
    form = await wait_form(sim, request_id)
    view = form["view"]
    assert view["title"]["text"] == "拒绝请求" and view["submit"]["text"] == "拒绝"
    assert view["close"]["text"] == "取消"
    assert view["blocks"][0]["text"]["text"].startswith("代 *王芳* 拒绝 *夜色*。")
    assert view["blocks"][1]["label"]["text"] == "原因"

    # A reason with a hidden text-direction character is sent back to the form, in Chinese.
    await sim.submit_view(AGENT, form["id"], {"reason": "报酬\u202e太低"})
    [shown] = [v for v in sim.views() if v["id"] == form["id"]]
    assert shown["open"]
    assert shown["errors"]["reason"] == "原因的第 3 个字符是隐藏字符（U+202E）；请以纯文本重新输入。"
    assert await world.status(request_id) == "pending"

    await sim.submit_view(AGENT, form["id"], {"reason": "报酬太低"})
    denied = await wait_status(sim, ZH_BOARD, ts, "已拒绝")
    assert "理由：报酬太低" in status_text(denied)
    [reply] = await wait_thread(sim, ZH_BOARD, ts, 1)
    assert reply.startswith(":x: 已由 *kim.agent* 在 Slack 中拒绝")
    assert "理由：报酬太低" in reply


async def test_a_chinese_agencys_refusals_are_chinese(world: SlackWorld, zh: dict[str, str]) -> None:
    sim = world.sim
    request_id = await world.submit(zh["artist"], project_title="晨光")
    root = await wait_root(sim, ZH_BOARD, request_id)
    ts = root["ts"]

    # PARTNER is a member of the English agency only: on this board the workflow refuses them.
    seen = len(sim.ephemerals(user=PARTNER))
    await sim.click(PARTNER, ZH_BOARD, ts, "board_approve")
    refused = await sim.wait_for(lambda: sim.ephemerals(user=PARTNER)[seen:])
    assert refused[0]["text"] == ":no_entry: 未完成：你不是经纪公司登记的可操作成员。"

    await sim.click(AGENT, ZH_BOARD, ts, "board_approve")
    await wait_status(sim, ZH_BOARD, ts, "已同意")
    seen = len(sim.ephemerals(user=AGENT))
    # The Deny button of the message as it was before the approval: the race is lost.
    await sim.click(AGENT, ZH_BOARD, ts, "board_deny", value=value_of(root), block_id=f"board:{request_id}")
    late = await sim.wait_for(lambda: sim.ephemerals(user=AGENT)[seen:])
    assert late[0]["text"].startswith(
        ":lock: 为时已晚：当前为 *已同意* — 由 *kim.agent*（代表经纪公司，在 Slack 中）"
    )


async def test_likeness_answers_speak_the_agencys_language(world: SlackWorld, zh: dict[str, str]) -> None:
    sim = world.sim
    request_id = await world.submit(zh["artist"], project_title="春风")
    await wait_root(sim, ZH_BOARD, request_id)

    pending = await world.command("pending", channel=ZH_BOARD)
    assert pending.startswith("*星光经纪 有 ") and f"`{request_id}` *春风* — 王芳 · 截止 <!date^" in pending
    assert (await world.command("help", channel=ZH_BOARD)).startswith(
        "*在经纪公司看板频道中使用 `/likeness`：*"
    )
    assert "%(agency)s 的艺人没有请求" not in (
        nothing := await world.command("status req_x", channel=ZH_BOARD)
    )
    assert nothing == "星光经纪 的艺人没有请求 `req_x`。"
    assert await world.command(f"status {request_id}", channel=ZH_BOARD) == f"{request_id}: 待决定"
    assert (await world.command("pending", user=STRANGER, channel=ZH_BOARD)).startswith(
        ":no_entry: 只有 星光经纪 登记的成员"
    )
    assert "还" not in (unknown := await world.command("pause art_nobody", channel=ZH_BOARD))
    assert unknown == ":grey_question: 你的经纪公司名下没有艺人 `art_nobody`。"

    english = await world.command("pending", user=PARTNER)
    assert "waiting for a decision at Star Agency" in english or "Nothing is waiting" in english


async def test_a_member_change_is_said_on_the_agencys_board_in_its_language(
    world: SlackWorld, zh: dict[str, str]
) -> None:
    sim = world.sim
    added = await cli(world.env, world.cwd, "agency", "member", "add", zh["agency"], PARTNER)
    assert added["changed"] is True

    def said(channel: str, words: str) -> list[dict[str, Any]]:
        return [m for m in sim.messages(channel) if words in str(m.get("text"))]

    [notice] = await sim.wait_for(lambda: said(ZH_BOARD, f"<@{PARTNER}> 现在可以"))
    assert notice["text"].startswith(":busts_in_silhouette: ") and "`/likeness`" in notice["text"]
    await cli(world.env, world.cwd, "agency", "member", "remove", zh["agency"], PARTNER)
    await sim.wait_for(lambda: said(ZH_BOARD, f"<@{PARTNER}> 不再能"))

    await cli(world.env, world.cwd, "agency", "member", "remove", world.roster.agency, PARTNER)
    [english] = await sim.wait_for(lambda: said(BOARD, f"<@{PARTNER}> can no longer act for the agency"))
    assert english["text"].endswith("(changed by an operator).")
    # Nothing changed, nothing said: adding a member twice posts once.
    await cli(world.env, world.cwd, "agency", "member", "add", zh["agency"], STRANGER)
    await cli(world.env, world.cwd, "agency", "member", "add", zh["agency"], STRANGER)
    await sim.wait_for(lambda: said(ZH_BOARD, f"<@{STRANGER}> 现在可以"))
    assert len(said(ZH_BOARD, f"<@{STRANGER}>")) == 1


async def test_switching_an_agency_to_chinese_changes_its_next_board_post(world: SlackWorld) -> None:
    sim = world.sim
    await cli(world.env, world.cwd, "agency", "update", world.roster.agency, "--language", "zh-Hans")
    try:
        root = await wait_root(sim, BOARD, await world.submit(world.roster.solo))
        assert status_text(root).startswith(":hourglass_flowing_sand: *等待 Solo Sun 决定*")
    finally:
        await cli(world.env, world.cwd, "agency", "update", world.roster.agency, "--language", "en")
    root = await wait_root(sim, BOARD, await world.submit(world.roster.solo))
    assert status_text(root).startswith(":hourglass_flowing_sand: *Waiting for Solo Sun*")
