"""The wrapped client against the bare SDK, call by call, on a loopback server that drops
connections, times out, redirects and answers HEAD: the same results and exception types, and one
permit per request the server received.

Real HTTP through the real ``hubspot-api-client``; nothing is mocked.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import hubspot
import pytest
import ratewindow_hubspot
import urllib3
from hubspot.crm.contacts import SimplePublicObjectInputForCreate
from hubspot_support import TOKEN
from ratewindow_hubspot import limiter_of

from ratewindow import SlidingWindow

CONTACT = {"id": "1", "properties": {"email": "ada@example.com"}, "createdAt": "2026-01-02T03:04:05Z",
           "updatedAt": "2026-01-02T03:04:05Z", "archived": False}
#: Seconds the server waits before answering under /slow/; the clients time out after 0.1 s.
SLOW = 0.3


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    cookie: str | None


class _Handler(BaseHTTPRequestHandler):
    """The first path segment says what to do: ok, drop, slow, redirect (302 to /ok/...),
    seeother (303 to /ok/...), loop (302 to itself), cookie (200 with Set-Cookie)."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.server.record(Seen(self.command, self.path, self.headers.get("Cookie")))
        mode, _, rest = self.path.lstrip("/").partition("/")
        if mode == "drop":
            self.close_connection = True  # no answer: the client sees the connection closed
            return
        if mode == "slow":
            time.sleep(SLOW)
        if mode in ("redirect", "seeother", "loop"):
            status = {"redirect": 302, "seeother": 303, "loop": 302}[mode]
            location = self.path if mode == "loop" else f"/ok/{rest}"
            self._answer(status, b"", {"Location": location})
            return
        headers = {"Content-Type": "application/json"}
        if mode == "cookie":
            headers["Set-Cookie"] = "visit=1; Path=/"
        self._answer(201 if self.command == "POST" else 200, json.dumps(CONTACT).encode(), headers)

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_HEAD = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._lock = threading.Lock()
        self.seen: list[Seen] = []
        self._open: set[socket.socket] = set()

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
        """End the keep-alive connections the clients' pools still hold, so that every handler
        thread ends."""
        with self._lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def take(self) -> list[Seen]:
        """The requests received since the last call, once every handler that is still asleep
        in /slow/ has recorded its request."""
        time.sleep(SLOW + 0.1)
        with self._lock:
            seen, self.seen = self.seen, []
        return seen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


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


Call = Callable[[Any], Any]


def _contact(mode: str) -> Call:
    return lambda hs: hs.crm.contacts.basic_api.get_by_id("1", _request_timeout=0.1).to_dict()


def _create() -> Call:
    body = SimplePublicObjectInputForCreate(properties={"email": "ada@example.com"})
    return lambda hs: hs.crm.contacts.basic_api.create(body, _request_timeout=0.1).to_dict()


def _raw(method: str, path: str = "/crm/v3/objects/contacts/1") -> Call:
    def call(hs: Any) -> Any:
        response = hs.api_request({"method": method, "path": path})
        return response.status_code, response.request.method, response.content

    return call


# (case, mode: the path prefix of the client's host, call, requests the bare SDK sends, the wrap sends)
CASES: list[tuple[str, str, Call, int, int]] = [
    ("get-dropped-connection", "drop", _contact("drop"), 4, 1),  # the SDK re-sends a GET 3 times
    ("get-read-timeout", "slow", _contact("slow"), 4, 1),
    ("post-dropped-connection", "drop", _create(), 1, 1),  # urllib3 never re-sends a POST
    ("post-read-timeout", "slow", _create(), 1, 1),
    ("get-302", "redirect", _contact("redirect"), 2, 2),
    ("post-303-becomes-get", "seeother", _create(), 2, 2),
    ("get-too-many-redirects", "loop", _contact("loop"), 4, 4),  # 3 redirects followed, then MaxRetryError
    ("api_request-get-302", "redirect", _raw("GET"), 2, 2),
    ("api_request-head-302-not-followed", "redirect", _raw("HEAD"), 1, 1),
    ("api_request-unknown-method-is-get", "ok", _raw("PURGE"), 1, 1),
    ("api_request-dropped-connection", "drop", _raw("GET"), 1, 1),
    ("api_request-post-303", "seeother", _raw("POST"), 2, 2),
]


def _outcome(call: Call, hs: Any) -> tuple[Any, ...]:
    """What a call returned, or the type of what it raised (and of its cause, for urllib3's
    ``MaxRetryError``, whose ``reason`` says what happened)."""
    try:
        return ("returned", call(hs))
    except Exception as exc:  # the type is what is compared
        retried = isinstance(exc, urllib3.exceptions.MaxRetryError)
        return ("raised", type(exc), type(getattr(exc, "reason", None)) if retried else None)


@pytest.mark.realtime
@pytest.mark.parametrize(("case", "mode", "call", "bare_sends", "wrapped_sends"), CASES,
                         ids=[case[0] for case in CASES])
def test_the_wrapped_client_answers_as_the_sdk_with_one_permit_per_request_sent(
    server: _Server, case: str, mode: str, call: Call, bare_sends: int, wrapped_sends: int
) -> None:
    base = f"{server.url}/{mode}"
    bare = hubspot.HubSpot(access_token=TOKEN, host=base, base_url=base)
    expected = _outcome(call, bare)
    bare_seen = server.take()
    assert len(bare_seen) == bare_sends

    hs = ratewindow_hubspot.client(TOKEN, host=base, limits=SlidingWindow(1_000, 60.0, name=f"parity-{case}"))
    assert _outcome(call, hs) == expected
    seen = server.take()
    assert len(seen) == wrapped_sends
    assert seen == bare_seen[: len(seen)]  # the same requests, less the SDK's re-sends
    limiter = limiter_of(hs)
    assert limiter.stats.requests == len(seen)  # one permit per request the server received
    assert limiter.account.available() == 1_000 - len(seen)


@pytest.mark.realtime
def test_api_request_keeps_no_cookies_between_calls_as_the_sdk(server: _Server) -> None:
    base = f"{server.url}/cookie"
    bare = hubspot.HubSpot(access_token=TOKEN, host=base, base_url=base)
    hs = ratewindow_hubspot.client(TOKEN, host=base, limits=SlidingWindow(1_000, 60.0, name="parity-cookie"))
    for client in (bare, hs):
        for _ in range(2):
            assert client.api_request({"path": "/crm/v3/objects/contacts/1"}).status_code == 200
    assert [seen.cookie for seen in server.take()] == [None] * 4  # requests.get starts each call afresh
