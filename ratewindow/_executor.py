"""``RateLimitedExecutor``: run a function over many items on a thread pool, one permit per call.

How it is built, for the reader of this module:

- The caller's thread runs the *dispatch loop* (``_iterate``): it pulls items from the input
  only while fewer than ``workers`` are in flight, checks the journal, hands tasks to the pool
  and receives outcomes. Memory is bounded by the number of workers, whatever the input size,
  and the user's iterable is only ever touched by the caller's thread.
- Worker threads (``_work``) take one permit per attempt, call the function, classify failures
  (``Retry``), sleep back-offs, and report one outcome per item. Their waits are interruptible
  (a ``threading.Event``), so stopping never waits for a long permit or back-off. Between tasks a
  worker holds its executor only through a weak reference (as the standard library's
  ``ThreadPoolExecutor`` does), so an executor dropped without ``close()`` is collected and its
  workers end.
- A permit is taken with ``limiter.reserve()`` and waited for here, not with
  ``limiter.acquire(timeout=max_wait)``: ``acquire`` sleeps inside the limiter, where Ctrl-C
  could not cut a 60 s wait short. A booking further away than ``max_wait`` is cancelled at once
  (nothing stays recorded), and so is one whose wait is cut short by a stop. The booking is
  confirmed as the call starts (``Reservation.confirm``): its unit counts from the real start, so
  a worker that woke late never crowds a window at the server, and the confirmation tells the
  limiter's observers of the grant (``Observer``; a cancelled booking is never told). After the
  wait, a pause begun meanwhile (a 429 seen by another worker) is waited out and a fresh permit
  taken.
- ``_Engine`` holds what the threaded and the asyncio executors share: the failure decisions,
  the shared pause, the circuit breaker, worker sizing, statistics, journal and progress bar.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import random
import signal
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from operator import attrgetter
from types import FrameType, TracebackType
from typing import Any, Generic, TypeVar

from ratewindow._budget import DEFAULT_REFUSAL_BUDGET, MIN_CALLS, check_refusal_budget, share, tell_response
from ratewindow._clock import Clock, MonotonicClock, WallClock
from ratewindow._daily_quota import DailyQuota
from ratewindow._errors import AcquireTimeout, CircuitOpen, JournalError, QuotaExhausted
from ratewindow._journal import Journal, key_text, short_repr
from ratewindow._limiter import Limiter, _BaseLimiter
from ratewindow._limits import Limits
from ratewindow._outcome import ExecutorStats, Outcome
from ratewindow._progress import Progress
from ratewindow._retry import Retry, is_rate_limit, retry_after_of
from ratewindow._sliding_window import SlidingWindow
from ratewindow._token_bucket import TokenBucket

__all__ = ["RateLimitedExecutor"]

T = TypeVar("T")
R = TypeVar("R")

_log = logging.getLogger("ratewindow")

_DEFAULT_RETRY = Retry()
_TICK = 0.2  # seconds the dispatch loop waits for an outcome before redrawing the bar
_HEADROOM = 1.25  # Little's law: workers = rate x latency x headroom + 1
_PRIOR_LATENCY = 0.02  # seconds assumed per call until one is measured: start small, then grow
_SAMPLES_BEFORE_LOG = 10  # calls measured before the sizing is logged
_MAX_THREADS = 64

# What became of an item, as reported by a worker.
OK = "ok"
FAILED = "failed"
NOT_RUN = "not_run"
STOPPED = "stopped"  # the batch was stopped (Ctrl-C, generator closed): nothing to report
_COUNTERS = {OK: "succeeded", FAILED: "failed", NOT_RUN: "not_run"}
_TaskTuple = tuple["_Batch[Any, Any]", int, Any, object]  # (batch, index, item, journal key)


# -- what the limiter tells us ------------------------------------------------------------------
def _members(limiter: Limiter | None) -> tuple[object, ...]:
    if isinstance(limiter, Limits):
        return limiter.limiters
    return () if limiter is None else (limiter,)


def rate_of(limiter: Limiter | None) -> float | None:
    """Sustained permits per second the limiter allows, or None if unknown.

    A ``Limits`` gives its slowest member, not counting daily quotas (they bound the day, not
    the second) unless they are all it has.
    """
    rates: list[float] = []
    daily: list[float] = []
    for member in _members(limiter):
        if isinstance(member, SlidingWindow):
            rates.append(member.limit / (member.window + member.margin))
        elif isinstance(member, TokenBucket):
            rates.append(member.rate)
        elif isinstance(member, DailyQuota):
            daily.append(member.limit / 86_400.0)
    if rates:
        return min(rates)
    return min(daily) if daily else None


def windows_of(limiter: Limiter | None) -> list[float]:
    """The window lengths (seconds) of the limiter's sliding windows, shortest first."""
    return sorted({m.window for m in _members(limiter) if isinstance(m, SlidingWindow)})


def default_clock(limiter: Limiter | None) -> Clock:
    """The limiter's own clock (so reservations and sleeps agree), else ``MonotonicClock()``."""
    if isinstance(limiter, _BaseLimiter):
        return limiter._clock
    return MonotonicClock()


