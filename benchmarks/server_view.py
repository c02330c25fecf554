"""What the API server sees, with default arguments: grants counted the moment each acquire returns.

The promise under test: never more than ``limit`` units in any ``window``, *as the API server counts
them*. A caller sends its request right after its blocking ``acquire()`` (or ``await
acquire_async()``) returns, so that moment is what the server counts. A limiter that books a grant
for time T and wakes its caller at T + 5 ms has the request arrive at T + 5 ms, and a late wake-up
next to an on-time one can put more than ``limit`` requests into one window on the server's side.
(``_accuracy.py`` answers another question: whether the store's own decisions kept the limit.)

Every library is driven through its own documented blocking or async acquire with its default
arguments (no ``margin``, no ``buffer_ms`` change, ...), and each grant's time is read right after
the call returned. limits has no blocking call, so its rows loop: ``hit()``, and after a refusal
sleep until ``get_window_stats().reset_time``. throttled-py blocks only when given a timeout
(``THROTTLED_TIMEOUT``, longer than any wait here). aiolimiter is for asyncio only.
Three scenarios, each row run once:

1. *threads*: ``THREADS`` threads (8, then 16) of one process loop acquire -> record on one limiter
   of ``LIMIT`` (20) per ``WINDOW`` (1.0) s, in memory, for ``SECONDS`` (6) s;
   ``time.monotonic()`` stamps.
2. *processes*: ``PROCESSES`` x ``PROCESS_THREADS`` (4 x 4) threads share ``LIMIT`` per ``WINDOW``
   through each library's documented multi-process store (ratewindow's ``SQLiteStore`` and
   ``RedisStore``, pyrate-limiter's ``SQLiteBucket`` with its file lock and ``RedisBucket``,
   limits' and throttled-py's Redis storage) for ``SECONDS`` s, while one more process burns a
   CPU in a busy loop; ``time.time()`` stamps (one host, one clock).
3. *asyncio*: ``WAVES`` (5,000 tasks on 1,000 per 1 s, then 20,000 on 5,000 per 1 s) all
   ``await`` the limiter at once in one event loop, each recording when it resumed;
   ``time.monotonic()`` stamps. A wave still waiting ``2 x tasks / limit + 2`` windows after its
   start is cancelled and says so.

In the timed scenarios only grants stamped in ``[start, start + SECONDS)`` count (a call that
returns after the end is dropped). Redis: ``REDIS_URL`` if set, else a private ``redis-server`` on a
free loopback port (as ``stores.py`` does); each row uses its own key prefix and deletes only its
own keys. A peer that is not installed, or has no call for a scenario, gets a row saying so.

The columns, for a row's stamps:

- *most in any 1 s window*: the most stamps in any half-open interval ``[x, x + WINDOW)``;
- *violating intervals*: the number of stamps g with more than the limit in ``[g, g + WINDOW)``
  (0 means no window anywhere held more than the limit);
- *utilisation*: grants / (limit x started windows), where the started windows are the intervals
  ``[start + k WINDOW, start + (k + 1) WINDOW)``, k = 0, 1, ..., that begin within the run: the run
  is ``[start, start + SECONDS)`` for threads and processes, and ``[start, last grant]`` for an
  asyncio wave. 100 % is every unit the limit allows over the run; more means over-admission.
- *errors*: exceptions, refusals (a call that returned without a grant), stragglers, by kind.

Run: ``.venv-bench/bin/python benchmarks/server_view.py [--quick] [--only=threads,processes,asyncio]``
(``--quick``: 2 s runs, 3-window waves). About 3 minutes in full. Prints the table and writes
``benchmarks/results/server_view.md``, which ``run.py`` copies into the README's
``<!-- bench:server_view -->`` block.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import importlib.util
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from _accuracy import cleanup_redis, errors_text
from _common import RESULTS, environment, table
from stores import PrivateRedis, redis_client

LIMIT = 20  #: units per window in the threads and processes scenarios
WINDOW = 1.0  #: seconds, every scenario
THREADS = (8, 16)
PROCESSES = 4
PROCESS_THREADS = 4
SECONDS = 6.0  #: seconds each threads or processes row runs (``--quick``: ``QUICK_SECONDS``)
QUICK_SECONDS = 2.0
WAVES = ((5_000, 1_000), (20_000, 5_000))  #: (tasks, limit per window) of each asyncio wave
QUICK_WAVES = ((3_000, 1_000), (15_000, 5_000))  #: three windows: a late wave shows against the next
THROTTLED_TIMEOUT = 30.0  #: seconds; throttled-py blocks only when given a timeout (longer than any wait)
START_DELAY = 3.0  #: seconds for the spawned children to import and build their limiter
GRACE = 15.0  #: seconds after the end before a thread is reported stuck, or a child terminated
RETRY_SLEEP = 0.001  #: seconds a thread sleeps after an exception before it calls again
SCENARIOS = ("threads", "processes", "asyncio")
DISTS = ("ratewindow", "pyrate-limiter", "limits", "throttled-py", "aiolimiter", "redis")
HEADER = ["library / store: call", "scenario", "grants", f"most in any {WINDOW:g} s window",
          "violating intervals", "utilisation", "errors"]
ROOT = Path(__file__).resolve().parent.parent

Acquire = Callable[[], bool]  #: blocks until granted; False when it returned without a grant
AsyncAcquire = Callable[[], Awaitable[bool]]
Close = Callable[[], None]
Row = list[object]


# -- counting ------------------------------------------------------------------------------------------
def window_counts(stamps: Sequence[float], limit: float, window: float) -> tuple[int, int]:
    """(the most stamps in any half-open ``[x, x + window)``, the number of stamps g with more than
    ``limit`` stamps in ``[g, g + window)``).

    The fullest interval can always start at a stamp, so trying every stamp as g finds it.
    ``ratewindow.analysis.analyse`` finds the same maximum, but it reports runs of violating windows
    rather than this count, and it is the library under test: the benchmark keeps its own yardstick.

    >>> window_counts([0.0, 0.5, 0.99, 1.0, 1.2], 2, 1.0)
    (4, 3)
    """
    ordered = sorted(stamps)
    most = violating = 0
    for g in ordered:
        inside = bisect.bisect_left(ordered, g + window) - bisect.bisect_left(ordered, g)
        most = max(most, inside)
        violating += inside > limit
    return most, violating


def row(label: str, scenario: str, stamps: Sequence[float], limit: int, windows: int,
        errors: Counter[str]) -> Row:
    """A table row from a run's stamps; ``windows`` is the number of windows begun within the run."""
    most, violating = window_counts(stamps, limit, WINDOW)
    allowed = limit * windows
    return [label, scenario, f"{len(stamps):,}", f"{most:,} of {limit:,}", f"{violating:,}",
            f"{len(stamps) / allowed:.1%}" if allowed else "", errors_text(errors)]


