"""The loopback HTTP server behind :class:`FakeHubSpot`.

Standard library only: :mod:`http.server` with one thread per connection (HTTP/1.1 keep-alive,
as HubSpot's SDKs use pooled connections), :mod:`json` and :mod:`threading`.

Rate-limit behaviour, response headers and error bodies follow HubSpot's documentation and
observed responses; see :mod:`ratewindow_hubspot.testing._limits` for the limits, and the
comments on :meth:`FakeHubSpot._rate_limit_body` for the bodies.
"""

from __future__ import annotations

import contextlib
import random
import socket
import socketserver
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._api import CrmApi, RawJson, error_body, is_search, to_json
from ._data import Dataset
from ._limits import DAILY, SECONDLY, TEN_SECONDLY_ROLLING, TIERS, Admission, RateLimiter
from ._stats import FakeStats, RequestRecord, token_fingerprint

__all__ = ["FakeHubSpot"]

_AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can "
    "find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_STOP_GRACE_SECONDS = 5.0


@dataclass
class _Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class FakeHubSpot:
    """A local fake of HubSpot's CRM API with HubSpot's rate limits, served over loopback HTTP.

    Point the official SDK at :attr:`url` (``hubspot.HubSpot(access_token=..., host=fake.url)``)
    or any HTTP client. Use it as a context manager, or call :meth:`start` and :meth:`stop`.

    Args:
        host: interface to bind; keep it on loopback.
        port: TCP port, ``0`` for a free one (read it back from :attr:`port`).
        tier: preset limits, one of ``free``, ``starter``, ``professional``, ``enterprise``,
            ``api_addon``, ``oauth_app`` (see :data:`~ratewindow_hubspot.testing.TIERS`).
        window_limit: requests per rolling window per access token; overrides the tier.
        window_seconds: nominal length of the rolling window, in seconds (HubSpot: 10).
        daily_limit: requests per day per account; overrides the tier (``oauth_app`` has none).
        time_zone: IANA name of the account's time zone; the daily count resets at its midnight.
        search_per_second: CRM search requests per rolling second per account (HubSpot: 5).
        time_scale: multiplies every rolling window (not the limits, not the day): ``0.1`` turns
            10 s into 1 s so demos and tests run ten times faster.
        latency: seconds of delay added to each response, a number or a ``(low, high)`` range
            drawn uniformly from a generator seeded with ``seed``.
        seed: seeds the generated data and the latency jitter.
        tokens: the accepted bearer tokens; ``None`` accepts any non-empty token.
        clock: seconds for the rolling windows and the request log (default
            :func:`time.monotonic`): any function returning seconds, e.g. a
            ``ratewindow.testing.ManualClock``, which makes timing tests exact (give the same
            clock to the client's limiters).
        wall_clock: Unix time in seconds, for the daily reset (default :func:`time.time`).
        dataset: the CRM data; default ``Dataset.generate(seed=seed)`` (3,067 engagements).
        search_counts_toward_window: also count searches toward the per-token window
            (HubSpot does not document it; off by default).
        portal_id: the account id shown in 429 ``groupName`` values; derived from ``seed``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tier: str = "professional",
        window_limit: int | None = None,
        window_seconds: float = 10.0,
        daily_limit: int | None = None,
        time_zone: str = "UTC",
        search_per_second: int = 5,
        time_scale: float = 1.0,
        latency: float | tuple[float, float] = (0.0, 0.0),
        seed: int = 0,
        tokens: Iterable[str] | None = None,
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] | None = None,
        dataset: Dataset | None = None,
        search_counts_toward_window: bool = False,
        portal_id: int | None = None,
    ) -> None:
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier!r}; expected one of {sorted(TIERS)}")
        preset = TIERS[tier]
        if window_limit is not None and window_limit < 1:
            raise ValueError("window_limit must be >= 1")
        if daily_limit is not None and daily_limit < 1:
            raise ValueError("daily_limit must be >= 1")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be > 0")
        if search_per_second < 1:
            raise ValueError("search_per_second must be >= 1")
        if time_scale <= 0:
            raise ValueError("time_scale must be > 0")
        low, high = (latency, latency) if isinstance(latency, (int, float)) else latency
        if not 0 <= low <= high:
            raise ValueError("latency must satisfy 0 <= low <= high (seconds)")
        if isinstance(tokens, str):
            raise TypeError("tokens must be a collection of strings, not one string")
        accepted = None if tokens is None else frozenset(tokens)
        if accepted is not None and not all(isinstance(t, str) and t for t in accepted):
            raise ValueError("tokens must be non-empty strings")
        try:
            zone = ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {time_zone!r}") from exc

        self.host = host
        self.tier = tier
        self.window_limit = preset.window_limit if window_limit is None else window_limit
        self.window_seconds = float(window_seconds)
        self.daily_limit = preset.daily_limit if daily_limit is None else daily_limit
        self.time_zone = time_zone
        self.search_per_second = search_per_second
        self.time_scale = float(time_scale)
        self.latency = (float(low), float(high))
        self.seed = seed
        self.portal_id = 20_000_000 + seed % 10_000_000 if portal_id is None else portal_id
        self.dataset = Dataset.generate(seed=seed) if dataset is None else dataset
        self._requested_port = port
        self._tokens = accepted
        self._stats = FakeStats()
        self._rng = random.Random(f"ratewindow-fake-hubspot-latency:{seed}")
        self._rng_lock = threading.Lock()
        self._limiter = RateLimiter(
            window_limit=self.window_limit,
            window_seconds=self.effective_window_seconds,
            daily_limit=self.daily_limit,
            search_limit=search_per_second,
            search_window_seconds=1.0 * self.time_scale,
            time_zone=zone,
            clock=time.monotonic if clock is None else clock,
            wall_clock=time.time if wall_clock is None else wall_clock,
            search_counts_toward_window=search_counts_toward_window,
        )
        self._api = CrmApi(self.dataset, lambda: self.url)
        self._state_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeHubSpot:
        """Bind and serve on a background thread; returns ``self``. Idempotent."""
        with self._state_lock:
            if self._server is not None:
                return self
            server = _Server((self.host, self._requested_port), self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="FakeHubSpot-accept",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
            return self

    def stop(self) -> None:
        """Stop serving and wait for every thread the fake started. Idempotent.

        Idle keep-alive connections are closed at once; requests in flight get up to 5 s to
        finish before their connections are closed too.
        """
        with self._state_lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        server.close_connections(_STOP_GRACE_SECONDS + self.latency[1])
        server.server_close()

    def __enter__(self) -> FakeHubSpot:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the fake is serving."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The bound TCP port (only while running)."""
        server = self._server
        if server is None:
            raise RuntimeError("FakeHubSpot is not running; call start() first")
        return int(server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (only while running)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ observation
    @property
    def stats(self) -> FakeStats:
        """The request log and counters (thread-safe)."""
        return self._stats

    def reset_stats(self) -> None:
        """Forget the request log."""
        self._stats.clear()

    def reset_limits(self) -> None:
        """Forget every rolling window and the daily count."""
        self._limiter.reset()

    @property
    def effective_window_seconds(self) -> float:
        """Length of the rolling window actually enforced: ``window_seconds * time_scale``."""
        return self.window_seconds * self.time_scale

    def arrival_times(self) -> list[float]:
        """Arrival instants of every request, in seconds on the fake's clock, ascending."""
        return self._stats.arrival_times()

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return (
            f"FakeHubSpot({where}, tier={self.tier!r}, window_limit={self.window_limit}, "
            f"window={self.effective_window_seconds:g}s, daily_limit={self.daily_limit})"
        )

    # ------------------------------------------------------------------ request processing
    def _process(self, method: str, raw_path: str, body: bytes, authorization: str | None) -> _Reply:
        split = urlsplit(raw_path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        search = is_search(method, path)
        token = _bearer(authorization)
        fingerprint = None if token is None else token_fingerprint(token)

        if token is None or (self._tokens is not None and token not in self._tokens):
            arrival = self._limiter.now()
            reply = _Reply(401, error_body(_AUTH_MESSAGE, "INVALID_AUTHENTICATION"))
            self._record(arrival, method, path, reply.status, None, fingerprint, search, counted=False)
            return reply
        assert fingerprint is not None

        admission = self._limiter.admit(fingerprint, search=search)
        headers = {} if search else self._rate_headers(admission)
        if admission.allowed:
            result = self._api.handle(method, path, query, body)
            reply = _Reply(result.status, result.body, headers)
        else:
            assert admission.policy is not None
            reply = _Reply(429, self._rate_limit_body(admission.policy, fingerprint), headers)
        self._record(
            admission.arrival,
            method,
            path,
            reply.status,
            admission.policy,
            fingerprint,
            search,
            counted=admission.allowed,
        )
        return reply

    def _record(
        self,
        arrival: float,
        method: str,
        path: str,
        status: int,
        policy: str | None,
        fingerprint: str | None,
        search: bool,
        *,
        counted: bool,
    ) -> None:
        self._stats._add(RequestRecord(arrival, method, path, status, policy, fingerprint, search, counted))

    def _rate_headers(self, admission: Admission) -> dict[str, str]:
        # HubSpot's documented headers. X-HubSpot-RateLimit-Secondly(-Remaining) are documented as
        # deprecated and are not sent; search responses carry none of these (handled by caller).
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(self.effective_window_seconds * 1000)),
            "X-HubSpot-RateLimit-Max": str(self.window_limit),
            "X-HubSpot-RateLimit-Remaining": str(admission.window_remaining),
        }
        if admission.daily_remaining is not None and self.daily_limit is not None:
            headers["X-HubSpot-RateLimit-Daily"] = str(self.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(admission.daily_remaining)
        return headers

    def _rate_limit_body(self, policy: str, fingerprint: str) -> dict[str, Any]:
        """The 429 body for ``policy``.

        Field names and messages are HubSpot's: ``status``, ``message``, ``errorType``
        (``RATE_LIMIT``), ``correlationId``, ``policyName``, plus ``groupName`` (seen on the
        ten-secondly and secondly 429s, e.g. ``publicapi:private_app-api-calls-ten-secondly:
        <app>:<portal>``) or ``requestId`` (in the documented DAILY example). No ``Retry-After``
        header is sent: HubSpot does not document one for these limits.
        """
        base: dict[str, Any] = {
            "status": "error",
            "errorType": "RATE_LIMIT",
            "correlationId": str(uuid.uuid4()),
        }
        app_id = int(fingerprint[:8], 16) % 10_000_000
        if policy == TEN_SECONDLY_ROLLING:
            kind = "oauth_app" if self.tier == "oauth_app" else "private_app"
            return {
                **base,
                "message": "You have reached your ten_secondly_rolling limit.",
                "policyName": TEN_SECONDLY_ROLLING,
                "groupName": f"publicapi:{kind}-api-calls-ten-secondly:{app_id}:{self.portal_id}",
            }
        if policy == SECONDLY:
            return {
                **base,
                "message": "You have reached your secondly limit.",
                "policyName": SECONDLY,
                "groupName": f"publicapi:crm-search-secondly:{self.portal_id}",
            }
        assert policy == DAILY
        return {
            **base,
            "message": "You have reached your daily limit.",
            "policyName": DAILY,
            "requestId": str(uuid.uuid4()),
        }

    def _latency_delay(self) -> float:
        low, high = self.latency
        if high <= 0:
            return 0.0
        with self._rng_lock:
            return self._rng.uniform(low, high)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return None
    return credentials


@dataclass
class _Connection:
    sock: socket.socket
    busy: bool = False


class _Server(HTTPServer):
    """One daemon thread per connection, every one tracked so :meth:`close_connections` can end
    them all (``ThreadingHTTPServer`` cannot wait for keep-alive connections)."""

    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: FakeHubSpot) -> None:
        self.fake = fake
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._connections: dict[threading.Thread, _Connection] = {}
        self._connections_lock = threading.Lock()
        self.stopping = False
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() resolves the host's FQDN, which can stall without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name="FakeHubSpot-conn",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[thread] = _Connection(request)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def connection(self) -> _Connection | None:
        """The calling handler thread's connection state."""
        with self._connections_lock:
            return self._connections.get(threading.current_thread())

    def close_connections(self, grace_seconds: float) -> None:
        """Close idle connections now, busy ones after ``grace_seconds``; join every thread."""
        self.stopping = True
        with self._connections_lock:
            items = list(self._connections.items())
        for _, conn in items:
            if not conn.busy:
                _shutdown(conn.sock)
        deadline = time.monotonic() + grace_seconds
        for thread, conn in items:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                _shutdown(conn.sock)
                thread.join()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connections reset by clients (or by stop()) are routine for a test server.
        return None


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHubSpot/1.0"
    sys_version = ""
    timeout = 60.0  # seconds an idle keep-alive connection is kept
    disable_nagle_algorithm = True  # headers and body go out as two writes; don't hold the second
    server: _Server

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        # Silent on purpose: nothing about a request, least of all its token, is ever logged.
        return None

    def _dispatch(self, method: str) -> None:
        conn = self.server.connection()
        if conn is not None:
            conn.busy = True
        try:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
            fake = self.server.fake
            try:
                reply = fake._process(method, self.path, body, self.headers.get("Authorization"))
            except Exception as exc:  # a bug in the fake: answer 500 rather than drop the connection
                traceback.print_exc()
                message = f"FakeHubSpot internal error: {type(exc).__name__}"
                reply = _Reply(500, error_body(message, "INTERNAL_ERROR"))
            delay = fake._latency_delay()
            if delay > 0:
                time.sleep(delay)  # no lock is held here
            body = reply.body
            payload = (body.text if isinstance(body, RawJson) else to_json(body)).encode("utf-8")
            correlation = body.get("correlationId") if isinstance(body, dict) else None
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("X-HubSpot-Correlation-Id", str(correlation or uuid.uuid4()))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.server.stopping:
                self.close_connection = True
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()
        finally:
            if conn is not None:
                conn.busy = False
