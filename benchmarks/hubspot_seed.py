"""The seed's workload on FakeHubSpot: the associations of 3,067 engagements, three designs, one run.

    .venv-bench/bin/python benchmarks/hubspot_seed.py [--runs=N]

Needs ``pip install -e adapters/hubspot`` in the environment (it brings hubspot-api-client).

The fake runs in a child process (``--serve``), so its arrival times are not skewed by the
client's threads holding the GIL. It enforces HubSpot's professional limit, 190 requests per
10 s per token, scaled down 10x to 190 per 1 s, and adds 20-40 ms of latency to every response.
Each design starts from the engagement ids (the seed had listed them already) and fetches every
engagement's associated contacts, companies and deals:

(a) the seed's design, re-created from its document (``_seed_processor.py``, shared with
    ``executor.py``): a deque sliding window at 170 per window in front of a 17-thread pool,
    the bare SDK, one call per engagement (``GET /crm/v3/objects/{type}/{id}?associations=...``);
(b) ratewindow, one call per engagement: ``ratewindow_hubspot.client`` at the full 190 per 1 s
    with a 10 ms margin (1 % of the window), run by ``ratewindow_hubspot.executor``;
(c) ratewindow batched: ``read_associations_many`` (v4 batch read, up to 1,000 ids a call) for
    each engagement type and target type, the calls of all 15 pairs sent at once through one
    executor: 15 calls (each engagement type has fewer than 1,000 engagements; the v4 batch read
    takes one type pair per call, so 15 it is, not ceil(3,067 / 1,000) x 3 = 12).

Each design starts after a ``gc.collect()``, so that none pays for the garbage an earlier one
left; the collector stays on while a design runs.

Reported per design: wall time, calls the server received, 429s, items that failed or came back
wrong, and utilisation: the window over the mean time the server took to receive 190
consecutive accepted requests (``executor.py``'s definition; 100 % means every window held 190,
and a client held to 170 scores at most 89.5 %). Writes ``benchmarks/results/hubspot_seed.md``
and ``hubspot_seed.png`` (requests per rolling window against the limit, for (a) and (b)).
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import RESULTS, argv_runs, table, version, write_result
from _seed_processor import SeedParallelProcessor

from ratewindow import Rate
from ratewindow.analysis import analyse

LIMIT = 190  # requests per WINDOW seconds at the server (HubSpot professional: 190 per 10 s)
SCALE = 0.1
WINDOW = 10.0 * SCALE
SEED_LIMIT = 170
LATENCY = (0.020, 0.040)
MARGIN = 0.01  # seconds: 1 % of the window, the adapter's default
TOKEN = "pat-na1-benchmark-0000-0000-000000000000"
TARGETS = ("contacts", "companies", "deals")
ENGAGEMENTS = ("calls", "emails", "meetings", "notes", "tasks")
NOTES: list[str] = []  # what design (b) reports about itself, one line per run


# -- the fake, in a child process -----------------------------------------------------------------
def serve() -> None:
    """Child process: serve the fake; answer "reset" and "stats" lines on stdin; stop at EOF."""
    from ratewindow_hubspot.testing import FakeHubSpot

    with FakeHubSpot(window_limit=LIMIT, time_scale=SCALE, latency=LATENCY, tokens=[TOKEN]) as fake:
        print(fake.url, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "reset":
                fake.reset_stats()
                fake.reset_limits()
                print("ok", flush=True)
            elif command == "stats":
                records = [(r.arrival, r.status, r.policy, r.path) for r in fake.stats.records]
                print(json.dumps(records), flush=True)


class Server:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()

    def ask(self, command: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline()

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# -- measurements -----------------------------------------------------------------------------------
def utilisation(accepted: list[float]) -> float:
    """WINDOW over the mean of t[i + LIMIT] - t[i] (as in executor.py)."""
    times = sorted(accepted)
    n = len(times)
    if n <= LIMIT:
        return float("nan")
    return WINDOW / ((sum(times[-LIMIT:]) - sum(times[:LIMIT])) / (n - LIMIT))


def max_in_window(times: list[float]) -> int:
    return int(analyse(times, Rate(LIMIT, WINDOW)).most_in_window)


@dataclass
class Result:
    design: str
    wall: float
    calls: int
    rejected: int
    wrong: int
    utilisation: float
    peak: int
    accepted: list[float]


def expected_links() -> dict[str, dict[str, list[str]]]:
    from ratewindow_hubspot.testing import Dataset

    data = Dataset.generate(seed=0)
    return {i: {t: data.associated(e, i, t) for t in TARGETS} for e in ENGAGEMENTS for i in data.ids(e)}


def engagements() -> list[tuple[str, str]]:
    from ratewindow_hubspot.testing import Dataset

    data = Dataset.generate(seed=0)
    return [(e, i) for e in ENGAGEMENTS for i in data.ids(e)]


def one_call(client: Any, item: tuple[str, str]) -> dict[str, list[str]]:
    """The seed's per-engagement call: the object with its associations inline."""
    object_type, object_id = item
    obj = client.crm.objects.basic_api.get_by_id(object_type, object_id, associations=list(TARGETS))
    inline = obj.associations or {}
    return {t: [a.id for a in inline[t].results] if t in inline else [] for t in TARGETS}


