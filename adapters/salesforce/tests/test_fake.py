"""Tests of ratewindow_salesforce.testing.FakeSalesforce with the real, unmodified simple-salesforce.

Every test talks HTTPS to a fake on 127.0.0.1 through ``simple_salesforce.Salesforce``; nothing
of the client is mocked. Counts are exact: the fake is deterministic.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from ratewindow.testing import ManualClock
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from ratewindow_salesforce.testing import FakeSalesforce, RequestRecord

ADAPTER_ROOT = Path(__file__).resolve().parents[1]
TOTAL_REQUESTS = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
CONCURRENT = [{"message": "ConcurrentPerOrgLongTxn Limit exceeded", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


@pytest.fixture
def sessions() -> Iterator[list[requests.Session]]:
    """Sessions created by a test; all closed at teardown (pytest turns ResourceWarnings into errors)."""
    created: list[requests.Session] = []
    yield created
    for http in created:
        http.close()


@pytest.fixture
def connect(sessions: list[requests.Session]) -> Callable[..., Salesforce]:
    """``connect(fake, session_id=...)`` -> a real ``Salesforce`` client for ``fake``."""

    def make(fake: FakeSalesforce, session_id: str = "00DFAKE!token") -> Salesforce:
        http = fake.session()
        sessions.append(http)
        return Salesforce(instance_url=fake.instance_url, session_id=session_id, session=http)

    return make


@pytest.fixture
def fake() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as running:
        yield running
    assert running.internal_errors == []


def used(sf: Salesforce) -> int:
    """API usage reported by the last response's Sforce-Limit-Info header, as parsed by the client."""
    usage = sf.api_usage["api-usage"]
    return int(usage.used)


def body(error: SalesforceError) -> Any:
    """The decoded JSON error body simple-salesforce attaches to its exceptions."""
    content: Any = error.content
    return content


def composite(n: int, url: str = "/services/data/v59.0/sobjects/Account/describe") -> dict[str, Any]:
    return {"compositeRequest": [{"method": "GET", "url": url, "referenceId": f"ref{i}"} for i in range(n)]}


# -- describes ---------------------------------------------------------------------------------


