"""Prometheus metrics for limiters (``pip install ratewindow[prometheus]``).

One line to export everything about the limiters you care about::

    PrometheusMetrics().watch(hubspot, salesforce).serve(9108)   # http://localhost:9108/metrics

``watch`` takes ratewindow limiters and the adapters' limiters (``limiter_of(client)``). Every
grant is counted once, by whichever path took it (see ``ratewindow.Observer``).
``ratewindow.otel`` exports the same metrics to OpenTelemetry.

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

from ratewindow._watch import WAIT_BUCKETS, Observable, Watched

__all__ = ["PrometheusMetrics"]


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
        self.waits = Histogram("wait_seconds", "Seconds each grant waited",
                               buckets=(*WAIT_BUCKETS, float("inf")), **common)
        self.rate_limited = Counter("rate_limit_responses", "Rate-limit responses (pauses) seen", **common)
        self.responses = Counter("responses", "Responses to requests made under the limiter", **common)
        self.refusals = Counter("refusals", "Responses that refused the request for the rate limit (429)",
                                **common)
        self._watched = Watched()
        self.registry.register(_StateCollector(self._watched, namespace))

    def watch(self, *limiters: Observable) -> PrometheusMetrics:
        """Observe these limiters and export their state; returns self (for one-line setup).

        Takes ratewindow limiters and the adapters' limiters (``limiter_of(client)``; these
        export no ``ratewindow_used``, and ``ratewindow_available`` only if they have
        ``available()``).

        Raises:
            TypeError: something else, named in the message.
        """
        for limiter in limiters:
            self._watched.add(limiter, self, "PrometheusMetrics")
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

    def watched(self) -> list[Observable]:
        """The limiters watched, in the order given to ``watch``."""
        return self._watched.all()


class _StateCollector(Collector):
    """Reads each watched limiter's live state at scrape time."""

    def __init__(self, watched: Watched, namespace: str) -> None:
        self._watched = watched
        self._namespace = namespace

    def collect(self) -> Iterator[GaugeMetricFamily]:
        used = GaugeMetricFamily(f"{self._namespace}_used",
                                 "Units in the current window or day (tokens left for a bucket)",
                                 labels=["limiter", "member"])
        available = GaugeMetricFamily(
            f"{self._namespace}_available", "Units grantable now", labels=["limiter"]
        )
        for name, member, value in self._watched.used():
            used.add_metric([name, member], value)
        for name, value in self._watched.available():
            available.add_metric([name], value)
        yield used
        yield available
