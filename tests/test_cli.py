"""The `likeness` command: JSON output, exit codes, one-line errors, audit and receipt checks."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bot import workflow
from bot.app import build_desk
from bot.cli import app
from bot.config import load_settings
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, submit
from sandbox.service_process import run_cli
from tests.test_workflow import approve


@pytest.fixture
def env(cli_env: dict[str, str]) -> dict[str, str]:
    return cli_env


def likeness(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Runs the CLI in-process with the given environment."""
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def db_path(env: dict[str, str]) -> str:
    return env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///")


async def granted_on_the_cli_database(
    env: dict[str, str],
    tmp_path: Path,
    then: Callable[[Desk, Parties, workflow.Decided], Awaitable[dict[str, Any]]],
) -> dict[str, Any]:
    """Parties and an approved request (its grant starting now) on the CLI's database, then `then`;
    writes the service's public keys to `tmp_path / "keys.json"` and returns what `then` returned."""
    desk = build_desk(
        load_settings(**{k.lower(): v for k, v in env.items() if k in {"DATABASE_URL", "DATA_DIR"}})
    )
    try:
        await desk.db.upgrade()
        parties = await make_parties(desk)
        submitted = await submit(desk, parties, starts_at=desk.clock.now().isoformat())
        made = await then(desk, parties, await approve(desk, submitted.view.request.id, parties.artist()))
        (tmp_path / "keys.json").write_text(json.dumps(desk.signer.public_keys_document()))
        return made
    finally:
        await desk.db.dispose()


def test_adds_print_one_json_object_with_the_id(env: dict[str, str]) -> None:
    code, out, _ = likeness(
        env, "agency", "add", "--name", "Star", "--slack-channel", "C1", "--slack-member", "U1", "--json"
    )
    assert code == 0
    agency = json.loads(out)["id"]
    code, out, _ = likeness(
        env,
        "artist",
        "add",
        "--name",
        "Li",
        "--agency",
        agency,
        "--policy",
        "both_required",
        "--language",
        "zh-Hans",
        "--timezone",
        "Asia/Shanghai",
        "--red-line",
        "sensitive:political",
        "--json",
    )
    assert code == 0 and json.loads(out)["id"].startswith("art_")
    code, out, _ = likeness(
        env, "creator", "add", "--name", "Studio", "--webhook-url", "https://studio.example/hook", "--json"
    )
    created = json.loads(out)
    assert (
        code == 0 and created["api_key"].startswith("lk_") and created["webhook_secret"].startswith("whsec_")
    )
    with sqlite3.connect(db_path(env)) as db:
        stored = db.execute("SELECT api_key_hash FROM creators").fetchone()[0]
    assert created["api_key"] not in stored  # only the hash is kept


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["artist", "add", "--name", "Li", "--timezone", "Mars/Olympus"], "IANA time zone"),
        (["artist", "add", "--name", "Li", "--red-line", "media:opera"], "--red-line"),
        (["artist", "add", "--name", "Li", "--agency", "agy_missing"], "no agency agy_missing"),
        (["artist", "add", "--name", "Li", "--policy", "both_required"], "needs an agency"),
        (["artist", "add", "--name", "   "], "--name"),
        (["creator", "add", "--name", "S", "--webhook-url", "ftp://x"], "--webhook-url"),
        (["agency", "add", "--name", "A", "--slack-member", "not a member"], "--slack-member"),
        (["artist", "invite", "art_nope"], "TELEGRAM_BOT_TOKEN"),
        (["report", "send", "--artist", "art_nope"], "no artist art_nope"),
    ],
)
def test_bad_input_is_one_line_on_stderr_with_exit_1_and_changes_nothing(
    env: dict[str, str], args: list[str], message: str
) -> None:
    likeness(env, "db", "upgrade")
    with sqlite3.connect(db_path(env)) as db:
        before = (
            db.execute("SELECT count(*) FROM artists").fetchone()[0]
            + db.execute("SELECT count(*) FROM creators").fetchone()[0]
        )
    code, out, err = likeness(env, *args)
    assert code == 1
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert out == ""
    with sqlite3.connect(db_path(env)) as db:
        after = (
            db.execute("SELECT count(*) FROM artists").fetchone()[0]
            + db.execute("SELECT count(*) FROM creators").fetchone()[0]
        )
    assert after == before


@pytest.mark.parametrize(
    "args",
    [
        ["artist", "add"],
        ["artist", "add", "--name", "Li", "--policy", "everyone"],
        ["nonsense"],
        ["report", "send"],
    ],
)
def test_bad_usage_exits_2(env: dict[str, str], args: list[str]) -> None:
    code, _, err = likeness(env, *args)
    assert code == 2
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("name", "value", "variable"),
    [
        ("SWEEP_INTERVAL", "soon", "SWEEP_INTERVAL"),
        ("DECISION_REMINDERS", "24h,often", "DECISION_REMINDERS"),
        ("HTTP_PORT", "eighty", "HTTP_PORT"),
        ("DEFAULT_TIMEZONE", "Moon/Base", "DEFAULT_TIMEZONE"),
        ("REPORT_CRON", "every monday", "REPORT_CRON"),
        ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
        ("MAX_GRANT_DAYS", "0", "MAX_GRANT_DAYS"),
        ("OUTPUT_QUOTA", "lots", "OUTPUT_QUOTA"),
        ("OUTPUT_QUOTA", "0", "OUTPUT_QUOTA"),
    ],
)
def test_a_bad_setting_stops_with_one_line_naming_the_variable(
    env: dict[str, str], name: str, value: str, variable: str
) -> None:
    code, _, err = likeness(env | {name: value}, "db", "upgrade")
    assert code == 1
    assert f"configuration: {variable}:" in err and err.count("\n") == 1


