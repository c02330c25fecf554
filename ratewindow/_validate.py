"""Argument checks shared by the limiters: clear errors that name the bad value."""

from __future__ import annotations

import math
from numbers import Real

__all__ = ["check_count", "check_name", "check_non_negative", "check_positive"]


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
