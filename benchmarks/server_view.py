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
The scenarios (``--only`` names), each row run once:

1. *threads*: one spawned process runs ``THREADS`` threads (8, then 16) that loop acquire -> record
   on one in-memory limiter of ``LIMIT`` (20) per ``WINDOW`` (1.0) s for ``SECONDS`` s.
2. *processes*: ``PROCESSES`` x ``PROCESS_THREADS`` (4 x 4) threads in spawned processes share
   ``LIMIT`` per ``WINDOW`` through each library's documented multi-process store (ratewindow's
   ``SQLiteStore`` and ``RedisStore``, pyrate-limiter's ``SQLiteBucket`` with its file lock and
   ``RedisBucket``, limits' and throttled-py's Redis storage) for ``SECONDS`` s, while one more
   process burns a CPU in a busy loop.
3. *threads-10s*: as *threads* with ``LONG_THREADS`` (16) threads on HubSpot's ``LONG_LIMIT`` (190)
   per ``LONG_WINDOW`` (10) s, for ``LONG_SECONDS`` s: three full windows and the first grants of
   the fourth.
4. *processes-10s*: as *processes* on 190 per 10 s for ``LONG_SECONDS`` s, the Redis rows only.
5. *asyncio*: ``WAVES`` (5,000 tasks on 1,000 per 1 s, then 20,000 on 5,000 per 1 s) all
   ``await`` the limiter at once in this process's event loop, each recording when it resumed. A
   wave still waiting ``2 x tasks / limit + 2`` windows after its start is cancelled and says so.

