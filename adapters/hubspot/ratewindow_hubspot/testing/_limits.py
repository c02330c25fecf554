"""HubSpot's rate limits as the fake enforces them.

What HubSpot documents (API usage guidelines, developers.hubspot.com/docs/developer-tooling/
platform/usage-guidelines, formerly /docs/api/usage-details):

* a burst limit per private app (that is, per access token) over a rolling 10-second window:
  100 requests on Free/Starter, 190 on Professional/Enterprise, 250 with the API Limit
  Increase add-on; public (OAuth) apps get 110 per 10 seconds per installed account;
* a daily limit per account (250,000 / 625,000 / 1,000,000 by tier; the add-on adds
  1,000,000), reset at midnight in the account's time zone; OAuth apps have none, and their
  responses carry no ``X-HubSpot-RateLimit-Daily*`` headers (changelog "Rate limit headers
  will now appear for OAuth authenticated calls");
* CRM search endpoints limited to five requests per second per account, and search responses
  carry none of the rate-limit headers.

Not documented, and decided here (each is a constructor switch where it matters):

* whether search requests also count toward the 10-second window: HubSpot describes the search
  limit as a separate limit and sends no 10-second headers on search responses, so by default
  searches do NOT count toward it (``search_counts_toward_window=False``); they do count
  toward the daily limit, which covers every API call;
* whether a refused (429) request counts: unknowable from outside, so refused requests count
  toward nothing here. A client that keeps hammering therefore recovers as soon as the window
  rolls past its admitted requests.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

__all__ = ["TIERS", "Admission", "RateLimiter", "TierPreset"]

TEN_SECONDLY_ROLLING = "TEN_SECONDLY_ROLLING"
SECONDLY = "SECONDLY"
DAILY = "DAILY"


@dataclass(frozen=True)
class TierPreset:
    """Limits of one HubSpot tier: ``window_limit`` requests per 10 s, ``daily_limit`` per day."""

    window_limit: int
    daily_limit: int | None


TIERS: dict[str, TierPreset] = {
    "free": TierPreset(100, 250_000),
    "starter": TierPreset(100, 250_000),
    "professional": TierPreset(190, 625_000),
    "enterprise": TierPreset(190, 1_000_000),
    "api_addon": TierPreset(250, 1_000_000),
    "oauth_app": TierPreset(110, None),
}
"""Presets by tier name. ``api_addon`` is the burst of the API Limit Increase pack; HubSpot adds
its 1,000,000 requests/day on top of the base tier's, so pass ``daily_limit`` for an exact
total."""


@dataclass(frozen=True)
class Admission:
    """The limiter's verdict on one request.

    Attributes:
        allowed: whether the request was admitted (and counted).
        policy: the ``policyName`` that refused it, or ``None``.
        arrival: the instant (seconds on the limiter's clock) the verdict was taken at.
        window_remaining: requests left in this token's rolling window after this one.
        daily_remaining: requests left today for the account, or ``None`` with no daily limit.
    """

    allowed: bool
    policy: str | None
    arrival: float
    window_remaining: int
    daily_remaining: int | None


class RateLimiter:
    """Exact rolling-window and daily counters, safe to call from many threads.

    A request arriving at ``now`` is refused when the admitted requests of its window whose
    arrival ``t`` satisfies ``now - t < window`` already number the limit, so at most ``limit``
    admitted requests ever lie within any half-open window of that length.
    """

    def __init__(
        self,
        *,
        window_limit: int,
        window_seconds: float,
        daily_limit: int | None,
        search_limit: int,
        search_window_seconds: float,
        time_zone: ZoneInfo,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        search_counts_toward_window: bool = False,
    ) -> None:
        self.window_limit = window_limit
        self.window_seconds = window_seconds
        self.daily_limit = daily_limit
        self.search_limit = search_limit
        self.search_window_seconds = search_window_seconds
        self.time_zone = time_zone
        self.search_counts_toward_window = search_counts_toward_window
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self._search: deque[float] = deque()
        self._day: date | None = None
        self._daily_count = 0

    def reset(self) -> None:
        """Forget every window and the daily count."""
        with self._lock:
            self._windows.clear()
            self._search.clear()
            self._day = None
            self._daily_count = 0

    def now(self) -> float:
        """The limiter's clock, in seconds."""
        return self._clock()

    def admit(self, key: str, *, search: bool) -> Admission:
        """Decide on one request made with the token whose fingerprint is ``key``.

        The clocks are read under the lock, so verdicts are taken in arrival order.
        """
        with self._lock:
            now = self._clock()
            today = datetime.fromtimestamp(self._wall_clock(), tz=self.time_zone).date()
            if today != self._day:
                self._day = today
                self._daily_count = 0
            window = self._windows.setdefault(key, deque())
            _evict(window, now, self.window_seconds)
            _evict(self._search, now, self.search_window_seconds)
            in_window = not search or self.search_counts_toward_window
            policy: str | None = None
            if self.daily_limit is not None and self._daily_count >= self.daily_limit:
                policy = DAILY
            elif search and len(self._search) >= self.search_limit:
                policy = SECONDLY
            elif in_window and len(window) >= self.window_limit:
                policy = TEN_SECONDLY_ROLLING
            if policy is None:
                self._daily_count += 1
                if in_window:
                    window.append(now)
                if search:
                    self._search.append(now)
            daily_remaining = (
                None if self.daily_limit is None else max(0, self.daily_limit - self._daily_count)
            )
            return Admission(
                allowed=policy is None,
                policy=policy,
                arrival=now,
                window_remaining=max(0, self.window_limit - len(window)),
                daily_remaining=daily_remaining,
            )


def _evict(window: deque[float], now: float, length: float) -> None:
    while window and now - window[0] >= length:
        window.popleft()
