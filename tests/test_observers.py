"""Every grant is told to the observers exactly once, by every path that takes one (``Observer``).

Paths: ``try_acquire``, ``acquire``, ``acquire_async``, ``reserve`` with ``wait``, ``wait_async``,
``confirm``, ``confirm_async`` and ``cancel``, and both executors (``ratewindow.http`` is in
test_http.py). A reservation is told when it is confirmed, never at booking; one cancelled is
never told. Exact lists of what each observer heard, on a ``ManualClock``.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from _executor_helpers import HTTPError

from ratewindow import (
    AcquireTimeout,
    AsyncRateLimitedExecutor,
    DailyQuota,
    Limits,
    RateLimitedExecutor,
    Retry,
    SlidingWindow,
    TokenBucket,
)
from ratewindow.testing import ManualClock

Told = tuple[str, float, bool, float]


class Recorder:
    """An observer that keeps everything it is told, in order."""

    def __init__(self) -> None:
        self.acquired: list[Told] = []
        self.paused: list[tuple[str, float]] = []
        self.responses: list[tuple[str, bool]] = []

    def on_acquire(self, limiter: str, cost: float, granted: bool, waited: float) -> None:
        self.acquired.append((limiter, cost, granted, waited))

    def on_pause(self, limiter: str, seconds: float) -> None:
        self.paused.append((limiter, seconds))

    def on_response(self, limiter: str, refused: bool) -> None:
        self.responses.append((limiter, refused))

    def grants(self) -> list[Told]:
        return [told for told in self.acquired if told[2]]


class MidSleepClock(ManualClock):
    """A ManualClock that runs ``during`` half a second into the next sleep (another caller acts
    while this one sleeps), then sleeps the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.during: Callable[[], object] | None = None

    def sleep(self, seconds: float) -> None:
        during, self.during = self.during, None
        if during is None or seconds <= 0.5:
            super().sleep(seconds)
            return
        self.sleeps.append(seconds)
        self.advance(0.5)
        during()
        self.advance(seconds - 0.5)


def watched(limiter: Any) -> Recorder:
    recorder = Recorder()
    limiter.observe(recorder)
    return recorder


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


# -- the limiter's own paths -------------------------------------------------------------------------
def test_try_acquire_tells_each_decision_at_once() -> None:
    limiter = SlidingWindow(2, 10.0, name="w", clock=ManualClock())
    told = watched(limiter)
    assert [limiter.try_acquire() for _ in range(3)] == [True, True, False]
    assert told.acquired == [("w", 1, True, 0.0), ("w", 1, True, 0.0), ("w", 1, False, 0.0)]


def test_acquire_tells_its_grant_once_with_the_seconds_it_returns_late_callers_included() -> None:
    clock = MidSleepClock()
    limiter = SlidingWindow(1, 10.0, name="w", clock=clock)
    told = watched(limiter)
    late = limiter.reserve()  # a caller that will start half a second late
    clock.during = late.confirm  # it starts while we sleep: its unit now counts until 10.5
    assert limiter.acquire() == 10.5  # booked at 10, confirmed at 10.5
    # The late caller never waited for the limiter; ours is told once, with what acquire returned
    # (before: at booking, with 10.0).
    assert told.acquired == [("w", 1, True, 0.0), ("w", 1, True, 10.5)]


def test_acquire_past_its_timeout_is_told_once_as_a_refusal_not_as_a_grant() -> None:
    clock = MidSleepClock()
    limiter = SlidingWindow(1, 10.0, name="w", clock=clock)
    told = watched(limiter)
    late = limiter.reserve()
    clock.during = late.confirm
    with pytest.raises(AcquireTimeout):
        limiter.acquire(timeout=10.2)  # the booking fits; the late caller pushes it to 10.5
    assert told.acquired == [("w", 1, True, 0.0), ("w", 1, False, 0.0)]
    assert limiter.wait_time() == 0.5  # the booking was given back: only the late caller's unit
    with pytest.raises(AcquireTimeout):
        limiter.acquire(timeout=0.1)  # refused at once
    assert told.acquired[2:] == [("w", 1, False, 0.0)]


