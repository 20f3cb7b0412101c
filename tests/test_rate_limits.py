"""Rate limits: per API key, and per client address on public routes and failed authentications;
over a limit is a 429 with Retry-After in the API's error shape, and writes nothing. Time is the
event loop's, moved by the test (aiolimiter reads `loop.time()`), never slept."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot import workflow
from bot.api import create_api
from bot.api.ratelimit import KeyedLimiter, RateLimits, client_address
from bot.config import ConfigError, RateLimit, load_settings
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, terms_data
from tests.faults.hostile_world import MEMBER, Hostile, metric, open_world
from tests.test_workflow import row_counts

LIMITED = "likeness_rate_limited_total"


@pytest.fixture
async def loop_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Stops the running loop's clock, then moves it forward only when the test says so.

    The calls under test do I/O and no timed waits, so nothing needs the clock to run by itself.
    """
    loop = asyncio.get_running_loop()
    now = [loop.time()]
    monkeypatch.setattr(loop, "time", lambda: now[0])

    def advance(seconds: float) -> None:
        now[0] += seconds

    return advance


@pytest.fixture
async def parties(desk: Desk) -> Parties:
    return await make_parties(desk)


def client(desk: Desk, limits: RateLimits, address: str = "203.0.113.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_api(desk, limits), client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://api")


def assert_limited(answer: httpx.Response, retry_after: str = "1") -> None:
    assert answer.status_code == 429, answer.text
    assert answer.headers["Retry-After"] == retry_after
    assert answer.json() == {
        "detail": f"too many requests; retry after {retry_after} s",
        "code": "rate_limited",
    }


async def test_an_api_key_gets_its_burst_then_429_until_the_bucket_drains(
    desk: Desk, parties: Parties, loop_clock: Callable[[float], None]
) -> None:
    limits = RateLimits.of(api=RateLimit(per_second=20, burst=40), address=RateLimit(10, 50))
    auth = {"Authorization": f"Bearer {parties.api_key}"}
    limited_before = metric(LIMITED, scope="api_key")
    async with client(desk, limits) as api:
        burst = [await api.get("/v1/requests", headers=auth) for _ in range(40)]
        rows = await row_counts(desk)
        over = await api.post("/v1/requests", json=terms_data(desk, parties.artist_id), headers=auth)
        assert [a.status_code for a in burst] == [200] * 40
        assert_limited(over)
        assert await row_counts(desk) == rows  # the refused submission wrote nothing

        loop_clock(1.0)  # 20 calls' worth drains in a second
        again = [await api.get("/v1/requests", headers=auth) for _ in range(20)]
        assert [a.status_code for a in again] == [200] * 20
        assert_limited(await api.get("/v1/requests", headers=auth))
    assert metric(LIMITED, scope="api_key") == limited_before + 2


async def test_one_keys_limit_leaves_another_key_alone(
    desk: Desk, parties: Parties, loop_clock: Callable[[float], None]
) -> None:
    other = await workflow.add_creator(desk, name="Other Studio")
    limits = RateLimits.of(api=RateLimit(per_second=1, burst=2), address=RateLimit(10, 50))
    async with client(desk, limits) as api:
        mine = [await api.get("/v1/requests", headers={"Authorization": f"Bearer {parties.api_key}"})]
        mine += [await api.get("/v1/requests", headers={"Authorization": f"Bearer {parties.api_key}"})]
        assert_limited(await api.get("/v1/requests", headers={"Authorization": f"Bearer {parties.api_key}"}))
        theirs = await api.get("/v1/requests", headers={"Authorization": f"Bearer {other.api_key}"})
    assert [a.status_code for a in mine] == [200, 200] and theirs.status_code == 200


async def test_public_routes_are_limited_per_client_address(
    desk: Desk, loop_clock: Callable[[float], None]
) -> None:
    limits = RateLimits.of(api=RateLimit(20, 40), address=RateLimit(per_second=0.5, burst=3))
    rows = await row_counts(desk)
    async with client(desk, limits, "198.51.100.1") as first, client(desk, limits, "198.51.100.2") as second:
        answers = [
            await first.get(path) for path in ("/healthz", "/metrics", "/.well-known/likeness-keys.json")
        ]
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert_limited(await first.get("/healthz"), retry_after="2")
        assert_limited(await first.get("/openapi.json"), retry_after="2")
        assert (await second.get("/healthz")).status_code == 200  # another address, its own budget
        loop_clock(2.0)
        assert (await first.get("/healthz")).status_code == 200
    assert await row_counts(desk) == rows


