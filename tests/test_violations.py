"""Uses judged against every term, on SQLite and PostgreSQL: the API's answers, what is stored and
audited, and each violation told through the real outbox to the artist (Telegram simulator), the
agency (Slack simulator, in the request's thread) and the creator (a webhook endpoint)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from telegram.ext import ExtBot

from bot import workflow
from bot.adapters.slack import SlackSender
from bot.adapters.telegram import ChatRateLimiter, TelegramSender
from bot.adapters.webhook import WebhookSender
from bot.api import create_api
from bot.clock import FrozenClock
from bot.delivery import Outbox
from bot.models import ActorKind, GrantStatus, Language, Policy
from bot.render.buttons import CallbackSigner
from bot.render.violations import ACTION_REVOKE
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, terms_data
from sandbox.slack import SlackSimulator
from sandbox.telegram import TelegramSimulator
from storage.tables import AuditEvent, Grant, UsageEvent
from tests.conftest import START, open_desk
from tests.test_workflow import approve, row_counts
from tests.webhook_receiver import LOOPBACK_HOOKS, WebhookReceiver

TOKEN = "7000003:TEST-violations-token"
SLACK_TOKEN = "xoxb-violations"
CHANNEL = "C100"  # the factories' agency channel
ARTIST_CHAT = 4001


@pytest.fixture(autouse=True)
def retry_after_as_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """Opts in to PTB's future RetryAfter type, as the service does."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@dataclass
class World:
    """The API, the parties, and the three ways out with what they received."""

    desk: Desk
    clock: FrozenClock
    api: httpx.AsyncClient
    parties: Parties
    outbox: Outbox
    telegram: TelegramSimulator
    slack: SlackSimulator
    hook: WebhookReceiver
    grant_id: str = ""

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.parties.api_key}"}

    async def use(self, body: dict[str, Any], **headers: str) -> httpx.Response:
        return await self.api.post(
            f"/v1/grants/{self.grant_id}/usage", json=body, headers=self.auth() | headers
        )

    async def drain(self) -> None:
        while await self.outbox.drain_once():
            pass

    def artist_texts(self) -> list[dict[str, Any]]:
        return [m for m in self.telegram.messages(ARTIST_CHAT) if m["from_bot"]]

    def thread(self) -> list[dict[str, Any]]:
        [root] = [m for m in self.slack.messages(CHANNEL) if m.get("metadata")]
        return self.slack.thread(CHANNEL, root["ts"])


async def make_world(
    desk: Desk, clock: FrozenClock, *, policy: Policy, language: Language, ai_training: bool = False
) -> AsyncIterator[World]:
    telegram = TelegramSimulator(bots={TOKEN: "violations_test_bot"})
    telegram.set_rate_limits(private_chat_rate=50, private_chat_burst=50)
    telegram.add_user(ARTIST_CHAT, "Li", language_code="en")
    # The sender posts every 10 ms here (post_interval below), so the channel's limit is raised to
    # match, as Telegram's chat limit is: these tests are about violations, not Slack's pacing.
    slack = SlackSimulator(
        bot_token=SLACK_TOKEN, signing_secret="unused", post_message_rate=50, post_message_burst=50
    )
    slack.add_channel(CHANNEL, "star-board")
    hook = WebhookReceiver()
    await telegram.start()
    await slack.start()
    await hook.start()
    await telegram.send_text(TOKEN, ARTIST_CHAT, "hello")  # the artist has opened the bot
    parties = await make_parties(desk, policy=policy, language=language, webhook_url=hook.url)
    token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=parties.artist_id)
    await workflow.redeem_invite(desk, token=token, telegram_user_id=ARTIST_CHAT, chat_id=ARTIST_CHAT)
    async with ExtBot(TOKEN, base_url=telegram.api_base_url, rate_limiter=ChatRateLimiter()) as bot:
        senders = [
            TelegramSender(bot, desk, CallbackSigner(desk.signer.callback_key())),
            SlackSender(
                desk,
                AsyncWebClient(token=SLACK_TOKEN, base_url=slack.api_base_url, retry_handlers=[]),
                post_interval=0.01,
            ),
            WebhookSender(desk, policy=LOOPBACK_HOOKS),
        ]
        transport = httpx.ASGITransport(app=create_api(desk))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
            world = World(desk, clock, api, parties, Outbox(desk, senders), telegram, slack, hook)
            filed = await api.post(
                "/v1/requests",
                json=terms_data(
                    desk,
                    parties.artist_id,
                    starts_at=clock.now().isoformat(),
                    territory=["CN", "SG"],
                    ai_training=ai_training,
                ),
                headers=world.auth(),
            )
            assert filed.status_code == 201, filed.text
            decided = await approve(desk, filed.json()["id"], parties.artist())
            assert decided.view.grant is not None
            world.grant_id = decided.view.grant.id
            clock.advance(timedelta(minutes=1))
            await world.drain()
            try:
                yield world
            finally:
                await senders[2].close()  # type: ignore[attr-defined]
    await hook.stop()
    await slack.stop()
    await telegram.stop()


