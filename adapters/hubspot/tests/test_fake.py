"""Tests of ``ratewindow_hubspot.testing.FakeHubSpot`` through the official HubSpot SDK.

The SDK (``hubspot-api-client`` v12, ``import hubspot``) talks to the fake over loopback HTTP
exactly as it would talk to api.hubapi.com; nothing in the SDK is mocked. Timing tests drive
the fake with a ``ManualClock`` so every count is exact.

Run: ``PYTHONPATH=adapters/hubspot python -m pytest adapters/hubspot/tests/test_fake.py``
"""

from __future__ import annotations

import importlib
import json
import math
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

hubspot = pytest.importorskip("hubspot")

from hubspot.crm.associations.v4 import (  # noqa: E402
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.objects import (  # noqa: E402
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
)
from ratewindow_hubspot.testing import (  # noqa: E402
    DEFAULT_ENGAGEMENT_COUNTS,
    ENGAGEMENT_TYPES,
    TIERS,
    Dataset,
    FakeHubSpot,
    RemoteFakeHubSpot,
    max_in_window,
    token_fingerprint,
)

from ratewindow.testing import ManualClock  # noqa: E402

# Each generated package of the SDK has its own ApiException class.
ApiException = tuple(
    importlib.import_module(f"hubspot.crm.{name}").ApiException
    for name in (
        "objects", "objects.calls", "objects.emails", "objects.meetings", "objects.notes", "objects.tasks",
        "associations.v4",
    )
)  # fmt: skip

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
RATE_HEADERS = (
    "X-HubSpot-RateLimit-Max",
    "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds",
    "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
)
ADAPTER_ROOT = Path(__file__).resolve().parents[1]


def sdk(fake: FakeHubSpot, token: str = TOKEN) -> Any:
    """The official client, pointed at the fake."""
    return hubspot.HubSpot(access_token=token, host=fake.url)


def http(
    fake: FakeHubSpot, method: str, path: str, *, token: str | None = TOKEN, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    """A raw request with urllib, for what the SDK cannot send."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(fake.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


def rate_headers(headers: Any) -> dict[str, str]:
    return {name: headers[name] for name in RATE_HEADERS if name in headers}


def search(object_type: str, **kwargs: Any) -> tuple[str, PublicObjectSearchRequest]:
    return object_type, PublicObjectSearchRequest(**kwargs)


@pytest.fixture(scope="module")
def roomy() -> Iterator[FakeHubSpot]:
    """A fake whose limits never get in the way of the data tests."""
    with FakeHubSpot(window_limit=100_000, search_per_second=100_000, tokens=[TOKEN]) as fake:
        yield fake


# ---------------------------------------------------------------------------- data
def test_dataset_has_exactly_3067_unique_engagements_and_is_deterministic() -> None:
    first, again, other = Dataset.generate(seed=0), Dataset.generate(seed=0), Dataset.generate(seed=1)
    assert first.engagement_total == 3067
    assert {t: first.count(t) for t in ENGAGEMENT_TYPES} == dict(DEFAULT_ENGAGEMENT_COUNTS)
    engagement_ids = [i for t in ENGAGEMENT_TYPES for i in first.ids(t)]
    assert len(engagement_ids) == len(set(engagement_ids)) == 3067
    assert (first.count("contacts"), first.count("companies"), first.count("deals")) == (400, 120, 180)
    for object_type in ("contacts", "calls", "notes"):
        assert [o.properties for o in first.objects(object_type)] == [
            o.properties for o in again.objects(object_type)
        ]
    assert [o.properties for o in first.objects("calls")] != [o.properties for o in other.objects("calls")]
    for object_type in ENGAGEMENT_TYPES:
        for obj in first.objects(object_type):
            contacts = first.associated(object_type, obj.id, "contacts")
            assert 1 <= len(contacts) <= 3
            assert len(first.associated(object_type, obj.id, "companies")) <= 1
            assert len(first.associated(object_type, obj.id, "deals")) <= 2
            assert all(obj.id in first.associated("contacts", c, object_type) for c in contacts)


# ---------------------------------------------------------------------------- v3 objects
def test_list_with_paging_returns_every_engagement_of_each_type(roomy: FakeHubSpot) -> None:
    client = sdk(roomy)
    roomy.reset_stats()
    total = 0
    for object_type in ENGAGEMENT_TYPES:
        results = client.crm.objects.get_all(object_type)  # the SDK's own pager, 100 per page
        assert [r.id for r in results] == roomy.dataset.ids(object_type)
        total += len(results)
    assert total == 3067
    assert roomy.stats.total == sum(math.ceil(n / 100) for n in DEFAULT_ENGAGEMENT_COUNTS.values()) == 35
    assert roomy.stats.by_status == {200: 35}


def test_list_page_shape_properties_associations_and_link(roomy: FakeHubSpot) -> None:
    api = sdk(roomy).crm.objects.calls.basic_api
    page = api.get_page(limit=100, properties=["hs_call_title"], associations=["contacts", "deals"])
    ids = roomy.dataset.ids("calls")
    assert [r.id for r in page.results] == ids[:100]
    first = page.results[0]
    expected = roomy.dataset.get("calls", first.id)
    assert expected is not None
    assert first.properties == {
        name: expected.properties[name]
        for name in ("hs_call_title", "hs_createdate", "hs_lastmodifieddate", "hs_object_id")
    }
    assert first.archived is False
    for result in page.results:
        inline = result.associations or {}
        assert [a.id for a in inline["contacts"].results] == roomy.dataset.associated(
            "calls", result.id, "contacts"
        )
        assert {a.type for a in inline["contacts"].results} == {"call_to_contact"}
        deals = roomy.dataset.associated("calls", result.id, "deals")
        assert ("deals" in inline) == bool(deals)
    next_page = page.paging.next
    assert next_page.after == str(int(ids[99]) + 1)
    assert next_page.link.startswith(f"{roomy.url}/crm/v3/objects/calls?")
    status, _, body = http(roomy, "GET", next_page.link[len(roomy.url) :])
    assert status == 200
    assert [r["id"] for r in body["results"]] == ids[100:200]
    assert set(body["results"][0]["properties"]) == {
        "hs_call_title", "hs_createdate", "hs_lastmodifieddate", "hs_object_id",
    }  # fmt: skip


def test_get_by_id_and_404(roomy: FakeHubSpot) -> None:
    api = sdk(roomy).crm.objects.calls.basic_api
    call_id = roomy.dataset.ids("calls")[5]
    expected = roomy.dataset.get("calls", call_id)
    assert expected is not None
    obj = api.get_by_id(
        call_id,
        properties=["hs_call_title", "hs_call_duration"],
        associations=["contacts", "companies", "deals"],
    )
    assert obj.id == call_id
    assert obj.properties["hs_call_title"] == expected.properties["hs_call_title"]
    assert obj.properties["hs_call_duration"] == expected.properties["hs_call_duration"]
    for to_type in ("contacts", "companies", "deals"):
        inline = (obj.associations or {}).get(to_type)
        got = [] if inline is None else [a.id for a in inline.results]
        assert got == roomy.dataset.associated("calls", call_id, to_type)
    with pytest.raises(ApiException) as info:
        api.get_by_id("1")
    assert info.value.status == 404
    body = json.loads(info.value.body)
    assert body["category"] == "OBJECT_NOT_FOUND"
    assert body["status"] == "error"
    uuid.UUID(body["correlationId"])


def test_batch_read_results_errors_and_input_cap(roomy: FakeHubSpot) -> None:
    api = sdk(roomy).crm.objects.batch_api
    ids = roomy.dataset.ids("emails")[:100]

    def request(id_list: list[str]) -> BatchReadInputSimplePublicObjectId:
        return BatchReadInputSimplePublicObjectId(
            inputs=[SimplePublicObjectId(id=i) for i in id_list],
            properties=["hs_email_subject"],
            properties_with_history=[],
        )

    response = api.read("emails", request(ids))
    assert response.status == "COMPLETE"
    assert [r.id for r in response.results] == ids
    assert all(set(r.properties) >= {"hs_email_subject", "hs_object_id"} for r in response.results)
    assert response.started_at is not None and response.completed_at is not None

    partial = api.read("emails", request([*ids[:98], "1", "2"]))
    assert len(partial.results) == 98
    assert partial.num_errors == 1
    assert partial.errors[0].category == "OBJECT_NOT_FOUND"
    assert partial.errors[0].context == {"ids": ["1", "2"]}

    too_many = roomy.dataset.ids("emails")[:101]
    with pytest.raises(ApiException) as info:
        api.read("emails", request(too_many))
    assert info.value.status == 400
    assert json.loads(info.value.body)["category"] == "VALIDATION_ERROR"


# ---------------------------------------------------------------------------- search
def test_search_filters_sorts_and_pages_exactly(roomy: FakeHubSpot) -> None:
    api = sdk(roomy).crm.objects.search_api
    cutoff = int(datetime(2024, 1, 1, tzinfo=ZoneInfo("UTC")).timestamp() * 1000)
    expected = [o.id for o in roomy.dataset.objects("notes") if o.created_at >= cutoff][::-1]
    groups = [FilterGroup(filters=[Filter(property_name="hs_createdate", operator="GTE", value=str(cutoff))])]
    roomy.reset_stats()
    collected: list[str] = []
    after: str | None = None
    totals = set()
    while True:
        page = api.do_search(
            *search(
                "notes",
                filter_groups=groups,
                sorts=[{"propertyName": "hs_createdate", "direction": "DESCENDING"}],
                properties=["hs_note_body"],
                limit=200,
                after=after,
            )
        )
        totals.add(page.total)
        collected.extend(r.id for r in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert totals == {len(expected)}
    assert collected == expected
    assert roomy.stats.total == math.ceil(len(expected) / 200)
    assert roomy.stats.by_status == {200: roomy.stats.total}

    wanted = roomy.dataset.ids("calls")[10:13]
    by_ids = api.do_search(
        *search("calls", filter_groups=[FilterGroup(filters=[
            Filter(property_name="hs_object_id", operator="IN", values=wanted)])])
    )  # fmt: skip
    assert by_ids.total == 3
    assert [r.id for r in by_ids.results] == wanted

    # Two groups are ORed: EQ on the first id, EQ on the last.
    ids = roomy.dataset.ids("tasks")
    either = api.do_search(
        *search("tasks", filter_groups=[
            FilterGroup(filters=[Filter(property_name="hs_object_id", operator="EQ", value=ids[0])]),
            FilterGroup(filters=[Filter(property_name="hs_object_id", operator="EQ", value=ids[-1])]),
        ])
    )  # fmt: skip
    assert [r.id for r in either.results] == [ids[0], ids[-1]]


def test_search_rejects_paging_at_10000_and_limits_over_200(roomy: FakeHubSpot) -> None:
    api = sdk(roomy).crm.objects.search_api
    ok = api.do_search(*search("calls", after="9999", limit=10))
    assert ok.total == 812 and ok.results == []
    for kwargs in ({"after": "10000"}, {"after": "12000"}, {"limit": 201}):
        with pytest.raises(ApiException) as info:
            api.do_search(*search("calls", **kwargs))
        assert info.value.status == 400
        assert json.loads(info.value.body)["category"] == "VALIDATION_ERROR"


def test_search_stops_at_10000_results_of_a_larger_set() -> None:
    big = Dataset.generate(seed=3, engagement_counts={"notes": 10_050})
    with FakeHubSpot(dataset=big, window_limit=100_000, search_per_second=100_000) as fake:
        api = sdk(fake).crm.objects.search_api
        seen: list[str] = []
        after: str | None = None
        for _ in range(50):
            page = api.do_search(*search("notes", limit=200, after=after))
            assert page.total == 10_050
            seen.extend(r.id for r in page.results)
            after = page.paging.next.after
        assert after == "10000"  # HubSpot still offers the next page...
        with pytest.raises(ApiException) as info:  # ...but refuses to serve it
            api.do_search(*search("notes", limit=200, after=after))
        assert info.value.status == 400
        assert seen == big.ids("notes")[:10_000]
        assert fake.stats.by_status == {200: 50, 400: 1}


# ---------------------------------------------------------------------------- v4 associations
def test_v4_single_batch_and_v3_inline_associations_agree(roomy: FakeHubSpot) -> None:
    client = sdk(roomy)
    basic = client.crm.associations.v4.basic_api
    batch = client.crm.associations.v4.batch_api
    call_ids = roomy.dataset.ids("calls")[:60]

    single = {i: [t.to_object_id for t in basic.get_page("calls", i, "contacts").results] for i in call_ids}
    response = batch.get_page(
        "calls",
        "contacts",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in call_ids]
        ),
    )
    assert response.status == "COMPLETE"
    batched = {r._from.id: [t.to_object_id for t in r.to] for r in response.results}
    inline = {
        r.id: [a.id for a in r.associations["contacts"].results]
        for r in client.crm.objects.calls.basic_api.get_page(limit=60, associations=["contacts"]).results
    }
    expected = {i: roomy.dataset.associated("calls", i, "contacts") for i in call_ids}
    assert single == batched == inline == expected
    spec = response.results[0].to[0].association_types[0]
    assert (spec.category, spec.type_id, spec.label) == ("HUBSPOT_DEFINED", 194, None)

    without_deals = [i for i in call_ids if not roomy.dataset.associated("calls", i, "deals")]
    deals = batch.get_page(
        "calls",
        "deals",
        BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in call_ids]
        ),
    )
    assert 0 < len(without_deals) < 60
    assert deals.num_errors == len(without_deals)
    assert len(deals.results) == 60 - len(without_deals)
    assert {e.context["fromObjectId"][0] for e in deals.errors} == set(without_deals)
    assert {e.sub_category for e in deals.errors} == {"crm.associations.NO_ASSOCIATIONS_FOUND"}
    first_error = next(e for e in deals.errors if e.context["fromObjectId"] == [without_deals[0]])
    assert first_error.message == f"No deal is associated with call {without_deals[0]}."

    contact = max(
        roomy.dataset.ids("contacts"), key=lambda c: len(roomy.dataset.associated("contacts", c, "calls"))
    )
    paged: list[str] = []
    after: str | None = None
    while True:
        page = basic.get_page("contacts", contact, "calls", limit=2, after=after)
        paged.extend(t.to_object_id for t in page.results)
        if page.paging is None:
            break
        after = page.paging.next.after
    assert paged == roomy.dataset.associated("contacts", contact, "calls")
    assert len(paged) > 2


def test_v4_batch_body_is_the_json_of_hubspots_shape_byte_for_byte(roomy: FakeHubSpot) -> None:
    # The fake sends this body from encoded pieces (cached per object); it must be exactly what
    # dumping the whole response would give, errors, duplicates and unknown ids included.
    data = roomy.dataset
    calls = data.ids("calls")[:40]
    without_deals = [i for i in calls if not data.associated("calls", i, "deals")]
    asked = [*calls, calls[3], "999", 'odd "id" \u00e9']
    for attempt in range(2):  # the second answer comes from the cache
        request = urllib.request.Request(
            roomy.url + "/crm/v4/associations/call/deals/batch/read", method="POST",
            data=json.dumps({"inputs": [{"id": i} for i in asked]}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
        parsed = json.loads(raw)
        missing = [*without_deals, "999", 'odd "id" \u00e9']
        expected = {
            "status": "COMPLETE",
            "results": [
                {"from": {"id": i}, "to": [
                    {"toObjectId": int(t), "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": 206, "label": None}]}
                    for t in data.associated("calls", i, "deals")
                ]}
                for i in calls if i not in without_deals
            ],
            "startedAt": parsed["startedAt"],
            "completedAt": parsed["completedAt"],
            "numErrors": len(missing),
            "errors": [
                {
                    "status": "error", "category": "OBJECT_NOT_FOUND",
                    "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                    "message": f"No deal is associated with call {i}.",
                    "context": {"fromObjectId": [i], "fromObjectType": ["call"], "toObjectType": ["deal"]},
                }
                for i in missing
            ],
        }  # fmt: skip
        assert (attempt, status) == (attempt, 207)
        assert raw == json.dumps(expected, separators=(",", ":")).encode()
        assert parsed["startedAt"] <= parsed["completedAt"]

    status, _, body = http(roomy, "POST", "/crm/v4/associations/calls/contacts/batch/read",
                           body={"inputs": [{"id": i} for i in calls]})  # fmt: skip
    assert status == 200 and "errors" not in body and "numErrors" not in body
    assert [r["from"]["id"] for r in body["results"]] == calls


# ---------------------------------------------------------------------------- rate limits
def test_ten_secondly_window_429_body_headers_and_recovery() -> None:
    other = "pat-na1-other-token"
    clock = ManualClock(1000.0)
    with FakeHubSpot(window_limit=5, clock=clock, tokens=[TOKEN, other]) as fake:
        api = sdk(fake).crm.objects.calls.basic_api
        seen = []
        for _ in range(5):
            _, status, headers = api.get_page_with_http_info(limit=1)
            assert status == 200
            seen.append(rate_headers(headers))
        assert [h["X-HubSpot-RateLimit-Remaining"] for h in seen] == ["4", "3", "2", "1", "0"]
        assert [h["X-HubSpot-RateLimit-Daily-Remaining"] for h in seen] == [
            "624999", "624998", "624997", "624996", "624995",
        ]  # fmt: skip
        assert {(h["X-HubSpot-RateLimit-Max"], h["X-HubSpot-RateLimit-Interval-Milliseconds"],
                 h["X-HubSpot-RateLimit-Daily"]) for h in seen} == {("5", "10000", "625000")}  # fmt: skip

        with pytest.raises(ApiException) as info:
            api.get_page(limit=1)
        assert info.value.status == 429
        body = json.loads(info.value.body)
        assert set(body) == {"status", "message", "errorType", "correlationId", "policyName", "groupName"}
        assert body["status"] == "error"
        assert body["message"] == "You have reached your ten_secondly_rolling limit."
        assert body["errorType"] == "RATE_LIMIT"
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["groupName"].startswith("publicapi:private_app-api-calls-ten-secondly:")
        uuid.UUID(body["correlationId"])
        assert info.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert info.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "624995"  # refused: not counted
        assert "Retry-After" not in info.value.headers

        # The window is per token; the daily count is per account.
        _, _, headers = sdk(fake, other).crm.objects.calls.basic_api.get_page_with_http_info(limit=1)
        assert rate_headers(headers)["X-HubSpot-RateLimit-Remaining"] == "4"
        assert rate_headers(headers)["X-HubSpot-RateLimit-Daily-Remaining"] == "624994"

        clock.set(1009.999)  # the five still lie within (now - 10 s, now]
        for _ in range(2):
            with pytest.raises(ApiException) as info:
                api.get_page(limit=1)
            assert info.value.status == 429
        clock.set(1010.0)  # they have left it; the refused ones never entered it
        _, _, headers = api.get_page_with_http_info(limit=1)
        assert rate_headers(headers)["X-HubSpot-RateLimit-Remaining"] == "4"

        stats = fake.stats
        assert stats.by_status == {200: 7, 429: 3}
        assert stats.count_429 == 3
        assert stats.by_policy == {"TEN_SECONDLY_ROLLING": 3}
        assert stats.max_in_window(10.0, token=TOKEN) == 5
        assert stats.max_in_window(10.0) == 6  # both tokens, admitted only
        assert stats.max_in_window(10.0, include_refused=True) == 9
        assert stats.arrival_times(token=other) == [1000.0]
        refused = [r for r in stats.records if r.status == 429]
        assert all(not r.counted and r.token_fingerprint == token_fingerprint(TOKEN) for r in refused)


def test_search_secondly_limit_is_separate_and_has_no_rate_headers() -> None:
    clock = ManualClock(50.0)
    with FakeHubSpot(window_limit=3, search_per_second=5, clock=clock) as fake:
        client = sdk(fake)
        searcher = client.crm.objects.search_api
        for _ in range(5):
            _, status, headers = searcher.do_search_with_http_info(*search("meetings", limit=1))
            assert status == 200
            assert not [h for h in headers if h.lower().startswith("x-hubspot-ratelimit")]
        with pytest.raises(ApiException) as info:
            searcher.do_search(*search("meetings", limit=1))
        assert info.value.status == 429
        body = json.loads(info.value.body)
        assert body["message"] == "You have reached your secondly limit."
        assert (body["policyName"], body["errorType"]) == ("SECONDLY", "RATE_LIMIT")
        assert not rate_headers(info.value.headers)

        # Searches did not use up the 10-second window of non-search requests.
        lister = client.crm.objects.meetings.basic_api
        listed = [rate_headers(lister.get_page_with_http_info(limit=1)[2]) for _ in range(3)]
        assert [h["X-HubSpot-RateLimit-Remaining"] for h in listed] == ["2", "1", "0"]
        # Searches do count toward the daily limit: 5 searches + 3 lists admitted.
        assert listed[-1]["X-HubSpot-RateLimit-Daily-Remaining"] == str(625_000 - 8)

        clock.set(51.0)  # a second after the five searches: the per-second window is free again
        assert searcher.do_search(*search("meetings", limit=1)).total == 311
        assert fake.stats.max_in_window(1.0, search=True) == 5
        assert fake.stats.by_policy == {"SECONDLY": 1}
        assert fake.stats.by_status == {200: 9, 429: 1}


def test_daily_limit_resets_at_midnight_in_the_account_time_zone() -> None:
    zone = ZoneInfo("America/New_York")
    wall = ManualClock(datetime(2024, 3, 9, 18, 59, 59, tzinfo=zone).timestamp())  # 23:59:59 UTC
    with FakeHubSpot(
        daily_limit=3, time_zone="America/New_York", clock=ManualClock(), wall_clock=wall
    ) as fake:
        client = sdk(fake)
        api = client.crm.objects.tasks.basic_api
        daily = [rate_headers(api.get_page_with_http_info(limit=1)[2]) for _ in range(3)]
        assert [h["X-HubSpot-RateLimit-Daily-Remaining"] for h in daily] == ["2", "1", "0"]
        assert {h["X-HubSpot-RateLimit-Daily"] for h in daily} == {"3"}
        with pytest.raises(ApiException) as info:
            api.get_page(limit=1)
        body = json.loads(info.value.body)
        assert info.value.status == 429
        assert set(body) == {"status", "message", "errorType", "correlationId", "policyName", "requestId"}
        assert (body["policyName"], body["message"]) == ("DAILY", "You have reached your daily limit.")
        with pytest.raises(ApiException) as info:  # searches are refused by the daily limit too
            client.crm.objects.search_api.do_search(*search("tasks"))
        assert json.loads(info.value.body)["policyName"] == "DAILY"

        wall.set(datetime(2024, 3, 9, 19, 0, 0, tzinfo=zone).timestamp())  # a new day in UTC only
        with pytest.raises(ApiException) as info:
            api.get_page(limit=1)
        assert json.loads(info.value.body)["policyName"] == "DAILY"

        wall.set(datetime(2024, 3, 10, 0, 0, 0, tzinfo=zone).timestamp())  # midnight in New York
        headers = rate_headers(api.get_page_with_http_info(limit=1)[2])
        assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "2"
        assert fake.stats.by_policy == {"DAILY": 3}


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_tier_presets_and_headers(tier: str) -> None:
    with FakeHubSpot(tier=tier, clock=ManualClock()) as fake:
        _, _, headers = sdk(fake).crm.objects.notes.basic_api.get_page_with_http_info(limit=1)
    preset = TIERS[tier]
    expected = {
        "X-HubSpot-RateLimit-Max": str(preset.window_limit),
        "X-HubSpot-RateLimit-Remaining": str(preset.window_limit - 1),
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    if preset.daily_limit is not None:
        expected["X-HubSpot-RateLimit-Daily"] = str(preset.daily_limit)
        expected["X-HubSpot-RateLimit-Daily-Remaining"] = str(preset.daily_limit - 1)
    assert rate_headers(headers) == expected
    assert {
        "free": (100, 250_000),
        "starter": (100, 250_000),
        "professional": (190, 625_000),
        "enterprise": (190, 1_000_000),
        "api_addon": (250, 1_000_000),
        "oauth_app": (110, None),
    }[tier] == (preset.window_limit, preset.daily_limit)


def test_oauth_app_has_no_daily_headers_and_its_own_group_name() -> None:
    with FakeHubSpot(tier="oauth_app", window_limit=2, clock=ManualClock()) as fake:
        api = sdk(fake).crm.objects.notes.basic_api
        for _ in range(2):
            headers = api.get_page_with_http_info(limit=1)[2]
            assert "X-HubSpot-RateLimit-Daily" not in headers
            assert "X-HubSpot-RateLimit-Daily-Remaining" not in headers
        with pytest.raises(ApiException) as info:
            api.get_page(limit=1)
        assert json.loads(info.value.body)["groupName"].startswith(
            "publicapi:oauth_app-api-calls-ten-secondly:"
        )


def test_time_scale_shrinks_the_window_with_real_time() -> None:
    with FakeHubSpot(window_limit=3, time_scale=0.1) as fake:
        api = sdk(fake).crm.objects.emails.basic_api
        headers = [api.get_page_with_http_info(limit=1)[2] for _ in range(3)]
        assert {h["X-HubSpot-RateLimit-Interval-Milliseconds"] for h in headers} == {"1000"}
        with pytest.raises(ApiException) as info:
            api.get_page(limit=1)
        assert info.value.status == 429
        time.sleep(1.05)
        assert api.get_page_with_http_info(limit=1)[1] == 200
        assert fake.effective_window_seconds == pytest.approx(1.0)
        assert fake.stats.max_in_window(1.0) == 3
        assert fake.stats.by_status == {200: 4, 429: 1}


def test_concurrent_requests_are_admitted_exactly_up_to_the_limit() -> None:
    with FakeHubSpot(window_limit=20, clock=ManualClock()) as fake, ThreadPoolExecutor(30) as pool:
        statuses = list(pool.map(lambda _: http(fake, "GET", "/crm/v3/objects/calls?limit=1")[0], range(60)))
        assert statuses.count(200) == 20
        assert statuses.count(429) == 40
        assert fake.stats.max_in_window(10.0) == 20
        assert fake.stats.max_in_window(10.0, include_refused=True) == 60


def test_latency_is_applied_without_serialising_requests() -> None:
    with FakeHubSpot(latency=(0.2, 0.2)) as fake, ThreadPoolExecutor(4) as pool:

        def timed(_: int) -> float:
            started = time.monotonic()
            assert http(fake, "GET", "/crm/v3/objects/notes?limit=1")[0] == 200
            return time.monotonic() - started

        started = time.monotonic()
        durations = list(pool.map(timed, range(4)))
        elapsed = time.monotonic() - started
    assert min(durations) >= 0.2
    assert elapsed < 0.6  # four 0.2 s delays overlapped, not queued behind a lock


def test_seeded_latency_jitter_is_reproducible() -> None:
    draws = []
    for _ in range(2):
        fake = FakeHubSpot(latency=(0.02, 0.04), seed=7)
        draws.append([fake._latency_delay() for _ in range(20)])
    assert draws[0] == draws[1]
    assert all(0.02 <= d <= 0.04 for d in draws[0])
    assert len(set(draws[0])) == 20


# ---------------------------------------------------------------------------- stats
def brute_force_max_in_window(times: list[float], window: float) -> int:
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


def test_max_in_window_on_hand_made_lists() -> None:
    assert max_in_window([0.0, 1.0, 2.0, 9.99, 10.0, 10.5, 20.0], 10.0) == 5
    assert max_in_window([0.0, 10.0], 10.0) == 1  # half-open: 10 s apart never share a window
    assert max_in_window([0.0, 9.999], 10.0) == 2
    assert max_in_window([], 10.0) == 0
    assert max_in_window([5.0, 5.0, 5.0], 0.001) == 3
    assert max_in_window([3.0, 1.0, 2.0, 0.0], 2.0) == 2  # any order
    with pytest.raises(ValueError):
        max_in_window([1.0], 0.0)
    rng = random.Random(11)
    for _ in range(300):
        times = [float(rng.randrange(0, 40)) / rng.choice((1, 2, 4)) for _ in range(rng.randrange(0, 30))]
        window = rng.choice((0.5, 1.0, 2.5, 10.0))
        assert max_in_window(times, window) == brute_force_max_in_window(times, window)


# ---------------------------------------------------------------------------- auth, secrecy
def test_wrong_missing_or_malformed_token_gets_401_without_echo(capfd: pytest.CaptureFixture[str]) -> None:
    secret = "pat-na1-WRONG-SECRET-0123456789"
    with FakeHubSpot(tokens=[TOKEN], window_limit=1, clock=ManualClock()) as fake:
        with pytest.raises(ApiException) as info:
            sdk(fake, secret).crm.objects.calls.basic_api.get_page(limit=1)
        assert info.value.status == 401
        body = json.loads(info.value.body)
        assert (body["status"], body["category"]) == ("error", "INVALID_AUTHENTICATION")
        assert secret not in info.value.body and secret not in str(info.value.headers)
        assert not rate_headers(info.value.headers)

        assert http(fake, "GET", "/crm/v3/objects/calls", token=None)[0] == 401
        status, _, _ = _raw_status(fake, "Basic dXNlcjpwYXNz")
        assert status == 401

        # 401s are not counted: the single request of the window is still available.
        assert http(fake, "GET", "/crm/v3/objects/calls")[0] == 200
        status, headers, body = http(fake, "GET", "/crm/v3/objects/calls")
        assert status == 429

        records = fake.stats.records
        assert [r.status for r in records] == [401, 401, 401, 200, 429]
        assert records[0].token_fingerprint == token_fingerprint(secret)
        assert records[1].token_fingerprint is None
        assert [r.counted for r in records] == [False, False, False, True, False]
        assert secret not in repr(records) and TOKEN not in repr(records) and TOKEN not in repr(fake)
        assert TOKEN not in json.dumps(body) and TOKEN not in str(headers)
    out, err = capfd.readouterr()
    assert secret not in out + err and TOKEN not in out + err


def _raw_status(fake: FakeHubSpot, authorization: str) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        fake.url + "/crm/v3/objects/calls", headers={"Authorization": authorization}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


def test_any_non_empty_token_is_accepted_when_tokens_is_none() -> None:
    with FakeHubSpot() as fake:
        assert http(fake, "GET", "/crm/v3/objects/calls?limit=1", token="anything")[0] == 200
        assert _raw_status(fake, "Bearer ")[0] == 401


def test_raw_requests_edge_cases(roomy: FakeHubSpot) -> None:
    status, _, body = http(
        roomy, "GET", "/crm/v3/objects/calls?limit=500&properties=hs_call_title,hs_call_status"
    )
    assert status == 200 and len(body["results"]) == 100  # list pages hold at most 100
    assert {"hs_call_title", "hs_call_status"} <= set(body["results"][0]["properties"])
    assert (
        http(roomy, "GET", "/crm/v3/objects/0-48?limit=1")[2]["results"][0]["id"]
        == roomy.dataset.ids("calls")[0]
    )
    assert http(roomy, "GET", "/crm/v3/objects/calls?archived=true")[2] == {"results": []}
    status, _, body = http(roomy, "GET", "/crm/v3/objects/widgets")
    assert (status, body["category"]) == (400, "VALIDATION_ERROR")
    assert http(roomy, "GET", "/crm/v3/nothing-here")[0] == 404
    assert http(roomy, "POST", "/crm/v3/objects/calls/search", body=b"{not json")[0] == 400
    assert http(roomy, "POST", "/crm/v4/associations/calls/contacts/batch/read",
                body={"inputs": [{"id": str(i)} for i in range(1001)]})[0] == 400  # fmt: skip
    status, _, body = http(roomy, "GET", f"/crm/v3/objects/contacts/{roomy.dataset.ids('contacts')[0]}")
    assert status == 200 and set(body["properties"]) == {
        "createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname",
    }  # fmt: skip


def test_sdk_api_request_with_base_url(roomy: FakeHubSpot) -> None:
    client = hubspot.HubSpot(access_token=TOKEN, host=roomy.url, base_url=roomy.url)
    response = client.api_request({"method": "GET", "path": "/crm/v3/objects/deals", "qs": {"limit": 2}})
    with response:
        assert response.status_code == 200
        assert [r["id"] for r in response.json()["results"]] == roomy.dataset.ids("deals")[:2]
        assert response.headers["X-HubSpot-RateLimit-Max"] == "100000"


# ---------------------------------------------------------------------------- lifecycle
def test_stop_leaves_no_threads_and_closes_the_port() -> None:
    before = set(threading.enumerate())
    fake = FakeHubSpot(latency=(0.3, 0.3)).start()
    url, port = fake.url, fake.port
    api = hubspot.HubSpot(access_token=TOKEN, host=url).crm.objects.calls.basic_api
    assert api.get_page(limit=1).results  # leaves a keep-alive connection open in the SDK pool
    idle = socket.create_connection(("127.0.0.1", port))  # and an idle one that never sends
    in_flight: list[int] = []
    worker = threading.Thread(target=lambda: in_flight.append(http(fake, "GET", "/crm/v3/objects/calls")[0]))
    worker.start()
    time.sleep(0.1)  # the request is now inside its 0.3 s latency
    fake.stop()
    worker.join()
    idle.close()
    assert in_flight == [200]  # a request in flight is allowed to finish
    assert set(threading.enumerate()) - before == set()
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("FakeHubSpot")]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    fake.stop()  # idempotent
    assert not fake.running


def test_remote_fake_is_public_and_serves_from_a_child_process(capfd: pytest.CaptureFixture[str]) -> None:
    import ratewindow_hubspot.testing as testing

    assert "RemoteFakeHubSpot" in testing.__all__ and RemoteFakeHubSpot.__doc__
    with RemoteFakeHubSpot(tokens=[TOKEN], latency=[0.0, 0.0]) as fake:
        assert fake.url.startswith("http://127.0.0.1:")
        client = hubspot.HubSpot(access_token=TOKEN, host=fake.url)
        page = client.crm.objects.calls.basic_api.get_page(limit=2)
        assert len(page.results) == 2
        [record] = fake.records()
        assert record.status == 200 and record.path == "/crm/v3/objects/calls"
        fake.reset()
        assert fake.records() == []
    assert "Warning" not in capfd.readouterr().err  # the child starts quietly (make demo shows its stderr)


def test_module_entry_point_serves_until_interrupted() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ADAPTER_ROOT), os.environ.get("PYTHONPATH", "")]))
    secret = "cli-secret-token-42"
    command = [sys.executable, "-m", "ratewindow_hubspot.testing", "--port", "0", "--time-scale", "0.1",
               "--latency", "0.01", "0.02", "--token", secret]  # fmt: skip
    # A shell's background job inherits SIGINT ignored (then Python installs no KeyboardInterrupt
    # handler): give the child the default disposition, as an interactive terminal would.
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as proc:
        assert proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=15)
        selector.close()
        assert ready, "the fake printed nothing within 15 s"
        lines = [proc.stdout.readline() for _ in range(4)]  # printed together at start-up
        assert lines and lines[0].startswith("FakeHubSpot serving at http://127.0.0.1:"), lines
        url = lines[0].split()[-1]
        request = urllib.request.Request(f"{url}/crm/v3/objects/calls?limit=1",
                                         headers={"Authorization": f"Bearer {secret}"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "1000"
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()  # never a hang: the with block would wait for it for ever
            raise
    assert proc.returncode == 0, err
    assert secret not in "".join(lines) + out + err
    assert "deprecated" not in err


def test_module_entry_point_still_reads_the_old_spellings_with_a_notice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ratewindow_hubspot.testing.__main__ import main

    stop = threading.Event()
    stop.set()  # serve, print the banner, return
    assert main(["--port", "0", "--scale", "0.1", "--latency", "0.01-0.02"], stop_event=stop) == 0
    out, err = capsys.readouterr()
    assert "limits: 190 per 1 s per token" in out  # --scale 0.1 applied
    assert sorted(err.splitlines()) == ["deprecated: --latency 0.01-0.02; write --latency 0.01 0.02",
                                        "deprecated: --scale 0.1; write --time-scale 0.1"]