def test_acquire_async_tells_its_grant_once_and_a_timeout_as_a_refusal() -> None:
    clock = MidSleepClock()
    limiter = SlidingWindow(1, 10.0, name="w", clock=clock)
    told = watched(limiter)

    async def main() -> None:
        late = limiter.reserve()
        clock.during = late.confirm
        assert await limiter.acquire_async() == 10.5
        assert told.acquired == [("w", 1, True, 0.0), ("w", 1, True, 10.5)]
        clock.advance(10.0)  # 20.5: the window is empty again
        other = limiter.reserve()
        clock.during = other.confirm  # it starts half a second late, at 21
        with pytest.raises(AcquireTimeout):
            await limiter.acquire_async(timeout=10.2)  # booked for 30.5, pushed to 31
        assert told.acquired[2:] == [("w", 1, True, 0.0), ("w", 1, False, 0.0)]

    asyncio.run(main())


def test_a_cancelled_acquire_async_is_not_told() -> None:
    limiter = SlidingWindow(1, 0.5, name="w")  # real time
    told = watched(limiter)

    async def main() -> None:
        await limiter.acquire_async()
        task = asyncio.create_task(limiter.acquire_async())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert told.acquired == [("w", 1, True, 0.0)]


def test_a_reservation_is_told_when_confirmed_never_at_booking() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(1, 10.0, name="w", clock=clock)
    told = watched(limiter)
    first, second = limiter.reserve(), limiter.reserve()
    assert told.acquired == []  # booked: nothing is the caller's yet
    assert first.confirm() == 0.0 and first.confirm() == 0.0  # confirming again tells nothing more
    assert told.acquired == [("w", 1, True, 0.0)]
    clock.advance(4.0)
    assert second.confirm() == 6.0  # not due: nothing told
    clock.advance(6.0)
    assert second.confirm() == 0.0
    assert told.acquired[1:] == [("w", 1, True, 10.0)]  # from its booking until now
    third = limiter.reserve()
    assert third.wait() == 10.0 and third.wait() == 0.0
    assert told.acquired[2:] == [("w", 1, True, 10.0)]


def test_a_cancelled_or_never_confirmed_reservation_is_not_a_grant() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(1, 10.0, name="w", clock=clock)
    told = watched(limiter)
    booking = limiter.reserve()
    assert booking.cancel()
    limiter.reserve()  # never confirmed (e.g. a bookkeeping entry)
    assert told.acquired == []
    with pytest.raises(RuntimeError):
        booking.confirm()
    assert told.acquired == []


def test_reservations_of_buckets_and_quotas_are_told_when_confirmed() -> None:
    clock = ManualClock(1_800_000_000.0)
    bucket = TokenBucket(1.0, 1, name="b", clock=clock)
    quota = DailyQuota(5, name="q", clock=clock)
    told_bucket, told_quota = watched(bucket), watched(quota)
    assert bucket.try_acquire()
    booking = bucket.reserve()
    assert booking.confirm() == 1.0
    clock.advance(1.0)
    assert booking.confirm() == 0.0
    assert quota.reserve(2).wait() == 0.0
    assert told_bucket.acquired == [("b", 1, True, 0.0), ("b", 1, True, 1.0)]
    assert told_quota.acquired == [("q", 2, True, 0.0)]


def test_async_reservations_are_told_once() -> None:
    clock = ManualClock()
    limiter = SlidingWindow(1, 10.0, name="w", clock=clock)
    told = watched(limiter)

    async def main() -> None:
        assert await limiter.reserve().wait_async() == 0.0
        booking = limiter.reserve()
        assert await booking.confirm_async() == 10.0
        clock.advance(10.0)
        assert await booking.confirm_async() == 0.0 and await booking.confirm_async() == 0.0
        assert await limiter.reserve().wait_async() == 10.0
        cancelled = limiter.reserve()
        assert await cancelled.cancel_async()

    asyncio.run(main())
    assert told.acquired == [("w", 1, True, 0.0), ("w", 1, True, 10.0), ("w", 1, True, 10.0)]


def test_a_composite_tells_its_own_observers_under_its_name_and_not_its_members() -> None:
    clock = ManualClock(1_800_000_000.0)
    window = SlidingWindow(2, 10.0, name="w", clock=clock)
    both = Limits(window, DailyQuota(100, name="d", clock=clock), name="both")
    told_both, told_window = watched(both), watched(window)
    assert both.try_acquire()
    assert both.acquire() == 0.0
    assert both.reserve().wait() == 10.0
    assert told_both.grants() == [("both", 1, True, 0.0), ("both", 1, True, 0.0), ("both", 1, True, 10.0)]
    assert told_window.acquired == []


