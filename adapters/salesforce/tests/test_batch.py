"""composite / describe_many / query_all_parallel: the same answers as one-by-one calls, in the
fewest requests Salesforce's rules allow, counted at the fake."""

from __future__ import annotations

import math
from typing import Any

import pytest
from conftest import Connect
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

import ratewindow_salesforce as rs
from ratewindow_salesforce._helpers import _plan
from ratewindow_salesforce.testing import FakeSalesforce


def one_by_one(sf: Salesforce, request: str) -> tuple[str, Any]:
    try:
        return "value", sf.restful(request)
    except SalesforceError as error:
        return "error", (type(error), error.status, error.content)


def as_pair(result: rs.CompositeResult) -> tuple[str, Any]:
    if result.ok:
        return "value", result.value
    error = result.error
    assert isinstance(error, SalesforceError)
    return "error", (type(error), error.status, error.content)


def composite_calls(fake: FakeSalesforce) -> list[int]:
    return [r.subrequests for r in fake.stats.requests if r.path.endswith("/composite")]


def test_composite_returns_what_one_by_one_calls_return(fake: FakeSalesforce, connect: Connect,
                                                        plain: Any) -> None:
    names = [info.name for info in fake.data.catalog[:60]]
    requests = [f"sobjects/{name}/describe" for name in names]
    requests += ["sobjects/No_Such_Object__c/describe", "sobjects/Account/001000000000000AAA"]
    requests += [f"query/?q=SELECT+Id,Name+FROM+Lead+ORDER+BY+Id+LIMIT+{n}" for n in range(1, 8)]
    requests += ["query/?q=SELECT+Nope+FROM+Account", "sobjects/Contact"]
    sf = connect(fake, limits=rs.OrgLimits(allocation=15_000))
    results = rs.composite(sf, requests)
    queries = 8
    expected_calls = max(math.ceil(len(requests) / 25), math.ceil(queries / 5))
    assert sorted(composite_calls(fake)) == sorted([25, 25, len(requests) - 50])
    assert len(composite_calls(fake)) == expected_calls == 3
    assert fake.stats.units == expected_calls and fake.stats.by_status() == {200: 3}
    reference = plain(fake)
    assert [as_pair(r) for r in results] == [one_by_one(reference, request) for request in requests]
    assert [r.request["url"] for r in results] == [f"/services/data/v59.0/{req}" for req in requests]
    assert sum(not r.ok for r in results) == 3
    with pytest.raises(SalesforceError):
        results[60].result()


@pytest.mark.parametrize("n", [1, 25, 26, 101])
def test_n_describes_take_ceil_n_over_25_requests(fake: FakeSalesforce, connect: Connect, n: int) -> None:
    names = [info.name for info in fake.data.catalog[:n]]
    sf = connect(fake, limits=rs.OrgLimits(allocation=15_000))
    described = rs.describe_many(sf, names)
    assert [r.value["name"] for r in described] == names
    assert fake.stats.total == fake.stats.units == math.ceil(n / 25)


def test_packing_respects_the_five_query_rule_and_is_minimal() -> None:
    subs = [{"url": "/services/data/v59.0/sobjects/A/describe"}] * 25
    subs += [{"url": "/services/data/v59.0/query/?q=x"}] * 10
    chunks = _plan(subs)
    assert len(chunks) == 2  # max(ceil(35 / 25), ceil(10 / 5))
    for chunk in chunks:
        assert len(chunk) <= 25 and sum(i >= 25 for i in chunk) <= 5
        assert chunk == sorted(chunk)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(35))
    only_queries = [{"url": "/services/data/v59.0/tooling/query/?q=x"}] * 11
    assert len(_plan(only_queries)) == 3
    assert _plan([]) == []


def test_composite_refuses_references_and_bad_requests(fake: FakeSalesforce, connect: Connect) -> None:
    sf = connect(fake)
    with pytest.raises(ValueError, match="independent"):
        rs.composite(sf, [{"method": "GET", "url": "sobjects/Account/@{ref.id}"}])
    with pytest.raises(ValueError, match="url"):
        rs.composite(sf, [{"method": "GET"}])
    with pytest.raises(TypeError):
        rs.composite(sf, [42])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="API name"):
        rs.describe_many(sf, ["Account/../limits"])
    assert fake.stats.total == 0


