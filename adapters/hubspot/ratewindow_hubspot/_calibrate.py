"""Header calibration: keep the local limiters in step with what HubSpot says is left.

Every non-search HubSpot response carries ``X-HubSpot-RateLimit-Max`` (requests per window),
``-Remaining`` (left in the window after this request), ``-Interval-Milliseconds`` (the window),
and, except for OAuth apps, ``-Daily`` and ``-Daily-Remaining``. When another app or process
spends the same budget, the server counts more requests than we sent, and the local limiter
must yield the difference or the next window ends in 429s.

The rolling window, exactly:

* at the arrival of request *i*, the server counts ``S = Max - Remaining`` requests in its
  window, this one included;
* when request *i* was sent, the ``sent`` ledger (shared through the store, so it sees every
  process using these limits) counted ``R`` of our requests in the window: those the server
  counts too. ``F = S - R`` requests are someone else's, and of those, ``F - (Max - L)`` do not
  fit in the room a local limit ``L`` below ``Max`` already leaves;
* the ``phantom`` ledger counts the units already taken on behalf of others in the window. If
  ``F`` exceeds them, the difference is *reserved* on the local window: booked at the earliest
  time it fits, behind any waiting workers, without ever blocking. ``F`` reads a few units low
  (requests of ours sent just before this one may arrive after it), so while others spend more
  than 2 % of the window, 5 % of the window more is yielded; up to 2 %, which may be jitter,
  exactly ``F``.

This is a top-up to a level, not a sum, so many responses reporting the same foreign requests
take their units once. Phantom units are held a full window from when they are taken, longer
than the foreign requests they stand for, so the estimate errs on the safe side, and it forgets
on its own: when the other client stops, its phantoms expire within one window. Nothing waits
on anything here, so calibration cannot deadlock.

The daily quota is simpler: the server's count ``Daily - Daily-Remaining`` is compared with the
local quota's, at most once per second, and the missing units are taken.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from ratewindow import Clock

from ._limits import LEDGER_LIMIT, LimitSet

__all__ = ["Calibrator", "RateHeaders"]

#: Share of the window yielded beyond the estimate of others' requests while they are seen.
SAFETY = 0.05
#: Others' requests up to this share of the window may be jitter: yielded without ``SAFETY``.
NOISE = 0.02

_MAX = "X-HubSpot-RateLimit-Max"
_REMAINING = "X-HubSpot-RateLimit-Remaining"
_INTERVAL = "X-HubSpot-RateLimit-Interval-Milliseconds"
_DAILY = "X-HubSpot-RateLimit-Daily"
_DAILY_REMAINING = "X-HubSpot-RateLimit-Daily-Remaining"


def _int(getter: Callable[[str], object], name: str) -> int | None:
    raw = getter(name)
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    if not isinstance(raw, str):
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        return None
    return value if value >= 0 else None


@dataclass(frozen=True)
class RateHeaders:
    """HubSpot's rate-limit headers of one response; a field is None when its header is absent.

    >>> RateHeaders.parse({"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "12"})
    RateHeaders(limit=190, remaining=12, interval=None, daily=None, daily_remaining=None)
    """

    #: Requests allowed per window (``X-HubSpot-RateLimit-Max``).
    limit: int | None
    #: Requests left in the window after this one (``-Remaining``).
    remaining: int | None
    #: Window length in seconds (``-Interval-Milliseconds`` / 1000).
    interval: float | None
    #: Requests allowed per day (``-Daily``).
    daily: int | None
    #: Requests left today (``-Daily-Remaining``).
    daily_remaining: int | None

    @classmethod
    def parse(cls, headers: object) -> RateHeaders | None:
        """Read the headers from any mapping with a case-insensitive ``get`` (urllib3's
        ``HTTPHeaderDict``, requests' ``CaseInsensitiveDict``); a plain dict must use HubSpot's
        spelling. None if the response carries none of them (search responses)."""
        getter = getattr(headers, "get", None)
        if not callable(getter):
            return None
        interval_ms = _int(getter, _INTERVAL)
        parsed = cls(
            limit=_int(getter, _MAX),
            remaining=_int(getter, _REMAINING),
            interval=None if not interval_ms else interval_ms / 1000.0,
            daily=_int(getter, _DAILY),
            daily_remaining=_int(getter, _DAILY_REMAINING),
        )
        if parsed == _EMPTY:
            return None
        return parsed


_EMPTY = RateHeaders(None, None, None, None, None)


class Calibrator:
    """Applies HubSpot's headers to one client's limiters (see the module docstring).

    Thread-safe; ``clock`` must be the clock of the window limiters (seconds).
    """

    def __init__(self, clock: Clock, *, daily_every: float = 1.0) -> None:
        self._clock = clock
        self._daily_every = daily_every
        self._lock = threading.Lock()
        self._daily_checked = float("-inf")
        #: Window units taken on behalf of requests made elsewhere.
        self.phantom_units = 0
        #: Daily units taken on behalf of requests made elsewhere.
        self.daily_units = 0

    def sent(self, limits: LimitSet) -> int | None:
        """Record one non-search request about to be sent; returns our requests in the window
        now (this one included), or None when the limits have no window to calibrate."""
        if limits.sent is None:
            return None
        limits.sent.try_acquire()
        return LEDGER_LIMIT - int(limits.sent.available())

    def observe(self, limits: LimitSet, headers: RateHeaders, sent: int | None) -> None:
        """Yield to requests made elsewhere, as the headers of one response show them.

        ``sent`` is what :meth:`sent` returned for the request this response answers.
        """
        if (
            sent is not None
            and limits.window is not None
            and limits.phantom is not None
            and headers.limit is not None
            and headers.remaining is not None
        ):
            limit = limits.window.limit
            # Requests of others, less the room the local limit already leaves below HubSpot's
            # (limits set at 150 of 190 yield only what others spend beyond 40).
            foreign = headers.limit - headers.remaining - sent - (headers.limit - limit)
            if foreign > math.ceil(limit * NOISE):
                # ``sent`` counts a little more of ours than the server still does (requests sent
                # just before this one that arrive after it, and those the server already expired
                # while the margin holds them here), so ``foreign`` reads a few units low: yield
                # 5 % of the window more while someone else is spending it.
                self._top_up_window(limits, foreign + max(1, math.ceil(limit * SAFETY)))
            elif foreign > 0:
                # A unit or two can be network jitter (a request of ours arriving late): yield
                # exactly what was seen.
                self._top_up_window(limits, foreign)
        if limits.daily is not None and headers.daily_remaining is not None:
            now = self._clock.now()
            if headers.daily_remaining == 0 or now - self._daily_checked >= self._daily_every:
                self._daily_checked = now
                limit = headers.daily if headers.daily is not None else limits.daily.limit
                self._top_up_daily(limits, limit - headers.daily_remaining)

    def exhaust_daily(self, limits: LimitSet) -> None:
        """The server said the day's requests are spent: spend the local quota too."""
        if limits.daily is not None:
            self._top_up_daily(limits, limits.daily.limit)

    def _top_up_window(self, limits: LimitSet, foreign: int) -> None:
        window, phantom = limits.window, limits.phantom
        assert window is not None and phantom is not None
        with self._lock:
            live = LEDGER_LIMIT - int(phantom.available())
            missing = min(foreign - live, window.limit)
            if missing <= 0:
                return
            # What fits now is taken now; the rest is booked at the earliest time it fits (behind
            # any waiting workers). Neither waits.
            now = min(missing, int(window.available()))
            if now > 0 and not window.try_acquire(now):
                now = 0
            if missing > now:
                window.reserve(missing - now)
            phantom.try_acquire(missing)
            self.phantom_units += missing

    def _top_up_daily(self, limits: LimitSet, server_used: int) -> None:
        daily = limits.daily
        assert daily is not None
        with self._lock:
            left = int(daily.available())
            missing = min(server_used - (daily.limit - left), left)
            if missing > 0 and daily.try_acquire(missing):
                self.daily_units += missing