def design_a(url: str, items: list[tuple[str, str]]) -> dict[str, Any]:
    import hubspot

    client = hubspot.HubSpot(access_token=TOKEN, host=url)
    processor = SeedParallelProcessor(SEED_LIMIT, window=WINDOW)
    values = processor.process_batch(items=items, func=lambda item: one_call(client, item), desc="seed")
    return {item[1]: value for item, value in zip(items, values)}


def design_b(url: str, items: list[tuple[str, str]]) -> dict[str, Any]:
    import ratewindow_hubspot

    from ratewindow import SlidingWindow

    hs = ratewindow_hubspot.client(TOKEN, host=url, limits=SlidingWindow(LIMIT, WINDOW, margin=MARGIN))
    # latency: the expected seconds per call (the fake's 20-40 ms plus the SDK's own work), to size
    # the workers by Little's law: 190 / 1.01 s x 0.04 s x 2 -> 16 threads.
    with ratewindow_hubspot.executor(hs, latency=LATENCY[1], progress=False) as ex:
        outcomes = ex.map(lambda item: one_call(hs, item), items)
        workers = ex.stats.workers
    stats = ratewindow_hubspot.limiter_of(hs).stats
    NOTES.append(
        f"{workers} workers; adapter stats: {stats.requests} requests, 429s {dict(stats.rate_limited) or 0}, "
        f"{stats.phantom_units} units yielded to jitter read as others' requests, "
        f"{stats.permit_wait:.0f} s waited for permits (summed over threads)"
    )
    return {o.item[1]: o.value for o in outcomes}


def design_c(url: str, items: list[tuple[str, str]]) -> dict[str, Any]:
    import ratewindow_hubspot

    from ratewindow import SlidingWindow

    hs = ratewindow_hubspot.client(TOKEN, host=url, limits=SlidingWindow(LIMIT, WINDOW, margin=MARGIN))
    ids: dict[str, list[str]] = {}
    for object_type, object_id in items:
        ids.setdefault(object_type, []).append(object_id)
    found = ratewindow_hubspot.read_associations_many(hs, {(e, t): ids[e] for e in ids for t in TARGETS})
    links: dict[str, dict[str, list[str]]] = {i: {} for _, i in items}
    for (_, target), by_id in found.items():
        for object_id, targets in by_id.items():
            links[object_id][target] = [str(link["toObjectId"]) for link in targets]
    return links


def measure(server: Server, name: str, run: Callable[[str, list[tuple[str, str]]], dict[str, Any]],
            items: list[tuple[str, str]], truth: dict[str, dict[str, list[str]]]) -> Result:
    assert server.ask("reset").strip() == "ok"
    time.sleep(WINDOW * 1.1)  # the previous design's requests leave the window
    # Each design starts on a clean heap: none pays for collecting the garbage an earlier design
    # left (the collector stays on while a design runs, so each pays for its own).
    gc.collect()
    start = time.monotonic()
    values = run(server.url, items)
    wall = time.monotonic() - start
    records = json.loads(server.ask("stats"))
    accepted = [arrival for arrival, status, _, _ in records if status == 200]
    wrong = sum(values.get(object_id) != truth[object_id] for _, object_id in items)
    return Result(name, wall, len(records), sum(1 for r in records if r[1] == 429), wrong,
                  utilisation(accepted), max_in_window(accepted), accepted)


def rolling(times: list[float]) -> tuple[list[float], list[int]]:
    """At each arrival, the requests in the window (t - WINDOW, t]; time from the first arrival."""
    ordered = sorted(times)
    xs, ys, left = [], [], 0
    for right, t in enumerate(ordered):
        while t - ordered[left] >= WINDOW:
            left += 1
        xs.append(t - ordered[0])
        ys.append(right - left + 1)
    return xs, ys


