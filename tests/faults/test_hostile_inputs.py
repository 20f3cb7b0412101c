"""Hostile callers get nothing: spoofed text, clock control outside the sandbox, a sandbox open
to the network. Each case asserts the answer, that no row was written, and that no traceback was
logged; cases that touch the database run on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.api import create_api
from bot.clean_text import check_clean_line, check_clean_text, hidden_character, visible_text
from bot.workflow import Desk
from tests.factories import Parties, make_parties, terms_data
from tests.service import run_cli, service_env
from tests.test_workflow import row_counts

HIDDEN = {
    "NUL": "\x00",
    "ESC": "\x1b",
    "DEL": "\x7f",
    "C1 CSI": "\x9b",
    "carriage return": "\r",
    "right-to-left override": "\u202e",
    "left-to-right embedding": "\u202a",
    "first-strong isolate": "\u2068",
    "pop directional isolate": "\u2069",
    "lone surrogate": "\ud800",
}


@pytest.fixture
async def api(desk: Desk) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_api(desk))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


@pytest.fixture
async def parties(desk: Desk) -> Parties:
    return await make_parties(desk)


def auth(parties: Parties) -> dict[str, str]:
    return {"Authorization": f"Bearer {parties.api_key}"}


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def field_errors(answer: httpx.Response) -> dict[str, str]:
    """`{dotted field: message}` from a FastAPI 422."""
    return {".".join(str(p) for p in e["loc"][1:]): e["msg"] for e in answer.json()["detail"]}


# ---------------------------------------------------------------- the rule itself


@pytest.mark.parametrize("name", sorted(HIDDEN))
def test_every_hidden_character_is_refused_and_named(name: str) -> None:
    text = f"Moon{HIDDEN[name]}light"
    assert hidden_character(text) is not None
    with pytest.raises(ValueError, match=r"U\+[0-9A-F]{4}\) at position 5"):
        check_clean_text(text)


def test_line_breaks_and_tabs_are_fine_in_text_but_not_in_a_line() -> None:
    assert check_clean_text("Scene 1\n\tScene 2") == "Scene 1\n\tScene 2"
    with pytest.raises(ValueError, match="one line"):
        check_clean_line("Moonlight\nApproved by your agency")
    assert check_clean_line("林晓 Lin Xiao — «Moonlight» 🎬") == "林晓 Lin Xiao — «Moonlight» 🎬"


def test_names_given_by_a_platform_are_shown_without_their_hidden_characters() -> None:
    assert visible_text("\u202eann\x1b[31m.agent\u202c") == "ann[31m.agent"


# ---------------------------------------------------------------- the API, on both databases

FREE_TEXT = [
    ("project_title", "project_title"),
    ("use_description", "use_description"),
    ("labeling", "labeling"),
]


@pytest.mark.parametrize("field", [f for f, _ in FREE_TEXT])
@pytest.mark.parametrize("name", ["NUL", "ESC", "right-to-left override", "pop directional isolate"])
async def test_hidden_characters_in_request_text_are_a_field_422_and_write_nothing(
    api: httpx.AsyncClient,
    desk: Desk,
    parties: Parties,
    field: str,
    name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = await row_counts(desk)
    base = terms_data(desk, parties.artist_id)
    value = base[field][:10] + HIDDEN[name] + base[field][10:]
    answer = await api.post("/v1/requests", json=base | {field: value}, headers=auth(parties))
    assert answer.status_code == 422, answer.text
    errors = field_errors(answer)
    assert list(errors) == [field]
    assert f"U+{ord(HIDDEN[name]):04X}" in errors[field]
    assert await row_counts(desk) == before
    no_tracebacks(caplog)


async def test_a_nul_in_a_usage_note_is_a_422_not_a_500(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, caplog: pytest.LogCaptureFixture
) -> None:
    before = await row_counts(desk)
    answer = await api.post(
        "/v1/grants/grt_0000000000000000/usage",
        json={"kind": "render", "note": "frame\x00 42"},
        headers=auth(parties),
    )
    assert answer.status_code == 422, answer.text
    assert list(field_errors(answer)) == ["note"]
    assert await row_counts(desk) == before
    no_tracebacks(caplog)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"project_title": "x" * 201}, "project_title"),
        ({"project_title": "Moonlight\nDrama"}, "project_title"),
        ({"labeling": "x" * 1001}, "labeling"),
        ({"reference_urls": ["http://studio.example/script.pdf"]}, "reference_urls.0"),
        ({"reference_urls": ["javascript:alert(1)"]}, "reference_urls.0"),
        ({"reference_urls": ["https://studio.example/" + "x" * 2048]}, "reference_urls.0"),
        ({"reference_urls": [f"https://studio.example/{n}" for n in range(11)]}, "reference_urls"),
        ({"artist_id": "art_\x00"}, "artist_id"),
    ],
)
async def test_text_and_links_are_bounded(
    api: httpx.AsyncClient,
    desk: Desk,
    parties: Parties,
    overrides: dict[str, Any],
    field: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = await row_counts(desk)
    data = terms_data(desk, parties.artist_id) | overrides
    answer = await api.post("/v1/requests", json=data, headers=auth(parties))
    assert answer.status_code == 422, answer.text
    assert list(field_errors(answer)) == [field]
    assert await row_counts(desk) == before
    no_tracebacks(caplog)


async def test_clean_text_in_any_script_with_ten_https_links_is_filed(
    api: httpx.AsyncClient, desk: Desk, parties: Parties
) -> None:
    data = terms_data(
        desk,
        parties.artist_id,
        project_title="月光 Moonlight — שלום",
        use_description="第一场：\n\t数字替身出现在三段对白中。Three scenes.",
        reference_urls=[f"https://studio.example/board/{n}" for n in range(10)],
    )
    answer = await api.post("/v1/requests", json=data, headers=auth(parties))
    assert answer.status_code == 201, answer.text
    assert answer.json()["terms"]["project_title"] == "月光 Moonlight — שלום"


@pytest.mark.parametrize("path", ["/v1/requests/req_%00", "/v1/grants/grt_%00", "/v1/grants/grt_%00/receipt"])
async def test_a_nul_in_an_id_is_not_found_on_both_databases(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    before = await row_counts(desk)
    answer = await api.get(path, headers=auth(parties))
    assert answer.status_code in {404, 422}, answer.text
    assert await row_counts(desk) == before
    no_tracebacks(caplog)


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize(
    "args",
    [
        ["agency", "add", "--name", "Star\u202eycnega"],
        ["artist", "add", "--name", "Li\x1b[2JWei"],
        ["creator", "add", "--name", "Dream\x07Studio"],
        ["creator", "add", "--name", "Dream\nStudio"],
        ["agency", "add", "--name", "Star", "--slack-channel", "C1\u2066"],
    ],
)
def test_the_cli_refuses_hidden_characters_in_one_line(tmp_path: Path, args: list[str]) -> None:
    env = service_env(tmp_path)
    assert run_cli(env, tmp_path, "db", "upgrade").returncode == 0
    before = sqlite_rows(tmp_path / "data" / "likeness.db")
    done = run_cli(env, tmp_path, *args)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert sqlite_rows(tmp_path / "data" / "likeness.db") == before


def sqlite_rows(database: Path) -> int:
    """Rows in every table but the migration marker."""
    with sqlite3.connect(database) as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name != "alembic_version"
        ]
        return sum(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables)
