"""Wrap the official HubSpot client once: every HTTP request it makes takes exactly one permit.

How the SDK (``hubspot-api-client`` 12) sends requests, and where this module steps in:

* ``hubspot.HubSpot`` keeps a ``config`` dict. Every API object it hands out (each access of
  ``client.crm.contacts.basic_api``, each page of ``crm.objects.get_all``) is built by
  ``config["api_factory"]``, a supported hook, from a new ``Configuration``, ``ApiClient`` and
  ``RESTClientObject`` (with its own urllib3 ``PoolManager``). Every request of a generated API
  goes through ``api_client.rest_client.request(method, url, ...)``, which raises the package's
  own ``ApiException`` for any status outside 2xx.
  :class:`_GovernedApiFactory` builds the API object as the SDK would, then points its rest
  client at one shared ``PoolManager`` (sized to the workers, so no "Connection pool is full")
  whose connection pools take a permit before each request they send and read the response's
  headers after: one permit per request on the wire, each redirect hop included. Its urllib3
  ``Retry`` sends once and follows redirects as the SDK's default does (:func:`send_once`), so
  a dropped connection or a read timeout raises what the SDK raises (``MaxRetryError`` for a
  GET) without the SDK's three re-sends.
* ``client.api_request(options)`` uses ``requests`` (``requests.get``, ``requests.head``, ...:
  a new session and connection per call, ``base_url`` instead of ``host``). The wrapped client's
  ``api_request`` builds the request with the SDK's own builder, picks the method and the
  redirect rule as the SDK does (an unknown method is sent as GET; HEAD does not follow
  redirects) and sends it through a new session whose transport adapter is shared (pooled) and
  takes the permit (``max_retries=0``).

Limiters are named from a fingerprint of the token (the first 12 hex digits of its SHA-256) or
the ``account_id`` given, never from the token itself, so processes sharing a store share limits.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import threading
import types
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
import urllib3
from hubspot import HubSpot
from requests.adapters import HTTPAdapter

from ratewindow import (
    AcquireTimeout,
    Calibration,
    Calibrator,
    Clock,
    Forecast,
    HubSpotRateLimit,
    Limiter,
    MonotonicClock,
    Observer,
    RateLimitedExecutor,
    Retry,
    SlidingWindow,
    Store,
    Ticket,
    TokenBucket,
    WallClock,
    as_store,
    store_from_env,
)

from ._errors import DAILY, RETRY, SECONDLY, TEN_SECONDLY_ROLLING, DailyLimitExhausted, policy_of
from ._limits import TIERS, LimitSet, Tier, build_preset, build_user, is_search, next_reset, workers_for

__all__ = ["ClientStats", "HubSpotLimiter", "client", "executor", "limiter_of", "send_once", "wrap"]

_log = logging.getLogger("ratewindow.hubspot")

#: Share of the window sent before the first response has shown what others already spent.
PROBE_SHARE = 0.1


def send_once(sdk_retry: object = None) -> urllib3.Retry:
    """The urllib3 ``Retry`` of a wrapped client's generated APIs: send each request once, and
    follow redirects as the SDK's own policy ``sdk_retry`` would (None: urllib3's default,
    ``Retry(3)``, which is what the SDK uses unless ``retry=`` was given).

    ``connect``, ``read``, ``other`` and ``status`` are 0, not ``False``: an error then raises
    what the SDK raises once its re-sends are spent (``MaxRetryError`` for a dropped connection
    or a read timeout on a GET; the error itself for a POST, which urllib3 never re-sends), and
    nothing is re-sent below ratewindow. ``retries=False`` would raise ``ProtocolError`` or
    ``ReadTimeoutError`` instead and stop following redirects. The redirect budget, the methods
    urllib3 may re-send and the headers dropped on a cross-host redirect are the SDK's.

    >>> send_once()
    Retry(total=None, connect=0, read=0, redirect=3, status=0)
    """
    base = urllib3.Retry.from_int(sdk_retry)  # type: ignore[arg-type]
    redirect = base.redirect if base.redirect is not None else base.total
    return urllib3.Retry(
        total=None, connect=0, read=0, other=0, status=0, redirect=redirect,
        raise_on_redirect=base.raise_on_redirect, allowed_methods=base.allowed_methods,
        remove_headers_on_redirect=base.remove_headers_on_redirect,
    )  # fmt: skip


class HubSpotClient(Protocol):
    """What this adapter needs of a ``hubspot.HubSpot`` (the SDK ships no type hints)."""

    config: dict[str, Any]

    def api_request(self, options: dict[str, Any]) -> Any: ...


def fingerprint(secret: str) -> str:
    """A short, non-reversible name for a token: the first 12 hex digits of its SHA-256 (the
    same as ``ratewindow_hubspot.testing.token_fingerprint``)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def _user_agent() -> str:
    # The SDK's default factory reads the installed version on every API object (~0.4 ms); once is enough.
    try:
        version = metadata.version("hubspot-api-client")
    except metadata.PackageNotFoundError:  # pragma: no cover - the SDK is a dependency
        version = "unknown"
    return f"hubspot-api-client-python; {version}"


