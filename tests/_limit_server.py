"""A loopback HTTP server that says its limit only in the rate-limit headers of one family.

It counts accepted requests in a rolling window (a leaky bucket for Shopify, as Shopify does) and
answers 429 over the limit. Arrival times are taken at the server, on ``time.monotonic()``.
Real sockets (``ThreadingHTTPServer``), no mocks.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAMILIES = ("ietf", "ietf-old", "x-ratelimit-delta", "x-ratelimit-epoch", "shopify", "hubspot")


class LimitServer:
    """``limit`` requests per rolling ``window`` seconds, said in ``family``'s headers only.

    ``extra`` headers are added to every response (e.g. malformed or conflicting ones).
    ``accepted`` and ``refused`` hold the arrival times (monotonic seconds).
    """

    def __init__(self, family: str, limit: int, window: float, *, extra: dict[str, str] | None = None,
                 latency: float = 0.0) -> None:
        assert family in FAMILIES, family
        self.family, self.limit, self.window = family, limit, window
        self.extra = dict(extra or {})
        self.latency = latency
        self.accepted: list[float] = []
        self.refused: list[float] = []
        self._live: deque[float] = deque()
        self._level = 0.0  # Shopify: the bucket's level
        self._level_at = time.monotonic()
        self._lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with outer._lock:
                    outer.in_flight += 1
                    outer.most_in_flight = max(outer.most_in_flight, outer.in_flight)
                status, headers = outer._admit()
                if outer.latency:
                    time.sleep(outer.latency)
                with outer._lock:
                    outer.in_flight -= 1
                body = b"{}" if status == 200 else b'{"error": "rate limited"}'
                self.send_response(status)
                for name, value in {**headers, **outer.extra}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def _admit(self) -> tuple[int, dict[str, str]]:
        with self._lock:
            now = time.monotonic()
            if self.family == "shopify":
                return self._admit_bucket(now)
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
            # Seconds until the whole limit is back (the newest request has left the window).
            reset = (live[-1] + self.window - now) if live else 0.0
            frees = (live[0] + self.window - now) if live else 0.0
        headers = self._headers(remaining, reset)
        if not ok:
            headers["Retry-After"] = str(max(1, math.ceil(frees)))
        return (200 if ok else 429), headers

    def _admit_bucket(self, now: float) -> tuple[int, dict[str, str]]:
        leak = self.limit / 20.0  # Shopify: a bucket of 40 leaks 2 per second
        self._level = max(0.0, self._level - (now - self._level_at) * leak)
        self._level_at = now
        ok = self._level + 1 <= self.limit
        if ok:
            self._level += 1
            self.accepted.append(now)
        else:
            self.refused.append(now)
        used = math.ceil(self._level - 1e-9)
        headers = {"X-Shopify-Shop-Api-Call-Limit": f"{used}/{self.limit}"}
        if not ok:
            headers["Retry-After"] = "1.0"
        return (200 if ok else 429), headers

    def _headers(self, remaining: int, reset: float) -> dict[str, str]:
        limit, window, family = self.limit, self.window, self.family
        if family == "ietf":
            return {"RateLimit-Policy": f'"default";q={limit};w={math.ceil(window)}',
                    "RateLimit": f'"default";r={remaining};t={math.ceil(reset)}'}
        if family == "ietf-old":
            return {"RateLimit-Limit": f"{limit}, {limit};w={math.ceil(window)}",
                    "RateLimit-Remaining": str(remaining), "RateLimit-Reset": str(math.ceil(reset))}
        if family == "x-ratelimit-delta":
            return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(math.ceil(reset))}
        if family == "x-ratelimit-epoch":
            return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                    "X-RateLimit-Reset": str(math.ceil(time.time() + reset))}
        assert family == "hubspot"
        return {"X-HubSpot-RateLimit-Max": str(limit), "X-HubSpot-RateLimit-Remaining": str(remaining),
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(window * 1000))}

    def most_in_window(self) -> int:
        """The most accepted arrivals in any half-open interval [t, t + window)."""
        times = self.accepted
        best = j = 0
        for i, t in enumerate(times):
            while j < len(times) and times[j] < t + self.window:
                j += 1
            best = max(best, j - i)
        return best

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    def __enter__(self) -> LimitServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
