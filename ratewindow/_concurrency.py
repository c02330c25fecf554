"""``ConcurrencyLimit``: at most ``limit`` requests in flight at once, with leases that expire."""

from __future__ import annotations

import math
import uuid
from typing import Protocol, runtime_checkable

from ratewindow._clock import Clock, MonotonicClock
from ratewindow._core import Spec
from ratewindow._errors import AcquireTimeout
from ratewindow._keyed import KeyedHandles
from ratewindow._validate import check_count, check_name, check_positive, check_store

__all__ = ["ConcurrencyLimit", "Lease", "LeaseStore"]

CONCURRENCY = "concurrency"


@runtime_checkable
class LeaseStore(Protocol):
    """The store operations behind ``ConcurrencyLimit`` (``MemoryStore`` has them; shared stores
    that support concurrency limits do too). Times are seconds in the store's time base."""

    def lease(self, spec: Spec, lease_id: str, limit: int) -> float:
        """Take a slot for ``spec.span`` seconds if fewer than ``limit`` live leases exist: returns
        0.0 if taken, else the seconds until the earliest live lease expires."""
        ...

    def release(self, spec: Spec, lease_id: str) -> None:
        """Give a slot back (no effect if it already expired or was released)."""
        ...

    def leases(self, spec: Spec) -> int:
        """Live leases now."""
        ...

    async def lease_async(self, spec: Spec, lease_id: str, limit: int) -> float:
        """``lease`` without blocking the event loop."""
        ...

    async def release_async(self, spec: Spec, lease_id: str) -> None:
        """``release`` without blocking the event loop."""
        ...


class Lease:
    """A held slot: release it with ``release()`` or by leaving the ``with`` block (from asyncio:
    ``await release_async()`` or ``async with``, which never block the event loop)."""

    __slots__ = ("_limit", "_released", "id")

    def __init__(self, limit: ConcurrencyLimit, lease_id: str) -> None:
        self._limit = limit
        #: A random id; no meaning beyond this lease.
        self.id = lease_id
        self._released = False

    def release(self) -> None:
        """Give the slot back; a second call does nothing."""
        if not self._released:
            self._released = True
            self._limit._store.release(self._limit._spec, self.id)

    async def release_async(self) -> None:
        """``release`` without blocking the event loop; a second call does nothing."""
        if not self._released:
            self._released = True
            await self._limit._store.release_async(self._limit._spec, self.id)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release_async()

    def __repr__(self) -> str:
        return f"Lease(limit={self._limit.name!r}, released={self._released})"


class ConcurrencyLimit:
    """At most ``limit`` holders at once, shared through a store like the other limiters.

    A slot is held from ``hold()`` until ``release()``, or for at most ``lease`` seconds if the
    holder dies without releasing it (so a crashed process cannot leak slots for ever). Waiting
    for a slot polls the store every ``poll`` seconds at most (sooner if a lease expires sooner).

    Args:
        limit: slots; a positive int.
        lease: seconds a slot is held at most; finite, > 0.
        name: limits with the same name and store share slots.
        store: a store with lease support, or a store URL (``MemoryStore`` by default).
        clock: time source and sleep; ``MonotonicClock()`` by default.
        poll: most seconds between checks while waiting; finite, > 0.

    Raises:
        ValueError, TypeError: a bad argument, named in the message; TypeError also when the store
            cannot hold leases.

    >>> from ratewindow import ConcurrencyLimit
    >>> org = ConcurrencyLimit(5, lease=120.0, name="org-00D")
    >>> with org.hold():
    ...     pass  # at most 5 of these blocks run at once, across every user of the store

    From asyncio: ``async with await org.hold_async(): ...``; neither the wait nor the store calls
    block the event loop.
    """

    def __init__(self, limit: int, *, lease: float = 60.0, name: str = "default",
                 store: LeaseStore | str | None = None, clock: Clock | None = None,
                 poll: float = 0.05) -> None:
        #: Slots.
        self.limit = check_count("limit", limit)
        #: Seconds a slot is held at most.
        self.lease = check_positive("lease", lease)
        self.poll = check_positive("poll", poll)
        self.name = check_name("name", name)
        self._store: LeaseStore = check_store(store, kind=LeaseStore,
                                              what="a store that can hold ConcurrencyLimit leases")
        self._clock = clock if clock is not None else MonotonicClock()
        key = f"concurrency:{name}"
        self._spec = Spec(CONCURRENCY, key, name, float(self.limit), self.lease, self._clock)
        self._keyed: KeyedHandles[ConcurrencyLimit] | None = None  # built by the first for_key

    def for_key(self, key: str | int) -> ConcurrencyLimit:
        """The same cap for one key (a user, an account), apart from every other key's: named
        ``f"{name}:{key}"``, on this limit's store and clock. As ``SlidingWindow.for_key``.

        Raises:
            TypeError: ``key`` is not a string or an int.
            ValueError: ``key`` is an empty string.
        """
        keyed = self._keyed
        if keyed is None:
            keyed = self._keyed = KeyedHandles(self._keyed_copy)
        return keyed.get(key)

    def _keyed_copy(self, key: str) -> ConcurrencyLimit:
        return ConcurrencyLimit(self.limit, lease=self.lease, name=f"{self.name}:{key}", store=self._store,
                                clock=self._clock, poll=self.poll)

    def _try(self) -> tuple[Lease | None, float]:
        lease_id = uuid.uuid4().hex
        wait = self._store.lease(self._spec, lease_id, self.limit)
        return (Lease(self, lease_id), 0.0) if wait <= 0 else (None, wait)

    def try_hold(self) -> Lease | None:
        """Take a slot now if one is free; never waits."""
        return self._try()[0]

    def _timeout(self, timeout: float | None) -> float:
        if timeout is None:
            return math.inf
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout >= 0:
            raise ValueError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
        return float(timeout)

    def hold(self, timeout: float | None = None) -> Lease:
        """Take a slot, waiting up to ``timeout`` seconds (None: as long as needed).

        Raises:
            AcquireTimeout: no slot freed within ``timeout``; ``retry_after`` is the wait until the
                earliest lease would expire.
        """
        left = self._timeout(timeout)
        while True:
            lease, wait = self._try()
            if lease is not None:
                return lease
            if left <= 0:
                raise AcquireTimeout(wait, self.name, timeout)
            pause = min(wait, self.poll, left)
            self._clock.sleep(pause)
            left -= pause

    async def hold_async(self, timeout: float | None = None) -> Lease:
        """``hold`` for asyncio: neither the wait nor the store's calls block the event loop.
        Raises as ``hold``."""
        left = self._timeout(timeout)
        while True:
            lease_id = uuid.uuid4().hex
            wait = await self._store.lease_async(self._spec, lease_id, self.limit)
            lease = Lease(self, lease_id) if wait <= 0 else None
            if lease is not None:
                return lease
            if left <= 0:
                raise AcquireTimeout(wait, self.name, timeout)
            pause = min(wait, self.poll, left)
            await self._clock.asleep(pause)
            left -= pause

    def in_use(self) -> int:
        """Slots held now."""
        return self._store.leases(self._spec)

    def available(self) -> int:
        """Slots free now."""
        return max(0, self.limit - self.in_use())

    def __repr__(self) -> str:
        try:
            used = str(self.in_use())
        except Exception:  # a repr must never raise
            used = "?"
        return (
            f"ConcurrencyLimit(limit={self.limit}, lease={self.lease!r}, in_use={used}, name={self.name!r})"
        )
