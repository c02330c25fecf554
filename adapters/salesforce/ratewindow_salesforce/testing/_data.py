"""Deterministic org data for :class:`FakeSalesforce`: sObject catalog, describes, records, SOQL.

Everything here is a pure function of ``seed``: the 1,462 sObject names, each object's fields
("a few dozen"), its child relationships and record types, and the records of the handful of
objects that have data (:data:`RECORD_COUNTS`). Record values are computed on demand from
``(seed, object, row, field)``, so 5,000 Accounts cost nothing until a query reads them.

Writes (create / update / delete through REST, Composite or sObject Collections) go to an
in-memory overlay on top of the generated rows; a :class:`Txn` records undo steps so that an
``allOrNone`` request can be rolled back.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import random
import re
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ratewindow_salesforce.testing import _soql

__all__ = [
    "RECORD_COUNTS",
    "SOBJECT_COUNT",
    "ApiError",
    "FieldSpec",
    "ObjectInfo",
    "OrgData",
    "QueryOutcome",
    "Txn",
    "make_id",
]

#: Number of sObjects in the fake org's global describe.
SOBJECT_COUNT = 1462

#: Objects that have generated records, and how many.
RECORD_COUNTS: dict[str, int] = {
    "Account": 5000,
    "Contact": 5000,
    "Opportunity": 3000,
    "Lead": 2500,
    "Case": 2000,
    "User": 50,
}

#: Objects answered by ``/tooling/query`` and ``/tooling/sobjects``.
TOOLING_OBJECTS = (
    "ApexClass",
    "ApexTrigger",
    "EntityDefinition",
    "FieldDefinition",
    "ValidationRule",
    "WorkflowRule",
)

_NOT_FOUND_MESSAGE = "The requested resource does not exist"


class ApiError(Exception):
    """A Salesforce-style error: HTTP status plus ``[{"message", "errorCode", "fields"}]`` body."""

    def __init__(self, status: int, error_code: str, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = list(fields)

    def body(self) -> list[dict[str, Any]]:
        """The JSON body Salesforce sends with this error."""
        entry: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields:
            entry["fields"] = self.fields
        return [entry]


def not_found() -> ApiError:
    """Salesforce's generic 404 for an unknown resource."""
    return ApiError(404, "NOT_FOUND", _NOT_FOUND_MESSAGE)


# ---------------------------------------------------------------------------------------------
# Ids
# ---------------------------------------------------------------------------------------------

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_B62_VALUE = {char: number for number, char in enumerate(_B62)}
_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_POD = "Dn0"


def _b62(number: int, width: int) -> str:
    digits: list[str] = []
    while number:
        number, rem = divmod(number, 62)
        digits.append(_B62[rem])
    return "".join(reversed(digits)).rjust(width, "0")


def _id18(id15: str) -> str:
    """Append Salesforce's 3-character case-safe suffix to a 15-character id."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _CHECKSUM_CHARS[bits]
    return id15 + suffix


@functools.lru_cache(maxsize=131072)
def make_id(prefix: str, counter: int) -> str:
    """An 18-character Salesforce-style id: ``prefix`` (3 chars) + pod + base-62 counter + suffix."""
    return _id18(prefix + _ID_POD + _b62(counter, 9))


def parse_id(value: object) -> tuple[str, int] | None:
    """``(key_prefix, counter)`` of an id made by :func:`make_id` (15 or 18 chars), else ``None``."""
    if not isinstance(value, str) or len(value) not in (15, 18):
        return None
    return _parse_id(value)


@functools.lru_cache(maxsize=131072)
def _parse_id(value: str) -> tuple[str, int] | None:
    id15 = value[:15]
    if id15[3:6] != _ID_POD or any(ch not in _B62 for ch in id15):
        return None
    if len(value) == 18 and _id18(id15) != value:
        return None
    counter = 0
    for char in id15[6:]:
        counter = counter * 62 + _B62_VALUE[char]
    return id15[:3], counter


def canonical_id(value: str) -> str:
    """The 18-character form of a 15- or 18-character id."""
    return _id18(value) if len(value) == 15 else value


# ---------------------------------------------------------------------------------------------
# Fields
# ---------------------------------------------------------------------------------------------

_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "anyType": "xsd:anyType",
    "complexvalue": "urn:JsonType",
}
_DEFAULT_LENGTHS = {
    "id": 18,
    "reference": 18,
    "string": 255,
    "textarea": 32000,
    "picklist": 255,
    "email": 80,
    "phone": 40,
    "url": 255,
}
_SYSTEM_FIELDS = frozenset(
    {
        "Id",
        "IsDeleted",
        "CreatedDate",
        "CreatedById",
        "LastModifiedDate",
        "LastModifiedById",
        "SystemModstamp",
        "LastActivityDate",
        "LastViewedDate",
        "LastReferencedDate",
    }
)


def _label_for(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    if base.endswith("Id") and len(base) > 2 and base[-3].islower():
        base = base[:-2] + " ID"
    base = base.replace("_", " ")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", base).strip()


@dataclass(frozen=True)
class FieldSpec:
    """One field of an sObject, as its describe reports it."""

    name: str
    type: str
    label: str = ""
    length: int | None = None
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    custom: bool = False
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    unique: bool = False
    external_id: bool = False
    name_field: bool = False
    auto_number: bool = False
    precision: int = 0
    scale: int = 0

    @property
    def display_label(self) -> str:
        """The field label (derived from the API name when not given)."""
        return self.label or _label_for(self.name)

    def describe(self) -> dict[str, Any]:
        """The entry for this field in an sObject describe's ``fields`` list."""
        length = self.length if self.length is not None else _DEFAULT_LENGTHS.get(self.type, 0)
        textual = self.type in ("string", "textarea", "picklist", "email", "phone", "url", "id", "reference")
        system = self.name in _SYSTEM_FIELDS
        return {
            "aggregatable": self.type != "textarea",
            "autoNumber": self.auto_number,
            "byteLength": length * 3 if textual else 0,
            "calculated": False,
            "cascadeDelete": False,
            "caseSensitive": False,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": False if self.type == "boolean" else None,
            "defaultedOnCreate": self.type == "boolean" or system or self.name == "OwnerId",
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": 9 if self.type == "int" else 0,
            "externalId": self.external_id,
            "filterable": self.type != "textarea",
            "groupable": self.type not in ("textarea", "double", "currency", "percent", "datetime"),
            "htmlFormatted": False,
            "idLookup": self.type == "id" or self.external_id or self.name in ("Email", "Username"),
            "inlineHelpText": None,
            "label": self.display_label,
            "length": length,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": False,
            "nillable": self.nillable,
            "permissionable": self.nillable and not system and self.type != "id",
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": value, "validFor": None, "value": value}
                for value in self.picklist
            ],
            "polymorphicForeignKey": False,
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedPicklist": False,
            "scale": self.scale,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.type != "textarea",
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }

    def data_type(self) -> str:
        """The Setup-style data type shown by the Tooling API's ``FieldDefinition.DataType``."""
        if self.type == "reference":
            return f"Lookup({','.join(self.reference_to)})"
        kinds = {
            "id": "Lookup()",
            "string": f"Text({self.length or 255})",
            "textarea": "Long Text Area(32000)",
            "picklist": "Picklist",
            "boolean": "Checkbox",
            "date": "Date",
            "datetime": "Date/Time",
            "double": f"Number({self.precision or 18}, {self.scale})",
            "int": "Number(9, 0)",
            "currency": f"Currency({self.precision or 18}, {self.scale or 2})",
            "percent": f"Percent({self.precision or 3}, {self.scale})",
            "email": "Email",
            "phone": "Phone",
            "url": "URL(255)",
        }
        return kinds.get(self.type, self.type)


def _f(name: str, ftype: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name=name, type=ftype, **kw)


def _ref(name: str, target: str, rel: str | None = None, **kw: Any) -> FieldSpec:
    relationship = rel if rel is not None else (name[:-2] if name.endswith("Id") else name)
    return FieldSpec(
        name=name, type="reference", reference_to=(target,), relationship_name=relationship, **kw
    )


def _pick(name: str, *values: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name=name, type="picklist", picklist=tuple(values), **kw)


def _system_fields(owner: bool = True, activity: bool = True) -> list[FieldSpec]:
    out = [_f("Id", "id", nillable=False, createable=False, updateable=False)]
    out.append(
        _f("IsDeleted", "boolean", nillable=False, createable=False, updateable=False, label="Deleted")
    )
    if owner:
        out.append(_ref("OwnerId", "User", "Owner", nillable=False, label="Owner ID"))
    out += [
        _f("CreatedDate", "datetime", nillable=False, createable=False, updateable=False),
        _ref("CreatedById", "User", "CreatedBy", nillable=False, createable=False, updateable=False),
        _f("LastModifiedDate", "datetime", nillable=False, createable=False, updateable=False),
        _ref(
            "LastModifiedById", "User", "LastModifiedBy", nillable=False, createable=False, updateable=False
        ),
        _f("SystemModstamp", "datetime", nillable=False, createable=False, updateable=False),
    ]
    if activity:
        out += [
            _f("LastActivityDate", "date", createable=False, updateable=False),
            _f("LastViewedDate", "datetime", createable=False, updateable=False),
            _f("LastReferencedDate", "datetime", createable=False, updateable=False),
        ]
    return out


_LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
# fmt: off
_INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction",
    "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental",
    "Finance", "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance", "Machinery",
    "Manufacturing", "Media", "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
    "Telecommunications", "Transportation", "Utilities", "Other",
)
# fmt: on
_RATINGS = ("Hot", "Warm", "Cold")
_SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")
# fmt: off
_STAGES = (
    "Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
    "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost",
)
# fmt: on
_STAGE_PROBABILITY = (10, 10, 20, 50, 60, 70, 75, 90, 100, 0)
# fmt: off
_LEAD_STATUSES = (
    "Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted",
)
# fmt: on
_CASE_STATUSES = ("New", "Working", "Escalated", "Closed")

