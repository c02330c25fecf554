"""``client``, ``wrap``, ``executor`` and ``limiter_of``: simple-salesforce with every request limited.

The interception point is the client's ``requests.Session``: simple-salesforce 1.12 sends every
REST call (``_call_salesforce`` of ``Salesforce`` and ``SFType``: describe, CRUD, query and
query-more, ``restful``, ``limits``, Tooling, Apex REST) and every Bulk 1.0 / 2.0 and Metadata
deploy/retrieve call (``util.call_salesforce``) through ``sf.session``. A ``SalesforceAdapter``
mounted there for ``https://{instance}/`` takes the permits, then sends through the transport
adapter the session had for the instance (the user's proxy, TLS, retrying or mock adapter is
kept). The one exception is the Metadata SOAP API (``sf.mdapi.describe_metadata()``,
``sf.mdapi.CustomObject.read(...)``): zeep posts it through a session of its own, so ``wrap``
gives ``sf.mdapi`` a zeep transport on ``sf.session``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Union, cast
from urllib.parse import urlsplit

import requests
from ratewindow import (
    Clock,
    ConcurrencyLimit,
    Limiter,
    MemoryStore,
    RateLimitedExecutor,
    RateWindowError,
    Retry,
    RetryLater,
    Store,
    as_store,
    store_from_env,
)
from ratewindow.http import RateLimitedAdapter, mount
from simple_salesforce.api import Salesforce

from ratewindow_salesforce._bulk import BulkPools
from ratewindow_salesforce._errors import RETRY, bulk_exception_code_of, error_code_of
from ratewindow_salesforce._limits import EDITIONS, OrgLimits, SalesforceLimiter

__all__ = ["SalesforceAdapter", "adapter_of", "bulk_pools", "client", "executor", "limiter_of", "wrap"]

log = logging.getLogger("ratewindow.salesforce")

#: Seconds a concurrency slot is held at most if its holder dies (Salesforce's longest
#: synchronous transaction is 10 minutes; most requests take well under a second).
CONCURRENCY_LEASE = 600.0
#: Connections kept to the instance; more threads than this open and drop extra connections.
POOL_SIZE = 64
#: Session ids refreshed away that are still swapped for the current one (see ``_renew``).
_STALE_KEPT = 16

_BATCH = re.compile(r"/services/data/v[^/]+/composite/batch/?")
_VERSIONS = re.compile(r"/services/data/?")

RefreshToken = Callable[[], str]
StoreLike = Union[Store, str]  # noqa: UP007 (a runtime alias on 3.10)


def request_cost(request: requests.PreparedRequest) -> int:
    """Units of the org's allocation a request takes, computed from the request alone.

    ``/services/data/`` (the Versions resource) and ``/services/oauth2/...`` (sign-in) count 0;
    ``POST .../composite/batch`` counts one per subrequest (its JSON body is read); everything
    else, ``/composite`` with up to 25 subrequests and sObject Collections included, counts 1.
    """
    path = urlsplit(request.url or "").path
    if _VERSIONS.fullmatch(path) or path.startswith("/services/oauth2/"):
        return 0
    if request.method == "POST" and _BATCH.fullmatch(path):
        return max(1, _batch_size(request.body))
    return 1


def _batch_size(body: object) -> int:
    try:
        decoded = json.loads(body) if isinstance(body, (bytes, str)) else None
    except ValueError:
        return 1
    batch = decoded.get("batchRequests") if isinstance(decoded, dict) else None
    return len(batch) if isinstance(batch, list) else 1


def _charged(cost: int, request: requests.PreparedRequest, response: requests.Response,
             code: str | None) -> int:
    """Units Salesforce charged for an answered request: none for 401, Bulk 1.0's expired session
    (400 ``InvalidSessionId``) and limit refusals; for a Composite Batch, one per subrequest it
    ran (refused and halted ones excepted)."""
    if cost == 0 or response.status_code == 401 or code in ("REQUEST_LIMIT_EXCEEDED", "InvalidSessionId"):
        return 0
    batch = request.method == "POST" and _BATCH.fullmatch(urlsplit(request.url or "").path) is not None
    if not batch:
        return cost
    if response.status_code == 200:
        try:
            results = response.json().get("results")
        except (ValueError, AttributeError):
            return cost
        if isinstance(results, list):
            ran = 0
            for result in results:
                status = result.get("statusCode") if isinstance(result, dict) else None
                body = result.get("result") if isinstance(result, dict) else None
                if status == 412 or (status == 403 and error_code_of(body)[0] == "REQUEST_LIMIT_EXCEEDED"):
                    continue
                ran += 1
            return ran
    return 0 if response.status_code >= 400 else cost  # a rejected envelope ran nothing


def _is_bulk1(request: requests.PreparedRequest) -> bool:
    """A Bulk API 1.0 request (``/services/async/...``)."""
    return urlsplit(request.url or "").path.startswith("/services/async/")


def session_of(request: requests.PreparedRequest) -> tuple[str, str] | None:
    """``(header, session id)`` a request carries its session in: ``Authorization: Bearer ...``
    (REST, Bulk 2.0) or ``X-SFDC-Session`` (Bulk 1.0); None if neither."""
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        return "Authorization", authorization[len("Bearer "):]
    bulk = request.headers.get("X-SFDC-Session")
    if bulk:
        return "X-SFDC-Session", str(bulk)
    return None


def _session_value(header: str, token: str) -> str:
    return f"Bearer {token}" if header == "Authorization" else token


def session_expired(response: requests.Response) -> bool:
    """Salesforce refused the request's session as expired or invalid: 401
    ``INVALID_SESSION_ID`` (REST, Bulk 2.0), or 400 ``InvalidSessionId`` from Bulk API 1.0."""
    status = response.status_code
    if status == 401:
        return error_code_of(response.content)[0] == "INVALID_SESSION_ID"
    if status == 400 and _is_bulk1(response.request):
        return bulk_exception_code_of(response.content) == "InvalidSessionId"
    return False


class SalesforceAdapter(RateLimitedAdapter):
    """The transport adapter ``wrap`` mounts on ``sf.session`` for the instance host.

    For each request: hold a concurrency slot (if configured) while in flight, take
    ``request_cost(request)`` permits from the org's limiters, then send through ``transport``
    (the adapter the session had for the instance, kept as it is: a proxy, custom TLS, retrying
    or mock adapter), or, if that was requests' stock ``HTTPAdapter``, through an equivalent one
    with a pool sized to the workers (``max_retries=0``, as requests' default). Then calibrate
    from ``Sforce-Limit-Info`` and turn 403 ``REQUEST_LIMIT_EXCEEDED`` into ratewindow's signals
    (``DailyLimitExhausted``, ``RetryLater``). An expired session (401 ``INVALID_SESSION_ID``
    for REST, 400 ``InvalidSessionId`` for Bulk 1.0) is returned as is (simple-salesforce raises
    its error), unless a ``refresh`` callback was given: then it is called once per expired token
    and the request is sent once more with the new token, in the header it was sent with (taking a
    new permit).
    """

    def __init__(self, org: SalesforceLimiter, sf: Salesforce, *, concurrency: ConcurrencyLimit | None,
                 refresh: RefreshToken | None, bulk: BulkPools | None = None) -> None:
        pool = max(POOL_SIZE, concurrency.limit if concurrency is not None else 0)
        # The org's limiter learns from Sforce-Limit-Info itself (``SalesforceLimiter.calibrate``).
        super().__init__(org, on_response=self._check, pool_maxsize=pool, cost=request_cost,
                         concurrency=concurrency, learn=False)
        #: The org's limiters and their calibration.
        self.org = org
        #: The concurrency cap, if any.
        self.concurrency = concurrency
        #: The org's Bulk allocations (query jobs, batches), if tracked.
        self.bulk = bulk
        self._sf = weakref.ref(sf)
        self._refresh = refresh
        self._refresh_lock = threading.Lock()
        self._stale: dict[str, None] = {}  # session ids refreshed away, oldest first

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if self._stale:
            self._renew(request)
        hold = self.bulk.hold(request) if self.bulk is not None else None  # a Bulk job or batch: its pool
        if hold is None:
            return self._send(request, args, kwargs)
        try:
            response = self._send(request, args, kwargs)
        except RateWindowError:  # not sent, or refused by Salesforce's limits: nothing was created
            hold.settle(taken=False)
            raise
        hold.settle(taken=response.status_code < 400)  # an error answer created nothing
        return response

    def _send(self, request: requests.PreparedRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
              ) -> requests.Response:
        probe = request_cost(request) > 0 and self.org.enter()
        try:
            try:
                response = self._send_once(request, args, kwargs)
            finally:
                self.org.settle()  # answered or not, no longer in flight
            if self._refresh is not None and session_expired(response):
                response = self._resend_with_fresh_token(request, response, args, kwargs)
            return response
        finally:
            if probe:
                self.org.leave()

    def _check(self, response: requests.Response) -> None:
        """Calibrate from the response; raise for limit refusals (the response is then closed)."""
        request = response.request
        status = response.status_code
        self.org.count("requests")
        code, message = (None, "")
        if status in (401, 403):
            code, message = error_code_of(response.content)
        elif status == 400 and _is_bulk1(request):
            code = bulk_exception_code_of(response.content)
        self.org.responded(status == 403 and code == "REQUEST_LIMIT_EXCEEDED")
        cost = request_cost(request)
        header = response.headers.get("Sforce-Limit-Info")
        self.org.calibrate(header, _charged(cost, request, response, code))
        if status == 401 or code == "InvalidSessionId":
            self.org.count("expired")
        if status != 403 or code != "REQUEST_LIMIT_EXCEEDED":
            return
        self.org.count("refused")
        if "TotalRequests" in message:
            error = self.org.refused(max(cost, 1), header)
            log.warning("salesforce: %s: TotalRequests Limit exceeded; no more requests until Unix time %.0f",
                        self.org.name, error.retry_at)
            raise error
        pause = self.org.limits.busy_pause
        log.warning("salesforce: %s: %s; pausing every worker for %.3f s", self.org.name,
                    message or "REQUEST_LIMIT_EXCEEDED", pause)
        if pause > 0:
            self.org.pause(pause)
        raise RetryLater(after=pause, message=f"Salesforce {self.org.name}: {message or code}")

    def _current_token(self) -> str | None:
        sf = self._sf()
        return None if sf is None else str(getattr(sf, "__dict__", {}).get("session_id", ""))

    def _renew(self, request: requests.PreparedRequest) -> None:
        """A request built before a refresh (an ``SFType`` or bulk object kept from before)
        carries a session id known to be expired: send it with the current one instead."""
        carried = session_of(request)
        current = self._current_token()
        if carried is not None and current and carried[1] in self._stale:
            request.headers[carried[0]] = _session_value(carried[0], current)

    def _resend_with_fresh_token(self, request: requests.PreparedRequest, response: requests.Response,
                                 args: tuple[Any, ...], kwargs: dict[str, Any]) -> requests.Response:
        """Salesforce said the session expired: refresh it (once per expired token, whichever
        thread sees it first) and send the request once more with the new session id, in the
        header it was sent with (``Authorization: Bearer`` or Bulk 1.0's ``X-SFDC-Session``)."""
        sf = self._sf()
        carried = session_of(request)
        if sf is None or carried is None:
            return response
        header, sent_with = carried
        with self._refresh_lock:
            current = self._current_token() or ""
            if sent_with == current:  # nobody refreshed since this request was sent
                assert self._refresh is not None
                try:
                    token = self._refresh()
                    if not isinstance(token, str) or not token.strip():
                        raise TypeError("the refresh callback must return a non-empty session id (str)")
                except BaseException:
                    response.close()
                    raise
                self.org.count("refreshes")
                _set_token(sf, token)
                self._stale[sent_with] = None
                while len(self._stale) > _STALE_KEPT:
                    del self._stale[next(iter(self._stale))]
                current = token
                log.info("salesforce: %s: session refreshed by the refresh callback", self.org.name)
        response.close()
        request.headers[header] = _session_value(header, current)
        try:
            return self._send_once(request, args, kwargs)
        finally:
            self.org.settle()

    def _send_once(self, request: requests.PreparedRequest, args: tuple[Any, ...], kwargs: dict[str, Any]
                   ) -> requests.Response:
        """Slot, permits, one send, then ``_check`` (``RateLimitedAdapter.send``)."""
        return RateLimitedAdapter.send(self, request, *args, **kwargs)

    def __repr__(self) -> str:
        return f"SalesforceAdapter(org={self.org!r}, concurrency={self.concurrency!r}, sent={self.sent})"


def _set_token(sf: Salesforce, token: str) -> None:
    """Point ``sf`` (and the objects it hands out from now on) at a new session id."""
    sf.session_id = token
    sf.headers["Authorization"] = f"Bearer {token}"
    metadata = sf.__dict__.get("_mdapi")
    if isinstance(metadata, _MetadataApi):
        metadata.reset()


class _MetadataApi:
    """Stands in for ``sf.mdapi`` until first used, then builds simple-salesforce's
    ``SfdcMetadataApi`` with its zeep transport posting through ``sf.session`` (zeep otherwise
    keeps a ``requests.Session`` of its own, which would bypass the limiter)."""

    def __init__(self, sf: Salesforce) -> None:
        self._sf = weakref.ref(sf)
        self._lock = threading.Lock()
        self._real: Any = None

    def reset(self) -> None:
        """Forget the built API (its SOAP header holds the old session id)."""
        with self._lock:
            self._real = None

    def _load(self) -> Any:
        with self._lock:
            if self._real is None:
                from simple_salesforce.metadata import SfdcMetadataApi

                sf = self._sf()
                if sf is None:
                    raise RuntimeError("the Salesforce client of this metadata API is gone")
                real = SfdcMetadataApi(session=sf.session, session_id=sf.session_id, instance=sf.sf_instance,
                                       metadata_url=sf.metadata_url, api_version=sf.sf_version,
                                       headers=sf.headers)
                route_through(real, sf.session)
                self._real = real
            return self._real

    def __bool__(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._load(), name)

    def __repr__(self) -> str:
        return "<simple_salesforce metadata API, sent through the rate-limited session>"


def route_through(metadata: Any, session: requests.Session) -> None:
    """Make an ``SfdcMetadataApi``'s zeep client post through ``session``."""
    transport = getattr(getattr(metadata, "_client", None), "transport", None)
    if transport is not None:
        transport.session = session


def _org_name(sf: Salesforce, name: str | None) -> str:
    if name is not None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a non-empty string, got {name!r}")
        if not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        return name
    return f"salesforce:{str(sf.sf_instance).lower()}"


def _org_limits(edition: str | None, limits: object, reserve: float | None, max_wait: float | None,
                store: StoreLike | None) -> tuple[OrgLimits, Limiter | None, bool, Store]:
    """``wrap``'s limit arguments resolved: the ``OrgLimits``, the pace (a user's limiter), whether
    the allocation follows the headers, and the org's store.

    Raises:
        TypeError, ValueError: as ``wrap``.
    """
    pace: Limiter | None = None
    if limits is None:
        chosen = OrgLimits()
    elif isinstance(limits, OrgLimits):
        chosen = limits
    elif isinstance(limits, Limiter):
        chosen, pace = OrgLimits(), limits
    else:
        raise TypeError(f"limits must be an OrgLimits or a ratewindow limiter, got {limits!r}")
    if reserve is not None:
        chosen = replace(chosen, reserve=reserve)  # OrgLimits checks it
    if max_wait is not None:
        chosen = replace(chosen, max_wait=max_wait)
    follow = False
    if edition is not None:
        if not isinstance(edition, str):
            raise TypeError(f"edition must be a string such as 'enterprise', got {edition!r}")
        preset = EDITIONS.get(edition.lower())
        if preset is None:
            raise ValueError(f"unknown edition {edition!r}; one of: {', '.join(EDITIONS)}")
        if chosen.allocation is None:
            chosen, follow = replace(chosen, allocation=preset.allocation), True
    own = getattr(pace, "_store", None)
    if store is None and own is not None and not isinstance(own, MemoryStore):
        shared: Store = own  # the user's limiter's shared store is the org's
    else:
        shared = as_store(store, default=store_from_env)
    return chosen, pace, follow, shared


def wrap(
    sf: Salesforce,
    *,
    edition: str | None = None,
    limits: OrgLimits | Limiter | None = None,
    reserve: float | None = None,
    concurrency: int | ConcurrencyLimit | None = None,
    store: StoreLike | None = None,
    name: str | None = None,
    max_wait: float | None = None,
    refresh: RefreshToken | None = None,
    clock: Clock | None = None,
) -> Salesforce:
    """Make every HTTP request of an existing ``simple_salesforce.Salesforce`` take its permits.

    Mounts a ``SalesforceAdapter`` on ``sf.session`` for ``https://{sf.sf_instance}/``: each
    request takes its permits there, then goes on through the adapter the session had for the
    instance (a proxy, custom TLS, retrying or mock adapter is kept as it is; requests' stock
    ``HTTPAdapter`` is stood in for by one with a pool sized to the workers, which re-sends
    nothing either). Routes the Metadata SOAP API through the same session. Wrapping again
    replaces the earlier configuration and keeps the transport.

    Args:
        sf: the client to wrap; returned, changed in place.
        edition: a preset (``EDITIONS``): ``developer``, ``professional``, ``enterprise``,
            ``unlimited``, ``performance``, ``sandbox``. Its allocation (the least the edition
            has) holds from the first request; the first ``Sforce-Limit-Info`` header corrects
            it. None: the allocation is learned from the first response (which goes alone).
        limits: a ratewindow limiter every request also takes, e.g. the seed's pace
            ``SlidingWindow(200, 60.0, store=store)``, or any ``Limits(...)``; build it on
            ``store`` (None: its store is the org's). Or an ``OrgLimits`` (allocation, reserve,
            pace and waits in one value). Default ``OrgLimits()``: allocation learned, no
            reserve, no pace.
        reserve: fraction of the allocation left for other integrations, in [0, 1) (as
            ``OrgLimits.reserve``; given here, it replaces that).
        max_wait: most seconds a request waits for its permits (as ``OrgLimits.max_wait``,
            default 60): past it ``DailyLimitExhausted`` (the allocation is spent) or
            ``ratewindow.AcquireTimeout`` (the pace), and nothing is sent.
        concurrency: most requests in flight at once for the org (25 for production and
            sandboxes, 5 for Developer Edition long-running requests), as an int or a
            ``ConcurrencyLimit`` to share; None: no cap. An int builds
            ``ConcurrencyLimit(n, lease=600.0, name=name + ":concurrency", store=store)``.
        store: where the limiters live: a ratewindow store or a store URL; None: the
            ``RATEWINDOW_STORE`` environment variable, else a new in-process ``MemoryStore``.
            Share one store (and build one client per process) to share one org's limits.
        name: the limiters' name prefix; default ``"salesforce:" + instance host``. Never the
            session id.
        refresh: called (once per expired token) when Salesforce answers 401
            ``INVALID_SESSION_ID``; returns a new session id, and the failed request is sent
            once more with it. None: the 401 is raised as ``SalesforceExpiredSession``.
        clock: a ratewindow clock for the limiters (tests); default ``MonotonicClock()``.

    Raises:
        TypeError: ``sf`` is not a ``simple_salesforce.Salesforce``, ``limits`` is neither an
            ``OrgLimits`` nor a ratewindow limiter, or the store cannot hold ``ConcurrencyLimit``
            leases.
        ValueError: a bad argument, named in the message: an unknown ``edition``, a limiter on
            another store than the org's, a pace given twice.

    >>> sf = wrap(Salesforce(instance_url="https://acme.my.salesforce.com", session_id="00D!x"),
    ...           limits=OrgLimits(reserve=0.1), concurrency=25)  # doctest: +SKIP
    """
    if not isinstance(sf, Salesforce):
        raise TypeError(f"sf must be a simple_salesforce.Salesforce, got {type(sf).__name__}")
    if refresh is not None and not callable(refresh):
        raise TypeError("refresh must be None or a function returning a new session id")
    chosen, pace, follow, shared = _org_limits(edition, limits, reserve, max_wait, store)
    org_name = _org_name(sf, name)
    cap: ConcurrencyLimit | None
    if concurrency is None or isinstance(concurrency, ConcurrencyLimit):
        cap = concurrency
    elif isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1:
        cap = ConcurrencyLimit(concurrency, lease=CONCURRENCY_LEASE, name=f"{org_name}:concurrency",
                               store=cast(Any, shared), clock=clock)
    else:
        raise ValueError(f"concurrency must be None, a positive int or a ConcurrencyLimit, "
                         f"got {concurrency!r}")
    org = SalesforceLimiter(org_name, chosen, shared, clock, pace=pace, follow=follow)
    prefix = f"https://{str(sf.sf_instance).lower()}/"
    pools = BulkPools(org_name, shared, clock, window=chosen.window)
    adapter = SalesforceAdapter(org, sf, concurrency=cap, refresh=refresh, bulk=pools)
    mount(sf.session, prefix, adapter)  # sends through the adapter the session had (the core's rule)
    existing = sf.__dict__.get("_mdapi")
    if existing is None or isinstance(existing, _MetadataApi):
        sf.__dict__["_mdapi"] = _MetadataApi(sf)
    else:  # built before wrapping: reroute its transport
        route_through(existing, sf.session)
    log.debug("salesforce: wrapped a client for %s", org_name)
    return sf


def client(
    *,
    instance_url: str,
    session_id: str,
    edition: str | None = None,
    limits: OrgLimits | Limiter | None = None,
    reserve: float | None = None,
    concurrency: int | ConcurrencyLimit | None = None,
    store: StoreLike | None = None,
    session: requests.Session | None = None,
    name: str | None = None,
    max_wait: float | None = None,
    refresh: RefreshToken | None = None,
    clock: Clock | None = None,
    **simple_salesforce_kwargs: Any,
) -> Salesforce:
    """A real ``simple_salesforce.Salesforce`` whose every HTTP request takes its permits.

    Equivalent to ``wrap(Salesforce(instance_url=..., session_id=..., session=session, **kw), ...)``;
    arguments as ``wrap``. ``session`` is the ``requests.Session`` to send through (a new one
    by default); other keyword arguments go to ``Salesforce`` (e.g. ``version="59.0"``).

    Raises:
        ValueError: ``instance_url`` is not an https URL with a host, or ``session_id`` is empty.
        TypeError: either of them is not a string; from simple-salesforce for bad client arguments.
        as ``wrap``.

    >>> import ratewindow_salesforce as rs
    >>> sf = rs.client(instance_url="https://acme.my.salesforce.com", session_id=token,
    ...                limits=rs.OrgLimits(reserve=0.1, per_minute=200), concurrency=25)  # doctest: +SKIP
    >>> sf.query_all("SELECT Id FROM Account")  # doctest: +SKIP
    """
    if not isinstance(instance_url, str):
        raise TypeError(f"instance_url must be a string such as 'https://acme.my.salesforce.com', "
                        f"got {instance_url!r}")
    try:
        parts = urlsplit(instance_url.strip())
        parts.port  # noqa: B018  # a bad port raises ValueError here
    except ValueError:
        parts = urlsplit("")
    if parts.scheme.lower() != "https" or not parts.hostname:
        raise ValueError(f"instance_url must be an https URL such as 'https://acme.my.salesforce.com', "
                         f"got {instance_url!r}")
    if not isinstance(session_id, str):  # never shown: a session id is a credential
        raise TypeError(f"session_id must be a string, got {type(session_id).__name__}")
    if not session_id.strip():
        raise ValueError(f"session_id must be a non-empty string (an access token), got {session_id!r}")
    sf = Salesforce(instance_url=instance_url, session_id=session_id, session=session,
                    **simple_salesforce_kwargs)
    return wrap(sf, edition=edition, limits=limits, reserve=reserve, concurrency=concurrency, store=store,
                name=name, max_wait=max_wait, refresh=refresh, clock=clock)


def adapter_of(sf: Salesforce) -> SalesforceAdapter:
    """The ``SalesforceAdapter`` ``wrap`` mounted on ``sf``.

    Raises:
        TypeError: ``sf`` was not wrapped.
    """
    if not isinstance(sf, Salesforce):
        raise TypeError(f"sf must be a simple_salesforce.Salesforce, got {type(sf).__name__}")
    adapter = sf.session.get_adapter(f"https://{str(sf.sf_instance).lower()}/")
    if not isinstance(adapter, SalesforceAdapter):
        raise TypeError("this Salesforce client is not wrapped: use ratewindow_salesforce.client() or wrap()")
    return adapter


def executor(sf: Salesforce, *, max_workers: int | None = None, retry: Retry | None = None,
             **kwargs: Any) -> RateLimitedExecutor:
    """A ``RateLimitedExecutor`` for work done with the wrapped client ``sf``.

    Its limiter is None: the permits are taken by the client, one per HTTP request (never a
    second one per item). Its retry policy (``RETRY``) retries connection errors, 5xx,
    ``UNABLE_TO_LOCK_ROW`` and rate-limit signals (``RetryLater`` after a
    ``ConcurrentPerOrgLongTxn`` refusal: every worker waits out the pause); it never retries an
    expired session. ``DailyLimitExhausted`` further away than ``max_wait`` stops the batch:
    the remaining items are reported not run with ``QuotaExhausted(retry_at=...)``.

    Args:
        sf: a wrapped client.
        max_workers: threads; default the client's concurrency cap, else the executor's own.
        retry: a retry policy instead of ``RETRY``.
        **kwargs: other ``RateLimitedExecutor`` arguments (``progress``, ``max_wait``, ``breaker``).

    Raises:
        TypeError: ``sf`` is not wrapped.

    >>> with executor(sf, progress=False) as pool:  # doctest: +SKIP
    ...     outcomes = pool.map(lambda name: sf.restful(f"sobjects/{name}/describe"), names)
    """
    adapter = adapter_of(sf)
    if max_workers is None and adapter.concurrency is not None:
        max_workers = adapter.concurrency.limit
        log.info("ratewindow_salesforce.executor: %d workers, the client's concurrency cap", max_workers)
    policy = RETRY if retry is None else retry
    return RateLimitedExecutor(None, max_workers=max_workers, retry=policy, **kwargs)


def limiter_of(sf: Salesforce) -> SalesforceLimiter:
    """The ``SalesforceLimiter`` of a wrapped client: its ``stats`` (requests, refusals, the
    org's allocation and use as last seen), and the limiter itself (e.g. ``pause``).

    Raises:
        TypeError: ``sf`` is not wrapped.

    >>> limiter_of(sf).stats.available  # doctest: +SKIP
    13100
    """
    return adapter_of(sf).org


def bulk_pools(sf: Salesforce) -> BulkPools:
    """The ``BulkPools`` of a wrapped client: its org's Bulk API 2.0 query jobs and Bulk batches
    per rolling 24 h, as ratewindow limiters (``available()``, ``wait_time()``).

    Raises:
        TypeError: ``sf`` is not wrapped.

    >>> bulk_pools(sf).query_jobs.available()  # doctest: +SKIP
    9998.0
    """
    pools = adapter_of(sf).bulk
    assert pools is not None  # wrap() always builds them
    return pools