def missing(label: str, scenario: str, why: str) -> Row:
    return [label, scenario, why, "", "", "", ""]


def _nothing() -> None:
    return None


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:70]


# -- the libraries, one process, threads ----------------------------------------------------------------
def rw_memory(limit: int, window: float) -> tuple[Acquire, Close]:
    from ratewindow import SlidingWindow

    limiter = SlidingWindow(limit, window)

    def acquire() -> bool:
        limiter.acquire()
        return True

    return acquire, _nothing


def pyrate_memory(limit: int, window: float) -> tuple[Acquire, Close]:
    from pyrate_limiter import InMemoryBucket, Limiter, Rate

    limiter = Limiter(InMemoryBucket([Rate(limit, round(window * 1000))]))
    return lambda: bool(limiter.try_acquire("k")), limiter.close


def limits_polling(limit: int, window: float) -> tuple[Acquire, Close]:
    """limits has no blocking call: ``hit()``, and after a refusal sleep until the window's
    ``get_window_stats().reset_time`` (when its oldest entry expires), then ``hit()`` again."""
    from limits import RateLimitItemPerSecond, storage, strategies

    moving = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    item = RateLimitItemPerSecond(limit, round(window))
    return _polling(moving, item, f"sv-{uuid.uuid4().hex[:8]}"), _nothing


def _polling(moving: Any, item: Any, key: str) -> Acquire:
    def acquire() -> bool:
        while not moving.hit(item, key):
            time.sleep(max(0.0, moving.get_window_stats(item, key).reset_time - time.time()))
        return True

    return acquire


def throttled_memory(limit: int, window: float) -> tuple[Acquire, Close]:
    from throttled import RateLimiterType, Throttled, rate_limiter, store

    throttle = Throttled(
        key=f"sv-{uuid.uuid4().hex[:8]}",
        timeout=THROTTLED_TIMEOUT,
        using=RateLimiterType.SLIDING_WINDOW.value,
        quota=rate_limiter.per_duration(timedelta(seconds=window), limit),
        store=store.MemoryStore(),
    )
    return lambda: not throttle.limit().limited, _nothing


