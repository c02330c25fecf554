"""``TokenBucket``: a continuously refilled bucket (stored as one number, GCRA)."""

from __future__ import annotations

from ratewindow._clock import Clock, MonotonicClock
from ratewindow._core import BUCKET, Spec
from ratewindow._limiter import _BaseLimiter
from ratewindow._validate import check_positive, check_store
from ratewindow.stores._protocol import Store

__all__ = ["TokenBucket"]


class TokenBucket(_BaseLimiter):
    """Starts full with ``capacity`` tokens and refills at ``rate`` tokens per second.

    A request of ``cost`` is granted when at least ``cost`` tokens are there. Over any interval
    of d seconds, at most ``capacity + rate * d`` units are granted. Costs may be fractional.

    Args:
        rate: tokens per second; finite, > 0.
        capacity: most tokens held (the burst); finite, >= 1.
        name, store, clock: as for ``SlidingWindow``.

    Raises:
        ValueError, TypeError: a bad argument, named in the message.

    >>> from ratewindow import TokenBucket
    >>> search = TokenBucket(5.0, 5)  # 5 per second, bursts of 5
    >>> search.try_acquire(5), search.try_acquire()
    (True, False)
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        name: str = "default",
        store: Store | str | None = None,
        clock: Clock | None = None,
    ) -> None:
        #: Tokens added per second.
        self.rate = check_positive("rate", rate)
        #: Most tokens the bucket holds.
        self.capacity = check_positive("capacity", capacity)
        if self.capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity!r}")
        clock = clock if clock is not None else MonotonicClock()
        spec = Spec("bucket", f"bucket:{name}", name, self.capacity, 1.0 / self.rate, clock)
        assert spec.kind == BUCKET
        self._setup(name, [spec], check_store(store), clock, self.capacity, False)

    def _keyed_copy(self, key: str) -> TokenBucket:
        return TokenBucket(self.rate, self.capacity, name=f"{self.name}:{key}", store=self._store,
                           clock=self._clock)

    def __repr__(self) -> str:
        return (
            f"TokenBucket(rate={self.rate!r}, capacity={self.capacity!r}, "
            f"tokens={self._used_text()}, name={self.name!r})"
        )