# -- statistics ---------------------------------------------------------------------------------
class _Peak:
    """The most call starts in any half-open interval of ``window`` seconds, kept as a stream."""

    __slots__ = ("peak", "starts", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self.starts: deque[float] = deque()
        self.peak = 0

    def add(self, t: float) -> None:
        starts = self.starts
        while starts and starts[0] + self.window <= t:
            starts.popleft()
        starts.append(t)
        if len(starts) > self.peak:
            self.peak = len(starts)


class _Telemetry:
    """Counters shared by workers and dispatch loops; one lock, held for microseconds."""

    def __init__(self, windows: list[float]) -> None:
        self.lock = threading.Lock()
        self.succeeded = 0
        self.failed = 0
        self.not_run = 0
        self.resumed = 0
        self.calls = 0
        self.retries = 0
        self.rate_limited = 0
        self.pauses = 0
        self.permit_wait = 0.0
        self.elapsed = 0.0
        self._active = 0
        self._active_since = 0.0
        self._peaks = [_Peak(w) for w in windows]

    def start(self, clock: Clock, retry: bool) -> float:
        """Count a call starting now; returns the start time (read under the lock, so the
        recorded starts are in order)."""
        with self.lock:
            now = clock.now()
            self.calls += 1
            if retry:
                self.retries += 1
            for peak in self._peaks:
                peak.add(now)
            return now

    def add(self, name: str, amount: float = 1) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + amount)

    def batch_started(self, now: float) -> None:
        with self.lock:
            if self._active == 0:
                self._active_since = now
            self._active += 1

    def batch_ended(self, now: float) -> None:
        with self.lock:
            self._active -= 1
            if self._active == 0:
                self.elapsed += max(0.0, now - self._active_since)

    def snapshot(self, now: float, workers: int) -> ExecutorStats:
        with self.lock:
            running = max(0.0, now - self._active_since) if self._active else 0.0
            return ExecutorStats(
                succeeded=self.succeeded,
                failed=self.failed,
                not_run=self.not_run,
                resumed=self.resumed,
                calls=self.calls,
                retries=self.retries,
                rate_limited=self.rate_limited,
                pauses=self.pauses,
                permit_wait=self.permit_wait,
                elapsed=self.elapsed + running,
                workers=workers,
                window_peaks={p.window: p.peak for p in self._peaks},
            )


class _Sizer:
    """How many workers to run: fixed, or by Little's law from the rate and measured latency."""

    def __init__(self, fixed: int | None, rate: float | None, cap: int, noun: str, size_name: str) -> None:
        self._fixed = fixed
        self._rate = rate
        self._cap = cap
        self._noun = noun
        self._size_name = size_name  # the argument that fixes the size, for the log
        self._lock = threading.Lock()
        self._latency = _PRIOR_LATENCY
        self._samples = 0
        self._logged = False
        if fixed is not None:
            self.target = fixed
        elif rate is None:
            self.target = min(cap, 32, (os.cpu_count() or 1) + 4)
        else:
            self.target = self._size(_PRIOR_LATENCY)

    def _size(self, latency: float) -> int:
        assert self._rate is not None
        wanted = math.ceil(self._rate * latency * _HEADROOM) + 1
        return max(1, min(self._cap, wanted))

    def observe(self, latency: float) -> None:
        """Feed one measured call duration (seconds)."""
        if self._fixed is not None or self._rate is None:
            return
        with self._lock:
            self._samples += 1
            if self._samples == 1:
                self._latency = latency
            else:  # exponentially weighted: follows latency that drifts, ignores one slow call
                self._latency += 0.1 * (latency - self._latency)
            target = self._size(self._latency)
            changed = target != self.target
            self.target = target
            if not self._logged and self._samples >= _SAMPLES_BEFORE_LOG:
                self._logged = True
                _log.info(
                    "executor: %d %s for %.4g calls/s at %.3g s per call "
                    "(Little's law: rate x latency x %.2g + 1, at most %d)",
                    target, self._noun, self._rate, self._latency, _HEADROOM, self._cap,
                )
            elif changed and self._logged:
                _log.debug("executor: now %d %s (%.3g s per call)", target, self._noun, self._latency)

    def log_fixed(self) -> None:
        if self._logged or (self._fixed is None and self._rate is not None):
            return
        self._logged = True
        # A fixed size may come from an adapter that sized it (and says how), not from the user.
        why = (f"fixed by {self._size_name}={self._fixed}, not sized from the rate" if self._fixed is not None
               else "the limiter's rate is unknown")
        _log.info("executor: %d %s (%s)", self.target, self._noun, why)


