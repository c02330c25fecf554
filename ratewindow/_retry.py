"""``Retry``: which failures an executor retries, and how long it waits before each retry.

Also the classifier both executors share: is this exception a rate-limit response, and did the
server say how long to wait (``retry_after``)?
"""

from __future__ import annotations

import errno
import math
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

from ratewindow._errors import RetryLater, StoreUnavailable
from ratewindow._validate import check_count, check_non_negative

__all__ = ["Retry", "RetryOn", "is_rate_limit", "retry_after_of", "status_of"]

#: What ``Retry.retry_on`` accepts: exception classes, a predicate, or None for the built-in rule.
RetryOn = Union[tuple[type[BaseException], ...], Callable[[BaseException], bool], None]  # noqa: UP007

# errno values that mean "the network failed", not "this request is wrong".
_NETWORK_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "ECONNRESET",
        "ECONNREFUSED",
        "ECONNABORTED",
        "ETIMEDOUT",
        "EHOSTUNREACH",
        "EHOSTDOWN",
        "ENETUNREACH",
        "ENETDOWN",
        "ENETRESET",
        "EPIPE",
        "EAGAIN",
    )
    if hasattr(errno, name)
)
# Transport errors of common HTTP clients, recognised by class name so that none of them has to
# be imported: requests (ConnectionError, Timeout, ChunkedEncodingError), urllib3 (ProtocolError,
# TimeoutError), httpx (TransportError, TimeoutException), aiohttp (ClientConnectionError),
# http.client (IncompleteRead), asyncio on 3.10 (TimeoutError).
_TRANSPORT_NAMES = frozenset(
    {
        "ConnectionError",
        "Timeout",
        "TimeoutError",
        "TimeoutException",
        "TransportError",
        "ProtocolError",
        "ChunkedEncodingError",
        "ClientConnectionError",
        "IncompleteRead",
    }
)
_SYSTEM_RANDOM = random.SystemRandom()  # stateless (reads os.urandom): no shared seed to disturb


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, if any.

    Looked for, in order: ``exc.status``, ``exc.status_code``, ``exc.response.status_code``,
    ``exc.response.status`` (requests, httpx, aiohttp, urllib, the HubSpot and Salesforce SDKs).
    """
    for owner in (exc, getattr(exc, "response", None)):
        if owner is None:
            continue
        for name in ("status", "status_code"):
            value = getattr(owner, name, None)
            if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
                return value
    return None


def _header(exc: BaseException, name: str) -> str | None:
    for owner in (getattr(exc, "response", None), exc):
        headers = getattr(owner, "headers", None) if owner is not None else None
        getter = getattr(headers, "get", None)
        if callable(getter):
            try:
                value = getter(name)
            except Exception:  # a headers object we do not understand
                continue
            if isinstance(value, (str, bytes)):
                return value.decode("latin-1") if isinstance(value, bytes) else value
    return None


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = float(value)
    return seconds if seconds >= 0 and math.isfinite(seconds) else None


def retry_after_of(exc: BaseException, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or None if the exception does not say.

    Read from ``RetryLater.after``, a numeric ``retry_after`` attribute (seconds), or a
    ``Retry-After`` header on ``exc.response.headers`` or ``exc.headers`` (delta-seconds; an
    HTTP date is used only when ``now``, the current Unix time in seconds, is given).
    """
    if isinstance(exc, RetryLater):
        return _seconds(exc.after)
    seconds = _seconds(getattr(exc, "retry_after", None))
    if seconds is not None:
        return seconds
    text = _header(exc, "Retry-After")
    if text is None:
        return None
    text = text.strip()
    try:
        return _seconds(float(text))
    except ValueError:
        pass
    if now is None:
        return None
    import email.utils  # rare (an HTTP date): not imported with ratewindow

    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def is_rate_limit(exc: BaseException) -> bool:
    """True for a rate-limit response: ``RetryLater``, HTTP 429, or any exception saying how long
    to wait (``retry_after``, a ``Retry-After`` header)."""
    if isinstance(exc, RetryLater) or status_of(exc) == 429:
        return True
    return retry_after_of(exc) is not None


