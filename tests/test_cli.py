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


def run_bytes(*args: str, stdin: bytes) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "ratewindow", *args], input=stdin, capture_output=True,
                          timeout=120, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def test_check_lists_every_unreadable_line_and_exits_2(tmp_path: Path) -> None:
    """Input the parser chokes on (huge integers, deep nesting, bytes that are not UTF-8) is a bad
    line like any other: never a crash, never exit 1 (the violation code)."""
    deep = "[" * 100_000 + "]" * 100_000
    lines = [
        b"0", b"0.1", b"0.2", b"0.3",  # 4 in a second: a violation of 3/s among the good lines
        b'{"t": 1' + b"0" * 400 + b"}",  # 2: a time too large for a float (OverflowError)
        b'{"t": 1, "cost": 1' + b"0" * 400 + b"}",  # 3: a cost too large (OverflowError)
        b'{"t": ' + deep.encode() + b"}",  # 4: RecursionError
        b"caf\xe9",  # 5: not UTF-8
        b"-5",  # 6: a negative time
        b'{"t": true}',  # 7: a bool is not a time
        b'{"t": 2, "cost": 1e999}',  # 8: an infinite cost
        b"2026-11-24T10:00:00+00:00",
    ]
    log = tmp_path / "bad.log"
    log.write_bytes(b"\n".join(lines[:4]) + b"\n" + b"\n".join(lines[4:]) + b"\n")
    result = run("check", str(log), "--rate", "3/s")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    for number in range(5, 12):
        assert f"bad.log:{number}: " in result.stderr, number
    assert "bad.log:8: not UTF-8" in result.stderr
    assert "bad.log:9: time must be >= 0" in result.stderr
    assert "7 unreadable line(s)" in result.stderr
    assert "rate 3/s: 5 units" in result.stdout  # the good lines are still reported

    piped = run_bytes("check", "-", "--rate", "3/s", stdin=b"0\n\xff\xfe\n1\n")
    assert piped.returncode == 2 and "<stdin>:2: not UTF-8" in piped.stderr


def test_check_refuses_a_log_without_request_times(tmp_path: Path) -> None:
    for text in ("", "\n  \n"):
        log = tmp_path / "empty.log"
        log.write_text(text)
        result = run("check", str(log), "--rate", "3/s")
        assert result.returncode == 2
        assert f"{log}: no request times" in result.stderr


def test_check_reads_naive_timestamps_as_utc_and_says_so(tmp_path: Path) -> None:
    log = tmp_path / "naive.log"
    log.write_text("2026-11-24T10:00:00\n2026-11-24T10:00:00.500Z\n" + json.dumps({"t": "2026-11-24 10:00:00.750"}))
    result = run("check", str(log), "--rate", "3/s")
    assert result.returncode == 0, result.stderr
    assert "3 units over 0.750 s" in result.stdout  # the naive times are the UTC ones
    assert "2 timestamp(s) without a UTC offset were read as UTC (the first on line 1)" in result.stderr
    assert "UTC" in run("check", "--help").stdout


def test_check_says_what_the_utilisation_means(tmp_path: Path) -> None:
    light = tmp_path / "light.log"
    light.write_text("0\n5\n")  # 2 requests against 5/s: no pace to compare with
    result = run("check", str(light), "--rate", "5/s")
    assert result.returncode == 0
    assert "utilisation 0.0%" not in result.stdout
    assert "utilisation n/a: all 2 units fit in one window" in result.stdout

    busy = tmp_path / "busy.log"
    busy.write_text("\n".join(str(i / 8) for i in range(17)))  # 8/s for 2 s: exactly the limit
    result = run("check", str(busy), "--rate", "8/s")
    assert result.returncode == 0
    assert ("utilisation 100.0%: the rate allows these 17 units in 2.000 s at the least, "
            "and they took 2.000 s (100% is as fast as the rate allows)") in result.stdout

    fast = tmp_path / "fast.log"
    fast.write_text("\n".join(str(i / 20) for i in range(17)))  # 8/s exceeded: 17 units in 0.8 s
    result = run("check", str(fast), "--rate", "8/s")
    assert result.returncode == 1
    assert "utilisation 250.0%: " in result.stdout and "above 100%: faster than the rate allows" in result.stdout


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
                                                          ("ratewindow.http", "requests", "http"),
                                                          ("ratewindow.httpx", "httpx", "httpx"),
                                                          ("ratewindow.otel", "opentelemetry", "otel")])
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


