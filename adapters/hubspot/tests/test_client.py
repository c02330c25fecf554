"""The wrapped client: one permit per HTTP request, nothing re-sent below it, one pool, presets.

The official SDK talks to ``FakeHubSpot`` over loopback HTTP; nothing in the SDK is mocked.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.request
from typing import Any

import hubspot
import pytest
import ratewindow_hubspot
import urllib3
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.objects import BatchReadInputSimplePublicObjectId, SimplePublicObjectId
from hubspot_support import NOON, TOKEN
from ratewindow_hubspot import TIERS, Tier, limiter_of
from ratewindow_hubspot.testing import FakeHubSpot, token_fingerprint

from ratewindow import AcquireTimeout, DailyQuota, Limits, RateLimitedExecutor, SlidingWindow, SQLiteStore
from ratewindow.testing import ManualClock


def test_public_surface_is_curated() -> None:
    names = ratewindow_hubspot.__all__  # ruff (RUF022) keeps it sorted
    public = {n for n in dir(ratewindow_hubspot) if not n.startswith("_")} - {"testing"}
    assert public == set(names) - {"__version__"}


def test_every_request_takes_exactly_one_permit(manual_fake: FakeHubSpot, clock: ManualClock) -> None:
    fake = manual_fake
    hs = ratewindow_hubspot.client(
        TOKEN, host=fake.url, limits=SlidingWindow(4, 10.0, name="four", clock=clock), clock=clock
    )
    calls = fake.dataset.ids("calls")
    hs.crm.objects.calls.basic_api.get_page(limit=2)
    hs.crm.objects.calls.basic_api.get_by_id(calls[0])
    hs.crm.objects.batch_api.read(
        "calls", BatchReadInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=i) for i in calls[:3]])
    )
    hs.crm.associations.v4.basic_api.get_page("calls", calls[0], "contacts")
    hs.crm.associations.v4.batch_api.get_page(
        "calls", "contacts",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[PublicFetchAssociationsBatchRequest(id=calls[1])]),
    )  # fmt: skip
    assert len(hs.crm.objects.get_all("meetings")) == 311  # the SDK's own pager: 4 pages
    assert hs.api_request({"method": "GET", "path": f"/crm/v3/objects/calls/{calls[2]}"}).status_code == 200
    search = {"method": "POST", "path": "/crm/v3/objects/notes/search", "body": {"limit": 1}}
    searched = hs.api_request(search)
    assert searched.json()["total"] == 604
    hs.crm.contacts.basic_api.get_page(limit=1)

    # 12 requests, 4 per 10 s: each took one permit, so the third window opened at exactly +20 s.
    assert fake.stats.total == limiter_of(hs).stats.requests == 12
    assert fake.stats.by_status == {200: 12}
    assert clock.now() == NOON + 20.0
    assert fake.arrival_times() == [NOON] * 4 + [NOON + 10.0] * 4 + [NOON + 20.0] * 4
    assert limiter_of(hs).stats.search_requests == 1


def test_search_requests_take_the_search_limit_on_top(manual_fake: FakeHubSpot, clock: ManualClock) -> None:
    fake = manual_fake
    hs = ratewindow_hubspot.client(TOKEN, host=fake.url, clock=clock)
    api = hs.crm.objects.search_api
    from hubspot.crm.objects import PublicObjectSearchRequest

    for _ in range(12):
        assert api.do_search("tasks", PublicObjectSearchRequest(limit=1)).total == 435
    hs.crm.objects.tasks.basic_api.get_page(limit=1)  # not a search: no wait
    assert fake.stats.by_status == {200: 13}
    assert fake.stats.arrival_times(search=True) == [NOON] * 5 + [NOON + 1.0] * 5 + [NOON + 2.0] * 2
    assert fake.stats.arrival_times(search=False) == [NOON + 2.0]
    # Searches also took a unit of the account's window (190 per 10 s).
    assert limiter_of(hs).account.available() == 190 - 13


@pytest.mark.realtime
def test_nothing_is_resent_below_ratewindow_not_even_a_timed_out_get(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with FakeHubSpot(latency=0.3) as fake:
        call = fake.dataset.ids("calls")[0]
        plain = hubspot.HubSpot(access_token=TOKEN, host=fake.url).crm.objects.calls.basic_api
        with pytest.raises(urllib3.exceptions.MaxRetryError):
            plain.get_by_id(call, _request_timeout=0.1)
        time.sleep(0.35)
        assert fake.stats.total == 4  # the bare SDK: urllib3 re-sent the GET three times

        fake.reset_stats()
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url)
        with pytest.raises(urllib3.exceptions.MaxRetryError) as info:  # what the SDK raises, after one send
            hs.crm.objects.calls.basic_api.get_by_id(call, _request_timeout=0.1)
        assert isinstance(info.value.reason, urllib3.exceptions.ReadTimeoutError)
        time.sleep(0.35)
        assert fake.stats.total == 1
        assert limiter_of(hs).stats.transport_errors == 1

    # A user's urllib3 retry on an existing client is switched off (it would re-send 429s in
    # milliseconds, without permits).
    with FakeHubSpot(window_limit=2, clock=ManualClock(NOON).now) as fake:
        existing = hubspot.HubSpot(
            access_token=TOKEN, host=fake.url, retry=urllib3.Retry(total=3, status_forcelist=(429,))
        )
        with caplog.at_level(logging.WARNING, logger="ratewindow.hubspot"):
            ratewindow_hubspot.wrap(existing, limits=SlidingWindow(2, 10.0))
        assert "retry policy is disabled" in caplog.text
        api = existing.crm.objects.calls.basic_api
        api.get_page(limit=1)
        hubspot.HubSpot(access_token=TOKEN, host=fake.url).crm.objects.calls.basic_api.get_page(
            limit=1
        )  # another process fills the window
        with pytest.raises(Exception) as info:
            api.get_page(limit=1)
        assert getattr(info.value, "status", None) == 429
        assert fake.stats.by_status == {200: 2, 429: 1}  # one request, not four


@pytest.mark.realtime
def test_one_shared_pool_sized_to_the_workers(roomy: FakeHubSpot, caplog: pytest.LogCaptureFixture) -> None:
    hs = ratewindow_hubspot.client(TOKEN, host=roomy.url, limits=SlidingWindow(100_000, 1.0))
    pools = {id(hs.crm.objects.calls.basic_api.api_client.rest_client.pool_manager) for _ in range(3)}
    pools.add(id(hs.crm.contacts.basic_api.api_client.rest_client.pool_manager))
    assert len(pools) == 1
    ids = roomy.dataset.ids("calls")[:200]
    with caplog.at_level(logging.WARNING, logger="urllib3"), ratewindow_hubspot.executor(
        hs, max_workers=24, progress=False
    ) as ex:
        outcomes = ex.map(lambda i: hs.crm.objects.calls.basic_api.get_by_id(i).id, ids)
    assert [o.value for o in outcomes] == ids
    assert limiter_of(hs).pool_size >= 24
    assert "Connection pool is full" not in caplog.text


def test_executor_takes_no_permit_and_sizes_workers_from_the_limits(
    manual_fake: FakeHubSpot, clock: ManualClock
) -> None:
    hs = ratewindow_hubspot.client(TOKEN, host=manual_fake.url, clock=clock)
    with ratewindow_hubspot.executor(hs, progress=False, clock=clock) as ex:
        assert isinstance(ex, RateLimitedExecutor)
        assert ex.limiter is None
        assert ex.stats.workers == limiter_of(hs).workers(0.5) == 19  # 190 / 10.1 s x 0.5 s x 2
        ids = manual_fake.dataset.ids("deals")[:50]
        outcomes = ex.map(lambda i: hs.crm.deals.basic_api.get_by_id(i).id, ids)
    assert [o.value for o in outcomes] == ids
    assert manual_fake.stats.total == limiter_of(hs).stats.requests == 50
    with ratewindow_hubspot.executor(hs, max_workers=70, progress=False) as ex:
        assert ex.stats.workers == 70
    assert limiter_of(hs).pool_size == 70


def test_the_executor_says_how_it_sized_the_workers(caplog: pytest.LogCaptureFixture) -> None:
    hs = ratewindow_hubspot.client(TOKEN)
    caplog.set_level(logging.INFO, logger="ratewindow")
    with ratewindow_hubspot.executor(hs, progress=False) as ex:
        ex.map(lambda n: n, range(3))  # no request: only the sizing is logged
    assert "as given" not in caplog.text
    assert ("ratewindow_hubspot.executor: 19 workers for 18.8 requests/s at latency=0.5 s per request "
            "(rate x latency x 2, between 2 and 64)") in caplog.text
    caplog.clear()
    with ratewindow_hubspot.executor(hs, max_workers=7, progress=False) as ex:
        ex.map(lambda n: n, range(3))
    assert "ratewindow_hubspot.executor" not in caplog.text  # the caller chose: nothing to explain
    assert "executor: 7 workers (fixed by max_workers=7" in caplog.text


def test_wrap_keeps_the_client_and_its_factory_and_wraps_once(
    manual_fake: FakeHubSpot, clock: ManualClock
) -> None:
    built: list[str] = []

    def factory(package: Any, api_name: str, config: dict[str, Any]) -> Any:
        built.append(api_name)
        configuration = package.Configuration()
        configuration.host = config["host"]
        configuration.access_token = config["access_token"]
        return getattr(package, api_name)(api_client=package.ApiClient(configuration=configuration))

    existing = hubspot.HubSpot(access_token=TOKEN, host=manual_fake.url, api_factory=factory)
    one = SlidingWindow(1, 10.0, clock=clock)
    assert ratewindow_hubspot.wrap(existing, limits=one, clock=clock) is existing
    existing.crm.objects.calls.basic_api.get_page(limit=1)
    existing.crm.objects.calls.basic_api.get_page(limit=1)
    assert built == ["BasicApi", "BasicApi"]
    assert manual_fake.arrival_times() == [NOON, NOON + 10.0]
    with pytest.raises(ValueError, match="already rate limited"):
        ratewindow_hubspot.wrap(existing)
    with pytest.raises(TypeError, match="not rate limited"):
        limiter_of(hubspot.HubSpot(access_token=TOKEN))
    with pytest.raises(TypeError, match=r"expected a hubspot\.HubSpot"):
        ratewindow_hubspot.wrap(object())  # HubSpot is untyped: any object type-checks
    with pytest.raises(ValueError, match="retry"):
        ratewindow_hubspot.client(TOKEN, retry=urllib3.Retry(3))
    with pytest.raises(ValueError, match="unknown tier"):
        ratewindow_hubspot.client(TOKEN, tier="gold")
    with pytest.raises(ValueError, match="time zone"):
        ratewindow_hubspot.client(TOKEN, time_zone="Mars/Olympus")
    with pytest.raises(ValueError, match="max_wait"):
        ratewindow_hubspot.client(TOKEN, max_wait=-1)
    with pytest.raises(TypeError, match="limiter"):
        ratewindow_hubspot.client(TOKEN, limits=190)  # type: ignore[arg-type]


def test_missing_or_unusable_arguments_are_refused_at_construction() -> None:
    with pytest.raises(TypeError, match="client\\(\\) needs access_token="):
        ratewindow_hubspot.client()
    with pytest.raises(ValueError, match="access_token must be a non-empty string, got ''"):
        ratewindow_hubspot.client("")
    with pytest.raises(ValueError, match="access_token must be a non-empty string"):
        ratewindow_hubspot.client("   ")
    with pytest.raises(TypeError, match="access_token must be a string, got int") as info:
        ratewindow_hubspot.client(12345)  # type: ignore[arg-type]
    assert "12345" not in str(info.value)  # a token, even a mistaken one, is never shown
    assert limiter_of(ratewindow_hubspot.client(api_key="developer-key")).name.startswith("hubspot:")
    with pytest.raises(ValueError, match="'oauth_app' is limited per installing account: give account_id="):
        ratewindow_hubspot.client(TOKEN, tier="oauth_app")
    with pytest.raises(ValueError, match="give account_id="):
        ratewindow_hubspot.wrap(hubspot.HubSpot(access_token=TOKEN), tier="oauth_app")
    hs = ratewindow_hubspot.client(TOKEN)
    for latency, error in ((-1, ValueError), (0, ValueError), (float("nan"), ValueError),
                           (float("inf"), ValueError), (True, TypeError), ("0.5", TypeError)):
        with pytest.raises(error, match=f"latency must be a finite number of seconds > 0, got {latency!r}"):
            ratewindow_hubspot.executor(hs, latency=latency)  # type: ignore[arg-type]


def test_presets_follow_hubspot_published_limits() -> None:
    assert {name: (t.window_limit, t.window, t.daily_limit) for name, t in TIERS.items()} == {
        "free": (100, 10.0, 250_000),
        "starter": (100, 10.0, 250_000),
        "professional": (190, 10.0, 625_000),
        "enterprise": (190, 10.0, 1_000_000),
        "api_addon": (250, 10.0, 1_000_000),
        "oauth_app": (110, 10.0, None),
    }
    hs = ratewindow_hubspot.client(TOKEN, tier="starter", time_zone="America/New_York")
    account = limiter_of(hs).account
    assert isinstance(account, Limits)
    window, daily = account.limiters
    assert isinstance(window, SlidingWindow) and isinstance(daily, DailyQuota)
    assert (window.limit, window.window, window.margin) == (100, 10.0, 0.1)
    assert (daily.limit, daily.calendar.tz_name) == (250_000, "America/New_York")
    oauth = limiter_of(ratewindow_hubspot.client(TOKEN, tier="oauth_app", account_id=42)).account
    assert isinstance(oauth, SlidingWindow) and oauth.limit == 110 and oauth.name == "hubspot:account-42"


def test_presets_adopt_the_limits_the_headers_show(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeHubSpot(tier="starter", clock=clock, wall_clock=clock) as fake:
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, tier="professional", clock=clock)
        with caplog.at_level(logging.INFO, logger="ratewindow.hubspot"):
            for _ in range(3):
                hs.crm.objects.calls.basic_api.get_page(limit=1)
        limiter = limiter_of(hs)
        assert limiter.tier == Tier("headers", 100, 10.0, 250_000)
        assert limiter.stats.adoptions == 1
        adopted = [r for r in caplog.records if r.name == "ratewindow.hubspot"]
        assert len(adopted) == 1 and adopted[0].levelno == logging.INFO
        assert "100 requests per 10 s and 250000 per day" in adopted[0].getMessage()
        # The adopted window kept the log of the requests already sent.
        assert limiter.account.available() == 100 - 3
        for _ in range(97):
            hs.crm.objects.calls.basic_api.get_page(limit=1)
        hs.crm.objects.calls.basic_api.get_page(limit=1)  # waits for the window: no 429
        assert fake.stats.by_status == {200: 101}
        assert clock.now() == NOON + 10.0 + 0.1

        caplog.clear()
        given = ratewindow_hubspot.client(
            "pat-other", host=fake.url, limits=SlidingWindow(190, 10.0, clock=clock), clock=clock
        )
        with caplog.at_level(logging.INFO, logger="ratewindow.hubspot"):
            given.crm.objects.calls.basic_api.get_page(limit=1)
            given.crm.objects.calls.basic_api.get_page(limit=1)
        assert [r.levelno for r in caplog.records] == [logging.WARNING]  # once; limits given are kept
        assert limiter_of(given).tier is None


def test_limiters_are_named_by_fingerprint_and_shared_through_a_store(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATEWINDOW_STORE", f"sqlite:///{tmp_path / 'limits.db'}")
    first = limiter_of(ratewindow_hubspot.client(TOKEN, tier="starter"))
    second = limiter_of(ratewindow_hubspot.client(TOKEN, tier="starter"))
    other_app = limiter_of(ratewindow_hubspot.client("pat-other-app", tier="starter"))
    assert first.name == f"hubspot:{token_fingerprint(TOKEN)}"
    assert TOKEN not in repr(first.account) + repr(first.search)
    window = next(m for m in first.account.limiters if isinstance(m, SlidingWindow))  # type: ignore[attr-defined]
    assert window.try_acquire(100)
    assert second.account.available() == 0  # same token, same store: one window
    assert other_app.account.available() == 100  # another app has its own window
    # ...but the same account (given by id) shares the daily quota and the search limit.
    a = limiter_of(ratewindow_hubspot.client("pat-app-a", tier="starter", account_id=7))
    b = limiter_of(ratewindow_hubspot.client("pat-app-b", tier="starter", account_id=7))
    assert a.search.try_acquire(5)
    assert b.search.available() == 0
    assert b.account.available() == 100 and a.account.available() == 95
    monkeypatch.delenv("RATEWINDOW_STORE")
    store = SQLiteStore(str(tmp_path / "explicit.db"))
    explicit = limiter_of(ratewindow_hubspot.client(TOKEN, tier="starter", store=store))
    assert explicit.account.available() == 100


def test_store_takes_a_store_or_a_store_url_and_refuses_anything_else(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    first = limiter_of(ratewindow_hubspot.client(TOKEN, tier="starter", store=url))
    second = limiter_of(ratewindow_hubspot.client(TOKEN, tier="starter", store=url))
    assert first.account.try_acquire(100)
    assert second.account.available() == 0  # one budget, through the URL's SQLite file
    for bad in (42, b"memory://", object()):
        with pytest.raises(TypeError, match="store must be .* got " + re.escape(repr(bad))):
            ratewindow_hubspot.client(TOKEN, store=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="store must be"):
            ratewindow_hubspot.wrap(hubspot.HubSpot(access_token=TOKEN), store=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid store URL"):
        ratewindow_hubspot.client(TOKEN, store="mongodb://x")


@pytest.mark.realtime
def test_until_the_first_response_only_a_tenth_of_the_window_is_sent() -> None:
    # The first response shows how much of the window others already spend; until it comes, at
    # most 10 % of the window goes out, instead of a burst into a window that may be nearly full.
    with FakeHubSpot(latency=0.2) as fake:
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, limits=SlidingWindow(20, 10.0))
        start = threading.Barrier(5)

        def call() -> None:
            start.wait()
            hs.crm.objects.calls.basic_api.get_page(limit=1)

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        times = fake.arrival_times()
        assert times[1] - times[0] < 0.1  # two (10 % of 20) at once
        assert times[2] - times[0] >= 0.19  # the other three after the first response


def test_search_endpoints_are_told_apart_by_method_and_path() -> None:
    from ratewindow_hubspot._limits import is_search, workers_for

    assert is_search("POST", "/crm/v3/objects/contacts/search")
    assert is_search("post", "/proxy/hubspot/crm/v3/objects/0-1/search/")
    assert not is_search("GET", "/crm/v3/objects/contacts/search")
    assert not is_search("POST", "/crm/v3/objects/contacts/batch/read")
    assert not is_search("POST", "/crm/v3/objects/contacts/search/extra")
    assert (workers_for(19.0, 0.5), workers_for(1.0, 0.01), workers_for(1000.0, 1.0)) == (19, 2, 64)


class _Oversleeping(ManualClock):
    """A clock whose sleeps end 50 ms late, as a thread's do on a busy machine."""

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds + 0.05 if seconds > 0 else seconds)


