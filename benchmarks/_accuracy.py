"""Accuracy across processes: 4 processes x 4 threads share 20 per 1 s, for every library and store.

Every row runs the same scenario (the one of ``tests/test_store_processes.py``): ``PROCESSES``
spawned processes, each with ``THREADS`` threads, share one limit of ``LIMIT`` per ``WINDOW``
seconds through a shared store for ``seconds`` seconds from a common start time. Each process
builds one limiter the way its library documents for sharing between processes and hands it to its
threads. Every thread tries without blocking, as fast as it can; after a refusal (or an error) it
sleeps ``RETRY_SLEEP`` (1 ms) and tries again, so every library is driven alike.

What is recorded: for each grant, the wall clock (``time.time()``) just before the try and just after
it returned: its *span*. Every library decides during the call, on this host's clock (the client's
``time.time()``, SQLite's, or the Redis server's ``TIME`` on loopback), so a grant's decision instant
lies inside its span. Only grants whose span lies wholly in ``[start, start + seconds)`` are kept (a
try that straddles the end, at most one per thread, is dropped).

The columns (``HEADER``):

- *most in any 1 s*: the most grants whose spans all fit in one half-open interval ``[x, x + 1 s)``;
  those were certainly decided within the same second, whatever the scheduling delays. It is a
  lower bound of what the store did, so a figure above ``LIMIT`` is a proven violation, never an
  artefact of a slow thread (recording only the return time would charge a thread's wake-up delay
  to the limiter: a grant decided legally 1 s after another but recorded 5 ms late looks early).
- *violating 1 s intervals*: the number of grants g for which more than ``LIMIT`` grants have spans
  wholly in ``[start of g's span, + 1 s)``; 0 means no such interval exists at all.
- *% of the most the limit allows*: grants / (``LIMIT`` x the started seconds of the run, or the
  row's daily cap if smaller); 100 % is every unit the limit allows, above 100 % is over-admission.
- *errors*: exceptions raised by tries (each counted as a refusal), by kind.
- *try ms*: median and worst duration of the granted tries, i.e. how wide the spans are.

A peer that is not installed gives a row saying so; a peer that fails to build gives its error.

Run alone: ``.venv-bench/bin/python benchmarks/_accuracy.py [--seconds=S]`` (``REDIS_URL`` if set,
else a private ``redis-server`` on a free loopback port, as ``stores.py`` does). From another
script: ``table(HEADER, accuracy_rows(redis_url, directory))``.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

PROCESSES = 4
THREADS = 4
LIMIT = 20
WINDOW = 1.0
DAILY = 90  #: the daily cap of the composite row (reached within the run: it must bind exactly)
RETRY_SLEEP = 0.001  #: seconds a thread sleeps after a refused (or failed) try
START_DELAY = 3.0  #: seconds for the spawned children to import and build their limiter
GRACE = 30.0  #: seconds after the end before a child that has not exited is terminated

HEADER = ["library / store", "grants", "most in any 1 s", "violating 1 s intervals",
          "% of the most the limit allows", "errors", "try ms (median / worst)"]

Attempt = Callable[[], bool]
Close = Callable[[], None]
Spans = list[tuple[float, float]]


# -- limiters, built in each child process -----------------------------------------------------------
def _redis_client(url: str) -> Any:
    """A redis-py client as ``RedisStore`` and ``stores.redis_client`` build one (no client retries)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0))


def _ratewindow(kind: str, url: str, directory: str, key: str, reset: dt.time) -> tuple[Attempt, Close]:
    from ratewindow import DailyQuota, Limits, RedisStore, SlidingWindow, SQLiteStore, WallClock

    store = (SQLiteStore(os.path.join(directory, "ratewindow.db")) if kind == "rw-sqlite"
             else RedisStore(url, prefix=f"{key}:"))
    clock = WallClock()  # shared stores decide in their own time; the clock only sleeps
    window = SlidingWindow(LIMIT, WINDOW, name=key, store=store, clock=clock)
    if kind == "rw-composite":
        both = Limits(window, DailyQuota(DAILY, reset_time=reset, name=key, store=store, clock=clock))
        return both.try_acquire, store.close
    return window.try_acquire, store.close


