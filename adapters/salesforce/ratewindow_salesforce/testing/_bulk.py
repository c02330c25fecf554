"""Bulk API 2.0 for :class:`FakeSalesforce`: query jobs and ingest jobs under ``/services/data/vXX.X/jobs/``.

Resources (Bulk API 2.0 and Bulk API Developer Guide): ``POST jobs/query`` creates a query job,
``GET jobs/query/{id}`` reports its state, ``GET jobs/query/{id}/results`` returns its records as
CSV (``maxRecords``, ``locator``; headers ``Sforce-NumberOfRecords`` and ``Sforce-Locator``),
``PATCH`` aborts and ``DELETE`` deletes it. ``POST jobs/ingest`` creates an ingest job (``Open``),
``PUT jobs/ingest/{id}/batches`` uploads its CSV (201), ``PATCH jobs/ingest/{id}`` with
``{"state": "UploadComplete"}`` closes it, and ``successfulResults`` / ``failedResults`` /
``unprocessedrecords`` return the outcome per record.

Time is counted in polls, not seconds: a job reports ``InProgress`` to its first
``job_polls - 1`` status requests and ``JobComplete`` from the ``job_polls``-th on (1: at once),
so a test can say exactly how many polls a job takes. Ingest data is applied to the org when the
job is closed; each row is an insert, update or delete of the fake's data. Every closed ingest job
counts ``ceil(records / 10,000)`` batches (Salesforce creates a batch per 10,000 records; the
empty parent batch does not count) and every query job one query job, through ``on_query_job``
and ``on_batches``; the fake reports them in ``/limits`` but never refuses on them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ratewindow_salesforce.testing import _soql
from ratewindow_salesforce.testing._data import ApiError, OrgData, make_id, not_found, now_iso

__all__ = ["RECORDS_PER_BATCH", "Bulk2"]

#: Records per batch Salesforce creates when it processes an ingest job's data.
RECORDS_PER_BATCH = 10_000

_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_QUERY_OPERATIONS = ("query", "queryAll")
_INGEST_OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
_TERMINAL = ("JobComplete", "Failed", "Aborted")
_CSV_TYPE = "text/csv"


@dataclass
class _Job:
    id: str
    kind: str  # "query" or "ingest"
    operation: str
    object: str
    version: str
    delimiter: str
    line_ending: str
    state: str
    created: str
    query: str = ""
    external_id: str | None = None
    polls: int = 0  # status requests since the job was queued
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)  # query results, or the uploaded rows
    uploaded: bool = False
    processed: bool = False
    successes: list[tuple[str, bool, list[str]]] = field(default_factory=list)  # (id, created, row)
    failures: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (id, error, row)
    error: str | None = None


class Bulk2:
    """The fake org's Bulk API 2.0 jobs. Callers serialise :meth:`dispatch` (``data.lock``)."""

    def __init__(self, data: OrgData, job_polls: int, on_query_job: Callable[[], None],
                 on_batches: Callable[[int], None]) -> None:
        self.data = data
        self.job_polls = job_polls
        self._on_query_job = on_query_job
        self._on_batches = on_batches
        self._jobs: dict[str, _Job] = {}
        self._counter = 0

    # -- routing -------------------------------------------------------------------------------
    def dispatch(self, method: str, rest: list[str], params: Mapping[str, list[str]], body: Any,
                 version: str) -> tuple[int, Any, dict[str, str]]:
        """Answer ``/jobs/...``: ``(status, body, headers)``; a ``bytes`` body is CSV."""
        if not rest or rest[0] not in ("query", "ingest"):
            raise not_found()
        kind, tail = rest[0], rest[1:]
        if not tail:
            if method == "POST":
                return 200, self._create(kind, body, version), {}
            if method == "GET":
                jobs = [self._info(job) for job in self._jobs.values() if job.kind == kind]
                return 200, {"done": True, "records": jobs, "nextRecordsUrl": None}, {}
            raise _method_not_allowed(method, "GET", "POST")
        job = self._jobs.get(tail[0])
        if job is None or job.kind != kind:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if len(tail) == 1:
            if method == "GET":
                return 200, self._poll(job), {}
            if method == "PATCH":
                return 200, self._set_state(job, body), {}
            if method == "DELETE":
                del self._jobs[job.id]
                return 204, None, {}
            raise _method_not_allowed(method, "GET", "PATCH", "DELETE")
        if len(tail) == 2:
            if kind == "query" and tail[1] == "results" and method == "GET":
                return self._results(job, params)
            if kind == "ingest" and tail[1] == "batches" and method == "PUT":
                self._upload(job, body)
                return 201, None, {}
            if kind == "ingest" and method == "GET" and tail[1] in (
                    "successfulResults", "failedResults", "unprocessedrecords"):
                return 200, self._outcomes(job, tail[1]), {"Content-Type": _CSV_TYPE}
        raise not_found()

    # -- jobs ----------------------------------------------------------------------------------
    def _create(self, kind: str, body: Any, version: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        operation = body.get("operation")
        operations = _QUERY_OPERATIONS if kind == "query" else _INGEST_OPERATIONS
        if operation not in operations:
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation!r}")
        delimiter = body.get("columnDelimiter") or "COMMA"
        line_ending = body.get("lineEnding") or "LF"
        if delimiter not in _DELIMITERS or line_ending not in _LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", "Invalid columnDelimiter or lineEnding")
        self._counter += 1
        job = _Job(id=make_id("750", self._counter), kind=kind, operation=str(operation), object="",
                   version=version, delimiter=delimiter, line_ending=line_ending,
                   state="UploadComplete" if kind == "query" else "Open", created=now_iso())
        if kind == "query":
            soql = body.get("query")
            if not isinstance(soql, str) or not soql.strip():
                raise ApiError(400, "INVALIDJOB", "A query is required for a query job")
            outcome = self.data.query(soql, version, include_deleted=operation == "queryAll")
            parsed = _soql.parse(soql)
            job.query, job.object = soql, parsed.sobject
            job.header = [item.alias or item.path for item in parsed.items]
            job.rows = [[_text(_pick(record, column)) for column in job.header] for record in outcome.records]
            self._on_query_job()
        else:
            name = body.get("object")
            if not isinstance(name, str) or self.data.table(name) is None:
                raise ApiError(400, "INVALIDJOB", f"Invalid object: {name!r}")
            if body.get("contentType", "CSV") != "CSV":
                raise ApiError(400, "INVALIDJOB", "contentType must be CSV")
            job.object = name
            external = body.get("externalIdFieldName")
            job.external_id = str(external) if external else None
            if operation == "upsert" and job.external_id is None:
                raise ApiError(400, "INVALIDJOB", "externalIdFieldName is required for upsert")
        self._jobs[job.id] = job
        return self._info(job)

    def _poll(self, job: _Job) -> dict[str, Any]:
        if job.state in ("UploadComplete", "InProgress"):
            job.polls += 1
            job.state = "JobComplete" if job.polls >= self.job_polls else "InProgress"
            if job.state == "JobComplete" and job.error is not None:
                job.state = "Failed"
        return self._info(job, detail=True)

    def _set_state(self, job: _Job, body: Any) -> dict[str, Any]:
        state = body.get("state") if isinstance(body, dict) else None
        if state == "Aborted" and job.state not in _TERMINAL:
            job.state = "Aborted"
        elif state == "UploadComplete" and job.kind == "ingest" and job.state == "Open":
            job.state = "UploadComplete"
            self._process(job)
        else:
            raise ApiError(400, "INVALIDJOBSTATE", f"Cannot change the state of job {job.id} from "
                                                   f"{job.state} to {state}")
        return self._info(job)

    def _upload(self, job: _Job, body: Any) -> None:
        if job.state != "Open":
            raise ApiError(400, "INVALIDJOBSTATE", f"Job {job.id} is not open for data uploads")
        if job.uploaded:
            raise ApiError(400, "INVALIDJOBSTATE", f"Job {job.id} already has its data")
        text = body if isinstance(body, str) else ""
        lines = list(csv.reader(io.StringIO(text, newline=""), delimiter=_DELIMITERS[job.delimiter]))
        lines = [line for line in lines if line]
        if not lines:
            raise ApiError(400, "INVALIDJOB", "The upload has no header row")
        job.header, job.rows, job.uploaded = lines[0], lines[1:], True

    def _process(self, job: _Job) -> None:
        """Apply an ingest job's rows to the org (at close; its state still takes ``job_polls``)."""
        self._on_batches(math.ceil(len(job.rows) / RECORDS_PER_BATCH))
        job.processed = True
        table = self.data.table(job.object)
        fields = table.field_map() if table is not None else {}
        for row in job.rows:
            values = {key: _value(fields.get(key.lower()), text)
                      for key, text in zip(job.header, row) if text != ""}
            record_id = str(values.pop("Id", "") or "")
            try:
                if job.operation == "insert":
                    record_id = self.data.create(job.object, values)
                    job.successes.append((record_id, True, row))
                elif job.operation == "update":
                    self.data.update(job.object, record_id, values)
                    job.successes.append((record_id, False, row))
                elif job.operation in ("delete", "hardDelete"):
                    self.data.delete(job.object, record_id)
                    job.successes.append((record_id, False, row))
                elif job.external_id is not None and job.external_id.lower() == "id" and record_id:
                    self.data.update(job.object, record_id, values)  # upsert on Id: an update
                    job.successes.append((record_id, False, row))
                else:
                    raise ApiError(400, "INVALID_FIELD", "FakeSalesforce upserts on Id only")
            except ApiError as exc:
                job.failures.append((record_id, f"{exc.error_code}:{exc.message} --", row))

    def _results(self, job: _Job, params: Mapping[str, list[str]]) -> tuple[int, bytes, dict[str, str]]:
        if job.state != "JobComplete":
            raise ApiError(400, "INVALIDJOBSTATE", f"Job {job.id} is not complete (state {job.state})")
        try:
            start = int((params.get("locator") or ["0"])[0] or 0)
            size = int((params.get("maxRecords") or [str(len(job.rows) or 1)])[0])
        except ValueError as exc:
            raise ApiError(400, "INVALIDLOCATOR", "Invalid locator or maxRecords") from exc
        page = job.rows[start : start + max(size, 1)]
        following = start + len(page)
        headers = {"Content-Type": _CSV_TYPE, "Sforce-NumberOfRecords": str(len(page)),
                   "Sforce-Locator": str(following) if following < len(job.rows) else "null"}
        return 200, self._csv(job, [job.header, *page]), headers

    def _outcomes(self, job: _Job, which: str) -> bytes:
        if which == "successfulResults":
            lines = [["sf__Id", "sf__Created", *job.header]]
            lines += [[record_id, "true" if created else "false", *row]
                      for record_id, created, row in job.successes]
        elif which == "failedResults":
            lines = [["sf__Id", "sf__Error", *job.header]]
            lines += [[record_id, error, *row] for record_id, error, row in job.failures]
        else:  # unprocessedrecords: what an aborted job never applied
            lines = [job.header, *([] if job.processed else job.rows)]
        return self._csv(job, lines)

    @staticmethod
    def _csv(job: _Job, lines: list[list[str]]) -> bytes:
        out = io.StringIO(newline="")
        writer = csv.writer(out, delimiter=_DELIMITERS[job.delimiter], quoting=csv.QUOTE_ALL,
                            lineterminator=_LINE_ENDINGS[job.line_ending])
        writer.writerows(lines)
        return out.getvalue().encode("utf-8")

    def _info(self, job: _Job, *, detail: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": job.id, "operation": job.operation, "object": job.object,
            "createdById": self.data.data_id("User", 0), "createdDate": job.created,
            "systemModstamp": job.created, "state": job.state, "concurrencyMode": "Parallel",
            "contentType": "CSV", "apiVersion": float(job.version), "lineEnding": job.line_ending,
            "columnDelimiter": job.delimiter,
        }  # fmt: skip
        if job.kind == "ingest":
            info["externalIdFieldName"] = job.external_id
            info["contentUrl"] = f"services/data/v{job.version}/jobs/ingest/{job.id}/batches"
        if detail:
            info["jobType"] = "V2Query" if job.kind == "query" else "V2Ingest"
            done = job.state == "JobComplete"
            info["numberRecordsProcessed"] = (len(job.rows) if job.kind == "query" else
                                              len(job.successes) + len(job.failures)) if done else 0
            if job.kind == "ingest":
                info["numberRecordsFailed"] = len(job.failures) if done else 0
            info["retries"] = 0
            info["totalProcessingTime"] = 0
        return info


def _method_not_allowed(method: str, *allowed: str) -> ApiError:
    return ApiError(405, "METHOD_NOT_ALLOWED",
                    f"HTTP Method '{method}' not allowed. Allowed are {','.join(allowed)}")


def _pick(record: Mapping[str, Any], path: str) -> Any:
    """``Owner.Name`` out of a rendered record (nested relationship dicts)."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        matches = [key for key in value if key.lower() == part.lower()]
        value = value[matches[0]] if matches else None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _value(spec: Any, text: str) -> Any:
    """A CSV cell as the field's type (``#N/A`` is null, as in Bulk API CSV)."""
    if text == "#N/A":
        return None
    kind = getattr(spec, "type", "string")
    try:
        if kind == "boolean":
            return text.strip().lower() in ("true", "1", "yes")
        if kind == "int":
            return int(text)
        if kind in ("double", "currency", "percent"):
            return float(text)
    except ValueError:
        return text
    return text