@dataclass(frozen=True)
class ClientStats:
    """A snapshot of what a wrapped client did (``limiter_of(client).stats``).

    >>> ClientStats().requests
    0
    """

    #: HTTP requests sent; each took exactly one permit.
    requests: int = 0
    #: Of those, CRM search requests.
    search_requests: int = 0
    #: Requests that failed without a response (connection errors, timeouts).
    transport_errors: int = 0
    #: 429 responses by ``policyName``.
    rate_limited: Mapping[str, int] = field(default_factory=dict)
    #: Seconds spent waiting for permits and pauses, summed over threads.
    permit_wait: float = 0.0
    #: Window units taken on behalf of requests other clients made (header calibration).
    phantom_units: int = 0
    #: Daily units taken on behalf of requests other clients made (header calibration).
    daily_units: int = 0
    #: Times the limits were changed to what the headers showed (presets only).
    adoptions: int = 0
    #: ``X-HubSpot-RateLimit-Remaining`` of the latest response that had it.
    window_remaining: int | None = None
    #: ``X-HubSpot-RateLimit-Daily-Remaining`` of the latest response that had it.
    daily_remaining: int | None = None

    @property
    def refusal_share(self) -> float:
        """The error budget spent: 429 responses (every ``policyName``) per response, requests
        that got none (``transport_errors``) aside. HubSpot asks apps to stay under 0.05; 0.0
        before any response.

        >>> ClientStats(requests=200, rate_limited={"TEN_SECONDLY_ROLLING": 3}).refusal_share
        0.015
        """
        answered = self.requests - self.transport_errors
        return sum(self.rate_limited.values()) / answered if answered > 0 else 0.0


@dataclass(frozen=True)
class _Verdict:
    policy: str
    retry_after: float  # seconds; for DAILY, see ``_daily_until``


@dataclass(frozen=True)
class _Ticket:
    search: bool
    limits: LimitSet
    sent: Ticket | None  # what the calibrator recorded (None for search requests)
    at: float  # when it was sent (self._clock)


class _SharedPool:
    """Stands in for each API object's urllib3 ``PoolManager``: forwards to the one shared
    manager, which can be replaced by a larger one while requests run."""

    __slots__ = ("manager",)

    def __init__(self) -> None:
        self.manager: Any = None

    def request(self, *args: Any, **kwargs: Any) -> Any:
        return self.manager.request(*args, **kwargs)

    def clear(self) -> None:
        if self.manager is not None:
            self.manager.clear()


