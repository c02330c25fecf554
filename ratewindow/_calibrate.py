"""Learning limits from responses: one mechanism for every transport and adapter.

A :class:`Calibrator` stands around one limiter (the *configured* limits). Each response's
rate-limit headers are read into :class:`~ratewindow.Observation` values (``ratewindow._headers``)
and applied to the limiter's shared state on its store, so every process sharing the store
learns from every response:

* **The server's policy.** An observation with a limit and a window (given, or inferred from
  the reset: the longest reset seen, in whole seconds) names a window. A configured
  ``SlidingWindow`` member with that window length is that policy's *target*. When the server
  allows less, the member is tightened: a twin with the server's limit takes its place, on the
  same state (same name and window), so nothing already counted is lost. A window the configured
  limits do not have becomes a *learned* window on the same store, named like the first member.
  Raising a member above its configured limit happens only with ``raise_limits=True``. What
  was learned is written to the store as a note, so a process that starts later knows it before
  its first request.
* **What others spent.** With ``remaining`` the server says how many units it counts in the
  window: ``limit - remaining``. At the moment a request was sent, a ``sent`` ledger on the store
  counted every request of ours (every process) sent within the server's window: those the
  server counts too. The ledger holds them exactly the window, not the limiter's margin: our
  requests come in bursts one window + margin apart, and a ledger still counting the last burst
  as the next one goes would read others' use low just then. The rest are someone else's
  (another app, another client of the same budget), and the target window yields them:
  *phantom* units, taken now where they fit and booked (never waited for) where they do not. It
  is a top-up to a level, tracked by a ``phantom`` ledger, so many responses that report the
  same foreign use take its units once; phantoms are held one window from when they are taken
  and so are forgotten on their own when the other client stops. Requests of ours in flight
  make the reading a few units off either way (one sent just before this one may arrive after
  it), so while others spend more than 2 % of the window, 5 % more is yielded.
* **A calendar day** (HubSpot's daily limit) calibrates a configured ``DailyQuota``: the units
  the server counts today and the local quota does not are taken, at most once a second.
* **Pauses.** ``Retry-After`` on a 429 or 503 takes precedence: the limiter pauses that long
  for everyone sharing it. A budget at ``remaining=0`` with no window to hold it pauses until
  its ``reset``. A 429 that says nothing pauses ``Calibration.pause_429`` seconds.
* **Probing.** Until the first response shows the budget, at most ``probe`` requests go out
  (one by default); the others wait for that response (at most ``max_wait`` seconds), so a
  budget another process has nearly spent is not burst into.

Stale headers (a response from a cache, ``Age > 0``; a reset already past), malformed ones and
contradictory ones (more remaining than the limit; one field given twice with different
values) are ignored, each kind logged once at DEBUG on the ``ratewindow`` logger. When the
headers say nothing, the configured limits hold, and after one such response no ledger is kept
(no store call is added per request) until headers appear.

One module past 600 lines: the Calibrator's parts (the policies seen, the targets and their
ledgers, the note shared through the store, the probes of every process) share one lock and
one state; split, each would reach into the others' private fields. ``Probe`` lives apart.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import math
import threading
import weakref
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ratewindow._clock import Clock, MonotonicClock, WallClock, grace_of
from ratewindow._concurrency import ConcurrencyLimit, Lease
from ratewindow._daily_quota import DailyQuota
from ratewindow._headers import FAMILIES, RESETS, HeaderFamily, Observation, _fields, _one, parse_headers
from ratewindow._limiter import Limiter, _BaseLimiter
from ratewindow._limits import Limits
from ratewindow._probe import Probe
from ratewindow._rate import Rate
from ratewindow._sliding_window import SlidingWindow
from ratewindow.stores._memory import MemoryStore
from ratewindow.stores._protocol import Store

__all__ = ["Calibration", "Calibrator", "Calibrators", "Ticket"]

log = logging.getLogger("ratewindow")

#: The limit of the bookkeeping windows (counters that never refuse).
LEDGER_LIMIT = 1_000_000_000
#: Share of the window yielded beyond the estimate of others' use while they are seen.
SAFETY = 0.05
#: Others' use up to this share of the window may be jitter: yielded without ``SAFETY``.
NOISE = 0.02
#: Seconds a note of what was learned is kept in the store (it is rewritten twice as often).
NOTE_TTL = 86_400.0
#: Seconds between two calibrations of a daily quota (unless the day is spent).
DAILY_EVERY = 1.0
#: Longest pause a header can cause, in seconds (a day): larger values are taken as this.
MAX_PAUSE = 86_400.0


@dataclass(frozen=True)
class Calibration:
    """How a :class:`Calibrator` learns from responses (a small immutable policy).

    Args:
        families: the header families read; by default every one: ``RetryAfter``,
            ``IETFRateLimit``, ``XRateLimit``, ``ShopifyCallLimit``, ``HubSpotRateLimit``,
            ``SalesforceLimitInfo`` (a family of your own: a class with the same ``parse``).
        reset: how ``X-RateLimit-Reset`` is read: ``"auto"`` (a number above a year of seconds
            is Unix time, a smaller one seconds from now, else a date), ``"epoch"``, ``"delta"``
            or ``"date"``.
        tighten: lower a configured window to the server's limit, and add the server's windows
            the configured limits do not have (learned windows). False: only yield to others'
            use on the configured members (the HubSpot adapter adopts presets itself).
        raise_limits: also raise a configured window to a larger limit the server shows.
        probe: requests sent before the first response; 0: no probing.
        margin: seconds a learned window holds each unit beyond its window (network jitter);
            None: 1 % of the window.
        pause_429: seconds every user of the limiter pauses after a 429 that says nothing about
            when to come back; 0: no pause.

    Raises:
        ValueError, TypeError: a bad value, named in the message.

    >>> Calibration(raise_limits=True).probe
    1
    """

    families: tuple[type[HeaderFamily], ...] = FAMILIES
    reset: str = "auto"
    tighten: bool = True
    raise_limits: bool = False
    probe: int = 1
    margin: float | None = None
    pause_429: float = 1.0

    def __post_init__(self) -> None:
        families = tuple(self.families)
        if not all(callable(getattr(f, "parse", None)) for f in families):
            raise TypeError(f"families must be header family classes (with parse), got {self.families!r}")
        object.__setattr__(self, "families", families)
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {', '.join(map(repr, RESETS))}, got {self.reset!r}")
        if isinstance(self.probe, bool) or not isinstance(self.probe, int) or self.probe < 0:
            raise ValueError(f"probe must be an int >= 0 (requests), got {self.probe!r}")
        for name in ("margin", "pause_429"):
            value = getattr(self, name)
            if value is None and name == "margin":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))


@dataclass(frozen=True)
class Ticket:
    """What a :class:`Calibrator` recorded when a request was sent; give it back with the response."""

    #: When the request was sent (the limiter's clock, seconds).
    at: float
    #: Units the request took.
    cost: int = 1
    #: Per target window (its state key): our units in the window when it was sent, this one's included.
    counts: Mapping[str, int] = field(default_factory=dict)
    #: Whether the request went as a probe.
    probe: bool = False


class _Target:
    """A window that observations calibrate, with its two ledgers on the same store."""

    def __init__(self, window: SlidingWindow) -> None:
        self.window = window
        self.key = window._specs[0].key
        store, clock = window._store, window._clock
        # What the server counts of ours: the requests sent within its window, exactly. Held any
        # longer (the limiter's margin and grace), the ledger would count as ours requests the
        # server has already forgotten, and those are the burst that our own window frees at its
        # boundary: others' use would then read low exactly when our requests pile up.
        grace = grace_of(clock)
        held = window.window - grace if window.window > 2 * grace else window.window
        self.sent = SlidingWindow(LEDGER_LIMIT, held, name=f"{window.name}:sent", store=store, clock=clock)
        # What we yield: phantom units still held in the window, as long as the window holds them.
        self.phantom = SlidingWindow(LEDGER_LIMIT, window.window, margin=window.margin,
                                     name=f"{window.name}:phantom", store=store, clock=clock)
        self.sends: deque[float] = deque()  # this process's send times, for requests that overtake


class Calibrator:
    """Keeps a limiter in step with what the server's responses say (see the module docstring).

    Transports call ``acquire`` (or ``acquire_async``) before sending, which waits at the probe
    and takes the permits from :attr:`limiter`, then ``observe`` with the response's headers, or
    ``failed`` when no response came. Thread-safe; one per limiter and process (what it learns is
    shared with other processes through the store).

    Args:
        limiter: the configured limits, any ratewindow limiter (a ``Limits`` composite
            included). Another object with the ``Limiter`` methods is used as it is: it pauses,
            but learns nothing.
        calibration: how to learn (``Calibration()`` by default).
        max_wait: most seconds a request waits for the probe's response (then it goes anyway).

    Raises:
        TypeError: ``limiter`` is not a limiter, or ``calibration`` not a ``Calibration``.
        ValueError: ``max_wait`` is not None or a finite number of seconds >= 0.

    >>> from ratewindow import Calibrator, SlidingWindow
    >>> from ratewindow.testing import ManualClock
    >>> calibrator = Calibrator(SlidingWindow(1000, 1.0, name="api", clock=ManualClock()))
    >>> ticket = calibrator.acquire()
    >>> _ = calibrator.observe(ticket, {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9",
    ...                                 "X-RateLimit-Reset": "1"})
    >>> calibrator.limiter.limiters[0]
    SlidingWindow(limit=10, window=1.0, used=1, name='api')
    """

    def __init__(self, limiter: Limiter, calibration: Calibration | None = None, *,
                 max_wait: float | None = 60.0) -> None:
        if calibration is None:
            calibration = Calibration()
        if not isinstance(calibration, Calibration):
            raise TypeError(f"calibration must be a Calibration, got {calibration!r}")
        if max_wait is not None and (isinstance(max_wait, bool) or not isinstance(max_wait, (int, float))
                                     or not 0 <= max_wait < math.inf):
            raise ValueError(f"max_wait must be None or a finite number of seconds >= 0, got {max_wait!r}")
        #: How this calibrator learns.
        self.calibration = calibration
        self._max_wait = max_wait
        self._lock = threading.RLock()
        self._probe = Probe(calibration.probe)
        self._probe_leases: list[Lease] = []  # this process's probes in flight, as the store counts them
        self._logged: set[str] = set()
        self._policies: dict[str, tuple[int, float]] = {}  # scope -> (limit, window) the server showed
        self._inferred: dict[str, float] = {}  # scope -> window inferred from its resets
        self._daily_checked = -math.inf
        self._noted_at = -math.inf
        self._note_read = False
        self._quiet = False  # the last recorded response said nothing: keep no ledger
        #: Responses observed.
        self.responses = 0
        #: Responses ignored in part or whole (stale, malformed, contradictory headers).
        self.ignored = 0
        #: Window units taken on behalf of use the server counted and we did not send.
        self.phantom_units = 0
        #: Daily units taken on behalf of use the server counted and we did not send.
        self.daily_units = 0
        #: Pauses made (Retry-After, a spent budget, a 429).
        self.pauses = 0
        #: 429 responses observed.
        self.throttled = 0
        self.rebind(limiter)

    # -- the limits ---------------------------------------------------------------------------
    def rebind(self, limiter: Limiter) -> None:
        """Calibrate ``limiter`` from now on (an adapter whose presets changed); what was learned
        from the server is applied to it, the probe and the counters are kept.

        Raises:
            TypeError: ``limiter`` is not a limiter.
        """
        if not all(callable(getattr(limiter, m, None)) for m in ("try_acquire", "acquire", "pause")):
            raise TypeError(f"limiter must be a ratewindow limiter, got {limiter!r}")
        with self._lock:
            self._configured = limiter
            members: tuple[_BaseLimiter, ...] | None = None
            if isinstance(limiter, Limits):
                members = limiter.limiters
            elif isinstance(limiter, _BaseLimiter):
                members = (limiter,)
            self._members = members
            self._swaps: dict[int, int] = {}  # member index -> the server's (smaller, or raised) limit
            self._learned: dict[float, int] = {}  # window -> limit, for windows the configured limits lack
            self._targets: dict[str, _Target] = {}
            self._store: Store | None = None
            if members is not None:
                first = members[0]
                self._name = first.name
                self._store = first._store
                self._clock: Clock = first._clock
            else:
                self._name = str(getattr(limiter, "name", "limiter"))
                self._clock = MonotonicClock()
            self._wall: Clock = WallClock() if isinstance(self._clock, MonotonicClock) else self._clock
            self._probes = self._probe_registry()
            self._recompute()
            self._rebuild()
            for member in members or ():
                if isinstance(member, SlidingWindow):
                    self._target_of(member)

    @property
    def limiter(self) -> Limiter:
        """The limits in force: the configured ones, tightened (or raised) by what was learned."""
        return self._effective

    @property
    def configured(self) -> Limiter:
        """The limiter this calibrator was given."""
        return self._configured

    @property
    def learned(self) -> dict[str, Rate]:
        """The server's policies seen so far, by name ("" for an unnamed one)."""
        with self._lock:
            return {scope: Rate(limit, window) for scope, (limit, window) in self._policies.items()}

    @property
    def probing(self) -> bool:
        """Whether the first response is still awaited (requests wait at the probe)."""
        return not self._probe.known

    def _margin(self, window: float) -> float:
        margin = self.calibration.margin
        return window / 100.0 if margin is None else margin

    def _twin(self, member: SlidingWindow, limit: int) -> SlidingWindow:
        return SlidingWindow(limit, member.window, name=member.name, margin=member.margin,
                             store=member._store, clock=member._clock)

    def _learned_window(self, window: float, limit: int) -> SlidingWindow:
        return SlidingWindow(limit, window, name=self._name, margin=self._margin(window), store=self._store,
                             clock=self._clock)

    def _rebuild(self) -> None:
        members = self._members
        if members is None or (not self._swaps and not self._learned):
            self._effective = self._configured
            return
        parts: list[_BaseLimiter] = [
            self._twin(m, self._swaps[i]) if i in self._swaps and isinstance(m, SlidingWindow) else m
            for i, m in enumerate(members)
        ]
        parts += [self._learned_window(w, q) for w, q in sorted(self._learned.items())]
        effective = Limits(*parts, name=getattr(self._configured, "name", self._name))
        effective._observers = getattr(self._configured, "_observers", ())  # metrics keep counting
        self._effective = effective
        for part in parts:
            if isinstance(part, SlidingWindow) and part._specs[0].key in self._targets:
                self._targets[part._specs[0].key].window = part

    def _target_of(self, window: SlidingWindow) -> _Target:
        key = window._specs[0].key
        target = self._targets.get(key)
        if target is None:
            target = self._targets[key] = _Target(window)
        elif target.window.limit != window.limit:
            target.window = window
        return target

    def _window_of(self, obs: Observation) -> float | None:
        if obs.window is not None:
            return obs.window
        window = self._inferred.get(obs.policy)
        if obs.reset is not None and obs.reset > 0 and obs.limit is not None:
            guess = float(max(1, math.ceil(obs.reset - 1e-6)))
            if window is None or guess > window:
                window = self._inferred[obs.policy] = guess
        return window

    def _member_for(self, window: float) -> int | None:
        """The index of the configured ``SlidingWindow`` with this window length, if any."""
        for index, member in enumerate(self._members or ()):
            if isinstance(member, SlidingWindow) and abs(member.window - window) <= 1e-9 * max(1.0, window):
                return index
        return None

    def _recompute(self) -> None:
        """The tightened (or raised) members and the learned windows that the server's policies
        call for: per window length, the smallest limit any policy shows. Lock held."""
        cal = self.calibration
        members = self._members or ()
        by_window: dict[float, int] = {}
        for limit, window in self._policies.values():
            by_window[window] = min(limit, by_window.get(window, limit))
        swaps: dict[int, int] = {}
        learned: dict[float, int] = {}
        for window, limit in by_window.items():
            index = self._member_for(window)
            if index is not None:
                member = members[index]
                assert isinstance(member, SlidingWindow)
                if (limit < member.limit and cal.tighten) or (limit > member.limit and cal.raise_limits):
                    swaps[index] = limit
            elif cal.tighten or cal.raise_limits:
                learned[window] = limit
        self._swaps, self._learned = swaps, learned

    def _resolve(self, obs: Observation) -> _Target | DailyQuota | None:
        """The member or learned window an observation calibrates; records what it shows of the
        server's policy. Called with the lock held; the caller rebuilds when anything changed."""
        members = self._members
        if members is None:
            return None
        if obs.daily:
            return next((m for m in members if isinstance(m, DailyQuota)), None)
        window = self._window_of(obs)
        if window is None:
            return None
        if obs.limit is not None and obs.limit > 0 and self._policies.get(obs.policy) != (obs.limit, window):
            self._policies[obs.policy] = (obs.limit, window)
            self._recompute()
        index = self._member_for(window)
        if index is not None:
            member = members[index]
            assert isinstance(member, SlidingWindow)
            limit = self._swaps.get(index)
            return self._target_of(member if limit is None else self._twin(member, limit))
        if window in self._learned:
            return self._target_of(self._learned_window(window, self._learned[window]))
        return None

    # -- sharing what was learned through the store ----------------------------------------------
    def _note_key(self) -> str:
        return f"calibration:{self._name}"

    def _read_note(self) -> None:
        """Apply what another process learned (once, before the first request goes)."""
        self._note_read = True
        reader = getattr(self._store, "read_note", None)
        if not callable(reader):
            return
        try:
            text = reader(self._note_key())
            found = json.loads(text) if text else None
        except Exception as exc:  # a store that cannot answer: learn from responses instead
            self._once("note", "ratewindow: could not read what was learned for %r: %s", self._name, exc)
            return
        if not isinstance(found, dict):
            return
        applied = False
        with self._lock:
            for scope, pair in found.items():
                if (isinstance(scope, str) and isinstance(pair, list) and len(pair) == 2
                        and isinstance(pair[0], int) and isinstance(pair[1], (int, float)) and pair[0] > 0
                        and 0 < pair[1] < math.inf):
                    self._resolve(Observation(policy=scope, limit=pair[0], window=float(pair[1])))
                    applied = True
            if applied:
                self._rebuild()
        if applied:
            log.debug("ratewindow: %r starts with the limits another process learned: %s", self._name, found)
            self._probe.done()

    def _write_note(self, force: bool) -> None:
        writer = getattr(self._store, "note", None)
        if not callable(writer) or (isinstance(self._store, MemoryStore) and not force):
            return
        now = MonotonicClock.now()
        if not force and now - self._noted_at < NOTE_TTL / 2:
            return
        self._noted_at = now
        with self._lock:
            text = json.dumps({scope: [q, w] for scope, (q, w) in self._policies.items()}, sort_keys=True)
        try:
            writer(self._note_key(), text, NOTE_TTL)
        except Exception as exc:
            self._once("note-write", "ratewindow: could not share what was learned for %r: %s", self._name,
                       exc)

    # -- around every request -----------------------------------------------------------------
    def enter(self, timeout: float | None = None) -> bool:
        """Wait at the probe (at most ``timeout`` seconds, default ``max_wait``); True if the caller
        goes as a probe (give its ticket to ``observe`` or ``failed``)."""
        if not self._note_read:
            self._read_note()
        if self._probe.known:
            return False
        went = self._probe.enter(self._max_wait if timeout is None else timeout)
        return went and self._register_probe()

    async def enter_async(self, timeout: float | None = None) -> bool:
        """``enter`` without blocking the event loop."""
        if not self._note_read:
            if isinstance(self._store, MemoryStore) or self._store is None:
                self._read_note()
            else:
                await asyncio.to_thread(self._read_note)
        if self._probe.known:
            return False
        went = await self._probe.enter_async(self._max_wait if timeout is None else timeout)
        if not went:
            return False
        if self._probes is None or isinstance(self._store, MemoryStore):
            return self._register_probe()
        return await asyncio.to_thread(self._register_probe)

    # -- probes of every process -------------------------------------------------------------------
    def _probe_registry(self) -> ConcurrencyLimit | None:
        """Where every process sharing the store counts its probes in flight (None: a store
        without leases). A process that learns a window the store did not hold yet yields the
        other processes' probes still on their way: sent before the window was known, they are
        in no ledger, and the server may not have counted them when it answered."""
        store = self._store
        methods = ("lease", "release", "leases")
        if store is None or not all(callable(getattr(store, m, None)) for m in methods):
            return None
        held = self._max_wait if self._max_wait else 60.0
        try:
            return ConcurrencyLimit(LEDGER_LIMIT, lease=held, name=f"{self._name}:probes",
                                    store=store, clock=self._clock)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return None

    def _register_probe(self) -> bool:
        """The caller goes as a probe: count it on the store first, then look at what other
        processes learned once more (a process that learns writes its note before it counts the
        probes in flight, so each probe is either counted there or sees the note). True: it goes
        as a probe; False: the note made the budget known, so it goes as any request."""
        registry = self._probes
        if registry is not None:
            try:
                lease = registry.try_hold()
            except Exception as exc:  # a store that cannot answer: the probe goes uncounted
                self._once("probe-lease", "ratewindow: could not count a probe of %r: %s", self._name, exc)
                lease = None
            if lease is not None:
                with self._lock:
                    self._probe_leases.append(lease)
        self._read_note()
        if self._probe.known:  # another process had learned it meanwhile
            self._leave_probe(learned=True)
            return False
        return True

    def _leave_probe(self, learned: bool) -> None:
        """A probe came back (``learned``: its response showed the budget) or failed: free its
        slot, and its count on the store (every one of this process's once the budget is known)."""
        self._probe.leave(learned)
        self._release_probes(every=self._probe.known)

    def _release_probes(self, every: bool) -> None:
        with self._lock:
            if every:
                leases, self._probe_leases = self._probe_leases, []
            else:
                leases = self._probe_leases[:1]
                del self._probe_leases[:1]
        for lease in leases:
            with contextlib.suppress(Exception):  # it expires on its own
                lease.release()

    def _probes_elsewhere(self) -> int:
        """Probes other processes have in flight now (0 if the store cannot say)."""
        registry = self._probes
        if registry is None:
            return 0
        try:
            counted = registry.in_use()
        except Exception:
            return 0
        with self._lock:
            return max(0, counted - len(self._probe_leases))

    def sending(self, cost: int = 1, probe: bool = False) -> Ticket:
        """Record a request of ``cost`` units about to be sent (its permits taken); returns its
        ticket. Adds one store call per target window while the server sends rate-limit headers.

        Raises:
            StoreUnavailable: a shared store could not be reached.
        """
        now = self._clock.now()
        counts: dict[str, int] = {}
        if not self._quiet:
            with self._lock:
                targets = list(self._targets.values())
            for target in targets:
                target.sent.try_acquire(cost)
                counts[target.key] = LEDGER_LIMIT - int(target.sent.available())
                with self._lock:
                    target.sends.append(now)
                    span = target.window.window + target.window.margin
                    while target.sends and target.sends[0] + span <= now:
                        target.sends.popleft()
        return Ticket(now, cost, counts, probe)

    def acquire(self, cost: int = 1, timeout: float | None = None) -> Ticket:
        """Wait at the probe, take ``cost`` units from :attr:`limiter` (at most ``timeout``
        seconds), and record the request; returns its ticket.

        Raises:
            AcquireTimeout: no permit within ``timeout`` seconds (nothing recorded).
            StoreUnavailable: a shared store could not be reached.
        """
        probe = self.enter(timeout)
        try:
            self._effective.acquire(cost, timeout=timeout)
            return self.sending(cost, probe)
        except BaseException:
            if probe:
                self._leave_probe(learned=False)
            raise

    async def acquire_async(self, cost: int = 1, timeout: float | None = None) -> Ticket:
        """``acquire`` for asyncio: never blocks the event loop. Raises as ``acquire``."""
        probe = await self.enter_async(timeout)
        try:
            await self._effective.acquire_async(cost, timeout=timeout)
            if isinstance(self._store, MemoryStore) or not self._targets or self._quiet:
                return self.sending(cost, probe)
            return await asyncio.to_thread(self.sending, cost, probe)
        except BaseException:
            if probe:
                self._leave_probe(learned=False)
            raise

    def failed(self, ticket: Ticket | None) -> None:
        """The request of ``ticket`` got no response (a connection error, a timeout)."""
        if ticket is not None and ticket.probe:
            self._leave_probe(learned=False)

    def done(self) -> None:
        """End probing now: every waiting request goes."""
        self._probe.done()
        if self._probe_leases:
            self._release_probes(every=True)

    def observe(self, ticket: Ticket | None, headers: object, status: int | None = None, *,
                pause: bool = True) -> tuple[Observation, ...]:
        """Apply one response: its ``status`` and its ``headers`` (any headers object); returns
        what was observed. Never raises on header content. ``pause=False``: learn, but never
        pause (the caller handles 429s).

        Raises:
            StoreUnavailable: a shared store could not be reached.
        """
        fields = _fields(headers, ["Age"])
        age = _one(fields, "age")
        if age is not None and age.isdigit() and int(age) > 0:
            self._once("stale-age", "ratewindow: rate-limit headers of a cached response (Age: %s) ignored",
                       age)
            with self._lock:
                self.ignored += 1
            return self.apply(ticket, (), status, pause=pause)
        return self.apply(ticket, self.read(headers), status, pause=pause)

    async def observe_async(self, ticket: Ticket | None, headers: object, status: int | None = None, *,
                            pause: bool = True) -> tuple[Observation, ...]:
        """``observe`` without blocking the event loop (a shared store's calls run in a thread)."""
        if isinstance(self._store, MemoryStore) or self._store is None:
            return self.observe(ticket, headers, status, pause=pause)
        return await asyncio.to_thread(self.observe, ticket, headers, status, pause=pause)

    def read(self, headers: object) -> tuple[Observation, ...]:
        """The observations of ``headers`` as this calibrator reads them (its families, its reset
        reading, its clock for dates); malformed headers are counted and logged once."""
        return parse_headers(headers, families=self.calibration.families, reset=self.calibration.reset,
                             now=self._wall.now(), malformed=self._malformed)

    def _malformed(self, family: str) -> None:
        with self._lock:
            self.ignored += 1
        self._once(f"malformed-{family}", "ratewindow: %s headers that are malformed, stale or contradictory "
                   "are ignored (logged once)", family)

    def _once(self, key: str, message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            log.debug(message, *args)

    def apply(self, ticket: Ticket | None, observations: Iterable[Observation],
              status: int | None = None, *, pause: bool = True) -> tuple[Observation, ...]:
        """Apply observations already read (an adapter that reads its own headers), as ``observe``.

        Raises:
            StoreUnavailable: a shared store could not be reached.
        """
        found = tuple(observations)
        retry: float | None = None
        wait = 0.0
        with self._lock:
            learned_before = dict(self._policies)
            targets_before = set(self._targets)
            self.responses += 1
            if status == 429:
                self.throttled += 1
            for obs in found:
                if obs.retry_after is not None:
                    if status in (None, 429, 503):
                        retry = max(retry or 0.0, obs.retry_after)
                    continue
                swaps, learned = dict(self._swaps), dict(self._learned)
                target = self._resolve(obs)
                if swaps != self._swaps or learned != self._learned:
                    self._rebuild()
                remaining = obs.remaining
                if remaining is None:
                    continue
                if isinstance(target, _Target):
                    if ticket is not None:
                        ours = self._ours(ticket, target)
                        self._top_up_window(target, target.window.limit - remaining - ours)
                elif isinstance(target, DailyQuota):
                    self._calibrate_daily(target, obs)
                elif remaining == 0 and obs.reset:
                    wait = max(wait, obs.reset)
                if status == 429 and remaining == 0 and obs.reset:
                    wait = max(wait, obs.reset)
            if ticket is not None and ticket.counts:
                self._quiet = not any(o.retry_after is None for o in found)
            elif found:
                self._quiet = False
        with self._lock:
            learned_now = dict(self._policies)
            new_windows = [t for key, t in self._targets.items()
                           if key not in targets_before and self._is_learned(t)]
        if learned_now != learned_before:
            for scope, (q, w) in learned_now.items():
                if learned_before.get(scope) != (q, w):
                    log.info("ratewindow: %r learned %d per %g s%s from the response headers",
                             self._name, q, w,
                             f" ({scope!r})" if scope else "")
            self._write_note(force=True)
        elif learned_now:
            self._write_note(force=False)
        if new_windows:  # after the note: a probe not counted now sees the note (``_register_probe``)
            elsewhere = self._probes_elsewhere()
            if elsewhere > 0:
                with self._lock:
                    for target in new_windows:
                        self._take_phantoms(target, min(elsewhere, target.window.limit))
        if retry is not None:
            wait = retry  # Retry-After takes precedence
        elif status == 429 and wait <= 0:
            wait = self.calibration.pause_429
        if wait > 0 and pause:
            seconds = min(wait, MAX_PAUSE)
            log.info("ratewindow: pausing %r for %.3f s (%s)", self._name, seconds,
                     "Retry-After" if retry is not None else f"status {status}" if status else "budget spent")
            self._effective.pause(seconds)
            with self._lock:
                self.pauses += 1
        if ticket is not None and ticket.probe:
            self._leave_probe(learned=True)
        return found

    def _ours(self, ticket: Ticket, target: _Target) -> int:
        """Our units the server may have counted when this request arrived: those sent within
        its window when this one was sent, and this process's sent within a margin after it
        (they can overtake it on the way, and are then counted first)."""
        sent = ticket.counts.get(target.key, 0)
        sends = target.sends
        after = bisect.bisect_right(sends, ticket.at)
        close = bisect.bisect_right(sends, ticket.at + target.window.margin) - after
        return sent + close * ticket.cost

    def _top_up_window(self, target: _Target, foreign: int) -> None:
        """Yield ``foreign`` units (others' use beyond the room the limit leaves) on the target:
        a top-up of the phantom ledger to that level, never waiting. Lock held."""
        limit = target.window.limit
        if foreign > math.ceil(limit * NOISE):
            foreign += max(1, math.ceil(limit * SAFETY))
        if foreign <= 0:
            return
        live = LEDGER_LIMIT - int(target.phantom.available())
        missing = min(foreign - live, limit)
        if missing <= 0:
            return
        self._take_phantoms(target, missing)

    def _take_phantoms(self, target: _Target, missing: int) -> None:
        """Yield ``missing`` units on the target: taken now where they fit, booked (never waited
        for) where they do not, and counted in the phantom ledger. Lock held."""
        window = target.window
        now = min(missing, int(window.available()))
        if now > 0 and not window.try_acquire(now):
            now = 0
        if missing > now:
            window.reserve(missing - now)
        target.phantom.try_acquire(missing)
        self.phantom_units += missing

    def _is_learned(self, target: _Target) -> bool:
        """Whether the target is a learned window (one the configured limits do not have)."""
        return self._member_for(target.window.window) is None

    def _calibrate_daily(self, daily: DailyQuota, obs: Observation) -> None:
        """Take the units the server counts today and the local quota does not. Lock held."""
        remaining = obs.remaining
        assert remaining is not None
        now = self._clock.now()
        if remaining != 0 and now - self._daily_checked < DAILY_EVERY:
            return
        self._daily_checked = now
        limit = obs.limit if obs.limit is not None else daily.limit
        left = int(daily.available())
        missing = min(limit - remaining - (daily.limit - left), left)
        if missing > 0 and daily.try_acquire(missing):
            self.daily_units += missing

    def exhaust_daily(self) -> None:
        """The server said the day's units are spent: spend the configured daily quota too."""
        with self._lock:
            daily = next((m for m in self._members or () if isinstance(m, DailyQuota)), None)
            if daily is not None:
                self._calibrate_daily(daily, Observation(limit=daily.limit, remaining=0, daily=True))

    def __repr__(self) -> str:
        learned = ", ".join(f"{scope or 'default'}={q}/{w:g}s"
                            for scope, (q, w) in sorted(self._policies.items()))
        return (f"Calibrator(limiter={getattr(self._configured, 'name', '?')!r}, learned={{{learned}}}, "
                f"responses={self.responses}, phantom_units={self.phantom_units})")


class Calibrators:
    """One ``Calibrator`` per limiter, built on first use: what a transport (``ratewindow.http``,
    ``ratewindow.httpx``) keeps for the limiters its requests draw from.

    ``learn`` is the transport's argument (True: ``Calibration()``; False or None: no learning);
    ``wait`` the seconds a calibrator's probe may hold a request (None: 60).
    """

    __slots__ = ("_by_limiter", "_learn", "_lock", "_wait")

    def __init__(self, learn: bool | Calibration | None, wait: float | None) -> None:
        self._learn: Calibration | None = (Calibration() if learn is True else learn) or None
        self._wait = 60.0 if wait is None else wait
        self._by_limiter: weakref.WeakKeyDictionary[object, Calibrator] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def of(self, limiter: Limiter) -> Calibrator | None:
        """The ``Calibrator`` that learns for ``limiter`` (None without learning)."""
        if self._learn is None:
            return None
        with self._lock:
            calibrator = self._by_limiter.get(limiter)
            if calibrator is None:
                calibrator = self._by_limiter[limiter] = Calibrator(limiter, self._learn, max_wait=self._wait)
            return calibrator