def test_describe_global_lists_exactly_1462_sobjects(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    result = sf.describe()
    names = [entry["name"] for entry in result["sobjects"]]
    assert len(names) == 1462
    assert len(set(names)) == 1462
    for standard in ("Account", "Contact", "Opportunity", "Lead", "Case", "User"):
        assert standard in names
    assert sum(name.endswith("__c") for name in names) > 1000
    assert sf.api_usage["api-usage"].total == 15_000
    assert used(sf) == 1
    # Deterministic: a second org with the same seed has the same catalog, another seed differs.
    assert names == [info.name for info in FakeSalesforce(seed=0).data.catalog]
    assert names != [info.name for info in FakeSalesforce(seed=1).data.catalog]


def test_describe_one_object(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    account = sf.Account.describe()
    fields = {field["name"]: field for field in account["fields"]}
    assert 30 <= len(fields) <= 60
    assert fields["Id"]["type"] == "id"
    assert fields["Name"]["nameField"] is True
    assert fields["OwnerId"]["referenceTo"] == ["User"]
    children = {rel["relationshipName"]: rel["childSObject"] for rel in account["childRelationships"]}
    assert children["Contacts"] == "Contact"
    assert children["Opportunities"] == "Opportunity"
    assert [rt["name"] for rt in account["recordTypeInfos"]][-1] == "Master"
    custom = next(entry["name"] for entry in sf.describe()["sobjects"] if entry["custom"])
    custom_fields = sf.restful(f"sobjects/{custom}/describe")["fields"]
    assert any(field["name"].endswith("__c") for field in custom_fields)
    with pytest.raises(SalesforceResourceNotFound) as excinfo:
        sf.restful("sobjects/No_Such_Object__c/describe")
    assert body(excinfo.value) == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    assert fake.stats.units == 4


def test_record_get_and_not_found(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    first = sf.query("SELECT Id, Name FROM Account LIMIT 1")["records"][0]
    record = sf.Account.get(first["Id"])
    assert record["Name"] == first["Name"]
    assert record["attributes"]["type"] == "Account"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001Dn0000000zzzAAA")


# -- query -------------------------------------------------------------------------------------


def test_query_all_pages_through_5000_accounts_in_batches_of_2000(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    first = sf.query("SELECT Id, Name FROM Account")
    assert first["totalSize"] == 5000
    assert first["done"] is False
    assert len(first["records"]) == 2000
    assert re.fullmatch(r"/services/data/v59\.0/query/01g[0-9A-Za-z]{15}-2000", first["nextRecordsUrl"])
    fake.reset_stats()
    everything = sf.query_all("SELECT Id, Name FROM Account")
    assert everything["totalSize"] == 5000
    assert len({record["Id"] for record in everything["records"]}) == 5000
    paths = [record.path for record in fake.stats.requests]
    assert paths[0] == "/services/data/v59.0/query/"
    assert [path.rsplit("-", 1)[1] for path in paths[1:]] == ["2000", "4000"]
    assert fake.stats.units == 3
    assert used(sf) == 4


def test_soql_where_limit_count_and_query_all_sees_deleted(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == 5000
    name = sf.query("SELECT Name FROM Account LIMIT 1")["records"][0]["Name"]
    match = sf.query(f"SELECT Id, Name FROM Account WHERE Name = '{name}'")
    assert match["totalSize"] == 1
    assert len(sf.query("SELECT Id FROM Contact LIMIT 7")["records"]) == 7
    nested = sf.query("SELECT Id, Account.Name FROM Contact LIMIT 1")["records"][0]
    assert nested["Account"]["attributes"]["type"] == "Account"
    created = sf.Account.create({"Name": "Deleted Co"})
    sf.Account.delete(created["id"])
    soql = f"SELECT Id, IsDeleted FROM Account WHERE Id = '{created['id']}'"
    assert sf.query(soql)["totalSize"] == 0
    assert sf.query_all(soql, include_deleted=True)["records"][0]["IsDeleted"] is True
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.query("SELECT Nope FROM Account")
    assert body(excinfo.value)[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.query("SELECT Id FROM Nope__c")
    assert body(excinfo.value)[0]["errorCode"] == "INVALID_TYPE"


def test_soql_operators_order_by_and_offset(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)

    def count(where: str) -> int:
        total: int = sf.query(f"SELECT COUNT() FROM Opportunity WHERE {where}")["totalSize"]
        return total

    closed = count("IsClosed = true")
    assert 0 < closed < 3000
    assert count("StageName IN ('Closed Won', 'closed lost')") == closed
    assert count("IsClosed = true AND NOT (IsWon = true)") == count("StageName = 'Closed Lost'")
    assert count("IsWon = true OR StageName = 'Closed Lost'") == closed
    assert count("StageName NOT IN ('Closed Won', 'Closed Lost')") == 3000 - closed
    top = sf.query("SELECT Id, Amount FROM Opportunity ORDER BY Amount DESC, Id LIMIT 5")["records"]
    amounts = [record["Amount"] for record in top]
    assert amounts == sorted(amounts, reverse=True)
    page = sf.query("SELECT Id FROM Opportunity ORDER BY Amount DESC, Id LIMIT 2 OFFSET 3")["records"]
    assert [record["Id"] for record in page] == [record["Id"] for record in top[3:5]]
    assert fake.stats.units == 8


def test_seed_pipeline_four_calls_per_object_count_four(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    describe = sf.restful("sobjects/Account/describe")
    triggers = sf.toolingexecute(
        "query/?q=SELECT+Id,Name,Status+FROM+ApexTrigger+WHERE+TableEnumOrId='Account'"
    )
    fls = sf.query(
        "SELECT Id, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
        "WHERE SobjectType = 'Account'"
    )
    audit = sf.query_all("SELECT Id, Action, Section, CreatedDate FROM SetupAuditTrail")
    assert describe["name"] == "Account"
    assert triggers["totalSize"] >= 1
    assert all(record["attributes"]["type"] == "ApexTrigger" for record in triggers["records"])
    assert fls["totalSize"] == 36
    assert all(record["Field"].startswith("Account.") for record in fls["records"])
    assert audit["totalSize"] == 1500
    assert fake.stats.units == 4  # the 1,500 audit rows fit one page of 2,000
    fields = sf.toolingexecute(
        "query/?q=SELECT+QualifiedApiName,DataType+FROM+FieldDefinition"
        "+WHERE+EntityDefinition.QualifiedApiName='Account'"
    )
    assert fields["totalSize"] == len(describe["fields"])


# -- composite family --------------------------------------------------------------------------


def test_composite_of_25_counts_one(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    sf.limits()
    before = used(sf)
    body = composite(24)
    body["compositeRequest"].append(
        {"method": "GET", "url": "/services/data/v59.0/sobjects/Nope__c/describe", "referenceId": "missing"}
    )
    result = sf.restful("composite", method="POST", json=body)
    responses = result["compositeResponse"]
    assert len(responses) == 25
    assert [r["httpStatusCode"] for r in responses] == [200] * 24 + [404]
    assert responses[-1]["body"] == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    assert used(sf) == before + 1
    assert fake.stats.requests[-1].units == 1
    assert fake.stats.requests[-1].subrequests == 25


def test_composite_over_25_is_rejected(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.restful("composite", method="POST", json=composite(26))
    assert excinfo.value.status == 400
    assert fake.stats.requests[-1].status == 400


def test_composite_all_or_none_rolls_back(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    body = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Account",
                "referenceId": "acct",
                "body": {"Name": "Rolled Back Co"},
            },
            {
                "method": "POST",
                "url": "/services/data/v59.0/sobjects/Contact",
                "referenceId": "contact",
                "body": {"AccountId": "@{acct.id}"},  # LastName missing -> REQUIRED_FIELD_MISSING
            },
        ],
    }
    responses = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert responses[0]["httpStatusCode"] == 400
    assert responses[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert responses[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'Rolled Back Co'")["totalSize"] == 0


def test_composite_batch_counts_each_subrequest(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    sf.limits()
    before = used(sf)
    body = {
        "batchRequests": [{"method": "GET", "url": "v59.0/sobjects/Account/describe"} for _ in range(6)]
        + [{"method": "GET", "url": "v59.0/query/?q=SELECT+COUNT()+FROM+Lead"}]
    }
    result = sf.restful("composite/batch", method="POST", json=body)
    assert result["hasErrors"] is False
    assert [r["statusCode"] for r in result["results"]] == [200] * 7
    assert result["results"][-1]["result"]["totalSize"] == 2500
    assert used(sf) == before + 7
    assert fake.stats.requests[-1].units == 7


def test_sobject_collections_count_one_and_cap_at_200(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    records = [{"attributes": {"type": "Account"}, "Name": f"Bulk {i}"} for i in range(200)]
    result = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    assert len(result) == 200
    assert all(item["success"] for item in result)
    assert used(sf) == 1
    assert sf.query("SELECT COUNT() FROM Account WHERE Name LIKE 'Bulk %'")["totalSize"] == 200
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.restful("composite/sobjects", method="POST", json={"records": [*records, records[0]]})
    assert body(excinfo.value)[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    ids = ",".join(item["id"] for item in result[:3])
    fetched = sf.restful("composite/sobjects/Account", params={"ids": ids, "fields": "Id,Name"})
    assert [record["Name"] for record in fetched] == ["Bulk 0", "Bulk 1", "Bulk 2"]


# -- allocation --------------------------------------------------------------------------------


def test_allocation_exhaustion_refuses_with_request_limit_exceeded(connect: Any) -> None:
    with FakeSalesforce(allocation=10) as fake:
        fake.spend(7)
        sf = connect(fake)
        sf.limits()
        assert used(sf) == 8
        sf.limits()
        sf.limits()
        assert used(sf) == 10
        with pytest.raises(SalesforceRefusedRequest) as excinfo:
            sf.limits()
        assert excinfo.value.status == 403
        assert body(excinfo.value) == TOTAL_REQUESTS
        assert fake.allocation_used == 10  # the refusal was not counted
        assert fake.stats.refusals == 1
        assert fake.stats.by_error_code() == {"REQUEST_LIMIT_EXCEEDED": 1}
        batch = {"batchRequests": [{"method": "GET", "url": "v59.0/limits"}]}
        with pytest.raises(SalesforceRefusedRequest):
            sf.restful("composite/batch", method="POST", json=batch)


def test_batch_subrequests_past_the_allocation_are_refused_individually(connect: Any) -> None:
    with FakeSalesforce(allocation=3) as fake:
        sf = connect(fake)
        body = {"batchRequests": [{"method": "GET", "url": "v59.0/limits"} for _ in range(5)]}
        result = sf.restful("composite/batch", method="POST", json=body)
        assert result["hasErrors"] is True
        assert [r["statusCode"] for r in result["results"]] == [200, 200, 200, 403, 403]
        assert result["results"][3]["result"] == TOTAL_REQUESTS
        assert used(sf) == 3


def test_spend_is_reflected_in_the_header(fake: FakeSalesforce, connect: Any) -> None:
    sf = connect(fake)
    fake.spend(1234)
    sf.limits()
    assert used(sf) == 1235
    assert fake.stats.units == 1
    assert fake.stats.allocation_used == 1235


def test_limits_daily_api_requests_matches_the_header(connect: Any) -> None:
    with FakeSalesforce(allocation=500) as fake:
        fake.spend(40)
        sf = connect(fake)
        limits = sf.limits()
        assert limits["DailyApiRequests"]["Max"] == 500
        assert limits["DailyApiRequests"]["Remaining"] == 500 - used(sf) == 459


def test_rolling_24h_window_with_time_scale_and_clock(connect: Any) -> None:
    clock = ManualClock(1_000.0)
    with FakeSalesforce(allocation=2, time_scale=0.001, clock=clock) as fake:
        sf = connect(fake)
        sf.limits()
        clock.advance(40.0)
        sf.limits()
        with pytest.raises(SalesforceRefusedRequest):
            sf.limits()
        clock.advance(86.4 - 40.0)  # the first call is now a scaled day old
        sf.limits()
        assert used(sf) == 2
        clock.advance(86.4)
        assert fake.allocation_used == 0


def test_per_minute_cap(connect: Any) -> None:
    clock = ManualClock(1_000.0)
    with FakeSalesforce(per_minute=3, clock=clock) as fake:
        sf = connect(fake)
        for _ in range(3):
            sf.limits()
        with pytest.raises(SalesforceRefusedRequest) as excinfo:
            sf.limits()
        assert body(excinfo.value)[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
        clock.advance(60.0)
        sf.limits()
        assert used(sf) == 4


# -- concurrency -------------------------------------------------------------------------------


def test_concurrent_long_running_requests_are_capped(connect: Any) -> None:
    # threshold 20 s scaled by 0.01 -> 0.2 s; every served request takes 0.8 s.
    with FakeSalesforce(concurrency_limit=2, time_scale=0.01, latency=(0.8, 0.8)) as fake:
        clients = [connect(fake) for _ in range(3)]
        errors: list[BaseException] = []

        def call(client: Salesforce) -> None:
            try:
                client.limits()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        workers = [threading.Thread(target=call, args=(client,)) for client in clients[:2]]
        for worker in workers:
            worker.start()
        time.sleep(0.45)
        with pytest.raises(SalesforceRefusedRequest) as excinfo:
            clients[2].limits()
        assert body(excinfo.value) == CONCURRENT
        for worker in workers:
            worker.join()
        assert errors == []
        clients[2].limits()  # nothing long-running any more
        assert fake.stats.refusals == 1
        assert fake.stats.max_concurrent >= 3
        assert fake.allocation_used == 3


def test_short_requests_do_not_count_toward_the_concurrency_cap(connect: Any) -> None:
    # threshold 20 s * 0.1 = 2 s; requests take 0.3 s, so two at once never hit a cap of 1.
    with FakeSalesforce(concurrency_limit=1, time_scale=0.1, latency=(0.3, 0.3)) as fake:
        clients = [connect(fake) for _ in range(2)]
        workers = [threading.Thread(target=client.limits) for client in clients]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert fake.stats.refusals == 0
        assert fake.stats.max_concurrent == 2
        assert fake.stats.max_in_window(1.0) == 2


# -- sessions, stats, lifecycle ----------------------------------------------------------------


def test_invalid_session_raises_expired_session_and_is_not_echoed(
    connect: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    secret = "00DSECRET!do-not-print-me"
    with FakeSalesforce(session_ids={"00DGOOD!token"}) as fake:
        sf = connect(fake, session_id=secret)
        with pytest.raises(SalesforceExpiredSession) as excinfo:
            sf.describe()
        assert excinfo.value.status == 401
        assert body(excinfo.value) == [
            {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
        ]
        assert fake.allocation_used == 0
        good = connect(fake, session_id="00DGOOD!token")
        good.limits()
        assert used(good) == 1
        assert all(secret not in repr(record) for record in fake.stats.requests)
    out, err = capfd.readouterr()
    assert secret not in out
    assert secret not in err


def test_versions_resource_needs_no_session_and_costs_nothing(fake: FakeSalesforce) -> None:
    with fake.session() as http:
        response = http.get(f"{fake.instance_url}/services/data/")
    assert response.status_code == 200
    assert "Sforce-Limit-Info" not in response.headers
    versions = {entry["version"]: entry for entry in response.json()}
    assert versions["59.0"] == {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"}
    assert min(versions) == "31.0"
    assert fake.allocation_used == 0


def test_every_api_version_listed_is_served(connect: Any, sessions: list[requests.Session]) -> None:
    with FakeSalesforce(api_version="62.0") as fake:
        http = fake.session()
        sessions.append(http)
        sf = Salesforce(instance_url=fake.instance_url, session_id="t", session=http, version="62.0")
        assert sf.query("SELECT COUNT() FROM Case")["totalSize"] == 2000
        old = Salesforce(instance_url=fake.instance_url, session_id="t", session=http, version="31.0")
        described: Any = old.describe()
        assert len(described["sobjects"]) == 1462
        with pytest.raises(SalesforceResourceNotFound):
            Salesforce(instance_url=fake.instance_url, session_id="t", session=http, version="63.0").limits()


def test_stats_max_in_window_is_exact(connect: Any) -> None:
    clock = ManualClock(1_000.0)
    with FakeSalesforce(clock=clock) as fake:
        sf = connect(fake)
        for offset in (0.0, 0.0, 0.5, 10.0, 10.2):
            clock.set(1_000.0 + offset)
            sf.limits()
        sf.restful(
            "composite/batch",
            method="POST",
            json={"batchRequests": [{"method": "GET", "url": "v59.0/limits"}] * 4},
        )
        stats = fake.stats
        assert stats.total == 6
        # arrivals: 0.0, 0.0, 0.5, 10.0, 10.2 and the batch at 10.2; windows are half-open [t, t + s)
        assert stats.max_in_window(0.2) == 2
        assert stats.max_in_window(0.21) == 3
        assert stats.max_in_window(0.5) == 3
        assert stats.max_in_window(0.51) == 3
        assert stats.max_in_window(10.01) == 4
        assert stats.max_in_window(10.21) == 6
        assert stats.max_in_window(1.0, units=True) == 6  # 10.0, 10.2 and the 4-unit batch at 10.2
        assert stats.max_in_window(100.0) == 6
        assert stats.units == 9
        records: list[RequestRecord] = stats.requests
        assert all(record.finish >= record.arrival for record in records)
        fake.reset_stats()
        assert fake.stats.total == 0
        assert fake.allocation_used == 9


def test_stop_leaves_no_threads_and_removes_the_ca_file(sessions: list[requests.Session]) -> None:
    before = set(threading.enumerate())
    fake = FakeSalesforce(latency=(0.0, 0.01)).start()
    ca_path = fake.ca_path
    assert os.path.exists(ca_path)
    clients = [fake.session() for _ in range(3)]
    sessions.extend(clients)
    for http in clients:  # keep-alive connections stay open in the pools
        sf = Salesforce(instance_url=fake.instance_url, session_id="t", session=http)
        sf.limits()
    assert len(set(threading.enumerate()) - before) >= 2
    fake.stop()
    assert set(threading.enumerate()) == before
    assert not os.path.exists(ca_path)
    fake.stop()  # idempotent


def test_standalone_module_serves_until_sigterm(sessions: list[requests.Session]) -> None:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ADAPTER_ROOT), os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "ratewindow_salesforce.testing", "--port", "0", "--allocation", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = dict(proc.stdout.readline().split(":", 1) for _ in range(3))
        instance_url, session_id, ca_path = (
            lines[key].strip() for key in ("instance_url", "session_id", "ca_path")
        )
        http = requests.Session()
        sessions.append(http)
        http.trust_env = False
        http.verify = ca_path
        sf = Salesforce(instance_url=instance_url, session_id=session_id, session=http)
        assert sf.limits()["DailyApiRequests"] == {"Max": 50, "Remaining": 49}
        with pytest.raises(SalesforceExpiredSession):
            Salesforce(instance_url=instance_url, session_id="wrong", session=http).limits()
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert err == ""
    assert not os.path.exists(ca_path)


# -- Bulk API 2.0 ------------------------------------------------------------------------------


def test_bulk2_query_job_completes_after_job_polls_and_pages_its_csv(connect: Any) -> None:
    with FakeSalesforce(job_polls=3) as fake:
        sf = connect(fake)
        job = sf.restful("jobs/query", method="POST",
                         json={"operation": "query", "query": "SELECT Id, Name FROM Account ORDER BY Name"})
        assert job["state"] == "UploadComplete" and job["object"] == "Account"
        states = [sf.restful(f"jobs/query/{job['id']}")["state"] for _ in range(4)]
        assert states == ["InProgress", "InProgress", "JobComplete", "JobComplete"]
        url = f"{fake.instance_url}/services/data/v59.0/jobs/query/{job['id']}/results"
        first = sf.session.get(url, headers=sf.headers, params={"maxRecords": 3000})
        assert first.headers["Sforce-NumberOfRecords"] == "3000" and first.headers["Sforce-Locator"] == "3000"
        rest = sf.session.get(url, headers=sf.headers, params={"maxRecords": 3000, "locator": "3000"})
        assert rest.headers["Sforce-NumberOfRecords"] == "2000" and rest.headers["Sforce-Locator"] == "null"
        lines = first.text.splitlines() + rest.text.splitlines()[1:]
        assert lines[0] == '"Id","Name"' and len(lines) == 5001
        assert fake.bulk_usage() == (1, 0)
        assert sf.limits()["DailyBulkV2QueryJobs"]["Remaining"] == 9_999
        assert fake.internal_errors == []


def test_bulk2_results_before_completion_and_unknown_jobs_are_errors(fake: FakeSalesforce, connect: Any
                                                                      ) -> None:
    sf = connect(fake)
    job = sf.restful("jobs/query", method="POST", json={"operation": "query", "query": "SELECT Id FROM User"})
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful(f"jobs/query/{job['id']}/results")
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("jobs/query/750000000000999AAA")
    with pytest.raises(SalesforceMalformedRequest):
        sf.restful("jobs/query", method="POST", json={"operation": "insert", "query": "SELECT Id FROM User"})
    aborted = sf.restful(f"jobs/query/{job['id']}", method="PATCH", json={"state": "Aborted"})
    assert aborted["state"] == "Aborted"


def test_bulk2_ingest_applies_rows_at_close_and_reports_each_record(fake: FakeSalesforce, connect: Any
                                                                     ) -> None:
    sf = connect(fake)
    records = [{"LastName": "Lovelace"}, {"FirstName": "No last name"}]
    results = sf.bulk2.Contact.insert(records=records, wait=0)
    assert results[0]["numberRecordsProcessed"] == 2 and results[0]["numberRecordsFailed"] == 1
    failed = sf.bulk2.Contact.get_failed_records(results[0]["job_id"])
    assert "REQUIRED_FIELD_MISSING" in failed and "No last name" in failed
    ok = sf.bulk2.Contact.get_successful_records(results[0]["job_id"])
    assert ok.splitlines()[0].startswith('"sf__Id","sf__Created",') and '"true"' in ok
    assert sf.query("SELECT Id FROM Contact WHERE LastName = 'Lovelace'")["totalSize"] == 1
    assert fake.bulk_usage() == (0, 1)  # one batch: up to 10,000 records each