class HubSpotLimiter:
    """The limits of one wrapped client, and what it does around every HTTP request.

    Built by :func:`client` and :func:`wrap`; get it back with :func:`limiter_of`. Each request
    takes one permit from :attr:`account` (:attr:`search` for CRM search requests), waiting as
    long as needed up to ``max_wait`` seconds. Every response's ``X-HubSpot-RateLimit-*`` headers
    are applied by a ``ratewindow.Calibrator`` (other apps' and processes' use is yielded on the
    window, the daily quota follows the server's count); a 429 pauses the right limiter for every
    thread and every process sharing the store. It can be watched like a ratewindow limiter
    (:meth:`observe`, ``PrometheusMetrics().watch(limiter_of(hs))``).

    >>> import ratewindow_hubspot
    >>> hs = ratewindow_hubspot.client(access_token="pat-...", tier="starter")
    >>> ratewindow_hubspot.limiter_of(hs).account  # doctest: +ELLIPSIS
    Limits(SlidingWindow(limit=100, window=10.0, margin=0.1, used=0, name='hubspot:...'), DailyQuota(...))
    """

    def __init__(
        self,
        *,
        token_fingerprint: str,
        account_id: str | None,
        tier: str,
        limits: Limiter | None,
        search_limits: Limiter | None,
        store: Store,
        time_zone: str,
        margin: float | None,
        max_wait: float,
        pool_size: int | None,
        clock: Clock | None,
        sdk_retry: object = None,
    ) -> None:
        if limits is None and tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}; expected one of {', '.join(TIERS)}")
        if tier == "oauth_app" and account_id is None:
            raise ValueError(
                "tier='oauth_app' is limited per installing account: give account_id= (the portal id); "
                "OAuth tokens change every 30 minutes, so a token cannot name the account's window"
            )
        if isinstance(max_wait, bool) or not isinstance(max_wait, (int, float)) or not max_wait >= 0:
            raise ValueError(f"max_wait must be a number of seconds >= 0, got {max_wait!r}")
        if pool_size is not None and (isinstance(pool_size, bool) or not isinstance(pool_size, int)
                                      or pool_size < 1):
            raise ValueError(f"pool_size must be None or a positive int, got {pool_size!r}")
        preset = TIERS.get(tier) if limits is None else None
        account_key = token_fingerprint if account_id is None else f"account-{account_id}"
        # OAuth apps are limited per installing account; private apps per token.
        window_key = account_key if tier == "oauth_app" else token_fingerprint
        self._window_name = f"hubspot:{window_key}"
        self._account_name = f"hubspot:{account_key}"
        self._time_zone = time_zone
        self._margin = margin
        self._store = store
        self._clock_arg = clock
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        self._wall: Clock = clock if clock is not None else WallClock()  # Unix time, for daily resets
        self._search_arg = search_limits
        self._max_wait = float(max_wait)
        #: The preset the limits came from (updated when headers show other limits), or None for
        #: limits the user gave.
        self.tier: Tier | None = preset
        if preset is not None:
            self._limits = build_preset(
                window_limit=preset.window_limit, window=preset.window, daily_limit=preset.daily_limit,
                margin=margin, window_name=self._window_name, account_name=self._account_name,
                time_zone=time_zone, search=search_limits, store=store, clock=clock,
            )  # fmt: skip
        else:
            assert limits is not None
            self._limits = build_user(
                limits, account_name=self._account_name, search=search_limits, store=store, clock=clock,
            )  # fmt: skip
        window = self._limits.window
        # Until the first response shows what else spends the budget, send at most 10 % of the
        # window (at least one request): a window another process has nearly filled is not burst
        # into, and a handful of first calls do not wait a round trip. HubSpot's presets are
        # adopted here (``_adopt``), so the calibrator only yields to others' use.
        probe = max(1, math.ceil(window.limit * PROBE_SHARE)) if window is not None else 1
        self._calibrator = Calibrator(
            self._limits.account,
            Calibration(families=(HubSpotRateLimit,), tighten=False, probe=probe, pause_429=0.0),
            max_wait=self._max_wait,
        )
        self._lock = threading.Lock()
        self._hold = float("-inf")  # process-local mirror of the latest window pause (self._clock)
        self._search_hold = float("-inf")
        self._sends: deque[float] = deque()  # this process's non-search send times (self._clock)
        self._stats: dict[str, Any] = {
            "requests": 0, "search_requests": 0, "transport_errors": 0, "permit_wait": 0.0,
            "adoptions": 0, "window_remaining": None, "daily_remaining": None,
        }  # fmt: skip
        self._by_policy: dict[str, int] = {}
        self._daily_until = float("-inf")  # Unix time: HubSpot said the day's requests are spent
        self._warned_limits = False
        self._pool_size = pool_size if pool_size is not None else max(10, self.workers(1.0))
        self._pool = _SharedPool()
        self._pool_config: Any = None
        self._rest_class: Any = None
        self._adapter: _GovernedAdapter | None = None
        self._send_once = send_once(sdk_retry)
        self._last = threading.local()  # per thread: (ticket, verdict) of the latest hop
        self._watchers: tuple[Observer, ...] = ()

    # -- public -------------------------------------------------------------------------------
    def observe(self, observer: Observer) -> None:
        """Tell ``observer`` (a ``ratewindow.Observer``) about every request's permit from now on,
        under :attr:`name`, search requests included: each grant once with the seconds it waited,
        each refusal (no permit within ``max_wait``, or the day's requests spent), each pause (a
        429), and each response (``on_response``, ``refused`` for a 429), whatever limits the
        headers make the client adopt.

        Raises:
            TypeError: ``observer`` has no ``on_acquire`` or no ``on_pause`` method.
        """
        if not (hasattr(observer, "on_acquire") and hasattr(observer, "on_pause")):
            raise TypeError(f"observer must have on_acquire and on_pause methods, got {observer!r}")
        with self._lock:
            self._watchers = (*self._watchers, observer)

    @property
    def account(self) -> Limiter:
        """What every non-search request takes a permit from: the rolling window and the daily
        quota (or the ``limits`` given)."""
        return self._limits.account

    @property
    def search(self) -> Limiter:
        """What CRM search requests take a permit from: the search limit (5 per second per
        account by default) and every member of :attr:`account`, all-or-nothing."""
        return self._limits.search

    @property
    def name(self) -> str:
        """The name of the rolling-window limiter (``hubspot:`` and a token or account fingerprint)."""
        return self._window_name

    @property
    def pool_size(self) -> int:
        """Connections kept open to HubSpot (one shared pool for every API object)."""
        return self._pool_size

    @property
    def stats(self) -> ClientStats:
        """A snapshot of the counters since the client was wrapped."""
        with self._lock:
            values = dict(self._stats)
            policies = dict(self._by_policy)
        return ClientStats(
            rate_limited=policies,
            phantom_units=self._calibrator.phantom_units,
            daily_units=self._calibrator.daily_units,
            **values,
        )

    def rate(self) -> float:
        """Sustained requests per second the window allows (10.0 if the limits have no window)."""
        window = self._limits.window
        if window is not None:
            return window.limit / (window.window + window.margin)
        return 10.0

    def workers(self, latency: float = 0.5) -> int:
        """Threads that keep the window busy when a request takes ``latency`` seconds: Little's
        law, ``rate x latency``, times 2 for headroom, between 2 and 64."""
        return workers_for(self.rate(), latency)

    def ensure_pool(self, size: int) -> None:
        """Keep at least ``size`` connections open to HubSpot (one per worker thread)."""
        with self._lock:
            if size <= self._pool_size:
                return
            self._pool_size = size
            old, self._adapter = self._adapter, None
            if self._pool_config is not None:
                self._pool_config.connection_pool_maxsize = size
                previous = self._pool.manager
                self._pool.manager = self._governed_manager()
                previous.clear()  # idle connections close now; busy ones when returned
        if old is not None:
            old.close()

    def forecast(self, n: int, cost: int = 1) -> Forecast:
        """When ``n`` more non-search requests would all have been permitted at the current
        budget, and whether the daily quota stops them first, with its reset time:
        ``account.forecast`` (see ``ratewindow.Forecast``).

        Raises:
            TypeError: the ``limits`` given have no ``forecast``; or ``n``/``cost`` is bad.
        """
        forecast = getattr(self.account, "forecast", None)
        if forecast is None:
            raise TypeError(f"the limits {self.account!r} have no forecast")
        result: Forecast = forecast(n, cost)
        return result

    def pause(self, seconds: float) -> None:
        """Send no request (search included) for ``seconds`` seconds, from any thread or process
        sharing the store.

        Raises:
            ValueError: ``seconds`` is negative, NaN or infinite.
        """
        target = self._limits.window if self._limits.window is not None else self._limits.account
        target.pause(seconds)
        with self._lock:
            self._hold = max(self._hold, self._clock.now() + seconds)
        self._tell_pause(seconds)

    def close(self) -> None:
        """Close the pooled connections (the client stays usable and reconnects on demand)."""
        with self._lock:
            adapter, self._adapter = self._adapter, None
        self._pool.clear()
        if adapter is not None:
            adapter.close()

    def __repr__(self) -> str:
        limits = self._limits
        return (
            f"HubSpotLimiter(account={limits.account!r}, search={limits.search_window!r}, "
            f"requests={self._stats['requests']})"
        )

    # -- around every request -----------------------------------------------------------------
    def _before(self, method: str, path: str) -> _Ticket:
        """Take the request's one permit, waiting out any pause that began after it was booked.

        Raises:
            DailyLimitExhausted: the daily quota is spent (nothing sent).
            AcquireTimeout: no permit within ``max_wait`` seconds for another reason.
        """
        search = is_search(method, path)
        clock = self._clock
        began = clock.now()
        if self._daily_until > self._wall.now():
            self._tell(False, 0.0)
            raise self._daily_spent(self._limits)
        self._calibrator.enter(self._max_wait)  # the first response ends the probing (``_after``)
        limits = self._limits
        limiter = limits.search if search else limits.account
        try:
            while True:
                try:
                    self._take(limiter)
                except AcquireTimeout as exc:
                    raise self._refusal(limits, exc) from exc
                now = clock.now()
                hold = max(self._hold, self._search_hold) if search else self._hold
                if hold <= now:
                    break
                # A 429 paused the limiter after this permit was booked: the server's window is
                # full, so wait the pause out and take a fresh permit (the booked one stays spent,
                # which only errs on the safe side).
                clock.sleep(hold - now)
            sent = None if search else self._calibrator.sending()
        except BaseException:
            self._calibrator.done()  # nothing was sent; never leave the other threads waiting
            raise
        with self._lock:
            stats = self._stats
            stats["requests"] += 1
            stats["permit_wait"] += now - began
            if search:
                stats["search_requests"] += 1
            else:
                sends = self._sends
                sends.append(now)
                span = _span(limits.window, 10.0)
                while sends[0] + span <= now:
                    sends.popleft()
        return _Ticket(search, limits, sent, now)

    def _take(self, limiter: Limiter) -> None:
        """One permit from ``limiter``, told to the observers (see :meth:`observe`).

        Raises:
            AcquireTimeout: no permit within ``max_wait`` seconds.
        """
        try:
            waited = limiter.acquire(timeout=self._max_wait)
        except AcquireTimeout:
            self._tell(False, 0.0)
            raise
        self._tell(True, waited)

    def _tell(self, granted: bool, waited: float) -> None:
        for observer in self._watchers:
            observer.on_acquire(self._window_name, 1, granted, waited)

    def _tell_pause(self, seconds: float) -> None:
        for observer in self._watchers:
            observer.on_pause(self._window_name, float(seconds))

    def _tell_response(self, refused: bool) -> None:
        for observer in self._watchers:
            on_response = getattr(observer, "on_response", None)
            if on_response is not None:
                on_response(self._window_name, refused)

    def _refusal(self, limits: LimitSet, exc: AcquireTimeout) -> Exception:
        if limits.daily is not None and limits.daily.wait_time() > self._max_wait:
            return self._daily_spent(limits)
        return exc

    def _daily_spent(self, limits: LimitSet) -> DailyLimitExhausted:
        retry_at = max(self._daily_until, next_reset(limits.daily, self._time_zone, self._clock_arg))
        name = limits.daily.name if limits.daily is not None else self._account_name
        return DailyLimitExhausted(retry_at, name, retry_after=max(0.0, retry_at - self._wall.now()))

    def _failed(self) -> None:
        with self._lock:
            self._stats["transport_errors"] += 1
        self._calibrator.done()

    def _after(self, ticket: _Ticket, status: int, headers: object, body: object) -> _Verdict | None:
        """Apply one response: calibrate from its headers; for a 429, pause what its policy says.

        Returns what a 429 means for the caller, or None for any other status.
        """
        self._tell_response(status == 429)
        parsed = HubSpotRateLimit.parse(headers)
        if parsed is not None:
            limits = self._adopt(parsed)
            interval = limits.window.window if limits.window is not None else None
            # A response without the interval header is about the window the limits have.
            found = [replace(o, window=interval) if not o.daily and o.window is None else o
                     for o in parsed.observations()]
            self._calibrator.apply(ticket.sent, found, status, pause=False)
            with self._lock:
                if parsed.remaining is not None:
                    self._stats["window_remaining"] = parsed.remaining
                if parsed.daily_remaining is not None:
                    self._stats["daily_remaining"] = parsed.daily_remaining
        self._calibrator.done()
        if status != 429:
            return None
        limits = self._limits
        policy = policy_of(body) or (SECONDLY if ticket.search else TEN_SECONDLY_ROLLING)
        with self._lock:
            self._by_policy[policy] = self._by_policy.get(policy, 0) + 1
        if policy == DAILY:
            self._calibrator.exhaust_daily()
            retry_at = next_reset(limits.daily, self._time_zone, self._clock_arg)
            with self._lock:
                self._daily_until = max(self._daily_until, retry_at)
            _log.warning("429 DAILY: the daily limit of %s is spent until Unix time %.0f", self._account_name,
                         retry_at)
            return _Verdict(DAILY, 0.0)
        if policy == SECONDLY:
            seconds = _span(limits.search_window, 1.0)
            limits.search_window.pause(seconds)
            with self._lock:
                self._search_hold = max(self._search_hold, self._clock.now() + seconds)
            self._tell_pause(seconds)
            return _Verdict(SECONDLY, seconds)
        seconds = self._window_frees_in(limits, parsed)
        self.pause(seconds)
        _log.debug("429 %s on %s: paused for %.3f s", policy, self._window_name, seconds)
        return _Verdict(policy, seconds)

    def _window_frees_in(self, limits: LimitSet, parsed: HubSpotRateLimit | None) -> float:
        """Seconds until the server's window has room again, at the latest.

        The server's oldest request is at least as old as our oldest one in the window, so the
        window frees no later than our oldest request's expiry (or a whole window from now if we
        have none in it).
        """
        span = _span(limits.window, parsed.interval if parsed is not None and parsed.interval else 10.0)
        now = self._clock.now()
        with self._lock:
            sends = self._sends
            while sends and sends[0] + span <= now:
                sends.popleft()
            oldest = sends[0] if sends else now
        return min(span, max(oldest + span - now, 0.001))

    def _adopt(self, parsed: HubSpotRateLimit) -> LimitSet:
        """Limits from a preset follow what the headers say HubSpot enforces; the ``limits`` a
        user gave are kept (with one warning if HubSpot allows less)."""
        limits = self._limits
        window = limits.window
        if window is None or parsed.limit is None:
            return limits
        interval = parsed.interval if parsed.interval is not None else window.window
        daily_limit = limits.daily.limit if limits.daily is not None else None
        daily = parsed.daily if parsed.daily is not None else daily_limit
        if (parsed.limit, interval, daily) == (window.limit, window.window, daily_limit):
            return limits
        if self.tier is None:
            if not self._warned_limits and parsed.limit < window.limit:
                self._warned_limits = True
                _log.warning(
                    "HubSpot allows %d requests per %g s for %s, fewer than the limits given (%d); "
                    "expect 429s", parsed.limit, interval, self._window_name, window.limit,
                )
            return limits
        with self._lock:
            current = self._limits
            if current is not limits:  # another thread adopted first
                return current
            adopted = build_preset(
                window_limit=parsed.limit, window=interval, daily_limit=daily, margin=self._margin,
                window_name=self._window_name, account_name=self._account_name,
                time_zone=self._time_zone, search=self._search_arg, store=self._store, clock=self._clock_arg,
            )  # fmt: skip
            # A window of another length keeps its own log, empty: the calibrator yields what the
            # server counts in it, as it yields other clients' use (this very response does).
            self._limits = adopted
            self._calibrator.rebind(adopted.account)
            self._stats["adoptions"] += 1
            before = self.tier
            self.tier = Tier("headers", parsed.limit, interval, daily)
        _log.info(
            "HubSpot reports %d requests per %g s and %s per day for %s; adopting them (were %d per %g s "
            "and %s per day, preset %r)", parsed.limit, interval, daily, self._window_name, window.limit,
            window.window, daily_limit, before.name if before is not None else None,
        )  # fmt: skip
        return adopted

    # -- the SDK's generated APIs (urllib3) ---------------------------------------------------
    def _install(self, api_client: Any) -> None:
        """Point one ``ApiClient`` at the shared pool, whose connection pools take the permits."""
        configuration = api_client.configuration
        configuration.retries = self._send_once  # sent once; redirects followed as the SDK does
        rest = api_client.rest_client
        with self._lock:
            configuration.connection_pool_maxsize = self._pool_size
            if self._pool.manager is None:
                self._rest_class = type(rest)
                self._pool_config = configuration
                self._pool.manager = self._governed_manager()
        rest.pool_manager = self._pool
        rest.request = functools.partial(self._sdk_request, rest.request)

    def _governed_manager(self) -> Any:
        """A new ``PoolManager`` (as the SDK builds it: TLS, proxy and socket settings of the
        first configuration) whose connection pools take a permit per request sent. Caller
        holds the lock."""
        manager = self._rest_class(self._pool_config).pool_manager
        manager.pool_classes_by_scheme = {  # named as urllib3's, for the same error messages
            scheme: type(cls.__name__, (_GovernedPool, cls), {"_governor": self})
            for scheme, cls in manager.pool_classes_by_scheme.items()
        }
        return manager

    def _hop(self, send: Callable[..., Any], method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        """One request on the wire (the first one of an SDK call, or a redirect hop): take its
        permit, send it, apply its response's headers (and, for a 429, its policy)."""
        ticket = self._before(method, urlsplit(url).path)
        try:
            response = send(method, url, *args, **kwargs)
        except Exception:
            self._failed()
            raise
        status = int(response.status)
        body = response.data if status == 429 else None  # the SDK reads it anyway to raise ApiException
        verdict = self._after(ticket, status, response.headers, body)
        self._last.hop = (ticket, verdict)
        return response

    def _sdk_request(self, send: Callable[..., Any], method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        """The rest client's ``request``: the permits are taken per hop (``_hop``); a 429 the SDK
        raises as ``ApiException`` gets ``retry_after`` and ``policy_name``, a ``DAILY`` one
        becomes ``DailyLimitExhausted``."""
        self._last.hop = None
        try:
            return send(method, url, *args, **kwargs)
        except Exception as exc:
            status = getattr(exc, "status", None)
            hop: tuple[_Ticket, _Verdict | None] | None = self._last.hop
            ticket, verdict = hop if hop is not None else (None, None)
            if ticket is None or verdict is None or status != 429:
                raise
            if verdict.policy == DAILY:
                raise self._daily_spent(ticket.limits) from exc
            # The SDK's own exception, so ``except ApiException`` still catches it; any
            # RateLimitedExecutor reads ``retry_after`` (seconds).
            setattr(exc, "retry_after", verdict.retry_after)  # noqa: B010
            setattr(exc, "policy_name", verdict.policy)  # noqa: B010
            raise

    # -- client.api_request (requests) --------------------------------------------------------
    def _requests_adapter(self) -> _GovernedAdapter:
        """The pooled transport adapter every ``api_request`` sends through."""
        with self._lock:
            if self._adapter is None:
                self._adapter = _GovernedAdapter(self, self._pool_size)
            return self._adapter


class _GovernedPool:
    """Mixed into the shared ``PoolManager``'s connection pool classes: ``urlopen`` sends one
    request (the manager follows redirects by calling it again), so it takes one permit."""

    _governor: HubSpotLimiter

    def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        return self._governor._hop(super().urlopen, method, url, *args, **kwargs)  # type: ignore[misc]


class _GovernedAdapter(HTTPAdapter):
    """The transport of the wrapped ``api_request``: one permit per request sent (each redirect
    hop is one), no retries."""

    def __init__(self, owner: HubSpotLimiter, pool_size: int) -> None:
        super().__init__(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self._owner = owner

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        ticket = self._owner._before(request.method or "GET", urlsplit(request.url or "").path)
        try:
            response = super().send(request, *args, **kwargs)
        except Exception:
            self._owner._failed()
            raise
        body = response.content if response.status_code == 429 else None
        self._owner._after(ticket, response.status_code, response.headers, body)
        return response

    def __repr__(self) -> str:
        return f"<ratewindow_hubspot transport for {self._owner.name}>"


class _GovernedApiFactory:
    """The ``api_factory`` of a wrapped client: builds each API object as the SDK's default
    factory does (or with the factory the client had), then governs its requests."""

    def __init__(self, limiter: HubSpotLimiter, inner: Callable[..., Any] | None) -> None:
        self.limiter = limiter
        self._inner = inner

    def __call__(self, package: Any, api_name: str, config: dict[str, Any]) -> Any:
        if self._inner is not None:
            api = self._inner(package, api_name, {k: v for k, v in config.items() if k != "retry"})
        else:
            configuration = package.Configuration()
            for key, value in config.items():
                if key == "api_key":
                    configuration.api_key["developer_hapikey"] = value
                elif key != "retry":  # retries are ratewindow's: nothing is re-sent below it
                    setattr(configuration, key, value)
            api_client = package.ApiClient(configuration=configuration)
            api_client.user_agent = _user_agent()
            api = getattr(package, api_name)(api_client=api_client)
        self.limiter._install(api.api_client)
        return api

    def __repr__(self) -> str:
        return f"<ratewindow_hubspot api_factory for {self.limiter.name}>"


#: The functions of ``requests`` the SDK's ``Request.send`` may pick (``getattr(requests,
#: method.lower(), requests.get)``), by name: the method each sends, and whether it follows
#: redirects (``requests.head`` does not).
_SDK_SENDERS: dict[str, tuple[str, bool]] = {
    "get": ("GET", True), "options": ("OPTIONS", True), "head": ("HEAD", False), "post": ("POST", True),
    "put": ("PUT", True), "patch": ("PATCH", True), "delete": ("DELETE", True),
}  # fmt: skip


def _governed_api_request(self: HubSpotClient, options: dict[str, Any]) -> requests.Response:
    """``HubSpot.api_request`` through the rate-limited, pooled transport (one permit per request
    sent, each redirect hop included).

    Sends what the SDK's ``Request.send`` sends: the method it picks (``requests.<method>``; an
    unknown method falls back to ``requests.get``, so it is sent as GET) with that function's
    redirect rule (``requests.head`` does not follow redirects), from a new session per call as
    ``requests.get`` does (no cookies carried from one call to the next). Returns the
    ``requests.Response`` whatever its status, as the SDK does; a 429 still pauses the limiter.
    Raises ``DailyLimitExhausted`` (nothing sent) when the daily quota is spent.
    """
    from hubspot.utils.requests.http_request_builder import Request

    request = Request(self.config, options)
    sender = getattr(requests, request.get_method().lower(), requests.get)  # the SDK's choice
    chosen = [rule for name, rule in _SDK_SENDERS.items() if getattr(requests, name) is sender]
    if not chosen:  # another attribute of requests (``requests.request``...): the SDK fails, sending nothing
        return request.send()  # type: ignore[no-any-return]
    method, follow = chosen[0]
    session = requests.Session()  # what requests.get makes per call; the transport is shared
    adapter = limiter_of(self)._requests_adapter()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session.request(method, request.get_url(), allow_redirects=follow,
                           **request.get_options_for_sending())


def _span(limiter: Limiter | None, default: float) -> float:
    if isinstance(limiter, SlidingWindow):
        return limiter.window + limiter.margin
    if isinstance(limiter, TokenBucket):
        return 1.0 / limiter.rate
    return default


# -- the public functions ---------------------------------------------------------------------
def limiter_of(hubspot_client: object) -> HubSpotLimiter:
    """The :class:`HubSpotLimiter` of a client made by :func:`client` or :func:`wrap`.

    Raises:
        TypeError: the client is not rate limited by ratewindow_hubspot.
    """
    config = getattr(hubspot_client, "config", None)
    factory = config.get("api_factory") if isinstance(config, dict) else None
    if not isinstance(factory, _GovernedApiFactory):
        raise TypeError(
            f"{type(hubspot_client).__name__} object is not rate limited; make it with "
            "ratewindow_hubspot.client(...) or ratewindow_hubspot.wrap(...)"
        )
    return factory.limiter


def wrap(
    hubspot_client: HubSpot,
    *,
    tier: str = "professional",
    limits: Limiter | None = None,
    search_limits: Limiter | None = None,
    store: Store | str | None = None,
    account_id: int | str | None = None,
    time_zone: str = "UTC",
    margin: float | None = None,
    max_wait: float = 60.0,
    pool_size: int | None = None,
    clock: Clock | None = None,
) -> HubSpot:
    """Rate limit an existing ``hubspot.HubSpot`` client, in place; returns the same client.

    From now on every HTTP request it makes, through any API object and through
    ``api_request()``, takes exactly one permit first, and nothing is re-sent below ratewindow
    (a ``retry=`` urllib3 policy on the client is disabled, with a warning). See :func:`client`
    for the arguments.

    Raises:
        TypeError: not a HubSpot client.
        ValueError: the client is already wrapped, or a bad argument (named in the message).
    """
    config = getattr(hubspot_client, "config", None)
    if not isinstance(config, dict) or not callable(getattr(hubspot_client, "api_request", None)):
        raise TypeError(f"expected a hubspot.HubSpot client, got {type(hubspot_client).__name__}")
    if isinstance(config.get("api_factory"), _GovernedApiFactory):
        raise ValueError("this HubSpot client is already rate limited by ratewindow_hubspot; wrap it once")
    secret = config.get("access_token") or config.get("api_key") or ""
    limiter = HubSpotLimiter(
        token_fingerprint=fingerprint(str(secret)) if secret else "anonymous",
        account_id=None if account_id is None else str(account_id),
        tier=tier,
        limits=limits,
        search_limits=search_limits,
        store=as_store(store, default=store_from_env),
        time_zone=time_zone,
        margin=margin,
        max_wait=max_wait,
        pool_size=pool_size,
        clock=clock,
        sdk_retry=config.get("retry"),
    )
    if config.get("retry") is not None:
        _log.warning(
            "the client's urllib3 retry policy is disabled: it would re-send requests without permits; "
            "pass retry= to ratewindow_hubspot.executor() instead"
        )
    config["api_factory"] = _GovernedApiFactory(limiter, config.get("api_factory"))
    hubspot_client.api_request = types.MethodType(_governed_api_request, hubspot_client)
    return hubspot_client


def client(
    access_token: str | None = None,
    *,
    tier: str = "professional",
    limits: Limiter | None = None,
    store: Store | str | None = None,
    host: str | None = None,
    time_zone: str = "UTC",
    account_id: int | str | None = None,
    search_limits: Limiter | None = None,
    margin: float | None = None,
    max_wait: float = 60.0,
    pool_size: int | None = None,
    clock: Clock | None = None,
    **hubspot_kwargs: Any,
) -> HubSpot:
    """A ``hubspot.HubSpot`` client whose every HTTP request takes exactly one permit first.

    Args:
        access_token: a private app token or an OAuth access token. It is never logged, shown in
            a repr or put in a message; limiters are named from its fingerprint.
        tier: the preset limits (``TIERS``): ``free``, ``starter``, ``professional``,
            ``enterprise``, ``api_addon``, ``oauth_app``. The presets follow HubSpot's headers:
            when ``X-HubSpot-RateLimit-Max``, ``-Interval-Milliseconds`` or ``-Daily`` show other
            limits, they are adopted (logged at INFO on ``ratewindow.hubspot``).
        limits: a ratewindow limiter for the account instead of the preset, e.g.
            ``Limits(SlidingWindow(150, 10.0), DailyQuota(500_000, tz="America/New_York"))``.
            Its first ``SlidingWindow`` and ``DailyQuota`` members are calibrated from the headers;
            its limits are never raised or lowered. Build it on ``store`` (and ``clock``).
        store: where the limiters keep their state: a ratewindow store or a store URL (e.g.
            ``sqlite:///limits.db``). None: ``RATEWINDOW_STORE`` if set (e.g.
            ``redis://host:6379/0``, so several processes share one budget), else in this process.
        host: base URL for every request, ``api_request()`` included (e.g. a ``FakeHubSpot``).
        time_zone: IANA name of the account's time zone; the daily quota resets at its midnight.
        account_id: the HubSpot account (portal) id. Names the daily and search limits (shared by
            every app of the account) and, for ``oauth_app``, the window; default: the token's
            fingerprint. Give it for OAuth apps, whose tokens change every 30 minutes.
        search_limits: the limiter of CRM search requests; default ``SlidingWindow(5, 1.0)`` per
            account (exact: a token bucket of 5 per second would allow up to 9 in one second).
        margin: seconds each permit is held beyond the window, to absorb network jitter; default
            1 % of the window (0.1 s on HubSpot's 10 s window).
        max_wait: most seconds a request waits for its permit. Past it, ``DailyLimitExhausted``
            if the daily quota is spent, else ``ratewindow.AcquireTimeout``; nothing is sent.
        pool_size: connections kept open; default enough for ``executor()``'s workers (at least
            10). ``executor()`` grows it to its worker count.
        clock: time source for the limiters (tests: ``ratewindow.testing.ManualClock`` started at
            a Unix time); default ``MonotonicClock`` for windows and ``WallClock`` for the day.
        hubspot_kwargs: passed to ``hubspot.HubSpot`` (e.g. ``api_key``). Not ``retry``: nothing
            may be re-sent below ratewindow; give ``retry=`` to :func:`executor`.

    Raises:
        ValueError: an unknown tier or time zone, an empty ``access_token``, ``oauth_app`` without
            ``account_id``, ``retry`` given, or another bad argument.
        TypeError: no ``access_token`` (nor ``api_key``), a token that is not a string, ``limits``
            not a ratewindow limiter, or ``store`` neither a store nor a store URL.

    >>> import ratewindow_hubspot
    >>> hs = ratewindow_hubspot.client(access_token="pat-na1-...", tier="professional")
    >>> # hs.crm.contacts.basic_api.get_page(limit=100)  -- waits for a permit, then sends
    """
    if access_token is None and hubspot_kwargs.get("api_key") is None:
        raise TypeError("client() needs access_token= (a private app token or an OAuth access token); "
                        "without one HubSpot answers every request with 401")
    if access_token is not None and not isinstance(access_token, str):
        raise TypeError(f"access_token must be a string, got {type(access_token).__name__}")
    if access_token is not None and not access_token.strip():
        raise ValueError(f"access_token must be a non-empty string, got {access_token!r}")
    if hubspot_kwargs.get("retry") is not None:
        raise ValueError(
            "retry= would re-send requests below ratewindow without permits; "
            "pass retry= to ratewindow_hubspot.executor() instead"
        )
    hubspot_kwargs.pop("retry", None)
    if host is not None:
        base = host.rstrip("/")
        hubspot_kwargs["host"] = base
        hubspot_kwargs["base_url"] = base  # api_request() reads base_url, not host
    sdk = HubSpot(access_token=access_token, **hubspot_kwargs)
    return wrap(
        sdk, tier=tier, limits=limits, search_limits=search_limits, store=store, account_id=account_id,
        time_zone=time_zone, margin=margin, max_wait=max_wait, pool_size=pool_size, clock=clock,
    )  # fmt: skip


def executor(
    hubspot_client: HubSpot,
    *,
    latency: float = 0.5,
    max_workers: int | None = None,
    retry: Retry = RETRY,
    **executor_kwargs: Any,
) -> RateLimitedExecutor:
    """A ``RateLimitedExecutor`` for work that calls ``hubspot_client``.

    The client takes one permit per HTTP request, so the executor takes none (``limiter=None``):
    it schedules, retries and reports. A 429 comes back from the client with ``retry_after`` set
    from its ``policyName`` (the executor waits that long and retries); a daily limit comes back
    as ``DailyLimitExhausted``, which stops the batch (remaining items not run, resumable with a
    journal).

    Args:
        hubspot_client: a client from :func:`client` or :func:`wrap`.
        latency: expected seconds per call, to size the workers: ``rate x latency x 2`` threads
            (Little's law with headroom), between 2 and 64.
        max_workers: threads, instead of sizing them from ``latency``.
        retry: the retry policy (default :data:`RETRY`).
        executor_kwargs: passed to ``RateLimitedExecutor`` (``progress``, ``max_wait``,
            ``breaker``, ``clock``).

    Raises:
        TypeError: the client is not rate limited by ratewindow_hubspot, or ``latency`` is not a number.
        ValueError: ``latency`` is not finite and > 0.

    >>> import ratewindow_hubspot
    >>> hs = ratewindow_hubspot.client(access_token="pat-...")
    >>> with ratewindow_hubspot.executor(hs, progress=False) as ex:  # doctest: +SKIP
    ...     outcomes = ex.map(lambda i: hs.crm.objects.calls.basic_api.get_by_id(i), call_ids)
    """
    limiter = limiter_of(hubspot_client)
    if isinstance(latency, bool) or not isinstance(latency, (int, float)):
        raise TypeError(f"latency must be a finite number of seconds > 0, got {latency!r}")
    if not 0 < latency < math.inf:
        raise ValueError(f"latency must be a finite number of seconds > 0, got {latency!r}")
    if max_workers is None:
        workers = limiter.workers(latency)
        _log.info("ratewindow_hubspot.executor: %d workers for %.3g requests/s at latency=%.3g s per request "
                  "(rate x latency x 2, between 2 and 64)", workers, limiter.rate(), latency)
    else:
        workers = max_workers
    if isinstance(workers, int) and not isinstance(workers, bool) and workers > 0:
        limiter.ensure_pool(workers)
    return RateLimitedExecutor(None, max_workers=workers, retry=retry, **executor_kwargs)
