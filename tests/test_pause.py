"""Pause everything: the artist (or their deciding agency, or an operator) stops every grant at once,
and resumes; on a real SQLite file and a real PostgreSQL server."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot import workflow
from bot.clock import FrozenClock
from bot.models import (
    Actor,
    ActorKind,
    ChannelKind,
    GrantStatus,
    Policy,
    UsageIn,
    UsageKind,
    ViolationReason,
    judge_use,
)
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, submit
from sandbox.service_process import service_env
from storage.audit import verify_chain
from storage.personal import open_sealed
from storage.tables import Artist, AuditEvent, Grant, Notice, Request, UsageEvent
from tests.test_cli import likeness
from tests.test_workflow import approve, link_artist, row_counts

ADMIN = Actor(ActorKind.admin, "admin", ChannelKind.cli)
HOOK = "http://127.0.0.1:9/hook"


async def grant_of(desk: Desk, parties: Parties, actor: Actor | None = None, **overrides: Any) -> str:
    """A request approved by the artist (or `actor`); returns its grant's id."""
    submitted = await submit(desk, parties, **overrides)
    decided = await approve(desk, submitted.view.request.id, actor or parties.artist())
    assert decided.view.grant is not None
    return decided.view.grant.id


async def grants(desk: Desk, *ids: str) -> list[Grant]:
    async with desk.db.read() as session:
        return [g for g in [await session.get(Grant, i) for i in ids] if g is not None]


async def statuses(desk: Desk, *ids: str) -> list[str]:
    return [g.status for g in await grants(desk, *ids)]


async def notices_about(desk: Desk, grant_id: str, event: str) -> list[tuple[str, str, str]]:
    """(channel, recipient kind, notice kind) of a grant's notices carrying `event`."""
    async with desk.db.read() as session:
        rows = (await session.execute(select(Notice).where(Notice.grant_id == grant_id))).scalars()
        return sorted((n.channel, n.recipient_kind, n.kind) for n in rows if n.payload.get("event") == event)


async def audit_rows(desk: Desk, action: str) -> list[AuditEvent]:
    async with desk.db.read() as session:
        query = select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        return list((await session.execute(query)).scalars())


async def test_pause_stops_scheduled_and_active_grants_only(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk, webhook_url=HOOK)
    now = clock.now()
    ended = await grant_of(
        desk,
        parties,
        starts_at=(now + timedelta(hours=1)).isoformat(),
        ends_at=(now + timedelta(hours=2)).isoformat(),
    )
    clock.advance(timedelta(hours=3))
    await workflow.run_sweeps(desk)
    now = clock.now()
    active = await grant_of(desk, parties, starts_at=now.isoformat())
    scheduled = await grant_of(desk, parties)
    revoked = await grant_of(desk, parties, starts_at=now.isoformat())
    await workflow.revoke_grant(desk, grant_id=revoked, actor=parties.artist())
    assert await statuses(desk, ended, active, scheduled, revoked) == [
        "expired",
        "active",
        "scheduled",
        "revoked",
    ]

    change = await workflow.pause_artist(
        desk, artist_id=parties.artist_id, actor=parties.artist(), reason="contract dispute"
    )

    assert change.grants == {active: "paused", scheduled: "paused"}
    assert await statuses(desk, ended, active, scheduled, revoked) == [
        "expired",
        "paused",
        "paused",
        "revoked",
    ]
    for grant in await grants(desk, active, scheduled):
        assert grant.paused_at == now
        assert workflow.grant_status_at(grant, now) is GrantStatus.paused
    async with desk.db.read() as session:
        artist = await session.get(Artist, parties.artist_id)
    assert artist is not None and artist.paused_at == now
    assert (artist.paused_by_kind, artist.paused_by_id, artist.pause_reason) == (
        "artist",
        parties.artist_id,
        "contract dispute",
    )
    (paused,) = await audit_rows(desk, "artist.paused")
    async with desk.db.read() as session:
        reason = await open_sealed(session, paused.data["reason"])  # sealed under the artist's key
    assert paused.data["grants"] == sorted([active, scheduled]) and reason == "contract dispute"
    assert {e.subject_id for e in await audit_rows(desk, "grant.paused")} == {active, scheduled}
    for grant_id in (active, scheduled):
        assert await notices_about(desk, grant_id, "grant.paused") == [
            ("slack", "agency", "board_update"),
            ("webhook", "creator", "status"),
        ]
    assert await notices_about(desk, ended, "grant.paused") == []
    assert await notices_about(desk, revoked, "grant.paused") == []
    async with desk.db.read() as session:
        assert (await verify_chain(session)).intact


