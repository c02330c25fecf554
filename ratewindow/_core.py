"""The decision core: pure Python, no locks, no I/O, no clocks of its own.

A store holds one *state* per limiter key and asks :func:`decide` for a verdict. The rule, for a
request of ``cost`` units on members L1..Lk with their current times now_1..now_k:

    each member i has e_i, the earliest time >= now_i at which ``cost`` fits (taking bookings,
    pauses and FIFO order into account); the delay is d = max_i(e_i - now_i). If d <= max_wait,
    ``cost`` is recorded on every member at max(now_i + d, e_i); otherwise nothing is recorded.

Every member's set of feasible times is upward closed (bookings are never placed before the last
one, and recorded units only ever expire), so the composite decision is exact and all-or-nothing.
The SQLite store runs this same code inside a transaction; the Redis Lua script is a port of it.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Union

from ratewindow._calendar import Calendar
from ratewindow._clock import Clock

__all__ = [
    "BUCKET",
    "DAILY",
    "WINDOW",
    "BucketState",
    "DailyState",
    "Grant",
    "Spec",
    "State",
    "WindowState",
    "available",
    "cancel",
    "confirm",
    "decide",
    "new_state",
    "pause",
    "used",
]

WINDOW = "window"
BUCKET = "bucket"
DAILY = "daily"
_NEG_INF = -math.inf


@dataclass(frozen=True, eq=False)
class Spec:
    """What a store needs to know about one limiter. Built by the limiters; immutable.

    ``limit`` is the window's or day's limit, or the bucket's capacity (units). ``span`` is, for a
    window, the seconds each unit is held (window + margin); for a bucket, the seconds per unit
    (1 / rate); for a daily quota, 0.
    """

    kind: str
    key: str
    name: str
    limit: float
    span: float
    clock: Clock
    calendar: Calendar | None = None


class Grant(NamedTuple):
    """A store's verdict. ``delay`` is seconds from the decision until the grant time."""

    granted: bool
    delay: float
    #: Per member, the time the cost was recorded at and an auxiliary value; None if not recorded.
    stamp: tuple[tuple[float, float], ...] | None = None


