"""Batched reads through the shared executor, returning plain dicts: HubSpot's own JSON.

Each helper sends its requests through a wrapped client (one permit per HTTP request) and runs
them in a ``RateLimitedExecutor`` (``executor=``, or one made by
:func:`ratewindow_hubspot.executor` for the call), so 429s are retried after exactly the wait
HubSpot's policy implies and a spent daily limit raises ``DailyLimitExhausted``.

Results are the JSON HubSpot sent, parsed (``json.loads``): HubSpot's field names
(``toObjectId``, ``createdAt``), numbers and strings as sent. The SDK is asked for the raw response
(``_preload_content=False``), so no SDK model is built for results that end up as dicts (at 1,000
inputs a call, building them costs more than the call). A batched helper returns exactly what the
one-by-one calls return as JSON. Request bodies the helpers build from plain values go to the SDK's
JSON encoder as they are, not through its model sanitizer (which would copy 1,000 inputs value by
value only to give them back unchanged).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ratewindow import RateLimitedExecutor

from ._client import executor as _executor
from ._client import limiter_of
from ._errors import SearchCapExceeded

__all__ = ["batch_read", "iter_objects", "read_associations", "read_associations_many", "search"]

T = TypeVar("T")
R = TypeVar("R")

#: Inputs per v4 association batch read (HubSpot's maximum).
ASSOCIATIONS_BATCH = 1_000
#: Inputs per object batch read (HubSpot's maximum).
READ_BATCH = 100
#: Results HubSpot serves for one search query, however it is paged.
SEARCH_CAP = 10_000
#: Results per search page (HubSpot's maximum).
SEARCH_PAGE = 200
#: Associated objects per page of the v4 single-object read (HubSpot's maximum).
ASSOCIATIONS_PAGE = 500
_FILTERS_PER_GROUP = 6

Json = dict[str, Any]


def _many(name: str, values: object) -> list[Any]:
    """``values``, a collection (list, tuple, set, generator...), as a list; one str, bytes or int is a
    ``TypeError``: iterating it would read each character as an id and spend a request on them."""
    if isinstance(values, (str, bytes, bytearray, int)) or not isinstance(values, Iterable):
        raise TypeError(
            f"{name} must be a collection such as a list, got {type(values).__name__} {values!r}; "
            f"for one, pass [{values!r}]"
        )
    return list(values)


def _ids(ids: Iterable[object]) -> list[str]:
    """``ids`` as strings, first occurrence kept, order kept.

    Raises:
        TypeError: ``ids`` is one str, bytes or int instead of a collection.
    """
    return list(dict.fromkeys(str(i) for i in _many("ids", ids)))


def _names(name: str, values: Sequence[str] | None) -> list[str] | None:
    """Property or object type names as a list (None stays None); one string is a ``TypeError``."""
    return None if values is None else [str(v) for v in _many(name, values)]


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


class _Plain(dict[str, Any]):
    """A request body made of plain JSON values only (str, int, float, bool, None, lists, dicts),
    which the SDK's ``sanitize_for_serialization`` would return unchanged."""

    __slots__ = ()


def _plain_bodies(api: Any) -> Any:
    """``api``, an API object built for one helper call, whose ``ApiClient`` passes a
    :class:`_Plain` body to the encoder as is (any other value still goes through the SDK's
    sanitizer): ~1.4 ms less per 1,000 inputs."""
    api_client = api.api_client
    sanitize = api_client.sanitize_for_serialization

    def sanitize_for_serialization(obj: Any) -> Any:
        return obj if type(obj) is _Plain else sanitize(obj)

    api_client.sanitize_for_serialization = sanitize_for_serialization
    return api


def _json(api: Any, model: Any) -> Any:
    """An SDK model (or a dict) as the JSON HubSpot takes, via the SDK's own serializer."""
    return api.api_client.sanitize_for_serialization(model)


def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Json:
    """Call a generated API method and parse the JSON body HubSpot sent (no SDK models built).

    The SDK still raises its ``ApiException`` for a status outside 2xx.
    """
    response = method(*args, _preload_content=False, **kwargs)
    try:
        body = json.loads(response.data or b"{}")
    finally:
        response.release_conn()
    if not isinstance(body, dict):
        raise ValueError(f"expected a JSON object from HubSpot, got {type(body).__name__}")
    return body


def _next_after(page: Mapping[str, Any]) -> str | None:
    paging = page.get("paging")
    if not paging:
        return None
    after = (paging.get("next") or {}).get("after")
    return str(after) if after else None


