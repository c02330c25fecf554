"""RedisStore's fault edges, made for real: a server stopped, restarted, stalled with DEBUG SLEEP,
a loopback server that is not Redis, a database that does not exist; real SIGINT and real task
cancellation. Each call stays within its budget and raises what its caller expects."""

from __future__ import annotations

import _thread
import asyncio
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _redis_server import RedisServer

from ratewindow import (
    AcquireTimeout,
    DailyQuota,
    Limits,
    RateLimitedExecutor,
    RedisStore,
    SlidingWindow,
    StoreUnavailable,
)

if sys.version_info >= (3, 11):
    from asyncio import timeout as async_timeout
else:  # redis-py depends on async-timeout before 3.11.3
    from async_timeout import timeout as async_timeout

pytestmark = [pytest.mark.redis, pytest.mark.realtime]

ServerFactory = Callable[..., RedisServer]
DEBUG = ("--enable-debug-command", "local")


def ctrl_c() -> None:
    """Ctrl-C as a terminal sends it: a real SIGINT, to the main thread."""
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
    else:  # pragma: no cover - Windows
        _thread.interrupt_main()


def stall(server: RedisServer, seconds: float) -> threading.Thread:
    """Block ``server`` for ``seconds`` (DEBUG SLEEP, on a thread of its own); returns once it has begun."""
    import redis

    def sleep() -> None:
        with redis.Redis(port=server.port, socket_timeout=seconds + 10) as admin:
            admin.execute_command("DEBUG", "SLEEP", seconds)

    thread = threading.Thread(target=sleep)
    thread.start()
    time.sleep(0.1)  # the command has reached the server: from now on it answers nobody
    return thread


def causes(exc: BaseException) -> list[str]:
    """The class names along ``exc``'s chain of causes."""
    names = []
    seen: BaseException | None = exc
    while seen is not None:
        names.append(type(seen).__name__)
        seen = seen.__cause__
    return names


