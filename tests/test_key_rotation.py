"""Key rotation keeps the past valid, reaches every instance without a restart, and buttons keep working."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.adapters.telegram import CallbackSigner
from bot.api import create_api
from bot.clock import FrozenClock
from bot.keys import KeyRing, ProofError, check_signature, parse_key_set
from bot.proof import read_checkpoint, take_checkpoint, verify_statement
from bot.receipts import load_or_create_signer, parse_keys_document, verify_receipt
from bot.workflow import Desk
from sandbox.factories import make_parties, submit
from sandbox.service_process import service_env
from tests.test_cli import likeness
from tests.test_public_status import granted
from tests.test_workflow import approve


@pytest.fixture
async def ring(desk: Desk, tmp_path: Path) -> Desk:
    desk.signer = KeyRing(tmp_path / "key.pem", tmp_path / "buttons.json")
    return desk


async def test_receipts_statements_and_checkpoints_verify_after_two_rotations(
    ring: Desk, clock: FrozenClock, tmp_path: Path
) -> None:
    assert isinstance(ring.signer, KeyRing)
    parties = await make_parties(ring)
    grant_id = await granted(ring, parties)
    transport = httpx.ASGITransport(app=create_api(ring))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        statement = (await api.get(f"/public/grants/{grant_id}")).json()["statement"]
        checkpoint = await take_checkpoint(ring)
        assert checkpoint is not None
        first_kid = ring.signer.kid
        submitted = await submit(ring, parties)
        clock.advance(timedelta(minutes=10))
        ring.signer.rotate(clock.now())
        receipt = (await approve(ring, submitted.view.request.id, parties.artist())).view.grant.receipt  # type: ignore[union-attr]
        clock.advance(timedelta(minutes=10))
        ring.signer.rotate(clock.now())
        assert ring.signer.kid not in {first_kid, receipt["kid"]}
        document = (await api.get("/.well-known/likeness-keys.json")).json()
    kids = [(k["kid"], k.get("retired_at")) for k in document["keys"]]
    assert kids[0] == (ring.signer.kid, None)
    assert {kid for kid, retired in kids[1:] if retired} == {first_kid, receipt["kid"]}
    keys = parse_key_set(document)
    verify_receipt(receipt, parse_keys_document(document))
    verify_statement(statement, keys, clock.now())
    read_checkpoint(checkpoint.document, keys)
    # A retired key's signature dated after its retirement is refused.
    with pytest.raises(ProofError, match="retired"):
        check_signature(statement, keys, signed_at=clock.now() + timedelta(days=1))


async def test_another_instance_signs_with_the_new_key_without_a_restart(
    tmp_path: Path, clock: FrozenClock
) -> None:
    one = KeyRing(tmp_path / "key.pem", tmp_path / "buttons.json")
    two = KeyRing(tmp_path / "key.pem", tmp_path / "buttons.json")
    assert one.kid == two.kid
    old, new = one.rotate(clock.now())
    assert two.kid == new != old
    signed = two.sign({"x": 1})
    assert signed["kid"] == new
    check_signature(signed, parse_key_set(one.public_keys_document()))
    assert [k["kid"] for k in two.public_keys_document()["keys"]] == [new, old]


def test_button_data_signed_with_an_old_secret_stays_valid_until_dropped(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    legacy = load_or_create_signer(key_file).callback_key()
    ring = KeyRing(key_file, tmp_path / "buttons.json")
    other_instance = KeyRing(key_file, tmp_path / "buttons.json")
    # Cards sent before the secrets were separated carry data signed with the legacy secret.
    old_card = CallbackSigner(legacy).sign("ok", "req_0123456789abcdef")
    signer = CallbackSigner(other_instance.callback_keys)
    assert signer.read(old_card) is not None
    seed = ring.telegram_webhook_seed()
    ring.rotate(datetime.now(UTC))  # the receipt key: buttons are unaffected
    assert signer.read(old_card) is not None
    ring.rotate_buttons()
    new_card = signer.sign("ok", "req_0123456789abcdef")
    assert new_card != old_card
    assert signer.read(old_card) is not None and signer.read(new_card) is not None
    assert ring.telegram_webhook_seed() == seed  # the webhook token survives rotations
    ring.rotate_buttons(drop_old=True)
    assert signer.read(old_card) is None and signer.read(new_card) is None


def test_keys_rotate_on_the_command_line(tmp_path: Path) -> None:
    env = service_env(tmp_path)
    likeness(env, "agency", "add", "--name", "A")
    code, out, _ = likeness(env, "keys", "rotate", "--json")
    first = json.loads(out)
    assert code == 0 and first["kid"] != first["retired_kid"]
    code, out, _ = likeness(env, "keys", "rotate", "--buttons", "--json")
    assert code == 0 and json.loads(out)["accepted_secrets"] == 2
    code, _, err = likeness(env, "keys", "rotate", "--drop-old")
    assert code == 2 and "--buttons" in err
    (tmp_path / "data" / "signing_key.retired.json").write_text("{broken")
    code, _, err = likeness(env, "keys", "rotate")
    assert code == 1 and "not JSON" in err and "Traceback" not in err
