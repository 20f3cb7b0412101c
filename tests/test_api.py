"""The creators' API, in-process over ASGI on both databases."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.clock import FrozenClock
from bot.receipts import parse_keys_document, verify_receipt
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, terms_data
from tests.conftest import Door
from tests.test_workflow import approve, row_counts


@pytest.fixture
async def parties(desk: Desk) -> Parties:
    return await make_parties(desk)


def auth(parties: Parties) -> dict[str, str]:
    return {"Authorization": f"Bearer {parties.api_key}"}


async def submit(api: httpx.AsyncClient, desk: Desk, parties: Parties, **overrides: Any) -> httpx.Response:
    return await api.post(
        "/v1/requests", json=terms_data(desk, parties.artist_id, **overrides), headers=auth(parties)
    )


async def test_submission_answers_201_with_the_request_as_filed(
    api: httpx.AsyncClient, desk: Desk, parties: Parties
) -> None:
    answer = await submit(api, desk, parties)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["id"].startswith("req_")
    assert body["status"] == "pending"
    assert len(body["terms_hash"]) == 64
    assert body["terms"]["territory"] == ["CN", "SG"]
    assert body["decisions"] == [] and body["grant"] is None
    fetched = await api.get(f"/v1/requests/{body['id']}", headers=auth(parties))
    assert fetched.json() == body


async def test_calls_without_a_valid_key_are_refused(
    api: httpx.AsyncClient, desk: Desk, parties: Parties
) -> None:
    assert (await api.get("/v1/requests")).status_code == 401
    wrong = await api.get("/v1/requests", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert "not valid" in wrong.json()["detail"]


async def test_another_creators_request_is_not_found(
    api: httpx.AsyncClient, desk: Desk, parties: Parties
) -> None:
    from bot import workflow

    mine = (await submit(api, desk, parties)).json()
    other = await workflow.add_creator(desk, name="Other Studio")
    answer = await api.get(f"/v1/requests/{mine['id']}", headers={"Authorization": f"Bearer {other.api_key}"})
    assert answer.status_code == 404
    withdraw = await api.post(
        f"/v1/requests/{mine['id']}/withdraw", headers={"Authorization": f"Bearer {other.api_key}"}
    )
    assert withdraw.status_code == 404
    listing = await api.get("/v1/requests", headers={"Authorization": f"Bearer {other.api_key}"})
    assert listing.json() == {"requests": []}


async def test_listing_filters_by_status(api: httpx.AsyncClient, desk: Desk, parties: Parties) -> None:
    first = (await submit(api, desk, parties)).json()
    await submit(api, desk, parties)
    await api.post(f"/v1/requests/{first['id']}/withdraw", headers=auth(parties))
    withdrawn = (await api.get("/v1/requests?status=withdrawn", headers=auth(parties))).json()["requests"]
    pending = (await api.get("/v1/requests?status=pending", headers=auth(parties))).json()["requests"]
    assert [r["id"] for r in withdrawn] == [first["id"]]
    assert len(pending) == 1
    assert (await api.get("/v1/requests?status=bogus", headers=auth(parties))).status_code == 422


async def test_idempotency_key_replays_the_first_answer_and_refuses_a_different_body(
    api: httpx.AsyncClient, desk: Desk, parties: Parties
) -> None:
    headers = auth(parties) | {"Idempotency-Key": "order-77"}
    data = terms_data(desk, parties.artist_id)
    first = await api.post("/v1/requests", json=data, headers=headers)
    again = await api.post("/v1/requests", json=data, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    before = await row_counts(desk)
    different = await api.post("/v1/requests", json=data | {"project_title": "Other"}, headers=headers)
    assert different.status_code == 422
    assert "Idempotency-Key" in different.json()["detail"]
    after = await row_counts(desk)
    assert after["requests"] == before["requests"] and after["notices"] == before["notices"]


async def withdraw(api: httpx.AsyncClient, parties: Parties, request_id: str) -> httpx.Response:
    return await api.post(f"/v1/requests/{request_id}/withdraw", headers=auth(parties))


async def withdrawn_first(api: httpx.AsyncClient, desk: Desk, parties: Parties, request_id: str) -> None:
    first = await withdraw(api, parties, request_id)
    assert first.status_code == 200 and first.json()["status"] == "withdrawn"


async def approved_first(api: httpx.AsyncClient, desk: Desk, parties: Parties, request_id: str) -> None:
    await approve(desk, request_id, parties.artist())


@pytest.mark.parametrize(
    ("settle", "status"),
    [(withdrawn_first, "withdrawn"), (approved_first, "approved")],
    ids=["withdraw_then_withdraw_again", "a_decided_request"],
)
async def test_a_request_no_longer_pending_cannot_be_withdrawn_it_is_a_conflict(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, settle: Any, status: str
) -> None:
    request_id = (await submit(api, desk, parties)).json()["id"]
    await settle(api, desk, parties, request_id)
    answer = await withdraw(api, parties, request_id)
    assert answer.status_code == 409
    assert status in answer.json()["detail"]


async def test_grant_receipt_and_usage(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    request = (await submit(api, desk, parties)).json()
    await approve(desk, request["id"], parties.artist())
    body = (await api.get(f"/v1/requests/{request['id']}", headers=auth(parties))).json()
    assert body["status"] == "approved"
    grant = body["grant"]
    assert grant["status"] == "scheduled"
    early = await api.post(
        f"/v1/grants/{grant['id']}/usage",
        json={"kind": "render", "count": 2, "likeness": ["face"]},
        headers=auth(parties),
    )
    assert early.status_code == 409
    violation = early.json()["violation"]
    assert violation["id"].startswith("vio_") and violation["reasons"] == ["grant_not_active"]
    clock.advance(timedelta(days=2))
    assert (await api.get(f"/v1/grants/{grant['id']}", headers=auth(parties))).json()["status"] == "active"
    used = await api.post(
        f"/v1/grants/{grant['id']}/usage",
        json={"kind": "publish", "media": "series", "territory": ["CN"]},
        headers=auth(parties),
    )
    assert used.status_code == 201 and used.json()["violation"] is None
    receipt = (await api.get(f"/v1/grants/{grant['id']}/receipt", headers=auth(parties))).json()
    keys = (await api.get("/.well-known/likeness-keys.json")).json()
    verify_receipt(receipt, parse_keys_document(keys))
    assert receipt["grant"]["id"] == grant["id"]


async def test_health_and_docs(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    schema = (await api.get("/openapi.json")).json()
    assert "/v1/requests" in schema["paths"]
    assert (await api.get("/docs")).status_code == 200


# ---------------------------------------------------------------- bad input changes nothing


async def _refused_without_change(
    api: httpx.AsyncClient, desk: Desk, send: Any, status: int
) -> httpx.Response:
    before = await row_counts(desk)
    answer: httpx.Response = await send()
    assert answer.status_code == status, answer.text
    after = await row_counts(desk)
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"
    }
    return answer


@pytest.mark.asyncio(loop_scope="module")
async def test_malformed_json_is_400(door: Door) -> None:
    api, desk, parties = door.api, door.desk, door.parties
    headers = auth(parties) | {"Content-Type": "application/json"}
    answer = await _refused_without_change(
        api, desk, lambda: api.post("/v1/requests", content=b'{"artist_id": ', headers=headers), 400
    )
    assert "not valid JSON" in answer.json()["detail"]


@pytest.mark.asyncio(loop_scope="module")
async def test_a_wrong_content_type_is_415(door: Door) -> None:
    api, desk, parties = door.api, door.desk, door.parties
    data = json.dumps(terms_data(desk, parties.artist_id))
    headers = auth(parties) | {"Content-Type": "text/plain"}
    await _refused_without_change(
        api, desk, lambda: api.post("/v1/requests", content=data, headers=headers), 415
    )


@pytest.mark.asyncio(loop_scope="module")
async def test_a_body_over_one_mebibyte_is_413(door: Door) -> None:
    api, desk, parties = door.api, door.desk, door.parties
    data = terms_data(desk, parties.artist_id, labeling="x" * (1024 * 1024 + 10))
    await _refused_without_change(
        api, desk, lambda: api.post("/v1/requests", json=data, headers=auth(parties)), 413
    )


@pytest.mark.asyncio(loop_scope="module")
async def test_a_streamed_body_over_one_mebibyte_is_413(door: Door) -> None:
    api, desk, parties = door.api, door.desk, door.parties

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 65536

    headers = auth(parties) | {"Content-Type": "application/json"}
    await _refused_without_change(
        api, desk, lambda: api.post("/v1/requests", content=chunks(), headers=headers), 413
    )


def _past(desk: Desk, **delta: float) -> str:
    return (desk.clock.now() - timedelta(**delta)).isoformat()


def _future(desk: Desk, **delta: float) -> str:
    return (desk.clock.now() + timedelta(**delta)).isoformat()


INVALID_FIELDS: list[tuple[str, Any, str]] = [
    ("ends_at", lambda d: _future(d, hours=1), "ends_at"),  # before starts_at (1 day ahead)
    ("ends_at", lambda d: _future(d, days=400), "ends_at"),  # window over 365 days
    ("starts_at", lambda d: _past(d, hours=1), "starts_at"),
    ("decision_due_at", lambda d: _past(d, seconds=1), "decision_due_at"),
    ("media", lambda d: ["cinema"], "media"),
    ("media", lambda d: [], "media"),
    ("likeness", lambda d: ["soul"], "likeness"),
    ("territory", lambda d: ["XX"], "territory"),
    ("territory", lambda d: ["CN", "worldwide"], "territory"),
    ("compensation", lambda d: {"amount": "10", "currency": "ABC"}, "compensation"),
    ("compensation", lambda d: {"amount": "-1", "currency": "USD"}, "compensation"),
    ("use_description", lambda d: "too short", "use_description"),
    ("use_description", lambda d: "x" * 2001, "use_description"),
    ("sensitive", lambda d: ["violent"], "sensitive"),
    ("starts_at", lambda d: "2026-12-01T09:00:00", "starts_at"),  # no time zone
    # Out of range: year 1 at +02:00 is before year 1 in UTC, 9999 at -05:00 after 9999 (found by
    # schemathesis: the conversion to UTC overflowed into a 500).
    ("ends_at", lambda d: "0001-01-01T00:00:00+02:00", "ends_at"),
    ("ends_at", lambda d: "9999-12-31T23:00:00-05:00", "ends_at"),
    ("decision_due_at", lambda d: "9999-12-31T23:59:59Z", "decision_due_at"),
    ("ai_training", lambda d: "maybe", "ai_training"),
    ("surprise", lambda d: "unknown fields are refused", "surprise"),
]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("field", "value", "loc"), INVALID_FIELDS, ids=[f"{f}-{i}" for i, (f, _, _) in enumerate(INVALID_FIELDS)]
)
async def test_each_invalid_field_gets_a_field_level_422(
    door: Door, field: str, value: Any, loc: str
) -> None:
    api, desk, parties = door.api, door.desk, door.parties
    data = terms_data(desk, parties.artist_id) | {field: value(desk)}
    answer = await _refused_without_change(
        api, desk, lambda: api.post("/v1/requests", json=data, headers=auth(parties)), 422
    )
    locations = [item["loc"] for item in answer.json()["detail"]]
    assert any(loc in location for location in locations), answer.json()


@pytest.mark.asyncio(loop_scope="module")
async def test_a_missing_field_is_named(door: Door) -> None:
    api, desk, parties = door.api, door.desk, door.parties
    data = terms_data(desk, parties.artist_id)
    del data["ai_training"]
    answer = await _refused_without_change(
        api, desk, lambda: api.post("/v1/requests", json=data, headers=auth(parties)), 422
    )
    assert ["body", "ai_training"] in [item["loc"] for item in answer.json()["detail"]]


@pytest.mark.asyncio(loop_scope="module")
async def test_an_unknown_artist_is_a_field_error(door: Door) -> None:
    api, desk, parties = door.api, door.desk, door.parties
    data = terms_data(desk, "art_doesnotexist")
    answer = await _refused_without_change(
        api, desk, lambda: api.post("/v1/requests", json=data, headers=auth(parties)), 422
    )
    assert answer.json()["detail"][0]["loc"] == ["body", "artist_id"]


async def test_a_decision_deadline_seconds_ahead_is_accepted(
    api: httpx.AsyncClient, desk: Desk, parties: Parties
) -> None:
    answer = await submit(api, desk, parties, decision_due_at=_future(desk, seconds=5))
    assert answer.status_code == 201


async def test_usage_with_bad_fields_is_refused(api: httpx.AsyncClient, desk: Desk, parties: Parties) -> None:
    request = (await submit(api, desk, parties)).json()
    grant = (await approve(desk, request["id"], parties.artist())).view.grant
    assert grant is not None
    for bad in (
        {"kind": "steal"},
        {"kind": "render", "count": 0},
        {"kind": "render", "occurred_at": _future(desk, days=1)},
        {"kind": "render", "occurred_at": "0001-01-01T00:00:00+02:00"},
        {"kind": "render", "occurred_at": "2026-11-25T09:00:00"},
    ):
        await _refused_without_change(
            api,
            desk,
            lambda bad=bad: api.post(f"/v1/grants/{grant.id}/usage", json=bad, headers=auth(parties)),
            422,
        )
    await _refused_without_change(
        api,
        desk,
        lambda: api.post("/v1/grants/grt_nope/usage", json={"kind": "other"}, headers=auth(parties)),
        404,
    )
