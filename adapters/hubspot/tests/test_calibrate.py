"""Header calibration: the wrapped client yields what other clients spend of the same budget."""

from __future__ import annotations

import threading
import time

import hubspot
import pytest
import ratewindow_hubspot
import urllib3
from hubspot_support import NOON, TOKEN
from ratewindow_hubspot import limiter_of
from ratewindow_hubspot.testing import ENGAGEMENT_TYPES, FakeHubSpot

from ratewindow import HubSpotRateLimit as RateHeaders
from ratewindow import SlidingWindow
from ratewindow.testing import ManualClock


def test_headers_are_read_from_any_case_insensitive_mapping() -> None:
    raw = {
        "x-hubspot-ratelimit-max": "190",
        "X-HubSpot-RateLimit-Remaining": "12",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Daily": "625000",
        "X-HubSpot-RateLimit-Daily-Remaining": "600000",
    }
    assert RateHeaders.parse(urllib3.HTTPHeaderDict(raw)) == RateHeaders(190, 12, 10.0, 625_000, 600_000)
    bad = {"X-HubSpot-RateLimit-Max": "abc", "X-HubSpot-RateLimit-Remaining": "-1"}
    assert RateHeaders.parse(bad) is None
    assert RateHeaders.parse({"Content-Type": "application/json"}) is None
    assert RateHeaders.parse(None) is None


def test_requests_made_elsewhere_are_yielded_exactly(manual_fake: FakeHubSpot, clock: ManualClock) -> None:
    fake = manual_fake
    unwrapped = hubspot.HubSpot(access_token=TOKEN, host=fake.url).crm.objects.calls.basic_api
    for _ in range(40):
        unwrapped.get_page(limit=1)  # another process of the same app: 40 of the 190 per 10 s
    hs = ratewindow_hubspot.client(
        TOKEN, host=fake.url, limits=SlidingWindow(190, 10.0, clock=clock), clock=clock
    )
    hs.crm.objects.calls.basic_api.get_page(limit=1)
    limiter = limiter_of(hs)
    # The response said 41 requests are in the window; we sent 1: 40 are someone else's, and 5 %
    # of the window more is yielded while others spend it.
    assert limiter.stats.phantom_units == 40 + 10
    assert limiter.account.available() == 190 - 1 - 50
    for _ in range(139):
        hs.crm.objects.calls.basic_api.get_page(limit=1)
    assert clock.now() == NOON  # all within the room HubSpot left
    hs.crm.objects.calls.basic_api.get_page(limit=1)  # the window is full: waits for it to roll
    assert clock.now() == NOON + 10.0
    assert fake.stats.by_status == {200: 181}
    assert fake.stats.max_in_window(10.0) == 180  # never more than HubSpot allows


def test_limits_below_hubspots_yield_only_what_others_spend_beyond_the_room_left(
    manual_fake: FakeHubSpot, clock: ManualClock
) -> None:
    unwrapped = hubspot.HubSpot(access_token=TOKEN, host=manual_fake.url).crm.objects.calls.basic_api
    hs = ratewindow_hubspot.client(
        TOKEN, host=manual_fake.url, limits=SlidingWindow(150, 10.0, clock=clock), clock=clock
    )  # leaves 40 of HubSpot's 190 to others
    for _ in range(30):
        unwrapped.get_page(limit=1)
    hs.crm.objects.calls.basic_api.get_page(limit=1)
    limiter = limiter_of(hs)
    assert limiter.stats.phantom_units == 0  # 30 fit in the 40 left
    for _ in range(30):
        unwrapped.get_page(limit=1)
    hs.crm.objects.calls.basic_api.get_page(limit=1)
    assert limiter.stats.phantom_units == 20 + 8  # 60 - 40, and 5 % of the window
    assert limiter.account.available() == 150 - 2 - 28


def _every_engagement(fake: FakeHubSpot) -> list[tuple[str, str]]:
    return [(t, i) for t in ENGAGEMENT_TYPES for i in fake.dataset.ids(t)]


@pytest.mark.realtime
def test_an_unwrapped_client_spends_part_of_the_budget_and_the_wrapped_one_adapts() -> None:
    limit, share = 300, 0.25  # per 1 s (HubSpot's 190 per 10 s, scaled); the other client's part
    with FakeHubSpot(window_limit=limit, time_scale=0.1, latency=(0.02, 0.04), tokens=[TOKEN]) as fake:
        window = fake.effective_window_seconds
        hs = ratewindow_hubspot.client(
            TOKEN, host=fake.url, limits=SlidingWindow(limit, window, margin=0.02)
        )
        items = _every_engagement(fake)[:900]
        stop = threading.Event()
        other_calls = [0]
        other_errors: list[object] = []

        def other_app() -> None:  # three threads at share x limit per second in all, ignoring 429s
            api = hubspot.HubSpot(access_token=TOKEN, host=fake.url).crm.objects.calls.basic_api
            call = fake.dataset.ids("calls")[0]
            next_at = time.monotonic()
            while not stop.is_set():
                try:
                    api.get_by_id(call)
                except Exception as exc:  # its own 429s are its business
                    other_errors.append(getattr(exc, "status", exc))
                other_calls[0] += 1
                # Steady: a thread that was held up (a busy machine) does not catch up in a burst,
                # which no client could foresee from the headers of responses already received.
                next_at = max(next_at + 3 / (share * limit / window), time.monotonic())
                time.sleep(max(0.0, next_at - time.monotonic()))

        others = [threading.Thread(target=other_app) for _ in range(3)]
        for thread in others:
            thread.start()
        time.sleep(0.5)
        began = time.monotonic()
        try:
            with ratewindow_hubspot.executor(hs, latency=0.03, progress=False) as ex:
                outcomes = ex.map(
                    lambda item: hs.crm.objects.basic_api.get_by_id(item[0], item[1]).id, items
                )
        finally:
            stop.set()
            for thread in others:
                thread.join()
        elapsed = time.monotonic() - began
        stats = limiter_of(hs).stats
        assert [o.value for o in outcomes] == [i for _, i in items]  # no worker stuck, nothing lost
        assert stats.phantom_units > 0
        assert sum(stats.rate_limited.values()) < 0.01 * stats.requests
        assert other_calls[0] > 0.8 * share * limit * elapsed  # the other client did spend its share
        assert set(other_errors) <= {429}
        # ... and we used the rest, less what we yield to be safe (5 % of the window and the margin).
        assert elapsed < 1.25 * len(items) / ((1 - share) * limit / window)
        assert fake.stats.max_in_window(window) <= limit
