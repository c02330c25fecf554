"""Shared stores: acquire latency on Redis (against the PING floor) and SQLite, Redis throughput
with 8 client processes, and Redis memory per limiter key set; ratewindow and its peers, one run.

Redis: ``REDIS_URL`` if set, else a private ``redis-server`` from PATH on a free loopback port (no
persistence), stopped at the end. Latency rows are measured in interleaved rounds (PING, then each
limiter, then PING again ...), so the machine's load drifts into every row alike; the ratio to PING
is taken per round, then the median.

Peers (pyrate-limiter 4.5.1, limits 5.8.0, throttled-py 3.5.0) are imported only if installed:
run this in ``.venv-bench`` (``make bench``) to include them; elsewhere their rows say so.

Run: `.venv-bench/bin/python benchmarks/stores.py [--runs=N] [--keys=N] [--seconds=S]`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from _accuracy import HEADER, accuracy_rows
from _common import argv_runs, table, version, write_result

from ratewindow import DailyQuota, Limits, RedisStore, SlidingWindow, SQLiteStore

Call = Callable[[], object]
AsyncCall = Callable[[], Awaitable[object]]
HUGE = 10**9


def _arg(name: str, default: float) -> float:
    for arg in sys.argv[1:]:
        if arg.startswith(f"--{name}="):
            return float(arg.split("=", 1)[1])
    return default


# -- a Redis to measure ------------------------------------------------------------------------------
class PrivateRedis:
    """redis-server on a free loopback port, no persistence, in a temporary directory."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not on PATH and REDIS_URL is not set")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.directory = tempfile.mkdtemp(prefix="rw-bench-redis-")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        import redis

        client = redis.Redis(port=self.port)
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        client.close()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def redis_client(url: str) -> Any:
    """A redis-py client as RedisStore builds one from a URL (no client-side retries)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0))


def raw_ping(url: str) -> Call:
    """PING written and read on a bare socket: the loopback round trip without any client library."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def ping() -> bytes:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        reply = sock.recv(64)
        if reply != b"+PONG\r\n":
            raise RuntimeError(f"unexpected reply {reply!r}")
        return reply

    return ping


# -- ratewindow --------------------------------------------------------------------------------------
def rw_window(store: Any, limit: int = HUGE, window: float = 1.0) -> Call:
    """Every call granted; the 1 s window keeps about a second of entries, so each grant also
    expires one (the steady state of a busy limiter)."""
    return SlidingWindow(limit, window, name=f"w-{uuid.uuid4().hex[:8]}", store=store).try_acquire


def rw_composite(store: Any, limit: int = HUGE, window: float = 1.0) -> Call:
    name = f"c-{uuid.uuid4().hex[:8]}"
    return Limits(
        SlidingWindow(limit, window, name=name, store=store),
        DailyQuota(HUGE, tz="America/New_York", name=name, store=store),
    ).try_acquire


def rw_refused(store: Any) -> Call:
    """HubSpot's 190 per 10 s, already full: every call refused (reads only)."""
    name = f"r-{uuid.uuid4().hex[:8]}"
    both = Limits(SlidingWindow(190, 10.0, name=name, store=store),
                  DailyQuota(625_000, tz="America/New_York", name=name, store=store))
    while both.try_acquire():
        pass
    return both.try_acquire


# -- peers (hooks: each returns a call, or raises ImportError when the peer is not installed) ---------
def pyrate_redis(url: str) -> Call:
    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    key = f"pyrate-{uuid.uuid4().hex[:8]}"
    bucket = RedisBucket.init([Rate(HUGE, Duration.SECOND)], redis_client(url), key)
    limiter = Limiter(bucket)
    return lambda: limiter.try_acquire("k", blocking=False)


def pyrate_redis_two_rates(url: str) -> Call:
    """pyrate-limiter's nearest to a composite: two rates in one bucket (a rolling day, not a
    calendar day)."""
    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    rates = [Rate(HUGE, Duration.SECOND), Rate(10 * HUGE, Duration.DAY)]
    limiter = Limiter(RedisBucket.init(rates, redis_client(url), f"pyrate2-{uuid.uuid4().hex[:8]}"))
    return lambda: limiter.try_acquire("k", blocking=False)


