"""``Forecast``: when n more calls would all have started at a limiter's current budget.

How it is worked out, for the reader of this module (``limiter.forecast(n, cost)``):

- The forecast reads the store through the ``Store`` protocol only (``wait_time``, ``used``), so
  it works on every store, shared ones included, and records nothing. Times are seconds from
  the forecast.
- A *sliding window* that fits ``m = limit // cost`` calls: with ``f(x)`` the wait until ``x``
  units fit (``wait_time``), call j <= m starts at ``f(j * cost)``: every unit in the window now,
  bookings included, has expired one window after the first of our calls, so call j > m waits
  exactly for call j - m to expire: call ``q * m + r`` starts at ``f(r * cost) + q * span``.
  One store query per distinct r that is asked for.
- A *token bucket* (GCRA) grants call 1 at ``f(cost)``; from then on its theoretical arrival
  time grows by ``cost / rate`` per call, so call j starts at
  ``max(f(cost), tat_1 + ((j - 2) * cost - (capacity - cost)) / rate)``.
- A *composite* starts call j when its slowest member allows it (the max of the members'
  times). That is exact when the members do not hold each other back (a window with a daily
  quota, the usual case) and a lower bound otherwise (one member's wait then delays the others).
- A *daily quota* does not pace the calls: it lets ``(limit - used) // cost`` more start today,
  and calls that would start after its reset count towards the next day. When it runs out
  before its day ends, it *stops* the calls: the next one waits for the reset, and the windows
  and buckets start again from empty then (exact when the wait is longer than the longest
  window, a lower bound otherwise).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ratewindow._calendar import Calendar
from ratewindow._clock import Clock, MonotonicClock, WallClock, grace_of
from ratewindow._core import BUCKET, DAILY, WINDOW, Spec
from ratewindow.stores._protocol import Store

__all__ = ["Forecast", "duration_text", "forecast"]

#: Most quota days a forecast walks through before it gives up (about 27 years of daily resets).
_MAX_STEPS = 10_000


@dataclass(frozen=True)
class Forecast:
    """When ``calls`` more calls of ``cost`` units each would all have started on ``limiter``, at
    its current budget, and whether a daily quota (or an adapter's reserve) stops them first.

    Made by ``limiter.forecast(n, cost)``, from the state in the limiter's store now: what is
    used, what is booked, pauses, and every member's rule. "Started" is when each call's
    ``acquire`` returns (the executor then starts the call), so the time the last call takes
    to answer is not included. Durations are seconds; datetimes are aware, in the daily quota's
    time zone (UTC without one), and ISO 8601 with their offset in ``repr`` and ``str``.

    >>> from ratewindow import SlidingWindow
    >>> from ratewindow.testing import ManualClock
    >>> SlidingWindow(190, 10.0, name="portal-42", clock=ManualClock()).forecast(3_067)
    Forecast(limiter='portal-42', calls=3067, cost=1, seconds=160.0, done_at='1970-01-01T00:02:40+00:00')
    """

    #: Name of the limiter forecast.
    limiter: str
    #: Calls forecast.
    calls: int
    #: Units each call takes.
    cost: float
    #: Seconds from the forecast until the last call may start, waiting through any reset.
    seconds: float
    #: That moment.
    done_at: dt.datetime
    #: The member whose pace the last call waits for, e.g. ``"window 'portal-42' (190 per 10 s)"``
    #: (in a composite, the slowest); None if no member makes it wait (it starts now, or at a
    #: quota's reset).
    paced_by: str | None = None
    #: The daily quota (or reserve) that runs out before every call has started, e.g.
    #: ``"daily quota 'portal-42' (625,000 per day)"``; None if none does.
    stopped_by: str | None = None
    #: Calls that start before it runs out; None if nothing stops them.
    stopped_after: int | None = None
    #: Seconds until it resets and the next call may start; None if nothing stops them.
    resets_in: float | None = None
    #: That moment; None if nothing stops them.
    resets_at: dt.datetime | None = None

    @property
    def stopped(self) -> bool:
        """True if a quota (or reserve) runs out before every call has started."""
        return self.stopped_by is not None

    def __repr__(self) -> str:
        text = (f"Forecast(limiter={self.limiter!r}, calls={self.calls}, cost={self.cost:g}, "
                f"seconds={self.seconds!r}, done_at={self.done_at.isoformat()!r}")
        if self.stopped_by is not None:
            reset = self.resets_at.isoformat() if self.resets_at is not None else None
            text += (f", stopped_by={self.stopped_by!r}, stopped_after={self.stopped_after}, "
                     f"resets_in={self.resets_in!r}, resets_at={reset!r}")
        return text + ")"

    def __str__(self) -> str:
        unit = "unit" if self.cost == 1 else "units"
        text = (f"{self.calls:,} calls of {self.cost:g} {unit} on {self.limiter!r}: the last starts in "
                f"{duration_text(self.seconds)}, at {self.done_at.isoformat()}")
        if self.paced_by is not None:
            text += f"; paced by {self.paced_by}"
        if self.stopped_by is not None and self.resets_in is not None and self.resets_at is not None:
            text += (f"\n{self.stopped_by} stops them after {self.stopped_after:,} calls; it resets in "
                     f"{duration_text(self.resets_in)}, at {self.resets_at.isoformat()}")
        return text


def duration_text(seconds: float) -> str:
    """``"160 s (2 min 40 s)"``: seconds as given (to the millisecond), with a rounded reading
    in minutes, hours and days when they are at least a minute."""
    exact = f"{seconds:,.3f}".rstrip("0").rstrip(".") + " s"
    if seconds < 60:
        return exact
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")]
    first = next(i for i, (value, _) in enumerate(parts) if value)
    shown = [f"{value} {unit}" for value, unit in parts[first:first + 2] if value]
    return f"{exact} ({' '.join(shown)})"


# -- what the forecast needs from a limiter ------------------------------------------------------
class _Forecastable(Protocol):
    name: str
    _specs: tuple[Spec, ...]
    _store: Store
    _clock: Clock


def _number(value: float) -> str:
    """``625,000`` for whole numbers, ``0.5`` otherwise."""
    return f"{int(value):,}" if value == int(value) else f"{value:g}"


def _label(spec: Spec) -> str:
    if spec.kind == WINDOW:
        return f"window {spec.name!r} ({_number(spec.limit)} per {spec.span - grace_of(spec.clock):g} s)"
    if spec.kind == BUCKET:
        return f"bucket {spec.name!r} ({1.0 / spec.span:g} per s, burst {_number(spec.limit)})"
    return f"daily quota {spec.name!r} ({_number(spec.limit)} per day)"


class _Window:
    """Call j's start (seconds from now) on one sliding window; see the module docstring."""

    def __init__(self, store: Store, spec: Spec, cost: float) -> None:
        self.label = _label(spec)
        self._store = store
        self._spec = spec
        self._cost = cost
        self._per = max(1, int(spec.limit // cost))  # calls per window
        self._span = spec.span
        self._waits: dict[int, float] = {}

    def _wait(self, calls: int) -> float:
        wait = self._waits.get(calls)
        if wait is None:
            wait = self._waits[calls] = self._store.wait_time([self._spec], calls * self._cost)
        return wait

    def time(self, j: int) -> float:
        rounds, r = divmod(j - 1, self._per)
        return self._wait(r + 1) + rounds * self._span

    def empty(self, j: int) -> float:
        return ((j - 1) // self._per) * self._span


class _Bucket:
    """Call j's start (seconds from now) on one token bucket; see the module docstring."""

    def __init__(self, store: Store, spec: Spec, cost: float) -> None:
        self.label = _label(spec)
        self._interval = spec.span
        self._capacity = spec.limit
        self._cost = cost
        self._first = store.wait_time([spec], cost)
        full = store.wait_time([spec], spec.limit)  # max(tat, now, pause) - now
        self._tat = max(full, self._first) + cost * spec.span  # after call 1

    def time(self, j: int) -> float:
        if j == 1:
            return self._first
        later = self._tat + ((j - 2) * self._cost - (self._capacity - self._cost)) * self._interval
        return later if later > self._first else self._first

    def empty(self, j: int) -> float:
        return max(0.0, (j * self._cost - self._capacity) * self._interval)


class _Quota:
    """One daily quota's current day: its end (seconds from now) and the units left in it."""

    def __init__(self, store: Store, spec: Spec, cost: float) -> None:
        assert spec.calendar is not None
        self.label = _label(spec)
        self.calendar: Calendar = spec.calendar
        self.origin = spec.clock.now()  # Unix time of "now" for this quota
        self.per_day = spec.limit
        self.left = max(0.0, spec.limit - store.used(spec))
        self.end = self.calendar.period(self.origin)[1] - self.origin
        self.floor = 0.0  # a pause: no call starts before it
        if self.left >= cost:
            wait = store.wait_time([spec], cost)
            if wait >= self.end:  # already booked into a later day, or paused past the reset
                self.left = 0.0
            else:
                self.floor = wait

    def calls_left(self, cost: float) -> int:
        return int(self.left // cost)

    def move_to(self, t: float) -> None:
        """A new day: the one containing ``t`` (seconds from now), with its whole quota."""
        self.end = self.calendar.period(self.origin + t)[1] - self.origin
        self.left = self.per_day


def _first_at_or_after(time: Callable[[int], float], bound: float, lo: int, hi: int) -> int:
    """The smallest j in [lo, hi] with ``time(j) >= bound`` (``time`` nondecreasing); hi + 1 if none."""
    if lo > hi or time(hi) < bound:
        return hi + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if time(mid) >= bound:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _wall(limiter: _Forecastable, quotas: Sequence[_Quota]) -> tuple[float, dt.tzinfo]:
    """Unix time now, and the zone to show datetimes in. A ``MonotonicClock`` has no date, so the
    wall clock is read then (as the executor does); any other clock gives Unix time."""
    if quotas:
        return quotas[0].origin, quotas[0].calendar.tz
    clock = limiter._clock
    now = WallClock().now() if isinstance(clock, MonotonicClock) else clock.now()
    return now, dt.timezone.utc


def _moment(wall: float, seconds: float, tz: dt.tzinfo) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(wall + seconds, tz)
    except (OverflowError, OSError, ValueError):  # beyond what datetime holds (year 9999)
        return dt.datetime.max.replace(tzinfo=tz)


def forecast(limiter: _Forecastable, n: object, cost: float) -> Forecast:
    """The ``Forecast`` for ``n`` calls of ``cost`` units (already checked) on ``limiter``.

    Raises:
        TypeError, ValueError: ``n`` is not a positive int (named in the message), or the calls
            would need more than 10,000 quota resets (days).
        StoreUnavailable: a shared store could not be reached.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be a positive integer (calls), got {n!r}")
    if n < 1:
        raise ValueError(f"n must be a positive integer (calls), got {n!r}")
    store = limiter._store
    paces: list[_Window | _Bucket] = []
    quotas: list[_Quota] = []
    for spec in limiter._specs:
        if spec.kind == WINDOW:
            paces.append(_Window(store, spec, cost))
        elif spec.kind == BUCKET:
            paces.append(_Bucket(store, spec, cost))
        elif spec.kind == DAILY:
            quotas.append(_Quota(store, spec, cost))
    floor = max((q.floor for q in quotas), default=0.0)
    for quota in quotas:
        if n * cost > _MAX_STEPS * quota.per_day:
            raise ValueError(f"n={n} calls would need more than {_MAX_STEPS:,} quota resets")

    done = 0  # calls placed so far
    base = 0  # calls placed before the current stretch
    restart: float | None = None  # None: paces from the store's state; else from empty at this time

    def at(j: int) -> float:
        k = j - base
        if restart is None:
            t = max((p.time(k) for p in paces), default=0.0)
        else:
            t = restart + max((p.empty(k) for p in paces), default=0.0)
        return t if t >= floor else floor

    stop: tuple[_Quota, int, float] | None = None
    for _ in range(_MAX_STEPS):
        events: list[tuple[int, bool, _Quota]] = []  # (call index, stops, quota)
        for quota in quotas:
            after_reset = _first_at_or_after(at, quota.end, done + 1, n)
            last_today = done + quota.calls_left(cost)
            if last_today < after_reset - 1:  # it runs out before its day ends
                events.append((last_today + 1, True, quota))
            elif after_reset <= n:
                events.append((after_reset, False, quota))
        if not events:
            break
        index = min(event[0] for event in events)
        ran = index - 1 - done  # these start in the current day of every quota
        for quota in quotas:
            quota.left -= ran * cost
        done = index - 1
        stoppers = [quota for i, stops, quota in events if i == index and stops]
        if stoppers:
            resume = max(quota.end for quota in stoppers)
            if stop is None:
                stop = (stoppers[0], done, resume)
            for quota in quotas:
                if quota.end <= resume:
                    quota.move_to(resume)
            base, restart = done, resume
        else:
            moment = at(index)
            for i, _stops, quota in events:
                if i == index:
                    quota.move_to(moment)
    else:
        raise ValueError(f"n={n} calls would need more than {_MAX_STEPS:,} quota resets")

    seconds = at(n)
    k = n - base
    paced_by = None
    if paces:
        times = [p.time(k) if restart is None else p.empty(k) for p in paces]
        if max(times) > 0:
            paced_by = paces[times.index(max(times))].label
    wall, tz = _wall(limiter, quotas)
    result = Forecast(limiter.name, n, cost, seconds, _moment(wall, seconds, tz), paced_by)
    if stop is None:
        return result
    quota, before, resume = stop
    return Forecast(limiter.name, n, cost, seconds, result.done_at, paced_by, quota.label, before, resume,
                    _moment(wall, resume, tz))