def _pyrate(kind: str, url: str, directory: str, key: str, reset: dt.time) -> tuple[Attempt, Close]:
    """One ``Limiter`` per process, shared by its threads; ``try_acquire(blocking=False)`` returns
    the grant as a bool (False too when another thread or process holds its lock: it catches that
    ``TimeoutError``)."""
    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket, SQLiteBucket

    rates = [Rate(LIMIT, Duration.SECOND)]
    if kind == "pyrate-redis":
        bucket: Any = RedisBucket.init(rates, _redis_client(url), key)
    else:  # its multi-process SQLite mode: a file lock around every decision (needs filelock)
        path = os.path.join(directory, "pyrate.sqlite")
        bucket = SQLiteBucket.init_from_file(rates, db_path=path, use_file_lock=True)
    limiter = Limiter(bucket)

    def attempt() -> bool:
        return bool(limiter.try_acquire("k", blocking=False))

    return attempt, limiter.close


def _limits(kind: str, url: str, directory: str, key: str, reset: dt.time) -> tuple[Attempt, Close]:
    """One storage and strategy per process; ``hit(item, key)`` returns the grant as a bool."""
    from limits import RateLimitItemPerSecond, storage, strategies

    redis_storage = storage.RedisStorage(url)
    strategy = {
        "limits-moving": strategies.MovingWindowRateLimiter,
        "limits-fixed": strategies.FixedWindowRateLimiter,
        "limits-counter": strategies.SlidingWindowCounterRateLimiter,
    }[kind](redis_storage)
    item = RateLimitItemPerSecond(LIMIT, 1)

    def attempt() -> bool:
        return strategy.hit(item, key)

    return attempt, lambda: None


def _throttled(kind: str, url: str, directory: str, key: str, reset: dt.time) -> tuple[Attempt, Close]:
    """One ``Throttled`` per process (non-blocking, its default); ``limit()`` grants when its result
    is not ``limited``."""
    from throttled import RateLimiterType, Throttled, rate_limiter, store

    using = RateLimiterType.TOKEN_BUCKET if kind == "throttled-bucket" else RateLimiterType.SLIDING_WINDOW
    throttle = Throttled(
        key=key,
        using=using.value,
        quota=rate_limiter.per_duration(timedelta(seconds=WINDOW), LIMIT),  # burst = limit
        store=store.RedisStore(server=url),
    )

    def attempt() -> bool:
        return not throttle.limit().limited

    return attempt, lambda: None


#: kind -> (label, top-level module needed, builder, daily cap or None)
ROWS: dict[str, tuple[str, str, Callable[..., tuple[Attempt, Close]], int | None]] = {
    "rw-redis": (f"ratewindow SlidingWindow({LIMIT}, {WINDOW!r}), RedisStore", "redis", _ratewindow, None),
    "rw-composite": (f"ratewindow Limits(SlidingWindow({LIMIT}, {WINDOW!r}), DailyQuota({DAILY})), "
                     "RedisStore", "redis", _ratewindow, DAILY),
    "rw-sqlite": (f"ratewindow SlidingWindow({LIMIT}, {WINDOW!r}), SQLiteStore", "ratewindow", _ratewindow,
                  None),
    "pyrate-redis": ("pyrate-limiter RedisBucket", "pyrate_limiter", _pyrate, None),
    "pyrate-sqlite": ("pyrate-limiter SQLiteBucket, file lock (processes)", "pyrate_limiter", _pyrate, None),
    "limits-moving": ("limits MovingWindow (RedisStorage)", "limits", _limits, None),
    "limits-counter": ("limits SlidingWindowCounter (RedisStorage; approximate by design)", "limits",
                       _limits, None),
    "limits-fixed": ("limits FixedWindow (RedisStorage; a fixed window, not sliding)", "limits", _limits,
                     None),
    "throttled-window": ("throttled-py sliding window (RedisStore)", "throttled", _throttled, None),
    "throttled-bucket": (f"throttled-py token bucket {LIMIT}/s, burst {LIMIT} (RedisStore; a bucket, "
                         "not a window)", "throttled", _throttled, None),
}


