"""Anyone can check a grant: the public JSON with its signed statement, and the page for a person."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from bot import workflow
from bot.api import create_api
from bot.clock import FrozenClock
from bot.keys import KeyRing, ProofError, parse_key_set
from bot.models import Actor, ActorKind, ChannelKind
from bot.proof import verify_statement
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, submit
from storage.tables import Artist, Grant, Request
from tests.test_workflow import approve, row_counts


@pytest.fixture
async def ring(desk: Desk, tmp_path: Path) -> Desk:
    """The desk signing with the key ring the service uses (same key file as the fixture's)."""
    desk.signer = KeyRing(tmp_path / "key.pem", tmp_path / "buttons.json")
    desk.public_url = "https://consent.example"
    return desk


@pytest.fixture
async def api(ring: Desk) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_api(ring), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


async def granted(desk: Desk, parties: Parties, **overrides: Any) -> str:
    submitted = await submit(desk, parties, **overrides)
    decided = await approve(desk, submitted.view.request.id, parties.artist())
    assert decided.view.grant is not None
    return decided.view.grant.id


@pytest.fixture
async def grant_in_force(ring: Desk, clock: FrozenClock) -> tuple[Parties, str]:
    """Fresh parties and their grant, the clock two days on (inside the factory terms)."""
    parties = await make_parties(ring)
    grant_id = await granted(ring, parties)
    clock.advance(timedelta(days=2))
    return parties, grant_id


def keys_of(desk: Desk) -> Any:
    return parse_key_set(desk.signer.public_keys_document())


async def test_public_status_shows_every_state_with_a_statement_that_verifies(
    ring: Desk, api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    parties = await make_parties(ring)
    grant_id = await granted(ring, parties)
    seen = []
    answer = await api.get(f"/public/grants/{grant_id}")
    seen.append(answer.json()["status"])
    clock.advance(timedelta(days=2))
    seen.append((await api.get(f"/public/grants/{grant_id}")).json()["status"])
    async with ring.db.transaction() as session:
        await session.execute(update(Artist).values(paused_at=clock.now()))
    seen.append((await api.get(f"/public/grants/{grant_id}")).json()["status"])
    async with ring.db.transaction() as session:
        await session.execute(update(Artist).values(paused_at=None))
    await workflow.revoke_grant(ring, grant_id=grant_id, actor=parties.artist())
    body = (await api.get(f"/public/grants/{grant_id}")).json()
    seen.append(body["status"])
    expiring = await granted(ring, parties, ends_at=(clock.now() + timedelta(days=3)).isoformat())
    clock.advance(timedelta(days=4))
    seen.append((await api.get(f"/public/grants/{expiring}")).json()["status"])
    assert seen == ["scheduled", "active", "paused", "revoked", "expired"]

    assert set(body) == {
        "id",
        "status",
        "artist",
        "creator",
        "project_title",
        "terms_hash",
        "starts_at",
        "ends_at",
        "ai_training",
        "checked_at",
        "statement",
    }
    assert body["artist"]["name"] == "Li Wei" and body["creator"]["name"] == "Dream Studio"
    fields = verify_statement(body["statement"], keys_of(ring), clock.now() - timedelta(days=4))
    assert fields == {k: v for k, v in body.items() if k != "statement"}


async def test_a_statement_fails_after_one_changed_byte_and_after_24_hours(
    ring: Desk, api: httpx.AsyncClient, clock: FrozenClock
) -> None:
    parties = await make_parties(ring)
    grant_id = await granted(ring, parties)
    statement = (await api.get(f"/public/grants/{grant_id}")).json()["statement"]
    keys = keys_of(ring)
    verify_statement(statement, keys, clock.now())
    text = json.dumps(statement)
    for position in range(0, len(text), 7):
        changed = text[:position] + chr(ord(text[position]) ^ 1) + text[position + 1 :]
        try:
            forged = json.loads(changed)
        except json.JSONDecodeError:
            continue
        if forged == statement:
            continue
        with pytest.raises(ProofError):
            verify_statement(forged, keys, clock.now())
    with pytest.raises(ProofError, match="older than 24 h"):
        verify_statement(statement, keys, clock.now() + timedelta(hours=24, seconds=1))
    with pytest.raises(ProofError, match="exactly the fields"):
        verify_statement(statement | {"status": "active", "extra": 1}, keys, clock.now())


async def test_receipts_carry_the_public_status_url(ring: Desk) -> None:
    parties = await make_parties(ring)
    grant_id = await granted(ring, parties)
    async with ring.db.read() as session:
        grant = await session.get(Grant, grant_id)
    assert grant is not None
    assert grant.receipt["status_url"] == f"https://consent.example/g/{grant_id}"


@pytest.mark.parametrize(
    "hostile",
    [
        "grt_0000000000000000",
        "nope",
        "grt_" + "a" * 5000,
        "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "..%2F..%2Fetc%2Fpasswd",
        "grt_00000000000000%00",
        "' OR 1=1 --",
        "%F0%9F%98%80",
    ],
)
async def test_hostile_or_unknown_ids_get_the_usual_404_and_change_nothing(
    ring: Desk, api: httpx.AsyncClient, hostile: str
) -> None:
    await make_parties(ring)
    before = await row_counts(ring)
    answer = await api.get(f"/public/grants/{hostile}")
    assert answer.status_code == 404
    body = answer.json()
    assert list(body) == ["detail"] and isinstance(body["detail"], str)  # as GET /v1/grants/{id}
    assert "<script>" not in body["detail"] and len(body["detail"]) < 200
    page = await api.get(f"/g/{hostile}")
    assert page.status_code == 404 and "<script>" not in page.text
    assert await row_counts(ring) == before


async def test_the_page_says_plainly_whether_the_use_is_allowed_in_either_language(
    ring: Desk, api: httpx.AsyncClient, grant_in_force: tuple[Parties, str]
) -> None:
    parties, grant_id = grant_in_force
    english = await api.get(f"/g/{grant_id}")
    assert english.status_code == 200 and english.headers["content-type"].startswith("text/html")
    assert "Allowed today" in english.text and 'lang="en"' in english.text
    assert "script-src" not in english.headers["content-security-policy"]
    assert "default-src 'none'" in english.headers["content-security-policy"]
    chinese = await api.get(f"/g/{grant_id}", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert "今天允许使用" in chinese.text and 'lang="zh-Hans"' in chinese.text
    chosen = await api.get(f"/g/{grant_id}?lang=en", headers={"Accept-Language": "zh-CN"})
    assert "Allowed today" in chosen.text
    odd = await api.get(f"/g/{grant_id}?lang=<b>x</b>", headers={"Accept-Language": "x" * 4000})
    assert odd.status_code == 200 and "<b>x</b>" not in odd.text
    await workflow.revoke_grant(ring, grant_id=grant_id, actor=parties.artist())
    revoked = await api.get(f"/g/{grant_id}?lang=zh-Hans")
    assert "不允许使用" in revoked.text and 'data-status="revoked"' in revoked.text


async def test_everything_from_the_database_is_escaped_on_the_page(
    ring: Desk, api: httpx.AsyncClient
) -> None:
    parties = await make_parties(ring)
    grant_id = await granted(ring, parties)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    async with ring.db.transaction() as session:
        await session.execute(update(Artist).values(name=evil))
        request = (await session.get(Grant, grant_id)).request_id  # type: ignore[union-attr]
        row = await session.get(Request, request)
        assert row is not None
        row.terms = row.terms | {"project_title": evil}
    page = (await api.get(f"/g/{grant_id}")).text
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;" in page


async def test_an_admin_revocation_shows_at_once(
    ring: Desk, api: httpx.AsyncClient, grant_in_force: tuple[Parties, str]
) -> None:
    _, grant_id = grant_in_force
    admin = Actor(ActorKind.admin, "admin", ChannelKind.cli)
    await workflow.revoke_grant(ring, grant_id=grant_id, actor=admin)
    assert (await api.get(f"/public/grants/{grant_id}")).json()["status"] == "revoked"