class WindowState:
    """An exact sliding log: one entry per acquisition, kept as times and cumulative costs.

    ``cums[i]`` is the total cost recorded up to and including entry i; ``base`` the total before
    the first live entry (``head``). Expired entries are dropped from the front (amortised O(1));
    finding the entry whose expiry makes room is a binary search.
    """

    __slots__ = ("base", "cums", "head", "hold", "times", "total")

    def __init__(self) -> None:
        self.times: list[float] = []
        self.cums: list[float] = []
        self.head = 0
        self.base = 0.0
        self.total = 0.0
        self.hold = _NEG_INF

    def prune(self, now: float, span: float) -> None:
        """Forget entries that no longer count at ``now`` (entry t counts while t + span > now)."""
        times = self.times
        head = self.head
        n = len(times)
        if head < n and times[head] + span <= now:
            while head < n and times[head] + span <= now:
                head += 1
            self.base = self.cums[head - 1]
            if head > 32 and head * 2 > n:
                del times[:head]
                del self.cums[:head]
                head = 0
            self.head = head

    def take(self, now: float, cost: float, limit: float, span: float) -> bool:
        """Record ``cost`` at ``now`` if it fits now (the ``try_acquire`` fast path)."""
        times = self.times
        if self.head < len(times):
            if times[self.head] + span <= now:
                self.prune(now, span)
            if self.head < len(times) and times[-1] > now:  # booked ahead of us: first come, first served
                return False
        if self.hold > now or self.total - self.base + cost > limit:
            return False
        self.total += cost
        times.append(now)
        self.cums.append(self.total)
        return True

    def fits(self, now: float, cost: float, limit: float, span: float) -> bool:
        """Whether ``cost`` could be recorded at ``now`` (prunes, records nothing)."""
        times = self.times
        if self.head < len(times):
            if times[self.head] + span <= now:
                self.prune(now, span)
            if self.head < len(times) and times[-1] > now:
                return False
        return self.hold <= now and self.total - self.base + cost <= limit

    def put(self, now: float, cost: float, param: float) -> None:
        self.total += cost
        self.times.append(now)
        self.cums.append(self.total)

    def earliest(self, now: float, cost: float, limit: float, span: float) -> float:
        self.prune(now, span)
        times = self.times
        n = len(times)
        if self.head == n:
            base = now
        else:
            last = times[-1]
            base = last if last > now else now
            if self.total - self.base + cost > limit:
                k = bisect_left(self.cums, self.total - (limit - cost), self.head, n)
                free = times[k] + span
                if free > base:
                    base = free
        return base if base >= self.hold else self.hold

    def record(self, at: float, cost: float) -> float:
        self.total += cost
        self.times.append(at)
        self.cums.append(self.total)
        return 0.0

    def unrecord(self, at: float, cost: float, aux: float) -> None:
        times = self.times
        for i in range(len(times) - 1, self.head - 1, -1):
            if times[i] == at:
                before = self.cums[i - 1] if i > self.head else self.base
                if self.cums[i] - before == cost:
                    del times[i]
                    del self.cums[i]
                    for j in range(i, len(self.cums)):
                        self.cums[j] -= cost
                    self.total -= cost
                    return
            elif times[i] < at:
                return

    def find(self, at: float, cost: float) -> int:
        """Index of a live entry recorded at ``at`` for ``cost``; -1 if none (entries of the same
        time and cost are interchangeable)."""
        times, cums = self.times, self.cums
        i = bisect_left(times, at, self.head)
        n = len(times)
        while i < n and times[i] == at:
            if cums[i] - (cums[i - 1] if i > self.head else self.base) == cost:
                return i
            i += 1
        return -1

    def confirm_wait(self, now: float, at: float, cost: float, limit: float, span: float) -> float:
        """Seconds until the grant recorded at ``at`` may be confirmed at ``now`` (0.0: now).

        It may when the units recorded at or before ``now`` within the last ``span`` seconds,
        this grant's included, are at most ``limit`` (entries booked later are not counted: they
        confirm in their turn). A grant that already expired from the log is counted as new.
        """
        if at > now:  # not due yet (another clock's reading): never earlier than booked
            return at - now
        self.prune(now, span)
        times, cums, head = self.times, self.cums, self.head
        j = bisect_right(times, now, head)
        in_window = (cums[j - 1] if j > head else self.base) - self.base
        if self.find(at, cost) < 0:
            in_window += cost
        wait = self.hold - now
        if in_window > limit:  # wait until enough of the oldest units expire
            k = bisect_left(cums, self.base + (in_window - limit), head, j)
            free = times[k] + span - now
            if free > wait:
                wait = free
        return wait if wait > 0 else 0.0

    def confirm(self, now: float, at: float, cost: float) -> None:
        """Move the grant recorded at ``at`` to ``now``, when its caller actually starts (after
        ``confirm_wait`` said 0.0); a grant that expired from the log is recorded anew."""
        times, cums, head = self.times, self.cums, self.head
        j = bisect_right(times, now, head)
        i = self.find(at, cost)
        if i < 0:  # recorded anew at now: the later entries' cumulative costs grow by cost
            before = cums[j - 1] if j > head else self.base
            times.insert(j, now)
            cums.insert(j, before + cost)
            for k in range(j + 1, len(cums)):
                cums[k] += cost
            self.total += cost
            return
        if i == j - 1:  # nothing recorded between: move in place
            times[i] = now
            return
        # entries i+1 .. j-1 move down one place and ours goes last
        del times[i]
        times.insert(j - 1, now)
        if cums[j - 1] - cums[i] == cost * (j - 1 - i):
            return  # they all cost what ours does: every cumulative cost stays as it is
        del cums[i]
        for k in range(i, j - 1):  # each of them counts cost less before it
            cums[k] -= cost
        cums.insert(j - 1, (cums[j - 2] if j - 2 >= head else self.base) + cost)

    def used(self, now: float, span: float) -> float:
        self.prune(now, span)
        return self.total - self.base

    def available(self, now: float, limit: float, span: float) -> float:
        self.prune(now, span)
        if self.hold > now or (self.head < len(self.times) and self.times[-1] > now):
            return 0.0
        return limit - (self.total - self.base)