_HAND_FIELDS: dict[str, list[FieldSpec]] = {
    "Account": [
        _f("Name", "string", nillable=False, name_field=True, label="Account Name"),
        _pick(
            "Type",
            "Prospect",
            "Customer - Direct",
            "Customer - Channel",
            "Channel Partner / Reseller",
            "Installation Partner",
            "Technology Partner",
            "Other",
            label="Account Type",
        ),
        _ref("RecordTypeId", "RecordType", "RecordType", label="Record Type ID"),
        _ref("ParentId", "Account", "Parent", label="Parent Account ID"),
        _f("BillingStreet", "textarea", length=255),
        _f("BillingCity", "string", length=40),
        _f("BillingState", "string", length=80),
        _f("BillingPostalCode", "string", length=20),
        _f("BillingCountry", "string", length=80),
        _f("ShippingCity", "string", length=40),
        _f("ShippingCountry", "string", length=80),
        _f("Phone", "phone", label="Account Phone"),
        _f("Fax", "phone", label="Account Fax"),
        _f("AccountNumber", "string", length=40),
        _f("Website", "url"),
        _f("Sic", "string", length=20, label="SIC Code"),
        _pick("Industry", *_INDUSTRIES),
        _f("AnnualRevenue", "currency", precision=18, scale=0),
        _f("NumberOfEmployees", "int", label="Employees"),
        _pick("Ownership", "Public", "Private", "Subsidiary", "Other"),
        _f("TickerSymbol", "string", length=20),
        _f("Description", "textarea", label="Account Description"),
        _pick("Rating", *_RATINGS, label="Account Rating"),
        _f("Site", "string", length=80, label="Account Site"),
        _pick("AccountSource", *_LEAD_SOURCES),
        _pick("Active__c", "No", "Yes", custom=True),
        _pick("CustomerPriority__c", "High", "Low", "Medium", custom=True),
        _pick("SLA__c", "Gold", "Silver", "Platinum", "Bronze", custom=True),
        _f("SLAExpirationDate__c", "date", custom=True, label="SLA Expiration Date"),
        _f("SLASerialNumber__c", "string", length=10, custom=True, label="SLA Serial Number"),
        _f("NumberofLocations__c", "double", precision=3, scale=0, custom=True, label="Number of Locations"),
        _pick("UpsellOpportunity__c", "Maybe", "No", "Yes", custom=True, label="Upsell Opportunity"),
    ],
    "Contact": [
        _ref("AccountId", "Account", "Account", label="Account ID"),
        _f("LastName", "string", length=80, nillable=False),
        _f("FirstName", "string", length=40),
        _pick("Salutation", *_SALUTATIONS),
        _f(
            "Name",
            "string",
            length=121,
            name_field=True,
            createable=False,
            updateable=False,
            label="Full Name",
        ),
        _f("MailingStreet", "textarea", length=255),
        _f("MailingCity", "string", length=40),
        _f("MailingCountry", "string", length=80),
        _f("Phone", "phone", label="Business Phone"),
        _f("MobilePhone", "phone"),
        _f("Email", "email"),
        _f("Title", "string", length=128),
        _f("Department", "string", length=80),
        _ref("ReportsToId", "Contact", "ReportsTo", label="Reports To ID"),
        _pick("LeadSource", *_LEAD_SOURCES),
        _f("Birthdate", "date"),
        _f("Description", "textarea", label="Contact Description"),
        _f("HasOptedOutOfEmail", "boolean", nillable=False, label="Email Opt Out"),
        _f("DoNotCall", "boolean", nillable=False),
        _pick("Level__c", "Secondary", "Tertiary", "Primary", custom=True),
        _f("Languages__c", "string", length=100, custom=True),
    ],
    "Opportunity": [
        _ref("AccountId", "Account", "Account", label="Account ID"),
        _ref("RecordTypeId", "RecordType", "RecordType", label="Record Type ID"),
        _f("Name", "string", length=120, nillable=False, name_field=True, label="Name"),
        _f("Description", "textarea"),
        _pick("StageName", *_STAGES, nillable=False, label="Stage"),
        _f("Amount", "currency", precision=18, scale=2),
        _f("Probability", "percent", precision=3, scale=0, label="Probability (%)"),
        _f("CloseDate", "date", nillable=False),
        _pick(
            "Type",
            "Existing Customer - Upgrade",
            "Existing Customer - Replacement",
            "Existing Customer - Downgrade",
            "New Customer",
            label="Opportunity Type",
        ),
        _f("NextStep", "string", length=255),
        _pick("LeadSource", *_LEAD_SOURCES),
        _f("IsClosed", "boolean", nillable=False, createable=False, updateable=False, label="Closed"),
        _f("IsWon", "boolean", nillable=False, createable=False, updateable=False, label="Won"),
        _pick(
            "ForecastCategoryName",
            "Omitted",
            "Pipeline",
            "Best Case",
            "Commit",
            "Closed",
            label="Forecast Category",
        ),
        _ref("CampaignId", "Campaign", "Campaign", label="Campaign ID"),
        _pick("DeliveryInstallationStatus__c", "In progress", "Yet to begin", "Completed", custom=True),
        _f("TrackingNumber__c", "string", length=12, custom=True),
        _f("OrderNumber__c", "string", length=8, custom=True),
        _f("CurrentGenerators__c", "string", length=100, custom=True, label="Current Generator(s)"),
        _f("MainCompetitors__c", "string", length=100, custom=True, label="Main Competitor(s)"),
    ],
    "Lead": [
        _f("LastName", "string", length=80, nillable=False),
        _f("FirstName", "string", length=40),
        _pick("Salutation", *_SALUTATIONS),
        _f(
            "Name",
            "string",
            length=121,
            name_field=True,
            createable=False,
            updateable=False,
            label="Full Name",
        ),
        _f("Title", "string", length=128),
        _f("Company", "string", length=255, nillable=False),
        _f("City", "string", length=40),
        _f("State", "string", length=80, label="State/Province"),
        _f("Country", "string", length=80),
        _f("Phone", "phone"),
        _f("Email", "email"),
        _f("Website", "url"),
        _pick("LeadSource", *_LEAD_SOURCES),
        _pick("Status", *_LEAD_STATUSES),
        _pick("Industry", *_INDUSTRIES),
        _pick("Rating", *_RATINGS),
        _f("AnnualRevenue", "currency", precision=18, scale=0),
        _f("NumberOfEmployees", "int", label="Employees"),
        _f("IsConverted", "boolean", nillable=False, createable=False, updateable=False, label="Converted"),
        _f("ConvertedDate", "date", createable=False, updateable=False),
        _ref("ConvertedAccountId", "Account", "ConvertedAccount", createable=False, updateable=False),
        _ref("ConvertedContactId", "Contact", "ConvertedContact", createable=False, updateable=False),
        _ref(
            "ConvertedOpportunityId",
            "Opportunity",
            "ConvertedOpportunity",
            createable=False,
            updateable=False,
        ),
        _f("SICCode__c", "string", length=15, custom=True, label="SIC Code"),
        _pick("ProductInterest__c", "GC1000 series", "GC5000 series", "GC3000 series", custom=True),
        _pick("Primary__c", "No", "Yes", custom=True),
        _f("NumberofLocations__c", "double", precision=3, scale=0, custom=True, label="Number of Locations"),
    ],
    "Case": [
        _f(
            "CaseNumber",
            "string",
            length=30,
            createable=False,
            updateable=False,
            auto_number=True,
            name_field=True,
            nillable=False,
        ),
        _ref("RecordTypeId", "RecordType", "RecordType", label="Record Type ID"),
        _ref("ContactId", "Contact", "Contact", label="Contact ID"),
        _ref("AccountId", "Account", "Account", label="Account ID"),
        _f("SuppliedName", "string", length=80, label="Web Name"),
        _f("SuppliedEmail", "email", label="Web Email"),
        _f("SuppliedPhone", "string", length=40, label="Web Phone"),
        _pick("Type", "Mechanical", "Electrical", "Electronic", "Structural", "Other", label="Case Type"),
        _pick("Status", *_CASE_STATUSES),
        _pick(
            "Reason",
            "Installation",
            "Equipment Complexity",
            "Performance",
            "Breakdown",
            "Equipment Design",
            "Feedback",
            "Other",
            label="Case Reason",
        ),
        _pick("Origin", "Phone", "Email", "Web", label="Case Origin"),
        _f("Subject", "string", length=255),
        _pick("Priority", "High", "Medium", "Low"),
        _f("Description", "textarea"),
        _f("IsClosed", "boolean", nillable=False, createable=False, updateable=False, label="Closed"),
        _f("ClosedDate", "datetime", createable=False, updateable=False),
        _f("IsEscalated", "boolean", nillable=False, label="Escalated"),
        _f("EngineeringReqNumber__c", "string", length=12, custom=True, label="Engineering Req Number"),
        _pick("SLAViolation__c", "No", "Yes", custom=True, label="SLA Violation"),
        _pick(
            "Product__c",
            "GC1040",
            "GC1060",
            "GC3020",
            "GC3040",
            "GC3060",
            "GC5020",
            "GC5040",
            "GC5060",
            "GC1020",
            custom=True,
            label="Product",
        ),
        _pick("PotentialLiability__c", "No", "Yes", custom=True, label="Potential Liability"),
    ],
    "User": [
        _f("Username", "string", length=80, nillable=False, unique=True),
        _f("LastName", "string", length=80, nillable=False),
        _f("FirstName", "string", length=40),
        _f(
            "Name",
            "string",
            length=121,
            name_field=True,
            createable=False,
            updateable=False,
            label="Full Name",
        ),
        _f("Alias", "string", length=8, nillable=False),
        _f("Email", "email", nillable=False),
        _f("IsActive", "boolean", nillable=False, label="Active"),
        _ref("ProfileId", "Profile", "Profile", nillable=False, label="Profile ID"),
        _ref("UserRoleId", "UserRole", "UserRole", label="Role ID"),
        _ref("ManagerId", "User", "Manager", label="Manager ID"),
        _pick(
            "TimeZoneSidKey",
            "America/Los_Angeles",
            "America/New_York",
            "Europe/London",
            "Asia/Tokyo",
            nillable=False,
            label="Time Zone",
        ),
        _pick("LocaleSidKey", "en_US", "en_GB", "de_DE", "ja_JP", nillable=False, label="Locale"),
        _pick("LanguageLocaleKey", "en_US", "de", "ja", nillable=False, label="Language"),
        _pick("EmailEncodingKey", "UTF-8", "ISO-8859-1", nillable=False, label="Email Encoding"),
        _f("Title", "string", length=80),
        _f("Department", "string", length=80),
        _f("CompanyName", "string", length=80, label="Company Name"),
        _pick("UserType", "Standard", "PowerPartner", "CsnOnly", createable=False, updateable=False),
        _f("LastLoginDate", "datetime", createable=False, updateable=False),
    ],
}

#: Child relationships declared by hand on the objects that have records.
_HAND_CHILDREN: dict[str, list[tuple[str, str, str]]] = {
    "Account": [
        ("Contact", "AccountId", "Contacts"),
        ("Opportunity", "AccountId", "Opportunities"),
        ("Case", "AccountId", "Cases"),
        ("Account", "ParentId", "ChildAccounts"),
    ],
    "Contact": [("Case", "ContactId", "Cases")],
    "Campaign": [("Opportunity", "CampaignId", "Opportunities")],
}

#: Record types (besides Master) per object: (DeveloperName, label).
_RECORD_TYPES: dict[str, list[tuple[str, str]]] = {
    "Account": [("Customer", "Customer"), ("Partner", "Partner")],
    "Opportunity": [("New_Business", "New Business"), ("Renewal", "Renewal")],
    "Case": [("Support", "Support"), ("Billing", "Billing")],
}
_MASTER_RECORD_TYPE = "012000000000000AAA"

_PROFILES = ("System Administrator", "Standard User", "Read Only")
_PERMISSION_SETS: tuple[tuple[str, str, int | None], ...] = (
    ("X00ex000000018ozh_128_09_04_12_1", "System Administrator", 0),
    ("X00ex000000018ozh_128_09_04_12_2", "Standard User", 1),
    ("X00ex000000018ozh_128_09_04_12_3", "Read Only", 2),
    ("Sales_Operations", "Sales Operations", None),
    ("Support_Agents", "Support Agents", None),
    ("Integration_User", "Integration User", None),
)

# ---------------------------------------------------------------------------------------------
# Catalog
# ---------------------------------------------------------------------------------------------

#: Core standard objects; each also gets History, Share, Feed and ChangeEvent companions.
# fmt: off
_CORE: tuple[tuple[str, str], ...] = (
    ("Account", "001"), ("Contact", "003"), ("Opportunity", "006"), ("Lead", "00Q"), ("Case", "500"),
    ("Campaign", "701"), ("Contract", "800"), ("Order", "801"), ("Product2", "01t"), ("Asset", "02i"),
    ("Quote", "0Q0"), ("WorkOrder", "0WO"), ("ServiceContract", "810"), ("Entitlement", "550"),
    ("Solution", "501"), ("Pricebook2", "01s"), ("Idea", "087"), ("Location", "131"),
    ("ServiceAppointment", "08p"), ("Incident", "0sp"),
)
# fmt: on

#: Other standard objects: (name, key prefix, kind). Kinds drive flags and generated fields.
# fmt: off
_OTHER_STANDARD: tuple[tuple[str, str, str], ...] = (
    ("User", "005", "data"), ("Task", "00T", "data"), ("Event", "00U", "data"),
    ("CampaignMember", "00v", "data"), ("OrderItem", "802", "data"), ("PricebookEntry", "01u", "data"),
    ("OpportunityLineItem", "00k", "data"), ("OpportunityContactRole", "00K", "data"),
    ("QuoteLineItem", "0QL", "data"), ("Note", "002", "data"), ("Attachment", "00P", "data"),
    ("Document", "015", "data"), ("Folder", "00l", "data"), ("ContentDocument", "069", "data"),
    ("ContentVersion", "068", "data"), ("ContentDocumentLink", "06A", "data"),
    ("EmailMessage", "02s", "data"), ("EmailTemplate", "00X", "data"), ("CaseComment", "00a", "data"),
    ("AccountContactRelation", "07k", "data"), ("Partner", "00I", "data"),
    ("WorkOrderLineItem", "1WL", "data"), ("FeedItem", "0D5", "data"), ("FeedComment", "0D7", "data"),
    ("CollaborationGroup", "0F9", "data"), ("Topic", "0TO", "data"), ("Report", "00O", "data"),
    ("Dashboard", "01Z", "data"), ("BusinessHours", "01m", "data"), ("Holiday", "0C0", "data"),
    ("Group", "00G", "data"), ("GroupMember", "011", "data"), ("UserRole", "00E", "data"),
    ("Macro", "0JZ", "data"), ("ListView", "00B", "data"), ("Period", "026", "data"),
    ("Territory2", "0MI", "data"), ("Individual", "0PK", "data"), ("ContactPointEmail", "9CE", "data"),
    ("ContactPointPhone", "0OW", "data"), ("DuplicateRule", "0Bm", "data"), ("Skill", "0C5", "data"),
    ("KnowledgeArticle", "kA0", "data"), ("Profile", "00e", "setup"), ("PermissionSet", "0PS", "setup"),
    ("PermissionSetAssignment", "0Pa", "data"), ("PermissionSetGroup", "0PG", "data"),
    ("FieldPermissions", "01k", "setup"), ("ObjectPermissions", "110", "setup"),
    ("SetupAuditTrail", "0Ym", "setup"), ("Organization", "00D", "setup"), ("RecordType", "012", "setup"),
    ("ApexClass", "01p", "setup"), ("ApexTrigger", "01q", "setup"), ("EntityDefinition", "000", "setup"),
    ("FieldDefinition", "000", "setup"), ("ApexPage", "066", "data"), ("ApexComponent", "099", "data"),
    ("StaticResource", "081", "data"), ("AsyncApexJob", "707", "readonly"),
    ("CronTrigger", "08e", "readonly"), ("LoginHistory", "0Ya", "readonly"),
    ("AuthSession", "0Ak", "readonly"), ("ApexLog", "07L", "readonly"),
    ("ApexTestResult", "07M", "readonly"), ("EventLogFile", "0AT", "readonly"),
    ("FlowDefinitionView", "300", "readonly"), ("FlowInterview", "0Fo", "data"),
    ("ProcessInstance", "04g", "readonly"), ("ProcessInstanceStep", "04h", "readonly"),
    ("UserLicense", "100", "readonly"), ("PermissionSetLicense", "0PL", "readonly"),
    ("CustomPermission", "0CP", "readonly"), ("NamedCredential", "0XA", "readonly"),
    ("ConnectedApplication", "0H4", "readonly"), ("OrgWideEmailAddress", "0D2", "data"),
    ("Site", "0DM", "readonly"), ("Network", "0DB", "readonly"), ("Community", "09a", "readonly"),
    ("Domain", "0I4", "readonly"), ("Publisher", "0Pu", "readonly"),
    ("CustomNotificationType", "0ML", "readonly"), ("TodoItem", "", "data"),
)
# fmt: on

