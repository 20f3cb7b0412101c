"""The Slack Web API simulator, driven by the real slack_sdk and slack-bolt over HTTP."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from sandbox.slack import SlackSimulator, Tamper, sign_request
from tests.conftest import FakeClock, running_module

TOKEN = "xoxb-test-token"
SECRET = "test-signing-secret"
AGENCY = "C0AGENCY"
OTHER = "C0OTHER"
AGENT = "U0AGENT"

# A real 1x1 PNG, so the round trip is checked on binary data with NULs and high bytes.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
CSV = 'id,name,use\n1,Ann Actor,dubbing\n2,Bo Bit,"ad, TV"\n'

APPROVE_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "*Request 42*"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "value": "req-42",
                "text": {"type": "plain_text", "text": "Approve"},
            },
            {
                "type": "button",
                "action_id": "deny",
                "value": "req-42",
                "text": {"type": "plain_text", "text": "Deny"},
            },
        ],
    },
]

DENY_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "deny_reason",
    "private_metadata": "req-42",
    "title": {"type": "plain_text", "text": "Deny"},
    "submit": {"type": "plain_text", "text": "Send"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "reason_text"},
        },
        {
            "type": "input",
            "block_id": "kind",
            "label": {"type": "plain_text", "text": "Kind"},
            "element": {
                "type": "static_select",
                "action_id": "kind_choice",
                "options": [
                    {"text": {"type": "plain_text", "text": "Terms"}, "value": "terms"},
                    {"text": {"type": "plain_text", "text": "Money"}, "value": "money"},
                ],
            },
        },
    ],
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sim(clock: FakeClock) -> AsyncIterator[SlackSimulator]:
    simulator = SlackSimulator(bot_token=TOKEN, signing_secret=SECRET, clock=clock)
    simulator.add_channel(AGENCY, "agency")
    simulator.add_channel(OTHER, "other")
    simulator.add_user(AGENT, "agent.smith")
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
def client(sim: SlackSimulator) -> AsyncWebClient:
    # No retry handlers: the tests want to see exactly what the simulator answered.
    return AsyncWebClient(token=TOKEN, base_url=sim.api_base_url, retry_handlers=[])


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}/slack/events"
    finally:
        await runner.cleanup()


@dataclass
class RawApp:
    """An app that checks Slack's signature with slack_sdk and keeps what it received."""

    received: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        valid = SignatureVerifier(SECRET).is_valid(
            body, request.headers.get("X-Slack-Request-Timestamp"), request.headers.get("X-Slack-Signature")
        )
        form = dict(urllib.parse.parse_qsl(body))
        self.received.append(
            {
                "valid": valid,
                "body": body,
                "headers": dict(request.headers),
                "content_type": request.content_type,
                "form": form,
                "payload": json.loads(form["payload"]) if "payload" in form else None,
            }
        )
        if not valid:
            return web.Response(status=401, text="invalid signature")
        if self.reply is None:
            return web.Response(status=200)
        return web.json_response(self.reply)


@pytest.fixture
async def raw_app(sim: SlackSimulator) -> AsyncIterator[RawApp]:
    app = RawApp()
    web_app = web.Application()
    web_app.router.add_post("/slack/events", app.handle)
    async with serve(web_app) as url:
        sim.app_url = url
        yield app


@pytest.fixture
async def bolt(sim: SlackSimulator) -> AsyncIterator[AsyncApp]:
    app = AsyncApp(
        client=AsyncWebClient(token=TOKEN, base_url=sim.api_base_url, retry_handlers=[]),
        signing_secret=SECRET,
    )
    async with serve(app.web_app(path="/slack/events")) as url:
        sim.app_url = url
        yield app


async def post_request_card(client: AsyncWebClient) -> str:
    response = await client.chat_postMessage(channel=AGENCY, text="Request 42", blocks=APPROVE_BLOCKS)
    return str(response["ts"])


# ---------------------------------------------------------------------- Web API