class BucketState:
    """A token bucket as one number, the theoretical arrival time (GCRA).

    With ``interval`` = 1 / rate seconds per unit, tokens at time t are
    ``capacity - max(0, tat - t) / interval``; a cost fits at s iff max(tat, s) + cost * interval - s
    <= capacity * interval. Bookings only push ``tat`` forward, so order is first come, first served.
    """

    __slots__ = ("hold", "tat")

    def __init__(self) -> None:
        self.tat = _NEG_INF
        self.hold = _NEG_INF

    def take(self, now: float, cost: float, capacity: float, interval: float) -> bool:
        """Record ``cost`` at ``now`` if it fits now (the ``try_acquire`` fast path)."""
        tat = self.tat if self.tat > now else now
        if tat - (capacity - cost) * interval > now or self.hold > now:
            return False
        self.tat = tat + cost * interval
        return True

    def fits(self, now: float, cost: float, capacity: float, interval: float) -> bool:
        """Whether ``cost`` could be recorded at ``now``."""
        tat = self.tat if self.tat > now else now
        return tat - (capacity - cost) * interval <= now and self.hold <= now

    def put(self, now: float, cost: float, interval: float) -> None:
        self.tat = (self.tat if self.tat > now else now) + cost * interval

    def earliest(self, now: float, cost: float, capacity: float, interval: float) -> float:
        fits = self.tat - (capacity - cost) * interval
        base = fits if fits > now else now
        return base if base >= self.hold else self.hold

    def available(self, now: float, capacity: float, interval: float) -> float:
        if self.hold > now:
            return 0.0
        debt = self.tat - now
        if debt <= 0:
            return capacity
        level = capacity - debt / interval
        return level if level > 0 else 0.0


class DailyState:
    """One counter for the current local day: O(1) memory whatever the limit."""

    __slots__ = ("count", "hold", "start")

    def __init__(self) -> None:
        self.start = _NEG_INF
        self.count = 0.0
        self.hold = _NEG_INF

    def take(self, now: float, cost: float, limit: float, calendar: Calendar) -> bool:
        """Record ``cost`` at ``now`` if it fits now (the ``try_acquire`` fast path)."""
        start = calendar.period(now)[0]
        if self.hold > now or self.start > start:
            return False
        if self.start == start:
            if self.count + cost > limit:
                return False
            self.count += cost
            return True
        if cost > limit:
            return False
        self.start = start
        self.count = cost
        return True

    def fits(self, now: float, cost: float, limit: float, calendar: Calendar) -> bool:
        """Whether ``cost`` could be recorded at ``now``."""
        start = calendar.period(now)[0]
        if self.hold > now or self.start > start:
            return False
        return (self.count if self.start == start else 0.0) + cost <= limit

    def put(self, now: float, cost: float, calendar: Calendar) -> None:
        self.record(now, cost, calendar)

    def earliest(self, now: float, cost: float, limit: float, calendar: Calendar) -> float:
        start, end = calendar.period(now)
        if self.start > start:  # already booked into a later day: queue behind that booking
            base = self.start
            end = calendar.period(base)[1]
            in_use = self.count
        else:
            base = now
            in_use = self.count if self.start == start else 0.0
        if in_use + cost > limit:
            base = end
        return base if base >= self.hold else self.hold

    def record(self, at: float, cost: float, calendar: Calendar) -> float:
        start = calendar.period(at)[0]
        if start == self.start:
            self.count += cost
        else:
            self.start = start
            self.count = cost
        return start

    def used(self, now: float, calendar: Calendar) -> float:
        start = calendar.period(now)[0]
        return self.count if self.start == start else 0.0

    def available(self, now: float, limit: float, calendar: Calendar) -> float:
        start = calendar.period(now)[0]
        if self.hold > now or self.start > start:
            return 0.0
        return limit - (self.count if self.start == start else 0.0)


State = Union[WindowState, BucketState, DailyState]  # noqa: UP007 (a runtime alias on 3.10)


def new_state(kind: str) -> State:
    """A fresh state for a limiter of ``kind``."""
    if kind == WINDOW:
        return WindowState()
    if kind == BUCKET:
        return BucketState()
    if kind == DAILY:
        return DailyState()
    raise ValueError(f"unknown limiter kind {kind!r}")


def _earliest(spec: Spec, state: State, now: float, cost: float) -> float:
    # isinstance, not type(): the SQLite store passes a WindowState subclass that reads its log from SQL.
    if isinstance(state, WindowState):
        return state.earliest(now, cost, spec.limit, spec.span)
    if type(state) is BucketState:
        return state.earliest(now, cost, spec.limit, spec.span)
    assert type(state) is DailyState and spec.calendar is not None
    return state.earliest(now, cost, spec.limit, spec.calendar)


