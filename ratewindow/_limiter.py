"""What every limiter offers: the ``Limiter`` protocol, ``Reservation``, and their shared body."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

from ratewindow._clock import Clock, grace_of
from ratewindow._core import WINDOW, Grant, Spec
from ratewindow._errors import AcquireTimeout
from ratewindow._forecast import Forecast, forecast
from ratewindow._keyed import KeyedHandles
from ratewindow._loops import LoopLocks
from ratewindow._validate import check_name
from ratewindow.stores._protocol import Store

__all__ = ["Limiter", "Observer", "Reservation"]

F = TypeVar("F", bound=Callable[..., Any])
L = TypeVar("L", bound="_BaseLimiter")
Stamp = tuple[tuple[float, float], ...]
#: Confirmations of one grant in a row whose answers came back later than the grace; past them
#: the grant stands (a machine that slow is one ``margin`` is for).
_CONFIRMS = 4
#: Seconds a store that can bound a call (``RedisStore``) gets to take back the booking of a caller
#: that was interrupted (Ctrl-C, a cancelled task, an expired timeout): the booking expires anyway,
#: and the caller's own exception must not wait for a store that cannot be reached.
_GIVE_BACK = 0.05

log = logging.getLogger("ratewindow")


def _takes_within(store: object) -> bool:
    """Whether the store's ``cancel`` takes ``within=`` (seconds the call may take in all), and so
    do its ``cancel_async``, ``confirm`` and ``confirm_async`` (``RedisStore`` does). Read from the
    method's code, not ``inspect.signature``: every limiter (every ``for_key``) asks once."""
    code = getattr(getattr(type(store), "cancel", None), "__code__", None)
    if code is None:  # not a plain Python method: call it as the Store protocol says
        return False
    return "within" in code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]


@runtime_checkable
class Observer(Protocol):
    """Told about a limiter's decisions, e.g. to export metrics (``ratewindow.metrics``,
    ``ratewindow.otel``); ``limiter.observe(observer)`` attaches one. Keep the methods fast: they
    run on the caller's thread after every decision.

    Every grant is told exactly once, by whichever path took it, when its units become the
    caller's, that is when the caller may start its request:

    - ``try_acquire``: at once, ``waited`` 0.0; a refusal is told as ``granted=False``.
    - ``acquire`` and ``acquire_async`` (and so the decorator, ``with``, ``ratewindow.http`` and
      the adapters' clients): when the grant is confirmed, ``waited`` being the seconds they
      return. A wait longer than ``timeout`` is told once as a refusal; a wait cut short by an
      exception (Ctrl-C, a cancelled task) gives the booking back and is not told.
    - ``reserve``: nothing at booking. The grant is told when the reservation is confirmed:
      ``wait`` and ``wait_async`` tell the seconds they slept, ``confirm`` and ``confirm_async``
      (returning 0.0) the seconds from the booking until then (0.0 if it never had to wait).
      Confirming again tells nothing more. A reservation cancelled, or never confirmed, is not
      a grant and is never told.
    - The executors take one permit per attempt, so a retried call is told once per attempt (and
      twice when a pause began while it waited: it takes a fresh permit, the first stays spent);
      a permit further away than their ``max_wait`` is told as a refusal.

    An observer may also have ``on_response(limiter: str, refused: bool) -> None``, called for
    every response to a request made under the limiter by the executors, ``ratewindow.http`` and
    the adapters' clients, ``refused`` when the server refused it for its rate limit (HTTP 429,
    Salesforce's ``REQUEST_LIMIT_EXCEEDED``): the error budget. Observers without it keep
    working."""

    def on_acquire(self, limiter: str, cost: float, granted: bool, waited: float) -> None:
        """A request for ``cost`` units was granted (after ``waited`` seconds) or refused; see
        above for when each path tells it."""
        ...

    def on_pause(self, limiter: str, seconds: float) -> None:
        """The limiter was paused for ``seconds`` seconds (a rate-limit response from the server)."""
        ...


