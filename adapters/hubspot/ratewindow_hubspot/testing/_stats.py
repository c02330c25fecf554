"""Request log and counters of :class:`~ratewindow_hubspot.testing.FakeHubSpot`."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ratewindow import Rate
from ratewindow.analysis import analyse

__all__ = ["FakeStats", "RequestRecord", "max_in_window", "token_fingerprint"]


def token_fingerprint(token: str) -> str:
    """A short, non-reversible name for an access token: the first 12 hex digits of its SHA-256.

    The fake stores and reports only this, never the token itself.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def max_in_window(times: Iterable[float], window_seconds: float) -> int:
    """The most of ``times`` that fit in one half-open window of ``window_seconds``.

    A set of instants fits in some window ``[a, a + w)`` (equivalently ``(b - w, b]``, the
    window HubSpot's rolling limit uses) exactly when its latest and earliest instants are
    less than ``w`` apart. Any input order; O(n log n) (``ratewindow.analysis.analyse``).

    Raises:
        ValueError: ``window_seconds`` is not positive.

    >>> max_in_window([0.0, 1.0, 2.0, 9.99, 10.0, 10.5, 20.0], 10.0)
    5
    >>> max_in_window([0.0, 10.0], 10.0)
    1
    """
    return int(analyse(list(times), Rate(1, window_seconds)).most_in_window)


@dataclass(frozen=True)
class RequestRecord:
    """One request the fake answered.

    Attributes:
        arrival: when the request arrived, in seconds on the fake's ``clock`` (by default
            :func:`time.monotonic`); the instant the rate limiter used.
        method: HTTP method.
        path: URL path, without the query string.
        status: HTTP status sent.
        policy: for a 429, the ``policyName`` (``TEN_SECONDLY_ROLLING``, ``SECONDLY`` or
            ``DAILY``); otherwise ``None``.
        token_fingerprint: :func:`token_fingerprint` of the bearer token presented, or
            ``None`` when there was none. Never the token.
        search: whether the request was a CRM search (``POST .../search``).
        counted: whether the request was admitted by the rate limiter and so counts toward
            the limits (``False`` for 401s and 429s).
    """

    arrival: float
    method: str
    path: str
    status: int
    policy: str | None
    token_fingerprint: str | None
    search: bool
    counted: bool


class FakeStats:
    """Thread-safe log of every request a :class:`FakeHubSpot` answered, with counters.

    All reads return copies, so they are safe to use while the fake keeps serving.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def _add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()

    @property
    def records(self) -> list[RequestRecord]:
        """Every record, in the order the responses were decided."""
        with self._lock:
            return list(self._records)

    @property
    def total(self) -> int:
        """Number of requests answered."""
        with self._lock:
            return len(self._records)

    @property
    def by_status(self) -> dict[int, int]:
        """Requests per HTTP status."""
        with self._lock:
            return dict(Counter(r.status for r in self._records))

    @property
    def by_policy(self) -> dict[str, int]:
        """429s per ``policyName``."""
        with self._lock:
            return dict(Counter(r.policy for r in self._records if r.policy is not None))

    @property
    def count_429(self) -> int:
        """Number of 429 responses."""
        with self._lock:
            return sum(1 for r in self._records if r.status == 429)

    def _select(
        self, *, include_refused: bool, token: str | None, search: bool | None
    ) -> list[RequestRecord]:
        fingerprint = None if token is None else token_fingerprint(token)
        with self._lock:
            records = list(self._records)
        return [
            r
            for r in records
            if (include_refused or r.counted)
            and (fingerprint is None or r.token_fingerprint == fingerprint)
            and (search is None or r.search == search)
        ]

    def arrival_times(
        self, *, include_refused: bool = True, token: str | None = None, search: bool | None = None
    ) -> list[float]:
        """Arrival instants (seconds on the fake's clock), ascending.

        Args:
            include_refused: keep requests the limiter did not admit (401s, 429s).
            token: only requests made with this token (compared by fingerprint).
            search: ``True`` for searches only, ``False`` for non-searches only, ``None`` for all.
        """
        return sorted(
            r.arrival for r in self._select(include_refused=include_refused, token=token, search=search)
        )

    def max_in_window(
        self,
        window_seconds: float,
        *,
        include_refused: bool = False,
        token: str | None = None,
        search: bool | None = None,
    ) -> int:
        """The most requests that arrived within any half-open window of ``window_seconds``.

        By default only admitted requests count (what a rate limit is measured on); see
        :meth:`arrival_times` for the filters and :func:`max_in_window` for the definition.
        """
        return max_in_window(
            self.arrival_times(include_refused=include_refused, token=token, search=search), window_seconds
        )