# fmt: off
_CUSTOM_NOUNS = (
    "Invoice", "Shipment", "Project", "Vendor", "Survey", "Ticket", "Policy", "Claim", "Warehouse",
    "Inventory", "Payment", "Subscription", "Device", "Sensor", "Course", "Enrollment", "Donation", "Grant",
    "Property", "Unit", "Lease", "Vehicle", "Route", "Delivery", "Booking", "Reservation", "Facility",
    "Equipment", "Inspection", "Permit", "Licence", "Territory", "Region", "Forecast", "Budget", "Expense",
    "Timesheet", "Candidate", "Interview", "Offer", "Partner", "Referral", "Loyalty", "Reward", "Voucher",
    "Promotion",
)
# fmt: on
# fmt: off
_CUSTOM_QUALIFIERS = (
    "", "Line", "Item", "Log", "Detail", "Request", "Plan", "Event", "History", "Note", "Score", "Approval",
    "Assignment", "Template", "Rule", "Schedule", "Snapshot", "Summary", "Task", "Review", "Config",
    "Mapping", "Status", "Metric", "Allocation", "Adjustment", "Milestone", "Version", "Batch", "Queue",
    "Alert", "Audit", "Contact", "Document", "Stage",
)
# fmt: on
# fmt: off
_CUSTOM_FIELD_POOL: tuple[tuple[str, str], ...] = (
    ("Status", "picklist"), ("Amount", "currency"), ("Due_Date", "date"), ("Start_Date", "date"),
    ("End_Date", "date"), ("Quantity", "double"), ("Priority", "picklist"), ("Category", "picklist"),
    ("Description", "textarea"), ("Notes", "textarea"), ("External_Key", "string"), ("Code", "string"),
    ("Region", "picklist"), ("Is_Active", "boolean"), ("Is_Primary", "boolean"), ("Approved", "boolean"),
    ("Approved_On", "datetime"), ("Submitted_On", "datetime"), ("Score", "double"), ("Rank", "int"),
    ("Sequence", "int"), ("Discount", "percent"), ("Tax_Rate", "percent"), ("Unit_Price", "currency"),
    ("Total_Cost", "currency"), ("Contact_Email", "email"), ("Contact_Phone", "phone"),
    ("Portal_URL", "url"), ("Reference_Number", "string"), ("Source_System", "picklist"),
    ("Channel", "picklist"), ("Tier", "picklist"), ("Stage", "picklist"), ("Rating", "picklist"),
    ("Comments", "textarea"), ("Summary", "string"), ("Title", "string"), ("Version", "double"),
    ("Weight", "double"), ("Duration_Hours", "double"), ("Completed", "boolean"),
    ("Completed_On", "datetime"), ("Expires_On", "date"), ("Renewal_Date", "date"),
    ("Currency_Code", "picklist"), ("Country", "string"), ("City", "string"), ("Postal_Code", "string"),
    ("Sync_Status", "picklist"), ("Last_Synced", "datetime"), ("Legacy_Id", "string"),
    ("Budget", "currency"), ("Actual", "currency"), ("Variance", "percent"), ("Headcount", "int"),
    ("Risk_Level", "picklist"), ("Owner_Team", "picklist"), ("Checklist_Done", "boolean"),
    ("Language", "picklist"), ("Tags", "string"),
)
# fmt: on
# fmt: off
_STANDARD_FIELD_POOL: tuple[tuple[str, str], ...] = (
    ("Description", "textarea"), ("Status", "picklist"), ("Type", "picklist"), ("StartDate", "date"),
    ("EndDate", "date"), ("IsActive", "boolean"), ("Amount", "currency"), ("Quantity", "double"),
    ("Subject", "string"), ("Priority", "picklist"), ("Title", "string"), ("Email", "email"),
    ("Phone", "phone"), ("Website", "url"), ("ExternalKey", "string"), ("SortOrder", "int"),
    ("Percent", "percent"), ("ActivityDate", "date"), ("CompletedDateTime", "datetime"),
    ("Category", "picklist"), ("Source", "picklist"), ("Region", "picklist"), ("Code", "string"),
    ("IsPrimary", "boolean"), ("ExpirationDate", "date"), ("Rank", "int"), ("Score", "double"),
    ("Comments", "textarea"), ("Language", "picklist"), ("Channel", "picklist"),
)
# fmt: on
_PICKLIST_VALUES = {
    "Status": ("Draft", "Active", "On Hold", "Completed", "Cancelled"),
    "Priority": ("High", "Medium", "Low"),
    "Region": ("AMER", "EMEA", "APAC", "LATAM"),
    "Tier": ("Gold", "Silver", "Bronze"),
    "Rating": ("Hot", "Warm", "Cold"),
    "Language": ("English", "German", "French", "Japanese", "Spanish"),
    "Currency_Code": ("USD", "EUR", "GBP", "JPY"),
    "Risk_Level": ("High", "Medium", "Low", "None"),
}
_CUSTOM_PARENTS = ("Account", "Contact", "Opportunity", "Case", "User", "Campaign")

# fmt: off
_FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kira", "Liam",
    "Maya", "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Xavier",
    "Yara", "Zoe",
)
# fmt: on
# fmt: off
_LAST_NAMES = (
    "Anders", "Baker", "Castillo", "Dubois", "Eriksen", "Fischer", "Garcia", "Hughes", "Ivanova", "Jensen",
    "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Patel", "Quist", "Rossi", "Schmidt", "Tanaka",
    "Ueda", "Varga", "Walsh", "Xu", "Yilmaz", "Zhang",
)
# fmt: on
# fmt: off
_COMPANY_A = (
    "Acme", "Blue", "Cobalt", "Delta", "Evergreen", "Falcon", "Granite", "Harbor", "Iron", "Juniper",
    "Keystone", "Lumen", "Maple", "Northwind", "Orion", "Pioneer", "Quartz", "Redwood", "Summit", "Titan",
)
# fmt: on
# fmt: off
_COMPANY_B = (
    "Analytics", "Biotech", "Logistics", "Robotics", "Foods", "Energy", "Media", "Systems", "Health",
    "Capital", "Motors", "Textiles", "Labs", "Networks", "Retail", "Aerospace",
)
# fmt: on
# fmt: off
_CITIES = (
    ("San Francisco", "CA", "USA"), ("New York", "NY", "USA"), ("Austin", "TX", "USA"),
    ("London", "", "United Kingdom"), ("Berlin", "", "Germany"), ("Tokyo", "", "Japan"),
    ("Toronto", "ON", "Canada"), ("Sydney", "NSW", "Australia"), ("Paris", "", "France"),
    ("Chicago", "IL", "USA"),
)
# fmt: on


@dataclass(frozen=True)
class ObjectInfo:
    """Catalog entry for one sObject (what the global describe lists)."""

    name: str
    index: int
    key_prefix: str | None
    kind: str
    custom: bool = False
    parent: str | None = None
    label: str = ""
    label_plural: str = ""

    @property
    def createable(self) -> bool:
        """Whether records can be created."""
        return self.kind in ("data", "custom")

    @property
    def queryable(self) -> bool:
        """Whether SOQL can query the object."""
        return self.kind != "changeevent"

    @property
    def feed_enabled(self) -> bool:
        """Whether the object has Chatter feed tracking."""
        return self.kind in ("data", "custom") and self.index % 3 == 0

    def global_entry(self, version: str, *, tooling: bool = False) -> dict[str, Any]:
        """This object's entry in the ``sobjects`` list of a global describe."""
        base = f"/services/data/v{version}/{'tooling/' if tooling else ''}sobjects/{self.name}"
        writable = self.createable
        return {
            "activateable": False,
            "associateEntityType": {
                "history": "History",
                "share": "Share",
                "feed": "Feed",
                "changeevent": "ChangeEvent",
            }.get(self.kind),
            "associateParentEntity": self.parent,
            "createable": writable,
            "custom": self.custom,
            "customSetting": False,
            "deepCloneable": False,
            "deletable": writable,
            "deprecatedAndHidden": False,
            "feedEnabled": self.feed_enabled,
            "hasSubtypes": False,
            "isInterface": False,
            "isSubtype": False,
            "keyPrefix": self.key_prefix,
            "label": self.label,
            "labelPlural": self.label_plural,
            "layoutable": writable,
            "mergeable": self.name in ("Account", "Contact", "Lead", "Case"),
            "mruEnabled": writable,
            "name": self.name,
            "queryable": self.queryable,
            "replicateable": self.kind not in ("changeevent", "setup"),
            "retrieveable": self.kind != "changeevent",
            "searchable": writable,
            "triggerable": writable or self.kind == "changeevent",
            "undeletable": writable,
            "updateable": writable,
            "urls": {
                "rowTemplate": f"{base}/{{ID}}",
                "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
                "describe": f"{base}/describe",
                "sobject": base,
            },
        }


def _plural(label: str) -> str:
    if label.endswith("y") and not label.endswith(("ay", "ey", "oy")):
        return label[:-1] + "ies"
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es"
    return label + "s"


def _build_catalog(seed: int) -> list[ObjectInfo]:
    entries: list[tuple[str, str | None, str, bool, str | None]] = []
    for core_name, core_prefix in _CORE:
        entries.append((core_name, core_prefix, "data", False, None))
    for other_name, other_prefix, other_kind in _OTHER_STANDARD:
        entries.append((other_name, other_prefix or None, other_kind, False, None))
    for name, _prefix in _CORE:
        entries.append((f"{name}History", None, "history", False, name))
        entries.append((f"{name}Share", None, "share", False, name))
        entries.append((f"{name}Feed", None, "feed", False, name))
        entries.append((f"{name}ChangeEvent", None, "changeevent", False, name))
    rng = random.Random(f"ratewindow-fake-salesforce-catalog:{seed}")
    combos = [f"{noun}_{qual}" if qual else noun for noun in _CUSTOM_NOUNS for qual in _CUSTOM_QUALIFIERS]
    rng.shuffle(combos)
    needed = SOBJECT_COUNT - len(entries)
    for base in combos[:needed]:
        entries.append((f"{base}__c", None, "custom", True, None))
    if len({name for name, *_ in entries}) != SOBJECT_COUNT:
        raise AssertionError("sObject catalog must hold exactly SOBJECT_COUNT unique names")
    used = {prefix for _, prefix, _, _, _ in entries if prefix}
    counter = 0
    catalog: list[ObjectInfo] = []
    custom_counter = 0
    for index, (name, declared, kind, custom, parent) in enumerate(entries):
        prefix = declared
        if custom:
            prefix = "a" + _b62(custom_counter, 2)
            custom_counter += 1
        elif prefix is None or len(prefix) != 3:
            while True:
                counter += 1
                prefix = "0" + _b62(counter + 200, 2)
                if prefix not in used:
                    used.add(prefix)
                    break
        label = _label_for(name)
        if kind in ("history", "share", "feed", "changeevent") and parent is not None:
            suffix = {"history": "History", "share": "Share", "feed": "Feed", "changeevent": "Change Event"}
            label = f"{_label_for(parent)} {suffix[kind]}"
        catalog.append(
            ObjectInfo(
                name=name,
                index=index,
                key_prefix=prefix,
                kind=kind,
                custom=custom,
                parent=parent,
                label=label,
                label_plural=_plural(label),
            )
        )
    return catalog


# ---------------------------------------------------------------------------------------------
# Tables and rows
# ---------------------------------------------------------------------------------------------


class Row:
    """One record as the query engine sees it."""

    def __init__(self, table: Table, record_id: str, deleted: bool = False) -> None:
        self.table = table
        self.id = record_id
        self.deleted = deleted

    def get(self, path: str) -> Any:
        """Value of a canonical field path (``Name``, ``Account.Name``)."""
        raise NotImplementedError

    def ref(self, prefix: str) -> tuple[str, str] | None:
        """``(sobject, id)`` that relationship path ``prefix`` points at, or ``None`` when empty."""
        raise NotImplementedError


class Table:
    """An sObject as a source of rows plus its field list."""

    def __init__(self, org: OrgData, info: ObjectInfo, tooling: bool = False) -> None:
        self.org = org
        self.info = info
        self.tooling = tooling

    @property
    def name(self) -> str:
        """The sObject API name."""
        return self.info.name

    def fields(self) -> tuple[FieldSpec, ...]:
        """The object's fields, in describe order."""
        raise NotImplementedError

    def field_map(self) -> dict[str, FieldSpec]:
        """Fields keyed by lower-case API name."""
        return self.org.field_map(self)

    def relationships(self) -> dict[str, tuple[str, str]]:
        """``{lower-case relationship name: (canonical name, foreign-key field)}``."""
        cached: dict[str, tuple[str, str]] | None = getattr(self, "_relationships", None)
        if cached is None:
            cached = {}
            for spec in self.fields():
                if spec.type == "reference" and spec.relationship_name:
                    cached[spec.relationship_name.lower()] = (spec.relationship_name, spec.name)
            self._relationships = cached
        return cached

    def target_of(self, fk_field: str) -> str | None:
        """The sObject a reference field points to."""
        spec = self.field_map().get(fk_field.lower())
        return spec.reference_to[0] if spec is not None and spec.reference_to else None

    def resolve(self, path: str) -> str | None:
        """Canonical form of ``path`` (case-insensitive), or ``None`` when it does not exist."""
        head, dot, rest = path.partition(".")
        if not dot:
            spec = self.field_map().get(head.lower())
            return spec.name if spec is not None else None
        rel = self.relationships().get(head.lower())
        if rel is None:
            return None
        target_name = self.target_of(rel[1])
        target = self.org.table(target_name, tooling=self.tooling) if target_name else None
        if target is None:
            return None
        tail = target.resolve(rest)
        return f"{rel[0]}.{tail}" if tail is not None else None

    def iter_rows(self, hints: dict[str, Sequence[_soql.Value]], include_deleted: bool) -> Iterator[Row]:
        """Rows that may satisfy ``hints`` (see :func:`_soql.equality_hints`)."""
        raise NotImplementedError

    def row(self, record_id: str) -> Row | None:
        """The row with ``record_id``, or ``None``."""
        return None