@pytest.mark.parametrize("one", ["Account", b"Account", 7, {"method": "GET", "url": "limits"}],
                         ids=["str", "bytes", "int", "mapping"])
def test_one_item_instead_of_a_collection_is_a_type_error_and_sends_nothing(
        fake: FakeSalesforce, connect: Connect, one: Any) -> None:
    sf = connect(fake)
    with pytest.raises(TypeError, match="names must be a collection of sObject names such as a list"):
        rs.describe_many(sf, one)
    with pytest.raises(TypeError, match="requests must be a collection of subrequests"):
        rs.composite(sf, one)
    if not isinstance(one, str):  # one SOQL string is one query
        with pytest.raises(TypeError, match="soql must be a collection of SOQL strings"):
            rs.query_all_parallel(sf, one)
    assert fake.stats.total == 0


def test_composite_reports_a_failed_call_on_each_of_its_subrequests(make_fake: Any, connect: Connect) -> None:
    fake = make_fake(allocation=1)
    sf = connect(fake, limits=rs.OrgLimits(allocation=1))
    results = rs.composite(sf, [f"sobjects/{info.name}/describe" for info in fake.data.catalog[:30]])
    # The two /composite calls (25 + 5 subrequests) run concurrently: either may get the one permit.
    oks = [r.ok for r in results]
    assert oks in ([True] * 25 + [False] * 5, [False] * 25 + [True] * 5)
    failed = [r for r in results if not r.ok]
    assert all(isinstance(r.error, rs.DailyLimitExhausted) or r.error.__class__.__name__ == "QuotaExhausted"
               for r in failed)
    assert all(r.status is None for r in failed)
    assert fake.stats.total == 1 and fake.stats.refusals == 0


def test_query_all_parallel_returns_what_query_all_returns(fake: FakeSalesforce, connect: Connect,
                                                           plain: Any) -> None:
    sf = connect(fake, limits=rs.OrgLimits(allocation=15_000))
    soql = "SELECT Id, Name FROM Account"
    result = rs.query_all_parallel(sf, soql)
    assert fake.stats.total == 3  # 5,000 rows: the first page, then offsets 2,000 and 4,000 in parallel
    assert sorted(r.path.rsplit("-", 1)[-1] for r in fake.stats.requests[1:]) == ["2000", "4000"]
    assert result == plain(fake).query_all(soql)


def test_query_all_parallel_many_queries_and_tooling(fake: FakeSalesforce, connect: Connect,
                                                     plain: Any) -> None:
    sf = connect(fake, limits=rs.OrgLimits(allocation=15_000))
    queries = ["SELECT Id FROM Contact", "SELECT Id FROM Lead WHERE Status != null", "SELECT Id FROM User"]
    results = rs.query_all_parallel(sf, queries)
    assert fake.stats.units == 3 + 2 + 1  # Contact 5,000 rows: 3 pages; Lead 2,500: 2; User 50: 1
    reference = plain(fake)
    assert results == [reference.query_all(q) for q in queries]
    tooling = rs.query_all_parallel(sf, "SELECT Id, TableEnumOrId FROM ApexTrigger", tooling=True)
    assert tooling["totalSize"] == 1365 and len({r["Id"] for r in tooling["records"]}) == 1365


def test_query_all_parallel_with_a_smaller_batch_size(fake: FakeSalesforce, connect: Connect,
                                                      plain: Any) -> None:
    sf = connect(fake, limits=rs.OrgLimits(allocation=15_000))
    sf.session.headers["Sforce-Query-Options"] = "batchSize=700"
    result = rs.query_all_parallel(sf, "SELECT Id FROM Opportunity")
    assert fake.stats.total == math.ceil(3000 / 700)
    del sf.session.headers["Sforce-Query-Options"]
    assert result == plain(fake).query_all("SELECT Id FROM Opportunity")


def test_query_all_parallel_raises_the_first_failure(fake: FakeSalesforce, connect: Connect) -> None:
    sf = connect(fake)
    with pytest.raises(SalesforceError):
        rs.query_all_parallel(sf, ["SELECT Id FROM Account LIMIT 1", "SELECT Nope FROM Account"])
