"""Local calendar days with a reset time, as Unix-time periods; correct on 23 h and 25 h DST days."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Calendar"]

_ONE_DAY = dt.timedelta(days=1)


class Calendar:
    """Maps a Unix time to the local day that contains it, as ``(start, end)`` Unix times.

    A day starts at ``reset_time`` local time in ``tz``. The current period is cached, so the
    hot path costs two float comparisons.

    Raises:
        ValueError: ``tz`` names no known time zone.
        TypeError: ``reset_time`` is not a ``datetime.time``.
    """

    __slots__ = ("_cache", "reset_time", "tz", "tz_name")

    def __init__(self, tz: str = "UTC", reset_time: dt.time = dt.time(0)) -> None:
        if not isinstance(tz, str) or not tz:
            raise ValueError(f"unknown time zone {tz!r}")
        try:
            zone = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {tz!r}") from exc
        if not isinstance(reset_time, dt.time):
            raise TypeError(f"reset_time must be a datetime.time, got {reset_time!r}")
        if reset_time.tzinfo is not None:
            raise ValueError(f"reset_time must be a naive local time (the zone is tz), got {reset_time!r}")
        self.tz: dt.tzinfo = zone
        self.tz_name = tz
        self.reset_time = reset_time
        self._cache: tuple[float, float] = (0.0, 0.0)

    def _reset_on(self, day: dt.date) -> float:
        """Unix time of the first instant at which the local wall clock shows ``day`` at or
        after ``reset_time``. For a time skipped by a DST gap that is the moment of the jump; for
        a time that occurs twice it is the first occurrence."""
        wanted = (day, self.reset_time)
        first = dt.datetime.combine(day, self.reset_time, tzinfo=self.tz)
        at = first.timestamp()
        local = dt.datetime.fromtimestamp(at, self.tz)
        if (local.date(), local.time()) == wanted:
            return at
        # A skipped time: fold=1 maps it before the jump, fold=0 after; search between them.
        low, high = first.replace(fold=1).timestamp(), at
        if low > high:
            low, high = high, low
        while high - low > 1e-3:
            mid = (low + high) / 2
            local = dt.datetime.fromtimestamp(mid, self.tz)
            if (local.date(), local.time().replace(fold=0)) >= wanted:
                high = mid
            else:
                low = mid
        return float(round(high)) if abs(high - round(high)) < 2e-3 else high

    def period(self, t: float) -> tuple[float, float]:
        """The ``(start, end)`` Unix times (seconds) of the local day containing ``t``; start <= t < end."""
        cache = self._cache
        if cache[0] <= t < cache[1]:
            return cache
        day = dt.datetime.fromtimestamp(t, self.tz).date()
        start = self._reset_on(day)
        while t < start:
            day -= _ONE_DAY
            start = self._reset_on(day)
        end = self._reset_on(day + _ONE_DAY)
        while end <= t:
            day += _ONE_DAY
            start, end = end, self._reset_on(day + _ONE_DAY)
        self._cache = (start, end)
        return self._cache

    def boundaries(self, t: float, before: int = 1, after: int = 2) -> list[float]:
        """Consecutive period starts around ``t``: ``before`` periods back, ``after`` ahead (Unix seconds).

        Used by stores that decide without Python's zoneinfo (the Redis Lua script).
        """
        start, end = self.period(t)
        out = [start, end]
        for _ in range(before):
            out.insert(0, self.period(out[0] - 1e-3)[0])
        for _ in range(after - 1):
            out.append(self.period(out[-1])[1])
        return out

    def __repr__(self) -> str:
        return f"Calendar(tz={self.tz_name!r}, reset_time={self.reset_time.isoformat()!r})"
