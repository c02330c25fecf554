"""The seed's workload, as the seed wrote it (one call per engagement), through the executor."""

from __future__ import annotations

import math
import time

import pytest
import ratewindow_hubspot
from hubspot_support import TOKEN, engagement_ids
from ratewindow_hubspot import limiter_of
from ratewindow_hubspot.testing import FakeHubSpot

from ratewindow import SlidingWindow

TARGETS = ["contacts", "companies", "deals"]


@pytest.mark.realtime
def test_20_threads_one_call_per_engagement_no_429_at_the_least_time_the_limit_allows() -> None:
    # HubSpot's window scaled to 1,500 requests per 5 s, so that the 3,067 calls take ~10 s. The
    # margin is the adapter's default on HubSpot's own window, 0.1 s: it absorbs the jitter of 20
    # client threads and the fake sharing one interpreter (on a busy machine, tens of ms).
    limit = 1500
    with FakeHubSpot(window_limit=limit, time_scale=0.5, latency=(0.0, 0.01), tokens=[TOKEN]) as fake:
        window = fake.effective_window_seconds
        hs = ratewindow_hubspot.client(TOKEN, host=fake.url, limits=SlidingWindow(limit, window, margin=0.1))
        items = engagement_ids(fake)
        assert len(items) == 3067

        def associations_of(item: tuple[str, str]) -> dict[str, list[str]]:
            object_type, object_id = item
            obj = hs.crm.objects.basic_api.get_by_id(object_type, object_id, associations=TARGETS)
            inline = obj.associations or {}
            return {t: [a.id for a in inline[t].results] if t in inline else [] for t in TARGETS}

        began = time.monotonic()
        with ratewindow_hubspot.executor(hs, max_workers=20, progress=False) as ex:
            outcomes = ex.map(associations_of, items)
        elapsed = time.monotonic() - began

        assert fake.stats.count_429 == 0
        assert fake.stats.total == limiter_of(hs).stats.requests == 3067  # one permit per call, no more
        assert all(o.ok and o.attempts == 1 for o in outcomes)
        for (object_type, object_id), outcome in zip(items, outcomes):
            assert outcome.value == {t: fake.dataset.associated(object_type, object_id, t) for t in TARGETS}
        assert 0.97 * limit <= fake.stats.max_in_window(window) <= limit  # used to the full, never past it
        least = (math.ceil(len(items) / limit) - 1) * window  # the last window's calls start at +10 s
        assert least <= elapsed <= 1.1 * least, elapsed