def _run_all(client: Any, func: Callable[[T], R], items: Sequence[T],
             executor: RateLimitedExecutor | None) -> list[R]:
    """``func`` over ``items`` in the executor; values in input order, or the first item's error."""
    own = executor is None
    runner = _executor(client, progress=False) if executor is None else executor
    try:
        outcomes = runner.map(func, items)
    finally:
        if own:
            runner.close()
    for outcome in outcomes:
        if outcome.error is not None:
            raise outcome.error
    return [outcome.value for outcome in outcomes]  # type: ignore[misc]  # ok outcomes hold values


class _OneAtATime:
    """Runs dependent calls (pages) one by one through an executor, for its retries."""

    def __init__(self, client: Any, executor: RateLimitedExecutor | None) -> None:
        self._own = executor is None
        self._executor = _executor(client, progress=False, max_workers=1) if executor is None else executor

    def __call__(self, func: Callable[[T], R], item: T) -> R:
        [outcome] = self._executor.map(func, [item])
        if outcome.error is not None:
            raise outcome.error
        return outcome.value  # type: ignore[return-value]  # an ok outcome holds the value

    def close(self) -> None:
        if self._own:
            self._executor.close()


def read_associations(
    client: Any,
    from_type: str,
    to_type: str,
    ids: Iterable[object],
    *,
    executor: RateLimitedExecutor | None = None,
) -> dict[str, list[Json]]:
    """The ``to_type`` objects associated with each of ``ids`` (of type ``from_type``), through the
    v4 batch read: ``ceil(len(ids) / 1000)`` calls, run concurrently, plus one per object with more
    than one page. For several pairs of types, :func:`read_associations_many` sends every pair's
    calls at once.

    Returns:
        ``{from id: [{"toObjectId": 123, "associationTypes": [...]}, ...]}`` with every id given
        (as a string, in order; duplicates once), an empty list for an id with no associations;
        each list as the ``results`` of ``GET /crm/v4/objects/{from_type}/{id}/associations/{to_type}``
        (``client.crm.associations.v4.basic_api.get_page``) pages give it.

    Raises:
        TypeError: ``ids`` is one str, bytes or int, not a collection of them (``[id]`` for one).
        ratewindow.QuotaExhausted: the daily limit is spent (``retry_at``: the reset); the calls
            not yet made were not sent.
        Exception: the SDK's ``ApiException`` (e.g. an unknown object type) or a transport error
            that persisted through the retries.

    >>> # calls = read_associations(hs, "calls", "contacts", call_ids)   # 3,067 ids: 4 calls
    """
    pair = (from_type, to_type)
    return read_associations_many(client, {pair: ids}, executor=executor)[pair]


def read_associations_many(
    client: Any,
    requests: Mapping[tuple[str, str], Iterable[object]],
    *,
    executor: RateLimitedExecutor | None = None,
) -> dict[tuple[str, str], dict[str, list[Json]]]:
    """:func:`read_associations` for several ``(from_type, to_type)`` pairs, the batch calls of
    every pair run concurrently in one executor: ``sum(ceil(len(ids) / 1000))`` calls, plus one
    per object with more than one page.

    Args:
        requests: ``{(from_type, to_type): ids}``; the same ids may be given for several pairs.

    Returns:
        ``{(from_type, to_type): {from id: [...]}}``, each value exactly what
        ``read_associations(client, from_type, to_type, ids)`` returns.

    Raises:
        as :func:`read_associations`; the first failed call's error (the others still ran).

    >>> # links = read_associations_many(hs, {(e, t): ids[e] for e in ids for t in TARGETS})
    >>> # links[("calls", "contacts")][call_id]   # 5 engagement types x 3 targets: 15 calls
    """
    wanted: dict[tuple[str, str], list[str]] = {}
    if not isinstance(requests, Mapping):
        raise TypeError(f"requests must be a mapping {{(from_type, to_type): ids}}, got {requests!r}")
    read: dict[int, list[str]] = {}  # one ids object given for several pairs is read once
    for pair, ids in requests.items():  # (``requests`` keeps each alive, so no id() is reused)
        if id(ids) not in read:
            read[id(ids)] = _ids(ids)
        wanted[pair] = read[id(ids)]
    tasks = [(pair, chunk) for pair, each in wanted.items() for chunk in _chunks(each, ASSOCIATIONS_BATCH)]
    batch = _plain_bodies(client.crm.associations.v4.batch_api)  # one for every call: each access builds one

    def rest_of(from_type: str, to_type: str, object_id: str, after: str) -> list[Json]:
        api = client.crm.associations.v4.basic_api
        found: list[Json] = []
        cursor: str | None = after
        while cursor:
            page = _call(api.get_page, from_type, object_id, to_type, after=cursor, limit=ASSOCIATIONS_PAGE)
            found.extend(page.get("results") or [])
            cursor = _next_after(page)
        return found

    def fetch(task: tuple[tuple[str, str], Sequence[str]]) -> dict[str, list[Json]]:
        (from_type, to_type), chunk = task
        body = _Plain(inputs=[{"id": i} for i in chunk])  # not 1,000 SDK models (~50 ms to build)
        found: dict[str, list[Json]] = {}
        for result in _call(batch.get_page, from_type, to_type, body).get("results") or ():
            key = str(result["from"]["id"])
            targets: list[Json] = result.get("to") or []  # the parsed list itself: no copy
            if "paging" in result:
                after = _next_after(result)
                if after:
                    targets.extend(rest_of(from_type, to_type, key, after))
            found[key] = targets
        return found

    found: dict[tuple[str, str], dict[str, list[Json]]] = {pair: {} for pair in wanted}
    for (pair, _), part in zip(tasks, _run_all(client, fetch, tasks, executor)):
        found[pair].update(part)
    return {
        pair: {i: links if (links := found[pair].get(i)) is not None else [] for i in pair_ids}
        for pair, pair_ids in wanted.items()
    }


