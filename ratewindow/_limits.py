"""``Limits``: several limiters taken all-or-nothing."""

from __future__ import annotations

from ratewindow._limiter import _BaseLimiter
from ratewindow.stores._memory import MemoryGroup, MemoryStore
from ratewindow.stores._protocol import Store

__all__ = ["Limits"]


class Limits(_BaseLimiter):
    """All of ``limiters`` at once: a grant is recorded on every member or on none.

    Members must share one store (they may each keep the default in-process store). The wait
    is the longest any member needs; sleeping uses the first member's clock.

    Raises:
        ValueError: no members, members on different shared stores, or two members with the
            same state key (same kind and name).
        TypeError: a member is not a ratewindow limiter.

    >>> from ratewindow import Limits, SlidingWindow, DailyQuota
    >>> hubspot = Limits(SlidingWindow(190, 10.0), DailyQuota(625_000, tz="America/New_York"))
    >>> hubspot.try_acquire()
    True
    """

    def __init__(self, *limiters: _BaseLimiter, name: str | None = None) -> None:
        if not limiters:
            raise ValueError("Limits needs at least one limiter, got none")
        for member in limiters:
            if not isinstance(member, _BaseLimiter):
                raise TypeError(f"Limits members must be ratewindow limiters, got {member!r}")
        #: The member limiters, flattened.
        self.limiters: tuple[_BaseLimiter, ...] = tuple(
            leaf
            for member in limiters
            for leaf in (member.limiters if isinstance(member, Limits) else (member,))
        )
        specs = [spec for member in self.limiters for spec in member._specs]
        keys = [spec.key for spec in specs]
        duplicate = next((key for key in keys if keys.count(key) > 1), None)
        if duplicate is not None:
            raise ValueError(
                f"two members of Limits share the state key {duplicate!r}; give them distinct names"
            )
        stores = [member._store for member in self.limiters for _ in member._specs]
        store: Store
        if all(s is stores[0] for s in stores):
            store = stores[0]
        elif all(isinstance(s, MemoryStore) for s in stores):
            store = MemoryGroup([s for s in stores if isinstance(s, MemoryStore)], specs)
        else:
            raise ValueError(
                "members of Limits must share one store, got " + ", ".join(sorted({repr(s) for s in stores}))
                + " (a store URL builds a new store each time: build it once, e.g. with as_store(url),"
                " and give it to every member)"
            )
        self._setup(
            name if name is not None else "+".join(m.name for m in self.limiters),
            specs,
            store,
            self.limiters[0]._clock,
            min(m._max_cost for m in self.limiters),
            any(m._int_cost for m in self.limiters),
        )

    def _keyed_copy(self, key: str) -> Limits:
        return Limits(*(member._keyed_copy(key) for member in self.limiters), name=f"{self.name}:{key}")

    def __repr__(self) -> str:
        return f"Limits({', '.join(repr(m) for m in self.limiters)})"