# -- 1. cancelled or interrupted while Redis is down: the original exception, at once ------------------
def test_a_cancelled_acquire_async_raises_cancelled_error_at_once_while_redis_is_down(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    store = RedisStore(server.url)  # the default 5 s timeout: the give-back must not take it
    window = SlidingWindow(1, 60.0, name="cancel-down", store=store)

    async def run() -> float:
        await window.acquire_async()  # the one permit, at once
        task = asyncio.ensure_future(window.acquire_async())  # booked 60 s ahead, sleeping
        await asyncio.sleep(0.1)
        assert not task.done()
        server.stop()
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - began

    with caplog.at_level(logging.DEBUG, logger="ratewindow"):
        assert asyncio.run(run()) < 0.1
    # The give-back failed (Redis is down): said at DEBUG, never raised in the caller's place.
    assert any("not given back" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_asyncio_timeout_around_acquire_async_raises_timeout_error_while_redis_is_down(
    make_server: ServerFactory,
) -> None:
    server = make_server()
    store = RedisStore(server.url)
    window = SlidingWindow(1, 60.0, name="timeout-down", store=store)

    async def run() -> float:
        await window.acquire_async()  # the one permit, at once
        asyncio.get_running_loop().call_later(0.2, server.stop)
        began = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            async with async_timeout(1.0):
                await window.acquire_async()  # booked 60 s ahead; Redis goes down meanwhile
        return time.monotonic() - began

    assert 0.95 < asyncio.run(run()) < 1.1


@pytest.mark.parametrize("step", ["sleep", "confirm"])
def test_ctrl_c_in_acquire_raises_keyboard_interrupt_at_once_while_redis_is_down(
    make_server: ServerFactory, step: str
) -> None:
    """Ctrl-C while the caller sleeps towards its booking, or while it confirms the booking on a
    server that went away (the confirm retries): KeyboardInterrupt within 0.1 s, not
    StoreUnavailable after the store's 5 s timeout."""
    server = make_server()
    store = RedisStore(server.url)
    window = SlidingWindow(1, 60.0 if step == "sleep" else 0.5, name=f"ctrl-c-{step}", store=store)
    window.acquire()  # the one permit, at once
    pressed: list[float] = []

    def press() -> None:
        time.sleep(0.2)
        server.stop()
        time.sleep(0.1 if step == "sleep" else 0.6)  # confirming (and retrying) from 0.5 s on
        pressed.append(time.monotonic())
        ctrl_c()

    presser = threading.Thread(target=press)
    presser.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            window.acquire()
        ended = time.monotonic()
    finally:
        presser.join()
    assert ended - pressed[0] < 0.1


def test_a_task_cancelled_while_confirming_on_a_server_that_went_away_raises_cancelled_error(
    make_server: ServerFactory,
) -> None:
    server = make_server()
    store = RedisStore(server.url)
    window = SlidingWindow(1, 0.5, name="cancel-confirm", store=store)

    async def run() -> float:
        await window.acquire_async()  # the one permit, at once
        task = asyncio.ensure_future(window.acquire_async())  # booked 0.5 s ahead
        await asyncio.sleep(0.2)
        server.stop()
        await asyncio.sleep(0.6)  # the task woke at 0.5 s and is retrying its confirmation
        assert not task.done()
        began = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - began

    assert asyncio.run(run()) < 0.1


def test_ctrl_c_stops_an_executor_at_once_while_redis_is_down(make_server: ServerFactory) -> None:
    """The executor's workers give their bookings back as the batch stops: briefly, so Ctrl-C
    with Redis down ends the batch at once, not after each booking's 5 s of retries."""
    server = make_server()
    store = RedisStore(server.url)
    limiter = SlidingWindow(2, 60.0, name="executor-down", store=store)
    first = threading.Lock()
    pressed: list[float] = []

    def work(item: int) -> int:
        if first.acquire(blocking=False):  # the first call to start (it holds a permit free now)
            deadline = time.monotonic() + 10
            while limiter.wait_time() < 100 and time.monotonic() < deadline:
                time.sleep(0.01)  # until two other workers have booked the permits due at 60 s
            server.stop()
            pressed.append(time.monotonic())
            ctrl_c()
        return item

    with pytest.raises(KeyboardInterrupt), RateLimitedExecutor(limiter, max_workers=4, max_wait=150.0,
                                                               progress=False) as ex:
        ex.map(work, range(10))
    assert time.monotonic() - pressed[0] < 0.5


# -- 2. a stalled server: every call within its own budget -------------------------------------------
def test_try_acquire_on_a_stalled_server_is_bounded_by_a_short_budget(make_server: ServerFactory) -> None:
    server = make_server(args=DEBUG)
    store = RedisStore(server.url)  # timeout=5.0
    window = SlidingWindow(5, 60.0, name="stalled-try", store=store)
    assert window.try_acquire()  # connected, script loaded
    sleeper = stall(server, 3)
    try:
        began = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            window.try_acquire()
        took = time.monotonic() - began
    finally:
        sleeper.join()
    assert took < 0.25 + 0.15  # RedisStore's documented try budget, not the 3 s stall
    assert "TimeoutError" in causes(caught.value)
    assert window.try_acquire()  # answered again once the stall is over


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_acquire_on_a_stalled_server_is_bounded_by_its_timeout(make_server: ServerFactory, flavour: str) -> None:
    server = make_server(args=DEBUG)
    store = RedisStore(server.url)
    window = SlidingWindow(5, 60.0, name=f"stalled-{flavour}", store=store)
    loop = asyncio.new_event_loop()

    def acquire(timeout: float | None) -> float:
        if flavour == "sync":
            return window.acquire(timeout=timeout)
        return loop.run_until_complete(window.acquire_async(timeout=timeout))

    try:
        acquire(None)  # connected, script loaded
        sleeper = stall(server, 3)
        try:
            began = time.monotonic()
            with pytest.raises(StoreUnavailable):
                acquire(0.5)
            took = time.monotonic() - began
        finally:
            sleeper.join()
        assert 0.45 < took < 0.5 + 0.2  # its own timeout (and the reply it waited for), not 2.9 s
        # A shorter stall, within the store's timeout: granted, and the wait reported is the wait.
        sleeper = stall(server, 0.5)
        try:
            began = time.monotonic()
            waited = acquire(None)
            took = time.monotonic() - began
        finally:
            sleeper.join()
        assert 0.3 < waited <= took
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()


# -- 3. the local fallback ---------------------------------------------------------------------------
def test_the_local_fallback_gets_what_is_left_of_the_callers_timeout(make_server: ServerFactory) -> None:
    server = make_server()
    store = RedisStore(server.url, timeout=0.6, on_unavailable="local", expected_processes=1)
    window = SlidingWindow(1, 2.5, name="left", store=store)
    other = SlidingWindow(1, 60.0, name="other", store=store)
    server.stop()
    assert window.try_acquire()  # granted locally: the local window is full for 2.5 s
    first = time.monotonic()
    server.start()
    time.sleep(1.1)  # past the recheck: the next call finds the server again
    assert other.try_acquire()
    assert store._local_until == float("-inf")  # deciding in Redis again
    server.stop()  # down again: the next call retries for the store's 0.6 s, then goes local
    began = time.monotonic()
    try:
        waited = window.acquire(timeout=1.0)
    except AcquireTimeout:
        waited = None
    took = time.monotonic() - began
    # The local window frees 2.5 s after the first grant, at about 1.3 s from now: later than
    # the 0.4 s left of the caller's 1.0 s after 0.6 s of retries. So it times out, at 0.6 s.
    assert first + 2.5 - began > 1.0
    assert waited is None and took < 0.6 + 0.2


def test_a_blocking_acquire_does_not_stall_at_each_recheck_during_an_outage(make_server: ServerFactory) -> None:
    server = make_server()
    store = RedisStore(server.url, timeout=2.0, on_unavailable="local", expected_processes=1)
    window = SlidingWindow(100, 60.0, name="recheck", store=store)
    server.stop()
    began = time.monotonic()
    assert window.try_acquire()  # a short try, then local
    assert time.monotonic() - began < 0.5
    took = []
    for _ in range(3):
        time.sleep(1.05)  # past the recheck each time
        began = time.monotonic()
        waited = window.acquire()  # looks for the server briefly, then decides locally
        took.append(time.monotonic() - began)
        assert waited <= took[-1]  # the look is part of the wait reported
    assert max(took) < 0.5, took  # not the store's 2 s timeout at every recheck


def test_the_local_fallback_of_a_daily_quota_grants_only_what_redis_had_left(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server()
    store = RedisStore(server.url, timeout=0.2, on_unavailable="local", expected_processes=2)
    quota = DailyQuota(8, name="day", store=store)
    assert [quota.try_acquire() for _ in range(5)] == [True] * 5  # Redis counts 5 of 8
    server.stop()

    def take() -> bool:
        try:
            return quota.try_acquire()
        except StoreUnavailable:
            return False

    with caplog.at_level(logging.WARNING, logger="ratewindow"):
        local = [take() for _ in range(8)]
    assert local == [True] + [False] * 7  # (8 - 5) / 2 processes = 1.5: one more unit, not 4
    # Every limiter of that name shares what was seen; a window keeps its own local share.
    both = Limits(SlidingWindow(10, 60.0, name="day", store=store), DailyQuota(8, name="day", store=store))
    assert not both.try_acquire() and SlidingWindow(10, 60.0, name="day", store=store).try_acquire()
    # A store that has not seen today's count grants nothing from the quota locally.
    fresh = RedisStore(server.url, timeout=0.2, on_unavailable="local", expected_processes=2)
    with pytest.raises(StoreUnavailable, match="local share 0 "):
        Limits(SlidingWindow(10, 60.0, name="day", store=fresh), DailyQuota(8, name="day", store=fresh)
               ).try_acquire()
    assert any("unavailable" in r.getMessage() for r in caplog.records)


# -- 4. asyncio after a restart -----------------------------------------------------------------------
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_the_first_acquire_after_a_restart_is_retried(make_server: ServerFactory, flavour: str) -> None:
    """A restarted server forgot the script, and every pooled connection to it is dead: the
    first call reconnects, reloads the script and gets its answer."""
    server = make_server()
    store = RedisStore(server.url)
    window = SlidingWindow(5, 60.0, name=f"restart-{flavour}", store=store)
    loop = asyncio.new_event_loop()

    def acquire() -> float:
        if flavour == "sync":
            return window.acquire(timeout=0.0)
        return loop.run_until_complete(window.acquire_async(timeout=0.0))

    try:
        acquire()  # connected, script loaded
        server.stop()
        server.start()
        began = time.monotonic()
        acquire()  # granted (AcquireTimeout if refused), not StoreUnavailable
        assert time.monotonic() - began < 1.0
        assert acquire() < 1.0
    finally:
        loop.run_until_complete(store.aclose())
        loop.close()


# -- 7. faults that are not connection errors ---------------------------------------------------------
@pytest.fixture
def not_redis() -> Iterator[int]:
    """A loopback TCP server that answers every connection with an HTTP error and keeps it open."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    done = threading.Event()
    clients: list[socket.socket] = []

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            clients.append(conn)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        done.set()
        thread.join()
        listener.close()
        for conn in clients:
            conn.close()


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_server_that_is_not_redis_is_unavailable(not_redis: int, flavour: str) -> None:
    url = f"redis://127.0.0.1:{not_redis}/0"
    raising = RedisStore(url, timeout=0.3)
    local = RedisStore(url, timeout=0.3, on_unavailable="local", expected_processes=2)

    def take(store: RedisStore) -> bool:
        window = SlidingWindow(4, 60.0, name="http", store=store)
        if flavour == "sync":
            return window.try_acquire()

        async def run() -> bool:
            try:
                await window.acquire_async(timeout=0.0)  # AcquireTimeout if refused
                return True
            finally:
                await store.aclose()

        return asyncio.run(run())

    with pytest.raises(StoreUnavailable) as caught:
        take(raising)
    assert "InvalidResponse" in causes(caught.value)
    assert f"127.0.0.1:{not_redis}" in str(caught.value)
    assert take(local)  # the local fallback serves it, as for any outage


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_database_that_does_not_exist_is_a_value_error(make_server: ServerFactory, flavour: str) -> None:
    server = make_server()
    for store in (RedisStore(f"redis://127.0.0.1:{server.port}/99", timeout=0.3),
                  RedisStore(f"redis://127.0.0.1:{server.port}/99", timeout=0.3, on_unavailable="local",
                             expected_processes=2)):
        window = SlidingWindow(4, 60.0, name="db", store=store)

        def take(window: SlidingWindow = window) -> object:
            if flavour == "sync":
                return window.try_acquire()
            return asyncio.run(window.acquire_async(timeout=0.0))

        with pytest.raises(ValueError, match="database 99") as caught:
            take()
        assert "ResponseError" in causes(caught.value)
        assert not isinstance(caught.value, StoreUnavailable)


def test_a_key_of_another_type_under_the_prefix_is_a_value_error(redis_client: Any, redis_url: str,
                                                                   prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    redis_client.hset(f"{prefix}{{clash}}:window:clash:60.0", "a", "1")  # not ratewindow's
    with pytest.raises(ValueError, match="WRONGTYPE") as caught:
        SlidingWindow(4, 60.0, name="clash", store=store).try_acquire()
    assert prefix in str(caught.value)
