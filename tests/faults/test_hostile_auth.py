"""Hostile callers get nothing: a call that fails authentication writes no row, is answered 4xx
(never 5xx), is counted in /metrics and logged at most once a minute per kind; a refused but
authenticated caller is audited up to a per-hour cap. In-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot import metrics
from bot.metrics import OncePerInterval
from storage.tables import AuditEvent
from tests.faults.hostile_world import (
    MEMBER,
    STRANGER,
    TOKEN,
    WEBHOOK_SECRET,
    Hostile,
    metric,
    open_world,
    payload,
)

SOAK = os.environ.get("LIKENESS_SOAK", "") not in ("", "0")
FAILURES = "likeness_auth_failures_total"


@pytest.fixture
async def hostile(
    migrated_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[Hostile]:
    async with open_world(migrated_url, tmp_path, caplog, refusal_audit_per_hour=3) as world:
        yield world
    assert world.tracebacks() == []


async def audit_count(world: Hostile) -> int:
    async with world.service.desk.db.read() as session:
        return int((await session.execute(select(func.count()).select_from(AuditEvent))).scalar_one())


# ---------------------------------------------------------------- Slack


async def test_unsigned_forged_stale_and_malformed_slack_posts_write_nothing_and_are_counted(
    hostile: Hostile,
) -> None:
    now = str(int(time.time()))
    click = payload({"type": "block_actions", "user": {"id": MEMBER}, "actions": [{"action_id": "x"}]})
    before_rows = await hostile.rows()
    before = metric(FAILURES, kind="slack_signature")

    answers = [
        await hostile.slack_post(click, sign=False),  # no signature at all
        await hostile.slack_post(click, headers={"X-Slack-Signature": "v0=" + "0" * 64}),  # wrong
        await hostile.slack_post(click, timestamp=str(int(time.time()) - 600)),  # stale, rightly signed
        await hostile.slack_post(click, timestamp="AAAA", sign=False),  # malformed timestamp
        await hostile.slack_post(click, headers={"X-Slack-Request-Timestamp": "AAAA"}),  # signed for another
        await hostile.slack_post(click, headers={"X-Slack-Signature": "v0=\u00e9\u00e9"}),  # not ASCII
        await hostile.slack_post(b"payload=%7Bnot json", sign=False),  # unsigned and unreadable
        await hostile.slack_post(b"\xff\xfe\x00payload", sign=False),  # not UTF-8
        await hostile.slack_post(b"", timestamp=now, sign=False),  # empty
    ]

    assert [a.status_code for a in answers] == [401] * len(answers), [a.text for a in answers]
    assert await hostile.rows() == before_rows  # not one row, not even a refusal
    assert metric(FAILURES, kind="slack_signature") == before + len(answers)
    assert len(hostile.lines("(slack_signature)")) <= 1  # one log line a minute at most
    exposed = (await hostile.http.get(f"{hostile.url}/metrics")).text
    assert 'likeness_auth_failures_total{kind="slack_signature"}' in exposed


async def test_signed_but_unreadable_slack_bodies_are_400_and_write_nothing(hostile: Hostile) -> None:
    before_rows = await hostile.rows()

    answers = [
        await hostile.slack_post(b"payload=%7Bnot json"),
        await hostile.slack_post(b"payload=%5B1%2C2%5D"),  # JSON, but a list
        await hostile.slack_post(b"[1, 2]", headers={"Content-Type": "application/json"}),
        await hostile.slack_post(b'{"authorizations": 5}', headers={"Content-Type": "application/json"}),
        await hostile.slack_post(b"\xff\xfe payload"),
    ]

    assert [a.status_code for a in answers] == [400] * len(answers), [a.text for a in answers]
    assert await hostile.rows() == before_rows


async def test_a_replayed_slack_request_is_refused_counted_and_leaves_no_row(hostile: Hostile) -> None:
    genuine = await hostile.slack.slash_command(MEMBER, "hostile-board", text="pending")
    assert genuine.status == 200
    before_rows = await hostile.rows()
    before = metric(FAILURES, kind="slack_replay")

    replay = await hostile.slack.replay_last()

    assert replay.status == 401 and "replayed" in replay.body
    assert await hostile.rows() == before_rows
    assert metric(FAILURES, kind="slack_replay") == before + 1


async def test_a_huge_slack_body_is_413_and_writes_nothing(hostile: Hostile) -> None:
    before_rows = await hostile.rows()

    answer = await hostile.slack_post(b"payload=" + b"A" * (2 * 1024 * 1024), sign=False)

    assert answer.status_code == 413
    assert await hostile.rows() == before_rows


async def test_a_huge_body_sent_in_chunks_is_413_without_a_traceback(hostile: Hostile) -> None:
    before_rows = await hostile.rows()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(40):  # 2.5 MiB, with no Content-Length to refuse it by
            yield b"A" * 65536

    async def send(path: str, headers: dict[str, str]) -> int | None:
        try:
            return (
                await hostile.http.post(hostile.url + path, content=chunks(), headers=headers)
            ).status_code
        except httpx.TransportError:
            return None  # the server answered 413 and closed while the client was still sending

    stamp = str(int(time.time()))
    slack = await send(
        "/slack/events", {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64}
    )
    telegram = await send("/telegram/webhook", {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})

    assert slack in (413, None) and telegram in (413, None)
    assert await hostile.rows() == before_rows
    # The fixture then checks that no traceback reached the log.


async def test_a_strangers_likeness_is_audited_up_to_the_hourly_cap_then_only_counted(
    hostile: Hostile,
) -> None:
    # The world caps refusal rows at 3 an hour per caller.
    audited = await audit_count(hostile)
    unaudited = metric("likeness_refusals_unaudited_total", channel="slack")

    async def stranger_tries(times: int) -> None:
        for _ in range(times):
            seen = len(hostile.slack.ephemerals(user=STRANGER))
            answer = await hostile.slack.slash_command(STRANGER, "hostile-board", text="pending")
            assert answer.status == 200
            # The refusal is told after the ack; once it is shown, it was recorded (or counted).
            await hostile.slack.wait_for(lambda n=seen: hostile.slack.ephemerals(user=STRANGER)[n:])

    await stranger_tries(5)
    assert await audit_count(hostile) == audited + 3
    assert metric("likeness_refusals_unaudited_total", channel="slack") == unaudited + 2
    assert len(hostile.lines("counted, not audited")) == 1

    hostile.clock.advance(timedelta(hours=1))
    await stranger_tries(1)
    assert await audit_count(hostile) == audited + 4  # a new hour, a new allowance


# ---------------------------------------------------------------- Telegram


def _update(user_id: int = 4242) -> bytes:
    message = {
        "message_id": 1,
        "date": 1_800_000_000,
        "chat": {"id": user_id, "type": "private", "first_name": "Eve"},
        "from": {"id": user_id, "is_bot": False, "first_name": "Eve"},
        "text": "/start forged-invite",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
    }
    return json.dumps({"update_id": 77, "message": message}).encode()


async def test_telegram_webhook_calls_without_the_secret_write_nothing_and_are_counted(
    hostile: Hostile,
) -> None:
    before_rows = await hostile.rows()
    before = metric(FAILURES, kind="telegram_secret")

    answers = [
        await hostile.telegram_post(_update(), secret=None),
        await hostile.telegram_post(_update(), secret="guess"),
        await hostile.telegram_post(_update(), secret=WEBHOOK_SECRET + "x"),
        await hostile.telegram_post(_update(), secret="\u00e9" * 300),
        await hostile.telegram_post(b"\xff{not json", secret="guess"),
    ]

    assert [a.status_code for a in answers] == [403] * len(answers)
    assert await hostile.rows() == before_rows
    assert metric(FAILURES, kind="telegram_secret") == before + len(answers)
    assert len(hostile.lines("(telegram_secret)")) <= 1


async def test_telegram_webhook_bodies_that_are_no_update_are_400(hostile: Hostile) -> None:
    before_rows = await hostile.rows()

    answers = [
        await hostile.telegram_post(b"[1,"),
        await hostile.telegram_post(b"[1, 2]"),
        await hostile.telegram_post(b"\xff\xfe"),
        await hostile.telegram_post(b"[" * 100_000 + b"]" * 100_000),  # deeper than any parser's stack
        await hostile.telegram_post(b'{"update_id": "x", "message": 5}'),
        # Without an integer update_id there is no inbox key: refused before anything is stored.
        await hostile.telegram_post(b'{"update_id": 1.5}'),
        await hostile.telegram_post(b'{"update_id": true}'),
        await hostile.telegram_post(b'{"update_id": null, "message": {"message_id": 1}}'),
        await hostile.telegram_post(b'{"message": {"message_id": 1}}'),
    ]

    assert [a.status_code for a in answers] == [400] * len(answers), [a.text for a in answers]
    assert await hostile.rows() == before_rows


# ---------------------------------------------------------------- the creators' API


async def test_calls_with_a_missing_or_unknown_api_key_write_nothing_and_are_counted(
    hostile: Hostile,
) -> None:
    before_rows = await hostile.rows()
    before = metric(FAILURES, kind="api_key")
    url = f"{hostile.url}/v1/requests"

    answers = [
        await hostile.http.post(url, json={"artist_id": "art_1"}),
        await hostile.http.post(url, json={}, headers={"Authorization": "Bearer lk_guessed"}),
        await hostile.http.get(url, headers={"Authorization": "Bearer \u00e9\u00e9".encode("latin-1")}),
        await hostile.http.get(url, headers={"Authorization": "Basic dXNlcjpwYXNz"}),
    ]

    assert [a.status_code for a in answers] == [401] * len(answers), [a.text for a in answers]
    assert await hostile.rows() == before_rows
    assert metric(FAILURES, kind="api_key") == before + len(answers)


# ---------------------------------------------------------------- the log says it once a minute


def test_auth_failures_are_logged_once_a_minute_per_kind(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    gate = OncePerInterval(clock=lambda: now[0])

    for _ in range(50):
        metrics.auth_failed("slack_signature", "wrong signature", log_gate=gate)
    metrics.auth_failed("api_key", "this API key is not valid", log_gate=gate)
    now[0] += 59
    metrics.auth_failed("slack_signature", "wrong signature", log_gate=gate)
    now[0] += 1
    metrics.auth_failed("slack_signature", "wrong signature", log_gate=gate)

    lines = [r.getMessage() for r in caplog.records if "unauthenticated" in r.getMessage()]
    assert lines == [
        "refused an unauthenticated call (slack_signature): wrong signature",
        "refused an unauthenticated call (api_key): this API key is not valid",
        "refused an unauthenticated call (slack_signature): wrong signature"
        " (50 more of this kind since the last line)",
    ]


# ---------------------------------------------------------------- fuzz

_FUZZ = settings(
    max_examples=200 if SOAK else 25,
    derandomize=not SOAK,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
_header_text = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)
_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=30)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
_slack_types = st.sampled_from(
    ["block_actions", "view_submission", "shortcut", "message_action", "url_verification", "event_callback"]
)
_slack_action = st.fixed_dictionaries(
    {"action_id": st.sampled_from(["board_approve", "board_deny", "board_nudge", "other"])},
    optional={"value": st.text(max_size=60), "block_id": st.text(max_size=10)},
)
_slack_payload = st.fixed_dictionaries(
    {"type": _slack_types},
    optional={
        "user": st.fixed_dictionaries({"id": st.sampled_from([MEMBER, STRANGER, "U0NOBODY"])}),
        "actions": st.lists(_slack_action, max_size=2),
        "channel": st.fixed_dictionaries({"id": st.text(max_size=12)}),
        "container": st.dictionaries(st.sampled_from(["message_ts", "channel_id"]), st.text(max_size=12)),
        "trigger_id": st.text(max_size=12),
        "extra": _json,
    },
)
_slack_bodies = st.one_of(
    st.binary(max_size=300),
    _json.map(lambda v: payload(v)),
    _slack_payload.map(lambda v: payload(v)),
    st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=5).map(
        lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode("utf-8", "surrogatepass")
    ),
)
_slack_headers = st.fixed_dictionaries(
    {},
    optional={
        "X-Slack-Request-Timestamp": st.one_of(_header_text, st.integers(-(10**12), 10**13).map(str)),
        "X-Slack-Signature": st.one_of(_header_text, st.just("v0=" + "a" * 64)),
        "Content-Type": st.sampled_from(
            ["application/x-www-form-urlencoded", "application/json", "text/plain", "multipart/form-data"]
        ),
    },
)


@_FUZZ
@given(body=_slack_bodies, headers=_slack_headers, sign=st.booleans())
async def test_fuzzed_slack_events_never_fail_and_unsigned_ones_leave_no_trace(
    hostile: Hostile, body: bytes, headers: dict[str, str], sign: bool
) -> None:
    audited = await audit_count(hostile)
    if sign:
        headers = {k: v for k, v in headers.items() if k.startswith("Content")}
    answer = await hostile.slack_post(body, sign=sign, headers=headers)
    assert answer.status_code < 500, answer.text
    if not sign:
        assert answer.status_code in (401, 413), answer.text
        assert await audit_count(hostile) == audited
    assert hostile.tracebacks() == []


_telegram_updates = st.one_of(
    _json,
    st.fixed_dictionaries(
        {"update_id": st.integers(0, 2**31)},
        optional={
            "message": st.fixed_dictionaries(
                {
                    "message_id": st.integers(1, 10**6),
                    "date": st.integers(0, 2**31),
                    "chat": st.fixed_dictionaries(
                        {"id": st.integers(1, 10**9), "type": st.sampled_from(["private", "group"])}
                    ),
                },
                optional={
                    "text": st.text(max_size=40),
                    "from": st.fixed_dictionaries(
                        {"id": st.integers(1, 10**9), "is_bot": st.booleans(), "first_name": st.text()}
                    ),
                },
            ),
            "extra": _json,
        },
    ),
)


@_FUZZ
@given(update=_telegram_updates, raw=st.binary(max_size=200), use_raw=st.booleans(), secret=_header_text)
async def test_fuzzed_telegram_webhook_calls_never_fail_and_unauthenticated_ones_leave_no_trace(
    hostile: Hostile, update: Any, raw: bytes, use_raw: bool, secret: str
) -> None:
    body = raw if use_raw else json.dumps(update).encode()
    audited = await audit_count(hostile)

    forged = await hostile.telegram_post(body, secret=secret if secret != WEBHOOK_SECRET else None)
    genuine = await hostile.telegram_post(body)

    assert forged.status_code == 403
    assert await audit_count(hostile) == audited
    assert genuine.status_code in (200, 400), genuine.text
    assert hostile.tracebacks() == []
    assert TOKEN not in forged.text + genuine.text