Every timed run covers at least three refills of the limit. The timed scenarios run in spawned
children: each builds its limiter and says it is ready, then the parent fixes a common start a
moment later. Each child stamps with ``time.monotonic()`` from that start (converted once from the
parent's ``time.time()``, one host), keeps the grants stamped in ``[start, start + run)``, reports
``END_SLACK`` s after the end at the latest, and exits at once: a thread still waiting for the next
window's unit (up to 10 s on a 10 s window) is not waited for. Redis: ``REDIS_URL`` if set, else a
private ``redis-server`` on a free loopback port (as ``stores.py`` does); each row uses its own key
prefix and deletes only its own keys. A peer that is not installed, or has no call for a scenario,
gets a row saying so.

The columns, for a row's stamps:

- *most in any window*: the most stamps in any half-open interval ``[x, x + window)``;
- *violating intervals*: the number of stamps g with more than the limit in ``[g, g + window)``
  (0 means no window anywhere held more than the limit);
- *utilisation*: grants / (limit x started windows), where the started windows are the intervals
  ``[start + k window, start + (k + 1) window)``, k = 0, 1, ..., that begin within the run: the run
  is ``[start, start + run)`` for a timed row and ``[start, last grant]`` for an asyncio wave.
  It cannot show a shortfall of a few percent: a limiter that holds each unit 1 % longer than its
  window still fills every started window of a short run.
- *pace*: ``window`` / the mean, over the grants after the first ``limit`` (in time order), of the
  time since the grant ``limit`` places before; see ``pace()``. 100 % is the limit's full pace;
  below it, time was lost; above it needs a violating interval.
- *errors*: exceptions, refusals (a call that returned without a grant), cancelled waiters, and
  calls still waiting ``END_SLACK`` s after the end that began over a window before it: with fewer
  threads than the limit, a first-come-first-served limiter never makes a call wait that long, but
  a polling one can leave a thread waiting while the others are served.

Under the table, one line per ratewindow row against issue 12's targets: 0 violating intervals,
pace >= ``TARGET_PACE`` for its window (97 % on 1 s, 99 % on 10 s), and no errors.

Run: ``.venv-bench/bin/python benchmarks/server_view.py [--quick] [--only=threads,...]`` (about 6
minutes in full). ``--quick``: 2 s runs and 3-window waves, and the 10 s scenarios are skipped unless
``--only`` names them (then they run ``QUICK_LONG_SECONDS``, 10.5 s). Prints the table and writes
``benchmarks/results/server_view.md``, which ``run.py`` copies into the README's
``<!-- bench:server_view -->`` block.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import importlib.util
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from _accuracy import cleanup_redis, errors_text
from _common import RESULTS, environment, table
from stores import PrivateRedis, redis_client

LIMIT = 20  #: units per window in the 1 s threads and processes scenarios
WINDOW = 1.0  #: seconds: the 1 s scenarios and the asyncio waves
THREADS = (8, 16)
PROCESSES = 4
PROCESS_THREADS = 4
SECONDS = 4.0  #: seconds each 1 s threads or processes row runs: four windows (``--quick``: 2 s)
QUICK_SECONDS = 2.0
LONG_LIMIT = 190  #: units per window in the 10 s scenarios: HubSpot's 190 per 10 s
LONG_WINDOW = 10.0  #: seconds
LONG_THREADS = 16
LONG_SECONDS = 30.5  #: seconds each 10 s row runs: three full windows, and the fourth's first grants
QUICK_LONG_SECONDS = 10.5  #: with ``--quick``, when ``--only`` names a 10 s scenario
WAVES = ((5_000, 1_000), (20_000, 5_000))  #: (tasks, limit per window) of each asyncio wave
QUICK_WAVES = ((3_000, 1_000), (15_000, 5_000))  #: three windows: a late wave shows against the next
TARGET_PACE = {1.0: 0.97, 10.0: 0.99}  #: issue 12: window (seconds) -> the least pace ratewindow keeps
THROTTLED_TIMEOUT = 30.0  #: seconds; throttled-py blocks only when given a timeout (longer than any wait)
READY_TIMEOUT = 60.0  #: seconds the children get to import and build their limiter
START_SLACK = 0.2  #: seconds from "every child is ready" to the common start
END_SLACK = 0.5  #: seconds after the end a child waits for calls in progress before it reports
REPORT_TIMEOUT = 15.0  #: seconds after that before a child is reported silent and terminated
GRACE = 15.0  #: seconds an asyncio wave's cancelled waiters get to finish
RETRY_SLEEP = 0.001  #: seconds a thread sleeps after an exception before it calls again
SCENARIOS = ("threads", "processes", "threads-10s", "processes-10s", "asyncio")
LONG_SCENARIOS = ("threads-10s", "processes-10s")
DISTS = ("ratewindow", "pyrate-limiter", "limits", "throttled-py", "aiolimiter", "redis")
HEADER = ["library / store: call", "scenario", "grants", "most in any window", "violating intervals",
          "utilisation", "pace", "errors"]
ROOT = Path(__file__).resolve().parent.parent

Acquire = Callable[[], bool]  #: blocks until granted; False when it returned without a grant
AsyncAcquire = Callable[[], Awaitable[bool]]
Build = Callable[[int, float, str, str, str], Acquire]  #: (limit, window, Redis URL, directory, key)


# -- counting ------------------------------------------------------------------------------------------
def window_counts(ordered: Sequence[float], limit: float, window: float) -> tuple[int, int]:
    """(the most stamps in any half-open ``[x, x + window)``, the number of stamps g with more than
    ``limit`` stamps in ``[g, g + window)``), for stamps in time order.

    The fullest interval can always start at a stamp, so trying every stamp as g finds it.
    ``ratewindow.analysis.analyse`` finds the same maximum, but it reports runs of violating windows
    rather than this count, and it is the library under test: the benchmark keeps its own yardstick.

    >>> window_counts([0.0, 0.5, 0.99, 1.0, 1.2], 2, 1.0)
    (4, 3)
    """
    most = violating = 0
    for g in ordered:
        inside = bisect.bisect_left(ordered, g + window) - bisect.bisect_left(ordered, g)
        most = max(most, inside)
        violating += inside > limit
    return most, violating


def pace(ordered: Sequence[float], limit: int, window: float) -> float | None:
    """``window`` / the mean, over the stamps after the first ``limit`` (in time order), of the time
    since the stamp ``limit`` places before; None with ``limit`` stamps or fewer.

    Grant i and grant i + ``limit`` can never be less than a window apart without a violating
    interval, so an exact limiter kept busy has a pace of at most 1, and 1 only if every grant came
    the moment the unit of the grant ``limit`` before it expired. 0.99 means each round of ``limit``
    grants took 1 % longer than a window. The gaps telescope: their sum is the sum of the last
    ``limit`` stamps minus the sum of the first ``limit``, so this is also ``window x (n - limit) /
    (limit x (mean of the last limit stamps - mean of the first limit))``. Unlike grants over the
    time from the first to the last, it does not depend on where the run's end cut a burst of grants:

    >>> pace([0.0, 0.0, 1.0, 1.0, 2.0], 2, 1.0)  # bursts a window apart, the last cut short
    1.0
    >>> round(pace([0.0, 0.0, 1.01, 1.01, 2.02, 2.02], 2, 1.0), 4)  # each unit held 10 ms more
    0.9901
    """
    n = len(ordered)
    if n <= limit:
        return None
    span = math.fsum(ordered[n - limit:]) - math.fsum(ordered[:limit])
    return window * (n - limit) / span if span > 0 else math.inf


@dataclass(frozen=True)
class Measured:
    """One row of the table: what a library did in one scenario, or why it has no numbers."""

    label: str
    scenario: str
    limit: int
    window: float  #: seconds
    grants: int = 0
    most: int = 0
    violating: int = 0
    utilisation: float | None = None
    pace: float | None = None
    errors: Counter[str] = field(default_factory=Counter)
    why_not: str | None = None  #: set when the row did not run (not installed, no call, an error)

    @property
    def ours(self) -> bool:
        return self.label.startswith("ratewindow")

    def cells(self) -> list[object]:
        if self.why_not is not None:
            return [self.label, self.scenario, self.why_not, "", "", "", "", ""]
        return [self.label, self.scenario, f"{self.grants:,}", f"{self.most:,} of {self.limit:,}",
                f"{self.violating:,}", _percent(self.utilisation, 1), _percent(self.pace, 1),
                errors_text(self.errors)]

    def verdict(self) -> str:
        """One line against issue 12's targets, from the numbers above."""
        head = f"{self.label}, {self.scenario}:"
        if self.why_not is not None:
            return f"{head} no measurement ({self.why_not})"
        target = TARGET_PACE.get(self.window)
        checks = [(self.violating == 0, f"{self.violating:,} violating intervals (target 0)")]
        if target is None:
            checks.append((False, f"pace {_percent(self.pace, 2)}, no target for a {self.window:g} s window"))
        elif self.pace is None:
            checks.append((False, f"no pace (at most {self.limit:,} grants)"))
        else:
            sign = ">=" if self.pace >= target else "<"
            checks.append((self.pace >= target, f"pace {_percent(self.pace, 2)} {sign} {target:.0%}"))
        checks.append((not self.errors, f"errors: {errors_text(self.errors)}"))
        met = all(ok for ok, _ in checks)
        shown = [text for ok, text in checks if met or not ok]
        return f"{head} {'meets the targets' if met else 'MISSES the targets'}: {'; '.join(shown)}"


def _percent(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}%}"


