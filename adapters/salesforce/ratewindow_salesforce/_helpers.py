"""Batched helpers run through the shared executor: ``composite``, ``describe_many``,
``query_all_parallel``.

Every HTTP request they make goes through the wrapped client, so it takes its permits there;
the executor only schedules, retries and reports (its limiter is None).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Union, cast, overload

from ratewindow import Outcome, RateLimitedExecutor
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from ratewindow_salesforce._client import adapter_of, executor

__all__ = ["CompositeResult", "composite", "describe_many", "query_all_parallel"]

#: Subrequests per ``/composite`` call, and how many of them may be queries (Query, QueryAll,
#: Query More) or sObject Collections (REST API Developer Guide, "Composite").
COMPOSITE_MAX = 25
COMPOSITE_MAX_QUERIES = 5

_QUERY_LIKE = re.compile(r"/(query|queryAll)(/|$)|/composite/sobjects")
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_LOCATOR = re.compile(r"(?P<head>.*/)(?P<locator>[^/?]+)-(?P<offset>\d+)")
_ERRORS: dict[int, type[SalesforceError]] = {
    300: SalesforceMoreThanOneRecord,
    400: SalesforceMalformedRequest,
    401: SalesforceExpiredSession,
    403: SalesforceRefusedRequest,
    404: SalesforceResourceNotFound,
}

Request = Union[str, Mapping[str, Any]]  # noqa: UP007 (a runtime alias on 3.10)


@dataclass(frozen=True)
class CompositeResult:
    """What became of one subrequest of ``composite``: its answer, or the error it ended with.

    ``value`` is the body a one-by-one call would return (``sf.restful(...)``); ``error`` is the
    exception it would raise: simple-salesforce's class for the subrequest's HTTP status
    (``SalesforceResourceNotFound`` for 404, ...), or, when the ``/composite`` call carrying it
    failed as a whole, that call's error (``status`` is then None).

    >>> CompositeResult({"method": "GET", "url": "/services/data/v59.0/limits"}, 200, {"x": 1}).ok
    True
    """

    #: The subrequest as sent: ``method``, ``url`` and, if any, ``body`` and ``httpHeaders``.
    request: Mapping[str, Any]
    #: The subrequest's HTTP status; None if the call carrying it failed.
    status: int | None
    #: The decoded body on success (2xx); None otherwise.
    value: Any = None
    #: The error on failure; None on success.
    error: BaseException | None = None
    #: The subrequest's response headers.
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True if the subrequest succeeded."""
        return self.error is None

    def result(self) -> Any:
        """The value on success; otherwise raise the error.

        Raises:
            BaseException: the subrequest's ``error``.
        """
        if self.error is not None:
            raise self.error
        return self.value


@contextmanager
def _pool(sf: Salesforce, given: RateLimitedExecutor | None) -> Iterator[RateLimitedExecutor]:
    if given is not None:
        adapter_of(sf)  # fail early on an unwrapped client
        yield given
        return
    with executor(sf, progress=False) as pool:
        yield pool


def _normalise(sf: Salesforce, request: Request) -> dict[str, Any]:
    if isinstance(request, str):
        sub: dict[str, Any] = {"method": "GET", "url": request}
    elif isinstance(request, Mapping):
        sub = {key: value for key, value in request.items() if key != "referenceId"}
        if not isinstance(sub.get("url"), str) or not isinstance(sub.get("method", "GET"), str):
            raise ValueError(f"a subrequest needs a string url (and method), got {dict(request)!r}")
        sub.setdefault("method", "GET")
    else:
        raise TypeError(f"a subrequest is a path or a mapping with method and url, got {request!r}")
    url = sub["url"]
    if "@{" in url or "@{" in repr(sub.get("body")):
        raise ValueError("composite() sends independent subrequests; send dependent ones (@{ref}) yourself "
                         "with sf.restful('composite', method='POST', json=...)")
    if not url.startswith("/services/"):
        url = url.lstrip("/")
        versioned = re.match(r"v\d+\.\d+/", url) is not None
        url = f"/services/data/{url}" if versioned else f"/services/data/v{sf.sf_version}/{url}"
    sub["url"] = url
    sub["method"] = str(sub["method"]).upper()
    return sub


