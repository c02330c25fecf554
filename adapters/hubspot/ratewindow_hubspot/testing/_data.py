"""Deterministic CRM data for :class:`~ratewindow_hubspot.testing.FakeHubSpot`.

Everything here is generated from an integer ``seed`` with :class:`random.Random`, so two
datasets built with the same arguments are equal property for property, on any platform
and Python version (string seeds are hashed with SHA-512 by :mod:`random`).

The default dataset holds exactly :data:`DEFAULT_ENGAGEMENT_TOTAL` (3,067) engagements split
over calls, emails, meetings, notes and tasks, plus contacts, companies and deals that the
engagements are associated with (1-3 contacts, 0-1 company and 0-2 deals per engagement).

Identifiers are numeric strings as in HubSpot. Engagement ids come from one increasing
sequence shared by the five engagement types, so an id is unique across all of them, and
``createdAt`` grows with the id, so "ordered by id" is also "oldest first".
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

__all__ = [
    "ASSOCIATION_TYPE_IDS",
    "DEFAULT_ENGAGEMENT_COUNTS",
    "DEFAULT_ENGAGEMENT_TOTAL",
    "ENGAGEMENT_TYPES",
    "OBJECT_TYPES",
    "OBJECT_TYPE_IDS",
    "SINGULAR",
    "CrmObject",
    "Dataset",
    "iso_millis",
    "parse_datetime_millis",
]

ENGAGEMENT_TYPES: tuple[str, ...] = ("calls", "emails", "meetings", "notes", "tasks")
"""The engagement object types, by their plural API names."""

RECORD_TYPES: tuple[str, ...] = ("contacts", "companies", "deals")
"""The CRM record types the engagements are associated with."""

OBJECT_TYPES: tuple[str, ...] = RECORD_TYPES + ENGAGEMENT_TYPES
"""Every object type the fake serves."""

SINGULAR: Mapping[str, str] = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "notes": "note",
    "tasks": "task",
}
"""Plural API name -> singular name (used in v3 association type names and error texts)."""

OBJECT_TYPE_IDS: Mapping[str, str] = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tasks": "0-27",
    "notes": "0-46",
    "meetings": "0-47",
    "calls": "0-48",
    "emails": "0-49",
}
"""HubSpot's ``objectTypeId`` for each type; accepted in URLs in place of the name."""

DEFAULT_ENGAGEMENT_COUNTS: Mapping[str, int] = {
    "calls": 812,
    "emails": 905,
    "meetings": 311,
    "notes": 604,
    "tasks": 435,
}
"""Engagements per type in the default dataset (they add up to 3,067)."""

DEFAULT_ENGAGEMENT_TOTAL = 3067
"""Total engagements in the default dataset."""

DEFAULT_CONTACTS = 400
DEFAULT_COMPANIES = 120
DEFAULT_DEALS = 180

# HUBSPOT_DEFINED association type ids (v4 ``typeId``), from HubSpot's associations v4 reference
# table of default association types. Keyed by (from type, to type).
ASSOCIATION_TYPE_IDS: Mapping[tuple[str, str], int] = {
    ("calls", "contacts"): 194,
    ("contacts", "calls"): 193,
    ("calls", "companies"): 182,
    ("companies", "calls"): 181,
    ("calls", "deals"): 206,
    ("deals", "calls"): 205,
    ("emails", "contacts"): 198,
    ("contacts", "emails"): 197,
    ("emails", "companies"): 186,
    ("companies", "emails"): 185,
    ("emails", "deals"): 210,
    ("deals", "emails"): 209,
    ("meetings", "contacts"): 200,
    ("contacts", "meetings"): 199,
    ("meetings", "companies"): 188,
    ("companies", "meetings"): 187,
    ("meetings", "deals"): 212,
    ("deals", "meetings"): 211,
    ("notes", "contacts"): 202,
    ("contacts", "notes"): 201,
    ("notes", "companies"): 190,
    ("companies", "notes"): 189,
    ("notes", "deals"): 214,
    ("deals", "notes"): 213,
    ("tasks", "contacts"): 204,
    ("contacts", "tasks"): 203,
    ("tasks", "companies"): 192,
    ("companies", "tasks"): 191,
    ("tasks", "deals"): 216,
    ("deals", "tasks"): 215,
}