# -- one child process ---------------------------------------------------------------------------------
def _worker(kind: str, url: str, directory: str, key: str, reset: dt.time, start_at: float, stop_at: float,
            out: str) -> None:
    """Build the row's limiter, run ``THREADS`` threads from ``start_at`` to ``stop_at``, write a JSON
    report (spans of the grants, errors by kind, when the limiter was ready, a fatal error) to ``out``."""
    spans: Spans = []
    errors: Counter[str] = Counter()
    fatal: str | None = None
    lock = threading.Lock()
    try:
        attempt, close = ROWS[kind][2](kind, url, directory, key, reset)
    except ImportError as exc:
        fatal = f"not installed ({exc.name})" if exc.name else "not installed"
    except Exception as exc:  # a peer failing must not hide the other rows
        fatal = f"error: {type(exc).__name__}: {exc}"[:100]
    ready = time.time()

    def run() -> None:
        mine: Spans = []
        failed: Counter[str] = Counter()
        while time.time() < start_at:
            time.sleep(0.001)
        while True:
            before = time.time()
            if before >= stop_at:
                break
            try:
                granted = attempt()
            except Exception as exc:  # counted, then treated as a refusal
                failed[f"{type(exc).__name__}: {exc}"[:70]] += 1
                granted = False
            after = time.time()
            if granted:
                if after < stop_at:
                    mine.append((before, after))
            else:
                time.sleep(RETRY_SLEEP)
        with lock:
            spans.extend(mine)
            errors.update(failed)

    if fatal is None:
        threads = [threading.Thread(target=run, daemon=True) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=stop_at - time.time() + GRACE / 2)
        if any(thread.is_alive() for thread in threads):
            errors["a try still running long after the end"] += 1
        try:
            close()
        except Exception as exc:
            errors[f"close: {type(exc).__name__}: {exc}"[:70]] += 1
    Path(out).write_text(json.dumps({"spans": spans, "errors": errors, "ready": ready, "fatal": fatal}))


# -- measures ------------------------------------------------------------------------------------------
def certain_counts(spans: Spans, limit: int, window: float) -> tuple[int, int]:
    """(the most grants whose spans all fit in one half-open ``[x, x + window)``, the number of grants
    whose span start begins such an interval holding more than ``limit`` of them).

    The best ``x`` for a set of spans is the earliest start among them, so trying every span's start
    finds the maximum; each interval is counted once per grant that starts it.
    """
    ordered = sorted(spans)
    most = violating = 0
    end = 0
    for i, (start, _) in enumerate(ordered):
        while end < len(ordered) and ordered[end][0] < start + window:
            end += 1
        inside = sum(1 for k in range(i, end) if ordered[k][1] < start + window)
        most = max(most, inside)
        if inside > limit:
            violating += 1
    return most, violating


def errors_text(errors: Counter[str]) -> str:
    """A table cell: the two most frequent errors with their counts, and how many other kinds."""
    if not errors:
        return "none"
    shown = [f"{count:,} x {text}" for text, count in errors.most_common(2)]
    more = len(errors) - len(shown)
    return "; ".join(shown) + (f"; {more} other kinds" if more > 0 else "")


def cleanup_redis(url: str, key: str) -> None:
    """Delete the keys whose names contain ``key`` (a row's unique name): only what the row wrote."""
    try:
        client = _redis_client(url)
        names = list(client.scan_iter(match=f"*{key}*", count=1000))
        if names:
            client.delete(*names)
        client.close()
    except Exception:  # no Redis reachable, or the redis package missing: nothing of ours to delete
        pass


