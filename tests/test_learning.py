"""Limits learned from responses, end to end: real loopback servers that say their limit only in
one family's headers, real requests and httpx clients (sync and async), 2 processes on SQLite.

Each client starts with a generous limiter (1,000 per second); after the first response it must
run at the server's advertised pace, with 0 refusals (the server answers 429 over its limit).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from _limit_server import LimitServer

from ratewindow import AcquireTimeout, Calibration, ConcurrencyLimit, MemoryStore, SlidingWindow, SQLiteStore
from ratewindow.http import rate_limited_session

httpx = pytest.importorskip("httpx")
from ratewindow.httpx import AsyncRateLimitedTransport, RateLimitedTransport  # noqa: E402

pytestmark = pytest.mark.realtime

LIMIT, WINDOW, RUN = 10, 2.0, 3.5  # the server's limit per window (seconds); seconds each client runs


def generous(store: object = None) -> SlidingWindow:
    return SlidingWindow(1_000, 1.0, name="api", store=store)  # type: ignore[arg-type]


def run_threads(send: Callable[[], int], seconds: float, threads: int = 4) -> list[int]:
    """Call ``send`` from ``threads`` threads until ``seconds`` have passed (a thread also stops
    when its permit would come later: ``AcquireTimeout``); the statuses seen."""
    deadline = time.monotonic() + seconds
    statuses: list[int] = []
    lock = threading.Lock()

    def loop() -> None:
        while time.monotonic() < deadline:
            try:
                status = send()
            except AcquireTimeout:
                return
            with lock:
                statuses.append(status)

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses


def assert_at_the_advertised_pace(server: LimitServer, window: float, seconds: float,
                                  least: float = 0.8) -> None:
    """0 refusals, and the windows the run spanned were used: at least ``least`` of what the
    server's limit allows in ``seconds`` (windows started, less the first one's probe wait)."""
    assert server.refused == [], f"{len(server.refused)} refusals"
    assert server.most_in_window() <= server.limit
    started = int(seconds // window) + 1  # windows begun during the run, the first one included
    allowed = started * server.limit
    assert len(server.accepted) >= least * allowed, (len(server.accepted), allowed)


# -- one family each, through requests ----------------------------------------------------------
@pytest.mark.parametrize("family", ["ietf", "ietf-old", "x-ratelimit-delta", "hubspot"])
def test_requests_session_learns_each_family_and_runs_at_the_advertised_pace(family: str) -> None:
    with LimitServer(family, LIMIT, WINDOW) as server:
        session = rate_limited_session(generous(), wait=WINDOW)
        statuses = run_threads(lambda: session.get(server.url + "/items").status_code, RUN)
        assert set(statuses) == {200}
        assert_at_the_advertised_pace(server, WINDOW, RUN)


def test_reset_read_as_unix_time_learns_the_window_within_its_second() -> None:
    # GitHub's X-RateLimit-Reset is Unix time in whole seconds: the window learned is at most a
    # second longer than the server's (never shorter), so a longer window keeps the pace close.
    with LimitServer("x-ratelimit-epoch", LIMIT, WINDOW) as server:
        session = rate_limited_session(generous(), wait=WINDOW + 1.2)
        statuses = run_threads(lambda: session.get(server.url).status_code, WINDOW + 1.3)
        assert set(statuses) == {200}
        assert server.refused == []
        assert len(server.accepted) >= 2 * LIMIT  # the first window at once, the next within a second of its start


def test_shopify_leaky_bucket_is_never_overfilled() -> None:
    with LimitServer("shopify", 20, 20.0) as server:  # a bucket of 20 leaking 1 per second
        session = rate_limited_session(generous(), wait=1.0)
        statuses = run_threads(lambda: session.get(server.url).status_code, 2.0)
        assert set(statuses) == {200}
        assert server.refused == []
        assert len(server.accepted) == 20  # the whole bucket at once, then the 20-second window holds


def test_a_generous_limiter_without_learning_is_refused() -> None:
    # The same run without learning: the server refuses (so the tests above show the learning).
    with LimitServer("ietf", LIMIT, WINDOW) as server:
        session = rate_limited_session(generous(), learn=False, pause_on_429=False)
        run_threads(lambda: session.get(server.url).status_code, 1.0)
        assert server.refused


# -- httpx, sync and async ------------------------------------------------------------------
@pytest.mark.parametrize("family", ["ietf", "x-ratelimit-delta"])
def test_httpx_client_learns_and_runs_at_the_advertised_pace(family: str) -> None:
    with LimitServer(family, LIMIT, WINDOW) as server, \
            httpx.Client(transport=RateLimitedTransport(generous(), wait=WINDOW)) as client:
        statuses = run_threads(lambda: client.get(server.url).status_code, RUN)
        assert set(statuses) == {200}
        assert_at_the_advertised_pace(server, WINDOW, RUN)


@pytest.mark.parametrize("family", ["ietf", "x-ratelimit-delta"])
def test_httpx_async_client_learns_and_runs_at_the_advertised_pace(family: str) -> None:
    async def main(url: str) -> list[int]:
        transport = AsyncRateLimitedTransport(generous(), wait=WINDOW)
        statuses: list[int] = []
        async with httpx.AsyncClient(transport=transport) as client:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + RUN

            async def worker() -> None:
                while loop.time() < deadline:
                    try:
                        statuses.append((await client.get(url)).status_code)
                    except AcquireTimeout:
                        return

            ticks = 0

            async def heartbeat() -> None:  # the loop keeps running while workers wait
                nonlocal ticks
                while loop.time() < deadline:
                    await asyncio.sleep(0.05)
                    ticks += 1

            await asyncio.gather(heartbeat(), *(worker() for _ in range(8)))
        assert ticks >= RUN / 0.05 * 0.6  # never blocked: waiting happens off the loop
        return statuses

    with LimitServer(family, LIMIT, WINDOW) as server:
        statuses = asyncio.run(main(server.url))
        assert set(statuses) == {200}
        assert_at_the_advertised_pace(server, WINDOW, RUN)


def test_httpx_transports_hold_a_concurrency_slot_while_in_flight() -> None:
    with LimitServer("ietf", 1_000, 1.0, latency=0.05) as server:
        cap = ConcurrencyLimit(2)
        with httpx.Client(transport=RateLimitedTransport(generous(), concurrency=cap)) as client:
            run_threads(lambda: client.get(server.url).status_code, 0.5, threads=6)
        assert server.most_in_flight <= 2 and cap.in_use() == 0

        async def main() -> None:
            transport = AsyncRateLimitedTransport(generous(), concurrency=cap)
            async with httpx.AsyncClient(transport=transport) as client:
                await asyncio.gather(*(client.get(server.url) for _ in range(12)))

        server.most_in_flight = 0
        asyncio.run(main())
        assert server.most_in_flight <= 2 and cap.in_use() == 0


def test_httpx_429_pauses_every_worker_sharing_the_limiter() -> None:
    store = MemoryStore()
    with LimitServer("ietf", 2, 30.0) as server, httpx.Client(
            transport=RateLimitedTransport(SlidingWindow(100, 1.0, name="api", store=store), learn=False)) as client:
        assert [client.get(server.url).status_code for _ in range(3)] == [200, 200, 429]  # Retry-After: 30
        other_worker = SlidingWindow(100, 1.0, name="api", store=store)
        assert other_worker.wait_time() > 29.0


# -- 2 processes on one SQLite store ----------------------------------------------------------
def _process_client(url: str, path: str, seconds: float, out: multiprocessing.Queue[list[int]]) -> None:
    session = rate_limited_session(SlidingWindow(1_000, 1.0, name="api", store=SQLiteStore(path)), wait=2.0)
    out.put(run_threads(lambda: session.get(url).status_code, seconds, threads=3))


def test_two_processes_sharing_a_sqlite_store_learn_one_budget(tmp_path: Path) -> None:
    path = str(tmp_path / "limits.db")
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[list[int]] = context.Queue()
    with LimitServer("ietf", LIMIT, WINDOW) as server:
        processes = [context.Process(target=_process_client, args=(server.url, path, 4.5, out), daemon=True)
                     for _ in range(2)]
        for process in processes:
            process.start()
        statuses = [out.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=30)
        assert all(process.exitcode == 0 for process in processes)
        assert all(statuses) and set(statuses[0] + statuses[1]) <= {200, 429}
        # One budget for both: the server never saw more than its limit and refused nothing, the
        # first window included (a process that learns the window yields the other's probe still
        # on its way: see test_calibrate's two-process test on a virtual clock).
        assert server.refused == []
        assert server.most_in_window() <= LIMIT
        assert len(server.accepted) >= 2 * LIMIT  # and the budget was used: two windows at least


# -- what the headers must not do ---------------------------------------------------------------
def test_malformed_and_conflicting_headers_are_ignored_and_configured_limits_hold() -> None:
    extra = {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "3, 7",
             "X-Shopify-Shop-Api-Call-Limit": "50/40", "Retry-After": "soon"}
    with LimitServer("ietf", 100, 10.0, extra=extra) as server:
        limiter = SlidingWindow(5, 1.0, name="api")
        session = rate_limited_session(limiter, learn=Calibration(raise_limits=True))
        started = time.monotonic()
        statuses = run_threads(lambda: session.get(server.url).status_code, 1.5, threads=2)
        assert set(statuses) == {200}
        elapsed = time.monotonic() - started
        # The configured 5 per second held (the IETF policy allows 100 per 10 s but its window is
        # not the configured one's: a learned window of its own, nothing raised).
        assert len(server.accepted) <= 5 * (elapsed + 1.0) + 1
        adapter = session.get_adapter(server.url)
        calibrator = adapter.calibrator_of(limiter)  # type: ignore[attr-defined]
        assert calibrator is not None and calibrator.ignored >= 1


def test_requests_sent_without_learning_keep_working_against_a_plain_server() -> None:
    with LimitServer("ietf", LIMIT, WINDOW) as server:
        response = requests.get(server.url, timeout=5)
        assert response.status_code == 200 and "RateLimit" in response.headers