# -- plan ---------------------------------------------------------------------------------------------
def test_plan_3067_calls_at_hubspot_professional() -> None:
    result = run("plan", "--rate", "190/10s", "--rate", "625000/day", "-n", "3067",
                 "--tz", "America/New_York", "--start", "2026-12-03T09:00:00-05:00")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "3,067 calls of 1 unit on '190/10s+625000/day': the last starts in 160 s (2 min 40 s), at "
        "2026-12-03T09:02:40-05:00; paced by window '190/10s' (190 per 10 s)\n"
    )


def test_plan_says_when_the_daily_quota_stops_them() -> None:
    result = run("plan", "--rate", "190/10s", "--rate", "625000/day", "-n", "700,000",
                 "--tz", "America/New_York", "--start", "2026-12-03T09:00")  # no offset: in --tz
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    # 625,000 calls take 32,890 s at 19 per second, before midnight; the other 75,000 from midnight.
    assert lines == [
        "700,000 calls of 1 unit on '190/10s+625000/day': the last starts in 57,940 s (16 h 5 min), at "
        "2026-12-04T01:05:40-05:00; paced by window '190/10s' (190 per 10 s)",
        "daily quota '625000/day' (625,000 per day) stops them after 625,000 calls; it resets in 54,000 s "
        "(15 h), at 2026-12-04T00:00:00-05:00",
    ]


def test_plan_counts_local_days_across_a_dst_change() -> None:
    # 100 on 7 March, 100 on 8 March (23 h long in New York), the last 50 at 00:00 EDT on 9 March.
    result = run("plan", "--rate", "100/day", "-n", "250", "--tz", "America/New_York",
                 "--start", "2026-03-07T12:00:00-05:00")
    assert result.returncode == 0, result.stderr
    assert "the last starts in 126,000 s (1 d 11 h), at 2026-03-09T00:00:00-04:00" in result.stdout
    assert "stops them after 100 calls; it resets in 43,200 s (12 h), at 2026-03-08T00:00:00-05:00" \
        in result.stdout


def test_plan_starts_now_by_default() -> None:
    result = run("plan", "--rate", "5/s", "-n", "11")
    assert result.returncode == 0, result.stderr
    assert "11 calls of 1 unit on '5/s': the last starts in 2 s, at " in result.stdout
    assert result.stdout.rstrip().endswith("+00:00; paced by window '5/s' (5 per 1 s)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "0"], "ratewindow plan: -n must be a positive integer, got '0'"),
        (["-n", "many"], "ratewindow plan: -n must be a positive integer, got 'many'"),
        (["-n", "5", "--cost", "200"], "ratewindow plan: cost 200 exceeds 190, the most limiter '190/10s' can"),
        (["-n", "5", "--cost", "-1"], "ratewindow plan: --cost must be a positive integer, got '-1'"),
        (["-n", "5", "--tz", "Mars/Olympus"], "ratewindow plan: unknown time zone 'Mars/Olympus'"),
        (["-n", "5", "--start", "soon"], "ratewindow plan: --start must be an ISO 8601 time"),
        (["-n", "5", "--rate", "ten/s"], "ratewindow plan: cannot parse rate 'ten/s'"),
    ],
)
def test_plan_refuses_bad_input_with_exit_2(args: list[str], message: str) -> None:
    result = run("plan", "--rate", "190/10s", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""
