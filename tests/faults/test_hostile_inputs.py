"""Hostile callers get nothing: spoofed text, clock control outside the sandbox, a sandbox open
to the network. Each case asserts the answer, that no row was written, and that no traceback was
logged; cases that touch the database run on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from bot.clean_text import check_clean_line, check_clean_text, hidden_character, visible_text
from bot.workflow import Desk
from sandbox.factories import Parties, make_parties, terms_data
from sandbox.service_process import ServiceProcess, run_cli, service_env, start_service
from tests.conftest import Door
from tests.test_api import auth
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
async def parties(desk: Desk) -> Parties:
    return await make_parties(desk)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def door_grant(door: Door, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An active grant of the door's parties that takes outputs: none of the tests on it keeps one."""
    return await grant_taking_outputs(door.desk, door.parties, tmp_path_factory.mktemp("outputs"))


on_the_module_loop = pytest.mark.asyncio(loop_scope="module")


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


@on_the_module_loop
@pytest.mark.parametrize("field", [f for f, _ in FREE_TEXT])
@pytest.mark.parametrize("name", ["NUL", "ESC", "right-to-left override", "pop directional isolate"])
async def test_hidden_characters_in_request_text_are_a_field_422_and_write_nothing(
    door: Door, field: str, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    api, desk, parties = door.api, door.desk, door.parties
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


@on_the_module_loop
async def test_a_nul_in_a_usage_note_is_a_422_not_a_500(door: Door, caplog: pytest.LogCaptureFixture) -> None:
    api, desk, parties = door.api, door.desk, door.parties
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


@on_the_module_loop
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
    door: Door, overrides: dict[str, Any], field: str, caplog: pytest.LogCaptureFixture
) -> None:
    api, desk, parties = door.api, door.desk, door.parties
    before = await row_counts(desk)
    data = terms_data(desk, parties.artist_id) | overrides
    answer = await api.post("/v1/requests", json=data, headers=auth(parties))
    assert answer.status_code == 422, answer.text
    assert list(field_errors(answer)) == [field]
    assert await row_counts(desk) == before
    no_tracebacks(caplog)


@on_the_module_loop
async def test_clean_text_in_any_script_with_ten_https_links_is_filed(door: Door) -> None:
    api, desk, parties = door.api, door.desk, door.parties
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


@on_the_module_loop
@pytest.mark.parametrize("path", ["/v1/requests/req_%00", "/v1/grants/grt_%00", "/v1/grants/grt_%00/receipt"])
async def test_a_nul_in_an_id_is_not_found_on_both_databases(
    door: Door, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    api, desk, parties = door.api, door.desk, door.parties
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
def test_the_cli_refuses_hidden_characters_in_one_line(cli_folder: Path, args: list[str]) -> None:
    env = service_env(cli_folder)
    before = sqlite_rows(cli_folder / "data" / "likeness.db")
    done = run_cli(env, cli_folder, *args)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error: ") and len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert sqlite_rows(cli_folder / "data" / "likeness.db") == before


def sqlite_rows(database: Path) -> int:
    """Rows in every table but the migration marker."""
    with sqlite3.connect(database) as connection:
        tables = [
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name != "alembic_version"
        ]
        return sum(connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables)


# ---------------------------------------------------------------- start-up refusals (exit 2)


def serve_once(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve"], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"CLOCK_CONTROL": "true", "TELEGRAM_BOT_TOKEN": "7000001:real-looking"}, "TELEGRAM_BOT_TOKEN"),
        ({"CLOCK_CONTROL": "true", "SLACK_BOT_TOKEN": "xoxb-real-looking"}, "SLACK_BOT_TOKEN"),
        ({"CLOCK_CONTROL": "true", "SLACK_SIGNING_SECRET": "real-looking"}, "SLACK_SIGNING_SECRET"),
        ({"CLOCK_CONTROL": "true", "HTTP_HOST": "0.0.0.0"}, "loopback"),
        ({"SANDBOX": "true", "HTTP_HOST": "0.0.0.0"}, "SANDBOX_PUBLIC=true"),
    ],
)
def test_testing_tools_next_to_the_real_world_stop_start_up_with_one_line(
    tmp_path: Path, settings: dict[str, str], words: str
) -> None:
    done = serve_once(service_env(tmp_path, **settings), tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], done.stderr
    assert "listening on" not in done.stdout
    assert not (tmp_path / "data" / "likeness.db").exists()  # nothing was made