def measure(label: str, scenario: str, stamps: Sequence[float], limit: int, window: float, windows: int,
            errors: Counter[str]) -> Measured:
    """A row from a run's stamps; ``windows`` is the number of windows begun within the run."""
    ordered = sorted(stamps)
    most, violating = window_counts(ordered, limit, window)
    allowed = limit * windows
    return Measured(label, scenario, limit, window, len(ordered), most, violating,
                    len(ordered) / allowed if allowed else None, pace(ordered, limit, window), errors)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:70]


def _show(measured: Measured) -> None:
    print(" | ".join(str(cell) for cell in measured.cells()), flush=True)


# -- the libraries for the timed scenarios (built in each child) ---------------------------------------------
def rw_memory(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    from ratewindow import SlidingWindow

    return _rw_blocking(SlidingWindow(limit, window))


def rw_sqlite(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    from ratewindow import SlidingWindow, SQLiteStore

    store = SQLiteStore(os.path.join(directory, "ratewindow.db"))
    return _rw_blocking(SlidingWindow(limit, window, name=key, store=store))


def rw_redis(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    from ratewindow import RedisStore, SlidingWindow

    store = RedisStore(url, prefix=f"{key}:")
    return _rw_blocking(SlidingWindow(limit, window, name=key, store=store))


def _rw_blocking(limiter: Any) -> Acquire:
    def acquire() -> bool:
        limiter.acquire()
        return True

    return acquire


def pyrate_memory(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    from pyrate_limiter import InMemoryBucket, Limiter, Rate

    limiter = Limiter(InMemoryBucket([Rate(limit, round(window * 1000))]))
    return lambda: bool(limiter.try_acquire("k"))


def pyrate_sqlite(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    from pyrate_limiter import Limiter, Rate, SQLiteBucket

    path = os.path.join(directory, "pyrate.sqlite")
    rates = [Rate(limit, round(window * 1000))]
    limiter = Limiter(SQLiteBucket.init_from_file(rates, db_path=path, use_file_lock=True))
    return lambda: bool(limiter.try_acquire("k"))


def pyrate_redis(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    from pyrate_limiter import Limiter, Rate, RedisBucket

    limiter = Limiter(RedisBucket.init([Rate(limit, round(window * 1000))], redis_client(url), key))
    return lambda: bool(limiter.try_acquire("k"))


def limits_memory(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    """limits has no blocking call: ``hit()``, and after a refusal sleep until the window's
    ``get_window_stats().reset_time`` (when its oldest entry expires), then ``hit()`` again."""
    from limits import RateLimitItemPerSecond, storage, strategies

    moving = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    return _polling(moving, RateLimitItemPerSecond(limit, round(window)), key)


def limits_redis(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    from limits import RateLimitItemPerSecond, storage, strategies

    moving = strategies.MovingWindowRateLimiter(storage.RedisStorage(url))
    return _polling(moving, RateLimitItemPerSecond(limit, round(window)), key)


def _polling(moving: Any, item: Any, key: str) -> Acquire:
    def acquire() -> bool:
        while not moving.hit(item, key):
            time.sleep(max(0.0, moving.get_window_stats(item, key).reset_time - time.time()))
        return True

    return acquire


def throttled_memory(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    from throttled import store

    return _throttled(limit, window, key, store.MemoryStore())


def throttled_redis(limit: int, window: float, url: str, directory: str, key: str) -> Acquire:
    from throttled import store

    return _throttled(limit, window, key, store.RedisStore(server=url))


def _throttled(limit: int, window: float, key: str, where: Any) -> Acquire:
    from throttled import RateLimiterType, Throttled, rate_limiter

    throttle = Throttled(
        key=key,
        timeout=THROTTLED_TIMEOUT,
        using=RateLimiterType.SLIDING_WINDOW.value,
        quota=rate_limiter.per_duration(timedelta(seconds=window), limit),
        store=where,
    )
    return lambda: not throttle.limit().limited


ASYNC_ONLY = "asyncio only: no call for threads or processes"
NO_BLOCKING = ": hit() loop (no blocking call)"
THROTTLED = f"throttled-py sliding window (approximate), {{}}: limit(), timeout={THROTTLED_TIMEOUT:g}"
#: kind -> (label, top-level module, builder or the reason there is none, needs Redis)
ROWS: dict[str, tuple[str, str, Build | str, bool]] = {
    "rw-memory": ("ratewindow SlidingWindow, MemoryStore: acquire()", "ratewindow", rw_memory, False),
    "rw-sqlite": ("ratewindow SlidingWindow, SQLiteStore: acquire()", "ratewindow", rw_sqlite, False),
    "rw-redis": ("ratewindow SlidingWindow, RedisStore: acquire()", "redis", rw_redis, True),
    "pyrate-memory": ("pyrate-limiter InMemoryBucket: try_acquire() (blocks by default)", "pyrate_limiter",
                      pyrate_memory, False),
    "pyrate-sqlite": ("pyrate-limiter SQLiteBucket, file lock: try_acquire()", "pyrate_limiter",
                      pyrate_sqlite, False),
    "pyrate-redis": ("pyrate-limiter RedisBucket: try_acquire()", "pyrate_limiter", pyrate_redis, True),
    "limits-memory": ("limits MovingWindow, MemoryStorage" + NO_BLOCKING, "limits", limits_memory, False),
    "limits-redis": ("limits MovingWindow, RedisStorage" + NO_BLOCKING, "limits", limits_redis, True),
    "throttled-memory": (THROTTLED.format("MemoryStore"), "throttled", throttled_memory, False),
    "throttled-redis": (THROTTLED.format("RedisStore"), "throttled", throttled_redis, True),
    "aiolimiter": ("aiolimiter AsyncLimiter", "aiolimiter", ASYNC_ONLY, False),
}
MEMORY_KINDS = ("rw-memory", "pyrate-memory", "limits-memory", "throttled-memory", "aiolimiter")
SHARED_KINDS = ("rw-sqlite", "rw-redis", "pyrate-sqlite", "pyrate-redis", "limits-redis", "throttled-redis",
                "aiolimiter")
REDIS_KINDS = ("rw-redis", "pyrate-redis", "limits-redis", "throttled-redis", "aiolimiter")


# -- the timed scenarios: spawned children, a common start ------------------------------------------------
@dataclass(frozen=True)
class Timed:
    """``processes`` spawned children of ``threads`` threads each share ``limit`` per ``window`` seconds
    for ``seconds`` seconds, beside one more process in a busy loop when ``burn``; one row per kind."""

    processes: int
    threads: int
    limit: int
    window: float  #: seconds
    seconds: float
    kinds: tuple[str, ...]
    burn: bool

    def title(self) -> str:
        who = (f"{self.threads} threads" if self.processes == 1
               else f"{self.processes} processes x {self.threads} threads")
        busy = " + 1 busy process" if self.burn else ""
        return f"{who}{busy}, {self.limit:,} per {self.window:g} s, {self.seconds:g} s"


def timed_scenarios(name: str, seconds: float, long_seconds: float) -> list[Timed]:
    if name == "threads":
        return [Timed(1, threads, LIMIT, WINDOW, seconds, MEMORY_KINDS, False) for threads in THREADS]
    if name == "processes":
        return [Timed(PROCESSES, PROCESS_THREADS, LIMIT, WINDOW, seconds, SHARED_KINDS, True)]
    if name == "threads-10s":
        return [Timed(1, LONG_THREADS, LONG_LIMIT, LONG_WINDOW, long_seconds, MEMORY_KINDS, False)]
    if name == "processes-10s":
        return [Timed(PROCESSES, PROCESS_THREADS, LONG_LIMIT, LONG_WINDOW, long_seconds, REDIS_KINDS, True)]
    raise ValueError(name)


def _child(kind: str, limit: int, window: float, url: str, directory: str, key: str, threads: int,
           conn: Connection) -> None:
    """One process of a timed row (see ``_run_child``). It ends with ``os._exit``: a thread still in
    acquire waits for nothing that is counted, and a peer's own threads must not hold the exit."""
    try:
        _run_child(kind, limit, window, url, directory, key, threads, conn)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def _run_child(kind: str, limit: int, window: float, url: str, directory: str, key: str, threads: int,
               conn: Connection) -> None:
    """Build the row's limiter and send None (ready) or why it failed; receive the (start, stop)
    wall-clock times, or None to give up; run ``threads`` threads that loop acquire -> stamp; send
    the report (stamps in seconds after the start, errors by kind) once every thread is done, or
    ``END_SLACK`` s after the stop."""
    build = ROWS[kind][2]
    assert callable(build)
    try:
        acquire = build(limit, window, url, directory, key)
    except ImportError as exc:
        conn.send(f"not installed ({exc.name})" if exc.name else "not installed")
        return
    except Exception as exc:  # a peer failing must not hide the other rows
        conn.send(f"error: {_error(exc)}")
        return
    conn.send(None)
    times = conn.recv()
    if times is None:
        return
    start_at, stop_at = times
    start = time.monotonic() + (start_at - time.time())  # the common start on this process's clock
    stop = start + (stop_at - start_at)
    stamps: list[float] = []
    errors: Counter[str] = Counter()
    waiting_since: list[float | None] = [None] * threads
    lock = threading.Lock()

    def work(index: int) -> None:
        time.sleep(max(0.0, start - time.monotonic()))
        while time.monotonic() < stop:
            waiting_since[index] = time.monotonic()
            try:
                granted = acquire()
                now = time.monotonic()
            except Exception as exc:  # counted, then called again
                with lock:
                    errors[_error(exc)] += 1
                time.sleep(RETRY_SLEEP)
                continue
            finally:
                waiting_since[index] = None
            with lock:
                if not granted:
                    errors["refused (returned without a grant)"] += 1
                elif start <= now < stop:
                    stamps.append(now - start)

    pool = [threading.Thread(target=work, args=(index,), daemon=True) for index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=max(0.0, stop + END_SLACK - time.monotonic()))
    with lock:
        # A call begun within the last window may wait for the next window's unit; one begun
        # earlier has waited over a window + END_SLACK, which a busy fair limiter never makes a
        # caller do when there are fewer threads than the limit.
        long_waits = sum(since is not None and since < stop - window for since in waiting_since)
        if long_waits:
            errors[f"calls waiting over {window + END_SLACK:g} s at the end"] += long_waits
        conn.send({"stamps": list(stamps), "errors": dict(errors)})
    conn.close()


def _burn(conn: Connection) -> None:
    """A busy loop from the start to the stop (wall clock): one CPU taken from the others."""
    conn.send(None)
    times = conn.recv()
    if times is None:
        return
    start_at, stop_at = times
    time.sleep(max(0.0, start_at - time.time()))
    spins = 0
    while time.time() < stop_at:
        spins += 1


def timed_row(kind: str, scenario: Timed, url: str | None, directory: str) -> Measured:
    label, module, build, needs_redis = ROWS[kind]
    title = scenario.title()
    limit, window = scenario.limit, scenario.window
    if isinstance(build, str):
        return Measured(label, title, limit, window, why_not=build)
    if importlib.util.find_spec(module) is None:
        return Measured(label, title, limit, window, why_not=f"not installed ({module})")
    if needs_redis and url is None:
        return Measured(label, title, limit, window,
                        why_not="no Redis (REDIS_URL unset, no redis-server on PATH)")
    key = f"rw-server-view-{kind}-{uuid.uuid4().hex[:8]}"
    work = tempfile.mkdtemp(prefix=f"{kind}-", dir=directory)
    context = multiprocessing.get_context("spawn")
    children: list[tuple[BaseProcess, Connection]] = []
    their_ends: list[Connection] = []  # closed here once the processes started, so a death reads as EOF
    for _ in range(scenario.processes):
        ours, theirs = context.Pipe()
        args = (kind, limit, window, url or "", work, key, scenario.threads, theirs)
        children.append((context.Process(target=_child, args=args, daemon=True), ours))
        their_ends.append(theirs)
    burners: list[tuple[BaseProcess, Connection]] = []
    if scenario.burn:
        ours, theirs = context.Pipe()
        burners.append((context.Process(target=_burn, args=(theirs,), daemon=True), ours))
        their_ends.append(theirs)
    stamps: list[float] = []
    errors: Counter[str] = Counter()
    fatal: str | None = None
    stop_at = time.time()
    try:
        for process, _ in children + burners:
            process.start()
        for end in their_ends:
            end.close()
        ready_by = time.monotonic() + READY_TIMEOUT
        for process, conn in children + burners:
            try:
                ready = conn.poll(max(0.0, ready_by - time.monotonic()))
                why = conn.recv() if ready else f"not ready in {READY_TIMEOUT:g} s"
            except EOFError:
                why = f"a process ended before it was ready (exit code {_exit_code(process)})"
            fatal = fatal or why
        start_at = time.time() + START_SLACK
        stop_at = start_at + scenario.seconds
        for _, conn in children + burners:
            with contextlib.suppress(OSError):
                conn.send(None if fatal else (start_at, stop_at))
        if fatal is None:
            for process, conn in children:
                wait = max(0.0, stop_at + END_SLACK + REPORT_TIMEOUT - time.time())
                try:
                    report = conn.recv() if conn.poll(wait) else None
                except EOFError:
                    report = None
                if report is None:
                    errors[f"a process sent no report (exit code {_exit_code(process)})"] += 1
                    continue
                stamps += [float(t) for t in report["stamps"]]
                errors.update(report["errors"])
    finally:
        for process, _ in children + burners:
            if process.pid is None:  # never started: an error starting an earlier one
                continue
            process.join(timeout=max(1.0, stop_at + 1.0 - time.time()) if fatal is None else 10.0)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
        if needs_redis and url is not None:
            cleanup_redis(url, key)
    if fatal is not None:
        return Measured(label, title, limit, window, why_not=fatal)
    windows = math.ceil(scenario.seconds / window - 1e-9)
    return measure(label, title, stamps, limit, window, windows, errors)


def _exit_code(process: BaseProcess) -> int | None:
    process.join(timeout=5)
    return process.exitcode


def timed_rows(scenarios: Sequence[Timed], url: str | None) -> list[Measured]:
    directory = tempfile.mkdtemp(prefix="rw-bench-server-view-")
    rows: list[Measured] = []
    try:
        for scenario in scenarios:
            for kind in scenario.kinds:
                rows.append(timed_row(kind, scenario, url, directory))
                _show(rows[-1])
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


def asyncio_rows(waves: Sequence[tuple[int, int]]) -> list[Measured]:
    rows: list[Measured] = []
    for tasks, limit in waves:
        scenario = f"{tasks:,} tasks, {limit:,} per {WINDOW:g} s, one event loop"
        for label, module, build in ASYNC_ROWS:
            if importlib.util.find_spec(module) is None:
                rows.append(Measured(label, scenario, limit, WINDOW, why_not=f"not installed ({module})"))
                _show(rows[-1])
                continue
            stamps, errors, fatal = run_wave(build, tasks, limit)
            if fatal is not None:
                rows.append(Measured(label, scenario, limit, WINDOW, why_not=fatal))
            else:
                windows = math.floor(max(stamps) / WINDOW) + 1 if stamps else 0
                rows.append(measure(label, scenario, stamps, limit, WINDOW, windows, errors))
            _show(rows[-1])
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
    """(quick, the scenarios to run, in ``SCENARIOS`` order) from ``--quick`` and ``--only=a,b``; exits
    on anything else. ``--quick`` leaves out the 10 s scenarios unless ``--only`` names them."""
    quick = False
    named: list[str] | None = None
    for arg in argv:
        if arg == "--quick":
            quick = True
        elif arg.startswith("--only="):
            named = [name for name in arg.split("=", 1)[1].split(",") if name]
            unknown = sorted(set(named) - set(SCENARIOS))
            if unknown or not named:
                raise SystemExit(f"--only takes some of {','.join(SCENARIOS)}; got {arg!r}")
        else:
            raise SystemExit(f"usage: server_view.py [--quick] [--only={','.join(SCENARIOS)}]; got {arg!r}")
    if named is None:
        named = [name for name in SCENARIOS if not (quick and name in LONG_SCENARIOS)]
    return quick, [name for name in SCENARIOS if name in named]


def private_redis() -> tuple[str | None, PrivateRedis | None, str]:
    """(the Redis URL or None, the private server to stop or None, where Redis came from)."""
    url = os.environ.get("REDIS_URL") or None
    if url is not None:
        return url, None, "REDIS_URL"
    if shutil.which("redis-server") and importlib.util.find_spec("redis"):
        private = PrivateRedis()
        return private.url, private, "a private redis-server"
    return None, None, "no Redis"


def verdicts(rows: Sequence[Measured]) -> str:
    targets = ", ".join(f">= {share:.0%} on a {window:g} s window" for window, share in TARGET_PACE.items())
    lines = [f"- {measured.verdict()}" for measured in rows if measured.ours]
    return (f"ratewindow against issue 12's targets (0 violating intervals; pace {targets}; no errors), "
            "from the numbers above:\n\n" + "\n".join(lines)) if lines else ""


def grace_note() -> str:
    """What ratewindow's grace costs at best, from its clock's own figure (empty without ratewindow)."""
    if importlib.util.find_spec("ratewindow") is None:
        return ""
    from ratewindow import MonotonicClock

    grace = MonotonicClock.grace
    best = ", ".join(f"{window / (window + grace):.1%} on a {window:g} s window" for window in TARGET_PACE)
    return (f" ratewindow holds each unit for its window + its clock's grace ({grace * 1000:g} ms), so "
            f"its pace is at most window / (window + grace): {best}.")


def main(argv: Sequence[str]) -> int:
    quick, only = parse(argv)
    seconds = QUICK_SECONDS if quick else SECONDS
    long_seconds = QUICK_LONG_SECONDS if quick else LONG_SECONDS
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    started = time.monotonic()
    rows: list[Measured] = []
    where = ""
    url: str | None = None
    private: PrivateRedis | None = None
    try:
        for name in only:
            if name == "asyncio":
                rows += asyncio_rows(QUICK_WAVES if quick else WAVES)
                continue
            if name.startswith("processes") and not where:
                url, private, where = private_redis()
            rows += timed_rows(timed_scenarios(name, seconds, long_seconds), url)
    finally:
        if private is not None:
            private.stop()
    after = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    redis = f"; Redis: {where}" if where else ""
    skipped = sorted(set(SCENARIOS) - set(only))
    left_out = (f" Not run: {', '.join(skipped)}"
                + (" (--quick leaves out the 10 s scenarios unless --only names them)"
                   if quick and set(skipped) & set(LONG_SCENARIOS) else "") + "." if skipped else "")
    header = (f"{environment(DISTS)} {ratewindow_source()}. Produced by `{command(argv)}`: one run per row, "
              f"{time.monotonic() - started:.0f} s in all{redis}; load average (1, 5, 15 min) before: "
              f"{load}, after: {after}.{left_out}")
    definitions = (
        "Each grant is stamped right after the library's blocking acquire (or awaited async acquire) "
        "returned, called with its default arguments: the moment the caller's request can start, "
        "which is what the API server counts. The timed rows (threads, processes) run in spawned "
        "processes that start together once each has built its limiter, stamp with "
        "`time.monotonic()` from a common start (one host), and count the grants stamped in "
        "[start, start + run); the asyncio waves stamp with `time.monotonic()` in this process. "
        "*most in any window*: the most stamps in any half-open interval [x, x + window). "
        "*violating intervals*: the number of stamps g with more than the limit in [g, g + window). "
        "*utilisation*: grants / (limit x started windows), the started windows being the intervals "
        "[start + k x window, start + (k + 1) x window), k = 0, 1, ..., that begin within the run "
        "([start, start + run) for a timed row, [start, last grant] for an asyncio wave, whose tasks "
        "all start at once): 100 % is every unit the limit allows over the run, but a limiter that "
        "holds each unit a little longer than its window still fills every started window of a short "
        "run. *pace*: window / the mean, over the grants after the first `limit` in time order, of the "
        "time since the grant `limit` places before (equivalently window x (n - limit) / (limit x "
        "(mean of the last `limit` stamps - mean of the first `limit` stamps))): 100 % means every "
        "grant came the moment the unit of the grant `limit` before it expired, the full pace of the "
        "limit; 99 % means each round of `limit` grants took 1 % longer than a window; above 100 % "
        "needs violating intervals. Unlike grants over the time from the first to the last, it does "
        "not depend on where the run's end cut a burst of grants. Every caller waits at every moment "
        f"(full load), so time lost shows as pace lost.{grace_note()} *errors*: exceptions, refusals, "
        f"cancelled waiters, and calls still waiting {END_SLACK:g} s after the end that began over a "
        "window before it (with fewer threads than the limit, a first-come-first-served limiter never "
        "makes a call wait that long; a polling one can leave a thread waiting while the others are "
        "served), by kind. The processes rows run beside one more process in a busy loop. "
        "limits has no blocking call: its rows call hit() and, after a refusal, sleep until "
        "get_window_stats().reset_time, then call again. throttled-py blocks only when given a "
        "timeout. See benchmarks/server_view.py."
    )
    judged = verdicts(rows)
    body = f"{definitions}\n\n{table(HEADER, [measured.cells() for measured in rows])}"
    body += f"\n\n{judged}" if judged else ""
    RESULTS.mkdir(exist_ok=True)
    text = f"# What the API server sees, default arguments\n\n{header}\n\n{body}\n"
    (RESULTS / "server_view.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