async def test_resume_returns_each_grant_to_what_its_window_implies(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk, webhook_url=HOOK)
    now = clock.now()
    active = await grant_of(desk, parties, starts_at=now.isoformat())
    starts_soon = await grant_of(desk, parties, starts_at=(now + timedelta(hours=1)).isoformat())
    scheduled = await grant_of(desk, parties, starts_at=(now + timedelta(days=10)).isoformat())
    ends_soon = await grant_of(
        desk, parties, starts_at=now.isoformat(), ends_at=(now + timedelta(hours=2)).isoformat()
    )
    await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist())

    # While paused, time passes: one window begins, another ends; the sweeps leave paused grants alone.
    clock.advance(timedelta(hours=3))
    swept = await workflow.run_sweeps(desk)
    assert swept["activated"] == swept["expired"] == 0
    assert await statuses(desk, active, starts_soon, scheduled, ends_soon) == ["paused"] * 4
    (late,) = await grants(desk, ends_soon)
    assert workflow.grant_status_at(late, clock.now()) is GrantStatus.paused

    change = await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.artist())

    expected = {active: "active", starts_soon: "active", scheduled: "scheduled", ends_soon: "expired"}
    assert change.grants == expected
    assert await statuses(desk, active, starts_soon, scheduled, ends_soon) == list(expected.values())
    assert all(g.paused_at is None for g in await grants(desk, *expected))
    async with desk.db.read() as session:
        artist = await session.get(Artist, parties.artist_id)
    assert artist is not None and artist.paused_at is None and artist.paused_by_kind is None
    (resumed,) = await audit_rows(desk, "artist.resumed")
    assert resumed.data["grants"] == expected
    async with desk.db.read() as session:
        rows = (await session.execute(select(Notice).where(Notice.grant_id == ends_soon))).scalars()
        webhook = [
            n.payload for n in rows if n.payload.get("event") == "grant.resumed" and n.channel == "webhook"
        ]
    assert webhook and webhook[0]["status"] == "expired"
    # Paused again later: each pause is told again (no once-only key swallows the second one).
    await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    assert len(await notices_about(desk, active, "grant.paused")) == 4


async def test_pausing_twice_or_resuming_without_a_pause_is_refused_and_audited(desk: Desk) -> None:
    parties = await make_parties(desk)
    with pytest.raises(workflow.NotOpen):
        await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    before = await row_counts(desk)
    with pytest.raises(workflow.NotOpen) as refusal:
        await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    assert refusal.value.details["paused_by"] == "artist"
    after = await row_counts(desk)
    assert after["audit_events"] == before["audit_events"] + 1
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"
    }
    assert [e.data["code"] for e in await audit_rows(desk, "artist.pause.refused")] == ["not_open"]
    assert len(await audit_rows(desk, "artist.resume.refused")) == 1


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("hidden", ["\u202eesaelp", "legal\x00hold", "\x1b[31mstop"])
async def test_a_pause_reason_hiding_control_or_direction_characters_changes_nothing(
    module_desk: Desk, hidden: str
) -> None:
    desk = module_desk  # each case makes its own parties and compares only its own before and after
    parties = await make_parties(desk, webhook_url=HOOK)
    grant = await grant_of(desk, parties)
    before, was = await row_counts(desk), await statuses(desk, grant)
    with pytest.raises(workflow.InvalidInput) as refusal:
        await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist(), reason=hidden)
    assert [e.field for e in refusal.value.errors] == ["reason"]
    assert await row_counts(desk) == before  # malformed input: not even an audit row
    assert await statuses(desk, grant) == was != ["paused"]


async def test_strangers_and_other_artists_cannot_pause(desk: Desk) -> None:
    parties = await make_parties(desk)
    other = Actor(ActorKind.artist, "art_someone_else", ChannelKind.telegram)
    stranger = Actor(ActorKind.stranger, "4242", ChannelKind.telegram)
    for actor in (other, stranger):
        with pytest.raises(workflow.NotAllowed):
            await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=actor)
    with pytest.raises(workflow.NotFound):
        await workflow.pause_artist(desk, artist_id="art_nope", actor=ADMIN)
    assert len(await audit_rows(desk, "artist.pause.refused")) == 3


