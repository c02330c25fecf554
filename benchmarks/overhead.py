"""try_acquire overhead of ratewindow and its peers, in one run, in-process (memory stores).

Three measurements:
1. uncontended ns per call (every call granted: the limit is far above the call count);
2. the same with 1,000 and with 100,000 live entries in the window (granted and refused calls);
3. 4 threads hammering one limiter for 1 s: grants per second and spurious denials (the limit is
   never reached, so every denial is spurious).

Run: `.venv-bench/bin/python benchmarks/overhead.py [--runs=N]` (or `make bench`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

from _common import argv_runs, median, table, write_result

from ratewindow import DailyQuota, Limits, SlidingWindow, TokenBucket

Try = Callable[[], bool]
HUGE = 10**9


def ratewindow_window(limit: int = HUGE) -> Try:
    return SlidingWindow(limit, 3600.0).try_acquire


def ratewindow_bucket(limit: int = HUGE) -> Try:
    return TokenBucket(1e-3, limit).try_acquire


def ratewindow_limits(limit: int = HUGE) -> Try:
    return Limits(SlidingWindow(limit, 3600.0), DailyQuota(HUGE)).try_acquire


def pyrate_log(limit: int = HUGE) -> Try:
    from pyrate_limiter import InMemoryBucket, Limiter, Rate

    limiter = Limiter(InMemoryBucket([Rate(limit, 3_600_000)]))
    return lambda: bool(limiter.try_acquire("k", blocking=False))


def limits_moving(limit: int = HUGE) -> Try:
    from limits import RateLimitItemPerHour, storage, strategies

    moving = strategies.MovingWindowRateLimiter(storage.MemoryStorage())
    item = RateLimitItemPerHour(limit, 1)
    return lambda: moving.hit(item, "k")


def throttled_sliding(limit: int = HUGE) -> Try:
    from throttled import RateLimiterType, Throttled, rate_limiter, store

    throttle = Throttled(
        key="k",
        using=RateLimiterType.SLIDING_WINDOW.value,
        quota=rate_limiter.per_duration(timedelta(hours=1), limit),
        store=store.MemoryStore(),
    )
    return lambda: not throttle.limit("k").limited


# name, factory, exact sliding log?
LIBRARIES: list[tuple[str, Callable[..., Try], str]] = [
    ("ratewindow SlidingWindow", ratewindow_window, "exact log"),
    ("ratewindow TokenBucket", ratewindow_bucket, "bucket"),
    ("ratewindow Limits(SlidingWindow, DailyQuota)", ratewindow_limits, "exact log + day"),
    ("pyrate-limiter InMemoryBucket", pyrate_log, "exact log"),
    ("limits MovingWindow (memory)", limits_moving, "exact log"),
    ("throttled-py sliding_window (memory)", throttled_sliding, "approximate (2 fixed windows)"),
]


def ns_per_call(call: Try, calls: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(calls):
        call()
    return (time.perf_counter_ns() - start) / calls


def uncontended(runs: int, calls: int = 100_000) -> list[list[object]]:
    rows = []
    for name, factory, kind in LIBRARIES:
        call = factory()
        call()
        samples = [ns_per_call(call, calls) for _ in range(runs)]
        rows.append([name, kind, f"{median(samples):,.0f}", f"{min(samples):,.0f}"])
    return rows


def with_live_entries(runs: int, calls: int = 20_000) -> list[list[object]]:
    rows = []
    for name, factory, kind in LIBRARIES:
        if kind != "exact log":
            continue
        cells: list[object] = [name]
        for live in (1_000, 100_000):
            granted = factory(live + calls * (runs + 1))
            for _ in range(live):
                granted()
            grant_ns = median([ns_per_call(granted, calls) for _ in range(runs)])
            refused = factory(live)
            for _ in range(live):
                refused()
            assert not refused(), f"{name}: expected a refusal at the limit"
            refuse_ns = median([ns_per_call(refused, calls) for _ in range(runs)])
            cells += [f"{grant_ns:,.0f}", f"{refuse_ns:,.0f}"]
        rows.append(cells)
    return rows


def contended(runs: int, threads: int = 4, seconds: float = 1.0) -> list[list[object]]:
    rows = []
    for name, factory, _kind in LIBRARIES:
        rates, spurious = [], 0
        for _ in range(runs):
            call = factory()
            counts = [[0, 0] for _ in range(threads)]
            stop = threading.Event()
            barrier = threading.Barrier(threads + 1)

            def work(slot: list[int], call: Try = call, barrier: threading.Barrier = barrier,
                     stop: threading.Event = stop) -> None:
                barrier.wait()
                while not stop.is_set():
                    for _ in range(100):
                        if call():
                            slot[0] += 1
                        else:
                            slot[1] += 1

            pool = [threading.Thread(target=work, args=(counts[i],)) for i in range(threads)]
            for thread in pool:
                thread.start()
            barrier.wait()
            started = time.perf_counter()
            time.sleep(seconds)
            stop.set()
            for thread in pool:
                thread.join()
            elapsed = time.perf_counter() - started
            rates.append(sum(c[0] for c in counts) / elapsed)
            spurious += sum(c[1] for c in counts)
        rows.append([name, f"{median(rates):,.0f}", spurious])
    return rows


def exact_under_contention(threads: int = 16, limit: int = 1_000) -> list[list[object]]:
    """16 threads race for 5,000 calls against a limit of 1,000 per hour: how many got through?"""
    rows = []
    for name, factory, _kind in LIBRARIES:
        call = factory(limit)
        granted = [0] * threads
        barrier = threading.Barrier(threads)

        def work(i: int, call: Try = call, barrier: threading.Barrier = barrier,
                 granted: list[int] = granted) -> None:
            barrier.wait()
            for _ in range(5_000 // threads):
                granted[i] += bool(call())

        pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        rows.append([name, sum(granted), limit])
    return rows


def main() -> None:
    runs = argv_runs(7)
    body = []
    body.append(f"## Uncontended try_acquire, ns per call (median and best of {runs} runs x 100,000 calls)\n")
    body.append(table(["library", "algorithm", "median ns", "best ns"], uncontended(runs)))
    body.append(
        f"\n## Exact sliding logs with live entries, ns per call (median of {runs} runs x 20,000 calls)\n"
    )
    body.append(table(["library", "1,000 live: granted", "1,000 live: refused", "100,000 live: granted",
                       "100,000 live: refused"], with_live_entries(runs)))
    contention_runs = max(3, runs // 2)
    body.append(
        f"\n## 4 threads, one limiter, limit never reached (median of {contention_runs} runs x 1 s)\n"
    )
    body.append(
        table(["library", "grants per second", "spurious denials (all runs)"], contended(contention_runs))
    )
    body.append("\n## Exactness: 16 threads, 5,000 calls, limit 1,000 per hour\n")
    body.append(table(["library", "granted", "limit"], exact_under_contention()))
    write_result("overhead", "try_acquire overhead", "make bench (benchmarks/overhead.py)", "\n".join(body))


if __name__ == "__main__":
    main()
