"""Test helpers for users of ratewindow: a manual clock and the store contract suite.

``ManualClock`` makes time a value you move: ``sleep`` advances it at once, so tests of code
that waits for permits run instantly and assert exact counts.

``StoreContract`` is the test suite every ratewindow store passes. To check a store of your
own, subclass it in a pytest module and say how to build the store::

    from ratewindow.testing import StoreContract

    class TestMyStore(StoreContract):
        def make_store(self, clock):
            return MyStore(clock=clock)   # a store that takes its time from ``clock`` in tests
"""

from __future__ import annotations

import asyncio
import heapq
import random
import threading
from collections.abc import Callable

from ratewindow._analysis import analyse
from ratewindow._concurrency import ConcurrencyLimit
from ratewindow._daily_quota import DailyQuota
from ratewindow._errors import AcquireTimeout
from ratewindow._limiter import Reservation, _BaseLimiter
from ratewindow._limits import Limits
from ratewindow._rate import Rate
from ratewindow._sliding_window import SlidingWindow
from ratewindow._token_bucket import TokenBucket
from ratewindow.stores._protocol import Store

__all__ = ["ManualClock", "StoreContract", "late_callers"]


class ManualClock:
    """A clock that moves only when told: ``advance(seconds)``, or ``sleep``, which advances at once.

    Thread-safe. ``start`` is the initial time in seconds (use a Unix time for daily quotas).
    Calling the clock returns ``now()``, so one clock drives both the limiters and a fake server.

    >>> clock = ManualClock(start=100.0)
    >>> clock.sleep(2.5); clock.now()
    102.5
    """

    #: Sleeps end exactly on time here, so callers need no grace (see ``MonotonicClock.grace``).
    grace = 0.0

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()
        #: Every sleep requested, in seconds, in order.
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def __call__(self) -> float:
        """The current time in seconds, as ``now()``: the clock is also a plain time function, for
        code that takes one (e.g. the adapters' fakes, ``FakeHubSpot(clock=clock)``)."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0); returns the new time.

        Raises:
            ValueError: ``seconds`` is negative or NaN.
        """
        if not seconds >= 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to ``now`` seconds.

        Raises:
            ValueError: ``now`` is earlier than the current time, or NaN.
        """
        with self._lock:
            if not now >= self._now:
                raise ValueError(f"a ManualClock never goes backwards: now is {self._now!r}, got {now!r}")
            self._now = float(now)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r})"


def late_callers(
    limiter: _BaseLimiter,
    clock: ManualClock,
    rng: random.Random,
    *,
    callers: int = 6,
    requests: int = 8,
    lateness: Callable[[random.Random], float] | None = None,
    cancel_share: float = 0.1,
    cost: Callable[[random.Random], int] | None = None,
) -> list[tuple[float, int]]:
    """Callers that wake late, simulated on ``clock``: the times (and costs) they start requests.

    Each of ``callers`` makes ``requests`` requests one after another: it books with ``reserve()``,
    "sleeps" until the booking and wakes ``lateness(rng)`` seconds late (default: 0 to 50 ms,
    sometimes 0.3 s), then confirms; a confirmation that says wait sleeps that long (and wakes
    late again). A share of waking callers cancel instead. A caller's request starts when its
    grant is immediate or confirmed; it then works 0-20 ms before booking again. Events run in
    time order on the one clock, as threads would resume; returns ``[(start, cost), ...]``.
    """
    late = lateness or (lambda r: r.choice((0.0, r.uniform(0, 0.05), r.uniform(0, 0.3))))
    weigh = cost or (lambda r: 1)
    starts: list[tuple[float, int]] = []
    events: list[tuple[float, int, int, int, Reservation | None]] = []
    seq = 0
    t0 = clock.now()
    for caller in range(callers):
        events.append((t0 + rng.uniform(0, 0.05), seq, caller, requests, None))
        seq += 1
    heapq.heapify(events)
    while events:
        at, _, caller, left, booking = heapq.heappop(events)
        if at > clock.now():
            clock.set(at)
        now = clock.now()
        if booking is None:  # book the next request
            units = weigh(rng)
            booking = limiter.reserve(units)
            if booking.delay > 0:
                heapq.heappush(events, (now + booking.delay + late(rng), seq, caller, left, booking))
                seq += 1
                continue
        elif rng.random() < cancel_share:  # woke up and gave up: the booking goes back
            booking.cancel()
            if left > 1:
                heapq.heappush(events, (now + rng.uniform(0, 0.02), seq, caller, left - 1, None))
                seq += 1
            continue
        else:
            wait = booking.confirm()
            if wait > 0:
                heapq.heappush(events, (now + wait + late(rng), seq, caller, left, booking))
                seq += 1
                continue
        starts.append((now, int(booking.cost)))
        if left > 1:
            heapq.heappush(events, (now + rng.uniform(0, 0.02), seq, caller, left - 1, None))
            seq += 1
    return starts


def _most_started(starts: list[tuple[float, int]], limit: int, window: float) -> float:
    if not starts:
        return 0.0
    starts = sorted(starts)
    return analyse([t for t, _ in starts], Rate(limit, window), [float(c) for _, c in starts]).most_in_window


# 2026-03-08 is a 23-hour day in New York; its local midnight is 05:00 UTC.
_NY_SPRING_MIDNIGHT = 1772946000.0


class StoreContract:
    """The behaviour every store must show, as pytest test methods (no pytest import needed).

    Subclass it and implement ``make_store(clock)``; the store must take its time from ``clock``
    (a ``ManualClock``) so the tests can move time.
    """

    def make_store(self, clock: ManualClock) -> Store:  # pragma: no cover - overridden
        raise NotImplementedError("subclasses return the store under test")

    def _setup(self, start: float = 1_000_000.0) -> tuple[ManualClock, Store]:
        clock = ManualClock(start)
        return clock, self.make_store(clock)

    def test_window_admits_exactly_limit(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(3, 10.0, name="w", store=store, clock=clock)
        assert [limiter.try_acquire() for _ in range(4)] == [True, True, True, False]
        clock.advance(9.999)
        assert not limiter.try_acquire()
        clock.advance(0.001)
        assert limiter.try_acquire()

    def test_late_callers_never_crowd_a_window(self) -> None:
        """What the API's server sees: callers that resume late (scheduler, GIL, a busy event loop)
        and confirm their grants never put more than the limit into any window of start times."""
        for seed in range(6):
            rng = random.Random(seed)
            clock, store = self._setup()
            window = SlidingWindow(4, 1.0, name=f"late-{seed}", store=store, clock=clock)
            starts = late_callers(window, clock, rng, cost=lambda r: r.choice((1, 1, 2)))
            assert _most_started(starts, 4, 1.0) <= 4, (seed, sorted(starts))
            assert sum(c for _, c in starts) > 0
            # A composite: both windows hold at the start times.
            clock, store = self._setup()
            both = Limits(SlidingWindow(3, 0.5, name=f"a-{seed}", store=store, clock=clock),
                          SlidingWindow(5, 2.0, name=f"b-{seed}", store=store, clock=clock))
            starts = late_callers(both, clock, rng)
            assert _most_started(starts, 3, 0.5) <= 3 and _most_started(starts, 5, 2.0) <= 5, seed

    def test_confirm_moves_a_late_grant_to_when_it_starts(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(1, 10.0, name="c", store=store, clock=clock)
        assert limiter.try_acquire()
        first = limiter.reserve()
        second = limiter.reserve()
        assert (first.delay, second.delay) == (10.0, 20.0)
        assert first.confirm() == 10.0  # not due yet: nothing changes
        clock.advance(10.25)  # the first caller wakes 0.25 s late and starts now
        assert first.confirm() == 0.0 and first.confirm() == 0.0
        assert not first.cancel()  # confirmed units are used
        clock.advance(9.75)  # the second was booked for now, but the first started 0.25 s late
        assert second.confirm() == 0.25
        clock.advance(0.25)
        assert second.confirm() == 0.0
        # A grant that expired before its caller came back is counted anew when it starts.
        third = limiter.reserve()
        clock.advance(third.delay + 25.0)
        assert third.confirm() == 0.0 and limiter.available() == 0
        # Cancelled while late: the units go back, and confirming is an error.
        late = limiter.reserve()
        clock.advance(late.delay + 1.0)
        assert late.cancel()
        try:
            late.confirm()
        except RuntimeError:
            pass
        else:
            raise AssertionError("confirm() after cancel() should raise RuntimeError")
        assert limiter.available() == 1

    def test_confirm_waits_out_a_pause(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(1, 1.0, name="p", store=store, clock=clock)
        assert limiter.try_acquire()
        booking = limiter.reserve()
        limiter.pause(5.0)  # a 429 arrived while the caller slept
        clock.advance(1.0)
        assert booking.confirm() == 4.0
        clock.advance(4.0)
        assert booking.confirm() == 0.0

    def test_window_weights_and_wait_time(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(10, 10.0, name="w", store=store, clock=clock)
        assert limiter.try_acquire(4)
        clock.advance(2.0)
        assert limiter.try_acquire(6)
        assert limiter.wait_time(1) == 8.0
        assert limiter.wait_time(4) == 8.0
        assert limiter.wait_time(5) == 10.0
        assert not limiter.try_acquire(1)
        assert limiter.available() == 0

    def test_window_margin_holds_longer(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(1, 1.0, margin=0.25, name="m", store=store, clock=clock)
        assert limiter.try_acquire()
        assert limiter.wait_time() == 1.25

    def test_same_name_shares_state(self) -> None:
        clock, store = self._setup()
        a = SlidingWindow(2, 10.0, name="shared", store=store, clock=clock)
        b = SlidingWindow(2, 10.0, name="shared", store=store, clock=clock)
        c = SlidingWindow(2, 10.0, name="other", store=store, clock=clock)
        assert a.try_acquire() and b.try_acquire()
        assert not a.try_acquire() and not b.try_acquire()
        assert c.try_acquire()

    def test_reservations_are_fifo(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(2, 10.0, name="fifo", store=store, clock=clock)
        delays = [limiter.reserve().delay for _ in range(5)]
        assert delays == [0.0, 0.0, 10.0, 10.0, 20.0]
        assert limiter.wait_time() == 20.0

    def test_cancel_restores_state(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(2, 10.0, name="c", store=store, clock=clock)
        assert limiter.try_acquire(2)
        reservation = limiter.reserve()
        assert reservation.delay == 10.0
        assert limiter.wait_time() == 10.0 + 0.0  # queued behind the reservation
        assert reservation.cancel()
        assert not reservation.cancel()
        clock.advance(10.0)
        assert limiter.try_acquire(2)

    def test_acquire_sleeps_exact_wait_and_times_out(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(1, 5.0, name="a", store=store, clock=clock)
        assert limiter.acquire() == 0.0
        try:
            limiter.acquire(timeout=4.0)
        except TimeoutError as exc:
            assert getattr(exc, "retry_after", None) == 5.0
        else:  # pragma: no cover - the contract is broken
            raise AssertionError("acquire(timeout=4.0) should time out")
        assert limiter.acquire(timeout=5.0) == 5.0
        assert clock.sleeps[-1] == 5.0

    def test_bucket_refills_continuously(self) -> None:
        clock, store = self._setup()
        bucket = TokenBucket(2.0, 4, name="b", store=store, clock=clock)
        assert bucket.try_acquire(4)
        assert not bucket.try_acquire(1)
        assert bucket.wait_time(1) == 0.5
        clock.advance(0.5)
        assert bucket.try_acquire(1)
        clock.advance(100.0)
        assert bucket.available() == 4.0

    def test_daily_resets_at_local_midnight_on_a_23_hour_day(self) -> None:
        clock, store = self._setup(start=_NY_SPRING_MIDNIGHT + 3600.0)
        quota = DailyQuota(2, tz="America/New_York", name="d", store=store, clock=clock)
        assert quota.try_acquire(2)
        assert not quota.try_acquire()
        # The local day of 2026-03-08 lasts 23 hours; we are 1 hour into it.
        assert quota.wait_time() == 22 * 3600.0
        clock.advance(22 * 3600.0)
        assert quota.try_acquire(2)

    def test_composite_is_all_or_nothing(self) -> None:
        clock, store = self._setup(start=_NY_SPRING_MIDNIGHT)
        window = SlidingWindow(5, 10.0, name="cw", store=store, clock=clock)
        quota = DailyQuota(7, tz="America/New_York", name="cd", store=store, clock=clock)
        both = Limits(window, quota)
        assert both.try_acquire(5)
        assert not both.try_acquire(1)
        clock.advance(10.0)
        assert not both.try_acquire(3)  # the window would allow it; the quota (2 left) does not
        assert window.available() == 5  # ... and the refused request left no trace on the window
        assert both.try_acquire(2)
        assert quota.available() == 0

    def test_keys_are_apart_and_shared_by_name(self) -> None:
        clock, store = self._setup(start=_NY_SPRING_MIDNIGHT)
        template = Limits(SlidingWindow(3, 10.0, name="tenant", store=store, clock=clock),
                          DailyQuota(4, tz="America/New_York", name="tenant", store=store, clock=clock))
        alice = template.for_key("alice")
        assert alice.try_acquire(3) and not alice.try_acquire()
        assert template.for_key("bob").try_acquire(3)  # another key: its own budget
        assert template.try_acquire(3)  # and the template's own is apart from every key's
        twin = Limits(SlidingWindow(3, 10.0, name="tenant", store=store, clock=clock),
                      DailyQuota(4, tz="America/New_York", name="tenant", store=store, clock=clock))
        assert not twin.for_key("alice").try_acquire()  # same names, same store: same budget
        assert twin.for_key("alice").wait_time() == 10.0
        clock.advance(10.0)
        assert not alice.try_acquire(2)  # the window has room; alice's daily quota (1 left) not
        assert alice.try_acquire(1) and template.for_key("bob").try_acquire(1)
        assert alice.available() == 0 and template.for_key(7).available() == 3

    def test_concurrency_keys_are_apart(self) -> None:
        clock, store = self._setup()
        per_org = ConcurrencyLimit(1, lease=60.0, name="orgs", store=store, clock=clock)  # type: ignore[arg-type]
        held = per_org.for_key("acme").try_hold()
        assert held is not None
        assert per_org.for_key("acme").try_hold() is None
        other = per_org.for_key("globex").try_hold()
        assert other is not None
        held.release()
        other.release()
        assert per_org.for_key("acme").in_use() == 0

    def test_pause_is_shared(self) -> None:
        clock, store = self._setup()
        a = SlidingWindow(100, 10.0, name="p", store=store, clock=clock)
        b = SlidingWindow(100, 10.0, name="p", store=store, clock=clock)
        a.pause(3.0)
        assert not b.try_acquire()
        assert b.wait_time() == 3.0
        clock.advance(3.0)
        assert b.try_acquire()

    def test_notes_are_shared(self) -> None:
        """What a ``Calibrator`` learned is kept as a note every user of the store reads. Notes are
        optional: a store without ``note``/``read_note`` passes, and calibrators then learn in
        each process on their own."""
        store = self.make_store(ManualClock(1_000_000.0))
        if not callable(getattr(store, "note", None)):
            return
        key = f"contract:{random.random()}"
        assert store.read_note(key) is None  # type: ignore[attr-defined]
        store.note(key, '{"default": [10, 60.0]}', 60.0)  # type: ignore[attr-defined]
        assert store.read_note(key) == '{"default": [10, 60.0]}'  # type: ignore[attr-defined]
        store.note(key, "{}", 60.0)  # type: ignore[attr-defined]
        assert store.read_note(key) == "{}"  # type: ignore[attr-defined]

    def test_reset_forgets(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(1, 10.0, name="r", store=store, clock=clock)
        assert limiter.try_acquire()
        limiter.reset()
        assert limiter.try_acquire()

    def test_async_acquire(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(2, 1.0, name="aio", store=store, clock=clock)

        async def run() -> list[float]:
            return [await limiter.acquire_async() for _ in range(5)]

        assert asyncio.run(run()) == [0.0, 0.0, 1.0, 0.0, 1.0]

    def test_threads_admit_exactly_limit(self) -> None:
        clock, store = self._setup()
        limiter = SlidingWindow(50, 3600.0, name="race", store=store, clock=clock)
        granted: list[bool] = []
        lock = threading.Lock()
        start = threading.Barrier(16)

        def worker() -> None:
            start.wait()
            mine = [limiter.try_acquire() for _ in range(20)]
            with lock:
                granted.extend(mine)

        threads = [threading.Thread(target=worker) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert granted.count(True) == 50
        assert len(granted) == 320

    # -- ConcurrencyLimit leases (stores with lease support: every store ratewindow ships) ----------
    def test_concurrency_slots_are_exact_and_shared(self) -> None:
        clock, store = self._setup()
        a = ConcurrencyLimit(2, lease=60.0, name="org", store=store, clock=clock)  # type: ignore[arg-type]
        b = ConcurrencyLimit(2, lease=60.0, name="org", store=store, clock=clock)  # type: ignore[arg-type]
        first, second = a.try_hold(), b.try_hold()
        assert first is not None
        assert second is not None
        assert a.try_hold() is None
        assert b.in_use() == 2
        first.release()
        assert a.in_use() == 1
        third = a.try_hold()
        assert third is not None
        second.release()
        third.release()
        assert b.in_use() == 0

    def test_concurrency_lease_of_a_dead_holder_expires(self) -> None:
        clock, store = self._setup()
        limit = ConcurrencyLimit(1, lease=30.0, name="dead", store=store, clock=clock)  # type: ignore[arg-type]
        assert limit.try_hold() is not None  # never released
        clock.advance(10.0)
        assert limit.try_hold() is None
        clock.advance(20.0)
        lease = limit.try_hold()
        assert lease is not None
        lease.release()

    def test_concurrency_async_holds_and_releases(self) -> None:
        clock, store = self._setup()
        limit = ConcurrencyLimit(2, lease=30.0, name="aorg", store=store, clock=clock)  # type: ignore[arg-type]

        async def run() -> None:
            first = await limit.hold_async(timeout=0.0)
            async with await limit.hold_async(timeout=0.0):
                assert limit.in_use() == 2
                try:
                    await limit.hold_async(timeout=0.0)
                except AcquireTimeout as exc:
                    assert 29.0 < exc.retry_after <= 30.0  # the first lease expires first
                else:
                    raise AssertionError("a third slot was granted")
            assert limit.in_use() == 1  # the async with gave its slot back
            await first.release_async()
            await first.release_async()  # a second release does nothing
            assert limit.in_use() == 0
            kept = await limit.hold_async()  # never released: its lease expires 30 s on
            clock.advance(10.0)
            await limit.hold_async()
            began = clock.now()
            last = await limit.hold_async(timeout=60.0)  # waits for the first lease to expire
            assert 20.0 <= clock.now() - began <= 20.0 + limit.poll + 1e-6
            await last.release_async()
            assert kept is not last and limit.in_use() == 1

        asyncio.run(run())

    def test_concurrency_threads_never_exceed_the_limit(self) -> None:
        clock, store = self._setup()
        limit = ConcurrencyLimit(3, lease=3600.0, name="race", store=store, clock=clock,  # type: ignore[arg-type]
                                 poll=0.001)
        inside = 0
        most = 0
        lock = threading.Lock()

        def worker() -> None:
            nonlocal inside, most
            for _ in range(4):
                with limit.hold():
                    with lock:
                        inside += 1
                        most = max(most, inside)
                    with lock:
                        inside -= 1

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 1 <= most <= 3
        assert limit.in_use() == 0