class DataRow(Row):
    """A row of a :class:`DataTable`: generated (``index``) or created through the API."""

    def __init__(self, table: DataTable, record_id: str, index: int | None, deleted: bool) -> None:
        super().__init__(table, record_id, deleted)
        self.data_table = table
        self.index = index

    def get(self, path: str) -> Any:
        head, dot, rest = path.partition(".")
        if dot:
            parent = self._parent(head)
            return parent.get(rest) if parent is not None else None
        return self.data_table.value(self, head)

    def _parent(self, rel_name: str) -> Row | None:
        rel = self.table.relationships().get(rel_name.lower())
        if rel is None:
            return None
        parent_id = self.get(rel[1])
        return self.table.org.row_by_id(parent_id) if parent_id else None

    def ref(self, prefix: str) -> tuple[str, str] | None:
        row: Row | None = self
        for part in prefix.split("."):
            if row is None:
                return None
            rel = row.table.relationships().get(part.lower())
            if rel is None:
                return None
            parent_id = row.get(rel[1])
            if not parent_id:
                return None
            target = row.table.target_of(rel[1]) or ""
            row = row.table.org.row_by_id(parent_id)
            if row is None:
                return target, parent_id
        return (row.table.name, row.id) if row is not None else None


class DictRow(Row):
    """A row of a :class:`VirtualTable`; relationship values are stored under dotted keys."""

    def __init__(self, table: VirtualTable, values: dict[str, Any]) -> None:
        super().__init__(table, str(values.get("Id") or values.get("DurableId") or ""))
        self.values = values
        self.virtual = table

    def get(self, path: str) -> Any:
        return self.values.get(path)

    def ref(self, prefix: str) -> tuple[str, str] | None:
        rel = self.table.relationships().get(prefix.lower())
        if rel is None:
            nested = prefix + "."
            if any(key.startswith(nested) and value is not None for key, value in self.values.items()):
                return prefix.rsplit(".", 1)[-1], ""
            return None
        target_id = self.values.get(rel[1])
        target = self.table.target_of(rel[1]) or ""
        return (target, str(target_id)) if target_id else None


def _h(*parts: object) -> int:
    return zlib.crc32("|".join(str(part) for part in parts).encode())