ASYNC_ONLY = "asyncio only: no call for threads or processes"
NO_BLOCKING = ": hit() loop (no blocking call)"
#: label, top-level module, builder or the reason the library has none for threads
THREAD_ROWS: list[tuple[str, str, Callable[[int, float], tuple[Acquire, Close]] | str]] = [
    ("ratewindow SlidingWindow, MemoryStore: acquire()", "ratewindow", rw_memory),
    ("pyrate-limiter InMemoryBucket: try_acquire() (blocks by default)", "pyrate_limiter", pyrate_memory),
    ("limits MovingWindow, MemoryStorage" + NO_BLOCKING, "limits", limits_polling),
    (f"throttled-py sliding window (approximate), MemoryStore: limit(), timeout={THROTTLED_TIMEOUT:g}",
     "throttled", throttled_memory),
    ("aiolimiter AsyncLimiter", "aiolimiter", ASYNC_ONLY),
]


def run_threads(acquire: Acquire, threads: int, seconds: float) -> tuple[list[float], Counter[str]]:
    """``threads`` threads loop acquire -> stamp from a common start for ``seconds`` seconds;
    returns the stamps in ``[0, seconds)`` (seconds after the start) and the errors."""
    stamps: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    start = time.monotonic() + 0.2
    stop = start + seconds

    def work() -> None:
        mine: list[float] = []
        failed: Counter[str] = Counter()
        time.sleep(max(0.0, start - time.monotonic()))
        while time.monotonic() < stop:
            try:
                granted = acquire()
                now = time.monotonic()
            except Exception as exc:  # counted, then called again
                failed[_error(exc)] += 1
                time.sleep(RETRY_SLEEP)
                continue
            if not granted:
                failed["refused (returned without a grant)"] += 1
            elif start <= now < stop:
                mine.append(now - start)
        with lock:
            stamps.extend(mine)
            errors.update(failed)

    pool = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=max(0.0, stop + GRACE - time.monotonic()))
    stuck = sum(thread.is_alive() for thread in pool)
    if stuck:
        errors[f"threads still in acquire {GRACE:g} s after the end"] += stuck
    return stamps, errors


def thread_rows(seconds: float) -> list[Row]:
    rows: list[Row] = []
    for threads in THREADS:
        scenario = f"{threads} threads, {LIMIT} per {WINDOW:g} s, {seconds:g} s"
        for label, module, build in THREAD_ROWS:
            if isinstance(build, str):
                rows.append(missing(label, scenario, build))
                continue
            if importlib.util.find_spec(module) is None:
                rows.append(missing(label, scenario, f"not installed ({module})"))
                continue
            try:
                acquire, close = build(LIMIT, WINDOW)
            except Exception as exc:  # a peer failing must not hide the other rows
                rows.append(missing(label, scenario, f"error: {_error(exc)}"))
                continue
            stamps, errors = run_threads(acquire, threads, seconds)
            close()
            rows.append(row(label, scenario, stamps, LIMIT, math.ceil(seconds / WINDOW - 1e-9), errors))
            print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
    return rows


# -- the libraries, shared by processes (built in each child) ----------------------------------------------
def rw_sqlite(url: str, directory: str, key: str) -> tuple[Acquire, Close]:
    from ratewindow import SlidingWindow, SQLiteStore

    store = SQLiteStore(os.path.join(directory, "ratewindow.db"))
    return _rw_blocking(SlidingWindow(LIMIT, WINDOW, name=key, store=store)), store.close


def rw_redis(url: str, directory: str, key: str) -> tuple[Acquire, Close]:
    from ratewindow import RedisStore, SlidingWindow

    store = RedisStore(url, prefix=f"{key}:")
    return _rw_blocking(SlidingWindow(LIMIT, WINDOW, name=key, store=store)), store.close


def _rw_blocking(limiter: Any) -> Acquire:
    def acquire() -> bool:
        limiter.acquire()
        return True

    return acquire


