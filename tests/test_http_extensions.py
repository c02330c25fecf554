"""The generic additions this adapter made to ``ratewindow.http.RateLimitedAdapter`` (``cost=``,
``concurrency=``, an ``on_response`` that raises), against a plain loopback HTTP server.

They extend tests/test_http.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ratewindow import ConcurrencyLimit, SlidingWindow
from ratewindow.http import RateLimitedAdapter, rate_limited_session
from ratewindow.testing import ManualClock


class Server:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.in_flight = 0
        self.most_in_flight = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with lock:
                    outer.paths.append(self.path)
                    outer.in_flight += 1
                    outer.most_in_flight = max(outer.most_in_flight, outer.in_flight)
                time.sleep(0.02 if "slow" in self.path else 0.0)
                with lock:
                    outer.in_flight -= 1
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


def test_cost_per_request_and_zero_takes_no_permit(server: Server) -> None:
    clock = ManualClock()
    limiter = SlidingWindow(10, 60.0, clock=clock)

    def cost(request: requests.PreparedRequest) -> int:
        url = request.url or ""
        return 0 if url.endswith("/free") else 4 if url.endswith("/batch") else 1

    with rate_limited_session(limiter, cost=cost) as session:
        for path in ("/one", "/batch", "/free", "/free", "/batch"):
            assert session.get(server.url + path).status_code == 200
    assert limiter.available() == 10 - 9
    assert len(server.paths) == 5
    assert clock.sleeps == []


@pytest.mark.realtime
def test_concurrency_slot_is_held_while_in_flight(server: Server) -> None:
    cap = ConcurrencyLimit(2)
    limiter = SlidingWindow(1_000, 1.0)
    with rate_limited_session(limiter, concurrency=cap, pool_maxsize=8) as session:
        threads = [threading.Thread(target=session.get, args=(server.url + "/slow",)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(server.paths) == 8
    assert server.most_in_flight <= 2
    assert cap.in_use() == 0  # every slot given back


def test_on_response_may_raise_nothing_is_resent(server: Server) -> None:
    class Refused(Exception):
        pass

    def check(response: requests.Response) -> None:
        raise Refused(response.status_code)

    with rate_limited_session(SlidingWindow(10, 1.0), on_response=check) as session, \
            pytest.raises(Refused):
        session.get(server.url + "/x")
    assert server.paths == ["/x"]


def test_bad_new_arguments() -> None:
    limiter = SlidingWindow(1, 1.0)
    with pytest.raises(TypeError, match="cost must be None or a function"):
        RateLimitedAdapter(limiter, cost=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="concurrency must be None or a ConcurrencyLimit"):
        RateLimitedAdapter(limiter, concurrency=5)  # type: ignore[arg-type]
