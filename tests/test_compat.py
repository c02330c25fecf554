"""ratewindow.compat.ParallelProcessor: the seed pipelines' calls, unchanged, on the executor."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from ratewindow import CircuitOpen, DailyQuota, Limits, QuotaExhausted, Retry, SlidingWindow
from ratewindow.compat import ParallelProcessor

FAST_RETRY = Retry(backoff=0.001, jitter=False)


@pytest.fixture(autouse=True)
def _no_threads_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) == before


def test_process_batch_as_the_seed_document_calls_it() -> None:
    processor = ParallelProcessor(max_requests_per_10s=170, progress=False)
    engagements = [{"id": n} for n in range(30)]
    associations = processor.process_batch(
        items=engagements,
        func=lambda eng: {"engagement": eng["id"], "contacts": [eng["id"] * 2]},
        desc="Fetching CALL associations",
    )
    assert associations == [{"engagement": n, "contacts": [n * 2]} for n in range(30)]
    assert len(processor.last_outcomes) == 30 and all(o.ok for o in processor.last_outcomes)


def test_default_limits_are_the_seed_settings() -> None:
    processor = ParallelProcessor()
    assert isinstance(processor.limiter, Limits)
    window, daily = processor.limiter.limiters
    assert isinstance(window, SlidingWindow) and (window.limit, window.window) == (170, 10.0)
    assert isinstance(daily, DailyQuota) and daily.limit == 625_000
    assert isinstance(ParallelProcessor(190, daily_limit=None).limiter, SlidingWindow)
    assert repr(processor) == "ParallelProcessor(max_requests_per_10s=170, daily_limit=625000, max_workers=None)"


def test_a_failed_item_yields_none_and_one_error_line(caplog: pytest.LogCaptureFixture) -> None:
    processor = ParallelProcessor(progress=False, retry=FAST_RETRY)
    tries: dict[int, int] = {}

    def fetch(n: int) -> int:
        tries[n] = tries.get(n, 0) + 1
        if n == 2:
            raise ValueError("404 Not Found")
        if n == 4 and tries[n] == 1:
            raise ConnectionError("reset by peer")  # retried, then fine
        return n

    with caplog.at_level(logging.ERROR, logger="ratewindow"):
        results = processor.process_batch(items=range(6), func=fetch, desc="Forms")
    assert results == [0, 1, None, 3, 4, 5]
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert line == "Forms: item 2 (2) failed after 1 attempt(s): ValueError: 404 Not Found"
    assert isinstance(processor.last_outcomes[2].error, ValueError)
    stats = processor.get_stats()
    assert (stats["total_requests"], stats["successful"], stats["failed"], stats["retries"]) == (7, 5, 1, 1)


def test_daily_limit_reached_yields_none_for_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    processor = ParallelProcessor(daily_limit=5, max_workers=2, progress=False)
    with caplog.at_level(logging.WARNING, logger="ratewindow"):
        results = processor.process_batch(items=range(8), func=lambda n: n)
    # Two workers: which five items drew the five units depends on thread scheduling.
    assert sorted(r for r in results if r is not None) == [r for r in results if r is not None]
    assert [r for r in results if r is not None] == [i for i, r in enumerate(results) if r is not None]
    assert sum(r is not None for r in results) == 5
    assert all(isinstance(o.error, QuotaExhausted) for o in processor.last_outcomes if not o.ok)
    assert "Processing: 3 of 8 item(s) not run: quota 'burst+daily' exhausted" in caplog.text
    assert processor.get_stats()["not_run"] == 3


def test_too_many_failures_stop_the_batch() -> None:
    processor = ParallelProcessor(max_workers=1, progress=False, retry=Retry(attempts=1))

    def always_fails(n: int) -> int:
        raise RuntimeError("API down")

    assert processor.process_batch(items=range(15), func=always_fails) == [None] * 15
    assert sum(isinstance(o.error, CircuitOpen) for o in processor.last_outcomes) == 5


def test_stats_accumulate_over_batches() -> None:
    processor = ParallelProcessor(max_requests_per_10s=10, daily_limit=None, progress=False)
    processor.process_batch(items=range(4), func=lambda n: n)
    processor.process_batch(items=range(4), func=lambda n: n)
    stats = processor.get_stats()
    assert stats["total_requests"] == 8 and stats["successful"] == 8
    assert stats["max_requests_in_window"] == 4 and stats["max_window_usage"] == 0.4
    assert stats["average_throughput"] > 0 and stats["workers"] >= 1
    assert processor.limiter.available() == 2  # both batches drew on one limiter


def test_bad_max_workers() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ParallelProcessor(max_workers=0)
