"""ratewindow.http against a real loopback HTTP server (arrivals counted at the server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ratewindow import AcquireTimeout, ConcurrencyLimit, SlidingWindow
from ratewindow.http import RateLimitedAdapter, parse_retry_after, rate_limited_session
from ratewindow.testing import ManualClock


class Server:
    """A loopback HTTP server that records every request path and how many were in flight at once.
    Paths containing "slow" take 20 ms; ``throttle_next`` requests are answered 429, Retry-After: 5."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.throttle_next = 0
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
                    throttled = outer.throttle_next > 0
                    outer.throttle_next -= 1 if throttled else 0
                time.sleep(0.02 if "slow" in self.path else 0.0)
                with lock:
                    outer.in_flight -= 1
                if throttled:
                    body = b'{"error": "rate limited"}'
                    self.send_response(429)
                    self.send_header("Retry-After", "5")
                else:
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


def test_every_request_takes_one_permit(server: Server) -> None:
    clock = ManualClock()
    limiter = SlidingWindow(3, 10.0, clock=clock)
    with rate_limited_session(limiter) as session:
        statuses = [session.get(f"{server.url}/items/{i}").status_code for i in range(7)]
    assert statuses == [200] * 7
    assert len(server.paths) == 7
    # 3 at t=0; the 4th waits until t=10, when all three slots free; 5th and 6th go at once; the 7th waits.
    assert clock.sleeps == [10.0, 10.0]
    assert clock.now() == 20.0


def test_limiter_chosen_per_request(server: Server) -> None:
    clock = ManualClock()
    search = SlidingWindow(1, 1.0, name="search", clock=clock)
    general = SlidingWindow(100, 10.0, name="general", clock=clock)

    def choose(request: requests.PreparedRequest) -> SlidingWindow:
        return search if "/search" in (request.url or "") else general

    with rate_limited_session(choose) as session:
        for _ in range(3):
            session.get(f"{server.url}/search")
            session.get(f"{server.url}/objects")
    assert general.available() == 97
    assert clock.sleeps == [1.0, 1.0]  # only search waited


def test_429_pauses_the_limiter_for_everyone_and_is_not_resent(server: Server) -> None:
    clock = ManualClock()
    limiter = SlidingWindow(100, 10.0, name="api", clock=clock)
    other_worker_view = SlidingWindow(100, 10.0, name="api", store=limiter._store, clock=clock)
    seen: list[int] = []
    session = rate_limited_session(limiter, on_response=lambda r: seen.append(r.status_code))
    server.throttle_next = 1
    assert session.get(f"{server.url}/a").status_code == 429
    assert server.paths == ["/a"]  # not re-sent below us
    assert other_worker_view.wait_time() == 5.0
    adapter = session.get_adapter(server.url)
    assert isinstance(adapter, RateLimitedAdapter)
    assert (adapter.sent, adapter.throttled) == (1, 1)
    assert session.get(f"{server.url}/b").status_code == 200
    assert clock.sleeps == [5.0]
    assert seen == [429, 200]
    assert adapter.refusal_share == 0.5


def test_every_response_is_told_to_the_limiters_observers(server: Server) -> None:
    from ratewindow.metrics import PrometheusMetrics

    clock = ManualClock()
    limiter = SlidingWindow(100, 10.0, name="api", clock=clock)
    metrics = PrometheusMetrics().watch(limiter)
    session = rate_limited_session(limiter)
    assert session.get_adapter(server.url).refusal_share == 0.0  # type: ignore[attr-defined]
    server.throttle_next = 1
    for path in ("/a", "/b", "/c", "/d"):
        session.get(f"{server.url}{path}")
    value = metrics.registry.get_sample_value
    assert value("ratewindow_responses_total", {"limiter": "api"}) == 4
    assert value("ratewindow_refusals_total", {"limiter": "api"}) == 1
    assert session.get_adapter(server.url).refusal_share == 0.25  # type: ignore[attr-defined]


def test_every_request_is_told_to_the_observers_as_one_grant(server: Server) -> None:
    from ratewindow.metrics import PrometheusMetrics

    clock = ManualClock()
    limiter = SlidingWindow(2, 10.0, name="api", clock=clock)
    metrics = PrometheusMetrics().watch(limiter)
    session = rate_limited_session(limiter)
    for path in ("/a", "/b", "/c", "/d"):  # the third waits 10 s for the window
        assert session.get(f"{server.url}{path}").status_code == 200
    with pytest.raises(AcquireTimeout):
        rate_limited_session(limiter, wait=5.0).get(f"{server.url}/e")  # 10 s away: refused, not sent
    value = metrics.registry.get_sample_value
    assert value("ratewindow_grants_total", {"limiter": "api"}) == 4
    assert value("ratewindow_wait_seconds_sum", {"limiter": "api"}) == 10.0
    assert value("ratewindow_denials_total", {"limiter": "api"}) == 1
    assert server.paths == ["/a", "/b", "/c", "/d"]


