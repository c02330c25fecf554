"""The org's limits as ratewindow limiters, calibrated from every ``Sforce-Limit-Info`` header.

How the shared view works, for the reader of this module:

- ``daily`` is a ``SlidingWindow`` over the rolling allocation window (86,400 s). Every request
  books its cost there *before* it is sent, so it also counts requests still in flight.
- ``counted`` is a second window, written only when a response arrives, with the units the
  server charged for it. Both live in the same store under names derived from the instance host,
  so every process sharing the store shares them.
- Each response says ``api-usage=USED/MAX``: USED is every app's use of the org in the last 24 h.
  ``foreign = USED - counted`` is what other apps used (our own answered calls subtracted, so
  they are never counted twice), and the daily window's limit becomes
  ``allowance - foreign`` where ``allowance`` is the allocation less the ``reserve``.
- ``foreign`` is *set* from the headers, never added up, so repeated or concurrent headers
  cannot double-count; it follows other apps' use up and down. One header cannot tell which of
  our requests still in flight Salesforce had already counted, so each measurement is
  ``USED - counted - in_flight`` (our permitted requests of this process not answered yet): a
  lower bound of other apps' use, exact whenever everything in flight had been counted. The
  value used is the highest measurement of the last ``SETTLE`` seconds (the tightest recent
  bound); it comes down ``SETTLE`` seconds after other apps' use does. Requests in flight from
  other processes are not known here and count as other apps' use until answered (safe side).
- Requests sent before the allocation was known (the first one, which teaches it) are booked
  in the daily window as soon as it exists.
- If other apps alone fill the allowance, nothing is sent and ``retry_at`` is one window after
  that use was measured (an upper bound: all of it has expired by then), so the client can
  never wait for ever on a stale measurement.

One module past 600 lines: the presets (``EDITIONS``), the options (``OrgLimits``) and the
limiter that applies them to every header (``SalesforceLimiter``) change together.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from ratewindow import (
    AcquireTimeout,
    Clock,
    Forecast,
    Limiter,
    Limits,
    MonotonicClock,
    Observer,
    Probe,
    Reservation,
    SalesforceLimitInfo,
    SlidingWindow,
    Store,
    WallClock,
)

from ratewindow_salesforce._errors import DailyLimitExhausted

__all__ = ["EDITIONS", "ClientStats", "Edition", "OrgLimits", "SalesforceLimiter"]

log = logging.getLogger("ratewindow.salesforce")

#: Seconds in Salesforce's rolling allocation window.
DAY = 86_400.0
#: Seconds over which the highest measurement of other apps' use is kept (see module docstring).
SETTLE = 10.0
#: The ``counted`` window's limit: large enough never to refuse, exact in a double.
_UNBOUNDED = 2**50


@dataclass(frozen=True)
class Edition:
    """Salesforce's API allocation for one kind of org, from the limits cheat sheet ("API
    Request Limits and Allocations"): a base per rolling 24 h, plus an amount per user licence.

    >>> EDITIONS["enterprise"].allocation_for(licences=50)
    150000
    """

    #: Preset name, e.g. ``"enterprise"``.
    name: str
    #: Requests per rolling 24 h with no licence counted: the least the org can have.
    allocation: int
    #: Requests added per user licence; None: the allocation does not grow with licences.
    per_licence: int | None = None
    #: Concurrent long-running requests (20 s or more) Salesforce allows the org.
    long_running: int = 25

    def allocation_for(self, licences: int = 0) -> int:
        """The allocation of an org with ``licences`` user licences (add-ons not counted).

        Raises:
            TypeError: ``licences`` is not an int.
            ValueError: ``licences`` is negative.
        """
        if isinstance(licences, bool) or not isinstance(licences, int):
            raise TypeError(f"licences must be an int, got {licences!r}")
        if licences < 0:
            raise ValueError(f"licences must be an int >= 0, got {licences!r}")
        return self.allocation + (self.per_licence or 0) * licences


EDITIONS: Mapping[str, Edition] = MappingProxyType(
    {
        "developer": Edition("developer", 15_000, None, 5),
        "professional": Edition("professional", 100_000, 1_000, 25),  # with API access
        "enterprise": Edition("enterprise", 100_000, 1_000, 25),
        "unlimited": Edition("unlimited", 100_000, 5_000, 25),
        "performance": Edition("performance", 100_000, 5_000, 25),
        "sandbox": Edition("sandbox", 5_000_000, None, 25),  # a full sandbox
    }
)
"""The presets by name (``edition=``): ``developer``, ``professional``, ``enterprise``,
``unlimited``, ``performance``, ``sandbox``. A preset's allocation is the least the edition can
have; the first ``Sforce-Limit-Info`` header corrects it (presets follow the headers)."""


@dataclass(frozen=True)
class OrgLimits:
    """How much of a Salesforce org's API allocation a client may use, and how fast.

    Args:
        allocation: requests the org may make per rolling ``window`` (Developer Edition 15,000;
            Enterprise 100,000 plus per-licence amounts). None: learned from the first
            ``Sforce-Limit-Info`` header (the first request then goes alone).
        reserve: fraction of the allocation left for other integrations, in [0, 1): with 0.1
            the client stops, raising ``DailyLimitExhausted``, once the org as a whole has used
            90 % of its allocation in the window.
        per_minute: optional pace, requests per rolling 60 s (the seed's "200 calls/minute";
            Salesforce itself has no per-minute limit). None: no pace.
        margin: seconds each request stays in the per-minute pace beyond its 60 s, absorbing the
            jitter between taking a permit and Salesforce receiving the request.
        window: seconds of the rolling allocation window; 86,400 (24 h) unless a test scales it.
        max_wait: most seconds a request waits for a permit; beyond it the request is not sent
            and ``DailyLimitExhausted`` (allocation spent) or ``AcquireTimeout`` (pace) is raised.
        busy_pause: seconds every worker pauses after Salesforce refused a request with
            ``ConcurrentPerOrgLongTxn Limit exceeded`` (too many long-running requests).

    Raises:
        ValueError, TypeError: a bad value, named in the message.

    >>> OrgLimits(reserve=0.1, per_minute=200)  # doctest: +NORMALIZE_WHITESPACE
    OrgLimits(allocation=None, reserve=0.1, per_minute=200, margin=1.0, window=86400.0,
              max_wait=60.0, busy_pause=5.0)
    """

    #: Requests per rolling window for the whole org; None until learned from a response.
    allocation: int | None = None
    #: Fraction of the allocation kept for other integrations.
    reserve: float = 0.0
    #: Optional pace in requests per rolling 60 s.
    per_minute: int | None = None
    #: Seconds each request stays in the pace beyond its 60 s (network jitter).
    margin: float = 1.0
    #: Seconds of the rolling allocation window.
    window: float = DAY
    #: Most seconds a request waits for a permit.
    max_wait: float = 60.0
    #: Seconds every worker pauses after a ``ConcurrentPerOrgLongTxn`` refusal.
    busy_pause: float = 5.0

    def __post_init__(self) -> None:
        for name in ("allocation", "per_minute"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be None or a positive int, got {value!r}")
        reserve = self.reserve
        if isinstance(reserve, bool) or not isinstance(reserve, (int, float)) or not 0 <= reserve < 1:
            raise ValueError(f"reserve must be a fraction in [0, 1), got {reserve!r}")
        for name in ("margin", "window", "max_wait", "busy_pause"):
            value = getattr(self, name)
            bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            if bad or value < 0 or (name == "window" and value == 0):
                bound = "> 0" if name == "window" else ">= 0"
                raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
            object.__setattr__(self, name, float(value))
        object.__setattr__(self, "reserve", float(reserve))

    def allowance(self, allocation: int) -> int:
        """Requests per window the client may use out of ``allocation``: the allocation less the
        reserve, rounded so that the reserve is never smaller than asked.

        >>> OrgLimits(reserve=0.1).allowance(15_000)
        13500
        """
        return allocation - math.ceil(allocation * self.reserve - 1e-9)


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of what a wrapped client did and knows about its org (``limiter_of(sf).stats``).

    >>> ClientStats(name="salesforce:acme", allocation=15_000, allowance=13_500, org_used=400, ours=100,
    ...             foreign=300).available
    13100
    """

    #: The org's limiter name (from the instance host).
    name: str = ""
    #: HTTP requests sent to the instance.
    requests: int = 0
    #: Requests Salesforce refused with ``REQUEST_LIMIT_EXCEEDED``.
    refused: int = 0
    #: Requests answered 401 (expired or invalid session).
    expired: int = 0
    #: Times the ``refresh`` callback was called.
    refreshes: int = 0
    #: The org's allocation per window, if known.
    allocation: int | None = None
    #: Requests per window this client may use (allocation less reserve), if known.
    allowance: int | None = None
    #: Every app's use of the org in the window, from the last ``Sforce-Limit-Info`` header.
    org_used: int | None = None
    #: Units charged for our answered requests in the window (all processes sharing the store).
    ours: int = 0
    #: Other apps' use as last measured (see the module docstring).
    foreign: int = 0

    @property
    def refusal_share(self) -> float:
        """The error budget spent: ``refused / requests``, the share of responses that refused a
        request with ``REQUEST_LIMIT_EXCEEDED``; 0.0 before any response.

        >>> ClientStats(requests=400, refused=2).refusal_share
        0.005
        """
        return self.refused / self.requests if self.requests > 0 else 0.0

    @property
    def available(self) -> int | None:
        """Requests still allowed in the window by our view: allowance - ours - foreign."""
        if self.allowance is None:
            return None
        return max(0, self.allowance - self.ours - self.foreign)


