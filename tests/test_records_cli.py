"""The records commands: list, show, update, members, deactivate; JSON out, one-line errors, and
nothing changed by bad input."""

from __future__ import annotations

import getpass
import json
import sqlite3

import pytest
from typer.testing import CliRunner

from bot.cli import app


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env | {"ALLOW_PRIVATE_WEBHOOKS": "false"}


def likeness(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def dump(env: dict[str, str]) -> list[tuple[object, ...]]:
    """Every row of the record tables, to show that nothing changed."""
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")) as db:
        return [
            row
            for table in ("agencies", "artists", "creators", "notices")
            for row in db.execute(f"SELECT * FROM {table} ORDER BY 1")
        ]


@pytest.fixture
def ids(env: dict[str, str]) -> dict[str, str]:
    def made(*args: str) -> str:
        code, out, err = likeness(env, *args, "--json")
        assert code == 0, err
        return str(json.loads(out)["id"])

    agency = made("agency", "add", "--name", "Star", "--slack-channel", "C1", "--slack-member", "U1")
    artist = made("artist", "add", "--name", "Li", "--agency", agency)
    creator = made("creator", "add", "--name", "Studio")
    return {"agency": agency, "artist": artist, "creator": creator}


def test_list_show_update_and_deactivate_print_json(env: dict[str, str], ids: dict[str, str]) -> None:
    code, out, _ = likeness(env, "agency", "list", "--json")
    assert code == 0 and [a["id"] for a in json.loads(out)["agencies"]] == [ids["agency"]]
    code, out, _ = likeness(env, "agency", "member", "add", ids["agency"], "U2", "--by", "ops-anna", "--json")
    assert code == 0 and json.loads(out)["slack_member_ids"] == ["U1", "U2"]
    code, out, _ = likeness(env, "agency", "member", "remove", ids["agency"], "U1", "--json")
    assert code == 0 and json.loads(out)["slack_member_ids"] == ["U2"]
    code, out, _ = likeness(env, "agency", "update", ids["agency"], "--name", "Star 2", "--json")
    assert code == 0 and json.loads(out)["name"] == "Star 2"
    code, out, _ = likeness(env, "agency", "show", ids["agency"], "--json")
    assert json.loads(out)["artist_ids"] == [ids["artist"]]

    code, out, _ = likeness(env, "artist", "list", "--agency", ids["agency"], "--json")
    assert code == 0 and [a["id"] for a in json.loads(out)["artists"]] == [ids["artist"]]
    code, out, _ = likeness(
        env,
        "artist",
        "update",
        ids["artist"],
        "--policy",
        "both_required",
        "--red-line",
        "sensitive:political",
        "--language",
        "zh-Hans",
        "--timezone",
        "Asia/Shanghai",
        "--name",
        "Li Wei",
        "--json",
    )
    shown = json.loads(out)
    assert code == 0 and shown["changed"] == ["language", "name", "policy", "red_lines", "timezone"]
    assert shown["red_lines"] == {"media": [], "sensitive": ["political"]}
    code, out, _ = likeness(env, "artist", "deactivate", ids["artist"], "--json")
    assert code == 0 and json.loads(out)["deactivated_at"]
    code, out, _ = likeness(env, "artist", "show", ids["artist"], "--json")
    assert json.loads(out)["deactivated_at"] and json.loads(out)["policy"] == "both_required"

    code, out, _ = likeness(env, "creator", "update", ids["creator"], "--name", "Studio 2", "--json")
    assert code == 0 and json.loads(out)["changed"] == ["name"]
    code, out, _ = likeness(env, "creator", "deactivate", ids["creator"], "--json")
    assert code == 0 and json.loads(out)["deactivated_at"]
    code, out, _ = likeness(env, "creator", "list", "--json")
    assert [c["name"] for c in json.loads(out)["creators"]] == ["Studio 2"]
    code, out, _ = likeness(env, "creator", "show", ids["creator"])
    assert code == 0 and "deactivated_at: 20" in out

    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")) as db:
        who = dict(db.execute("SELECT action, actor_id FROM audit_events WHERE actor_kind = 'admin'"))
    assert who["agency.member_added"] == "ops-anna"
    assert who["artist.updated"] == getpass.getuser()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["agency", "show", "agy_0000000000000000"], "no agency agy_0000000000000000"),
        (["agency", "update", "agy_0000000000000000", "--name", "X"], "no agency"),
        (["agency", "update", "{agency}", "--timezone", "Mars/Olympus"], "--timezone"),
        (["agency", "update", "{agency}", "--name", "a\u202eb"], "--name"),
        (["agency", "update", "{agency}", "--slack-channel", "C 1"], "--slack-channel"),
        (["agency", "update", "{agency}", "--language", "fr"], "--language 'fr' must be one of: zh-Hans, en"),
        (["agency", "update", "{agency}", "--language", ""], "--language"),
        (["agency", "add", "--name", "Moon", "--language", "zh-Hant"], "--language"),
        (["agency", "member", "add", "{agency}", "U-1"], "Slack id"),
        (["agency", "member", "add", "agy_0000000000000000", "U2"], "no agency"),
        (["agency", "member", "remove", "{agency}", "U9"], "not a member"),
        (["artist", "show", "art_0000000000000000"], "no artist"),
        (["artist", "list", "--agency", "agy_0000000000000000"], "no agency"),
        (["artist", "update", "art_0000000000000000", "--name", "X"], "no artist"),
        (["artist", "update", "{artist}", "--agency", "agy_0000000000000000"], "no agency"),
        (["artist", "update", "{artist}", "--red-line", "media:opera"], "--red-line"),
        (["artist", "update", "{artist}", "--timezone", "Nowhere"], "--timezone"),
        (["artist", "update", "{artist}", "--name", ""], "--name"),
        (["artist", "update", "{artist}", "--by", "x\u202ey", "--name", "Y"], "--by"),
        (["artist", "deactivate", "art_0000000000000000"], "no artist"),
        (["creator", "show", "crt_0000000000000000"], "no creator"),
        (["creator", "update", "crt_0000000000000000", "--name", "X"], "no creator"),
        (["creator", "update", "{creator}", "--webhook-url", "http://127.0.0.1:9/hook"], "--webhook-url"),
        (["creator", "update", "{creator}", "--webhook-url", "ftp://x"], "--webhook-url"),
        (["creator", "deactivate", "crt_0000000000000000"], "no creator"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    env: dict[str, str], ids: dict[str, str], args: list[str], words: str
) -> None:
    before = dump(env)
    code, out, err = likeness(env, *(a.format(**ids) for a in args))
    lines = err.strip().splitlines()
    assert code == 1 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("error: ") and words in lines[0], lines
    assert dump(env) == before


