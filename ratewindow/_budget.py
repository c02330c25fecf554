"""The error budget: the share of requests that a server refused for its rate limit.

HubSpot asks apps to keep the share of their requests answered 429 under 5 %. The executors
count it per batch and warn once when a batch goes above their ``refusal_budget``; every response
is also told to the limiter's observers that have an ``on_response`` method (``PrometheusMetrics``
counts them), from the executors and from ``ratewindow.http``.
"""

from __future__ import annotations

import math

__all__ = ["DEFAULT_REFUSAL_BUDGET", "MIN_CALLS", "check_refusal_budget", "share", "tell_response"]

#: The executors' default ``refusal_budget``: HubSpot's 5 %.
DEFAULT_REFUSAL_BUDGET = 0.05
#: Calls a batch makes before its share is judged while it runs (it is judged at its end too).
MIN_CALLS = 20


def check_refusal_budget(value: object) -> float | None:
    """``value`` as a float if it is None or a share in [0, 1]; raise naming it otherwise.

    Raises:
        TypeError: not None and not a number (a bool, a string).
        ValueError: a number outside [0, 1], or NaN (``5`` for 5 % is refused: write ``0.05``).
    """
    if value is None:
        return None
    what = f"refusal_budget must be None or a share of calls in [0, 1] (0.05 is 5 %), got {value!r}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(what)
    if math.isnan(value) or not 0 <= value <= 1:
        raise ValueError(what)
    return float(value)


def share(refused: int, total: int) -> float:
    """``refused / total``, 0.0 when nothing was counted."""
    return refused / total if total > 0 else 0.0


def tell_response(limiter: object, refused: bool) -> None:
    """Tell ``limiter``'s observers that have an ``on_response`` method about one response to a
    request made under it: ``refused`` if it was a rate-limit refusal (HTTP 429). Observers
    without the method (written before it existed) are skipped."""
    observers = getattr(limiter, "_observers", ())
    if not observers:
        return
    name = getattr(limiter, "name", "?")
    for observer in observers:
        method = getattr(observer, "on_response", None)
        if method is not None:
            method(name, refused)
