"""``for_key``: one limiter per key (user, account, endpoint), built from a template and cached."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["KEYED_HANDLES", "KeyedHandles", "check_key"]

T = TypeVar("T")

#: Keyed handles a template keeps (the oldest dropped first). A handle holds no state of
#: its own, only the names of its state in the store, so dropping one loses nothing: it only saves
#: rebuilding it (microseconds) the next time the key is asked for.
KEYED_HANDLES = 1024


def check_key(key: object) -> str:
    """``key`` as the text that names it.

    Raises:
        TypeError: not a string or an int.
        ValueError: an empty string.
    """
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise TypeError(f"key must be a string or an int, got {key!r}")
    text = key if isinstance(key, str) else str(key)
    if not text:
        raise ValueError(f"key must be a non-empty string, got {key!r}")
    return text


class KeyedHandles(Generic[T]):
    """Up to ``size`` handles built by ``build(key)``, the oldest dropped first; thread-safe.

    A hit is one dict lookup without a lock: only inserts and drops take the lock.
    """

    __slots__ = ("_build", "_handles", "_lock", "_size")

    def __init__(self, build: Callable[[str], T], size: int = KEYED_HANDLES) -> None:
        self._build = build
        self._size = size
        self._handles: dict[str, T] = {}
        self._lock = threading.Lock()

    def get(self, key: object) -> T:
        """The handle for ``key``, built on first use (see ``check_key`` for what raises)."""
        text = key if key.__class__ is str and key else check_key(key)
        handle = self._handles.get(text)
        if handle is not None:
            return handle
        built = self._build(text)  # outside the lock: building one takes microseconds
        with self._lock:
            handles = self._handles
            handle = handles.setdefault(text, built)
            if len(handles) > self._size:
                del handles[next(iter(handles))]  # the oldest; every change holds the lock
        return handle

    def __len__(self) -> int:
        return len(self._handles)
