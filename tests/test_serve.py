"""`likeness serve` as a real process: HTTP, restarts, SIGKILL, start-up errors."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from sandbox.service_process import run_cli, service_env, start_service


def parties(env: dict[str, str], cwd: Path) -> tuple[str, str]:
    """An artist and a creator's API key, made with the CLI."""
    artist = json.loads(run_cli(env, cwd, "artist", "add", "--name", "Li Wei", "--json").stdout)["id"]
    creator = json.loads(run_cli(env, cwd, "creator", "add", "--name", "Studio", "--json").stdout)
    return artist, creator["api_key"]


def body(artist: str, number: int) -> dict[str, object]:
    return {
        "artist_id": artist,
        "project_title": f"Episode {number}",
        "use_description": "A digital double for three dialogue scenes, face and voice.",
        "media": ["series"],
        "likeness": ["face", "voice"],
        "territory": ["worldwide"],
        "starts_at": "2027-01-01T00:00:00Z",
        "ends_at": "2027-03-01T00:00:00Z",
        "ai_training": False,
    }


def test_every_acknowledged_submission_survives_sigkill(tmp_path: Path) -> None:
    env = service_env(tmp_path)
    artist, key = parties(env, tmp_path)
    service = start_service(env, tmp_path)
    headers = {"Authorization": f"Bearer {key}"}
    acknowledged = []
    try:
        with httpx.Client(base_url=service.url, headers=headers, timeout=10) as client:
            for number in range(20):
                answer = client.post("/v1/requests", json=body(artist, number))
                assert answer.status_code == 201
                acknowledged.append(answer.json()["id"])
    finally:
        service.kill()  # right after the last 201: no clean shutdown
    restarted = start_service(env, tmp_path)
    try:
        with httpx.Client(base_url=restarted.url, headers=headers, timeout=10) as client:
            listed = client.get("/v1/requests", params={"limit": 100}).json()["requests"]
            assert sorted(r["id"] for r in listed) == sorted(acknowledged)
            assert client.get("/healthz").json() == {"status": "ok"}
    finally:
        restarted.stop()
    audit = run_cli(env, tmp_path, "audit", "verify", "--json")
    assert audit.returncode == 0 and json.loads(audit.stdout)["intact"]


def test_serve_listens_where_configured_and_serves_docs_and_keys(tmp_path: Path) -> None:
    from sandbox.pg_server import free_port

    port = free_port()
    service = start_service(service_env(tmp_path, HTTP_PORT=str(port)), tmp_path)
    try:
        assert service.url == f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=service.url) as client:
            assert client.get("/docs").status_code == 200
            assert client.get("/.well-known/likeness-keys.json").json()["keys"][0]["alg"] == "Ed25519"
    finally:
        service.stop()
    assert "Telegram channel off" in service.log() and "Slack channel off" in service.log()
    assert "Traceback" not in service.log()


@pytest.mark.parametrize(
    ("database_url", "message"),
    [
        ("postgresql+asyncpg://app:pw@127.0.0.1:1/none", "cannot reach the database"),
        ("sqlite+aiosqlite://", "names no SQLite file"),
    ],
)
def test_serve_refuses_to_start_on_a_bad_database_with_one_line(
    tmp_path: Path, database_url: str, message: str
) -> None:
    import subprocess
    import sys

    env = service_env(tmp_path, DATABASE_URL=database_url)
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
