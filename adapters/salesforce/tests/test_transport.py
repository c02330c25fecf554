"""The wrapped client against the bare simple-salesforce, call by call, through a user's transport
adapter that sends a loopback test server's traffic over plain HTTP: the server drops connections,
times out, redirects and answers HEAD; both clients give the same results and exception types, the
user's adapter sends every request, and each request the server receives took one permit."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from ratewindow import MemoryStore
from requests.adapters import HTTPAdapter
from simple_salesforce.api import Salesforce

import ratewindow_salesforce as rs

SLOW = 0.3  # seconds the server waits under .../slow; the clients time out after 0.1 s


class _Handler(BaseHTTPRequestHandler):
    """The last path segment says what to do: ok, drop, slow, redirect (302 to .../ok)."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.record(f"{self.command} {self.path}")
        mode = self.path.rstrip("/").rsplit("/", 1)[-1]
        if mode == "drop":
            self.close_connection = True
            return
        if mode == "slow":
            time.sleep(SLOW)
        if mode == "redirect":
            self._answer(302, b"", {"Location": self.path.rsplit("/", 1)[0] + "/ok"})
            return
        self._answer(200, json.dumps({"mode": mode}).encode(), {"Content-Type": "application/json"})

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = do_PATCH = do_DELETE = _serve  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self.seen: list[str] = []
        self._open: set[socket.socket] = set()

    def record(self, line: str) -> None:
        with self._lock:
            self.seen.append(line)

    def take(self) -> list[str]:
        time.sleep(SLOW + 0.1)  # handlers asleep under .../slow have recorded their request
        with self._lock:
            seen, self.seen = self.seen, []
        return seen

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._open.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._open.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and left: expected here, stay quiet."""

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class PlainHttp(HTTPAdapter):
    """A user's transport: sends the instance's https:// requests to a test server over http://."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        self.sent += 1
        plain = request.copy()
        plain.url = (request.url or "").replace("https://", "http://", 1)
        response = super().send(plain, *args, **kwargs)
        response.url, response.request = request.url or "", request  # redirects resolve against https://
        return response


@pytest.fixture(scope="module")
def server() -> Iterator[_Server]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()


Call = Callable[[Salesforce], Any]
CASES: list[tuple[str, Call, int]] = [  # (case, call, requests the server receives)
    ("get", lambda sf: sf.restful("ok"), 1),
    ("head", lambda sf: sf.restful("ok", method="HEAD"), 1),
    ("dropped-connection", lambda sf: sf.restful("drop"), 1),
    ("read-timeout", lambda sf: sf.restful("slow", timeout=0.1), 1),
    ("302", lambda sf: sf.restful("redirect"), 2),
    ("302-on-head", lambda sf: sf.restful("redirect", method="HEAD"), 2),  # session.request follows it
]


def _outcome(call: Call, sf: Salesforce) -> tuple[Any, ...]:
    try:
        return ("returned", call(sf))
    except Exception as exc:  # the type is what is compared
        return ("raised", type(exc))


@pytest.mark.realtime
@pytest.mark.parametrize(("case", "call", "sends"), CASES, ids=[c[0] for c in CASES])
def test_the_wrapped_client_answers_as_simple_salesforce_through_the_users_transport(
        server: _Server, sessions: list[requests.Session], case: str, call: Call, sends: int) -> None:
    instance = f"https://127.0.0.1:{server.server_address[1]}"

    def client() -> tuple[Salesforce, PlainHttp]:
        http = requests.Session()
        sessions.append(http)
        plain_http = PlainHttp()
        http.mount(f"{instance}/", plain_http)
        return Salesforce(instance_url=instance, session_id="00Dx!token", session=http), plain_http

    bare, bare_transport = client()
    expected = _outcome(call, bare)
    bare_seen = server.take()
    assert len(bare_seen) == sends == bare_transport.sent

    sf, transport = client()
    rs.wrap(sf, limits=rs.OrgLimits(allocation=1_000), store=MemoryStore())
    assert _outcome(call, sf) == expected
    assert server.take() == bare_seen  # the same requests, in the same order
    assert transport.sent == sends  # every one through the user's transport
    assert rs.limiter_of(sf).available() == 1_000 - sends  # one permit each
