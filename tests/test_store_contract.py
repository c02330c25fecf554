"""The store contract (``ratewindow.testing.StoreContract``), run unchanged on every store we ship."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ratewindow import MemoryStore, RedisStore, SQLiteStore
from ratewindow.testing import ManualClock, StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self, clock: ManualClock) -> MemoryStore:
        return MemoryStore()


class TestSQLiteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _files(self, tmp_path: Path) -> Iterator[None]:
        self.directory = tmp_path
        self.stores: list[SQLiteStore] = []
        yield
        for store in self.stores:
            store.close()

    def make_store(self, clock: ManualClock) -> SQLiteStore:
        store = SQLiteStore(self.directory / f"limits-{len(self.stores)}.db", clock=clock)
        self.stores.append(store)
        return store


@pytest.mark.redis
class TestRedisStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str, prefix: str) -> Iterator[None]:
        self.url = redis_url
        self.prefix = prefix
        self.stores: list[RedisStore] = []
        yield
        for store in self.stores:
            store.close()

    def make_store(self, clock: ManualClock) -> RedisStore:
        store = RedisStore(self.url, prefix=f"{self.prefix}{len(self.stores)}:", clock=clock)
        self.stores.append(store)
        return store
