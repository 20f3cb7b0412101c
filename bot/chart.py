"""The report chart, drawn with matplotlib in a child process (`python -m bot.chart`).

matplotlib and numpy add about 50 MiB to a process that imports them, and that memory stays.
So `likeness serve` never imports them: `bot.reports.ChartDrawer` starts this module as a child
process while charts are wanted and lets it exit when idle. Only the standard library and
matplotlib are imported here, so the child starts quickly and small.

The protocol on the child's stdin and stdout is framed: each request is a 4-byte big-endian
length and a UTF-8 JSON chart spec (see `draw`); each answer is one status byte (`0` PNG
follows, `1` an error message follows), a 4-byte length and the payload.
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import sys
import warnings
from typing import Any, BinaryIO

OK, FAILED = 0, 1
HEADER = struct.Struct(">I")


def draw(spec: dict[str, Any]) -> bytes:
    """A PNG bar chart of uses per week per grant, violations marked in red (matplotlib, Agg).

    `spec` holds the words to show (`title`, `x_label`, `y_label`, `violations_label`, already in
    the reader's language), `weeks` (week starts as YYYY-MM-DD, oldest first) and `grants`: each
    `{"label", "uses": [per week], "violations": [per week]}`.
    """
    import matplotlib

    matplotlib.use("Agg")
    # Names are often Chinese: use a CJK font where one is installed, DejaVu (Latin) otherwise.
    matplotlib.rcParams["font.sans-serif"] = [
        "Noto Sans CJK SC",
        "WenQuanYi Micro Hei",
        "WenQuanYi Zen Hei",
        "Source Han Sans SC",
        "DejaVu Sans",
    ]
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
    from matplotlib import pyplot
    from matplotlib.figure import Figure

    weeks: list[str] = spec["weeks"]
    grants: list[dict[str, Any]] = spec["grants"]
    figure = Figure(figsize=(8, 4), dpi=100)
    axes = figure.subplots()
    positions = list(range(len(weeks)))
    shown = sorted(grants, key=lambda g: -sum(g["uses"]))[:8]
    bottoms = [0] * len(weeks)
    colours = pyplot.get_cmap("tab10")
    for number, grant in enumerate(shown):
        values = grant["uses"]
        axes.bar(positions, values, bottom=bottoms, label=grant["label"], color=colours(number))
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    violations = [sum(g["violations"][i] for g in grants) for i in range(len(weeks))]
    flagged = [(p, b, v) for p, b, v in zip(positions, bottoms, violations, strict=True) if v]
    if flagged:
        axes.scatter(
            [p for p, _, _ in flagged],
            [b + 0.5 for _, b, _ in flagged],
            marker="x",
            color="red",
            s=80,
            label=spec["violations_label"],
        )
        for p, b, v in flagged:
            axes.annotate(
                str(v), (p, b + 0.5), textcoords="offset points", xytext=(0, 6), ha="center", color="red"
            )
    axes.set_xticks(positions, [w[5:] for w in weeks])
    axes.set_xlabel(spec["x_label"])
    axes.set_ylabel(spec["y_label"])
    axes.set_title(spec["title"])
    if shown or flagged:
        axes.legend(fontsize="small", loc="upper left")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _answer(out: BinaryIO, status: int, payload: bytes) -> None:
    out.write(bytes([status]) + HEADER.pack(len(payload)) + payload)
    out.flush()


def serve(source: BinaryIO, out: BinaryIO) -> None:
    """Answers chart specs read from `source` until it closes (the parent's side of the pipe)."""
    while header := source.read(HEADER.size):
        if len(header) < HEADER.size:
            return
        (size,) = HEADER.unpack(header)
        body = source.read(size)
        try:
            png = draw(json.loads(body))
        except Exception as error:  # the parent logs it; the child goes on with the next chart
            _answer(out, FAILED, f"{type(error).__name__}: {error}".encode())
        else:
            _answer(out, OK, png)


def main() -> None:
    """`python -m bot.chart`: serves the parent until it closes the pipe, or goes away."""
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer)
    except (BrokenPipeError, KeyboardInterrupt):
        # The parent died (e.g. killed) or is stopping: nobody is left to answer, and no
        # traceback should land in the service's log, which this process shares. What is left
        # in stdout's buffer goes to /dev/null, so the flush at exit cannot complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    main()
