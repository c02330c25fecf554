"""Property tests: each limiter against a tiny, independently written reference model.

Times are multiples of 1/64 s and rates powers of two, so float arithmetic is exact and the
comparison can be exact both ways (every grant the model allows is made; every denial is one
the model requires).
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ratewindow import DailyQuota, Limits, SlidingWindow, TokenBucket
from ratewindow.testing import ManualClock

TICK = 1 / 64
steps = st.integers(min_value=0, max_value=64 * 12).map(lambda n: n * TICK)
EXAMPLES = settings(max_examples=200, deadline=None)


# -- reference models ---------------------------------------------------------------------------
@dataclass
class WindowModel:
    """Bookings (time, cost); a cost fits at s iff the units booked in (s - span, s] leave room.

    New bookings are never placed before the latest one (first come, first served)."""

    limit: int
    span: float
    bookings: list[tuple[float, int]] = field(default_factory=list)
    hold: float = float("-inf")

    def in_window(self, s: float) -> int:
        return sum(c for t, c in self.bookings if s - self.span < t <= s)

    def earliest(self, now: float, cost: int) -> float:
        base = max([now, self.hold] + [t for t, _ in self.bookings])
        candidates = sorted({base} | {t + self.span for t, _ in self.bookings if t + self.span > base})
        return next(s for s in candidates if self.in_window(s) + cost <= self.limit)

    def book(self, s: float, cost: int) -> None:
        self.bookings.append((s, cost))


@dataclass
class BucketModel:
    """The textbook bucket: tokens refill at ``rate`` up to ``capacity``."""

    rate: float
    capacity: float
    tokens: float = -1.0
    t: float = 0.0

    def level(self, now: float) -> float:
        if self.tokens < 0:
            return self.capacity
        return min(self.capacity, self.tokens + (now - self.t) * self.rate)

    def take(self, now: float, cost: float) -> bool:
        level = self.level(now)
        if level < cost:
            return False
        self.tokens, self.t = level - cost, now
        return True


@functools.cache
def reset_instant(day: dt.date, tz: str, reset: dt.time) -> int:
    """The first whole minute at which the local wall clock shows ``day`` at or after ``reset``,
    found by scanning minutes (slow and obviously right; cached)."""
    zone = ZoneInfo(tz)
    minute = int(dt.datetime.combine(day, dt.time(0), tzinfo=zone).timestamp()) - 3 * 3600
    minute -= minute % 60
    while True:
        local = dt.datetime.fromtimestamp(minute, zone)
        if local.date() > day or (local.date() == day and local.time() >= reset):
            return minute
        minute += 60


def local_day(t: float, tz: str, reset: dt.time) -> dt.date:
    """The quota day containing Unix time ``t``: the latest day whose reset instant is <= t."""
    day = dt.datetime.fromtimestamp(t, ZoneInfo(tz)).date() + dt.timedelta(days=1)
    while reset_instant(day, tz, reset) > t:
        day -= dt.timedelta(days=1)
    return day


# -- sliding window -----------------------------------------------------------------------------
window_ops = st.lists(
    st.tuples(st.sampled_from(["try", "reserve", "cancel", "pause"]), steps, st.integers(1, 5)),
    max_size=60,
)


@EXAMPLES
@given(
    limit=st.integers(1, 8),
    window=st.integers(1, 64).map(lambda n: n * TICK * 8),
    margin=st.sampled_from([0.0, TICK, 0.5]),
    ops=window_ops,
)
def test_window_matches_model_exactly(limit: int, window: float, margin: float, ops: list) -> None:
    clock = ManualClock(1000.0)
    limiter = SlidingWindow(limit, window, margin=margin, clock=clock)
    model = WindowModel(limit, window + margin)
    pending = []
    for op, step, raw_cost in ops:
        clock.advance(step)
        now = clock.now()
        cost = min(raw_cost, limit)
        expected_at = model.earliest(now, cost)
        assert limiter.wait_time(cost) == expected_at - now
        if op == "try":
            granted = limiter.try_acquire(cost)
            assert granted == (expected_at == now)
            if granted:
                model.book(now, cost)
        elif op == "reserve":
            reservation = limiter.reserve(cost)
            assert reservation.delay == expected_at - now
            model.book(expected_at, cost)
            pending.append((reservation, expected_at, cost))
        elif op == "cancel" and pending:
            reservation, at, booked = pending.pop()
            if at > now and (at, booked) == model.bookings[-1]:
                assert reservation.cancel()
                model.bookings.pop()
        elif op == "pause":
            limiter.pause(step)
            model.hold = max(model.hold, now + step)
        # The invariant: no window, anywhere, holds more than the limit.
        for t, _ in model.bookings:
            assert model.in_window(t) <= limit


@EXAMPLES
@given(limit=st.integers(1, 6), ops=st.lists(st.tuples(steps, st.integers(1, 6)), max_size=40),
       cost=st.integers(1, 6))
def test_window_wait_time_is_exact(limit: int, ops: list, cost: int) -> None:
    clock = ManualClock(50.0)
    limiter = SlidingWindow(limit, 2.0, clock=clock)
    for step, c in ops:
        clock.advance(step)
        limiter.try_acquire(min(c, limit))
    cost = min(cost, limit)
    wait = limiter.wait_time(cost)
    if wait > 0:
        clock.advance(wait - TICK / 1024)
        assert not limiter.try_acquire(cost)  # just before: refused, and nothing recorded
        clock.advance(TICK / 1024)
    assert limiter.try_acquire(cost)


@EXAMPLES
@given(limit=st.integers(2, 6), costs=st.lists(st.integers(1, 6), min_size=1, max_size=12),
       steps_between=st.lists(steps, min_size=12, max_size=12))
def test_reservations_are_served_in_order(limit: int, costs: list, steps_between: list) -> None:
    clock = ManualClock(0.0)
    limiter = SlidingWindow(limit, 1.0, clock=clock)
    ready = []
    for cost, step in zip(costs, steps_between):
        clock.advance(step / 16)
        ready.append(clock.now() + limiter.reserve(min(cost, limit)).delay)
    assert ready == sorted(ready)


@EXAMPLES
@given(limit=st.integers(1, 6), history=st.lists(st.tuples(steps, st.integers(1, 6)), max_size=20),
       cost=st.integers(1, 6))
def test_cancel_restores_state(limit: int, history: list, cost: int) -> None:
    clock = ManualClock(10.0)
    limiter = SlidingWindow(limit, 3.0, clock=clock)
    for step, c in history:
        clock.advance(step / 4)
        limiter.reserve(min(c, limit))
    before = [limiter.wait_time(c) for c in range(1, limit + 1)], limiter.available()
    reservation = limiter.reserve(min(cost, limit))
    if reservation.delay > 0:
        assert reservation.cancel()
        assert ([limiter.wait_time(c) for c in range(1, limit + 1)], limiter.available()) == before


# -- token bucket -------------------------------------------------------------------------------
@EXAMPLES
@given(
    rate=st.sampled_from([0.25, 0.5, 1.0, 2.0, 8.0]),
    capacity=st.integers(1, 8),
    ops=st.lists(st.tuples(steps, st.integers(1, 8)), max_size=60),
)
def test_bucket_matches_model_exactly(rate: float, capacity: int, ops: list) -> None:
    clock = ManualClock(0.0)
    bucket = TokenBucket(rate, capacity, clock=clock)
    model = BucketModel(rate, capacity)
    for step, raw_cost in ops:
        clock.advance(step)
        cost = min(raw_cost, capacity)
        assert bucket.available() == model.level(clock.now())
        assert bucket.try_acquire(cost) == model.take(clock.now(), cost)


@EXAMPLES
@given(
    rate=st.floats(0.1, 50.0),
    capacity=st.floats(1.0, 20.0),
    ops=st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(0.1, 5.0), st.booleans()), max_size=50),
)
def test_bucket_never_grants_more_than_capacity_plus_rate_times_d(rate: float, capacity: float,
                                                                  ops: list) -> None:
    clock = ManualClock(0.0)
    bucket = TokenBucket(rate, capacity, clock=clock)
    grants: list[tuple[float, float]] = []
    for step, raw_cost, reserve in ops:
        clock.advance(step)
        cost = min(raw_cost, capacity)
        if reserve:
            grants.append((clock.now() + bucket.reserve(cost).delay, cost))
        elif bucket.try_acquire(cost):
            grants.append((clock.now(), cost))
    grants.sort()
    for i, (start, _) in enumerate(grants):
        for j in range(i, len(grants)):
            end = grants[j][0]
            total = sum(c for t, c in grants[i : j + 1])
            assert total <= capacity + rate * (end - start) + 1e-6 * (1 + total)


# -- daily quota --------------------------------------------------------------------------------
# 2026-03-08 (23 h) and 2026-11-01 (25 h) in New York, both starting at local midnight.
DST_STARTS = [1772946000.0, 1793505600.0]


@EXAMPLES
@given(
    start=st.sampled_from(DST_STARTS),
    offset=st.integers(-30, 30).map(lambda h: h * 3600.0),
    reset=st.sampled_from([dt.time(0), dt.time(1, 30), dt.time(2, 30), dt.time(6)]),
    limit=st.integers(1, 5),
    ops=st.lists(st.tuples(st.integers(0, 4 * 3600), st.integers(1, 5)), max_size=60),
)
def test_daily_quota_matches_local_days(start: float, offset: float, reset: dt.time, limit: int,
                                        ops: list) -> None:
    tz = "America/New_York"
    clock = ManualClock(start + offset)
    quota = DailyQuota(limit, tz=tz, reset_time=reset, clock=clock)
    used: dict[dt.date, int] = {}
    for step, raw_cost in ops:
        clock.advance(float(step))
        cost = min(raw_cost, limit)
        day = local_day(clock.now(), tz, reset)
        expected = used.get(day, 0) + cost <= limit
        assert quota.try_acquire(cost) == expected, (clock.now(), day)
        if expected:
            used[day] = used.get(day, 0) + cost
    assert all(count <= limit for count in used.values())


def test_daily_day_lengths_on_dst_changes() -> None:
    clock = ManualClock(DST_STARTS[0])
    quota = DailyQuota(1, tz="America/New_York", clock=clock)
    assert quota.resets_at() - clock.now() == 23 * 3600
    clock.advance(DST_STARTS[1] - DST_STARTS[0])
    assert quota.resets_at() - clock.now() == 25 * 3600


# -- composites ---------------------------------------------------------------------------------
@EXAMPLES
@given(
    limit=st.integers(1, 6),
    daily=st.integers(1, 12),
    capacity=st.integers(1, 6),
    ops=st.lists(st.tuples(steps, st.integers(1, 6), st.sampled_from(["both", "window", "bucket"])),
                 max_size=60),
)
def test_composite_is_all_or_nothing(limit: int, daily: int, capacity: int, ops: list) -> None:
    clock = ManualClock(DST_STARTS[0])
    window = SlidingWindow(limit, 4.0, clock=clock)
    quota = DailyQuota(daily, tz="America/New_York", clock=clock)
    bucket = TokenBucket(1.0, capacity, clock=clock)
    both = Limits(window, quota, bucket)
    window_model = WindowModel(limit, 4.0)
    bucket_model = BucketModel(1.0, capacity)
    quota_used = 0
    for step, raw_cost, target in ops:
        clock.advance(step / 8)
        now = clock.now()
        cost = min(raw_cost, limit, daily, capacity)
        w_ok = window_model.earliest(now, cost) == now
        b_ok = bucket_model.level(now) >= cost
        q_ok = quota_used + cost <= daily
        if target == "both":
            expected = w_ok and b_ok and q_ok
            assert both.try_acquire(cost) == expected
            if expected:
                window_model.book(now, cost)
                bucket_model.take(now, cost)
                quota_used += cost
        elif target == "window":
            assert window.try_acquire(cost) == w_ok
            if w_ok:
                window_model.book(now, cost)
        else:
            assert bucket.try_acquire(cost) == b_ok
            if b_ok:
                bucket_model.take(now, cost)
        assert quota.available() == daily - quota_used


@EXAMPLES
@given(limit=st.integers(1, 4), ops=st.lists(st.tuples(steps, st.integers(1, 4)), max_size=30))
def test_composite_wait_time_is_the_longest_member_wait(limit: int, ops: list) -> None:
    clock = ManualClock(0.0)
    fast = SlidingWindow(limit, 1.0, name="fast", clock=clock)
    slow = SlidingWindow(limit * 2, 8.0, name="slow", clock=clock)
    both = Limits(fast, slow)
    for step, raw_cost in ops:
        clock.advance(step / 8)
        cost = min(raw_cost, limit)
        assert both.wait_time(cost) == max(fast.wait_time(cost), slow.wait_time(cost))
        both.try_acquire(cost)


@EXAMPLES
@given(
    limits=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    ops=st.lists(
        st.tuples(st.sampled_from(["reserve both", "try both", "try a", "reserve a", "try b"]), steps,
                  st.integers(1, 5)),
        max_size=50,
    ),
)
def test_composite_reservations_keep_every_window_exact(limits: tuple[int, int], ops: list) -> None:
    """A booking delayed by one member is still honoured by the other: later requests on that
    member alone queue behind it, and no window anywhere holds more than its limit."""
    clock = ManualClock(0.0)
    a = SlidingWindow(limits[0], 1.0, name="a", clock=clock)
    b = SlidingWindow(limits[1], 6.0, name="b", clock=clock)
    both = Limits(a, b)
    model_a, model_b = WindowModel(limits[0], 1.0), WindowModel(limits[1], 6.0)
    for op, step, raw_cost in ops:
        clock.advance(step / 4)
        now = clock.now()
        cost = min(raw_cost, *limits)
        if op.endswith("both"):
            at = max(model_a.earliest(now, cost), model_b.earliest(now, cost))
            if op == "reserve both":
                assert both.reserve(cost).delay == at - now
            else:
                assert both.try_acquire(cost) == (at == now)
            if op == "reserve both" or at == now:
                model_a.book(at, cost)
                model_b.book(at, cost)
        else:
            limiter, model = (a, model_a) if op.endswith("a") else (b, model_b)
            at = model.earliest(now, cost)
            if op.startswith("reserve"):
                assert limiter.reserve(cost).delay == at - now
                model.book(at, cost)
            else:
                assert limiter.try_acquire(cost) == (at == now)
                if at == now:
                    model.book(now, cost)
        for model in (model_a, model_b):
            for t, _ in model.bookings:
                assert model.in_window(t) <= model.limit


# -- what the server sees: callers that resume late ----------------------------------------------
lateness = st.one_of(
    st.just(0.0),
    st.integers(min_value=0, max_value=64).map(lambda n: n * TICK / 4),
    st.integers(min_value=0, max_value=64 * 3).map(lambda n: n * TICK),
)


@EXAMPLES
@given(
    limit=st.integers(1, 6),
    window=st.sampled_from([0.5, 1.0, 2.0]),
    margin=st.sampled_from([0.0, 0.125]),
    composite=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    late=st.lists(lateness, min_size=1, max_size=8),
    cancel_share=st.sampled_from([0.0, 0.2]),
)
def test_late_callers_never_crowd_a_window_at_the_server(
    limit: int, window: float, margin: float, composite: bool, seed: int, late: list[float],
    cancel_share: float,
) -> None:
    """Callers book, wake late by any of ``late`` (scheduler, GIL, a busy loop), confirm, and
    start: the start times never hold more than the limit in any window, on every member, and
    every caller that did not give up gets its requests through."""
    import random

    from ratewindow.testing import _most_started, late_callers

    clock = ManualClock(1_000_000.0)
    first = SlidingWindow(limit, window, margin=margin, name="a", clock=clock)
    limiter: SlidingWindow | Limits = first
    if composite:
        limiter = Limits(first, SlidingWindow(limit * 3, window * 4, name="b", clock=clock))
    rng = random.Random(seed)
    starts = late_callers(limiter, clock, rng, callers=5, requests=6, lateness=lambda r: r.choice(late),
                          cancel_share=cancel_share, cost=lambda r: r.choice((1, 1, 2)) if limit > 1 else 1)
    assert _most_started(starts, limit, window) <= limit
    if composite:
        assert _most_started(starts, limit * 3, window * 4) <= limit * 3
    if cancel_share == 0.0:
        assert len(starts) == 5 * 6
