"""Runs `likeness serve` as a real subprocess, for tests and benchmarks that go over HTTP or kill it."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ServiceProcess:
    """A running `likeness serve`; `url` is where it listens."""

    process: subprocess.Popen[str]
    url: str
    log_path: Path
    output: list[str] = field(default_factory=list)
    # Every later stdout line, as a reader thread takes it (None once stdout closed).
    lines: queue.Queue[str | None] = field(default_factory=queue.Queue)

    def line_with(self, text: str, timeout: float = 10.0) -> str:
        """The first stdout line holding `text`, read so far or arriving within `timeout` seconds."""
        for seen in self.output:
            if text in seen:
                return seen
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                break
            if line is None:
                break
            self.output.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} in: {''.join(self.output)}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, exactly like a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM and wait for a clean exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def log(self) -> str:
        """Everything the service wrote to stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def service_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with its own data folder and no platform tokens unless given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "SLACK_", "DATABASE_"))}
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'data' / 'likeness.db'}",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT="0",
        SANDBOX="false",
        LOG_LEVEL="INFO",
        # The tests' webhook receivers listen on loopback (tests/webhook_receiver.py).
        ALLOW_PRIVATE_WEBHOOKS="true",
    )
    env.update(extra)
    return env


def start_service(
    env: dict[str, str],
    cwd: Path,
    *,
    timeout: float = 30.0,
    tag: str = "serve",
    args: tuple[str, ...] = (),
) -> ServiceProcess:
    """Starts `python -m bot serve [args]` and waits for the line that says where it listens."""
    log_path = cwd / f"{tag}-{time.monotonic_ns()}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log_path.open("w"),
        text=True,
    )
    assert process.stdout is not None
    stdout = process.stdout
    # A thread, not select(): a line may already sit in the text wrapper's buffer when the pipe has
    # nothing more to say, e.g. a warning and the "listening on" line flushed together.
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        for line in iter(stdout.readline, ""):
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    output: list[str] = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if line is None:
            break
        output.append(line)
        if "listening on " in line:
            url = line.strip().rsplit("listening on ", 1)[1]
            return ServiceProcess(process, url, log_path, output, lines)
    process.kill()
    process.wait()
    raise RuntimeError(f"likeness serve did not start: {''.join(output)}\n{log_path.read_text()}")


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Runs one `likeness` command and captures its output."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
