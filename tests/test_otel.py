"""ratewindow.otel: the Prometheus metrics' meanings on OpenTelemetry, read back with the SDK's
``InMemoryMetricReader`` (the SDK is a test dependency only; ratewindow needs the API)."""

from __future__ import annotations

import urllib.request
from typing import Any

import pytest
from _executor_helpers import HTTPError
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from ratewindow import AcquireTimeout, DailyQuota, Limits, RateLimitedExecutor, Retry, SlidingWindow
from ratewindow._watch import WAIT_BUCKETS
from ratewindow.metrics import PrometheusMetrics
from ratewindow.otel import OpenTelemetryMetrics
from ratewindow.testing import ManualClock


def exporter() -> tuple[OpenTelemetryMetrics, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    return OpenTelemetryMetrics(MeterProvider(metric_readers=[reader])), reader


def read(reader: InMemoryMetricReader) -> dict[str, dict[tuple[tuple[str, Any], ...], Any]]:
    """``{instrument: {sorted attributes: data point}}`` from one collection."""
    data = reader.get_metrics_data()
    found: dict[str, dict[tuple[tuple[str, Any], ...], Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "ratewindow"
            for metric in scope.metrics:
                points = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    points[tuple(sorted(point.attributes.items()))] = point
    return found


def of(limiter: str, **more: str) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted({"limiter": limiter, **more}.items()))


def test_ten_grants_through_the_executor_are_ten_in_opentelemetry() -> None:
    clock = ManualClock(1_800_000_000.0)
    limiter = SlidingWindow(4, 10.0, name="api", clock=clock)
    metrics, reader = exporter()
    assert metrics.watch(limiter) is metrics
    with RateLimitedExecutor(limiter, clock=clock, progress=False, max_workers=1) as ex:
        ex.map(lambda i: i, range(10))
    found = read(reader)
    assert found["ratewindow.grants"][of("api")].value == 10
    assert found["ratewindow.granted_units"][of("api")].value == 10
    waits = found["ratewindow.wait.duration"][of("api")]
    assert (waits.count, waits.sum) == (10, 20.0)  # items 4 and 8 waited 10 s for the window
    assert tuple(waits.explicit_bounds) == WAIT_BUCKETS  # seconds, not the SDK's default ms bounds
    assert waits.bucket_counts[0] == 8  # <= 0.0 s: no wait
    assert found["ratewindow.responses"][of("api")].value == 10
    assert "ratewindow.denials" not in found
    assert found["ratewindow.used"][of("api", member="api:window")].value == 2
    assert found["ratewindow.available"][of("api")].value == 2


def test_instruments_follow_the_opentelemetry_naming_conventions() -> None:
    metrics, reader = exporter()
    window = SlidingWindow(1, 10.0, name="w", clock=ManualClock())
    metrics.watch(window)
    assert window.try_acquire() and not window.try_acquire()
    window.pause(1.0)
    metrics.on_response("w", True)
    data = reader.get_metrics_data()
    assert data is not None
    units = {m.name: m.unit for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}
    assert units == {
        "ratewindow.grants": "{grant}", "ratewindow.denials": "{denial}", "ratewindow.granted_units": "{unit}",
        "ratewindow.wait.duration": "s", "ratewindow.pauses": "{pause}", "ratewindow.responses": "{response}",
        "ratewindow.refusals": "{response}", "ratewindow.used": "{unit}", "ratewindow.available": "{unit}",
    }


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_opentelemetry_and_prometheus_tell_the_same_story() -> None:
    clock = ManualClock(1_800_000_000.0)
    window = SlidingWindow(3, 10.0, name="portal", clock=clock)
    both = Limits(SlidingWindow(100, 1.0, name="sf", clock=clock), DailyQuota(40, name="sf", clock=clock),
                  name="salesforce")
    otel, reader = exporter()
    prometheus = PrometheusMetrics()
    server = prometheus.serve(0)
    for metrics in (otel, prometheus):
        metrics.watch(window, both)
    refused_once = {3}

    def call(item: int) -> int:
        if item in refused_once:
            refused_once.discard(item)
            raise HTTPError(429, {"Retry-After": "2"})
        return item

    try:
        assert [window.try_acquire() for _ in range(4)] == [True, True, True, False]
        assert window.acquire() == 10.0
        assert window.try_acquire(2)
        with pytest.raises(AcquireTimeout):
            window.acquire(timeout=1.0)
        window.pause(2.0)
        reservation = both.reserve(2)
        assert reservation.cancel()  # given back: never a grant
        with RateLimitedExecutor(both, clock=clock, progress=False, max_workers=1,
                                 retry=Retry(jitter=False)) as ex:
            ex.map(call, range(6))  # 7 attempts, one 429 that pauses the limiter
        values = scrape(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
    found = read(reader)
    pairs = {
        "grants_total": "ratewindow.grants", "denials_total": "ratewindow.denials",
        "granted_units_total": "ratewindow.granted_units", "rate_limit_responses_total": "ratewindow.pauses",
        "responses_total": "ratewindow.responses", "refusals_total": "ratewindow.refusals",
        "available": "ratewindow.available",
    }  # fmt: skip
    compared = 0
    for name in ("portal", "salesforce"):
        for prometheus_name, otel_name in pairs.items():
            expected = values.get(f'ratewindow_{prometheus_name}{{limiter="{name}"}}')
            point = found.get(otel_name, {}).get(of(name))
            if expected is None:  # never counted by one, never recorded by the other
                assert point is None, (name, otel_name)
            else:
                assert point is not None and point.value == expected, (name, otel_name)
                compared += 1
        waits = found["ratewindow.wait.duration"][of(name)]
        assert waits.count == values[f'ratewindow_wait_seconds_count{{limiter="{name}"}}']
        assert waits.sum == values[f'ratewindow_wait_seconds_sum{{limiter="{name}"}}']
    for member in ("sf:window", "sf:daily", "portal:window"):
        limiter = "portal" if member.startswith("portal") else "salesforce"
        used = values[f'ratewindow_used{{limiter="{limiter}",member="{member}"}}']
        assert found["ratewindow.used"][of(limiter, member=member)].value == used
    assert found["ratewindow.used"][of("salesforce", member="sf:daily")].value == 7  # 7 attempts (the reservation was given back)
    assert compared == 11
    # the numbers themselves, once
    assert found["ratewindow.grants"][of("portal")].value == 5
    assert found["ratewindow.granted_units"][of("portal")].value == 6
    assert found["ratewindow.denials"][of("portal")].value == 2
    assert found["ratewindow.grants"][of("salesforce")].value == 7
    assert found["ratewindow.pauses"][of("salesforce")].value == 1
    assert found["ratewindow.refusals"][of("salesforce")].value == 1


def test_watch_refuses_other_objects() -> None:
    metrics, _ = exporter()
    with pytest.raises(TypeError, match=r"OpenTelemetryMetrics\.watch takes ratewindow limiters"):
        metrics.watch(object())  # type: ignore[arg-type]
