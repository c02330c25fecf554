"""``ratewindow demo hubspot``: the seed pipeline's workload, on a local fake, through the real SDK.

The fake (``RemoteFakeHubSpot``, in a child process) enforces HubSpot Professional's 190 requests
per 10 s, time-scaled so 10 s windows run as 1 s unless ``real_time``, with 20-40 ms latency. The
demo lists the 3,067 engagements, then fetches their associations two ways: one call per
engagement at the full limit (what the seed pipeline did, minus its 10 % "safety" cut), and
batched through ``read_associations_many``. It reports what the server saw and writes a PNG of
requests per rolling window against the limit.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ratewindow import DailyQuota, Limits, Rate, SlidingWindow
from ratewindow.analysis import analyse, plot_window_use

from ._client import client, executor, limiter_of
from ._helpers import iter_objects, read_associations_many
from .testing import RemoteFakeHubSpot

__all__ = ["run"]

ENGAGEMENTS = ("calls", "emails", "meetings", "notes", "tasks")
TARGETS = ("contacts", "companies", "deals")
TOKEN = "demo-token-not-a-secret"  # the fake accepts it; never a real credential
#: Seconds each permit is held beyond the window. It absorbs jitter between a permit and the
#: server's clock (thread wake-ups, GIL switches, the network), which does not shrink when the demo
#: runs HubSpot's 10 s window as 1 s: so it is absolute, not a share of the window.
MARGIN = 0.05


def _one_call(hs: Any, item: tuple[str, str]) -> dict[str, list[str]]:
    object_type, object_id = item
    obj = hs.crm.objects.basic_api.get_by_id(object_type, object_id, associations=list(TARGETS))
    inline = obj.associations or {}
    return {t: sorted(a.id for a in inline[t].results) if t in inline else [] for t in TARGETS}


def _report(name: str, records: list[Any], since: float, wall: float, rate: Rate) -> tuple[int, str]:
    mine = [r for r in records if r.arrival > since]
    accepted = [r.arrival for r in mine if r.status != 429]
    throttled = sum(1 for r in mine if r.status == 429)
    report = analyse(accepted, rate)
    line = (
        f"{name}: {len(mine):,} calls in {wall:.2f} s; rate-limit responses (429): {throttled}; "
        f"most in any {rate.window:g} s window: {report.most_in_window:g} of {rate.limit}"
    )
    if len(accepted) > rate.limit:
        line += f"; utilisation {report.utilisation:.1%} of what the limit allows"
    return throttled, line


def run(*, real_time: bool = False, png: str | Path = "ratewindow-demo-hubspot.png",
        progress: bool = True) -> int:
    """Run the demo; returns 0 when the server sent no 429 and both ways agreed, else 1."""
    scale = 1.0 if real_time else 0.1
    window = 10.0 * scale
    rate = Rate(190, window)
    print(f"FakeHubSpot: 190 requests per {window:g} s (HubSpot Professional's 190 per 10 s"
          f"{'' if real_time else ', time-scaled 10x'}), 20-40 ms latency, 3,067 engagements")
    with RemoteFakeHubSpot(time_scale=scale, latency=[0.02, 0.04], tokens=[TOKEN]) as fake:
        hs = client(TOKEN, host=fake.url, limits=Limits(
            SlidingWindow(190, window, margin=MARGIN, name="demo-portal"),
            DailyQuota(625_000, name="demo-portal"),
        ))
        began = time.monotonic()
        items = [(t, str(obj["id"])) for t in ENGAGEMENTS for obj in iter_objects(hs, t)]
        print(f"listed {len(items):,} engagements in {time.monotonic() - began:.2f} s")
        time.sleep(window * 1.05)  # let the listing's requests leave the window

        since = fake.records()[-1].arrival
        began = time.monotonic()
        with executor(hs, latency=0.04, progress=progress) as ex:
            outcomes = ex.map(lambda item: _one_call(hs, item), items, desc="one call per engagement")
        wall_each = time.monotonic() - began
        one_by_one = {o.item[1]: o.value for o in outcomes}
        failed = sum(1 for o in outcomes if not o.ok)
        records = fake.records()
        throttled_each, line_each = _report("one call each", records, since, wall_each, rate)
        each_times = [r.arrival for r in records if r.arrival > since and r.status != 429]

        since = records[-1].arrival
        began = time.monotonic()
        batched: dict[str, dict[str, list[str]]] = {object_id: {} for _, object_id in items}
        ids = {engagement: [i for t, i in items if t == engagement] for engagement in ENGAGEMENTS}
        found: dict[tuple[str, str], dict[str, list[Any]]] = {}
        try:  # the 15 calls (5 engagement types x 3 targets) sent at once
            found = read_associations_many(hs, {(e, t): ids[e] for e in ENGAGEMENTS for t in TARGETS})
        except Exception as exc:  # one call failed through its retries
            print(f"batched read failed: {type(exc).__name__}")
            failed += 1
        for (_, target), by_id in found.items():
            for object_id, links in by_id.items():
                batched[object_id][target] = sorted(str(link["toObjectId"]) for link in links)
        wall_batched = time.monotonic() - began
        throttled_batched, line_batched = _report("batched", fake.records(), since, wall_batched, rate)

    same = all(one_by_one.get(i) == batched[i] for _, i in items)
    print()
    print(line_each)
    print(line_batched)
    print(f"items failed: {failed}; batched results equal the one-by-one results: {same}; "
          f"batched is {wall_each / max(wall_batched, 1e-9):.0f}x faster")
    stats = limiter_of(hs).stats
    print(f"adapter: {stats.requests:,} requests, each took exactly one permit; "
          f"{stats.permit_wait:.1f} s spent waiting for permits (summed over threads)")
    path = plot_window_use(png, [("ONE CALL PER ENGAGEMENT", each_times)], window, 190,
                           f"REQUESTS PER ROLLING {window:g} S WINDOW")
    print(f"wrote {path}")
    return 0 if same and not failed and throttled_each == throttled_batched == 0 else 1