# -- one map/imap call --------------------------------------------------------------------------
class _Batch(Generic[T, R]):
    """The state of one ``map``/``imap`` call, shared by its dispatch loop and the workers."""

    def __init__(self, func: Callable[[T], Any], key: Callable[[T], object] | None, breaker: int | None,
                 journal: Journal | None, progress: Progress) -> None:
        self.func = func
        self.key = key
        self.journal = journal
        self.progress = progress
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.results: queue.SimpleQueue[tuple[str, Outcome[T, R] | None, object]] = queue.SimpleQueue()
        self.submitted = 0  # tasks handed to the pool (dispatch loop only)
        self.keys: set[str] = set()  # journal keys of this batch's items so far (dispatch loop only)
        self.repeated = 0  # items whose journal key an earlier item of the batch had
        self.reported = 0  # reports put on ``results`` (workers, under ``lock``)
        self._breaker = breaker
        self._consecutive = 0
        self._quota: tuple[float | None, str, BaseException] | None = None
        self._circuit: tuple[int, BaseException] | None = None
        self.calls = 0  # calls of this batch that ended (under ``lock``)
        self.refused = 0  # of those, rate-limit refusals
        self.over_budget = False  # the refusal budget warning was logged

    # circuit breaker and quota: once halted, no item of the batch starts any more
    def item_succeeded(self) -> None:
        with self.lock:
            self._consecutive = 0

    def item_failed(self, error: BaseException) -> None:
        with self.lock:
            self._consecutive += 1
            if self._breaker is not None and self._consecutive >= self._breaker and self._circuit is None:
                self._circuit = (self._consecutive, error)
                _log.error(
                    "executor: circuit open after %d consecutive failures (last: %s: %s); "
                    "the remaining items are not run",
                    self._consecutive, type(error).__name__, error,
                )

    def quota_exhausted(self, retry_at: float | None, limiter: str, cause: BaseException) -> QuotaExhausted:
        with self.lock:
            if self._quota is None:
                self._quota = (retry_at, limiter, cause)
                _log.warning(
                    "executor: no permit within max_wait (%s); the remaining items are not run; "
                    "rerun with the same journal after the reset",
                    QuotaExhausted(retry_at, limiter),
                )
        error = QuotaExhausted(retry_at, limiter)
        error.__cause__ = cause
        return error

    def not_run_error(self) -> BaseException | None:
        """A fresh error for an item that will not run, or None while the batch may go on."""
        quota, circuit = self._quota, self._circuit
        if quota is not None:
            error: BaseException = QuotaExhausted(quota[0], quota[1])
            error.__cause__ = quota[2]
            return error
        if circuit is not None:
            error = CircuitOpen(circuit[0])
            error.__cause__ = circuit[1]
            return error
        return None