DATETIME_PROPERTIES: frozenset[str] = frozenset(
    {
        "createdate",
        "lastmodifieddate",
        "hs_createdate",
        "hs_lastmodifieddate",
        "hs_timestamp",
        "closedate",
        "hs_meeting_start_time",
        "hs_meeting_end_time",
    }
)
"""Properties compared as instants (epoch milliseconds) by search filters and sorts."""

NUMBER_PROPERTIES: frozenset[str] = frozenset({"hs_object_id", "amount", "hs_call_duration"})
"""Properties compared as numbers by search filters and sorts."""

_ENGAGEMENT_BASE = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")

ALWAYS_PROPERTIES: Mapping[str, tuple[str, ...]] = {
    "contacts": ("createdate", "hs_object_id", "lastmodifieddate"),
    "companies": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    **{t: _ENGAGEMENT_BASE for t in ENGAGEMENT_TYPES},
}
"""Properties returned whatever ``properties`` asks for."""

DEFAULT_PROPERTIES: Mapping[str, tuple[str, ...]] = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount",
        "closedate",
        "createdate",
        "dealname",
        "dealstage",
        "hs_lastmodifieddate",
        "hs_object_id",
        "pipeline",
    ),
    **{t: _ENGAGEMENT_BASE for t in ENGAGEMENT_TYPES},
}
"""Properties returned when a request names none."""

SEARCHABLE_TEXT: Mapping[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email"),
    "companies": ("name", "domain"),
    "deals": ("dealname", "pipeline", "dealstage"),
    "calls": ("hs_call_title",),
    "emails": ("hs_email_subject",),
    "meetings": ("hs_meeting_title",),
    "notes": ("hs_note_body",),
    "tasks": ("hs_task_subject",),
}
"""Properties a search ``query`` string is matched against."""

_EPOCH_START_MS = 1_672_531_200_000  # 2023-01-01T00:00:00Z
_SPAN_MS = 730 * 86_400_000  # two years
_DAY_MS = 86_400_000

_FIRST = (
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken",
    "Radia", "Tim", "Sophie", "Linus", "Hedy", "Claude", "Katherine", "Dennis", "Annie", "Niklaus",
)  # fmt: skip
_LAST = (
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton",
    "Thompson", "Perlman", "Berners", "Wilson", "Torvalds", "Lamarr", "Shannon", "Johnson",
    "Ritchie", "Easley", "Wirth",
)  # fmt: skip
_COMPANY_A = ("Blue", "North", "Quiet", "Rapid", "Silver", "Bright", "Iron", "Open", "Red", "Clear")
_COMPANY_B = (
    "Harbor",
    "Field",
    "Summit",
    "Works",
    "Labs",
    "Systems",
    "Foods",
    "Logistics",
    "Media",
    "Health",
)
_TOPICS = (
    "pricing", "renewal", "onboarding", "demo", "contract", "integration", "support", "kickoff",
    "quarterly review", "security questionnaire",
)  # fmt: skip
_STAGES = (
    "appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
    "contractsent", "closedwon", "closedlost",
)  # fmt: skip