def _iso_datetime(day: _dt.date, seconds: int) -> str:
    stamp = _dt.datetime(day.year, day.month, day.day) + _dt.timedelta(seconds=seconds % 86400)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def now_iso() -> str:
    """The current UTC time in Salesforce's JSON date-time format."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class DataTable(Table):
    """An ordinary sObject: ``count`` generated rows plus whatever the API created."""

    def __init__(self, org: OrgData, info: ObjectInfo, count: int) -> None:
        super().__init__(org, info)
        self.count = count

    def fields(self) -> tuple[FieldSpec, ...]:
        return self.org.object_fields(self.info)

    def record_id(self, index: int) -> str:
        """Id of generated row ``index``."""
        return make_id(self.info.key_prefix or "000", index + 1)

    def _make_row(self, record_id: str, index: int | None) -> DataRow:
        return DataRow(self, record_id, index, record_id in self.org.deleted)

    def iter_rows(self, hints: dict[str, Sequence[_soql.Value]], include_deleted: bool) -> Iterator[Row]:
        ids = hints.get("id")
        if ids is not None:
            for value in ids:
                row = self.row(value) if isinstance(value, str) else None
                if row is not None and (include_deleted or not row.deleted):
                    yield row
            return
        deleted = self.org.deleted
        for index in range(self.count):
            record_id = self.record_id(index)
            if include_deleted or record_id not in deleted:
                yield DataRow(self, record_id, index, record_id in deleted)
        for record_id in list(self.org.created.get(self.name, {})):
            if include_deleted or record_id not in deleted:
                yield DataRow(self, record_id, None, record_id in deleted)

    def row(self, record_id: str) -> Row | None:
        parsed = parse_id(record_id)
        if parsed is None or parsed[0] != self.info.key_prefix:
            return None
        full = canonical_id(record_id)
        if full in self.org.created.get(self.name, {}):
            return self._make_row(full, None)
        index = parsed[1] - 1
        if 0 <= index < self.count:
            return self._make_row(full, index)
        return None

    def value(self, row: DataRow, field_name: str) -> Any:
        """The current value of ``field_name`` (canonical) on ``row``."""
        if field_name == "Id":
            return row.id
        if field_name == "IsDeleted":
            return row.deleted
        updates = self.org.updates.get(row.id)
        if updates is not None and field_name in updates:
            return updates[field_name]
        if row.index is None:
            created = self.org.created.get(self.name, {}).get(row.id, {})
            return created.get(field_name)
        return self.org.generate_value(self, row.index, field_name)


class VirtualTable(Table):
    """A read-only setup/metadata object whose rows are generated as dictionaries."""

    def __init__(
        self,
        org: OrgData,
        info: ObjectInfo,
        fields: Sequence[FieldSpec],
        rows: Callable[[str | None], Iterable[dict[str, Any]]],
        partition_keys: dict[str, Callable[[str], str | None]] | None = None,
        partitions: Callable[[], Iterable[str]] | None = None,
        extra_paths: Sequence[str] = (),
        tooling: bool = False,
    ) -> None:
        super().__init__(org, info, tooling)
        self._fields = tuple(fields)
        self._rows = rows
        self._partition_keys = {key.lower(): fn for key, fn in (partition_keys or {}).items()}
        self._partitions = partitions
        self._paths = {path.lower(): path for path in extra_paths}
        self._by_id: dict[str, dict[str, Any]] | None = None

    def fields(self) -> tuple[FieldSpec, ...]:
        return self._fields

    def resolve(self, path: str) -> str | None:
        if "." in path:
            return self._paths.get(path.lower())
        return super().resolve(path)

    def _partition_list(self, hints: dict[str, Sequence[_soql.Value]]) -> list[str | None]:
        for key, mapper in self._partition_keys.items():
            values = hints.get(key)
            if values is not None:
                mapped = {mapper(v) for v in values if isinstance(v, str)}
                found: list[str | None] = []
                found.extend(sorted(m for m in mapped if m is not None))
                return found
        if self._partitions is not None:
            return list(self._partitions())
        return [None]

    def iter_rows(self, hints: dict[str, Sequence[_soql.Value]], include_deleted: bool) -> Iterator[Row]:
        for partition in self._partition_list(hints):
            for values in self._rows(partition):
                yield DictRow(self, values)

    def row(self, record_id: str) -> Row | None:
        if self._partitions is not None:
            return None
        if self._by_id is None:
            self._by_id = {str(values.get("Id")): values for values in self._rows(None)}
        values = self._by_id.get(canonical_id(record_id)) if len(record_id) in (15, 18) else None
        return DictRow(self, values) if values is not None else None


# ---------------------------------------------------------------------------------------------
# Transactions
# ---------------------------------------------------------------------------------------------


@dataclass
class Txn:
    """Undo log for one all-or-none unit of work."""

    undo: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True)
class QueryOutcome:
    """Result of a SOQL query before paging: ``total_size`` and the rendered records."""

    total_size: int
    records: list[dict[str, Any]]


# ---------------------------------------------------------------------------------------------
# The org
# ---------------------------------------------------------------------------------------------


class OrgData:
    """All data of one fake org; deterministic for a given ``seed``; thread-safe."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.lock = threading.RLock()
        self.catalog = _build_catalog(seed)
        self.by_lower = {info.name.lower(): info for info in self.catalog}
        self.by_prefix: dict[str, ObjectInfo] = {}
        for info in self.catalog:
            if info.key_prefix and info.key_prefix not in self.by_prefix and info.key_prefix != "000":
                self.by_prefix[info.key_prefix] = info
        self.created: dict[str, dict[str, dict[str, Any]]] = {}
        self.updates: dict[str, dict[str, Any]] = {}
        self.deleted: set[str] = set()
        self._created_counter = 10_000_000
        self._fields_cache: dict[str, tuple[FieldSpec, ...]] = {}
        self._field_maps: dict[tuple[str, bool], dict[str, FieldSpec]] = {}
        self._tables: dict[tuple[str, bool], Table] = {}
        self._describe_cache: dict[tuple[str, str, bool], dict[str, Any]] = {}
        self._global_cache: dict[tuple[str, bool], dict[str, Any]] = {}
        self._children: dict[str, list[tuple[str, str, str | None]]] | None = None
        self._audit_rows: list[dict[str, Any]] | None = None
        self._tooling_infos = {
            name: ObjectInfo(
                name=name,
                index=10_000 + i,
                key_prefix=self._tooling_prefix(name),
                kind="setup",
                label=_label_for(name),
                label_plural=_plural(_label_for(name)),
            )
            for i, name in enumerate(TOOLING_OBJECTS)
        }

    # -- catalog ---------------------------------------------------------------------------

    def _tooling_prefix(self, name: str) -> str | None:
        info = self.by_lower.get(name.lower())
        if info is not None:
            return info.key_prefix
        return {"ValidationRule": "03d", "WorkflowRule": "01Q"}.get(name)

    def info(self, name: str, *, tooling: bool = False) -> ObjectInfo | None:
        """Catalog entry for ``name`` (case-insensitive) on the REST or Tooling side."""
        if tooling:
            for key, info in self._tooling_infos.items():
                if key.lower() == name.lower():
                    return info
            return None
        return self.by_lower.get(name.lower())

    def table(self, name: str | None, *, tooling: bool = False) -> Table | None:
        """The queryable table for ``name``, or ``None`` if the object does not exist."""
        if not name:
            return None
        info = self.info(name, tooling=tooling)
        if info is None:
            return None
        key = (info.name, tooling)
        table = self._tables.get(key)
        if table is None:
            table = self._make_table(info, tooling)
            self._tables[key] = table
        return table

    def _make_table(self, info: ObjectInfo, tooling: bool) -> Table:
        maker = _VIRTUAL_TABLES.get(info.name)
        if maker is not None:
            return maker(self, info, tooling)
        return DataTable(self, info, RECORD_COUNTS.get(info.name, 0))

    def row_by_id(self, record_id: object) -> Row | None:
        """The row any id points at (generated, created or a small setup table)."""
        parsed = parse_id(record_id)
        if parsed is None or not isinstance(record_id, str):
            return None
        info = self.by_prefix.get(parsed[0])
        if info is None:
            return None
        table = self.table(info.name)
        return table.row(record_id) if table is not None else None

    # -- fields ------------------------------------------------------------------------------

    def field_map(self, table: Table) -> dict[str, FieldSpec]:
        """Fields of ``table`` keyed by lower-case name (cached)."""
        key = (table.name, table.tooling)
        cached = self._field_maps.get(key)
        if cached is None:
            cached = {spec.name.lower(): spec for spec in table.fields()}
            self._field_maps[key] = cached
        return cached

    def object_fields(self, info: ObjectInfo) -> tuple[FieldSpec, ...]:
        """Generated field list of an ordinary (non-virtual) object."""
        cached = self._fields_cache.get(info.name)
        if cached is None:
            cached = tuple(self._generate_fields(info))
            self._fields_cache[info.name] = cached
        return cached

    def _generate_fields(self, info: ObjectInfo) -> list[FieldSpec]:
        name = info.name
        if name in _HAND_FIELDS:
            system = _system_fields(owner=name != "User", activity=name != "User")
            return system + list(_HAND_FIELDS[name])
        rng = random.Random(f"fields:{self.seed}:{name}")
        parent = info.parent or ""
        if info.kind == "history":
            return [
                _f("Id", "id", nillable=False, createable=False, updateable=False),
                _f("IsDeleted", "boolean", nillable=False, createable=False, updateable=False),
                _ref(f"{parent}Id", parent, parent, createable=False, updateable=False),
                _ref("CreatedById", "User", "CreatedBy", createable=False, updateable=False),
                _f("CreatedDate", "datetime", createable=False, updateable=False),
                _pick("Field", "created", "Name", "Owner", "Status", createable=False, updateable=False),
                _pick("DataType", "Text", "EntityId", "DateOnly", createable=False, updateable=False),
                _f("OldValue", "anyType", createable=False, updateable=False),
                _f("NewValue", "anyType", createable=False, updateable=False),
            ]
        if info.kind == "share":
            level = ("Read", "Edit", "All")
            return [
                _f("Id", "id", nillable=False, createable=False, updateable=False),
                _ref(f"{parent}Id", parent, parent, createable=False, updateable=False),
                _ref("UserOrGroupId", "User", "UserOrGroup"),
                _pick(f"{parent}AccessLevel", *level),
                _pick("RowCause", "Owner", "Manual", "Rule", "ImplicitChild"),
                _f("LastModifiedDate", "datetime", createable=False, updateable=False),
                _ref("LastModifiedById", "User", "LastModifiedBy", createable=False, updateable=False),
                _f("IsDeleted", "boolean", nillable=False, createable=False, updateable=False),
            ]
        if info.kind == "feed":
            return [
                _f("Id", "id", nillable=False, createable=False, updateable=False),
                _ref("ParentId", parent, "Parent"),
                _pick("Type", "TextPost", "LinkPost", "ContentPost", "TrackedChange"),
                _ref("CreatedById", "User", "CreatedBy", createable=False, updateable=False),
                _f("CreatedDate", "datetime", createable=False, updateable=False),
                _f("IsDeleted", "boolean", nillable=False, createable=False, updateable=False),
                _f("LastModifiedDate", "datetime", createable=False, updateable=False),
                _f("SystemModstamp", "datetime", createable=False, updateable=False),
                _f("CommentCount", "int", createable=False, updateable=False),
                _f("LikeCount", "int", createable=False, updateable=False),
                _f("Title", "string"),
                _f("Body", "textarea"),
                _f("LinkUrl", "url"),
                _f("IsRichText", "boolean", nillable=False),
            ]
        if info.kind == "changeevent":
            return [
                _f("Id", "id", nillable=False, createable=False, updateable=False),
                _f("ReplayId", "string", createable=False, updateable=False),
                _f("ChangeEventHeader", "complexvalue", createable=False, updateable=False),
                _f("Name", "string", createable=False, updateable=False),
                _ref("OwnerId", "User", "Owner", createable=False, updateable=False),
                _f("LastModifiedDate", "datetime", createable=False, updateable=False),
            ]
        fields = _system_fields(owner=info.kind != "readonly")
        fields.insert(
            2,
            _f(
                "Name",
                "string",
                length=80,
                nillable=info.kind != "custom",
                name_field=True,
                label=f"{info.label} Name",
            ),
        )
        if info.custom:
            parent_name = self._custom_parent(name)
            if parent_name is not None:
                fields.append(
                    _ref(
                        f"{parent_name}__c", parent_name, f"{parent_name}__r", custom=True, label=parent_name
                    )
                )
            pool = list(_CUSTOM_FIELD_POOL)
            count = rng.randint(14, 34)
            for base, ftype in rng.sample(pool, count):
                fields.append(self._pool_field(base + "__c", base, ftype, rng, custom=True))
        else:
            count = rng.randint(8, 24)
            for base, ftype in rng.sample(list(_STANDARD_FIELD_POOL), count):
                fields.append(self._pool_field(base, base, ftype, rng, custom=False))
        if info.kind == "readonly":
            fields = [dataclasses.replace(spec, createable=False, updateable=False) for spec in fields]
        return fields

    @staticmethod
    def _pool_field(name: str, base: str, ftype: str, rng: random.Random, *, custom: bool) -> FieldSpec:
        if ftype == "picklist":
            values = _PICKLIST_VALUES.get(base) or tuple(
                f"{_label_for(base)} {c}" for c in "ABCDE"[: rng.randint(3, 5)]
            )
            return _pick(name, *values, custom=custom)
        if ftype == "string":
            return _f(
                name,
                "string",
                length=rng.choice((40, 80, 100, 255)),
                custom=custom,
                external_id=base in ("External_Key", "Legacy_Id", "ExternalKey"),
            )
        if ftype in ("double", "currency", "percent"):
            return _f(name, ftype, precision=18, scale=2 if ftype == "currency" else 0, custom=custom)
        return _f(name, ftype, custom=custom, nillable=ftype != "boolean")

    def _custom_parent(self, name: str) -> str | None:
        value = _h(self.seed, "parent", name)
        if value % 3 != 0:
            return None
        return _CUSTOM_PARENTS[(value // 3) % len(_CUSTOM_PARENTS)]

    def child_relationships(self, name: str) -> list[dict[str, Any]]:
        """Describe ``childRelationships`` of ``name``."""
        if self._children is None:
            children: dict[str, list[tuple[str, str, str | None]]] = {}
            for hand_parent, entries in _HAND_CHILDREN.items():
                children.setdefault(hand_parent, []).extend(entries)
            for info in self.catalog:
                if info.kind == "history" and info.parent:
                    children.setdefault(info.parent, []).append((info.name, f"{info.parent}Id", "Histories"))
                elif info.kind == "share" and info.parent:
                    children.setdefault(info.parent, []).append((info.name, f"{info.parent}Id", "Shares"))
                elif info.kind == "feed" and info.parent:
                    children.setdefault(info.parent, []).append((info.name, "ParentId", "Feeds"))
                elif info.custom:
                    parent = self._custom_parent(info.name)
                    if parent is not None:
                        base = info.name[:-3]
                        children.setdefault(parent, []).append((info.name, f"{parent}__c", f"{base}s__r"))
            self._children = children
        return [
            {
                "cascadeDelete": field_name.endswith("Id") and rel in ("Histories", "Shares", "Feeds"),
                "childSObject": child,
                "deprecatedAndHidden": False,
                "field": field_name,
                "junctionIdListNames": [],
                "junctionReferenceTo": [],
                "relationshipName": rel,
                "restrictedDelete": False,
            }
            for child, field_name, rel in self._children.get(name, [])
        ]

    # -- describes ---------------------------------------------------------------------------

    def global_describe(self, version: str, *, tooling: bool = False) -> dict[str, Any]:
        """Body of ``GET /sobjects/`` (REST: 1,462 objects; Tooling: the tooling objects)."""
        key = (version, tooling)
        cached = self._global_cache.get(key)
        if cached is None:
            infos = list(self._tooling_infos.values()) if tooling else self.catalog
            cached = {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [info.global_entry(version, tooling=tooling) for info in infos],
            }
            self._global_cache[key] = cached
        return cached

    def describe(self, name: str, version: str, *, tooling: bool = False) -> dict[str, Any]:
        """Body of ``GET /sobjects/{name}/describe``; 404 ``NOT_FOUND`` for an unknown object."""
        table = self.table(name, tooling=tooling)
        if table is None:
            raise not_found()
        key = (table.name, version, tooling)
        cached = self._describe_cache.get(key)
        if cached is not None:
            return cached
        info = table.info
        entry = info.global_entry(version, tooling=tooling)
        base = entry["urls"]["sobject"]
        record_types = [
            {
                "active": True,
                "available": True,
                "defaultRecordTypeMapping": True,
                "developerName": "Master",
                "master": True,
                "name": "Master",
                "recordTypeId": _MASTER_RECORD_TYPE,
                "urls": {"layout": f"{base}/describe/layouts/{_MASTER_RECORD_TYPE}"},
            }
        ]
        for number, (developer_name, label) in enumerate(_RECORD_TYPES.get(info.name, [])):
            rt_id = self.record_type_id(info.name, number)
            record_types.insert(
                number,
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": number == 0,
                    "developerName": developer_name,
                    "master": False,
                    "name": label,
                    "recordTypeId": rt_id,
                    "urls": {"layout": f"{base}/describe/layouts/{rt_id}"},
                },
            )
        if len(record_types) > 1:
            record_types[-1]["defaultRecordTypeMapping"] = False
        described = {key_: value for key_, value in entry.items() if key_ != "urls"}
        described.update(
            {
                "actionOverrides": [],
                "childRelationships": [] if tooling else self.child_relationships(info.name),
                "compactLayoutable": info.createable,
                "defaultImplementation": None,
                "extendedBy": None,
                "extendsInterfaces": None,
                "fields": [spec.describe() for spec in table.fields()],
                "implementedBy": None,
                "implementsInterfaces": None,
                "listviewable": None,
                "lookupLayoutable": None,
                "namedLayoutInfos": [],
                "networkScopeFieldName": None,
                "recordTypeInfos": record_types,
                "searchLayoutable": info.createable,
                "sobjectDescribeOption": "FULL",
                "supportedScopes": [
                    {"label": "All " + info.label_plural.lower(), "name": "everything"},
                    {"label": "My " + info.label_plural.lower(), "name": "mine"},
                ]
                if info.createable
                else [],
                "urls": {
                    **entry["urls"],
                    "compactLayouts": f"{base}/describe/compactLayouts",
                    "approvalLayouts": f"{base}/describe/approvalLayouts",
                    "listviews": f"{base}/listviews",
                    "quickActions": f"{base}/quickActions",
                    "layouts": f"{base}/describe/layouts",
                },
            }
        )
        self._describe_cache[key] = described
        return described

    def basic_info(self, name: str, version: str, *, tooling: bool = False) -> dict[str, Any]:
        """Body of ``GET /sobjects/{name}/``: ``objectDescribe`` plus up to 5 ``recentItems``."""
        table = self.table(name, tooling=tooling)
        if table is None:
            raise not_found()
        recent: list[dict[str, Any]] = []
        name_field = "Name" if "name" in table.field_map() else None
        for row in table.iter_rows({}, include_deleted=False):
            if len(recent) >= 5:
                break
            item: dict[str, Any] = {"attributes": self._attributes(table, row.id, version), "Id": row.id}
            if name_field:
                item[name_field] = row.get(name_field)
            recent.append(item)
        return {"objectDescribe": table.info.global_entry(version, tooling=tooling), "recentItems": recent}

    def record_type_id(self, sobject: str, number: int) -> str:
        """Id of the ``number``-th non-master record type of ``sobject``."""
        offset = sorted(_RECORD_TYPES).index(sobject) * 10
        return make_id("012", offset + number + 1)

    # -- generated values --------------------------------------------------------------------

    def generate_value(self, table: DataTable, index: int, field_name: str) -> Any:
        """Value of ``field_name`` on generated row ``index`` of ``table``."""
        special = _SPECIAL_VALUES.get(table.name)
        if special is not None:
            value = special(self, index, field_name)
            if value is not _MISSING:
                return value
        spec = table.field_map().get(field_name.lower())
        if spec is None:
            return None
        return self._generic_value(table, index, spec)

    def person(self, kind: str, index: int) -> tuple[str, str]:
        """Deterministic (first, last) name for row ``index`` of ``kind``."""
        first = _FIRST_NAMES[_h(self.seed, kind, "first", index) % len(_FIRST_NAMES)]
        last = _LAST_NAMES[_h(self.seed, kind, "last", index) % len(_LAST_NAMES)]
        return first, last

    def data_id(self, sobject: str, index: int) -> str | None:
        """Id of generated row ``index`` (mod the object's row count) of ``sobject``."""
        count = RECORD_COUNTS.get(sobject, 0)
        info = self.by_lower.get(sobject.lower())
        if not count or info is None or info.key_prefix is None:
            return None
        return make_id(info.key_prefix, index % count + 1)

    def created_date(self, sobject: str, index: int) -> _dt.date:
        """Creation day of generated row ``index``."""
        return _soql.ORG_TODAY - _dt.timedelta(days=30 + _h(self.seed, sobject, "created", index) % 1500)

    def _generic_value(self, table: DataTable, index: int, spec: FieldSpec) -> Any:
        name = spec.name
        seed = _h(self.seed, table.name, name, index)
        if name in ("CreatedDate", "LastModifiedDate", "SystemModstamp"):
            day = self.created_date(table.name, index)
            if name != "CreatedDate":
                day = min(
                    day + _dt.timedelta(days=_h(self.seed, table.name, "mod", index) % 20), _soql.ORG_TODAY
                )
            return _iso_datetime(day, _h(self.seed, table.name, name, index))
        if name in ("CreatedById", "LastModifiedById", "OwnerId"):
            return self.data_id("User", 0 if name == "CreatedById" else seed % RECORD_COUNTS["User"])
        if name == "RecordTypeId":
            types = _RECORD_TYPES.get(table.name)
            return self.record_type_id(table.name, index % len(types)) if types else None
        if name in ("LastViewedDate", "LastReferencedDate", "LastActivityDate"):
            if seed % 3:
                return None
            day = _soql.ORG_TODAY - _dt.timedelta(days=seed % 60)
            return day.isoformat() if spec.type == "date" else _iso_datetime(day, seed)
        kind = spec.type
        if kind == "string":
            if spec.name_field:
                return f"{table.info.label} {index + 1}"
            text = f"{spec.display_label} {index + 1}"
            return text[: spec.length or 255]
        if kind == "textarea":
            return f"{spec.display_label} for {table.info.label} {index + 1}." if seed % 4 else None
        if kind == "picklist":
            return spec.picklist[seed % len(spec.picklist)] if spec.picklist else None
        if kind == "boolean":
            return seed % 2 == 0
        if kind == "date":
            return (_soql.ORG_TODAY - _dt.timedelta(days=seed % 1000 - 200)).isoformat()
        if kind == "datetime":
            return _iso_datetime(_soql.ORG_TODAY - _dt.timedelta(days=seed % 1000), seed)
        if kind == "int":
            return seed % 1000
        if kind in ("double", "currency"):
            return float(seed % 1_000_000) if kind == "currency" else float(seed % 1000)
        if kind == "percent":
            return float(seed % 101)
        if kind == "email":
            return f"{table.name.lower()}.{index + 1}@example.com"
        if kind == "phone":
            return f"(555) {seed % 900 + 100:03d}-{index % 10000:04d}"
        if kind == "url":
            return f"https://www.example.com/{table.name.lower()}/{index + 1}"
        if kind == "reference":
            target = spec.reference_to[0] if spec.reference_to else ""
            if target in RECORD_COUNTS and seed % 4:
                return self.data_id(target, seed)
            return None
        return None

    # -- records (REST) ----------------------------------------------------------------------

    def _attributes(self, table: Table, record_id: str | None, version: str) -> dict[str, Any]:
        area = "tooling/" if table.tooling else ""
        attributes: dict[str, Any] = {"type": table.name}
        if record_id:
            attributes["url"] = f"/services/data/v{version}/{area}sobjects/{table.name}/{record_id}"
        return attributes

    def render(self, table: Table, row: Row, paths: Sequence[str], version: str) -> dict[str, Any]:
        """A record as the REST API returns it: ``attributes`` then each (possibly nested) path."""
        record: dict[str, Any] = {"attributes": self._attributes(table, row.id, version)}
        area = "tooling/" if table.tooling else ""
        for path in paths:
            parts = path.split(".")
            target: dict[str, Any] | None = record
            for depth in range(len(parts) - 1):
                assert target is not None
                key = parts[depth]
                if key not in target:
                    ref = row.ref(".".join(parts[: depth + 1]))
                    if ref is None:
                        target[key] = None
                    else:
                        nested_type, nested_id = ref
                        attrs: dict[str, Any] = {"type": nested_type}
                        if nested_id:
                            attrs["url"] = (
                                f"/services/data/v{version}/{area}sobjects/{nested_type}/{nested_id}"
                            )
                        target[key] = {"attributes": attrs}
                target = target[key]
                if target is None:
                    break
            if target is not None:
                target[parts[-1]] = row.get(path)
        return record

    def get_record(
        self,
        name: str,
        record_id: str,
        version: str,
        fields: Sequence[str] | None = None,
        *,
        tooling: bool = False,
    ) -> dict[str, Any]:
        """Body of ``GET /sobjects/{name}/{id}``; 404 ``NOT_FOUND`` when it does not exist."""
        table = self.table(name, tooling=tooling)
        if table is None:
            raise not_found()
        with self.lock:
            row = table.row(record_id)
            if row is None or row.deleted:
                raise not_found()
            paths = self._resolve_all(table, fields) if fields else [spec.name for spec in table.fields()]
            return self.render(table, row, paths, version)

    def _resolve_all(self, table: Table, fields: Sequence[str]) -> list[str]:
        out: list[str] = []
        for name in fields:
            resolved = table.resolve(name.strip())
            if resolved is None:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name.strip()}' on sobject of type {table.name}",
                )
            out.append(resolved)
        return out

    def retrieve_many(
        self, name: str, ids: Sequence[str], fields: Sequence[str], version: str
    ) -> list[dict[str, Any] | None]:
        """sObject Collections retrieve: one record (or ``None``) per id, in order."""
        table = self.table(name)
        if table is None:
            raise not_found()
        if not fields:
            raise ApiError(400, "MISSING_ARGUMENT", "fields parameter is required")
        paths = self._resolve_all(table, fields)
        out: list[dict[str, Any] | None] = []
        with self.lock:
            for record_id in ids:
                row = table.row(record_id)
                out.append(None if row is None or row.deleted else self.render(table, row, paths, version))
        return out

    def _writable_table(self, name: str, operation: str) -> DataTable:
        table = self.table(name)
        if table is None:
            raise not_found()
        if not isinstance(table, DataTable) or not table.info.createable:
            verb = {"insert": "inserted", "update": "updated", "delete": "deleted"}[operation]
            raise ApiError(
                400,
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY"
                if operation != "delete"
                else "INVALID_TYPE_FOR_OPERATION",
                f"entity type cannot be {verb}: {table.info.label}",
            )
        return table

    def _check_values(self, table: DataTable, values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        fmap = table.field_map()
        clean: dict[str, Any] = {}
        for key, value in values.items():
            if key == "attributes":
                continue
            spec = fmap.get(key.lower())
            if spec is None:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{key}' on sobject of type {table.name}",
                )
            allowed = spec.createable if creating else spec.updateable
            if not allowed:
                raise ApiError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {spec.name}. Please check the security settings "
                    "of this field and verify that it is read/write for your profile or permission set.",
                    [spec.name],
                )
            clean[spec.name] = value
        if creating:
            missing = [
                spec.name
                for spec in table.fields()
                if not spec.nillable
                and spec.createable
                and spec.type != "boolean"
                and spec.name not in ("OwnerId",)
                and clean.get(spec.name) in (None, "")
            ]
            if missing:
                raise ApiError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
        return clean

    def create(self, name: str, values: dict[str, Any], txn: Txn | None = None) -> str:
        """Insert a record; return its id. Raises :class:`ApiError` like Salesforce would."""
        table = self._writable_table(name, "insert")
        with self.lock:
            clean = self._check_values(table, values, creating=True)
            self._created_counter += 1
            record_id = make_id(table.info.key_prefix or "000", self._created_counter)
            stamp = now_iso()
            user = self.data_id("User", 0)
            record: dict[str, Any] = {spec.name: None for spec in table.fields()}
            for spec in table.fields():
                if spec.type == "boolean":
                    record[spec.name] = False
            record.update(
                {
                    "CreatedDate": stamp,
                    "LastModifiedDate": stamp,
                    "SystemModstamp": stamp,
                    "CreatedById": user,
                    "LastModifiedById": user,
                }
            )
            if "ownerid" in table.field_map():
                record["OwnerId"] = user
            record.update(clean)
            first, last = record.get("FirstName"), record.get("LastName")
            if "Name" in record and table.name in ("Contact", "Lead", "User"):
                record["Name"] = " ".join(str(part) for part in (first, last) if part)
            bucket = self.created.setdefault(table.name, {})
            bucket[record_id] = record
            if txn is not None:

                def undo_create() -> None:
                    bucket.pop(record_id, None)

                txn.undo.append(undo_create)
            return record_id

    def update(self, name: str, record_id: str, values: dict[str, Any], txn: Txn | None = None) -> None:
        """Update fields of an existing record."""
        table = self._writable_table(name, "update")
        with self.lock:
            row = table.row(record_id)
            if row is None:
                raise not_found()
            if row.deleted:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            clean = self._check_values(table, values, creating=False)
            clean["LastModifiedDate"] = clean["SystemModstamp"] = now_iso()
            previous = dict(self.updates.get(row.id, {}))
            had_entry = row.id in self.updates
            self.updates.setdefault(row.id, {}).update(clean)
            if txn is not None:

                def undo(rid: str = row.id) -> None:
                    if had_entry:
                        self.updates[rid] = previous
                    else:
                        self.updates.pop(rid, None)

                txn.undo.append(undo)

    def delete(self, name: str | None, record_id: str, txn: Txn | None = None) -> None:
        """Delete a record (it stays visible to ``queryAll`` with ``IsDeleted = true``)."""
        if name is None:
            parsed = parse_id(record_id)
            info = self.by_prefix.get(parsed[0]) if parsed else None
            if info is None:
                raise ApiError(
                    404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible"
                )
            name = info.name
        table = self._writable_table(name, "delete")
        with self.lock:
            row = table.row(record_id)
            if row is None:
                raise not_found()
            if row.deleted:
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            self.deleted.add(row.id)
            if txn is not None:
                removed = row.id
                txn.undo.append(lambda: self.deleted.discard(removed))

    def rollback(self, txn: Txn) -> None:
        """Undo every write recorded in ``txn``, newest first."""
        with self.lock:
            for step in reversed(txn.undo):
                step()
            txn.undo.clear()

    def sobject_for_id(self, record_id: object) -> str | None:
        """Name of the sObject an id belongs to (by key prefix)."""
        parsed = parse_id(record_id)
        info = self.by_prefix.get(parsed[0]) if parsed else None
        return info.name if info is not None else None

    # -- SOQL --------------------------------------------------------------------------------

    def query(
        self, soql: str, version: str, *, tooling: bool = False, include_deleted: bool = False
    ) -> QueryOutcome:
        """Run ``soql``; errors are ``MALFORMED_QUERY``, ``INVALID_TYPE`` or ``INVALID_FIELD`` (400)."""
        try:
            parsed = _soql.parse(soql)
        except _soql.SoqlError as exc:
            raise ApiError(400, "MALFORMED_QUERY", str(exc)) from exc
        table = self.table(parsed.sobject, tooling=tooling)
        if table is None or not table.info.queryable:
            raise ApiError(
                400,
                "INVALID_TYPE",
                f"sObject type '{parsed.sobject}' is not supported. If you are attempting to use a custom "
                "object, be sure to append the '__c' after the entity name. Please reference your WSDL or "
                "the describe call for the appropriate names.",
            )
        resolved: dict[str, str] = {}
        for path in parsed.paths():
            canonical = table.resolve(path)
            if canonical is None:
                kind = "field" if "." not in path else "relationship"
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{path}' on entity '{table.name}'. If you are attempting to use a "
                    f"custom {kind}, be sure to append the '__c' after the custom {kind} name. Please "
                    "reference your WSDL or the describe call for the appropriate names.",
                )
            resolved[path] = canonical
        lower_to_canonical = {path.lower(): canonical for path, canonical in resolved.items()}
        hints = {
            lower_to_canonical.get(path, path).lower(): values
            for path, values in _soql.equality_hints(parsed.where).items()
        }
        with self.lock:
            matched: list[Row] = []
            where = parsed.where
            for row in table.iter_rows(hints, include_deleted):
                if where is None or _soql.evaluate(where, _getter(row, resolved)):
                    matched.append(row)
            for order in reversed(parsed.order_by):
                key_path = resolved[order.path]
                nulls_last = order.nulls_last if order.nulls_last is not None else order.descending
                present = [r for r in matched if r.get(key_path) is not None]
                absent = [r for r in matched if r.get(key_path) is None]
                present.sort(key=_order_key(key_path), reverse=order.descending)
                matched = present + absent if nulls_last else absent + present
            if parsed.offset:
                matched = matched[parsed.offset :]
            if parsed.limit is not None:
                matched = matched[: parsed.limit]
            if parsed.count_only:
                return QueryOutcome(len(matched), [])
            if any(item.aggregate for item in parsed.items):
                result: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
                for number, item in enumerate(parsed.items):
                    count = sum(1 for r in matched if r.get(resolved[item.path]) is not None)
                    result[item.alias or f"expr{number}"] = count
                return QueryOutcome(1, [result])
            paths = [resolved[item.path] for item in parsed.items]
            records = [self.render(table, row, paths, version) for row in matched]
            return QueryOutcome(len(records), records)

    # -- setup data --------------------------------------------------------------------------

    def user_name(self, user_id: str | None) -> str | None:
        """Full name of a generated user."""
        parsed = parse_id(user_id)
        if parsed is None or parsed[0] != "005":
            return None
        first, last = self.person("User", parsed[1] - 1)
        return f"{first} {last}"

    def entity_durable_id(self, info: ObjectInfo) -> str:
        """``EntityDefinition.DurableId``: the API name, or the ``01I`` id of a custom object."""
        return make_id("01I", info.index + 1)[:15] if info.custom else info.name

    def entity_from_key(self, value: str) -> str | None:
        """Map a QualifiedApiName / DurableId / TableEnumOrId value to a canonical object name."""
        info = self.by_lower.get(value.lower())
        if info is not None:
            return info.name
        parsed = parse_id(value)
        if parsed is not None and parsed[0] == "01I":
            index = parsed[1] - 1
            if 0 <= index < len(self.catalog) and self.catalog[index].custom:
                return self.catalog[index].name
        return None

    def audit_rows(self) -> list[dict[str, Any]]:
        """The 1,500 generated SetupAuditTrail rows, newest first."""
        if self._audit_rows is None:
            rows: list[dict[str, Any]] = []
            actions = (
                ("createdCustomField", "Created custom field {field} ({type}) on {object}"),
                ("changedCustomField", "Changed custom field {field} on {object}"),
                ("changedValidationFormula", "Changed validation formula on {object}"),
                ("changedApexTrigger", "Changed Apex trigger on {object}"),
                ("PermSetFlsChanged", "Changed field-level security for {object}: {field}"),
                ("changedPicklistValues", "Changed picklist values for {object} field {field}"),
                ("createdRecordTypeCustom", "Created record type for {object}"),
            )
            stamp = _dt.datetime(_soql.ORG_TODAY.year, _soql.ORG_TODAY.month, _soql.ORG_TODAY.day)
            candidates = [info for info in self.catalog if info.kind in ("data", "custom")]
            for number in range(1500):
                value = _h(self.seed, "audit", number)
                info = candidates[value % len(candidates)]
                action, template = actions[(value // 7) % len(actions)]
                fields = self.object_fields(info) if info.kind in ("data", "custom") else ()
                custom_fields = [spec for spec in fields if spec.custom] or list(fields)
                field_name = custom_fields[value % len(custom_fields)].name if custom_fields else "Name"
                stamp -= _dt.timedelta(minutes=37 + value % 300)
                user_id = self.data_id("User", value % 5)
                section = "Custom Objects" if info.custom else f"Customize {info.label_plural}"
                if action == "changedApexTrigger":
                    section = "Apex Trigger"
                elif action == "PermSetFlsChanged":
                    section = "Manage Users"
                rows.append(
                    {
                        "Id": make_id("0Ym", number + 1),
                        "Action": action,
                        "Section": section,
                        "Display": template.format(field=field_name, type="Text", object=info.name),
                        "CreatedDate": stamp.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
                        "CreatedById": user_id,
                        "CreatedBy.Name": self.user_name(user_id),
                        "DelegateUser": None,
                        "ResponsibleNamespacePrefix": None,
                        "CreatedByContext": None,
                        "CreatedByIssuer": None,
                    }
                )
            self._audit_rows = rows
        return self._audit_rows

    def triggers(self, info: ObjectInfo) -> list[dict[str, Any]]:
        """Generated ApexTrigger rows of one object (0-3)."""
        if info.kind not in ("data", "custom"):
            return []
        value = _h(self.seed, "triggers", info.name)
        count = (0, 0, 0, 1, 1, 1, 2, 3)[value % 8]
        if info.name in RECORD_COUNTS and info.name != "User":
            count = max(count, 1)
        base = info.name[:-3] if info.custom else info.name
        events = ("Insert", "Update", "Delete")
        out: list[dict[str, Any]] = []
        for number in range(count):
            bits = _h(self.seed, "trigger-events", info.name, number)
            day = self.created_date(info.name, number)
            out.append(
                {
                    "Id": make_id("01q", info.index * 10 + number + 1),
                    "Name": f"{base.replace('_', '')}Trigger{number + 1 if number else ''}",
                    "TableEnumOrId": self.entity_durable_id(info),
                    "NamespacePrefix": None,
                    "ApiVersion": 59.0 - (bits % 12),
                    "Status": "Inactive" if bits % 11 == 0 else "Active",
                    "IsValid": True,
                    **{f"UsageBefore{event}": bool(bits >> shift & 1) for shift, event in enumerate(events)},
                    **{
                        f"UsageAfter{event}": bool(bits >> (shift + 3) & 1) or shift == 0
                        for shift, event in enumerate(events)
                    },
                    "UsageAfterUndelete": bool(bits >> 6 & 1),
                    "UsageIsBulk": True,
                    "LengthWithoutComments": 200 + bits % 4000,
                    "BodyCrc": float(bits),
                    "Body": f"trigger {base}Trigger on {info.name} (after insert) {{ }}",
                    "ManageableState": "unmanaged",
                    "CreatedDate": _iso_datetime(day, bits),
                    "CreatedById": self.data_id("User", 0),
                    "LastModifiedDate": _iso_datetime(
                        min(day + _dt.timedelta(days=bits % 90), _soql.ORG_TODAY), bits
                    ),
                    "LastModifiedById": self.data_id("User", bits % 5),
                }
            )
        return out


def _getter(row: Row, resolved: dict[str, str]) -> Callable[[str], object]:
    def get(path: str) -> object:
        return row.get(resolved[path])

    return get


def _order_key(path: str) -> Callable[[Row], tuple[int, Any]]:
    def key(row: Row) -> tuple[int, Any]:
        return _sort_key(row.get(path))

    return key


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value).casefold())


