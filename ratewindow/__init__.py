"""ratewindow: call rate-limited APIs as fast as the limits allow, and never faster."""

import logging as _logging

from ratewindow._async_executor import AsyncRateLimitedExecutor
from ratewindow._calibrate import Calibration, Calibrator, Ticket
from ratewindow._clock import Clock, MonotonicClock, WallClock
from ratewindow._concurrency import ConcurrencyLimit, Lease
from ratewindow._daily_quota import DailyQuota
from ratewindow._errors import (
    AcquireTimeout,
    CircuitOpen,
    JournalError,
    QuotaExhausted,
    RateWindowError,
    RetryLater,
    StoreUnavailable,
)
from ratewindow._executor import RateLimitedExecutor
from ratewindow._forecast import Forecast
from ratewindow._headers import (
    HeaderFamily,
    HubSpotRateLimit,
    IETFRateLimit,
    Observation,
    RetryAfter,
    SalesforceLimitInfo,
    ShopifyCallLimit,
    XRateLimit,
    parse_headers,
    parse_retry_after,
)
from ratewindow._limiter import Limiter, Observer, Reservation
from ratewindow._limits import Limits
from ratewindow._outcome import ExecutorStats, Outcome
from ratewindow._probe import Probe
from ratewindow._rate import Rate
from ratewindow._retry import Retry
from ratewindow._sliding_window import SlidingWindow
from ratewindow._token_bucket import TokenBucket
from ratewindow._validate import as_store
from ratewindow.stores import MemoryStore, RedisStore, SQLiteStore, Store, store_from_env, store_from_url

__version__ = "0.1.0"

# A quiet library: nothing reaches stderr unless the application configures logging.
_logging.getLogger("ratewindow").addHandler(_logging.NullHandler())

__all__ = [
    "AcquireTimeout",
    "AsyncRateLimitedExecutor",
    "Calibration",
    "Calibrator",
    "CircuitOpen",
    "Clock",
    "ConcurrencyLimit",
    "DailyQuota",
    "ExecutorStats",
    "Forecast",
    "HeaderFamily",
    "HubSpotRateLimit",
    "IETFRateLimit",
    "JournalError",
    "Lease",
    "Limiter",
    "Limits",
    "MemoryStore",
    "MonotonicClock",
    "Observation",
    "Observer",
    "Outcome",
    "Probe",
    "QuotaExhausted",
    "Rate",
    "RateLimitedExecutor",
    "RateWindowError",
    "RedisStore",
    "Reservation",
    "Retry",
    "RetryAfter",
    "RetryLater",
    "SQLiteStore",
    "SalesforceLimitInfo",
    "ShopifyCallLimit",
    "SlidingWindow",
    "Store",
    "StoreUnavailable",
    "Ticket",
    "TokenBucket",
    "WallClock",
    "XRateLimit",
    "__version__",
    "as_store",
    "parse_headers",
    "parse_retry_after",
    "store_from_env",
    "store_from_url",
]
