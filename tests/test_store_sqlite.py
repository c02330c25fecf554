"""SQLiteStore beyond the contract: one transaction per decision, pruning, time, fork, locks, arguments."""

from __future__ import annotations

import gc
import multiprocessing
import os
import sqlite3
import time
import warnings
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from ratewindow import DailyQuota, Limits, SlidingWindow, SQLiteStore, StoreUnavailable, TokenBucket
from ratewindow.testing import ManualClock


class SetClock:
    """A clock we may set anywhere, backwards too (as a wall clock stepped back by NTP)."""

    grace = 0.0  # its sleeps end exactly on time

    def __init__(self, now: float) -> None:
        self.value = now

    def now(self) -> float:
        return self.value

    def sleep(self, seconds: float) -> None:
        self.value += max(seconds, 0.0)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def _count(path: Path, sql: str, *args: object) -> int:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def test_file_is_wal_with_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    with SQLiteStore(path) as store:
        assert repr(store) == f"SQLiteStore({str(path)!r})"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"rw_state", "rw_log", "rw_lease", "rw_note"}


def test_each_decision_is_one_transaction_reading_a_few_rows(tmp_path: Path) -> None:
    clock = ManualClock(1_000_000.0)
    store = SQLiteStore(tmp_path / "tx.db", clock=clock)
    both = Limits(SlidingWindow(190, 10.0, name="p", store=store, clock=clock),
                  DailyQuota(625_000, tz="America/New_York", name="p", store=store, clock=clock))
    for _ in range(190):
        assert both.try_acquire()
        clock.advance(10.0 / 190)
    statements: list[str] = []
    assert store._conn is not None
    store._conn.set_trace_callback(statements.append)
    for _ in range(50):  # steady state: each call prunes one entry and records one
        statements.append("--call--")
        assert both.try_acquire()
        clock.advance(10.0 / 190)
    store._conn.set_trace_callback(None)
    calls = "\n".join(statements).split("--call--")[1:]
    assert len(calls) == 50
    for call in calls:
        lines = [line for line in call.splitlines() if line.strip()]
        assert [line for line in lines if line.startswith(("BEGIN", "COMMIT", "ROLLBACK"))] == [
            "BEGIN IMMEDIATE", "COMMIT"]
        reads = [line for line in lines if line.startswith("SELECT") and "rw_log" in line]
        assert reads and all("LIMIT" in line for line in reads)  # never the whole log
    assert _count(tmp_path / "tx.db", "SELECT count(*) FROM rw_log") == 190


def test_expired_entries_are_pruned_in_the_same_transaction(tmp_path: Path) -> None:
    clock = ManualClock(1_000_000.0)
    store = SQLiteStore(tmp_path / "prune.db", clock=clock)
    window = SlidingWindow(5, 1.0, name="w", store=store, clock=clock)
    for _ in range(20):
        assert [window.try_acquire() for _ in range(6)] == [True] * 5 + [False]
        assert _count(tmp_path / "prune.db", "SELECT count(*) FROM rw_log") == 5
        clock.advance(1.0)


def test_idle_limiters_are_swept(tmp_path: Path) -> None:
    clock = ManualClock(1_000_000.0)
    path = tmp_path / "sweep.db"
    store = SQLiteStore(path, clock=clock)
    idle = SlidingWindow(3, 1.0, name="idle", store=store, clock=clock)
    bucket = TokenBucket(1.0, 2, name="idle", store=store, clock=clock)
    busy = SlidingWindow(3, 3600.0, name="busy", store=store, clock=clock)
    assert idle.try_acquire(3) and bucket.try_acquire(2) and busy.try_acquire()
    idle.pause(5.0)
    assert _count(path, "SELECT count(*) FROM rw_state") == 3
    clock.advance(120.0)
    assert busy.try_acquire()  # any decision sweeps, at most once a minute
    assert _count(path, "SELECT count(*) FROM rw_state") == 1
    assert _count(path, "SELECT count(*) FROM rw_log") == 2
    assert idle.available() == 3 and bucket.available() == 2


