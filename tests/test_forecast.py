"""``limiter.forecast(n, cost)``: exact numbers on a ManualClock, checked against running the calls."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ratewindow import DailyQuota, Forecast, Limits, SlidingWindow, SQLiteStore, TokenBucket
from ratewindow._limiter import _BaseLimiter
from ratewindow.testing import ManualClock

NEW_YORK = ZoneInfo("America/New_York")


def unix(*args: int, tz: dt.tzinfo = NEW_YORK) -> float:
    return dt.datetime(*args).replace(tzinfo=tz).timestamp()  # type: ignore[arg-type]


def run(limiter: _BaseLimiter, clock: ManualClock, n: int, cost: int | float = 1) -> float:
    """Seconds from now until the last of ``n`` acquires returns, running them on the clock."""
    began = clock.now()
    for _ in range(n):
        limiter.acquire(cost)  # type: ignore[arg-type]
    return clock.now() - began


# -- one window -----------------------------------------------------------------------------------
def test_3067_calls_at_190_per_10s_from_empty_take_16_full_windows() -> None:
    # 3,067 = 16 x 190 + 27: windows 0..15 are full, the 27 left start at 160 s.
    clock = ManualClock()
    window = SlidingWindow(190, 10.0, name="portal-42", clock=clock)
    forecast = window.forecast(3_067)
    assert forecast.seconds == 160.0
    assert forecast.calls == 3_067 and forecast.cost == 1 and not forecast.stopped
    assert forecast.paced_by == "window 'portal-42' (190 per 10 s)"
    assert forecast.done_at == dt.datetime(1970, 1, 1, 0, 2, 40, tzinfo=dt.timezone.utc)
    assert run(window, clock, 3_067) == 160.0


def test_3040_calls_fill_16_windows_and_3041_start_a_17th() -> None:
    window = SlidingWindow(190, 10.0, clock=ManualClock())
    assert window.forecast(190).seconds == 0.0
    assert window.forecast(191).seconds == 10.0
    assert window.forecast(3_040).seconds == 150.0
    assert window.forecast(3_041).seconds == 160.0


def test_margin_holds_each_unit_longer() -> None:
    clock = ManualClock()
    window = SlidingWindow(190, 10.0, margin=0.5, clock=clock)
    assert window.forecast(3_067).seconds == 16 * 10.5
    assert run(window, clock, 3_067) == 168.0


def test_a_window_in_use_frees_as_its_units_expire() -> None:
    clock = ManualClock()
    window = SlidingWindow(10, 10.0, clock=clock)
    assert window.try_acquire(4)
    clock.advance(3.0)
    assert window.try_acquire(6)  # full: 4 units free at 10 s, 6 at 13 s (from t=0)
    clock.advance(1.0)  # now t=4
    assert window.forecast(4).seconds == 6.0  # the 4 of t=0
    assert window.forecast(5).seconds == 9.0  # the 6 of t=3
    assert window.forecast(10).seconds == 9.0
    assert window.forecast(11).seconds == 16.0  # one window after the first of ours, at t=10
    assert window.forecast(4, cost=3).seconds == 16.0  # 3 fit per window: 10, 13, 13, then 20
    assert run(window, clock, 4, cost=3) == 16.0


def test_a_pause_and_bookings_ahead_come_first() -> None:
    clock = ManualClock()
    window = SlidingWindow(2, 10.0, clock=clock)
    window.reserve(2)
    window.reserve(2)  # booked at t=10
    assert window.forecast(1).seconds == 20.0
    window.reset()
    window.pause(30.0)
    assert window.forecast(3).seconds == 40.0
    assert run(window, clock, 3) == 40.0


def test_cost_is_checked_and_n_must_be_a_positive_int() -> None:
    window = SlidingWindow(5, 1.0, name="api", clock=ManualClock())
    with pytest.raises(ValueError, match="cost 6 exceeds 5, the most limiter 'api' can ever grant"):
        window.forecast(1, cost=6)
    with pytest.raises(TypeError, match=r"n must be a positive integer \(calls\), got 2.5"):
        window.forecast(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"got True"):
        window.forecast(True)
    with pytest.raises(ValueError, match=r"n must be a positive integer \(calls\), got 0"):
        window.forecast(0)


# -- a bucket -------------------------------------------------------------------------------------
def test_a_full_bucket_bursts_then_refills() -> None:
    clock = ManualClock()
    bucket = TokenBucket(4.0, 8, clock=clock)  # 0.25 s per token: exact in binary
    assert bucket.forecast(8).seconds == 0.0
    assert bucket.forecast(9).seconds == 0.25
    assert bucket.forecast(20).seconds == 3.0
    assert bucket.forecast(3, cost=4).seconds == 1.0
    assert bucket.try_acquire(6)
    assert bucket.forecast(3).seconds == 0.25
    assert run(bucket, clock, 20) == 4.5  # 2 left, then 18 more at 0.25 s


# -- composites: the slowest member ---------------------------------------------------------------
def test_a_composite_waits_for_its_slowest_member() -> None:
    clock = ManualClock()
    both = Limits(SlidingWindow(190, 10.0, name="w", clock=clock), TokenBucket(4.0, 8, name="b", clock=clock))
    forecast = both.forecast(100)
    assert forecast.seconds == 23.0  # the bucket: 8 at once, then 92 at 4 per second
    assert forecast.paced_by == "bucket 'b' (4 per s, burst 8)"
    assert run(both, clock, 100) == 23.0
    clock2 = ManualClock()
    hourly = Limits(SlidingWindow(190, 10.0, name="w", clock=clock2),
                    SlidingWindow(1_000, 3_600.0, name="h", clock=clock2))
    forecast = hourly.forecast(1_001)
    assert forecast.seconds == 3_600.0
    assert forecast.paced_by == "window 'h' (1,000 per 3600 s)"
    assert run(hourly, clock2, 1_001) == 3_600.0


def test_a_window_with_a_daily_quota_that_does_not_run_out() -> None:
    clock = ManualClock(unix(2026, 12, 3, 9, 0))
    hubspot = Limits(SlidingWindow(190, 10.0, name="p", clock=clock),
                     DailyQuota(625_000, tz="America/New_York", name="p", clock=clock))
    forecast = hubspot.forecast(3_067)
    assert forecast.seconds == 160.0 and not forecast.stopped
    assert forecast.done_at.isoformat() == "2026-12-03T09:02:40-05:00"


# -- a daily quota that stops them first ----------------------------------------------------------
def test_a_daily_quota_stops_them_first_and_says_when_it_resets() -> None:
    clock = ManualClock(unix(2026, 12, 3, 23, 0))  # an hour before midnight in New York
    window = SlidingWindow(190, 10.0, name="p", clock=clock)
    daily = DailyQuota(1_000, tz="America/New_York", name="p", clock=clock)
    both = Limits(window, daily)
    for _ in range(600):
        assert daily.try_acquire()
    forecast = both.forecast(1_000)
    # 400 left today (at 0, 10 s), then the 600 others from the reset at midnight: 3 full windows + 30.
    assert forecast.stopped
    assert forecast.stopped_by == "daily quota 'p' (1,000 per day)"
    assert forecast.stopped_after == 400
    assert forecast.resets_in == 3_600.0
    assert forecast.resets_at is not None and forecast.resets_at.isoformat() == "2026-12-04T00:00:00-05:00"
    assert forecast.seconds == 3_600.0 + 30.0
    assert forecast.done_at.isoformat() == "2026-12-04T00:00:30-05:00"
    assert run(both, clock, 1_000) == 3_630.0


def test_a_quota_spent_today_stops_the_first_call() -> None:
    clock = ManualClock(unix(2026, 12, 3, 12, 0))
    daily = DailyQuota(10, tz="America/New_York", name="q", clock=clock)
    assert daily.try_acquire(10)
    forecast = daily.forecast(25)
    assert forecast.stopped_after == 0 and forecast.resets_in == 12 * 3_600.0
    assert forecast.done_at.isoformat() == "2026-12-06T00:00:00-05:00"  # 10 on the 4th, 10 on the 5th, 5 on the 6th
    assert forecast.paced_by is None
    assert run(daily, clock, 25) == forecast.seconds


@pytest.mark.parametrize(
    ("start", "reset_time", "first_reset", "done"),
    [
        # 2026-03-08 is 23 h long in New York: the last 50 start at 00:00 EDT on the 9th, 12 h + 23 h on.
        ((2026, 3, 7, 12, 0), dt.time(0), "2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"),
        # 2026-11-01 is 25 h long.
        ((2026, 10, 31, 12, 0), dt.time(0), "2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"),
        # A reset at 02:30 does not exist on 2026-03-08: the day starts at the jump, 03:00 EDT.
        ((2026, 3, 7, 12, 0), dt.time(2, 30), "2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"),
    ],
)
def test_a_daily_quota_across_dst_days(start: tuple[int, ...], reset_time: dt.time, first_reset: str,
                                       done: str) -> None:
    clock = ManualClock(unix(*start))
    daily = DailyQuota(100, tz="America/New_York", reset_time=reset_time, name="q", clock=clock)
    assert daily.try_acquire(100)
    forecast = daily.forecast(150)  # 100 on the next day, the last 50 on the day after
    assert forecast.resets_at is not None and forecast.resets_at.isoformat() == first_reset
    assert forecast.done_at.isoformat() == done
    assert forecast.seconds == dt.datetime.fromisoformat(done).timestamp() - clock.now()
    assert run(daily, clock, 150) == forecast.seconds


def test_a_shared_store_gives_the_same_forecast(tmp_path: Path) -> None:
    clock = ManualClock(unix(2026, 12, 3, 23, 0))
    store = SQLiteStore(tmp_path / "limits.db", clock=clock)
    daily = DailyQuota(1_000, tz="America/New_York", name="p", store=store, clock=clock)
    both = Limits(SlidingWindow(190, 10.0, name="p", store=store, clock=clock), daily)
    assert daily.try_acquire(600)
    forecast = both.forecast(1_000)
    assert (forecast.seconds, forecast.stopped_after, forecast.resets_in) == (3_630.0, 400, 3_600.0)


def test_repr_and_text_show_iso_datetimes_with_their_offset() -> None:
    clock = ManualClock(unix(2026, 12, 3, 23, 59, 30))
    both = Limits(SlidingWindow(2, 10.0, name="p", clock=clock),
                  DailyQuota(3, tz="America/New_York", name="p", clock=clock))
    forecast = both.forecast(4)  # 2 at once, 1 at 10 s, then the quota is spent until midnight (30 s)
    assert repr(forecast) == (
        "Forecast(limiter='p+p', calls=4, cost=1, seconds=30.0, done_at='2026-12-04T00:00:00-05:00', "
        "stopped_by=\"daily quota 'p' (3 per day)\", stopped_after=3, resets_in=30.0, "
        "resets_at='2026-12-04T00:00:00-05:00')"
    )
    assert str(forecast) == (
        "4 calls of 1 unit on 'p+p': the last starts in 30 s, at 2026-12-04T00:00:00-05:00\n"
        "daily quota 'p' (3 per day) stops them after 3 calls; it resets in 30 s, at 2026-12-04T00:00:00-05:00"
    )
    assert str(both.forecast(3)) == (
        "3 calls of 1 unit on 'p+p': the last starts in 10 s, at 2026-12-03T23:59:40-05:00; "
        "paced by window 'p' (2 per 10 s)"
    )
    assert isinstance(forecast, Forecast)
    with pytest.raises(AttributeError):
        forecast.seconds = 1.0  # type: ignore[misc]


# -- the forecast is when the last of n acquires returns --------------------------------------------
prior = st.lists(st.tuples(st.integers(0, 30), st.integers(1, 3)), max_size=12)  # (advance, cost)


def replay(limiter: _BaseLimiter, clock: ManualClock, history: list[tuple[int, int]], limit: float) -> None:
    for advance, cost in history:
        clock.advance(advance / 4)
        limiter.try_acquire(min(cost, int(limit)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limit=st.integers(1, 12), window=st.integers(1, 40), margin=st.integers(0, 3), cost=st.integers(1, 4),
       n=st.integers(1, 60), history=prior, pause=st.integers(0, 20))
def test_window_forecast_equals_running_the_calls(limit: int, window: int, margin: int, cost: int, n: int,
                                                  history: list[tuple[int, int]], pause: int) -> None:
    assume(cost <= limit)
    clock = ManualClock()
    limiter = SlidingWindow(limit, window / 2, margin=margin / 4, clock=clock)
    replay(limiter, clock, history, limit)
    if pause:
        limiter.pause(pause / 4)
    expected = limiter.forecast(n, cost).seconds
    assert run(limiter, clock, n, cost) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(rate=st.sampled_from([0.5, 1.0, 2.0, 4.0, 3.0, 10.0]), capacity=st.integers(1, 10),
       cost=st.sampled_from([1, 2, 0.5, 1.5]), n=st.integers(1, 60), history=prior, pause=st.integers(0, 20))
def test_bucket_forecast_equals_running_the_calls(rate: float, capacity: int, cost: float, n: int,
                                                  history: list[tuple[int, int]], pause: int) -> None:
    assume(cost <= capacity)
    clock = ManualClock()
    limiter = TokenBucket(rate, capacity, clock=clock)
    replay(limiter, clock, history, capacity)
    if pause:
        limiter.pause(pause / 4)
    expected = limiter.forecast(n, cost).seconds  # type: ignore[arg-type]
    assert run(limiter, clock, n, cost) == pytest.approx(expected, rel=1e-9, abs=1e-9)


zones = st.sampled_from(["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"])
starts = st.integers(int(unix(2026, 1, 1)), int(unix(2027, 1, 1)))


@settings(max_examples=150, deadline=None)
@given(tz=zones, start=starts, limit=st.integers(1, 30), used=st.integers(0, 30), cost=st.integers(1, 3),
       n=st.integers(1, 80), reset=st.sampled_from([dt.time(0), dt.time(2, 30), dt.time(9)]))
def test_daily_quota_forecast_equals_running_the_calls(tz: str, start: int, limit: int, used: int, cost: int,
                                                       n: int, reset: dt.time) -> None:
    assume(cost <= limit)
    clock = ManualClock(float(start))
    limiter = DailyQuota(limit, tz=tz, reset_time=reset, clock=clock)
    if used:
        limiter.try_acquire(min(used, limit))
    expected = limiter.forecast(n, cost)
    assert run(limiter, clock, n, cost) == expected.seconds
    assert expected.stopped == (n * cost > limit - min(used, limit))


@settings(max_examples=100, deadline=None)
@given(tz=zones, start=starts, window_limit=st.integers(1, 10), window=st.integers(1, 40), quota=st.integers(10, 60),
       n=st.integers(1, 120), history=prior, bucket=st.booleans())
def test_composite_forecast_is_a_lower_bound_and_exact_without_interference(
        tz: str, start: int, window_limit: int, window: int, quota: int, n: int, history: list[tuple[int, int]],
        bucket: bool) -> None:
    clock = ManualClock(float(start))
    pace: _BaseLimiter = (TokenBucket(window_limit / window, window_limit, name="x", clock=clock) if bucket
                          else SlidingWindow(window_limit, float(window), name="x", clock=clock))
    limiter = Limits(pace, DailyQuota(quota, tz=tz, name="x", clock=clock))
    replay(limiter, clock, history, window_limit)
    expected = limiter.forecast(n)
    actual = run(limiter, clock, n)
    # Unix times near 1.8e9 s carry about 2e-7 s of rounding per step on the clock.
    assert expected.seconds <= actual + 1e-5
    if not expected.stopped:  # the quota never makes a call wait: the pace alone decides
        assert actual == pytest.approx(expected.seconds, abs=1e-5)


@settings(max_examples=100, deadline=None)
@given(a=st.integers(1, 8), wa=st.integers(1, 20), b=st.integers(1, 8), wb=st.integers(1, 20),
       n=st.integers(1, 60), history=prior)
def test_two_paces_forecast_is_a_lower_bound(a: int, wa: int, b: int, wb: int, n: int,
                                             history: list[tuple[int, int]]) -> None:
    clock = ManualClock()
    limiter = Limits(SlidingWindow(a, float(wa), name="a", clock=clock), TokenBucket(b / wb, b, name="b", clock=clock))
    replay(limiter, clock, history, min(a, b))
    expected = limiter.forecast(n).seconds
    assert expected <= run(limiter, clock, n) + 1e-6


def test_a_forecast_beyond_10000_quota_days_is_refused_at_once() -> None:
    clock = ManualClock(unix(2026, 12, 3, 9, 0))
    both = Limits(SlidingWindow(190, 10.0, name="p", clock=clock), DailyQuota(625_000, name="p", clock=clock))
    with pytest.raises(ValueError, match=r"n=10000000000 calls would need more than 10,000 quota resets"):
        both.forecast(10**10)
    assert SlidingWindow(5, 1.0, clock=clock).forecast(10**18).done_at.year == 9999  # beyond datetime: its end