def measure(kind: str, redis_url: str, directory: str, seconds: float) -> list[object]:
    """One table row: run ``PROCESSES`` children for ``kind`` and merge their reports."""
    label, module, _, cap = ROWS[kind]
    if importlib.util.find_spec(module) is None:
        return [label, f"not installed ({module})", "", "", "", "", ""]
    key = f"rw-accuracy-{kind}-{uuid.uuid4().hex[:8]}"
    work = tempfile.mkdtemp(prefix=f"{kind}-", dir=directory)
    # Every process must use the same calendar: a day reset 12 hours from now, never crossed here.
    reset = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=12)).time().replace(microsecond=0)
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + START_DELAY
    stop_at = start_at + seconds
    outs = [os.path.join(work, f"process-{i}.json") for i in range(PROCESSES)]
    processes = [
        context.Process(target=_worker, args=(kind, redis_url, work, key, reset, start_at, stop_at, out),
                        daemon=True)
        for out in outs
    ]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=max(0.0, stop_at + GRACE - time.time()))
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
        spans: Spans = []
        errors: Counter[str] = Counter()
        fatal: list[str] = []
        late = 0.0
        for process, out in zip(processes, outs):
            if not os.path.exists(out):
                errors[f"a process ended without a report (exit code {process.exitcode})"] += 1
                continue
            report = json.loads(Path(out).read_text())
            if report["fatal"]:
                fatal.append(report["fatal"])
            spans += [(float(a), float(b)) for a, b in report["spans"]]
            errors.update(report["errors"])
            late = max(late, float(report["ready"]) - start_at)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if kind != "rw-sqlite" and kind != "pyrate-sqlite":
            cleanup_redis(redis_url, key)
    if fatal:
        return [label, fatal[0], "", "", "", "", ""]
    if late > 0:
        errors[f"a process was ready {late:.2f} s after the start"] += 1
    allowed = LIMIT * math.ceil(seconds / WINDOW - 1e-9)
    if cap is not None:
        allowed = min(allowed, cap)
    most, violating = certain_counts(spans, LIMIT, WINDOW)
    widths = [(b - a) * 1000 for a, b in spans]
    ms = f"{statistics.median(widths):.2f} / {max(widths):.1f}" if widths else ""
    return [label, f"{len(spans):,}", f"{most} of {LIMIT}", f"{violating:,}",
            f"{len(spans) / allowed:.0%}" if allowed else "", errors_text(errors), ms]


def accuracy_rows(redis_url: str, directory: str, seconds: float = 5.0) -> list[list[object]]:
    """The accuracy table's rows (columns: ``HEADER``), one per entry of ``ROWS``, run one after another.

    Args:
        redis_url: the Redis every Redis row shares; keys are deleted after each row.
        directory: an existing directory for the SQLite files and the children's reports (each row
            works in its own subdirectory, removed after the row).
        seconds: how long each row runs, in seconds (plus ``START_DELAY`` to spawn the children).

    Takes about ``len(ROWS) * (seconds + START_DELAY + 1)`` seconds; every child is bounded by
    ``GRACE`` and terminated if it outlives it.
    """
    return [measure(kind, redis_url, directory, seconds) for kind in ROWS]


def main() -> None:
    from _common import environment, table

    seconds = 5.0
    for arg in sys.argv[1:]:
        if arg.startswith("--seconds="):
            seconds = float(arg.split("=", 1)[1])
    private = None
    url = os.environ.get("REDIS_URL", "")
    if not url:
        from stores import PrivateRedis

        private = PrivateRedis()
        url = private.url
    directory = tempfile.mkdtemp(prefix="rw-bench-accuracy-")
    try:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        rows = accuracy_rows(url, directory, seconds)
        print(environment())
        after = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        where = "REDIS_URL" if private is None else "a private redis-server"
        print(f"\n{PROCESSES} processes x {THREADS} threads share {LIMIT} per {WINDOW:g} s for {seconds:g} s "
              f"on {where}; load average (1, 5, 15 min) before: {load}, after: {after}.\n")
        print(table(HEADER, rows))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if private is not None:
            private.stop()


if __name__ == "__main__":
    main()