class _Interrupts:
    """While a batch runs on the main thread, the first Ctrl-C asks it to stop at a safe point.

    A ``KeyboardInterrupt`` can land between any two bytecodes; landing between taking an
    outcome and journaling it would lose the outcome. So, only when Python's default SIGINT
    handler is installed (an application's own handler is left alone), the first Ctrl-C sets a
    flag and stops the workers, and the dispatch loop raises ``KeyboardInterrupt`` where nothing
    is half done. A second Ctrl-C raises at once. The previous handler is restored afterwards.
    """

    def __init__(self, batch: _Batch[Any, Any]) -> None:
        self.requested = False
        self._batch = batch
        self._previous: Any = None
        self._installed = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return
        self._previous = signal.signal(signal.SIGINT, self._handle)
        self._installed = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self._installed or self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self._batch.stop.set()  # workers stop waiting for permits and back-offs now

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed since the batch started."""
        if self.requested:
            raise KeyboardInterrupt

    def uninstall(self) -> None:
        if not self._installed:
            return
        self._installed = False
        if signal.getsignal(signal.SIGINT) == self._handle:
            signal.signal(signal.SIGINT, self._previous)


# -- what both executors share ------------------------------------------------------------------
class _Engine:
    """Configuration, decisions and bookkeeping shared by the threaded and asyncio executors."""

    _noun = "workers"  # what is sized, for log messages
    _size_name = "max_workers"  # the constructor argument that fixes it
    _cap = _MAX_THREADS

    def __init__(self, limiter: Limiter | None, *, size: int | None, retry: Retry, progress: bool,
                 clock: Clock | None, max_wait: float, breaker: int | None,
                 refusal_budget: float | None = DEFAULT_REFUSAL_BUDGET) -> None:
        if limiter is not None and not isinstance(limiter, Limiter):
            raise TypeError(f"limiter must be a ratewindow Limiter or None, got {limiter!r}")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"{self._size_name} must be None or a positive int, got {size!r}")
        if not isinstance(retry, Retry):
            raise TypeError(f"retry must be a Retry, got {retry!r}")
        if isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or not max_wait >= 0:
            raise ValueError(f"max_wait must be a number of seconds >= 0, got {max_wait!r}")
        if breaker is not None and (isinstance(breaker, bool) or not isinstance(breaker, int) or breaker < 1):
            raise ValueError(f"breaker must be None or a positive int, got {breaker!r}")
        #: Share of a batch's calls the server may refuse for its rate limit before a warning is
        #: logged (once per batch); None: never warn.
        self.refusal_budget = check_refusal_budget(refusal_budget)
        #: The limiter each call takes a permit from; None if calls take their own.
        self.limiter = limiter
        #: The retry policy.
        self.retry = retry
        #: Seconds a permit may be waited for before the remaining items are reported not run.
        self.max_wait = float(max_wait)
        #: Consecutive failed items (rate limits aside) that stop the batch; None: never stop.
        self.breaker = breaker
        self._progress = bool(progress)
        self._clock = clock if clock is not None else default_clock(limiter)
        # retry_at is Unix time: the wall clock, or the clock given (a ManualClock in tests).
        self._wall: Clock = WallClock() if isinstance(self._clock, MonotonicClock) else self._clock
        self._real_time = isinstance(self._clock, (MonotonicClock, WallClock))
        self._rng = random.Random()
        self._lock = threading.Lock()
        self._hold_until = -math.inf  # executor clock: no call starts before this (shared pause)
        self._telemetry = _Telemetry(windows_of(limiter))
        self._sizer = _Sizer(size, rate_of(limiter), self._cap, self._noun, self._size_name)

    @property
    def stats(self) -> ExecutorStats:
        """A snapshot of the counters since the executor was created."""
        return self._telemetry.snapshot(self._clock.now(), self._sizer.target)

    # -- the shared pause -----------------------------------------------------------------------
    def _pause(self, seconds: float) -> None:
        """Stop every worker (and, through the limiter's store, every process) for ``seconds``.

        A pause that would end less than 10 % of its length (at least 0.05 s, at most 1 s) after
        the current one is not renewed: the calls in flight that all hit the same 429 pause the
        limiter once.
        """
        slack = min(1.0, max(0.05, 0.1 * seconds))
        with self._lock:
            end = self._clock.now() + seconds
            if end <= self._hold_until + slack:
                return
            self._hold_until = end
        self._telemetry.add("pauses")
        _log.warning("executor: rate limited; pausing all workers for %.3f s", seconds)
        if self.limiter is not None:
            try:
                self.limiter.pause(seconds)
            except Exception as exc:  # the local pause still holds for this process
                _log.warning("executor: could not pause the limiter's store: %s", exc)

    def _paused_for(self) -> float:
        return max(0.0, self._hold_until - self._clock.now())

    # -- deciding what a failure means ----------------------------------------------------------
    def _after_failure(self, batch: _Batch[Any, Any], error: BaseException, tries: int
                       ) -> tuple[str, float, BaseException]:
        """What to do after try number ``tries`` failed with ``error``.

        Returns (action, seconds, error): "pause" (rate limited: retry once the shared pause
        is over), "sleep" (retry after ``seconds``), or "fail" (report ``error``).
        """
        if isinstance(error, Exception) and is_rate_limit(error):
            self._telemetry.add("rate_limited")
            after = retry_after_of(error, self._wall.now())
            if after is None:
                after = self.retry.backoff_for(tries, self._rng)
            self._pause(after)  # even beyond max_wait: other batches and processes must hold too
            if after > self.max_wait:
                retry_at = self._wall.now() + after
                name = self.limiter.name if self.limiter is not None else "server"
                return "fail", 0.0, batch.quota_exhausted(retry_at, name, error)
            if tries >= self.retry.attempts:
                return "fail", 0.0, error  # rate limits do not count towards the circuit breaker
            return "pause", after, error
        if tries < self.retry.attempts and isinstance(error, Exception) and self.retry.is_retryable(error):
            return "sleep", self.retry.backoff_for(tries, self._rng), error
        batch.item_failed(error)
        return "fail", 0.0, error

    # -- the error budget -----------------------------------------------------------------------
    def _call_ended(self, batch: _Batch[Any, Any], refused: bool) -> None:
        """Count one call's end for the error budget: ``refused`` if the server refused it for its
        rate limit. Tells the limiter's observers, and warns once per batch over the budget (judged
        once the batch made ``MIN_CALLS`` calls; ``_close`` judges it at the end)."""
        if self.limiter is not None:
            tell_response(self.limiter, refused)
        budget = self.refusal_budget
        with batch.lock:
            batch.calls += 1
            if not refused:
                return
            batch.refused += 1
            due = (budget is not None and not batch.over_budget and batch.calls >= MIN_CALLS
                   and batch.refused > budget * batch.calls)
            if due:
                batch.over_budget = True
            calls, refusals = batch.calls, batch.refused
        if due:
            self._warn_over_budget(calls, refusals)

    def _warn_over_budget(self, calls: int, refused: int) -> None:
        assert self.refusal_budget is not None
        _log.warning(
            "executor: %d of %d calls of this batch (%.1f %%) were refused for the rate limit, above "
            "refusal_budget=%g (HubSpot asks apps to stay under 5 %%): other clients may spend the same "
            "budget (share the limiter's store with them), or the limiter runs faster than the server "
            "counts (raise its margin)",
            refused, calls, 100 * share(refused, calls), self.refusal_budget,
        )

    def _permit_timeout(self, batch: _Batch[Any, Any], exc: AcquireTimeout) -> QuotaExhausted:
        return batch.quota_exhausted(self._wall.now() + exc.retry_after, exc.limiter, exc)

    # -- the dispatch loop's bookkeeping ----------------------------------------------------------
    @staticmethod
    def _check_call(func: object, key: object) -> None:
        if not callable(func):
            raise TypeError(f"func must be callable, got {func!r}")
        if key is not None and not callable(key):
            raise TypeError(f"key must be callable, got {key!r}")

    def _open(self, func: Callable[[T], Any], items: object, desc: str | None,
              key: Callable[[T], object] | None, journal: str | os.PathLike[str] | None
              ) -> tuple[_Batch[T, Any], dict[str, dict[str, Any]]]:
        log = Journal(journal) if journal is not None else None
        done = log.load() if log is not None else {}
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
        if log is not None:
            log.open()
        progress = Progress(self._progress, total, desc)
        self._sizer.log_fixed()
        if total:
            self._log_forecast(total)
        self._telemetry.batch_started(self._clock.now())
        return _Batch(func, key, self.breaker, log, progress), done

    def _log_forecast(self, items: int) -> None:
        """At INFO, for a batch of known length: when one call per item would all have started at
        the limiter's current budget, and whether a daily quota stops them (``limiter.forecast``)."""
        forecast = getattr(self.limiter, "forecast", None)
        if forecast is None or not _log.isEnabledFor(logging.INFO):
            return
        try:
            text = str(forecast(items)).replace("\n", "; ")
        except Exception as exc:  # a forecast must never stop a batch (e.g. a store that is down)
            _log.debug("executor: no forecast for this batch: %s", exc)
            return
        _log.info("executor: forecast, one call per item: %s", text)

    def _close(self, batch: _Batch[Any, Any]) -> None:
        budget = self.refusal_budget
        with batch.lock:
            due = budget is not None and not batch.over_budget and batch.refused > budget * batch.calls
            batch.over_budget = batch.over_budget or due
        if due:
            self._warn_over_budget(batch.calls, batch.refused)
        try:
            batch.progress.close()
        finally:
            if batch.journal is not None:
                batch.journal.close()
                if batch.repeated > 1:
                    _log.warning("executor: %d items of this batch had the journal key of an earlier item",
                                 batch.repeated)
            self._telemetry.batch_ended(self._clock.now())

    def _key_of(self, batch: _Batch[T, Any], item: T) -> object:
        return batch.key(item) if batch.key is not None else item

    def _resumed(self, batch: _Batch[T, R], done: dict[str, dict[str, Any]], index: int, item: T
                 ) -> tuple[object, Outcome[T, R] | None]:
        """The item's journal key, and its outcome if an earlier run finished it.

        Items that share a key both run (or both resume, with the value journaled last): one
        warning names the first such item, and ``_close`` counts them.
        """
        if batch.journal is None:
            return None, None
        key = self._key_of(batch, item)
        text = key_text(key)
        if text in batch.keys:
            batch.repeated += 1
            if batch.repeated == 1:
                _log.warning(
                    "executor: item %d has the same journal key as an earlier item: %s; both run, and a "
                    "rerun resumes both with the value journaled last. Give each item its own key (key=...)",
                    index, short_repr(key),
                )
        else:
            batch.keys.add(text)
        record = done.get(text)
        if record is None:
            return key, None
        attempts = record.get("attempts", 1)
        elapsed = record.get("elapsed", 0.0)
        return key, Outcome(
            index, item, record.get("value"), None,
            attempts if isinstance(attempts, int) else 1,
            float(elapsed) if isinstance(elapsed, (int, float)) else 0.0,
            True,
        )

    def _record(self, batch: _Batch[Any, Any], kind: str, outcome: Outcome[T, R], key: object
                ) -> Outcome[T, R]:
        """Journal an outcome (if it ran), count it, and move the bar. Dispatch loop only.

        Returns the outcome to report: the same one, or, when the journal cannot hold its value,
        a failure of the item with the ``JournalError`` (journaled as such).
        """
        if kind in (OK, FAILED) and batch.journal is not None and not outcome.resumed:
            kind, outcome = self._journal(batch, kind, outcome, key)
        counter = "resumed" if outcome.resumed else _COUNTERS[kind]
        self._telemetry.add(counter)
        tel = self._telemetry
        batch.progress.update("resumed" if outcome.resumed else kind, tel.retries, tel.rate_limited,
                              self._paused_for())
        return outcome

    @staticmethod
    def _journal(batch: _Batch[Any, Any], kind: str, outcome: Outcome[T, R], key: object
                 ) -> tuple[str, Outcome[T, R]]:
        journal = batch.journal
        assert journal is not None
        try:
            journal.append(key, outcome.error is None, outcome.value, outcome.error, outcome.attempts,
                           outcome.elapsed)
        except JournalError as exc:  # this item fails; the batch and the other outcomes go on
            _log.error("executor: item %d failed: %s", outcome.index, exc)
            batch.item_failed(exc)
            outcome = replace(outcome, value=None, error=exc)
            journal.append(key, False, None, exc, outcome.attempts, outcome.elapsed)
            return FAILED, outcome
        return kind, outcome

    def _tick(self, batch: _Batch[Any, Any]) -> None:
        tel = self._telemetry
        batch.progress.tick(tel.retries, tel.rate_limited, self._paused_for())


