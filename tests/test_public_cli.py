"""`likeness grant check` and `receipt verify --online` against a real running service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot import workflow
from bot.app import build_desk
from bot.config import load_settings
from bot.receipts import Signer
from sandbox.factories import make_parties, make_terms
from sandbox.pg_server import free_port
from sandbox.service_process import ServiceProcess, service_env, start_service
from tests.test_cli import likeness
from tests.test_workflow import approve

Public = tuple[dict[str, str], ServiceProcess]


@contextmanager
def public_service(folder: Path) -> Iterator[Public]:
    """A migrated database in `folder` and `likeness serve` on it, at a known public URL; its
    environment and the service."""
    port = free_port()
    env = service_env(folder, HTTP_PORT=str(port), PUBLIC_URL=f"http://127.0.0.1:{port}")
    likeness(env, "db", "upgrade")
    running = start_service(env, folder)
    try:
        yield env, running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def public(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Public]:
    """One service for the module: each test reads only the grants it made itself."""
    with public_service(tmp_path_factory.mktemp("public")) as started:
        yield started


def make_grants(env: dict[str, str]) -> dict[str, Any]:
    """An active grant and a revoked one, made through the workflow on the service's database."""

    async def work() -> dict[str, Any]:
        settings = load_settings(
            **{k.lower(): v for k, v in env.items() if k in {"DATABASE_URL", "DATA_DIR", "PUBLIC_URL"}}
        )
        desk = build_desk(settings)
        try:
            parties = await make_parties(desk)
            made = {}
            for name in ("active", "revoked"):
                start = (desk.clock.now() - timedelta(minutes=1)).isoformat()
                submitted = await workflow.submit_request(
                    desk,
                    creator_id=parties.creator_id,
                    terms_in=make_terms(desk, parties.artist_id, starts_at=start),
                )
                decided = await approve(desk, submitted.view.request.id, parties.artist())
                assert decided.view.grant is not None
                made[name] = decided.view.grant.receipt
            await workflow.revoke_grant(desk, grant_id=made["revoked"]["grant"]["id"], actor=parties.artist())
            return made
        finally:
            await desk.db.dispose()

    return asyncio.run(work())


def test_grant_check_exits_0_for_active_3_for_not_active_and_1_for_a_bad_signature(
    public: Public, tmp_path: Path
) -> None:
    env, service = public
    receipts = make_grants(env)
    active = receipts["active"]["grant"]["id"]
    revoked = receipts["revoked"]["grant"]["id"]

    code, out, err = likeness(env, "grant", "check", active, "--url", service.url, "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "active" and json.loads(out)["valid"] is True
    code, out, _ = likeness(env, "grant", "check", f"{service.url}/g/{revoked}")
    assert code == 3 and "revoked" in out
    code, _, _ = likeness(env, "grant", "check", receipts["active"]["status_url"])
    assert code == 0

    stranger = Signer(Ed25519PrivateKey.generate()).public_keys_document()
    (tmp_path / "other-keys.json").write_text(json.dumps(stranger))
    code, _, err = likeness(
        env, "grant", "check", active, "--url", service.url, "--keys", str(tmp_path / "other-keys.json")
    )
    assert code == 1 and "no public key with kid" in err

    for bad, message in [
        ("grt_0000000000000000", "not found"),
        ("<script>", "not a grant id"),
        (f"{service.url}/elsewhere/x", "not a grant status URL"),
    ]:
        code, out, err = likeness(env, "grant", "check", bad, "--url", service.url)
        assert code == 1 and message in err and "Traceback" not in err and out == ""
    code, _, err = likeness(env, "grant", "check", active, "--url", f"http://127.0.0.1:{free_port()}")
    assert code == 1 and "cannot reach" in err


def test_receipt_verify_online_exits_3_once_the_grant_is_revoked(public: Public, tmp_path: Path) -> None:
    env, _ = public
    receipts = make_grants(env)
    for name, expected in [("active", 0), ("revoked", 3)]:
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(receipts[name]))
        assert likeness(env, "receipt", "verify", str(path))[0] == 0  # offline it holds either way
        code, out, err = likeness(env, "receipt", "verify", str(path), "--online")
        assert code == expected, err
        assert name in out


def test_the_public_routes_over_real_http_never_answer_5xx(tmp_path: Path) -> None:
    """On a service of its own: before any event, the audit statement is a 404, not a 200."""
    import httpx

    paths = [
        "/public/grants/grt_0000000000000000",
        "/public/grants/" + "x" * 20000,
        "/g/%00%ff",
        "/public/audit/checkpoints?after=99999999999999999999999999",
        "/public/audit/checkpoints?after=-1",
        "/public/audit/checkpoints?after=abc",
        "/public/audit/checkpoints?limit=100000",
        "/.well-known/likeness-audit.json",
    ]
    with public_service(tmp_path) as (_, service):
        for path in paths:
            answer = httpx.get(service.url + path, timeout=10)
            assert 400 <= answer.status_code < 500, (path, answer.status_code)
            assert "Traceback" not in answer.text
