"""RedisStore beyond the contract: one round trip, server time, expiry, faults, secrets, arguments."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from _redis_server import RedisServer

from ratewindow import (
    AcquireTimeout,
    ConcurrencyLimit,
    DailyQuota,
    Limits,
    RedisStore,
    SlidingWindow,
    StoreUnavailable,
    TokenBucket,
    store_from_url,
)
from ratewindow._calendar import Calendar
from ratewindow._clock import GRACE
from ratewindow.testing import ManualClock

pytestmark = pytest.mark.redis

ServerFactory = Callable[..., RedisServer]


def _keys(client: Any, prefix: str) -> set[str]:
    return {k.decode() for k in client.scan_iter(match=prefix + "*", count=1000)}


def _server_time(client: Any) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1_000_000


def _snapshot(client: Any, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(_keys(client, prefix)):
        out[key] = (client.get(key), client.pttl(key) > 0)  # every key is a string with an expiry
    return out


# -- one script call, decided on the server ----------------------------------------------------------
def test_a_composite_acquire_is_one_round_trip(make_server: ServerFactory) -> None:
    """MONITOR shows what clients send: one EVALSHA per composite acquire, nothing else."""
    import redis

    server = make_server()
    store = RedisStore(server.url)
    both = Limits(
        SlidingWindow(190, 10.0, name="portal", store=store),
        DailyQuota(625_000, tz="America/New_York", name="portal", store=store),
    )
    assert both.try_acquire()  # loads the script (NOSCRIPT, SCRIPT LOAD, EVALSHA)
    seen: list[dict[str, Any]] = []
    ready = threading.Event()

    problems: list[BaseException] = []

    def monitor() -> None:
        client = redis.Redis.from_url(server.url)
        try:
            with client.monitor() as m:
                ready.set()
                for event in m.listen():
                    if "rw-stop" in event["command"]:
                        return
                    seen.append(event)
        except BaseException as exc:  # reported below, with its message
            problems.append(exc)
        finally:
            client.close()

    thread = threading.Thread(target=monitor)
    thread.start()
    assert ready.wait(5)
    time.sleep(0.1)
    granted = [both.try_acquire() for _ in range(5)]
    both.reserve()
    with redis.Redis.from_url(server.url) as other:
        other.echo("rw-stop")
    thread.join(timeout=10)
    assert problems == [] and not thread.is_alive()
    ours = {(e["client_address"], e["client_port"]) for e in seen if e["command"].startswith("EVALSHA")}
    sent = [e["command"].split()[0].upper() for e in seen
            if e.get("client_type") != "lua" and (e["client_address"], e["client_port"]) in ours]
    inner = [e["command"].split()[0].upper() for e in seen if e.get("client_type") == "lua"]
    assert granted == [True] * 5
    assert len(ours) == 1
    assert sent == ["EVALSHA"] * 6
    assert "TIME" in inner and "SETRANGE" in inner  # the decision ran inside the script


def test_time_comes_from_the_server(make_server: ServerFactory) -> None:
    import redis

    server = make_server()
    client = redis.Redis.from_url(server.url)
    store = RedisStore(server.url)
    window = SlidingWindow(5, 60.0, name="t", store=store)
    before = _server_time(client)
    grant = store.acquire(window._specs, 1, 0.0)
    after = _server_time(client)
    assert grant.granted and grant.stamp is not None
    assert before <= grant.stamp[0][0] <= after + 1e-3


def test_client_clock_skew_does_not_matter_for_days(make_server: ServerFactory) -> None:
    """The client's clock only hints which calendar periods to send; a client three days ahead
    gets the server's day right (the script asks for the missing periods)."""
    import redis

    server = make_server()
    client = redis.Redis.from_url(server.url)
    store = RedisStore(server.url)
    store._wall = ManualClock(time.time() + 3 * 86400.0)  # a badly skewed client clock
    quota = DailyQuota(2, tz="America/New_York", name="skew", store=store)
    assert [quota.try_acquire(), quota.try_acquire(), quota.try_acquire()] == [True, True, False]
    server_now = _server_time(client)
    midnight = Calendar("America/New_York").period(server_now)[1]
    assert abs(quota.wait_time() - (midnight - server_now)) < 1.0
    ttl = client.pttl("ratewindow:{skew}:daily:skew:America/New_York:00:00:00") / 1000
    assert abs(ttl - (midnight - server_now)) < 1.0


