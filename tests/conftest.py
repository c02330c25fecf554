"""Fixtures shared by the store tests: Redis servers (a private one by default), a cluster, unique prefixes.

Redis comes from ``REDIS_URL`` if set, else from a private ``redis-server`` started on a free port
(so tests may stop, restart and flush it). Without Redis, the tests that need it skip with the
reason; under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _redis_server import RedisCluster, RedisServer, in_ci, redis_server_binary

__all__ = ["redis_missing"]


@pytest.fixture(scope="session", autouse=True)
def _python_handles_ctrl_c() -> Iterator[None]:
    """The Ctrl-C tests need Python's own SIGINT handler, but a job a shell starts in the
    background inherits SIGINT ignored (then ``_thread.interrupt_main`` does nothing and the
    executor leaves the ignored handler alone). Put Python's default back for the session."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, previous)


def redis_missing(reason: str) -> None:
    """Skip the test (outside CI) or fail it (under CI=true): Redis is required in CI."""
    if in_ci():
        pytest.fail(f"Redis is required under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def _redis_module() -> Any:
    try:
        import redis
    except ImportError:
        redis_missing("redis-py is not installed (pip install 'ratewindow[redis]')")
    return redis


@pytest.fixture(scope="session")
def _private_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer | None]:
    """The session's private Redis server, started only when REDIS_URL is not set."""
    if os.environ.get("REDIS_URL") or redis_server_binary() is None:
        yield None
        return
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(_private_redis: RedisServer | None) -> str:
    """URL of a Redis for tests that do not stop it: REDIS_URL, else the private server."""
    _redis_module()
    url = os.environ.get("REDIS_URL")
    if url:
        return url
    if _private_redis is None:
        redis_missing("REDIS_URL is not set and redis-server is not on PATH")
    assert _private_redis is not None
    return _private_redis.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    """A plain redis-py client on ``redis_url``."""
    client = _redis_module().Redis.from_url(redis_url)
    try:
        client.ping()
    except Exception as exc:
        redis_missing(f"cannot reach Redis at {redis_url}: {exc}")
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def prefix(redis_client: Any) -> Iterator[str]:
    """A unique key prefix; every key under it is deleted after the test (REDIS_URL may be shared)."""
    value = f"rwtest-{uuid.uuid4().hex[:12]}:"
    yield value
    keys = list(redis_client.scan_iter(match=value + "*", count=1000))
    if keys:
        redis_client.delete(*keys)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start private Redis servers that the test may stop and restart; all stopped afterwards."""
    _redis_module()
    if redis_server_binary() is None:
        redis_missing("redis-server is not on PATH (needed to stop and restart a private server)")
    servers: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}", **kwargs)
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """A real 3-node Redis Cluster on loopback ports, for the whole session."""
    _redis_module()
    if redis_server_binary() is None:
        redis_missing("redis-server is not on PATH (needed for a Redis Cluster)")
    cluster = RedisCluster(tmp_path_factory.mktemp("cluster"))
    with cluster:
        yield cluster
