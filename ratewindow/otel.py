"""OpenTelemetry metrics for limiters (``pip install 'ratewindow[otel]'``).

The same metrics as ``ratewindow.metrics`` (Prometheus), fed by the same observer mechanism
(``ratewindow.Observer``), recorded on a ``Meter`` of the OpenTelemetry API. The application
chooses where they go by configuring the SDK (a ``MeterProvider`` with a reader and an
exporter, e.g. OTLP); without one, the API's no-op provider records nothing::

    OpenTelemetryMetrics().watch(hubspot, ratewindow_hubspot.limiter_of(hs))

Instruments, each with the attribute ``limiter`` (the limiter's name):

- ``ratewindow.grants`` (counter, ``{grant}``): grants, each told once by whichever path took it;
- ``ratewindow.denials`` (counter, ``{denial}``): refusals (``try_acquire`` False, a timeout);
- ``ratewindow.granted_units`` (counter, ``{unit}``): units granted;
- ``ratewindow.wait.duration`` (histogram, ``s``): the seconds each grant waited;
- ``ratewindow.pauses`` (counter, ``{pause}``): pauses, which the adapters and the executors
  make on every rate-limit response (Prometheus: ``ratewindow_rate_limit_responses_total``);
- ``ratewindow.responses`` and ``ratewindow.refusals`` (counters, ``{response}``): responses to
  the requests made under the limiter by the executors and ``ratewindow.http``, and those
  refused for the rate limit (the error budget);
- ``ratewindow.used`` (gauge, ``{unit}``, attributes ``limiter`` and ``member``) and
  ``ratewindow.available`` (gauge, ``{unit}``), read when the SDK collects.
"""

from __future__ import annotations

from collections.abc import Iterable

try:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation, get_meter_provider
except ModuleNotFoundError as exc:  # the extra is not installed
    raise ImportError(
        f"ratewindow.otel needs opentelemetry-api ({exc}): pip install 'ratewindow[otel]'", name=exc.name
    ) from exc

from ratewindow import __version__
from ratewindow._watch import WAIT_BUCKETS, Observable, Watched

__all__ = ["OpenTelemetryMetrics"]


class OpenTelemetryMetrics:
    """Records limiter decisions on an OpenTelemetry meter (from ``meter_provider``, by default
    the global one that ``opentelemetry.metrics.set_meter_provider`` set).

    Implements the ``ratewindow.Observer`` protocol; ``watch`` attaches it to limiters.

    >>> from opentelemetry.sdk.metrics import MeterProvider  # the SDK, configured by the app
    >>> from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    >>> from ratewindow import SlidingWindow
    >>> reader = InMemoryMetricReader()
    >>> limiter = SlidingWindow(10, 1.0, name="api")
    >>> _ = OpenTelemetryMetrics(MeterProvider(metric_readers=[reader])).watch(limiter)
    >>> limiter.try_acquire()
    True
    >>> [m.name for r in reader.get_metrics_data().resource_metrics
    ...  for s in r.scope_metrics for m in s.metrics][:2]
    ['ratewindow.grants', 'ratewindow.granted_units']
    """

    def __init__(self, meter_provider: MeterProvider | None = None, *, namespace: str = "ratewindow") -> None:
        provider = meter_provider if meter_provider is not None else get_meter_provider()
        meter = provider.get_meter("ratewindow", __version__)
        self._watched = Watched()
        #: Grants (counter).
        self.grants = meter.create_counter(f"{namespace}.grants", "{grant}", "Requests granted")
        #: Refusals (counter).
        self.denials = meter.create_counter(
            f"{namespace}.denials", "{denial}", "Requests refused (try_acquire False, or a timeout)"
        )
        #: Units granted (counter).
        self.units = meter.create_counter(f"{namespace}.granted_units", "{unit}", "Units granted")
        #: Seconds each grant waited (histogram).
        self.waits = meter.create_histogram(
            f"{namespace}.wait.duration", "s", "Seconds each grant waited",
            explicit_bucket_boundaries_advisory=WAIT_BUCKETS,
        )  # fmt: skip
        #: Pauses: rate-limit responses (counter).
        self.pauses = meter.create_counter(
            f"{namespace}.pauses", "{pause}", "Pauses of the limiter: rate-limit responses seen"
        )
        #: Responses to requests made under the limiter (counter).
        self.responses = meter.create_counter(
            f"{namespace}.responses", "{response}", "Responses to requests made under the limiter"
        )
        #: Responses that refused the request for the rate limit (counter).
        self.refusals = meter.create_counter(
            f"{namespace}.refusals", "{response}", "Responses refusing the request for the rate limit (429)"
        )
        meter.create_observable_gauge(
            f"{namespace}.used", [self._used], "{unit}",
            "Units in the current window or day (tokens left for a bucket)",
        )  # fmt: skip
        meter.create_observable_gauge(f"{namespace}.available", [self._available], "{unit}",
                                      "Units grantable now")

    def watch(self, *limiters: Observable) -> OpenTelemetryMetrics:
        """Observe these limiters and record their state; returns self (for one-line setup).

        Takes ratewindow limiters and the adapters' limiters (``limiter_of(client)``; these
        record no ``ratewindow.used``, and ``ratewindow.available`` only if they have
        ``available()``).

        Raises:
            TypeError: something else, named in the message.
        """
        for limiter in limiters:
            self._watched.add(limiter, self, "OpenTelemetryMetrics")
        return self

    def watched(self) -> list[Observable]:
        """The limiters watched, in the order given to ``watch``."""
        return self._watched.all()

    def on_acquire(self, limiter: str, cost: float, granted: bool, waited: float) -> None:
        attributes = {"limiter": limiter}
        if granted:
            self.grants.add(1, attributes)
            self.units.add(cost, attributes)
            self.waits.record(waited, attributes)
        else:
            self.denials.add(1, attributes)

    def on_pause(self, limiter: str, seconds: float) -> None:
        self.pauses.add(1, {"limiter": limiter})

    def on_response(self, limiter: str, refused: bool) -> None:
        attributes = {"limiter": limiter}
        self.responses.add(1, attributes)
        if refused:
            self.refusals.add(1, attributes)

    def _used(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, {"limiter": name, "member": member})
                for name, member, value in self._watched.used()]

    def _available(self, _options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, {"limiter": name}) for name, value in self._watched.available()]
