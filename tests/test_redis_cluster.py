"""RedisStore on a real 3-node Redis Cluster (started on loopback ports for the session)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from _redis_server import RedisCluster

from ratewindow import DailyQuota, Limits, RedisStore, SlidingWindow, TokenBucket
from ratewindow.testing import ManualClock, StoreContract

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def cluster_client(redis_cluster: RedisCluster) -> Iterator[Any]:
    from redis.cluster import RedisCluster as Client

    client = Client.from_url(redis_cluster.url)
    try:
        yield client
    finally:
        client.close()


class TestClusterContract(StoreContract):
    """The unchanged contract; a tag in the prefix keeps each test's limiters on one slot."""

    @pytest.fixture(autouse=True)
    def _client(self, cluster_client: Any) -> None:
        self.client = cluster_client

    def make_store(self, clock: ManualClock) -> RedisStore:
        return RedisStore(self.client, prefix=f"{{rwc-{uuid.uuid4().hex[:8]}}}:", clock=clock)


def test_limiters_spread_over_the_nodes(cluster_client: Any) -> None:
    """With the default prefix each name is its own hash tag: limiters land on different nodes,
    and a composite whose members share a name works (its keys share one slot)."""
    store = RedisStore(cluster_client, prefix=f"rw-{uuid.uuid4().hex[:6]}:")
    nodes = set()
    for i in range(30):
        name = f"account-{i}"
        both = Limits(SlidingWindow(2, 60.0, name=name, store=store), DailyQuota(3, name=name, store=store))
        assert [both.try_acquire() for _ in range(3)] == [True, True, False]
        for key in (f"{store.prefix}{{{name}}}:window:{name}:60.0", f"{store.prefix}{{{name}}}:daily:{name}:UTC:00:00:00"):
            assert cluster_client.exists(key) == 1
            nodes.add(cluster_client.get_node_from_key(key).name)
        assert cluster_client.pttl(f"{store.prefix}{{{name}}}:daily:{name}:UTC:00:00:00") > 0
    assert len(nodes) == 3


def test_members_on_different_slots_are_refused_before_any_call(cluster_client: Any) -> None:
    store = RedisStore(cluster_client)
    both = Limits(SlidingWindow(2, 60.0, name="a-1", store=store), TokenBucket(1.0, 2, name="b-2", store=store))
    with pytest.raises(ValueError, match="hash tag") as caught:
        both.try_acquire()
    assert "'a-1'" in str(caught.value) and "'b-2'" in str(caught.value)
    assert cluster_client.exists("ratewindow:{a-1}:window:a-1:60.0") == 0


def test_a_prefix_that_splits_one_name_names_the_two_hashed_values(cluster_client: Any) -> None:
    """An empty ``{}`` in the prefix makes Redis hash whole keys: members of one name land on
    different slots. The error names the two values hashed, not the one name twice."""
    store = RedisStore(cluster_client, prefix="{}:")
    both = Limits(SlidingWindow(2, 60.0, name="same", store=store), DailyQuota(3, name="same", store=store))
    with pytest.raises(ValueError, match="hash tag") as caught:
        both.try_acquire()
    message = str(caught.value)
    assert "'same', 'same'" not in message
    assert "'{}:{same}:window:same:60.0'" in message and "'{}:{same}:daily:same:UTC:00:00:00'" in message
    assert "prefix '{}:'" in message


def test_threads_share_exactly_one_limit(cluster_client: Any) -> None:
    """16 threads, each with its own limiter object, against one composite on the cluster."""
    name = f"race-{uuid.uuid4().hex[:6]}"
    store = RedisStore(cluster_client)
    granted: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def work() -> None:
        both = Limits(SlidingWindow(50, 3600.0, name=name, store=store), DailyQuota(40, name=name, store=store))
        barrier.wait()
        mine = [both.try_acquire() for _ in range(10)]
        with lock:
            granted.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 160
    assert granted.count(True) == 40  # the daily quota binds; the window saw exactly the same 40
    assert SlidingWindow(50, 3600.0, name=name, store=store).available() == 10


def test_async_on_the_cluster(cluster_client: Any) -> None:
    store = RedisStore(cluster_client, prefix=f"rwa-{uuid.uuid4().hex[:6]}:")
    window = SlidingWindow(3, 3600.0, name="aio", store=store)

    async def run() -> list[bool]:
        out = []
        for _ in range(4):
            try:
                await window.acquire_async(timeout=0)
                out.append(True)
            except TimeoutError:
                out.append(False)
        return out

    assert asyncio.run(run()) == [True, True, True, False]
    assert asyncio.run(run()) == [False] * 4  # a second event loop gets its own client


def test_cluster_url(redis_cluster: RedisCluster) -> None:
    url = redis_cluster.url.replace("redis://", "redis+cluster://").replace("/0", "")
    with RedisStore(url, prefix=f"rwu-{uuid.uuid4().hex[:6]}:") as store:
        assert repr(store).startswith("RedisStore('redis+cluster://127.0.0.1:")
        window = SlidingWindow(1, 3600.0, name="url", store=store)
        assert [window.try_acquire(), window.try_acquire()] == [True, False]