async def test_unknown_api_keys_spend_the_address_budget_but_a_known_key_still_works(
    desk: Desk, parties: Parties, loop_clock: Callable[[float], None]
) -> None:
    limits = RateLimits.of(api=RateLimit(20, 40), address=RateLimit(per_second=1, burst=3))
    auth = {"Authorization": f"Bearer {parties.api_key}"}
    async with client(desk, limits) as api:
        assert (await api.get("/v1/requests", headers=auth)).status_code == 200
        rows = await row_counts(desk)
        guesses = [
            await api.get("/v1/requests", headers={"Authorization": f"Bearer lk_guess{n}"}) for n in range(3)
        ]
        over = await api.post("/v1/requests", json={}, headers={"Authorization": "Bearer lk_guess9"})
        known = await api.get("/v1/requests", headers=auth)
    assert [g.status_code for g in guesses] == [401, 401, 401]
    assert_limited(over)
    assert known.status_code == 200  # a creator is never limited by what others at its address did
    assert await row_counts(desk) == rows


async def test_failed_slack_and_telegram_authentications_are_limited_per_address_but_slack_itself_is_not(
    migrated_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_world(migrated_url, tmp_path, caplog, address_rate_limit="1/m,3") as world:
        rows = await world.rows()
        forged = [await world.slack_post(b"payload=%7B%7D", sign=False) for _ in range(2)]
        forged.append(await world.telegram_post(b"{}", secret="guess"))
        over = [
            await world.slack_post(b"payload=%7B%7D", sign=False),
            await world.telegram_post(b"{}", secret="guess"),
        ]
        assert await world.rows() == rows
        genuine = await _slash(world)
    assert [f.status_code for f in forged] == [401, 401, 403]
    for answer in over:
        assert_limited(answer, retry_after="60")
    assert genuine == 200
    assert world.tracebacks() == []


async def _slash(world: Hostile) -> int:
    # Slack's own servers post from the same address here; signed calls are never address-limited.
    return (await world.slack.slash_command(MEMBER, "hostile-board", text="pending")).status


# ---------------------------------------------------------------- the limiter itself


async def test_the_limiter_forgets_the_least_recently_used_keys_past_its_bound() -> None:
    limiter = KeyedLimiter(RateLimit(per_second=1, burst=1), max_keys=3)
    for key in "abcdef":
        assert await limiter.take(key)
    assert len(limiter) == 3
    assert not await limiter.take("f")  # still remembered, still empty
    assert await limiter.take("a")  # forgotten, so full again


def test_client_addresses_are_keyed_by_ipv4_or_ipv6_64() -> None:
    assert client_address({"client": ("203.0.113.9", 1)}) == "203.0.113.9"
    assert client_address({"client": ("2001:db8:1:2:aaaa::1", 1)}) == "2001:db8:1:2::/64"
    assert client_address({"client": ("2001:db8:1:2:bbbb::9", 1)}) == "2001:db8:1:2::/64"
    assert client_address({"client": ("::ffff:198.51.100.4", 1)}) == "198.51.100.4"
    assert client_address({}) == "unknown"


def test_rate_limit_settings_read_rate_and_burst(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    settings = load_settings(api_rate_limit="20/s,40", address_rate_limit="120/m,30")
    assert settings.api_rate_limit == RateLimit(per_second=20, burst=40)
    assert settings.address_rate_limit == RateLimit(per_second=2, burst=30)
    assert load_settings().api_rate_limit == RateLimit(per_second=20, burst=40)
    for bad in ("20", "fast", "0/s,1", "20/s,0", "20/d,4"):
        with pytest.raises(ConfigError, match="API_RATE_LIMIT"):
            load_settings(api_rate_limit=bad)


def test_retry_after_is_whole_seconds_and_never_zero() -> None:
    assert KeyedLimiter(RateLimit(per_second=20, burst=40)).retry_after() == 1
    assert KeyedLimiter(RateLimit(per_second=0.25, burst=1)).retry_after() == 4
