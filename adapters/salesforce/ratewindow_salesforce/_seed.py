"""The seed pipeline's workload (seed ``001``: 1,462 objects x 4 calls), one by one and batched.

Used by the tests, ``benchmarks/salesforce_seed.py`` and the demo; not part of the public API.
Per object the seed pipeline makes four calls: its describe, its automation (Apex triggers, a
Tooling query), its field-level security (``FieldPermissions``) and the audit history
(``SetupAuditTrail``, org-wide). Both versions return the same JSON-serialisable summary per
object, so the batched one can be checked against the one-by-one one exactly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ratewindow import RateLimitedExecutor
from simple_salesforce.api import Salesforce

from ratewindow_salesforce._helpers import describe_many, query_all_parallel

__all__ = ["CALLS_PER_OBJECT", "batched", "one_object"]

CALLS_PER_OBJECT = 4
TRIGGERS = "SELECT Id, Name, Status, TableEnumOrId FROM ApexTrigger WHERE TableEnumOrId {}"
FLS = ("SELECT Id, Field, PermissionsRead, PermissionsEdit, SobjectType FROM FieldPermissions "
       "WHERE SobjectType {}")
AUDIT = "SELECT Id, Action, Section, CreatedDate FROM SetupAuditTrail"
#: Most characters of object names in one ``IN (...)`` list (a GET URL stays well under 16 KB).
_IN_CHARS = 4000


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _by_id(record: Any) -> str:
    return str(record.get("Id"))


def summary(describe: Any, triggers: Sequence[Any], fls: Sequence[Any], audit: Sequence[Any] | str
            ) -> dict[str, Any]:
    """What the pipeline keeps per object: counts and digests of every answer (records sorted by
    Id). ``audit`` is the audit records, or their ``audit_digest`` computed once for many objects."""
    return {
        "fields": len(describe.get("fields") or []),
        "triggers": len(triggers),
        "fls": len(fls),
        "digest": _digest([describe, sorted(triggers, key=_by_id), sorted(fls, key=_by_id)]),
        "audit": audit if isinstance(audit, str) else audit_digest(audit),
    }


def audit_digest(audit: Sequence[Any]) -> str:
    """The digest of the audit history (org-wide: the same for every object)."""
    return f"{len(audit)}:{_digest(sorted(audit, key=_by_id))}"


def one_object(sf: Salesforce, name: str) -> dict[str, Any]:
    """The seed pipeline for one object: four calls, one after the other."""
    describe = sf.restful(f"sobjects/{name}/describe")
    triggers: Any = sf.restful("tooling/query/", params={"q": TRIGGERS.format(f"= '{name}'")})
    fls = sf.query(FLS.format(f"= '{name}'"))
    audit = sf.query_all(AUDIT)
    return summary(describe, triggers["records"], fls["records"], audit["records"])


def _in_lists(names: Sequence[str]) -> list[str]:
    chunks: list[list[str]] = [[]]
    size = 0
    for name in names:
        if chunks[-1] and size + len(name) + 3 > _IN_CHARS:
            chunks.append([])
            size = 0
        chunks[-1].append(name)
        size += len(name) + 3
    return ["IN (" + ", ".join(f"'{n}'" for n in chunk) + ")" for chunk in chunks if chunk]


def _group(results: Iterable[Mapping[str, Any]], key: str) -> dict[str, list[Any]]:
    groups: dict[str, list[Any]] = {}
    for result in results:
        for record in result["records"]:
            groups.setdefault(str(record.get(key)), []).append(record)
    return groups


def batched(sf: Salesforce, names: Sequence[str], executor: RateLimitedExecutor | None = None
            ) -> dict[str, dict[str, Any] | BaseException]:
    """The same workload batched: describes 25 per ``/composite`` call, triggers and FLS as a
    few ``IN (...)`` queries paged in parallel, the org-wide audit history once. Per object its
    summary, or the error its describe ended with.

    Raises:
        Exception: a query that failed after retries (``QuotaExhausted`` included).
    """
    described = describe_many(sf, names, executor=executor, desc="describe")
    lists = _in_lists(names)
    triggers = _group(query_all_parallel(sf, [TRIGGERS.format(c) for c in lists], tooling=True,
                                         executor=executor, desc="triggers"), "TableEnumOrId")
    fls = _group(query_all_parallel(sf, [FLS.format(c) for c in lists], executor=executor, desc="fls"),
                 "SobjectType")
    audit = audit_digest(query_all_parallel(sf, AUDIT, executor=executor, desc="audit")["records"])
    out: dict[str, dict[str, Any] | BaseException] = {}
    for name, result in zip(names, described):
        if result.error is not None:
            out[name] = result.error
        else:
            out[name] = summary(result.value, triggers.get(name, []), fls.get(name, []), audit)
    return out
