"""Creators' API keys can be added, listed and revoked; webhook secrets rotate with a 24 h overlap."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from bot import creator_keys, workflow
from bot.adapters.webhook import _signatures, verify_webhook
from bot.api import create_api
from bot.clock import FrozenClock
from bot.workflow import Desk
from sandbox.pg_server import PgServer
from sandbox.service_process import service_env, start_service
from storage.tables import Creator
from tests.test_cli import likeness
from tests.test_workflow import row_counts


async def test_a_creator_has_several_named_keys_and_a_revoked_one_is_refused_at_once(
    desk: Desk, clock: FrozenClock
) -> None:
    new = await workflow.add_creator(desk, name="Studio", webhook_url="https://studio.example/hook")
    transport = httpx.ASGITransport(app=create_api(desk))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:

        async def status(key: str) -> int:
            return (await api.get("/v1/requests", headers={"Authorization": f"Bearer {key}"})).status_code

        key_id, farm_key = await creator_keys.add_key(desk, creator_id=new.creator.id, name="render-farm")
        assert await status(new.api_key) == 200 and await status(farm_key) == 200
        listed = {k.name: k for k in await creator_keys.list_keys(desk, creator_id=new.creator.id)}
        assert set(listed) == {"default", "render-farm"}
        assert listed["render-farm"].last_used_at == clock.now().isoformat().replace("+00:00", "Z")
        await creator_keys.revoke_key(desk, creator_id=new.creator.id, key=key_id)
        assert await status(farm_key) == 401 and await status(new.api_key) == 200
        await creator_keys.revoke_key(desk, creator_id=new.creator.id, key="default")
        assert await status(new.api_key) == 401
        listed = {k.name: k for k in await creator_keys.list_keys(desk, creator_id=new.creator.id)}
        assert listed["default"].revoked_at is not None and listed["render-farm"].revoked_at is not None


async def test_bad_key_commands_change_nothing(desk: Desk) -> None:
    new = await workflow.add_creator(desk, name="Studio")
    await creator_keys.add_key(desk, creator_id=new.creator.id, name="ci")
    before = await row_counts(desk)
    for call in [
        creator_keys.add_key(desk, creator_id="crt_missing", name="x"),
        creator_keys.add_key(desk, creator_id=new.creator.id, name="   "),
        creator_keys.add_key(desk, creator_id=new.creator.id, name="ci"),
        creator_keys.add_key(desk, creator_id=new.creator.id, name="x" * 101),
        creator_keys.revoke_key(desk, creator_id=new.creator.id, key="nope"),
        creator_keys.rotate_webhook_secret(desk, creator_id=new.creator.id),
    ]:
        with pytest.raises(workflow.Refused):
            await call
    assert await row_counts(desk) == before


async def test_during_the_overlap_either_secret_verifies_and_after_it_only_the_new(
    desk: Desk, clock: FrozenClock
) -> None:
    new = await workflow.add_creator(desk, name="Studio", webhook_url="https://studio.example/hook")
    old_secret = new.webhook_secret
    assert old_secret is not None
    fresh, until = await creator_keys.rotate_webhook_secret(desk, creator_id=new.creator.id)
    body = b'{"id":"ntc_1"}'
    stamp = int(clock.now().timestamp())
    async with desk.db.read() as session:
        creator = await session.get(Creator, new.creator.id)
    assert creator is not None
    header = _signatures(creator, stamp, body, clock.now())
    assert header.count("v1=") == 2 and header.startswith("v1=")
    for secret in (old_secret, fresh):
        assert verify_webhook(secret, str(stamp), body, header, now=stamp)
    assert not verify_webhook("whsec_other", str(stamp), body, header, now=stamp)
    assert not verify_webhook(fresh, str(stamp), body + b" ", header, now=stamp)
    later = clock.now() + timedelta(hours=24, seconds=1)
    header = _signatures(creator, int(later.timestamp()), body, later)
    assert header.count("v1=") == 1
    assert verify_webhook(fresh, str(int(later.timestamp())), body, header, now=later.timestamp())
    assert not verify_webhook(old_secret, str(int(later.timestamp())), body, header, now=later.timestamp())
    assert until.endswith("Z")


def test_a_revoked_key_is_refused_at_once_by_two_service_processes(
    pg_server: PgServer, tmp_path: Path
) -> None:
    env = service_env(tmp_path, DATABASE_URL=pg_server.create_database("keys_two_processes"))
    code, out, err = likeness(env, "creator", "add", "--name", "Studio", "--json")
    assert code == 0, err
    created = json.loads(out)
    code, out, _ = likeness(env, "creator", "key", "add", created["id"], "--name", "ci", "--json")
    added = json.loads(out)
    services = [start_service(env, tmp_path, tag=f"instance{n}") for n in range(2)]
    try:

        def statuses(key: str) -> list[int]:
            return [
                httpx.get(
                    f"{s.url}/v1/requests", headers={"Authorization": f"Bearer {key}"}, timeout=10
                ).status_code
                for s in services
            ]

        assert statuses(added["api_key"]) == [200, 200]
        code, out, _ = likeness(env, "creator", "key", "revoke", created["id"], "ci", "--json")
        assert code == 0 and json.loads(out)["revoked_at"]
        assert statuses(added["api_key"]) == [401, 401]
        assert statuses(created["api_key"]) == [200, 200]
        code, out, _ = likeness(env, "creator", "key", "list", created["id"], "--json")
        names = {k["name"]: k for k in json.loads(out)["keys"]}
        assert names["ci"]["revoked_at"] and names["default"]["last_used_at"]
    finally:
        for service in services:
            service.stop()
    for args, message in [
        (["creator", "key", "add", "crt_missing", "--name", "x"], "no creator crt_missing"),
        (["creator", "key", "revoke", created["id"], "nope"], "has no key"),
        (["creator", "webhook-secret", "rotate", created["id"]], "no webhook URL"),
    ]:
        code, out, err = likeness(env, *args)
        assert code == 1 and message in err and out == "" and err.count("\n") == 1