class _Relay:
    """Observes each limiter the org builds, and tells the org's observers about its grants and
    refusals under the org's name, whichever limiter holds the allowance now (the daily window is
    rebuilt as the headers come). Pauses are told by ``SalesforceLimiter.pause`` itself."""

    def __init__(self, org: SalesforceLimiter) -> None:
        self._org = org

    def on_acquire(self, limiter: str, cost: float, granted: bool, waited: float) -> None:
        self._org._tell(cost, granted, waited)

    def on_pause(self, limiter: str, seconds: float) -> None:
        return None


class SalesforceLimiter:
    """The limiters of one org and their calibration (``limiter_of(sf)``); a ratewindow
    ``Limiter`` whose permits every request of the wrapped client takes.

    ``acquire`` raises ``DailyLimitExhausted`` instead of waiting hours for the rolling window.
    Thread-safe: one lock guards calibration and the rebuilds of the daily window. It can be
    watched like a ratewindow limiter (:meth:`observe`, ``PrometheusMetrics().watch(limiter_of(sf))``).

    >>> from ratewindow import MemoryStore
    >>> limits = OrgLimits(allocation=100, reserve=0.1)
    >>> limiter = SalesforceLimiter("salesforce:acme", limits, MemoryStore(), None)
    >>> limiter.try_acquire(), limiter.stats.allowance
    (True, 90)
    """

    def __init__(self, name: str, limits: OrgLimits, store: Store, clock: Clock | None, *,
                 pace: Limiter | None = None, follow: bool = False) -> None:
        self.name = name
        self.limits = limits
        # The allocation follows the headers when it was not configured, or came from a preset.
        self._follow = follow or limits.allocation is None
        self._store = store
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._wall: Clock = WallClock() if isinstance(self._clock, MonotonicClock) else self._clock
        self._lock = threading.Lock()
        # While the allocation is unknown, one request goes first (the core's probe).
        self._probe = Probe(0 if limits.allocation is not None else 1)
        self._counted = SlidingWindow(_UNBOUNDED, limits.window, name=f"{name}:counted", store=store,
                                      clock=self._clock)
        # Not ``_observers``: ``ratewindow.http`` tells those of 429s, and Salesforce refuses with 403
        # REQUEST_LIMIT_EXCEEDED instead (``SalesforceAdapter`` tells each response itself).
        self._watchers: tuple[Observer, ...] = ()
        self._relay = _Relay(self)
        if pace is not None and limits.per_minute is not None:
            raise ValueError("give the pace either as limits= (a ratewindow limiter) or as "
                             f"OrgLimits(per_minute={limits.per_minute!r}), not both")
        self._pace: Limiter | None = pace if pace is not None else (
            SlidingWindow(limits.per_minute, 60.0, name=f"{name}:minute", store=store, clock=self._clock,
                          margin=limits.margin)
            if limits.per_minute is not None
            else None
        )
        if pace is not None:
            try:  # the allowance and the pace are taken all-or-nothing: one store
                Limits(SlidingWindow(1, limits.window, name=f"{name}:check", store=store, clock=self._clock),
                       pace)  # type: ignore[arg-type]
            except ValueError as exc:
                raise ValueError(f"limits= must live on the org's store ({store!r}): build it with "
                                 f"store=... as well ({exc})") from None
        observe = getattr(self._pace, "observe", None)  # every ratewindow limiter has it
        if observe is not None:
            observe(self._relay)
        self.allocation: int | None = limits.allocation
        self.org_used: int | None = None
        self.foreign = 0
        self._foreign_at = -math.inf
        self._measured: deque[tuple[float, int]] = deque()  # (clock time, other apps' use)
        self._unbooked = 0  # units sent before the daily window existed
        self._in_flight = 0  # units permitted in this process and not answered yet
        self._pending = threading.local()  # per thread: units permitted for the request being sent
        self._counts = {"requests": 0, "refused": 0, "expired": 0, "refreshes": 0}
        self._daily: SlidingWindow | None = None
        self._limiter: Limiter | None = self._pace
        self._rebuild()

    # -- the limiters -----------------------------------------------------------------------------
    @property
    def allowance(self) -> int | None:
        """Requests per window the client may use (allocation less reserve); None until known."""
        return None if self.allocation is None else self.limits.allowance(self.allocation)

    def _rebuild(self) -> None:
        """Rebuild the daily window with limit ``allowance - foreign`` (state stays in the store:
        the name and window, not the limit, identify it). Caller holds the lock or is __init__."""
        allowance = self.allowance
        if allowance is None:
            self._daily = None
            self._limiter = self._pace
            return
        room = allowance - self.foreign
        if self._daily is not None and self._daily.limit == room:
            return
        daily = SlidingWindow(room, self.limits.window, name=self.name, store=self._store,
                              clock=self._clock) if room >= 1 else None
        members = [m for m in (daily, self._pace) if m is not None]
        self._daily = daily
        if daily is not None:
            daily.observe(self._relay)
        if not members:
            self._limiter = None
        elif len(members) == 1:
            self._limiter = members[0]
        else:
            self._limiter = Limits(*members, name=self.name)  # type: ignore[arg-type]
            self._limiter.observe(self._relay)

    def _expire_foreign(self) -> None:
        """Other apps' use measured one window ago has expired by now: forget it."""
        if self.foreign and self._clock.now() >= self._foreign_at + self.limits.window:
            with self._lock:
                if self.foreign and self._clock.now() >= self._foreign_at + self.limits.window:
                    self.foreign = 0
                    self._measured.clear()
                    self._rebuild()

    def ours(self) -> int:
        """Units charged for our answered requests in the window (every process on the store)."""
        return int(_UNBOUNDED - self._counted.available())

    def count(self, what: str) -> None:
        """Add one to a counter of ``stats`` (requests, refused, expired, refreshes)."""
        with self._lock:
            self._counts[what] += 1

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the client's counters and of what it knows about the org."""
        with self._lock:
            counts = dict(self._counts)
        return ClientStats(name=self.name, allocation=self.allocation, allowance=self.allowance,
                           org_used=self.org_used, ours=self.ours(), foreign=self.foreign, **counts)

    # -- learning the allocation --------------------------------------------------------------------
    def enter(self) -> bool:
        """Before a request: while the allocation is unknown, let one request go first and hold
        the others until its response taught the allocation. True if the caller is that probe
        and must call ``leave()``."""
        if self.allocation is not None:
            return False
        return self._probe.enter()

    def leave(self) -> None:
        """After the probe's response (or failure): let the next request through, or all of them
        once the allocation is known."""
        self._probe.leave(learned=self.allocation is not None)

    # -- calibration --------------------------------------------------------------------------------
    def _permitted(self, cost: int) -> None:
        """This thread's request was granted ``cost`` units: in flight until answered."""
        with self._lock:
            self._in_flight += cost
        self._pending.units = getattr(self._pending, "units", 0) + cost

    def settle(self) -> None:
        """This thread's request ended (answered or not): it is no longer in flight."""
        units = getattr(self._pending, "units", 0)
        if units:
            self._pending.units = 0
            with self._lock:
                self._in_flight -= units

    def calibrate(self, header: str | None, charged: int) -> None:
        """Record ``charged`` units for an answered request (sent by this thread) and, if the
        response carried ``Sforce-Limit-Info``, re-measure other apps' use from it."""
        usage = SalesforceLimitInfo.parse(header)
        self.settle()
        with self._lock:
            if charged > 0:
                self._counted.try_acquire(min(charged, _UNBOUNDED))
                if self.allocation is None:
                    self._unbooked += charged
            if usage is None:
                return
            used, allocation = usage
            if self._follow and allocation > 0 and allocation != self.allocation:
                if self.allocation is None:
                    log.info("salesforce: %s: allocation %d requests per %g s (from Sforce-Limit-Info)",
                             self.name, allocation, self.limits.window)
                else:
                    log.info("salesforce: %s: allocation changed from %d to %d requests per %g s",
                             self.name, self.allocation, allocation, self.limits.window)
                self.allocation = allocation
                self._probe.done()
            self.org_used = used
            now = self._clock.now()
            measured = self._measured
            while measured and measured[0][0] <= now - SETTLE:
                measured.popleft()
            measurement = max(0, used - self.ours() - self._in_flight)
            while measured and measured[-1][1] <= measurement:
                measured.pop()  # a monotone deque: its first entry is the recent maximum
            measured.append((now, measurement))
            self.foreign = measured[0][1]
            self._foreign_at = now
            self._rebuild()
            if self._unbooked and self._daily is not None:
                # Booked on a handle of the same window that is not observed: these requests'
                # grants were told when they were sent.
                booked = SlidingWindow(self._daily.limit, self.limits.window, name=self.name,
                                       store=self._store, clock=self._clock)
                booked.try_acquire(min(self._unbooked, self._daily.limit))
                self._unbooked = 0

    # -- observers ----------------------------------------------------------------------------------
    def observe(self, observer: Observer) -> None:
        """Tell ``observer`` (a ``ratewindow.Observer``) about every decision from now on, under
        :attr:`name`, as a ratewindow limiter tells them: each grant once (by ``try_acquire``,
        ``acquire``, ``acquire_async``, or a ``reserve`` when confirmed), each refusal (the
        allowance or the pace), each pause, and each response of the wrapped client
        (``on_response``, ``refused`` for ``REQUEST_LIMIT_EXCEEDED``).

        Raises:
            TypeError: ``observer`` has no ``on_acquire`` or no ``on_pause`` method.
        """
        if not (hasattr(observer, "on_acquire") and hasattr(observer, "on_pause")):
            raise TypeError(f"observer must have on_acquire and on_pause methods, got {observer!r}")
        with self._lock:
            self._watchers = (*self._watchers, observer)

    def _tell(self, cost: float, granted: bool, waited: float) -> None:
        for observer in self._watchers:
            observer.on_acquire(self.name, cost, granted, waited)

    def responded(self, refused: bool) -> None:
        """Tell the observers about one response to a request of the wrapped client; ``refused``
        if Salesforce refused it with ``REQUEST_LIMIT_EXCEEDED``."""
        for observer in self._watchers:
            on_response = getattr(observer, "on_response", None)
            if on_response is not None:
                on_response(self.name, refused)

    # -- the Limiter protocol -------------------------------------------------------------------------
    def _current(self) -> tuple[Limiter | None, SlidingWindow | None]:
        self._expire_foreign()
        return self._limiter, self._daily

    def _seconds_until_room(self, cost: int, daily: SlidingWindow | None) -> float:
        """Seconds until ``cost`` fits the allowance, as far as we know."""
        if daily is not None and cost <= daily.limit:
            return daily.wait_time(cost)
        allowance = self.allowance
        wait = max(0.0, self._foreign_at + self.limits.window - self._clock.now())  # other apps' use gone
        if allowance is not None and 1 <= cost <= allowance:
            own = SlidingWindow(allowance, self.limits.window, name=self.name, store=self._store,
                                clock=self._clock)
            wait = max(wait, own.wait_time(cost))
        return wait

    def exhausted(self, cost: int, wait: float | None = None) -> DailyLimitExhausted:
        """The error for a request of ``cost`` units that does not fit the allowance."""
        seconds = self._seconds_until_room(cost, self._daily) if wait is None else wait
        return DailyLimitExhausted(self._wall.now() + seconds, self.name, seconds, self.allocation,
                                   self.allowance)

    def refused(self, cost: int, header: str | None) -> DailyLimitExhausted:
        """Salesforce refused a request with ``TotalRequests Limit exceeded``: pause every user
        of the org's limiters until the window frees (as far as we know) and return the error."""
        usage = SalesforceLimitInfo.parse(header)
        wait: float
        if usage is not None:
            used, allocation = usage
            room = allocation - max(0, used - self.ours())  # the server's own limit, our use aside
            if 1 <= cost <= room:
                view = SlidingWindow(room, self.limits.window, name=self.name, store=self._store,
                                     clock=self._clock)
                wait = view.wait_time(cost)
            else:
                wait = max(0.0, self._foreign_at + self.limits.window - self._clock.now())
            wait = max(wait, self._seconds_until_room(cost, self._daily))
        else:
            wait = self.limits.window  # nothing known: everything in the window has expired by then
        if wait > 0:
            self.pause(wait)
        return self.exhausted(cost, wait)

    def try_acquire(self, cost: int = 1) -> bool:
        """Take ``cost`` units now if they fit the allowance and the pace; never waits."""
        limiter, daily = self._current()
        if self.allocation is not None and (daily is None or cost > daily.limit):
            self._tell(cost, False, 0.0)
            return False
        if limiter is None:
            self._tell(cost, True, 0.0)
            return True
        return limiter.try_acquire(cost)  # told by the relay

    def acquire(self, cost: int = 1, timeout: float | None = None) -> float:
        """Take ``cost`` units, waiting at most ``min(timeout, max_wait)`` seconds; returns the
        seconds waited.

        Raises:
            DailyLimitExhausted: the allowance has no room for ``cost`` within that wait.
            AcquireTimeout: the pace (``per_minute``) or a pause is further away than that.
        """
        limiter, daily = self._current()
        if self.allocation is not None and (daily is None or cost > daily.limit):
            self._tell(cost, False, 0.0)
            raise self.exhausted(cost)
        if limiter is None:
            self._permitted(cost)
            self._tell(cost, True, 0.0)
            return 0.0
        bound = self.limits.max_wait if timeout is None else min(timeout, self.limits.max_wait)
        try:
            waited = limiter.acquire(cost, timeout=bound)
        except AcquireTimeout as exc:
            if daily is not None and daily.wait_time(cost) > bound:
                raise self.exhausted(cost) from exc
            raise
        self._permitted(cost)
        return waited

    async def acquire_async(self, cost: int = 1, timeout: float | None = None) -> float:
        """``acquire`` for asyncio. Raises as ``acquire``."""
        limiter, daily = self._current()
        if self.allocation is not None and (daily is None or cost > daily.limit):
            self._tell(cost, False, 0.0)
            raise self.exhausted(cost)
        if limiter is None:
            self._permitted(cost)
            self._tell(cost, True, 0.0)
            return 0.0
        bound = self.limits.max_wait if timeout is None else min(timeout, self.limits.max_wait)
        try:
            waited = await limiter.acquire_async(cost, timeout=bound)
        except AcquireTimeout as exc:
            if daily is not None and daily.wait_time(cost) > bound:
                raise self.exhausted(cost) from exc
            raise
        self._permitted(cost)
        return waited

    def wait_time(self, cost: int = 1) -> float:
        """Seconds until ``cost`` units could be taken; no side effect."""
        limiter, daily = self._current()
        wait = self._seconds_until_room(cost, daily) if self.allocation is not None else 0.0
        if limiter is not None and (daily is None or cost <= daily.limit):
            wait = max(wait, limiter.wait_time(cost))
        return wait

    def reserve(self, cost: int = 1) -> Reservation:
        """Book ``cost`` units at the earliest time they fit. The grant is told to the observers
        when the reservation is confirmed (see ``ratewindow.Observer``).

        Raises:
            DailyLimitExhausted: the allowance can never hold ``cost`` with other apps' use.
            RuntimeError: nothing to book against (no allocation known and no pace).
        """
        limiter, daily = self._current()
        if self.allocation is not None and (daily is None or cost > daily.limit):
            self._tell(cost, False, 0.0)
            raise self.exhausted(cost)
        if limiter is None:
            raise RuntimeError(f"{self.name}: nothing to reserve against before the allocation is known")
        return limiter.reserve(cost)

    def available(self) -> float:
        """Units that could be taken now without waiting (``math.inf`` with no limiter yet)."""
        limiter, daily = self._current()
        if self.allocation is not None and daily is None:
            return 0.0
        return math.inf if limiter is None else limiter.available()

    def pause(self, seconds: float) -> None:
        """Grant nothing for ``seconds`` seconds, in every process sharing the store."""
        limiter, _ = self._current()
        targets: list[Callable[[float], None]] = []
        if limiter is not None:
            targets.append(limiter.pause)
        if self._daily is None and self.allowance is not None:  # no room now: pause the window itself
            targets.append(SlidingWindow(1, self.limits.window, name=self.name, store=self._store,
                                         clock=self._clock).pause)
        for target in targets:
            target(seconds)
        for observer in self._watchers:
            observer.on_pause(self.name, float(seconds))

    def forecast(self, n: int, cost: int = 1) -> Forecast:
        """When ``n`` more requests of ``cost`` units would all have been permitted at the
        current budget (the allowance and the pace; see ``ratewindow.Forecast``), and whether the
        allowance (the allocation less the ``reserve`` and other apps' use) stops them first: then
        ``stopped_by`` names it, ``stopped_after`` is the requests permitted within ``max_wait``,
        and ``resets_at`` is when the rolling window has room for the next (``acquire`` raises
        ``DailyLimitExhausted`` meanwhile). Before the allocation is known only the pace counts.

        Raises:
            RuntimeError: nothing to forecast from (no allocation known and no pace).
            TypeError, ValueError: ``n`` or ``cost`` is bad (named in the message).

        >>> from ratewindow import MemoryStore
        >>> from ratewindow.testing import ManualClock
        >>> org = SalesforceLimiter("salesforce:acme", OrgLimits(allocation=100, reserve=0.1), MemoryStore(),
        ...                         ManualClock())
        >>> org.forecast(120).stopped_after   # 90 of 100 for us, 10 kept for other integrations
        90
        """
        limiter, daily = self._current()
        if limiter is None:
            if self.allocation is not None:  # other apps fill the allowance: nothing fits now
                return self._stopped(n, cost, 0, self._seconds_until_room(cost, None))
            raise RuntimeError(f"{self.name}: nothing to forecast from before the allocation is known")
        assert isinstance(limiter, (SlidingWindow, Limits))  # what _rebuild makes
        result = limiter.forecast(n, cost)
        if daily is None:
            return result if self.allocation is None else self._stopped(n, cost, 0,
                                                                         self._seconds_until_room(cost, None))
        bound = self.limits.max_wait
        if daily.forecast(n, cost).seconds <= bound:
            return result
        low, high = 0, n - 1  # the most requests whose allowance wait is within max_wait
        while low < high:
            mid = (low + high + 1) // 2
            if daily.forecast(mid, cost).seconds <= bound:
                low = mid
            else:
                high = mid - 1
        stopped = self._stopped(n, cost, low, daily.forecast(low + 1, cost).seconds)
        return replace(result, stopped_by=stopped.stopped_by, stopped_after=low, resets_in=stopped.resets_in,
                       resets_at=stopped.resets_at)

    def _stopped(self, n: int, cost: int, fits: int, resets_in: float) -> Forecast:
        """A forecast for requests the allowance stops after ``fits``, with room again in ``resets_in`` s."""
        tz = _dt.timezone.utc
        wall = self._wall.now()
        resets_at = _dt.datetime.fromtimestamp(wall + resets_in, tz)
        label = (f"the allowance of {self.name!r} ({self.allowance:,} of {self.allocation:,} per "
                 f"{self.limits.window:g} s, reserve {self.limits.reserve:.0%}, other apps {self.foreign:,})")
        return Forecast(self.name, n, cost, resets_in, resets_at, None, label, fits, resets_in, resets_at)

    def __repr__(self) -> str:
        known = "?" if self.allocation is None else f"{self.allocation}"
        pace = "" if self.limits.per_minute is None else f", per_minute={self.limits.per_minute}"
        return (
            f"SalesforceLimiter(name={self.name!r}, allocation={known}, reserve={self.limits.reserve!r}, "
            f"foreign={self.foreign}{pace})"
        )
