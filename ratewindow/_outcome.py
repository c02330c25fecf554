"""What an executor reports: one ``Outcome`` per item, and ``ExecutorStats`` for the whole run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["ExecutorStats", "Outcome"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """What became of one item: its value, or the error it ended with.

    Every item gets exactly one outcome. An item that was never run has ``attempts == 0`` and an
    ``error`` saying why:

    - ``QuotaExhausted``: a permit was further away than the executor's ``max_wait`` (a spent
      daily quota, or a server asking to wait that long); ``retry_at`` is the Unix time to
      resume at.
    - ``CircuitOpen``: too many items failed in a row; the last failure is its ``__cause__``.

    An item that ran and failed has ``attempts >= 1`` and the exception of its last try (or
    ``QuotaExhausted``, if it was told to wait beyond ``max_wait``). A failure before any call
    (e.g. ``StoreUnavailable`` on every try) is a failure with ``attempts == 0``.

    >>> from ratewindow import Outcome
    >>> Outcome(index=0, item="a", value=1, attempts=1).ok
    True
    """

    #: Position of the item in the input (0-based).
    index: int
    #: The input item, as given.
    item: T
    #: What the function returned; None if it failed or never ran. For a resumed outcome, the
    #: value as stored in the journal (JSON, after the journal's conversion: tuples and sets come
    #: back as lists, ``to_dict()`` objects as dicts, datetimes as ISO 8601 text).
    value: R | None = None
    #: The exception the item ended with; None on success.
    error: BaseException | None = None
    #: Times the function was called for this item (0: never run).
    attempts: int = 0
    #: Seconds from the start of the item to its outcome: permit waits, calls and back-off.
    elapsed: float = 0.0
    #: True if the outcome was read from the journal of an earlier run, not run now.
    resumed: bool = False

    @property
    def ok(self) -> bool:
        """True if the item succeeded (now or, when ``resumed``, in an earlier run)."""
        return self.error is None

    def result(self) -> R | None:
        """The value on success; otherwise raise the error (like ``Future.result()``).

        Raises:
            BaseException: the item's ``error``.
        """
        if self.error is not None:
            raise self.error
        return self.value


@dataclass(frozen=True)
class ExecutorStats:
    """A snapshot of an executor's counters since it was created (``executor.stats``).

    >>> from ratewindow import ExecutorStats
    >>> ExecutorStats(succeeded=10, failed=0, elapsed=2.0).throughput
    5.0
    """

    #: Items that succeeded in this executor's runs (resumed ones not included).
    succeeded: int = 0
    #: Items that ran and failed.
    failed: int = 0
    #: Items never run (quota exhausted, circuit open).
    not_run: int = 0
    #: Items taken from a journal instead of being run.
    resumed: int = 0
    #: Calls of the function, retries included.
    calls: int = 0
    #: Calls that were retries (every call of an item after its first).
    retries: int = 0
    #: Rate-limit responses seen (HTTP 429, ``RetryLater``, ``retry_after``); ``refusal_share``
    #: gives them as a share of ``calls``.
    rate_limited: int = 0
    #: Times the limiter was paused for every worker after a rate-limit response.
    pauses: int = 0
    #: Seconds spent waiting for permits, pauses and the start guard, summed over workers.
    permit_wait: float = 0.0
    #: Seconds during which at least one ``map``/``imap`` of this executor was running.
    elapsed: float = 0.0
    #: Workers (threads, or concurrent tasks) the executor runs with now.
    workers: int = 0
    #: For each sliding window of the limiter, window length in seconds -> the most call starts
    #: seen in any interval of that length, from the start times the executor recorded (never
    #: above the window's limit: starts are held to it as well as permits).
    window_peaks: Mapping[float, int] = field(default_factory=dict)

    @property
    def refusal_share(self) -> float:
        """The error budget spent: ``rate_limited / calls``, the share of calls the server refused
        for its rate limit (HubSpot asks apps to stay under 0.05); 0.0 before any call.

        >>> ExecutorStats(calls=200, rate_limited=3).refusal_share
        0.015
        """
        return self.rate_limited / self.calls if self.calls > 0 else 0.0

    @property
    def throughput(self) -> float:
        """Items run (succeeded or failed) per second of ``elapsed``; 0.0 before any run."""
        done = self.succeeded + self.failed
        return done / self.elapsed if self.elapsed > 0 else 0.0
