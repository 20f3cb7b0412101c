"""Erasure on request: after `erase_artist` no string of the artist's name, Telegram id or the
texts they wrote is left in any column of any table, the audit chain still verifies, and the
receipts handed out before still verify; the CLI's erase with good and bad input."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from bot import workflow
from bot.app import build_desk
from bot.bundle import build_bundle, verify_bundle
from bot.cli import app
from bot.config import load_settings
from bot.models import Actor, ActorKind, ChannelKind, Outcome, UsageKind, canonical_json, sha256_hex
from bot.receipts import parse_keys_document, verify_receipt
from bot.workflow import Desk
from bot.workflow.erasure import erase_artist
from sandbox.factories import approve, make_parties, make_terms, stated_use
from sandbox.service_process import service_env
from storage.audit import verify_chain
from storage.personal import open_sealed
from storage.tables import Artist, AuditEvent, Base

NAME = "Qiao Xinyu"
TELEGRAM_ID = 8123456789
DENY_REASON = "My family does not want this, sorry"
PAUSE_REASON = "On leave until spring"
ADMIN = Actor(ActorKind.admin, "admin", ChannelKind.cli)


async def dump(desk: Desk) -> str:
    """Every column of every row of every table, as text."""
    lines = []
    async with desk.db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                lines.append(f"{table.name}: {json.dumps([str(v) for v in row], ensure_ascii=False)}")
    return "\n".join(lines)


async def make_person(desk: Desk) -> tuple[str, dict[str, Any], str]:
    """A linked artist with a used, revoked grant, a denied request and a pause with reasons.
    Returns the artist's id, the grant receipt as issued and the grant's id."""
    parties = await make_parties(desk)
    artist = await workflow.add_artist(desk, name=NAME, agency_id=parties.agency_id)
    token = await workflow.create_invite(desk, subject_kind=ActorKind.artist, subject_id=artist.id)
    await workflow.redeem_invite(desk, token=token, telegram_user_id=TELEGRAM_ID, chat_id=TELEGRAM_ID)
    me = Actor(ActorKind.artist, artist.id, ChannelKind.telegram, display=NAME)
    now = desk.clock.now()
    granted = await workflow.submit_request(
        desk, creator_id=parties.creator_id, terms_in=make_terms(desk, artist.id, starts_at=now.isoformat())
    )
    grant = await approve(desk, granted, me)
    grant_id = grant.id
    bad_use = stated_use(UsageKind.publish, territory=["US"], note=f"Posted {NAME}'s scene in the US")
    await workflow.record_usage(desk, creator_id=parties.creator_id, grant_id=grant_id, usage=bad_use)
    denied = await workflow.submit_request(
        desk,
        creator_id=parties.creator_id,
        terms_in=make_terms(
            desk,
            artist.id,
            project_title="Other",
            use_description=f"A voice double of {NAME} for the trailer.",
        ),
    )
    await workflow.decide(
        desk,
        request_id=denied.view.request.id,
        actor=me,
        outcome=Outcome.deny,
        terms_hash=denied.view.request.terms_hash,
        reason=DENY_REASON,
    )
    await workflow.pause_artist(desk, artist_id=artist.id, actor=me, reason=PAUSE_REASON)
    await workflow.resume_artist(desk, artist_id=artist.id, actor=me)
    await workflow.revoke_grant(desk, grant_id=grant_id, actor=me)
    return artist.id, grant.receipt, grant_id


async def test_erasure_leaves_no_personal_string_a_verifying_chain_and_verifying_receipts(
    desk: Desk,
) -> None:
    artist_id, receipt, grant_id = await make_person(desk)
    before = await dump(desk)
    assert NAME in before and str(TELEGRAM_ID) in before and DENY_REASON in before
    async with desk.db.read() as session:
        (paused,) = (
            await session.scalars(select(AuditEvent).where(AuditEvent.action == "artist.paused"))
        ).all()
        assert await open_sealed(session, paused.data["reason"]) == PAUSE_REASON
    chain_before = [(e.seq, e.hash) for e in await events(desk)]

    erased = await erase_artist(desk, artist_id=artist_id, actor=ADMIN)

    assert erased.requests == 2
    after = await dump(desk)
    for personal in (NAME, "Qiao", "Xinyu", str(TELEGRAM_ID), DENY_REASON, PAUSE_REASON):
        assert personal not in after, [line for line in after.splitlines() if personal in line][:3]
    async with desk.db.read() as session:
        assert (await verify_chain(session)).intact
        assert await open_sealed(session, paused.data["reason"]) is None  # its key is gone
        artist = await session.get(Artist, artist_id)
    assert artist is not None and artist.telegram_chat_id is None
    assert [(e.seq, e.hash) for e in await events(desk)][: len(chain_before)] == chain_before
    keys = parse_keys_document(desk.signer.public_keys_document())
    verify_receipt(receipt, keys)  # the receipt as handed out still verifies

    # What is still owed goes on, and cites the receipt as it was issued.
    desk.clock.advance(timedelta(minutes=5))  # type: ignore[attr-defined]
    parties_creator = receipt["creator"]["id"]
    confirmed = await workflow.confirm_deletion(
        desk,
        creator_id=parties_creator,
        grant_id=grant_id,
        statement="All erased.",
        deleted_at=desk.clock.now(),
    )
    assert confirmed.deletion.receipt is not None
    verify_receipt(confirmed.deletion.receipt, keys)
    assert confirmed.deletion.receipt["grant"]["receipt_sha256"] == sha256_hex(canonical_json(receipt))
    assert NAME not in await dump(desk)
    # An export after erasure still verifies; it holds no name.
    bundle = await build_bundle(desk, artist_id=artist_id)
    assert verify_bundle(bundle, desk.signer.public_keys_document()).artist_id == artist_id
    assert NAME.encode() not in bundle


async def events(desk: Desk) -> list[AuditEvent]:
    async with desk.db.read() as session:
        return list((await session.scalars(select(AuditEvent).order_by(AuditEvent.seq))).all())


# ---------------------------------------------------------------- CLI


def likeness(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_erase_on_the_command_line_needs_confirm_and_a_known_artist(tmp_path: Path) -> None:
    env = service_env(tmp_path)

    async def setup() -> str:
        desk = build_desk(
            load_settings(**{k.lower(): v for k, v in env.items() if k in {"DATABASE_URL", "DATA_DIR"}})
        )
        await desk.db.upgrade()
        try:
            return (await workflow.add_artist(desk, name=NAME)).id
        finally:
            await desk.db.dispose()

    artist_id = asyncio.run(setup())
    code, _, err = likeness(env, "artist", "erase", artist_id)
    assert code == 2 and "--confirm" in err and len(err.strip().splitlines()) == 1
    code, _, err = likeness(env, "artist", "erase", "art_missing", "--confirm")
    assert code == 1 and "no artist art_missing" in err and len(err.strip().splitlines()) == 1
    code, _, _ = likeness(env, "audit", "verify")
    assert code == 0

    code, out, _ = likeness(env, "artist", "erase", artist_id, "--confirm", "--json")

    assert code == 0 and json.loads(out) == {"artist_id": artist_id, "erased": True, "requests": 0}
    assert likeness(env, "audit", "verify")[0] == 0
