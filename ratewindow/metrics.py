"""Prometheus metrics for limiters (``pip install ratewindow[prometheus]``).

One line to export everything about the limiters you care about::

    PrometheusMetrics().watch(hubspot, salesforce).serve(9108)   # http://localhost:9108/metrics

Per limiter name: ``ratewindow_grants_total`` and ``ratewindow_denials_total`` (decisions),
``ratewindow_granted_units_total``, ``ratewindow_wait_seconds`` (a histogram of the seconds each
grant waited), ``ratewindow_rate_limit_responses_total`` (pauses, which the adapters and the
executor make on every 429 or Salesforce refusal), ``ratewindow_responses_total`` and
``ratewindow_refusals_total`` (the error budget: responses to requests made under the limiter by the
executors and ``ratewindow.http``, and those refused for the rate limit; the share over the last
hour is ``rate(ratewindow_refusals_total[1h]) / rate(ratewindow_responses_total[1h])``), and,
read at scrape time, ``ratewindow_used`` (units in the current window or day, or tokens left in a
bucket) and ``ratewindow_available``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

try:
    from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
    from prometheus_client.core import GaugeMetricFamily
    from prometheus_client.registry import Collector
except ModuleNotFoundError as exc:  # the extra is not installed
    raise ImportError(
        f"ratewindow.metrics needs prometheus-client ({exc}): pip install 'ratewindow[prometheus]'",
        name=exc.name,
    ) from exc

from ratewindow._limiter import _BaseLimiter

__all__ = ["PrometheusMetrics"]

_WAIT_BUCKETS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, float("inf"))


class PrometheusMetrics:
    """Counts limiter decisions into a Prometheus registry (a new one unless ``registry`` is given).

    Implements the ``ratewindow.Observer`` protocol; ``watch`` attaches it to limiters.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *, namespace: str = "ratewindow") -> None:
        #: The registry holding the metrics.
        self.registry = registry if registry is not None else CollectorRegistry()
        common: dict[str, Any] = {"labelnames": ["limiter"], "namespace": namespace,
                                  "registry": self.registry}
        self.grants = Counter("grants", "Requests granted", **common)
        self.denials = Counter("denials", "Requests refused (try_acquire False, or a timeout)", **common)
        self.units = Counter("granted_units", "Units granted", **common)
        self.waits = Histogram("wait_seconds", "Seconds each grant waited", buckets=_WAIT_BUCKETS, **common)
        self.rate_limited = Counter("rate_limit_responses", "Rate-limit responses (pauses) seen", **common)
        self.responses = Counter("responses", "Responses to requests made under the limiter", **common)
        self.refusals = Counter("refusals", "Responses that refused the request for the rate limit (429)",
                                **common)
        self._watched: list[_BaseLimiter] = []
        self._lock = threading.Lock()
        self.registry.register(_StateCollector(self, namespace))

    def watch(self, *limiters: _BaseLimiter) -> PrometheusMetrics:
        """Observe these limiters and export their state; returns self (for one-line setup)."""
        for limiter in limiters:
            if not isinstance(limiter, _BaseLimiter):
                raise TypeError(f"watch takes ratewindow limiters, got {limiter!r}")
            limiter.observe(self)
            with self._lock:
                self._watched.append(limiter)
        return self

    def serve(self, port: int, addr: str = "127.0.0.1") -> Any:
        """Serve ``/metrics`` over HTTP on ``addr:port`` in a daemon thread; returns the server
        (``server.shutdown()`` stops it). Port 0 picks a free port (``server.server_port``)."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server

    def on_acquire(self, limiter: str, cost: float, granted: bool, waited: float) -> None:
        if granted:
            self.grants.labels(limiter).inc()
            self.units.labels(limiter).inc(cost)
            self.waits.labels(limiter).observe(waited)
        else:
            self.denials.labels(limiter).inc()

    def on_pause(self, limiter: str, seconds: float) -> None:
        self.rate_limited.labels(limiter).inc()

    def on_response(self, limiter: str, refused: bool) -> None:
        self.responses.labels(limiter).inc()
        if refused:
            self.refusals.labels(limiter).inc()

    def watched(self) -> list[_BaseLimiter]:
        with self._lock:
            return list(self._watched)


class _StateCollector(Collector):
    """Reads each watched limiter's live state at scrape time."""

    def __init__(self, metrics: PrometheusMetrics, namespace: str) -> None:
        self._metrics = metrics
        self._namespace = namespace

    def collect(self) -> Iterator[GaugeMetricFamily]:
        used = GaugeMetricFamily(f"{self._namespace}_used",
                                 "Units in the current window or day (tokens left for a bucket)",
                                 labels=["limiter", "member"])
        available = GaugeMetricFamily(
            f"{self._namespace}_available", "Units grantable now", labels=["limiter"]
        )
        for limiter in self._metrics.watched():
            try:
                for spec in limiter._specs:
                    used.add_metric([limiter.name, spec.name + ":" + spec.kind], limiter._store.used(spec))
                available.add_metric([limiter.name], limiter.available())
            except Exception:  # a shared store that is down must not break the scrape
                continue
        yield used
        yield available