def pyrate_sqlite(url: str, directory: str, key: str) -> tuple[Acquire, Close]:
    from pyrate_limiter import Limiter, Rate, SQLiteBucket

    path = os.path.join(directory, "pyrate.sqlite")
    rates = [Rate(LIMIT, round(WINDOW * 1000))]
    limiter = Limiter(SQLiteBucket.init_from_file(rates, db_path=path, use_file_lock=True))
    return lambda: bool(limiter.try_acquire("k")), limiter.close


def pyrate_redis(url: str, directory: str, key: str) -> tuple[Acquire, Close]:
    from pyrate_limiter import Limiter, Rate, RedisBucket

    limiter = Limiter(RedisBucket.init([Rate(LIMIT, round(WINDOW * 1000))], redis_client(url), key))
    return lambda: bool(limiter.try_acquire("k")), limiter.close


def limits_redis(url: str, directory: str, key: str) -> tuple[Acquire, Close]:
    from limits import RateLimitItemPerSecond, storage, strategies

    moving = strategies.MovingWindowRateLimiter(storage.RedisStorage(url))
    return _polling(moving, RateLimitItemPerSecond(LIMIT, round(WINDOW)), key), _nothing


def throttled_redis(url: str, directory: str, key: str) -> tuple[Acquire, Close]:
    from throttled import RateLimiterType, Throttled, rate_limiter, store

    throttle = Throttled(
        key=key,
        timeout=THROTTLED_TIMEOUT,
        using=RateLimiterType.SLIDING_WINDOW.value,
        quota=rate_limiter.per_duration(timedelta(seconds=WINDOW), LIMIT),
        store=store.RedisStore(server=url),
    )
    return lambda: not throttle.limit().limited, _nothing


#: kind -> (label, top-level module, builder or the reason there is none, needs Redis)
PROCESS_ROWS: dict[str, tuple[str, str, Callable[[str, str, str], tuple[Acquire, Close]] | str, bool]] = {
    "rw-sqlite": ("ratewindow SlidingWindow, SQLiteStore: acquire()", "ratewindow", rw_sqlite, False),
    "rw-redis": ("ratewindow SlidingWindow, RedisStore: acquire()", "redis", rw_redis, True),
    "pyrate-sqlite": ("pyrate-limiter SQLiteBucket, file lock: try_acquire()", "pyrate_limiter",
                      pyrate_sqlite, False),
    "pyrate-redis": ("pyrate-limiter RedisBucket: try_acquire()", "pyrate_limiter", pyrate_redis, True),
    "limits-redis": ("limits MovingWindow, RedisStorage" + NO_BLOCKING, "limits", limits_redis, True),
    "throttled-redis": (f"throttled-py sliding window (approximate), RedisStore: limit(), "
                        f"timeout={THROTTLED_TIMEOUT:g}", "throttled", throttled_redis, True),
    "aiolimiter": ("aiolimiter AsyncLimiter", "aiolimiter", ASYNC_ONLY, False),
}


def _process_worker(kind: str, url: str, directory: str, key: str, start_at: float, stop_at: float,
                    out: str) -> None:
    """Build the row's limiter, run ``PROCESS_THREADS`` threads from ``start_at`` to ``stop_at``, write a
    JSON report (stamps, errors by kind, when the limiter was ready, a fatal error) to ``out``."""
    stamps: list[float] = []
    errors: Counter[str] = Counter()
    fatal: str | None = None
    lock = threading.Lock()
    close: Close = _nothing
    build = PROCESS_ROWS[kind][2]
    assert callable(build)
    try:
        acquire, close = build(url, directory, key)
    except ImportError as exc:
        fatal = f"not installed ({exc.name})" if exc.name else "not installed"
    except Exception as exc:  # a peer failing must not hide the other rows
        fatal = f"error: {_error(exc)}"
    ready = time.time()

    def work() -> None:
        mine: list[float] = []
        failed: Counter[str] = Counter()
        time.sleep(max(0.0, start_at - time.time()))
        while time.time() < stop_at:
            try:
                granted = acquire()
                now = time.time()
            except Exception as exc:  # counted, then called again
                failed[_error(exc)] += 1
                time.sleep(RETRY_SLEEP)
                continue
            if not granted:
                failed["refused (returned without a grant)"] += 1
            elif start_at <= now < stop_at:
                mine.append(now)
        with lock:
            stamps.extend(mine)
            errors.update(failed)

    if fatal is None:
        pool = [threading.Thread(target=work, daemon=True) for _ in range(PROCESS_THREADS)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=max(0.0, stop_at + GRACE / 2 - time.time()))
        stuck = sum(thread.is_alive() for thread in pool)
        if stuck:
            errors[f"threads still in acquire {GRACE / 2:g} s after the end"] += stuck
    with lock:
        report = {"stamps": stamps, "errors": errors, "ready": ready, "fatal": fatal}
    Path(out).write_text(json.dumps(report))
    with contextlib.suppress(Exception):  # the report is written; a failing close changes none of it
        close()


