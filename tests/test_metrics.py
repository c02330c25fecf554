"""Prometheus metrics, scraped over real HTTP, against the limiters' own counts."""

from __future__ import annotations

import urllib.request

import pytest

from ratewindow import AcquireTimeout, DailyQuota, Limits, SlidingWindow
from ratewindow.metrics import PrometheusMetrics
from ratewindow.testing import ManualClock


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_endpoint_matches_the_limiters() -> None:
    clock = ManualClock(1_800_000_000.0)
    window = SlidingWindow(3, 10.0, name="portal", clock=clock)
    both = Limits(SlidingWindow(5, 1.0, name="sf", clock=clock), DailyQuota(4, name="sf", clock=clock),
                  name="salesforce")
    metrics = PrometheusMetrics()
    server = metrics.serve(0)
    metrics.watch(window, both)
    try:
        results = [window.try_acquire() for _ in range(5)]  # 3 granted, 2 refused
        assert window.acquire() == 10.0  # waited 10 s on the manual clock; the first three expired
        assert window.try_acquire(2)  # the window is full again
        with pytest.raises(AcquireTimeout):
            window.acquire(timeout=1.0)
        window.pause(2.0)  # what an adapter does on a 429
        assert both.try_acquire(2)
        port = server.server_port
        values = scrape(port)
    finally:
        server.shutdown()
        server.server_close()
    assert results == [True, True, True, False, False]
    assert values['ratewindow_grants_total{limiter="portal"}'] == 5
    assert values['ratewindow_denials_total{limiter="portal"}'] == 3
    assert values['ratewindow_granted_units_total{limiter="portal"}'] == 6
    assert values['ratewindow_wait_seconds_count{limiter="portal"}'] == 5
    assert values['ratewindow_wait_seconds_sum{limiter="portal"}'] == 10.0
    assert values['ratewindow_rate_limit_responses_total{limiter="portal"}'] == 1
    assert values['ratewindow_used{limiter="portal",member="portal:window"}'] == 3
    assert values['ratewindow_available{limiter="portal"}'] == 0  # paused
    assert values['ratewindow_granted_units_total{limiter="salesforce"}'] == 2
    assert values['ratewindow_used{limiter="salesforce",member="sf:daily"}'] == 2
    assert values['ratewindow_available{limiter="salesforce"}'] == 2


def test_watch_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match="watch takes ratewindow limiters"):
        PrometheusMetrics().watch(object())  # type: ignore[arg-type]


def test_responses_and_refusals_count_the_error_budget() -> None:
    from _executor_helpers import HTTPError

    from ratewindow import RateLimitedExecutor, Retry

    clock = ManualClock(1_800_000_000.0)
    window = SlidingWindow(100, 1.0, name="api", clock=clock)
    metrics = PrometheusMetrics().watch(window)
    refused_once = {0, 7}

    def call(item: int) -> int:
        if item in refused_once:
            refused_once.discard(item)
            raise HTTPError(429, {"Retry-After": "0"})
        return item

    with RateLimitedExecutor(window, clock=clock, progress=False, max_workers=1,
                             retry=Retry(jitter=False)) as ex:
        ex.map(call, range(10))
    value = metrics.registry.get_sample_value
    assert value("ratewindow_responses_total", {"limiter": "api"}) == 12
    assert value("ratewindow_refusals_total", {"limiter": "api"}) == 2
