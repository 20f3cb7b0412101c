"""Releasing and rejecting outputs on both databases: by the artist, by the agency only where the
policy lets it decide, racing a revocation, lapsing at the deadline; the release receipt as proof
(offline, and not for a file one byte different); a publish use citing a released output."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import workflow
from bot.cli import app
from bot.clock import FrozenClock
from bot.models import Policy, UsageKind
from bot.output_files import OutputFiles
from bot.receipts import ReceiptError, check_output_file, parse_keys_document, verify_receipt
from bot.workflow import Desk
from bot.workflow.sweeps import reject_overdue_outputs, send_output_reminders
from sandbox.factories import Parties, make_parties, stated_use, submit
from storage.tables import Notice, Output
from tests.output_samples import sample
from tests.test_workflow import approve, link_artist


async def _chunks(data: bytes):  # type: ignore[no-untyped-def]
    yield data


async def setup(
    desk: Desk, tmp_path: Path, *, policy: Policy = Policy.artist_only, user: int = 5001, **terms: object
) -> tuple[Parties, str]:
    desk.output_files = OutputFiles(tmp_path / "outputs")
    parties = await make_parties(desk, policy=policy)
    await link_artist(desk, parties.artist_id, user)
    submitted = await submit(desk, parties, starts_at=desk.clock.now().isoformat(), **terms)
    decided = await approve(desk, submitted.view.request.id, parties.artist())
    assert decided.view.grant is not None
    return parties, decided.view.grant.id


async def put(desk: Desk, parties: Parties, grant_id: str, media_type: str = "image/png") -> Output:
    return await workflow.submit_output(
        desk,
        creator_id=parties.creator_id,
        grant_id=grant_id,
        declared_type=media_type,
        chunks=_chunks(sample(media_type)),
        description="The poster of episode 4.",
    )


async def status_of(desk: Desk, output_id: str) -> Output:
    async with desk.db.transaction() as session:
        output = await session.get(Output, output_id)
        assert output is not None
        return output


async def test_the_artist_is_sent_each_output_and_releases_it_with_a_signed_receipt(
    desk: Desk, tmp_path: Path
) -> None:
    parties, grant_id = await setup(desk, tmp_path)
    output = await put(desk, parties, grant_id)
    async with desk.db.transaction() as session:
        kinds = (await session.scalars(select(Notice.kind).where(Notice.grant_id == grant_id))).all()
    assert "output_review" in kinds
    released = await workflow.decide_output(desk, output_id=output.id, actor=parties.artist(), release=True)
    assert released.status == "released" and released.receipt is not None
    keys = parse_keys_document(desk.signer.public_keys_document())
    verify_receipt(released.receipt, keys)
    assert released.receipt["output"]["sha256"] == output.sha256
    assert released.receipt["grant"]["id"] == grant_id
    check_output_file(released.receipt, output.sha256)
    with pytest.raises(workflow.AlreadyDecided):
        await workflow.decide_output(desk, output_id=output.id, actor=parties.artist(), release=False)


async def test_the_artist_rejects_with_a_reason_and_no_receipt(desk: Desk, tmp_path: Path) -> None:
    parties, grant_id = await setup(desk, tmp_path)
    output = await put(desk, parties, grant_id)
    rejected = await workflow.decide_output(
        desk, output_id=output.id, actor=parties.artist(), release=False, reason="not what was agreed"
    )
    assert (rejected.status, rejected.reason, rejected.receipt) == ("rejected", "not what was agreed", None)


async def test_the_agency_decides_outputs_only_where_the_policy_lets_it(desk: Desk, tmp_path: Path) -> None:
    parties, grant_id = await setup(desk, tmp_path)
    output = await put(desk, parties, grant_id)
    with pytest.raises(workflow.NotAllowed):
        await workflow.decide_output(desk, output_id=output.id, actor=parties.agency(), release=True)
    assert (await status_of(desk, output.id)).status == "pending"

    await workflow.update_artist(desk, parties.artist_id, by="ops", policy=Policy.agency_may_decide)
    with pytest.raises(workflow.NotAllowed):  # a member not on the agency's list
        await workflow.decide_output(desk, output_id=output.id, actor=parties.agency("U999"), release=True)
    released = await workflow.decide_output(desk, output_id=output.id, actor=parties.agency(), release=True)
    assert released.status == "released" and released.decided_by_kind == "agency"
    async with desk.db.transaction() as session:
        told = (await session.scalars(select(Notice.kind).where(Notice.kind == "output_decided"))).all()
    assert told == ["output_decided"]


async def test_another_artist_cannot_decide(desk: Desk, tmp_path: Path) -> None:
    parties, grant_id = await setup(desk, tmp_path)
    output = await put(desk, parties, grant_id)
    other = await make_parties(desk)
    with pytest.raises(workflow.NotAllowed):
        await workflow.decide_output(desk, output_id=output.id, actor=other.artist(), release=True)


async def test_a_release_racing_a_revocation_lands_before_it_or_is_refused(
    desk: Desk, tmp_path: Path
) -> None:
    for round_ in range(3):
        parties, grant_id = await setup(desk, tmp_path, user=6000 + round_)
        output = await put(desk, parties, grant_id)
        release = workflow.decide_output(desk, output_id=output.id, actor=parties.artist(), release=True)
        revoke = workflow.revoke_grant(desk, grant_id=grant_id, actor=parties.artist())
        results = await asyncio.gather(release, revoke, return_exceptions=True)
        after = await status_of(desk, output.id)
        if isinstance(results[0], BaseException):
            assert isinstance(results[0], workflow.GrantNotActive)
            assert after.status == "pending" and after.receipt is None
        else:
            assert after.status == "released" and after.receipt is not None
        assert not isinstance(results[1], BaseException)
        with pytest.raises((workflow.GrantNotActive, workflow.AlreadyDecided)):
            await workflow.decide_output(desk, output_id=output.id, actor=parties.artist(), release=True)


async def test_an_output_not_released_by_its_deadline_is_rejected_after_reminders(
    desk: Desk, tmp_path: Path, clock: FrozenClock
) -> None:
    parties, grant_id = await setup(desk, tmp_path)
    output = await put(desk, parties, grant_id)
    clock.advance(output.release_due_at - clock.now() - timedelta(hours=1))
    assert await send_output_reminders(desk) == 1
    assert await send_output_reminders(desk) == 0
    clock.advance(timedelta(hours=2))
    assert await reject_overdue_outputs(desk) == 1
    lapsed = await status_of(desk, output.id)
    assert (lapsed.status, lapsed.decided_by_kind) == ("rejected", "system")
    assert await reject_overdue_outputs(desk) == 0


async def test_publishing_on_a_preview_grant_needs_a_released_output(desk: Desk, tmp_path: Path) -> None:
    parties, grant_id = await setup(desk, tmp_path, preview_required=True)
    output = await put(desk, parties, grant_id)
    use = stated_use(UsageKind.publish, output_sha256=output.sha256)
    before = await workflow.record_usage(desk, creator_id=parties.creator_id, grant_id=grant_id, usage=use)
    assert before.event.reasons == ["output_not_released"]
    bare = await workflow.record_usage(
        desk, creator_id=parties.creator_id, grant_id=grant_id, usage=stated_use(UsageKind.distribute)
    )
    assert bare.event.reasons == ["output_not_released"]
    await workflow.decide_output(desk, output_id=output.id, actor=parties.artist(), release=True)
    after = await workflow.record_usage(desk, creator_id=parties.creator_id, grant_id=grant_id, usage=use)
    assert after.event.violation is False and after.event.output_sha256 == output.sha256
    rendering = await workflow.record_usage(
        desk, creator_id=parties.creator_id, grant_id=grant_id, usage=stated_use(UsageKind.render)
    )
    assert rendering.event.violation is False  # only publish and distribute must cite an output


async def test_publishing_without_preview_needs_no_output(desk: Desk, tmp_path: Path) -> None:
    parties, grant_id = await setup(desk, tmp_path)
    done = await workflow.record_usage(
        desk, creator_id=parties.creator_id, grant_id=grant_id, usage=stated_use(UsageKind.publish)
    )
    assert done.event.violation is False


def test_the_release_receipt_verifies_offline_and_fails_for_a_file_one_byte_different(tmp_path: Path) -> None:
    from bot.clock import SystemClock
    from bot.receipts import load_or_create_signer
    from sandbox.service_process import service_env
    from storage.database import Database

    env = service_env(tmp_path)
    data_dir = Path(env["DATA_DIR"])

    async def make() -> dict[str, object]:
        database = Database(env["DATABASE_URL"])
        await database.upgrade()
        desk = Desk(
            db=database, clock=SystemClock(), signer=load_or_create_signer(data_dir / "signing_key.pem")
        )
        try:
            parties, grant_id = await setup(desk, tmp_path)
            output = await put(desk, parties, grant_id)
            released = await workflow.decide_output(
                desk, output_id=output.id, actor=parties.artist(), release=True
            )
            assert released.receipt is not None
            return released.receipt
        finally:
            await database.dispose()

    receipt = asyncio.run(make())
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    (tmp_path / "keys.json").write_text(
        json.dumps(load_or_create_signer(data_dir / "signing_key.pem").public_keys_document())
    )
    good = tmp_path / "poster.png"
    good.write_bytes(sample("image/png"))
    changed = bytearray(sample("image/png"))
    changed[40] ^= 0x01
    bad = tmp_path / "poster-edited.png"
    bad.write_bytes(bytes(changed))

    def verify(*extra: str) -> tuple[int, str]:
        done = CliRunner().invoke(
            app,
            [
                "receipt",
                "verify",
                str(tmp_path / "receipt.json"),
                "--keys",
                str(tmp_path / "keys.json"),
                *extra,
                "--json",
            ],
            env=env,
        )
        return done.exit_code, done.stdout

    code, out = verify()
    assert code == 0 and json.loads(out)["file_checked"] is False
    code, out = verify("--file", str(good))
    assert code == 0 and json.loads(out)["output_sha256"] == receipt["output"]["sha256"]  # type: ignore[index]
    code, out = verify("--file", str(bad))
    assert code != 0 and "SHA-256 differs" in json.loads(out)["problem"]
    with pytest.raises(ReceiptError):
        check_output_file(receipt, "0" * 64)


async def test_erasing_the_artist_removes_their_output_files_and_keeps_the_hashes(
    desk: Desk, tmp_path: Path
) -> None:
    from bot.models import Actor, ActorKind, ChannelKind
    from bot.workflow.erasure import erase_artist

    parties, grant_id = await setup(desk, tmp_path)
    kept = await put(desk, parties, grant_id)
    released = await workflow.decide_output(desk, output_id=kept.id, actor=parties.artist(), release=True)
    assert desk.output_files is not None and desk.output_files.path_of(kept.sha256).exists()
    await erase_artist(
        desk, artist_id=parties.artist_id, actor=Actor(ActorKind.admin, "ops", ChannelKind.cli)
    )
    assert not desk.output_files.path_of(kept.sha256).exists()
    after = await status_of(desk, kept.id)
    assert (after.sha256, after.status) == (kept.sha256, "released")
    assert released.receipt is not None
    verify_receipt(released.receipt, parse_keys_document(desk.signer.public_keys_document()))


async def test_outputs_under_a_revoked_grant_are_rejected_at_the_next_sweep(
    desk: Desk, tmp_path: Path
) -> None:
    parties, grant_id = await setup(desk, tmp_path)
    output = await put(desk, parties, grant_id)
    await workflow.revoke_grant(desk, grant_id=grant_id, actor=parties.artist())
    assert await reject_overdue_outputs(desk) == 1
    after = await status_of(desk, output.id)
    assert (after.status, after.reason) == ("rejected", "the consent ended before it was released")
    assert await send_output_reminders(desk) == 0
    async with desk.db.transaction() as session:
        told = (await session.scalars(select(Notice.payload).where(Notice.kind == "output_decided"))).all()
    assert [payload["ended"] for payload in told] == [True]
