"""An artist's signed history bundle: what it holds, that it verifies offline, and that any changed
byte in any member, or a missing or foreign key, makes it fail; the CLI's export and verify."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot import workflow
from bot.app import build_desk
from bot.bundle import BundleError, build_bundle, verify_bundle
from bot.cli import app
from bot.clock import FrozenClock
from bot.config import load_settings
from bot.models import Outcome, UsageKind
from bot.workflow import Desk
from sandbox.factories import make_parties, stated_use, submit
from sandbox.service_process import service_env
from tests.test_workflow import approve

MEMBERS = ("manifest.json", "bundle.json", "history.csv")


def tick(desk: Desk) -> None:
    """One minute on, so what follows is recorded after what came before."""
    if isinstance(desk.clock, FrozenClock):
        desk.clock.advance(timedelta(minutes=1))


async def make_history(desk: Desk) -> tuple[str, str]:
    """An artist with a granted, used (once out of terms), revoked and deletion-confirmed request
    and a denied one. Returns the artist's id and the granted request's id."""
    parties = await make_parties(desk)
    granted = await submit(desk, parties, starts_at=desk.clock.now().isoformat())
    decided = await approve(desk, granted.view.request.id, parties.artist())
    assert decided.view.grant is not None
    grant_id = decided.view.grant.id
    for use in (stated_use(UsageKind.render, 3), stated_use(UsageKind.publish, territory=["US"])):
        tick(desk)
        await workflow.record_usage(desk, creator_id=parties.creator_id, grant_id=grant_id, usage=use)
    await workflow.revoke_grant(desk, grant_id=grant_id, actor=parties.artist())
    await workflow.confirm_deletion(
        desk,
        creator_id=parties.creator_id,
        grant_id=grant_id,
        statement="Every render and the fine-tuned voice model were erased.",
        deleted_at=desk.clock.now(),
    )
    tick(desk)
    denied = await submit(desk, parties, project_title='=HYPERLINK("http://x")')
    await workflow.decide(
        desk,
        request_id=denied.view.request.id,
        actor=parties.artist(),
        outcome=Outcome.deny,
        terms_hash=denied.view.request.terms_hash,
        reason="Not for this brand.",
    )
    return parties.artist_id, granted.view.request.id


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rezip(contents: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            archive.writestr(name, data)
    return out.getvalue()


async def test_the_bundle_holds_the_whole_history_and_verifies_offline(desk: Desk) -> None:
    artist_id, granted_id = await make_history(desk)
    keys = desk.signer.public_keys_document()

    data = await build_bundle(desk, artist_id=artist_id)

    checked = verify_bundle(data, keys)
    assert (checked.artist_id, checked.requests, checked.receipts) == (artist_id, 2, 2)
    contents = members(data)
    assert set(contents) == set(MEMBERS)
    bundle = json.loads(contents["bundle.json"])
    assert bundle["artist"]["name"] == "Li Wei"
    granted, denied = bundle["requests"]
    assert granted["id"] == granted_id and granted["terms"]["project_title"] == "Moonlight Drama S2"
    assert [d["outcome"] for d in granted["decisions"]] == ["approve"]
    assert granted["grant"]["status"] == "revoked"
    assert granted["grant"]["receipt"]["type"] == "likeness-consent-receipt"
    assert granted["grant"]["deletion"]["receipt"]["type"] == "likeness-deletion-receipt"
    assert [u["violation"] for u in granted["usage"]] == [False, True]
    assert denied["decisions"][0]["reason"] == "Not for this brand." and denied["grant"] is None
    rows = list(csv.DictReader(io.StringIO(contents["history.csv"].decode("utf-8-sig"))))
    assert [r["record"] for r in rows] == [
        "request", "decision", "grant", "deletion", "usage", "violation", "request", "decision"
    ]  # fmt: skip
    # A title a spreadsheet would run as a formula is shown as written.
    assert rows[6]["detail"].startswith("'=HYPERLINK")
    manifest = json.loads(contents["manifest.json"])
    assert manifest["kid"] == desk.signer.kid and manifest["artist_id"] == artist_id


async def test_one_changed_byte_in_any_member_fails(desk: Desk) -> None:
    artist_id, _ = await make_history(desk)
    keys = desk.signer.public_keys_document()
    data = await build_bundle(desk, artist_id=artist_id)
    contents = members(data)
    assert verify_bundle(rezip(contents), keys).requests == 2  # repacking alone changes nothing

    for name in MEMBERS:
        original = contents[name]
        for at in (0, len(original) // 3, len(original) // 2, len(original) - 2):
            changed = bytearray(original)
            changed[at] = changed[at] ^ 0x01
            with pytest.raises(BundleError):
                verify_bundle(rezip(contents | {name: bytes(changed)}), keys)

    # The same in the file as sent: a flipped byte inside any member's stored data.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
        for at in (start, start + info.compress_size // 2, start + info.compress_size - 1):
            changed = bytearray(data)
            changed[at] ^= 0x40
            with pytest.raises(BundleError):
                verify_bundle(bytes(changed), keys)


async def test_a_missing_extra_or_foreign_part_fails_with_what(desk: Desk, tmp_path: Path) -> None:
    artist_id, _ = await make_history(desk)
    keys = desk.signer.public_keys_document()
    contents = members(await build_bundle(desk, artist_id=artist_id))
    from bot.receipts import load_or_create_signer

    stranger = load_or_create_signer(tmp_path / "other.pem").public_keys_document()
    with pytest.raises(BundleError, match="no public key"):
        verify_bundle(rezip(contents), stranger)
    with pytest.raises(BundleError, match="not exactly"):
        verify_bundle(rezip({k: v for k, v in contents.items() if k != "history.csv"}), keys)
    with pytest.raises(BundleError, match="not exactly"):
        verify_bundle(rezip(contents | {"extra.txt": b"x"}), keys)
    with pytest.raises(BundleError, match="not a readable zip"):
        verify_bundle(b"PK\x03\x04 not really a zip", keys)
    # A receipt's terms changed inside bundle.json: the manifest's hash of bundle.json fails first.
    bundle = json.loads(contents["bundle.json"])
    bundle["requests"][0]["grant"]["receipt"]["terms"]["territory"] = ["US"]
    with pytest.raises(BundleError, match=r"bundle\.json"):
        verify_bundle(rezip(contents | {"bundle.json": json.dumps(bundle).encode()}), keys)


# ---------------------------------------------------------------- CLI


def likeness(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def make_service_history(env: dict[str, str], tmp_path: Path) -> str:
    async def work() -> str:
        desk = build_desk(
            load_settings(**{k.lower(): v for k, v in env.items() if k in {"DATABASE_URL", "DATA_DIR"}})
        )
        await desk.db.upgrade()
        try:
            artist_id, _ = await make_history(desk)
            (tmp_path / "keys.json").write_text(json.dumps(desk.signer.public_keys_document()))
            return artist_id
        finally:
            await desk.db.dispose()

    return asyncio.run(work())


def test_export_then_verify_on_the_command_line(tmp_path: Path) -> None:
    env = service_env(tmp_path)
    artist_id = make_service_history(env, tmp_path)
    out = tmp_path / "history.zip"

    code, stdout, _ = likeness(env, "artist", "export", artist_id, "--out", str(out), "--json")

    assert code == 0 and json.loads(stdout)["file"] == str(out)
    assert out.stat().st_mode & 0o077 == 0  # personal data: the owner's only
    keys = str(tmp_path / "keys.json")
    code, stdout, _ = likeness(env, "bundle", "verify", str(out), "--keys", keys, "--json")
    assert code == 0
    assert json.loads(stdout) == {"valid": True, "artist_id": artist_id, "requests": 2, "receipts": 2}
    assert likeness(env, "bundle", "verify", str(out))[0] == 0  # the service's own keys by default

    data = bytearray(out.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("history.csv")
    data[info.header_offset + 30 + len("history.csv") + len(info.extra) + 5] ^= 0x01
    forged = tmp_path / "forged.zip"
    forged.write_bytes(bytes(data))
    code, _, err = likeness(env, "bundle", "verify", str(forged), "--keys", keys)
    assert code == 1 and err.startswith("error: bundle not valid: ") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["artist", "export", "art_missing", "--out", "{tmp}/x.zip"], "no artist art_missing"),
        (["artist", "export", "art_missing", "--out", "{tmp}/no/such/x.zip"], "does not exist"),
        (["artist", "export", "art_missing", "--out", "{tmp}"], "is a directory"),
        (["bundle", "verify", "{tmp}/nothing.zip", "--keys", "{tmp}/keys.json"], "cannot read"),
        (["bundle", "verify", "{tmp}/keys.json", "--keys", "{tmp}/keys.json"], "not a readable zip"),
        (["bundle", "verify", "{tmp}/keys.json", "--keys", "{tmp}/nothing.json"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_with_exit_1_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    env = service_env(tmp_path)
    (tmp_path / "keys.json").write_text(json.dumps({"keys": []}))
    before = sorted(p.name for p in tmp_path.iterdir())

    code, _, err = likeness(env, *(a.replace("{tmp}", str(tmp_path)) for a in args))

    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    after = sorted(p.name for p in tmp_path.iterdir() if p.name not in {"data"})
    assert [n for n in after if n.endswith(".zip") or n.startswith(".")] == [
        n for n in before if n.endswith(".zip") or n.startswith(".")
    ]
