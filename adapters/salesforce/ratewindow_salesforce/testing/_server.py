"""The HTTPS server behind :class:`FakeSalesforce` and its org-wide limit accounting."""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from ratewindow_salesforce.testing._api import Api, Resp
from ratewindow_salesforce.testing._bulk import Bulk2
from ratewindow_salesforce.testing._data import OrgData
from ratewindow_salesforce.testing._stats import FakeSalesforceStats, RequestRecord

if TYPE_CHECKING:
    import requests

__all__ = ["FakeSalesforce"]

#: Seconds in the rolling allocation window and in the optional per-minute window (before scaling).
DAY_SECONDS = 86_400.0
MINUTE_SECONDS = 60.0
#: Oldest API version the fake lists at ``/services/data/``.
OLDEST_VERSION = 31

#: Salesforce's refusal bodies (HTTP 403, errorCode REQUEST_LIMIT_EXCEEDED).
TOTAL_REQUESTS_MESSAGE = "TotalRequests Limit exceeded."
CONCURRENT_MESSAGE = "ConcurrentPerOrgLongTxn Limit exceeded"
#: The per-minute cap is not a Salesforce limit; this message is the fake's own.
PER_MINUTE_MESSAGE = "PerMinute Limit exceeded (FakeSalesforce per_minute cap)."
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
#: What the Bulk API 1.0 (``/services/async/``) answers for an expired or invalid session: HTTP 400
#: with ``exceptionCode`` ``InvalidSessionId``, in JSON when the request is JSON, else in XML.
BULK_INVALID_SESSION = {"exceptionCode": "InvalidSessionId", "exceptionMessage": "Invalid session id"}
BULK_INVALID_SESSION_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><error xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
    b"<exceptionCode>InvalidSessionId</exceptionCode><exceptionMessage>Invalid session id</exceptionMessage>"
    b"</error>"
)
INTERNAL_ERROR = [
    {"message": "An unexpected error occurred in FakeSalesforce.", "errorCode": "UNKNOWN_EXCEPTION"}
]

#: Bulk allocations per rolling 24 h: Bulk API 2.0 query jobs, and batches (Bulk API and 2.0 together).
BULK2_QUERY_JOBS = 10_000
BULK_BATCHES = 15_000

_JSON_TYPE = "application/json;charset=UTF-8"
_HANDSHAKE_TIMEOUT = 10.0


def _refusal(message: str) -> Resp:
    return Resp(403, [{"message": message, "errorCode": "REQUEST_LIMIT_EXCEEDED"}])


class _Ledger:
    """Rolling-window usage of the org's API allocation (all callers share it).

    ``window`` and ``minute`` are in clock seconds (already scaled by ``time_scale``).
    """

    def __init__(self, window: float, minute: float) -> None:
        self.window = window
        self.minute = minute
        self._day: deque[tuple[float, int]] = deque()
        self._day_total = 0
        self._recent: deque[tuple[float, int]] = deque()
        self._recent_total = 0

    def _prune(self, now: float) -> None:
        while self._day and self._day[0][0] <= now - self.window:
            self._day_total -= self._day.popleft()[1]
        while self._recent and self._recent[0][0] <= now - self.minute:
            self._recent_total -= self._recent.popleft()[1]

    def used(self, now: float) -> int:
        """Units charged in the last ``window`` seconds."""
        self._prune(now)
        return self._day_total

    def used_last_minute(self, now: float) -> int:
        """Units charged by API requests in the last ``minute`` seconds (``spend`` excluded)."""
        self._prune(now)
        return self._recent_total

    def charge(self, now: float, units: int, *, api_call: bool = True) -> None:
        """Record ``units`` at ``now``."""
        if units <= 0:
            return
        self._day.append((now, units))
        self._day_total += units
        if api_call:
            self._recent.append((now, units))
            self._recent_total += units

    def clear(self) -> None:
        """Forget all usage."""
        self._day.clear()
        self._recent.clear()
        self._day_total = self._recent_total = 0


@dataclass
class _HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


