"""`make bench`: runs every benchmark, prints each figure beside its reference, appends to RESULTS.md."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.figures import Figure

HERE = Path(__file__).resolve().parent


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.machine()}"
    return f"{system}, {os.cpu_count()} cores ({cpu}){memory}, Python {platform.python_version()}"


def main() -> None:
    """Runs the benchmarks named on the command line, or all of them."""
    import importlib

    suites = {
        "fanout": "bench.fanout",
        "tap": "bench.tap_latency",
        "intake": "bench.intake",
        "sweep": "bench.sweep_scale",
        "memory": "bench.memory",
        "scale": "bench.scale",
    }
    chosen = sys.argv[1:] or list(suites)
    figures: list[Figure] = []
    started = time.monotonic()
    # Every benchmark's databases (over a gigabyte with the million-row ones) go in one folder
    # that is removed at the end: mkdtemp() without a dir argument creates them there.
    scratch = tempfile.mkdtemp(prefix="likeness-bench-")
    tempfile.tempdir = scratch
    try:
        for name in chosen:
            print(f"== {name}", flush=True)
            try:
                results = importlib.import_module(suites[name]).run()
            except Exception as error:  # one broken benchmark must not hide the others
                print(f"{name}: failed: {type(error).__name__}: {error}", flush=True)
                continue
            for figure in results:
                print(figure.line(), flush=True)
            figures += results
    finally:
        tempfile.tempdir = None
        shutil.rmtree(scratch, ignore_errors=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=HERE
    ).stdout.strip()
    if commit and changed:
        commit += " with uncommitted changes"
    took = time.monotonic() - started
    header = f"\n## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · commit {commit or 'unknown'} · {took:.0f} s\n\n"
    lines = [f"- {f.line()}" for f in figures]
    with (HERE / "RESULTS.md").open("a", encoding="utf-8") as results_file:
        results_file.write(header + f"Machine: {_machine()}\n\n" + "\n".join(lines) + "\n")
    print(f"\nappended to {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