def test_an_agency_speaks_the_language_it_is_given_and_the_change_is_audited(
    env: dict[str, str], ids: dict[str, str]
) -> None:
    code, out, _ = likeness(env, "agency", "show", ids["agency"], "--json")
    assert code == 0 and json.loads(out)["language"] == "en"  # the default
    code, out, err = likeness(
        env, "agency", "update", ids["agency"], "--language", "zh-Hans", "--by", "ops-anna", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["language"] == "zh-Hans" and json.loads(out)["changed"] == ["language"]
    code, out, _ = likeness(env, "agency", "list", "--json")
    assert [a["language"] for a in json.loads(out)["agencies"]] == ["zh-Hans"]
    code, out, _ = likeness(env, "agency", "add", "--name", "Moon", "--language", "zh-Hans", "--json")
    code, out, _ = likeness(env, "agency", "show", json.loads(out)["id"], "--json")
    assert json.loads(out)["language"] == "zh-Hans"
    with sqlite3.connect(env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")) as db:
        [(actor, details)] = db.execute(
            "SELECT actor_id, data FROM audit_events WHERE action = 'agency.updated'"
        ).fetchall()
    assert actor == "ops-anna" and "zh-Hans" in details


def test_a_language_not_offered_is_a_usage_error(env: dict[str, str], ids: dict[str, str]) -> None:
    before = dump(env)
    code, _, err = likeness(env, "artist", "update", ids["artist"], "--language", "fr")
    assert code == 2 and "Traceback" not in err
    assert dump(env) == before
