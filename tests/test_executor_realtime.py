"""RateLimitedExecutor in real time: the limit end to end, SIGKILL and resume, Ctrl-C, and the
races a manual clock cannot show (concurrent 429s, bookings made before a pause)."""

from __future__ import annotations

import _thread
import json
import logging
import math
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _executor_helpers import ApiError, RecordingWindow, peak_in_window

from ratewindow import RateLimitedExecutor, Retry, SlidingWindow, TokenBucket
from ratewindow._clock import GRACE

pytestmark = pytest.mark.realtime


@pytest.fixture(autouse=True)
def _no_threads_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) == before


def test_200_items_at_20_per_second_end_to_end() -> None:
    """No 1 s interval holds more than 20 call starts, with default arguments, and the run takes
    the least time allowed.

    The starts are read inside the function, where the API call would begin. Each worker confirms
    its permit as the call starts, so a worker that woke late shifts its own unit, not the next
    window's (before that, 21 starts fell in one interval). Each unit is held for the window plus
    the clock's grace (10 ms), so the least time is 9 x 1.01 = 9.09 s; within 5 % of it.
    """
    limiter = SlidingWindow(20, 1.0)
    starts: list[float] = []
    lock = threading.Lock()

    def call(item: int) -> int:
        with lock:
            starts.append(time.monotonic())
        return item

    with RateLimitedExecutor(limiter, max_workers=8, progress=False) as ex:
        outcomes = ex.map(call, range(200))
        end = time.monotonic()
    assert all(o.ok for o in outcomes) and len(starts) == 200
    assert peak_in_window(starts, 1.0) == 20
    assert ex.stats.window_peaks[1.0] == 20
    least = 9.0 * (1.0 + GRACE)  # the 200th unit can start 9 held windows after the first
    assert least <= end - min(starts) <= least * 1.05


