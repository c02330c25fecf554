"""``ratewindow demo salesforce``: the seed pipeline's workload on a local fake, through the real
simple-salesforce: 1,462 objects x 4 calls (describe, Apex triggers, field permissions, audit
trail), first one call at a time from 16 threads, then batched through ``/composite`` and parallel
paged queries.

The fake (``FakeSalesforce`` over TLS on loopback) is a Developer Edition org: 15,000 requests per
rolling 24 h, at most 5 long-running requests at once, 20-40 ms latency. The client keeps 10 % of
the allocation for other integrations and keeps the seed's own pace, 200 calls per minute. Time
runs 10x faster unless ``real_time`` (the pace is 200 per 6 s, the org's day 2.4 h), so the demo
ends in minutes. The report says what the org counted; the chart shows the requests per rolling
minute against the pace and, below, the allocation used against the allowance.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ratewindow import MemoryStore
from ratewindow.analysis import WindowPanel, plot_window_panels

from ._client import client, executor, limiter_of
from ._limits import OrgLimits
from ._seed import CALLS_PER_OBJECT, batched, one_object
from .testing import FakeSalesforce

__all__ = ["run"]

ALLOCATION = 15_000
RESERVE = 0.1
#: The seed pipeline's own pace: requests per rolling minute (Salesforce sets none; the client keeps it).
PACE = 200
#: Seconds each request stays in the pace beyond its minute, of the demo's clock: 0.5 s of real time
#: at 10x, room for the fake's stalls under load (the default 1 s would be 0.1 s).
PACE_MARGIN = 5.0
#: Requests in flight at once: Developer Edition's cap of 5 (Salesforce applies it to requests
#: running 20 s or more; the client applies it to all, which is safe and here no slower).
CONCURRENCY = 5


class _FastClock:
    """A ratewindow clock running ``1 / scale`` times faster than real time (seconds of demo time)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._origin = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self._origin) / self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds * self.scale)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) * self.scale)


def run(*, real_time: bool = False, png: str | Path = "ratewindow-demo-salesforce.png",
        progress: bool = True, objects: int | None = None) -> int:
    """Run the demo (``objects`` limits it to the first N objects); returns 0 when the org refused
    nothing and both ways agreed, else 1. Time runs 10x faster unless ``real_time``."""
    scale = 1.0 if real_time else 0.1
    minute = 60.0 * scale  # real seconds
    faster = "" if real_time else ", time-scaled 10x"
    with FakeSalesforce(allocation=ALLOCATION, concurrency_limit=5, latency=(0.02, 0.04),
                        time_scale=scale) as fake:
        http = fake.session()
        sf = client(instance_url=fake.instance_url, session_id=fake.session_id, session=http,
                    limits=OrgLimits(reserve=RESERVE, per_minute=PACE, margin=PACE_MARGIN),
                    concurrency=CONCURRENCY, store=MemoryStore(),
                    clock=None if real_time else _FastClock(scale))
        described = sf.describe()
        assert described is not None, "the fake answers the global describe"
        names = [o["name"] for o in described["sobjects"]][: objects or None]
        print(f"FakeSalesforce: a Developer Edition org ({ALLOCATION:,} requests per rolling 24 h, "
              f"5 long-running at once{faster}), 20-40 ms latency; {len(names):,} objects x "
              f"{CALLS_PER_OBJECT} calls; {RESERVE:.0%} of the allocation kept for other integrations; "
              f"the seed's pace of {PACE} calls per minute ({PACE} per {minute:g} s)")

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
        records = fake.stats.requests
        peak = fake.stats.max_in_window(minute, units=True, counted_only=True)
        stats = limiter_of(sf).stats
        http.close()

    same = all(each.get(name) == summaries.get(name) for name in names)
    print()
    print(f"one call at a time: {counted_each:,} calls counted against the allocation in {wall_each:.2f} s; "
          f"refusals (403 REQUEST_LIMIT_EXCEEDED): {refused_each}; items failed: {failed}")
    print(f"batched (composite, parallel paged queries): {counted_batched:,} calls in {wall_batched:.2f} s; "
          f"refusals: {refused_batched}; {counted_each / max(counted_batched, 1):.0f}x fewer calls")
    print(f"batched results equal the one-at-a-time results: {same}")
    print(f"most calls the org counted in any {minute:g} s (a minute{faster}): {peak} of the pace {PACE}")
    print(f"the org's use as the client last saw it (Sforce-Limit-Info): {stats.org_used} of "
          f"{stats.allocation}; this client may use {stats.allowance}")
    allowance = ALLOCATION - int(ALLOCATION * RESERVE)
    sent = [r.arrival for r in records if r.units > 0]
    counted = [r.arrival for r in records for _ in range(r.units)]
    per = f"{minute:g} S" + ("" if real_time else " (A MINUTE AT 10X)")
    day = "24 H" if real_time else "24 H AS 2.4 H"
    path = plot_window_panels(png, [
        WindowPanel([("REQUESTS: ONE AT A TIME, THEN BATCHED", sent)], minute, PACE,
                    f"REQUESTS IN THE LAST {per}", limit_label=f"PACE {PACE} PER MINUTE"),
        WindowPanel([(f"ALLOCATION UNITS COUNTED BY THE ORG: {len(counted):,}", counted)], 86_400.0 * scale,
                    allowance, f"UNITS IN THE ROLLING {day}",
                    limit_label=f"ALLOWANCE {allowance:,}: {ALLOCATION:,} LESS {RESERVE:.0%} RESERVE"),
    ], f"SALESFORCE DEMO: THE PACE PER MINUTE, AND THE ALLOCATION USED{faster.upper()}")  # fmt: skip
    print(f"wrote {path}")
    return 0 if same and not failed and refused_each == refused_batched == 0 else 1
