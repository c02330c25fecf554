"""Limits learned from responses: clients against a server that says its limit only in headers.

A loopback HTTP server (real sockets, ``ThreadingHTTPServer``) allows ``LIMIT`` (20) requests per
rolling ``WINDOW`` (2 s), says so only in IETF ``RateLimit-Policy`` / ``RateLimit`` headers
(draft-ietf-httpapi-ratelimit-headers-11), and answers 429 with ``Retry-After`` over it. Its logic
is a copy of ``tests/_limit_server.py``'s (IETF family only): benchmarks do not import from tests.

Each row gets a fresh server and ``THREADS`` (4) threads, or 4 asyncio tasks for the async
clients, that loop "send a GET, note the status" for ``SECONDS`` (8 s): four windows. Every client
is configured the way a user who does not know the server's limit would: 1,000 per second.

- ratewindow, requests: ``rate_limited_session(SlidingWindow(1000, 1.0))``, default learning;
- ratewindow, httpx: ``httpx.Client(transport=RateLimitedTransport(SlidingWindow(1000, 1.0)))``
  and ``httpx.AsyncClient(transport=AsyncRateLimitedTransport(SlidingWindow(1000, 1.0)))``;
- requests-ratelimiter: ``LimiterSession(per_second=1000)`` (its default ``limit_statuses=(429,)``
  fills its bucket after a 429, so it reacts to refusals, but it reads no headers);
- pyrate-limiter: ``Limiter(InMemoryBucket([Rate(1000, Duration.SECOND)]))``, a blocking
  ``try_acquire()`` before each ``requests`` call;
- httpx-limiter (asyncio only): ``AsyncRateLimitedTransport.create(PyrateAsyncLimiter.create(
  Rate.create(magnitude=1000, duration=1)))``.

Columns, from the arrivals the server stamped in ``[start, start + SECONDS)``:

- *sent*: requests that reached the server; *429 refusals*: those it refused;
- *utilisation*: accepted / (``LIMIT`` x the windows begun within the run), i.e. accepted / 80;
- *last 429 at*: the arrival time, seconds after the start, of the server's last refusal;
- *at the advertised pace from*: the earliest accepted arrival a, seconds after the start, such that
  the window ``[a, a + WINDOW)`` lies within the run and holds ``LIMIT`` accepted requests (the
  advertised pace) and no refusal came at or after a (see ``paced_from``); "never" when there is
  none. A client that stays under the limit but below its pace never gets there either;
- *errors*: exceptions the client raised, by type.

A peer that is not installed gets a row saying so. Run:
``.venv-bench/bin/python benchmarks/learned_limits.py`` (about a minute). Prints the table and
writes ``benchmarks/results/learned_limits.md``, which ``run.py`` copies into the README's
``<!-- bench:learned_limits -->`` block.
"""

from __future__ import annotations

import asyncio
import bisect
import importlib.util
import math
import os
import sys
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from _common import RESULTS, environment, table

LIMIT = 20  #: requests the server allows per rolling window
WINDOW = 2.0  #: seconds
SECONDS = 8.0  #: seconds each row runs: four windows
THREADS = 4  #: threads (or asyncio tasks) per client
GENEROUS = 1000  #: requests per second every client is configured with, not knowing the server's limit
JOIN_SLACK = 2 * WINDOW + 1.0  #: seconds after the end the workers get to finish their last call
DISTS = ("ratewindow", "requests", "httpx", "requests-ratelimiter", "pyrate-limiter", "httpx-limiter")
HEADER = ["client (configured 1,000 per 1 s)", "learns from headers", "sent", "429 refusals", "utilisation",
          "last 429 at", "at the advertised pace from", "errors"]

Send = Callable[[str], int]  #: GET the URL, return the status code
AsyncSend = Callable[[str], Awaitable[int]]