def pyrate_sqlite(directory: str, file_lock: bool) -> Call:
    """With ``file_lock`` (its multi-process mode; needs the filelock package) or without (threads only)."""
    from pyrate_limiter import Duration, Limiter, Rate, SQLiteBucket

    path = os.path.join(directory, f"pyrate-{file_lock}.sqlite")
    bucket = SQLiteBucket.init_from_file([Rate(HUGE, Duration.SECOND)], db_path=path, use_file_lock=file_lock)
    limiter = Limiter(bucket)
    return lambda: limiter.try_acquire("k", blocking=False)


def limits_redis(url: str) -> Call:
    from limits import RateLimitItemPerSecond, storage, strategies

    moving = strategies.MovingWindowRateLimiter(storage.RedisStorage(url))
    item = RateLimitItemPerSecond(HUGE, 1)
    key = f"limits-{uuid.uuid4().hex[:8]}"
    return lambda: moving.hit(item, key)


def throttled_redis(url: str) -> Call:
    from throttled import RateLimiterType, Throttled, rate_limiter, store

    throttle = Throttled(
        key=f"throttled-{uuid.uuid4().hex[:8]}",
        using=RateLimiterType.SLIDING_WINDOW.value,
        quota=rate_limiter.per_duration(timedelta(seconds=1), HUGE),
        store=store.RedisStore(server=url),
    )
    return lambda: not throttle.limit().limited


# -- asyncio: each hook is a coroutine returning an awaitable call -------------------------------------
async def aio_ping(url: str) -> AsyncCall:
    import redis.asyncio as aioredis

    return aioredis.Redis.from_url(url).ping  # type: ignore[no-any-return]


async def aio_rw_window(store: Any) -> AsyncCall:
    return SlidingWindow(HUGE, 1.0, name=f"aw-{uuid.uuid4().hex[:8]}", store=store).acquire_async


async def aio_rw_composite(store: Any) -> AsyncCall:
    name = f"ac-{uuid.uuid4().hex[:8]}"
    return Limits(
        SlidingWindow(HUGE, 1.0, name=name, store=store),
        DailyQuota(HUGE, tz="America/New_York", name=name, store=store),
    ).acquire_async


async def aio_pyrate(url: str) -> AsyncCall:
    import redis.asyncio as aioredis
    from pyrate_limiter import Duration, Limiter, Rate, RedisBucket

    key = f"apyrate-{uuid.uuid4().hex[:8]}"
    bucket = await RedisBucket.init([Rate(HUGE, Duration.SECOND)], aioredis.Redis.from_url(url), key)
    limiter = Limiter(bucket)
    return lambda: limiter.try_acquire_async("k", blocking=False)


async def aio_limits(url: str) -> AsyncCall:
    from limits import RateLimitItemPerSecond
    from limits.aio import storage, strategies

    moving = strategies.MovingWindowRateLimiter(
        storage.RedisStorage(url.replace("redis://", "async+redis://", 1), implementation="redispy"))
    item = RateLimitItemPerSecond(HUGE, 1)
    key = f"alimits-{uuid.uuid4().hex[:8]}"
    return lambda: moving.hit(item, key)


async def aio_throttled(url: str) -> AsyncCall:
    from throttled.asyncio import RateLimiterType, RedisStore, Throttled, rate_limiter

    throttle = Throttled(
        key=f"athrottled-{uuid.uuid4().hex[:8]}",
        using=RateLimiterType.SLIDING_WINDOW.value,
        quota=rate_limiter.per_duration(timedelta(seconds=1), HUGE),
        store=RedisStore(server=url),
    )
    return throttle.limit