def batch_read(
    client: Any,
    object_type: str,
    ids: Iterable[object],
    *,
    properties: Sequence[str] | None = None,
    id_property: str | None = None,
    executor: RateLimitedExecutor | None = None,
) -> dict[str, Json]:
    """Objects of ``object_type`` by id, 100 per call (``ceil(len(ids) / 100)`` calls).

    Args:
        properties: property names to return (HubSpot adds its defaults); None: the defaults.
        id_property: a unique property the ``ids`` are values of (e.g. ``"email"``), instead of
            object ids.

    Returns:
        ``{id: object}`` in the order of ``ids``, each object as
        ``GET /crm/v3/objects/{object_type}/{id}?properties=...`` returns it (``id``,
        ``properties``, ``createdAt``, ``updatedAt``, ``archived``). Ids HubSpot does not find are
        left out.

    Raises:
        as :func:`read_associations`.
    """
    wanted = _ids(ids)
    names = _names("properties", properties) or []
    if id_property is not None and id_property not in names:
        names.append(id_property)

    api = _plain_bodies(client.crm.objects.batch_api)

    def fetch(chunk: Sequence[str]) -> list[Json]:
        body = _Plain(inputs=[{"id": i} for i in chunk], properties=names)
        if id_property is not None:
            body["idProperty"] = id_property
        return list(_call(api.read, object_type, body).get("results") or [])

    by_key: dict[str, Json] = {}
    for part in _run_all(client, fetch, _chunks(wanted, READ_BATCH), executor):
        for obj in part:
            key = str(obj["id"]) if id_property is None else str(obj.get("properties", {}).get(id_property))
            by_key[key] = obj
    return {i: by_key[i] for i in wanted if i in by_key}


def iter_objects(
    client: Any,
    object_type: str,
    *,
    properties: Sequence[str] | None = None,
    associations: Sequence[str] | None = None,
    archived: bool = False,
    limit: int = 100,
    executor: RateLimitedExecutor | None = None,
) -> Iterator[Json]:
    """Every object of ``object_type``, page by page (``limit`` per page, at most 100), with the
    ids of its associated objects inline: ``associations=["contacts", "deals"]`` adds
    ``obj["associations"]["contacts"]["results"] == [{"id": ..., "type": ...}, ...]``.

    One call per page, each run through the executor (so retried there). HubSpot caps the
    associations it lists inline per object; use :func:`read_associations` when an object may
    have very many.

    Raises:
        ValueError, TypeError: a bad ``limit``, or one string for ``properties`` or
            ``associations`` (at the call, before any request).
        as :func:`read_associations`.
    """
    if not 1 <= limit <= 100:
        raise ValueError(f"limit must be between 1 and 100, got {limit!r}")
    wanted = _names("properties", properties)
    linked = _names("associations", associations)

    def page_after(after: str | None) -> tuple[list[Json], str | None]:
        api = client.crm.objects.basic_api
        kwargs: dict[str, Any] = {"limit": limit, "archived": archived}
        if after is not None:
            kwargs["after"] = after
        if wanted is not None:
            kwargs["properties"] = wanted
        if linked is not None:
            kwargs["associations"] = linked
        page = _call(api.get_page, object_type, **kwargs)
        return list(page.get("results") or []), _next_after(page)

    return _pages(client, executor, page_after)


