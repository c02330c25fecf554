"""``DailyQuota``: one counter per local calendar day."""

from __future__ import annotations

import datetime as dt

from ratewindow._calendar import Calendar
from ratewindow._clock import Clock, WallClock
from ratewindow._core import DAILY, Spec
from ratewindow._limiter import _BaseLimiter
from ratewindow._validate import check_count, check_store
from ratewindow.stores._protocol import Store

__all__ = ["DailyQuota"]


class DailyQuota(_BaseLimiter):
    """At most ``limit`` units per local day in ``tz``, the day starting at ``reset_time``.

    Days are real local days: 23 h and 25 h long on DST changes. Memory is O(1). The clock must
    give Unix time (``WallClock()``, the default) since days are calendar days.

    Args:
        limit: units per day; a positive int.
        tz: an IANA time zone name such as ``"America/New_York"``.
        reset_time: local time of day at which the count resets (naive ``datetime.time``).
        name, store: as for ``SlidingWindow``; quotas share a count when their name, zone and reset
            time are the same.
        clock: a Unix-time clock; ``WallClock()`` by default.

    Raises:
        TypeError: an argument of the wrong type (``tz=None``, ``name=5``), named in the message.
        ValueError: a bad value (an unknown time zone, ``limit=0``), named in the message.

    >>> from ratewindow import DailyQuota
    >>> DailyQuota(625_000, tz="America/New_York").try_acquire()
    True
    """

    def __init__(
        self,
        limit: int,
        *,
        tz: str = "UTC",
        reset_time: dt.time = dt.time(0),
        name: str = "default",
        store: Store | str | None = None,
        clock: Clock | None = None,
    ) -> None:
        #: Units allowed per local day.
        self.limit = check_count("limit", limit)
        if not isinstance(tz, str):
            raise TypeError(f"tz must be an IANA time zone name such as 'America/New_York', got {tz!r}")
        #: The calendar that cuts time into local days.
        self.calendar = Calendar(tz, reset_time)
        clock = clock if clock is not None else WallClock()
        # The key names the calendar too: quotas whose days differ (zone, reset time) never share a count.
        key = f"daily:{name}:{tz}:{reset_time.isoformat()}"
        spec = Spec(DAILY, key, name, float(self.limit), 0.0, clock, self.calendar)
        self._setup(name, [spec], check_store(store), clock, self.limit, True)

    def _keyed_copy(self, key: str) -> DailyQuota:
        return DailyQuota(self.limit, tz=self.calendar.tz_name, reset_time=self.calendar.reset_time,
                          name=f"{self.name}:{key}", store=self._store, clock=self._clock)

    def resets_at(self) -> float:
        """Unix time (seconds) of the next reset."""
        return self.calendar.period(self._clock.now())[1]

    def __repr__(self) -> str:
        return (
            f"DailyQuota(limit={self.limit}, tz={self.calendar.tz_name!r}, "
            f"reset_time={self.calendar.reset_time.isoformat()!r}, used={self._used_text()}, "
            f"name={self.name!r})"
        )
