"""The batched helpers return exactly what one-by-one calls return, in ceil(n / batch) calls."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import ratewindow_hubspot
from hubspot_support import NOON, TOKEN
from ratewindow_hubspot import (
    SearchCapExceeded,
    batch_read,
    iter_objects,
    limiter_of,
    read_associations,
    read_associations_many,
    search,
)
from ratewindow_hubspot.testing import DEFAULT_ENGAGEMENT_COUNTS, ENGAGEMENT_TYPES, Dataset, FakeHubSpot

from ratewindow import QuotaExhausted, SlidingWindow
from ratewindow.testing import ManualClock

TARGETS = ("contacts", "companies", "deals")


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(window_limit=1_000_000, search_per_second=1_000_000, tokens=[TOKEN]) as served:
        yield served


def _client(fake: FakeHubSpot) -> Any:
    return ratewindow_hubspot.client(TOKEN, host=fake.url, limits=SlidingWindow(1_000_000, 1.0))


def _one_by_one(hs: Any, requests: list[dict[str, Any]]) -> list[Any]:
    """Each request sent alone through ``api_request`` (raw HTTP, not the helpers' SDK path), in
    parallel; the parsed JSON bodies."""
    with ratewindow_hubspot.executor(hs, max_workers=16, progress=False) as ex:
        outcomes = ex.map(lambda options: hs.api_request(options).json(), requests)
    assert all(o.ok for o in outcomes)
    return [o.value for o in outcomes]


def test_the_seed_workload_takes_15_calls_instead_of_3067(fake: FakeHubSpot) -> None:
    hs = _client(fake)
    links = {
        (etype, target): read_associations(hs, etype, target, fake.dataset.ids(etype))
        for etype in ENGAGEMENT_TYPES
        for target in TARGETS
    }
    assert fake.stats.total == 15  # 5 engagement types x 3 target types, <= 1,000 ids a call
    assert fake.stats.total == sum(
        math.ceil(DEFAULT_ENGAGEMENT_COUNTS[t] / 1000) for t in ENGAGEMENT_TYPES for _ in TARGETS
    )
    assert sum(len(links[(t, "contacts")]) for t in ENGAGEMENT_TYPES) == 3067
    for (etype, target), found in links.items():
        assert list(found) == fake.dataset.ids(etype)
        for object_id, targets in found.items():
            expected = fake.dataset.associated(etype, object_id, target)
            assert [str(t["toObjectId"]) for t in targets] == expected

    # Exactly what the one-by-one v4 reads return (all meetings).
    meetings = fake.dataset.ids("meetings")
    for target in TARGETS:
        pages = _one_by_one(hs, [
            {"method": "GET", "path": f"/crm/v4/objects/meetings/{i}/associations/{target}"} for i in meetings
        ])  # fmt: skip
        assert [page["results"] for page in pages] == list(links[("meetings", target)].values())
    first = links[("meetings", "contacts")][meetings[0]][0]
    assert first["associationTypes"] == [{"category": "HUBSPOT_DEFINED", "typeId": 200, "label": None}]
    assert isinstance(first["toObjectId"], int)


def test_read_associations_many_sends_every_pair_at_once() -> None:
    # 1 s per response: sent one after another, 15 calls would arrive over 14 s or more.
    with FakeHubSpot(window_limit=1_000_000, latency=1.0, tokens=[TOKEN]) as slow:
        hs = _client(slow)
        requests = {(e, t): slow.dataset.ids(e) for e in ENGAGEMENT_TYPES for t in TARGETS}
        links = read_associations_many(hs, requests)
        arrivals = slow.stats.arrival_times()
    assert len(arrivals) == limiter_of(hs).stats.requests == 15  # one permit per request
    assert arrivals[-1] - arrivals[0] < 1.0  # each call went out before any answer came back
    assert list(links) == list(requests)
    for (etype, target), found in links.items():
        assert list(found) == slow.dataset.ids(etype)
        assert all([str(t["toObjectId"]) for t in targets] == slow.dataset.associated(etype, i, target)
                   for i, targets in found.items())  # fmt: skip


def test_read_associations_many_equals_read_associations_pair_by_pair() -> None:
    data = Dataset.generate(seed=4, engagement_counts={"calls": 2_345, "notes": 10})
    with FakeHubSpot(dataset=data, window_limit=1_000_000, tokens=[TOKEN]) as fake:
        hs = _client(fake)
        calls, contacts = data.ids("calls"), data.ids("contacts")
        requests: dict[tuple[str, str], list[Any]] = {
            ("calls", "contacts"): [*calls, calls[7], int(calls[0]), "999"],  # 3 chunks of <= 1,000
            ("calls", "deals"): calls[:1_500],  # 2 chunks
            ("contacts", "calls"): contacts,  # 1 chunk
            ("notes", "companies"): [],  # no call
            ("meetings", "contacts"): ["1", "2"],  # no meetings in this dataset: empty lists
        }
        with ratewindow_hubspot.executor(hs, max_workers=2, progress=False) as ex:
            links = read_associations_many(hs, requests, executor=ex)
        assert fake.stats.total == limiter_of(hs).stats.requests == 3 + 2 + 1 + 1
        fake.reset_stats()
        pair_by_pair = {pair: read_associations(hs, *pair, ids) for pair, ids in requests.items()}
        assert fake.stats.total == 7
        shared = iter(calls[:3])  # one iterator for two pairs: read once, used for both
        both = read_associations_many(hs, {("calls", "contacts"): shared, ("calls", "deals"): shared})
        assert list(both[("calls", "contacts")]) == list(both[("calls", "deals")]) == calls[:3]
    assert links == pair_by_pair
    assert list(links[("calls", "contacts")]) == [*calls, "999"]
    assert links[("calls", "contacts")]["999"] == [] and links[("notes", "companies")] == {}
    assert links[("meetings", "contacts")] == {"1": [], "2": []}
    assert [str(t["toObjectId"]) for t in links[("contacts", "calls")][contacts[0]]] == data.associated(
        "contacts", contacts[0], "calls"
    )


def test_read_associations_keeps_order_and_duplicates_once(fake: FakeHubSpot) -> None:
    hs = _client(fake)
    calls = fake.dataset.ids("calls")
    ids = [calls[5], int(calls[1]), calls[5], "999"]  # ints accepted; an unknown id has no links
    found = read_associations(hs, "calls", "deals", ids)
    assert list(found) == [calls[5], calls[1], "999"]
    assert found["999"] == []
    assert fake.stats.total == 1
    contacts = fake.dataset.ids("contacts")
    many = read_associations(hs, "contacts", "calls", contacts)  # 400 contacts, one call
    expected = fake.dataset.associated("contacts", contacts[0], "calls")
    assert [str(t["toObjectId"]) for t in many[contacts[0]]] == expected


@pytest.mark.parametrize("one", ["30000000007", b"30000000007", 30000000007], ids=["str", "bytes", "int"])
def test_one_id_instead_of_a_collection_is_a_type_error_and_sends_nothing(fake: FakeHubSpot,
                                                                         one: Any) -> None:
    hs = _client(fake)
    calls = [
        lambda: read_associations(hs, "calls", "contacts", one),
        lambda: read_associations_many(hs, {("calls", "contacts"): one}),
        lambda: batch_read(hs, "contacts", one),
    ]
    for call in calls:
        with pytest.raises(TypeError, match=f"ids must be a collection such as a list, got .*{one!r}"):
            call()
    assert fake.stats.total == 0


def test_one_name_instead_of_a_list_is_a_type_error_at_the_call(fake: FakeHubSpot) -> None:
    hs = _client(fake)
    with pytest.raises(TypeError, match=r"properties must be a collection .*'email'.*pass \['email'\]"):
        batch_read(hs, "contacts", ["1"], properties="email")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="associations must be a collection"):
        iter_objects(hs, "calls", associations="contacts")  # type: ignore[arg-type]  # not even next()
    with pytest.raises(TypeError, match="properties must be a collection"):
        search(hs, "contacts", properties="email")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="requests must be a mapping"):
        read_associations_many(hs, [("calls", "contacts")])  # type: ignore[arg-type]
    assert fake.stats.total == 0


def test_batch_read_equals_get_by_id_in_ceil_n_over_100_calls(fake: FakeHubSpot) -> None:
    hs = _client(fake)
    contacts = fake.dataset.ids("contacts")[:250]
    found = batch_read(hs, "contacts", [*contacts, "404404"], properties=["email", "firstname"])
    assert fake.stats.total == 3
    assert list(found) == contacts  # the unknown id is left out

    singles = _one_by_one(hs, [
        {"method": "GET", "path": f"/crm/v3/objects/contacts/{i}", "qs": {"properties": "email,firstname"}}
        for i in contacts
    ])  # fmt: skip
    assert singles == list(found.values())
    by_email = batch_read(hs, "contacts", [found[c]["properties"]["email"] for c in contacts[:3]],
                          id_property="email")  # fmt: skip
    assert [obj["id"] for obj in by_email.values()] == contacts[:3]


def test_iter_objects_pages_with_associations_inline(fake: FakeHubSpot) -> None:
    hs = _client(fake)
    objects = list(iter_objects(hs, "calls", properties=["hs_call_title"], associations=list(TARGETS)))
    assert fake.stats.total == math.ceil(812 / 100)
    assert [o["id"] for o in objects] == fake.dataset.ids("calls")

    query = {"properties": "hs_call_title", "associations": ",".join(TARGETS)}
    paths = [f"/crm/v3/objects/calls/{i}" for i in fake.dataset.ids("calls")]
    singles = _one_by_one(hs, [{"method": "GET", "path": path, "qs": query} for path in paths])
    assert singles == objects
    first = objects[0]
    assert [a["id"] for a in first["associations"]["contacts"]["results"]] == fake.dataset.associated(
        "calls", first["id"], "contacts"
    )
    with pytest.raises(ValueError, match="limit"):
        next(iter_objects(hs, "calls", limit=101))


def test_search_pages_at_five_per_second(clock: ManualClock) -> None:
    with FakeHubSpot(clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, clock=clock)
        with ratewindow_hubspot.executor(hs, max_workers=1, progress=False, clock=clock) as ex:
            found = list(search(hs, "meetings", properties=["hs_meeting_title"], limit=30, executor=ex))
        assert [o["id"] for o in found] == fake.dataset.ids("meetings")
        assert fake.stats.total == math.ceil(311 / 30) == 11
        assert fake.stats.arrival_times() == [NOON] * 5 + [NOON + 1.0] * 5 + [NOON + 2.0]
        assert fake.stats.by_status == {200: 11}

        expected: list[Any] = []  # the same pages, one by one
        after = None
        while True:
            body = {"properties": ["hs_meeting_title"], "limit": 30, **({"after": after} if after else {})}
            page = hs.api_request({"method": "POST", "path": "/crm/v3/objects/meetings/search", "body": body})
            expected.extend(page.json()["results"])
            if "paging" not in page.json():
                break
            after = page.json()["paging"]["next"]["after"]
        assert found == expected

        groups = [{"filters": [{"propertyName": "hs_meeting_title", "operator": "CONTAINS_TOKEN",
                                "value": "demo"}]}]  # fmt: skip
        demos = list(search(hs, "meetings", filter_groups=groups, properties=["hs_meeting_title"]))
        assert demos and all("demo" in o["properties"]["hs_meeting_title"].lower() for o in demos)


def test_search_raises_or_splits_at_the_10000_result_cap(clock: ManualClock) -> None:
    big = Dataset.generate(seed=3, engagement_counts={"notes": 10_050})
    with FakeHubSpot(dataset=big, clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, clock=clock)
        with pytest.raises(SearchCapExceeded) as info:
            next(search(hs, "notes"))
        assert (info.value.total, info.value.cap) == (10_050, 10_000)
        assert "split=True" in str(info.value)
        assert fake.stats.total == 1  # raised after the first call, before any result

        fake.reset_stats()
        with ratewindow_hubspot.executor(hs, max_workers=1, progress=False, clock=clock) as ex:
            ids = [o["id"] for o in search(hs, "notes", split=True, executor=ex)]
        assert ids == big.ids("notes")  # every match once, in id order
        assert fake.stats.total == 51  # 50 pages of 200, then the rest past the last id seen
        assert fake.stats.by_status == {200: 51}
        with pytest.raises(ValueError, match="sorts"):
            next(search(hs, "notes", split=True, sorts=["hs_createdate"]))
        full = [{"filters": [{"propertyName": "hs_object_id", "operator": "GT", "value": "0"}] * 6}]
        with pytest.raises(ValueError, match="at most 5 filters"):
            next(search(hs, "notes", split=True, filter_groups=full))


def test_helpers_retry_429s_through_the_executor(clock: ManualClock) -> None:
    # Search responses carry no rate-limit headers, so nothing warns of HubSpot's stricter limit.
    with FakeHubSpot(search_per_second=2, clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, clock=clock)  # believes 5 a second
        with ratewindow_hubspot.executor(hs, max_workers=1, progress=False, clock=clock) as ex:
            found = list(search(hs, "meetings", limit=100, executor=ex))
        assert [o["id"] for o in found] == fake.dataset.ids("meetings")
        assert fake.stats.by_status == {200: 4, 429: 1}  # the third page, retried a second later
        assert fake.stats.by_policy == {"SECONDLY": 1}
        assert clock.now() == NOON + 1.0


def test_helpers_stop_when_the_day_is_spent(clock: ManualClock) -> None:
    with FakeHubSpot(daily_limit=2, clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(
            TOKEN, host=fake.url, limits=SlidingWindow(100, 10.0, clock=clock), clock=clock
        )
        with ratewindow_hubspot.executor(hs, max_workers=1, progress=False, clock=clock) as ex, \
                pytest.raises(QuotaExhausted) as info:  # fmt: skip
            batch_read(hs, "contacts", fake.dataset.ids("contacts")[:400], executor=ex)
        assert info.value.retry_at == NOON + 12 * 3600.0  # UTC midnight
        assert fake.stats.by_status == {200: 2, 429: 1}  # the 4th chunk was never sent
