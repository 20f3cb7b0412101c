"""Creators submit outputs: each accepted type kept by its SHA-256; every refusal leaves no row
and no file. In-process over ASGI, on both databases."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot import workflow
from bot.api import create_api
from bot.clock import FrozenClock
from bot.output_files import LIMITS, MIB, OutputFiles
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, submit
from storage.tables import Output
from tests.conftest import Door
from tests.output_samples import sample
from tests.test_workflow import approve

ACCEPTED = sorted(LIMITS)


@pytest.fixture
async def outputs_desk(desk: Desk, tmp_path: Path) -> Desk:
    desk.output_files = OutputFiles(tmp_path / "data" / "outputs")
    return desk


@pytest.fixture
async def api(outputs_desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_api(outputs_desk))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


@pytest.fixture
async def parties(outputs_desk: Desk) -> Parties:
    return await make_parties(outputs_desk)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def active_grant(desk: Desk, parties: Parties, **terms: Any) -> str:
    """A grant that is active now."""
    submitted = await submit(desk, parties, starts_at=desk.clock.now().isoformat(), **terms)
    decided = await approve(desk, submitted.view.request.id, parties.artist())
    assert decided.view.grant is not None and decided.view.grant.status == "active"
    return decided.view.grant.id


@pytest.fixture
async def grant_id(outputs_desk: Desk, parties: Parties) -> str:
    """The demo creator's grant that is active now."""
    return await active_grant(outputs_desk, parties)


async def upload(
    api: httpx.AsyncClient,
    key: str,
    grant_id: str,
    data: bytes,
    media_type: str,
    description: str = "Episode 4, scene 2: the digital double at the window.",
) -> httpx.Response:
    return await api.post(
        f"/v1/grants/{grant_id}/outputs",
        files={"file": ("out.bin", data, media_type)},
        data={"description": description},
        headers=auth(key),
    )


async def stored(desk: Desk) -> tuple[int, list[Path]]:
    """How many output rows exist, and which files are kept (staged ones included)."""
    async with desk.db.transaction() as session:
        rows = (await session.execute(select(func.count()).select_from(Output))).scalar_one()
    assert desk.output_files is not None
    root = desk.output_files.root
    return rows, sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.mark.parametrize("media_type", ACCEPTED)
async def test_each_accepted_type_is_kept_by_its_hash_pending_release(
    api: httpx.AsyncClient, outputs_desk: Desk, parties: Parties, media_type: str, grant_id: str
) -> None:
    data = sample(media_type)
    answer = await upload(api, parties.api_key, grant_id, data, media_type)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    digest = hashlib.sha256(data).hexdigest()
    assert body == {"id": body["id"], "sha256": digest, "status": "pending"}
    assert outputs_desk.output_files is not None
    kept = outputs_desk.output_files.path_of(digest)
    assert kept.read_bytes() == data
    assert kept.stat().st_mode & 0o777 == 0o600
    assert kept.parent.stat().st_mode & 0o777 == 0o700
    fetched = (await api.get(f"/v1/outputs/{body['id']}", headers=auth(parties.api_key))).json()
    assert fetched["grant_id"] == grant_id and fetched["media_type"] == media_type
    assert fetched["size"] == len(data) and fetched["status"] == "pending"
    assert (await stored(outputs_desk)) == (1, [kept])


async def test_only_the_grants_creator_sees_an_output(
    api: httpx.AsyncClient, outputs_desk: Desk, parties: Parties, grant_id: str
) -> None:
    made = (await upload(api, parties.api_key, grant_id, sample("image/png"), "image/png")).json()
    other = await workflow.add_creator(outputs_desk, name="Other Studio")
    assert (await api.get(f"/v1/outputs/{made['id']}", headers=auth(other.api_key))).status_code == 404
    assert (await api.get("/v1/outputs/out_missing", headers=auth(parties.api_key))).status_code == 404


def _cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


REFUSALS = [
    ("png declared as jpeg", lambda: sample("image/png"), "image/jpeg", 415, "unsupported_media_type"),
    (
        "text declared as png",
        lambda: b"hello, this is not an image",
        "image/png",
        415,
        "unsupported_media_type",
    ),
    ("gif is not accepted", lambda: b"GIF89a" + bytes(40), "image/gif", 415, "unsupported_media_type"),
    ("empty", lambda: b"", "image/png", 422, "corrupt_file"),
    ("cut png", lambda: _cut(sample("image/png")), "image/png", 422, "corrupt_file"),
    ("cut jpeg", lambda: _cut(sample("image/jpeg")), "image/jpeg", 422, "corrupt_file"),
    ("cut webp", lambda: _cut(sample("image/webp")), "image/webp", 422, "corrupt_file"),
    ("cut mp4", lambda: sample("video/mp4")[:-10], "video/mp4", 422, "corrupt_file"),
    ("cut ogg", lambda: sample("audio/ogg")[:-5], "audio/ogg", 422, "corrupt_file"),
    ("mp3 without frames", lambda: sample("audio/mpeg")[:20], "audio/mpeg", 422, "corrupt_file"),
    ("image over 10 MiB", lambda: sample("image/png") + bytes(10 * MIB), "image/png", 413, "file_too_large"),
]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("case", "make", "media_type", "status", "code"), REFUSALS, ids=[r[0] for r in REFUSALS]
)
async def test_a_refused_file_leaves_no_row_and_no_file(
    refusing: Door,
    case: str,
    make: Any,
    media_type: str,
    status: int,
    code: str,
) -> None:
    api, outputs_desk, parties = refusing.api, refusing.desk, refusing.parties
    grant_id = await active_grant(outputs_desk, parties)
    answer = await upload(api, parties.api_key, grant_id, make(), media_type)
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert await stored(outputs_desk) == (0, [])


