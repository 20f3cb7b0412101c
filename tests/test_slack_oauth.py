"""One Slack app, many workspaces: two agencies install it through their links, against the
Slack simulator and a real `likeness serve` over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from bot.render.slack import ACTION_APPROVE
from sandbox.service_process import run_cli, service_env
from storage.tables import Agency, Notice, Request, slack_bots, slack_installations
from tests.conftest import stored_status
from tests.slack_fixtures import request_of, roots_of, wait_root
from tests.slack_oauth_fixtures import (
    AGENT_A,
    AGENT_B,
    BOARD_A,
    BOARD_B,
    TEAM_A,
    TEAM_B,
    OAuthWorld,
    cli,
    start_oauth_world,
    stop_oauth_world,
)


async def running(path: Path, *, connect: bool = False) -> AsyncIterator[OAuthWorld]:
    """A world for the length of a fixture; with `connect`, both agencies have installed the app."""
    started = await start_oauth_world(path)
    try:
        if connect:
            await _connect_both(started)
        yield started
    finally:
        await stop_oauth_world(started)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[OAuthWorld]:
    """A world of the test's own, for a test that changes what the others read (an uninstall)."""
    async for started in running(tmp_path, connect=True):
        yield started


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def connected(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OAuthWorld]:
    """Both agencies installed, once for the module: each test on it looks only at its own requests."""
    async for started in running(tmp_path_factory.mktemp("oauth_connected"), connect=True):
        yield started


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def unconnected(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[OAuthWorld]:
    """No workspace installed yet, once for the module: each test on it compares the rows before and
    after its own refused steps, and only one of them installs (once)."""
    async for started in running(tmp_path_factory.mktemp("oauth_unconnected")):
        yield started


on_the_module_loop = pytest.mark.asyncio(loop_scope="module")


async def poll(condition: Callable[[], Awaitable[bool]], timeout: float = 15) -> None:
    """Waits until `condition()` holds, looking again every 50 ms, up to `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _connect_both(world: OAuthWorld) -> None:
    for team, agent, board in ((TEAM_A, AGENT_A, BOARD_A), (TEAM_B, AGENT_B, BOARD_B)):
        page = await world.install(await world.link(team), team, agent, board)
        assert page.status_code == 200, page.text
        assert world.agencies[team] in page.text


@on_the_module_loop
async def test_two_agencies_install_and_each_board_posts_with_its_own_workspace_token(
    connected: OAuthWorld,
) -> None:
    world = connected
    for team, board in ((TEAM_A, BOARD_A), (TEAM_B, BOARD_B)):
        _, shown, _ = await cli(world.env, world.cwd, "agency", "show", world.agencies[team])
        assert shown["slack_team_id"] == team
        assert shown["slack_status"] == "connected"
        assert shown["slack_channel_id"] == board

    first, second = await world.submit(TEAM_A), await world.submit(TEAM_B)

    # A channel only takes posts made with its own workspace's bot token (the simulator checks).
    root_a = await wait_root(world.sim, BOARD_A, first)
    root_b = await wait_root(world.sim, BOARD_B, second)
    assert request_of(root_a) == first and request_of(root_b) == second
    assert roots_of(world.sim, BOARD_A, second) == [] and roots_of(world.sim, BOARD_B, first) == []
    posts = world.sim.calls("chat.postMessage")
    assert posts and all(call["answer"]["ok"] for call in posts)
    async with httpx.AsyncClient(base_url=world.service.url) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text


@on_the_module_loop
async def test_a_click_from_workspace_b_is_routed_to_agency_b(connected: OAuthWorld) -> None:
    world = connected
    request_b = await world.submit(TEAM_B)
    root = await wait_root(world.sim, BOARD_B, request_b)

    answer = await world.sim.click(AGENT_B, BOARD_B, root["ts"], ACTION_APPROVE)

    assert answer.status == 200, world.service.log()[-4000:]
    await world.sim.wait_for(lambda: world.sim.message(BOARD_B, root["ts"])["edits"])
    assert await stored_status(world.desk, Request, request_b) == "approved"


@on_the_module_loop
async def test_tokens_at_rest_are_sealed_not_plaintext(connected: OAuthWorld) -> None:
    world = connected
    tokens = [token for team in (TEAM_A, TEAM_B) for token in world.sim.team(team).tokens]
    assert len(tokens) == 2
    async with world.desk.db.read() as session:
        stored = [
            *(await session.execute(select(slack_bots.c.bot_token))).scalars(),
            *(await session.execute(select(slack_installations.c.bot_token))).scalars(),
        ]
    assert len(stored) == 4
    assert all(value.startswith("fernet:") and "xoxb-" not in value for value in stored)
    raw = b"".join(p.read_bytes() for p in (world.cwd / "data").glob("likeness.db*"))
    assert not any(token.encode() in raw for token in tokens)
    assert not any(token in world.service.log() for token in tokens)


async def test_an_uninstall_marks_the_agency_disconnected_and_stops_its_board(world: OAuthWorld) -> None:
    answer = await world.sim.uninstall(TEAM_A)
    assert answer.status == 200  # acknowledged at once; the listener runs after the ack

    async def disconnected() -> bool:
        async with world.desk.db.read() as session:
            agency = await session.get(Agency, world.agencies[TEAM_A])
            return agency is not None and agency.slack_disconnected_at is not None

    await poll(disconnected)

    _, shown, _ = await cli(world.env, world.cwd, "agency", "show", world.agencies[TEAM_A])
    assert shown["slack_status"] == "disconnected" and shown["slack_disconnected_at"]
    _, other, _ = await cli(world.env, world.cwd, "agency", "show", world.agencies[TEAM_B])
    assert other["slack_status"] == "connected"
    async with world.desk.db.read() as session:
        teams = set((await session.execute(select(slack_bots.c.team_id))).scalars())
    assert teams == {TEAM_B}  # the workspace's tokens left the database

    after = await world.submit(TEAM_A)
    still = await world.submit(TEAM_B)
    await wait_root(world.sim, BOARD_B, still)

    async def given_up() -> bool:
        async with world.desk.db.read() as session:
            rows = (
                (
                    await session.execute(
                        select(Notice.status).where(Notice.request_id == after, Notice.channel == "slack")
                    )
                )
                .scalars()
                .all()
            )
        return bool(rows) and all(status != "pending" for status in rows)

    await poll(given_up)
    assert roots_of(world.sim, BOARD_A, after) == []


@on_the_module_loop
async def test_a_used_or_expired_or_forged_link_is_refused_and_nothing_is_written(
    unconnected: OAuthWorld,
) -> None:
    world = unconnected
    link = await world.link(TEAM_A)
    assert (await world.install(link, TEAM_A, AGENT_A, BOARD_A)).status_code == 200
    expiring = await world.link(TEAM_B)
    base, _, token = link.rpartition("/")
    link_id, _, signature = token.partition(".")
    forged = [
        f"{base}/{link_id}.{'0' * len(signature)}",  # someone else's signature
        f"{base}/sil_{'a' * 24}.{signature}",  # no such link
        f"{base}/{link_id}",  # no signature at all
    ]
    before = await world.counts()

    async with httpx.AsyncClient(timeout=10) as browser:
        used = await browser.get(link)
        refused = [await browser.get(url) for url in forged]
        async with httpx.AsyncClient(base_url=world.service.url) as control:
            assert (await control.post("/control/clock", json={"skip": "8d"})).status_code == 200
        expired = await browser.get(expiring)

    assert used.status_code == 410 and "used" in used.text
    assert [r.status_code for r in refused] == [404, 404, 404]
    assert expired.status_code == 410 and "expired" in expired.text
    assert await world.counts() == before
    assert len(world.sim.calls("oauth.v2.access")) == 1  # the one good install


@on_the_module_loop
async def test_connect_slack_refuses_an_unknown_agency_in_one_line(unconnected: OAuthWorld) -> None:
    world = unconnected
    before = await world.counts()
    code, out, err = await cli(world.env, world.cwd, "agency", "connect-slack", "agy_nosuch", ok=False)
    assert code == 1 and out is None
    said = [line for line in err.splitlines() if " WARNING " not in line]  # files-at-rest warnings aside
    assert said == ["error: no agency agy_nosuch"]
    assert await world.counts() == before


def test_oauth_mode_without_secrets_key_refuses_to_start(tmp_path: Path) -> None:
    env = service_env(
        tmp_path,
        SLACK_CLIENT_ID="123.456",
        SLACK_CLIENT_SECRET="client-secret",
        SLACK_SIGNING_SECRET="signing-secret",
        SLACK_API_BASE_URL="http://127.0.0.1:9/api/",
    )
    done = run_cli(env, tmp_path, "serve")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "SECRETS_KEY" in lines[0] and "Traceback" not in done.stderr

    bad = run_cli(env | {"SECRETS_KEY": "not-a-fernet-key"}, tmp_path, "serve")
    assert bad.returncode == 1 and "SECRETS_KEY" in bad.stderr and "Traceback" not in bad.stderr
    assert "not-a-fernet-key" not in bad.stderr


def test_connect_slack_needs_oauth_mode_a_public_url_and_a_clean_name(tmp_path: Path) -> None:
    key = "0" * 43 + "="  # a well-formed Fernet key (32 zero bytes)
    oauth = {"SLACK_CLIENT_ID": "1.2", "SECRETS_KEY": key, "PUBLIC_URL": "https://consent.example.com"}
    cases = {
        "SLACK_CLIENT_ID is not set": {k: v for k, v in oauth.items() if k != "SLACK_CLIENT_ID"},
        "SECRETS_KEY is not set": {k: v for k, v in oauth.items() if k != "SECRETS_KEY"},
        "PUBLIC_URL is not set": {k: v for k, v in oauth.items() if k != "PUBLIC_URL"},
    }
    for expected, extra in cases.items():
        done = run_cli(service_env(tmp_path, **extra), tmp_path, "agency", "connect-slack", "agy_x", "--json")
        said = [line for line in done.stderr.splitlines() if " WARNING " not in line]
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert len(said) == 1 and expected in said[0]
    hidden = run_cli(
        service_env(tmp_path, **oauth), tmp_path, "agency", "connect-slack", "agy_x", "--by", "a\u202eb"
    )
    assert hidden.returncode == 1 and "--by" in hidden.stderr and "Traceback" not in hidden.stderr
