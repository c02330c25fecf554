"""`ratewindow demo hubspot`, as `make demo` runs it: a real subprocess, the real SDK, the fake."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.realtime
def test_demo_runs_the_seed_workload_without_a_single_429(tmp_path: Path) -> None:
    png = tmp_path / "demo.png"
    result = subprocess.run(
        [sys.executable, "-m", "ratewindow", "demo", "hubspot", "--no-progress", "--png", str(png)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "listed 3,067 engagements" in out
    assert "one call each: 3,067 calls" in out
    assert out.count("rate-limit responses (429): 0") == 2
    peaks = [int(p) for p in re.findall(r"most in any 1 s window: (\d+) of 190", out)]
    assert len(peaks) == 2
    assert 170 < peaks[0] <= 190  # one call each: close to the limit, never above it
    assert "batched: 15 calls" in out
    assert "batched results equal the one-by-one results: True" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
