"""A hand-driven clock for deterministic timing tests."""

from __future__ import annotations

import threading

__all__ = ["ManualClock"]


class ManualClock:
    """A clock that only moves when told to; pass it as ``clock=`` or ``wall_clock=``.

    Calling the instance returns the current time in seconds. Thread-safe.

    >>> clock = ManualClock(100.0)
    >>> clock.advance(2.5)
    102.5
    >>> clock()
    102.5
    """

    def __init__(self, start: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._now = float(start)

    def __call__(self) -> float:
        """The current time, in seconds."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (must be >= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("a ManualClock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        """Jump to ``now`` seconds (must not be earlier than the current time)."""
        with self._lock:
            if now < self._now:
                raise ValueError("a ManualClock cannot go backwards")
            self._now = float(now)

    def __repr__(self) -> str:
        return f"ManualClock({self():.6f})"
