"""``Rate``: a limit per window, parsed from and printed as ``"190/10s"``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ratewindow._validate import check_count, check_positive

__all__ = ["Rate"]

_UNITS: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "day": 86400.0,
    "d": 86400.0,
}
# Largest first: str() picks the largest unit that divides the window evenly.
_PRINT_UNITS = (("day", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0))
_MAX_COUNT = 1e15  # counts printed as integers up to here; larger windows print as seconds, e.g. 1e+16s
_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?(?:e[+-]?\d+)?)?\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    """``limit`` units per ``window`` seconds.

    ``str()`` gives text that ``Rate.parse`` reads back to the same rate, for every rate.

    >>> Rate.parse("190/10s")
    Rate(limit=190, window=10.0)
    >>> str(Rate(625_000, 86_400))
    '625000/day'
    >>> str(Rate(1, 1e-05))
    '1/1e-05s'
    """

    #: Units (usually requests) allowed per window.
    limit: int
    #: Window length in seconds.
    window: float

    def __init__(self, limit: int, window: float) -> None:
        object.__setattr__(self, "limit", check_count("limit", limit))
        object.__setattr__(self, "window", check_positive("window", window))

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse ``"N/s"``, ``"N/10s"``, ``"N/min"``, ``"N/5min"``, ``"N/h"``, ``"N/day"``; the
        count of units may have a fraction or an exponent (``"10/0.5s"``, ``"1/1e-05s"``).

        Raises:
            ValueError: the text is not of that form (the message quotes it).
            TypeError: ``text`` is not a string.
        """
        if not isinstance(text, str):
            raise TypeError(f"rate must be a string like '190/10s', got {text!r}")
        match = _PATTERN.match(text.lower())
        if match is None or match.group(3) not in _UNITS:
            raise ValueError(
                f"cannot parse rate {text!r}: expected 'N/s', 'N/10s', 'N/min', 'N/h' or 'N/day'"
            )
        count = float(match.group(2)) if match.group(2) else 1.0
        if count <= 0:
            raise ValueError(f"cannot parse rate {text!r}: the window must be > 0")
        return cls(int(match.group(1)), count * _UNITS[match.group(3)])

    @property
    def per_second(self) -> float:
        """The average rate in units per second."""
        return self.limit / self.window

    def __str__(self) -> str:
        window = self.window
        for unit, seconds in _PRINT_UNITS:
            count = window / seconds
            # ``count * seconds == window``: what ``parse`` computes gives back this very float.
            if 1 <= count <= _MAX_COUNT and count == int(count) and count * seconds == window:
                return f"{self.limit}/{unit}" if count == 1 else f"{self.limit}/{int(count)}{unit}"
        return f"{self.limit}/{window!r}s"  # the shortest text that reads back as this float
