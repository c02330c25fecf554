"""The CRM endpoints of the fake, as pure functions from a request to a status and JSON body.

Response shapes follow HubSpot's public API and the models generated from its OpenAPI specs
in the official Python SDK (``hubspot-api-client`` v12): ``SimplePublicObject``,
``CollectionResponseSimplePublicObjectWithAssociationsForwardPaging``,
``BatchResponseSimplePublicObject[WithErrors]``,
``CollectionResponseWithTotalSimplePublicObjectForwardPaging``,
``CollectionResponseMultiAssociatedObjectWithLabelForwardPaging`` and
``BatchResponsePublicAssociationMultiWithLabel[WithErrors]``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlencode

from ._data import (
    ASSOCIATION_TYPE_IDS,
    DATETIME_PROPERTIES,
    NUMBER_PROPERTIES,
    SEARCHABLE_TEXT,
    SINGULAR,
    CrmObject,
    Dataset,
    iso_millis,
    parse_datetime_millis,
)

__all__ = ["ApiResult", "CrmApi", "RawJson", "error_body", "is_search", "to_json"]

LIST_LIMIT_MAX = 100
LIST_LIMIT_DEFAULT = 10
BATCH_READ_MAX = 100
SEARCH_LIMIT_MAX = 200
SEARCH_LIMIT_DEFAULT = 10
SEARCH_RESULT_CAP = 10_000
SEARCH_MAX_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 6
SEARCH_MAX_FILTERS = 18
V4_LIMIT_MAX = 500
V4_BATCH_MAX = 1_000

_SEG = r"([^/]+)"
_LIST = re.compile(rf"^/crm/v3/objects/{_SEG}/?$")
_GET = re.compile(rf"^/crm/v3/objects/{_SEG}/{_SEG}$")
_BATCH_READ = re.compile(rf"^/crm/v3/objects/{_SEG}/batch/read$")
_SEARCH = re.compile(rf"^/crm/v3/objects/{_SEG}/search$")
_V4_GET = re.compile(rf"^/crm/v4/objects/{_SEG}/{_SEG}/associations/{_SEG}$")
_V4_BATCH = re.compile(rf"^/crm/v4/associations/{_SEG}/{_SEG}/batch/read$")


def is_search(method: str, path: str) -> bool:
    """Whether ``method path`` is a CRM search request (``POST /crm/v3/objects/{type}/search``)."""
    return method == "POST" and _SEARCH.match(path) is not None


#: ``to_json(value)``: ``value`` as the compact JSON the fake sends, what ``json.dumps(value,
#: separators=(",", ":"))`` gives (one encoder, not one built per call).
to_json: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(frozen=True)
class RawJson:
    """A body already encoded by :func:`to_json` (or assembled from its pieces), sent as is."""

    text: str


@dataclass(frozen=True)
class ApiResult:
    """An HTTP status and the JSON value to send as the body (or a :class:`RawJson`)."""

    status: int
    body: Any


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's error shape: ``status``, ``message``, ``correlationId``, ``category`` + extras."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
    }
    body.update(extra)
    return body


class _BadRequest(Exception):
    """A request the API answers with 400 VALIDATION_ERROR."""


def _validation(message: str) -> ApiResult:
    return ApiResult(400, error_body(message, "VALIDATION_ERROR"))


def _unknown_type(name: str) -> ApiResult:
    return _validation(f"Unable to infer object type from: {name}")


def _now_iso() -> str:
    return iso_millis(int(time.time() * 1000))


class CrmApi:
    """Answers CRM requests from a :class:`Dataset`.

    ``base_url`` returns the fake's base URL, used in ``paging.next.link``.
    """

    def __init__(self, dataset: Dataset, base_url: Callable[[], str]) -> None:
        self.dataset = dataset
        self._base_url = base_url
        # (from type, to type) -> {from id: (has associations, its encoded result or error)}, for
        # the v4 batch read. Built up front for every pair HubSpot defines (~20 ms for the
        # default dataset), so no request pays for it; other pairs on first use.
        self._v4_tables: dict[tuple[str, str], Mapping[str, tuple[bool, str]]] = {}
        for from_type, to_type in ASSOCIATION_TYPE_IDS:
            self._v4_table(from_type, to_type)

    # ------------------------------------------------------------------ routing
    def handle(self, method: str, path: str, query: Mapping[str, list[str]], body: bytes) -> ApiResult:
        """Answer one request. ``path`` has no query string; ``query`` is ``parse_qs`` output."""
        routes: list[tuple[str, re.Pattern[str], Callable[..., ApiResult]]] = [
            ("POST", _BATCH_READ, self._batch_read),
            ("POST", _SEARCH, self._search),
            ("GET", _LIST, self._list),
            ("GET", _GET, self._get),
            ("GET", _V4_GET, self._v4_get),
            ("POST", _V4_BATCH, self._v4_batch_read),
        ]
        path_matched = False
        for route_method, pattern, handler in routes:
            match = pattern.match(path)
            if match is None:
                continue
            path_matched = True
            if method != route_method:
                continue
            args = [unquote(g) for g in match.groups()]
            try:
                if route_method == "GET":
                    return handler(*args, query=query)
                return handler(*args, payload=_json_payload(body), query=query)
            except _BadRequest as exc:
                return _validation(str(exc))
        if path_matched:
            return ApiResult(
                405, error_body(f"HTTP {method} is not supported by this endpoint", "VALIDATION_ERROR")
            )
        return ApiResult(
            404, {"status": "error", "message": "resource not found", "correlationId": str(uuid.uuid4())}
        )

    # ------------------------------------------------------------------ v3 objects
    def _list(self, type_name: str, *, query: Mapping[str, list[str]]) -> ApiResult:
        object_type = self.dataset.resolve_type(type_name)
        if object_type is None:
            return _unknown_type(type_name)
        limit = min(_int_param(query, "limit", LIST_LIMIT_DEFAULT, minimum=1), LIST_LIMIT_MAX)
        after = _int_param(query, "after", 0, minimum=0)
        properties = _multi(query, "properties")
        associations = _multi(query, "associations")
        if _flag(query, "archived"):
            return ApiResult(200, {"results": []})
        page, next_after = self.dataset.page_after(object_type, after, limit)
        body: dict[str, Any] = {"results": [self._object_json(o, properties, associations) for o in page]}
        if next_after is not None:
            link_query = {k: v for k, v in query.items() if k != "after"}
            link_query["after"] = [str(next_after)]
            link = f"{self._base_url()}/crm/v3/objects/{type_name}?{urlencode(link_query, doseq=True)}"
            body["paging"] = {"next": {"after": str(next_after), "link": link}}
        return ApiResult(200, body)

    def _get(self, type_name: str, object_id: str, *, query: Mapping[str, list[str]]) -> ApiResult:
        object_type = self.dataset.resolve_type(type_name)
        if object_type is None:
            return _unknown_type(type_name)
        id_property = _single(query, "idProperty")
        obj = self._find(object_type, object_id, id_property)
        if obj is None:
            return ApiResult(404, _not_found(object_id))
        return ApiResult(
            200, self._object_json(obj, _multi(query, "properties"), _multi(query, "associations"))
        )

    def _batch_read(self, type_name: str, *, payload: Any, query: Mapping[str, list[str]]) -> ApiResult:
        object_type = self.dataset.resolve_type(type_name)
        if object_type is None:
            return _unknown_type(type_name)
        inputs = _inputs(payload)
        if len(inputs) > BATCH_READ_MAX:
            raise _BadRequest(f"Too many inputs: {len(inputs)}. The maximum batch size is {BATCH_READ_MAX}.")
        properties = _string_list(payload, "properties")
        id_property = payload.get("idProperty")
        if id_property is not None and not isinstance(id_property, str):
            raise _BadRequest("idProperty must be a string")
        started = _now_iso()
        results: list[dict[str, Any]] = []
        missing: list[str] = []
        seen: set[str] = set()
        for raw in inputs:
            key = _input_id(raw)
            if key in seen:
                continue
            seen.add(key)
            obj = self._find(object_type, key, id_property)
            if obj is None:
                missing.append(key)
            else:
                results.append(obj.to_json(properties))
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": _now_iso(),
        }
        if not missing:
            return ApiResult(200, body)
        body["numErrors"] = 1
        body["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {SINGULAR[object_type].upper()} objects, they may be deleted "
                "or not exist. Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return ApiResult(207, body)

    def _search(self, type_name: str, *, payload: Any, query: Mapping[str, list[str]]) -> ApiResult:
        object_type = self.dataset.resolve_type(type_name)
        if object_type is None:
            return _unknown_type(type_name)
        limit = _int_value(payload.get("limit", SEARCH_LIMIT_DEFAULT), "limit")
        if limit < 0 or limit > SEARCH_LIMIT_MAX:
            raise _BadRequest(f"limit must be between 0 and {SEARCH_LIMIT_MAX}, got {limit}")
        after = _int_value(payload.get("after") or 0, "after")
        if after < 0:
            raise _BadRequest("after must be >= 0")
        if after >= SEARCH_RESULT_CAP:
            # HubSpot: "The search endpoints are limited to 10,000 total results for any given
            # query. Attempting to page beyond 10,000 will result in a 400 error."
            raise _BadRequest(
                f"The search endpoints are limited to {SEARCH_RESULT_CAP} total results; "
                f"paging beyond them (after={after}) is not allowed."
            )
        groups = _filter_groups(payload.get("filterGroups"))
        text = payload.get("query")
        if text is not None and not isinstance(text, str):
            raise _BadRequest("query must be a string")
        properties = _string_list(payload, "properties")
        sort_key = _sort(payload.get("sorts"))

        matches = [
            o
            for o in self.dataset.objects(object_type)
            if (not groups or any(all(_matches(o, f) for f in group) for group in groups))
            and (not text or _query_matches(o, text))
        ]
        if sort_key is not None:
            name, descending = sort_key
            present = [o for o in matches if o.properties.get(name) is not None]
            absent = [o for o in matches if o.properties.get(name) is None]
            present.sort(
                key=lambda o: (_typed(name, o.properties[name] or ""), int(o.id)), reverse=descending
            )
            matches = present + absent
        total = len(matches)
        end = min(after + limit, SEARCH_RESULT_CAP)
        body: dict[str, Any] = {
            "total": total,
            "results": [o.to_json(properties) for o in matches[after:end]],
        }
        if after + limit < total:
            body["paging"] = {"next": {"after": str(after + limit)}}
        return ApiResult(200, body)

    # ------------------------------------------------------------------ v4 associations
    def _v4_get(
        self, from_name: str, object_id: str, to_name: str, *, query: Mapping[str, list[str]]
    ) -> ApiResult:
        from_type = self.dataset.resolve_type(from_name)
        to_type = self.dataset.resolve_type(to_name)
        if from_type is None:
            return _unknown_type(from_name)
        if to_type is None:
            return _unknown_type(to_name)
        limit = min(_int_param(query, "limit", V4_LIMIT_MAX, minimum=1), V4_LIMIT_MAX)
        after = _int_param(query, "after", 0, minimum=0)
        targets = self.dataset.associated(from_type, object_id, to_type)
        body: dict[str, Any] = {
            "results": [self._v4_target(from_type, to_type, t) for t in targets[after : after + limit]]
        }
        if after + limit < len(targets):
            next_after = str(after + limit)
            link = (
                f"{self._base_url()}/crm/v4/objects/{from_name}/{object_id}/associations/{to_name}"
                f"?{urlencode({'after': next_after, 'limit': limit})}"
            )
            body["paging"] = {"next": {"after": next_after, "link": link}}
        return ApiResult(200, body)

    def _v4_batch_read(
        self, from_name: str, to_name: str, *, payload: Any, query: Mapping[str, list[str]]
    ) -> ApiResult:
        from_type = self.dataset.resolve_type(from_name)
        to_type = self.dataset.resolve_type(to_name)
        if from_type is None:
            return _unknown_type(from_name)
        if to_type is None:
            return _unknown_type(to_name)
        inputs = _inputs(payload)
        if len(inputs) > V4_BATCH_MAX:
            raise _BadRequest(f"Too many inputs: {len(inputs)}. The maximum batch size is {V4_BATCH_MAX}.")
        started = _now_iso()
        results: list[str] = []
        errors: list[str] = []
        seen: set[str] = set()
        for raw in inputs:
            key = _input_id(raw)
            if key in seen:
                continue
            seen.add(key)
            found, text = self._v4_entry(from_type, to_type, key)
            (results if found else errors).append(text)
        # The keys in the order a dict of them would be dumped: status, results, startedAt,
        # completedAt[, numErrors, errors].
        head = f'{{"status":"COMPLETE","results":[{",".join(results)}],"startedAt":{to_json(started)}'
        tail = f',"completedAt":{to_json(_now_iso())}'
        if not errors:
            return ApiResult(200, RawJson(head + tail + "}"))
        failed = f',"numErrors":{len(errors)},"errors":[{",".join(errors)}]'
        return ApiResult(207, RawJson(head + tail + failed + "}"))

    def _v4_entry(self, from_type: str, to_type: str, key: str) -> tuple[bool, str]:
        """Whether ``key`` has ``to_type`` associations, and its batch result (or error) encoded."""
        entry = self._v4_table(from_type, to_type).get(key)
        return self._v4_encoder(from_type, to_type)(key) if entry is None else entry

    def _v4_table(self, from_type: str, to_type: str) -> Mapping[str, tuple[bool, str]]:
        """:meth:`_v4_entry` of every ``from_type`` object, built once per pair (the dataset never
        changes): a batch of 1,000 is then a join, not 1,000 dicts and a dumps."""
        table = self._v4_tables.get((from_type, to_type))
        if table is None:
            encode = self._v4_encoder(from_type, to_type)
            table = {key: encode(key) for key in self.dataset.ids(from_type)}
            self._v4_tables[(from_type, to_type)] = table  # one item set: atomic; a race builds twice
        return table

    def _v4_encoder(self, from_type: str, to_type: str) -> Callable[[str], tuple[bool, str]]:
        """For one pair: ``key`` -> (has associations, ``to_json`` of ``{"from": {"id": key},
        "to": [_v4_target(...), ...]}`` or of the error for an object without any), written out
        piece by piece."""
        associated = self.dataset.associated
        types = to_json(self._v4_target(from_type, to_type, "0")["associationTypes"])
        link = '{"toObjectId":%d,"associationTypes":' + types.replace("%", "%%") + "}"
        source, target = SINGULAR[from_type], SINGULAR[to_type]
        error = ('{"status":"error","category":"OBJECT_NOT_FOUND","subCategory":'
                 '"crm.associations.NO_ASSOCIATIONS_FOUND","message":%s,"context":{"fromObjectId":[%s],'
                 f'"fromObjectType":["{source}"],"toObjectType":["{target}"]}}}}')  # fmt: skip

        def encode(key: str) -> tuple[bool, str]:
            targets = associated(from_type, key, to_type)
            if targets:
                links = ",".join([link % int(t) for t in targets])
                return True, f'{{"from":{{"id":{to_json(key)}}},"to":[{links}]}}'
            message = to_json(f"No {target} is associated with {source} {key}.")
            return False, error % (message, to_json(key))

        return encode

    # ------------------------------------------------------------------ helpers
    def _find(self, object_type: str, key: str, id_property: str | None) -> CrmObject | None:
        if id_property is None or id_property == "hs_object_id":
            return self.dataset.get(object_type, key)
        for obj in self.dataset.objects(object_type):
            if obj.properties.get(id_property) == key:
                return obj
        return None

    def _object_json(
        self, obj: CrmObject, properties: tuple[str, ...] | None, associations: tuple[str, ...] | None
    ) -> dict[str, Any]:
        body = obj.to_json(properties)
        if associations:
            inline: dict[str, Any] = {}
            for name in associations:
                to_type = self.dataset.resolve_type(name)
                if to_type is None or to_type in inline:
                    continue
                ids = self.dataset.associated(obj.object_type, obj.id, to_type)
                if ids:
                    kind = f"{SINGULAR[obj.object_type]}_to_{SINGULAR[to_type]}"
                    inline[to_type] = {"results": [{"id": i, "type": kind} for i in ids]}
            if inline:
                body["associations"] = inline
        return body

    def _v4_target(self, from_type: str, to_type: str, to_id: str) -> dict[str, Any]:
        type_id = self.dataset.association_type_id(from_type, to_type)
        types = [] if type_id is None else [{"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": None}]
        return {"toObjectId": int(to_id), "associationTypes": types}


# ---------------------------------------------------------------------- parsing helpers
def _not_found(object_id: str) -> dict[str, Any]:
    return error_body(
        "Object not found.  objectId are usually numeric.", "OBJECT_NOT_FOUND", context={"id": [object_id]}
    )


def _json_payload(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _BadRequest(f"Invalid input JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _BadRequest("Invalid input JSON: expected an object")
    return value


def _multi(query: Mapping[str, list[str]], name: str) -> tuple[str, ...] | None:
    if name not in query:
        return None
    values: list[str] = []
    for raw in query[name]:
        values.extend(p.strip() for p in raw.split(",") if p.strip())
    return tuple(values)


def _single(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    return (_single(query, name) or "").lower() == "true"


def _int_param(query: Mapping[str, list[str]], name: str, default: int, *, minimum: int) -> int:
    raw = _single(query, name)
    if raw is None or raw == "":
        return default
    value = _int_value(raw, name)
    if value < minimum:
        raise _BadRequest(f"{name} must be >= {minimum}, got {value}")
    return value


def _int_value(raw: object, name: str) -> int:
    if isinstance(raw, bool):
        raise _BadRequest(f"{name} must be an integer")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise _BadRequest(f"{name} must be an integer, got {raw!r}")


def _inputs(payload: Mapping[str, Any]) -> list[Any]:
    inputs = payload.get("inputs")
    if not isinstance(inputs, list):
        raise _BadRequest("inputs must be a list")
    return inputs


def _input_id(raw: Any) -> str:
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
    raise _BadRequest(f"each input must be an object with an id, got {raw!r}")


def _string_list(payload: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _BadRequest(f"{name} must be a list of strings")
    return tuple(value)


@dataclass(frozen=True)
class _Filter:
    property_name: str
    operator: str
    value: str | None
    high_value: str | None
    values: tuple[str, ...]


_OPERATORS = frozenset(
    {
        "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
        "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
    }
)  # fmt: skip


def _filter_groups(raw: Any) -> list[list[_Filter]]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _BadRequest("filterGroups must be a list")
    if len(raw) > SEARCH_MAX_GROUPS:
        raise _BadRequest(f"Too many filter groups: {len(raw)}; the maximum is {SEARCH_MAX_GROUPS}")
    groups: list[list[_Filter]] = []
    total = 0
    for group in raw:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise _BadRequest("each filter group must have a filters list")
        if len(filters) > SEARCH_MAX_FILTERS_PER_GROUP:
            raise _BadRequest(
                f"Too many filters in a group: {len(filters)}; the maximum is {SEARCH_MAX_FILTERS_PER_GROUP}"
            )
        total += len(filters)
        groups.append([_parse_filter(f) for f in filters])
    if total > SEARCH_MAX_FILTERS:
        raise _BadRequest(f"Too many filters: {total}; the maximum is {SEARCH_MAX_FILTERS}")
    return groups


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _parse_filter(raw: Any) -> _Filter:
    if not isinstance(raw, dict):
        raise _BadRequest("each filter must be an object")
    name = raw.get("propertyName")
    operator = raw.get("operator")
    if not isinstance(name, str) or not name:
        raise _BadRequest("filter propertyName is required")
    if operator not in _OPERATORS:
        raise _BadRequest(f"Unknown filter operator: {operator!r}")
    values_raw = raw.get("values") or []
    if not isinstance(values_raw, list):
        raise _BadRequest("filter values must be a list")
    values = tuple(v for v in (_scalar(x) for x in values_raw) if v is not None)
    value = _scalar(raw.get("value"))
    needs_value = operator in {
        "EQ",
        "NEQ",
        "LT",
        "LTE",
        "GT",
        "GTE",
        "BETWEEN",
        "CONTAINS_TOKEN",
        "NOT_CONTAINS_TOKEN",
    }
    if needs_value and value is None:
        raise _BadRequest(f"filter on {name} with operator {operator} needs a value")
    if operator == "BETWEEN" and raw.get("highValue") is None:
        raise _BadRequest(f"filter on {name} with operator BETWEEN needs a highValue")
    if operator in {"IN", "NOT_IN"} and not values:
        raise _BadRequest(f"filter on {name} with operator {operator} needs values")
    return _Filter(name, str(operator), value, _scalar(raw.get("highValue")), values)


def _typed(name: str, value: str) -> tuple[int, float, str]:
    """A sort/compare key: instants and numbers numerically, other values case-insensitively."""
    if name in DATETIME_PROPERTIES:
        millis = parse_datetime_millis(value)
        if millis is not None:
            return (0, float(millis), "")
    if name in NUMBER_PROPERTIES:
        try:
            return (0, float(value), "")
        except ValueError:
            pass
    return (1, 0.0, value.lower())


def _matches(obj: CrmObject, flt: _Filter) -> bool:
    actual = obj.properties.get(flt.property_name)
    op = flt.operator
    if op == "HAS_PROPERTY":
        return actual is not None
    if op == "NOT_HAS_PROPERTY":
        return actual is None
    if op in {"NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN"}:
        if actual is None:
            return True
        positive = {"NEQ": "EQ", "NOT_IN": "IN", "NOT_CONTAINS_TOKEN": "CONTAINS_TOKEN"}[op]
        return not _matches(obj, _Filter(flt.property_name, positive, flt.value, flt.high_value, flt.values))
    if actual is None:
        return False
    key = _typed(flt.property_name, actual)
    if op == "IN":
        return any(key == _typed(flt.property_name, v) for v in flt.values)
    assert flt.value is not None
    if op == "CONTAINS_TOKEN":
        token = flt.value.strip("*").lower()
        return token in actual.lower()
    other = _typed(flt.property_name, flt.value)
    if op == "EQ":
        return key == other
    if op == "BETWEEN":
        assert flt.high_value is not None
        return other <= key <= _typed(flt.property_name, flt.high_value)
    comparisons: dict[str, Callable[[tuple[int, float, str], tuple[int, float, str]], bool]] = {
        "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b,
        "GT": lambda a, b: a > b,
        "GTE": lambda a, b: a >= b,
    }
    return comparisons[op](key, other)


def _query_matches(obj: CrmObject, text: str) -> bool:
    needle = text.strip().lower()
    return any(needle in (obj.properties.get(p) or "").lower() for p in SEARCHABLE_TEXT[obj.object_type])


def _sort(raw: Any) -> tuple[str, bool] | None:
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise _BadRequest("sorts must be a list")
    if not raw:
        return None
    first: Any = raw[0]  # "Only one sorting rule can be applied to any search."
    if isinstance(first, str):
        return (first[1:], True) if first.startswith("-") else (first, False)
    if isinstance(first, dict) and isinstance(first.get("propertyName"), str):
        direction = first.get("direction", "ASCENDING")
        if direction not in {"ASCENDING", "DESCENDING"}:
            raise _BadRequest(f"sort direction must be ASCENDING or DESCENDING, got {direction!r}")
        return first["propertyName"], direction == "DESCENDING"
    raise _BadRequest("each sort must be a property name or an object with propertyName")
