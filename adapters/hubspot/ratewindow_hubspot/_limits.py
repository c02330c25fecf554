"""HubSpot's published limits as presets, the limiters built from them, and endpoint routing.

Sources (HubSpot developer documentation, "API usage guidelines and limits",
developers.hubspot.com/docs/guides/apps/api-usage/usage-details):

* private apps: a burst limit per app (that is, per access token) over a rolling 10-second
  window: 100 requests on Free and Starter, 190 on Professional and Enterprise, 250 with the
  API Limit Increase add-on; and a daily limit per account, reset at midnight in the account's
  time zone: 250,000 (Free/Starter), 625,000 (Professional), 1,000,000 (Enterprise); the
  add-on adds 1,000,000 a day on top of the tier's;
* public (OAuth) apps: 110 requests per 10 seconds per installing account, no daily limit
  (their responses carry no ``X-HubSpot-RateLimit-Daily*`` headers);
* CRM search endpoints (``POST /crm/v3/objects/{objectType}/search``): five requests per
  second per account, on top of the limits above, and their responses carry no rate-limit
  headers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ratewindow import Clock, DailyQuota, Limiter, Limits, MonotonicClock, SlidingWindow, Store, WallClock

__all__ = [
    "SEARCH_LIMIT",
    "SEARCH_WINDOW",
    "TIERS",
    "LimitSet",
    "Tier",
    "build_preset",
    "build_user",
    "is_search",
    "next_reset",
    "workers_for",
]

#: Search requests per ``SEARCH_WINDOW`` seconds per account.
SEARCH_LIMIT = 5
#: Seconds of HubSpot's search window.
SEARCH_WINDOW = 1.0

# POST .../crm/v3/objects/{objectType}/search, anywhere in the path (a host may carry a prefix).
_SEARCH_PATH = re.compile(r"/crm/v\d+/objects/[^/]+/search/?$")


@dataclass(frozen=True)
class Tier:
    """HubSpot's limits for one kind of account or app.

    >>> TIERS["professional"]
    Tier(name='professional', window_limit=190, window=10.0, daily_limit=625000)
    """

    #: Preset name, e.g. ``"professional"``.
    name: str
    #: Requests per ``window`` seconds, per access token (private apps) or per account (OAuth).
    window_limit: int
    #: Seconds of the rolling window.
    window: float = 10.0
    #: Requests per day per account, reset at local midnight; None: no daily limit.
    daily_limit: int | None = None


TIERS: Mapping[str, Tier] = MappingProxyType(
    {
        "free": Tier("free", 100, 10.0, 250_000),
        "starter": Tier("starter", 100, 10.0, 250_000),
        "professional": Tier("professional", 190, 10.0, 625_000),
        "enterprise": Tier("enterprise", 190, 10.0, 1_000_000),
        # The add-on raises the burst to 250 per 10 s and adds 1,000,000 a day to the tier's own daily
        # limit; 1,000,000 is the least that total can be. The Daily header corrects it on the first
        # response (presets adopt what the headers say).
        "api_addon": Tier("api_addon", 250, 10.0, 1_000_000),
        "oauth_app": Tier("oauth_app", 110, 10.0, None),
    }
)
"""The presets by name: ``free``, ``starter``, ``professional``, ``enterprise``, ``api_addon``,
``oauth_app``."""


def is_search(method: str, path: str) -> bool:
    """Whether ``method path`` is a CRM search request, limited to 5 per second per account.

    >>> is_search("POST", "/crm/v3/objects/contacts/search")
    True
    >>> is_search("GET", "/crm/v3/objects/contacts/search")
    False
    """
    return method.upper() == "POST" and _SEARCH_PATH.search(path) is not None


@dataclass(frozen=True)
class LimitSet:
    """One consistent set of limiters for one client; replaced whole when headers show new limits.

    ``account`` is what every request takes a permit from; ``search`` is what search requests take
    instead (``search_window`` and every member of ``account``, all-or-nothing). ``window`` and
    ``daily`` are the members of ``account`` that header calibration adjusts (None if ``account``
    has none), through ``ratewindow.Calibrator``.
    """

    account: Limiter
    search: Limiter
    search_window: Limiter
    window: SlidingWindow | None
    daily: DailyQuota | None


def _margin(margin: float | None, window: float) -> float:
    # 1 % of the window: 0.1 s on HubSpot's 10 s window, 10 ms on a fake scaled to 1 s.
    return window / 100.0 if margin is None else margin


def build_preset(
    *,
    window_limit: int,
    window: float,
    daily_limit: int | None,
    margin: float | None,
    window_name: str,
    account_name: str,
    time_zone: str,
    search: Limiter | None,
    store: Store,
    clock: Clock | None,
) -> LimitSet:
    """The limiters for a preset (or for limits a preset adopted from the headers).

    Raises:
        ValueError, TypeError: a bad limit, window, margin or time zone.
    """
    window_clock: Clock = clock if clock is not None else MonotonicClock()
    day_clock: Clock = clock if clock is not None else WallClock()
    held = _margin(margin, window)
    burst = SlidingWindow(
        window_limit, window, margin=held, name=window_name, store=store, clock=window_clock
    )
    daily = (
        None
        if daily_limit is None
        else DailyQuota(daily_limit, tz=time_zone, name=account_name, store=store, clock=day_clock)
    )
    account: Limiter = burst if daily is None else Limits(burst, daily)
    return _complete(account, burst, daily, search, account_name, store, window_clock)


def build_user(
    limits: Limiter,
    *,
    account_name: str,
    search: Limiter | None,
    store: Store,
    clock: Clock | None,
) -> LimitSet:
    """The limiters around a limiter the user gave: its first ``SlidingWindow`` and ``DailyQuota``
    members (if any) are calibrated from the headers; its limits are never changed.

    Raises:
        TypeError: ``limits`` is not a ratewindow limiter.
        ValueError: ``limits`` and ``store`` are different shared stores.
    """
    if not isinstance(limits, Limiter):
        raise TypeError(f"limits must be a ratewindow limiter, got {limits!r}")
    members = limits.limiters if isinstance(limits, Limits) else (limits,)
    burst = next((m for m in members if isinstance(m, SlidingWindow)), None)
    daily = next((m for m in members if isinstance(m, DailyQuota)), None)
    window_clock: Clock = clock if clock is not None else MonotonicClock()
    return _complete(limits, burst, daily, search, account_name, store, window_clock)


def _complete(
    account: Limiter,
    burst: SlidingWindow | None,
    daily: DailyQuota | None,
    search: Limiter | None,
    account_name: str,
    store: Store,
    clock: Clock,
) -> LimitSet:
    search_window = search
    if search_window is None:
        search_window = SlidingWindow(
            SEARCH_LIMIT, SEARCH_WINDOW, name=f"{account_name}:search", store=store, clock=clock
        )
    both = Limits(search_window, account)  # type: ignore[arg-type]  # Limits flattens a Limits member
    return LimitSet(account, both, search_window, burst, daily)


def next_reset(daily: DailyQuota | None, time_zone: str, clock: Clock | None) -> float:
    """Unix time (seconds) of the next daily reset: the quota's, or local midnight in ``time_zone``."""
    if daily is not None:
        return daily.resets_at()
    return DailyQuota(1, tz=time_zone, clock=clock if clock is not None else WallClock()).resets_at()


def workers_for(rate: float, latency: float) -> int:
    """Threads that keep ``rate`` requests per second flowing at ``latency`` seconds per request:
    Little's law with twice the headroom, between 2 and 64."""
    return max(2, min(64, math.ceil(rate * latency * 2)))
