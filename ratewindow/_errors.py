"""The error tree. Every error carries data a caller can act on, and pickles."""

from __future__ import annotations

import datetime as dt
import math

__all__ = [
    "AcquireTimeout",
    "CircuitOpen",
    "JournalError",
    "QuotaExhausted",
    "RateWindowError",
    "RetryLater",
    "StoreUnavailable",
]


class RateWindowError(Exception):
    """Base class of every error ratewindow raises on purpose."""


def _moment(unix: float) -> str:
    """A Unix time for people: ISO 8601 in UTC with its offset, then the Unix time itself.

    >>> _moment(1_796_533_200.0)
    '2026-12-06T05:00:00+00:00 (Unix time 1796533200.000)'
    """
    try:
        moment = dt.datetime.fromtimestamp(unix, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):  # beyond what datetime holds, or NaN
        return f"Unix time {unix:.6g}"
    spec = "seconds" if math.isclose(unix, round(unix), rel_tol=0.0, abs_tol=5e-4) else "milliseconds"
    return f"{moment.isoformat(timespec=spec)} (Unix time {unix:.3f})"


class AcquireTimeout(RateWindowError, TimeoutError):
    """A permit could not be had within the caller's timeout; nothing was recorded.

    Attributes:
        retry_after: seconds from the moment of the decision until the permit could be granted.
        limiter: the name of the limiter that refused.
        timeout: the caller's timeout in seconds that the wait would exceed, if known.
    """

    def __init__(self, retry_after: float, limiter: str = "default", timeout: float | None = None) -> None:
        super().__init__(retry_after, limiter, timeout)
        #: Seconds from the decision until the permit could be granted.
        self.retry_after = retry_after
        #: Name of the limiter that refused.
        self.limiter = limiter
        #: The caller's timeout in seconds, if known (None: not given to the error).
        self.timeout = timeout

    def __str__(self) -> str:
        beyond = "the timeout" if self.timeout is None else f"the timeout of {self.timeout:.3f} s"
        return f"limiter {self.limiter!r}: permit available in {self.retry_after:.3f} s, beyond {beyond}"


class QuotaExhausted(RateWindowError):
    """A quota (daily, or an org's rolling allocation) is spent until ``retry_at``.

    Attributes:
        retry_at: Unix time (seconds) at which the quota frees enough to go on, if known.
        limiter: the name of the limiter or quota.

    The message gives ``retry_at`` as an ISO 8601 date-time in UTC, with its offset, and as the
    Unix time: ``quota 'portal-42' exhausted; it frees at 2026-12-06T05:00:00+00:00 (Unix time
    1796533200.000)``.
    """

    def __init__(self, retry_at: float | None, limiter: str = "default") -> None:
        super().__init__(retry_at, limiter)
        #: Unix time in seconds when the quota frees, or None if unknown.
        self.retry_at = retry_at
        #: Name of the limiter or quota.
        self.limiter = limiter

    @property
    def retry_at_text(self) -> str:
        """``retry_at`` for messages: ``"2026-12-06T05:00:00+00:00 (Unix time 1796533200.000)"``
        (ISO 8601 in UTC, with its offset), or ``"an unknown time"``."""
        return "an unknown time" if self.retry_at is None else _moment(self.retry_at)

    def __str__(self) -> str:
        return f"quota {self.limiter!r} exhausted; it frees at {self.retry_at_text}"


class StoreUnavailable(RateWindowError):
    """A shared store could not be reached within the caller's timeout; no call was let through.

    Attributes:
        store: a description of the store (never credentials).
    """

    def __init__(self, store: str, reason: str = "") -> None:
        super().__init__(store, reason)
        #: Description of the store, without credentials.
        self.store = store
        #: What went wrong, as text.
        self.reason = reason

    def __str__(self) -> str:
        return f"store {self.store} unavailable" + (f": {self.reason}" if self.reason else "")


class RetryLater(RateWindowError):
    """Raise from a function run by an executor to say "rate limited: try again in ``after`` seconds".

    The executor treats it as a rate-limit response: it pauses the limiter for ``after`` seconds
    for every worker (and every process sharing the store), then retries the item.

    Attributes:
        after: seconds to wait before the next call, as the server asked (e.g. Retry-After).

    >>> raise RetryLater(after=2.0)  # doctest: +SKIP
    """

    def __init__(self, after: float, message: str = "") -> None:
        super().__init__(after, message)
        #: Seconds to wait before calling again.
        self.after = after
        #: What the server said, as text.
        self.message = message

    def __str__(self) -> str:
        return f"rate limited; retry in {self.after:.3f} s" + (f": {self.message}" if self.message else "")


class CircuitOpen(RateWindowError):
    """An executor stopped dispatching after ``failures`` items failed in a row; this item was not run.

    The last failure is the ``__cause__`` of the error found in each not-run outcome.

    Attributes:
        failures: the consecutive failures (not rate limits) that opened the circuit.
    """

    def __init__(self, failures: int) -> None:
        super().__init__(failures)
        #: Consecutive failed items that opened the circuit.
        self.failures = failures

    def __str__(self) -> str:
        return f"not run: the circuit opened after {self.failures} consecutive failures"


class JournalError(RateWindowError, TypeError):
    """An item's value could not be written to an executor's journal.

    The executor reports the item as failed with this error (its call did run), journals that
    failure, and goes on with the other items; a rerun with the same journal runs the item again.
    Also a ``TypeError``, which is what an unserialisable value raised before.

    Attributes:
        key: the item's journal key.
        value_type: the name of the value's type.
        reason: why it cannot be journaled; the underlying exception is the ``__cause__``.

    >>> print(JournalError("eng-42", "Engagement", "a Engagement is not JSON-serialisable"))
    ... # doctest: +ELLIPSIS
    journal: the value for key 'eng-42' (Engagement) cannot be journaled: ... or run without a journal
    """

    def __init__(self, key: object, value_type: str, reason: str) -> None:
        super().__init__(key, value_type, reason)
        #: The item's journal key.
        self.key = key
        #: Name of the type of the value that could not be journaled.
        self.value_type = value_type
        #: Why it could not be journaled.
        self.reason = reason

    def __str__(self) -> str:
        return (
            f"journal: the value for key {self.key!r} ({self.value_type}) cannot be journaled: "
            f"{self.reason}; return plain data (dict, list, str, int, float, bool, None) or an object "
            "with to_dict() (datetimes, dates, enums, sets and tuples are converted), "
            "or run without a journal"
        )