async def test_over_quota_is_413_and_keeps_nothing_new(
    api: httpx.AsyncClient, outputs_desk: Desk, parties: Parties, grant_id: str
) -> None:
    first = sample("image/png")
    outputs_desk.rules = outputs_desk.rules.__class__(output_quota=len(first) + 10)
    assert (await upload(api, parties.api_key, grant_id, first, "image/png")).status_code == 201
    before = await stored(outputs_desk)
    answer = await upload(api, parties.api_key, grant_id, sample("image/jpeg"), "image/jpeg")
    assert answer.status_code == 413, answer.text
    assert answer.json()["code"] == "output_quota_exceeded"
    assert await stored(outputs_desk) == before


async def test_another_creators_grant_is_404_and_keeps_nothing(
    api: httpx.AsyncClient, outputs_desk: Desk, parties: Parties, grant_id: str
) -> None:
    other = await workflow.add_creator(outputs_desk, name="Other Studio")
    answer = await upload(api, other.api_key, grant_id, sample("image/png"), "image/png")
    assert answer.status_code == 404
    assert (
        await upload(api, parties.api_key, "grt_none", sample("image/png"), "image/png")
    ).status_code == 404
    assert await stored(outputs_desk) == (0, [])


async def test_a_grant_not_active_is_409_and_keeps_nothing(
    api: httpx.AsyncClient, outputs_desk: Desk, parties: Parties, clock: FrozenClock
) -> None:
    submitted = await submit(outputs_desk, parties)  # starts tomorrow: scheduled
    decided = await approve(outputs_desk, submitted.view.request.id, parties.artist())
    assert decided.view.grant is not None
    answer = await upload(api, parties.api_key, decided.view.grant.id, sample("image/png"), "image/png")
    assert answer.status_code == 409 and answer.json()["code"] == "grant_not_active"
    revoked = await active_grant(outputs_desk, parties)
    await workflow.revoke_grant(outputs_desk, grant_id=revoked, actor=parties.artist())
    clock.advance(timedelta(seconds=1))
    answer = await upload(api, parties.api_key, revoked, sample("image/png"), "image/png")
    assert answer.status_code == 409 and answer.json()["code"] == "grant_not_active"
    assert await stored(outputs_desk) == (0, [])


async def test_the_same_file_twice_under_one_grant_is_409(
    api: httpx.AsyncClient, outputs_desk: Desk, parties: Parties, grant_id: str
) -> None:
    first = await upload(api, parties.api_key, grant_id, sample("image/png"), "image/png")
    again = await upload(api, parties.api_key, grant_id, sample("image/png"), "image/png")
    assert again.status_code == 409 and again.json() | {"detail": ""} == {
        "detail": "",
        "code": "output_exists",
        "id": first.json()["id"],
    }
    assert (await stored(outputs_desk))[0] == 1


async def test_missing_parts_and_a_json_body_are_refused_plainly(
    api: httpx.AsyncClient, outputs_desk: Desk, parties: Parties, grant_id: str
) -> None:
    url, headers = f"/v1/grants/{grant_id}/outputs", auth(parties.api_key)
    no_file = await api.post(
        url, data={"description": "a scene"}, files={"x": ("a", b"1", "text/plain")}, headers=headers
    )
    assert no_file.status_code == 422
    no_text = await api.post(
        url, files={"file": ("a.png", sample("image/png"), "image/png")}, headers=headers
    )
    assert no_text.status_code == 422
    blank = await upload(api, parties.api_key, grant_id, sample("image/png"), "image/png", description="  ")
    assert blank.status_code == 422
    as_json = await api.post(url, json={"url": "https://example.com/a.png"}, headers=headers)
    assert as_json.status_code == 422  # a URL body without sha256, media_type, description
    assert await stored(outputs_desk) == (0, [])