class RateLimitedExecutor(_Engine):
    """Run a function over many items on a thread pool; every call, retries included, takes one
    permit from ``limiter`` first.

    Errors stay with their item (``Outcome.error``) and never stop the batch, except that after
    ``breaker`` consecutive failures (rate limits aside) the remaining items are reported not run
    (``CircuitOpen``), and when a permit is further away than ``max_wait`` seconds (a spent daily
    quota) they are reported not run with ``QuotaExhausted(retry_at=...)``. A rate-limit response
    (HTTP 429, ``RetryLater``, an exception with ``retry_after``) pauses the limiter once for
    every worker, and in every process sharing its store, for as long as the server asked.

    Call starts are held to each sliding window of the limiter as well as permits: a thread that
    woke late (a busy machine) does not let the calls granted a window later crowd in behind it.
    What the executor cannot see, the time from the call's start to the server, is what the
    limiter's ``margin`` is for (a few milliseconds to 0.1 s, by network).

    With a ``journal`` file, each finished item is appended as it finishes, and a rerun skips the
    items that succeeded before, returning their stored values: a run killed or interrupted
    resumes where it stopped. On Ctrl-C (``KeyboardInterrupt``) the executor stops dispatching,
    lets the calls in flight finish (press Ctrl-C again to stop waiting), flushes the journal and
    re-raises. The journal is at-least-once: a process killed outright (``kill -9``, a crash)
    cannot journal the calls it had in flight, so a rerun makes those calls again, at most
    ``max_workers`` of them. Make calls that change something safe to repeat: send an idempotency
    key derived from the item's journal key where the API takes one, upsert on an external id
    instead of creating, or look for the record before creating it.

    Args:
        limiter: where permits come from (e.g. ``SlidingWindow(190, 10.0, margin=0.1)``, or a
            ``Limits`` with a ``DailyQuota``). None: the function takes its own permits (a
            wrapped SDK client, one per HTTP request); the executor then schedules, retries and
            reports, and never takes a second permit.
        max_workers: threads. None: sized by Little's law, ``ceil(rate x latency x 1.25) + 1``
            from the limiter's sustained rate (permits per second) and the measured seconds per
            call, between 1 and 64, following latency as it changes; logged once at INFO on the
            ``"ratewindow"`` logger. The pool starts small (as if calls took 20 ms) and grows
            once the first calls are measured, rather than starting big and shrinking. If the
            rate is unknown (no limiter, or a custom one): ``min(32, cpu count + 4)``.
        retry: which failures to retry and how long to wait (``Retry``).
        progress: show a tqdm bar on stderr (one plain line per 10 s when it is not a terminal).
        clock: time source for back-off, pauses and statistics; by default the limiter's clock.
            Interruptible waits need ``MonotonicClock`` or ``WallClock``; with another clock
            (``ManualClock`` in tests) waits are plain ``clock.sleep`` calls. ``retry_at`` is read
            from ``WallClock`` when the clock is a ``MonotonicClock``, else from this clock.
        max_wait: seconds a permit (or a server's ``retry_after``) may be waited for before the
            remaining items are reported not run with ``QuotaExhausted``.
        breaker: consecutive failed items (rate limits aside) after which dispatching stops;
            None never stops.
        refusal_budget: the error budget, a share of calls in [0, 1]: when more of a batch's
            calls than that were refused for the rate limit (HTTP 429, ``RetryLater``,
            ``retry_after``), a warning is logged once for the batch (judged once it made 20 calls,
            and at its end). 0.05 by default, HubSpot's 5 %; None never warns.
            ``stats.refusal_share`` gives the share over every batch, and the limiter's observers
            are told of every call's response (``Observer.on_response``).

    Raises:
        ValueError, TypeError: a bad argument, named in the message.

    >>> from ratewindow import RateLimitedExecutor, SlidingWindow
    >>> with RateLimitedExecutor(SlidingWindow(190, 10.0), progress=False) as executor:
    ...     outcomes = executor.map(str.upper, ["a", "b"])
    >>> [o.value for o in outcomes]
    ['A', 'B']
    """

    def __init__(
        self,
        limiter: Limiter | None,
        *,
        max_workers: int | None = None,
        retry: Retry = _DEFAULT_RETRY,
        progress: bool = True,
        clock: Clock | None = None,
        max_wait: float = 60.0,
        breaker: int | None = 10,
        refusal_budget: float | None = DEFAULT_REFUSAL_BUDGET,
    ) -> None:
        super().__init__(limiter, size=max_workers, retry=retry, progress=progress, clock=clock,
                         max_wait=max_wait, breaker=breaker, refusal_budget=refusal_budget)
        self._tasks: queue.SimpleQueue[_TaskTuple | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._in_flight = 0  # tasks handed out and not yet reported, over all batches
        self._closed = False
        self._abandon = False  # a second Ctrl-C: do not wait for threads stuck in calls

    # -- public API -----------------------------------------------------------------------------
    def map(self, func: Callable[[T], R], items: Iterable[T], *, desc: str | None = None,
            key: Callable[[T], object] | None = None, journal: str | os.PathLike[str] | None = None
            ) -> list[Outcome[T, R]]:
        """Run ``func`` on every item; one ``Outcome`` per item, in input order.

        Args:
            func: called as ``func(item)`` in a worker thread.
            items: any iterable; pulled lazily as workers free up.
            desc: label of the progress bar.
            key: the item's identity in the journal, JSON-serialisable (default: the item).
            journal: a JSON-lines file of finished items. Items whose key succeeded in an earlier
                run are not run again; their outcome is ``resumed`` and its value is the
                journaled one. Values are journaled as JSON after one conversion: an object with
                ``to_dict()`` (an SDK model) becomes that dict, a ``datetime``, ``date`` or
                ``time`` its ISO 8601 text, an ``Enum`` its value, a set or tuple a list. An item
                whose value still cannot be journaled fails with ``JournalError`` (its call did
                run; the error names the value's type); the other items go on. Failed items are
                journaled too, and run again on resume. Items that share a key all run, with a
                warning. At-least-once: see above.

        Raises:
            KeyboardInterrupt: re-raised after the calls in flight finished and were journaled.
            TypeError: a journal key is not JSON-serialisable (raised after the calls in flight
                finished).
            RuntimeError: the executor is closed.
            Exception: whatever iterating ``items`` or calling ``key`` raised.
        """
        outcomes = list(self.imap(func, items, desc=desc, key=key, journal=journal))
        outcomes.sort(key=attrgetter("index"))
        return outcomes

    def imap(self, func: Callable[[T], R], items: Iterable[T], *, desc: str | None = None,
             key: Callable[[T], object] | None = None, journal: str | os.PathLike[str] | None = None
             ) -> Iterator[Outcome[T, R]]:
        """Like ``map``, but yield each outcome as soon as it is known (``Outcome.index`` gives
        its position).

        Items are pulled from ``items`` only as workers free up, so memory stays bounded by the
        number of workers: an endless generator works (stop with ``itertools.islice`` or
        ``break``). Stopping early (``break``, ``close()``) stops dispatching, waits for the
        calls in flight, journals them and closes the journal.

        On the main thread, while the batch runs, the first Ctrl-C is acted on at the next safe
        point of the dispatch loop (at once while waiting for outcomes; after your loop body
        when it happens there), so no finished outcome can miss the journal; a second Ctrl-C
        raises at once. An application's own SIGINT handler is left in place.

        Raises:
            as ``map``.
        """
        self._check_open()
        self._check_call(func, key)
        return self._iterate(func, items, desc, key, journal)

    def close(self) -> None:
        """Stop and join the worker threads; idempotent. Call it after the last ``map`` returned
        (leaving a ``with`` block does)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            threads = list(self._threads)
        for _ in threads:
            self._tasks.put(None)
        if self._abandon:
            return
        for thread in threads:
            thread.join()

    def __enter__(self) -> RateLimitedExecutor:
        self._check_open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"RateLimitedExecutor(limiter={self.limiter!r}, workers={self._sizer.target}, "
            f"retry={self.retry!r}, max_wait={self.max_wait!r}, breaker={self.breaker!r}, "
            f"closed={self._closed})"
        )

    # -- the dispatch loop ----------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this RateLimitedExecutor is closed")

    def _submit(self, batch: _Batch[Any, Any], index: int, item: object, key: object) -> None:
        with self._lock:
            self._in_flight += 1
            grow = len(self._threads) < self._in_flight
            if grow:
                # The callback runs when the executor is collected (dropped without close()): it
                # wakes this thread to end. One weak reference, and one wake-up, per thread.
                ref = weakref.ref(self, _waker(self._tasks))
                thread = threading.Thread(target=_work, args=(ref, self._tasks),
                                          name=f"ratewindow-worker-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
        if grow:
            thread.start()
        self._tasks.put((batch, index, item, key))
        batch.submitted += 1

    def _iterate(self, func: Callable[[T], R], items: Iterable[T], desc: str | None,
                 key: Callable[[T], object] | None, journal: str | os.PathLike[str] | None
                 ) -> Iterator[Outcome[T, R]]:
        batch, done = self._open(func, items, desc, key, journal)
        report: tuple[str, Outcome[T, R] | None, object] | None = None
        interrupts = _Interrupts(batch)
        interrupts.install()
        try:
            source = iter(items)
            index = 0
            in_flight = 0
            exhausted = False
            while True:
                interrupts.check()
                while not exhausted and in_flight < self._sizer.target:
                    interrupts.check()
                    try:
                        item = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    position, index = index, index + 1
                    item_key, outcome = self._resumed(batch, done, position, item)
                    if outcome is None:
                        error = batch.not_run_error()
                        if error is None:
                            self._submit(batch, position, item, item_key)
                            in_flight += 1
                            continue
                        outcome = self._record(batch, NOT_RUN, Outcome(position, item, None, error),
                                               item_key)
                    else:
                        outcome = self._record(batch, OK, outcome, item_key)
                    yield outcome
                if in_flight == 0:
                    break
                try:
                    report = batch.results.get(timeout=_TICK)
                except queue.Empty:
                    self._tick(batch)
                    continue
                in_flight -= 1
                self._done_with(report)
                kind, outcome, item_key = report
                if kind == STOPPED or outcome is None:  # Ctrl-C stopped the workers already
                    report = None
                    interrupts.check()
                    continue
                outcome = self._record(batch, kind, outcome, item_key)
                report = None
                yield outcome
        except BaseException as exc:
            self._stop(batch, report, interrupted=isinstance(exc, KeyboardInterrupt))
            raise
        finally:
            interrupts.uninstall()
            self._close(batch)

    def _done_with(self, report: tuple[str, Any, object]) -> None:
        with self._lock:
            self._in_flight -= 1

    def _stop(self, batch: _Batch[Any, Any], report: tuple[str, Any, object] | None, interrupted: bool
              ) -> None:
        """Stop dispatching; wait for the calls in flight and journal what they finished.

        ``report`` is one taken from the queue but not yet recorded when the exception hit.
        """
        batch.stop.set()
        pending = [report] if report is not None else []
        warned = False
        try:
            while True:
                while pending:
                    kind, outcome, item_key = pending.pop()
                    if kind in (OK, FAILED) and outcome is not None:
                        self._record(batch, kind, outcome, item_key)
                with batch.lock:  # ``reported`` counts reports already put on the queue
                    outstanding = batch.submitted - batch.reported
                try:
                    found = batch.results.get(timeout=_TICK if outstanding > 0 else 0.0)
                except queue.Empty:
                    if outstanding <= 0:
                        break
                    if interrupted and not warned:
                        warned = True
                        _log.warning(
                            "executor: interrupted; waiting for %d call(s) in flight to finish "
                            "(Ctrl-C again to stop waiting)",
                            outstanding,
                        )
                    continue
                self._done_with(found)
                pending.append(found)
        except KeyboardInterrupt:
            self._abandon = True
            _log.warning("executor: stopped without waiting for the calls in flight")
            raise

    # -- the workers ----------------------------------------------------------------------------
    def _run(self, task: _TaskTuple) -> None:
        """Run one task in a worker thread (``_work``) and report its outcome."""
        batch, index, item, item_key = task
        try:
            kind, outcome = self._process(batch, index, item)
        except BaseException as exc:  # a bug of ours must not lose the item or hang the batch
            _log.exception("executor: internal error on item %d", index)
            kind, outcome = FAILED, Outcome(index, item, None, exc)
        batch.results.put((kind, outcome, item_key))
        with batch.lock:
            batch.reported += 1

    def _sleep(self, batch: _Batch[Any, Any], seconds: float) -> bool:
        """Wait ``seconds``; True if the batch was stopped meanwhile (the wait then ends early)."""
        if seconds <= 0:
            return batch.stop.is_set()
        if self._real_time:
            return batch.stop.wait(seconds)
        self._clock.sleep(seconds)
        return batch.stop.is_set()

    def _permit(self, batch: _Batch[Any, Any]) -> float | None:
        """Wait out any shared pause, then take one permit; returns the seconds waited, or None
        if the batch was stopped. A booking is given back if the wait is cut short.

        Raises:
            AcquireTimeout: the permit is more than ``max_wait`` seconds away; nothing recorded.
        """
        clock = self._clock
        begin = clock.now()
        limiter = self.limiter
        while True:
            hold = self._hold_until - clock.now()
            if hold > self.max_wait:
                raise AcquireTimeout(hold, limiter.name if limiter is not None else "server")
            if self._sleep(batch, hold):
                return None
            if limiter is None:
                break
            booking = limiter.reserve()
            if booking.delay > self.max_wait:
                booking.cancel()
                booking._refused()  # told as acquire(timeout=max_wait) tells it
                raise AcquireTimeout(booking.delay, limiter.name)
            # Sleep until the booking, then confirm it as the call starts (see Reservation); the
            # confirmation tells the limiter's observers of the grant, once.
            try:
                while (left := booking.confirm()) > 0:
                    if self._sleep(batch, left):  # stopped (Ctrl-C): give it back, briefly
                        booking._give_back()
                        return None
            except BaseException:
                booking._give_back()
                raise
            if self._hold_until <= clock.now():
                break
            # A pause began while we waited for this booking: wait it out and take a fresh permit
            # (the booked one stays used, which only errs on the safe side).
        waited = clock.now() - begin
        if waited > 0:
            self._telemetry.add("permit_wait", waited)
        return waited

    def _process(self, batch: _Batch[T, R], index: int, item: T) -> tuple[str, Outcome[T, R] | None]:
        clock = self._clock
        started = clock.now()
        attempts = 0
        tries = 0
        while True:
            if batch.stop.is_set():
                return STOPPED, None
            if attempts == 0:
                error = batch.not_run_error()
                if error is not None:
                    return NOT_RUN, Outcome(index, item, None, error, 0, clock.now() - started)
            try:
                if self._permit(batch) is None:
                    return STOPPED, None
            except AcquireTimeout as exc:
                error = self._permit_timeout(batch, exc)
                return (FAILED if attempts else NOT_RUN), Outcome(index, item, None, error, attempts,
                                                                  clock.now() - started)
            except Exception as exc:  # e.g. StoreUnavailable: the try failed before any call
                failure: BaseException = exc
            else:
                call_start = self._telemetry.start(clock, attempts > 0)
                attempts += 1
                try:
                    value = batch.func(item)
                except BaseException as exc:  # reported on the item (threads get no Ctrl-C)
                    failure = exc
                    self._sizer.observe(clock.now() - call_start)
                    self._call_ended(batch, isinstance(exc, Exception) and is_rate_limit(exc))
                else:
                    now = clock.now()
                    self._sizer.observe(now - call_start)
                    self._call_ended(batch, False)
                    batch.item_succeeded()
                    return OK, Outcome(index, item, value, None, attempts, now - started)
            tries += 1
            action, delay, failure = self._after_failure(batch, failure, tries)
            if action == "fail":
                kind = FAILED if attempts or not isinstance(failure, QuotaExhausted) else NOT_RUN
                return kind, Outcome(index, item, None, failure, attempts, clock.now() - started)
            if action == "sleep" and self._sleep(batch, delay):
                return STOPPED, None


def _waker(tasks: queue.SimpleQueue[_TaskTuple | None]) -> Callable[[object], None]:
    """A weak reference callback that wakes one worker waiting on ``tasks``, to end it."""

    def wake(_: object) -> None:
        tasks.put(None)

    return wake


def _work(executor_ref: weakref.ref[RateLimitedExecutor], tasks: queue.SimpleQueue[_TaskTuple | None]
          ) -> None:
    """A worker thread: run tasks until ``None`` comes (``close()``, or the executor collected).

    The executor is held only while a task runs; between tasks only ``executor_ref`` is, so an
    executor dropped without ``close()`` is collected, and its weak reference's callback wakes
    this thread with ``None``.
    """
    while True:
        task = tasks.get()
        if task is None:
            return
        executor = executor_ref()
        if executor is None:  # cannot happen while a batch runs (its dispatch loop holds it)
            return
        executor._run(task)
        del executor, task  # hold neither while waiting for the next task
