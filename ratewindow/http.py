"""Rate-limited HTTP for any REST API built on ``requests``: a transport adapter and a session.

Every request sent through the adapter takes one permit first (or ``cost(request)`` units, for
APIs whose batch endpoints count per item), from one limiter or from one chosen per request (e.g.
by path); with a ``ConcurrencyLimit`` it also holds a slot while the request is in flight. Nothing
is re-sent below it (``max_retries=0``): retries belong to the caller or the
``RateLimitedExecutor``, where they take permits too. Responses teach the limiter what the server
allows (``ratewindow.Calibrator``: the ``RateLimit``, ``X-RateLimit-*``, ``Retry-After``, Shopify,
HubSpot and Salesforce headers), and a 429 pauses the limiter, so every worker sharing it waits
instead of each finding the 429 for itself. ``ratewindow.httpx`` does the same for httpx.

Needs ``requests`` (``pip install ratewindow[http]``).

>>> from ratewindow import SlidingWindow
>>> from ratewindow.http import rate_limited_session
>>> session = rate_limited_session(SlidingWindow(100, 60.0, name="api"))
>>> # session.get("https://api.example.com/items")  -- takes one permit per request
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from typing import Any

try:
    import requests
    from requests.adapters import BaseAdapter, HTTPAdapter
    from urllib3.util.retry import Retry as Urllib3Retry
except ModuleNotFoundError as exc:  # the extra is not installed
    raise ImportError(
        f"ratewindow.http needs requests ({exc}): pip install 'ratewindow[http]'", name=exc.name
    ) from exc

from ratewindow._budget import share, tell_response
from ratewindow._calibrate import Calibration, Calibrator, Calibrators
from ratewindow._concurrency import ConcurrencyLimit
from ratewindow._headers import parse_retry_after
from ratewindow._limiter import Limiter

__all__ = ["RateLimitedAdapter", "mount", "parse_retry_after", "rate_limited_session"]

log = logging.getLogger("ratewindow")

LimiterChoice = Callable[[requests.PreparedRequest], "Limiter | None"]
#: Units of the limit one request costs (0: no permit), e.g. one per item of a batch endpoint.
RequestCost = Callable[[requests.PreparedRequest], int]


class RateLimitedAdapter(HTTPAdapter):
    """A ``requests`` transport adapter that takes one permit before sending each request.

    Args:
        limiter: a ratewindow limiter, or a function choosing one per ``PreparedRequest`` (None:
            send without a permit).
        wait: most seconds to wait for a permit; None waits as long as needed. Past it,
            ``ratewindow.AcquireTimeout`` is raised and nothing is sent.
        pause_on_429: pause the limiter on a 429 (and a 503 with ``Retry-After``) for the
            response's ``Retry-After`` seconds, or as its rate-limit headers say (see
            ``Calibration.pause_429``); with ``learn=False``, only for ``Retry-After``.
        on_response: called with every response (e.g. to read rate-limit headers). It may raise
            to turn a response into an error: the response is closed and the exception reaches
            the caller of ``session.request`` (nothing is re-sent).
        pool_maxsize: connections kept per host; size it to your workers.
        cost: units each request takes from the limiter, as a function of the request (default
            1 each); 0 sends the request without a permit.
        concurrency: a ``ConcurrencyLimit``; each request holds one slot from before its permit
            is taken until its response headers arrive (or it fails), waiting up to ``wait``
            seconds for the slot (``AcquireTimeout`` past it, nothing sent).
        learn: learn the server's limits from the responses' headers (``True``: with the default
            ``Calibration()``; a ``Calibration`` says how; ``False``: never). One ``Calibrator``
            per limiter: it tightens the limiter to what the server allows, yields what other
            clients spend, and shares it through the limiter's store. Until the first response,
            one request goes alone.
        transport: the adapter requests are sent through once they hold their permits (a proxy,
            custom TLS, retrying or mock adapter of yours); None: this adapter's own connection
            pool. ``mount`` and ``rate_limited_session(session=...)`` set it from what the
            session had mounted.

    Attributes ``sent`` and ``throttled`` count requests sent and 429 responses seen, and
    ``refusal_share`` is their ratio (the error budget); each response is also told to the
    limiter's observers (``Observer.on_response``, which ``PrometheusMetrics`` counts);
    ``calibrator_of(limiter)`` gives a limiter's ``Calibrator``.
    """

    def __init__(
        self,
        limiter: Limiter | LimiterChoice,
        *,
        wait: float | None = None,
        pause_on_429: bool = True,
        on_response: Callable[[requests.Response], None] | None = None,
        pool_maxsize: int = 10,
        cost: RequestCost | None = None,
        concurrency: ConcurrencyLimit | None = None,
        learn: bool | Calibration = True,
        transport: BaseAdapter | None = None,
    ) -> None:
        if transport is not None and not isinstance(transport, BaseAdapter):
            raise TypeError(f"transport must be None or a requests transport adapter, got {transport!r}")
        if not isinstance(learn, (bool, Calibration)):
            raise TypeError(f"learn must be True, False or a Calibration, got {learn!r}")
        if cost is not None and not callable(cost):
            raise TypeError(f"cost must be None or a function of the request, got {cost!r}")
        if concurrency is not None and not isinstance(concurrency, ConcurrencyLimit):
            raise TypeError(f"concurrency must be None or a ConcurrencyLimit, got {concurrency!r}")
        if isinstance(pool_maxsize, bool) or not isinstance(pool_maxsize, int) or pool_maxsize < 1:
            raise ValueError(f"pool_maxsize must be a positive integer, got {pool_maxsize!r}")
        if wait is not None and not (isinstance(wait, (int, float)) and wait >= 0 and not math.isnan(wait)):
            raise ValueError(f"wait must be None or a number of seconds >= 0, got {wait!r}")
        super().__init__(max_retries=0, pool_connections=pool_maxsize, pool_maxsize=pool_maxsize)
        self._choose: LimiterChoice = limiter if _is_choice(limiter) else (lambda _request: limiter)  # type: ignore[assignment,return-value]
        self._wait = wait
        self._pause_on_429 = pause_on_429
        self._on_response = on_response
        self._cost = cost
        self._concurrency = concurrency
        self._calibrators = Calibrators(learn, wait)
        self._lock = threading.Lock()
        #: Requests sent through this adapter.
        self.sent = 0
        #: 429 responses seen.
        self.throttled = 0
        self._default = transport
        self._routes: dict[str, BaseAdapter | None] = {}  # prefix -> transport, set by ``mount``
        self._owned: list[BaseAdapter] = []  # transports no session holds any more: closed with us

    @property
    def transport(self) -> BaseAdapter | None:
        """The adapter requests are sent through once they hold their permits (None: this
        adapter's own pool); for an adapter mounted on several prefixes with different
        transports, the one given to the constructor."""
        kept = {id(t): t for t in self._routes.values()}
        return next(iter(kept.values())) if len(kept) == 1 else self._default

    @transport.setter
    def transport(self, transport: BaseAdapter | None) -> None:
        self._default = transport
        self._routes.clear()

    def transport_for(self, url: str) -> BaseAdapter | None:
        """The adapter a request to ``url`` goes out through once it holds its permits (None: this
        adapter's own pool): the transport ``mount`` kept for the longest prefix of ``url``, else
        the one given to the constructor."""
        found, size = self._default, -1
        if self._routes:
            lowered = url.lower()
            for prefix, transport in self._routes.items():
                if len(prefix) > size and lowered.startswith(prefix):
                    found, size = transport, len(prefix)
        return found

    def _forward(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Send a request that holds its permits: through its transport, or this adapter's pool."""
        transport = self.transport_for(request.url or "")
        if transport is None:
            return HTTPAdapter.send(self, request, *args, **kwargs)
        return transport.send(request, *args, **kwargs)

    def close(self) -> None:
        """Close this adapter's own pool and the transports no session holds any more."""
        super().close()
        owned, self._owned = self._owned, []
        for transport in owned:
            transport.close()

    def calibrator_of(self, limiter: Limiter) -> Calibrator | None:
        """The ``Calibrator`` that learns for ``limiter`` (None with ``learn=False``)."""
        return self._calibrators.of(limiter)

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        lease = self._concurrency.hold(self._wait) if self._concurrency is not None else None
        calibrator = ticket = None
        try:
            limiter = self._choose(request)
            units = 1 if self._cost is None else self._cost(request)
            if limiter is not None:
                calibrator = self.calibrator_of(limiter)
            if calibrator is not None:
                if units > 0:
                    ticket = calibrator.acquire(units, timeout=self._wait)
            elif limiter is not None and units > 0:
                limiter.acquire(units, timeout=self._wait)
            try:
                response = self._forward(request, *args, **kwargs)
            except BaseException:
                if calibrator is not None:
                    calibrator.failed(ticket)
                raise
        finally:
            if lease is not None:
                lease.release()
        with self._lock:
            self.sent += 1
            if response.status_code == 429:
                self.throttled += 1
        if limiter is not None:
            tell_response(limiter, response.status_code == 429)
        if calibrator is not None:
            try:
                calibrator.observe(ticket, response.headers, response.status_code, pause=self._pause_on_429)
            except BaseException:
                response.close()
                raise
        elif response.status_code == 429 and self._pause_on_429 and limiter is not None:
            seconds = parse_retry_after(response.headers.get("Retry-After"))
            if seconds:
                name = getattr(limiter, "name", "?")
                log.info("429 from %s: pausing %r for %.3f s", _origin(request), name, seconds)
                limiter.pause(seconds)
        if self._on_response is not None:
            try:
                self._on_response(response)
            except BaseException:
                response.close()
                raise
        return response

    @property
    def refusal_share(self) -> float:
        """``throttled / sent``: the share of responses that were 429s (0.0 before any)."""
        return share(self.throttled, self.sent)

    def __repr__(self) -> str:
        return f"RateLimitedAdapter(sent={self.sent}, throttled={self.throttled})"


def _is_choice(limiter: object) -> bool:
    return callable(limiter) and not hasattr(limiter, "try_acquire")


def _origin(request: requests.PreparedRequest) -> str:
    url = request.url or ""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].rsplit('@', 1)[-1]}"  # never credentials or query