# ---------------------------------------------------------------- clock control bounds


def sqlite_counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as connection:
        names = [n for (n,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: connection.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}


@pytest.fixture(scope="module")
def clock_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the one service every clock-control case talks to (each checks its own before
    and after, so they can share it)."""
    return tmp_path_factory.mktemp("clock")


@pytest.fixture(scope="module")
def clock_service(clock_folder: Path) -> Iterator[ServiceProcess]:
    env = service_env(clock_folder, CLOCK_CONTROL="true", TELEGRAM_BOT_TOKEN="", SLACK_BOT_TOKEN="")
    service = start_service(env, clock_folder, tag="clock")
    try:
        yield service
    finally:
        service.stop()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"skip": "99999999999999w"}, "too long"),
        ({"skip": "401d"}, "400 days"),
        ({"skip": "58w"}, "400 days"),
        ({"skip": "-5d"}, "not a duration"),
        ({"skip": "0h"}, "longer than zero"),
        ({"skip": "soon"}, "not a duration"),
        ({"skip": "1" * 5000 + "d"}, "at most 32"),
        ({"skip": 5}, "string"),
        ({}, "Field required"),
    ],
)
def test_bad_clock_skips_are_422_and_move_nothing(
    clock_service: ServiceProcess, clock_folder: Path, body: dict[str, Any], words: str
) -> None:
    database = clock_folder / "data" / "likeness.db"
    with httpx.Client(base_url=clock_service.url, timeout=10) as http:
        before = http.get("/control/clock").json()["offset_seconds"]
        rows = sqlite_counts(database)
        answer = http.post("/control/clock", json=body)
        assert answer.status_code == 422, answer.text
        assert words in answer.text
        assert http.get("/control/clock").json()["offset_seconds"] == before
    assert sqlite_counts(database) == rows
    assert "Traceback" not in clock_service.log()


def test_a_clock_skip_must_be_json_and_at_most_400_days_moves_it(clock_service: ServiceProcess) -> None:
    with httpx.Client(base_url=clock_service.url, timeout=10) as http:
        for headers in (
            {"Content-Type": "text/plain"},
            {"Content-Type": "application/x-www-form-urlencoded"},
            {},
        ):
            answer = http.post("/control/clock", content=b'{"skip": "3650d"}', headers=headers)
            assert answer.status_code == 415, answer.text
        assert http.get("/control/clock").json()["offset_seconds"] == 0
        moved = http.post("/control/clock", json={"skip": "400d"})
        assert moved.status_code == 200 and moved.json()["offset_seconds"] == 400 * 86400
    assert "Traceback" not in clock_service.log()


# ---------------------------------------------------------------- the sandbox's door


def raw_status(url: str, target: str, host: str | None = None) -> int:
    """Sends a request line exactly as given (no client normalises its dots) and reads the status."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        request = f"GET {target} HTTP/1.1\r\nHost: {host or parts.netloc}\r\nConnection: close\r\n\r\n"
        connection.sendall(request.encode())
        head = connection.recv(64).decode("latin-1")
    return int(head.split()[1])


def sandbox_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = service_env(tmp_path, **extra)
    del env["SANDBOX"]
    return env


def table_rows(database: Path, *tables: str) -> int:
    with sqlite3.connect(database) as connection:
        return sum(connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)


def test_the_loopback_sandbox_takes_json_only_and_keeps_paths_inside(tmp_path: Path) -> None:
    service = start_service(sandbox_env(tmp_path), tmp_path, tag="sandbox")
    try:
        database = tmp_path / "data" / "likeness.db"
        with httpx.Client(base_url=service.url, timeout=10) as http:
            assert http.get("/sandbox").status_code == 200
            before = table_rows(database, "requests", "decisions", "grants")
            for path in ("/sandbox/telegram/send_text", "/sandbox/slack/click", "/control/clock"):
                answer = http.post(
                    path,
                    content=b'{"user_id": 7000102, "text": "/start"}',
                    headers={"Content-Type": "text/plain"},
                )
                assert answer.status_code == 415, (path, answer.text)
            assert table_rows(database, "requests", "decisions", "grants") == before
        token = "7000000001:sandbox-likeness-bot"
        for target in (
            f"/sandbox/telegram/../bot{token}/getMe",
            f"/sandbox/telegram/%2e%2e/bot{token}/getMe",
            f"/sandbox/telegram/%2E%2E/%2E%2E/bot{token}/getMe",
            "/sandbox/slack/./../api/auth.test",
            "/sandbox/static/..%2f..%2fwiring.py",
        ):
            assert raw_status(service.url, target) == 404, target
        # A page elsewhere whose name was rebound to 127.0.0.1 is not this machine's sandbox.
        assert raw_status(service.url, "/sandbox/config", host="attacker.example") == 403
        assert raw_status(service.url, "/sandbox") == 200
    finally:
        service.stop()
    assert "Traceback" not in service.log()


def test_a_public_sandbox_needs_the_token_printed_once(tmp_path: Path) -> None:
    service = start_service(sandbox_env(tmp_path, HTTP_HOST="0.0.0.0", SANDBOX_PUBLIC="true"), tmp_path)
    try:
        line = service.line_with("sandbox: open")
        entry = line.split("open ", 1)[1].split(" in your browser")[0]
        token = parse_qs(urlsplit(entry).query)["token"][0]
        assert len(token) >= 32
        url = service.url.replace("0.0.0.0", "127.0.0.1")
        with httpx.Client(base_url=url, timeout=10) as http:
            for path in ("/sandbox", "/sandbox/config", "/control/clock", "/sandbox/telegram/messages"):
                assert http.get(path).status_code == 401, path
                assert http.get(path, params={"token": "wrong"}).status_code == 401, path
            assert http.post("/control/clock", json={"skip": "1d"}).status_code == 401
            first = http.get("/sandbox", params={"token": token})
            assert first.status_code == 303 and first.headers["location"] == "/sandbox"
            assert (
                "HttpOnly" in first.headers["set-cookie"] and "SameSite=Strict" in first.headers["set-cookie"]
            )
            assert http.get("/sandbox").status_code == 200  # the cookie carries the token now
            assert http.get("/control/clock").status_code == 200
        with httpx.Client(base_url=url, timeout=10, headers={"X-Sandbox-Token": token}) as http:
            assert http.get("/control/clock").status_code == 200
    finally:
        service.stop()
    assert token not in service.log()  # printed once on stdout, never in the log
    assert "Traceback" not in service.log()


# ---------------------------------------------------------------- outputs (issue 15)


async def grant_taking_outputs(desk: Desk, parties: Parties, folder: Path) -> str:
    """An active grant, the desk keeping outputs in `folder`."""
    from bot.output_files import OutputFiles
    from tests.test_outputs_api import active_grant

    desk.output_files = OutputFiles(folder / "hostile-outputs")
    return await active_grant(desk, parties)


@pytest.fixture
async def output_grant(desk: Desk, parties: Parties, tmp_path: Path) -> str:
    return await grant_taking_outputs(desk, parties, tmp_path)


def _kept(desk: Desk) -> list[Path]:
    assert desk.output_files is not None
    root = desk.output_files.root
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _mp4_with_a_lying_box() -> bytes:
    import struct

    ftyp = struct.pack(">I4s", 16, b"ftyp") + b"isom" + bytes(4)
    return ftyp + struct.pack(">I4sQ", 1, b"moov", 2**62)


HOSTILE_UPLOADS: list[tuple[str, dict[str, Any], int]] = [
    ("NUL in the description", {"description": "Scene\x00 4"}, 422),
    ("right-to-left override in the description", {"description": "Scene \u202e4"}, 422),
    ("a description past its limit", {"description": "x" * 5000}, 422),
    ("a PNG whose chunk checksum is wrong", {"data": b"\x89PNG\r\n\x1a\n" + bytes(30)}, 422),
    ("an MP4 box claiming exabytes", {"data": _mp4_with_a_lying_box(), "type": "video/mp4"}, 422),
    (
        "an Ogg page whose segments run past the end",
        {"data": b"OggS\x00" + bytes(21) + b"\x01\xff", "type": "audio/ogg"},
        422,
    ),
    ("a type with no bytes to match", {"type": "application/x-msdownload"}, 415),
    ("a declared type with parameters and capitals, other bytes", {"type": "IMAGE/JPEG; q=1"}, 415),
]


@on_the_module_loop
@pytest.mark.parametrize(("case", "given", "status"), HOSTILE_UPLOADS, ids=[c[0] for c in HOSTILE_UPLOADS])
async def test_hostile_output_uploads_are_refused_plainly_and_keep_nothing(
    door: Door,
    door_grant: str,
    caplog: pytest.LogCaptureFixture,
    case: str,
    given: dict[str, Any],
    status: int,
) -> None:
    api, desk, parties, output_grant = door.api, door.desk, door.parties, door_grant
    from tests.output_samples import sample

    before = await row_counts(desk)
    answer = await api.post(
        f"/v1/grants/{output_grant}/outputs",
        files={
            "file": (
                "../../../etc/passwd",
                given.get("data", sample("image/png")),
                given.get("type", "image/png"),
            )
        },
        data={"description": given.get("description", "A scene")},
        headers=auth(parties),
    )
    assert answer.status_code == status, answer.text
    after = await row_counts(desk)
    assert after["outputs"] == before["outputs"] == 0
    assert _kept(desk) == []
    no_tracebacks(caplog)


async def test_a_traversing_file_name_is_ignored_the_file_is_kept_by_its_hash(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, output_grant: str, tmp_path: Path
) -> None:
    from tests.output_samples import sample

    answer = await api.post(
        f"/v1/grants/{output_grant}/outputs",
        files={"file": ("../../escape.png", sample("image/png"), "Image/PNG; name=x")},
        data={"description": "A scene"},
        headers=auth(parties),
    )
    assert answer.status_code == 201, answer.text
    [kept] = _kept(desk)
    assert kept.name == answer.json()["sha256"]
    assert not (tmp_path / "escape.png").exists()


async def test_malformed_output_bodies_are_refused_without_a_traceback(
    api: httpx.AsyncClient, desk: Desk, parties: Parties, output_grant: str, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.output_samples import sample

    url = f"/v1/grants/{output_grant}/outputs"
    two = await api.post(
        url,
        files=[
            ("file", ("a.png", sample("image/png"), "image/png")),
            ("file", ("b.png", sample("image/png"), "image/png")),
        ],
        data={"description": "A scene"},
        headers=auth(parties),
    )
    assert two.status_code == 400
    plain = await api.post(url, content=b"hello", headers=auth(parties) | {"Content-Type": "text/plain"})
    assert plain.status_code == 415
    broken = await api.post(
        url,
        content=b"--x\r\nnot a part",
        headers=auth(parties) | {"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert broken.status_code in (400, 422)
    huge = await api.post(
        url,
        content=b"",
        headers=auth(parties)
        | {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(2**40)},
    )
    assert huge.status_code == 413
    assert (await api.get("/v1/outputs/out_%00", headers=auth(parties))).status_code in (404, 422)
    assert (await api.get("/public/outputs/%00" + "a" * 63)).status_code == 422
    assert (await row_counts(desk))["outputs"] == 0 and _kept(desk) == []
    no_tracebacks(caplog)
