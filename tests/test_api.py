"""The public surface: bad input, Rate, sugar (with / decorator / async), reprs, concurrency."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import pickle
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ratewindow
from ratewindow import (
    AcquireTimeout,
    ConcurrencyLimit,
    DailyQuota,
    Limits,
    MemoryStore,
    QuotaExhausted,
    Rate,
    RateWindowError,
    SlidingWindow,
    SQLiteStore,
    TokenBucket,
    as_store,
)
from ratewindow.compat import ParallelProcessor
from ratewindow.testing import ManualClock


def test_all_matches_namespace_and_is_sorted() -> None:
    public = {
        name
        for name, value in vars(ratewindow).items()
        if not name.startswith("_") and not isinstance(value, type(ratewindow))  # skip submodules
    }
    assert ratewindow.__all__ == sorted(ratewindow.__all__)
    assert set(ratewindow.__all__) == public | {"__version__"}


# -- bad input: every error names the bad value ---------------------------------------------------
@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: SlidingWindow(0, 1.0), ValueError, "limit must be a positive integer, got 0"),
        (lambda: SlidingWindow(-3, 1.0), ValueError, "limit must be a positive integer, got -3"),
        (lambda: SlidingWindow(1.5, 1.0), TypeError, "limit must be a positive integer, got 1.5"),
        (lambda: SlidingWindow(True, 1.0), TypeError, "limit must be a positive integer, got True"),
        (lambda: SlidingWindow("10", 1.0), TypeError, "limit must be a positive integer, got '10'"),
        (lambda: SlidingWindow(1, 0), ValueError, "window must be a finite number > 0, got 0"),
        (lambda: SlidingWindow(1, -1.0), ValueError, "window must be a finite number > 0, got -1.0"),
        (lambda: SlidingWindow(1, math.nan), ValueError, "window must be a finite number > 0, got nan"),
        (lambda: SlidingWindow(1, math.inf), ValueError, "window must be a finite number > 0, got inf"),
        (lambda: SlidingWindow(1, 1.0, margin=-0.1), ValueError, "margin must be a finite number >= 0, got -0.1"),
        (lambda: SlidingWindow(1, 1.0, name=""), ValueError, "name must be a non-empty string, got ''"),
        (lambda: SlidingWindow(1, 1.0, name=5), TypeError, "name must be a non-empty string, got 5"),
        (lambda: TokenBucket(1.0, 1, name=None), TypeError, "name must be a non-empty string, got None"),
        (lambda: DailyQuota(1, name=b"x"), TypeError, "name must be a non-empty string, got b'x'"),
        (lambda: ConcurrencyLimit(1, name=5), TypeError, "name must be a non-empty string, got 5"),
        (lambda: ConcurrencyLimit(1, name=""), ValueError, "name must be a non-empty string, got ''"),
        (lambda: TokenBucket(0, 5), ValueError, "rate must be a finite number > 0, got 0"),
        (lambda: TokenBucket(math.inf, 5), ValueError, "rate must be a finite number > 0, got inf"),
        (lambda: TokenBucket(1.0, 0.5), ValueError, "capacity must be >= 1, got 0.5"),
        (lambda: TokenBucket(1.0, math.nan), ValueError, "capacity must be a finite number > 0, got nan"),
        (lambda: DailyQuota(0), ValueError, "limit must be a positive integer, got 0"),
        (lambda: DailyQuota(10, tz="Mars/Olympus"), ValueError, "unknown time zone 'Mars/Olympus'"),
        (lambda: DailyQuota(10, tz=""), ValueError, "unknown time zone ''"),
        (lambda: DailyQuota(10, tz=None), TypeError,
         "tz must be an IANA time zone name such as 'America/New_York', got None"),
        (lambda: DailyQuota(10, reset_time="00:00"), TypeError, "reset_time must be a datetime.time, got '00:00'"),
        (lambda: Limits(), ValueError, "Limits needs at least one limiter, got none"),
        (lambda: Limits(SlidingWindow(1, 1.0), object()), TypeError, "Limits members must be ratewindow limiters"),
        (lambda: Limits(SlidingWindow(1, 1.0), SlidingWindow(2, 1.0)), ValueError, "share the state key"),
        (lambda: Rate.parse("190 per 10s"), ValueError, "cannot parse rate '190 per 10s'"),
        (lambda: Rate.parse("190/10 fortnights"), ValueError, "cannot parse rate '190/10 fortnights'"),
        (lambda: Rate.parse("0/s"), ValueError, "limit must be a positive integer, got 0"),
        (lambda: Rate.parse("5/0s"), ValueError, "the window must be > 0"),
        (lambda: Rate.parse(190), TypeError, "rate must be a string like '190/10s', got 190"),
    ],
)
def test_bad_configuration_is_refused_with_the_value_named(build, error, message) -> None:
    with pytest.raises(error) as info:
        build()
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda w: w.try_acquire(0), ValueError, "cost must be > 0 and finite, got 0"),
        (lambda w: w.try_acquire(-1), ValueError, "cost must be > 0 and finite, got -1"),
        (lambda w: w.try_acquire(11), ValueError, "cost 11 exceeds 10, the most limiter 'api' can ever grant"),
        (lambda w: w.try_acquire(1.5), TypeError, "cost must be a positive integer, got 1.5"),
        (lambda w: w.try_acquire(True), TypeError, "cost must be a positive integer, got True"),
        (lambda w: w.acquire(1, timeout=-1), ValueError, "timeout must be None or a number of seconds >= 0, got -1"),
        (lambda w: w.acquire(1, timeout=math.nan), ValueError, "got nan"),
        (lambda w: w.wait_time(20), ValueError, "cost 20 exceeds 10"),
        (lambda w: w.reserve(0), ValueError, "cost must be > 0"),
        (lambda w: w.pause(-1), ValueError, "seconds must be a finite number >= 0, got -1"),
        (lambda w: w.pause(math.inf), ValueError, "seconds must be a finite number >= 0, got inf"),
    ],
)
def test_bad_arguments_are_refused_with_the_value_named(call, error, message) -> None:
    limiter = SlidingWindow(10, 1.0, name="api", clock=ManualClock())
    with pytest.raises(error) as info:
        call(limiter)
    assert message in str(info.value)
    assert limiter.available() == 10  # nothing recorded


def test_manual_clock_is_a_time_function_and_jumps_only_forward() -> None:
    clock = ManualClock(10.0)
    assert clock() == clock.now() == 10.0
    clock.set(12.5)
    assert clock() == 12.5
    clock.set(12.5)  # standing still is allowed
    with pytest.raises(ValueError, match=r"never goes backwards: now is 12\.5, got 12\.0"):
        clock.set(12.0)
    with pytest.raises(ValueError, match="got nan"):
        clock.set(float("nan"))
    assert clock() == 12.5 and clock.sleeps == []  # a jump is not a sleep


def test_bucket_accepts_fractional_costs_and_refuses_nan() -> None:
    bucket = TokenBucket(1.0, 2, clock=ManualClock())
    assert bucket.try_acquire(1.5)
    with pytest.raises(ValueError, match="cost must be > 0 and finite, got nan"):
        bucket.try_acquire(math.nan)
    with pytest.raises(ValueError, match="cost 3 exceeds 2"):
        bucket.try_acquire(3)


def test_composite_cost_bound_is_the_smallest_member() -> None:
    clock = ManualClock()
    both = Limits(SlidingWindow(10, 1.0, clock=clock), DailyQuota(4, clock=clock))
    with pytest.raises(ValueError, match="cost 5 exceeds 4"):
        both.try_acquire(5)


# -- Rate -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "limit", "window", "printed"),
    [
        ("190/10s", 190, 10.0, "190/10s"),
        ("5/s", 5, 1.0, "5/s"),
        ("100/min", 100, 60.0, "100/min"),
        ("200/5min", 200, 300.0, "200/5min"),
        ("1000/h", 1000, 3600.0, "1000/h"),
        ("625000/day", 625000, 86400.0, "625000/day"),
        ("100/60s", 100, 60.0, "100/min"),
        ("10/0.5s", 10, 0.5, "10/0.5s"),
        (" 7 / 2 H ", 7, 7200.0, "7/2h"),
    ],
)
def test_rate_parse_and_round_trip(text: str, limit: int, window: float, printed: str) -> None:
    rate = Rate.parse(text)
    assert (rate.limit, rate.window) == (limit, window)
    assert str(rate) == printed
    assert Rate.parse(str(rate)) == rate


windows = st.one_of(
    st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False),
    st.sampled_from([1e-05, 0.1 * 3, 1e16, 1.5e300, 5e-324, 7200.000000000001, 86400.0 * 7]),
    st.integers(1, 10**6).map(float),
    st.tuples(st.integers(1, 10**6), st.sampled_from([60.0, 3600.0, 86400.0])).map(lambda p: p[0] * p[1]),
)


@settings(max_examples=500, deadline=None)
@given(limit=st.integers(1, 10**18), window=windows)
def test_str_of_every_rate_parses_back_to_it(limit: int, window: float) -> None:
    rate = Rate(limit, window)
    assert Rate.parse(str(rate)) == rate, str(rate)


def test_from_rate() -> None:
    limiter = SlidingWindow.from_rate("190/10s", name="portal")
    assert (limiter.limit, limiter.window, limiter.name) == (190, 10.0, "portal")
    assert limiter.rate == Rate(190, 10)


# -- sugar ------------------------------------------------------------------------------------------
def test_context_manager_and_decorator_take_one_unit_each() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(2, 10.0, clock=clock)

    @limiter
    def work(x: int) -> int:
        return x * 2

    assert work.__name__ == "work"
    with limiter:
        pass
    assert work(21) == 42
    assert limiter.available() == 0
    assert work(1) == 2  # waits 10 s on the manual clock
    assert clock.sleeps == [10.0]


def test_async_decorator_and_context_manager() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(1, 5.0, clock=clock)

    @limiter
    async def work() -> str:
        return "done"

    async def main() -> list[str]:
        async with limiter:
            pass
        return [await work(), await work()]

    assert asyncio.run(main()) == ["done", "done"]
    assert clock.sleeps == [5.0, 5.0]


def test_async_acquire_does_not_block_the_loop() -> None:
    limiter = SlidingWindow(1, 0.2)  # real time
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(5):
            ticks.append(asyncio.get_running_loop().time())
            await asyncio.sleep(0.02)

    async def main() -> float:
        await limiter.acquire_async()
        waited, _ = await asyncio.gather(limiter.acquire_async(), ticker())
        return waited

    waited = asyncio.run(main())
    assert waited > 0.1
    assert len(ticks) == 5  # the loop kept running while the acquire waited


def test_cancelled_async_acquire_gives_its_booking_back() -> None:
    limiter = SlidingWindow(1, 0.5)  # real time

    async def main() -> None:
        await limiter.acquire_async()
        task = asyncio.create_task(limiter.acquire_async())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert 0.3 < limiter.wait_time() <= 0.5  # only the first grant is left, not the cancelled one


def test_acquire_timeout_records_nothing_and_carries_retry_after() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(1, 30.0, name="portal-42", clock=clock)
    limiter.acquire()
    with pytest.raises(AcquireTimeout) as info:
        limiter.acquire(timeout=29.0)
    assert info.value.retry_after == 30.0
    assert info.value.limiter == "portal-42"
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, RateWindowError)
    assert "portal-42" in str(info.value)
    assert limiter.wait_time() == 30.0  # the refused call left no booking
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.retry_after, copy.limiter) == (30.0, "portal-42")


def test_quota_exhausted_says_when_in_iso_8601_with_its_offset() -> None:
    error = QuotaExhausted(1_796_533_200.0, "portal-42")  # 2026-12-06 05:00 UTC, a New York midnight
    assert str(error) == (
        "quota 'portal-42' exhausted; it frees at 2026-12-06T05:00:00+00:00 (Unix time 1796533200.000)"
    )
    assert error.retry_at_text == "2026-12-06T05:00:00+00:00 (Unix time 1796533200.000)"
    assert "at 2026-12-06T05:00:00.250+00:00 (Unix time 1796533200.250)" in str(QuotaExhausted(1_796_533_200.25))
    assert str(QuotaExhausted(None, "q")) == "quota 'q' exhausted; it frees at an unknown time"
    assert "Unix time 1e+300" in str(QuotaExhausted(1e300))  # beyond datetime: the Unix time alone
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.retry_at, copy.limiter, str(copy)) == (error.retry_at, "portal-42", str(error))


def test_acquire_timeout_states_the_timeout_it_exceeded_when_known() -> None:
    error = AcquireTimeout(30.0, "portal-42", timeout=0.5)
    assert str(error) == "limiter 'portal-42': permit available in 30.000 s, beyond the timeout of 0.500 s"
    assert (error.retry_after, error.limiter, error.timeout) == (30.0, "portal-42", 0.5)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.retry_after, copy.limiter, copy.timeout, str(copy)) == (30.0, "portal-42", 0.5, str(error))
    unknown = AcquireTimeout(3.0, "x")
    assert unknown.timeout is None and str(unknown) == "limiter 'x': permit available in 3.000 s, beyond the timeout"

    slots = ConcurrencyLimit(1, lease=30.0, name="org", clock=ManualClock())
    assert slots.try_hold() is not None
    with pytest.raises(AcquireTimeout) as info:
        slots.hold(timeout=10.0)
    assert info.value.timeout == 10.0 and "beyond the timeout of 10.000 s" in str(info.value)


def test_reservation_wait_and_cancel_after_use() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(1, 4.0, clock=clock)
    limiter.acquire()
    reservation = limiter.reserve()
    assert reservation.delay == 4.0
    assert reservation.wait() == 4.0
    assert not reservation.cancel()  # already usable: nothing to give back
    assert "Reservation(cost=1" in repr(reservation)


def test_reprs_show_live_state() -> None:
    clock = ManualClock(1_000_000.0)
    window = SlidingWindow(190, 10.0, name="portal-42", clock=clock)
    window.try_acquire(37)
    assert repr(window) == "SlidingWindow(limit=190, window=10.0, used=37, name='portal-42')"
    bucket = TokenBucket(5.0, 5, clock=clock)
    bucket.try_acquire(2)
    assert repr(bucket) == "TokenBucket(rate=5.0, capacity=5.0, tokens=3, name='default')"
    quota = DailyQuota(625_000, tz="America/New_York", clock=clock)
    quota.try_acquire(3)
    assert repr(quota) == (
        "DailyQuota(limit=625000, tz='America/New_York', reset_time='00:00:00', used=3, name='default')"
    )
    assert repr(Limits(window, quota)).startswith("Limits(SlidingWindow(limit=190")


def test_daily_quota_reset_time_must_be_naive() -> None:
    with pytest.raises(ValueError, match="naive local time"):
        DailyQuota(5, reset_time=dt.time(0, tzinfo=dt.timezone.utc))


def test_limits_of_members_on_different_shared_stores_is_refused() -> None:
    class OtherStore(MemoryStore):
        pass

    a = SlidingWindow(1, 1.0, name="a", store=MemoryStore())
    b = SlidingWindow(1, 1.0, name="b", store=OtherStore())
    Limits(a, b)  # two memory stores: fine, locked together
    c = SlidingWindow(1, 1.0, name="c")
    nested = Limits(Limits(a, c), b)
    assert [m.name for m in nested.limiters] == ["a", "c", "b"]


@pytest.mark.parametrize("thing", [42, "fetch", None], ids=repr)
def test_decorating_something_that_is_not_callable_is_a_type_error_naming_it(thing) -> None:
    limiter = SlidingWindow(1, 1.0)
    with pytest.raises(TypeError, match=f"a limiter decorates a function or coroutine function, got {thing!r}"):
        limiter(thing)
    assert limiter.available() == 1


# -- store=: a store or a store URL, anything else refused at construction -----------------------
STORE_TAKERS = {
    "SlidingWindow": lambda store: SlidingWindow(5, 1.0, store=store),
    "TokenBucket": lambda store: TokenBucket(5.0, 5, store=store),
    "DailyQuota": lambda store: DailyQuota(5, store=store),
    "ConcurrencyLimit": lambda store: ConcurrencyLimit(5, store=store),
    "ParallelProcessor": lambda store: ParallelProcessor(5, 10, store=store, progress=False),
}


@pytest.mark.parametrize("build", STORE_TAKERS.values(), ids=STORE_TAKERS.keys())
@pytest.mark.parametrize("bad", [42, b"memory://", object(), SlidingWindow(1, 1.0)], ids=repr)
def test_store_that_is_not_a_store_is_a_type_error_naming_it(build, bad) -> None:
    with pytest.raises(TypeError) as info:
        build(bad)
    assert "store must be" in str(info.value) and repr(bad) in str(info.value)


@pytest.mark.parametrize("build", STORE_TAKERS.values(), ids=STORE_TAKERS.keys())
def test_store_urls_are_built_into_stores(build, tmp_path) -> None:
    memory = build("memory://")
    on_disk = build(f"sqlite:///{tmp_path}/limits.db")
    for made, kind in ((memory, MemoryStore), (on_disk, SQLiteStore)):
        limiter = made.limiter if isinstance(made, ParallelProcessor) else made
        members = getattr(limiter, "limiters", (limiter,))
        assert all(isinstance(m._store, kind) for m in members)
    with pytest.raises(ValueError, match="invalid store URL 'mongodb://x'"):
        build("mongodb://x")


def test_a_sqlite_url_shares_one_budget_between_processes_and_limiters(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/limits.db"
    assert SlidingWindow(2, 60.0, name="api", store=url).try_acquire(2)
    assert not SlidingWindow(2, 60.0, name="api", store=url).try_acquire()  # one budget, two stores
    assert as_store(url).path == str(tmp_path / "limits.db")
    assert isinstance(as_store(None), MemoryStore)
    store = MemoryStore()
    assert as_store(store) is store


def test_limits_of_members_built_from_one_url_says_to_build_the_store_once(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/limits.db"
    with pytest.raises(ValueError, match=r"build it once, e\.g\. with as_store\(url\)"):
        Limits(SlidingWindow(1, 1.0, store=url), DailyQuota(1, store=url))
    store = as_store(url)
    Limits(SlidingWindow(1, 1.0, store=store), DailyQuota(1, store=store))


# -- concurrency ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: SlidingWindow(100, 3600.0),
        lambda: TokenBucket(1e-6, 100),
        lambda: DailyQuota(100),
        lambda: Limits(SlidingWindow(100, 3600.0), DailyQuota(500)),
        lambda: Limits(SlidingWindow(500, 3600.0, name="a"), TokenBucket(1e-6, 100)),
    ],
)
def test_sixteen_threads_admit_exactly_the_limit(make) -> None:
    limiter = make()
    start = threading.Barrier(16)
    counts = [0] * 16

    def worker(i: int) -> None:
        start.wait()
        for _ in range(50):
            counts[i] += limiter.try_acquire()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 100


def test_blocking_acquire_threads_are_served_fifo_without_herding() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(3, 1.0, clock=clock)
    waits: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        waited = limiter.acquire()
        with lock:
            waits.append(waited)

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Each acquire booked its slot once and slept once: 12 sleeps at most, no polling.
    assert len(clock.sleeps) <= 12
    assert all(s > 0 for s in clock.sleeps)
    assert sorted(waits)[:3] == [0.0, 0.0, 0.0]


def test_a_store_far_away_is_not_asked_again_and_again() -> None:
    """Every answer of a store 20 ms away arrives later than a grace of 0: after a few answers
    that is its usual round trip, and grants are confirmed once, not four times each."""
    from ratewindow import MemoryStore, SlidingWindow
    from ratewindow.testing import ManualClock

    clock = ManualClock(1000.0)

    class Far(MemoryStore):
        confirms = 0

        def acquire(self, specs, cost, max_wait):  # type: ignore[no-untyped-def]
            clock.advance(0.02)
            return super().acquire(specs, cost, max_wait)

        def confirm(self, specs, cost, stamp):  # type: ignore[no-untyped-def]
            Far.confirms += 1
            clock.advance(0.02)
            return super().confirm(specs, cost, stamp)

    limiter = SlidingWindow(5, 1.0, store=Far(), clock=clock)
    for _ in range(200):
        limiter.acquire()
    first, Far.confirms = Far.confirms, 0
    for _ in range(200):
        limiter.acquire()
    assert Far.confirms <= 210, (first, Far.confirms)  # one each (a few answers late by luck)
    assert first <= 4 * 200