# ---------------------------------------------------------------------------------------------
# Special values for the objects that have records
# ---------------------------------------------------------------------------------------------


class _Missing:
    pass


_MISSING: Any = _Missing()


def _account_value(org: OrgData, index: int, name: str) -> Any:
    value = _h(org.seed, "Account", name, index)
    if name == "Name":
        a = _COMPANY_A[_h(org.seed, "Account", "a", index) % len(_COMPANY_A)]
        b = _COMPANY_B[_h(org.seed, "Account", "b", index) % len(_COMPANY_B)]
        return f"{a} {b} {index + 1:04d}"
    if name == "ParentId":
        return org.data_id("Account", index - index % 10) if index % 10 else None
    city, state, country = _CITIES[value % len(_CITIES)]
    location = {
        "BillingCity": city,
        "BillingState": state or None,
        "BillingCountry": country,
        "ShippingCity": city,
        "ShippingCountry": country,
    }
    if name in location:
        return location[name]
    if name == "BillingStreet":
        return f"{value % 9000 + 100} Market Street"
    if name == "BillingPostalCode":
        return f"{value % 90000 + 10000}"
    if name == "Website":
        return f"https://www.account{index + 1}.example.com"
    if name == "AccountNumber":
        return f"CD{value % 1_000_000:06d}"
    if name == "AnnualRevenue":
        return float((value % 5000) * 10_000)
    if name == "NumberOfEmployees":
        return value % 20_000 + 5
    return _MISSING


