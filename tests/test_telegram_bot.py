"""The artists' bot over real HTTP: `likeness serve` (a subprocess) ↔ the Bot API simulator.

One service and one simulator serve the whole module; every test makes its own artist, creator
and Telegram user, so the tests stay independent of each other and of their order.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot import workflow
from bot.keys import KeyRing
from bot.models import Actor, ActorKind, ChannelKind, Language
from bot.render.buttons import Action, CallbackSigner, seen_subject
from storage.tables import Agency, Artist, AuditEvent, Creator, Decision, Grant, Invite, Notice, Request
from tests.telegram_fixtures import (
    BOT_USERNAME,
    TOKEN,
    Party,
    World,
    buttons,
    module_world,
    reply,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


# The simulator and one running service (DEBUG logs, so the token check is as strict as it gets).
world = module_world("telegram", LOG_LEVEL="DEBUG")


async def request_row(world: World, request_id: str) -> Request:
    async with world.desk.db.transaction() as session:
        row = await session.get(Request, request_id)
    assert row is not None
    return row


async def decisions(world: World, request_id: str) -> list[Decision]:
    async with world.desk.db.transaction() as session:
        found = await session.execute(select(Decision).where(Decision.request_id == request_id))
        return list(found.scalars())


def callback_data(message: dict[str, Any], label: str) -> str:
    keyboard = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return next(b["callback_data"] for row in keyboard for b in row if b["text"] == label)


# ---------------------------------------------------------------- onboarding


async def test_the_cli_invite_link_links_the_artist_and_greets_them_in_their_language(world: World) -> None:
    artist = await workflow.add_artist(world.desk, name="王芳", language=Language.zh_hans)
    answer = json.loads(await world.cli("artist", "invite", artist.id, "--json"))
    assert answer["link"] == f"https://t.me/{BOT_USERNAME}?start={answer['token']}"
    user = world.new_user("Fang", "en")  # Telegram's own language does not matter: the artist's does

    await world.sim.send_text(TOKEN, user, f"/start {answer['token']}")

    greeting = await world.wait_text(user, "欢迎")
    assert "王芳" in greeting["text"] and "同意" in greeting["text"]
    async with world.desk.db.transaction() as session:
        linked = await session.get(Artist, artist.id)
    assert linked is not None and linked.telegram_user_id == user and linked.telegram_chat_id == user


async def test_a_used_expired_or_unknown_invite_gets_a_clear_reply_and_links_nothing(world: World) -> None:
    first = await workflow.add_artist(world.desk, name="Ana")
    token = await workflow.create_invite(world.desk, subject_kind=ActorKind.artist, subject_id=first.id)
    owner, latecomer = world.new_user("Ana"), world.new_user("Bob")
    await world.sim.send_text(TOKEN, owner, f"/start {token}")
    await world.wait_text(owner, "linked")

    await world.sim.send_text(TOKEN, latecomer, f"/start {token}")
    assert "already used" in (await world.wait_text(latecomer, "invite link"))["text"]

    second = await workflow.add_artist(world.desk, name="Cai")
    stale = await workflow.create_invite(world.desk, subject_kind=ActorKind.artist, subject_id=second.id)
    async with world.desk.db.transaction() as session:
        await session.execute(
            update(Invite)
            .where(Invite.subject_id == second.id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    await world.sim.send_text(TOKEN, latecomer, f"/start {stale}")
    assert "expired" in (await world.wait_text(latecomer, "expired"))["text"]

    await world.sim.send_text(TOKEN, latecomer, "/start not-a-real-token")
    await world.wait_text(latecomer, "not valid")

    async with world.desk.db.transaction() as session:
        ana, cai = await session.get(Artist, first.id), await session.get(Artist, second.id)
    assert ana is not None and ana.telegram_user_id == owner
    assert cai is not None and cai.telegram_user_id is None


async def test_a_creator_links_telegram_and_receives_status_updates(world: World) -> None:
    party = await world.party("Dong Mei")
    studio_user = await world.linked_studio(party)

    request_id = await world.submit(party, project_title="Night <Market> & Co")
    card = await world.card(party.user_id, request_id)
    await world.tap(party.user_id, card, "Approve")

    approved = await world.wait_text(studio_user, "approved")
    assert "Night <Market> & Co" in approved["text"]  # escaped on the way in, shown as written
    assert request_id in approved["text"]
    async with world.desk.db.transaction() as session:
        creator = await session.get(Creator, party.creator_id)
    assert creator is not None and creator.telegram_chat_id == studio_user


# ---------------------------------------------------------------- deciding


async def test_approving_edits_the_card_in_place_with_who_and_when_and_no_buttons(world: World) -> None:
    party = await world.party("Li Wei")
    request_id = await world.submit(party, sensitive=["political", "endorsement"])
    card = await world.card(party.user_id, request_id)
    # The sensitive flags come first, and in bold.
    assert card["html"].startswith(
        "<b>⚠️ Sensitive: endorsement of a product or cause and political content</b>"
    )
    assert card["entities"][0]["type"] == "bold" and card["entities"][0]["offset"] == 0
    assert buttons(card) == ["Approve", "Deny"]
    assert all(len(d.encode()) <= 64 for d in (callback_data(card, "Approve"), callback_data(card, "Deny")))

    answer = await world.tap(party.user_id, card, "Approve")

    assert answer["text"] == "Approved. Thank you." and not answer["show_alert"]
    edited = await world.card_where(party.user_id, request_id, lambda c: not buttons(c))
    assert edited["message_id"] == card["message_id"] and edited["edit_count"] >= 1
    assert "✅ Approved by Li Wei (artist, Telegram)" in edited["text"]
    assert "(Asia/Shanghai)" in edited["text"]
    assert (await request_row(world, request_id)).status == "approved"
    [decision] = await decisions(world, request_id)
    assert decision.channel == "telegram" and decision.actor_id == party.artist_id
    assert decision.terms_hash == (await request_row(world, request_id)).terms_hash


async def test_a_second_tap_is_answered_with_who_decided_and_when_and_changes_nothing(world: World) -> None:
    party = await world.party("Zhou Xun")
    request_id = await world.submit(party)
    card = await world.card(party.user_id, request_id)
    approve, deny = callback_data(card, "Approve"), callback_data(card, "Deny")
    await world.tap(party.user_id, card, "Approve")
    await world.card_where(party.user_id, request_id, lambda c: not buttons(c))

    again = await world.answer(
        await world.sim.tap(TOKEN, party.user_id, party.user_id, card["message_id"], callback_data=approve)
    )
    late_deny = await world.answer(
        await world.sim.tap(TOKEN, party.user_id, party.user_id, card["message_id"], callback_data=deny)
    )

    assert again["show_alert"] and again["text"].startswith("Already approved by Zhou Xun on ")
    assert "(Asia/Shanghai)" in again["text"]
    assert late_deny["show_alert"] and late_deny["text"].startswith("Already approved by Zhou Xun")
    assert len(await decisions(world, request_id)) == 1
    assert (await request_row(world, request_id)).status == "approved"


async def test_a_strangers_tap_is_refused_and_audited_and_changes_nothing(world: World) -> None:
    party = await world.party("Sun Li")
    other = await world.party("Other Artist")
    stranger = world.new_user("Mallory")
    request_id = await world.submit(party)
    card = await world.card(party.user_id, request_id)

    refused = await world.tap(party.user_id, card, "Approve", as_user=stranger)
    other_artist = await world.tap(party.user_id, card, "Deny", as_user=other.user_id)

    assert refused["show_alert"] and refused["text"] == "Only the artist this request is for can decide it."
    assert other_artist["show_alert"] and "Only the artist" in other_artist["text"]
    assert (await request_row(world, request_id)).status == "pending"
    assert await decisions(world, request_id) == []
    assert buttons(world.cards(party.user_id, request_id)[-1]) == ["Approve", "Deny"]
    async with world.desk.db.transaction() as session:
        audited = list(
            (
                await session.execute(
                    select(AuditEvent).where(
                        AuditEvent.subject_id == request_id, AuditEvent.action.like("decision.%.refused")
                    )
                )
            ).scalars()
        )
    assert {(e.actor_kind, e.actor_id, e.channel) for e in audited} == {
        ("stranger", str(stranger), "telegram"),
        ("artist", other.artist_id, "telegram"),
    }


async def test_forged_callback_data_cannot_decide_another_request(world: World) -> None:
    party = await world.party("Chen Kun")
    victim = await world.party("Victim")
    mine = await world.submit(party)
    theirs = await world.submit(victim)
    card = await world.card(party.user_id, mine)
    genuine = callback_data(card, "Approve")

    forged = [
        genuine.replace(mine, theirs),  # another request, our MAC
        genuine[:-1] + ("A" if genuine[-1] != "A" else "B"),  # a tampered MAC
        f"ok:{theirs}",  # no MAC
        "rv:grt_0000000000000000:AAAAAAAAAAAA",  # an action on something else
        "x" * 64,
    ]
    answers = [
        await world.answer(
            await world.sim.tap(TOKEN, party.user_id, party.user_id, card["message_id"], callback_data=d)
        )
        for d in forged
    ]

    assert all(a["show_alert"] and a["text"] == "This button is not valid." for a in answers)
    assert (await request_row(world, mine)).status == "pending"
    assert (await request_row(world, theirs)).status == "pending"


async def test_a_tap_carrying_other_terms_than_the_requests_is_refused_as_changed(world: World) -> None:
    party = await world.party("Liu Shishi")
    request_id = await world.submit(party)
    card = await world.card(party.user_id, request_id)
    data_dir = Path(world.env["DATA_DIR"])
    keys = KeyRing(data_dir / "signing_key.pem", data_dir / "button_secrets.json")
    # Signed like the service's own buttons, but for terms this request never had.
    stale = CallbackSigner(keys.callback_keys).sign(Action.approve, seen_subject(request_id, "0" * 64))

    answer = await world.answer(
        await world.sim.tap(TOKEN, party.user_id, party.user_id, card["message_id"], callback_data=stale)
    )

    assert answer["show_alert"] and answer["text"] == "The terms changed; please look at the newest card."
    assert await decisions(world, request_id) == []
    assert (await request_row(world, request_id)).status == "pending"
    genuine = callback_data(card, "Approve")
    assert f"{request_id}-{(await request_row(world, request_id)).terms_hash[:8]}" in genuine


async def test_approving_ai_training_takes_a_second_explicit_tap(world: World) -> None:
    party = await world.party("Yang Mi")
    request_id = await world.submit(party, ai_training=True)
    card = await world.card(party.user_id, request_id)
    assert "AI training requested." in card["text"] and "a model will learn your likeness" in card["text"]

    first = await world.tap(party.user_id, card, "Approve")

    assert "confirm" in first["text"]
    asking = await world.card_where(party.user_id, request_id, lambda c: "Cancel" in buttons(c))
    assert buttons(asking) == ["Also allow AI training of my likeness", "Cancel"]
    assert (await request_row(world, request_id)).status == "pending"

    await world.tap(party.user_id, asking, "Cancel")
    back = await world.card_where(party.user_id, request_id, lambda c: buttons(c) == ["Approve", "Deny"])
    await world.tap(party.user_id, back, "Approve")
    asking = await world.card_where(party.user_id, request_id, lambda c: "Cancel" in buttons(c))
    confirmed = await world.tap(party.user_id, asking, "Also allow AI training of my likeness")

    assert confirmed["text"] == "Approved. Thank you."
    await world.card_where(party.user_id, request_id, lambda c: "✅ Approved" in c["text"] and not buttons(c))
    [decision] = await decisions(world, request_id)
    assert decision.outcome == "approve" and decision.ai_training_confirmed


async def deny_tapped(world: World, name: str) -> tuple[Party, str, dict[str, Any], dict[str, Any]]:
    """A new party's artist taps Deny on a request's card: (the party, the request's id, the card as
    it was, the card showing the reasons)."""
    party = await world.party(name)
    request_id = await world.submit(party)
    card = await world.card(party.user_id, request_id)
    await world.tap(party.user_id, card, "Deny")
    reasons = await world.card_where(party.user_id, request_id, lambda c: "Back" in buttons(c))
    return party, request_id, card, reasons


async def test_deny_with_a_chosen_reason(world: World) -> None:
    party, request_id, _, reasons = await deny_tapped(world, "Hu Ge")
    assert "No AI training of my likeness" not in buttons(reasons)  # offered only when AI training is asked
    assert (await request_row(world, request_id)).status == "pending"
    answer = await world.tap(party.user_id, reasons, "The compensation is too low")

    assert answer["text"] == "Declined. Thank you."
    edited = await world.card_where(party.user_id, request_id, lambda c: not buttons(c))
    assert "❌ Declined by Hu Ge (artist, Telegram)" in edited["text"]
    assert "Reason: The compensation is too low" in edited["text"]
    assert (await request_row(world, request_id)).reason == "The compensation is too low"


async def test_deny_in_own_words_answers_a_prompt_that_survives_a_restart(world: World) -> None:
    party, request_id, card, reasons = await deny_tapped(world, "Liu Shishi")
    await world.tap(party.user_id, reasons, "Write my own reason…")
    prompt = await world.wait_text(party.user_id, "Reply to this message")
    assert prompt["reply_markup"]["force_reply"] is True
    assert prompt["reply_to_message_id"] == card["message_id"]  # under the card it is about
    async with world.desk.db.read() as session:
        asked = (await session.execute(select(Notice.kind).where(Notice.request_id == request_id))).scalars()
        assert "deny_prompt" in set(asked)  # the prompt left through the outbox

    # Nothing about the prompt is kept in memory: a restarted service understands the reply.
    await world.stop()
    await world.start()
    await reply(world.sim, party.user_id, prompt["message_id"], "Not <b>with</b> this director.")

    await world.wait_text(party.user_id, "Your reason was recorded")
    edited = await world.card_where(party.user_id, request_id, lambda c: not buttons(c))
    assert "Reason: Not <b>with</b> this director." in edited["text"]
    assert (await request_row(world, request_id)).reason == "Not <b>with</b> this director."


async def test_a_reply_to_the_card_itself_is_not_taken_as_a_reason(world: World) -> None:
    party = await world.party("Tang Yan")
    request_id = await world.submit(party)
    card = await world.card(party.user_id, request_id)

    await reply(world.sim, party.user_id, card["message_id"], "what is this?")

    await world.wait_text(party.user_id, "I only understand the buttons")
    assert (await request_row(world, request_id)).status == "pending"


async def test_a_request_withdrawn_while_its_card_is_open(world: World) -> None:
    party = await world.party("Zhao Wei")
    request_id = await world.submit(party)
    card = await world.card(party.user_id, request_id)
    approve = callback_data(card, "Approve")

    await world.withdraw(party, request_id)

    edited = await world.card_where(party.user_id, request_id, lambda c: not buttons(c))
    assert "Withdrawn by the studio" in edited["text"]
    late = await world.answer(
        await world.sim.tap(TOKEN, party.user_id, party.user_id, card["message_id"], callback_data=approve)
    )
    assert late["show_alert"] and late["text"] == "This request was withdrawn by the studio."
    assert (await request_row(world, request_id)).status == "withdrawn"


# ---------------------------------------------------------------- commands


async def test_commands_are_registered_in_both_languages(world: World) -> None:
    english = [c["command"] for c in world.sim.commands()]
    chinese = world.sim.commands(language_code="zh")

    assert english == ["pending", "grants", "report", "pause", "resume", "language", "help"]
    assert [c["command"] for c in chinese] == english
    assert chinese[0]["description"] == "等待你决定的请求"


async def test_pending_lists_open_requests_and_shows_a_card_again(world: World) -> None:
    party = await world.party("Deng Chao")
    first = await world.submit(party, project_title="First film")
    second = await world.submit(party, project_title="Second film", ai_training=True)
    old_card = await world.card(party.user_id, first)
    await world.card(party.user_id, second)

    await world.sim.send_text(TOKEN, party.user_id, "/pending")
    listing = await world.wait_text(party.user_id, "Waiting for your decision (2)")
    assert "1. First film" in listing["text"] and "2. Second film" in listing["text"]
    await world.tap(party.user_id, listing, "Show card 1")

    await world.sim.wait_for(lambda: len(world.cards(party.user_id, first)) == 2)
    old, new = world.cards(party.user_id, first)
    assert old["message_id"] == old_card["message_id"]
    await world.sim.wait_for(lambda: not buttons(world.cards(party.user_id, first)[0]))
    await world.tap(party.user_id, new, "Approve")
    approved = await world.card_where(party.user_id, first, lambda c: "✅ Approved" in c["text"])
    assert approved["message_id"] == new["message_id"]  # the card that is edited is the newest one


async def test_a_nudge_from_the_agency_sends_the_card_again_and_disarms_the_old_one(world: World) -> None:
    party = await world.party("Ni Ni")
    request_id = await world.submit(party)
    first = await world.card(party.user_id, request_id)
    async with world.desk.db.transaction() as session:
        artist = await session.get(Artist, party.artist_id)
        assert artist is not None
        agency_id = artist.agency_id
        await session.execute(update(Agency).where(Agency.id == agency_id).values(slack_member_ids=["U1"]))
    agent = Actor(ActorKind.agency, agency_id or "", ChannelKind.slack, display="agent", member="U1")

    await workflow.nudge_artist(world.desk, request_id=request_id, actor=agent)

    await world.sim.wait_for(lambda: len(world.cards(party.user_id, request_id)) == 2, timeout=10)
    await world.sim.wait_for(lambda: not buttons(world.cards(party.user_id, request_id)[0]))
    old, new = world.cards(party.user_id, request_id)
    assert old["message_id"] == first["message_id"]
    assert new["text"].startswith("🔔 Your agency asks you to look at this request.")
    assert buttons(new) == ["Approve", "Deny"]


async def test_revoke_from_grants_asks_first_then_ends_the_consent_and_tells_the_creator(
    world: World,
) -> None:
    party = await world.party("Wu Lei")
    studio_user = await world.linked_studio(party)
    request_id = await world.submit(party, project_title="Voice for Ads")
    await world.tap(party.user_id, await world.card(party.user_id, request_id), "Approve")
    await world.wait_text(studio_user, "approved")

    await world.sim.send_text(TOKEN, party.user_id, "/grants")
    listing = await world.wait_text(party.user_id, "Your consents (1)")
    assert "Voice for Ads — Dream Studio" in listing["text"]
    await world.tap(party.user_id, listing, "Revoke 1")
    question = await world.wait_text(party.user_id, "Revoke your consent")
    async with world.desk.db.read() as session:
        asked = (
            await session.execute(select(Notice.kind).where(Notice.recipient_id == party.artist_id))
        ).scalars()
        assert "revoke_question" in set(asked)  # the question left through the outbox
    kept = await world.tap(party.user_id, question, "Keep it")
    assert kept["text"] is None
    await world.wait_text(party.user_id, "Nothing changed")

    await world.tap(party.user_id, listing, "Revoke 1")
    question = await world.wait_text(party.user_id, "Revoke your consent")
    await world.tap(party.user_id, question, "Yes, revoke")

    done = await world.wait_text(party.user_id, "Consent revoked")
    assert not buttons(done)
    told = await world.wait_text(studio_user, "Consent revoked")
    assert "Stop all use of the likeness now" in told["text"]
    async with world.desk.db.transaction() as session:
        grant = (await session.execute(select(Grant).where(Grant.request_id == request_id))).scalar_one()
    assert grant.status == "revoked"
    again = await world.tap(party.user_id, listing, "Revoke 1")
    assert again["show_alert"] and again["text"] == "This consent was already revoked."


async def test_a_violation_tells_the_artist_what_and_revoke_this_grant_goes_through_the_confirmation(
    world: World,
) -> None:
    party = await world.party("Zhou Xun", language=Language.zh_hans)
    now = datetime.now(UTC)
    request_id = await world.submit(party, project_title="Night Market", starts_at=now.isoformat())
    await world.tap(party.user_id, await world.card(party.user_id, request_id), "同意")
    async with world.desk.db.transaction() as session:
        grant = (await session.execute(select(Grant).where(Grant.request_id == request_id))).scalar_one()
    answer = await world.http.post(
        f"{world.url}/v1/grants/{grant.id}/usage",
        json={"kind": "publish", "media": "game", "territory": ["US"], "count": 2},
        headers={"Authorization": f"Bearer {party.api_key}"},
    )
    assert answer.status_code == 409, answer.text
    violation = answer.json()["violation"]
    assert violation["reasons"] == ["media_not_granted", "territory_not_granted"]

    told = await world.wait_text(party.user_id, "超出你授权范围的使用")
    text = told["text"]
    assert "“Night Market” — Dream Studio 报告：2× 发布 · 媒介：游戏 · 地区：美国。" in text
    assert "该媒介不在你批准的范围内" in text and "该地区超出你批准的地区范围" in text
    assert violation["id"] in text
    assert buttons(told) == ["撤回此授权"]

    await world.tap(party.user_id, told, "撤回此授权")
    question = await world.wait_text(party.user_id, "要撤回你对“Night Market”")
    await world.tap(party.user_id, question, "确认撤回")
    await world.wait_text(party.user_id, "授权已撤回")
    async with world.desk.db.transaction() as session:
        revoked = await session.get(Grant, grant.id)
    assert revoked is not None and revoked.status == "revoked"


async def test_the_studio_is_told_to_delete_and_the_artist_hears_in_chinese_when_it_confirms(
    world: World,
) -> None:
    party = await world.party("Zhou Xun", language=Language.zh_hans)
    studio_user = await world.linked_studio(party)
    request_id = await world.submit(
        party, project_title="Voice Model", starts_at=datetime.now(UTC).isoformat()
    )
    await world.tap(party.user_id, await world.card(party.user_id, request_id), "同意")
    await world.wait_text(studio_user, "approved")
    async with world.desk.db.transaction() as session:
        grant = (await session.execute(select(Grant).where(Grant.request_id == request_id))).scalar_one()
    await workflow.revoke_grant(
        world.desk, grant_id=grant.id, actor=Actor(ActorKind.admin, "ops", ChannelKind.cli)
    )
    # Revoked by an operator in another process: the service's outbox finds it on its next poll.
    owed = await world.wait_text(studio_user, "then confirm it")
    assert "Voice Model" in owed["text"]

    answer = await world.http.post(
        f"{world.url}/v1/grants/{grant.id}/deletion",
        json={
            "statement": "The voice model and its training set were erased.",
            "deleted_at": datetime.now(UTC).isoformat(),
        },
        headers={"Authorization": f"Bearer {party.api_key}"},
    )

    assert answer.status_code == 201, answer.text
    told = await world.wait_text(party.user_id, "已确认删除")
    assert "Dream Studio" in told["text"] and "Voice Model" in told["text"]
    await world.wait_text(studio_user, "is recorded and signed")


async def test_language_switch_changes_later_cards(world: World) -> None:
    party = await world.party("Lu Han")
    before = await world.submit(party, project_title="Before")
    english = await world.card(party.user_id, before)

    await world.sim.send_text(TOKEN, party.user_id, "/language")
    menu = await world.wait_text(party.user_id, "Choose your language")
    await world.tap(party.user_id, menu, "中文")
    await world.wait_text(party.user_id, "从现在起我会用中文和你交流")
    after = await world.submit(party, project_title="After", territory=["worldwide"])

    chinese = await world.card(party.user_id, after)
    assert buttons(chinese) == ["同意", "拒绝"]
    assert "肖像使用请求：After" in chinese["text"] and "全球" in chinese["text"]
    assert "2026年" in chinese["text"] or "年" in chinese["text"]
    assert world.cards(party.user_id, before)[-1]["text"] == english["text"]
    async with world.desk.db.transaction() as session:
        artist = await session.get(Artist, party.artist_id)
    assert artist is not None and artist.language == "zh-Hans"


async def test_report_sends_the_summary_and_the_chart(world: World) -> None:
    party = await world.party("Jing Tian")
    await world.sim.send_text(TOKEN, party.user_id, "/report")

    await world.wait_text(party.user_id, "on its way")
    summary = await world.wait_text(party.user_id, "Usage report")
    assert "Uses: 0" in summary["text"]
    chart = await world.sim.wait_for(
        lambda: [m for m in world.sim.messages(party.user_id, TOKEN) if m["kind"] == "photo"]
    )
    assert chart[0]["photo"]["width"] > 100
    assert world.sim.file_bytes(chart[0]["photo"]["file_id"]).startswith(b"\x89PNG")


async def test_strangers_get_pointed_to_their_invite_link(world: World) -> None:
    stranger = world.new_user("Passer-by", "zh-CN")

    await world.sim.send_text(TOKEN, stranger, "/pending")

    assert "邀请链接" in (await world.wait_text(stranger, "邀请"))["text"]


# ---------------------------------------------------------------- last: the log


async def test_the_bot_token_never_appears_in_the_service_log(world: World) -> None:
    # Runs last in this module: by now the service has polled, sent, edited, uploaded and restarted.
    log = "".join(path.read_text(errors="replace") for path in sorted(world.root.glob("*.log")))
    assert "Telegram bot @likeness_test_bot connected" in log
    assert TOKEN not in log and TOKEN.split(":", 1)[1] not in log
    assert not re.search(r"/bot\d+:", log)
    assert "Traceback" not in log and " ERROR " not in log
    async with world.desk.db.transaction() as session:
        stuck = list(
            (
                await session.execute(
                    select(Notice).where(Notice.channel == "telegram", Notice.status != "sent")
                )
            ).scalars()
        )
    assert stuck == []
