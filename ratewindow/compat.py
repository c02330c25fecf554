"""Migration from the hand-written ``ParallelProcessor`` of many HubSpot pipelines.

Replace ``from utils.parallel_processor import ParallelProcessor`` with
``from ratewindow.compat import ParallelProcessor``; calls stay the same::

    processor = ParallelProcessor(max_requests_per_10s=170)
    results = processor.process_batch(
        items=engagements,
        func=lambda eng: get_engagement_associations(eng["id"]),
        desc="Fetching associations",
    )

What changes underneath: the limit is exact (a sliding log, not a lock held while sleeping),
the daily limit is enforced, 429 responses pause every worker and are retried with back-off,
connection errors and 5xx are retried, the worker count follows measured latency, and one item's
failure never stops the batch. For new code, use ``RateLimitedExecutor`` directly: it returns an
``Outcome`` per item and can resume a killed run from a journal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ratewindow._daily_quota import DailyQuota
from ratewindow._errors import CircuitOpen, QuotaExhausted
from ratewindow._executor import _DEFAULT_RETRY, RateLimitedExecutor
from ratewindow._limiter import _BaseLimiter
from ratewindow._limits import Limits
from ratewindow._outcome import ExecutorStats, Outcome
from ratewindow._retry import Retry
from ratewindow._sliding_window import SlidingWindow
from ratewindow._validate import as_store
from ratewindow.stores._protocol import Store

__all__ = ["ParallelProcessor"]

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger("ratewindow")
_WINDOW = 10.0  # seconds: HubSpot's burst window
_MARGIN = 0.05  # seconds each request is held beyond the window, for jitter between us and the server
_ITEM_TEXT = 80  # characters of an item shown in a log line


class ParallelProcessor:
    """Rate-limited parallel ``process_batch``, as in the pipelines' ``utils/parallel_processor``.

    Built on ``RateLimitedExecutor`` with ``Limits(SlidingWindow(max_requests_per_10s, 10.0,
    margin=0.05), DailyQuota(daily_limit))``. Each request is counted for 10.05 s, so that jitter
    between our clock and the server's cannot make the server count more than
    ``max_requests_per_10s`` in one of its windows. ``170`` keeps the old safety buffer below
    HubSpot's 190 per 10 s; with an exact limiter you may set 190 (or share one limiter between
    processes through a Redis ``store``).

    For single calls outside a batch (the old ``_make_api_call_with_rate_limit``), take a permit
    from the same limiter: ``processor.limiter.acquire()`` before the call.

    Args:
        max_requests_per_10s: requests allowed in any 10 seconds; a positive int.
        daily_limit: requests per day (resetting at midnight in ``tz``); None for no daily limit.
        max_workers: threads; None sizes them from the rate and measured latency.
        tz: IANA time zone of the daily reset (HubSpot: the account's time zone).
        store: where the limiter's state lives, a store or a store URL; share a Redis store to
            limit many processes together. Default: this process's memory.
        retry: the retry policy for failed calls.
        progress: show a tqdm bar per batch.

    Raises:
        ValueError, TypeError: a bad argument, named in the message.

    >>> from ratewindow.compat import ParallelProcessor
    >>> processor = ParallelProcessor(max_requests_per_10s=170, progress=False)
    >>> processor.process_batch(items=[1, 2, 3], func=lambda n: n * n, desc="Squares")
    [1, 4, 9]
    """

    def __init__(
        self,
        max_requests_per_10s: int = 170,
        daily_limit: int | None = 625_000,
        max_workers: int | None = None,
        *,
        tz: str = "UTC",
        store: Store | str | None = None,
        retry: Retry = _DEFAULT_RETRY,
        progress: bool = True,
    ) -> None:
        store = as_store(store)  # once: a URL would otherwise build one store per member
        members: list[_BaseLimiter] = [
            SlidingWindow(max_requests_per_10s, _WINDOW, margin=_MARGIN, name="burst", store=store)
        ]
        if daily_limit is not None:
            members.append(DailyQuota(daily_limit, tz=tz, name="daily", store=store))
        #: Requests allowed in any 10 seconds.
        self.max_requests_per_10s = max_requests_per_10s
        #: Requests allowed per day, or None.
        self.daily_limit = daily_limit
        #: The limiter every request takes a permit from; use it for single calls too.
        self.limiter: _BaseLimiter = Limits(*members) if len(members) > 1 else members[0]
        #: Threads per batch, or None to size them from the rate and latency.
        self.max_workers = max_workers
        #: One ``Outcome`` per item of the last batch: values, errors, attempts.
        self.last_outcomes: list[Outcome[Any, Any]] = []
        self._retry = retry
        self._progress = progress
        self._totals: list[ExecutorStats] = []
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(f"max_workers must be None or a positive int, got {max_workers!r}")

    def process_batch(self, items: Iterable[T], func: Callable[[T], R], desc: str = "Processing"
                      ) -> list[R | None]:
        """Call ``func(item)`` for every item in parallel, within the limits; results in input order.

        A failed item (after its retries) yields None in its place and one ERROR log line on the
        ``"ratewindow"`` logger; items never run (daily limit reached, or too many failures in a
        row) yield None and one WARNING line for the batch. ``last_outcomes`` tells them apart
        from a function that returned None, and holds the errors.

        Raises:
            KeyboardInterrupt: after the requests in flight finished.
        """
        with RateLimitedExecutor(self.limiter, max_workers=self.max_workers, retry=self._retry,
                                 progress=self._progress) as executor:
            try:
                outcomes = executor.map(func, items, desc=desc)
            finally:
                self._totals.append(executor.stats)
        self.last_outcomes = outcomes
        not_run: list[Outcome[T, R]] = []
        for outcome in outcomes:
            if outcome.ok:
                continue
            if outcome.attempts == 0 and isinstance(outcome.error, (QuotaExhausted, CircuitOpen)):
                not_run.append(outcome)
                continue
            text = repr(outcome.item)
            if len(text) > _ITEM_TEXT:
                text = text[: _ITEM_TEXT - 3] + "..."
            _log.error("%s: item %d (%s) failed after %d attempt(s): %s: %s", desc, outcome.index, text,
                       outcome.attempts, type(outcome.error).__name__, outcome.error)
        if not_run:
            _log.warning("%s: %d of %d item(s) not run: %s", desc, len(not_run), len(outcomes),
                         not_run[0].error)
        return [outcome.value if outcome.ok else None for outcome in outcomes]

    def get_stats(self) -> dict[str, Any]:
        """Counters over every batch so far, as a dict.

        Keys: ``total_requests`` (calls made, retries included), ``successful``, ``failed``,
        ``not_run``, ``retries``, ``rate_limited`` (429 responses), ``max_requests_in_window``
        (the most request starts seen in any 10 s, within one batch), ``max_window_usage``
        (that over ``max_requests_per_10s``), ``average_throughput`` (items per second),
        ``elapsed_seconds``, ``workers`` (threads in the last batch).
        """
        totals = self._totals
        peak = max((s.window_peaks.get(_WINDOW, 0) for s in totals), default=0)
        elapsed = sum(s.elapsed for s in totals)
        done = sum(s.succeeded + s.failed for s in totals)
        return {
            "total_requests": sum(s.calls for s in totals),
            "successful": sum(s.succeeded for s in totals),
            "failed": sum(s.failed for s in totals),
            "not_run": sum(s.not_run for s in totals),
            "retries": sum(s.retries for s in totals),
            "rate_limited": sum(s.rate_limited for s in totals),
            "max_requests_in_window": peak,
            "max_window_usage": peak / self.max_requests_per_10s,
            "average_throughput": done / elapsed if elapsed > 0 else 0.0,
            "elapsed_seconds": elapsed,
            "workers": totals[-1].workers if totals else 0,
        }

    def __repr__(self) -> str:
        return (
            f"ParallelProcessor(max_requests_per_10s={self.max_requests_per_10s}, "
            f"daily_limit={self.daily_limit}, max_workers={self.max_workers})"
        )
