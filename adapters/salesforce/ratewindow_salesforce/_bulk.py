"""The org's Bulk API allocations as ratewindow limiters, and polling a Bulk API 2.0 job.

Salesforce limits, per rolling 24 hours and per org, besides the API request allocation that
every Bulk request also takes a unit of:

- **10,000 Bulk API 2.0 query jobs** (``DailyBulkV2QueryJobs`` in ``/limits``): Bulk API 2.0
  Developer Guide, "Limits and Allocations", *Limits for Query Jobs*
  (developer.salesforce.com/docs/atlas.en-us.api_bulk_v2.meta/api_bulk_v2/bulk_api_2_limits.htm),
  summarised in the limits cheat sheet below.
- **15,000 batches**, shared between Bulk API and Bulk API 2.0 (``DailyBulkApiBatches``): the
  Salesforce Developer Limits and Allocations Quick Reference ("cheat sheet"), *Bulk API and Bulk
  API 2.0 Limits and Allocations*, Batch Allocations (developer.salesforce.com/docs/platform/
  salesforce-app-limits-cheatsheet/guide/salesforce-app-limits-platform-bulkapi.html). In Bulk API
  2.0 only ingest jobs consume batches, not query jobs; Salesforce creates one batch per 10,000
  records of a job's data, and the empty parent batch of each ingest job does not count (Bulk API
  2.0 Developer Guide, "Understanding Bulk API 2.0 Ingest" and "Limits and Allocations").

A wrapped client takes, besides its permits, one unit of ``BulkPools.query_jobs`` for each query
job it creates (``POST .../jobs/query``) and ``ceil(records / 10,000)`` units of
``BulkPools.batches`` for each ingest upload (``PUT .../jobs/ingest/{id}/batches``; the records are
the data's lines less the header, an upper bound when quoted values span lines) and one for each
Bulk 1.0 batch (``POST /services/async/.../job/{id}/batch``). A request the pools cannot hold is not
sent: ``DailyLimitExhausted`` says when the rolling window frees. A creation Salesforce refuses
(an answer >= 400, or a rate-limit refusal) gives its units back. Only what the clients on the
same store create is counted: other integrations' jobs are not seen.

``poll_job`` waits for a job, polling its status with exponential back-off; each poll is one
request, so it takes one permit like any other.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from ratewindow import Clock, MonotonicClock, Reservation, SlidingWindow, Store, WallClock
from ratewindow.http import parse_retry_after

from ratewindow_salesforce._errors import DailyLimitExhausted

if TYPE_CHECKING:
    from simple_salesforce.api import Salesforce

__all__ = ["BULK2_QUERY_JOBS", "BULK_BATCHES", "RECORDS_PER_BATCH", "BulkPools", "JobPoll", "bulk_cost",
           "poll_job"]

#: Bulk API 2.0 query jobs an org may create per rolling 24 h.
BULK2_QUERY_JOBS = 10_000
#: Bulk batches (Bulk API and Bulk API 2.0 together) an org may have processed per rolling 24 h.
BULK_BATCHES = 15_000
#: Records Salesforce puts in each batch it creates from a Bulk API 2.0 ingest job's data.
RECORDS_PER_BATCH = 10_000
#: Job states after which a job's state no longer changes.
TERMINAL_STATES = frozenset({"JobComplete", "Failed", "Aborted"})

_QUERY_JOBS = re.compile(r"/services/data/v[^/]+/jobs/query/?")
_INGEST_UPLOAD = re.compile(r"/services/data/v[^/]+/jobs/ingest/[^/]+/batches/?")
_BULK1_BATCH = re.compile(r"/services/async/[^/]+/job/[^/]+/batch/?")


def bulk_cost(request: requests.PreparedRequest) -> tuple[str, int] | None:
    """Which Bulk pool a request draws on, and how many units: ``("query_jobs", 1)`` for creating
    a Bulk API 2.0 query job, ``("batches", n)`` for an ingest upload (``ceil(records / 10,000)``,
    at least 1) or a Bulk 1.0 batch (1); None for any other request.

    >>> bulk_cost(requests.Request("POST", "https://org.example/services/data/v59.0/jobs/query").prepare())
    ('query_jobs', 1)
    """
    method = request.method or ""
    path = urlsplit(request.url or "").path
    if method == "POST" and _QUERY_JOBS.fullmatch(path):
        return "query_jobs", 1
    if method == "PUT" and _INGEST_UPLOAD.fullmatch(path):
        return "batches", max(1, math.ceil(_records(request.body) / RECORDS_PER_BATCH))
    if method == "POST" and _BULK1_BATCH.fullmatch(path):
        return "batches", 1
    return None


def _records(body: object) -> int:
    """Records in a CSV upload: its lines less the header (an upper bound if quoted values hold
    line breaks, which errs on the safe side)."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    if not isinstance(data, bytes) or not data:
        return 0
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return max(0, lines - 1)


