"""`ratewindow demo salesforce` in a real subprocess: the real simple-salesforce, the TLS fake."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.realtime
def test_demo_runs_the_seed_workload_without_a_refusal(tmp_path: Path) -> None:
    png = tmp_path / "demo.png"
    result = subprocess.run(
        [sys.executable, "-m", "ratewindow", "demo", "salesforce", "--objects", "120", "--no-progress",
         "--png", str(png)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "120 objects x 4 calls" in out
    assert "one call at a time: 480 calls counted against the allocation" in out
    assert "refusals (403 REQUEST_LIMIT_EXCEEDED): 0; items failed: 0" in out
    assert "refusals: 0;" in out
    assert "batched results equal the one-at-a-time results: True" in out
    assert "the seed's pace of 200 calls per minute (200 per 6 s)" in out
    peak = re.search(r"counted in any 6 s \(a minute, time-scaled 10x\): (\d+) of the pace 200", out)
    assert peak is not None and int(peak.group(1)) <= 200, out  # as the server counted
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_without_the_testing_extra_is_a_one_line_hint(tmp_path: Path) -> None:
    # As without ``pip install 'ratewindow-salesforce[testing]'``: trustme cannot be imported.
    code = ("import sys; sys.modules['trustme'] = None; from ratewindow._cli import main; "
            f"sys.exit(main(['demo', 'salesforce', '--no-progress', '--png', {str(tmp_path / 'x.png')!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "ratewindow demo salesforce: needs 'trustme': pip install 'ratewindow-salesforce[testing]' "
        "(import of trustme halted; None in sys.modules)"
    ]
