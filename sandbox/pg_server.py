"""A throwaway PostgreSQL server for tests and benchmarks, started from the Debian package's binaries."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def find_pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/<v>/bin holding initdb, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PgServer:
    """A running server; `url(db)` gives an asyncpg URL for a database on it."""

    bin_dir: Path
    data_dir: Path
    port: int
    as_root: bool

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        if self.as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True)

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy async URL of one database on this server."""
        return f"postgresql+asyncpg://app@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, template: str | None = None, replace: bool = False) -> str:
        """Creates a database (empty, or a copy of `template`; with `replace`, in place of the one of
        that name) and returns its URL."""
        statements = [f'DROP DATABASE IF EXISTS "{name}"'] if replace else []
        statements.append(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        psql = [str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "app"]
        self._run(*psql, "-d", "postgres", "-q", *[arg for sql in statements for arg in ("-c", sql)])
        return self.url(name)

    def stop(self) -> None:
        """Stops the server and removes its files."""
        try:
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_pg_server() -> PgServer:
    """initdb + pg_ctl start on a free port, as the postgres user when running as root."""
    bin_dir = find_pg_bin()
    if bin_dir is None:
        raise FileNotFoundError("PostgreSQL binaries not found (apt-get install postgresql)")
    as_root = os.geteuid() == 0
    top = Path(tempfile.mkdtemp(prefix="likeness-pg-"))
    data_dir = top / "data"
    data_dir.mkdir()
    if as_root:
        shutil.chown(top, "postgres")
        shutil.chown(data_dir, "postgres")
    server = PgServer(bin_dir, data_dir, free_port(), as_root)
    server._run(str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "app", "--no-sync")
    options = (
        f"-p {server.port} -k {data_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    server._run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data_dir),
        "-o",
        options,
        "-w",
        "-l",
        str(data_dir / "server.log"),
        "start",
    )
    return server
