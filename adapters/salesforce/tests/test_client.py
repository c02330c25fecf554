"""client / wrap / executor against FakeSalesforce with the real simple-salesforce: every request
takes its permits, nothing is re-sent below ratewindow, the allocation is learned and calibrated,
refusals become ratewindow's signals, expired sessions are never retried blindly."""

from __future__ import annotations

import logging
import pickle
import re
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from conftest import Connect, MakeFake
from ratewindow import (
    AcquireTimeout,
    ConcurrencyLimit,
    Limits,
    MemoryStore,
    QuotaExhausted,
    RetryLater,
    SalesforceLimitInfo,
    SlidingWindow,
    SQLiteStore,
    TokenBucket,
)
from ratewindow.testing import ManualClock
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)
from urllib3.util.retry import Retry as Urllib3Retry

import ratewindow_salesforce as rs
from ratewindow_salesforce._client import SalesforceAdapter, adapter_of, request_cost
from ratewindow_salesforce.testing import FakeSalesforce

parse_limit_info = SalesforceLimitInfo.parse  # the header is read by the core
DAY = 86_400.0


def test_public_surface_is_complete() -> None:  # its order is ruff's (RUF022)
    assert len(rs.__all__) == len(set(rs.__all__))
    public = {name for name in vars(rs) if not name.startswith("_") or name == "__version__"}
    assert public - {"testing", "AllocationExhausted"} == set(rs.__all__)
    assert rs.AllocationExhausted is rs.DailyLimitExhausted  # the earlier name still catches it


def test_client_is_a_real_salesforce_with_the_adapter_on_the_instance(fake: FakeSalesforce, connect: Connect
                                                                      ) -> None:
    sf = connect(fake)
    assert type(sf) is Salesforce
    adapter = sf.session.get_adapter(f"{fake.instance_url}/services/data/")
    assert isinstance(adapter, SalesforceAdapter)
    assert adapter.max_retries.total == 0  # nothing re-sent below ratewindow
    assert sf.session.get_adapter("https://login.salesforce.com/") is not adapter  # sign-in: not an org call
    assert rs.limiter_of(sf).stats.name == f"salesforce:127.0.0.1:{fake.port}"


def test_every_request_takes_its_permits_and_reaches_the_fake_once(fake: FakeSalesforce, connect: Connect
                                                                   ) -> None:
    sf = connect(fake, limits=rs.OrgLimits(allocation=15_000))
    adapter = adapter_of(sf)
    sf.describe()
    sf.Account.describe()
    first = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]
    sf.Account.get(first["Id"])
    assert sf.query_all("SELECT Id FROM Account")["totalSize"] == 5000  # 3 pages: 3 requests
    sf.restful("tooling/query/", params={"q": "SELECT Id FROM ApexTrigger LIMIT 2"})
    sf.toolingexecute("query/?q=SELECT+Id+FROM+ApexClass+LIMIT+2")
    sf.limits()
    composite = {"compositeRequest": [{"method": "GET", "url": "/services/data/v59.0/limits",
                                       "referenceId": f"r{i}"} for i in range(3)]}
    sf.restful("composite", method="POST", json=composite)  # 1 unit
    batch = {"batchRequests": [{"method": "GET", "url": "v59.0/limits"} for _ in range(4)]}
    sf.restful("composite/batch", method="POST", json=batch)  # 4 units
    records = [{"attributes": {"type": "Account"}, "Name": f"Coll {i}"} for i in range(2)]
    sf.restful("composite/sobjects", method="POST", json={"records": records})  # 1 unit
    assert sf.session.get(f"{fake.instance_url}/services/data/").status_code == 200  # versions: 0 units
    assert adapter.sent == fake.stats.total == 14
    assert fake.stats.units == fake.allocation_used == 16
    assert rs.limiter_of(sf).stats.ours == 16
    assert adapter.org.available() == 15_000 - 16  # permits taken == units counted by the server


def test_request_cost_is_computed_from_the_request() -> None:
    def prepared(method: str, path: str, **kwargs: Any) -> requests.PreparedRequest:
        return requests.Request(method, f"https://org.example{path}", **kwargs).prepare()

    assert request_cost(prepared("GET", "/services/data/")) == 0
    assert request_cost(prepared("GET", "/services/data")) == 0
    assert request_cost(prepared("POST", "/services/oauth2/token")) == 0
    assert request_cost(prepared("GET", "/services/data/v59.0/limits")) == 1
    composite = {"compositeRequest": []}
    assert request_cost(prepared("POST", "/services/data/v59.0/composite", json=composite)) == 1
    batch = {"batchRequests": [{"method": "GET", "url": "v59.0/limits"}] * 7}
    assert request_cost(prepared("POST", "/services/data/v59.0/composite/batch", json=batch)) == 7
    assert request_cost(prepared("POST", "/services/data/v59.0/composite/batch", data=b"not json")) == 1
    assert request_cost(prepared("POST", "/services/Soap/m/59.0", data=b"<xml/>")) == 1


