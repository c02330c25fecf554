"""What the API's server sees from asyncio: thousands of tasks in waves, default arguments.

Each task records the time right after ``await acquire_async()`` returned (the earliest its
request could start). One event loop resumes a wave of tasks one after another, so the last task
of a wave starts milliseconds after the first; before grants were confirmed at resume time those
late starts crowded the next window (1,609 in one 1 s interval for a limit of 1,000). Now no
1 s interval holds more than the limit, and the run still finishes close to the least time.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from _executor_helpers import peak_in_window

from ratewindow import RedisStore, SlidingWindow, WallClock
from ratewindow._clock import GRACE

pytestmark = pytest.mark.realtime


async def waves(limiter: SlidingWindow, tasks: int) -> list[float]:
    starts: list[float] = []

    async def one() -> None:
        await limiter.acquire_async()
        starts.append(time.time())

    await asyncio.gather(*(one() for _ in range(tasks)))
    return sorted(starts)


def test_5000_tasks_in_waves_on_memory() -> None:
    limiter = SlidingWindow(1000, 1.0)
    starts = asyncio.run(waves(limiter, 5000))
    assert len(starts) == 5000
    assert peak_in_window(starts, 1.0) == 1000
    # The 5,000th unit can start 4 held windows after the first: 4.04 s. A wave of 1,000 tasks
    # takes the loop a few milliseconds to resume, and each wave's late starts push the next.
    least = 4 * (1.0 + GRACE)
    assert least <= starts[-1] - starts[0] <= least + 0.6


@pytest.mark.redis
def test_2000_tasks_in_waves_on_redis(redis_url: str, prefix: str) -> None:
    async def run() -> list[float]:
        store = RedisStore(redis_url, prefix=f"{prefix}{uuid.uuid4().hex[:6]}:")
        try:
            limiter = SlidingWindow(500, 1.0, store=store, clock=WallClock())
            return await waves(limiter, 2000)
        finally:
            await store.aclose()

    starts = asyncio.run(run())
    assert len(starts) == 2000
    assert peak_in_window(starts, 1.0) == 500
    least = 3 * (1.0 + GRACE)
    assert least <= starts[-1] - starts[0] <= least + 1.5
