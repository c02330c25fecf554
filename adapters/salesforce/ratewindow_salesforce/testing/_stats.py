"""Request statistics recorded by :class:`FakeSalesforce` (thread-safe)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from ratewindow import Rate
from ratewindow.analysis import analyse

__all__ = ["FakeSalesforceStats", "RequestRecord"]


@dataclass(frozen=True)
class RequestRecord:
    """One HTTP request the fake answered.

    Times are in seconds on the fake's clock (``time.monotonic`` unless a ``clock`` was given).
    ``units`` is what the request counted against the org's rolling 24-hour allocation: 1 for an
    ordinary call, 1 for a whole ``/composite`` or sObject Collections call, one per executed
    subrequest for ``/composite/batch``, and 0 for refused, unauthenticated and ``/services/data/``
    (versions) requests. ``error_code`` is the first ``errorCode`` of an error body, if any.
    """

    arrival: float
    finish: float
    method: str
    path: str
    status: int
    units: int
    error_code: str | None = None
    subrequests: int = 0

    @property
    def duration(self) -> float:
        """Seconds between arrival and the end of the response."""
        return self.finish - self.arrival

    @property
    def refused(self) -> bool:
        """Whether the fake refused the request for a limit (403 ``REQUEST_LIMIT_EXCEEDED``)."""
        return self.status == 403 and self.error_code == "REQUEST_LIMIT_EXCEEDED"


class FakeSalesforceStats:
    """Live, thread-safe statistics of one :class:`FakeSalesforce`.

    Every property returns a snapshot taken under the lock; :meth:`reset` clears the request log
    (not the org's allocation usage, which is org state: see ``FakeSalesforce.reset_allocation``).
    """

    def __init__(self, allocation_used: Callable[[], int]) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._in_flight = 0
        self._max_concurrent = 0
        self._allocation_used = allocation_used

    # -- recording (used by the server) ----------------------------------------------------------

    def _begin(self) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_concurrent = max(self._max_concurrent, self._in_flight)

    def _end(self, record: RequestRecord) -> None:
        with self._lock:
            self._in_flight -= 1
            self._records.append(record)

    # -- queries -----------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Every finished request, in completion order."""
        with self._lock:
            return list(self._records)

    @property
    def total(self) -> int:
        """Number of finished requests."""
        with self._lock:
            return len(self._records)

    @property
    def refusals(self) -> int:
        """Requests refused with 403 ``REQUEST_LIMIT_EXCEEDED`` (allocation, concurrency, per-minute)."""
        with self._lock:
            return sum(1 for record in self._records if record.refused)

    @property
    def units(self) -> int:
        """Allocation units charged by the logged requests (excludes ``FakeSalesforce.spend``)."""
        with self._lock:
            return sum(record.units for record in self._records)

    @property
    def allocation_used(self) -> int:
        """The org's current rolling-24-hour usage, including units added with ``spend``."""
        return self._allocation_used()

    @property
    def max_concurrent(self) -> int:
        """Highest number of requests that were in flight at the same time."""
        with self._lock:
            return self._max_concurrent

    @property
    def in_flight(self) -> int:
        """Requests being served right now."""
        with self._lock:
            return self._in_flight

    def by_status(self) -> dict[int, int]:
        """Count of finished requests per HTTP status."""
        with self._lock:
            return dict(Counter(record.status for record in self._records))

    def by_error_code(self) -> dict[str, int]:
        """Count of finished requests per ``errorCode``."""
        with self._lock:
            return dict(Counter(record.error_code for record in self._records if record.error_code))

    def max_in_window(self, seconds: float, *, units: bool = False, counted_only: bool = False) -> int:
        """Exact maximum over every window ``[t, t + seconds)`` of the requests that arrived in it.

        ``seconds`` is in clock seconds (not scaled by ``time_scale``). With ``units=True`` the
        allocation units are summed instead of requests counted; ``counted_only=True`` ignores
        requests that did not count against the allocation.

        Raises:
            ValueError: ``seconds`` is not positive.
        """
        window = Rate(1, seconds)  # validates; the limit is not used
        with self._lock:
            chosen = [record for record in self._records if not counted_only or record.units > 0]
        times = [record.arrival for record in chosen]
        costs = [float(record.units) for record in chosen] if units else None
        return int(analyse(times, window, costs).most_in_window)

    def reset(self) -> None:
        """Forget the request log and the concurrency high-water mark."""
        with self._lock:
            self._records.clear()
            self._max_concurrent = self._in_flight