def test_wait_bound_raises_before_sending(server: Server) -> None:
    clock = ManualClock()
    limiter = SlidingWindow(1, 60.0, clock=clock)
    session = rate_limited_session(limiter, wait=1.0)
    session.get(server.url)
    with pytest.raises(AcquireTimeout) as info:
        session.get(server.url)
    assert info.value.retry_after == 60.0
    assert len(server.paths) == 1


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("120", 120.0), ("0", 0.0), ("1.5", 1.5), ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0), ("-3", None),
     ("soon", None), (None, None), ("nan", None)],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=1445412480.0) == seconds


def test_bad_adapter_arguments() -> None:
    limiter = SlidingWindow(1, 1.0)
    with pytest.raises(ValueError, match="pool_maxsize must be a positive integer, got 0"):
        RateLimitedAdapter(limiter, pool_maxsize=0)
    with pytest.raises(ValueError, match="wait must be None or a number of seconds >= 0, got -1"):
        RateLimitedAdapter(limiter, wait=-1)


# -- cost per request, a concurrency slot per request in flight, an on_response that raises --------
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


# -- the user's transport is kept ----------------------------------------------------------------------
class Counting(requests.adapters.HTTPAdapter):
    """A user's own adapter (a proxy, custom TLS, a mock...): counts what it sends, and closes."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.sent: list[str] = []
        self.closed = 0

    def send(self, request: requests.PreparedRequest, *args: object, **kwargs: object) -> requests.Response:
        self.sent.append(request.path_url)
        return super().send(request, *args, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        self.closed += 1
        super().close()


@pytest.mark.parametrize("where", ["http://", "exact"])
def test_a_session_keeps_sending_through_the_users_adapter_one_permit_each(server: Server, where: str) -> None:
    clock = ManualClock()
    limiter = SlidingWindow(3, 10.0, clock=clock)
    session = requests.Session()
    counting = Counting()
    session.mount(f"{server.url}/" if where == "exact" else where, counting)
    rate_limited_session(limiter, session=session, prefixes=(f"{server.url}/",) if where == "exact" else
                         ("https://", "http://"))
    adapter = session.get_adapter(f"{server.url}/")
    assert isinstance(adapter, RateLimitedAdapter) and adapter.transport_for(f"{server.url}/a") is counting
    assert adapter.transport_for("https://elsewhere.example/") is None  # requests' stock one: its own pool
    for i in range(4):
        assert session.get(f"{server.url}/items/{i}").status_code == 200
    assert counting.sent == [f"/items/{i}" for i in range(4)] and len(server.paths) == 4
    assert clock.sleeps == [10.0]  # ... and each took its permit first
    rate_limited_session(limiter, session=session, prefixes=(f"{server.url}/",))  # wrapping again keeps it
    session.get(f"{server.url}/again")
    assert counting.sent[-1] == "/again" and counting.closed == 0
    session.close()
    assert counting.closed >= 1  # closed with the session, wherever it was mounted


def test_requests_stock_adapter_is_stood_in_for_by_the_adapters_own_pool(server: Server) -> None:
    session = rate_limited_session(SlidingWindow(10, 1.0), session=requests.Session(), pool_maxsize=32)
    adapter = session.get_adapter(server.url)
    assert isinstance(adapter, RateLimitedAdapter) and adapter.transport is None
    assert adapter.max_retries.total == 0 and adapter.poolmanager.connection_pool_kw["maxsize"] == 32
    assert session.get(f"{server.url}/x").status_code == 200
    session.close()


def test_a_transport_given_to_the_adapter_receives_the_requests(server: Server) -> None:
    counting = Counting()
    with requests.Session() as session:
        session.mount("http://", RateLimitedAdapter(SlidingWindow(5, 1.0), transport=counting))
        session.get(f"{server.url}/given")
    assert counting.sent == ["/given"] and server.paths == ["/given"]


def test_a_kept_adapter_that_re_sends_is_named_in_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from urllib3.util.retry import Retry as Urllib3Retry

    session = requests.Session()
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=Urllib3Retry(total=3)))
    with caplog.at_level("WARNING", logger="ratewindow"):
        rate_limited_session(SlidingWindow(5, 1.0), session=session, prefixes=("https://",))
    assert "re-sends requests itself" in caplog.text and "take no permit" in caplog.text
    session.close()


def test_bad_transport_arguments_are_named() -> None:
    from ratewindow.http import mount

    with pytest.raises(TypeError, match="transport must be None or a requests transport adapter, got 3"):
        RateLimitedAdapter(SlidingWindow(1, 1.0), transport=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="adapter must be a RateLimitedAdapter"):
        mount(requests.Session(), "https://", requests.adapters.HTTPAdapter())  # type: ignore[arg-type]