def _plan(subs: Sequence[Mapping[str, Any]]) -> list[list[int]]:
    """Pack subrequest indexes into the fewest ``/composite`` calls: at most 25 each, at most 5
    queries each; ``max(ceil(n / 25), ceil(queries / 5))`` calls, each in input order."""
    queries = [i for i, sub in enumerate(subs) if _QUERY_LIKE.search(str(sub["url"]).split("?", 1)[0])]
    others = [i for i, sub in enumerate(subs) if not _QUERY_LIKE.search(str(sub["url"]).split("?", 1)[0])]
    if not subs:
        return []
    calls = max(math.ceil(len(subs) / COMPOSITE_MAX), math.ceil(len(queries) / COMPOSITE_MAX_QUERIES))
    chunks: list[list[int]] = [[] for _ in range(calls)]
    for position, index in enumerate(queries):  # spread evenly: at most ceil(q / calls) <= 5 per call
        chunks[position * calls // len(queries)].append(index)
    target = 0
    for index in others:
        while len(chunks[target]) >= COMPOSITE_MAX:
            target += 1
        chunks[target].append(index)
    return [sorted(chunk) for chunk in chunks]


def _sub_result(sf: Salesforce, sub: Mapping[str, Any], answer: Mapping[str, Any]) -> CompositeResult:
    status = answer.get("httpStatusCode")
    body = answer.get("body")
    headers = answer.get("httpHeaders") or {}
    if not isinstance(status, int):
        url = f"https://{sf.sf_instance}{sub['url']}"
        failed = SalesforceGeneralError(url, 0, "composite", cast(Any, body))
        return CompositeResult(sub, None, None, failed, headers)
    if status < 300:
        return CompositeResult(sub, status, body, None, headers)
    cls = _ERRORS.get(status, SalesforceGeneralError)
    error = cls(f"https://{sf.sf_instance}{sub['url']}", status, "composite", cast(Any, body))
    return CompositeResult(sub, status, None, error, headers)


def _many(name: str, values: object, what: str) -> Iterable[Any]:
    """``values`` if it is a collection; one str, bytes, int or mapping is a ``TypeError`` (iterating
    it would send a request per character or key)."""
    if isinstance(values, (str, bytes, bytearray, int, Mapping)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a collection of {what} such as a list, got "
                        f"{type(values).__name__} {values!r}; for one, pass [{values!r}]")
    return values


def composite(sf: Salesforce, requests: Iterable[Request], *, executor: RateLimitedExecutor | None = None,
              desc: str | None = None) -> list[CompositeResult]:
    """Send any number of independent subrequests as ``/composite`` calls of at most 25 (and at
    most 5 queries or sObject Collections each, as Salesforce requires); one result per
    subrequest, in input order.

    Each ``/composite`` call counts as one request against the org's allocation, whatever it
    carries, so n describes cost ``ceil(n / 25)`` requests. Subrequests run with
    ``allOrNone: false``: one failing does not affect the others; each result carries its own
    value or error.

    Args:
        sf: a wrapped client.
        requests: paths relative to the API version (``"sobjects/Account/describe"``), full
            paths (``"/services/data/v59.0/limits"``), or mappings with ``method``, ``url`` and
            optionally ``body`` and ``httpHeaders``. References between subrequests (``@{id}``)
            are not allowed: the packing reorders subrequests across calls.
        executor: the shared executor to run the calls on (e.g. from
            ``ratewindow_salesforce.executor(sf)``); None: a private one for this call.
        desc: label of the executor's progress bar.

    Raises:
        TypeError: ``sf`` is not wrapped, a request is neither a path nor a mapping, or
            ``requests`` is one request (a str or mapping) instead of a collection of them.
        ValueError: a request without a url, or with a reference.

    >>> results = composite(sf, [f"sobjects/{name}/describe" for name in names])  # doctest: +SKIP
    >>> [r.value["name"] for r in results if r.ok]  # doctest: +SKIP
    """
    subs = [_normalise(sf, request) for request in _many("requests", requests, "subrequests")]
    chunks = _plan(subs)

    def send(chunk: list[int]) -> list[dict[str, Any]]:
        body = {
            "allOrNone": False,
            "compositeRequest": [{**subs[i], "referenceId": f"r{n}"} for n, i in enumerate(chunk)],
        }
        answer = sf.restful("composite", method="POST", json=body)
        responses = answer.get("compositeResponse") if isinstance(answer, Mapping) else None
        if not isinstance(responses, list):
            url = f"https://{sf.sf_instance}/composite"
            raise SalesforceGeneralError(url, 200, "composite", cast(Any, answer))
        by_ref = {r.get("referenceId"): r for r in responses if isinstance(r, Mapping)}
        return [dict(by_ref.get(f"r{n}") or {}) for n in range(len(chunk))]

    results: list[CompositeResult | None] = [None] * len(subs)
    with _pool(sf, executor) as pool:
        outcomes: list[Outcome[list[int], list[dict[str, Any]]]] = pool.map(send, chunks, desc=desc)
    for outcome in outcomes:
        chunk = outcome.item
        if outcome.error is not None or outcome.value is None:
            error = outcome.error or RuntimeError("the composite call returned nothing")
            for i in chunk:
                results[i] = CompositeResult(subs[i], None, None, error)
            continue
        for i, answer in zip(chunk, outcome.value):
            results[i] = _sub_result(sf, subs[i], answer)
    return [r for r in results if r is not None]


def describe_many(sf: Salesforce, names: Iterable[str], *, executor: RateLimitedExecutor | None = None,
                  desc: str | None = None) -> list[CompositeResult]:
    """Describe many sObjects, 25 per request through ``composite``; one result per name, in
    order, whose ``value`` is what ``sf.restful(f"sobjects/{name}/describe")`` returns.

    Raises:
        ValueError: a name that is not an sObject API name.
        TypeError: ``names`` is one str (``["Account"]`` for one), bytes or int; as ``composite``.

    >>> described = describe_many(sf, ["Account", "Contact"])  # doctest: +SKIP
    >>> [len(r.value["fields"]) for r in described]  # doctest: +SKIP
    """
    paths = []
    for name in _many("names", names, "sObject names"):
        if not isinstance(name, str) or not _API_NAME.fullmatch(name):
            raise ValueError(f"not an sObject API name: {name!r}")
        paths.append(f"sobjects/{name}/describe")
    return composite(sf, paths, executor=executor, desc=desc)


@dataclass
class _Query:
    soql: str
    first: dict[str, Any] | None = None
    pages: dict[int, dict[str, Any]] = field(default_factory=dict)
    head: str = ""
    locator: str = ""
    batch: int = 0


@overload
def query_all_parallel(  # type: ignore[overload-overlap]  # a str is also a Sequence[str]
    sf: Salesforce, soql: str, *, tooling: bool = ..., include_deleted: bool = ...,
    executor: RateLimitedExecutor | None = ..., desc: str | None = ...
) -> dict[str, Any]: ...


@overload
def query_all_parallel(
    sf: Salesforce, soql: Sequence[str], *, tooling: bool = ..., include_deleted: bool = ...,
    executor: RateLimitedExecutor | None = ..., desc: str | None = ...
) -> list[dict[str, Any]]: ...


def query_all_parallel(sf: Salesforce, soql: str | Sequence[str], *, tooling: bool = False,
                       include_deleted: bool = False, executor: RateLimitedExecutor | None = None,
                       desc: str | None = None) -> dict[str, Any] | list[dict[str, Any]]:
    """Run SOQL queries and fetch all their pages through the shared executor, in parallel.

    The first page of every query is fetched at once; Salesforce's ``nextRecordsUrl`` ends in
    ``{locator}-{offset}``, and the remaining pages of each query are fetched by offset in
    parallel (each page one request, as with ``sf.query_all``). If a page comes back shorter
    than the first, the gap is filled by following ``nextRecordsUrl``, so no record is lost
    even if the server changes the batch size; a locator without an offset is followed page
    by page.

    Args:
        sf: a wrapped client.
        soql: one query, or a sequence of queries.
        tooling: query the Tooling API (``/tooling/query``).
        include_deleted: use ``queryAll`` (deleted and archived records too).
        executor: the shared executor; None: a private one for this call.
        desc: label of the executor's progress bar.

    Returns:
        For one query, ``{"records": [...], "totalSize": n, "done": True}`` as ``sf.query_all``
        returns; for a sequence, a list of those, in order.

    Raises:
        Exception: the error of the first request that failed after the executor's retries
            (``QuotaExhausted`` when the allocation ran out first).
        TypeError: ``sf`` is not wrapped, or ``soql`` is neither a str nor a collection of them.
    """
    single = isinstance(soql, str)
    texts = [soql] if isinstance(soql, str) else list(_many("soql", soql, "SOQL strings"))
    if not all(isinstance(text, str) and text.strip() for text in texts):
        raise ValueError("every query must be a non-empty SOQL string")
    queries = [_Query(text) for text in texts]
    path = ("tooling/" if tooling else "") + ("queryAll/" if include_deleted else "query/")

    def first(query: _Query) -> dict[str, Any]:
        return cast(dict[str, Any], sf.restful(path, params={"q": query.soql}))

    def page(task: tuple[int, int]) -> dict[str, Any]:
        index, offset = task
        query = queries[index]
        url = f"{query.head}{query.locator}-{offset}"
        return cast(dict[str, Any], sf.query_more(url, identifier_is_url=True))

    with _pool(sf, executor) as pool:
        for head_outcome in pool.map(first, queries, desc=desc):
            queries[head_outcome.index].first = head_outcome.result()
        tasks: list[tuple[int, int]] = []
        for index, query in enumerate(queries):
            head = query.first or {}
            url = head.get("nextRecordsUrl")
            if head.get("done", True) or not isinstance(url, str):
                continue
            match = _LOCATOR.fullmatch(url)
            batch = len(head.get("records") or [])
            if match is None or int(match.group("offset")) != batch or batch == 0:
                continue  # followed page by page below
            query.head, query.locator, query.batch = match.group("head"), match.group("locator"), batch
            total = int(head.get("totalSize") or 0)
            tasks.extend((index, offset) for offset in range(batch, total, batch))
        for page_outcome in pool.map(page, tasks, desc=desc):
            index, offset = page_outcome.item
            queries[index].pages[offset] = cast(dict[str, Any], page_outcome.result())
    results = [_assemble(sf, query) for query in queries]
    return results[0] if single else results


def _follow(sf: Salesforce, url: str | None, until: float, records: list[Any]) -> None:
    """Fetch pages one by one from ``url`` until the offset ``until`` (or the end)."""
    while isinstance(url, str):
        match = _LOCATOR.fullmatch(url)
        offset = int(match.group("offset")) if match is not None else None
        if offset is not None and offset >= until:
            return
        more = sf.query_more(url, identifier_is_url=True)
        batch = list(more.get("records") or [])
        if offset is not None and offset + len(batch) > until:
            batch = batch[: int(until - offset)]
        records.extend(batch)
        url = None if more.get("done", True) else more.get("nextRecordsUrl")


def _assemble(sf: Salesforce, query: _Query) -> dict[str, Any]:
    head = query.first or {}
    records: list[Any] = list(head.get("records") or [])
    if not head.get("done", True):
        if not query.batch:
            _follow(sf, head.get("nextRecordsUrl"), math.inf, records)
        else:
            offsets = sorted(query.pages)
            for n, offset in enumerate(offsets):
                page = query.pages[offset]
                batch = list(page.get("records") or [])
                records.extend(batch)
                end = offsets[n + 1] if n + 1 < len(offsets) else math.inf
                if offset + len(batch) < end and not page.get("done", True):
                    _follow(sf, page.get("nextRecordsUrl"), end, records)  # a short page: fill the gap
    return {"records": records, "totalSize": len(records), "done": True}