def _record(spec: Spec, state: State, at: float, cost: float) -> float:
    if isinstance(state, WindowState):
        return state.record(at, cost)
    if type(state) is BucketState:
        previous = state.tat
        state.tat = (previous if previous > at else at) + cost * spec.span
        return previous
    assert type(state) is DailyState and spec.calendar is not None
    return state.record(at, cost, spec.calendar)


def decide(
    specs: Sequence[Spec],
    states: Sequence[State],
    nows: Sequence[float],
    cost: float,
    max_wait: float | None,
    commit: bool = True,
) -> Grant:
    """Decide one request all-or-nothing; see the module docstring.

    ``max_wait`` is in seconds (0.0: only now; None: however long). With ``commit=False`` nothing
    is recorded and the returned delay is the exact wait (``wait_time``).
    """
    if len(specs) == 1:
        spec = specs[0]
        now = nows[0]
        state = states[0]
        at = _earliest(spec, state, now, cost)
        delay = at - now
        if not commit or (max_wait is not None and delay > max_wait):
            return Grant(not commit or max_wait is None or delay <= max_wait, delay, None)
        return Grant(True, delay, ((at, _record(spec, state, at, cost)),))
    earliest = [_earliest(spec, state, now, cost) for spec, state, now in zip(specs, states, nows)]
    delay = max(at - now for at, now in zip(earliest, nows))
    if not commit or (max_wait is not None and delay > max_wait):
        return Grant(not commit or max_wait is None or delay <= max_wait, delay, None)
    stamp = []
    for spec, state, now, first in zip(specs, states, nows, earliest):
        at = now + delay
        if at < first:  # rounding: never record before the member's own earliest time
            at = first
        stamp.append((at, _record(spec, state, at, cost)))
    return Grant(True, delay, tuple(stamp))


def cancel(
    specs: Sequence[Spec], states: Sequence[State], cost: float, stamp: tuple[tuple[float, float], ...]
) -> None:
    """Undo a recorded, still unused grant. Exact when it is the latest booking on a member."""
    for spec, state, (at, aux) in zip(specs, states, stamp):
        if isinstance(state, WindowState):
            state.unrecord(at, cost, aux)
        elif type(state) is BucketState:
            booked = (aux if aux > at else at) + cost * spec.span
            state.tat = aux if state.tat == booked else state.tat - cost * spec.span
        elif type(state) is DailyState and state.start == aux:
            state.count -= cost


def confirm(
    specs: Sequence[Spec],
    states: Sequence[State],
    nows: Sequence[float],
    cost: float,
    stamp: tuple[tuple[float, float], ...],
) -> Grant:
    """Confirm a grant when its caller resumes. Granted (delay 0.0, with the new stamp) if every
    window member allows its units to count from now: they are moved there. Otherwise not granted,
    ``delay`` the seconds to wait before confirming again, and nothing is changed. Buckets and
    daily quotas have nothing to confirm.
    """
    wait = 0.0
    for spec, state, now, (at, _) in zip(specs, states, nows, stamp):
        if isinstance(state, WindowState):
            member = state.confirm_wait(now, at, cost, spec.limit, spec.span)
            if member > wait:
                wait = member
    if wait > 0:
        return Grant(False, wait, None)
    moved = []
    for state, now, (at, aux) in zip(states, nows, stamp):
        if isinstance(state, WindowState):
            state.confirm(now, at, cost)
            at = now
        moved.append((at, aux))
    return Grant(True, 0.0, tuple(moved))


def pause(states: Sequence[State], until: Sequence[float]) -> None:
    """Grant nothing on these members before ``until`` (one time per member, in its clock)."""
    for state, at in zip(states, until):
        if at > state.hold:
            state.hold = at


def used(spec: Spec, state: State, now: float) -> float:
    """Units counted now: in the window, or today; for a bucket, the tokens left."""
    if isinstance(state, WindowState):
        return state.used(now, spec.span)
    if type(state) is BucketState:
        return state.available(now, spec.limit, spec.span)
    assert type(state) is DailyState and spec.calendar is not None
    return state.used(now, spec.calendar)


def available(spec: Spec, state: State, now: float) -> float:
    """Units that could be granted at ``now`` without waiting."""
    if isinstance(state, WindowState):
        return state.available(now, spec.limit, spec.span)
    if type(state) is BucketState:
        return state.available(now, spec.limit, spec.span)
    assert type(state) is DailyState and spec.calendar is not None
    return state.available(now, spec.limit, spec.calendar)
