"""Stores: where limiter state lives. ``MemoryStore`` is the default; ``SQLiteStore`` shares limits
between processes on a host, ``RedisStore`` between hosts (redis-py is imported only when one is built)."""

from ratewindow.stores._memory import MemoryStore
from ratewindow.stores._protocol import Store
from ratewindow.stores._redis import RedisStore
from ratewindow.stores._sqlite import SQLiteStore
from ratewindow.stores._url import store_from_env, store_from_url

__all__ = ["MemoryStore", "RedisStore", "SQLiteStore", "Store", "store_from_env", "store_from_url"]