def test_refusals_and_reads_write_nothing(redis_client: Any, redis_url: str, prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    fresh = SlidingWindow(2, 60.0, name="fresh", store=store)
    assert fresh.wait_time() == 0.0 and fresh.available() == 2
    assert store.used(fresh._specs[0]) == 0
    assert _keys(redis_client, prefix) == set()
    both = Limits(SlidingWindow(3, 60.0, name="w", store=store), DailyQuota(2, name="w", store=store))
    assert both.try_acquire(2)
    before = _snapshot(redis_client, prefix)
    assert not both.try_acquire(1)  # the window has room, the quota not: nothing is written
    with pytest.raises(TimeoutError):
        both.acquire(1, timeout=60.0)
    assert both.wait_time() > 0
    assert _snapshot(redis_client, prefix) == before


# -- expiry ------------------------------------------------------------------------------------------
@pytest.mark.realtime
def test_every_key_expires_and_an_idle_limiter_leaves_nothing(redis_client: Any, redis_url: str,
                                                            prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    window = SlidingWindow(3, 0.3, name="w", store=store)
    bucket = TokenBucket(10.0, 2, name="b", store=store)
    paused = SlidingWindow(3, 0.2, name="p", store=store)
    quota = DailyQuota(5, name="d", store=store)
    started = time.monotonic()
    assert window.try_acquire(2)
    assert bucket.try_acquire(2)  # empty: full again 0.2 s later
    paused.pause(0.4)
    assert quota.try_acquire()
    keys = _keys(redis_client, prefix)
    assert keys == {
        f"{prefix}{{w}}:window:w:0.3", f"{prefix}{{w}}:window:w:0.3:log", f"{prefix}{{b}}:bucket:b",
        f"{prefix}{{p}}:window:p:0.2", f"{prefix}{{d}}:daily:d:UTC:00:00:00",
    }
    # Each key lives until its state stops mattering, plus a quarter window (or refill) of slack
    # so that most grants need not move the expiry; +2 ms for rounding up to whole milliseconds.
    # A window's units are held the clock's grace longer than the window.
    ttl = {key: redis_client.pttl(key) for key in keys}
    # What has run since the first write (more on a loaded machine) is off the lower bounds.
    spent = (time.monotonic() - started) * 1000 + 2
    # A window's units are held for the window plus the clock's grace (GRACE, 10 ms).
    held = 300 + GRACE * 1000
    assert held - spent < ttl[f"{prefix}{{w}}:window:w:0.3"] <= held + held / 4 + 2
    assert ttl[f"{prefix}{{w}}:window:w:0.3:log"] == pytest.approx(ttl[f"{prefix}{{w}}:window:w:0.3"], abs=2)
    assert 200 - spent < ttl[f"{prefix}{{b}}:bucket:b"] <= 200 + 50 + 2
    assert 400 - spent < ttl[f"{prefix}{{p}}:window:p:0.2"] <= 400 + (200 + GRACE * 1000) / 4 + 2
    now = time.time()
    midnight = Calendar("UTC").period(now)[1]
    assert abs(ttl[f"{prefix}{{d}}:daily:d:UTC:00:00:00"] / 1000 - (midnight - now)) < 2.0
    time.sleep(0.6)
    assert _keys(redis_client, prefix) == {f"{prefix}{{d}}:daily:d:UTC:00:00:00"}
    assert window.available() == 3 and bucket.available() == 2 and paused.try_acquire()


# -- faults ------------------------------------------------------------------------------------------
def test_script_flush_mid_run(make_server: ServerFactory) -> None:
    import redis

    server = make_server()
    client = redis.Redis.from_url(server.url)
    store = RedisStore(server.url)
    window = SlidingWindow(10, 3600.0, name="flush", store=store)
    assert [window.try_acquire() for _ in range(6)] == [True] * 6
    client.script_flush()
    assert [window.try_acquire() for _ in range(5)] == [True] * 4 + [False]
    client.script_flush()

    async def more() -> bool:
        await window.acquire_async(timeout=0.0)
        return True

    with pytest.raises(TimeoutError):
        asyncio.run(more())
    assert window.available() == 0
    assert client.script_exists(store._sha) == [True]


def test_server_down_raises_within_the_timeout_then_recovers(make_server: ServerFactory) -> None:
    server = make_server()
    store = RedisStore(server.url, timeout=0.6)
    window = SlidingWindow(3, 3600.0, name="down", store=store)
    assert window.try_acquire(2)
    server.stop()
    where = f"redis://127.0.0.1:{server.port}/0"
    for call, budget in (
        (lambda: window.try_acquire(), 0.5),
        (lambda: window.acquire(timeout=0.3), 1.0),
        (lambda: window.acquire(), 1.5),
        (lambda: window.wait_time(), 1.5),
    ):
        began = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            call()
        assert time.monotonic() - began < budget
        assert caught.value.store == where and where in str(caught.value)
    began = time.monotonic()
    with pytest.raises(StoreUnavailable):
        window.acquire(timeout=0.3)
    assert time.monotonic() - began >= 0.25  # it did retry for the caller's whole timeout
    assert "down" in repr(window) and "used=?" in repr(window)  # a repr never raises
    # Restarted mid-call: the call that is retrying gets through once the server is back.
    problems: list[BaseException] = []

    def restart() -> None:
        try:
            server.start()
        except BaseException as exc:  # reported below, with its message
            problems.append(exc)

    timer = threading.Timer(0.3, restart)
    timer.start()
    try:
        assert RedisStore(server.url, timeout=5.0).acquire(window._specs, 1, None).delay == 0.0
    finally:
        timer.join()
    assert problems == []
    # Without persistence the restarted server forgot the two grants: limiting is exact again.
    assert [window.try_acquire() for _ in range(3)] == [True, True, False]


def test_local_fallback_grants_a_share_and_warns(make_server: ServerFactory,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    import redis

    server = make_server(password="fallback-pw-7")
    store = RedisStore(server.url, timeout=0.2, on_unavailable="local", expected_processes=4)
    window = SlidingWindow(20, 3600.0, name="share", store=store)
    assert window.try_acquire()
    server.stop()
    with caplog.at_level(logging.WARNING, logger="ratewindow"):
        granted = [window.try_acquire() for _ in range(8)]
        reservation = window.reserve()
    assert granted == [True] * 5 + [False] * 3  # 20 / 4 processes
    assert 3599.0 < reservation.delay <= 3600.0 + GRACE and reservation.cancel()  # cancelled locally
    warnings_logged = [r for r in caplog.records if r.name == "ratewindow" and r.levelno == logging.WARNING]
    assert len(warnings_logged) == 1
    message = warnings_logged[0].getMessage()
    assert f"127.0.0.1:{server.port}/0" in message and "fallback-pw-7" not in message
    server.start()
    time.sleep(1.1)  # the store looks for the server again once a second
    with caplog.at_level(logging.WARNING, logger="ratewindow"):
        assert window.try_acquire()  # decided in Redis again (it forgot the first grant)
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    client = redis.Redis.from_url(server.url)
    assert client.strlen("ratewindow:{share}:window:share:3600.0:log") == 16  # one 16-byte record


def test_passwords_never_appear(make_server: ServerFactory) -> None:
    secret = "s3cr3t-pw-42"
    server = make_server(password=secret)
    good = RedisStore(f"redis://:{secret}@127.0.0.1:{server.port}/0")
    assert SlidingWindow(1, 10.0, name="pw", store=good).try_acquire()
    texts = [repr(good), str(good)]
    wrong = RedisStore(f"redis://user:wrong-{secret}@127.0.0.1:{server.port}/0", timeout=0.2)
    closed = RedisStore(f"redis://:{secret}@127.0.0.1:1/0", timeout=0.2)
    lone = RedisStore(f"redis://{secret}@127.0.0.1:{server.port}/0", timeout=0.2)
    for store in (wrong, closed, lone):
        texts += [repr(store), str(store)]
        with pytest.raises(StoreUnavailable) as caught:
            SlidingWindow(1, 10.0, name="pw", store=store).try_acquire()
        texts += [str(caught.value), repr(caught.value), "".join(traceback.format_exception(caught.value))]
    for url in (f"redis://:{secret}@127.0.0.1:notaport/0", f"redis://:{secret}@/0", f"redis://:{secret}@h:1/x"):
        with pytest.raises(ValueError) as bad:
            store_from_url(url)
        texts.append(str(bad.value))
        with pytest.raises(ValueError) as bad:
            RedisStore(url)
        texts.append(str(bad.value))
    assert all(secret not in text for text in texts), [t for t in texts if secret in t]
    assert f"127.0.0.1:{server.port}/0" in repr(good)


@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: RedisStore(123), TypeError, "123"),  # type: ignore[arg-type]
        (lambda: RedisStore("redis://localhost/0", timeout=0), ValueError, "timeout must be"),
        (lambda: RedisStore("redis://localhost/0", timeout=float("nan")), ValueError, "nan"),
        (lambda: RedisStore("redis://localhost/0", on_unavailable="maybe"), ValueError, "'maybe'"),
        (lambda: RedisStore("redis://localhost/0", on_unavailable="local"), ValueError, "expected_processes"),
        (lambda: RedisStore("redis://localhost/0", on_unavailable="local", expected_processes=0), ValueError, "0"),
        (lambda: RedisStore("redis://localhost/0", prefix=7), TypeError, "7"),  # type: ignore[arg-type]
        (lambda: RedisStore("http://localhost/0"), ValueError, "http://localhost/0"),
        (lambda: RedisStore("redis://localhost/zero"), ValueError, "database number"),
        (lambda: RedisStore("redis://localhost:99999/0"), ValueError, "redis://localhost:99999/0"),
    ],
)
def test_bad_arguments_name_the_value(build: Callable[[], object], error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        build()
    assert message in str(caught.value)


def test_an_asyncio_client_is_refused_as_the_sync_client(redis_url: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    with pytest.raises(TypeError, match="async_client"):
        RedisStore(client)  # type: ignore[arg-type]


def test_import_ratewindow_never_imports_redis() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"  # as if redis-py were not installed
        "import ratewindow\n"
        "from ratewindow import RedisStore\n"
        "assert RedisStore.__name__ == 'RedisStore'\n"
        "try:\n"
        "    RedisStore('redis://localhost/0')\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'ratewindow[redis]'" in out
    code = "import sys, ratewindow; print('redis' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# -- clients -----------------------------------------------------------------------------------------
def test_a_client_with_decoded_responses(redis_url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    store = RedisStore(client, prefix=prefix, clock=ManualClock(1000.0))
    window = SlidingWindow(2, 10.0, name="dec", store=store, clock=store._clock)  # type: ignore[arg-type]
    assert [window.reserve().delay for _ in range(3)] == [0.0, 0.0, 10.0]
    assert repr(store) == f"RedisStore('redis://{client.connection_pool.connection_kwargs['host']}:" \
        f"{client.connection_pool.connection_kwargs['port']}/0', prefix={prefix!r})"
    client.close()


def test_async_clients_per_event_loop_are_closed(redis_url: str, prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    window = SlidingWindow(5, 3600.0, name="loops", store=store)

    async def take(n: int) -> list[float]:
        return [await window.acquire_async(timeout=0.0) for _ in range(n)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            assert max(asyncio.run(take(1))) < 1.0  # granted at once (each new loop connects)

        async def close_explicitly() -> None:
            await take(1)
            await store.aclose()

        asyncio.run(close_explicitly())
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert window.available() == 1


@pytest.mark.realtime
def test_a_busy_limiter_keeps_its_keys_as_long_as_they_matter(redis_client: Any, redis_url: str,
                                                            prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    window = SlidingWindow(100, 0.3, name="busy", store=store)
    key = f"{prefix}{{busy}}:window:busy:0.3"
    for _ in range(12):
        before = time.monotonic()
        assert window.try_acquire()
        ttls = redis_client.pttl(key), redis_client.pttl(key + ":log")
        # the newest entry counts for 0.3 s more: both keys must outlive it (less the time since it
        # was granted, and 2 ms for whole milliseconds)
        assert min(ttls) >= 300 - (time.monotonic() - before) * 1000 - 2, ttls
        time.sleep(0.05)


# -- the direct path (a plain redis.Redis) and the others -----------------------------------------------
def test_plain_clients_take_the_direct_path_and_others_execute_command(redis_url: str, prefix: str) -> None:
    """Both paths make the same decisions; only a plain single-node client is sent packed bytes."""
    import redis

    class MyRedis(redis.Redis):  # type: ignore[type-arg]
        pass

    clients = {
        "url": None,
        "plain": redis.Redis.from_url(redis_url),
        "single connection": redis.Redis.from_url(redis_url, single_connection_client=True),
        "subclass": MyRedis.from_url(redis_url),
    }
    direct = {}
    for label, client in clients.items():
        store = RedisStore(redis_url if client is None else client, prefix=f"{prefix}{label}:",
                           clock=ManualClock(1000.0))
        direct[label] = store._pool is not None
        window = SlidingWindow(3, 10.0, name="p", store=store, clock=store._clock)  # type: ignore[arg-type]
        both = Limits(window, DailyQuota(4, name="p", store=store, clock=store._clock))  # type: ignore[arg-type]
        assert [both.try_acquire() for _ in range(4)] == [True, True, True, False], label
        assert both.wait_time() == 10.0 and window.available() == 0, label
        store._clock.advance(10.0)  # type: ignore[union-attr]
        assert [both.try_acquire() for _ in range(2)] == [True, False], label  # the day allows 4
        store.close()
    assert direct == {"url": True, "plain": True, "single connection": False, "subclass": False}


def test_a_connection_killed_between_calls_is_replaced(redis_client: Any, redis_url: str, prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    window = SlidingWindow(5, 3600.0, name="kill", store=store)
    assert window.try_acquire(2)
    killed = redis_client.client_kill_filter(_type="normal", skipme=True)
    assert killed >= 1  # the store's idle pooled connection among them
    assert window.try_acquire(2)  # the dead connection is dropped, the call retried on a new one
    assert window.available() == 1 and not window.try_acquire(2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")
def test_a_forked_child_never_uses_the_parents_connection(redis_url: str, prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    window = SlidingWindow(5, 3600.0, name="fork", store=store)
    assert window.try_acquire(2)
    inherited = list(store._idle)
    assert inherited  # the parent's connection, idle

    def child() -> None:
        results = [window.try_acquire() for _ in range(4)]
        mine = list(store._idle)
        os._exit(0 if results == [True, True, True, False] and mine and
                 not any(c is p for c in mine for p in inherited) else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(timeout=30)
    assert process.exitcode == 0
    assert store._idle == inherited  # the parent's connection survived the child
    assert not window.try_acquire() and window.available() == 0
    store.close()
    assert store._idle == []


# -- the direct path on redis.asyncio ------------------------------------------------------------------
def test_async_plain_clients_take_the_direct_path_and_others_execute_command(redis_url: str,
                                                                             prefix: str) -> None:
    """``acquire_async`` makes the same decisions on every kind of asyncio client; the store's own
    client and a plain ``redis.asyncio.Redis`` passed in are sent packed bytes."""
    import redis
    import redis.asyncio as aioredis

    class MyRedis(aioredis.Redis):  # type: ignore[type-arg]
        pass

    async def check(label: str) -> bool:
        async_client = {
            "url": None,
            "plain": aioredis.Redis.from_url(redis_url),
            "single connection": aioredis.Redis.from_url(redis_url, single_connection_client=True),
            "subclass": MyRedis.from_url(redis_url),
        }[label]
        clock = ManualClock(1000.0)
        sync = redis.Redis.from_url(redis_url)
        store = RedisStore(redis_url if async_client is None else sync, prefix=f"{prefix}{label}:",
                           clock=clock, async_client=async_client)
        window = SlidingWindow(3, 10.0, name="p", store=store, clock=clock)
        both = Limits(window, DailyQuota(4, name="p", store=store, clock=clock))

        async def take() -> bool:
            try:
                return await both.acquire_async(timeout=0.0) == 0.0
            except AcquireTimeout:
                return False

        assert [await take() for _ in range(4)] == [True, True, True, False], label
        assert both.wait_time() == 10.0 and window.available() == 0, label  # the sync path agrees
        clock.advance(10.0)
        assert [await take() for _ in range(2)] == [True, False], label  # the day allows 4
        direct = (await store._async_client())[1] is not None
        await store.aclose()
        if async_client is not None:
            await async_client.aclose()
        sync.close()
        return direct

    direct = {label: asyncio.run(check(label)) for label in ("url", "plain", "single connection", "subclass")}
    assert direct == {"url": True, "plain": True, "single connection": False, "subclass": False}


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_server_that_stops_answering_is_unavailable_within_the_timeout(
    make_server: ServerFactory, flavour: str
) -> None:
    """A hung server (CLIENT PAUSE: connections stay open, no reply comes) is not a hang: the
    call gives up within the store's timeout, and the next call after the pause is answered on a
    fresh connection (the one with a reply still owed was dropped)."""
    import redis

    server = make_server()
    admin = redis.Redis.from_url(server.url)
    store = RedisStore(server.url, timeout=0.5)
    window = SlidingWindow(5, 3600.0, name="hung", store=store)

    async def take(cost: int) -> float:
        return await window.acquire_async(cost, timeout=0.0)

    def acquire(cost: int) -> float:
        if flavour == "sync":
            return window.acquire(cost, timeout=0.0)
        return loop.run_until_complete(take(cost))

    loop = asyncio.new_event_loop()
    try:
        assert acquire(1) < 1.0  # granted at once (the time it took, connecting included)
        admin.execute_command("CLIENT", "PAUSE", 3000, "ALL")
        began = time.monotonic()
        with pytest.raises(StoreUnavailable):
            acquire(1)
        assert time.monotonic() - began < 2.0  # not the 3 s pause
        admin.execute_command("CLIENT", "UNPAUSE")
        assert acquire(2) < 1.0
        # The given-up call may or may not have run on the server once the pause ended; either
        # way the replies were not mixed up: what is left matches what Redis holds.
        assert window.available() in (1, 2)
        left = int(window.available())
        with pytest.raises(AcquireTimeout):
            acquire(left + 1)
        assert acquire(left) < 1.0 and window.available() == 0
        loop.run_until_complete(store.aclose())
    finally:
        loop.close()
        admin.close()


def test_an_async_connection_killed_between_calls_is_replaced(redis_client: Any, redis_url: str,
                                                              prefix: str) -> None:
    store = RedisStore(redis_url, prefix=prefix)
    window = SlidingWindow(5, 3600.0, name="akill", store=store)

    async def run() -> list[float]:
        first = await window.acquire_async(2, timeout=0.0)
        killed = redis_client.client_kill_filter(_type="normal", skipme=True)
        assert killed >= 1  # the store's idle connection among them
        second = await window.acquire_async(2, timeout=0.0)  # retried on a new connection
        await store.aclose()
        return [first, second]

    assert max(asyncio.run(run())) < 1.0  # both granted at once
    assert window.available() == 1 and not window.try_acquire(2)


def test_a_cancelled_async_acquire_leaves_no_reply_behind(make_server: ServerFactory) -> None:
    """A task cancelled while its command is in flight: the connection is dropped with it, so the
    next call never reads the cancelled call's reply as its own."""
    import redis

    server = make_server()
    admin = redis.Redis.from_url(server.url)
    store = RedisStore(server.url, timeout=5.0)
    window = SlidingWindow(1, 3600.0, name="cancel", store=store)

    async def run() -> None:
        admin.execute_command("CLIENT", "PAUSE", 400, "WRITE")  # EVALSHA waits; the reply comes late
        task = asyncio.ensure_future(window.acquire_async(timeout=0.0))
        await asyncio.sleep(0.1)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        admin.execute_command("CLIENT", "UNPAUSE")
        # Whether or not the cancelled command ran, this call's own reply decides: granted if the
        # one permit is still free, refused if the cancelled call took it, never a stray reply.
        free = window.available() == 1
        if free:
            assert await window.acquire_async(timeout=0.0) < 1.0
        with pytest.raises(AcquireTimeout):
            await window.acquire_async(timeout=0.0)
        await store.aclose()

    try:
        asyncio.run(run())
    finally:
        admin.close()


@pytest.mark.parametrize("call", ["acquire_async", "hold_async"])
def test_a_slow_server_never_blocks_the_event_loop(make_server: ServerFactory, call: str) -> None:
    """While Redis holds a command back (CLIENT PAUSE, 0.4 s), other tasks keep running."""
    import redis

    server = make_server()
    admin = redis.Redis.from_url(server.url)
    store = RedisStore(server.url, timeout=5.0)
    window = SlidingWindow(5, 60.0, name="slow", store=store)
    slots = ConcurrencyLimit(2, lease=60.0, name="slow", store=store)

    async def run() -> tuple[int, float]:
        await window.acquire_async()  # connect first: only the paused command is measured
        await (await slots.hold_async()).release_async()
        ticks = 0
        done = asyncio.Event()

        async def ticker() -> None:
            nonlocal ticks
            while not done.is_set():
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.ensure_future(ticker())
        admin.execute_command("CLIENT", "PAUSE", 400, "ALL")
        began = time.monotonic()
        if call == "acquire_async":
            await window.acquire_async()
        else:
            await (await slots.hold_async()).release_async()
        waited = time.monotonic() - began
        done.set()
        await ticking
        await store.aclose()
        return ticks, waited

    try:
        ticks, waited = asyncio.run(run())
    finally:
        admin.close()
    assert waited >= 0.3  # the call did wait for the server
    assert ticks >= 10  # and the loop ran the ticker meanwhile (a blocked loop: 0 or 1)


def test_async_connections_log_in_and_select_the_database(make_server: ServerFactory) -> None:
    """The asyncio direct path's own connections use the URL's password and database; a wrong
    password is StoreUnavailable, and the password shows nowhere."""
    import redis

    secret = "as3cr3t-pw-7"
    server = make_server(password=secret)
    good = RedisStore(f"redis://:{secret}@127.0.0.1:{server.port}/2", prefix="db2:")
    wrong = RedisStore(f"redis://:wrong-{secret}@127.0.0.1:{server.port}/2", timeout=0.2)

    async def run() -> str:
        await SlidingWindow(1, 10.0, name="pw", store=good).acquire_async(timeout=0.0)  # granted
        with pytest.raises(StoreUnavailable) as caught:
            await SlidingWindow(1, 10.0, name="pw", store=wrong).acquire_async(timeout=0.0)
        await good.aclose()
        await wrong.aclose()
        return "".join(traceback.format_exception(caught.value))

    text = asyncio.run(run())
    assert secret not in text and f"127.0.0.1:{server.port}/2" in text
    with redis.Redis(port=server.port, password=secret, db=2) as db2, \
            redis.Redis(port=server.port, password=secret, db=0) as db0:
        assert db2.exists("db2:{pw}:window:pw:10.0") and not db0.keys("db2:*")


def test_aclose_leaves_nothing_for_the_loop_to_finish(redis_url: str, prefix: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """On a loop the application runs and closes itself (no asyncio.run), ``aclose`` finishes
    the loop's connections there and then: nothing is left scheduled that the closed loop would
    drop ("Task was destroyed but it is pending", "coroutine ... was never awaited")."""
    store = RedisStore(redis_url, prefix=prefix)
    window = SlidingWindow(5, 1.0, name="closing", store=store)
    loop = asyncio.new_event_loop()
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.ERROR, logger="asyncio"):
        warnings.simplefilter("always")
        try:
            assert loop.run_until_complete(window.acquire_async()) < 1.0
            loop.run_until_complete(store.aclose())
            gc.collect()
        finally:
            loop.close()
        del loop
        gc.collect()
    assert [str(w.message) for w in caught] == []
    assert [r.getMessage() for r in caplog.records if r.name == "asyncio"] == []
    assert window.try_acquire()  # the store works on, on new connections