@pytest.fixture
async def world(desk: Desk, clock: FrozenClock) -> AsyncIterator[World]:
    async for made in make_world(desk, clock, policy=Policy.agency_may_decide, language=Language.en):
        yield made


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def quiet_world(
    module_migrated_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """`world`, shared by the module's tests whose uses tell nobody: each looks only at its own use."""
    clock = FrozenClock(START)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PTB_TIMEDELTA", "true")
        async with open_desk(module_migrated_url, clock, tmp_path_factory.mktemp("violations")) as desk:
            async for made in make_world(desk, clock, policy=Policy.agency_may_decide, language=Language.en):
                yield made


async def audit_actions(desk: Desk) -> list[str]:
    async with desk.db.read() as session:
        return list((await session.execute(select(AuditEvent.action).order_by(AuditEvent.seq))).scalars())


# ---------------------------------------------------------------- the answers


@pytest.mark.asyncio(loop_scope="module")
async def test_a_use_inside_every_term_is_201_with_no_violation_and_tells_nobody(quiet_world: World) -> None:
    world = quiet_world
    hooks_before = len(world.hook.received)
    answer = await world.use({"kind": "publish", "media": "series", "territory": ["CN"], "count": 2})

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["id"].startswith("use_") and body["violation"] is None
    assert (body["media"], body["territory"], body["count"]) == ("series", ["CN"], 2)
    async with world.desk.db.read() as session:
        event = await session.get(UsageEvent, body["id"])
    assert event is not None and not event.violation and event.violation_id is None and event.reasons == []
    await world.drain()
    assert len(world.hook.received) == hooks_before
    assert not [m for m in world.artist_texts() if "outside your consent" in m["text"]]
    assert "usage.violation" not in await audit_actions(world.desk)


CASES: list[tuple[dict[str, Any], list[str], list[str], list[str]]] = [
    # (body, reasons, what the artist reads, what the board says)
    (
        {"kind": "train", "likeness": ["face"]},
        ["ai_training_not_granted"],
        ["AI training was not part of your consent", "1× AI training", "likeness: face"],
        ["AI training was not granted"],
    ),
    (
        {"kind": "publish", "media": "game", "territory": ["CN"]},
        ["media_not_granted"],
        ["this medium is not one you approved", "medium: game"],
        ["the medium is not among those granted"],
    ),
    (
        {"kind": "distribute", "media": "series", "territory": ["US", "CN"]},
        ["territory_not_granted"],
        ["this territory is outside the ones you approved", "where: China and United States"],
        ["the territory is outside the one granted"],
    ),
    (
        {"kind": "render", "likeness": ["body", "face"], "count": 7},
        ["likeness_not_granted"],
        [
            "this part of your likeness was not part of your consent",
            "7× rendering",
            "likeness: body and face",
        ],
        ["the likeness used goes beyond what was granted"],
    ),
    (
        {"kind": "fine_tune", "likeness": ["voice"], "occurred_at": "2026-11-25T08:00:00Z"},
        ["grant_not_active", "ai_training_not_granted"],
        ["the consent was not in force at the time", "AI training was not part of your consent"],
        ["the grant was not active at the time of use", "AI training was not granted"],
    ),
    (
        {"kind": "publish", "media": "game", "territory": ["worldwide"]},
        ["media_not_granted", "territory_not_granted"],
        ["this medium is not one you approved", "this territory is outside the ones you approved"],
        ["the medium is not among those granted", "the territory is outside the one granted"],
    ),
]


@pytest.mark.parametrize(("body", "reasons", "artist_reads", "board_says"), CASES)
async def test_each_broken_term_is_a_409_violation_told_to_artist_agency_and_creator(
    world: World, body: dict[str, Any], reasons: list[str], artist_reads: list[str], board_says: list[str]
) -> None:
    answer = await world.use(body)

    assert answer.status_code == 409, answer.text
    found = answer.json()
    violation = found["violation"]
    assert set(violation) == {"id", "reasons"} and violation["id"].startswith("vio_")
    assert violation["reasons"] == reasons
    async with world.desk.db.read() as session:
        event = await session.get(UsageEvent, found["id"])
    assert event is not None and event.violation
    assert (event.violation_id, event.reasons) == (violation["id"], reasons)
    assert event.media == body.get("media") and event.kind == body["kind"]
    assert "usage.violation" in await audit_actions(world.desk)

    await world.drain()
    # The artist, in Telegram: what was used, by whom, which terms, and one tap to revoke.
    [told] = [m for m in world.artist_texts() if "A use outside your consent" in m["text"]]
    assert "Moonlight Drama S2" in told["text"] and "Dream Studio reported" in told["text"]
    for words in artist_reads:
        assert words in told["text"]
    assert violation["id"] in told["text"]
    [[button]] = told["reply_markup"]["inline_keyboard"]
    assert button["text"] == "Revoke this grant"
    # The agency, in the request's thread, with Revoke on behalf (its policy lets it decide).
    reply = world.thread()[-1]
    for words in board_says:
        assert words in reply["text"]
    assert "Dream Studio reported" in reply["text"]
    elements = [e for b in reply["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(e["action_id"], e["value"], e["text"]["text"]) for e in elements] == [
        (ACTION_REVOKE, world.grant_id, "Revoke on behalf")
    ]
    # The creator, by webhook.
    [event_out] = [r.event for r in world.hook.received if r.event["type"] == "usage.violation"]
    data = event_out["data"]
    assert data["grant_id"] == world.grant_id and data["usage_id"] == found["id"]
    assert data["violation_id"] == violation["id"] and data["reasons"] == reasons
    assert data["kind"] == body["kind"] and data["count"] == body.get("count", 1)


async def test_a_use_while_paused_is_a_grant_paused_violation(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pausing is built elsewhere; here only that the status at the moment of use is passed through.
    monkeypatch.setattr("bot.workflow.usage.grant_status_at", lambda _grant, _at: GrantStatus.paused)
    answer = await world.use({"kind": "render", "likeness": ["face"]})

    assert answer.status_code == 409
    assert answer.json()["violation"]["reasons"] == ["grant_paused"]
    await world.drain()
    [told] = [m for m in world.artist_texts() if "A use outside your consent" in m["text"]]
    assert "you had paused your consents" in told["text"]
    assert "the artist had paused their consents" in world.thread()[-1]["text"]


async def test_a_replayed_report_answers_the_same_and_tells_nobody_twice(world: World) -> None:
    body = {"kind": "train", "likeness": ["face"]}
    first = await world.use(body, **{"Idempotency-Key": "use-1"})
    again = await world.use(body, **{"Idempotency-Key": "use-1"})

    assert first.status_code == again.status_code == 409
    assert first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    await world.drain()
    assert len([r for r in world.hook.received if r.event["type"] == "usage.violation"]) == 1
    async with world.desk.db.read() as session:
        assert len(list((await session.execute(select(UsageEvent.id))).scalars())) == 1


# ---------------------------------------------------------------- bad input


BAD = [
    ({"kind": "publish", "territory": ["CN"]}, "media"),
    ({"kind": "distribute", "media": "series"}, "territory"),
    ({"kind": "render"}, "likeness"),
    ({"kind": "train"}, "likeness"),
    ({"kind": "fine_tune", "media": "film"}, "likeness"),
    ({"kind": "publish", "media": "radio", "territory": ["CN"]}, "media"),
    ({"kind": "publish", "media": "series", "territory": ["XX"]}, "territory"),
    ({"kind": "publish", "media": "series", "territory": []}, "territory"),
    ({"kind": "publish", "media": "series", "territory": ["worldwide", "CN"]}, "territory"),
    ({"kind": "publish", "media": "series", "territory": "CN"}, "territory"),
    ({"kind": "render", "likeness": ["soul"]}, "likeness"),
    ({"kind": "render", "likeness": []}, "likeness"),
    ({"kind": "render", "likeness": "face"}, "likeness"),
    ({"kind": "render", "likeness": ["face"], "mood": "happy"}, "mood"),
]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("body", "field"), BAD)
async def test_a_use_that_does_not_say_what_it_is_is_a_field_422_storing_and_auditing_nothing(
    quiet_world: World, body: dict[str, Any], field: str
) -> None:
    world = quiet_world
    before = await row_counts(world.desk)
    answer = await world.use(body)

    assert answer.status_code == 422, answer.text
    assert any(field in problem["loc"] for problem in answer.json()["detail"]), answer.text
    assert await row_counts(world.desk) == before  # no use, no notice, no audit event


# ---------------------------------------------------------------- revoking from the violation


async def test_revoke_on_behalf_from_the_violation_revokes_and_is_audited_with_the_member(
    world: World,
) -> None:
    await world.use({"kind": "train", "likeness": ["face"]})
    await world.drain()
    agent = world.parties.agency()

    grant = await workflow.revoke_grant(world.desk, grant_id=world.grant_id, actor=agent)

    assert grant.status == "revoked"
    async with world.desk.db.read() as session:
        row = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.action == "grant.revoked")
                    .order_by(AuditEvent.seq.desc())
                )
            )
            .scalars()
            .first()
        )
    assert row is not None and (row.actor_kind, row.actor_id) == ("agency", agent.member)
    assert row.data["on_behalf_of"] == world.parties.agency_id
    await world.drain()
    [told] = [r.event["data"] for r in world.hook.received if r.event["type"] == "grant.revoked"]
    assert told["stop_use"] and (told["revoked_by"], told["by"]) == ("agency", agent.member)
    assert "(for the agency, on behalf of Li Wei) revoked consent" in world.thread()[-1]["text"]


