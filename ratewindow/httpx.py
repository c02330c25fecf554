"""Rate-limited HTTP for httpx: transports for ``httpx.Client`` and ``httpx.AsyncClient``.

``RateLimitedTransport`` and ``AsyncRateLimitedTransport`` wrap a transport
(``httpx.HTTPTransport`` / ``httpx.AsyncHTTPTransport`` by default, or any transport given,
e.g. a ``MockTransport`` or one with proxies and retries of its own) and, for every request:

* hold a ``ConcurrencyLimit`` slot, if one is given, until the response headers arrive;
* take one permit (or ``cost(request)`` units) from the limiter, or from one chosen per request;
  the asyncio transport waits with ``acquire_async`` and never blocks the event loop;
* send once through the wrapped transport;
* learn from the response's rate-limit headers (``ratewindow.Calibrator``): the limiter is
  tightened to what the server allows, yields what other clients spend, and shares both with
  every process using its store; a 429 (or ``Retry-After``) pauses every worker sharing it.

Needs httpx (``pip install 'ratewindow[httpx]'``).

>>> import httpx
>>> from ratewindow import SlidingWindow
>>> from ratewindow.httpx import RateLimitedTransport
>>> client = httpx.Client(transport=RateLimitedTransport(SlidingWindow(100, 60.0, name="api")))
>>> # client.get("https://api.example.com/items")  -- takes one permit, learns from the answer
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

try:
    import httpx
except ModuleNotFoundError as exc:  # the extra is not installed
    raise ImportError(
        f"ratewindow.httpx needs httpx ({exc}): pip install 'ratewindow[httpx]'", name=exc.name
    ) from exc

from ratewindow._calibrate import Calibration, Calibrator, Calibrators
from ratewindow._concurrency import ConcurrencyLimit
from ratewindow._headers import parse_retry_after
from ratewindow._limiter import Limiter

__all__ = ["AsyncRateLimitedTransport", "RateLimitedTransport"]

#: Chooses the limiter of one request (None: send it without a permit).
LimiterChoice = Callable[[httpx.Request], "Limiter | None"]
#: Units of the limit one request costs (0: no permit).
RequestCost = Callable[[httpx.Request], int]


class _Common:
    """What both transports share: checks, the limiter of a request, the calibrators, counters."""

    def __init__(self, limiter: Limiter | LimiterChoice, *, wait: float | None, learn: bool | Calibration,
                 cost: RequestCost | None, concurrency: ConcurrencyLimit | None, pause_on_429: bool) -> None:
        if not callable(getattr(limiter, "acquire", None)) and not callable(limiter):
            raise TypeError(f"limiter must be a ratewindow limiter or a function of the request, "
                            f"got {limiter!r}")
        if not isinstance(learn, (bool, Calibration)):
            raise TypeError(f"learn must be True, False or a Calibration, got {learn!r}")
        if cost is not None and not callable(cost):
            raise TypeError(f"cost must be None or a function of the request, got {cost!r}")
        if concurrency is not None and not isinstance(concurrency, ConcurrencyLimit):
            raise TypeError(f"concurrency must be None or a ConcurrencyLimit, got {concurrency!r}")
        if wait is not None and (isinstance(wait, bool) or not isinstance(wait, (int, float))
                                 or not 0 <= wait < math.inf):
            raise ValueError(f"wait must be None or a finite number of seconds >= 0, got {wait!r}")
        if callable(limiter) and not hasattr(limiter, "try_acquire"):
            self._choose: LimiterChoice = limiter
        else:
            fixed: Limiter = limiter  # type: ignore[assignment]
            self._choose = lambda _request: fixed
        self._wait = wait
        self._calibrators = Calibrators(learn, wait)
        self._cost = cost
        self._concurrency = concurrency
        self._pause_on_429 = pause_on_429
        self._lock = threading.Lock()
        #: Requests sent.
        self.sent = 0
        #: 429 responses seen.
        self.throttled = 0

    def calibrator_of(self, limiter: Limiter) -> Calibrator | None:
        """The ``Calibrator`` that learns for ``limiter`` (None with ``learn=False``)."""
        return self._calibrators.of(limiter)

    def _plan(self, request: httpx.Request) -> tuple[Limiter | None, int, Calibrator | None]:
        limiter = self._choose(request)
        units = 1 if self._cost is None else self._cost(request)
        calibrator = self.calibrator_of(limiter) if limiter is not None else None
        return limiter, units, calibrator

    def _count(self, response: httpx.Response) -> None:
        with self._lock:
            self.sent += 1
            if response.status_code == 429:
                self.throttled += 1

    def _retry_after(self, response: httpx.Response) -> float | None:
        if response.status_code != 429 or not self._pause_on_429:
            return None
        return parse_retry_after(response.headers.get("Retry-After")) or None


class RateLimitedTransport(_Common, httpx.BaseTransport):
    """An ``httpx`` transport that takes permits before each request and learns from responses.

    Args:
        limiter: a ratewindow limiter, or a function choosing one per ``httpx.Request`` (None:
            send without a permit).
        transport: the transport that sends (default a new ``httpx.HTTPTransport()``);
            closed with this one.
        wait: most seconds to wait for a permit (and for a concurrency slot, and for the first
            response while probing); None waits as long as needed. Past it,
            ``ratewindow.AcquireTimeout`` is raised and nothing is sent.
        learn: learn the server's limits from the responses (``True``: ``Calibration()``; a
            ``Calibration`` says how; ``False``: never). See ``ratewindow.Calibrator``.
        cost: units each request takes, as a function of the request (default 1); 0 sends it
            without a permit.
        concurrency: a ``ConcurrencyLimit``; each request holds one slot from before its permit
            until its response headers arrive (or it fails).
        pause_on_429: pause the limiter, for every worker sharing it, on a 429: for its
            ``Retry-After`` seconds, or as its rate-limit headers say.

    Raises:
        TypeError, ValueError: a bad argument, named in the message.

    Attributes ``sent`` and ``throttled`` count requests sent and 429 responses seen.

    >>> import httpx
    >>> from ratewindow import SlidingWindow
    >>> limiter = SlidingWindow(10, 1.0, name="api")
    >>> server = httpx.MockTransport(lambda request: httpx.Response(
    ...     200, headers={"RateLimit-Policy": '"default";q=5;w=1', "RateLimit": '"default";r=4;t=1'}))
    >>> with httpx.Client(transport=RateLimitedTransport(limiter, transport=server)) as client:
    ...     client.get("https://api.example.com/").status_code
    200
    >>> client._transport.calibrator_of(limiter).limiter  # tightened to the server's 5 per second
    Limits(SlidingWindow(limit=5, window=1.0, used=1, name='api'))
    """

    def __init__(
        self,
        limiter: Limiter | LimiterChoice,
        *,
        transport: httpx.BaseTransport | None = None,
        wait: float | None = None,
        learn: bool | Calibration = True,
        cost: RequestCost | None = None,
        concurrency: ConcurrencyLimit | None = None,
        pause_on_429: bool = True,
    ) -> None:
        super().__init__(limiter, wait=wait, learn=learn, cost=cost, concurrency=concurrency,
                         pause_on_429=pause_on_429)
        if transport is not None and not callable(getattr(transport, "handle_request", None)):
            raise TypeError(f"transport must be an httpx.BaseTransport, got {transport!r}")
        #: The transport that sends.
        self.transport: httpx.BaseTransport = transport if transport is not None else httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        lease = self._concurrency.hold(self._wait) if self._concurrency is not None else None
        ticket = None
        try:
            limiter, units, calibrator = self._plan(request)
            if calibrator is not None:
                if units > 0:
                    ticket = calibrator.acquire(units, timeout=self._wait)
            elif limiter is not None and units > 0:
                limiter.acquire(units, timeout=self._wait)
            try:
                response = self.transport.handle_request(request)
            except BaseException:
                if calibrator is not None:
                    calibrator.failed(ticket)
                raise
        finally:
            if lease is not None:
                lease.release()
        self._count(response)
        try:
            if calibrator is not None:
                calibrator.observe(ticket, response.headers, response.status_code, pause=self._pause_on_429)
            elif limiter is not None:
                seconds = self._retry_after(response)
                if seconds:
                    limiter.pause(seconds)
        except BaseException:
            response.close()
            raise
        return response

    def close(self) -> None:
        self.transport.close()

    def __repr__(self) -> str:
        return (f"RateLimitedTransport(sent={self.sent}, throttled={self.throttled}, "
                f"transport={self.transport!r})")


class AsyncRateLimitedTransport(_Common, httpx.AsyncBaseTransport):
    """``RateLimitedTransport`` for ``httpx.AsyncClient``: the same arguments, with ``transport``
    an ``httpx.AsyncBaseTransport`` (default a new ``httpx.AsyncHTTPTransport()``). Waiting for a
    permit, a slot or the probe never blocks the event loop, and a cancelled request gives its
    booking back.

    Raises:
        TypeError, ValueError: a bad argument, named in the message.

    >>> import httpx
    >>> from ratewindow import SlidingWindow
    >>> transport = AsyncRateLimitedTransport(SlidingWindow(10, 1.0, name="api"))
    >>> client = httpx.AsyncClient(transport=transport)
    >>> # await client.get("https://api.example.com/items")
    """

    def __init__(
        self,
        limiter: Limiter | LimiterChoice,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        wait: float | None = None,
        learn: bool | Calibration = True,
        cost: RequestCost | None = None,
        concurrency: ConcurrencyLimit | None = None,
        pause_on_429: bool = True,
    ) -> None:
        super().__init__(limiter, wait=wait, learn=learn, cost=cost, concurrency=concurrency,
                         pause_on_429=pause_on_429)
        if transport is not None and not callable(getattr(transport, "handle_async_request", None)):
            raise TypeError(f"transport must be an httpx.AsyncBaseTransport, got {transport!r}")
        #: The transport that sends.
        self.transport: httpx.AsyncBaseTransport = (
            transport if transport is not None else httpx.AsyncHTTPTransport()
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lease = await self._concurrency.hold_async(self._wait) if self._concurrency is not None else None
        ticket = None
        try:
            limiter, units, calibrator = self._plan(request)
            if calibrator is not None:
                if units > 0:
                    ticket = await calibrator.acquire_async(units, timeout=self._wait)
            elif limiter is not None and units > 0:
                await limiter.acquire_async(units, timeout=self._wait)
            try:
                response = await self.transport.handle_async_request(request)
            except BaseException:
                if calibrator is not None:
                    calibrator.failed(ticket)
                raise
        finally:
            if lease is not None:
                await lease.release_async()
        self._count(response)
        try:
            if calibrator is not None:
                await calibrator.observe_async(ticket, response.headers, response.status_code,
                                               pause=self._pause_on_429)
            elif limiter is not None:
                seconds = self._retry_after(response)
                if seconds:
                    limiter.pause(seconds)
        except BaseException:
            await response.aclose()
            raise
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()

    def __repr__(self) -> str:
        return (f"AsyncRateLimitedTransport(sent={self.sent}, throttled={self.throttled}, "
                f"transport={self.transport!r})")