def _contact_value(org: OrgData, index: int, name: str) -> Any:
    first, last = org.person("Contact", index)
    if name == "FirstName":
        return first
    if name == "LastName":
        return last
    if name == "Name":
        return f"{first} {last}"
    if name == "Email":
        return f"{first.lower()}.{last.lower()}{index + 1}@example.com"
    if name == "AccountId":
        return org.data_id("Account", index)
    if name == "ReportsToId":
        return org.data_id("Contact", index - 1) if index % 5 else None
    if name == "MailingCity":
        return _CITIES[_h(org.seed, "Contact", "city", index) % len(_CITIES)][0]
    return _MISSING


def _opportunity_value(org: OrgData, index: int, name: str) -> Any:
    stage_index = _h(org.seed, "Opportunity", "stage", index) % len(_STAGES)
    stage = _STAGES[stage_index]
    if name == "StageName":
        return stage
    if name == "Probability":
        return float(_STAGE_PROBABILITY[stage_index])
    if name == "IsClosed":
        return stage.startswith("Closed")
    if name == "IsWon":
        return stage == "Closed Won"
    if name == "ForecastCategoryName":
        return "Closed" if stage == "Closed Won" else "Omitted" if stage == "Closed Lost" else "Pipeline"
    if name == "AccountId":
        return org.data_id("Account", _h(org.seed, "Opportunity", "account", index))
    if name == "Name":
        noun = _COMPANY_B[_h(org.seed, "Opportunity", "noun", index) % len(_COMPANY_B)]
        return f"{noun} deal {index + 1:04d}"
    if name == "Amount":
        return float(_h(org.seed, "Opportunity", "amount", index) % 500 * 1000 + 1000)
    if name == "CloseDate":
        return (
            _soql.ORG_TODAY + _dt.timedelta(days=_h(org.seed, "Opportunity", "close", index) % 365 - 180)
        ).isoformat()
    if name == "CampaignId":
        return None
    return _MISSING


def _lead_value(org: OrgData, index: int, name: str) -> Any:
    first, last = org.person("Lead", index)
    status = _LEAD_STATUSES[_h(org.seed, "Lead", "status", index) % len(_LEAD_STATUSES)]
    converted = status == "Closed - Converted"
    values: dict[str, Any] = {
        "FirstName": first,
        "LastName": last,
        "Name": f"{first} {last}",
        "Status": status,
        "IsConverted": converted,
        "Email": f"{first.lower()}.{last.lower()}.lead{index + 1}@example.com",
        "Company": f"{_COMPANY_A[_h(org.seed, 'Lead', 'co', index) % len(_COMPANY_A)]} Prospect {index + 1}",
    }
    if name in values:
        return values[name]
    if name in ("ConvertedAccountId", "ConvertedContactId", "ConvertedOpportunityId", "ConvertedDate"):
        if not converted:
            return None
        if name == "ConvertedDate":
            return (_soql.ORG_TODAY - _dt.timedelta(days=index % 300)).isoformat()
        return org.data_id(name[len("Converted") : -2], index)
    return _MISSING


def _case_value(org: OrgData, index: int, name: str) -> Any:
    status = _CASE_STATUSES[_h(org.seed, "Case", "status", index) % len(_CASE_STATUSES)]
    if name == "CaseNumber":
        return f"{index + 1:08d}"
    if name == "Status":
        return status
    if name == "IsClosed":
        return status == "Closed"
    if name == "ClosedDate":
        return (
            _iso_datetime(_soql.ORG_TODAY - _dt.timedelta(days=index % 200), index)
            if status == "Closed"
            else None
        )
    if name == "ContactId":
        return org.data_id("Contact", index)
    if name == "AccountId":
        return org.data_id("Account", index)
    if name == "IsEscalated":
        return status == "Escalated"
    if name == "Subject":
        topic = ("Login issue", "Billing question", "Outage", "Feature request")[index % 4]
        return f"Case {index + 1:05d}: {topic}"
    return _MISSING


def _user_value(org: OrgData, index: int, name: str) -> Any:
    first, last = org.person("User", index)
    profile = 0 if index == 0 else 1 + index % 2
    values: dict[str, Any] = {
        "FirstName": first,
        "LastName": last,
        "Name": f"{first} {last}",
        "Username": f"{first.lower()}.{last.lower()}{index + 1}@fake-org.example",
        "Email": f"{first.lower()}.{last.lower()}{index + 1}@example.com",
        "Alias": (first[:1] + last[:4]).lower(),
        "IsActive": index % 10 != 9,
        "ProfileId": make_id("00e", profile + 1),
        "UserRoleId": None,
        "ManagerId": org.data_id("User", 0) if index else None,
        "UserType": "Standard",
        "TimeZoneSidKey": "America/Los_Angeles",
        "LocaleSidKey": "en_US",
        "LanguageLocaleKey": "en_US",
        "EmailEncodingKey": "UTF-8",
        "CompanyName": "Fake Salesforce Org",
    }
    return values.get(name, _MISSING)


_SPECIAL_VALUES: dict[str, Callable[[OrgData, int, str], Any]] = {
    "Account": _account_value,
    "Contact": _contact_value,
    "Opportunity": _opportunity_value,
    "Lead": _lead_value,
    "Case": _case_value,
    "User": _user_value,
}


# ---------------------------------------------------------------------------------------------
# Virtual (setup / tooling) tables
# ---------------------------------------------------------------------------------------------


def _ro(name: str, ftype: str, **kw: Any) -> FieldSpec:
    return FieldSpec(name=name, type=ftype, createable=False, updateable=False, **kw)


def _ro_ref(name: str, target: str, rel: str) -> FieldSpec:
    return FieldSpec(
        name=name,
        type="reference",
        reference_to=(target,),
        relationship_name=rel,
        createable=False,
        updateable=False,
    )


_AUDIT_FIELDS = (
    _ro("Id", "id", nillable=False),
    _ro("Action", "string"),
    _ro("Section", "string"),
    _ro("CreatedDate", "datetime"),
    _ro_ref("CreatedById", "User", "CreatedBy"),
    _ro("Display", "string", length=1000),
    _ro("DelegateUser", "string"),
    _ro("ResponsibleNamespacePrefix", "string"),
    _ro("CreatedByContext", "string"),
    _ro("CreatedByIssuer", "string"),
)


def _audit_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    return VirtualTable(org, info, _AUDIT_FIELDS, lambda _p: org.audit_rows(), extra_paths=["CreatedBy.Name"])


def _profile_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id", nillable=False),
        _ro("Name", "string", name_field=True),
        _ro("UserType", "picklist"),
        _ro("Description", "string"),
        _ro("UserLicenseId", "reference"),
    )

    def rows(_partition: str | None) -> list[dict[str, Any]]:
        return [
            {
                "Id": make_id("00e", n + 1),
                "Name": name,
                "UserType": "Standard",
                "Description": None,
                "UserLicenseId": make_id("100", 1),
            }
            for n, name in enumerate(_PROFILES)
        ]

    return VirtualTable(org, info, fields, rows)


def _permission_set_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id", nillable=False),
        _ro("Name", "string"),
        _ro("Label", "string", name_field=True),
        _ro("IsOwnedByProfile", "boolean"),
        _ro_ref("ProfileId", "Profile", "Profile"),
        _ro("IsCustom", "boolean"),
        _ro("NamespacePrefix", "string"),
    )

    def rows(_partition: str | None) -> list[dict[str, Any]]:
        out = []
        for n, (name, label, profile) in enumerate(_PERMISSION_SETS):
            profile_id = make_id("00e", profile + 1) if profile is not None else None
            out.append(
                {
                    "Id": make_id("0PS", n + 1),
                    "Name": name,
                    "Label": label,
                    "IsOwnedByProfile": profile is not None,
                    "ProfileId": profile_id,
                    "Profile.Name": _PROFILES[profile] if profile is not None else None,
                    "IsCustom": profile is None,
                    "NamespacePrefix": None,
                }
            )
        return out

    return VirtualTable(org, info, fields, rows, extra_paths=["Profile.Name"])


def _record_type_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id", nillable=False),
        _ro("Name", "string", name_field=True),
        _ro("DeveloperName", "string"),
        _ro("SobjectType", "picklist"),
        _ro("IsActive", "boolean"),
        _ro("Description", "string"),
        _ro("NamespacePrefix", "string"),
    )

    def rows(_partition: str | None) -> list[dict[str, Any]]:
        return [
            {
                "Id": org.record_type_id(sobject, n),
                "Name": label,
                "DeveloperName": developer_name,
                "SobjectType": sobject,
                "IsActive": True,
                "Description": None,
                "NamespacePrefix": None,
            }
            for sobject in sorted(_RECORD_TYPES)
            for n, (developer_name, label) in enumerate(_RECORD_TYPES[sobject])
        ]

    return VirtualTable(org, info, fields, rows)


def _organization_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id", nillable=False),
        _ro("Name", "string", name_field=True),
        _ro("IsSandbox", "boolean"),
        _ro("OrganizationType", "picklist"),
        _ro("InstanceName", "string"),
        _ro("NamespacePrefix", "string"),
        _ro("TimeZoneSidKey", "picklist"),
        _ro("LanguageLocaleKey", "picklist"),
        _ro("DefaultLocaleSidKey", "picklist"),
    )

    def rows(_partition: str | None) -> list[dict[str, Any]]:
        return [
            {
                "Id": make_id("00D", 1),
                "Name": "Fake Salesforce Org",
                "IsSandbox": False,
                "OrganizationType": "Enterprise Edition",
                "InstanceName": "FAKE1",
                "NamespacePrefix": None,
                "TimeZoneSidKey": "America/Los_Angeles",
                "LanguageLocaleKey": "en_US",
                "DefaultLocaleSidKey": "en_US",
            }
        ]

    return VirtualTable(org, info, fields, rows)


def _perm_objects(org: OrgData) -> list[ObjectInfo]:
    return [info for info in org.catalog if info.kind in ("data", "custom")]


def _field_permissions_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id", nillable=False),
        _ro_ref("ParentId", "PermissionSet", "Parent"),
        _ro("SobjectType", "picklist"),
        _ro("Field", "picklist"),
        _ro("PermissionsRead", "boolean"),
        _ro("PermissionsEdit", "boolean"),
        _ro("SystemModstamp", "datetime"),
    )
    chosen_sets = (0, 1, 3)

    def rows(partition: str | None) -> list[dict[str, Any]]:
        target = org.info(partition or "")
        if target is None or target.kind not in ("data", "custom"):
            return []
        specs = [spec for spec in org.object_fields(target) if spec.describe()["permissionable"]][:12]
        out = []
        for field_number, spec in enumerate(specs):
            for set_number in chosen_sets:
                name, label, profile = _PERMISSION_SETS[set_number]
                bits = _h(org.seed, "fls", target.name, spec.name, set_number)
                read = set_number == 0 or bits % 5 != 0
                out.append(
                    {
                        "Id": make_id("01k", target.index * 1000 + field_number * 10 + set_number + 1),
                        "ParentId": make_id("0PS", set_number + 1),
                        "Parent.Name": name,
                        "Parent.Label": label,
                        "Parent.IsOwnedByProfile": profile is not None,
                        "Parent.Profile.Name": _PROFILES[profile] if profile is not None else None,
                        "SobjectType": target.name,
                        "Field": f"{target.name}.{spec.name}",
                        "PermissionsRead": read,
                        "PermissionsEdit": read and (set_number == 0 or bits % 3 != 0) and spec.updateable,
                        "SystemModstamp": _iso_datetime(org.created_date(target.name, field_number), bits),
                    }
                )
        return out

    return VirtualTable(
        org,
        info,
        fields,
        rows,
        partition_keys={"SobjectType": org.entity_from_key},
        partitions=lambda: [o.name for o in _perm_objects(org)],
        extra_paths=["Parent.Name", "Parent.Label", "Parent.IsOwnedByProfile", "Parent.Profile.Name"],
    )


