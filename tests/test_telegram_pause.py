"""The artist's pause over real HTTP: `likeness serve` (a subprocess) ↔ the Bot API simulator."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot import workflow
from bot.models import Actor, ActorKind, ChannelKind, Language, Policy
from storage.tables import Artist, AuditEvent, Grant, Notice
from tests.conftest import stored_status
from tests.telegram_fixtures import TOKEN, Party, World, buttons, module_world, reply

pytestmark = pytest.mark.asyncio(loop_scope="module")


world = module_world("telegram_pause")


async def approved_grant(world: World, party: Party, title: str, approve: str = "Approve") -> str:
    request_id = await world.submit(party, project_title=title)
    await world.tap(party.user_id, await world.card(party.user_id, request_id), approve)
    await world.card_where(party.user_id, request_id, lambda c: not buttons(c))
    async with world.desk.db.read() as session:
        grant = (await session.execute(select(Grant).where(Grant.request_id == request_id))).scalar_one()
    return grant.id


async def test_pause_asks_once_then_pauses_everything_and_tells_the_studio(world: World) -> None:
    party = await world.party("Zhou Xun")
    studio = await world.linked_studio(party)
    grant_id = await approved_grant(world, party, "Night Market")

    await world.sim.send_text(TOKEN, party.user_id, "/pause")
    question = await world.wait_text(party.user_id, "Pause every consent?")
    assert buttons(question) == ["⏸ Pause everything", "⏸ Pause and give a reason", "Cancel"]
    # A stranger tapping the artist's button is refused and recorded; nothing is paused.
    stranger = world.new_user("Nosy")
    refused = await world.tap(party.user_id, question, "⏸ Pause everything", as_user=stranger)
    assert refused["show_alert"] and refused["text"] == "Only the artist can pause or resume their consents."
    assert await stored_status(world.desk, Grant, grant_id) == "scheduled"

    await world.tap(party.user_id, question, "⏸ Pause everything")

    done = await world.wait_text(party.user_id, "1 consent(s) paused")
    assert not buttons(done)
    assert await stored_status(world.desk, Grant, grant_id) == "paused"
    told = await world.wait_text(studio, "is paused")
    assert "Night Market" in told["text"] and "stop all use now" in told["text"]
    async with world.desk.db.read() as session:
        actions = (
            await session.execute(select(AuditEvent.action).where(AuditEvent.subject_id == party.artist_id))
        ).scalars()
        assert {"artist.pause.refused", "artist.paused"} <= set(actions)

    await world.sim.send_text(TOKEN, party.user_id, "/pause")
    await world.wait_text(party.user_id, "already paused")
    await world.sim.send_text(TOKEN, party.user_id, "/resume")
    question = await world.wait_text(party.user_id, "Resume your consents?")
    await world.tap(party.user_id, question, "▶️ Resume")
    await world.wait_text(party.user_id, "Resumed")
    assert await stored_status(world.desk, Grant, grant_id) == "scheduled"
    await world.wait_text(studio, "it starts as scheduled")
    await world.sim.send_text(TOKEN, party.user_id, "/resume")
    await world.wait_text(party.user_id, "Nothing is paused")


async def test_the_chinese_words_pause_with_a_reason_and_resume(world: World) -> None:
    party = await world.party("Zhang Yi", language=Language.zh_hans)
    grant_id = await approved_grant(world, party, "Tea House", approve="同意")

    await world.sim.send_text(TOKEN, party.user_id, "暂停")
    question = await world.wait_text(party.user_id, "暂停全部授权？")
    assert all("暂停" in label for label in buttons(question)[:2])
    await world.tap(party.user_id, question, "⏸ 暂停并说明理由")
    prompt = await world.wait_text(party.user_id, "暂停的理由")
    await reply(world.sim, party.user_id, prompt["message_id"], "合同纠纷 <b>未解决</b>")

    await world.wait_text(party.user_id, "已暂停 1 项授权")
    assert await stored_status(world.desk, Grant, grant_id) == "paused"
    async with world.desk.db.read() as session:
        artist = await session.get(Artist, party.artist_id)
    assert artist is not None and artist.pause_reason == "合同纠纷 <b>未解决</b>"

    await world.sim.send_text(TOKEN, party.user_id, "恢复")
    question = await world.wait_text(party.user_id, "恢复你的授权？")
    await world.tap(party.user_id, question, "▶️ 恢复")
    await world.wait_text(party.user_id, "已恢复")
    assert await stored_status(world.desk, Grant, grant_id) == "scheduled"


async def test_a_pause_by_the_agency_is_told_to_the_artist_who_cannot_lift_it(world: World) -> None:
    party = await world.party("Sun Li", policy=Policy.agency_may_decide)
    async with world.desk.db.read() as session:
        artist = await session.get(Artist, party.artist_id)
    assert artist is not None and artist.agency_id is not None
    agent = Actor(ActorKind.agency, artist.agency_id, ChannelKind.slack)
    # Paused from another process, as the Slack app would: the service's outbox finds the notice.
    await workflow.pause_artist(world.desk, artist_id=party.artist_id, actor=agent, reason="press inquiry")

    told = await world.wait_text(party.user_id, "paused every consent", timeout=20)
    assert "your agency" in told["text"].lower() and "press inquiry" in told["text"]
    await world.sim.send_text(TOKEN, party.user_id, "/resume")
    question = await world.wait_text(party.user_id, "Resume your consents?")
    refused = await world.tap(party.user_id, question, "▶️ Resume")
    assert refused["show_alert"] and "only your agency" in refused["text"]

    # Approving while paused: the grant is made paused, and the card says so.
    request_id = await world.submit(party, project_title="Paused Approval")
    await world.tap(party.user_id, await world.card(party.user_id, request_id), "Approve")
    card = await world.card_where(party.user_id, request_id, lambda c: "paused" in c["text"])
    assert "until you /resume" in card["text"]


async def test_the_reason_prompt_leaves_through_the_outbox_and_only_for_the_artist(world: World) -> None:
    party = await world.party("Gao Yuanyuan")
    await world.sim.send_text(TOKEN, party.user_id, "/pause")
    question = await world.wait_text(party.user_id, "Pause every consent?")

    stranger = world.new_user("Nosy")
    refused = await world.tap(party.user_id, question, "⏸ Pause and give a reason", as_user=stranger)
    assert refused["show_alert"] and refused["text"] == "Only the artist can pause or resume their consents."
    await world.tap(party.user_id, question, "⏸ Pause and give a reason")
    prompt = await world.wait_text(party.user_id, "reason for pausing")
    assert prompt["reply_markup"]["force_reply"] is True

    async with world.desk.db.read() as session:
        queued = (
            await session.execute(
                select(Notice.kind).where(
                    Notice.recipient_id == party.artist_id, Notice.kind.in_(workflow.QUESTIONS)
                )
            )
        ).scalars()
        assert list(queued) == ["pause_prompt"]  # one question, the artist's; none for the stranger
        actions = (
            await session.execute(select(AuditEvent.action).where(AuditEvent.subject_id == party.artist_id))
        ).scalars()
        assert "artist.pause.refused" in set(actions)
