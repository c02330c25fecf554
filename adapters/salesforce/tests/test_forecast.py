"""``limiter_of(sf).forecast(n)``: the pace, and the allowance (the reserve) that stops requests first."""

from __future__ import annotations

import pytest
from ratewindow import MemoryStore
from ratewindow.testing import ManualClock

from ratewindow_salesforce import DailyLimitExhausted, OrgLimits, SalesforceLimiter

NOON = 1772625600.0  # 2026-03-04T12:00:00+00:00


def test_the_reserve_stops_requests_after_the_allowance_and_says_when_room_returns() -> None:
    clock = ManualClock(NOON)
    org = SalesforceLimiter("salesforce:acme", OrgLimits(allocation=100, reserve=0.1), MemoryStore(), clock)
    for _ in range(80):
        org.acquire()
    forecast = org.forecast(20)  # 10 more fit the allowance of 90; the 80 of now leave in 24 h
    assert forecast.stopped_after == 10
    assert forecast.stopped_by == (
        "the allowance of 'salesforce:acme' (90 of 100 per 86400 s, reserve 10%, other apps 0)"
    )
    assert forecast.resets_in == 86_400.0
    assert forecast.resets_at is not None and forecast.resets_at.isoformat() == "2026-03-05T12:00:00+00:00"
    assert forecast.seconds == 86_400.0
    for _ in range(10):
        org.acquire()
    with pytest.raises(DailyLimitExhausted):  # as forecast: the 11th is refused
        org.acquire()


def test_the_pace_alone_before_the_allowance_runs_out() -> None:
    clock = ManualClock(NOON)
    limits = OrgLimits(allocation=15_000, per_minute=200)
    org = SalesforceLimiter("salesforce:acme", limits, MemoryStore(), clock)
    forecast = org.forecast(1_000)  # 5 minutes of 200, each unit held 61 s (1 s margin)
    assert forecast.seconds == 4 * 61.0 and not forecast.stopped
    assert forecast.paced_by == "window 'salesforce:acme:minute' (200 per 61 s)"


def test_nothing_to_forecast_from_before_the_allocation_is_known() -> None:
    org = SalesforceLimiter("salesforce:acme", OrgLimits(), MemoryStore(), ManualClock(NOON))
    with pytest.raises(RuntimeError, match="nothing to forecast from"):
        org.forecast(10)
