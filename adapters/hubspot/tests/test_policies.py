"""429s by ``policyName``: the rolling window pauses every worker, SECONDLY pauses search only,
DAILY stops the batch with ``QuotaExhausted`` and nothing is lost.

The client's limiters, the executor and the fake share one ``ManualClock``: every pause and
wait is exact, and nothing sleeps for real.
"""

from __future__ import annotations

import datetime as dt
import json
import pickle
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import hubspot
import pytest
import ratewindow_hubspot
from hubspot.crm.objects import PublicObjectSearchRequest
from hubspot_support import API_EXCEPTIONS, NOON, TOKEN
from ratewindow_hubspot import DailyLimitExhausted, limiter_of
from ratewindow_hubspot.testing import FakeHubSpot

from ratewindow import QuotaExhausted, SlidingWindow
from ratewindow.testing import ManualClock

NEW_YORK = ZoneInfo("America/New_York")


def _next_midnight(now: float, zone: ZoneInfo) -> float:
    local = dt.datetime.fromtimestamp(now, zone)
    return dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=zone).timestamp()


def test_ten_secondly_429_pauses_every_worker_until_the_window_frees(clock: ManualClock) -> None:
    with FakeHubSpot(window_limit=10, clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(
            TOKEN, host=fake.url, limits=SlidingWindow(10, 10.0, clock=clock), clock=clock
        )
        ids = fake.dataset.ids("calls")
        api = hs.crm.objects.calls.basic_api
        for i in ids[:5]:
            api.get_by_id(i)
        other = hubspot.HubSpot(access_token=TOKEN, host=fake.url).crm.objects.calls.basic_api
        for _ in range(5):
            other.get_page(limit=1)  # another process of the same app fills the window meanwhile
        with pytest.raises(API_EXCEPTIONS) as info:
            api.get_by_id(ids[5])
        error = info.value
        assert error.status == 429  # type: ignore[attr-defined]
        assert error.policy_name == "TEN_SECONDLY_ROLLING"  # type: ignore[attr-defined]
        # Our oldest request in the window was sent at NOON: HubSpot's window frees by NOON + 10 s.
        assert error.retry_after == 10.0  # type: ignore[attr-defined]
        limiter = limiter_of(hs)
        assert limiter.account.wait_time() == 10.0  # every worker waits, searches too
        assert limiter.search.wait_time() == 10.0
        assert limiter.stats.rate_limited == {"TEN_SECONDLY_ROLLING": 1}
        assert limiter.stats.refusal_share == 1 / 6  # of the 6 requests this client sent
        # Yielded: 4 seen as others' (the refused request counts as ours) and 5 % of the window.
        assert limiter.stats.phantom_units == 5
        assert fake.stats.by_status == {200: 10, 429: 1}


def test_the_executor_retries_a_429_after_the_pause(clock: ManualClock) -> None:
    with FakeHubSpot(window_limit=10, clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(
            TOKEN, host=fake.url, limits=SlidingWindow(10, 10.0, clock=clock), clock=clock
        )
        ids = fake.dataset.ids("calls")
        api = hs.crm.objects.calls.basic_api
        other = hubspot.HubSpot(access_token=TOKEN, host=fake.url).crm.objects.calls.basic_api

        def fetch(object_id: str) -> str:
            if object_id == ids[5] and fake.stats.total == 5:
                for _ in range(5):
                    other.get_page(limit=1)  # the other process strikes mid-batch
            return str(api.get_by_id(object_id).id)

        with ratewindow_hubspot.executor(hs, max_workers=1, progress=False, clock=clock) as ex:
            outcomes = ex.map(fetch, ids[:15])
        assert [o.value for o in outcomes] == ids[:15]
        assert [o.attempts for o in outcomes] == [1] * 5 + [2] + [1] * 9
        assert fake.stats.by_status == {200: 20, 429: 1}
        # Retried when the window freed (NOON + 10). Of the 5 units yielded to the other process,
        # 4 fitted at NOON (beside its requests) and left with them; 1 was booked at NOON + 10 and
        # held that window's tenth place, so the last call went at NOON + 20.
        assert fake.stats.arrival_times(include_refused=False)[-10:] == [NOON + 10.0] * 9 + [NOON + 20.0]
        assert fake.stats.max_in_window(10.0) == 10


def test_secondly_429_pauses_search_only(clock: ManualClock) -> None:
    with FakeHubSpot(search_per_second=2, clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, clock=clock)  # believes 5 searches a second
        searcher = hs.crm.objects.search_api
        request = PublicObjectSearchRequest(limit=1)
        searcher.do_search("notes", request)
        searcher.do_search("notes", request)
        with pytest.raises(API_EXCEPTIONS) as info:
            searcher.do_search("notes", request)
        assert info.value.status == 429  # type: ignore[attr-defined]
        assert info.value.policy_name == "SECONDLY"  # type: ignore[attr-defined]
        assert info.value.retry_after == 1.0  # type: ignore[attr-defined]
        limiter = limiter_of(hs)
        assert limiter.search.wait_time() == 1.0
        assert limiter.account.wait_time() == 0.0
        hs.crm.objects.notes.basic_api.get_page(limit=1)  # other requests go on at once
        assert clock.now() == NOON
        assert searcher.do_search("notes", request).total == 604  # waits for the pause
        assert clock.now() == NOON + 1.0
        assert fake.stats.by_policy == {"SECONDLY": 1}
        assert fake.stats.by_status == {200: 4, 429: 1}


def test_a_429_without_a_policy_is_taken_for_the_window() -> None:
    from ratewindow_hubspot._errors import policy_of

    assert policy_of(b'{"status":"error","policyName":"DAILY"}') == "DAILY"
    assert policy_of('{"policyName":"ten_secondly_rolling"}') == "TEN_SECONDLY_ROLLING"
    assert policy_of({"policyName": "SOMETHING_ELSE"}) is None
    assert policy_of(b"\xff") is None and policy_of("not json") is None and policy_of(None) is None


def test_daily_429_stops_the_batch_and_a_journal_resumes_after_midnight(
    clock: ManualClock, tmp_path: Path
) -> None:
    with FakeHubSpot(
        daily_limit=5, time_zone="America/New_York", clock=clock, wall_clock=clock, tokens=[TOKEN]
    ) as fake:
        # Limits without a daily quota: only HubSpot's 429 tells us the day is spent.
        hs = ratewindow_hubspot.client(
            TOKEN, host=fake.url, limits=SlidingWindow(190, 10.0, clock=clock), clock=clock,
            time_zone="America/New_York",
        )  # fmt: skip
        ids = fake.dataset.ids("emails")[:8]
        journal = tmp_path / "emails.jsonl"
        api = hs.crm.objects.emails.basic_api

        def fetch(object_id: str) -> str:
            return str(api.get_by_id(object_id).id)

        with ratewindow_hubspot.executor(hs, max_workers=1, progress=False, clock=clock) as ex:
            first = ex.map(fetch, ids, journal=journal)
        midnight = _next_midnight(NOON, NEW_YORK)
        assert [o.ok for o in first] == [True] * 5 + [False] * 3
        assert [o.attempts for o in first] == [1] * 5 + [1, 0, 0]
        for outcome in first[5:]:
            assert isinstance(outcome.error, QuotaExhausted)
            assert outcome.error.retry_at == midnight
        assert first[5].error is not None and isinstance(first[5].error.__cause__, DailyLimitExhausted)
        assert fake.stats.by_status == {200: 5, 429: 1}  # nothing was sent after the DAILY 429

        # Direct calls are refused locally until the reset, without a request.
        with pytest.raises(DailyLimitExhausted) as info:
            api.get_by_id(ids[5])
        assert info.value.retry_at == midnight and info.value.retry_after == midnight - NOON
        assert fake.stats.total == 6

        clock.advance(midnight - clock.now())
        with ratewindow_hubspot.executor(hs, max_workers=1, progress=False, clock=clock) as ex:
            second = ex.map(fetch, ids, journal=journal)
        assert [o.value for o in second] == ids
        assert [o.resumed for o in second] == [True] * 5 + [False] * 3
        served = Counter(r.path.rsplit("/", 1)[-1] for r in fake.stats.records if r.status == 200)
        assert served == Counter(ids)  # every item fetched exactly once across both runs
        lines = [json.loads(line) for line in journal.read_text().splitlines()]
        assert len(lines) == 9  # 5 ok and 1 failed, then 3 ok (items never run are not journaled)


def test_the_local_daily_quota_follows_the_headers_and_refuses_before_sending(clock: ManualClock) -> None:
    with FakeHubSpot(
        daily_limit=1000, time_zone="America/New_York", clock=clock, wall_clock=clock,
        tokens=[TOKEN, "pat-other-app"],
    ) as fake:
        other = ratewindow_hubspot.client("pat-other-app", host=fake.url, account_id=9, clock=clock)
        for _ in range(150):
            other.crm.objects.calls.basic_api.get_page(limit=1)  # another app spends the account's day
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, clock=clock, time_zone="America/New_York")
        hs.crm.objects.calls.basic_api.get_page(limit=1)  # the headers: Daily 1000, Daily-Remaining 849
        limiter = limiter_of(hs)
        assert limiter.tier is not None and limiter.tier.daily_limit == 1000  # adopted from the headers
        assert limiter.stats.daily_units == 150  # the other app's requests, taken on the local quota
        daily = limiter.account.limiters[1]  # type: ignore[attr-defined]
        assert daily.available() == 849
        assert daily.try_acquire(849)  # as if this process had spent the rest
        with pytest.raises(DailyLimitExhausted) as info:
            hs.crm.objects.calls.basic_api.get_page(limit=1)
        assert info.value.retry_at == _next_midnight(NOON, NEW_YORK)
        assert fake.stats.total == 151  # refused locally: nothing sent
        restored = pickle.loads(pickle.dumps(info.value))
        assert (restored.retry_at, restored.limiter, restored.retry_after) == (
            info.value.retry_at, info.value.limiter, info.value.retry_after,
        )  # fmt: skip
        assert TOKEN not in str(info.value) + repr(info.value)


def test_daily_limit_exhausted_says_when_in_iso_8601_with_its_offset() -> None:
    error = DailyLimitExhausted(1_796_533_200.0, "hubspot:abc", retry_after=100.0)
    assert str(error) == ("HubSpot daily limit of 'hubspot:abc' spent; it resets at "
                          "2026-12-06T05:00:00+00:00 (Unix time 1796533200.000)")
    assert str(pickle.loads(pickle.dumps(error))) == str(error)
