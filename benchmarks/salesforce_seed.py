"""The Salesforce seed workload (seed 001: 1,462 objects x 4 calls) on FakeSalesforce, three ways.

(a) the seed's design, re-created from its document: 10 workers, 300 ms between calls per worker,
    one call each, exponential back-off on failures (3 retries), no shared limiter;
(b) ratewindow, one call each: the wrapped client at the seed's stated pace (200 calls/minute),
    10 % of the allocation kept in reserve, at most 5 requests in flight;
(c) ratewindow through composite: the same client, describes 25 per ``/composite`` call, the
    per-object queries as a few ``IN (...)`` queries paged in parallel, the org-wide audit once.

Two orgs, both Developer Edition (15,000 requests per rolling 24 h, 5 concurrent long-running
requests): a quiet one, and a busy one where other integrations already used 12,000 today.

Time is scaled so a run ends in minutes: in each design every clock (the fake's windows and
long-running threshold, ratewindow's limiters, the seed's 300 ms spacing and back-off) runs
1 / scale times faster than real time, and the fake's latency (100-300 ms per request) is scaled
the same way. The scale differs per design, chosen so that the fake (a Python server answering
about 100 requests per real second on this machine) is never what bounds the design's speed:
(a) wants 33 requests/s at 10 workers x 300 ms, (b) 3.3/s at 200/min, (c) runs in real time.
Wall times are reported measured and as the real-time equivalent (measured / scale).

Usage: python benchmarks/salesforce_seed.py [--runs=N]   (needs ratewindow-salesforce, trustme)
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ratewindow_salesforce as rs
from _common import argv_runs, table, version, write_result
from ratewindow_salesforce import _seed
from ratewindow_salesforce.testing import FakeSalesforce
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from ratewindow import MemoryStore, QuotaExhausted

#: Per design: benchmark seconds per real second (see the module docstring).
SCALES = {"a": 0.5, "b": 0.1, "c": 1.0}
ALLOCATION = 15_000  # Developer Edition
CONCURRENT = 5  # Developer Edition long-running requests
LATENCY = (0.1, 0.3)  # seconds per request, real time (scaled below)
SEED_WORKERS = 10
SEED_SPACING = 0.3  # seconds between calls, per worker
SEED_RETRIES = 3
PACE = 200  # the seed's "200 calls/minute"
#: Seconds (of the scaled clock) each request stays in the 60 s pace beyond 60 s. The default,
#: 1 s, absorbs real network jitter; compressed 10x, a 100 ms stall of the Python fake under load
#: on 2 cores is already 1 s, so (b) uses 5 s of its scaled clock (0.5 s real).
PACE_MARGIN = 5.0
RESERVE = 0.1
BUSY = 12_000  # used by other integrations in the busy org


class ScaledClock:
    """A ratewindow clock running 1 / scale times faster than real time (seconds of simulated time)."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self._origin = time.monotonic()

    def now(self) -> float:
        return 1_000_000.0 + (time.monotonic() - self._origin) / self.scale

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds * self.scale)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0) * self.scale)


@dataclass
class Result:
    design: str
    scale: float
    org: str
    done: int
    wall: float
    sent: int
    units: int
    refusals: int
    peak_minute: int
    note: str


def make_fake(clock: ScaledClock, busy: bool) -> FakeSalesforce:
    scale = clock.scale
    fake = FakeSalesforce(allocation=ALLOCATION, concurrency_limit=CONCURRENT,
                          latency=(LATENCY[0] * scale, LATENCY[1] * scale), clock=clock.now, seed=0)
    fake.start()
    if busy:
        fake.spend(BUSY)
    return fake