async def test_where_the_artist_decides_alone_the_board_gets_no_revoke_and_the_agency_cannot(
    desk: Desk, clock: FrozenClock
) -> None:
    async for world in make_world(desk, clock, policy=Policy.artist_only, language=Language.zh_hans):
        answer = await world.use({"kind": "train", "likeness": ["face"]})
        assert answer.status_code == 409
        await world.drain()
        reply = world.thread()[-1]
        assert "AI training was not granted" in reply["text"]
        assert not [b for b in reply["blocks"] if b["type"] == "actions"]
        # The artist reads it in Chinese, with the Revoke button.
        [told] = [m for m in world.artist_texts() if "超出你授权范围的使用" in m["text"]]
        assert "你的授权不包括 AI 训练" in told["text"]
        assert [b["text"] for row in told["reply_markup"]["inline_keyboard"] for b in row] == ["撤回此授权"]
        with pytest.raises(workflow.NotAllowed):
            await workflow.revoke_grant(desk, grant_id=world.grant_id, actor=world.parties.agency())
        async with desk.db.read() as session:
            grant = await session.get(Grant, world.grant_id)
        assert grant is not None and grant.status == "active"
        assert "grant.revoke.refused" in await audit_actions(desk)


async def test_a_use_after_revocation_offers_no_revoke_button(world: World) -> None:
    await workflow.revoke_grant(world.desk, grant_id=world.grant_id, actor=world.parties.artist())
    world.clock.advance(timedelta(seconds=1))
    answer = await world.use({"kind": "render", "likeness": ["face"]})
    assert answer.json()["violation"]["reasons"] == ["grant_not_active"]
    await world.drain()
    [told] = [m for m in world.artist_texts() if "A use outside your consent" in m["text"]]
    assert not (told.get("reply_markup") or {}).get("inline_keyboard")
    assert not [b for b in world.thread()[-1]["blocks"] if b["type"] == "actions"]
