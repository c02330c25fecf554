"""Bulk API 2.0 through the wrapped client, on FakeSalesforce with the real simple-salesforce: the
org's query-job and batch pools are tracked as ratewindow limiters, and ``poll_job`` backs off and
counts the permits its polls take."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from conftest import Connect, MakeFake
from ratewindow import MemoryStore, QuotaExhausted
from ratewindow.testing import ManualClock
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

import ratewindow_salesforce as rs
from ratewindow_salesforce._bulk import bulk_cost
from ratewindow_salesforce.testing import FakeSalesforce


def _job_paths(fake: FakeSalesforce, job_id: str) -> list[str]:
    return [r.method for r in fake.stats.requests if r.path.endswith(f"/jobs/query/{job_id}")]


def _create_query_job(sf: Salesforce, soql: str = "SELECT Id, Name FROM Account") -> dict[str, Any]:
    job: dict[str, Any] = sf.restful("jobs/query", method="POST", json={"operation": "query", "query": soql})
    return job


def test_a_query_job_takes_a_unit_of_the_query_job_pool_as_salesforce_counts_it(
        fake: FakeSalesforce, connect: Connect) -> None:
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000))
    pools = rs.bulk_pools(sf)
    assert pools.query_jobs.limit == 10_000 and pools.batches.limit == 15_000
    [page] = sf.bulk2.Account.query("SELECT Id, Name FROM Account WHERE Name LIKE 'A%'", wait=0)
    assert page.splitlines()[0] == '"Id","Name"'  # Salesforce quotes every value
    assert pools.query_jobs.available() == 9_999 and pools.batches.available() == 15_000
    org = sf.limits()
    assert org["DailyBulkV2QueryJobs"] == {"Max": 10_000, "Remaining": 9_999}  # the server's own count
    assert org["DailyBulkApiBatches"]["Remaining"] == 15_000  # query jobs consume no batches
    # create, 2 polls (the SDK's own loop), results, limits: one permit per request
    assert rs.limiter_of(sf).stats.requests == fake.stats.total == 5
    assert rs.limiter_of(sf).available() == 1_000 - 5


def test_a_query_job_salesforce_refuses_gives_its_unit_back(fake: FakeSalesforce, connect: Connect) -> None:
    sf = connect(fake)
    with pytest.raises(SalesforceMalformedRequest):
        _create_query_job(sf, "SELECT FROM")
    assert rs.bulk_pools(sf).query_jobs.available() == 10_000
    assert fake.bulk_usage() == (0, 0)


def test_a_spent_query_job_pool_stops_the_request_before_it_is_sent(fake: FakeSalesforce, connect: Connect
                                                                    ) -> None:
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000))
    pools = rs.bulk_pools(sf)
    assert pools.query_jobs.try_acquire(9_999)  # another process on the store created 9,999 today
    _create_query_job(sf)
    sent = fake.stats.total
    with pytest.raises(rs.DailyLimitExhausted) as info:
        _create_query_job(sf)
    assert isinstance(info.value, QuotaExhausted)  # the executor stops the batch, resumable
    assert info.value.limiter.endswith(":bulk2-query-jobs")
    assert 86_000 < info.value.retry_after <= 86_400  # when the rolling 24 h frees the first unit
    assert fake.stats.total == sent  # nothing sent
    assert rs.limiter_of(sf).available() == 1_000 - sent  # and no API permit taken for it
    sf.limits()  # other requests go on


def test_an_ingest_upload_takes_one_batch_per_10000_records(fake: FakeSalesforce, connect: Connect) -> None:
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000))
    records = [{"Name": f"Bulk {i}"} for i in range(10_001)]
    [result] = sf.bulk2.Account.insert(records=records, wait=0)
    assert result["numberRecordsProcessed"] == 10_001 and result["numberRecordsFailed"] == 0
    pools = rs.bulk_pools(sf)
    assert pools.batches.available() == 15_000 - 2 and pools.query_jobs.available() == 10_000
    assert sf.limits()["DailyBulkApiBatches"]["Remaining"] == 15_000 - 2  # the server counted the same
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Bulk %'")["totalSize"] == 10_001


def test_bulk_cost_is_read_from_the_request() -> None:
    def prepared(method: str, path: str, **kwargs: Any) -> requests.PreparedRequest:
        return requests.Request(method, f"https://org.example{path}", **kwargs).prepare()

    upload_path = "/services/data/v59.0/jobs/ingest/750x/batches"
    assert bulk_cost(prepared("POST", "/services/data/v59.0/jobs/query")) == ("query_jobs", 1)
    assert bulk_cost(prepared("GET", "/services/data/v59.0/jobs/query/750x")) is None  # a poll: a permit only
    assert bulk_cost(prepared("POST", "/services/data/v59.0/jobs/ingest")) is None  # the empty parent batch
    upload = "Name\n" + "".join(f"n{i}\n" for i in range(20_000))
    assert bulk_cost(prepared("PUT", upload_path, data=upload)) == ("batches", 2)
    upload += "last"  # no final line break
    assert bulk_cost(prepared("PUT", upload_path, data=upload)) == ("batches", 3)
    assert bulk_cost(prepared("PUT", upload_path, data=b"Name\n")) == ("batches", 1)
    assert bulk_cost(prepared("POST", "/services/async/59.0/job/750x/batch", data=b"<x/>")) == ("batches", 1)
    assert bulk_cost(prepared("POST", "/services/async/59.0/job")) is None


def test_poll_job_backs_off_exponentially_and_counts_its_polls(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake(job_polls=5)
    clock = ManualClock()
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000), clock=clock)
    job = _create_query_job(sf)
    status = rs.poll_job(sf, job["id"], clock=clock)
    assert status.done and status.state == "JobComplete" and status.info["numberRecordsProcessed"] == 5_000
    assert status.polls == 5 == len(_job_paths(fake, job["id"]))  # each poll one request ...
    assert rs.limiter_of(sf).available() == 1_000 - 1 - 5  # ... and one permit
    assert status.waited == clock.now() == 1 + 2 + 4 + 8 + 16


def test_poll_job_caps_the_delay_honours_retry_after_and_stops_at_the_timeout(
        make_fake: MakeFake, sessions: list[requests.Session]) -> None:
    fake = make_fake(job_polls=100)

    class SlowDown(HTTPAdapter):  # a user's transport that sees the server ask for 50 s on the 2nd poll
        polls = 0

        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            response = super().send(request, *args, **kwargs)
            if request.method == "GET" and "/jobs/query/" in (request.url or ""):
                SlowDown.polls += 1
                if SlowDown.polls == 2:
                    response.headers["Retry-After"] = "50"
            return response

    http = fake.session()
    sessions.append(http)
    http.mount("https://", SlowDown())
    clock = ManualClock()
    sf = rs.wrap(Salesforce(instance_url=fake.instance_url, session_id=fake.session_id, session=http),
                 store=MemoryStore(), clock=clock)
    job = _create_query_job(sf)
    status = rs.poll_job(sf, job["id"], max_delay=10.0, timeout=100.0, clock=clock)
    assert not status.done and status.state == "InProgress"
    # 1, 2, then 50 (Retry-After) instead of 4, then 8, 10, 10, 10, and 9 to the timeout
    assert status.polls == 8 == len(_job_paths(fake, job["id"]))
    assert status.waited == clock.now() == 100.0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"first_delay": -1}, "first_delay"), ({"max_delay": float("inf")}, "max_delay"),
    ({"factor": 0.5}, "factor"), ({"timeout": -1}, "timeout"), ({"factor": True}, "factor"),
])
def test_poll_job_refuses_bad_arguments_before_sending(fake: FakeSalesforce, connect: Connect,
                                                        kwargs: dict[str, Any], message: str) -> None:
    sf = connect(fake)
    with pytest.raises(ValueError, match=message):
        rs.poll_job(sf, "750000000000001AAA", **kwargs)
    assert fake.stats.total == 0


def test_poll_job_polls_an_ingest_job_made_by_hand(fake: FakeSalesforce, connect: Connect) -> None:
    clock = ManualClock()
    sf = connect(fake, limits=rs.OrgLimits(allocation=1_000), clock=clock)
    job = sf.restful("jobs/ingest", method="POST", json={"object": "Account", "operation": "insert"})
    upload = f"{fake.instance_url}/{job['contentUrl']}"
    headers = {**sf.headers, "Content-Type": "text/csv"}
    assert sf.session.put(upload, data="Name\nHand 1\nHand 2\n", headers=headers).status_code == 201
    assert rs.bulk_pools(sf).batches.available() == 15_000 - 1
    sf.restful(f"jobs/ingest/{job['id']}", method="PATCH", json={"state": "UploadComplete"})
    status = rs.poll_job(sf, job["id"], ingest=True, first_delay=0.0, clock=clock)
    assert (status.state, status.polls, status.waited) == ("JobComplete", 2, 2.0)  # at once, then 1 x 2 s
    assert status.info["numberRecordsProcessed"] == 2 and fake.bulk_usage() == (0, 1)