def test_killed_with_sigkill_then_resumed_runs_every_item_once(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    script = tmp_path / "batch.py"
    script.write_text(textwrap.dedent("""
        import sys, time
        from ratewindow import RateLimitedExecutor, SlidingWindow

        def work(item):
            time.sleep(0.002)
            return {"item": item, "square": item * item}

        with RateLimitedExecutor(SlidingWindow(100, 1.0), max_workers=4, progress=False) as ex:
            ex.map(work, range(300), key=str, journal=sys.argv[1])
        print("finished")  # never reached: killed first
    """))
    child = subprocess.Popen([sys.executable, str(script), str(journal)], stdout=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and child.poll() is None:
        if journal.exists() and journal.read_bytes().count(b"\n") >= 120:
            break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    out, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL and b"finished" not in out
    done_before = {json.loads(line)["key"] for line in journal.read_text().splitlines() if line.endswith("}")}
    assert 120 <= len(done_before) < 300

    ran: list[int] = []

    def work(item: int) -> dict[str, int]:
        ran.append(item)
        return {"item": item, "square": item * item}

    with RateLimitedExecutor(None, max_workers=4, progress=False) as ex:
        outcomes = ex.map(work, range(300), key=str, journal=journal)
    assert all(o.ok for o in outcomes)
    assert [o.value for o in outcomes] == [{"item": i, "square": i * i} for i in range(300)]
    assert sorted(ran) == sorted(i for i in range(300) if str(i) not in done_before)
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    keys = [r["key"] for r in records if r["ok"]]
    assert sorted(keys, key=int) == [str(i) for i in range(300)]  # every item exactly once


def ctrl_c() -> None:
    """Ctrl-C as a terminal sends it: a real SIGINT, to the main thread (``_thread.interrupt_main``
    only simulates one: the main thread acts on it at its next bytecode, not out of a wait)."""
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
    else:  # pragma: no cover - Windows
        _thread.interrupt_main()


def test_ctrl_c_lets_calls_in_flight_finish_and_flushes_the_journal(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    finished: list[int] = []

    def work(item: int) -> int:
        if item == 20:
            ctrl_c()
            time.sleep(0.5)  # still in flight well after the interrupt was handled
        time.sleep(0.01)
        finished.append(item)
        return item

    with pytest.raises(KeyboardInterrupt), RateLimitedExecutor(None, max_workers=4, progress=False) as ex:
        ex.map(work, range(10_000), journal=journal)
    keys = [json.loads(line)["key"] for line in journal.read_text().splitlines()]
    assert sorted(keys) == sorted(finished)  # every finished call journaled, none lost
    assert 20 in keys and len(keys) < 10_000


def test_ctrl_c_does_not_wait_for_permits_and_gives_bookings_back() -> None:
    """Two permits are free now; the other workers book theirs at 60 s and 120 s. Ctrl-C, pressed
    in the first call to start, ends the batch at once and gives those bookings back.

    Which items get the two free permits is up to thread scheduling (on CPython 3.13 item 2 often
    books before item 1), so the first call to start presses Ctrl-C, whatever its item: a test
    that waited for item 1 ran a minute late whenever item 1 had drawn a permit at 60 s."""
    limiter = SlidingWindow(2, 60.0)
    first = threading.Lock()
    pressed: list[float] = []

    def work(item: int) -> int:
        if first.acquire(blocking=False):  # the first call to start; never released
            deadline = time.monotonic() + 10
            while limiter.wait_time() < 100 and time.monotonic() < deadline:
                time.sleep(0.001)  # until two other workers have booked the permits due at 60 s
            pressed.append(time.monotonic())
            ctrl_c()
        return item

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt), RateLimitedExecutor(limiter, max_workers=4, max_wait=150.0,
                                                               progress=False) as ex:
        ex.map(work, range(10))
    ended = time.monotonic()
    assert len(pressed) == 1 and ended - pressed[0] < 1.0  # handled at once, not after a permit's wait
    assert ended - started < 5.0  # not the 60 s the next permits were booked for
    # Each unit is held for the window plus the clock's grace: the bookings at 60 s and 120 s
    # were given back, and the next unit frees when the two used at the start expire.
    assert 59.0 < limiter.wait_time() <= 60.0 + GRACE


def test_concurrent_429s_pause_the_limiter_once() -> None:
    limiter = RecordingWindow(1000, 1.0)
    all_in_flight = threading.Barrier(4, timeout=10)
    seen: set[int] = set()
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            first = item not in seen
            seen.add(item)
        if item < 4 and first:
            all_in_flight.wait()
            raise ApiError(429, retry_after=1.0)  # the same server window, four times
        return item

    with RateLimitedExecutor(limiter, max_workers=4, progress=False) as ex:
        outcomes = ex.map(work, range(8))
    assert all(o.ok for o in outcomes)
    assert limiter.pauses == [1.0]
    assert (ex.stats.rate_limited, ex.stats.pauses) == (4, 1)


def test_a_permit_booked_before_a_pause_does_not_start_during_it() -> None:
    limiter = RecordingWindow(1, 0.2)  # one call per 0.2 s: the second is booked, then sleeps
    starts: list[tuple[int, float]] = []  # (item, start), in order
    lock = threading.Lock()

    def work(item: int) -> int:
        with lock:
            starts.append((item, time.monotonic()))
            first = len(starts) == 1
        if first:  # whichever item's worker took the first permit (the scheduler decides)
            time.sleep(0.05)
            raise ApiError(429, retry_after=0.6)  # while the other sleeps towards its 0.2 s booking
        return item

    with RateLimitedExecutor(limiter, max_workers=2, progress=False, retry=Retry(jitter=False)) as ex:
        outcomes = ex.map(work, range(2))
    assert all(o.ok for o in outcomes)
    refused, started = starts[0]
    paused_at = started + 0.05
    other = next(at for item, at in starts if item != refused)
    assert other >= paused_at + 0.6 - 0.01  # not at 0.2 s, inside the pause


def test_worker_count_follows_measured_latency(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ratewindow")

    def slow(item: int) -> int:
        time.sleep(0.1)
        return item

    with RateLimitedExecutor(TokenBucket(50.0, 1), progress=False) as ex:
        ex.map(slow, range(40))
    expected = math.ceil(50 * 0.1 * 1.25) + 1  # rate x latency x headroom + 1
    assert ex.stats.workers == expected
    [record] = [r for r in caplog.records if "Little's law" in r.getMessage()]
    assert f"{expected} workers" in record.getMessage()
