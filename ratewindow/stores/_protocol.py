"""The ``Store`` protocol: where limiter state lives, and the one atomic call that decides."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from ratewindow._core import Grant, Spec

__all__ = ["Store", "call_budget"]


@runtime_checkable
class Store(Protocol):
    """Holds limiter state by key and decides each request atomically.

    Every method takes the members' :class:`~ratewindow._core.Spec` values (a single limiter has
    one, a ``Limits`` composite several) and acts on all of them in one atomic step, so a
    decision is all-or-nothing across processes too. Times are seconds: the in-process store
    reads each member's clock; shared stores keep their own wall or server time.

    A store whose calls can take long (a network store) may also take a keyword ``within``, the
    seconds the call may take in all, on ``cancel``, ``confirm`` and their async forms, as
    ``RedisStore`` and ``SQLiteStore`` do: limiters then bound the confirmation inside
    ``acquire(timeout=...)`` by what is left of the timeout, and give an interrupted caller's
    booking back within 0.05 s. Both bound their calls by ``call_budget``.
    """

    def acquire(self, specs: Sequence[Spec], cost: float, max_wait: float | None) -> Grant:
        """Record ``cost`` units on every member at the earliest time all of them allow, if that
        is at most ``max_wait`` seconds away (0.0: now only; None: any time). Otherwise record
        nothing. Returns the verdict and the delay in seconds either way.

        Raises:
            StoreUnavailable: a shared store could not be reached.
        """
        ...

    def wait_time(self, specs: Sequence[Spec], cost: float) -> float:
        """Exact seconds until ``cost`` could be granted on every member; no side effect."""
        ...

    def cancel(self, specs: Sequence[Spec], cost: float, stamp: tuple[tuple[float, float], ...]) -> None:
        """Undo a grant that ``acquire`` recorded and that has not been used yet."""
        ...

    def confirm(self, specs: Sequence[Spec], cost: float, stamp: tuple[tuple[float, float], ...]) -> Grant:
        """Confirm a grant that ``acquire`` recorded, when its caller resumes to use it.

        Granted, with the grant's new stamp, when its units now count from the store's current
        time (they moved there: what the API's server sees is when the caller starts, not when
        it was booked). Not granted, ``delay`` the seconds to wait before confirming again, when
        grants confirmed meanwhile by callers that resumed late still fill the window, or the
        limiter is paused (nothing is changed then).

        Raises:
            StoreUnavailable: a shared store could not be reached.
        """
        ...

    def pause(self, specs: Sequence[Spec], seconds: float) -> None:
        """Grant nothing on these members for ``seconds`` seconds from now (shared by every user)."""
        ...

    def used(self, spec: Spec) -> float:
        """Units counted now (window, day) or tokens left (bucket) for one member."""
        ...

    def available(self, specs: Sequence[Spec]) -> float:
        """Units that every member could grant now without waiting."""
        ...

    def reset(self, specs: Sequence[Spec]) -> None:
        """Forget all state of these members."""
        ...

    async def acquire_async(self, specs: Sequence[Spec], cost: float, max_wait: float | None) -> Grant:
        """``acquire`` without blocking the event loop."""
        ...

    async def cancel_async(
        self, specs: Sequence[Spec], cost: float, stamp: tuple[tuple[float, float], ...]
    ) -> None:
        """``cancel`` without blocking the event loop."""
        ...

    async def confirm_async(
        self, specs: Sequence[Spec], cost: float, stamp: tuple[tuple[float, float], ...]
    ) -> Grant:
        """``confirm`` without blocking the event loop."""
        ...


def call_budget(timeout: float, least: float, *, max_wait: float | None = None, within: float | None = None,
                confirming: bool = False) -> float:
    """Seconds one call of a shared store may take in all (its waits, retries and replies): what
    its caller gives it, never more than the store's ``timeout``.

    ``within`` (a confirmation or a cancel) is taken as given, but a confirmation gets at least
    ``least``; else a decision whose caller would wait ``max_wait`` seconds gets that, and at
    least ``least`` (a store that answers at all answers within it); else ``timeout``.

    >>> call_budget(5.0, 0.25, max_wait=0.0), call_budget(5.0, 0.25, within=0.05)
    (0.25, 0.05)
    """
    if within is not None:
        return min(timeout, max(within, least) if confirming else within)
    if max_wait is not None:
        return min(timeout, max(max_wait, least))
    return timeout