def test_bulk_bulk2_and_metadata_go_through_the_session(fake: FakeSalesforce, connect: Connect) -> None:
    # The fake serves Bulk 2.0 but no Bulk 1.0 or Metadata API: each of those calls is answered
    # (404 / 401), and every request must reach the fake through the rate-limited adapter, once.
    sf = connect(fake, limits=rs.OrgLimits(allocation=15_000))
    adapter = adapter_of(sf)
    pages = list(sf.bulk2.Account.query("SELECT Id FROM Account", wait=0))
    assert sum(page.count("\n") - 1 for page in pages) == 5000  # CSV: a header line, then the records
    with pytest.raises(SalesforceResourceNotFound):
        sf.bulk.Account.query("SELECT Id FROM Account")
    assert sf.mdapi._client.transport.session is sf.session  # zeep would otherwise use its own session
    with pytest.raises(Exception):  # noqa: B017 - zeep's error for a non-SOAP 401 answer
        sf.mdapi.describe_metadata()
    paths = [record.path for record in fake.stats.requests]
    job = paths[1].rsplit("/", 1)[-1]
    assert paths == ["/services/data/v59.0/jobs/query", *[f"/services/data/v59.0/jobs/query/{job}"] * 2,
                     f"/services/data/v59.0/jobs/query/{job}/results", "/services/async/59.0/job",
                     "/services/Soap/m/59.0/"]
    assert adapter.sent == 6 == rs.limiter_of(sf).stats.requests
    assert adapter.org.available() == 15_000 - 6  # one permit each