class FakeSalesforce:
    """A local, faithful fake of the Salesforce REST API for tests with the real ``simple-salesforce``.

    It serves HTTPS on loopback with a throw-away CA (``ca_path``), so the unmodified client works::

        with FakeSalesforce(allocation=100) as fake:
            sf = Salesforce(instance_url=fake.instance_url, session_id=fake.session_id,
                            session=fake.session())
            sf.query_all("SELECT Id FROM Account")

    Limits, as Salesforce enforces them per org:

    * ``allocation`` -- total API requests in a rolling 24-hour window (scaled by ``time_scale``).
      Each REST call counts 1, a ``/composite`` call or an sObject Collections call counts 1 in
      total, a ``/composite/batch`` call counts 1 per executed subrequest; ``/services/data/``
      (versions) and refused or unauthenticated requests count 0. A request that would go over
      is refused with HTTP 403 ``REQUEST_LIMIT_EXCEEDED`` / ``TotalRequests Limit exceeded.``
    * ``concurrency_limit`` -- when this many requests have been in flight for at least
      ``long_running_threshold`` seconds (scaled by ``time_scale``), new requests are refused
      with 403 ``REQUEST_LIMIT_EXCEEDED`` / ``ConcurrentPerOrgLongTxn Limit exceeded``.
    * ``per_minute`` -- optional extra cap (not a Salesforce limit) on units per rolling minute
      (scaled by ``time_scale``); units added with :meth:`spend` are not included.

    Every authenticated response carries ``Sforce-Limit-Info: api-usage=USED/MAX``.

    Args:
        port: TCP port on 127.0.0.1 (0 = pick a free one).
        api_version: newest API version served; every version from 31.0 up to it is listed at
            ``/services/data/`` and answered (``latest`` is an alias for it).
        edition: a preset of ``ratewindow_salesforce.EDITIONS`` (as ``FakeHubSpot(tier=...)``):
            its allocation and long-running cap, unless ``allocation`` or ``concurrency_limit``
            are given. None: a Developer Edition org's 15,000 and 25.
        allocation: requests per rolling 24 h for the whole org (default 15,000).
        concurrency_limit: long-running requests allowed in flight at once (default 25).
        long_running_threshold: seconds (before scaling) after which an in-flight request counts
            as long-running; Salesforce uses 20 s.
        per_minute: optional cap on units per rolling minute, or ``None``.
        latency: ``(low, high)`` seconds; each served request waits a uniform random time in
            that range (real seconds, not scaled). Refusals are answered at once.
        time_scale: multiplies the 24-hour window, the minute and the long-running threshold,
            so ``time_scale=0.001`` makes a "day" last 86.4 s.
        seed: makes latency jitter and the org data (object names, fields, records) reproducible.
        session_ids: accepted bearer tokens; ``None`` accepts any non-empty token.
        clock: callable returning seconds (default ``time.monotonic``) used for windows, stats
            and long-running detection; latency always sleeps in real time.
        job_polls: status requests a Bulk API 2.0 job answers before it reports ``JobComplete``
            (``InProgress`` until then; 1: at once). Time is counted in polls so that tests are
            exact; see ``ratewindow_salesforce.testing._bulk``.

    Bulk API 2.0 (``/jobs/query``, ``/jobs/ingest``) is served: query jobs run the fake's SOQL and
    return CSV; ingest jobs apply their rows at ``UploadComplete``. ``/limits`` reports
    ``DailyBulkV2QueryJobs`` and ``DailyBulkApiBatches`` (10,000 query jobs and 15,000 batches per
    rolling 24 h, scaled by ``time_scale``) as used; the fake never refuses on them.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        api_version: str = "59.0",
        edition: str | None = None,
        allocation: int | None = None,
        concurrency_limit: int | None = None,
        long_running_threshold: float = 20.0,
        per_minute: int | None = None,
        latency: tuple[float, float] = (0.0, 0.0),
        time_scale: float = 1.0,
        seed: int = 0,
        session_ids: Collection[str] | None = None,
        clock: Callable[[], float] | None = None,
        job_polls: int = 2,
    ) -> None:
        if not re.fullmatch(r"\d+\.0", api_version) or int(float(api_version)) < OLDEST_VERSION:
            raise ValueError(f"api_version must look like '59.0' and be at least {OLDEST_VERSION}.0")
        if edition is not None:
            from ratewindow_salesforce._limits import EDITIONS

            if edition not in EDITIONS:
                raise ValueError(f"unknown edition {edition!r}; one of: {', '.join(EDITIONS)}")
            preset = EDITIONS[edition]
            allocation = preset.allocation if allocation is None else allocation
            concurrency_limit = preset.long_running if concurrency_limit is None else concurrency_limit
        allocation = 15_000 if allocation is None else allocation
        concurrency_limit = 25 if concurrency_limit is None else concurrency_limit
        if allocation < 0:
            raise ValueError("allocation must be >= 0")
        if concurrency_limit < 1:
            raise ValueError("concurrency_limit must be >= 1")
        if long_running_threshold < 0:
            raise ValueError("long_running_threshold must be >= 0")
        if per_minute is not None and per_minute < 0:
            raise ValueError("per_minute must be >= 0 or None")
        low, high = latency
        if low < 0 or high < low:
            raise ValueError("latency must be (low, high) with 0 <= low <= high")
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        if session_ids is not None and (not session_ids or any(not token for token in session_ids)):
            raise ValueError("session_ids must be None or a non-empty collection of non-empty tokens")
        if isinstance(job_polls, bool) or not isinstance(job_polls, int) or job_polls < 1:
            raise ValueError(f"job_polls must be a positive int, got {job_polls!r}")
        self.port = port
        self.api_version = api_version
        self.allocation = allocation
        self.concurrency_limit = concurrency_limit
        self.long_running_threshold = long_running_threshold
        self.per_minute = per_minute
        self.latency = (float(low), float(high))
        self.time_scale = time_scale
        self.seed = seed
        self._session_ids = frozenset(session_ids) if session_ids is not None else None
        self._clock: Callable[[], float] = clock or time.monotonic
        self._rng = random.Random(seed)
        self._limits_lock = threading.Lock()
        self._ledger = _Ledger(DAY_SECONDS * time_scale, MINUTE_SECONDS * time_scale)
        self._in_flight: dict[int, float] = {}
        self._next_request = 0
        self._stats = FakeSalesforceStats(self.allocation_used_now)
        #: The org's generated data (catalog, describes, records); read it, do not mutate it.
        self.data = OrgData(seed)
        versions = [f"{major}.0" for major in range(OLDEST_VERSION, int(float(api_version)) + 1)]
        self._api = Api(self.data, versions, self._limits_body)
        self.job_polls = job_polls
        self._query_jobs = _Ledger(DAY_SECONDS * time_scale, MINUTE_SECONDS * time_scale)
        self._batches = _Ledger(DAY_SECONDS * time_scale, MINUTE_SECONDS * time_scale)
        self._api.bulk2 = Bulk2(self.data, job_polls, self._count_query_job, self._count_batches)
        self._stopping = threading.Event()
        #: Exceptions raised inside the fake while answering (each was answered with HTTP 500).
        self.internal_errors: list[BaseException] = []
        self._server: _TlsServer | None = None
        self._thread: threading.Thread | None = None
        self._tmpdir: str | None = None
        self._ca_path: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeSalesforce:
        """Create the TLS material and start serving; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("FakeSalesforce is already running")
        import trustme

        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1", "localhost")
        self._tmpdir = tempfile.mkdtemp(prefix="fake-salesforce-")
        self._ca_path = os.path.join(self._tmpdir, "ca.pem")
        ca.cert_pem.write_to_path(self._ca_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        leaf.configure_cert(context)
        self._stopping.clear()
        try:
            self._server = _TlsServer(("127.0.0.1", self.port), self, context)
        except OSError:
            self._remove_tmpdir()
            raise
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="FakeSalesforce-server"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection, join all server threads and delete ``ca_path``."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = None
        self._thread = None
        self._remove_tmpdir()

    def _remove_tmpdir(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
        self._tmpdir = None
        self._ca_path = None

    def __enter__(self) -> FakeSalesforce:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- public helpers ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._server is not None

    @property
    def instance_url(self) -> str:
        """``https://127.0.0.1:PORT`` -- pass it as ``Salesforce(instance_url=...)``."""
        if self._server is None:
            raise RuntimeError("FakeSalesforce is not running")
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca_path(self) -> str:
        """PEM file of the CA that signed the server certificate (deleted by :meth:`stop`)."""
        if self._ca_path is None:
            raise RuntimeError("FakeSalesforce is not running")
        return self._ca_path

    @property
    def session_id(self) -> str:
        """A bearer token the fake accepts (the first of ``session_ids`` in sorted order)."""
        if self._session_ids is not None:
            return sorted(self._session_ids)[0]
        return "00DFAKE0000000!fake-session"

    @property
    def versions(self) -> list[str]:
        """API versions served, oldest first."""
        return list(self._api.versions)

    def session(self) -> requests.Session:
        """A ``requests.Session`` that trusts :attr:`ca_path`, for ``Salesforce(session=...)``.

        The session has ``trust_env = False``: with ``trust_env`` on, requests lets the
        ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` environment variables override
        ``Session.verify`` and routes loopback traffic through ``HTTPS_PROXY``; neither is wanted
        for a local fake. Close it (or use it as a context manager) when done.
        """
        import requests

        http = requests.Session()
        http.trust_env = False
        http.verify = self.ca_path
        return http

    @property
    def stats(self) -> FakeSalesforceStats:
        """Live request statistics."""
        return self._stats

    def reset_stats(self) -> None:
        """Clear the request log (the org's allocation usage is kept)."""
        self._stats.reset()

    def spend(self, units: int) -> None:
        """Charge ``units`` to the org's 24-hour allocation now, as another app would."""
        if units < 0:
            raise ValueError("units must be >= 0")
        with self._limits_lock:
            self._ledger.charge(self._clock(), units, api_call=False)

    def reset_allocation(self) -> None:
        """Forget all allocation usage (as if a quiet day had passed)."""
        with self._limits_lock:
            self._ledger.clear()

    def allocation_used_now(self) -> int:
        """Units charged in the current rolling 24-hour window (scaled)."""
        with self._limits_lock:
            return self._ledger.used(self._clock())

    @property
    def allocation_used(self) -> int:
        """Same as :meth:`allocation_used_now`."""
        return self.allocation_used_now()

    # -- request handling ----------------------------------------------------------------------

    def _count_query_job(self) -> None:
        with self._limits_lock:
            self._query_jobs.charge(self._clock(), 1, api_call=False)

    def _count_batches(self, batches: int) -> None:
        with self._limits_lock:
            self._batches.charge(self._clock(), batches, api_call=False)

    def bulk_usage(self) -> tuple[int, int]:
        """``(query jobs, batches)`` created in the current rolling 24 h (scaled): Bulk API 2.0
        query jobs, and batches of closed ingest jobs (one per 10,000 records)."""
        with self._limits_lock:
            now = self._clock()
            return self._query_jobs.used(now), self._batches.used(now)

    def _limits_body(self) -> dict[str, Any]:
        used = self.allocation_used_now()
        query_jobs, batches = self.bulk_usage()

        def pair(maximum: int, remaining: int | None = None) -> dict[str, int]:
            return {"Max": maximum, "Remaining": maximum if remaining is None else remaining}

        return {
            "ConcurrentAsyncGetReportInstances": pair(200),
            "ConcurrentSyncReportRuns": pair(20),
            "DailyApiRequests": pair(self.allocation, max(0, self.allocation - used)),
            "DailyAsyncApexExecutions": pair(250_000),
            "DailyBulkApiBatches": pair(BULK_BATCHES, max(0, BULK_BATCHES - batches)),
            "DailyBulkV2QueryFileStorageMB": pair(976_562),
            "DailyBulkV2QueryJobs": pair(BULK2_QUERY_JOBS, max(0, BULK2_QUERY_JOBS - query_jobs)),
            "DailyDurableStreamingApiEvents": pair(1_000_000),
            "DataStorageMB": pair(1_024, 1_001),
            "FileStorageMB": pair(2_048, 2_030),
            "HourlyDashboardRefreshes": pair(200),
            "HourlySyncReportRuns": pair(500),
            "MassEmail": pair(5_000),
            "PermissionSets": {"Max": 1_500, "Remaining": 1_494, "CreateCustom": pair(1_000, 997)},
            "SingleEmail": pair(5_000),
        }

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        lowered = {key.lower(): value for key, value in headers.items()}
        scheme, _, token = lowered.get("authorization", "").strip().partition(" ")
        token = token.strip() if scheme.lower() in ("bearer", "oauth") else ""
        token = token or lowered.get("x-sfdc-session", "").strip()  # Bulk API 1.0 sends the session here
        if not token:
            return False
        return self._session_ids is None or token in self._session_ids

    def _admit(self, request_id: int, units: int) -> Resp | None:
        """Check the limits for a new request and charge ``units``; a refusal :class:`Resp` or ``None``."""
        with self._limits_lock:
            now = self._clock()
            threshold = self.long_running_threshold * self.time_scale
            long_running = sum(
                1
                for rid, arrival in self._in_flight.items()
                if rid != request_id and now - arrival >= threshold
            )
            if long_running >= self.concurrency_limit:
                return _refusal(CONCURRENT_MESSAGE)
            needed = max(units, 1)
            if self._ledger.used(now) + needed > self.allocation:
                return _refusal(TOTAL_REQUESTS_MESSAGE)
            if self.per_minute is not None and self._ledger.used_last_minute(now) + needed > self.per_minute:
                return _refusal(PER_MINUTE_MESSAGE)
            self._ledger.charge(now, units)
            return None

    def _sleep_latency(self) -> None:
        low, high = self.latency
        if high <= 0:
            return
        with self._limits_lock:
            delay = self._rng.uniform(low, high)
        self._stopping.wait(delay)

    def _handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> _HttpAnswer:
        """Answer one HTTP request: limits, dispatch, stats."""
        arrival = self._clock()
        with self._limits_lock:
            self._next_request += 1
            request_id = self._next_request
            self._in_flight[request_id] = arrival
        self._stats._begin()
        status = 500
        units = 0
        subrequests = 0
        error_code: str | None = None
        path = urlsplit(target).path
        try:
            try:
                resp, units, subrequests, with_usage = self._process(
                    request_id, method, target, headers, body
                )
            except Exception as exc:  # a bug in the fake: answer like Salesforce does, keep it for tests
                self.internal_errors.append(exc)
                resp, with_usage = Resp(500, INTERNAL_ERROR), True
            status = resp.status
            error_code = resp.error_code
            return self._encode(resp, with_usage)
        finally:
            with self._limits_lock:
                self._in_flight.pop(request_id, None)
            self._stats._end(
                RequestRecord(
                    arrival=arrival,
                    finish=self._clock(),
                    method=method,
                    path=path,
                    status=status,
                    units=units,
                    error_code=error_code,
                    subrequests=subrequests,
                )
            )

    def _process(
        self, request_id: int, method: str, target: str, headers: Mapping[str, str], raw: bytes
    ) -> tuple[Resp, int, int, bool]:
        """Answer one request: ``(response, units charged, subrequest count, send Sforce-Limit-Info)``."""
        split = urlsplit(target)
        path = split.path
        params = parse_qs(split.query, keep_blank_values=True)
        if path.rstrip("/") == "/services/data":
            # The Versions resource needs no session and does not count (REST API Developer Guide).
            if method not in ("GET", "HEAD"):
                message = f"HTTP Method '{method}' not allowed. Allowed are GET,HEAD"
                return Resp(405, [{"errorCode": "METHOD_NOT_ALLOWED", "message": message}]), 0, 0, False
            return Resp(200, self._api.versions_body()), 0, 0, False
        if not self._authorized(headers):
            if path.startswith("/services/async/"):  # Bulk API 1.0 answers 400, not 401
                json_request = "json" in {k.lower(): v for k, v in headers.items()}.get("content-type", "")
                if json_request:
                    return Resp(400, BULK_INVALID_SESSION), 0, 0, False
                return Resp(400, BULK_INVALID_SESSION_XML, {"Content-Type": "application/xml"}), 0, 0, False
            return Resp(401, INVALID_SESSION), 0, 0, False
        is_batch = (
            method == "POST" and re.fullmatch(r"/services/data/[^/]+/composite/batch/?", path) is not None
        )
        units = 0 if is_batch else 1
        refusal = self._admit(request_id, units)
        if refusal is not None:
            return refusal, 0, 0, True
        content_type = {key.lower(): value for key, value in headers.items()}.get("content-type", "")
        try:
            if content_type.lower().startswith("text/csv"):  # Bulk API 2.0 job data
                body: Any = raw.decode("utf-8")
            else:
                body = json.loads(raw) if raw.strip() else None
        except ValueError:
            error = [{"message": "The request body is not valid JSON", "errorCode": "JSON_PARSER_ERROR"}]
            return Resp(400, error), units, 0, True
        self._sleep_latency()
        charged = [units]

        def charge_subrequest() -> Resp | None:
            refused = self._admit(request_id, 1)
            if refused is None:
                charged[0] += 1
            return refused

        with self.data.lock:
            resp = self._api.dispatch(
                method, path, params, body, headers=headers, charge=charge_subrequest if is_batch else None
            )
        subrequests = 0
        if isinstance(resp.body, dict):
            for key in ("compositeResponse", "results"):
                if isinstance(resp.body.get(key), list):
                    subrequests = len(resp.body[key])
        return resp, charged[0], subrequests, True

    def _encode(self, resp: Resp, with_usage: bool) -> _HttpAnswer:
        headers: dict[str, str] = dict(resp.headers)
        payload = b""
        if isinstance(resp.body, bytes):  # already encoded (CSV, XML): its Content-Type is in headers
            payload = resp.body
        elif resp.status != 204 and resp.body is not None:
            payload = json.dumps(resp.body, separators=(",", ":")).encode()
            headers["Content-Type"] = _JSON_TYPE
        if with_usage:
            headers["Sforce-Limit-Info"] = f"api-usage={self.allocation_used_now()}/{self.allocation}"
        return _HttpAnswer(resp.status, headers, payload)


class _Handler(BaseHTTPRequestHandler):
    """Translates HTTP/1.1 requests to :meth:`FakeSalesforce.handle`; never logs (headers hold tokens)."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeSalesforce"
    sys_version = ""
    server: _TlsServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay silent: request lines and headers may carry session ids."""

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        headers = {key: value for key, value in self.headers.items()}
        answer = self.server.fake._handle(self.command, self.path, headers, raw)
        self.send_response(answer.status)
        for key, value in answer.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD" and answer.body:
            self.wfile.write(answer.body)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = _serve  # noqa: N815 - http.server API


class _TlsServer(ThreadingHTTPServer):
    """One thread per connection; TLS handshakes happen in that thread, not in the accept loop."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: FakeSalesforce, context: ssl.SSLContext) -> None:
        self.fake = fake
        self.context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._closing = False
        super().__init__(address, _Handler)

    def _track(self, old: socket.socket | None, new: socket.socket | None) -> bool:
        with self._connections_lock:
            if old is not None:
                self._connections.discard(old)
            if new is not None:
                if self._closing:
                    return False
                self._connections.add(new)
            return True

    def finish_request(self, request: Any, client_address: Any) -> None:
        raw: socket.socket = request
        if not self._track(None, raw):
            return
        tls: ssl.SSLSocket | None = None
        try:
            raw.settimeout(_HANDSHAKE_TIMEOUT)
            tls = self.context.wrap_socket(raw, server_side=True)
            tls.settimeout(None)
            if not self._track(raw, tls):
                return
            _Handler(tls, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            self._track(raw, None)
            if tls is not None:
                self._track(tls, None)
                with contextlib.suppress(OSError):
                    tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Connection errors (clients going away, stop()) are expected; stay silent."""

    def close_connections(self) -> None:
        """Shut down every open connection so that its handler thread ends."""
        with self._connections_lock:
            self._closing = True
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
