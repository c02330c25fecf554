"""``for_key``: one budget per key (user, account, endpoint), built from a template limiter.

The property: a keyed template decides exactly as independent limiters would, one per key, each
with its own store; real processes sharing a SQLite file share each key's budget.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import re
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratewindow import (
    ConcurrencyLimit,
    DailyQuota,
    Limits,
    MemoryStore,
    SlidingWindow,
    SQLiteStore,
    TokenBucket,
    _core,
)
from ratewindow._keyed import KEYED_HANDLES
from ratewindow.testing import ManualClock

TICK = 1 / 64
START = 1_772_946_000.0  # a Unix time (a New York midnight), for the daily quotas


def _build(kind: str, store: MemoryStore, clock: ManualClock, name: str = "t") -> Any:
    if kind == "window":
        return SlidingWindow(3, 1.0, margin=0.125, name=name, store=store, clock=clock)
    if kind == "bucket":
        return TokenBucket(2.0, 3, name=name, store=store, clock=clock)
    if kind == "daily":
        return DailyQuota(5, tz="America/New_York", name=name, store=store, clock=clock)
    return Limits(SlidingWindow(3, 1.0, name=name, store=store, clock=clock),
                  DailyQuota(7, tz="America/New_York", name=name, store=store, clock=clock))


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["window", "bucket", "daily", "composite"]),
    ops=st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 3), st.integers(0, 64 * 2).map(lambda n: n * TICK)),
        max_size=60,
    ),
)
def test_a_keyed_template_decides_as_one_independent_limiter_per_key(
    kind: str, ops: list[tuple[int, int, float]]
) -> None:
    clock = ManualClock(START)
    template = _build(kind, MemoryStore(), clock)
    alone = {key: _build(kind, MemoryStore(), clock) for key in range(4)}  # one store each
    for key, cost, step in ops:
        clock.advance(step)
        keyed = template.for_key(key)
        assert keyed.wait_time(cost) == alone[key].wait_time(cost)
        assert keyed.try_acquire(cost) == alone[key].try_acquire(cost)
    assert template.available() == _build(kind, MemoryStore(), clock).available()  # untouched


def test_names_and_handles() -> None:
    clock = ManualClock(START)
    template = Limits(SlidingWindow(3, 1.0, name="portal", clock=clock),
                      DailyQuota(9, name="portal", clock=clock))  # each on its own default store
    keyed = template.for_key(42)
    assert [m.name for m in keyed.limiters] == ["portal:42", "portal:42"]
    assert keyed.name == "portal+portal:42"
    assert template.for_key("42") is keyed  # an int key names the same budget as its text
    assert keyed.try_acquire(3) and not template.for_key(42).try_acquire()
    assert template.try_acquire(3)  # the template's own budget is apart
    nested = SlidingWindow(1, 1.0, name="api", clock=clock).for_key("eu").for_key("alice")
    assert nested.name == "api:eu:alice"


def test_dropped_handles_keep_their_budget() -> None:
    """Only handles are cached; the budget lives in the store, so a handle rebuilt after being
    dropped from the cache sees the same state."""
    template = SlidingWindow(2, 3600.0, name="user", clock=ManualClock())
    first = template.for_key("u0")
    assert first.try_acquire(2)
    for i in range(1, KEYED_HANDLES + 50):
        assert template.for_key(f"u{i}").try_acquire()
    assert template._keyed is not None and len(template._keyed) == KEYED_HANDLES  # bounded
    again = template.for_key("u0")
    assert again is not first  # rebuilt ...
    assert not again.try_acquire() and again.available() == 0  # ... on the same state


@pytest.mark.parametrize(
    ("key", "error", "message"),
    [
        ("", ValueError, "key must be a non-empty string, got ''"),
        (None, TypeError, "key must be a string or an int, got None"),
        (1.5, TypeError, "key must be a string or an int, got 1.5"),
        (True, TypeError, "key must be a string or an int, got True"),
        (b"alice", TypeError, "key must be a string or an int, got b'alice'"),
    ],
)
def test_bad_keys_are_refused_with_the_value_named(key: object, error: type[Exception], message: str) -> None:
    limiter = SlidingWindow(1, 1.0, name="api", clock=ManualClock())
    with pytest.raises(error) as info:
        limiter.for_key(key)  # type: ignore[arg-type]
    assert str(info.value) == message
    with pytest.raises(error):
        ConcurrencyLimit(1, name="api").for_key(key)  # type: ignore[arg-type]
    assert limiter.try_acquire()  # nothing was recorded anywhere


def test_keyed_observers_are_their_own() -> None:
    seen: list[str] = []

    class Names:
        def on_acquire(self, limiter: str, cost: float, granted: bool, waited: float) -> None:
            seen.append(limiter)

        def on_pause(self, limiter: str, seconds: float) -> None:
            seen.append(f"pause {limiter}")

    template = SlidingWindow(5, 1.0, name="api", clock=ManualClock())
    template.observe(Names())
    template.for_key("a").try_acquire()  # not reported as the template's
    keyed = template.for_key("b")
    keyed.observe(Names())
    keyed.try_acquire()
    keyed.pause(1.0)
    assert seen == ["api:b", "pause api:b"]


def _take_all(path: str, keys: list[str], out: Any) -> None:
    """One process: try 6 times per key on SlidingWindow(4, 1 h) keyed from one template."""
    template = SlidingWindow(4, 3600.0, name="tenant", store=SQLiteStore(path))
    out.put({key: sum(template.for_key(key).try_acquire() for _ in range(6)) for key in keys})


def test_processes_share_each_keys_budget_through_sqlite(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.db")
    keys = ["acme", "globex", "initech"]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_take_all, args=(path, keys, out)) for _ in range(3)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
        assert proc.exitcode == 0
    for key in keys:  # 18 tries per key across the processes; exactly the limit granted
        assert sum(result[key] for result in results) == 4


@pytest.mark.parametrize("build", ["constructor", "for_key"])
def test_threads_that_first_use_a_name_together_share_one_budget(
    build: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: two limiters of one name built at the same moment on a fresh MemoryStore
    could each get a state of their own, and together grant twice the limit.

    The real store runs; only the creation of a new state is made to wait until both threads
    are creating one, so that the race happens every round instead of once in a hundred.
    """
    real_new_state = _core.new_state
    both: list[threading.Barrier] = []

    def new_state_when_both_are_here(kind: str) -> Any:
        if both:  # the other thread may have found the state made already: then go on alone
            with contextlib.suppress(threading.BrokenBarrierError):
                both[0].wait(timeout=1.0)
        return real_new_state(kind)

    monkeypatch.setattr(_core, "new_state", new_state_when_both_are_here)
    for _ in range(20):
        both.clear()
        store = MemoryStore()
        template = SlidingWindow(1, 60.0, name="t", store=store)
        both.append(threading.Barrier(2))  # from here, new states wait for each other
        grants: list[bool] = []

        def take(store: MemoryStore = store, template: SlidingWindow = template,
                 grants: list[bool] = grants) -> None:
            if build == "constructor":
                limiter = SlidingWindow(1, 60.0, name="t:k", store=store)
            else:
                limiter = template.for_key("k")
            grants.append(limiter.try_acquire())

        threads = [threading.Thread(target=take) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert grants.count(True) == 1, grants
        assert not SlidingWindow(1, 60.0, name="t:k", store=store).try_acquire()  # one state, seen by all


def _bytes_per_key(build: Any, keys: int = 20_000) -> float:
    """Bytes a MemoryStore keeps per key used through ``for_key``, each key with one grant,
    measured with tracemalloc once the template's cache of keyed limiters is full (so what grows
    is the store alone)."""
    store = MemoryStore()
    clock = ManualClock(START)
    template = build(store, clock)
    for n in range(2 * KEYED_HANDLES):
        template.for_key(f"warm-{n}").try_acquire()
        clock.advance(0.001)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for n in range(keys):
            template.for_key(f"portal-{n}").try_acquire()
            clock.advance(0.001)
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")) / keys


def _stated(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"about (\d+) bytes\s+per\s+key", text)]


def test_the_documented_memory_per_key_is_what_a_memory_store_keeps() -> None:
    window = _bytes_per_key(lambda s, c: SlidingWindow(190, 10.0, name="hubspot", store=s, clock=c))
    daily = _bytes_per_key(lambda s, c: DailyQuota(625_000, tz="America/New_York", name="hubspot", store=s,
                                                   clock=c))
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    docstring = SlidingWindow.for_key.__doc__ or ""
    stated = _stated(readme) + _stated(docstring)
    assert len(stated) == 2, stated
    for figure in stated:  # the figure is for a sliding window holding one grant
        assert abs(window - figure) <= 0.1 * figure, (window, figure)
    assert daily < window  # and the README says the others cost less