def iso_millis(epoch_ms: int) -> str:
    """Format epoch milliseconds as HubSpot does: ``2024-03-05T12:34:56.789Z`` (UTC)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def parse_datetime_millis(value: str) -> int | None:
    """Read a search filter or property value as epoch milliseconds.

    Accepts an integer string of epoch milliseconds (what HubSpot's docs use in filters) or an
    ISO 8601 instant (``Z`` or an offset) or a bare ``YYYY-MM-DD`` date (midnight UTC).
    Returns ``None`` when the value is neither.
    """
    text = value.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


@dataclass(frozen=True)
class CrmObject:
    """One CRM object as the fake stores it.

    ``properties`` holds every property the object has, all values strings (HubSpot's wire
    format); ``created_at``/``updated_at`` are epoch milliseconds.
    """

    id: str
    object_type: str
    properties: Mapping[str, str | None]
    created_at: int
    updated_at: int

    def to_json(self, property_names: tuple[str, ...] | None) -> dict[str, object]:
        """Return the API shape (``SimplePublicObject``), with only ``property_names``.

        ``None`` selects the type's default properties; names the object lacks are left out.
        """
        names = DEFAULT_PROPERTIES[self.object_type] if property_names is None else property_names
        props: dict[str, str | None] = {}
        for name in (*ALWAYS_PROPERTIES[self.object_type], *names):
            if name in self.properties and name not in props:
                props[name] = self.properties[name]
        return {
            "id": self.id,
            "properties": dict(sorted(props.items())),
            "createdAt": iso_millis(self.created_at),
            "updatedAt": iso_millis(self.updated_at),
            "archived": False,
        }


@dataclass
class _TypeTable:
    by_id: dict[str, CrmObject] = field(default_factory=dict)
    sorted_ids: list[int] = field(default_factory=list)


class Dataset:
    """An immutable, deterministic set of CRM objects and their associations.

    Build one with :meth:`generate`. Reading is thread-safe because nothing changes after
    construction.
    """

    def __init__(
        self,
        objects: Mapping[str, list[CrmObject]],
        associations: Mapping[tuple[str, str], Mapping[str, list[str]]],
        *,
        seed: int,
    ) -> None:
        self.seed = seed
        self._tables: dict[str, _TypeTable] = {}
        for object_type in OBJECT_TYPES:
            table = _TypeTable()
            for obj in objects.get(object_type, []):
                table.by_id[obj.id] = obj
            table.sorted_ids = sorted(int(i) for i in table.by_id)
            self._tables[object_type] = table
        self._associations: dict[tuple[str, str], dict[str, list[str]]] = {
            key: {from_id: sorted(to_ids, key=int) for from_id, to_ids in value.items()}
            for key, value in associations.items()
        }

    # ------------------------------------------------------------------ construction
    @classmethod
    def generate(
        cls,
        *,
        seed: int = 0,
        engagement_counts: Mapping[str, int] | None = None,
        contacts: int = DEFAULT_CONTACTS,
        companies: int = DEFAULT_COMPANIES,
        deals: int = DEFAULT_DEALS,
    ) -> Dataset:
        """Build the dataset for ``seed``.

        ``engagement_counts`` maps engagement type to how many to create (default
        :data:`DEFAULT_ENGAGEMENT_COUNTS`, 3,067 in all); types left out get none.
        ``contacts``, ``companies`` and ``deals`` must be at least 3, 1 and 2.
        """
        counts = dict(DEFAULT_ENGAGEMENT_COUNTS if engagement_counts is None else engagement_counts)
        unknown = set(counts) - set(ENGAGEMENT_TYPES)
        if unknown:
            raise ValueError(f"unknown engagement types: {sorted(unknown)}")
        if any(n < 0 for n in counts.values()):
            raise ValueError("engagement counts must be >= 0")
        if contacts < 3 or companies < 1 or deals < 2:
            raise ValueError("need at least 3 contacts, 1 company and 2 deals")
        rng = random.Random(f"ratewindow-fake-hubspot:{seed}")
        objects: dict[str, list[CrmObject]] = {t: [] for t in OBJECT_TYPES}
        associations: dict[tuple[str, str], dict[str, list[str]]] = {}

        def link(from_type: str, from_id: str, to_type: str, to_id: str) -> None:
            associations.setdefault((from_type, to_type), {}).setdefault(from_id, []).append(to_id)
            associations.setdefault((to_type, from_type), {}).setdefault(to_id, []).append(from_id)

        company_ids = _ids(rng, 5_000_000_000, companies, max_step=37)
        company_times = _times(rng, companies)
        domains: list[str] = []
        for n, (cid, created) in enumerate(zip(company_ids, company_times)):
            name = f"{rng.choice(_COMPANY_A)} {rng.choice(_COMPANY_B)} {n + 1}"
            domain = name.lower().replace(" ", "") + ".example.com"
            domains.append(domain)
            updated = created + rng.randrange(0, 90 * _DAY_MS)
            props = {
                "hs_object_id": cid,
                "name": name,
                "domain": domain,
                "createdate": iso_millis(created),
                "hs_lastmodifieddate": iso_millis(updated),
            }
            objects["companies"].append(CrmObject(cid, "companies", props, created, updated))

        contact_ids = _ids(rng, 1_000, contacts, max_step=53)
        for n, (cid, created) in enumerate(zip(contact_ids, _times(rng, contacts))):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            updated = created + rng.randrange(0, 90 * _DAY_MS)
            props = {
                "hs_object_id": cid,
                "firstname": first,
                "lastname": last,
                "email": f"{first}.{last}.{n + 1}@{rng.choice(domains)}".lower(),
                "createdate": iso_millis(created),
                "lastmodifieddate": iso_millis(updated),
            }
            objects["contacts"].append(CrmObject(cid, "contacts", props, created, updated))

        deal_ids = _ids(rng, 9_000_000_000, deals, max_step=41)
        for cid, created in zip(deal_ids, _times(rng, deals)):
            updated = created + rng.randrange(0, 90 * _DAY_MS)
            closed = created + rng.randrange(7 * _DAY_MS, 120 * _DAY_MS)
            props = {
                "hs_object_id": cid,
                "dealname": f"{rng.choice(_TOPICS).title()} deal {cid[-4:]}",
                "amount": str(rng.randrange(10, 2_000) * 50),
                "dealstage": rng.choice(_STAGES),
                "pipeline": "default",
                "closedate": iso_millis(closed),
                "createdate": iso_millis(created),
                "hs_lastmodifieddate": iso_millis(updated),
            }
            objects["deals"].append(CrmObject(cid, "deals", props, created, updated))

        order = [t for t in ENGAGEMENT_TYPES for _ in range(counts.get(t, 0))]
        rng.shuffle(order)
        engagement_ids = _ids(rng, 30_000_000_000, len(order), max_step=9)
        for n, (etype, eid, created) in enumerate(zip(order, engagement_ids, _times(rng, len(order)))):
            updated = created + rng.randrange(0, 30 * _DAY_MS)
            props = {
                "hs_object_id": eid,
                "hs_createdate": iso_millis(created),
                "hs_lastmodifieddate": iso_millis(updated),
                "hs_timestamp": iso_millis(created),
                **_engagement_properties(rng, etype, created, n),
            }
            objects[etype].append(CrmObject(eid, etype, props, created, updated))
            for contact_id in rng.sample(contact_ids, rng.randint(1, 3)):
                link(etype, eid, "contacts", contact_id)
            if rng.random() < 0.6:
                link(etype, eid, "companies", rng.choice(company_ids))
            for deal_id in rng.sample(deal_ids, rng.choice((0, 0, 1, 1, 2))):
                link(etype, eid, "deals", deal_id)
        return cls(objects, associations, seed=seed)

    # ------------------------------------------------------------------ reading
    @staticmethod
    def resolve_type(name: str) -> str | None:
        """Map an object type as written in a URL (``calls``, ``call``, ``0-48``) to its plural
        API name, or ``None`` when the fake does not know it."""
        lowered = name.lower()
        if lowered in SINGULAR:
            return lowered
        for plural, singular in SINGULAR.items():
            if lowered == singular or name == OBJECT_TYPE_IDS[plural]:
                return plural
        return None

    def count(self, object_type: str) -> int:
        """Number of objects of ``object_type``."""
        return len(self._tables[object_type].by_id)

    def ids(self, object_type: str) -> list[str]:
        """All ids of ``object_type``, ascending numerically."""
        return [str(i) for i in self._tables[object_type].sorted_ids]

    def get(self, object_type: str, object_id: str) -> CrmObject | None:
        """The object with ``object_id``, or ``None``."""
        return self._tables[object_type].by_id.get(object_id)

    def objects(self, object_type: str) -> Iterator[CrmObject]:
        """Every object of ``object_type``, ascending by id."""
        table = self._tables[object_type]
        return (table.by_id[str(i)] for i in table.sorted_ids)

    def page_after(self, object_type: str, after: int, limit: int) -> tuple[list[CrmObject], int | None]:
        """Up to ``limit`` objects with id >= ``after``, and the cursor of the next page.

        The cursor is ``last id + 1`` (an id-based cursor, so paging stays stable), or ``None``
        on the last page.
        """
        table = self._tables[object_type]
        start = bisect.bisect_left(table.sorted_ids, after)
        chunk = table.sorted_ids[start : start + limit]
        more = start + limit < len(table.sorted_ids)
        page = [table.by_id[str(i)] for i in chunk]
        return page, (chunk[-1] + 1 if more and chunk else None)

    def associated(self, from_type: str, from_id: str, to_type: str) -> list[str]:
        """Ids of ``to_type`` objects associated with ``from_type`` object ``from_id``."""
        return list(self._associations.get((from_type, to_type), {}).get(from_id, ()))

    @staticmethod
    def association_type_id(from_type: str, to_type: str) -> int | None:
        """HubSpot's default (``HUBSPOT_DEFINED``) association ``typeId`` for the pair."""
        return ASSOCIATION_TYPE_IDS.get((from_type, to_type))

    @property
    def engagement_total(self) -> int:
        """Number of engagements of all five types."""
        return sum(self.count(t) for t in ENGAGEMENT_TYPES)


def _ids(rng: random.Random, base: int, n: int, *, max_step: int) -> list[str]:
    ids: list[str] = []
    current = base
    for _ in range(n):
        current += rng.randint(1, max_step)
        ids.append(str(current))
    return ids


def _times(rng: random.Random, n: int) -> list[int]:
    return sorted(_EPOCH_START_MS + rng.randrange(_SPAN_MS) for _ in range(n))


def _engagement_properties(rng: random.Random, etype: str, created: int, n: int) -> dict[str, str]:
    topic = rng.choice(_TOPICS)
    if etype == "calls":
        return {
            "hs_call_title": f"Call about {topic} #{n + 1}",
            "hs_call_direction": rng.choice(("INBOUND", "OUTBOUND")),
            "hs_call_duration": str(rng.randrange(5_000, 3_600_000)),
            "hs_call_status": "COMPLETED",
        }
    if etype == "emails":
        return {
            "hs_email_subject": f"Re: {topic} #{n + 1}",
            "hs_email_direction": rng.choice(("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")),
            "hs_email_status": "SENT",
        }
    if etype == "meetings":
        start = created + rng.randrange(0, 14 * _DAY_MS)
        return {
            "hs_meeting_title": f"{topic.title()} meeting #{n + 1}",
            "hs_meeting_outcome": rng.choice(
                ("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED")
            ),
            "hs_meeting_start_time": iso_millis(start),
            "hs_meeting_end_time": iso_millis(start + rng.choice((15, 30, 45, 60)) * 60_000),
        }
    if etype == "notes":
        return {"hs_note_body": f"Notes on {topic}: follow up within {rng.randint(1, 14)} days. #{n + 1}"}
    return {
        "hs_task_subject": f"Follow up on {topic} #{n + 1}",
        "hs_task_status": rng.choice(("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")),
        "hs_task_priority": rng.choice(("LOW", "MEDIUM", "HIGH")),
    }
