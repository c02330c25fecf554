"""Shared by the benchmark scripts: environment facts and result files."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PEERS = ("ratewindow", "pyrate-limiter", "limits", "throttled-py", "redis")


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(dists: Sequence[str] = PEERS) -> str:
    """A markdown paragraph: date, machine, Python, and the versions of ``dists`` (distribution names)."""
    versions = ", ".join(f"{name} {version(name)}" for name in dists)
    return (
        f"Measured {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores "
        f"({platform.machine()}, {platform.system()}), Python {platform.python_version()}; {versions}."
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, title: str, command: str, body: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    text = f"# {title}\n\n{environment()}\n\nProduced by `{command}`.\n\n{body}\n"
    path.write_text(text)
    print(text)
    return path


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def argv_runs(default: int) -> int:
    for arg in sys.argv[1:]:
        if arg.startswith("--runs="):
            return int(arg.split("=", 1)[1])
    return default


Timer = Callable[[], None]