@dataclass
class _Hold:
    """Units a request holds in one pool until its answer says whether Salesforce took them."""

    reservation: Reservation

    def settle(self, taken: bool) -> None:
        """Keep the units (the job or batch exists: they count from now) or give them back."""
        if taken:
            self.reservation.confirm()
        else:
            self.reservation.cancel()


class BulkPools:
    """An org's Bulk allocations, as rolling-window limiters on the wrapped client's store.

    Built by ``wrap``; ``bulk_pools(sf)`` returns it. The windows are named from the org's limiter
    name, so every process sharing the store shares them.

    Attributes:
        query_jobs: ``SlidingWindow(10_000, 86_400 s)``: Bulk API 2.0 query jobs created.
        batches: ``SlidingWindow(15_000, 86_400 s)``: Bulk batches submitted (Bulk API 2.0 ingest
            data, one per 10,000 records; Bulk 1.0 batches, one each).

    >>> from ratewindow import MemoryStore
    >>> pools = BulkPools("salesforce:acme", MemoryStore())
    >>> pools.query_jobs.available(), pools.batches.available()
    (10000.0, 15000.0)
    """

    def __init__(self, name: str, store: Store, clock: Clock | None = None, *, window: float = 86_400.0,
                 query_jobs: int = BULK2_QUERY_JOBS, batches: int = BULK_BATCHES) -> None:
        clock = clock if clock is not None else MonotonicClock()
        self._wall: Clock = WallClock() if isinstance(clock, MonotonicClock) else clock
        #: Bulk API 2.0 query jobs per rolling window.
        self.query_jobs = SlidingWindow(query_jobs, window, name=f"{name}:bulk2-query-jobs", store=store,
                                        clock=clock)
        #: Bulk batches per rolling window (Bulk API and Bulk API 2.0 together).
        self.batches = SlidingWindow(batches, window, name=f"{name}:bulk-batches", store=store, clock=clock)

    def hold(self, request: requests.PreparedRequest) -> _Hold | None:
        """Book the units ``request`` draws on (None if it draws on none).

        Raises:
            DailyLimitExhausted: the pool cannot hold them now; nothing is booked.
        """
        cost = bulk_cost(request)
        if cost is None:
            return None
        pool = self.query_jobs if cost[0] == "query_jobs" else self.batches
        units = cost[1]
        if units <= pool.limit:
            reservation = pool.reserve(units)
            if reservation.delay <= 0:
                return _Hold(reservation)
            reservation.cancel()
            wait = reservation.delay
        else:
            wait = pool.window  # more than a whole window holds: never (retry a smaller upload)
        raise DailyLimitExhausted(self._wall.now() + wait, pool.name, wait)

    def __repr__(self) -> str:
        return f"BulkPools(query_jobs={self.query_jobs!r}, batches={self.batches!r})"


@dataclass(frozen=True)
class JobPoll:
    """What ``poll_job`` saw: the job's last state and info, and what polling it cost.

    >>> JobPoll("750000000000001AAA", "JobComplete", {}, polls=3, waited=7.0).done
    True
    """

    #: The job's id.
    job_id: str
    #: The job's state in the last answer (``JobComplete``, ``Failed``, ``Aborted``, or not yet).
    state: str
    #: The last answer: Salesforce's job info.
    info: Mapping[str, Any] = field(repr=False)
    #: Status requests sent; each took one permit.
    polls: int = 0
    #: Seconds slept between polls (waits for permits not included).
    waited: float = 0.0

    @property
    def done(self) -> bool:
        """Whether the job reached a terminal state (else the timeout came first)."""
        return self.state in TERMINAL_STATES