async def test_anyone_can_check_whether_a_file_was_released(
    api: httpx.AsyncClient, outputs_desk: Desk, parties: Parties, grant_id: str
) -> None:
    data = sample("image/jpeg")
    made = (await upload(api, parties.api_key, grant_id, data, "image/jpeg")).json()
    digest = hashlib.sha256(data).hexdigest()
    pending = (await api.get(f"/public/outputs/{digest}")).json()
    assert pending["released"] is False and pending["releases"] == []
    await workflow.decide_output(outputs_desk, output_id=made["id"], actor=parties.artist(), release=True)
    answer = await api.get(f"/public/outputs/{digest.upper()}")
    assert answer.status_code == 200
    body = answer.json()
    assert body["released"] is True
    [release] = body["releases"]
    assert release["grant_id"] == grant_id and release["in_force"] is True
    grant = (await api.get(f"/v1/grants/{grant_id}", headers=auth(parties.api_key))).json()
    assert release["valid_until"] == grant["ends_at"].replace("+00:00", "Z")
    assert release["receipt"]["output"]["sha256"] == digest
    page = (await api.get(f"/g/{grant_id}")).text
    assert f'href="/public/outputs/{digest}"' in page
    assert (await api.get(f"/public/outputs/{'0' * 64}")).json()["released"] is False
    assert (await api.get("/public/outputs/not-a-hash")).status_code == 422


@asynccontextmanager
async def serving_files() -> AsyncIterator[str]:
    """A loopback HTTP server: /poster.png, /missing (404), /moved (302 to the poster); its URL."""
    from aiohttp import web

    async def poster(_request: web.Request) -> web.Response:
        return web.Response(body=sample("image/png"), content_type="image/png")

    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/poster.png")

    app = web.Application()
    app.router.add_get("/poster.png", poster)
    app.router.add_get("/moved", moved)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def file_server() -> AsyncIterator[str]:
    """`serving_files` for one test."""
    async with serving_files() as url:
        yield url


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def module_file_server() -> AsyncIterator[str]:
    """`serving_files` for the module's refused fetches."""
    async with serving_files() as url:
        yield url


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def refusing(door: Door, tmp_path_factory: pytest.TempPathFactory) -> Door:
    """The door, its desk keeping outputs: shared by the module's refusals, none of which keeps one
    (each checks that no output row or file exists)."""
    door.desk.output_files = OutputFiles(tmp_path_factory.mktemp("outputs") / "data" / "outputs")
    return door


async def by_url(
    desk: Desk, key: str, grant_id: str, url: str, *, private: bool, **extra: str
) -> httpx.Response:
    from bot.webhook_address import WebhookPolicy

    app = create_api(desk)
    app.state.output_fetch_policy = WebhookPolicy(allow_private=private, allow_http=private)
    body = {
        "url": url,
        "sha256": hashlib.sha256(sample("image/png")).hexdigest(),
        "media_type": "image/png",
        "description": "The poster, too large to upload",
    } | extra
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
        return await client.post(f"/v1/grants/{grant_id}/outputs", json=body, headers=auth(key))


async def test_an_output_named_by_url_is_fetched_checked_and_kept(
    outputs_desk: Desk, parties: Parties, file_server: str, grant_id: str
) -> None:
    answer = await by_url(outputs_desk, parties.api_key, grant_id, f"{file_server}/poster.png", private=True)
    assert answer.status_code == 201, answer.text
    assert answer.json()["sha256"] == hashlib.sha256(sample("image/png")).hexdigest()
    assert (await stored(outputs_desk))[0] == 1


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("path", "private", "extra", "status", "code"),
    [
        ("/poster.png", False, {}, 422, "fetch_failed"),  # a loopback address: refused like a webhook
        ("/missing", True, {}, 422, "fetch_failed"),
        ("/moved", True, {}, 422, "fetch_failed"),  # redirects are not followed
        ("/poster.png", True, {"sha256": "0" * 64}, 422, "sha256_mismatch"),
        ("/poster.png", True, {"media_type": "image/gif"}, 415, "unsupported_media_type"),
        ("/poster.png", True, {"media_type": "image/jpeg"}, 415, "unsupported_media_type"),
    ],
    ids=["private address", "404", "redirect", "wrong sha256", "gif", "declared jpeg"],
)
async def test_a_refused_fetch_keeps_nothing(
    refusing: Door,
    module_file_server: str,
    path: str,
    private: bool,
    extra: dict[str, str],
    status: int,
    code: str,
) -> None:
    outputs_desk, parties, file_server = refusing.desk, refusing.parties, module_file_server
    grant_id = await active_grant(outputs_desk, parties)
    answer = await by_url(
        outputs_desk, parties.api_key, grant_id, file_server + path, private=private, **extra
    )
    assert answer.status_code == status, answer.text
    assert answer.json()["code"] == code
    assert await stored(outputs_desk) == (0, [])


@pytest.mark.asyncio(loop_scope="module")
async def test_a_malformed_url_body_is_a_field_422(refusing: Door) -> None:
    outputs_desk, parties = refusing.desk, refusing.parties
    grant_id = await active_grant(outputs_desk, parties)
    answer = await by_url(
        outputs_desk, parties.api_key, grant_id, "ftp://example.com/a.png", private=False, sha256="x"
    )
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "sha256"]
    refused = await by_url(outputs_desk, parties.api_key, grant_id, "ftp://example.com/a.png", private=False)
    assert refused.status_code == 422 and refused.json()["code"] == "fetch_failed"
    assert await stored(outputs_desk) == (0, [])
