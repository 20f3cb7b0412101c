"""Files at rest: the data folder, the SQLite database and the signing key are this user's only.

The database holds every decision and the creators' webhook secrets; the key signs receipts.
What the service creates it creates private (folders 0700, files 0600; SQLite gives its -wal
and -shm files the database's mode). What exists already is left as it is, with a warning when
others may read it: changing an operator's modes behind their back would be a surprise.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def _make_private_dir(path: Path) -> None:
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_DIR, exist_ok=True)
        folder.chmod(PRIVATE_DIR)  # mkdir's mode passes through the umask


def private_dir(path: Path) -> None:
    """Creates a folder and its missing parents private (0700); an existing one is left as it is."""
    _make_private_dir(path)


def _make_private_file(path: Path) -> None:
    _make_private_dir(path.parent)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    os.close(descriptor)  # an empty file is an empty SQLite database


def sqlite_path(database_url: str) -> Path | None:
    """The SQLite file a database URL names, or None (PostgreSQL, in memory, or unreadable)."""
    if not database_url.startswith("sqlite"):
        return None
    try:
        url = make_url(database_url)
    except (ArgumentError, ValueError):  # the database layer reports a malformed URL plainly
        return None
    database = url.database
    if not url.drivername.startswith("sqlite") or not database or database == ":memory:":
        return None
    return Path(database).expanduser()


def _too_open(path: Path, allowed: int) -> str | None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if mode & ~allowed & 0o077:
        return f"{path} can be read by other users (mode {mode:04o}); run: chmod {allowed:o} {path}"
    return None


def secure_data_files(data_dir: Path, database_url: str, key_file: Path) -> list[str]:
    """Creates the data folder and the SQLite file private when missing; warnings for looser ones."""
    _make_private_dir(data_dir)
    database = sqlite_path(database_url)
    if database is not None:
        _make_private_file(database)
    _make_private_dir(key_file.parent)
    checks = [(data_dir, PRIVATE_DIR), (key_file, PRIVATE_FILE)]
    if database is not None:
        checks.append((database, PRIVATE_FILE))
    return [warning for path, allowed in checks if (warning := _too_open(path, allowed)) is not None]
