"""REST routing for :class:`FakeSalesforce`: every resource under ``/services/data/vXX.X/``.

The router is HTTP-agnostic: it maps (method, path, params, JSON body) to a :class:`Resp`.
Composite, Composite Batch and sObject Collections dispatch their subrequests back through
:meth:`Api.dispatch`, so a subrequest gets exactly the answer the same call would get alone.
Allocation accounting is not done here, except for Composite Batch, whose subrequests each
count (the caller passes a ``charge`` callback).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ratewindow_salesforce.testing._bulk import Bulk2
from ratewindow_salesforce.testing._data import ApiError, OrgData, Txn, make_id, not_found

__all__ = ["Api", "Resp", "version_label"]

#: Subrequest limits (Salesforce REST API Developer Guide: Composite, Composite Batch, sObject Collections).
COMPOSITE_MAX_SUBREQUESTS = 25
COMPOSITE_MAX_QUERY_SUBREQUESTS = 5
BATCH_MAX_SUBREQUESTS = 25
COLLECTION_MAX_RECORDS = 200
COLLECTION_MAX_RETRIEVE_IDS = 2000
QUERY_BATCH_SIZE = 2000
_MAX_CURSORS = 500

_HALTED_MESSAGE = "The transaction was rolled back since another operation in the same transaction failed."
_ROLLED_BACK_MESSAGE = (
    "Record rolled back because not all records were valid and the request was using AllOrNone header"
)
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_REFERENCE_ID = re.compile(r"^[A-Za-z0-9_]{1,80}$")


def version_label(version: str) -> str:
    """Release name of an API version, e.g. ``"59.0"`` -> ``"Winter '24"`` (from 32.0 = Winter '15)."""
    major = int(float(version))
    if major < 32:
        return "Summer '14" if major == 31 else f"v{version}"
    offset = major - 32
    season = ("Winter", "Spring", "Summer")[offset % 3]
    return f"{season} '{15 + offset // 3:02d}"


@dataclass
class Resp:
    """A REST answer: status, JSON-able body (``None`` = empty) and extra headers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def error_code(self) -> str | None:
        """First ``errorCode`` of an error body."""
        body = self.body
        if isinstance(body, list) and body and isinstance(body[0], dict):
            code = body[0].get("errorCode")
            return str(code) if code is not None else None
        if isinstance(body, dict) and body.get("exceptionCode") is not None:  # Bulk API 1.0
            return str(body["exceptionCode"])
        return None


def _error(exc: ApiError) -> Resp:
    return Resp(exc.status, exc.body())


def _err(status: int, code: str, message: str) -> Resp:
    return _error(ApiError(status, code, message))


@dataclass
class _Cursor:
    records: list[dict[str, Any]]
    batch: int


ChargeFn = Callable[[], "Resp | None"]


class Api:
    """The fake org's REST API.

    ``limits`` returns the body of ``/limits``; ``versions`` lists the served API versions.
    Callers must serialise :meth:`dispatch` (the fake holds ``data.lock`` around it).
    """

    def __init__(self, data: OrgData, versions: list[str], limits: Callable[[], dict[str, Any]]) -> None:
        self.data = data
        self.versions = versions
        self.latest = versions[-1]
        self._limits = limits
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._cursor_counter = 0
        #: Bulk API 2.0 jobs (``/jobs/``), when the fake serves them.
        self.bulk2: Bulk2 | None = None

    # -- entry points --------------------------------------------------------------------------

    def versions_body(self) -> list[dict[str, str]]:
        """Body of ``GET /services/data/``."""
        return [
            {"label": version_label(version), "url": f"/services/data/v{version}", "version": version}
            for version in self.versions
        ]

    def dispatch(
        self,
        method: str,
        path: str,
        params: Mapping[str, list[str]],
        body: Any,
        *,
        headers: Mapping[str, str] | None = None,
        charge: ChargeFn | None = None,
        txn: Txn | None = None,
        nested: bool = False,
    ) -> Resp:
        """Answer one REST call; ``path`` starts with ``/services/data/vXX.X``."""
        try:
            return self._dispatch(method.upper(), path, params, body, headers or {}, charge, txn, nested)
        except ApiError as exc:
            return _error(exc)

    # -- routing -------------------------------------------------------------------------------

    def _version(self, segment: str) -> str:
        if segment == "latest":
            return self.latest
        if segment.startswith("v") and segment[1:] in self.versions:
            return segment[1:]
        raise not_found()

    def _dispatch(
        self,
        method: str,
        path: str,
        params: Mapping[str, list[str]],
        body: Any,
        headers: Mapping[str, str],
        charge: ChargeFn | None,
        txn: Txn | None,
        nested: bool,
    ) -> Resp:
        parts = [part for part in path.split("/") if part]
        if len(parts) < 3 or parts[0] != "services" or parts[1] != "data":
            raise not_found()
        version = self._version(parts[2])
        rest = parts[3:]
        tooling = False
        if rest and rest[0] == "tooling":
            tooling = True
            rest = rest[1:]
            if rest and rest[0] not in ("query", "sobjects"):
                raise not_found()
        if not rest:
            self._allow(method, "GET")
            return Resp(200, self._resources(version, tooling))
        head = rest[0]
        if head == "limits" and len(rest) == 1 and not tooling:
            self._allow(method, "GET")
            return Resp(200, self._limits())
        if head == "sobjects":
            return self._sobjects(method, rest[1:], params, body, version, tooling, txn)
        if head in ("query", "queryAll"):
            self._allow(method, "GET")
            return self._query(head, rest[1:], params, headers, version, tooling)
        if head == "composite" and not tooling:
            return self._composite(method, rest[1:], params, body, version, charge, txn, nested)
        if head == "jobs" and not tooling and not nested and self.bulk2 is not None:
            status, answer, extra = self.bulk2.dispatch(method, rest[1:], params, body, version)
            return Resp(status, answer, extra)
        raise not_found()

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}",
            )

    def _resources(self, version: str, tooling: bool) -> dict[str, str]:
        base = f"/services/data/v{version}"
        if tooling:
            return {"query": f"{base}/tooling/query", "sobjects": f"{base}/tooling/sobjects"}
        names = (
            "tooling",
            "metadata",
            "eclair",
            "folders",
            "chatter",
            "tabs",
            "appMenu",
            "quickActions",
            "queryAll",
            "analytics",
            "search",
            "composite",
            "parameterizedSearch",
            "theme",
            "nouns",
            "event",
            "recent",
            "connect",
            "licensing",
            "limits",
            "process",
            "query",
            "compactLayouts",
            "sobjects",
            "actions",
            "support",
        )
        return {name: f"{base}/{name}" for name in names}

    # -- sobjects ------------------------------------------------------------------------------

    def _sobjects(
        self,
        method: str,
        rest: list[str],
        params: Mapping[str, list[str]],
        body: Any,
        version: str,
        tooling: bool,
        txn: Txn | None,
    ) -> Resp:
        data = self.data
        if not rest:
            self._allow(method, "GET")
            return Resp(200, data.global_describe(version, tooling=tooling))
        name = rest[0]
        if len(rest) == 1:
            self._allow(method, "GET", "POST")
            if method == "GET":
                return Resp(200, data.basic_info(name, version, tooling=tooling))
            if tooling:
                raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", "The fake's Tooling API is read-only")
            return self._create(name, body, version, txn)
        if len(rest) == 2 and rest[1] == "describe":
            self._allow(method, "GET")
            return Resp(200, data.describe(name, version, tooling=tooling))
        if len(rest) == 2:
            record_id = rest[1]
            self._allow(method, "GET", "PATCH", "DELETE")
            if method == "GET":
                fields = _csv(params.get("fields"))
                return Resp(200, data.get_record(name, record_id, version, fields or None, tooling=tooling))
            if tooling:
                raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", "The fake's Tooling API is read-only")
            if data.table(name) is None:
                raise not_found()
            if method == "PATCH":
                data.update(name, record_id, _require_object(body), txn)
                return Resp(204)
            data.delete(name, record_id, txn)
            return Resp(204)
        raise not_found()

    def _create(self, name: str, body: Any, version: str, txn: Txn | None) -> Resp:
        record_id = self.data.create(name, _require_object(body), txn)
        table = self.data.table(name)
        canonical = table.name if table is not None else name
        return Resp(
            201,
            {"id": record_id, "success": True, "errors": []},
            {"Location": f"/services/data/v{version}/sobjects/{canonical}/{record_id}"},
        )

    # -- query ---------------------------------------------------------------------------------

    def _query(
        self,
        endpoint: str,
        rest: list[str],
        params: Mapping[str, list[str]],
        headers: Mapping[str, str],
        version: str,
        tooling: bool,
    ) -> Resp:
        area = "tooling/" if tooling else ""
        if rest:
            if len(rest) != 1 or "-" not in rest[0]:
                raise not_found()
            locator, _, offset_text = rest[0].rpartition("-")
            cursor = self._cursors.get(locator)
            if cursor is None or not offset_text.isdigit():
                raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            self._cursors.move_to_end(locator)
            return Resp(200, self._page(cursor, locator, int(offset_text), f"{version}/{area}{endpoint}"))
        soql = (params.get("q") or [""])[0]
        if not soql.strip():
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        outcome = self.data.query(soql, version, tooling=tooling, include_deleted=endpoint == "queryAll")
        batch = _batch_size(headers)
        if len(outcome.records) <= batch:
            return Resp(200, {"totalSize": outcome.total_size, "done": True, "records": outcome.records})
        self._cursor_counter += 1
        locator = make_id("01g", self._cursor_counter)
        cursor = _Cursor(outcome.records, batch)
        self._cursors[locator] = cursor
        while len(self._cursors) > _MAX_CURSORS:
            self._cursors.popitem(last=False)
        return Resp(200, self._page(cursor, locator, 0, f"{version}/{area}{endpoint}"))

    @staticmethod
    def _page(cursor: _Cursor, locator: str, offset: int, route: str) -> dict[str, Any]:
        records = cursor.records[offset : offset + cursor.batch]
        following = offset + cursor.batch
        body: dict[str, Any] = {"totalSize": len(cursor.records), "done": following >= len(cursor.records)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{route}/{locator}-{following}"
        body["records"] = records
        return body

    # -- composite family ----------------------------------------------------------------------

    def _composite(
        self,
        method: str,
        rest: list[str],
        params: Mapping[str, list[str]],
        body: Any,
        version: str,
        charge: ChargeFn | None,
        txn: Txn | None,
        nested: bool,
    ) -> Resp:
        base = f"/services/data/v{version}/composite"
        if not rest:
            self._allow(method, "GET", "POST")
            if method == "GET":
                return Resp(
                    200,
                    {
                        "batch": f"{base}/batch",
                        "sobjects": f"{base}/sobjects",
                        "tree": f"{base}/tree",
                        "graph": f"{base}/graph",
                    },
                )
            if nested:
                raise ApiError(400, "INVALID_API_INPUT", "A composite subrequest cannot call /composite")
            return self._composite_post(body)
        if rest == ["batch"]:
            self._allow(method, "POST")
            if nested:
                raise ApiError(
                    400, "INVALID_API_INPUT", "A composite subrequest cannot call /composite/batch"
                )
            return self._batch(body, charge)
        if rest[0] == "sobjects":
            return self._collections(method, rest[1:], params, body, version, txn)
        raise not_found()

    def _composite_post(self, body: Any) -> Resp:
        if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "compositeRequest is required and must be a list")
        subrequests: list[Any] = body["compositeRequest"]
        if not subrequests:
            raise ApiError(400, "INVALID_API_INPUT", "compositeRequest must contain at least one subrequest")
        if len(subrequests) > COMPOSITE_MAX_SUBREQUESTS:
            raise ApiError(
                400,
                "LIMIT_EXCEEDED",
                f"Composite request has {len(subrequests)} subrequests; the limit is "
                f"{COMPOSITE_MAX_SUBREQUESTS}.",
            )
        seen: set[str] = set()
        query_like = 0
        for sub in subrequests:
            if not isinstance(sub, dict) or not isinstance(sub.get("url"), str) or not sub.get("method"):
                raise ApiError(400, "JSON_PARSER_ERROR", "Each subrequest needs method, url and referenceId")
            ref = sub.get("referenceId")
            if not isinstance(ref, str) or not _REFERENCE_ID.match(ref):
                raise ApiError(400, "INVALID_API_INPUT", f"Invalid referenceId: {ref!r}")
            if ref in seen:
                raise ApiError(
                    400, "INVALID_API_INPUT", f"Duplicate referenceId provided in the request: {ref}"
                )
            seen.add(ref)
            sub_path = urlsplit(sub["url"]).path
            if re.search(r"/(query|queryAll)(/|$)|/composite/sobjects", sub_path):
                query_like += 1
        if query_like > COMPOSITE_MAX_QUERY_SUBREQUESTS:
            raise ApiError(
                400,
                "LIMIT_EXCEEDED",
                f"Composite request has {query_like} query or sObject Collections subrequests; the limit is "
                f"{COMPOSITE_MAX_QUERY_SUBREQUESTS}.",
            )
        all_or_none = bool(body.get("allOrNone", False))
        txn = Txn()
        refs: dict[str, Any] = {}
        failed_refs: set[str] = set()
        results: list[dict[str, Any]] = []
        failed = False
        for sub in subrequests:
            ref = sub["referenceId"]
            if failed and all_or_none:
                results.append(_halted(ref))
                continue
            try:
                url = _substitute_text(sub["url"], refs, failed_refs)
                sub_body = _substitute_json(sub.get("body"), refs, failed_refs)
            except ApiError as exc:
                resp = _error(exc)
            else:
                split = urlsplit(url)
                if not split.path.startswith("/services/data/"):
                    resp = _err(400, "INVALID_API_INPUT", f"Invalid subrequest url: {url}")
                else:
                    resp = self.dispatch(
                        str(sub["method"]),
                        split.path,
                        parse_qs(split.query, keep_blank_values=True),
                        sub_body,
                        headers=_string_map(sub.get("httpHeaders")),
                        txn=txn,
                        nested=True,
                    )
            if resp.status >= 400:
                failed = True
                failed_refs.add(ref)
            else:
                refs[ref] = resp.body
            results.append(
                {
                    "body": resp.body,
                    "httpHeaders": resp.headers,
                    "httpStatusCode": resp.status,
                    "referenceId": ref,
                }
            )
        if failed and all_or_none:
            self.data.rollback(txn)
            results = [
                result if result["httpStatusCode"] >= 400 else _halted(result["referenceId"])
                for result in results
            ]
        return Resp(200, {"compositeResponse": results})

    def _batch(self, body: Any, charge: ChargeFn | None) -> Resp:
        if not isinstance(body, dict) or not isinstance(body.get("batchRequests"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "batchRequests is required and must be a list")
        subrequests: list[Any] = body["batchRequests"]
        if not subrequests:
            raise ApiError(400, "INVALID_BATCH_REQUEST", "batchRequests must contain at least one subrequest")
        if len(subrequests) > BATCH_MAX_SUBREQUESTS:
            raise ApiError(
                400,
                "LIMIT_EXCEEDED",
                f"Batch request has {len(subrequests)} subrequests; the limit is {BATCH_MAX_SUBREQUESTS}.",
            )
        for sub in subrequests:
            if not isinstance(sub, dict) or not isinstance(sub.get("url"), str) or not sub.get("method"):
                raise ApiError(400, "INVALID_BATCH_REQUEST", "Each subrequest needs method and url")
        halt_on_error = bool(body.get("haltOnError", False))
        results: list[dict[str, Any]] = []
        halted = False
        has_errors = False
        for sub in subrequests:
            if halted:
                results.append(
                    {
                        "statusCode": 412,
                        "result": [
                            {
                                "errorCode": "BATCH_PROCESSING_HALTED",
                                "message": "Batch processing halted per request",
                            }
                        ],
                    }
                )
                continue
            refusal = charge() if charge is not None else None
            if refusal is not None:
                resp = refusal
            else:
                url = sub["url"]
                if not url.startswith("/"):
                    url = "/services/data/" + url
                split = urlsplit(url)
                resp = self.dispatch(
                    str(sub["method"]),
                    split.path,
                    parse_qs(split.query, keep_blank_values=True),
                    sub.get("richInput"),
                    nested=True,
                )
            if resp.status >= 400:
                has_errors = True
                halted = halt_on_error
            results.append({"statusCode": resp.status, "result": resp.body})
        return Resp(200, {"hasErrors": has_errors, "results": results})

    def _collections(
        self,
        method: str,
        rest: list[str],
        params: Mapping[str, list[str]],
        body: Any,
        version: str,
        txn: Txn | None,
    ) -> Resp:
        if rest:
            if len(rest) != 1:
                raise not_found()
            self._allow(method, "GET", "POST")
            if method == "GET":
                ids = _csv(params.get("ids"))
                fields = _csv(params.get("fields"))
            else:
                request = _require_object(body)
                ids = [str(value) for value in request.get("ids") or []]
                fields = [str(value) for value in request.get("fields") or []]
            if not ids:
                raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
            if len(ids) > COLLECTION_MAX_RETRIEVE_IDS:
                raise _too_many_records(COLLECTION_MAX_RETRIEVE_IDS)
            return Resp(200, self.data.retrieve_many(rest[0], ids, fields, version))
        self._allow(method, "POST", "PATCH", "DELETE")
        if method == "DELETE":
            ids = _csv(params.get("ids"))
            all_or_none = (params.get("allOrNone") or ["false"])[0].lower() == "true"
            items: list[Any] = ids
        else:
            request = _require_object(body)
            records = request.get("records")
            if not isinstance(records, list):
                raise ApiError(400, "JSON_PARSER_ERROR", "records is required and must be a list")
            items = records
            all_or_none = bool(request.get("allOrNone", False))
        if not items:
            raise ApiError(400, "MISSING_ARGUMENT", "no records or ids were provided")
        if len(items) > COLLECTION_MAX_RECORDS:
            raise _too_many_records(COLLECTION_MAX_RECORDS)
        own_txn = Txn()
        results: list[dict[str, Any]] = []
        for item in items:
            results.append(self._collection_item(method, item, own_txn))
        failed = any(not result["success"] for result in results)
        if failed and all_or_none:
            self.data.rollback(own_txn)
            results = [
                result
                if not result["success"]
                else {
                    "id": result.get("id"),
                    "success": False,
                    "errors": [
                        {
                            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                            "message": _ROLLED_BACK_MESSAGE,
                            "fields": [],
                        }
                    ],
                }
                for result in results
            ]
        elif txn is not None:
            txn.undo.extend(own_txn.undo)
        return Resp(200, results)

    def _collection_item(self, method: str, item: Any, txn: Txn) -> dict[str, Any]:
        record_id: str | None = None
        try:
            if method == "DELETE":
                record_id = str(item)
                self.data.delete(None, record_id, txn)
                return {"id": record_id, "success": True, "errors": []}
            if not isinstance(item, dict):
                raise ApiError(400, "INVALID_FIELD", "Each record must be a JSON object")
            attributes = item.get("attributes")
            sobject = attributes.get("type") if isinstance(attributes, dict) else None
            if method == "POST":
                if not sobject:
                    raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
                if item.get("id") or item.get("Id"):
                    raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call")
                record_id = self.data.create(str(sobject), item, txn)
                return {"id": record_id, "success": True, "errors": []}
            record_id = str(item.get("id") or item.get("Id") or "")
            if not record_id:
                raise ApiError(400, "MISSING_ARGUMENT", "Id not specified in an update call")
            values = {key: value for key, value in item.items() if key not in ("id", "Id")}
            self.data.update(
                str(sobject or self.data.sobject_for_id(record_id) or ""), record_id, values, txn
            )
            return {"id": record_id, "success": True, "errors": []}
        except ApiError as exc:
            entry: dict[str, Any] = {
                "success": False,
                "errors": [{"statusCode": exc.error_code, "message": exc.message, "fields": exc.fields}],
            }
            if record_id:
                entry = {"id": record_id, **entry}
            return entry


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _halted(reference_id: str) -> dict[str, Any]:
    return {
        "body": [{"errorCode": "PROCESSING_HALTED", "message": _HALTED_MESSAGE}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference_id,
    }


def _too_many_records(limit: int) -> ApiError:
    return ApiError(
        400,
        "EXCEEDED_ID_LIMIT",
        f"record limit reached. cannot submit more than {limit} records into this call",
    )


def _csv(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for value in values or []:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return body


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(key): str(item) for key, item in value.items()}


def _batch_size(headers: Mapping[str, str]) -> int:
    options = next((value for key, value in headers.items() if key.lower() == "sforce-query-options"), "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    if match is None:
        return QUERY_BATCH_SIZE
    return max(200, min(QUERY_BATCH_SIZE, int(match.group(1))))


def _resolve_reference(match: re.Match[str], refs: Mapping[str, Any], failed: set[str]) -> Any:
    ref_id, path = match.group(1), match.group(2)
    expression = match.group(0)
    if ref_id not in refs:
        reason = "refers to a subrequest that failed" if ref_id in failed else "was not found"
        raise ApiError(
            400,
            "PROCESSING_HALTED",
            f"Invalid reference specified. No value for {expression[2:-1]} found in {ref_id}. "
            f"Provided referenceId ('{ref_id}') {reason}.",
        )
    value: Any = refs[ref_id]
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        key, index = step
        try:
            value = value[int(index)] if index else value[key]
        except (KeyError, IndexError, TypeError):
            raise ApiError(
                400,
                "PROCESSING_HALTED",
                f"Invalid reference specified. No value for {expression[2:-1]} found in {ref_id}.",
            ) from None
    return value


def _substitute_text(text: str, refs: Mapping[str, Any], failed: set[str]) -> str:
    return _REFERENCE.sub(lambda match: str(_resolve_reference(match, refs, failed)), text)


def _substitute_json(value: Any, refs: Mapping[str, Any], failed: set[str]) -> Any:
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        if whole is not None:
            return _resolve_reference(whole, refs, failed)
        return _substitute_text(value, refs, failed)
    if isinstance(value, list):
        return [_substitute_json(item, refs, failed) for item in value]
    if isinstance(value, dict):
        return {key: _substitute_json(item, refs, failed) for key, item in value.items()}
    return value
