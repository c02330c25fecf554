"""Benchmark RateLimitedExecutor: per-item overhead, and utilisation of a rate-limited HTTP server.

    python benchmarks/executor.py            # both parts, 5 overhead runs, 3 server runs
    python benchmarks/executor.py --quick    # fewer items and runs, for a smoke test

1. Overhead: a trivial function over 50,000 items, against a bare ``ThreadPoolExecutor`` with the
   same number of threads; microseconds per item, median of the runs.
2. Utilisation: a local HTTP server (stdlib ``ThreadingHTTPServer``, in a child process so its
   clock is not disturbed by the client's GIL) enforces 190 requests per 1 s (HubSpot's 190 per
   10 s, scaled down 10x) with an exact sliding log, answers 429 with ``Retry-After`` beyond it
   (429s do not count towards the limit), and adds 20-40 ms of latency to every response. The
   seeds' design (a deque window at 170 in a thread pool, ``_seed_processor.py``) and ratewindow
   at the full 190 with several margins each fetch 1,900 items over keep-alive connections.

   Utilisation is how fully the client used the server's limit: W over the mean time the server
   took to receive L consecutive accepted requests (t[i + L] - t[i], server-side arrival times,
   averaged over i), for L requests per W seconds. 100 % means every window of W seconds held
   exactly L requests; a client held to 170 per window scores at most 170/190 = 89.5 %.

Prints a markdown table and writes ``benchmarks/results/executor.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import io
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _seed_processor import SeedParallelProcessor

from ratewindow import RateLimitedExecutor, SlidingWindow, TokenBucket

LIMIT = 190  # requests per WINDOW seconds at the server
WINDOW = 1.0
SEED_LIMIT = 170  # the seeds' configured limit, below the server's
LATENCY = (0.020, 0.040)  # seconds added to each response, uniform
RESULTS = Path(__file__).parent / "results" / "executor.md"


# -- the rate-limited server (child process) ----------------------------------------------------
def serve() -> None:
    """Run the server; print its port; stop when stdin closes."""
    lock = threading.Lock()
    live: deque[float] = deque()
    accepted: list[float] = []
    arrivals: dict[str, float] = {}  # path -> server time of its last arrival (for diagnostics)
    rejected = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            now = time.monotonic()
            if self.path == "/stats":
                with lock:
                    stats = {"accepted": accepted, "rejected": rejected[0], "arrivals": arrivals}
                    body = json.dumps(stats).encode()
                self._send(200, body)
                return
            if self.path == "/reset":
                with lock:
                    live.clear()
                    accepted.clear()
                    arrivals.clear()
                    rejected[0] = 0
                self._send(200, b"{}")
                return
            with lock:
                arrivals[self.path] = now
                while live and live[0] + WINDOW <= now:
                    live.popleft()
                if len(live) >= LIMIT:
                    rejected[0] += 1
                    wait = live[0] + WINDOW - now
                    status = 429
                else:
                    live.append(now)
                    accepted.append(now)
                    status = 200
            time.sleep(random.uniform(*LATENCY))
            if status == 429:
                self._send(429, b"{}", {"Retry-After": str(max(1, math.ceil(wait)))})
            else:
                self._send(200, b'{"ok":true}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 128
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.shutdown()


class TooManyRequests(Exception):
    """A 429, as an HTTP client would raise it: ``status`` and ``retry_after`` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"429 Too Many Requests (Retry-After {retry_after:g})")
        self.status = 429
        self.retry_after = retry_after


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def get(self, path: str) -> bytes:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            self.local.conn = None
            raise
        if response.status == 429:
            raise TooManyRequests(float(response.getheader("Retry-After", "1")))
        return body

    def fetch(self, item: int) -> bytes:
        return self.get(f"/item/{item}")


# -- part 1: overhead ---------------------------------------------------------------------------
def overhead(items: int, runs: int, workers: int) -> list[tuple[str, float, float]]:
    def trivial(n: int) -> int:
        return n

    def bare() -> None:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(trivial, range(items)))

    def executor(limiter: Any, progress: bool = False) -> Callable[[], None]:
        def run() -> None:
            sink = io.StringIO()
            with contextlib.redirect_stderr(sink), RateLimitedExecutor(
                limiter, max_workers=workers, progress=progress
            ) as ex:
                ex.map(trivial, range(items))

        return run

    cases: list[tuple[str, Callable[[], None]]] = [
        ("ThreadPoolExecutor.map (baseline)", bare),
        ("RateLimitedExecutor, limiter=None", executor(None)),
        ("RateLimitedExecutor, TokenBucket (never waits)", executor(TokenBucket(1e9, 1e9))),
        ("RateLimitedExecutor, SlidingWindow (never waits)", executor(SlidingWindow(10**9, 1.0))),
        ("RateLimitedExecutor, SlidingWindow + progress bar", executor(SlidingWindow(10**9, 1.0), True)),
    ]
    timings: dict[str, list[float]] = {name: [] for name, _ in cases}
    for _ in range(runs):
        for name, case in cases:  # interleaved, so drift hits every case alike
            start = time.perf_counter()
            case()
            timings[name].append((time.perf_counter() - start) / items * 1e6)
    base = statistics.median(timings[cases[0][0]])
    return [(name, statistics.median(t), statistics.median(t) - base) for name, t in timings.items()]


