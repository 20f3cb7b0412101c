"""The agency board over real HTTP: `likeness serve` ↔ the Slack simulator, parties made with the CLI.

One service and one simulator serve the whole module (starting them and running the CLI is
most of the cost); each test works on requests of its own, found on the board by their id.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot import workflow
from bot.models import Actor, ActorKind, ChannelKind
from sandbox.slack import Tamper
from storage.tables import Decision, Grant, Notice, Request
from tests.slack_fixtures import (
    AGENT,
    BOARD,
    ELSEWHERE,
    PARTNER,
    STRANGER,
    SlackWorld,
    buttons,
    module_world,
    roots_of,
    status_text,
    value_of,
    wait_ephemeral,
    wait_form,
    wait_new_ephemerals,
    wait_root,
    wait_status,
    wait_thread,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


world = module_world("slack")


# ---------------------------------------------------------------- the board through a request's life


async def test_request_life_is_one_root_message_kept_current_with_every_event_in_its_thread(
    world: SlackWorld,
) -> None:
    sim = world.sim
    request_id, root = await world.posted(world.roster.delegated, sensitive=["political"])
    assert root["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🎭 Moonlight Drama S2"},
    }
    # Sensitive flags come first, in bold; then the terms in short, the deadline and the status.
    assert root["blocks"][1]["text"]["text"] == ":warning: *Sensitive:* *political*"
    fields = " ".join(
        f["text"] for b in root["blocks"] if b["type"] == "section" for f in b.get("fields", [])
    )
    for shown in (
        "*Artist*\nLi Wei",
        "*Creator*\nDream Studio",
        "CN, SG",
        "5000.00 CNY",
        "*Decide by*\n<!date^",
    ):
        assert shown in fields
    assert "Waiting for Li Wei" in status_text(root)
    assert buttons(root) == ["board_approve", "board_deny", "board_nudge"]
    ts = root["ts"]

    await sim.click(AGENT, BOARD, ts, "board_approve")
    approved = await wait_status(sim, BOARD, ts, "Approved")
    assert "*kim.agent* (for the agency, in Slack)" in status_text(approved)
    assert buttons(approved) == []  # decided: nothing left to press
    [reply] = await wait_thread(sim, BOARD, ts, 1)
    assert reply.startswith(":white_check_mark: Approved by *kim.agent* in Slack")

    # The grant starts tomorrow: a use reported today is a violation, raised on the board.
    async with world.desk.db.transaction() as session:
        grant = (await session.execute(select(Grant).where(Grant.request_id == request_id))).scalar_one()
    async with world.http() as client:
        used = await client.post(
            f"/v1/grants/{grant.id}/usage", json={"kind": "render", "count": 3, "likeness": ["face"]}
        )
    assert used.status_code == 409
    replies = await wait_thread(sim, BOARD, ts, 2)
    assert replies[1] == (
        ":rotating_light: *Violation:* Dream Studio reported 3× render · face: "
        "the grant was not active at the time of use."
    )

    # The artist withdraws consent in Telegram: the root says so and the thread tells the story.
    await workflow.revoke_grant(
        world.desk,
        grant_id=grant.id,
        actor=Actor(ActorKind.artist, world.roster.delegated, ChannelKind.telegram),
    )
    revoked = await wait_status(sim, BOARD, ts, "Consent revoked")
    replies = await wait_thread(sim, BOARD, ts, 3)
    assert replies[2].startswith(":no_entry: Li Wei revoked consent.")
    assert len(roots_of(sim, BOARD, request_id)) == 1  # one message per request, edited in place
    assert len(revoked["edits"]) >= 3  # approved, violation, revoked


async def test_deny_on_behalf_opens_a_form_and_submitting_it_records_the_reason(world: SlackWorld) -> None:
    sim = world.sim
    request_id, root = await world.posted(world.roster.delegated)
    ts = root["ts"]

    answer = await sim.click(PARTNER, BOARD, ts, "board_deny")
    assert answer.status == 200
    form = await wait_form(sim, request_id)
    assert form["user_id"] == PARTNER
    assert await world.status(request_id) == "pending"  # opening the form decides nothing

    await sim.submit_view(PARTNER, form["id"], {"reason": "The fee is below the agreed rate."})
    denied = await wait_status(sim, BOARD, ts, "Denied")
    assert "Reason: The fee is below the agreed rate." in status_text(denied)
    [reply] = await wait_thread(sim, BOARD, ts, 1)
    assert reply.startswith(":x: Denied by *pat.partner* in Slack")
    async with world.desk.db.transaction() as session:
        request = await session.get(Request, request_id)
        assert request is not None and request.reason == "The fee is below the agreed rate."
        decision = (
            await session.execute(select(Decision).where(Decision.request_id == request_id))
        ).scalar_one()
    assert (decision.actor_kind, decision.actor_id, decision.channel) == ("agency", PARTNER, "slack")


# ---------------------------------------------------------------- what each policy allows


async def test_artist_only_board_shows_no_decision_buttons_only_a_nudge_once_an_hour(
    world: SlackWorld,
) -> None:
    sim = world.sim
    request_id, root = await world.posted(world.roster.solo)
    assert buttons(root) == ["board_nudge"]
    ts = root["ts"]

    await sim.click(AGENT, BOARD, ts, "board_nudge")
    [reply] = await wait_thread(sim, BOARD, ts, 1)
    assert reply == f":bell: <@{AGENT}> nudged Solo Sun; the card was sent to them again in Telegram."
    await sim.click(PARTNER, BOARD, ts, "board_nudge")
    again = await wait_ephemeral(sim, PARTNER, "nudged less than an hour ago")
    assert again["channel"] == BOARD and "Again from <!date^" in again["text"]

    # A hand-made Approve (the button is not there) is refused by the workflow and audited.
    await sim.click(AGENT, BOARD, ts, "board_approve", value=value_of(root))
    await wait_ephemeral(sim, AGENT, "this artist decides alone")
    assert await world.status(request_id) == "pending"
    assert ("decision.approve.refused", AGENT) in await world.audit(request_id)


async def test_both_required_takes_the_agency_co_signature_and_the_artist_approval(world: SlackWorld) -> None:
    sim = world.sim
    request_id, root = await world.posted(world.roster.shared, ai_training=True)
    assert buttons(root) == ["board_approve", "board_deny", "board_nudge"]
    approve = next(e for b in root["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert approve["text"]["text"] == "Approve (co-sign)"
    ts = root["ts"]

    await sim.click(AGENT, BOARD, ts, "board_approve")
    waiting = await wait_status(sim, BOARD, ts, "waiting for the artist to co-sign")
    assert buttons(waiting) == ["board_nudge"]  # the agency has signed; only the artist is missing
    assert await world.status(request_id) == "awaiting_cosign"

    await world.artist_decides(request_id, world.roster.shared)
    await wait_status(sim, BOARD, ts, "Approved")
    replies = await wait_thread(sim, BOARD, ts, 2)
    assert "needs the co-signature" in replies[0]
    assert replies[1].startswith(":white_check_mark: Approved by *Mei Lin* in Telegram")

    # Either side may deny on its own.
    second = await world.submit(world.roster.shared)
    ts2 = (await wait_root(sim, BOARD, second))["ts"]
    await sim.click(AGENT, BOARD, ts2, "board_deny")
    form = await wait_form(sim, second)
    await sim.submit_view(AGENT, form["id"], {"reason": "Not with this studio."})
    await wait_status(sim, BOARD, ts2, "Denied")
    assert await world.status(second) == "denied"


async def test_ai_training_is_never_approved_by_the_agency_on_the_artists_behalf(world: SlackWorld) -> None:
    sim = world.sim
    request_id, root = await world.posted(world.roster.delegated, ai_training=True)
    training = next(
        b["text"]["text"] for b in root["blocks"] if b["type"] == "section" and "AI training" in str(b)
    )
    assert training.startswith(":robot_face: *AI training requested*")
    assert buttons(root) == ["board_deny", "board_nudge"]

    await sim.click(AGENT, BOARD, root["ts"], "board_approve", value=value_of(root))
    await wait_ephemeral(sim, AGENT, "AI training is personal consent")
    assert await world.status(request_id) == "pending"
    assert ("decision.approve.refused", AGENT) in await world.audit(request_id)


# ---------------------------------------------------------------- who may act, and what Slack may send


async def test_a_strangers_clicks_get_an_ephemeral_refusal_and_an_audit_event_and_change_nothing(
    world: SlackWorld,
) -> None:
    sim = world.sim
    request_id, root = await world.posted(world.roster.delegated)

    await sim.click(STRANGER, BOARD, root["ts"], "board_approve")
    refusal = await wait_ephemeral(sim, STRANGER, "not one of the agency members allowed to act")
    assert refusal["channel"] == BOARD
    await sim.click(STRANGER, BOARD, root["ts"], "board_deny")
    await sim.wait_for(lambda: len(sim.ephemerals(user=STRANGER)) == 2)

    assert await world.status(request_id) == "pending"
    assert not [v for v in sim.views() if request_id in v["view"]["private_metadata"]]  # no form for them
    refused = [a for a in await world.audit(request_id) if a[1] == STRANGER]
    assert refused == [("decision.approve.refused", STRANGER), ("decision.deny.refused", STRANGER)]
    assert sim.message(BOARD, root["ts"])["edits"] == []


async def test_forged_stale_unsigned_and_replayed_requests_change_nothing(world: SlackWorld) -> None:
    sim = world.sim
    request_id, root = await world.posted(world.roster.delegated)
    ts = root["ts"]

    tampers: tuple[Tamper, ...] = ("bad_signature", "stale_timestamp", "missing_signature")
    for tamper in tampers:
        answer = await sim.click(AGENT, BOARD, ts, "board_approve", tamper=tamper)
        assert answer.status == 401, tamper
    forged_command = await sim.slash_command(AGENT, BOARD, text="report", tamper="bad_signature")
    assert forged_command.status == 401
    assert await world.status(request_id) == "pending"

    # A genuine nudge, then the same bytes again: the replay is refused and does nothing.
    assert (await sim.click(AGENT, BOARD, ts, "board_nudge")).status == 200
    await wait_thread(sim, BOARD, ts, 1)
    replay = await sim.replay_last()
    assert replay.status == 401
    assert "replayed" in replay.body
    # Had the replay gone through, its refusal ("nudged less than an hour ago") would show up
    # before the answer to a command sent after it.
    await sim.slash_command(AGENT, BOARD, text="help")
    await wait_ephemeral(sim, AGENT, "`/likeness` on your agency's board channel")
    assert not [e for e in sim.ephemerals(user=AGENT) if "less than an hour" in e["text"]]
    assert [a for a in await world.audit(request_id) if a[0].startswith("request.nudge")] == [
        ("request.nudged", AGENT)
    ]
    assert len(sim.thread(BOARD, ts)) == 1
    async with world.desk.db.transaction() as session:
        reports = (await session.execute(select(Notice.id).where(Notice.kind == "report"))).all()
    assert reports == []


# ---------------------------------------------------------------- races


async def test_telegram_tap_and_slack_click_at_once_exactly_one_wins_and_the_other_is_told(
    world: SlackWorld,
) -> None:
    sim = world.sim
    artist = world.roster.delegated
    # "together": both at once, either may win. "slack_first": the click is acknowledged before
    # its decision runs, and the tap lands while it does. "telegram_first": the click surely loses.
    for order in ("together", "slack_first", "telegram_first"):
        request_id, root = await world.posted(artist)
        told_before = len(sim.ephemerals(user=AGENT))

        async def tap(rid: str = request_id) -> workflow.Refused | None:
            try:
                await world.artist_decides(rid, artist)
            except workflow.Refused as why:
                return why
            return None

        click = sim.click(AGENT, BOARD, root["ts"], "board_approve")
        if order == "together":
            telegram_lost, _ = await asyncio.gather(tap(), click)
        elif order == "slack_first":
            await click
            telegram_lost = await tap()
        else:
            telegram_lost = await tap()
            await click
        await wait_status(sim, BOARD, root["ts"], "Approved")
        async with world.desk.db.transaction() as session:
            decisions = list(
                (await session.execute(select(Decision).where(Decision.request_id == request_id))).scalars()
            )
        assert len(decisions) == 1, (order, decisions)
        if decisions[0].channel == "telegram":
            assert telegram_lost is None
            told = await wait_new_ephemerals(sim, AGENT, told_before)
            assert told[0]["text"].startswith(":lock: Too late: it is *approved* — decided by *Li Wei*")
            assert "(the artist, in Telegram) at <!date^" in told[0]["text"]
        else:
            assert order != "telegram_first"
            assert isinstance(telegram_lost, workflow.AlreadyDecided)
            assert telegram_lost.details["decided_by"] == "agency"
            assert telegram_lost.details["decided_by_name"] == "kim.agent"
            assert telegram_lost.details["channel"] == "slack"
            assert telegram_lost.details["decided_at"]


# ---------------------------------------------------------------- /likeness


async def test_slash_command_pending_status_report_and_help(world: SlackWorld) -> None:
    sim = world.sim
    request_id, _ = await world.posted(world.roster.delegated, project_title="Slash Story")

    command = functools.partial(world.command, user=PARTNER)

    pending = await command("pending")
    assert pending.startswith("*") and "waiting for a decision at Star Agency" in pending
    assert f"`{request_id}` *Slash Story* — Li Wei" in pending

    status = await command(f"status {request_id}")
    assert status == f"{request_id}: pending"
    shown = next(e for e in sim.ephemerals(user=PARTNER) if e["text"] == status)
    assert any("Waiting for Li Wei" in str(b) for b in shown["blocks"])
    assert "board_approve" not in str(shown["blocks"])  # a status answer has no buttons
    assert "No request `req_nope`" in await command("status req_nope")

    assert "on its way" in await command("report")
    files = await sim.wait_for(lambda: sim.files(BOARD) if len(sim.files(BOARD)) >= 2 else [], timeout=15)
    png = next(f for f in files if f["name"].endswith(".png"))
    csv = next(f for f in files if f["name"].endswith(".csv"))
    assert sim.file_bytes(png["id"]).startswith(b"\x89PNG")
    assert sim.file_bytes(csv["id"]).startswith(b"occurred_at,")
    report_message = next(m for m in sim.messages(BOARD) if m["files"])
    assert report_message["text"].startswith(":bar_chart: *Likeness usage report — Star Agency*")

    for nonsense in ("", "dance", "status", "pending now"):
        assert (await command(nonsense)).startswith("*`/likeness` on your agency's board channel:*")
    assert "Only the members listed" in await command("pending", user=STRANGER)
    assert "Only the members listed" in await command("report", user=STRANGER)
    # Each of the stranger's tries is on the agency's record.
    assert [a for a in await world.audit(world.roster.agency) if a[1] == STRANGER] == [
        ("slack.command.pending.refused", STRANGER),
        ("slack.command.report.refused", STRANGER),
    ]
    assert "no agency's board" in await command("pending", channel=ELSEWHERE)


# ---------------------------------------------------------------- delivery


async def test_a_429_storm_loses_nothing_and_no_channel_goes_over_one_message_a_second(
    world: SlackWorld,
) -> None:
    sim = world.sim
    sim.inject("429", count=2, methods="chat.postMessage", retry_after=1)
    ids = [await world.submit(world.roster.delegated, project_title=f"Storm {n}") for n in range(3)]
    await sim.wait_for(lambda: all(roots_of(sim, BOARD, i) for i in ids), timeout=20)
    assert sim.faults() == []  # every injected 429 was met...
    assert [len(roots_of(sim, BOARD, i)) for i in ids] == [1] * 3  # ...and nothing was lost or doubled

    sim.inject("429", methods="chat.update", retry_after=1)  # edits are retried the same way
    ts = roots_of(sim, BOARD, ids[0])[0]["ts"]
    await sim.click(AGENT, BOARD, ts, "board_approve")
    await wait_status(sim, BOARD, ts, "Approved", timeout=15)
    [reply] = await wait_thread(sim, BOARD, ts, 1, timeout=15)
    assert reply.startswith(":white_check_mark: Approved")
    assert sim.faults() == []
    # The drainer takes new work only once its last batch is recorded: when a later request's
    # post shows, every notice before it is marked sent.
    await wait_root(sim, BOARD, await world.submit(world.roster.delegated, project_title="After the storm"))

    # Over the whole module, this channel never saw more than one post a second, nor a limiter 429.
    stats = sim.rate_limit_stats()[BOARD]
    assert (stats["over_limit"], stats["limited"], stats["max_per_second"]) == (0, 0, 1)
    # After each 429 the next post to the channel waited for its Retry-After.
    posts = [c for c in sim.calls("chat.postMessage") if c["params"].get("channel") == BOARD]
    for limited, following in itertools.pairwise(posts):
        if limited["status"] == 429:
            assert following["time"] - limited["time"] >= 0.95
    async with world.desk.db.transaction() as session:
        unsent = await session.execute(
            select(Notice.id).where(
                Notice.channel == "slack", Notice.request_id.in_(ids), Notice.status != "sent"
            )
        )
        assert unsent.all() == []


async def test_board_posts_queued_before_a_crash_go_out_after_the_restart(world: SlackWorld) -> None:
    sim = world.sim
    # Slack is down: the post cannot go, and the service is killed while it waits to retry.
    sim.inject("503", count=1000, methods="chat.postMessage")
    request_id = await world.submit(world.roster.delegated, project_title="Crash Course")
    await sim.wait_for(lambda: any(c["fault"] == "503" for c in sim.calls("chat.postMessage")))
    await world.restart(crash=True)
    sim.clear_faults()

    root = await wait_root(sim, BOARD, request_id, timeout=20)
    await sim.click(AGENT, BOARD, root["ts"], "board_approve")
    await wait_status(sim, BOARD, root["ts"], "Approved")  # the new process found the root it must edit
    await wait_thread(sim, BOARD, root["ts"], 1)
    assert len(roots_of(sim, BOARD, request_id)) == 1
    assert buttons(sim.message(BOARD, root["ts"])) == []


# ---------------------------------------------------------------- violations


async def violation_told(
    world: SlackWorld, artist_id: str, use: dict[str, Any], **terms: Any
) -> tuple[str, str, httpx.Response, dict[str, Any]]:
    """The artist approves a request (`terms` over the factory's) and the creator reports `use` of the
    grant: (the grant's id, the board root's ts, the API's answer, the violation's thread reply)."""
    sim = world.sim
    request_id, root = await world.posted(artist_id, **terms)
    ts = root["ts"]
    await world.artist_decides(request_id, artist_id)
    await wait_status(sim, BOARD, ts, "Approved")
    async with world.desk.db.transaction() as session:
        grant = (await session.execute(select(Grant).where(Grant.request_id == request_id))).scalar_one()
    async with world.http() as client:
        used = await client.post(f"/v1/grants/{grant.id}/usage", json=use)
    await wait_thread(sim, BOARD, ts, 2)
    return grant.id, ts, used, sim.thread(BOARD, ts)[-1]


async def test_revoke_on_behalf_under_a_violation_revokes_the_grant_in_the_members_name(
    world: SlackWorld,
) -> None:
    sim = world.sim
    use = {"kind": "publish", "media": "game", "territory": ["US"]}
    grant_id, ts, used, reply = await violation_told(world, world.roster.delegated, use)
    assert used.status_code == 409
    assert used.json()["violation"]["reasons"] == [
        "grant_not_active",
        "media_not_granted",
        "territory_not_granted",
    ]
    assert "the medium is not among those granted" in reply["text"]
    assert buttons(reply) == ["board_revoke"]

    # A stranger's click changes nothing and is told why.
    seen = len(sim.ephemerals(user=STRANGER))
    await sim.click(STRANGER, BOARD, reply["ts"], "board_revoke")
    [refused] = await wait_new_ephemerals(sim, STRANGER, seen)
    assert "Not done" in refused["text"]

    await sim.click(PARTNER, BOARD, reply["ts"], "board_revoke")
    await wait_status(sim, BOARD, ts, "Consent revoked")
    replies = await wait_thread(sim, BOARD, ts, 3)
    assert replies[2].startswith(
        f":no_entry: <@{PARTNER}> (for the agency, on behalf of Li Wei) revoked consent."
    )
    async with world.desk.db.transaction() as session:
        revoked = await session.get(Grant, grant_id)
        assert revoked is not None and revoked.status == "revoked"
    audit = await world.audit(grant_id)
    assert ("grant.revoked", PARTNER) in audit
    assert ("grant.revoke.refused", STRANGER) in audit


async def test_where_the_artist_decides_alone_a_violation_offers_no_revoke_on_behalf(
    world: SlackWorld,
) -> None:
    use = {"kind": "train", "likeness": ["voice"]}
    _, _, used, reply = await violation_told(world, world.roster.solo, use, ai_training=False)
    assert used.json()["violation"]["reasons"] == ["grant_not_active", "ai_training_not_granted"]
    assert "AI training was not granted" in reply["text"]
    assert buttons(reply) == []