def rate_limited_session(
    limiter: Limiter | LimiterChoice,
    *,
    session: requests.Session | None = None,
    prefixes: tuple[str, ...] = ("https://", "http://"),
    headers: Mapping[str, str] | None = None,
    **adapter_kwargs: Any,
) -> requests.Session:
    """A ``requests.Session`` (a new one, or ``session``) whose requests to ``prefixes`` go through a
    ``RateLimitedAdapter``; keyword arguments as the adapter's. Returns the session.

    The adapters ``session`` had for those prefixes are kept (see ``mount``): each request takes
    its permits, then goes out through the adapter that was there.
    """
    target = session if session is not None else requests.Session()
    adapter = RateLimitedAdapter(limiter, **adapter_kwargs)
    for prefix in prefixes:
        mount(target, prefix, adapter)
    if headers:
        target.headers.update(headers)
    return target


def mount(session: requests.Session, prefix: str, adapter: RateLimitedAdapter) -> RateLimitedAdapter:
    """Mount ``adapter`` on ``session`` for ``prefix``, keeping the transport the session had.

    Requests to ``prefix`` then take their permits in ``adapter`` and go out through the adapter
    the session sent them through before: a proxy, custom TLS, retrying or mock adapter is kept
    as it is. Requests' stock ``HTTPAdapter()`` (what a new session mounts) is stood in for by
    ``adapter``'s own pool, which re-sends nothing either. Mounting over a ``RateLimitedAdapter``
    keeps the transport that one sent through. A kept adapter that re-sends requests itself
    (urllib3 retries) is logged at WARNING: its re-sends take no permit. Returns ``adapter``.

    Raises:
        TypeError: ``adapter`` is not a ``RateLimitedAdapter``.
    """
    if not isinstance(adapter, RateLimitedAdapter):
        raise TypeError(f"adapter must be a RateLimitedAdapter, got {adapter!r}")
    key = prefix.lower()
    mounted = session.adapters.get(prefix)  # on this very prefix: session.mount replaces it
    try:
        found: BaseAdapter | None = session.get_adapter(prefix)
    except requests.exceptions.InvalidSchema:
        found = None
    transport: BaseAdapter | None
    owned = False
    if isinstance(found, RateLimitedAdapter):  # wrapped before: keep what it sent through
        transport = found.transport_for(key)
        if transport is not None and transport in found._owned:
            found._owned.remove(transport)
            owned = True
    else:
        transport, owned = found, found is not None and found is mounted
    if transport is not None and _is_stock(transport):
        if owned:
            transport.close()  # displaced and unused: the adapter's own pool stands in for it
        transport, owned = None, False
    elif transport is not None and _re_sends(transport):
        log.warning("ratewindow: the session's adapter for %s re-sends requests itself (max_retries=%r); "
                    "those re-sends take no permit (the server counts them: learned from its headers, "
                    "they read as other clients' use)", prefix, getattr(transport, "max_retries", None))
    adapter._routes[key] = transport
    if owned and transport is not None:
        adapter._owned.append(transport)
    session.mount(prefix, adapter)
    if isinstance(found, RateLimitedAdapter) and found is not adapter and not any(
            a is found for a in session.adapters.values()):
        found.close()  # no longer mounted anywhere: its own pool is unused
    return adapter


def _is_stock(adapter: BaseAdapter) -> bool:
    """Whether ``adapter`` is indistinguishable from requests' own ``HTTPAdapter()`` (what a new
    ``requests.Session`` mounts): same class, retries, pool and pool-manager settings."""
    if type(adapter) is not HTTPAdapter:
        return False
    fresh = HTTPAdapter()
    try:
        settings = ("config", "_pool_connections", "_pool_maxsize", "_pool_block")
        return (all(getattr(adapter, name, None) == getattr(fresh, name) for name in settings)
                and repr(adapter.max_retries) == repr(fresh.max_retries)
                and adapter.poolmanager.connection_pool_kw == fresh.poolmanager.connection_pool_kw)
    finally:
        fresh.close()


def _re_sends(adapter: BaseAdapter) -> bool:
    """Whether an ``HTTPAdapter``'s urllib3 policy may send one request more than once."""
    retry = getattr(adapter, "max_retries", None)
    if not isinstance(retry, Urllib3Retry):
        return False
    if retry.total is False or (retry.total is not None and retry.total <= 0):
        return False
    counts = (retry.connect, retry.read, retry.status, retry.other)
    return any(count is None or (count is not False and count > 0) for count in counts)