@dataclass(frozen=True)
class Retry:
    """A retry policy: a small immutable value, like urllib3's ``Retry``.

    An item is tried at most ``attempts`` times. Between tries the executor waits:

    - after a rate-limit response (HTTP 429, ``RetryLater``, any exception with ``retry_after``
      or a ``Retry-After`` header): exactly the seconds the server asked for, or the back-off
      below if it did not say. The executor also pauses its limiter for that long, so every
      worker waits, not only the one that was told. Rate limits are always retried.
    - after any other retryable failure: ``backoff * 2 ** (n - 1)`` seconds before retry n,
      capped at ``max_backoff``. With ``jitter``, a uniform draw between half of that and all of
      it ("equal jitter"): retries of many workers spread out, yet each keeps at least half of
      its back-off, so a struggling server is always given time (full jitter, between 0 and all
      of it, may retry at once).

    Which other failures are retryable is ``retry_on``: None (the default) is ``is_transient``:
    connection errors, timeouts, network ``OSError`` values, and HTTP 408, 429 and 5xx except 501.
    A tuple of exception classes retries exactly those; a callable decides for each exception.

    Args:
        attempts: most tries per item, the first included (1: never retry); a positive int.
        backoff: seconds before the first retry; finite, >= 0.
        max_backoff: most seconds between two tries; finite, >= 0.
        jitter: spread each back-off over [half, all] of it.
        retry_on: None, a tuple of exception classes, or a predicate ``exc -> bool``.

    Raises:
        ValueError, TypeError: a bad argument, named in the message.

    >>> Retry(attempts=3, jitter=False).backoff_for(2)
    1.0
    >>> Retry(attempts=3, retry_on=(KeyError,))
    Retry(attempts=3, backoff=0.5, max_backoff=60.0, jitter=True, retry_on=(KeyError,))
    """

    #: Most tries per item, the first included.
    attempts: int = 5
    #: Seconds before the first retry; doubles for each further retry.
    backoff: float = 0.5
    #: Most seconds between two tries (server-requested waits excepted).
    max_backoff: float = 60.0
    #: Spread each back-off uniformly over [half, all] of it.
    jitter: bool = True
    #: Which failures are retried besides rate limits: None (``is_transient``), classes, or a predicate.
    retry_on: RetryOn = None

    def __post_init__(self) -> None:
        check_count("attempts", self.attempts)
        object.__setattr__(self, "backoff", check_non_negative("backoff", self.backoff))
        object.__setattr__(self, "max_backoff", check_non_negative("max_backoff", self.max_backoff))
        if not isinstance(self.jitter, bool):
            raise TypeError(f"jitter must be a bool, got {self.jitter!r}")
        retry_on = self.retry_on
        if isinstance(retry_on, tuple):
            if not all(isinstance(c, type) and issubclass(c, BaseException) for c in retry_on):
                raise TypeError(f"retry_on must hold exception classes, got {retry_on!r}")
        elif retry_on is not None and not callable(retry_on):
            raise TypeError(
                f"retry_on must be None, a tuple of exception classes or a callable, got {retry_on!r}"
            )

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        """The built-in rule: True for failures that may well succeed if tried again.

        Connection errors, timeouts and network ``OSError`` values (connection reset or
        refused, host unreachable, DNS failure, ...); transport errors of requests, urllib3,
        httpx and aiohttp (by class name, nothing imported); ``StoreUnavailable``; and an HTTP
        status (see ``status_of``) of 408, 429, or 5xx other than 501. A status of 4xx is the
        request's own fault and is not retried.
        """
        status = status_of(exc)
        if status is not None:
            return status in (408, 429) or (500 <= status <= 599 and status != 501)
        if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror, StoreUnavailable)):
            return True
        if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
            return True
        return any(cls.__name__ in _TRANSPORT_NAMES for cls in type(exc).__mro__)

    def is_retryable(self, exc: BaseException) -> bool:
        """True if ``exc`` should be retried (attempts allowing): rate limits always, others per
        ``retry_on``."""
        if is_rate_limit(exc):
            return True
        retry_on = self.retry_on
        if retry_on is None:
            return self.is_transient(exc)
        if isinstance(retry_on, tuple):
            return isinstance(exc, retry_on)
        return bool(retry_on(exc))

    def backoff_for(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry).

        Without jitter: ``min(max_backoff, backoff * 2 ** (retry - 1))``. With jitter, a uniform
        draw from [half of that, all of it), taken from ``rng`` (seed one for repeatable
        tests; by default ``random.SystemRandom``).

        Raises:
            ValueError: ``retry`` is not a positive int.
        """
        check_count("retry", retry)
        # 2.0 ** 1024 overflows; max_backoff caps the delay long before 2 ** 1000.
        delay = min(self.max_backoff, self.backoff * 2.0 ** min(retry - 1, 1000))
        if not self.jitter or delay == 0:
            return delay
        draw = (rng if rng is not None else _SYSTEM_RANDOM).random()
        return delay / 2 + draw * delay / 2

    def __repr__(self) -> str:
        retry_on = self.retry_on
        if isinstance(retry_on, tuple):
            names = ", ".join(c.__qualname__ for c in retry_on)
            text = f"({names},)" if len(retry_on) == 1 else f"({names})"
        elif retry_on is None:
            text = "None"
        else:
            text = getattr(retry_on, "__qualname__", repr(retry_on))
        return (
            f"Retry(attempts={self.attempts}, backoff={self.backoff!r}, max_backoff={self.max_backoff!r}, "
            f"jitter={self.jitter}, retry_on={text})"
        )
