"""The three stores make bit-identical decisions for the same random schedule.

MemoryStore runs the Python decision core on each member's clock; SQLiteStore runs the same core
inside a transaction on its own (here: manual) clock; RedisStore runs the Lua port with an injected
"now". Each example builds the same limiter on the three stores, each world on its own
ManualClock (``acquire`` sleeps on it), then applies one schedule of operations to all three and
compares every result, every exception and every clock exactly. Times and durations are dyadic
(multiples of 1/64 s) so that sums of times are exact in every implementation; the ports must
still perform the same floating-point operations in the same order to agree.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratewindow import (
    AcquireTimeout,
    DailyQuota,
    Limits,
    MemoryStore,
    RedisStore,
    Reservation,
    SlidingWindow,
    SQLiteStore,
    Store,
    TokenBucket,
)
from ratewindow._limiter import _BaseLimiter
from ratewindow.testing import ManualClock

pytestmark = pytest.mark.redis

# 2026-03-08 00:00 in New York, a 23-hour day; we start two hours before it.
_START = 1772946000.0 - 7200.0

# Mostly multiples of 1/8 s, so that entries often expire exactly at a decision time (boundaries).
ticks = st.one_of(
    st.integers(min_value=0, max_value=24).map(lambda k: k / 8),
    st.integers(min_value=0, max_value=320).map(lambda k: k / 64),
)
hours = st.integers(min_value=1, max_value=30).map(lambda k: k * 3600.0)

window_args = st.fixed_dictionaries({
    "limit": st.integers(1, 8),
    "window": st.sampled_from([0.5, 1.0, 2.5]),
    "margin": st.sampled_from([0.0, 0.125]),
})
bucket_args = st.fixed_dictionaries({
    "rate": st.sampled_from([0.5, 2.0, 4.0, 3.0]),
    "capacity": st.sampled_from([1.0, 2.5, 4.0]),
})
daily_args = st.fixed_dictionaries({
    "limit": st.integers(1, 4),
    "tz": st.sampled_from(["UTC", "America/New_York"]),
    "reset_time": st.sampled_from([dt.time(0), dt.time(6, 30)]),
})

setups = st.one_of(
    st.tuples(st.just("window"), window_args),
    st.tuples(st.just("bucket"), bucket_args),
    st.tuples(st.just("daily"), daily_args),
    st.tuples(st.just("window+daily"), st.tuples(window_args, daily_args)),
    st.tuples(st.just("window+bucket"), st.tuples(window_args, bucket_args)),
    st.tuples(st.just("all"), st.tuples(window_args, bucket_args, daily_args)),
)

costs = st.integers(1, 3)
timeouts = st.one_of(st.none(), st.just(0.0), ticks)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("try"), costs),
        st.tuples(st.just("acquire"), costs, timeouts),
        st.tuples(st.just("reserve"), costs),
        st.tuples(st.just("cancel"), st.integers(0, 7)),
        st.tuples(st.just("confirm"), st.integers(0, 7)),
        st.tuples(st.just("advance"), ticks),
        st.tuples(st.just("advance"), hours),
        st.tuples(st.just("pause"), ticks),
        st.tuples(st.just("wait"), costs),
        st.tuples(st.just("available")),
        st.tuples(st.just("used")),
        st.tuples(st.just("reset")),
        st.tuples(st.just("async"), costs, timeouts),
    ),
    min_size=1,
    max_size=40,
)


def build(setup: tuple[str, Any], store: Store, clock: ManualClock, name: str) -> _BaseLimiter:
    kind, args = setup

    def window(a: dict[str, Any]) -> SlidingWindow:
        return SlidingWindow(a["limit"], a["window"], margin=a["margin"], name=name, store=store, clock=clock)

    def bucket(a: dict[str, Any]) -> TokenBucket:
        return TokenBucket(a["rate"], a["capacity"], name=name, store=store, clock=clock)

    def daily(a: dict[str, Any]) -> DailyQuota:
        return DailyQuota(a["limit"], tz=a["tz"], reset_time=a["reset_time"], name=name, store=store, clock=clock)

    if kind == "window":
        return window(args)
    if kind == "bucket":
        return bucket(args)
    if kind == "daily":
        return daily(args)
    if kind == "window+daily":
        return Limits(window(args[0]), daily(args[1]))
    if kind == "window+bucket":
        return Limits(window(args[0]), bucket(args[1]))
    return Limits(window(args[0]), bucket(args[1]), daily(args[2]))


@dataclass
class World:
    label: str
    clock: ManualClock
    store: Store
    limiter: _BaseLimiter
    reservations: list[Reservation] = field(default_factory=list)

    def apply(self, op: tuple[Any, ...]) -> Any:
        """Run one operation; return what it returned or raised, in comparable form."""
        try:
            return self._apply(op)
        except AcquireTimeout as exc:
            return ("AcquireTimeout", exc.retry_after)
        except (ValueError, TypeError, RuntimeError) as exc:
            return (type(exc).__name__, str(exc))

    def _apply(self, op: tuple[Any, ...]) -> Any:
        limiter = self.limiter
        name = op[0]
        if name == "try":
            return limiter.try_acquire(op[1])
        if name == "acquire":
            return limiter.acquire(op[1], timeout=op[2])
        if name == "async":
            return asyncio.run(limiter.acquire_async(op[1], timeout=op[2]))
        if name == "reserve":
            reservation = limiter.reserve(op[1])
            self.reservations.append(reservation)
            # A stamp's auxiliary value at or before now (e.g. a bucket's earlier TAT) no longer
            # matters, and a store may have forgotten it (SQLite sweeps idle rows): compare as -inf.
            now = self.clock.now()
            stamp = reservation._stamp
            if stamp is not None:
                stamp = tuple((at, aux if aux > now else float("-inf")) for at, aux in stamp)
            return (reservation.delay, stamp)
        if name == "cancel":
            if not self.reservations:
                return None
            return self.reservations[op[1] % len(self.reservations)].cancel()
        if name == "confirm":  # a booked caller resumes (perhaps late) and confirms its grant
            if not self.reservations:
                return None
            return self.reservations[op[1] % len(self.reservations)].confirm()
        if name == "advance":
            return self.clock.advance(op[1])
        if name == "pause":
            limiter.pause(op[1])
            return None
        if name == "wait":
            return limiter.wait_time(op[1])
        if name == "available":
            return limiter.available()
        if name == "used":
            return tuple(self.store.used(spec) for spec in limiter._specs)
        if name == "reset":
            limiter.reset()
            return None
        raise AssertionError(name)


@pytest.fixture
def worlds(tmp_path: Path, redis_url: str, prefix: str) -> Callable[[tuple[str, Any]], list[World]]:
    counter = itertools.count()
    opened: list[Any] = []

    def make(setup: tuple[str, Any]) -> list[World]:
        for store in opened:
            store.close()
        opened.clear()
        n = next(counter)
        out = []
        for label in ("memory", "sqlite", "redis"):
            clock = ManualClock(_START)
            store: Store
            if label == "memory":
                store = MemoryStore()
            elif label == "sqlite":
                store = SQLiteStore(tmp_path / f"eq-{n}.db", clock=clock)
                opened.append(store)
            else:
                store = RedisStore(redis_url, prefix=f"{prefix}{n}:", clock=clock)
                opened.append(store)
            out.append(World(label, clock, store, build(setup, store, clock, f"eq{n}")))
        return out

    yield make  # type: ignore[misc]
    for store in opened:
        store.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setup=setups, ops=operations)
def test_three_stores_decide_identically(
    worlds: Callable[[tuple[str, Any]], list[World]], setup: tuple[str, Any], ops: list[tuple[Any, ...]]
) -> None:
    memory, sqlite, redis = worlds(setup)
    for step, op in enumerate(ops):
        results = [world.apply(op) for world in (memory, sqlite, redis)]
        context = f"step {step}: {op!r} on {setup!r}"
        assert results[1] == results[0], f"sqlite differs from memory at {context}"
        assert results[2] == results[0], f"redis differs from memory at {context}"
        assert memory.clock.now() == sqlite.clock.now() == redis.clock.now(), context
        checks = [(w.limiter.available(), w.limiter.wait_time(1)) for w in (memory, sqlite, redis)]
        assert checks[0] == checks[1] == checks[2], f"state differs after {context}: {checks}"


def test_reservations_many_days_ahead_agree(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """Daily bookings five days ahead: the Lua script asks for more calendar periods than it was
    given (and is retried with them); the answers still match the in-process core."""
    results = []
    for label in ("memory", "sqlite", "redis"):
        clock = ManualClock(_START)
        store: Store = (
            MemoryStore() if label == "memory"
            else SQLiteStore(tmp_path / "days.db", clock=clock) if label == "sqlite"
            else RedisStore(redis_url, prefix=prefix, clock=clock)
        )
        quota = DailyQuota(1, tz="America/New_York", name="days", store=store, clock=clock)
        delays = [quota.reserve().delay for _ in range(6)]
        results.append((delays, quota.wait_time(), quota.available()))
    assert results[0] == results[1] == results[2]
    delays = results[0][0]
    assert delays[0] == 0.0 and delays[1] == 7200.0  # midnight in New York, two hours away
    assert delays[2] == 7200.0 + 23 * 3600.0  # the 23-hour day of 2026-03-08
    assert delays[5] == 7200.0 + 23 * 3600.0 + 3 * 86400.0


@pytest.mark.parametrize("label", ["memory", "sqlite", "redis"])
def test_entries_expire_exactly_at_their_boundary(label: str, tmp_path: Path, redis_url: str, prefix: str) -> None:
    """Entries expire at t + window exactly, one or many at a time, in every store (exact counts)."""
    clock = ManualClock(1000.0)
    store: Store = (
        MemoryStore() if label == "memory"
        else SQLiteStore(tmp_path / "edge.db", clock=clock) if label == "sqlite"
        else RedisStore(redis_url, prefix=prefix, clock=clock)
    )
    window = SlidingWindow(8, 1.0, name="edge", store=store, clock=clock)
    spec = window._specs[0]
    for i in range(8):  # entries at 1000.0, 1000.125, ..., 1000.875
        assert window.try_acquire()
        if i < 7:
            clock.advance(0.125)
    assert not window.try_acquire()
    clock.advance(0.25)  # 1001.125: the entries of 1000.0 and 1000.125 (exactly now) have expired
    assert store.used(spec) == 6
    assert window.wait_time(3) == 0.125
    clock.advance(0.25)  # 1001.375: four have expired, the last exactly now
    assert store.used(spec) == 4
    assert window.try_acquire(4)  # prunes four entries at once
    assert not window.try_acquire(1)
    assert window.wait_time(1) == 0.125
    clock.advance(1.0)  # 1002.375: all expired, the four of 1001.375 exactly now
    assert store.used(spec) == 0
    assert window.available() == 8


# Long runs on busy windows: many more entries than the examples above, so that the Redis log's
# dead front is cut off (more than 32 records and half the log), cums are searched with mixed
# costs (the unit-cost guess misses) and cancels move later records.
busy_windows = st.fixed_dictionaries({
    "limit": st.integers(20, 90),
    "window": st.sampled_from([1.0, 2.5]),
    "margin": st.just(0.0),
})
busy_operations = st.lists(
    st.one_of(
        st.tuples(st.just("try"), costs),
        st.tuples(st.just("try"), st.just(1)),
        st.tuples(st.just("reserve"), costs),
        st.tuples(st.just("cancel"), st.integers(0, 40)),
        st.tuples(st.just("advance"), st.integers(0, 8).map(lambda k: k / 64)),
        st.tuples(st.just("wait"), costs),
        st.tuples(st.just("used")),
    ),
    min_size=100,
    max_size=400,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(args=busy_windows, ops=busy_operations)
def test_busy_windows_decide_identically(
    worlds: Callable[[tuple[str, Any]], list[World]], args: dict[str, Any], ops: list[tuple[Any, ...]]
) -> None:
    memory, sqlite, redis = worlds(("window", args))
    for step, op in enumerate(ops):
        results = [world.apply(op) for world in (memory, sqlite, redis)]
        context = f"step {step}: {op!r} on {args!r}"
        assert results[1] == results[0], f"sqlite differs from memory at {context}"
        assert results[2] == results[0], f"redis differs from memory at {context}"
    checks = [(w.limiter.available(), w.limiter.wait_time(1), w.limiter.wait_time(3)) for w in (memory, sqlite, redis)]
    assert checks[0] == checks[1] == checks[2], checks


def test_a_long_busy_log_is_cut_and_stays_exact(redis_client: Any, redis_url: str, prefix: str) -> None:
    """1,000 grants through a 50-entry window: the log string stays bounded (its dead front is cut
    off), and every decision matches the in-process core."""
    clocks = [ManualClock(_START), ManualClock(_START)]
    stores: list[Store] = [MemoryStore(), RedisStore(redis_url, prefix=prefix, clock=clocks[1])]
    windows = [SlidingWindow(50, 1.0, name="long", store=s, clock=c) for s, c in zip(stores, clocks)]
    for i in range(1000):
        results = [w.try_acquire(1 + i % 3) for w in windows]
        assert results[0] == results[1], i
        for clock in clocks:
            clock.advance(1 / 64)
    assert windows[0].wait_time(2) == windows[1].wait_time(2)
    log = f"{prefix}{{long}}:window:long:1.0:log"
    assert 16 * 50 <= redis_client.strlen(log) <= 16 * 2 * (50 + 33)