def poll_job(sf: Salesforce, job_id: str, *, ingest: bool = False, first_delay: float = 1.0,
             factor: float = 2.0, max_delay: float = 30.0, timeout: float | None = None,
             clock: Clock | None = None) -> JobPoll:
    """Poll a Bulk API 2.0 job's status until it is done, backing off between polls.

    Waits ``first_delay`` seconds and polls; until the job reaches ``JobComplete``, ``Failed`` or
    ``Aborted``, waits ``first_delay x factor``, then ``x factor`` again after each poll (1 s
    instead of ``first_delay`` if that is 0), at most ``max_delay`` seconds, and at least what a
    ``Retry-After`` header of the last answer says: 1, 2, 4, 8, 16, 30, 30 ... s by default. Each
    poll is one request to ``GET .../jobs/query/{id}`` (``.../jobs/ingest/{id}`` with
    ``ingest=True``): through a wrapped client it takes one permit like any other request, and
    ``JobPoll.polls`` says how many were sent. A job that takes 10 minutes costs about 25 polls
    this way, where polling every 2-5 s (as ``simple_salesforce``'s own ``wait_for_job`` does)
    costs 120-300.

    Args:
        sf: a ``simple_salesforce.Salesforce`` (wrapped, for the polls to take permits).
        job_id: the job's id, from its creation's answer.
        ingest: an ingest job (default: a query job).
        first_delay: seconds before the first poll (0: at once), and the base of the back-off.
        factor: growth of the delay after each poll, >= 1.
        max_delay: most seconds between two polls.
        timeout: most seconds to poll; then the last state is returned (``done`` False). None:
            until the job is done.
        clock: sleeps between polls (tests: ``ratewindow.testing.ManualClock``); default
            ``MonotonicClock()``.

    Returns:
        a ``JobPoll`` with the job's last state and info, the polls sent and the seconds slept.

    Raises:
        ValueError: a bad delay, factor or timeout.
        simple_salesforce's exceptions: a poll answered with an error (e.g. an unknown job id).

    >>> status = poll_job(sf, job["id"], max_delay=60.0)  # doctest: +SKIP
    >>> status.state, status.polls  # doctest: +SKIP
    ('JobComplete', 6)
    """
    for name, value in (("first_delay", first_delay), ("max_delay", max_delay)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 1 <= factor < math.inf:
        raise ValueError(f"factor must be a finite number >= 1, got {factor!r}")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 <= timeout < math.inf):
        raise ValueError(f"timeout must be None or a finite number of seconds >= 0, got {timeout!r}")
    from simple_salesforce.util import call_salesforce

    clock = clock if clock is not None else MonotonicClock()
    handler: Any = sf.bulk2  # simple-salesforce's own Bulk 2.0 URL and headers
    url = f"{handler.bulk2_url}{'ingest' if ingest else 'query'}/{job_id}"
    deadline = None if timeout is None else clock.now() + timeout
    base = float(first_delay) if first_delay > 0 else 1.0
    delay = float(first_delay)
    polls = 0
    waited = 0.0
    while True:
        if deadline is not None:
            delay = min(delay, max(0.0, deadline - clock.now()))
        if delay > 0:
            clock.sleep(delay)
            waited += delay
        response = call_salesforce(url=url, method="GET", session=sf.session, headers=dict(handler.headers))
        polls += 1
        info = response.json()
        state = str(info.get("state", "")) if isinstance(info, dict) else ""
        if state in TERMINAL_STATES or (deadline is not None and clock.now() >= deadline):
            return JobPoll(job_id, state, info if isinstance(info, dict) else {}, polls=polls, waited=waited)
        delay = min(max_delay, base * factor**polls)
        asked = parse_retry_after(response.headers.get("Retry-After"))
        if asked is not None:
            delay = max(delay, asked)