def test_the_decorator_and_the_context_managers_are_told_once_per_call() -> None:
    limiter = SlidingWindow(10, 10.0, name="w", clock=ManualClock())
    told = watched(limiter)

    @limiter
    def call() -> None:
        return None

    call()
    with limiter:
        pass

    async def main() -> None:
        async with limiter:
            pass

    asyncio.run(main())
    assert told.acquired == [("w", 1, True, 0.0)] * 3


# -- the executors -----------------------------------------------------------------------------------
def test_ten_grants_through_the_executor_are_ten_in_prometheus() -> None:
    from ratewindow.metrics import PrometheusMetrics

    clock = ManualClock(1_800_000_000.0)
    limiter = SlidingWindow(4, 10.0, name="api", clock=clock)
    metrics = PrometheusMetrics().watch(limiter)
    server = metrics.serve(0)
    try:
        with RateLimitedExecutor(limiter, clock=clock, progress=False, max_workers=1) as ex:
            assert [o.value for o in ex.map(lambda i: i, range(10))] == list(range(10))
        values = scrape(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
    assert values['ratewindow_grants_total{limiter="api"}'] == 10
    assert values['ratewindow_granted_units_total{limiter="api"}'] == 10
    assert values['ratewindow_wait_seconds_count{limiter="api"}'] == 10
    # One worker, 4 per 10 s: items 4 and 8 each wait 10 s for the window; the others, booked
    # when the window has room, wait nothing.
    assert values['ratewindow_wait_seconds_sum{limiter="api"}'] == 20.0
    assert values['ratewindow_wait_seconds_bucket{le="0.0",limiter="api"}'] == 8
    assert 'ratewindow_denials_total{limiter="api"}' not in values


def test_retries_take_and_tell_one_grant_per_attempt() -> None:
    clock = ManualClock(1_800_000_000.0)
    limiter = SlidingWindow(100, 1.0, name="api", clock=clock)
    told = watched(limiter)
    refused_once = {0, 7}

    def call(item: int) -> int:
        if item in refused_once:
            refused_once.discard(item)
            raise HTTPError(429, {"Retry-After": "0"})
        return item

    with RateLimitedExecutor(limiter, clock=clock, progress=False, max_workers=1,
                             retry=Retry(jitter=False)) as ex:
        outcomes = ex.map(call, range(10))
    assert sum(o.attempts for o in outcomes) == 12
    assert len(told.grants()) == 12 and len(told.acquired) == 12
    assert told.responses == [("api", True)] * 1 + [("api", False)] * 7 + [("api", True)] + [("api", False)] * 3


@pytest.mark.parametrize("kind", ["threads", "asyncio"])
def test_both_executors_tell_the_same_grants_and_refusals(kind: str) -> None:
    clock = ManualClock(1_800_000_000.0)
    limiter = Limits(SlidingWindow(2, 10.0, name="w", clock=clock), DailyQuota(5, name="d", clock=clock),
                     name="api")
    told = watched(limiter)
    options: dict[str, Any] = {"clock": clock, "progress": False, "max_wait": 15.0}
    if kind == "threads":
        with RateLimitedExecutor(limiter, max_workers=1, **options) as ex:
            outcomes = ex.map(lambda i: i, range(8))
    else:
        async def echo(item: int) -> int:
            return item

        async def main() -> list[Any]:
            async with AsyncRateLimitedExecutor(limiter, max_concurrency=1, **options) as ex:
                return await ex.map(echo, range(8))

        outcomes = asyncio.run(main())
    assert [o.ok for o in outcomes] == [True] * 5 + [False] * 3  # the daily quota is spent after 5
    # 5 grants (one worker, 2 per 10 s: items 2 and 4 wait 10 s for the window, item 3 is booked
    # when it has room), then one permit past max_wait (the day is spent): told as a refusal
    assert told.acquired == [("api", 1, True, w) for w in (0.0, 0.0, 10.0, 0.0, 10.0)] + [("api", 1, False, 0.0)]
