"""API fuzzing with schemathesis against /openapi.json over real HTTP: no 5xx, answers match the
schema, and a refused call changes nothing."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import positive_data_acceptance

from sandbox.service_process import ServiceProcess, run_cli, service_env, start_service
from tests.faults.world import SOAK, scaled

TABLES = [
    "requests",
    "decisions",
    "grants",
    "usage_events",
    "notices",
    "idempotency_keys",
    "artists",
    "creators",
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServiceProcess, str, Path]]:
    folder = tmp_path_factory.mktemp("fuzz")
    # Fuzz the routes, not the per-key limit (tests/test_rate_limits.py covers that).
    env = service_env(folder, API_RATE_LIMIT="100000/s,100000")
    run_cli(env, folder, "artist", "add", "--name", "Fuzz Target", "--json")
    key = json.loads(run_cli(env, folder, "creator", "add", "--name", "Fuzzer", "--json").stdout)["api_key"]
    service = start_service(env, folder)
    try:
        yield service, key, Path(env["DATABASE_URL"].removeprefix("sqlite+aiosqlite:///"))
    finally:
        service.stop()
    assert "Traceback" not in service.log()


def _counts(database: Path) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def test_the_api_never_fails_and_refused_calls_change_nothing(
    served: tuple[ServiceProcess, str, Path],
) -> None:
    service, key, database = served
    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8

    for operation in operations:

        @given(case=operation.as_strategy())
        # The same 25 examples per operation in `make test` (a red CI run can be replayed);
        # `make soak` draws 400 fresh ones.
        @settings(
            max_examples=scaled(25, 400),
            derandomize=not SOAK,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def call(case: Case) -> None:
            before = _counts(database)
            response: Response = case.call(base_url=service.url, headers={"Authorization": f"Bearer {key}"})
            # Time-relative and cross-field rules (ends after starts, in the future) are beyond what
            # JSON Schema can say, so schema-valid terms may still be refused: that check is off.
            case.validate_response(response, excluded_checks=[positive_data_acceptance])
            assert response.status_code < 500, response.text
            violation_stored = response.status_code == 409 and case.path.endswith("/usage")
            if response.status_code >= 400 and not violation_stored:
                assert _counts(database) == before, f"{case.method} {case.formatted_path} changed state"

        call()