@pytest.mark.parametrize("policy", [Policy.agency_may_decide, Policy.both_required])
async def test_a_deciding_agency_may_pause_and_resume_its_own_pause(desk: Desk, policy: Policy) -> None:
    parties = await make_parties(desk, policy=policy)
    await link_artist(desk, parties.artist_id)
    submitted = await submit(desk, parties)
    await approve(desk, submitted.view.request.id, parties.artist())
    if policy is Policy.both_required:
        await approve(desk, submitted.view.request.id, parties.agency())
    change = await workflow.pause_artist(
        desk, artist_id=parties.artist_id, actor=parties.agency(), reason="press inquiry"
    )
    assert list(change.grants.values()) == ["paused"]
    # The artist hears of a pause made for them, in Telegram.
    async with desk.db.read() as session:
        told = (await session.execute(select(Notice).where(Notice.kind == "pause_update"))).scalars().all()
    assert [(n.recipient_id, n.payload["event"], n.payload["by"]) for n in told] == [
        (parties.artist_id, "artist.paused", "agency")
    ]
    (event,) = await audit_rows(desk, "artist.paused")
    assert event.actor_id == parties.member and event.data["on_behalf_of"] == parties.agency_id
    # The artist cannot lift the agency's pause; an unlisted member cannot either; the agency can.
    with pytest.raises(workflow.NotAllowed):
        await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    with pytest.raises(workflow.NotAllowed):
        await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.agency("U999"))
    resumed = await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.agency())
    assert list(resumed.grants.values()) == ["scheduled"]


async def test_an_agency_cannot_pause_an_artist_who_decides_alone(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.artist_only)
    with pytest.raises(workflow.NotAllowed, match="artist_only"):
        await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.agency())
    other_agency = await workflow.add_agency(
        desk, name="Other", slack_channel_id="C9", slack_member_ids=["U9"]
    )
    outsider = Actor(ActorKind.agency, other_agency.id, ChannelKind.slack, member="U9")
    with pytest.raises(workflow.NotAllowed, match="roster"):
        await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=outsider)


async def test_the_agency_cannot_resume_the_artists_pause_but_an_operator_can(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    await grant_of(desk, parties)
    await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    with pytest.raises(workflow.NotAllowed, match="only the artist"):
        await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.agency())
    change = await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=ADMIN)
    assert list(change.grants.values()) == ["scheduled"]


async def test_while_paused_the_agency_cannot_approve_and_the_artists_approval_makes_a_paused_grant(
    desk: Desk,
) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide, webhook_url=HOOK)
    first = await submit(desk, parties)
    second = await submit(desk, parties)
    await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    with pytest.raises(workflow.NotAllowed, match="paused"):
        await approve(desk, first.view.request.id, parties.agency())
    decided = await approve(desk, second.view.request.id, parties.artist())
    grant = decided.view.grant
    assert grant is not None and grant.status == "paused" and grant.paused_at is not None
    async with desk.db.read() as session:
        rows = (
            await session.execute(select(Notice).where(Notice.request_id == second.view.request.id))
        ).scalars()
        approved = [n.payload for n in rows if n.payload.get("event") == "request.approved"]
    assert any(p.get("grant", {}).get("status") == "paused" for p in approved)
    change = await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    assert change.grants == {grant.id: "scheduled"}


async def test_a_linked_creator_hears_of_the_pause_in_telegram(desk: Desk) -> None:
    parties = await make_parties(desk)
    token = await workflow.create_invite(desk, subject_kind=ActorKind.creator, subject_id=parties.creator_id)
    await workflow.redeem_invite(desk, token=token, telegram_user_id=7001, chat_id=7001)
    grant_id = await grant_of(desk, parties)
    await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    assert ("telegram", "creator", "status") in await notices_about(desk, grant_id, "grant.paused")
    await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    assert ("telegram", "creator", "status") in await notices_about(desk, grant_id, "grant.resumed")


async def test_a_revoked_paused_grant_stays_revoked_on_resume(desk: Desk) -> None:
    parties = await make_parties(desk)
    grant_id = await grant_of(desk, parties)
    await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    await workflow.revoke_grant(desk, grant_id=grant_id, actor=parties.artist())
    (grant,) = await grants(desk, grant_id)
    assert workflow.grant_status_at(grant, desk.clock.now()) is GrantStatus.revoked
    change = await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    assert change.grants == {} and await statuses(desk, grant_id) == ["revoked"]


# ---------------------------------------------------------------- usage while paused