# -- part 2: utilisation ------------------------------------------------------------------------
def utilisation(accepted: list[float], limit: int, window: float) -> float:
    """``window`` over the mean time the server took to receive ``limit`` consecutive accepted
    requests (mean of t[i + L] - t[i]): 1.0 when every window holds exactly ``limit``.

    The mean telescopes to (mean of the last L - mean of the first L) x L / (N - L), so bursts
    inside a window do not bias it (a median or a single span would).
    """
    times = sorted(accepted)
    n = len(times)
    if n <= limit:
        return float("nan")
    mean_gap = (sum(times[-limit:]) - sum(times[:limit])) / (n - limit)
    return window / mean_gap


def run_seed(client: Client, items: int) -> tuple[float, int]:
    processor = SeedParallelProcessor(SEED_LIMIT, window=WINDOW)
    start = time.monotonic()
    results = processor.process_batch(items=list(range(items)), func=client.fetch, desc="seed")
    return time.monotonic() - start, sum(r is None for r in results)


def run_ratewindow(client: Client, items: int, margin: float) -> tuple[float, int]:
    limiter = SlidingWindow(LIMIT, WINDOW, margin=margin)
    start = time.monotonic()
    with RateLimitedExecutor(limiter, progress=False) as ex:
        outcomes = ex.map(client.fetch, range(items))
    return time.monotonic() - start, sum(not o.ok for o in outcomes)


def server_bench(items: int, runs: int) -> list[dict[str, Any]]:
    child = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        port = int(child.stdout.readline())
        control = Client(port)
        designs: list[tuple[str, int, str, Callable[[Client, int], tuple[float, int]]]] = [
            ("seed design (deque window, 17 threads)", SEED_LIMIT, "-", run_seed),
        ]
        for margin in (0.0, 0.01, 0.02, 0.05):
            designs.append((
                "ratewindow RateLimitedExecutor", LIMIT, f"{margin:g} s",
                lambda c, n, m=margin: run_ratewindow(c, n, m),
            ))
        rows = []
        samples: dict[int, list[tuple[float, float, int, int]]] = {i: [] for i in range(len(designs))}
        for _ in range(runs):
            for i, (_, _, _, run) in enumerate(designs):
                time.sleep(WINDOW * 1.5)  # the previous run's requests leave the server's window
                control.get("/reset")
                wall, failed = run(Client(port), items)
                stats = json.loads(control.get("/stats"))
                used = utilisation(stats["accepted"], LIMIT, WINDOW)
                samples[i].append((wall, used, stats["rejected"], failed))
        for i, (name, limit, margin, _) in enumerate(designs):
            walls, utils, rejected, failed = zip(*samples[i])
            rows.append({
                "design": name, "limit": limit, "margin": margin,
                "wall": statistics.median(walls), "util": statistics.median(utils),
                "util_min": min(utils), "util_max": max(utils),
                "rejected": sum(rejected), "rejected_runs": list(rejected), "failed": sum(failed),
            })
        return rows
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)


# -- report -------------------------------------------------------------------------------------
def report(args: argparse.Namespace, over: list[tuple[str, float, float]], rows: list[dict[str, Any]]) -> str:
    least = (math.ceil(args.requests / LIMIT) - 1) * WINDOW
    lines = [
        "# Executor benchmark",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- Load average at start: {args.load} (1, 5, 15 min; other jobs may share the machine)",
        f"- Command: `python benchmarks/executor.py{' --quick' if args.quick else ''}`",
        "",
        f"## 1. Per-item overhead ({args.items:,} items, trivial function, {args.workers} threads, "
        f"median of {args.runs} runs)",
        "",
        "| Runner | µs per item | over baseline |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {us:.1f} | {extra:+.1f} |" for name, us, extra in over]
    lines += [
        "",
        f"## 2. Against a server allowing {LIMIT} per {WINDOW:g} s, 20-40 ms latency "
        f"({args.requests:,} requests, {args.server_runs} runs per design)",
        "",
        f"Utilisation: {WINDOW:g} s over the mean time the server took to receive {LIMIT} consecutive "
        f"accepted requests (100 %: every window full; median, min-max). 429s: rate-limit responses "
        f"summed over all runs. Wall: client time for the batch (median); the limit allows no less "
        f"than {least:g} s plus one latency once the first window is spent.",
        "",
        "| Design | Limit set | Margin | Utilisation | min-max | 429s (per run) | Failed items | Wall (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        per_run = ", ".join(map(str, r["rejected_runs"]))
        lines.append(
            f"| {r['design']} | {r['limit']} | {r['margin']} | {r['util']:.1%} | "
            f"{r['util_min']:.1%}-{r['util_max']:.1%} | {r['rejected']} ({per_run}) "
            f"| {r['failed']} | {r['wall']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="fewer items and runs")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write results/")
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    args.items, args.runs, args.workers = (5_000, 2, 8) if args.quick else (50_000, 5, 8)
    args.requests, args.server_runs = (760, 1) if args.quick else (1_900, 3)
    args.load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    over = overhead(args.items, args.runs, args.workers)
    rows = server_bench(args.requests, args.server_runs)
    text = report(args, over, rows)
    print(text)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text)


if __name__ == "__main__":
    main()
