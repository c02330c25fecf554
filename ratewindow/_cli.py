"""The ``ratewindow`` command: ``demo``, ``check`` and ``plan``."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import random
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from ratewindow._analysis import WindowReport, analyse
from ratewindow._calendar import Calendar
from ratewindow._clock import WallClock
from ratewindow._daily_quota import DailyQuota
from ratewindow._forecast import Forecast
from ratewindow._limiter import _BaseLimiter
from ratewindow._limits import Limits
from ratewindow._plot import plot_window_use
from ratewindow._rate import Rate
from ratewindow._sliding_window import SlidingWindow

__all__ = ["main"]


def _parse_time(text: str) -> tuple[float, bool]:
    """(seconds, naive): a number of seconds, or an ISO 8601 timestamp as Unix time; ``naive`` is
    True for a timestamp without a UTC offset, which is read as UTC.

    Raises:
        ValueError: neither.
    """
    try:
        return float(text), False
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not a time (seconds, ISO 8601 or JSON): {text[:80]!r}") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc).timestamp(), True
    return moment.timestamp(), False


def _number(name: str, value: object) -> float:
    """A JSON number (not a bool) as a finite float.

    Raises:
        ValueError: anything else, named.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}"[:120])
    try:
        number = float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large ({len(str(abs(value)))} digits)") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _read_line(line: str) -> tuple[float, float, bool]:
    """(time, cost, naive) of one non-blank line.

    Raises:
        ValueError: the line is not a request time, with the reason.
    """
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None
        if not isinstance(record, dict) or "t" not in record:
            raise ValueError("JSON line without a 't' field")
        t = record["t"]
        if isinstance(t, str):
            value, naive = _parse_time(t)
        else:
            value, naive = _number("t", t), False
        cost = _number("cost", record.get("cost", 1))
        if not cost > 0:
            raise ValueError(f"cost must be > 0, got {record.get('cost')!r}")
    else:
        (value, naive), cost = _parse_time(line), 1.0
    if not math.isfinite(value):
        raise ValueError(f"time must be finite, got {line[:80]!r}")
    if value < 0:
        raise ValueError(
            f"time must be >= 0 (seconds since an epoch, or a timestamp after 1970), got {line[:80]!r}"
        )
    return value, cost, naive


def read_times(lines: Sequence[str | bytes]) -> tuple[list[float], list[float], list[tuple[int, str]]]:
    """Parse request times: one number of seconds >= 0 a line (Unix time, or any clock's seconds),
    an ISO 8601 timestamp (without a UTC offset: read as UTC), or a JSON object with ``t``
    (either form) and an optional ``cost`` (> 0). Lines may be bytes (decoded as UTF-8). Blank
    lines are ignored; every other unreadable line is returned as (line number, reason), whatever
    went wrong reading it."""
    times, costs, bad, _naive = _read_times(lines)
    return times, costs, bad


