"""Terms that require the artist to release each output: hashed only when set, forced by the
artist's standing setting like a red line, shown on the card and the board."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bot import workflow
from bot.cli import app
from bot.models import Language, Terms, canonical_json, sha256_hex
from bot.render import slack as board
from bot.render.telegram_cards import card, card_from_view
from bot.workflow import Desk
from sandbox.factories import make_parties, make_terms, submit
from sandbox.service_process import service_env


def test_terms_without_preview_hash_as_they_did_before_the_field_existed(desk: Desk) -> None:
    terms = Terms.from_input(make_terms(desk, "art_1"), creator_id="crt_1", decision_due_at=desk.clock.now())
    canonical = terms.canonical()
    assert "preview_required" not in canonical
    assert terms.terms_hash == sha256_hex(canonical_json(canonical))


def test_terms_with_preview_carry_it_in_the_hash(desk: Desk) -> None:
    given = make_terms(desk, "art_1", preview_required=True)
    with_it = Terms.from_input(given, creator_id="crt_1", decision_due_at=desk.clock.now())
    without = Terms.from_input(
        make_terms(desk, "art_1"), creator_id="crt_1", decision_due_at=desk.clock.now()
    )
    assert with_it.canonical()["preview_required"] is True
    assert with_it.terms_hash != without.terms_hash
    assert Terms.model_validate(with_it.canonical()).terms_hash == with_it.terms_hash


async def test_an_artist_requiring_preview_gets_it_on_every_request(desk: Desk) -> None:
    parties = await make_parties(desk)
    await workflow.update_artist(desk, parties.artist_id, by="ops", require_preview=True)
    submitted = await submit(desk, parties)
    assert submitted.view.request.terms["preview_required"] is True
    record = await workflow.show_artist(desk, parties.artist_id)
    assert record["require_preview"] is True


async def test_the_card_and_the_board_say_outputs_need_release(desk: Desk) -> None:
    parties = await make_parties(desk, language=Language.zh_hans)
    view = (await submit(desk, parties, preview_required=True)).view
    text = card(card_from_view(view, timezone="UTC")).text
    assert "每一件都需经你放行后才能发布" in text
    blocks = json.dumps(board.request_blocks(view))
    assert "released by the artist" in blocks
    plain = (await submit(desk, parties)).view
    assert "放行" not in card(card_from_view(plain, timezone="UTC")).text
    assert "released by the artist" not in json.dumps(board.request_blocks(plain))


def test_artist_add_and_update_take_require_preview(tmp_path: Path) -> None:
    env = service_env(tmp_path)

    def likeness(*args: str) -> dict[str, object]:
        result = CliRunner().invoke(app, [*args, "--json"], env=env)
        assert result.exit_code == 0, result.stderr
        return dict(json.loads(result.stdout))

    artist = str(likeness("artist", "add", "--name", "Li", "--require-preview")["id"])
    assert likeness("artist", "show", artist)["require_preview"] is True
    assert likeness("artist", "update", artist, "--no-require-preview")["require_preview"] is False