def _pages(client: Any, executor: RateLimitedExecutor | None,
           page_after: Callable[[str | None], tuple[list[Json], str | None]]) -> Iterator[Json]:
    runner = _OneAtATime(client, executor)
    try:
        after: str | None = None
        while True:
            results, after = runner(page_after, after)
            yield from results
            if not after:
                return
    finally:
        runner.close()


def search(
    client: Any,
    object_type: str,
    *,
    filter_groups: Sequence[Mapping[str, Any] | Any] | None = None,
    query: str | None = None,
    properties: Sequence[str] | None = None,
    sorts: Sequence[Mapping[str, Any] | str] | None = None,
    limit: int = SEARCH_PAGE,
    split: bool = False,
    executor: RateLimitedExecutor | None = None,
) -> Iterator[Json]:
    """Every object a CRM search matches, page by page, at the search limit (5 calls per second
    per account, on top of the account's limits).

    HubSpot serves at most 10,000 results of one query. If the query matches more:

    * ``split=False`` (default): :class:`SearchCapExceeded` is raised after the first call,
      before any result is yielded;
    * ``split=True``: results come in ``hs_object_id`` order, and whenever the cap is near the
      query restarts with ``hs_object_id > last id seen`` added to every filter group, so every
      match is returned once (``sorts`` must then be None, and each group have at most 5 filters).

    Args:
        filter_groups: HubSpot filter groups, as dicts (``{"filters": [{"propertyName": ...,
            "operator": "EQ", "value": ...}]}``) or the SDK's ``FilterGroup`` models.
        query: text to search the object's default searchable properties for.
        properties: property names to return.
        sorts: one sort (HubSpot applies one), e.g. ``{"propertyName": "createdate",
            "direction": "DESCENDING"}``.
        limit: results per page, 1 to 200.

    Raises:
        SearchCapExceeded: more than 10,000 matches and ``split`` is False.
        ValueError: a bad ``limit``; ``split`` with ``sorts``, or with a full filter group (these
            and the TypeError at the call, before any request).
        TypeError: one string for ``properties``.
        as :func:`read_associations`.
    """
    if not 1 <= limit <= SEARCH_PAGE:
        raise ValueError(f"limit must be between 1 and {SEARCH_PAGE}, got {limit!r}")
    if split and sorts:
        raise ValueError("split=True walks the results in hs_object_id order; it cannot take sorts")
    limiter_of(client)  # fail early, before any thread starts, if the client is not wrapped
    serializer = client.crm.objects.search_api
    groups: list[Json] = [_json(serializer, g) for g in filter_groups or []]
    if split and any(len(g.get("filters") or []) >= _FILTERS_PER_GROUP for g in groups):
        raise ValueError(f"split=True adds a filter to each group; a group may have at most "
                         f"{_FILTERS_PER_GROUP - 1} filters")
    order: list[Any] = (
        [{"propertyName": "hs_object_id", "direction": "ASCENDING"}] if split else list(sorts or [])
    )
    wanted = _names("properties", properties)

    def page(request: tuple[list[Json], str | None]) -> tuple[int, list[Json], str | None]:
        api = client.crm.objects.search_api
        these_groups, after = request
        body: Json = {"limit": limit}
        if query is not None:
            body["query"] = query
        if after is not None:
            body["after"] = after
        if order:
            body["sorts"] = order
        if wanted is not None:
            body["properties"] = wanted
        if these_groups:
            body["filterGroups"] = these_groups
        found = _call(api.do_search, object_type, body)
        return int(found.get("total") or 0), list(found.get("results") or []), _next_after(found)

    return _search_pages(client, executor, page, groups, split)


def _search_pages(client: Any, executor: RateLimitedExecutor | None,
                  page: Callable[[tuple[list[Json], str | None]], tuple[int, list[Json], str | None]],
                  groups: list[Json], split: bool) -> Iterator[Json]:
    runner = _OneAtATime(client, executor)
    try:
        these_groups = groups
        first = True
        while True:
            after: str | None = None
            last_id: str | None = None
            while True:
                total, results, after = runner(page, (these_groups, after))
                if first:
                    first = False
                    if total > SEARCH_CAP and not split:
                        raise SearchCapExceeded(total, SEARCH_CAP)
                yield from results
                if results:
                    last_id = str(results[-1]["id"])
                if not after:
                    return
                if int(after) >= SEARCH_CAP:
                    break  # HubSpot would refuse this page: restart past the last id (split only)
            if not split or last_id is None:
                return
            past = {"propertyName": "hs_object_id", "operator": "GT", "value": last_id}
            these_groups = [{**g, "filters": [*(g.get("filters") or []), past]} for g in groups] or [
                {"filters": [past]}
            ]
    finally:
        runner.close()