def _burn(start_at: float, stop_at: float) -> None:
    """A busy loop from ``start_at`` to ``stop_at`` (wall clock): one CPU taken from the others."""
    time.sleep(max(0.0, start_at - time.time()))
    spins = 0
    while time.time() < stop_at:
        spins += 1


def process_row(kind: str, url: str | None, directory: str, seconds: float) -> Row:
    label, module, build, needs_redis = PROCESS_ROWS[kind]
    scenario = (f"{PROCESSES} processes x {PROCESS_THREADS} threads + 1 busy process, {LIMIT} per "
                f"{WINDOW:g} s, {seconds:g} s")
    if isinstance(build, str):
        return missing(label, scenario, build)
    if importlib.util.find_spec(module) is None:
        return missing(label, scenario, f"not installed ({module})")
    if needs_redis and url is None:
        return missing(label, scenario, "no Redis (REDIS_URL unset, no redis-server on PATH)")
    key = f"rw-server-view-{kind}-{uuid.uuid4().hex[:8]}"
    work = tempfile.mkdtemp(prefix=f"{kind}-", dir=directory)
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + START_DELAY
    stop_at = start_at + seconds
    outs = [os.path.join(work, f"process-{i}.json") for i in range(PROCESSES)]
    processes = [
        context.Process(target=_process_worker, args=(kind, url or "", work, key, start_at, stop_at, out),
                        daemon=True)
        for out in outs
    ]
    processes.append(context.Process(target=_burn, args=(start_at, stop_at), daemon=True))
    stamps: list[float] = []
    errors: Counter[str] = Counter()
    fatal: list[str] = []
    late = 0.0
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=max(0.0, stop_at + GRACE - time.time()))
        for process in processes:
            if process.is_alive():
                errors["a process terminated: still running long after the end"] += 1
                process.terminate()
                process.join(timeout=10)
        for process, out in zip(processes, outs):
            if not os.path.exists(out):
                errors[f"a process ended without a report (exit code {process.exitcode})"] += 1
                continue
            report = json.loads(Path(out).read_text())
            if report["fatal"]:
                fatal.append(report["fatal"])
            stamps += [float(t) for t in report["stamps"]]
            errors.update(report["errors"])
            late = max(late, float(report["ready"]) - start_at)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if needs_redis and url is not None:
            cleanup_redis(url, key)
    if fatal:
        return missing(label, scenario, fatal[0])
    if late > 0:
        errors[f"a process was ready {late:.2f} s after the start"] += 1
    return row(label, scenario, stamps, LIMIT, math.ceil(seconds / WINDOW - 1e-9), errors)


def process_rows(url: str | None, seconds: float) -> list[Row]:
    directory = tempfile.mkdtemp(prefix="rw-bench-server-view-")
    rows: list[Row] = []
    try:
        for kind in PROCESS_ROWS:
            rows.append(process_row(kind, url, directory, seconds))
            print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return rows


# -- the libraries, asyncio (built inside the wave's event loop) ---------------------------------------------
async def rw_async(limit: int, window: float) -> AsyncAcquire:
    from ratewindow import SlidingWindow

    limiter = SlidingWindow(limit, window)

    async def acquire() -> bool:
        await limiter.acquire_async()
        return True

    return acquire


async def pyrate_async(limit: int, window: float) -> AsyncAcquire:
    from pyrate_limiter import BucketAsyncWrapper, InMemoryBucket, Limiter, Rate

    limiter = Limiter(BucketAsyncWrapper(InMemoryBucket([Rate(limit, round(window * 1000))])))
    return lambda: limiter.try_acquire_async("k")


async def limits_async(limit: int, window: float) -> AsyncAcquire:
    from limits import RateLimitItemPerSecond
    from limits.aio import storage, strategies

    moving = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    item = RateLimitItemPerSecond(limit, round(window))
    key = f"sv-{uuid.uuid4().hex[:8]}"

    async def acquire() -> bool:
        while not await moving.hit(item, key):
            stats = await moving.get_window_stats(item, key)
            await asyncio.sleep(max(0.0, stats.reset_time - time.time()))
        return True

    return acquire


