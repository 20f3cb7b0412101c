"""Records listed, shown and changed: the workflow on SQLite and PostgreSQL, the API's answers to a
deactivated artist or creator, and a policy change racing a decision."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from bot import workflow
from bot.models import Actor, ActorKind, ChannelKind, Media, Policy, RedLines
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, submit, terms_data
from storage.tables import AuditEvent, Grant, Notice
from tests.test_workflow import approve, link_artist, row_counts

AGENCY_MEMBER = "U100"


def agency_actor(parties: Parties) -> Actor:
    return Actor(ActorKind.agency, parties.agency_id, ChannelKind.slack, member=AGENCY_MEMBER)


async def audit_actions(desk: Desk) -> list[tuple[str, str, str]]:
    async with desk.db.read() as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.actor_kind, AuditEvent.actor_id).order_by(AuditEvent.seq)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
async def parties(desk: Desk) -> Parties:
    return await make_parties(desk)


async def test_records_list_and_show(desk: Desk, parties: Parties) -> None:
    agencies = await workflow.list_agencies(desk)
    assert [(a["id"], a["artists"]) for a in agencies] == [(parties.agency_id, 1)]
    shown = await workflow.show_agency(desk, parties.agency_id)
    assert shown["artist_ids"] == [parties.artist_id] and shown["slack_member_ids"] == [AGENCY_MEMBER]
    assert [a["id"] for a in await workflow.list_artists(desk, agency_id=parties.agency_id)] == [
        parties.artist_id
    ]
    artist = await workflow.show_artist(desk, parties.artist_id)
    assert artist["policy"] == "artist_only" and artist["requests"] == 0 and artist["deactivated_at"] is None
    creators = await workflow.list_creators(desk)
    assert [(c["id"], c["live_keys"]) for c in creators] == [(parties.creator_id, 1)]
    assert "api_key_hash" not in creators[0] and "webhook_secret" not in creators[0]
    with pytest.raises(workflow.NotFound):
        await workflow.show_artist(desk, "art_0000000000000000")
    with pytest.raises(workflow.NotFound):
        await workflow.list_artists(desk, agency_id="agy_0000000000000000")


async def test_an_artist_update_is_audited_with_who_and_told_to_the_artist(
    desk: Desk, parties: Parties
) -> None:
    await link_artist(desk, parties.artist_id)
    waiting = (await submit(desk, parties)).view.request
    record = await workflow.update_artist(
        desk,
        parties.artist_id,
        by="ops-anna",
        policy=Policy.agency_may_decide,
        red_lines=RedLines(media=[Media.game]),
    )
    assert record["changed"] == ["policy", "red_lines"] and record["red_lines"]["media"] == ["game"]
    assert ("artist.updated", "admin", "ops-anna") in await audit_actions(desk)
    async with desk.db.read() as session:
        told = (await session.execute(select(Notice).where(Notice.kind == "record_update"))).scalar_one()
    assert (told.channel, told.recipient_id, told.payload) == (
        "telegram",
        parties.artist_id,
        {"changes": ["policy", "red_lines"]},
    )
    async with desk.db.read() as session:
        board = (
            await session.execute(
                select(Notice).where(Notice.kind == "board_update", Notice.request_id == waiting.id)
            )
        ).scalar_one()
    assert board.payload == {"event": "artist.updated", "policy": "agency_may_decide"}
    # The same values again change nothing and tell no one.
    again = await workflow.update_artist(
        desk, parties.artist_id, by="ops-anna", policy=Policy.agency_may_decide
    )
    assert again["changed"] == []


async def test_bad_artist_updates_change_nothing(desk: Desk, parties: Parties) -> None:
    solo = await workflow.add_artist(desk, name="Solo")
    before = await row_counts(desk)
    with pytest.raises(workflow.InvalidInput):
        await workflow.update_artist(desk, solo.id, by="ops", policy=Policy.both_required)
    with pytest.raises(workflow.NotFound):
        await workflow.update_artist(desk, solo.id, by="ops", agency_id="agy_0000000000000000")
    with pytest.raises(workflow.NotFound):
        await workflow.update_artist(desk, "art_0000000000000000", by="ops", name="X")
    after = await row_counts(desk)
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"
    }
    assert (await workflow.show_artist(desk, solo.id))["policy"] == "artist_only"


async def test_agency_members_and_update(desk: Desk, parties: Parties) -> None:
    added = await workflow.change_agency_member(desk, parties.agency_id, "U200", by="ops", add=True)
    assert added["slack_member_ids"] == ["U100", "U200"] and added["changed"]
    removed = await workflow.change_agency_member(desk, parties.agency_id, "U100", by="ops", add=False)
    assert removed["slack_member_ids"] == ["U200"]
    with pytest.raises(workflow.NotFound):
        await workflow.change_agency_member(desk, parties.agency_id, "U999", by="ops", add=False)
    updated = await workflow.update_agency(
        desk, parties.agency_id, by="ops", name="Star 2", timezone="Asia/Shanghai"
    )
    assert updated["changed"] == ["name", "timezone"]
    actions = [a for a, _, _ in await audit_actions(desk)]
    assert {"agency.member_added", "agency.member_removed", "agency.updated"} <= set(actions)


async def test_a_removed_member_may_no_longer_decide(desk: Desk) -> None:
    parties = await make_parties(desk, policy=Policy.agency_may_decide)
    request = (await submit(desk, parties)).view.request
    await workflow.change_agency_member(desk, parties.agency_id, AGENCY_MEMBER, by="ops", add=False)
    with pytest.raises(workflow.NotAllowed):
        await approve(desk, request.id, agency_actor(parties))


async def test_a_deactivated_artist_takes_no_new_requests_and_keeps_grants(
    desk: Desk, parties: Parties, api: httpx.AsyncClient
) -> None:
    request = (await submit(desk, parties)).view.request
    await approve(desk, request.id, Actor(ActorKind.artist, parties.artist_id, ChannelKind.telegram))
    record = await workflow.deactivate_artist(desk, parties.artist_id, by="ops")
    assert record["deactivated_at"] is not None

    answer = await api.post(
        "/v1/requests",
        json=terms_data(desk, parties.artist_id),
        headers={"Authorization": f"Bearer {parties.api_key}"},
    )

    assert answer.status_code == 409 and answer.json()["code"] == "deactivated", answer.text
    async with desk.db.read() as session:
        grants = list((await session.execute(select(Grant))).scalars())
    assert [g.request_id for g in grants] == [request.id] and grants[0].status != "revoked"


async def test_a_deactivated_creator_is_refused_and_its_webhooks_stop(
    desk: Desk, api: httpx.AsyncClient
) -> None:
    parties = await make_parties(desk, webhook_url="https://studio.example/hook")
    headers = {"Authorization": f"Bearer {parties.api_key}"}
    assert (await api.get("/v1/requests/req_0000000000000000", headers=headers)).status_code == 404
    updated = await workflow.update_creator(desk, parties.creator_id, by="ops", name="Dream Studio 2")
    assert updated["changed"] == ["name"]

    await workflow.deactivate_creator(desk, parties.creator_id, by="ops")

    assert (await api.get("/v1/requests/req_0000000000000000", headers=headers)).status_code == 401
    async with desk.db.transaction() as session:
        from bot.workflow.desk import tell_creator
        from storage.tables import Creator

        creator = await session.get(Creator, parties.creator_id)
        assert creator is not None
        tell_creator(session, desk.clock.now(), creator, "request.approved", request_id="req_x")
    async with desk.db.read() as session:
        webhooks = list(
            (await session.execute(select(Notice.payload).where(Notice.channel == "webhook"))).scalars()
        )
    assert [w["event"] for w in webhooks] == ["creator.updated"]


async def test_a_first_webhook_url_gets_a_secret(desk: Desk, parties: Parties) -> None:
    record = await workflow.update_creator(
        desk, parties.creator_id, by="ops", webhook_url="https://studio.example/hook"
    )
    assert (
        record["webhook_secret"].startswith("whsec_")
        and record["webhook_url"] == "https://studio.example/hook"
    )


async def test_a_policy_change_racing_a_decision_applies_to_decisions_after_it(desk: Desk) -> None:
    """The agency approves while an operator lets the agency decide: whichever commits first, the
    decision reads the policy current when it runs, never a stale one."""
    for _ in range(3):
        parties = await make_parties(desk)
        request = (await submit(desk, parties)).view.request
        results = await asyncio.gather(
            approve(desk, request.id, agency_actor(parties)),
            workflow.update_artist(desk, parties.artist_id, by="ops", policy=Policy.agency_may_decide),
            return_exceptions=True,
        )
        assert not isinstance(results[1], BaseException), results[1]
        actions = [a for a, _, _ in await audit_actions(desk)]
        update_at = len(actions) - 1 - actions[::-1].index("artist.updated")
        if isinstance(results[0], BaseException):
            assert isinstance(results[0], workflow.NotAllowed), results[0]
            refused_at = len(actions) - 1 - actions[::-1].index("decision.approve.refused")
            assert refused_at < update_at
        else:
            approved_at = len(actions) - 1 - actions[::-1].index("decision.approve")
            assert update_at < approved_at
        # After the change, whatever the race did, the agency may decide.
        again = (await submit(desk, parties)).view.request
        decided = await approve(desk, again.id, agency_actor(parties))
        assert decided.view.request.status == "approved"