def seed_design(fake: FakeSalesforce, clock: ScaledClock, names: list[str]) -> tuple[int, str]:
    """(a): the seed document's ParallelProcessor: 10 workers, 300 ms per-worker spacing, back-off."""
    http = fake.session()
    sf = Salesforce(instance_url=fake.instance_url, session_id=fake.session_id, session=http)
    local = threading.local()
    failures = 0
    lock = threading.Lock()

    def call(func: Any, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(SEED_RETRIES + 1):
            last = getattr(local, "last", None)
            if last is not None:  # "Rate Limiting: 300ms between calls per worker"
                clock.sleep(SEED_SPACING - (clock.now() - last))
            local.last = clock.now()
            try:
                return func(*args, **kwargs)
            except SalesforceError:
                if attempt == SEED_RETRIES:
                    raise
                clock.sleep(2.0**attempt)  # "exponential backoff on failures"
        raise AssertionError("unreachable")

    def one(name: str) -> bool:
        nonlocal failures
        try:
            call(sf.restful, f"sobjects/{name}/describe")
            call(sf.restful, "tooling/query/", params={"q": _seed.TRIGGERS.format(f"= '{name}'")})
            call(sf.query, _seed.FLS.format(f"= '{name}'"))
            call(sf.query_all, _seed.AUDIT)
            return True
        except SalesforceError:  # "Individual object failures don't stop the pipeline"
            with lock:
                failures += 1
            return False

    with ThreadPoolExecutor(max_workers=SEED_WORKERS) as pool:
        done = sum(pool.map(one, names))
    http.close()
    return done, f"{failures} objects failed (API limit exceeded)" if failures else ""


def client(fake: FakeSalesforce, clock: ScaledClock) -> tuple[Salesforce, Any]:
    http = fake.session()
    sf = rs.client(instance_url=fake.instance_url, session_id=fake.session_id, session=http,
                   limits=rs.OrgLimits(reserve=RESERVE, per_minute=PACE, margin=PACE_MARGIN),
                   concurrency=CONCURRENT,
                   store=MemoryStore(), clock=clock)
    return sf, http


def one_by_one(fake: FakeSalesforce, clock: ScaledClock, names: list[str]) -> tuple[int, str]:
    """(b): ratewindow, one call each, at the seed's stated pace."""
    sf, http = client(fake, clock)
    with tempfile.TemporaryDirectory() as tmp, rs.executor(sf, progress=False, clock=clock) as pool:
        outcomes = pool.map(lambda name: _seed.one_object(sf, name), names, key=str,
                            journal=Path(tmp) / "run.jsonl")
    http.close()
    done = sum(o.ok for o in outcomes)
    stopped = sum(isinstance(o.error, QuotaExhausted) for o in outcomes)
    note = f"stopped at the reserve: {stopped} objects journaled as not done (resumable)" if stopped else ""
    return done, note


def batched(fake: FakeSalesforce, clock: ScaledClock, names: list[str]) -> tuple[int, str]:
    """(c): ratewindow through composite and parallel paged queries."""
    sf, http = client(fake, clock)
    with rs.executor(sf, progress=False, clock=clock) as pool:
        summaries = _seed.batched(sf, names, pool)
    http.close()
    return sum(isinstance(s, dict) for s in summaries.values()), ""


DESIGNS = {
    "(a) seed design: 10 workers, 300 ms spacing": seed_design,
    "(b) ratewindow, one call each, 200/min": one_by_one,
    "(c) ratewindow, composite + parallel pages": batched,
}


def measure(design: str, busy: bool) -> Result:
    scale = SCALES[design[1]]
    clock = ScaledClock(scale)
    fake = make_fake(clock, busy)
    try:
        names = [info.name for info in fake.data.catalog]
        started = time.monotonic()
        done, note = DESIGNS[design](fake, clock, names)
        wall = time.monotonic() - started
        stats = fake.stats
        assert not fake.internal_errors, fake.internal_errors
        org = "busy" if busy else "quiet"
        return Result(design, scale, org, done, wall, stats.total, stats.units, stats.refusals,
                      stats.max_in_window(60.0), note)
    finally:
        fake.stop()


def main() -> int:
    runs = argv_runs(1)
    rows = []
    summary: dict[tuple[str, str], Result] = {}
    for busy in (False, True):
        for design in DESIGNS:
            results = []
            for run in range(runs):
                result = measure(design, busy)
                print(f"{result.org:5} {design}: run {run + 1}: {result.wall:.1f} s, {result.units} units, "
                      f"{result.refusals} refusals, {result.done} objects", flush=True)
                results.append(result)
            wall = statistics.median(r.wall for r in results)
            last = results[-1]
            summary[(last.org, design)] = last
            rows.append([
                last.org, design, f"{last.done:,} / 1,462", f"{last.scale:g}",
                f"{wall:.1f} s ({wall / last.scale / 60:.1f} min)",
                f"{last.sent:,}", f"{last.units:,}", f"{last.refusals:,}", f"{last.peak_minute:,}",
                last.note or "-",
            ])
    a = summary[("quiet", "(a) seed design: 10 workers, 300 ms spacing")]
    c = summary[("quiet", "(c) ratewindow, composite + parallel pages")]
    verdict = (
        f"Target: (c) uses at most 1/20 of (a)'s calls with 0 refusals. Quiet org: (c) {c.units:,} calls "
        f"vs (a) {a.units:,} = 1/{a.units / max(c.units, 1):.0f}, {c.refusals} refusals: "
        f"{'met' if c.units * 20 <= a.units and c.refusals == 0 else 'NOT met'}."
    )
    body = "\n\n".join([
        f"FakeSalesforce as a Developer Edition org ({ALLOCATION:,} requests per rolling 24 h, {CONCURRENT} "
        f"concurrent long-running requests); 'busy': other integrations already used {BUSY:,} of them. "
        f"Latency {LATENCY[0] * 1000:.0f}-{LATENCY[1] * 1000:.0f} ms per request (real time). Each design "
        f"runs on a clock 1 / scale times faster than real time (fake, limiters, the seed's spacing and "
        f"back-off), the scale chosen so the fake (about 100 requests per real second here) never bounds "
        f"the design; wall times are measured, with the real-time equivalent in brackets. {runs} run(s) "
        f"per cell; wall time "
        f"is the median, counts are from the last run (they do not vary between runs). simple-salesforce "
        f"{version('simple-salesforce')}.",
        f"ratewindow's pace: 200 per 60 s with a margin of {PACE_MARGIN:g} s of the scaled clock "
        f"({PACE_MARGIN * SCALES['b']:g} s real; with the default 1 s, 10x time compression let 100 ms "
        "stalls of the fake under load push one run's peak to 204 per 60 s).",
        "Columns: objects done of 1,462 (4 calls each); requests sent; calls counted against the org's "
        "allocation; refusals (403 REQUEST_LIMIT_EXCEEDED); the most requests in any 60 s (the seed's own "
        "stated limit is 200 calls/minute).",
        table(["org", "design", "objects done", "scale", "wall time", "requests", "counted", "refusals",
               "peak / 60 s", "note"], rows),
        verdict,
    ])
    write_result("salesforce_seed", "Salesforce seed workload: 1,462 objects x 4 calls",
                 f"python benchmarks/salesforce_seed.py --runs={runs}", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
