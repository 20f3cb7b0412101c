"""`make run` without accounts: the sandbox starts, seeds its demo data once, and serves its page."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sandbox.service_process import ServiceProcess, service_env, start_service
from sandbox.wiring import ARTISTS, SANDBOX_FILE, Seeded, read_seeded, write_seeded


def make_run_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What `make run` sees on a fresh clone: no SANDBOX, no platform tokens, its own data folder."""
    env = service_env(tmp_path, **extra)
    del env["SANDBOX"]
    return env


def next_line_with(service: ServiceProcess, text: str, timeout: float = 10.0) -> str:
    """Reads the service's stdout until a line containing `text` (once per process: it keeps reading)."""
    return service.line_with(text, timeout)


def wait_until(client: httpx.Client, check: Callable[[], Any], rounds: int = 20) -> Any:
    """Re-checks after every change the simulators report (the page's own long poll); no sleeping."""
    versions = {"telegram": -1, "slack": -1}
    for _ in range(rounds):
        result = check()
        if result:
            return result
        answer = client.get("/sandbox/changes", params={**versions, "wait": 5}).json()
        versions = {"telegram": answer["telegram"], "slack": answer["slack"]}
    raise AssertionError("the condition was not met")


def chat(client: httpx.Client, user_id: int) -> list[dict[str, Any]]:
    """Everything in one artist's chat with the bot, their own messages included."""
    answer = client.get("/sandbox/telegram/messages", params={"chat_id": user_id, "include_user": "true"})
    assert answer.status_code == 200
    messages: list[dict[str, Any]] = answer.json()["messages"]
    return messages


def greeted(client: httpx.Client, user_id: int, typed: str) -> bool:
    """Whether the artist typed `typed` (a prefix) and the bot answered after it."""
    messages = chat(client, user_id)
    typed_at = [i for i, m in enumerate(messages) if not m["from_bot"] and m["text"].startswith(typed)]
    return bool(typed_at) and any(m["from_bot"] for m in messages[typed_at[-1] + 1 :])


def count_rows(database: Path, table: str) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def connected_to(root: Path, agency_id: str) -> str | None:
    """The board channel an agency's Slack install stored (None before it completes)."""
    with sqlite3.connect(root / "data" / "likeness.db") as connection:
        row = connection.execute(
            "SELECT slack_channel_id FROM agencies WHERE id = ? AND slack_team_id IS NOT NULL", (agency_id,)
        ).fetchone()
    return None if row is None else str(row[0])


def test_make_run_without_tokens_serves_the_sandbox_and_seeds_it_once(tmp_path: Path) -> None:
    env = make_run_env(tmp_path)
    service = start_service(env, tmp_path)
    try:
        line = next_line_with(service, "sandbox: open")
        assert line.strip() == f"sandbox: open {service.url}/sandbox in your browser"
        with httpx.Client(base_url=service.url, timeout=15) as client:
            page = client.get("/sandbox")
            assert page.status_code == 200 and "likeness-consent" in page.text
            assert client.get("/sandbox/static/app.js").status_code == 200
            config = client.get("/sandbox/config").json()
            assert [a["language"] for a in config["artists"]] == ["zh-Hans", "en", "en"]
            assert {a["policy"] for a in config["artists"]} == {"agency_may_decide", "artist_only"}
            key = config["creator"]["api_key"]
            assert client.get("/v1/requests", headers={"Authorization": f"Bearer {key}"}).status_code == 200
            # Linked the real way: each simulated artist typed /start <invite> and the bot answered.
            users = [a["telegram_user_id"] for a in config["artists"]]
            wait_until(client, lambda: all(greeted(client, user, "/start ") for user in users))
            channels = client.get("/sandbox/slack/channels").json()
            assert {"id": config["agency"]["channel"], "name": config["agency"]["channel_name"]} in channels
            # The second agency installed the one Slack app in its own workspace, through its link.
            moonrise = config["agencies"][1]
            assert {"id": moonrise["channel"], "name": moonrise["channel_name"]} in channels
            wait_until(client, lambda: connected_to(tmp_path, moonrise["id"]) == moonrise["channel"])
            hana = next(a for a in config["artists"] if a["key"] == "hana")
            filed = client.post(
                "/v1/requests",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "artist_id": hana["id"],
                    "project_title": "Moonrise Promo",
                    "use_description": "A digital double in one advertisement.",
                    "media": ["advertising"],
                    "likeness": ["face"],
                    "territory": ["JP"],
                    "starts_at": "2030-01-01T00:00:00Z",
                    "ends_at": "2030-02-01T00:00:00Z",
                    "ai_training": False,
                    "compensation": {"amount": "100", "currency": "JPY"},
                },
            )
            assert filed.status_code == 201, filed.text
            # Posted on the second agency's board, in its own workspace, with its own token.
            board = f"/sandbox/slack/messages?channel={moonrise['channel']}"
            wait_until(client, lambda: client.get(board).json())
    finally:
        service.stop()
    assert "Traceback" not in service.log()
    remembered = json.loads((tmp_path / "data" / SANDBOX_FILE).read_text())
    assert remembered["creator_api_key"] == key

    restarted = start_service(env, tmp_path)
    try:
        next_line_with(restarted, "sandbox: open")
        with httpx.Client(base_url=restarted.url, timeout=15) as client:
            again = client.get("/sandbox/config").json()
            assert again == config
            # The simulators start empty; the artists open the chat again and the bot can write.
            maya = next(a for a in again["artists"] if a["key"] == "maya")
            wait_until(client, lambda: greeted(client, maya["telegram_user_id"], "/start"))
    finally:
        restarted.stop()
    database = tmp_path / "data" / "likeness.db"
    assert (count_rows(database, "agencies"), count_rows(database, "artists")) == (2, len(ARTISTS))
    assert count_rows(database, "creators") == 1
    assert "using the demo data remembered" in restarted.log()
    assert "Traceback" not in restarted.log()


def test_a_platform_token_turns_the_sandbox_off(tmp_path: Path) -> None:
    # A real token: `make run` connects to the real platform (here an unreachable one) instead.
    env = make_run_env(tmp_path, SLACK_BOT_TOKEN="xoxb-real", SLACK_API_BASE_URL="http://127.0.0.1:9/api/")
    service = start_service(env, tmp_path)
    try:
        with httpx.Client(base_url=service.url, timeout=10) as client:
            assert client.get("/sandbox").status_code == 404
            assert client.get("/sandbox/config").status_code == 404
            assert client.post("/control/clock", json={"skip": "1d"}).status_code == 404
    finally:
        service.stop()
    assert not any("sandbox:" in line for line in service.output)
    assert not (tmp_path / "data" / SANDBOX_FILE).exists()


def test_an_unreadable_sandbox_file_is_ignored_with_a_warning(tmp_path: Path, caplog: Any) -> None:
    path = tmp_path / SANDBOX_FILE
    path.write_text("{not json")
    assert read_seeded(path) is None
    assert "ignoring" in caplog.text
    assert read_seeded(tmp_path / "absent.json") is None


def test_the_sandbox_file_round_trips_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "data" / SANDBOX_FILE
    seeded = Seeded.model_validate(
        {
            "agency_id": "agy_1",
            "artists": [{"key": "lin", "id": "art_1"}, {"key": "maya", "id": "art_2"}],
            "creator_id": "crt_1",
            "creator_api_key": "lk_secret",
            "seeded_at": "2026-11-25T09:00:00Z",
        }
    )
    write_seeded(path, seeded)
    assert read_seeded(path) == seeded
    assert seeded.artist_id("maya") == "art_2"
    assert path.stat().st_mode & 0o077 == 0