async def throttled_async(limit: int, window: float) -> AsyncAcquire:
    from throttled.asyncio import MemoryStore, RateLimiterType, Throttled, rate_limiter

    throttle = Throttled(
        key=f"sv-{uuid.uuid4().hex[:8]}",
        timeout=THROTTLED_TIMEOUT,
        using=RateLimiterType.SLIDING_WINDOW.value,
        quota=rate_limiter.per_duration(timedelta(seconds=window), limit),
        store=MemoryStore(),
    )

    async def acquire() -> bool:
        return not (await throttle.limit()).limited

    return acquire


async def aiolimiter_async(limit: int, window: float) -> AsyncAcquire:
    from aiolimiter import AsyncLimiter

    limiter = AsyncLimiter(limit, window)

    async def acquire() -> bool:
        await limiter.acquire()
        return True

    return acquire


ASYNC_ROWS: list[tuple[str, str, Callable[[int, float], Awaitable[AsyncAcquire]]]] = [
    ("ratewindow SlidingWindow, MemoryStore: await acquire_async()", "ratewindow", rw_async),
    ("pyrate-limiter BucketAsyncWrapper(InMemoryBucket): await try_acquire_async()", "pyrate_limiter",
     pyrate_async),
    ("limits.aio MovingWindow, MemoryStorage" + NO_BLOCKING, "limits", limits_async),
    (f"throttled-py asyncio sliding window (approximate), MemoryStore: await limit(), "
     f"timeout={THROTTLED_TIMEOUT:g}", "throttled", throttled_async),
    ("aiolimiter AsyncLimiter (leaky bucket): await acquire()", "aiolimiter", aiolimiter_async),
]


def run_wave(build: Callable[[int, float], Awaitable[AsyncAcquire]], tasks: int,
             limit: int) -> tuple[list[float], Counter[str], str | None]:
    """``tasks`` tasks await one acquire each, all at once, in a new event loop; returns their resume
    stamps (seconds after the start), the errors, and a fatal error (the limiter did not build)."""
    deadline = (2 * tasks / limit + 2) * WINDOW

    async def wave() -> tuple[list[float], Counter[str], str | None]:
        stamps: list[float] = []
        errors: Counter[str] = Counter()
        try:
            acquire = await build(limit, WINDOW)
        except Exception as exc:  # a peer failing must not hide the other rows
            return stamps, errors, f"error: {_error(exc)}"

        async def one() -> None:
            try:
                granted = await acquire()
                now = time.monotonic()
            except Exception as exc:
                errors[_error(exc)] += 1
                return
            if granted:
                stamps.append(now - start)
            else:
                errors["refused (returned without a grant)"] += 1

        start = time.monotonic()
        pending = [asyncio.create_task(one()) for _ in range(tasks)]
        _, late = await asyncio.wait(pending, timeout=deadline)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late, timeout=GRACE)
            errors[f"still waiting {deadline:g} s after the start (cancelled)"] += len(late)
        return stamps, errors, None

    return asyncio.run(wave())


def asyncio_rows(waves: Sequence[tuple[int, int]]) -> list[Row]:
    rows: list[Row] = []
    for tasks, limit in waves:
        scenario = f"{tasks:,} tasks, {limit:,} per {WINDOW:g} s, one event loop"
        for label, module, build in ASYNC_ROWS:
            if importlib.util.find_spec(module) is None:
                rows.append(missing(label, scenario, f"not installed ({module})"))
                continue
            stamps, errors, fatal = run_wave(build, tasks, limit)
            if fatal is not None:
                rows.append(missing(label, scenario, fatal))
                continue
            windows = math.floor(max(stamps) / WINDOW) + 1 if stamps else 0
            rows.append(row(label, scenario, stamps, limit, windows, errors))
            print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
    return rows