# -- measurement -------------------------------------------------------------------------------------
def per_call_us(call: Call, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls * 1e6


def interleaved(
    rows: list[tuple[str, Callable[[], Call]]], runs: int, calls: int, floor: str | None
) -> list[list[object]]:
    """Median and best µs per call of each row over ``runs`` interleaved rounds; x the floor row."""
    built: list[tuple[str, Call | str]] = []
    for name, factory in rows:
        try:
            call: Call | str = factory()
            call()  # type: ignore[operator]
            for _ in range(200):
                call()  # type: ignore[operator]
        except ImportError as exc:
            call = f"not installed ({exc.name})" if exc.name else "not installed"
        except Exception as exc:  # a peer failing must not hide the other rows
            call = f"error: {type(exc).__name__}: {exc}"[:80]
        built.append((name, call))
    samples: dict[str, list[float]] = {name: [] for name, _ in built}
    for _ in range(runs):
        for name, call in built:
            if callable(call):
                samples[name].append(per_call_us(call, calls))
    return _rows(built, samples, floor)


def _rows(
    built: list[tuple[str, Any]], samples: dict[str, list[float]], floor: str | None
) -> list[list[object]]:
    """Table rows: median and best µs per call, and the median per-round ratio to ``floor``."""
    out: list[list[object]] = []
    for name, call in built:
        if not callable(call):
            out.append([name, call, "", ""])
            continue
        ratio = ""
        if floor is not None and samples[floor]:
            ratio = f"{statistics.median(s / f for s, f in zip(samples[name], samples[floor])):.2f}x"
        out.append([name, f"{statistics.median(samples[name]):.1f}", f"{min(samples[name]):.1f}", ratio])
    return out


async def _per_call_us_async(call: AsyncCall, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - start) / calls * 1e6


def interleaved_async(
    rows: list[tuple[str, Callable[[], Awaitable[AsyncCall]]]], runs: int, calls: int, floor: str
) -> list[list[object]]:
    """``interleaved`` for awaitable calls, all rows on one event loop (one asyncio.run)."""

    async def measure() -> list[list[object]]:
        built: list[tuple[str, AsyncCall | str]] = []
        for name, factory in rows:
            try:
                call: AsyncCall | str = await factory()
                for _ in range(201):
                    await call()  # type: ignore[operator]
            except ImportError as exc:
                call = f"not installed ({exc.name})" if exc.name else "not installed"
            except Exception as exc:  # a peer failing must not hide the other rows
                call = f"error: {type(exc).__name__}: {exc}"[:80]
            built.append((name, call))
        samples: dict[str, list[float]] = {name: [] for name, _ in built}
        for _ in range(runs):
            for name, call in built:
                if callable(call):
                    samples[name].append(await _per_call_us_async(call, calls))
        return _rows(built, samples, floor)

    return asyncio.run(measure())


def _throughput_worker(url: str, seconds: float, start_at: float, queue: Any) -> None:
    store = RedisStore(url, prefix="bench:")
    call = rw_composite(store)
    call()
    while time.time() < start_at:
        time.sleep(0.001)
    done = granted = 0
    stop = start_at + seconds
    while time.time() < stop:
        for _ in range(50):
            granted += bool(call())
        done += 50
    queue.put((done, granted))


def _pipelined_worker(url: str, seconds: float, start_at: float, depth: int, queue: Any) -> None:
    """A load generator: ratewindow's own composite EVALSHA (the bytes ``RedisStore`` sends for one
    ``try_acquire``, server time, so the same bytes serve every call) written ``depth`` at a time on
    a raw socket, every reply read and checked. Costs the client far less than a Python call per
    acquire, so Redis, not the client, sets the pace."""
    store = RedisStore(url, prefix="bench:")
    name = f"p-{uuid.uuid4().hex[:8]}"
    both = Limits(SlidingWindow(HUGE, 1.0, name=name, store=store),
                  DailyQuota(HUGE, tz="America/New_York", name=name, store=store))
    assert both.try_acquire()  # loads the script
    members = store._members_of(both._specs)
    nkeys = sum(len(m.keys) for m in members)
    command = store._packed(members, nkeys, store._argv(b"a", members, 1.0, 0.0, None))
    burst = command * depth
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while time.time() < start_at:
        time.sleep(0.001)
    done = granted = 0
    buffer = b""
    stop = start_at + seconds
    while time.time() < stop:
        sock.sendall(burst)
        replies = 0
        while replies < depth:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            buffer += chunk
            at = 0
            while replies < depth:
                end = buffer.find(b"\r\n", at)
                if end < 0 or buffer[at:at + 1] != b"$":
                    if end >= 0:
                        raise RuntimeError(f"unexpected reply {buffer[at:end]!r}")
                    break
                size = int(buffer[at + 1:end])
                if len(buffer) < end + 2 + size + 2:
                    break
                granted += buffer[end + 2:end + 10] == GRANTED
                replies += 1
                at = end + 2 + size + 2
            buffer = buffer[at:]
        done += depth
    sock.close()
    queue.put((done, granted))


GRANTED = struct.pack("<d", 1.0)


def _redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def throughput(url: str, processes: int, seconds: float, depth: int = 0) -> list[list[object]]:
    """``processes`` clients for ``seconds``: RedisStore calls (``depth`` 0), or the pipelined load
    generator ``depth`` commands deep. Each process has its own account's limiter set."""
    client = redis_client(url)
    client.config_resetstat()
    cpu_before = _redis_cpu(client)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 3.0
    if depth:
        pool = [context.Process(target=_pipelined_worker, args=(url, seconds, start_at, depth, queue))
                for _ in range(processes)]
    else:
        pool = [context.Process(target=_throughput_worker, args=(url, seconds, start_at, queue))
                for _ in range(processes)]
    for process in pool:
        process.start()
    results = [queue.get(timeout=120) for _ in pool]
    for process in pool:
        process.join(timeout=30)
    busy = (_redis_cpu(client) - cpu_before) / seconds
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    per_call = float(stats.get("usec_per_call", 0.0))
    total = sum(r[0] for r in results)
    refused = sum(r[0] - r[1] for r in results)
    plural = "es" if processes > 1 else ""
    if depth:
        what = (f"{processes} load-generator process{plural}, ratewindow's composite EVALSHA "
                f"pipelined {depth} deep, {seconds:g} s")
    else:
        what = f"{processes} RedisStore client process{plural}, composite try_acquire, {seconds:g} s"
    return [[what, f"{total / seconds:,.0f}", f"{refused:,}", f"{per_call:.1f}",
             f"{1e6 / per_call:,.0f}" if per_call else "", f"{busy:.0%}"]]


def memory(url: str, keys: int) -> list[list[object]]:
    client = redis_client(url)
    store = RedisStore(url, prefix="mem:")
    before = int(client.info("memory")["used_memory"])
    for i in range(keys):  # a window of an hour: no key expires while we count
        Limits(SlidingWindow(190, 3600.0, name=f"acct-{i}", store=store),
               DailyQuota(625_000, tz="America/New_York", name=f"acct-{i}", store=store)).try_acquire()
    after = int(client.info("memory")["used_memory"])
    count = int(client.dbsize())
    return [[f"{keys:,} accounts, Limits(SlidingWindow(190, 3600), DailyQuota) with one grant each",
             f"{count:,}", f"{(after - before) / keys:,.0f}"]]


def main() -> None:
    runs = argv_runs(7)
    calls = int(_arg("calls", 2000))
    keys = int(_arg("keys", 100_000))
    seconds = _arg("seconds", 3.0)
    private = None if os.environ.get("REDIS_URL") else PrivateRedis()
    url = os.environ.get("REDIS_URL") or (private.url if private else "")
    directory = tempfile.mkdtemp(prefix="rw-bench-sqlite-")
    try:
        client = redis_client(url)
        server = client.info("server")["redis_version"]
        store = RedisStore(url, prefix="bench:")
        sqlite = SQLiteStore(os.path.join(directory, "ratewindow.db"))
        redis_rows = [
            ("PING (redis-py, the floor)", lambda: client.ping),
            ("PING on a raw socket (the network alone)", lambda: raw_ping(url)),
            ("ratewindow SlidingWindow", lambda: rw_window(store)),
            ("ratewindow Limits(SlidingWindow, DailyQuota)", lambda: rw_composite(store)),
            ("ratewindow Limits(190/10 s, 625,000/day), full: refused", lambda: rw_refused(store)),
            ("pyrate-limiter RedisBucket", lambda: pyrate_redis(url)),
            ("pyrate-limiter RedisBucket, 2 rates (s, rolling day)", lambda: pyrate_redis_two_rates(url)),
            ("limits MovingWindow (RedisStorage)", lambda: limits_redis(url)),
            ("throttled-py sliding window (RedisStore)", lambda: throttled_redis(url)),
        ]
        sqlite_rows = [
            ("ratewindow SlidingWindow", lambda: rw_window(sqlite)),
            ("ratewindow Limits(SlidingWindow, DailyQuota)", lambda: rw_composite(sqlite)),
            ("ratewindow Limits(190/10 s, 625,000/day), full: refused", lambda: rw_refused(sqlite)),
            ("pyrate-limiter SQLiteBucket, file lock (processes)", lambda: pyrate_sqlite(directory, True)),
            ("pyrate-limiter SQLiteBucket, no file lock (threads only)",
             lambda: pyrate_sqlite(directory, False)),
        ]
        async_rows: list[tuple[str, Callable[[], Awaitable[AsyncCall]]]] = [
            ("PING (redis.asyncio, the floor)", lambda: aio_ping(url)),
            ("ratewindow SlidingWindow", lambda: aio_rw_window(store)),
            ("ratewindow Limits(SlidingWindow, DailyQuota)", lambda: aio_rw_composite(store)),
            ("pyrate-limiter RedisBucket (redis.asyncio)", lambda: aio_pyrate(url)),
            ("limits MovingWindow (aio RedisStorage, redispy)", lambda: aio_limits(url)),
            ("throttled-py sliding window (asyncio RedisStore)", lambda: aio_throttled(url)),
        ]
        body = [
            f"Redis {server} on loopback ({'REDIS_URL' if private is None else 'a private redis-server'}); "
            f"redis-py {version('redis')}; SQLite {__import__('sqlite3').sqlite_version} (WAL); "
            f"{runs} interleaved rounds x {calls:,} calls per row, one client, every call granted unless "
            "the row says refused.\n",
            "## Redis: µs per try_acquire (one network round trip each)\n",
            table(["what", "median µs", "best µs", "x PING (median of rounds)"],
                  interleaved(redis_rows, runs, calls, "PING (redis-py, the floor)")),
            "\n## Redis from asyncio: µs per awaited acquire, one task (one network round trip each)\n",
            table(["what", "median µs", "best µs", "x PING (median of rounds)"],
                  interleaved_async(async_rows, runs, calls, "PING (redis.asyncio, the floor)")),
            "\n## SQLite: µs per try_acquire (one BEGIN IMMEDIATE transaction each)\n",
            table(["what", "median µs", "best µs", ""], interleaved(sqlite_rows, runs, calls, None)),
            "\n## Redis throughput: one node, 8 client processes on the same machine\n",
            "Redis runs scripts on one thread: the script's server time bounds what one node (shard) "
            "can decide per second, whatever the number of clients. Here the clients share the "
            f"machine's {os.cpu_count()} cores with the server, so Python clients that make one call "
            "per acquire run out of CPU first; the load-generator rows send ratewindow's own "
            "composite EVALSHA (the bytes RedisStore sends for a try_acquire) pipelined, so that "
            "Redis sets the pace: they measure the node's ceiling. Each process uses its own "
            "account's Limits(SlidingWindow(10^9, 1 s), DailyQuota(10^9, America/New_York)), every "
            "call granted (a refused call would be cheaper).\n",
            table(["what", "acquires/s", "refused", "server µs per script", "1 core's ceiling (1e6 / µs)",
                   "Redis CPU busy"],
                  throughput(url, 1, seconds) + throughput(url, 8, seconds)
                  + throughput(url, 8, seconds, depth=32)),
            "\n## Accuracy across processes: 4 processes x 4 threads share 20 per 1 s\n",
            "Each grant is recorded as the span from just before its try to just after it returned "
            "(wall clock, one host): *most in any 1 s* counts grants whose whole spans fit in one "
            "second, so a figure above 20 is a proven violation. See benchmarks/_accuracy.py.\n",
            table(HEADER, accuracy_rows(url, directory, _arg("accuracy-seconds", 5.0))),
            "\n## Redis memory per limiter key set\n",
            table(["what", "keys", "bytes per account"], memory(url, keys)),
        ]
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        body.insert(1, f"Load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} cores; other "
                       "work on the machine slows every row alike, ratios least.\n")
        write_result("stores", "Shared stores: Redis and SQLite", "make bench (benchmarks/stores.py)",
                     "\n".join(body))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if private is not None:
            private.stop()


if __name__ == "__main__":
    main()
