"""Every module of the service stays small enough to read in one sitting: at most 500 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIMIT = 500
PACKAGES = ("bot", "storage", "scheduler")
# Alembic's generated revisions are a record of the schema's history, not modules anyone edits.
NOT_COUNTED = (ROOT / "storage" / "migrations",)
EXEMPT: set[Path] = set()


def _modules() -> list[Path]:
    found: list[Path] = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not any(path.is_relative_to(skipped) for skipped in NOT_COUNTED):
                found.append(path)
    return found


def test_every_module_in_bot_storage_and_scheduler_has_at_most_500_lines() -> None:
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path in _modules()
        if path.relative_to(ROOT) not in EXEMPT
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > LIMIT
    }
    assert too_long == {}, f"modules over {LIMIT} lines: {too_long}"


def test_the_line_count_sees_the_modules_it_guards() -> None:
    names = {str(path.relative_to(ROOT)) for path in _modules()}
    assert {"bot/models.py", "bot/delivery.py", "storage/tables.py", "scheduler/jobs.py"} <= names
    assert not any(name.startswith("storage/migrations/") for name in names)
