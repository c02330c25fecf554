"""AsyncRateLimitedExecutor: the executor's semantics on one event loop (ManualClock, plus one
real-time cancellation test)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _executor_helpers import ApiError, RecordingWindow

from ratewindow import (
    AsyncRateLimitedExecutor,
    CircuitOpen,
    DailyQuota,
    JournalError,
    QuotaExhausted,
    Retry,
    RetryLater,
    SlidingWindow,
)
from ratewindow.testing import ManualClock

T = TypeVar("T")
NO_JITTER = Retry(jitter=False)
MIDNIGHT = dt.datetime(2026, 5, 4, tzinfo=dt.timezone.utc).timestamp()
START = MIDNIGHT + 3600.0


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def executor(limiter: object, clock: ManualClock, **options: Any) -> AsyncRateLimitedExecutor:
    options.setdefault("progress", False)
    options.setdefault("retry", NO_JITTER)
    return AsyncRateLimitedExecutor(limiter, clock=clock, **options)  # type: ignore[arg-type]


def recorder(clock: ManualClock, fail: dict[int, list[BaseException]] | None = None
             ) -> tuple[Callable[[int], Awaitable[int]], dict[int, list[float]]]:
    times: dict[int, list[float]] = {}
    failures = fail or {}

    async def call(item: int) -> int:
        times.setdefault(item, []).append(clock.now() - START)
        errors = failures.get(item)
        if errors:
            raise errors.pop(0)
        await asyncio.sleep(0)
        return item * 10

    return call, times


def test_map_in_order_with_exact_permit_times() -> None:
    clock = ManualClock(START)
    call, times = recorder(clock)

    async def main() -> list[int | None]:
        async with executor(SlidingWindow(2, 1.0, clock=clock), clock, max_concurrency=1) as ex:
            return [o.value for o in await ex.map(call, range(6))]

    assert run(main()) == [0, 10, 20, 30, 40, 50]
    assert [times[i][0] for i in range(6)] == [0.0, 0.0, 1.0, 1.0, 2.0, 2.0]


def test_retry_schedule_and_retry_after() -> None:
    clock = ManualClock(START)
    call, times = recorder(clock, {0: [ConnectionError(), ApiError(503), TimeoutError()], 1: [RetryLater(7.0)]})

    async def main() -> list[int]:
        ex = executor(None, clock, max_concurrency=1)
        return [o.attempts for o in await ex.map(call, [0, 1])]

    assert run(main()) == [4, 2]
    assert times[0] == [0.0, 0.5, 1.5, 3.5]
    assert times[1][1] - times[1][0] == 7.0


def test_one_429_pauses_every_task() -> None:
    clock = ManualClock(START)
    limiter = RecordingWindow(1000, 60.0, clock=clock)
    starts: list[tuple[int, float]] = []
    seen: set[int] = set()

    async def main() -> list[bool]:
        all_started = asyncio.Event()
        paused = asyncio.Event()
        original = limiter.pause

        def pause(seconds: float) -> None:
            original(seconds)
            paused.set()

        limiter.pause = pause  # type: ignore[method-assign]

        async def call(item: int) -> int:
            starts.append((item, clock.now() - START))
            first = item not in seen
            seen.add(item)
            if item < 4 and first:
                if len(starts) == 4:
                    all_started.set()
                await all_started.wait()  # four calls in flight at once
                if item == 0:
                    raise ApiError(429, retry_after=10.0)
                await paused.wait()
            return item

        ex = executor(limiter, clock, max_concurrency=4)
        return [o.ok for o in await ex.map(call, range(12))]

    assert all(run(main()))
    assert sorted(item for item, _ in starts[:4]) == [0, 1, 2, 3] and len(starts) == 13
    assert [(item, t) for item, t in starts[4:] if t < 10.0] == []
    assert limiter.pauses == [10.0]


def test_circuit_breaker() -> None:
    clock = ManualClock(START)
    call, times = recorder(clock, {i: [ValueError(str(i))] for i in range(2, 10)})

    async def main() -> list[Any]:
        return await executor(None, clock, max_concurrency=1, breaker=2).map(call, range(10))

    outcomes = run(main())
    assert [o.ok for o in outcomes[:2]] == [True, True]
    assert [str(o.error) for o in outcomes[2:4]] == ["2", "3"]
    assert all(isinstance(o.error, CircuitOpen) and o.attempts == 0 for o in outcomes[4:])
    assert sorted(times) == [0, 1, 2, 3]


def test_quota_exhausted_then_resumed_from_the_journal(tmp_path: Path) -> None:
    clock = ManualClock(START)
    quota = DailyQuota(4, clock=clock)
    journal = tmp_path / "run.jsonl"
    call, times = recorder(clock)

    async def batch() -> list[Any]:
        return await executor(quota, clock, max_concurrency=3).map(call, range(6), journal=journal)

    first = run(batch())
    assert [o.ok for o in first] == [True] * 4 + [False] * 2
    assert all(isinstance(o.error, QuotaExhausted) and o.error.retry_at == MIDNIGHT + 86_400.0
               for o in first[4:])
    clock.advance(86_400.0)
    second = run(batch())
    assert [o.resumed for o in second] == [True] * 4 + [False] * 2 and all(o.ok for o in second)
    assert all(len(t) == 1 for t in times.values()) and sorted(times) == list(range(6))


def test_a_value_the_journal_cannot_hold_fails_only_its_item(tmp_path: Path) -> None:
    clock = ManualClock(START)
    journal = tmp_path / "run.jsonl"

    async def fetch(item: int) -> object:
        await asyncio.sleep(0)
        if item == 1:
            return os.fsdecode(b"\xff")  # a lone surrogate: escaped, kept
        if item == 3:
            return {"when": dt.datetime(2026, 5, 4), "tags": {"b", "a"}}  # converted
        return object() if item == 5 else item

    async def batch() -> list[Any]:
        return await executor(None, clock, max_concurrency=3).map(fetch, range(8), journal=journal)

    first = run(batch())
    assert [o.ok for o in first] == [i != 5 for i in range(8)]
    assert isinstance(first[5].error, JournalError) and first[5].error.value_type == "object"
    records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["key"] for r in records) == list(range(8))
    second = run(batch())
    assert [o.resumed for o in second] == [i != 5 for i in range(8)]
    assert second[1].value == os.fsdecode(b"\xff")
    assert second[3].value == {"when": "2026-05-04T00:00:00", "tags": ["a", "b"]}


def test_endless_async_source_is_pulled_lazily() -> None:
    clock = ManualClock(START)
    pulled = 0

    async def endless() -> AsyncIterator[int]:
        nonlocal pulled
        n = 0
        while True:
            pulled += 1
            yield n
            n += 1

    async def double(n: int) -> int:
        return 2 * n

    async def main() -> int:
        ex = executor(SlidingWindow(1000, 1.0, clock=clock), clock, max_concurrency=5)
        stream = ex.imap(double, endless())
        taken = 0
        async for _ in stream:
            taken += 1
            if taken == 50:
                break
        await stream.aclose()  # type: ignore[attr-defined]
        assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left running
        return taken

    assert run(main()) == 50
    assert pulled <= 50 + 5


def test_a_function_that_is_not_async_fails_its_items() -> None:
    clock = ManualClock(START)

    async def main() -> list[Any]:
        return await executor(None, clock, breaker=None).map(lambda n: n, range(3))  # type: ignore[arg-type, return-value]

    outcomes = run(main())
    assert all(isinstance(o.error, TypeError) and o.attempts == 1 for o in outcomes)
    assert "awaitable" in str(outcomes[0].error)


def test_closed_executor_and_bad_arguments() -> None:
    clock = ManualClock(START)

    async def main() -> None:
        async with executor(None, clock) as ex:
            pass
        with pytest.raises(RuntimeError, match="closed"):
            ex.imap(asyncio.sleep, [1])

    run(main())
    with pytest.raises(ValueError, match="max_concurrency"):
        AsyncRateLimitedExecutor(None, max_concurrency=0)
    assert AsyncRateLimitedExecutor(SlidingWindow(100_000, 1.0)).stats.workers == 512


@pytest.mark.realtime
def test_cancel_lets_calls_in_flight_finish_and_gives_bookings_back(tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    limiter = SlidingWindow(5, 1.0)
    finished: list[int] = []

    async def work(item: int) -> int:
        await asyncio.sleep(0.2)
        finished.append(item)
        return item

    async def main() -> None:
        ex = AsyncRateLimitedExecutor(limiter, max_concurrency=10, progress=False)
        task = asyncio.create_task(ex.map(work, range(100), journal=journal))
        await asyncio.sleep(0.1)  # 5 calls in flight, 5 items waiting for permits due at 1 s
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert asyncio.all_tasks() == {asyncio.current_task()}

    run(main())
    keys = sorted(json.loads(line)["key"] for line in journal.read_text().splitlines())
    assert keys == sorted(finished) == [0, 1, 2, 3, 4]  # in flight: finished and journaled
    assert 0.5 < limiter.wait_time() <= 0.9  # the five bookings at 1 s were given back


def test_refused_calls_count_towards_the_budget_and_warn_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(START)
    call, _times = recorder(clock, {i: [ApiError(429, retry_after=0.0)] for i in range(0, 40, 4)})

    async def main() -> AsyncRateLimitedExecutor:
        async with executor(SlidingWindow(1_000, 1.0, clock=clock), clock, max_concurrency=1) as ex:
            await ex.map(call, range(40))  # 10 of 50 calls refused
            return ex

    with caplog.at_level(logging.WARNING, logger="ratewindow"):
        ex = run(main())
    assert (ex.stats.calls, ex.stats.rate_limited, ex.stats.refusal_share) == (50, 10, 0.2)
    warnings = [r.getMessage() for r in caplog.records if "refusal_budget" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].startswith("executor: 5 of 21 calls of this batch (23.8 %)")