def _object_permissions_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    perms = ("Read", "Create", "Edit", "Delete", "ViewAllRecords", "ModifyAllRecords")
    fields = (
        _ro("Id", "id", nillable=False),
        _ro_ref("ParentId", "PermissionSet", "Parent"),
        _ro("SobjectType", "picklist"),
        *[_ro(f"Permissions{p}", "boolean") for p in perms],
    )

    def rows(partition: str | None) -> list[dict[str, Any]]:
        target = org.info(partition or "")
        if target is None or target.kind not in ("data", "custom"):
            return []
        out = []
        for set_number in (0, 1, 3):
            name, label, _profile = _PERMISSION_SETS[set_number]
            admin = set_number == 0
            bits = _h(org.seed, "objperm", target.name, set_number)
            row: dict[str, Any] = {
                "Id": make_id("110", target.index * 10 + set_number + 1),
                "ParentId": make_id("0PS", set_number + 1),
                "Parent.Name": name,
                "Parent.Label": label,
                "SobjectType": target.name,
            }
            for shift, perm in enumerate(perms):
                row[f"Permissions{perm}"] = admin or (shift < 3 and bool(bits >> shift & 1)) or shift == 0
            out.append(row)
        return out

    return VirtualTable(
        org,
        info,
        fields,
        rows,
        partition_keys={"SobjectType": org.entity_from_key},
        partitions=lambda: [o.name for o in _perm_objects(org)],
        extra_paths=["Parent.Name", "Parent.Label"],
    )


def _apex_trigger_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id", nillable=False),
        _ro("Name", "string", name_field=True),
        _ro("TableEnumOrId", "picklist"),
        _ro("NamespacePrefix", "string"),
        _ro("ApiVersion", "double"),
        _ro("Status", "picklist"),
        _ro("IsValid", "boolean"),
        *[
            _ro(f"Usage{w}{e}", "boolean")
            for w in ("Before", "After")
            for e in ("Insert", "Update", "Delete")
        ],
        _ro("UsageAfterUndelete", "boolean"),
        _ro("UsageIsBulk", "boolean"),
        _ro("LengthWithoutComments", "int"),
        _ro("BodyCrc", "double"),
        _ro("Body", "textarea"),
        _ro("ManageableState", "picklist"),
        _ro("CreatedDate", "datetime"),
        _ro_ref("CreatedById", "User", "CreatedBy"),
        _ro("LastModifiedDate", "datetime"),
        _ro_ref("LastModifiedById", "User", "LastModifiedBy"),
    )

    def rows(partition: str | None) -> list[dict[str, Any]]:
        target = org.info(partition or "")
        return org.triggers(target) if target is not None else []

    return VirtualTable(
        org,
        info,
        fields,
        rows,
        tooling=tooling,
        partition_keys={"TableEnumOrId": org.entity_from_key},
        partitions=lambda: [o.name for o in _perm_objects(org)],
    )


def _apex_class_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id", nillable=False),
        _ro("Name", "string", name_field=True),
        _ro("NamespacePrefix", "string"),
        _ro("ApiVersion", "double"),
        _ro("Status", "picklist"),
        _ro("IsValid", "boolean"),
        _ro("LengthWithoutComments", "int"),
        _ro("BodyCrc", "double"),
        _ro("ManageableState", "picklist"),
        _ro("CreatedDate", "datetime"),
        _ro("LastModifiedDate", "datetime"),
    )
    cache: list[dict[str, Any]] = []

    def rows(_partition: str | None) -> list[dict[str, Any]]:
        if not cache:
            names = [f"{t['Name']}Handler" for o in _perm_objects(org) for t in org.triggers(o)]
            names += [f"Util{n:02d}" for n in range(40)]
            for number, name in enumerate(names):
                bits = _h(org.seed, "class", name)
                cache.append(
                    {
                        "Id": make_id("01p", number + 1),
                        "Name": name,
                        "NamespacePrefix": None,
                        "ApiVersion": 59.0 - bits % 10,
                        "Status": "Active",
                        "IsValid": True,
                        "LengthWithoutComments": 300 + bits % 9000,
                        "BodyCrc": float(bits),
                        "ManageableState": "unmanaged",
                        "CreatedDate": _iso_datetime(_soql.ORG_TODAY - _dt.timedelta(days=bits % 900), bits),
                        "LastModifiedDate": _iso_datetime(
                            _soql.ORG_TODAY - _dt.timedelta(days=bits % 90), bits
                        ),
                    }
                )
        return cache

    return VirtualTable(org, info, fields, rows, tooling=tooling)


def _entity_definition_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id"),
        _ro("DurableId", "string"),
        _ro("QualifiedApiName", "string"),
        _ro("DeveloperName", "string"),
        _ro("MasterLabel", "string"),
        _ro("Label", "string"),
        _ro("PluralLabel", "string"),
        _ro("KeyPrefix", "string"),
        _ro("NamespacePrefix", "string"),
        _ro("IsCustomizable", "boolean"),
        _ro("IsQueryable", "boolean"),
        _ro("IsTriggerable", "boolean"),
        _ro("IsApexTriggerable", "boolean"),
        _ro("IsCustomSetting", "boolean"),
        _ro("IsLayoutable", "boolean"),
    )

    def rows(partition: str | None) -> list[dict[str, Any]]:
        target = org.info(partition or "")
        if target is None:
            return []
        writable = target.createable
        return [
            {
                "Id": "000000000000000AAA",
                "DurableId": org.entity_durable_id(target),
                "QualifiedApiName": target.name,
                "DeveloperName": target.name.removesuffix("__c"),
                "MasterLabel": target.label,
                "Label": target.label,
                "PluralLabel": target.label_plural,
                "KeyPrefix": target.key_prefix,
                "NamespacePrefix": None,
                "IsCustomizable": writable,
                "IsQueryable": target.queryable,
                "IsTriggerable": writable,
                "IsApexTriggerable": writable,
                "IsCustomSetting": False,
                "IsLayoutable": writable,
            }
        ]

    return VirtualTable(
        org,
        info,
        fields,
        rows,
        tooling=tooling,
        partition_keys={"QualifiedApiName": org.entity_from_key, "DurableId": org.entity_from_key},
        partitions=lambda: [o.name for o in org.catalog],
    )


_VALUE_TYPES = {
    "id": "id",
    "reference": "id",
    "boolean": "boolean",
    "date": "date",
    "datetime": "datetime",
    "double": "double",
    "currency": "double",
    "percent": "double",
    "int": "int",
}


def _field_definition_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id"),
        _ro("DurableId", "string"),
        _ro("QualifiedApiName", "string"),
        _ro("DeveloperName", "string"),
        _ro("Label", "string"),
        _ro("MasterLabel", "string"),
        _ro("DataType", "string"),
        _ro("ValueTypeId", "string"),
        _ro_ref("EntityDefinitionId", "EntityDefinition", "EntityDefinition"),
        _ro("NamespacePrefix", "string"),
        _ro("Length", "int"),
        _ro("Precision", "int"),
        _ro("Scale", "int"),
        _ro("IsIndexed", "boolean"),
        _ro("IsNillable", "boolean"),
        _ro("IsCalculated", "boolean"),
        _ro("IsFieldHistoryTracked", "boolean"),
        _ro("IsApiFilterable", "boolean"),
        _ro("IsApiSortable", "boolean"),
        _ro("LastModifiedDate", "datetime"),
        _ro("LastModifiedById", "reference"),
    )

    def rows(partition: str | None) -> list[dict[str, Any]]:
        target = org.info(partition or "")
        if target is None:
            return []
        entity = org.entity_durable_id(target)
        specs = org.table(target.name)
        if specs is None:
            return []
        out = []
        for number, spec in enumerate(specs.fields()):
            durable = make_id("00N", target.index * 100 + number + 1)[:15] if spec.custom else spec.name
            bits = _h(org.seed, "fielddef", target.name, spec.name)
            out.append(
                {
                    "Id": "000000000000000AAA",
                    "DurableId": f"{entity}.{durable}",
                    "QualifiedApiName": spec.name,
                    "DeveloperName": spec.name.removesuffix("__c"),
                    "Label": spec.display_label,
                    "MasterLabel": spec.display_label,
                    "DataType": spec.data_type(),
                    "ValueTypeId": _VALUE_TYPES.get(spec.type, "string"),
                    "EntityDefinitionId": entity,
                    "EntityDefinition.QualifiedApiName": target.name,
                    "EntityDefinition.DurableId": entity,
                    "EntityDefinition.Label": target.label,
                    "NamespacePrefix": None,
                    "Length": spec.length if spec.length is not None else _DEFAULT_LENGTHS.get(spec.type, 0),
                    "Precision": spec.precision,
                    "Scale": spec.scale,
                    "IsIndexed": spec.type in ("id", "reference") or spec.external_id or spec.name_field,
                    "IsNillable": spec.nillable,
                    "IsCalculated": False,
                    "IsFieldHistoryTracked": bits % 4 == 0,
                    "IsApiFilterable": spec.type != "textarea",
                    "IsApiSortable": spec.type != "textarea",
                    "LastModifiedDate": _iso_datetime(org.created_date(target.name, number), bits),
                    "LastModifiedById": org.data_id("User", bits % 5),
                }
            )
        return out

    return VirtualTable(
        org,
        info,
        fields,
        rows,
        tooling=tooling,
        partition_keys={
            "EntityDefinition.QualifiedApiName": org.entity_from_key,
            "EntityDefinitionId": org.entity_from_key,
            "EntityDefinition.DurableId": org.entity_from_key,
        },
        partitions=lambda: [o.name for o in org.catalog if o.queryable],
        extra_paths=[
            "EntityDefinition.QualifiedApiName",
            "EntityDefinition.DurableId",
            "EntityDefinition.Label",
        ],
    )


def _validation_rule_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id", nillable=False),
        _ro("ValidationName", "string", name_field=True),
        _ro("Active", "boolean"),
        _ro("Description", "string"),
        _ro("ErrorDisplayField", "string"),
        _ro("ErrorMessage", "string"),
        _ro_ref("EntityDefinitionId", "EntityDefinition", "EntityDefinition"),
        _ro("NamespacePrefix", "string"),
        _ro("ManageableState", "picklist"),
        _ro("CreatedDate", "datetime"),
        _ro("LastModifiedDate", "datetime"),
    )

    def rows(partition: str | None) -> list[dict[str, Any]]:
        target = org.info(partition or "")
        if target is None or target.kind not in ("data", "custom"):
            return []
        bits = _h(org.seed, "validation", target.name)
        out = []
        for number in range((0, 0, 1, 1, 2, 3)[bits % 6]):
            entity = org.entity_durable_id(target)
            out.append(
                {
                    "Id": make_id("03d", target.index * 10 + number + 1),
                    "ValidationName": f"Require_Field_{number + 1}",
                    "Active": (bits >> number) % 4 != 0,
                    "Description": None,
                    "ErrorDisplayField": None,
                    "ErrorMessage": f"Please complete the required information ({number + 1}).",
                    "EntityDefinitionId": entity,
                    "EntityDefinition.QualifiedApiName": target.name,
                    "EntityDefinition.DurableId": entity,
                    "NamespacePrefix": None,
                    "ManageableState": "unmanaged",
                    "CreatedDate": _iso_datetime(org.created_date(target.name, number), bits),
                    "LastModifiedDate": _iso_datetime(org.created_date(target.name, number + 7), bits),
                }
            )
        return out

    return VirtualTable(
        org,
        info,
        fields,
        rows,
        tooling=True,
        partition_keys={
            "EntityDefinition.QualifiedApiName": org.entity_from_key,
            "EntityDefinitionId": org.entity_from_key,
        },
        partitions=lambda: [o.name for o in _perm_objects(org)],
        extra_paths=["EntityDefinition.QualifiedApiName", "EntityDefinition.DurableId"],
    )


def _workflow_rule_table(org: OrgData, info: ObjectInfo, tooling: bool) -> Table:
    fields = (
        _ro("Id", "id", nillable=False),
        _ro("Name", "string", name_field=True),
        _ro("TableEnumOrId", "picklist"),
        _ro("NamespacePrefix", "string"),
        _ro("ManageableState", "picklist"),
        _ro("CreatedDate", "datetime"),
    )

    def rows(partition: str | None) -> list[dict[str, Any]]:
        target = org.info(partition or "")
        if target is None or target.kind not in ("data", "custom"):
            return []
        bits = _h(org.seed, "workflow", target.name)
        return [
            {
                "Id": make_id("01Q", target.index * 10 + n + 1),
                "Name": f"{target.label} Rule {n + 1}",
                "TableEnumOrId": org.entity_durable_id(target),
                "NamespacePrefix": None,
                "ManageableState": "unmanaged",
                "CreatedDate": _iso_datetime(org.created_date(target.name, n), bits),
            }
            for n in range((0, 0, 0, 1, 2)[bits % 5])
        ]

    return VirtualTable(
        org,
        info,
        fields,
        rows,
        tooling=True,
        partition_keys={"TableEnumOrId": org.entity_from_key},
        partitions=lambda: [o.name for o in _perm_objects(org)],
    )


_VIRTUAL_TABLES: dict[str, Callable[[OrgData, ObjectInfo, bool], Table]] = {
    "SetupAuditTrail": _audit_table,
    "Profile": _profile_table,
    "PermissionSet": _permission_set_table,
    "RecordType": _record_type_table,
    "Organization": _organization_table,
    "FieldPermissions": _field_permissions_table,
    "ObjectPermissions": _object_permissions_table,
    "ApexTrigger": _apex_trigger_table,
    "ApexClass": _apex_class_table,
    "EntityDefinition": _entity_definition_table,
    "FieldDefinition": _field_definition_table,
    "ValidationRule": _validation_rule_table,
    "WorkflowRule": _workflow_rule_table,
}