def test_time_never_goes_backwards_for_a_key(tmp_path: Path) -> None:
    clock = SetClock(1000.0)
    store = SQLiteStore(tmp_path / "time.db", clock=clock)
    window = SlidingWindow(1, 10.0, name="w", store=store, clock=clock)
    assert window.try_acquire()
    clock.value = 995.0  # the wall clock steps back 5 s
    assert window.wait_time() == 10.0  # decided at 1000.0, the key's latest time, not 15.0
    assert not window.try_acquire()
    clock.value = 1005.0
    assert window.wait_time() == 5.0
    clock.value = 1011.0
    assert window.try_acquire()
    clock.value = 50.0
    assert window.wait_time() == 10.0
    other = SlidingWindow(1, 10.0, name="other", store=store, clock=clock)
    assert other.try_acquire()  # another key has its own latest time
    assert other.wait_time() == 10.0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_opens_its_own_connection(tmp_path: Path) -> None:
    path = tmp_path / "fork.db"
    store = SQLiteStore(path)
    window = SlidingWindow(5, 3600.0, name="fork", store=store)
    assert window.try_acquire(2)
    parent_conn = store._conn

    def child() -> None:
        results = [window.try_acquire() for _ in range(4)]
        os._exit(0 if results == [True, True, True, False] and store._conn is not parent_conn else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(timeout=30)
    assert process.exitcode == 0
    assert store._conn is parent_conn
    assert not window.try_acquire()
    assert window.available() == 0


def test_a_locked_database_raises_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SQLiteStore(path, timeout=0.1)
    window = SlidingWindow(2, 10.0, name="l", store=store)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    began = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        window.try_acquire()
    assert time.monotonic() - began >= 0.09
    assert caught.value.store == f"sqlite:///{path}" and "locked" in str(caught.value)
    other.execute("ROLLBACK")
    other.close()
    assert window.try_acquire(2) and not window.try_acquire()


def test_unopenable_files(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable, match="no-such-dir"):
        SQLiteStore(tmp_path / "no-such-dir" / "x.db")
    path = tmp_path / "future.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreUnavailable, match="schema version 99"):
        SQLiteStore(path)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda p: SQLiteStore(":memory:"), ValueError, "':memory:'"),
        (lambda p: SQLiteStore(""), ValueError, "''"),
        (lambda p: SQLiteStore(123), TypeError, "123"),  # type: ignore[arg-type]
        (lambda p: SQLiteStore(p, timeout=-1), ValueError, "-1"),
        (lambda p: SQLiteStore(p, timeout=float("inf")), ValueError, "inf"),
        (lambda p: SQLiteStore(p, timeout=True), ValueError, "True"),
    ],
)
def test_bad_arguments_name_the_value(
    tmp_path: Path, build: Callable[[Path], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        build(tmp_path / "x.db")
    assert message in str(caught.value)


def test_close_then_use_reopens(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "reopen.db")
    window = SlidingWindow(2, 3600.0, name="r", store=store)
    assert window.try_acquire()
    store.close()
    assert window.try_acquire() and not window.try_acquire()
    store.close()


def _open_at(paths: list[str], starts: list[float]) -> None:
    """One process: open each new database at its start time, take one permit from it."""
    for path, start in zip(paths, starts):
        while time.time() < start:
            time.sleep(0.0005)
        store = SQLiteStore(path)
        assert SlidingWindow(100, 60.0, name="open", store=store).try_acquire()
        store.close()


@pytest.mark.realtime
def test_processes_opening_a_new_database_at_once_all_get_in(tmp_path: Path) -> None:
    """Eight processes create and open the same new file at the same instant, three times: the
    first one's switch to WAL mode must not refuse the others (it used to fail at once with
    "database is locked")."""
    paths = [str(tmp_path / f"race-{i}.db") for i in range(3)]
    first = time.time() + 3.0  # time for the children to start and import
    starts = [first + 0.5 * i for i in range(3)]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_open_at, args=(paths, starts)) for _ in range(8)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * 8
    for path in paths:
        assert SlidingWindow(100, 60.0, name="open", store=SQLiteStore(path)).available() == 100 - 8


def test_a_dropped_store_closes_its_connection(tmp_path: Path) -> None:
    """A store dropped without ``close()`` closes its connection itself: SQLite then removes the
    WAL files, and Python 3.13+ has no unclosed connection to warn about (ResourceWarning)."""
    path = tmp_path / "dropped.db"
    store = SQLiteStore(path)
    window = SlidingWindow(2, 60.0, name="d", store=store)
    assert window.try_acquire()
    assert os.path.exists(f"{path}-wal")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del window, store
        gc.collect()
    assert [str(w.message) for w in caught] == []
    assert not os.path.exists(f"{path}-wal")  # the last connection closed
    assert SlidingWindow(2, 60.0, name="d", store=SQLiteStore(path)).available() == 1


# -- a file another process keeps locked: every call bounded by its caller's wait ----------------------
def _lock_for(path: str, seconds: float, ready: multiprocessing.synchronize.Event) -> None:
    """Another process (stalled, stopped in a debugger...) holding the database's write lock."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        ready.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")


def test_calls_on_a_file_another_process_keeps_locked_are_bounded_by_their_callers_wait(tmp_path: Path) -> None:
    import threading

    from ratewindow.stores._sqlite import MIN_BUDGET

    path = str(tmp_path / "stalled.db")
    store = SQLiteStore(path)  # timeout=5.0: the longest any call may wait
    window = SlidingWindow(5, 60.0, name="stalled", store=store)
    assert window.try_acquire()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=_lock_for, args=(path, 7.0, ready))
    holder.start()
    try:
        assert ready.wait(30)

        def took(call: Callable[[], object]) -> float:
            began = time.monotonic()
            with pytest.raises(StoreUnavailable):
                call()
            return time.monotonic() - began

        assert MIN_BUDGET - 0.1 < took(lambda: window.acquire(timeout=0.2)) < MIN_BUDGET + 0.4  # not 5 s
        assert 1.9 < took(lambda: window.acquire(timeout=2.0)) < 2.0 + 0.4
        # Four threads of this process at once: each bounded by its own budget, not queued behind
        # the others' (1 s each, not 1, 2, 3 and 4 s).
        times: list[float] = []
        threads = [threading.Thread(target=lambda: times.append(took(window.try_acquire))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(times) == 4 and max(times) < MIN_BUDGET + 0.4
    finally:
        holder.join(timeout=30)
    assert holder.exitcode == 0
    assert window.try_acquire()  # answered again once the lock is gone