async def test_auth_test_accepts_the_bot_token_and_refuses_a_wrong_or_missing_one(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    answer = await client.auth_test()
    assert answer["user_id"] == sim.bot_user_id
    assert answer["team_id"] == sim.team_id
    assert answer["bot_id"] == sim.bot_id

    with pytest.raises(SlackApiError) as wrong:
        await AsyncWebClient(token="xoxb-wrong", base_url=sim.api_base_url).auth_test()
    assert wrong.value.response.status_code == 200
    assert wrong.value.response["error"] == "invalid_auth"

    with pytest.raises(SlackApiError) as missing:
        await AsyncWebClient(base_url=sim.api_base_url).auth_test()
    assert missing.value.response["error"] == "not_authed"

    async with aiohttp.ClientSession() as http:
        async with http.post(sim.api_base_url + "auth.test", data={"token": TOKEN}) as resp:
            assert (await resp.json())["ok"] is True


async def test_message_thread_reply_and_update_show_up_in_messages(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    posted = await client.chat_postMessage(channel=AGENCY, text="Request 42: pending", blocks=APPROVE_BLOCKS)
    root_ts = posted["ts"]
    assert posted["channel"] == AGENCY
    assert posted["message"]["blocks"][1]["elements"][0]["action_id"] == "approve"

    reply = await client.chat_postMessage(channel=AGENCY, text="Artist nudged", thread_ts=root_ts)
    updated = await client.chat_update(
        channel=AGENCY, ts=root_ts, text="Request 42: approved", blocks=APPROVE_BLOCKS[:1]
    )
    assert updated["ts"] == root_ts

    [root] = sim.messages(AGENCY)
    assert root["ts"] == root_ts
    assert root["text"] == "Request 42: approved"
    assert root["blocks"] == APPROVE_BLOCKS[:1]
    assert [e["text"] for e in root["edits"]] == ["Request 42: pending"]
    assert root["edits"][0]["blocks"] == APPROVE_BLOCKS
    assert [r["text"] for r in root["replies"]] == ["Artist nudged"]
    assert sim.thread(AGENCY, root_ts)[0]["ts"] == reply["ts"]
    assert sim.messages(OTHER) == []


async def test_broadcast_reply_stays_in_its_thread_and_can_be_listed_with_the_roots(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    root_ts = await post_request_card(client)
    await client.chat_postMessage(channel=AGENCY, text="Approved", thread_ts=root_ts, reply_broadcast=True)

    assert [m["text"] for m in sim.messages(AGENCY)] == ["Request 42"]
    assert [m["text"] for m in sim.messages(AGENCY, include_broadcasts=True)] == ["Request 42", "Approved"]
    assert sim.thread(AGENCY, root_ts)[0]["reply_broadcast"] is True


async def test_unknown_channel_and_unknown_ts_get_slack_errors(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as no_channel:
        await client.chat_postMessage(channel="C0NOPE", text="hi")
    assert no_channel.value.response["error"] == "channel_not_found"

    with pytest.raises(SlackApiError) as no_message:
        await client.chat_update(channel=AGENCY, ts="1.000001", text="edit")
    assert no_message.value.response["error"] == "message_not_found"


async def test_ephemeral_message_is_recorded_for_its_user(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    answer = await client.chat_postEphemeral(channel=AGENCY, user=AGENT, text="Only you can see this")
    [shown] = sim.ephemerals(user=AGENT)
    assert shown["message_ts"] == answer["message_ts"]
    assert shown["channel"] == AGENCY
    assert sim.ephemerals(channel=OTHER) == []


async def test_files_upload_v2_puts_a_png_and_a_csv_into_a_thread_with_bytes_intact(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    root_ts = await post_request_card(client)

    answer = await client.files_upload_v2(
        file_uploads=[
            {"file": PNG, "filename": "face.png", "title": "Reference face"},
            {"content": CSV, "filename": "uses.csv"},
        ],
        channel=AGENCY,
        thread_ts=root_ts,
        initial_comment="Evidence for request 42",
    )

    assert [f["name"] for f in answer["files"]] == ["face.png", "uses.csv"]
    [reply] = sim.thread(AGENCY, root_ts)
    assert reply["text"] == "Evidence for request 42"
    assert [(f["name"], f["mimetype"]) for f in reply["files"]] == [
        ("face.png", "image/png"),
        ("uses.csv", "text/csv"),
    ]
    png_id, csv_id = (f["id"] for f in answer["files"])
    assert sim.file_bytes(png_id) == PNG
    assert sim.file_bytes(csv_id) == CSV.encode()
    assert {f["thread_ts"] for f in sim.files(AGENCY)} == {root_ts}
    # What slack_sdk 3.48's files_upload_v2 really calls: no files.info, no legacy files.upload.
    assert [c["method"] for c in sim.calls()][1:] == [
        "files.getUploadURLExternal",
        "files.getUploadURLExternal",
        "upload",
        "upload",
        "files.completeUploadExternal",
    ]


async def test_single_file_upload_exposes_file_and_serves_it_to_the_bot_token(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    answer = await client.files_upload_v2(content=CSV, filename="report.csv", channel=AGENCY)
    url = answer["file"]["url_private"]
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert await resp.read() == CSV.encode()
        async with http.get(url) as resp:
            assert resp.status == 403
    assert sim.messages(AGENCY)[0]["files"][0]["id"] == answer["file"]["id"]


# ---------------------------------------------------------------------- rate limits and faults


async def test_fourth_quick_post_to_a_channel_gets_429_with_retry_after(
    sim: SlackSimulator, client: AsyncWebClient, clock: FakeClock
) -> None:
    for n in range(3):  # the burst
        await client.chat_postMessage(channel=AGENCY, text=f"burst {n}")

    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel=AGENCY, text="one too many")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "1"
    assert limited.value.response["error"] == "ratelimited"

    await client.chat_postMessage(channel=OTHER, text="other channels have their own bucket")
    clock.advance(1.0)
    await client.chat_postMessage(channel=AGENCY, text="after waiting")

    assert sim.rate_limited_count == 1
    assert sim.rate_limit_stats()[AGENCY] == {"posted": 4, "limited": 1, "over_limit": 1, "max_per_second": 3}
    assert len(sim.messages(AGENCY)) == 4


async def test_with_limits_off_every_post_passes_but_over_limit_is_still_counted(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    sim.rate_limits_enabled = False
    for n in range(5):
        await client.chat_postMessage(channel=AGENCY, text=f"flood {n}")
    assert sim.rate_limited_count == 0
    assert sim.rate_limit_stats()[AGENCY] == {"posted": 5, "limited": 0, "over_limit": 2, "max_per_second": 5}


async def test_tier_limits_apply_only_when_turned_on(sim: SlackSimulator, client: AsyncWebClient) -> None:
    root_ts = await post_request_card(client)
    for n in range(12):  # chat.update is tier 3: 50 a minute, burst 10
        await client.chat_update(channel=AGENCY, ts=root_ts, text=f"edit {n}")
    sim.tier_limits_enabled = True
    for n in range(10):
        await client.chat_update(channel=AGENCY, ts=root_ts, text=f"edit {n}")
    with pytest.raises(SlackApiError) as limited:
        await client.chat_update(channel=AGENCY, ts=root_ts, text="too fast")
    assert limited.value.response.status_code == 429


async def test_injected_faults_are_consumed_in_order_by_matching_calls(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    sim.inject("503", count=2, methods="chat.postMessage")
    sim.inject("500", methods=["auth.test"])
    sim.inject("429", retry_after=7)

    with pytest.raises(SlackApiError) as server_error:
        await client.auth_test()
    assert server_error.value.response.status_code == 500
    for _ in range(2):
        with pytest.raises(SlackApiError) as unavailable:
            await client.chat_postMessage(channel=AGENCY, text="hello")
        assert unavailable.value.response.status_code == 503
    with pytest.raises(SlackApiError) as limited:
        await client.chat_postMessage(channel=AGENCY, text="hello")
    assert limited.value.response.headers["Retry-After"] == "7"

    await client.chat_postMessage(channel=AGENCY, text="hello")
    assert sim.faults() == []
    assert [c["fault"] for c in sim.calls()] == ["500", "503", "503", "429", None]
    assert sim.rate_limited_count == 0  # injected 429s are not the limiter's


async def test_dropped_connection_surfaces_and_slack_sdk_default_handler_retries_it(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    sim.inject("drop", methods="auth.test")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.auth_test()

    sim.inject("drop", methods="auth.test")
    retrying = AsyncWebClient(
        token=TOKEN,
        base_url=sim.api_base_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(interval_calculator=FixedValueRetryIntervalCalculator(0))
        ],
    )
    assert (await retrying.auth_test())["ok"] is True
    assert [c["fault"] for c in sim.calls("auth.test")] == ["drop", "drop", None]


async def test_latency_fault_delays_the_answer_and_clear_faults_removes_pending_ones(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    sim.inject("latency", delay=0.2)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.2

    sim.inject("500", count=3)
    sim.clear_faults()
    await client.auth_test()


# ---------------------------------------------------------------------- acting as Slack towards the app


async def test_signed_click_reaches_bolt_which_opens_a_modal_with_the_trigger(
    sim: SlackSimulator, client: AsyncWebClient, bolt: AsyncApp
) -> None:
    seen: list[dict[str, Any]] = []

    @bolt.action("deny")
    async def on_deny(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        seen.append(body)
        await client.views_open(trigger_id=body["trigger_id"], view=DENY_MODAL)

    root_ts = await post_request_card(client)
    answer = await sim.click(AGENT, AGENCY, root_ts, "deny")

    assert answer.status == 200
    [opened] = await sim.wait_for(sim.views)
    assert opened["user_id"] == AGENT
    assert opened["view"]["callback_id"] == "deny_reason"
    assert seen[0]["actions"][0]["value"] == "req-42"
    # Bolt's single-team authorization asked the simulator who the bot is.
    assert sim.calls("auth.test")[0]["answer"]["user_id"] == sim.bot_user_id


async def test_click_with_bad_missing_or_stale_signature_is_refused_by_bolt(
    sim: SlackSimulator, client: AsyncWebClient, bolt: AsyncApp
) -> None:
    clicks: list[str] = []

    @bolt.action("approve")
    async def on_approve(ack: Any, body: dict[str, Any]) -> None:
        await ack()
        clicks.append(body["user"]["id"])

    root_ts = await post_request_card(client)
    tampers: tuple[Tamper, ...] = ("bad_signature", "missing_signature", "stale_timestamp")
    for tamper in tampers:
        answer = await sim.click(AGENT, AGENCY, root_ts, "approve", tamper=tamper)
        assert answer.status == 401, tamper
    assert clicks == []
    assert (await sim.click(AGENT, AGENCY, root_ts, "approve")).status == 200


async def test_replayed_click_passes_signature_checks_so_the_app_must_deduplicate(
    sim: SlackSimulator, client: AsyncWebClient, raw_app: RawApp
) -> None:
    root_ts = await post_request_card(client)
    await sim.click(AGENT, AGENCY, root_ts, "approve")
    again = await sim.replay_last()

    assert again.status == 200
    first, second = raw_app.received
    assert first["valid"] and second["valid"]
    assert first["body"] == second["body"]
    assert first["headers"]["X-Slack-Signature"] == second["headers"]["X-Slack-Signature"]


async def test_click_payload_is_shaped_like_slack_block_actions(
    sim: SlackSimulator, client: AsyncWebClient, raw_app: RawApp
) -> None:
    root_ts = await post_request_card(client)
    await client.chat_update(channel=AGENCY, ts=root_ts, text="Request 42 (nudged)")

    await sim.click(AGENT, AGENCY, root_ts, "approve")

    [received] = raw_app.received
    assert received["content_type"] == "application/x-www-form-urlencoded"
    timestamp = received["headers"]["X-Slack-Request-Timestamp"]
    assert received["headers"]["X-Slack-Signature"] == sign_request(SECRET, timestamp, received["body"])
    payload = received["payload"]
    assert payload["type"] == "block_actions"
    assert payload["user"] == {
        "id": AGENT,
        "username": "agent.smith",
        "name": "agent.smith",
        "team_id": sim.team_id,
    }
    assert payload["team"]["id"] == sim.team_id
    assert payload["channel"] == {"id": AGENCY, "name": "agency"}
    assert payload["container"]["type"] == "message"
    assert payload["container"]["message_ts"] == root_ts
    assert payload["container"]["channel_id"] == AGENCY
    assert payload["message"]["text"] == "Request 42 (nudged)"
    assert payload["message"]["blocks"] == APPROVE_BLOCKS
    [action] = payload["actions"]
    assert action["action_id"] == "approve"
    assert action["block_id"] == "decide"
    assert action["value"] == "req-42"
    assert action["type"] == "button"
    assert action["action_ts"]
    assert payload["trigger_id"]
    assert payload["response_url"].startswith(sim.url)
    assert payload["api_app_id"] == sim.api_app_id
    assert payload["token"] == sim.verification_token


async def test_views_open_needs_a_fresh_unused_trigger_from_a_click(
    sim: SlackSimulator, client: AsyncWebClient, raw_app: RawApp, clock: FakeClock
) -> None:
    with pytest.raises(SlackApiError) as made_up:
        await client.views_open(trigger_id="123.456.abcdef", view=DENY_MODAL)
    assert made_up.value.response["error"] == "invalid_trigger_id"

    root_ts = await post_request_card(client)
    await sim.click(AGENT, AGENCY, root_ts, "deny")
    trigger_id = raw_app.received[-1]["payload"]["trigger_id"]
    opened = await client.views_open(trigger_id=trigger_id, view=DENY_MODAL)
    assert opened["view"]["id"].startswith("V")
    with pytest.raises(SlackApiError) as reused:
        await client.views_open(trigger_id=trigger_id, view=DENY_MODAL)
    assert reused.value.response["error"] == "exchanged_trigger_id"

    await sim.click(AGENT, AGENCY, root_ts, "deny")
    clock.advance(3.1)
    with pytest.raises(SlackApiError) as expired:
        await client.views_open(trigger_id=raw_app.received[-1]["payload"]["trigger_id"], view=DENY_MODAL)
    assert expired.value.response["error"] == "expired_trigger_id"


async def deny_modal_opened(sim: SlackSimulator, client: AsyncWebClient, raw_app: RawApp) -> Any:
    """Posts a request card, clicks its Deny and opens the deny modal with the click's trigger."""
    root_ts = await post_request_card(client)
    await sim.click(AGENT, AGENCY, root_ts, "deny")
    return await client.views_open(trigger_id=raw_app.received[-1]["payload"]["trigger_id"], view=DENY_MODAL)


async def test_views_update_replaces_an_open_modal_and_refuses_a_stale_hash(
    sim: SlackSimulator, client: AsyncWebClient, raw_app: RawApp
) -> None:
    opened = await deny_modal_opened(sim, client, raw_app)
    view = opened["view"]

    updated = await client.views_update(
        view_id=view["id"], hash=view["hash"], view={**DENY_MODAL, "private_metadata": "req-43"}
    )
    assert sim.views()[0]["view"]["private_metadata"] == "req-43"
    assert updated["view"]["hash"] != view["hash"]
    with pytest.raises(SlackApiError) as stale:
        await client.views_update(view_id=view["id"], hash=view["hash"], view=DENY_MODAL)
    assert stale.value.response["error"] == "hash_conflict"


async def test_submit_view_sends_state_values_shaped_like_slack_and_applies_the_answer(
    sim: SlackSimulator, client: AsyncWebClient, raw_app: RawApp
) -> None:
    opened = await deny_modal_opened(sim, client, raw_app)
    view_id = opened["view"]["id"]

    raw_app.reply = {"response_action": "errors", "errors": {"reason": "Say why"}}
    await sim.submit_view(AGENT, view_id, {"kind": "money"})
    [still_open] = sim.views()
    assert still_open["open"] is True
    assert still_open["errors"] == {"reason": "Say why"}

    raw_app.reply = None
    await sim.submit_view(AGENT, view_id, {"reason_text": "Fee too low", "kind": "money"})
    payload = raw_app.received[-1]["payload"]
    assert payload["type"] == "view_submission"
    assert payload["user"]["id"] == AGENT
    assert payload["view"]["id"] == view_id
    assert payload["view"]["callback_id"] == "deny_reason"
    assert payload["view"]["private_metadata"] == "req-42"
    assert payload["view"]["state"]["values"] == {
        "reason": {"reason_text": {"type": "plain_text_input", "value": "Fee too low"}},
        "kind": {
            "kind_choice": {
                "type": "static_select",
                "selected_option": {"text": {"type": "plain_text", "text": "Money"}, "value": "money"},
            }
        },
    }
    assert sim.views()[0]["open"] is False


async def test_slash_command_sends_slack_form_fields(sim: SlackSimulator, raw_app: RawApp) -> None:
    answer = await sim.slash_command(AGENT, AGENCY, text="status 42")

    assert answer.status == 200
    [received] = raw_app.received
    assert received["valid"]
    form = received["form"]
    assert form["command"] == "/likeness"
    assert form["text"] == "status 42"
    assert form["user_id"] == AGENT
    assert form["channel_id"] == AGENCY
    assert form["team_id"] == sim.team_id
    assert form["token"] == sim.verification_token
    assert form["response_url"].startswith(sim.url)
    assert form["trigger_id"]


async def test_slash_command_answer_from_bolt_is_shown_to_the_user_as_ephemeral(
    sim: SlackSimulator, bolt: AsyncApp
) -> None:
    @bolt.command("/likeness")
    async def on_likeness(ack: Any, command: dict[str, Any]) -> None:
        await ack(f"Nothing pending for {command['text']}")

    await sim.slash_command(AGENT, AGENCY, text="pending")

    [shown] = sim.ephemerals(user=AGENT)
    assert shown["text"] == "Nothing pending for pending"
    assert shown["source"] == "slash_command"


async def test_respond_through_response_url_replaces_the_clicked_message(
    sim: SlackSimulator, client: AsyncWebClient, bolt: AsyncApp
) -> None:
    @bolt.action("approve")
    async def on_approve(ack: Any, respond: Any) -> None:
        await ack()
        await respond(text="Approved by agent", replace_original=True)

    root_ts = await post_request_card(client)
    await sim.click(AGENT, AGENCY, root_ts, "approve")

    await sim.wait_for(lambda: sim.calls("response_url"))
    assert sim.message(AGENCY, root_ts)["text"] == "Approved by agent"


async def test_wait_for_times_out_naming_the_recent_calls(
    sim: SlackSimulator, client: AsyncWebClient
) -> None:
    await client.auth_test()
    with pytest.raises(TimeoutError, match=r"auth\.test"):
        await sim.wait_for(lambda: sim.views(), timeout=0.05)


# ---------------------------------------------------------------------- control API and command line


async def test_control_api_lists_messages_injects_faults_and_clicks(
    sim: SlackSimulator, client: AsyncWebClient, raw_app: RawApp
) -> None:
    root_ts = await post_request_card(client)
    async with aiohttp.ClientSession(base_url=sim.url) as http:
        async with http.get("/control/messages", params={"channel": AGENCY}) as resp:
            assert [m["ts"] for m in await resp.json()] == [root_ts]
        async with http.post("/control/faults", json={"kind": "503", "methods": ["auth.test"]}) as resp:
            assert resp.status == 200
        with pytest.raises(SlackApiError):
            await client.auth_test()
        async with http.post(
            "/control/click",
            json={"user_id": AGENT, "channel": AGENCY, "message_ts": root_ts, "action_id": "approve"},
        ) as resp:
            assert (await resp.json())["status"] == 200
        async with http.get("/control/calls", params={"method": "auth.test"}) as resp:
            assert [c["status"] for c in await resp.json()] == [503]
        async with http.post("/control/reset") as resp:
            assert resp.status == 200
    assert raw_app.received[0]["payload"]["actions"][0]["action_id"] == "approve"
    assert sim.messages(AGENCY) == []


async def test_module_runs_as_a_server_until_sigterm() -> None:
    args = ("--port", "0", "--token", TOKEN, "--channel", f"{AGENCY}:agency")
    async with running_module("sandbox.slack", *args, banner_timeout=10) as line:
        base = line.split("Web API base ")[1].rstrip(")\n")
        client = AsyncWebClient(token=TOKEN, base_url=base)
        assert (await client.chat_postMessage(channel="#agency", text="hi"))["channel"] == AGENCY


# ---------------------------------------------------------------- several workspaces, installs


async def test_an_install_gives_a_token_for_its_own_workspace_only() -> None:
    sim = SlackSimulator(bot_token="xoxb-first", signing_secret="s")
    sim.add_channel("C0FIRST", "first")
    sim.add_workspace("T0OTHER", "other")
    sim.add_channel("C0OTHER", "other-board", "T0OTHER")
    sim.sign_in("T0OTHER", "U0OTHER", "C0OTHER")
    sim.redirect_url = "https://app.example/slack/oauth_redirect"
    async with sim:
        async with aiohttp.ClientSession() as browser:
            query = urllib.parse.urlencode({"client_id": sim.client_id, "scope": "chat:write", "state": "st"})
            async with browser.get(f"{sim.url}/oauth/v2/authorize?{query}", allow_redirects=False) as answer:
                assert answer.status == 302
                back = urllib.parse.urlsplit(answer.headers["Location"])
        sent = dict(urllib.parse.parse_qsl(back.query))
        assert sent["state"] == "st"
        client = AsyncWebClient(base_url=sim.api_base_url)
        with pytest.raises(SlackApiError, match="bad_client_secret"):
            await client.oauth_v2_access(client_id=sim.client_id, client_secret="wrong", code=sent["code"])
        access = await client.oauth_v2_access(
            client_id=sim.client_id, client_secret=sim.client_secret, code=sent["code"]
        )
        assert access["team"]["id"] == "T0OTHER" and access["incoming_webhook"]["channel_id"] == "C0OTHER"
        with pytest.raises(SlackApiError, match="invalid_code"):  # a code is good once
            await client.oauth_v2_access(
                client_id=sim.client_id, client_secret=sim.client_secret, code=sent["code"]
            )
        token = access["access_token"]
        other = AsyncWebClient(token=token, base_url=sim.api_base_url)
        assert (await other.auth_test())["team_id"] == "T0OTHER"
        await other.chat_postMessage(channel="C0OTHER", text="hello")
        with pytest.raises(SlackApiError, match="channel_not_found"):  # another workspace's channel
            await other.chat_postMessage(channel="C0FIRST", text="hello")
        first = AsyncWebClient(token="xoxb-first", base_url=sim.api_base_url)
        with pytest.raises(SlackApiError, match="channel_not_found"):
            await first.chat_postMessage(channel="C0OTHER", text="hello")
        assert [m["text"] for m in sim.messages("C0OTHER")] == ["hello"]
        assert sim.installed("T0OTHER")

        sim.app_url = f"{sim.url}/nowhere"  # the event is sent and signed even when the app is away
        await sim.uninstall("T0OTHER")
        assert not sim.installed("T0OTHER")
        [event] = [s for s in sim.sent_to_app() if s["kind"] == "event"]
        body = json.loads(event["body"])
        assert body["team_id"] == "T0OTHER" and body["event"]["type"] == "app_uninstalled"
        assert event["headers"]["X-Slack-Signature"] == sign_request(
            "s", event["headers"]["X-Slack-Request-Timestamp"], event["body"]
        )
        with pytest.raises(SlackApiError, match="invalid_auth"):
            await other.chat_postMessage(channel="C0OTHER", text="again")