def plot(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=120)
    for result, colour in zip(results, ("tab:orange", "tab:blue")):
        xs, ys = rolling(result.accepted)
        ax.step(xs, ys, where="post", color=colour, linewidth=1.2,
                label=f"{result.design}: {result.wall:.1f} s, utilisation {result.utilisation:.1%}")
    ax.axhline(LIMIT, color="tab:red", linestyle="--", linewidth=1,
               label=f"server limit: {LIMIT} per {WINDOW:g} s")
    ax.axhline(SEED_LIMIT, color="grey", linestyle=":", linewidth=1,
               label=f"the seed's setting: {SEED_LIMIT}")
    ax.set_xlabel("seconds since the first request")
    ax.set_ylabel(f"requests in the last {WINDOW:g} s")
    ax.set_title("3,067 engagements, one call each: requests per rolling window (FakeHubSpot, 190 per 1 s)")
    ax.set_ylim(0, LIMIT * 1.15)
    ax.legend(loc="lower center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> int:
    runs = argv_runs(1)
    items = engagements()
    truth = expected_links()
    designs: list[tuple[str, Callable[[str, list[tuple[str, str]]], dict[str, Any]]]] = [
        ("(a) seed design: deque window at 170, 17 threads, one call each", design_a),
        ("(b) ratewindow_hubspot, one call each, 190 with a 10 ms margin", design_b),
        ("(c) ratewindow_hubspot batched: read_associations_many", design_c),
    ]
    load_before = os.getloadavg()[0]
    server = Server()
    all_runs: list[list[Result]] = []
    try:
        for _ in range(runs):
            all_runs.append([measure(server, name, run, items, truth) for name, run in designs])
    finally:
        server.close()

    sections = []
    for number, results in enumerate(all_runs, 1):
        rows = [
            (r.design, f"{r.wall:.2f}", f"{r.calls:,}", r.rejected, r.wrong,
             "n/a (15 calls)" if math.isnan(r.utilisation) else f"{r.utilisation:.1%}", r.peak)
            for r in results
        ]
        speedup = results[0].wall / results[2].wall
        sections.append(
            f"## Run {number} of {runs}\n\n"
            + table(("design", "wall s", "calls", "429s", "items failed or wrong", "utilisation",
                     f"most in any {WINDOW:g} s"), rows)
            + f"\n\n(c) is {speedup:.0f}x faster than (a); (b) is {results[0].wall / results[1].wall:.2f}x. "
            + f"(b): {NOTES[number - 1]}."
        )
    if runs > 1:
        medians = []
        for i, (name, _) in enumerate(designs):
            used = [run[i].utilisation for run in all_runs if not math.isnan(run[i].utilisation)]
            medians.append((name, f"{statistics.median(run[i].wall for run in all_runs):.2f}",
                            f"{statistics.median(used):.1%}" if used else "n/a",
                            sum(run[i].rejected for run in all_runs)))
        sections.append(f"## Medians over {runs} runs\n\n" + table(("design", "wall s", "utilisation",
                                                                    "429s in all runs"), medians))
    png = RESULTS / "hubspot_seed.png"
    RESULTS.mkdir(exist_ok=True)
    plot(all_runs[-1][:2], png)
    load_after = os.getloadavg()[0]
    body = (
        f"hubspot-api-client {version('hubspot-api-client')}, "
        f"ratewindow-hubspot {version('ratewindow-hubspot')}, urllib3 {version('urllib3')}. "
        f"Load average (1 min) {load_before:.1f} before and {load_after:.1f} after "
        "(the machine is shared; timings move with it).\n\n"
        "The associations (contacts, companies, deals) of 3,067 engagements, on `FakeHubSpot` in a child "
        f"process: {LIMIT} requests per {WINDOW:g} s per token (HubSpot's 190 per 10 s, scaled 10x), "
        f"{LATENCY[0] * 1000:.0f}-{LATENCY[1] * 1000:.0f} ms latency per response. Utilisation: the window "
        f"over the mean time the server took to receive {LIMIT} consecutive accepted requests.\n\n"
        + "\n\n".join(sections)
        + f"\n\n![requests per rolling window, (a) and (b)]({png.name})\n"
    )
    write_result("hubspot_seed", "HubSpot seed workload: associations of 3,067 engagements",
                 "benchmarks/hubspot_seed.py" + (f" --runs={runs}" if runs > 1 else ""), body)
    return 0


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve()
    else:
        raise SystemExit(main())