def _read_times(lines: Sequence[str | bytes]
                ) -> tuple[list[float], list[float], list[tuple[int, str]], list[int]]:
    """``read_times``, plus the numbers of the lines whose timestamp had no UTC offset."""
    times: list[float] = []
    costs: list[float] = []
    bad: list[tuple[int, str]] = []
    naive: list[int] = []
    for number, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as exc:
            bad.append((number, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"))
            continue
        line = text.strip()
        if not line:
            continue
        try:
            value, cost, is_naive = _read_line(line)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            bad.append((number, str(exc) or f"cannot read {line[:80]!r}"))
            continue
        times.append(value)
        costs.append(cost)
        if is_naive:
            naive.append(number)
    return times, costs, bad, naive


def _report_lines(report: WindowReport, origin: float = 0.0) -> list[str]:
    lines = [
        f"rate {report.rate}: {report.total:g} units over {report.duration:.3f} s; "
        f"most in any window {report.most_in_window:g} of {report.rate.limit} "
        f"({report.most_in_window / report.rate.limit:.1%})",
        "  " + _utilisation_text(report),
    ]
    if report.violations:
        lines.append(f"  {len(report.violations)} violating interval(s):")
        for first, last, units in report.violations[:20]:
            lines.append(
                f"    from {first - origin:.6f} to {last - origin:.6f}: up to {units:g} units in one window"
            )
        if len(report.violations) > 20:
            lines.append(f"    ... and {len(report.violations) - 20} more")
    else:
        lines.append("  no violations")
    return lines


def _utilisation_text(report: WindowReport) -> str:
    """What the utilisation figure is, in words: the least time the rate allows for the units
    over the time they took (100%: as fast as the rate allows; above: faster than it allows)."""
    least = report.least_duration()
    if least <= 0:
        return (f"utilisation n/a: all {report.total:g} units fit in one window, so the rate sets no "
                "least time for them")
    text = (f"utilisation {report.utilisation:.1%}: the rate allows these {report.total:g} units in "
            f"{least:.3f} s at the least, and they took {report.duration:.3f} s (100% is as fast as the "
            "rate allows")
    return text + ("; above 100%: faster than the rate allows)" if report.utilisation > 1.0 else ")")


def check(path: str, rates: Sequence[str]) -> int:
    """``ratewindow check``: exit 0 if every window respects every rate, 1 on a violation,
    2 if the input could not be read (every bad line is listed with its number) or holds no
    request times."""
    parsed = [Rate.parse(text) for text in rates]
    name = "<stdin>" if path == "-" else path
    data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    times, costs, bad, naive = _read_times(data.splitlines())
    for number, reason in bad:
        print(f"{name}:{number}: {reason}", file=sys.stderr)
    if naive:
        print(f"{name}: note: {len(naive)} timestamp(s) without a UTC offset were read as UTC "
              f"(the first on line {naive[0]})", file=sys.stderr)
    if not times:
        print(f"{name}: no request times" + (f" ({len(bad)} unreadable line(s))" if bad else ""),
              file=sys.stderr)
        return 2
    violated = False
    for rate in parsed:
        report = analyse(times, rate, costs)
        violated |= bool(report.violations)
        print("\n".join(_report_lines(report)))
    if bad:
        print(f"{len(bad)} unreadable line(s); see above", file=sys.stderr)
        return 2
    return 1 if violated else 0


class _Fixed:
    """A clock that stays at one Unix time: ``plan`` forecasts from a moment, it never waits."""

    grace = 0.0  # the rates alone: no jitter allowance

    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:  # pragma: no cover - a forecast never sleeps
        return None

    async def asleep(self, seconds: float) -> None:  # pragma: no cover
        return None


def _positive_int(name: str, text: str) -> int:
    try:
        value = int(text.replace(",", "").replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {text!r}")
    return value


def plan(rates: Sequence[str], calls: str, *, cost: str = "1", tz: str = "UTC", start: str | None = None
         ) -> Forecast:
    """``ratewindow plan``: the ``Forecast`` for ``calls`` calls from empty limiters built from
    ``rates`` (``N/day`` is a daily quota that resets at midnight in ``tz``, as ``DailyQuota``;
    every other rate a sliding window), starting at ``start`` (ISO 8601; now by default).

    Raises:
        ValueError: bad input, named in the message.
    """
    count = _positive_int("-n", calls)
    units = _positive_int("--cost", cost)
    zone = Calendar(tz).tz  # ValueError naming an unknown zone
    if start is None:
        began = float(math.floor(WallClock().now()))  # to the second: times print without a fraction
    else:
        try:
            moment = dt.datetime.fromisoformat(start.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"--start must be an ISO 8601 time such as 2026-12-03T09:00:00-05:00, got {start!r}"
            ) from None
        began = (moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)).timestamp()
    clock = _Fixed(began)
    members: list[_BaseLimiter] = []
    for text in rates:
        rate = Rate.parse(text)
        if rate.window == 86_400.0:
            members.append(DailyQuota(rate.limit, tz=tz, name=str(rate), clock=clock))
        else:
            members.append(SlidingWindow(rate.limit, rate.window, name=str(rate), clock=clock))
    limiter = members[0] if len(members) == 1 else Limits(*members)
    forecast = limiter.forecast(count, units)
    resets = forecast.resets_at.astimezone(zone) if forecast.resets_at is not None else None
    return dataclasses.replace(forecast, done_at=forecast.done_at.astimezone(zone), resets_at=resets)


def demo_core(*, workers: int = 16, calls: int = 600, limit: int = 190, window: float = 1.0,
              margin: float = 0.01, latency: tuple[float, float] = (0.02, 0.04), seed: int = 7,
              progress: bool = True, png: str | Path = "ratewindow-demo-core.png") -> int:
    """Several threads share one limiter, as the seeds' pipelines do; a tqdm bar shows progress
    (unless ``progress`` is False), a report checks every window of the observed call starts, and
    ``png`` gets a chart of calls per rolling window against the limit. HubSpot's 190 per 10 s
    runs scaled to 190 per 1 s. ``margin`` (seconds) absorbs the few milliseconds by which a
    sleeping thread wakes after its booked time, instead of setting the limit 10 % low."""
    from tqdm import tqdm

    limiter = SlidingWindow(limit, window, margin=margin, name="demo")
    starts: list[float] = []
    lock = threading.Lock()
    rng = random.Random(seed)
    delays = [rng.uniform(*latency) for _ in range(calls)]
    queue = list(range(calls))
    bar = tqdm(total=calls, desc=f"{workers} threads, {limit} per {window:g} s", unit="call",
               disable=not progress)

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop()
            limiter.acquire()
            with lock:
                starts.append(time.monotonic())
            time.sleep(delays[item])  # the simulated API call
            bar.update(1)

    began = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    bar.close()
    wall = time.monotonic() - began
    report = analyse(starts, Rate(limit, window))
    print()
    print(f"{limiter!r}, margin {margin * 1000:g} ms")
    print(f"calls: {len(starts)}; wall time {wall:.2f} s")
    print("\n".join(_report_lines(report, origin=min(starts))))
    path = plot_window_use(png, [(f"{workers} THREADS SHARING ONE LIMITER", starts)], window, limit,
                           f"CALLS PER ROLLING {window:g} S WINDOW", y_label="CALLS IN THE WINDOW")
    print(f"wrote {path}")
    return 1 if report.violations else 0


def _versions() -> str:
    """ratewindow's version, then the installed adapters, SDKs, HTTP and store clients (for bug reports)."""
    from importlib import metadata

    from ratewindow import __version__

    lines = [f"ratewindow {__version__}"]
    for dist in ("ratewindow-hubspot", "hubspot-api-client", "ratewindow-salesforce", "simple-salesforce",
                 "requests", "httpx", "redis"):
        try:
            lines.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    lines.append(f"Python {sys.version.split()[0]}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ratewindow", description="Exact rate limits for API pipelines.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # --version lines
    parser.add_argument("--version", action="version", version=_versions(),
                        help="show the versions of ratewindow, its adapters and clients, and exit")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a demonstration on loopback (no network, no credentials)")
    demo.add_argument("workload", nargs="?", default="hubspot", choices=["hubspot", "salesforce", "core"],
                      help="the seed workload (default: hubspot); core: threads sharing a limiter")
    demo.add_argument("--real-time", action="store_true",
                      help="use the APIs' true windows instead of running them 10x faster")
    demo.add_argument("--png", default=None, help="chart file (default: ratewindow-demo-NAME.png)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.add_argument("--objects", type=int, default=None, help="salesforce: only the first N objects")
    checker = commands.add_parser(
        "check", help="check a log of request times against rates",
        description="Check a log of request times against one or more rates: for each rate, the most "
                    "units in any window, every violating interval, and the utilisation (the least time "
                    "the rate allows for the units over the time they took; 100% is as fast as the "
                    "rate allows).",
        epilog="Each line is a number of seconds >= 0 (Unix time, or any one clock's seconds), an ISO "
               "8601 timestamp, or a JSON object {\"t\": TIME, \"cost\": UNITS}. A timestamp without "
               "a UTC offset is read as UTC: only the differences between times matter here, and UTC "
               "has no DST jumps; give offsets when the log is in local time and crosses a DST change. "
               "Exit status: 0 every window keeps every rate; 1 a violation; 2 unreadable input (every "
               "bad line is listed as FILE:LINE: reason), no request times, or a bad --rate.",
    )
    checker.add_argument("log", help="file with one request time per line ('-' for stdin); see below")
    checker.add_argument("--rate", action="append", required=True, metavar="N/WINDOW",
                         help="a rate such as 170/10s or 625000/day; repeat for several")
    planner = commands.add_parser(
        "plan", help="forecast how long N calls take at some rates, and whether a daily quota stops them",
        description="Forecast when N calls would all have started at the given rates, from unused limits, "
                    "and whether a daily quota stops them first, with its reset time; the same as "
                    "limiter.forecast(n) on limiters built from the rates.",
        epilog="A rate of one day (N/day, N/24h) is a daily quota that resets at midnight in --tz (as "
               "DailyQuota, and as HubSpot counts its daily limit); every other rate is a sliding window. "
               "The rates alone count: no margin. Exit status: 0; 2 on bad input.",
    )
    planner.add_argument("--rate", action="append", required=True, metavar="N/WINDOW",
                         help="a rate such as 190/10s or 625000/day; repeat for several")
    planner.add_argument("-n", "--calls", required=True, metavar="N", help="calls to make")
    planner.add_argument("--cost", default="1", metavar="UNITS", help="units each call takes (default 1)")
    planner.add_argument("--tz", default="UTC", help="IANA time zone of the days and of the times shown "
                                                     "(default UTC)")
    planner.add_argument("--start", default=None, metavar="TIME",
                         help="ISO 8601 time to start at (default now; without an offset, in --tz)")
    args = parser.parse_args(argv)
    if args.command == "plan":
        try:
            print(plan(args.rate, args.calls, cost=args.cost, tz=args.tz, start=args.start))
        except (ValueError, TypeError) as exc:
            print(f"ratewindow plan: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "check":
        try:
            return check(args.log, args.rate)
        except (OSError, ValueError) as exc:
            print(f"ratewindow check: {exc}", file=sys.stderr)
            return 2
    if args.workload == "core":
        return demo_core(progress=not args.no_progress, png=args.png or "ratewindow-demo-core.png")
    extra = {"objects": args.objects} if args.objects is not None else {}
    return _adapter_demo(args.workload, real_time=args.real_time, png=args.png, progress=not args.no_progress,
                         **extra)


#: What each adapter demo needs installed: the adapter, and for Salesforce its fake's TLS CA (trustme).
DEMO_NEEDS = {"hubspot": "ratewindow-hubspot", "salesforce": "ratewindow-salesforce[testing]"}


def _adapter_demo(name: str, *, real_time: bool, png: str | None, progress: bool, **extra: int) -> int:
    """Run an adapter's demo (the adapters are separate distributions: imported only here). A
    module missing for it, the adapter or a dependency the demo imports late, is one line with
    the command that installs it, not a traceback."""
    import importlib

    try:
        module = importlib.import_module(f"ratewindow_{name}._demo")
        result: int = module.run(real_time=real_time, png=png or f"ratewindow-demo-{name}.png",
                                 progress=progress, **extra)
    except ModuleNotFoundError as exc:
        what = "the adapter" if exc.name == f"ratewindow_{name}" else f"{exc.name!r}"
        print(f"ratewindow demo {name}: needs {what}: pip install '{DEMO_NEEDS[name]}' ({exc})",
              file=sys.stderr)
        return 2
    return result
