"""ConcurrencyLimit: exact slot counts, expiring leases, waiting, threads."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from ratewindow import AcquireTimeout, ConcurrencyLimit, MemoryStore
from ratewindow.testing import ManualClock


def test_slots_are_exact_and_released() -> None:
    clock = ManualClock()
    limit = ConcurrencyLimit(2, clock=clock)
    first, second = limit.try_hold(), limit.try_hold()
    assert first is not None and second is not None
    assert limit.try_hold() is None
    assert (limit.in_use(), limit.available()) == (2, 0)
    first.release()
    first.release()  # idempotent
    assert limit.in_use() == 1
    with limit.hold() as third:
        assert limit.in_use() == 2
        assert "released=False" in repr(third)
    assert limit.in_use() == 1


def test_a_dead_holders_lease_expires() -> None:
    clock = ManualClock()
    limit = ConcurrencyLimit(1, lease=30.0, clock=clock)
    assert limit.try_hold() is not None  # never released: its holder "died"
    with pytest.raises(AcquireTimeout) as info:
        limit.hold(timeout=10.0)
    assert info.value.retry_after == pytest.approx(20.0)  # polled up to the timeout; the lease ends at t=30
    assert limit.hold(timeout=25.0) is not None  # waits until the lease expires at t=30
    assert clock.now() == pytest.approx(30.0)  # reached in polls of at most 0.05 s


def test_same_name_and_store_share_slots() -> None:
    store = MemoryStore()
    a = ConcurrencyLimit(1, name="org", store=store)
    b = ConcurrencyLimit(1, name="org", store=store)
    c = ConcurrencyLimit(1, name="other", store=store)
    lease = a.try_hold()
    assert lease is not None
    assert b.try_hold() is None
    assert c.try_hold() is not None
    lease.release()
    assert b.try_hold() is not None


def test_threads_never_exceed_the_limit() -> None:
    limit = ConcurrencyLimit(3, poll=0.001)
    inside = 0
    most = 0
    lock = threading.Lock()

    def worker() -> None:
        nonlocal inside, most
        for _ in range(5):
            with limit.hold(timeout=30):
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.002)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 3
    assert limit.in_use() == 0


def test_hold_async() -> None:
    clock = ManualClock()
    limit = ConcurrencyLimit(1, lease=5.0, clock=clock)

    async def main() -> None:
        assert await limit.hold_async() is not None
        await limit.hold_async(timeout=10.0)  # the first lease expires at t=5

    asyncio.run(main())
    assert clock.now() == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be a positive integer, got 0"),
        ({"limit": 2, "lease": 0}, "lease must be a finite number > 0, got 0"),
        ({"limit": 2, "poll": -1}, "poll must be a finite number > 0, got -1"),
        ({"limit": 2, "name": ""}, "name must be a non-empty string, got ''"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ConcurrencyLimit(**kwargs)


def test_store_without_leases_is_refused() -> None:
    with pytest.raises(TypeError, match="store must be a store that can hold ConcurrencyLimit leases"):
        ConcurrencyLimit(1, store=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout must be None or a number of seconds >= 0, got -1"):
        ConcurrencyLimit(1).hold(timeout=-1)
