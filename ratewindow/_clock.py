"""Clocks: the only module that reads ``time.*``.

Every limiter, store, retry policy and executor takes a clock, so tests can run on
:class:`ratewindow.testing.ManualClock` and never sleep.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["GRACE", "Clock", "MonotonicClock", "WallClock", "grace_of"]

#: Seconds a caller on a real clock may take, from a store's "go" to its request's start, and
#: still count as starting then: each window unit is held this much longer than its window.
GRACE = 0.01


def grace_of(clock: object) -> float:
    """The clock's ``grace`` attribute (seconds), or ``GRACE`` for a clock without one."""
    value = getattr(clock, "grace", GRACE)
    return float(value) if isinstance(value, (int, float)) and 0 <= value < 1 else GRACE


@runtime_checkable
class Clock(Protocol):
    """A source of time in seconds, and a way to wait.

    ``now()`` must never go backwards for one clock object.
    """

    def now(self) -> float:
        """Current time in seconds."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` seconds."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` seconds without blocking the event loop."""
        ...


class MonotonicClock:
    """``time.monotonic()``: immune to wall-clock jumps. The default for windows and buckets.

    Its values only mean something inside one process; stores shared between processes
    (SQLite, Redis) keep their own wall or server time instead.
    """

    __slots__ = ()

    #: Seconds within which a caller is taken to start its request once a store said "go" (see
    #: ``SlidingWindow``): a caller whose answer came back later confirms its grant again.
    grace = GRACE

    #: Current ``time.monotonic()`` in seconds (the C function itself: no Python frame per call).
    now = staticmethod(time.monotonic)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "MonotonicClock()"


class WallClock:
    """``time.time()``: Unix time in seconds. The default for daily quotas (calendar days)."""

    __slots__ = ()

    #: As ``MonotonicClock.grace``.
    grace = GRACE

    #: Current Unix time in seconds (``time.time`` itself).
    now = staticmethod(time.time)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))

    def __repr__(self) -> str:
        return "WallClock()"
