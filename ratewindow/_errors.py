"""The error tree. Every error carries data a caller can act on, and pickles."""

from __future__ import annotations

__all__ = ["AcquireTimeout", "QuotaExhausted", "RateWindowError", "StoreUnavailable"]


class RateWindowError(Exception):
    """Base class of every error ratewindow raises on purpose."""


class AcquireTimeout(RateWindowError, TimeoutError):
    """A permit could not be had within the caller's timeout; nothing was recorded.

    Attributes:
        retry_after: seconds from the moment of the decision until the permit could be granted.
        limiter: the name of the limiter that refused.
    """

    def __init__(self, retry_after: float, limiter: str = "default") -> None:
        super().__init__(retry_after, limiter)
        #: Seconds from the decision until the permit could be granted.
        self.retry_after = retry_after
        #: Name of the limiter that refused.
        self.limiter = limiter

    def __str__(self) -> str:
        return f"limiter {self.limiter!r}: permit available in {self.retry_after:.3f} s, beyond the timeout"


class QuotaExhausted(RateWindowError):
    """A quota (daily, or an org's rolling allocation) is spent until ``retry_at``.

    Attributes:
        retry_at: Unix time (seconds) at which the quota frees enough to go on, if known.
        limiter: the name of the limiter or quota.
    """

    def __init__(self, retry_at: float | None, limiter: str = "default") -> None:
        super().__init__(retry_at, limiter)
        #: Unix time in seconds when the quota frees, or None if unknown.
        self.retry_at = retry_at
        #: Name of the limiter or quota.
        self.limiter = limiter

    def __str__(self) -> str:
        when = "at an unknown time" if self.retry_at is None else f"at Unix time {self.retry_at:.3f}"
        return f"quota {self.limiter!r} exhausted; it frees {when}"


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
