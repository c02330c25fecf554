"""Stores: where limiter state lives. ``MemoryStore`` is the default."""

from ratewindow.stores._memory import MemoryStore
from ratewindow.stores._protocol import Store

__all__ = ["MemoryStore", "Store"]