def test_a_permit_used_late_counts_from_when_it_was_sent() -> None:
    clock = _Oversleeping(NOON)
    with FakeHubSpot(clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(
            TOKEN, host=fake.url, limits=SlidingWindow(2, 10.0, margin=0.02, clock=clock), clock=clock
        )
        api = hs.crm.objects.calls.basic_api
        api.get_page(limit=1)
        api.get_page(limit=1)
        api.get_page(limit=1)  # booked for NOON + 10.02, sent at NOON + 10.07
        assert clock.now() == pytest.approx(NOON + 10.07)
        # The core confirmed the late permit when its thread resumed: its unit counts from the
        # send (NOON + 10.07) to NOON + 20.09, not from the booked time, so two more units wait
        # the full 10.02 s (9.97 s if it had stayed at its booked time).
        assert limiter_of(hs).account.wait_time(2) == pytest.approx(10.02)


def test_forecast_the_seed_workload_and_a_day_beyond_the_daily_limit(clock: ManualClock) -> None:
    # NOON is 07:00 in New York: 625,000 requests at 190 per 10.1 s end before midnight, so the
    # daily limit stops 700,000 after 625,000 until the account's midnight.
    hs = ratewindow_hubspot.client(TOKEN, tier="professional", time_zone="America/New_York", clock=clock)
    limiter = limiter_of(hs)
    seed = limiter.forecast(3_067)
    assert seed.seconds == pytest.approx(16 * 10.1) and not seed.stopped  # 16 full windows of 10 s + margin
    assert seed == limiter.account.forecast(3_067)  # type: ignore[attr-defined]
    day = limiter.forecast(700_000)
    assert day.stopped_after == 625_000
    assert day.resets_at is not None and day.resets_at.isoformat() == "2026-03-05T00:00:00-05:00"
    with pytest.raises(ValueError, match="n must be a positive integer"):
        limiter.forecast(0)


# -- watching the client ---------------------------------------------------------------------------
def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_the_limiter_is_watched_and_every_request_grant_is_counted_once(clock: ManualClock) -> None:
    from ratewindow.metrics import PrometheusMetrics

    with FakeHubSpot(tier="starter", clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, tier="professional", clock=clock)
        metrics = PrometheusMetrics().watch(limiter_of(hs))
        server = metrics.serve(0)
        try:
            api = hs.crm.objects.calls.basic_api
            api.get_page(limit=1)  # its headers show the starter tier: the limits are rebuilt
            hs.api_request({"method": "GET", "path": "/crm/v3/objects/calls"})
            hs.api_request({"method": "POST", "path": "/crm/v3/objects/notes/search", "body": {"limit": 1}})
            for _ in range(97):
                api.get_page(limit=1)
            api.get_page(limit=1)  # the 101st waits for the window
            values = scrape(server.server_port)
        finally:
            server.shutdown()
            server.server_close()
    assert limiter_of(hs).stats.adoptions == 1
    label = f'{{limiter="{limiter_of(hs).name}"}}'
    assert values[f"ratewindow_grants_total{label}"] == fake.stats.total == 101
    assert values[f"ratewindow_wait_seconds_count{label}"] == 101
    assert values[f"ratewindow_wait_seconds_sum{label}"] == pytest.approx(10.1)
    assert values[f"ratewindow_responses_total{label}"] == 101
    assert f"ratewindow_denials_total{label}" not in values


def test_a_429_is_a_pause_and_a_refusal_in_opentelemetry(clock: ManualClock) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from ratewindow.otel import OpenTelemetryMetrics

    reader = InMemoryMetricReader()
    with FakeHubSpot(window_limit=2, clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, limits=SlidingWindow(2, 10.0, clock=clock),
                                       max_wait=5.0, clock=clock)
        OpenTelemetryMetrics(MeterProvider(metric_readers=[reader])).watch(limiter_of(hs))
        api = hs.crm.objects.calls.basic_api
        api.get_page(limit=1)
        hubspot.HubSpot(access_token=TOKEN, host=fake.url).crm.objects.calls.basic_api.get_page(
            limit=1
        )  # another process fills the window
        with pytest.raises(Exception) as info:
            api.get_page(limit=1)
        assert getattr(info.value, "status", None) == 429  # every worker paused until the window frees
        with pytest.raises(AcquireTimeout):
            api.get_page(limit=1)  # the window frees in 10 s, beyond max_wait: refused, not sent
    assert fake.stats.by_status == {200: 2, 429: 1}
    data = reader.get_metrics_data()
    assert data is not None
    found = {metric.name: sum(getattr(point, "value", 0) for point in metric.data.data_points)
             for r in data.resource_metrics for s in r.scope_metrics for metric in s.metrics
             if all(dict(point.attributes) == {"limiter": limiter_of(hs).name}
                    for point in metric.data.data_points)}
    assert found["ratewindow.grants"] == 2
    assert found["ratewindow.denials"] == 1
    assert found["ratewindow.pauses"] == 1
    assert (found["ratewindow.responses"], found["ratewindow.refusals"]) == (2, 1)
