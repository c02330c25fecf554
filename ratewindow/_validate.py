"""Argument checks shared by the limiters: clear errors that name the bad value."""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real
from typing import Any

from ratewindow.stores._memory import MemoryStore
from ratewindow.stores._protocol import Store
from ratewindow.stores._url import store_from_url

__all__ = ["as_store", "check_count", "check_name", "check_non_negative", "check_positive", "check_store"]


def check_name(name: str, value: object) -> str:
    """Return ``value`` if it is a non-empty ``str``.

    Raises:
        TypeError: ``value`` is not a ``str`` (the message names it).
        ValueError: ``value`` is the empty string.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a non-empty string, got {value!r}")
    if not value:
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def check_count(name: str, value: object) -> int:
    """Return ``value`` if it is a positive ``int`` (not a bool); raise naming it otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check_real(name: str, value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return number


def check_positive(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number > 0; raise naming it otherwise."""
    number = _check_real(name, value, "a finite number > 0")
    if number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_non_negative(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite number >= 0; raise naming it otherwise."""
    number = _check_real(name, value, "a finite number >= 0")
    if number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def check_store(store: object, *, default: Callable[[], object] = MemoryStore, kind: Any = Store,
                what: str = "a ratewindow store") -> Any:
    """What a ``store=`` argument names: None is ``default()``, a string a URL for
    ``store_from_url``, an instance of the runtime-checkable protocol ``kind`` itself.

    Raises:
        TypeError: anything else, named in the message (bytes, a number, a client that is not
            a store, a store without what ``kind`` needs).
        ValueError: a malformed store URL.
    """
    if store is None:
        chosen = default()
    elif isinstance(store, str):
        chosen = store_from_url(store)
    else:
        chosen = store
    if not isinstance(chosen, kind):
        raise TypeError(
            f"store must be {what} (MemoryStore, SQLiteStore, RedisStore or your own) or a store URL "
            f"such as 'sqlite:///limits.db', got {chosen!r}"
        )
    return chosen


def as_store(store: Store | str | None, *, default: Callable[[], Store] = MemoryStore) -> Store:
    """The store that a ``store=`` argument names, as every ``store=`` in ratewindow and its adapters
    reads it: a store is returned as it is, a string is a URL for ``store_from_url`` (a new store
    each time: build it once to share it), and None gives ``default()`` (a new ``MemoryStore``; the
    adapters pass ``store_from_env``).

    Raises:
        TypeError: ``store`` is neither a store nor a string (the message names it).
        ValueError: a malformed store URL (its password masked).

    >>> from ratewindow import as_store
    >>> as_store("memory://")
    MemoryStore(keys=0)
    >>> as_store(42)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: store must be a ratewindow store (...) or a store URL such as 'sqlite:///limits.db', got 42
    """
    chosen: Store = check_store(store, default=default)
    return chosen