# -- the report ------------------------------------------------------------------------------------------
def ratewindow_source() -> str:
    """Which ratewindow code ran: the git commit of its checkout (editable installs), so a run before
    and a run after a change to the core can be told apart; the version alone cannot."""
    spec = importlib.util.find_spec("ratewindow")
    if spec is None or spec.origin is None:
        return "ratewindow is not installed"
    checkout = Path(spec.origin).resolve().parent.parent
    if not (checkout / ".git").exists():
        return f"ratewindow code from {checkout} (not a git checkout)"
    try:
        def git(*args: str) -> str:
            return subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True,
                                  timeout=30, check=True).stdout.strip()

        commit = git("log", "-1", "--format=%h", "--", "ratewindow")
        changed = git("status", "--porcelain", "--", "ratewindow")
    except (OSError, subprocess.SubprocessError):
        return f"ratewindow code from {checkout} (git could not say which commit)"
    return (f"ratewindow code as of git commit {commit}, the last to change ratewindow/"
            + (", plus uncommitted changes" if changed else ""))


def command(argv: Sequence[str]) -> str:
    python = os.path.relpath(sys.executable, ROOT)
    if python.startswith(".."):
        python = sys.executable
    script = os.path.relpath(Path(__file__).resolve(), ROOT)
    return " ".join([python, script, *argv])


def parse(argv: Sequence[str]) -> tuple[bool, list[str]]:
    """(quick, the scenarios to run) from ``--quick`` and ``--only=a,b``; exits on anything else."""
    quick = False
    only = list(SCENARIOS)
    for arg in argv:
        if arg == "--quick":
            quick = True
        elif arg.startswith("--only="):
            only = [name for name in arg.split("=", 1)[1].split(",") if name]
            unknown = sorted(set(only) - set(SCENARIOS))
            if unknown or not only:
                raise SystemExit(f"--only takes some of {','.join(SCENARIOS)}; got {arg!r}")
        else:
            raise SystemExit(f"usage: server_view.py [--quick] [--only={','.join(SCENARIOS)}]; got {arg!r}")
    return quick, only


def main(argv: Sequence[str]) -> int:
    quick, only = parse(argv)
    seconds = QUICK_SECONDS if quick else SECONDS
    waves = QUICK_WAVES if quick else WAVES
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    started = time.monotonic()
    rows: list[Row] = []
    where = ""
    if "threads" in only:
        rows += thread_rows(seconds)
    if "processes" in only:
        private = None
        url = os.environ.get("REDIS_URL") or None
        if url is None and shutil.which("redis-server") and importlib.util.find_spec("redis"):
            private = PrivateRedis()
            url = private.url
        where = ("REDIS_URL" if private is None and url else "a private redis-server" if url
                 else "no Redis")
        try:
            rows += process_rows(url, seconds)
        finally:
            if private is not None:
                private.stop()
    if "asyncio" in only:
        rows += asyncio_rows(waves)
    after = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    redis = f"; Redis: {where}" if where else ""
    header = (f"{environment(DISTS)} {ratewindow_source()}. Produced by `{command(argv)}`: one run per row, "
              f"{time.monotonic() - started:.0f} s in all{redis}; load average (1, 5, 15 min) before: "
              f"{load}, after: {after}.")
    definitions = (
        "Each grant is stamped right after the library's blocking acquire (or awaited async acquire) "
        "returned, called with its default arguments: the moment the caller's request can start, "
        "which is what the API server counts. Threads and asyncio stamp with `time.monotonic()`, "
        "processes with `time.time()` (one host). Timed runs count the grants stamped in "
        "[start, start + run). *most in any window*: the most stamps in any half-open interval "
        f"[x, x + {WINDOW:g} s). *violating intervals*: the number of stamps g with more than the "
        f"limit in [g, g + {WINDOW:g} s). *utilisation*: grants / (limit x started windows), the "
        f"started windows being the intervals [start + k x {WINDOW:g} s, start + (k + 1) x "
        f"{WINDOW:g} s), k = 0, 1, ..., that begin within the run ([start, start + run) for threads "
        "and processes, [start, last grant] for an asyncio wave, whose tasks all start at once): "
        "100 % is every unit the limit allows over the run. *errors*: exceptions, refusals, "
        "cancelled or stuck waiters, by kind. The processes rows run beside one more process in a "
        "busy loop. limits has no blocking call: its rows call hit() and, after a refusal, sleep until "
        "get_window_stats().reset_time, then call again. throttled-py blocks only when given a "
        "timeout. See benchmarks/server_view.py."
    )
    body = f"{definitions}\n\n{table(HEADER, rows)}"
    RESULTS.mkdir(exist_ok=True)
    text = f"# What the API server sees, default arguments\n\n{header}\n\n{body}\n"
    (RESULTS / "server_view.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
