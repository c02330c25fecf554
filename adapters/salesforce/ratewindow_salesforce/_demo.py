"""``ratewindow demo salesforce``: the seed pipeline's workload on a local fake, through the real
simple-salesforce: 1,462 objects x 4 calls (describe, Apex triggers, field permissions, audit
trail), first one call at a time from 16 threads, then batched through ``/composite`` and parallel
paged queries.

The fake (``FakeSalesforce`` over TLS on loopback) is a Developer Edition org: 15,000 requests per
rolling 24 h, at most 5 long-running requests at once, 20-40 ms latency. The client keeps 10 % of
the allocation for other integrations. The report says what the org counted.
"""

from __future__ import annotations

import time
from pathlib import Path

from ratewindow import MemoryStore
from ratewindow.analysis import plot_window_use

from ._client import client, executor, limiter_of
from ._limits import OrgLimits
from ._seed import CALLS_PER_OBJECT, batched, one_object
from .testing import FakeSalesforce

__all__ = ["run"]

ALLOCATION = 15_000
RESERVE = 0.1
#: Requests in flight at once: Developer Edition's cap of 5 (Salesforce applies it to requests
#: running 20 s or more; the client applies it to all, which is safe and here no slower).
CONCURRENCY = 5


def run(*, real_time: bool = False, png: str | Path = "ratewindow-demo-salesforce.png",
        progress: bool = True, objects: int | None = None) -> int:
    """Run the demo (``objects`` limits it to the first N objects); returns 0 when the org refused
    nothing and both ways agreed, else 1. ``real_time`` changes nothing here: the allocation is a
    24 h window either way, and the calls take real time."""
    with FakeSalesforce(allocation=ALLOCATION, concurrency_limit=5, latency=(0.02, 0.04)) as fake:
        http = fake.session()
        sf = client(instance_url=fake.instance_url, session_id=fake.session_id, session=http,
                    limits=OrgLimits(reserve=RESERVE), concurrency=CONCURRENCY, store=MemoryStore())
        described = sf.describe()
        assert described is not None, "the fake answers the global describe"
        names = [o["name"] for o in described["sobjects"]][: objects or None]
        print(f"FakeSalesforce: a Developer Edition org ({ALLOCATION:,} requests per rolling 24 h, "
              f"5 long-running at once), 20-40 ms latency; {len(names):,} objects x {CALLS_PER_OBJECT} "
              f"calls; {RESERVE:.0%} of the allocation kept for other integrations")

        counted_before = fake.stats.allocation_used
        began = time.monotonic()
        with executor(sf, max_workers=16, progress=progress) as ex:
            outcomes = ex.map(lambda name: one_object(sf, name), names, desc="one call at a time")
        wall_each = time.monotonic() - began
        each = {o.item: o.value for o in outcomes}
        failed = sum(1 for o in outcomes if not o.ok)
        counted_each = fake.stats.allocation_used - counted_before
        refused_each = fake.stats.refusals

        counted_before = fake.stats.allocation_used
        began = time.monotonic()
        with executor(sf, progress=progress) as ex:
            summaries = batched(sf, names, ex)
        wall_batched = time.monotonic() - began
        counted_batched = fake.stats.allocation_used - counted_before
        refused_batched = fake.stats.refusals - refused_each
        arrivals = [r.arrival for r in fake.stats.requests if r.units > 0]
        stats = limiter_of(sf).stats
        http.close()

    same = all(each.get(name) == summaries.get(name) for name in names)
    print()
    print(f"one call at a time: {counted_each:,} calls counted against the allocation in {wall_each:.2f} s; "
          f"refusals (403 REQUEST_LIMIT_EXCEEDED): {refused_each}; items failed: {failed}")
    print(f"batched (composite, parallel paged queries): {counted_batched:,} calls in {wall_batched:.2f} s; "
          f"refusals: {refused_batched}; {counted_each / max(counted_batched, 1):.0f}x fewer calls")
    print(f"batched results equal the one-at-a-time results: {same}")
    print(f"the org's use as the client last saw it (Sforce-Limit-Info): {stats.org_used} of "
          f"{stats.allocation}; this client may use {stats.allowance}")
    allowance = int(ALLOCATION * (1 - RESERVE))
    path = plot_window_use(png, [("REQUESTS COUNTED IN THE ROLLING 24 H", arrivals)], 86_400.0, allowance,
                           "ORG ALLOCATION USED (ROLLING 24 H) AGAINST THE ALLOCATION LESS RESERVE", tail=1.0)
    print(f"wrote {path}")
    del real_time
    return 0 if same and not failed and refused_each == refused_batched == 0 else 1