@runtime_checkable
class Limiter(Protocol):
    """The interface shared by ``SlidingWindow``, ``TokenBucket``, ``DailyQuota`` and ``Limits``.

    Costs are in units of the limit (usually requests); times in seconds.
    """

    name: str

    def try_acquire(self, cost: int = 1) -> bool:
        """Take ``cost`` units now if they fit; never waits."""
        ...

    def acquire(self, cost: int = 1, timeout: float | None = None) -> float:
        """Take ``cost`` units, waiting as long as needed; returns the seconds waited."""
        ...

    async def acquire_async(self, cost: int = 1, timeout: float | None = None) -> float:
        """``acquire`` for asyncio: waits without blocking the event loop."""
        ...

    def wait_time(self, cost: int = 1) -> float:
        """Exact seconds until ``cost`` could be granted; 0.0 if now. No side effect."""
        ...

    def reserve(self, cost: int = 1) -> Reservation:
        """Book ``cost`` units at the earliest time they fit."""
        ...

    def available(self) -> float:
        """Units that could be taken now without waiting."""
        ...

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` seconds, for every user of the same store."""
        ...


class Reservation:
    """A grant booked at the earliest time it fits: use it after ``delay`` seconds, or cancel it.

    A booked grant counts from its booked time, but the API's server counts a request from when
    it starts, and a thread or task resumes later than booked (the scheduler, the GIL, an event
    loop busy with other tasks). So a reservation is *confirmed* when its caller resumes
    (``wait``, ``confirm``): its units then count from that moment, and if callers that resumed
    late meanwhile still fill the window, it waits for them to expire first. ``acquire`` and
    ``acquire_async`` do the same, so what the server sees never exceeds the limit.

    >>> from ratewindow import SlidingWindow
    >>> from ratewindow.testing import ManualClock
    >>> limiter = SlidingWindow(1, 10.0, clock=ManualClock())
    >>> limiter.reserve().delay, limiter.reserve().delay
    (0.0, 10.0)
    """

    __slots__ = ("_asked", "_cancelled", "_confirmed", "_limiter", "_needs", "_ready_at", "_stamp", "_told",
                 "_waits", "cost", "delay")

    def __init__(self, limiter: _BaseLimiter, cost: float, delay: float, stamp: Stamp | None,
                 asked: float | None = None) -> None:
        #: Units booked.
        self.cost = cost
        #: Seconds from the booking until the units may be used.
        self.delay = delay
        self._limiter = limiter
        self._stamp = stamp
        now = limiter._clock.now()
        self._ready_at = now + delay
        self._asked = now if asked is None else asked  # when the booking was asked for
        self._cancelled = False
        self._confirmed = False  # the units are the caller's: confirmed, or due when nothing to confirm
        self._needs = stamp is not None and limiter._confirms  # a window member: confirm when used
        self._told = False  # the grant was told to the limiter's observers (once, when confirmed)
        self._waits = delay > 0  # the caller had to wait for the units (else a grant tells 0.0 s)

    def remaining(self) -> float:
        """Seconds left until the reservation may be used (0.0 once it may)."""
        return max(0.0, self._ready_at - self._limiter._clock.now())

    def _check(self) -> float:
        if self._cancelled:
            raise RuntimeError("this reservation was cancelled")
        return self.remaining()

    def _on_time(self, now: float) -> bool:
        """A grant for the moment of the booking, used within the clock's grace of asking for it:
        the decision itself confirmed it (no booking was ahead, so it counted every unit that
        can count at the start)."""
        if self.delay <= 0 and self._limiter._answered(now - self._asked):
            self._confirmed = True
            return True
        return False

    def _ready(self) -> float | None:
        """Seconds to wait first, 0.0 if the units are already the caller's, or None if the store
        must confirm them."""
        left = self._check()
        if left > 0 or self._confirmed:
            return left
        if not self._needs or self._on_time(self._limiter._clock.now()):
            self._confirmed = True
            return 0.0
        return None

    def _took(self, grant: Grant, asked: float) -> float | None:
        """After a confirmation asked for at ``asked``: seconds to wait (not granted), 0.0 if the
        units are the caller's, or None to confirm again: the answer came back later than the
        clock's grace, so the units would count from before the request's start."""
        if not grant.granted:
            return grant.delay
        self._stamp = grant.stamp or self._stamp  # where the units count from now
        if self._limiter._answered(self._limiter._clock.now() - asked):
            self._confirmed = True
            return 0.0
        return None

    def _stamped(self) -> Stamp:
        assert self._stamp is not None  # _ready() returned None: a booking with a window member
        return self._stamp

    def _grant(self, waited: float | None) -> None:
        """Tell the limiter's observers, once, that the units are the caller's after ``waited``
        seconds (None: the seconds since the booking, or 0.0 if the caller never had to wait)."""
        if self._told:
            return
        self._told = True
        limiter = self._limiter
        if limiter._observers:
            if waited is None:
                waited = max(0.0, limiter._clock.now() - self._asked) if self._waits else 0.0
            limiter._notify(self.cost, True, waited)

    def _refused(self) -> None:
        """Tell the limiter's observers that these units were refused: the caller will not wait
        this long (and gives them back)."""
        limiter = self._limiter
        if limiter._observers:
            limiter._notify(self.cost, False, 0.0)

    def _confirmed_after(self, left: float) -> float:
        """``left`` from a confirmation; a grant (0.0) is told to the observers once."""
        if left > 0:
            self._waits = True
        else:
            self._grant(None)
        return left

    def confirm(self) -> float:
        """Take the booked units now, as the caller starts using them (a store round trip).

        Returns 0.0 when they are the caller's from now on: start the request right away (the
        grant is then told to the limiter's observers, once; see ``Observer``). Else the seconds
        to wait before calling again: the booked time has not come (``remaining()``), or callers
        that resumed late still fill the window, or the limiter was paused. An answer that comes
        back later than the clock's grace (a busy machine) is confirmed again, so the units count
        from within the grace of the request's start.

        Raises:
            RuntimeError: the reservation was cancelled.
            StoreUnavailable: a shared store could not be reached.
        """
        return self._confirmed_after(self._confirm(None))

    def _confirm(self, within: float | None) -> float:
        """``confirm`` without telling the observers; a store that can bound its call takes at
        most ``within`` seconds (None: its own)."""
        left = self._ready()
        if left is not None:
            return left
        limiter = self._limiter
        for _ in range(_CONFIRMS):
            asked = limiter._clock.now()
            left = self._took(limiter._confirm_call(self.cost, self._stamped(), within), asked)
            if left is not None:
                return left
        self._confirmed = True
        return 0.0

    async def confirm_async(self) -> float:
        """``confirm`` without blocking the event loop. Raises as ``confirm``."""
        left = self._ready()
        if left is None:
            # One event loop runs its tasks one at a time: answers to many confirmations sent at
            # once come back together and the last task resumes long after its answer was
            # decided. One confirmation in flight per loop keeps each answer close to the start
            # it allows.
            async with self._limiter._confirming.get():
                left = await self._confirm_held(None)
        return self._confirmed_after(left)

    async def _confirm_held(self, within: float | None) -> float:
        """``confirm_async`` for a caller that holds its loop's confirmation lock; a store that can
        bound its call takes at most ``within`` seconds (None: its own)."""
        left = self._ready()
        if left is not None:
            return left
        limiter = self._limiter
        for _ in range(_CONFIRMS):
            asked = limiter._clock.now()
            grant = await limiter._confirm_call_async(self.cost, self._stamped(), within)
            left = self._took(grant, asked)
            if left is not None:
                return left
        self._confirmed = True
        return 0.0

    async def _settle_async(self, asked: float, timeout: float | None) -> float:
        """Sleep until due, then confirm, waiting out late callers' units while holding the
        loop's confirmation lock: the tasks of one loop confirm first come, first served instead
        of all waking again together. Returns the seconds the caller was held since ``asked``
        (see ``_BaseLimiter._held``).

        Raises:
            AcquireTimeout: the total wait would exceed ``timeout`` seconds.
        """
        limiter = self._limiter
        clock = limiter._clock
        slept = self.remaining()
        if slept > 0:
            await clock.asleep(slept)
        if self._ready() is not None:
            return limiter._held(asked, slept)
        async with limiter._confirming.get():
            while True:
                within = None if timeout is None else max(0.0, timeout - limiter._held(asked, slept))
                more = await self._confirm_held(within)
                held = limiter._held(asked, slept)
                if more <= 0:
                    return held
                if timeout is not None and held + more > timeout:
                    self._refused()
                    raise AcquireTimeout(held + more, limiter.name, timeout)
                await clock.asleep(more)
                slept += more

    def wait(self) -> float:
        """Sleep until the reservation may be used and confirm it (see ``confirm``); returns the
        seconds slept, which the grant tells the limiter's observers. Start the request as soon
        as it returns.

        Raises:
            RuntimeError: the reservation was cancelled.
            StoreUnavailable: a shared store could not be reached.
        """
        slept = 0.0
        while True:
            left = self._confirm(None)
            if left <= 0:
                self._grant(slept)
                return slept
            self._limiter._clock.sleep(left)
            slept += left

    async def wait_async(self) -> float:
        """``wait`` without blocking the event loop. Raises as ``wait``."""
        slept = await self._settle_async(self._limiter._clock.now(), None)
        self._grant(slept)
        return slept

    def _cancellable(self) -> Stamp | None:
        """The stamp to give back with, if the units are still unused."""
        if self._cancelled or self._confirmed or self._stamp is None:
            return None
        if not self._needs and self.remaining() <= 0:  # without a window, used once its time came
            return None
        return self._stamp

    def cancel(self) -> bool:
        """Give the booked units back if they are still unused; True if anything was given back.

        Restores the limiter's state exactly when no later booking was made on top of this one.
        A reservation is unused until it is confirmed (``wait``, ``confirm``).
        """
        stamp = self._cancellable()
        if stamp is None:
            return False
        self._cancelled = True
        self._limiter._store.cancel(self._limiter._specs, self.cost, stamp)
        return True

    async def cancel_async(self) -> bool:
        """``cancel`` without blocking the event loop."""
        stamp = self._cancellable()
        if stamp is None:
            return False
        self._cancelled = True
        await self._limiter._store.cancel_async(self._limiter._specs, self.cost, stamp)
        return True

    def _give_back(self) -> None:
        """``cancel`` for a caller that was interrupted, on a best-effort basis: a store that can
        bound its call gets ``_GIVE_BACK`` seconds, and a failure is logged at DEBUG, never raised
        in place of the caller's exception (the booking then counts until it expires, as an
        unused booking does)."""
        stamp = self._cancellable()
        if stamp is None:
            return
        self._cancelled = True
        limiter = self._limiter
        store: Any = limiter._store
        try:
            if limiter._within:
                store.cancel(limiter._specs, self.cost, stamp, within=_GIVE_BACK)
            else:
                store.cancel(limiter._specs, self.cost, stamp)
        except Exception as exc:
            self._not_given_back(exc)

    async def _give_back_async(self) -> None:
        """``_give_back`` without blocking the event loop."""
        stamp = self._cancellable()
        if stamp is None:
            return
        self._cancelled = True
        limiter = self._limiter
        store: Any = limiter._store
        try:
            if limiter._within:
                await store.cancel_async(limiter._specs, self.cost, stamp, within=_GIVE_BACK)
            else:
                await store.cancel_async(limiter._specs, self.cost, stamp)
        except Exception as exc:
            self._not_given_back(exc)

    def _not_given_back(self, exc: Exception) -> None:
        log.debug("ratewindow: a booking of %g on %r was not given back (%s: %s); it counts until it "
                  "expires", self.cost, self._limiter.name, type(exc).__name__, exc)

    def __repr__(self) -> str:
        if self._cancelled:
            state = "cancelled"
        elif self._confirmed and self.delay > 0:
            state = "confirmed"
        else:
            state = f"delay={self.delay:.6g}"
        return f"Reservation(cost={self.cost!r}, {state}, limiter={self._limiter.name!r})"


class _BaseLimiter:
    """The shared body of every limiter; subclasses set the fields in ``_setup``."""

    name: str
    _specs: tuple[Spec, ...]
    _store: Store
    _clock: Clock
    _max_cost: float
    _int_cost: bool

    def _setup(self, name: str, specs: Sequence[Spec], store: Store, clock: Clock, max_cost: float,
               int_cost: bool) -> None:
        self.name = check_name("name", name)
        self._specs = tuple(specs)
        self._store = store
        self._clock = clock
        self._max_cost = max_cost
        self._int_cost = int_cost
        #: Seconds from a store's "go" within which a caller counts as starting then.
        self._grace = grace_of(clock)
        # The store's usual round trip, seconds: the least seen, creeping up slowly (a store far
        # away answers late every time, and confirming again would not help; see _answered).
        self._round_trip = 0.0
        # Only a window's units count from when they are used; buckets and quotas need no confirming.
        self._confirms = any(spec.kind == WINDOW for spec in self._specs)
        #: Whether the store's confirm and cancel take ``within=`` (a bound on their time).
        self._within = _takes_within(store)
        self._observers: tuple[Observer, ...] = ()
        self._keyed: KeyedHandles[_BaseLimiter] | None = None  # built by the first for_key
        self._confirming = LoopLocks()  # one confirmation in flight per event loop (confirm_async)
        bind = getattr(store, "bind_try", None)  # an optional store fast path (MemoryStore has one)
        self._fast: Callable[[float], bool] | None = bind(self._specs) if bind is not None else None

    def _answered(self, elapsed: float) -> bool:
        """Whether a store's "go" that took ``elapsed`` seconds from asking to arriving still
        counts as given when the caller starts: within the clock's grace, beyond twice the
        store's usual round trip (which only ``margin`` can cover). Learns that round trip."""
        usual = self._round_trip
        self._round_trip = elapsed if elapsed < usual else usual + (elapsed - usual) / 64
        return elapsed <= self._grace + 2 * usual

    def _cost(self, cost: object) -> float:
        if isinstance(cost, bool) or not isinstance(cost, (int, float)):
            kind = "integer" if self._int_cost else "number"
            raise TypeError(f"cost must be a positive {kind}, got {cost!r}")
        if self._int_cost and not isinstance(cost, int):
            raise TypeError(f"cost must be a positive integer, got {cost!r}")
        if not cost > 0 or math.isinf(cost):
            raise ValueError(f"cost must be > 0 and finite, got {cost!r}")
        if cost > self._max_cost:
            raise ValueError(
                f"cost {cost!r} exceeds {self._max_cost:g}, the most limiter {self.name!r} can ever grant"
            )
        return cost

    def _confirm_call(self, cost: float, stamp: Stamp, within: float | None) -> Grant:
        """The store's ``confirm``, bounded to ``within`` seconds where the store can be."""
        store: Any = self._store
        if within is not None and self._within:
            return cast(Grant, store.confirm(self._specs, cost, stamp, within=within))
        return self._store.confirm(self._specs, cost, stamp)

    async def _confirm_call_async(self, cost: float, stamp: Stamp, within: float | None) -> Grant:
        """``_confirm_call`` without blocking the event loop."""
        store: Any = self._store
        if within is not None and self._within:
            return cast(Grant, await store.confirm_async(self._specs, cost, stamp, within=within))
        return await self._store.confirm_async(self._specs, cost, stamp)

    def _held(self, asked: float, slept: float) -> float:
        """Seconds a caller has been held since it asked at ``asked``: the ``slept`` seconds it
        slept, or the clock's own measure when the store's round trips made the wait notably
        longer (a slow or stalled server). On a clock without grace (``ManualClock``), ``slept``."""
        if self._grace > 0:
            held = self._clock.now() - asked
            if held > slept + self._grace:
                return held
        return slept

    @staticmethod
    def _timeout(timeout: object) -> float | None:
        if timeout is None:
            return None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
            raise ValueError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
        if timeout < 0:
            raise ValueError(f"timeout must be None or a number of seconds >= 0, got {timeout!r}")
        return float(timeout)

    # -- taking permits ---------------------------------------------------------------------
    def try_acquire(self, cost: int = 1) -> bool:
        """Take ``cost`` units now if they fit (and nobody is queued ahead); never waits.

        On a shared store it takes one round trip, within a short budget (``RedisStore``: 0.25 s
        in all, retries included, however long the server stalls).

        Raises:
            ValueError, TypeError: ``cost`` is not a positive number the limiter can ever grant.
            StoreUnavailable: a shared store could not be reached.
        """
        fast = self._fast
        if fast is not None and (cost.__class__ is int or (cost.__class__ is float and not self._int_cost)) \
                and 0 < cost <= self._max_cost:
            granted = fast(cost)
        else:
            granted = self._store.acquire(self._specs, self._cost(cost), 0.0).granted
        if self._observers:
            self._notify(cost, granted, 0.0)
        return granted

    def observe(self, observer: Observer) -> None:
        """Tell ``observer`` about every decision of this limiter from now on, each grant once
        (see ``Observer``).

        Raises:
            TypeError: ``observer`` has no ``on_acquire`` or no ``on_pause`` method.
        """
        if not (hasattr(observer, "on_acquire") and hasattr(observer, "on_pause")):
            raise TypeError(f"observer must have on_acquire and on_pause methods, got {observer!r}")
        self._observers = (*self._observers, observer)

    def _notify(self, cost: float, granted: bool, waited: float) -> None:
        for observer in self._observers:
            observer.on_acquire(self.name, cost, granted, waited)

    def acquire(self, cost: int = 1, timeout: float | None = None) -> float:
        """Take ``cost`` units, waiting as long as needed; returns the seconds waited.

        Waiters are served first come, first served: the grant is booked at once at the earliest
        time it fits, the caller sleeps until then (no polling), and on waking confirms it (see
        ``Reservation``): the units count from when the caller actually resumes, so callers that
        wake late never crowd more than the limit into one window at the server. When late
        callers still fill the window, the caller sleeps until they expire and confirms again.

        The seconds returned are the time the caller was held: the sleeps, or more when a slow
        store made it notably longer. On a shared store the call takes at most ``timeout``, plus
        one last short wait for the store's reply (see ``RedisStore``).

        Interrupted while it waits (Ctrl-C, an exception from a signal handler), it gives the
        booking back on a best-effort basis (``RedisStore``: within 0.05 s; the booking expires
        anyway) and raises that exception, never the store's error in its place.

        Raises:
            AcquireTimeout: the wait would exceed ``timeout`` seconds; nothing was recorded, and
                ``retry_after`` says how long the wait was.
            StoreUnavailable: a shared store could not be reached.
        """
        units = self._cost(cost)
        limit = self._timeout(timeout)
        clock = self._clock
        asked = clock.now()
        grant = self._store.acquire(self._specs, units, limit)
        if not grant.granted:
            if self._observers:
                self._notify(units, False, 0.0)
            raise AcquireTimeout(grant.delay, self.name, limit)
        booking = Reservation(self, units, grant.delay, grant.stamp, asked)
        if booking._on_time(booking._ready_at):
            booking._grant(0.0)
            return 0.0
        slept = grant.delay
        try:
            if grant.delay > 0:
                clock.sleep(grant.delay)
            while True:
                within = None if limit is None else max(0.0, limit - self._held(asked, slept))
                more = booking._confirm(within)
                held = self._held(asked, slept)
                if more <= 0:
                    break
                if limit is not None and held + more > limit:
                    booking._refused()
                    raise AcquireTimeout(held + more, self.name, limit)
                clock.sleep(more)
                slept += more
        except BaseException:
            booking._give_back()
            raise
        booking._grant(held)
        return held

    async def acquire_async(self, cost: int = 1, timeout: float | None = None) -> float:
        """``acquire`` for asyncio: never blocks the event loop. A cancelled task (or one whose
        ``asyncio.timeout`` expired) gives its booking back on a best-effort basis and raises
        ``CancelledError`` at once. Returns and raises as ``acquire``."""
        units = self._cost(cost)
        limit = self._timeout(timeout)
        clock = self._clock
        asked = clock.now()
        grant = await self._store.acquire_async(self._specs, units, limit)
        if not grant.granted:
            if self._observers:
                self._notify(units, False, 0.0)
            raise AcquireTimeout(grant.delay, self.name, limit)
        booking = Reservation(self, units, grant.delay, grant.stamp, asked)
        if booking._on_time(booking._ready_at):
            booking._grant(0.0)
            return 0.0
        try:
            held = await booking._settle_async(asked, limit)
        except BaseException:
            await asyncio.shield(booking._give_back_async())
            raise
        booking._grant(held)
        return held

    def wait_time(self, cost: int = 1) -> float:
        """Exact seconds until ``cost`` units could be granted; 0.0 if now. Records nothing."""
        return self._store.wait_time(self._specs, self._cost(cost))

    def reserve(self, cost: int = 1) -> Reservation:
        """Book ``cost`` units at the earliest time they fit, without waiting.

        Use them after ``reservation.delay`` seconds (``reservation.wait()``), or give them back
        with ``reservation.cancel()`` while unused. The grant is told to the observers when the
        reservation is confirmed, never at booking (see ``Observer``).
        """
        units = self._cost(cost)
        grant = self._store.acquire(self._specs, units, None)
        return Reservation(self, units, grant.delay, grant.stamp)

    def available(self) -> float:
        """Units that could be taken now without waiting."""
        return self._store.available(self._specs)

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` seconds, for every limiter sharing this state and store
        (e.g. after the server answered 429 with Retry-After).

        Raises:
            ValueError: ``seconds`` is negative, NaN or infinite.
        """
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
            raise ValueError(f"seconds must be a finite number >= 0, got {seconds!r}")
        self._store.pause(self._specs, float(seconds))
        for observer in self._observers:
            observer.on_pause(self.name, float(seconds))

    def reset(self) -> None:
        """Forget every grant and pause recorded for this limiter in its store."""
        self._store.reset(self._specs)

    def forecast(self, n: int, cost: int = 1) -> Forecast:
        """When ``n`` more calls of ``cost`` units each would all have started at the current
        budget, and whether a daily quota stops them first, with its reset time (``Forecast``).

        Worked out from the state in the store now (units used and booked, pauses), with the
        rule of every member: a composite waits for its slowest member. Records nothing; a few
        store queries. Exact, up to float rounding, for one limiter and for a window or bucket
        with a daily quota (after a quota's reset the others count as empty: exact when the
        reset is a window or more away); a lower bound when members hold each other back.

        Raises:
            TypeError, ValueError: ``n`` is not a positive int, or ``cost`` not one the limiter
                can grant (named in the message).
            StoreUnavailable: a shared store could not be reached.

        >>> from ratewindow import SlidingWindow
        >>> from ratewindow.testing import ManualClock
        >>> SlidingWindow(190, 10.0, clock=ManualClock()).forecast(3_067).seconds  # 16 full windows
        160.0
        """
        return forecast(self, n, self._cost(cost))

    # -- one limit per key ------------------------------------------------------------------
    def for_key(self: L, key: str | int) -> L:
        """The same limits for one key (a user, a customer account, an endpoint), kept apart
        from every other key's.

        The limiter returned is named ``f"{name}:{key}"`` and lives on this limiter's store and
        clock, so every process sharing the store shares each key's budget, and asking again for
        the same key gives the same budget. A composite keys each member the same way, so on
        Redis Cluster members that share a hash tag still do. Observers are not carried over:
        ``observe`` the keyed limiter to watch it.

        Each key used has its own state in the store: in a ``MemoryStore`` about 500 bytes per
        key for the store's lifetime; Redis keys expire, and SQLite deletes the rows, of idle keys.

        Raises:
            TypeError: ``key`` is not a string or an int.
            ValueError: ``key`` is an empty string.

        >>> from ratewindow import SlidingWindow
        >>> per_user = SlidingWindow(2, 60.0, name="api")
        >>> per_user.for_key("alice").try_acquire(2), per_user.for_key("bob").try_acquire()
        (True, True)
        >>> per_user.for_key("alice").try_acquire(), per_user.for_key("alice").name
        (False, 'api:alice')
        """
        keyed = self._keyed
        if keyed is None:  # two threads may both build one: one is kept, and both work
            keyed = self._keyed = KeyedHandles(self._keyed_copy)
        return cast(L, keyed.get(key))

    def _keyed_copy(self: L, key: str) -> L:
        """A new limiter like this one, named ``f"{name}:{key}"``, on the same store and clock."""
        raise NotImplementedError  # pragma: no cover - every limiter class defines it

    # -- sugar ------------------------------------------------------------------------------
    def __enter__(self) -> _BaseLimiter:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    async def __aenter__(self) -> _BaseLimiter:
        await self.acquire_async()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __call__(self, func: F) -> F:
        """Decorate a function or coroutine function so every call takes one unit first.

        Raises:
            TypeError: ``func`` is not callable (``limiter(42)``), named in the message.
        """
        if not callable(func):
            raise TypeError(f"a limiter decorates a function or coroutine function, got {func!r}")
        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[..., Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                await self.acquire_async()
                return await async_func(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.acquire()
            return func(*args, **kwargs)

        return cast(F, wrapper)

    def _used_text(self) -> str:
        try:
            return f"{self._store.used(self._specs[0]):g}"
        except Exception:  # a repr must never raise, e.g. while a shared store is down
            return "?"
