"""What the metrics exporters share: the limiters they watch and their live state.

``ratewindow.metrics`` (Prometheus) and ``ratewindow.otel`` (OpenTelemetry) are both observers
(``ratewindow.Observer``) attached with ``observe``, so they see the same decisions; this module
attaches them and reads the live state (units used, units available) that both export.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from ratewindow._limiter import Observer, _BaseLimiter

__all__ = ["WAIT_BUCKETS", "Observable", "Watched"]

#: Bucket bounds (seconds) of both exporters' histograms of the seconds each grant waited.
WAIT_BUCKETS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@runtime_checkable
class Observable(Protocol):
    """Anything whose decisions an observer can follow: every ratewindow limiter, and the
    adapters' limiters (``ratewindow_hubspot.limiter_of(client)``,
    ``ratewindow_salesforce.limiter_of(sf)``)."""

    name: str

    def observe(self, observer: Observer) -> None: ...


class Watched:
    """The limiters one exporter watches; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: list[Observable] = []

    def add(self, limiter: object, observer: Observer, exporter: str) -> None:
        """Attach ``observer`` to ``limiter`` and keep it for the live state.

        Raises:
            TypeError: ``limiter`` is neither a ratewindow limiter nor has ``observe`` and ``name``.
        """
        if not isinstance(limiter, _BaseLimiter) and not (
            isinstance(limiter, Observable) and callable(limiter.observe) and isinstance(limiter.name, str)
        ):
            raise TypeError(
                f"{exporter}.watch takes ratewindow limiters (or an adapter's limiter_of(client)), "
                f"got {limiter!r}"
            )
        limiter.observe(observer)
        with self._lock:
            self._items.append(limiter)

    def all(self) -> list[Observable]:
        with self._lock:
            return list(self._items)

    def used(self) -> Iterator[tuple[str, str, float]]:
        """``(limiter, member, units)`` for each member of each watched ratewindow limiter: units
        in its current window or day (tokens left for a bucket). A store that is down, and an
        adapter's limiter, give none."""
        for limiter in self.all():
            if not isinstance(limiter, _BaseLimiter):
                continue
            try:
                values = [(spec.name + ":" + spec.kind, limiter._store.used(spec)) for spec in limiter._specs]
            except Exception:  # a shared store that is down must not break the collection
                continue
            for member, value in values:
                yield limiter.name, member, value

    def available(self) -> Iterator[tuple[str, float]]:
        """``(limiter, units)`` grantable now, for each watched limiter that has ``available()``."""
        for limiter in self.all():
            available = getattr(limiter, "available", None)
            if not callable(available):
                continue
            try:
                value = float(available())
            except Exception:  # a shared store that is down must not break the collection
                continue
            yield limiter.name, value
