"""``SlidingWindow``: an exact sliding log."""

from __future__ import annotations

from ratewindow._clock import Clock, MonotonicClock, grace_of
from ratewindow._core import WINDOW, Spec
from ratewindow._limiter import _BaseLimiter
from ratewindow._rate import Rate
from ratewindow._validate import check_count, check_non_negative, check_positive, check_store
from ratewindow.stores._protocol import Store

__all__ = ["SlidingWindow"]


class SlidingWindow(_BaseLimiter):
    """At most ``limit`` units in any ``window`` seconds, exactly.

    A unit taken at time t counts against the window until t + window, exclusive. One log entry
    is kept per acquisition (not per unit); the cost of a call does not grow with the number of
    live entries. ``margin`` (seconds) holds each unit for window + margin, absorbing the
    network jitter between our clock and the server's, instead of setting the limit low.

    Args:
        limit: units (requests) per window; a positive int.
        window: window length in seconds; finite, > 0.
        name: limiters with the same name, window and store share state.
        store: where state lives: a store, or a store URL (``store_from_url``); a private
            ``MemoryStore`` by default. Anything else is a ``TypeError``.
        clock: time source; ``MonotonicClock()`` by default.
        margin: extra seconds each unit is held; finite, >= 0.

    Raises:
        ValueError, TypeError: a bad argument, named in the message.

    >>> from ratewindow import SlidingWindow
    >>> hubspot = SlidingWindow(190, 10.0, margin=0.1, name="portal-42")
    >>> hubspot.try_acquire()
    True
    """

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        name: str = "default",
        store: Store | str | None = None,
        clock: Clock | None = None,
        margin: float = 0.0,
    ) -> None:
        #: Units allowed per window.
        self.limit = check_count("limit", limit)
        #: Window length in seconds.
        self.window = check_positive("window", window)
        #: Extra seconds each unit is held.
        self.margin = check_non_negative("margin", margin)
        clock = clock if clock is not None else MonotonicClock()
        held = self.window + self.margin  # names the state: limiters that hold units alike share it
        spec = Spec(WINDOW, f"window:{name}:{held!r}", name, float(self.limit), held + grace_of(clock), clock)
        self._setup(name, [spec], check_store(store), clock, self.limit, True)

    def _keyed_copy(self, key: str) -> SlidingWindow:
        return SlidingWindow(self.limit, self.window, name=f"{self.name}:{key}", store=self._store,
                             clock=self._clock, margin=self.margin)

    @classmethod
    def from_rate(cls, rate: Rate | str, **kwargs: object) -> SlidingWindow:
        """Build from a ``Rate`` or a string such as ``"190/10s"``; keyword arguments as the constructor."""
        parsed = rate if isinstance(rate, Rate) else Rate.parse(rate)
        return cls(parsed.limit, parsed.window, **kwargs)  # type: ignore[arg-type]

    @property
    def rate(self) -> Rate:
        """The limit as a ``Rate``."""
        return Rate(self.limit, self.window)

    def __repr__(self) -> str:
        margin = f", margin={self.margin!r}" if self.margin else ""
        return (
            f"SlidingWindow(limit={self.limit}, window={self.window!r}{margin}, "
            f"used={self._used_text()}, name={self.name!r})"
        )
