"""Real processes share one limit through SQLite and through Redis (end-to-end, real time).

4 processes x 4 threads take permits from ``SlidingWindow(20, 1.0)`` (alone, and inside
``Limits(SlidingWindow(20, 1.0), DailyQuota(90))``) for about 5 s; each process writes its grant
times to a file; the merged times must show no half-open 1 s interval with more than 20 grants,
and at least 95 % of the grants the limit allows.

What is measured: the grant time the store decided (``at`` in the grant's stamp, on the store's
one time base: the wall clock for SQLite, the Redis server's TIME for Redis). That is the limiter's
promise, and it can be checked exactly. The wall time at which a thread actually wakes up is later
by its scheduling delay (milliseconds on a busy 2-core machine, unbounded in principle), so
checking wake-up times would test the operating system's scheduler, not the limiter; each file
records it too and the test reports the worst lateness. Absorbing that delay, and network jitter
to the API, is what ``SlidingWindow(margin=...)`` is for.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from ratewindow import DailyQuota, Limits, SlidingWindow, WallClock, store_from_url

pytestmark = pytest.mark.realtime

PROCESSES = 4
THREADS = 4
LIMIT = 20
WINDOW = 1.0
DAILY = 90
DURATION = 5.0


def worker(url: str, setup: str, name: str, start_at: float, stop_at: float, out: str, reset: dt.time) -> None:
    """One process: THREADS threads reserve permits until a grant would fall at or after ``stop_at``."""
    store = store_from_url(url)
    clock = WallClock()  # shared stores decide in their own time; this clock only sleeps
    window = SlidingWindow(LIMIT, WINDOW, name=name, store=store, clock=clock)
    limiter = window
    if setup == "composite":
        limiter = Limits(window, DailyQuota(DAILY, reset_time=reset, name=name, store=store, clock=clock))  # type: ignore[assignment]
    lines: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        while time.time() < start_at:
            time.sleep(0.001)
        while True:
            reservation = limiter.reserve()
            assert reservation._stamp is not None
            at = reservation._stamp[0][0]  # the window member's grant time, in store time
            if at >= stop_at or time.time() >= stop_at + 5.0:
                reservation.cancel()
                return
            reservation.wait()
            woke = time.time()
            with lock:
                lines.append(f"{at!r} {woke!r}\n")

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    Path(out).write_text("".join(lines))
    close = getattr(store, "close", None)
    if close is not None:
        close()


def most_in_any_window(times: list[float], window: float) -> int:
    """The most grants in any half-open interval [x, x + window)."""
    most = 0
    first = 0
    for last, t in enumerate(times):
        while times[first] <= t - window:
            first += 1
        most = max(most, last - first + 1)
    return most


def run_processes(url: str, setup: str, name: str, tmp_path: Path) -> tuple[list[float], list[float], float]:
    """Run the workers; return the sorted grant times, each grant's wake-up lateness, and stop_at."""
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 2.0  # time for the children to start and import
    stop_at = start_at + DURATION
    outs = [str(tmp_path / f"{setup}-{i}.txt") for i in range(PROCESSES)]
    # Every process must use the same calendar: a day reset 12 hours from now, never crossed here.
    reset = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)).time().replace(microsecond=0)
    processes = [
        context.Process(target=worker, args=(url, setup, name, start_at, stop_at, out, reset), daemon=True)
        for out in outs
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join(timeout=60)
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    grants: list[float] = []
    lateness: list[float] = []
    for out in outs:
        for line in Path(out).read_text().splitlines():
            at, woke = line.split()
            grants.append(float(at))
            lateness.append(float(woke) - float(at))
    return sorted(grants), lateness, stop_at


def check(grants: list[float], lateness: list[float], stop_at: float, cap: int | None) -> None:
    assert grants, "no grants at all"
    most = most_in_any_window(grants, WINDOW)
    allowed = LIMIT * int(-(-(stop_at - grants[0]) // WINDOW))  # LIMIT per started second
    if cap is not None:
        allowed = min(allowed, cap)
    summary = (f"{len(grants)} grants (most the limit allows: {allowed}); most in any {WINDOW:g} s: {most}; "
               f"wake-up lateness median {sorted(lateness)[len(lateness) // 2] * 1000:.1f} ms, "
               f"worst {max(lateness) * 1000:.1f} ms")
    print(summary)
    assert most <= LIMIT, summary
    assert len(grants) >= 0.95 * allowed, summary
    assert len(grants) <= allowed, summary
    if cap is not None:
        assert len(grants) == cap, summary


@pytest.mark.parametrize("setup", ["window", "composite"])
def test_sqlite_processes_share_the_limit(setup: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    grants, lateness, stop_at = run_processes(url, setup, f"proc-{setup}", tmp_path)
    check(grants, lateness, stop_at, DAILY if setup == "composite" else None)


@pytest.mark.redis
@pytest.mark.parametrize("setup", ["window", "composite"])
def test_redis_processes_share_the_limit(setup: str, tmp_path: Path, redis_url: str, prefix: str) -> None:
    separator = "&" if "?" in redis_url else "?"
    url = f"{redis_url}{separator}prefix={prefix}"
    grants, lateness, stop_at = run_processes(url, setup, f"proc-{setup}", tmp_path)
    check(grants, lateness, stop_at, DAILY if setup == "composite" else None)