class HeaderServer:
    """``limit`` requests per rolling ``window`` seconds, said only in IETF ``RateLimit`` headers.

    ``accepted`` and ``refused`` hold arrival times (``time.monotonic()`` seconds).
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.accepted: list[float] = []
        self.refused: list[float] = []
        self._live: deque[float] = deque()
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                status, headers = outer._admit()
                body = b"{}" if status == 200 else b'{"error": "rate limited"}'
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/items"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def _admit(self) -> tuple[int, dict[str, str]]:
        with self._lock:
            now = time.monotonic()
            live = self._live
            while live and live[0] + self.window <= now:
                live.popleft()
            ok = len(live) < self.limit
            if ok:
                live.append(now)
                self.accepted.append(now)
            else:
                self.refused.append(now)
            remaining = self.limit - len(live)
            reset = (live[-1] + self.window - now) if live else 0.0  # until the whole limit is back
            frees = (live[0] + self.window - now) if live else 0.0  # until one unit is back
        headers = {"RateLimit-Policy": f'"default";q={self.limit};w={math.ceil(self.window)}',
                   "RateLimit": f'"default";r={remaining};t={math.ceil(reset)}'}
        if not ok:
            headers["Retry-After"] = str(max(1, math.ceil(frees)))
        return (200 if ok else 429), headers

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


@dataclass
class Row:
    label: str
    learns: str
    sent: int = 0
    refused: int = 0
    utilisation: float = 0.0
    last_refusal: str = ""
    settled: str = ""
    errors: Counter[str] = field(default_factory=Counter)
    why_not: str | None = None

    def cells(self) -> list[object]:
        if self.why_not is not None:
            return [self.label, self.learns, self.why_not, "", "", "", "", ""]
        errors = ", ".join(f"{n} x {kind}" for kind, n in self.errors.most_common()) or "none"
        return [self.label, self.learns, f"{self.sent:,}", f"{self.refused:,}", f"{self.utilisation:.1%}",
                self.last_refusal, self.settled, errors]


def paced_from(accepted: list[float], refused: list[float], limit: int, window: float,
               seconds: float) -> float | None:
    """The earliest accepted arrival a (seconds after the start) such that ``[a, a + window)`` lies
    within the run, holds ``limit`` accepted arrivals (a full window at the advertised pace), and no
    refusal came at or after a; None when there is none. Arrivals in time order.

    >>> paced_from([0.0, 0.5, 1.0, 1.5, 2.0], [0.7], 2, 1.0, 3.0)
    1.0
    >>> paced_from([0.0, 0.5], [2.5], 2, 1.0, 3.0) is None
    True
    """
    last = refused[-1] if refused else -math.inf
    for i, a in enumerate(accepted):
        if a < last or a + window > seconds:
            continue
        if bisect.bisect_left(accepted, a + window) - i >= limit:
            return a
    return None


def score(row: Row, server: HeaderServer, start: float, errors: Counter[str]) -> Row:
    end = start + SECONDS
    accepted = sorted(t - start for t in server.accepted if start <= t < end)
    refused = sorted(t - start for t in server.refused if start <= t < end)
    row.sent, row.refused, row.errors = len(accepted) + len(refused), len(refused), errors
    row.utilisation = len(accepted) / (LIMIT * math.ceil(SECONDS / WINDOW))
    row.last_refusal = f"{refused[-1]:.2f} s" if refused else "none"
    paced = paced_from(accepted, refused, LIMIT, WINDOW, SECONDS)
    row.settled = "never" if paced is None else f"{paced:.2f} s"
    return row


def run_threads(row: Row, make: Callable[[], tuple[Send, Callable[[], None]]]) -> Row:
    server = HeaderServer(LIMIT, WINDOW)
    send, close = make()
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    start = time.monotonic() + 0.1
    end = start + SECONDS

    def work() -> None:
        time.sleep(max(0.0, start - time.monotonic()))
        while time.monotonic() < end:
            try:
                send(server.url)
            except Exception as exc:
                if time.monotonic() < end:
                    with lock:
                        errors[type(exc).__name__] += 1
                    time.sleep(0.001)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(max(0.0, end + JOIN_SLACK - time.monotonic()))
    try:
        return score(row, server, start, errors)
    finally:
        close()
        server.close()


async def _run_tasks(row: Row, make: Callable[[], tuple[AsyncSend, Callable[[], Awaitable[None]]]]) -> Row:
    server = HeaderServer(LIMIT, WINDOW)
    send, close = make()
    errors: Counter[str] = Counter()
    start = time.monotonic() + 0.1
    end = start + SECONDS

    async def work() -> None:
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        while time.monotonic() < end:
            try:
                await send(server.url)
            except Exception as exc:
                if time.monotonic() < end:
                    errors[type(exc).__name__] += 1
                    await asyncio.sleep(0.001)

    tasks = [asyncio.create_task(work()) for _ in range(THREADS)]
    _, pending = await asyncio.wait(tasks, timeout=end + JOIN_SLACK - time.monotonic())
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    try:
        return score(row, server, start, errors)
    finally:
        await close()
        server.close()


def run_tasks(row: Row, make: Callable[[], tuple[AsyncSend, Callable[[], Awaitable[None]]]]) -> Row:
    return asyncio.run(_run_tasks(row, make))


# -- the clients ---------------------------------------------------------------------------------------
def ratewindow_requests() -> tuple[Send, Callable[[], None]]:
    from ratewindow import SlidingWindow
    from ratewindow.http import rate_limited_session

    session = rate_limited_session(SlidingWindow(GENEROUS, 1.0))
    return (lambda url: session.get(url, timeout=30).status_code), session.close


def ratewindow_httpx() -> tuple[Send, Callable[[], None]]:
    import httpx

    from ratewindow import SlidingWindow
    from ratewindow.httpx import RateLimitedTransport

    client = httpx.Client(transport=RateLimitedTransport(SlidingWindow(GENEROUS, 1.0)), timeout=30)
    return (lambda url: client.get(url).status_code), client.close


def ratewindow_httpx_async() -> tuple[AsyncSend, Callable[[], Awaitable[None]]]:
    import httpx

    from ratewindow import SlidingWindow
    from ratewindow.httpx import AsyncRateLimitedTransport

    client = httpx.AsyncClient(transport=AsyncRateLimitedTransport(SlidingWindow(GENEROUS, 1.0)), timeout=30)

    async def send(url: str) -> int:
        return (await client.get(url)).status_code

    return send, client.aclose


def requests_ratelimiter() -> tuple[Send, Callable[[], None]]:
    from requests_ratelimiter import LimiterSession

    session = LimiterSession(per_second=GENEROUS)
    return (lambda url: session.get(url, timeout=30).status_code), session.close


def pyrate_requests() -> tuple[Send, Callable[[], None]]:
    import requests
    from pyrate_limiter import Duration, InMemoryBucket, Limiter, Rate

    limiter = Limiter(InMemoryBucket([Rate(GENEROUS, Duration.SECOND)]))
    session = requests.Session()

    def send(url: str) -> int:
        limiter.try_acquire("api")  # blocks by default
        return session.get(url, timeout=30).status_code

    return send, session.close


def httpx_limiter() -> tuple[AsyncSend, Callable[[], Awaitable[None]]]:
    import httpx
    from httpx_limiter import AsyncRateLimitedTransport, Rate
    from httpx_limiter.pyrate import PyrateAsyncLimiter

    limiter = PyrateAsyncLimiter.create(Rate.create(magnitude=GENEROUS, duration=1))
    client = httpx.AsyncClient(transport=AsyncRateLimitedTransport.create(limiter), timeout=30)

    async def send(url: str) -> int:
        return (await client.get(url)).status_code

    return send, client.aclose


Sync = Callable[[], tuple[Send, Callable[[], None]]]
Async = Callable[[], tuple[AsyncSend, Callable[[], Awaitable[None]]]]
CLIENTS: tuple[tuple[str, str, str, Sync | None, Async | None], ...] = (
    ("ratewindow: rate_limited_session(SlidingWindow(1000, 1.0)), requests, 4 threads", "yes", "ratewindow",
     ratewindow_requests, None),
    ("ratewindow: httpx.Client, RateLimitedTransport(SlidingWindow(1000, 1.0)), 4 threads", "yes",
     "ratewindow", ratewindow_httpx, None),
    ("ratewindow: httpx.AsyncClient, AsyncRateLimitedTransport(SlidingWindow(1000, 1.0)), 4 tasks", "yes",
     "ratewindow", None, ratewindow_httpx_async),
    ("requests-ratelimiter: LimiterSession(per_second=1000), 4 threads", "no (fills its bucket on a 429)",
     "requests_ratelimiter", requests_ratelimiter, None),
    ("pyrate-limiter: Limiter(InMemoryBucket([Rate(1000, Duration.SECOND)])).try_acquire() + requests, "
     "4 threads", "no", "pyrate_limiter", pyrate_requests, None),
    ("httpx-limiter: httpx.AsyncClient, AsyncRateLimitedTransport.create(PyrateAsyncLimiter.create("
     "Rate.create(1000, 1))), 4 tasks", "no", "httpx_limiter", None, httpx_limiter),
)


def measure(label: str, learns: str, module: str, sync: Sync | None, async_: Async | None) -> Row:
    row = Row(label, learns)
    if importlib.util.find_spec(module) is None:
        row.why_not = f"not installed ({module} cannot be imported)"
        return row
    try:
        if sync is not None:
            return run_threads(row, sync)
        assert async_ is not None
        return run_tasks(row, async_)
    except Exception as exc:
        traceback.print_exc()
        row.why_not = f"failed: {type(exc).__name__}: {exc}"
        return row


def main(argv: list[str]) -> int:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    started = time.monotonic()
    rows = [measure(*client) for client in CLIENTS]
    after = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    command = ".venv-bench/bin/python benchmarks/learned_limits.py" + "".join(f" {a}" for a in argv)
    took = time.monotonic() - started
    header = (f"{environment(DISTS)} Produced by `{command}`: one run per row, {took:.0f} s in all; "
              f"load average (1, 5, 15 min) before: {load}, after: {after}.")
    runs = math.ceil(SECONDS / WINDOW)
    definitions = (
        f"A loopback HTTP server allows {LIMIT} requests per rolling {WINDOW:g} s and says so only in "
        f"IETF `RateLimit-Policy: \"default\";q={LIMIT};w={WINDOW:g}` / `RateLimit: \"default\";r=...;t=...` "
        "headers, answering 429 with `Retry-After` over the limit. Each row gets a fresh server and "
        f"{THREADS} threads (or asyncio tasks) that loop GET for {SECONDS:g} s. Every client is "
        f"configured with {GENEROUS:,} per second, as a user who does not know the server's limit would; "
        "only ratewindow reads the headers, the peers cannot. Counted from the server's arrival stamps "
        f"in [start, start + {SECONDS:g} s): *sent* reached the server, *429 refusals* were refused; "
        f"*utilisation*: accepted / ({LIMIT} x {runs} windows begun within the run) = accepted / "
        f"{LIMIT * runs}; *last 429 at*: the arrival time of the server's last refusal, seconds after "
        "the start; *at the advertised pace from*: the earliest accepted arrival a such that the window "
        f"[a, a + {WINDOW:g} s) lies within the run and holds {LIMIT} accepted requests (the advertised "
        "pace) and no refusal came at or after a, \"never\" when there is none; *errors*: exceptions raised "
        "by the client, by type. See benchmarks/learned_limits.py."
    )
    body = f"{definitions}\n\n{table(HEADER, [row.cells() for row in rows])}"
    RESULTS.mkdir(exist_ok=True)
    text = f"# Limits learned from responses\n\n{header}\n\n{body}\n"
    (RESULTS / "learned_limits.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