class CountingAdapter(HTTPAdapter):
    """A user's transport: records every request it is handed, then sends it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []  # as sent (a re-send changes the request in place)
        self.closed = 0

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent.append((request.method or "", urlsplit(request.url or "").path))
        self.headers.append(dict(request.headers))
        return super().send(request, *args, **kwargs)

    def close(self) -> None:
        self.closed += 1
        super().close()


@pytest.mark.parametrize("where", ["instance", "https://"])
def test_the_users_mounted_adapter_keeps_receiving_every_request_one_permit_each(
        fake: FakeSalesforce, sessions: list[requests.Session], where: str) -> None:
    http = fake.session()
    sessions.append(http)
    counting = CountingAdapter()
    http.mount(f"{fake.instance_url}/" if where == "instance" else where, counting)
    sf = rs.wrap(Salesforce(instance_url=fake.instance_url, session_id=fake.session_id, session=http),
                 limits=rs.OrgLimits(allocation=1_000), store=MemoryStore())
    adapter = adapter_of(sf)
    assert adapter.transport is counting
    sf.describe()
    assert sf.query_all("SELECT Id FROM Account")["totalSize"] == 5000  # 3 pages
    batch = {"batchRequests": [{"method": "GET", "url": "v59.0/limits"} for _ in range(4)]}
    sf.restful("composite/batch", method="POST", json=batch)  # 4 units
    with pytest.raises(SalesforceResourceNotFound):
        sf.bulk.Account.query("SELECT Id FROM Account")  # Bulk 1.0: not served, but sent through it
    with pytest.raises(Exception):  # noqa: B017 - zeep's error for a non-SOAP answer
        sf.mdapi.describe_metadata()
    assert counting.sent == [(r.method, r.path) for r in fake.stats.requests]
    assert len(counting.sent) == adapter.sent == fake.stats.total == 7
    assert adapter.org.available() == 1_000 - 10  # one permit per unit: 1 + 3 + 4 + 1 + 1
    assert fake.allocation_used == 9  # the Metadata API's 401 (no SOAP session) is not counted

    rs.wrap(sf, limits=rs.OrgLimits(allocation=1_000), store=MemoryStore())  # wrapping again keeps it
    assert adapter_of(sf).transport is counting and counting.closed == 0
    sf.limits()
    assert len(counting.sent) == fake.stats.total == 8
    http.close()
    assert counting.closed >= 1  # closed with the session, wherever it was mounted


def test_requests_stock_adapter_is_stood_in_for_by_the_adapters_own_pool(
        fake: FakeSalesforce, connect: Connect) -> None:
    sf = connect(fake)
    adapter = adapter_of(sf)
    assert adapter.transport is None and adapter.max_retries.total == 0  # nothing re-sent below ratewindow
    assert adapter.poolmanager.connection_pool_kw["maxsize"] >= 64
    sf.limits()
    assert adapter.sent == fake.stats.total == 1


def test_a_user_adapter_that_re_sends_is_kept_and_its_re_sends_take_no_permit(
        fake: FakeSalesforce, sessions: list[requests.Session], caplog: pytest.LogCaptureFixture) -> None:
    http = fake.session()
    sessions.append(http)
    http.mount("https://", HTTPAdapter(max_retries=Urllib3Retry(total=5, status_forcelist=[404],
                                                                 allowed_methods=None, backoff_factor=0,
                                                                 raise_on_status=False)))
    with caplog.at_level(logging.WARNING, logger="ratewindow.salesforce"):
        sf = rs.wrap(Salesforce(instance_url=fake.instance_url, session_id=fake.session_id, session=http),
                     limits=rs.OrgLimits(allocation=1_000), store=MemoryStore())
    assert "re-sends requests itself" in caplog.text and "take no permit" in caplog.text
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/No_Such__c/describe")
    assert fake.stats.total == 6  # the user's policy: five re-sends of a 404, as without the wrap
    assert adapter_of(sf).sent == 1 and adapter_of(sf).org.stats.foreign == 5  # the header told the rest


def test_wrap_again_replaces_the_configuration(fake: FakeSalesforce, connect: Connect) -> None:
    sf = connect(fake, limits=rs.OrgLimits(allocation=10))
    first = adapter_of(sf)
    rs.wrap(sf, limits=rs.OrgLimits(allocation=20), store=MemoryStore())
    assert adapter_of(sf) is not first
    assert adapter_of(sf).org.allocation == 20
    sf.limits()
    assert first.sent == 0 and adapter_of(sf).sent == 1


def test_unwrapped_clients_and_bad_arguments_are_refused(fake: FakeSalesforce, plain: Any) -> None:
    sf = plain(fake)
    with pytest.raises(TypeError, match="not wrapped"):
        rs.executor(sf)
    with pytest.raises(TypeError, match="not wrapped"):
        rs.composite(sf, ["limits"])
    with pytest.raises(TypeError, match=r"simple_salesforce\.Salesforce"):
        rs.wrap(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency must be"):
        rs.wrap(sf, concurrency=0)
    with pytest.raises(TypeError, match="OrgLimits"):
        rs.wrap(sf, limits=100)  # type: ignore[arg-type]
    for bad in (42, b"memory://", object()):
        with pytest.raises(TypeError, match="store must be .* got " + re.escape(repr(bad))):
            rs.wrap(sf, store=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid store URL"):
        rs.wrap(sf, store="mongodb://x")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [({"instance_url": "acme"}, ValueError, "instance_url must be an https URL .*, got 'acme'"),
     ({"instance_url": "http://acme.my.salesforce.com"}, ValueError, "must be an https URL"),
     ({"instance_url": "https://"}, ValueError, "must be an https URL"),
     ({"instance_url": "https://acme:port"}, ValueError, "must be an https URL"),
     ({"instance_url": None}, TypeError, "instance_url must be a string .*, got None"),
     ({"session_id": ""}, ValueError, "session_id must be a non-empty string"),
     ({"session_id": " "}, ValueError, "session_id must be a non-empty string"),
     ({"session_id": None}, TypeError, "session_id must be a string, got NoneType")],
)
def test_client_refuses_an_unusable_instance_url_or_session_id(kwargs: dict[str, Any], error: type[Exception],
                                                               message: str) -> None:
    arguments = {"instance_url": "https://acme.my.salesforce.com", "session_id": "00D!x", **kwargs}
    with pytest.raises(error, match=message):
        rs.client(**arguments, store=MemoryStore())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"reserve": 1.0}, "reserve must be a fraction"), ({"reserve": -0.1}, "reserve"),
     ({"allocation": 0}, "allocation must be"), ({"per_minute": 2.5}, "per_minute"),
     ({"window": 0}, "window must be"), ({"max_wait": -1}, "max_wait"),
     ({"busy_pause": float("nan")}, "busy")],
)
def test_org_limits_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        rs.OrgLimits(**kwargs)


def test_org_limits_is_a_small_value() -> None:
    limits = rs.OrgLimits(allocation=15_000, reserve=0.1, per_minute=200)
    assert repr(limits) == ("OrgLimits(allocation=15000, reserve=0.1, per_minute=200, margin=1.0, "
                            "window=86400.0, max_wait=60.0, busy_pause=5.0)")
    assert limits.allowance(15_000) == 13_500
    assert rs.OrgLimits(reserve=0.15).allowance(15) == 12  # the reserve is never rounded down
    assert parse_limit_info("api-usage=18/15000; per-app-usage=17/250(appName=etl)") == (18, 15000)
    assert parse_limit_info("per-app-usage=17/250") is None
    assert parse_limit_info(None) is None


# -- the allocation ---------------------------------------------------------------------------------
def test_allocation_is_learned_from_the_first_response_which_goes_alone(make_fake: MakeFake,
                                                                       connect: Connect) -> None:
    fake = make_fake(allocation=500, latency=(0.05, 0.05))
    sf = connect(fake)
    assert rs.limiter_of(sf).stats.allocation is None
    threads = [threading.Thread(target=sf.limits) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = sorted(fake.stats.requests, key=lambda record: record.arrival)
    assert len(records) == 8
    assert all(records[0].finish <= later.arrival for later in records[1:])  # the probe went alone
    usage = rs.limiter_of(sf).stats
    assert (usage.allocation, usage.allowance, usage.ours, usage.foreign) == (500, 500, 8, 0)
    assert adapter_of(sf).org.available() == 500 - 8  # the probe was booked once the window existed


def test_the_reserve_stops_the_client_with_allocation_exhausted_and_retry_at(make_fake: MakeFake,
                                                                            connect: Connect) -> None:
    clock = ManualClock(start=1_000.0)
    fake = make_fake(allocation=50, clock=clock)
    sf = connect(fake, limits=rs.OrgLimits(reserve=0.1), clock=clock)
    for _ in range(45):
        sf.limits()
        clock.advance(1.0)
    with pytest.raises(rs.DailyLimitExhausted) as info:
        sf.limits()
    error = info.value
    assert isinstance(error, QuotaExhausted)
    assert (error.allocation, error.allowance) == (50, 45)
    assert error.retry_after == pytest.approx(1_000.0 + DAY - 1_045.0)
    assert error.retry_at == pytest.approx(1_000.0 + DAY)  # the first call leaves the rolling window
    assert fake.allocation_used == 45 and fake.stats.refusals == 0 and fake.stats.total == 45
    clock.advance(error.retry_after)
    sf.limits()  # the first unit has left the window: sent at once
    assert clock.now() == 1_000.0 + DAY
    sf.limits()  # the next one leaves it 1 s later: within max_wait, so the client waits
    assert clock.now() == 1_001.0 + DAY
    assert fake.stats.refusals == 0 and fake.stats.total == 47


def test_other_apps_use_is_yielded_from_sforce_limit_info(fake: FakeSalesforce, make_fake: MakeFake,
                                                          connect: Connect) -> None:
    org = make_fake(allocation=100)
    sf = connect(org)
    sf.limits()
    org.spend(30)  # another integration
    sf.limits()
    usage = rs.limiter_of(sf).stats
    assert (usage.org_used, usage.ours, usage.foreign, usage.available) == (32, 2, 30, 68)
    calls = 2
    while rs.limiter_of(sf).stats.available:
        sf.limits()
        calls += 1
    with pytest.raises(rs.DailyLimitExhausted):
        sf.limits()
    assert calls == 70
    assert org.allocation_used == 100 and org.stats.refusals == 0
    # repeated headers never add up: the same measurement again changes nothing
    assert rs.limiter_of(sf).stats.foreign == 30


def test_a_server_refusal_becomes_allocation_exhausted_and_pauses_everyone(make_fake: MakeFake,
                                                                          connect: Connect) -> None:
    clock = ManualClock(start=1_000.0)
    fake = make_fake(allocation=5, clock=clock)
    store = MemoryStore()
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000), store=store, clock=clock)  # wrongly told 1,000
    other = connect(fake, limits=rs.OrgLimits(allocation=1_000), store=store, clock=clock)  # same store
    for _ in range(5):
        sf.limits()
        clock.advance(1.0)
    with pytest.raises(rs.DailyLimitExhausted) as info:
        sf.limits()
    assert fake.stats.refusals == 1
    assert 1_000.0 + DAY <= info.value.retry_at <= 1_001.0 + DAY
    with pytest.raises(rs.DailyLimitExhausted):
        other.limits()  # paused through the store: not sent
    assert fake.stats.total == 6


def test_pace_waits_and_bounds_the_wait(make_fake: MakeFake, connect: Connect) -> None:
    clock = ManualClock(start=0.0)
    fake = make_fake(clock=clock)
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000, per_minute=3, margin=0.0, max_wait=30.0),
                 clock=clock)
    for _ in range(3):
        sf.limits()
    start = clock.now()
    with pytest.raises(AcquireTimeout):  # the pace frees in 60 s, beyond max_wait: not sent
        sf.limits()
    assert clock.now() == start and fake.stats.total == 3
    clock.advance(45.0)
    sf.limits()  # 15 s left: waited
    assert clock.now() == pytest.approx(60.0)
    assert fake.stats.total == 4


# -- refusals and sessions -------------------------------------------------------------------------
@pytest.mark.realtime
def test_concurrent_refusal_pauses_and_the_executor_retries(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake(concurrency_limit=1, long_running_threshold=0.0, latency=(0.2, 0.2))
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000, busy_pause=0.3))

    def call(i: int) -> int:
        if i == 1:
            time.sleep(0.05)  # arrives while the first is in flight: refused
        return int(sf.limits()["DailyApiRequests"]["Max"])

    with rs.executor(sf, max_workers=2, progress=False) as pool:
        outcomes = pool.map(call, [0, 1])
        stats = pool.stats
    assert [o.value for o in outcomes] == [15_000, 15_000]
    assert [o.attempts for o in outcomes] == [1, 2]
    assert fake.stats.refusals == 1 and stats.rate_limited == 1
    assert rs.limiter_of(sf).stats.refused == 1
    first = threading.Thread(target=sf.limits)
    first.start()
    time.sleep(0.05)
    try:
        with pytest.raises(RetryLater):  # outside an executor the signal reaches the caller
            sf.limits()
    finally:
        first.join()


@pytest.mark.realtime
def test_a_concurrency_cap_prevents_the_refusals(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake(concurrency_limit=2, long_running_threshold=0.0, latency=(0.02, 0.04))
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000), concurrency=ConcurrencyLimit(2))
    with rs.executor(sf, max_workers=8, progress=False) as pool:
        outcomes = pool.map(lambda _: sf.limits(), range(40))
    assert all(o.ok for o in outcomes)
    assert fake.stats.refusals == 0 and fake.stats.max_concurrent <= 2 and fake.stats.total == 40


def test_an_expired_session_is_never_retried(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake(session_ids={"00DGOOD!token"})
    sf = connect(fake, session_id="00DBAD!expired")
    with rs.executor(sf, max_workers=2, progress=False) as pool:
        outcomes = pool.map(lambda _: sf.limits(), range(3))
    assert all(isinstance(o.error, SalesforceExpiredSession) and o.attempts == 1 for o in outcomes)
    assert fake.stats.total == 3 and fake.allocation_used == 0
    assert rs.limiter_of(sf).stats.expired == 3


def test_refresh_is_called_once_and_the_request_sent_once_more(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake(session_ids={"00DNEW!token"}, latency=(0.02, 0.02))
    calls: list[int] = []

    def refresh() -> str:
        calls.append(1)
        return "00DNEW!token"

    sf = connect(fake, session_id="00DOLD!expired", refresh=refresh, limits=rs.OrgLimits(allocation=1_000))
    threads = [threading.Thread(target=sf.limits) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1] and rs.limiter_of(sf).stats.refreshes == 1
    assert sf.session_id == "00DNEW!token"
    statuses = fake.stats.by_status()
    assert statuses[200] == 8 and statuses.get(401, 0) <= 8 and fake.stats.total == 8 + statuses.get(401, 0)
    sf.limits()
    assert fake.stats.by_status()[200] == 9 and calls == [1]


def test_a_refresh_that_does_not_help_is_not_repeated(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake(session_ids={"00DGOOD!token"})
    calls: list[int] = []

    def refresh() -> str:
        calls.append(1)
        return "00DSTILL!bad"

    sf = connect(fake, session_id="00DOLD!expired", refresh=refresh)
    with pytest.raises(SalesforceExpiredSession):
        sf.limits()
    assert calls == [1] and fake.stats.total == 2  # the first try and one re-send


def test_refresh_renews_an_expired_bulk_1_session_in_the_header_it_was_sent_in(
        make_fake: MakeFake, sessions: list[requests.Session]) -> None:
    fake = make_fake(session_ids={"00DNEW!token"})
    http = fake.session()
    sessions.append(http)
    recording = CountingAdapter()
    http.mount("https://", recording)
    calls: list[int] = []

    def refresh() -> str:
        calls.append(1)
        return "00DNEW!token"

    sf = rs.wrap(Salesforce(instance_url=fake.instance_url, session_id="00DOLD!expired", session=http),
                 refresh=refresh, limits=rs.OrgLimits(allocation=1_000), store=MemoryStore())
    stale = sf.Account  # built with the old session id, kept across the refresh
    with pytest.raises(SalesforceResourceNotFound):  # the session is good again; no Bulk 1.0 job served
        sf.bulk.Account.query("SELECT Id FROM Account")
    assert calls == [1] and sf.session_id == "00DNEW!token"
    assert fake.stats.by_status() == {400: 1, 404: 1}  # Bulk 1.0 says 400 InvalidSessionId, not 401
    sessions_sent = [(h.get("X-SFDC-Session"), h.get("Authorization")) for h in recording.headers]
    assert sessions_sent == [("00DOLD!expired", None), ("00DNEW!token", None)]
    stats = rs.limiter_of(sf).stats
    assert (stats.expired, stats.refreshes, stats.ours) == (1, 1, 1)  # the refused one is not charged

    stale.describe()  # carries the old id: sent with the new one at once, no 401 first
    assert recording.headers[-1]["Authorization"] == "Bearer 00DNEW!token"
    assert fake.stats.by_status() == {400: 1, 404: 1, 200: 1} and calls == [1]


def test_an_expired_bulk_1_session_without_refresh_is_the_sdks_error(make_fake: MakeFake, connect: Connect
                                                                    ) -> None:
    fake = make_fake(session_ids={"00DGOOD!token"})
    sf = connect(fake, session_id="00DBAD!expired")
    with pytest.raises(SalesforceMalformedRequest) as info:  # what simple-salesforce raises for a 400
        sf.bulk.Account.query("SELECT Id FROM Account")
    assert info.value.content["exceptionCode"] == "InvalidSessionId"
    assert fake.stats.total == 1 and rs.limiter_of(sf).stats.expired == 1


def test_the_executor_says_how_it_sized_the_workers(caplog: pytest.LogCaptureFixture) -> None:
    sf = rs.client(instance_url="https://acme.my.salesforce.com", session_id="00Dx!session", concurrency=5)
    caplog.set_level(logging.INFO, logger="ratewindow")
    with rs.executor(sf, progress=False) as pool:
        pool.map(lambda n: n, range(3))  # no request: only the sizing is logged
    assert "as given" not in caplog.text
    assert "ratewindow_salesforce.executor: 5 workers, the client's concurrency cap" in caplog.text


@pytest.mark.parametrize(("name", "error"), [(5, TypeError), ("", ValueError)])
def test_a_bad_org_name_is_refused_by_type_or_value(name: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="name must be a non-empty string"):
        rs.client(instance_url="https://acme.my.salesforce.com", session_id="00Dx!session", name=name)  # type: ignore[arg-type]


def test_allocation_exhausted_pickles() -> None:
    error = rs.DailyLimitExhausted(123.0, "salesforce:x", 4.5, 100, 90)
    again = pickle.loads(pickle.dumps(error))
    assert (again.retry_at, again.limiter, again.retry_after, again.allocation, again.allowance) == (
        123.0, "salesforce:x", 4.5, 100, 90)
    assert str(again) == str(error)


def test_allocation_exhausted_says_when_in_iso_8601_with_its_offset() -> None:
    error = rs.DailyLimitExhausted(1_796_533_200.0, "salesforce:acme", 100.0, 15_000, 13_500)
    assert str(error) == (
        "Salesforce allocation 'salesforce:acme' spent (13,500 of the org's 15,000 requests may be used); "
        "it frees in 100.000 s, at 2026-12-06T05:00:00+00:00 (Unix time 1796533200.000)"
    )


def test_the_session_id_never_appears(make_fake: MakeFake, connect: Connect, caplog: pytest.LogCaptureFixture,
                                      capfd: pytest.CaptureFixture[str]) -> None:
    old, new = "00DSECRET!old-token-do-not-print", "00DSECRET!new-token-do-not-print"
    fake = make_fake(allocation=30, session_ids={new}, concurrency_limit=1, long_running_threshold=0.0,
                     latency=(0.05, 0.05))
    caplog.set_level(logging.DEBUG)
    sf = connect(fake, session_id=old, refresh=lambda: new, limits=rs.OrgLimits(reserve=0.1, busy_pause=0.01))
    texts: list[str] = []
    with rs.executor(sf, max_workers=4, progress=False) as pool:
        outcomes = pool.map(lambda _: sf.limits(), range(40))
        texts += [repr(pool), repr(pool.stats)]
    errors = [o.error for o in outcomes if o.error is not None]
    assert any(isinstance(e, QuotaExhausted) for e in errors)
    for error in errors:
        texts += [str(error), repr(error), repr(error.args), str(error.__cause__), repr(error.__cause__)]
    texts += [repr(o) for o in outcomes]
    texts += [repr(sf.session.adapters), repr(adapter_of(sf)), repr(rs.limiter_of(sf)),
              repr(rs.limiter_of(sf).stats), repr(sf.mdapi), repr(fake.stats.requests)]
    out, err = capfd.readouterr()
    texts += [caplog.text, out, err]
    assert any("salesforce:127.0.0.1" in text for text in texts)
    for text in texts:
        assert old not in text and new not in text
        assert "SECRET" not in text


def test_allocation_exhausted_stops_an_executor_batch(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake(allocation=10)
    sf = connect(fake, limits=rs.OrgLimits(allocation=10))
    with rs.executor(sf, max_workers=3, progress=False) as pool:
        outcomes = pool.map(lambda _: sf.limits(), range(30))
    ok = [o for o in outcomes if o.ok]
    stopped = [o for o in outcomes if not o.ok]
    assert len(ok) == 10 and fake.allocation_used == 10 and fake.stats.refusals == 0
    assert all(isinstance(o.error, QuotaExhausted) for o in stopped)
    assert sum(o.attempts == 0 for o in stopped) >= 30 - 10 - 3  # the rest never ran
    assert stopped[-1].error.retry_at is not None  # type: ignore[union-attr]


def test_two_clients_share_one_org_through_a_sqlite_store(fake: FakeSalesforce, connect: Connect,
                                                          tmp_path: Any) -> None:
    path = tmp_path / "limits.db"
    first = connect(fake, limits=rs.OrgLimits(allocation=20), concurrency=2, store=f"sqlite:///{path}")
    second = connect(fake, limits=rs.OrgLimits(allocation=20), concurrency=2, store=SQLiteStore(path))
    for client in [first, second] * 10:
        client.limits()
    with pytest.raises(rs.DailyLimitExhausted):
        first.limits()
    with pytest.raises(rs.DailyLimitExhausted):
        second.limits()
    assert fake.allocation_used == 20 and fake.stats.refusals == 0 and fake.stats.total == 20
    assert rs.limiter_of(first).stats.ours == rs.limiter_of(second).stats.ours == 20


# -- watching the client ---------------------------------------------------------------------------
def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_the_limiter_is_watched_and_every_request_grant_is_counted_once(make_fake: MakeFake,
                                                                       connect: Connect) -> None:
    from ratewindow.metrics import PrometheusMetrics

    clock = ManualClock(start=1_000.0)
    fake = make_fake(allocation=10, clock=clock)
    sf = connect(fake, limits=rs.OrgLimits(reserve=0.1, per_minute=4, margin=0.0), clock=clock)
    org = rs.limiter_of(sf)
    metrics = PrometheusMetrics().watch(org)
    server = metrics.serve(0)
    try:
        for _ in range(9):  # the allowance: 9 of 10. The first goes alone and teaches the allocation.
            sf.limits()
        with pytest.raises(rs.DailyLimitExhausted):
            sf.limits()  # the reserve: refused, not sent
        values = scrape(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
    label = f'{{limiter="{org.name}"}}'
    # One grant per request sent, whichever limiter held the allowance (the pace alone, then the
    # pace and the daily window, rebuilt from the first header); the probe's unit, booked in the
    # daily window once it existed, is not a second grant.
    assert values[f"ratewindow_grants_total{label}"] == fake.stats.total == 9
    assert values[f"ratewindow_denials_total{label}"] == 1
    assert values[f"ratewindow_wait_seconds_sum{label}"] == 120.0  # 4 a minute: the 5th and 9th wait 60 s
    assert values[f"ratewindow_responses_total{label}"] == 9
    assert f"ratewindow_refusals_total{label}" not in values  # never refused by Salesforce
    assert values[f"ratewindow_available{label}"] == 0


def test_refusals_pauses_and_reservations_reach_opentelemetry(make_fake: MakeFake, connect: Connect) -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from ratewindow.otel import OpenTelemetryMetrics

    clock = ManualClock(start=1_000.0)
    fake = make_fake(allocation=5, clock=clock)
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000), clock=clock)  # wrongly told 1,000
    org = rs.limiter_of(sf)
    assert org.reserve().wait() == 0.0  # a reservation, told when confirmed
    reader = InMemoryMetricReader()
    OpenTelemetryMetrics(MeterProvider(metric_readers=[reader])).watch(org)
    booking = org.reserve()
    assert booking.cancel()  # given back: not a grant
    assert org.reserve(2).wait() == 0.0
    for _ in range(5):
        sf.limits()
        clock.advance(1.0)
    with pytest.raises(rs.DailyLimitExhausted):
        sf.limits()  # sent, refused by Salesforce (REQUEST_LIMIT_EXCEEDED): every worker paused
    with pytest.raises(rs.DailyLimitExhausted):
        sf.limits()  # paused: not sent
    assert fake.stats.total == 6 and fake.stats.refusals == 1
    data = reader.get_metrics_data()
    assert data is not None
    found = {metric.name: sum(getattr(point, "value", 0) for point in metric.data.data_points)
             for r in data.resource_metrics for s in r.scope_metrics for metric in s.metrics
             if all(dict(point.attributes) == {"limiter": org.name} for point in metric.data.data_points)}
    assert found["ratewindow.grants"] == 1 + 6  # the reservation of 2, then one per request sent
    assert found["ratewindow.granted_units"] == 2 + 6
    assert found["ratewindow.denials"] == 1
    assert found["ratewindow.pauses"] == 1
    assert (found["ratewindow.responses"], found["ratewindow.refusals"]) == (6, 1)


# -- the adapters' shape: presets, any limiter, options -------------------------------------------
def test_any_ratewindow_limiter_is_the_pace_and_the_allocation_still_holds(make_fake: MakeFake,
                                                                           connect: Connect) -> None:
    clock = ManualClock(start=0.0)
    fake = make_fake(clock=clock, allocation=5)
    store = MemoryStore()
    pace = Limits(SlidingWindow(3, 60.0, name="seed-pace", store=store, clock=clock),
                  TokenBucket(10.0, 2, name="burst", store=store, clock=clock))
    sf = connect(fake, limits=pace, store=store, clock=clock, max_wait=120.0)
    for _ in range(3):
        sf.limits()
    assert clock.now() == pytest.approx(0.1)  # a bucket of two filling at 10 per second: the third waited
    sf.limits()  # the fourth waits for the 60-second window: the user's limiter is taken
    assert clock.now() == pytest.approx(60.0)
    assert rs.limiter_of(sf).stats.allocation == 5  # ... and the org's allocation was learned
    sf.limits()
    with pytest.raises(rs.DailyLimitExhausted):  # five of five in the rolling 24 h: never sent
        sf.limits()
    assert fake.stats.total == 5


def test_a_limiter_on_a_shared_store_puts_the_org_on_it_too(make_fake: MakeFake, tmp_path: Path,
                                                            sessions: list[requests.Session]) -> None:
    fake = make_fake(allocation=1_000)
    shared = SQLiteStore(tmp_path / "limits.db")
    http = fake.session()
    sessions.append(http)
    sf = rs.client(instance_url=fake.instance_url, session_id=fake.session_id, session=http,
                   limits=SlidingWindow(100, 60.0, name="pace", store=shared))
    sf.limits()
    assert rs.limiter_of(sf)._store is shared  # every process on the file shares the allocation


def test_a_limiter_on_another_store_is_refused_at_once(fake: FakeSalesforce, tmp_path: Path) -> None:
    elsewhere = SlidingWindow(100, 60.0, store=SQLiteStore(tmp_path / "a.db"))
    with pytest.raises(ValueError, match="limits= must live on the org's store"):
        rs.client(instance_url=fake.instance_url, session_id=fake.session_id, limits=elsewhere,
                  store=SQLiteStore(tmp_path / "b.db"))


def test_editions_are_prebuilt_and_follow_the_headers(make_fake: MakeFake, connect: Connect) -> None:
    assert rs.EDITIONS["developer"] == rs.Edition("developer", 15_000, None, 5)
    assert rs.EDITIONS["unlimited"].allocation_for(licences=10) == 150_000
    fake = make_fake(allocation=20_000)
    sf = connect(fake, edition="developer")
    limiter = rs.limiter_of(sf)
    assert limiter.stats.allocation == 15_000  # before any response: the preset, no probe
    sf.limits()
    assert limiter.stats.allocation == 20_000  # the header corrects it
    kept = connect(fake, edition="developer", limits=rs.OrgLimits(allocation=12_000))
    kept.limits()
    assert rs.limiter_of(kept).stats.allocation == 12_000  # configured: never changed


def test_reserve_and_max_wait_are_options_of_wrap(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake(allocation=100)
    sf = connect(fake, reserve=0.1, max_wait=5.0)
    sf.limits()
    limiter = rs.limiter_of(sf)
    assert limiter.stats.allowance == 90 and limiter.limits.max_wait == 5.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [({"edition": "gold"}, ValueError, "unknown edition 'gold'; one of: developer"),
     ({"edition": 3}, TypeError, "edition must be a string"),
     ({"limits": 42}, TypeError, "limits must be an OrgLimits or a ratewindow limiter, got 42"),
     ({"reserve": 1.5}, ValueError, "reserve must be a fraction in \\[0, 1\\), got 1.5"),
     ({"max_wait": -1}, ValueError, "max_wait must be a finite number of seconds >= 0, got -1")],
)
def test_bad_shape_arguments_are_named(fake: FakeSalesforce, kwargs: dict[str, object],
                                       error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        rs.client(instance_url=fake.instance_url, session_id=fake.session_id, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="licences must be an int >= 0, got -1"):
        rs.EDITIONS["enterprise"].allocation_for(-1)
    with pytest.raises(TypeError, match="licences must be an int, got '50'"):
        rs.EDITIONS["enterprise"].allocation_for("50")  # type: ignore[arg-type]