def test_a_malformed_database_url_is_reported_plainly(env: dict[str, str]) -> None:
    code, _, err = likeness(env | {"DATABASE_URL": "postgresql+asyncpg://user:secret@:::/"}, "db", "upgrade")
    assert code == 1 and "DATABASE_URL" in err and "secret" not in err


def test_an_unreachable_database_is_reported_plainly(env: dict[str, str]) -> None:
    from sandbox.pg_server import free_port

    url = f"postgresql+asyncpg://app:hunter2@127.0.0.1:{free_port()}/likeness"
    code, _, err = likeness(env | {"DATABASE_URL": url}, "db", "upgrade")
    assert code == 1
    assert "cannot reach the database" in err and "hunter2" not in err and err.count("\n") == 1


def test_audit_verify_names_the_first_tampered_event(env: dict[str, str]) -> None:
    likeness(env, "agency", "add", "--name", "A")
    likeness(env, "creator", "add", "--name", "S")
    code, out, _ = likeness(env, "audit", "verify", "--json")
    assert code == 0 and json.loads(out)["intact"] is True
    with sqlite3.connect(db_path(env)) as db:
        db.execute('UPDATE audit_events SET data = \'{"name": "Evil"}\' WHERE seq = 1')
    code, out, err = likeness(env, "audit", "verify", "--json")
    assert code == 1
    assert json.loads(out)["bad_seq"] == 1
    assert "event 1" in err


def test_receipt_verify_accepts_a_genuine_receipt_and_refuses_any_changed_byte(
    env: dict[str, str], tmp_path: Path
) -> None:
    async def grant_receipt(_desk: Desk, _parties: Parties, decided: workflow.Decided) -> dict[str, Any]:
        assert decided.view.grant is not None
        return decided.view.grant.receipt

    receipt = asyncio.run(granted_on_the_cli_database(env, tmp_path, grant_receipt))
    genuine = tmp_path / "receipt.json"
    genuine.write_text(json.dumps(receipt))
    keys = str(tmp_path / "keys.json")
    assert likeness(env, "receipt", "verify", str(genuine), "--keys", keys)[0] == 0
    assert likeness(env, "receipt", "verify", str(genuine))[0] == 0  # the service's own key by default

    text = genuine.read_text()
    for original, changed in [
        ('"face"', '"body"'),
        # A different first character, whatever the genuine one is.
        (
            receipt["signature"],
            ("B" if str(receipt["signature"])[0] == "A" else "A") + str(receipt["signature"])[1:],
        ),
    ]:  # type: ignore[index]
        forged = tmp_path / "forged.json"
        forged.write_text(text.replace(str(original), str(changed), 1))
        code, _, err = likeness(env, "receipt", "verify", str(forged), "--keys", keys)
        assert code == 1 and "not valid" in err
    (tmp_path / "junk.json").write_text("not json at all")
    code, _, err = likeness(env, "receipt", "verify", str(tmp_path / "junk.json"), "--keys", keys)
    assert code == 1 and "is not JSON" in err


def test_python_dash_m_bot_is_the_same_command(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(env, tmp_path, "agency", "add", "--name", "Via Module", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"].startswith("agy_")
    bad = run_cli(env, tmp_path, "artist", "add", "--name", "X", "--timezone", "Nowhere")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_receipt_verify_accepts_a_deletion_receipt_and_refuses_any_changed_byte(
    env: dict[str, str], tmp_path: Path
) -> None:
    async def deletion_receipt(desk: Desk, parties: Parties, decided: workflow.Decided) -> dict[str, Any]:
        assert decided.view.grant is not None
        grant_id = decided.view.grant.id
        await workflow.revoke_grant(desk, grant_id=grant_id, actor=parties.artist())
        confirmed = await workflow.confirm_deletion(
            desk,
            creator_id=parties.creator_id,
            grant_id=grant_id,
            statement="Training set and fine-tuned weights were erased from every store.",
            deleted_at=desk.clock.now(),
        )
        assert confirmed.deletion.receipt is not None
        return confirmed.deletion.receipt

    receipt = asyncio.run(granted_on_the_cli_database(env, tmp_path, deletion_receipt))
    genuine = tmp_path / "deletion.json"
    genuine.write_text(json.dumps(receipt))
    keys = str(tmp_path / "keys.json")
    code, out, _ = likeness(env, "receipt", "verify", str(genuine), "--keys", keys, "--json")
    assert code == 0
    assert json.loads(out) == {
        "valid": True,
        "grant_id": receipt["grant"]["id"],  # type: ignore[index]
        "type": "likeness-deletion-receipt",
    }
    assert likeness(env, "receipt", "verify", str(genuine))[0] == 0  # the service's own key by default

    text = genuine.read_text()
    for at in (text.index("erased"), text.index("deleted_at") + 20):
        forged = tmp_path / "forged.json"
        forged.write_text(text[:at] + ("X" if text[at] != "X" else "Y") + text[at + 1 :])
        code, _, err = likeness(env, "receipt", "verify", str(forged), "--keys", keys)
        assert code == 1 and "not valid" in err, text[at - 10 : at + 10]
