"""``LoopLocks``: one ``asyncio.Lock`` per running event loop (a lock belongs to one loop)."""

from __future__ import annotations

import asyncio
import weakref

__all__ = ["LoopLocks"]


class LoopLocks:
    """Hands out this event loop's lock; locks of loops that are gone are dropped with them."""

    __slots__ = ("_locks",)

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> asyncio.Lock:
        """The running loop's lock. Raises RuntimeError outside a running loop."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks.setdefault(loop, asyncio.Lock())
        return lock
