"""The command line, through a real subprocess, and the window analysis behind it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratewindow import Rate
from ratewindow._analysis import analyse


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ratewindow", *args], input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)


def test_check_passes_a_log_within_the_rate(tmp_path: Path) -> None:
    log = tmp_path / "ok.log"
    log.write_text("\n".join(str(i / 8) for i in range(100)))  # 8 per second exactly (exact in binary)
    result = run("check", str(log), "--rate", "8/s")
    assert result.returncode == 0, result.stderr
    assert "most in any window 8 of 8" in result.stdout
    assert "no violations" in result.stdout


def test_check_finds_the_violating_intervals(tmp_path: Path) -> None:
    times = [0.0, 0.5, 0.9, 1.0, 1.2, 5.0, 5.1, 5.2, 5.3]  # 4 in (0.2, 1.2], and 4 within 0.3 s at 5.0
    log = tmp_path / "bad.log"
    log.write_text("\n".join(map(str, times)) + "\n")
    result = run("check", str(log), "--rate", "3/s", "--rate", "100/day")
    assert result.returncode == 1
    assert "2 violating interval(s)" in result.stdout
    assert "from 0.500000 to 1.200000: up to 4 units" in result.stdout
    assert "from 5.000000 to 5.300000: up to 4 units" in result.stdout
    assert "rate 100/day: 9 units" in result.stdout


def test_check_reads_iso_and_json_lines_and_reports_bad_lines(tmp_path: Path) -> None:
    log = tmp_path / "mixed.log"
    log.write_text("\n".join([
        "2026-11-24T10:00:00Z",
        json.dumps({"t": "2026-11-24T10:00:00.500+00:00"}),
        json.dumps({"t": 1795514401.0, "cost": 2}),
        "not a time",
        "",
        json.dumps({"time": 3}),
    ]))
    result = run("check", str(log), "--rate", "5/s")
    assert result.returncode == 2
    assert "mixed.log:4:" in result.stderr
    assert "mixed.log:6: JSON line without a 't' field" in result.stderr
    assert "2 unreadable line(s)" in result.stderr
    assert "4 units" in result.stdout  # the three good lines, one of cost 2


def test_check_refuses_a_bad_rate_and_a_missing_file(tmp_path: Path) -> None:
    result = run("check", str(tmp_path / "missing.log"), "--rate", "10/s")
    assert result.returncode == 2
    assert "missing.log" in result.stderr
    (tmp_path / "x.log").write_text("1\n")
    result = run("check", str(tmp_path / "x.log"), "--rate", "ten per second")
    assert result.returncode == 2
    assert "cannot parse rate 'ten per second'" in result.stderr


def test_check_reads_stdin() -> None:
    result = run("check", "-", "--rate", "2/s", stdin="0\n0.1\n0.2\n")
    assert result.returncode == 1


@pytest.mark.realtime
def test_version_names_ratewindow_its_adapters_and_python() -> None:
    from importlib import metadata

    import ratewindow

    result = run("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"ratewindow {ratewindow.__version__}"
    assert f"ratewindow-hubspot {metadata.version('ratewindow-hubspot')}" in lines  # installed by make test
    assert lines[-1] == f"Python {sys.version.split()[0]}"


def test_core_demo_runs_and_reports_no_violation(tmp_path: Path) -> None:
    png = tmp_path / "core.png"
    result = run("demo", "core", "--no-progress", "--png", str(png))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "most in any window" in result.stdout
    assert "no violations" in result.stdout
    assert result.stderr == ""  # --no-progress: no bar
    assert f"wrote {png}" in result.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("module", "missing", "extra"), [("ratewindow.metrics", "prometheus_client", "prometheus"),
                                                          ("ratewindow.http", "requests", "http")])
def test_a_submodule_without_its_extra_names_the_extra_to_install(module: str, missing: str, extra: str) -> None:
    # As on a machine without the extra: the dependency cannot be imported.
    code = f"import sys; sys.modules[{missing!r}] = None; import {module}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: ") and f"pip install 'ratewindow[{extra}]'" in last, last


@pytest.mark.parametrize("fake", ["ratewindow_hubspot", "ratewindow_salesforce"])
def test_the_fakes_spell_their_shared_options_the_same(fake: str) -> None:
    module = pytest.importorskip(f"{fake}.testing.__main__")
    parser = module._parser()
    args = parser.parse_args(["--port", "0", "--time-scale", "0.1", "--latency", "0.02", "0.04", "--seed", "3"])
    assert (args.port, args.time_scale, args.seed) == (0, 0.1, 3)
    assert module._latency(args.latency, parser) == (0.02, 0.04)
    assert module._latency(parser.parse_args(["--latency", "0.03"]).latency, parser) == (0.03, 0.03)
    with pytest.raises(SystemExit):
        module._latency(["0.04", "0.02"], parser)  # LOW > HIGH


@settings(max_examples=200, deadline=None)
@given(times=st.lists(st.integers(0, 400).map(lambda n: n / 8), max_size=60), limit=st.integers(1, 6),
       window=st.sampled_from([0.5, 1.0, 2.5]))
def test_analysis_matches_brute_force(times: list[float], limit: int, window: float) -> None:
    report = analyse(times, Rate(limit, window))
    counts = [sum(1 for u in times if t - window < u <= t) for t in times]
    assert report.most_in_window == max(counts, default=0)
    assert bool(report.violations) == any(c > limit for c in counts)
    assert report.total == len(times)