async def test_usage_while_paused_is_a_grant_paused_violation(
    desk: Desk, api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    parties = await make_parties(desk)
    grant_id = await grant_of(desk, parties, starts_at=clock.now().isoformat())
    auth = {"Authorization": f"Bearer {parties.api_key}"}
    use = {"kind": "publish", "media": "series", "territory": ["CN"]}
    clock.advance(timedelta(hours=1))
    assert (await api.post(f"/v1/grants/{grant_id}/usage", json=use, headers=auth)).status_code == 201
    await workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    assert (await api.get(f"/v1/grants/{grant_id}", headers=auth)).json()["status"] == "paused"

    answer = await api.post(f"/v1/grants/{grant_id}/usage", json=use, headers=auth)

    assert answer.status_code == 409
    (grant,) = await grants(desk, grant_id)
    async with desk.db.read() as session:
        event = await session.get(UsageEvent, answer.json()["id"])
        terms = (await session.get(Request, grant.request_id)).terms  # type: ignore[union-attr]
    assert event is not None and event.violation and event.grant_status == "paused"
    status = workflow.grant_status_at(grant, clock.now())
    assert judge_use(terms, UsageIn.model_validate(use), status) == [ViolationReason.grant_paused]
    # A use that happened before the pause is judged by the grant as it was then.
    clock.advance(timedelta(minutes=10))
    earlier = use | {"occurred_at": (clock.now() - timedelta(minutes=20)).isoformat()}
    assert (await api.post(f"/v1/grants/{grant_id}/usage", json=earlier, headers=auth)).status_code == 201
    await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
    assert (await api.post(f"/v1/grants/{grant_id}/usage", json=use, headers=auth)).status_code == 201


# ---------------------------------------------------------------- races


async def test_pause_racing_decisions_and_usage_leaves_one_order(desk: Desk, clock: FrozenClock) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    used_grant = await grant_of(desk, parties, starts_at=clock.now().isoformat())
    for _round in range(3):
        by_artist = await submit(desk, parties)
        by_agency = await submit(desk, parties)
        usage = UsageIn(kind=UsageKind.publish, media="series", territory=["CN"])  # type: ignore[arg-type]
        results = await asyncio.gather(
            workflow.pause_artist(desk, artist_id=parties.artist_id, actor=parties.artist()),
            approve(desk, by_artist.view.request.id, parties.artist()),
            approve(desk, by_agency.view.request.id, parties.agency()),
            workflow.record_usage(desk, creator_id=parties.creator_id, grant_id=used_grant, usage=usage),
            return_exceptions=True,
        )
        paused, artist_approval, agency_approval, used = results
        assert isinstance(paused, workflow.PauseChange), paused
        assert isinstance(artist_approval, workflow.Decided), artist_approval
        assert isinstance(used, workflow.UsageRecorded), used
        # The artist's approval: before the pause, its grant was paused with the rest; after, made paused.
        new_grant = artist_approval.view.grant
        assert new_grant is not None
        assert await statuses(desk, new_grant.id, used_grant) == ["paused", "paused"]
        # The agency's approval either came first (and its grant was paused) or was refused.
        if isinstance(agency_approval, workflow.Decided):
            assert agency_approval.view.grant is not None
            assert agency_approval.view.grant.id in paused.grants
        else:
            assert isinstance(agency_approval, workflow.NotAllowed), agency_approval
        # The use was judged either before the pause (accepted) or after it (grant_paused).
        event = used.event
        if used_grant in paused.grants and event.violation:
            assert event.grant_status == "paused"
        else:
            assert not event.violation and event.grant_status == "active"
        await workflow.resume_artist(desk, artist_id=parties.artist_id, actor=parties.artist())
        clock.advance(timedelta(minutes=1))
    async with desk.db.read() as session:
        assert (await verify_chain(session)).intact


# ---------------------------------------------------------------- operators


def test_operators_pause_and_resume_from_the_command_line(tmp_path: Path) -> None:
    env = service_env(tmp_path)
    code, out, _ = likeness(env, "artist", "add", "--name", "Li", "--json")
    artist_id = json.loads(out)["id"]

    code, out, err = likeness(env, "artist", "pause", artist_id, "--reason", "legal hold", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) | {"at": None} == {"artist_id": artist_id, "at": None, "grants": {}}
    code, _, err = likeness(env, "artist", "pause", artist_id)
    assert code == 1 and err.strip() == "error: every consent of this artist is already paused"
    code, out, _ = likeness(env, "artist", "resume", artist_id)
    assert code == 0 and out.strip() == f"resumed 0 grant(s) of {artist_id}"
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")) as db:
        actions = [row[0] for row in db.execute("SELECT action FROM audit_events ORDER BY seq")]
    assert actions[-3:] == ["artist.paused", "artist.pause.refused", "artist.resumed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["artist", "pause", "art_nope"], "no artist art_nope"),
        (["artist", "resume", "art_nope"], "no artist art_nope"),
        (["artist", "pause", "ART", "--reason", "x" * 1001], "--reason"),
        (["artist", "pause", "ART", "--reason", "two\nlines"], "--reason"),
        (["artist", "resume", "ART"], "not paused"),
    ],
)
def test_bad_pause_commands_fail_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    env = service_env(tmp_path)
    _, out, _ = likeness(env, "artist", "add", "--name", "Li", "--json")
    artist_id = json.loads(out)["id"]
    code, out, err = likeness(env, *[artist_id if a == "ART" else a for a in args])
    assert code == 1 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1
