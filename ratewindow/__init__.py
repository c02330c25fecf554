"""ratewindow: call rate-limited APIs as fast as the limits allow, and never faster."""

from ratewindow._clock import Clock, MonotonicClock, WallClock
from ratewindow._daily_quota import DailyQuota
from ratewindow._errors import AcquireTimeout, QuotaExhausted, RateWindowError, StoreUnavailable
from ratewindow._limiter import Limiter, Reservation
from ratewindow._limits import Limits
from ratewindow._rate import Rate
from ratewindow._sliding_window import SlidingWindow
from ratewindow._token_bucket import TokenBucket
from ratewindow.stores import MemoryStore, Store

__version__ = "0.1.0"

__all__ = [
    "AcquireTimeout",
    "Clock",
    "DailyQuota",
    "Limiter",
    "Limits",
    "MemoryStore",
    "MonotonicClock",
    "QuotaExhausted",
    "Rate",
    "RateWindowError",
    "Reservation",
    "SlidingWindow",
    "Store",
    "StoreUnavailable",
    "TokenBucket",
    "WallClock",
    "__version__",
]
