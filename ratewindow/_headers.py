"""Rate-limit response headers, read into one normalised form: :class:`Observation`.

Each family of headers has a small class that holds what its headers said in their own terms
(``HubSpotRateLimit(limit=190, remaining=12, ...)``), built by ``parse(headers)``, and says it
again as observations with ``observations()``. ``parse_headers`` reads every family at once.

Every parser takes any headers object: a mapping, ``requests``' ``CaseInsensitiveDict``,
urllib3's ``HTTPHeaderDict``, ``httpx.Headers``, or anything with ``items()`` (names are compared
without case; several fields of one name are read as one, joined with commas, as RFC 9110
section 5.3 says). Values may be ``str`` or ``bytes``. A parser never raises on what a server
sent: a header that is absent, malformed or contradicts itself gives None (the family) or no
observation, and :class:`~ratewindow.Calibrator` logs it once at DEBUG.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from ratewindow._clock import WallClock

__all__ = [
    "EPOCH_AFTER",
    "FAMILIES",
    "HeaderFamily",
    "HubSpotRateLimit",
    "IETFRateLimit",
    "Observation",
    "RetryAfter",
    "SalesforceLimitInfo",
    "ShopifyCallLimit",
    "XRateLimit",
    "fields_of",
    "parse_headers",
    "parse_retry_after",
]

#: A bare number of seconds above this (a year) is read as Unix time, not as seconds from now.
EPOCH_AFTER = 365 * 86_400.0
#: Largest count read from a header (larger is taken as malformed).
_MAX_COUNT = 10**15
#: Longest window or reset read from a header, in seconds (ten years; longer is malformed).
_MAX_SECONDS = 10 * EPOCH_AFTER
#: Header values longer than this are not parsed (malformed).
_MAX_VALUE = 8192
#: The reset readings of ``X-RateLimit-Reset``.
RESETS = ("auto", "epoch", "delta", "date")

_NUMBER = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,9})?")
_INTEGER = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Observation:
    """What one response said about one budget, in one form for every header family.

    Counts are in units of the limit (requests); times in seconds. A field is None when the
    headers did not say it.

    >>> Observation(policy="burst", limit=100, remaining=50, window=60.0, reset=30.0)
    Observation(policy='burst', limit=100, remaining=50, window=60.0, reset=30.0)
    """

    #: The budget's name as the server gives it (an IETF policy, GitHub's ``X-RateLimit-Resource``),
    #: with ``;pk=...`` when it names a partition; "" when it has none.
    policy: str = ""
    #: Units allowed per ``window``.
    limit: int | None = None
    #: Units left now (after the request this response answers).
    remaining: int | None = None
    #: Seconds of the window the limit applies to.
    window: float | None = None
    #: Seconds from the response within which no more than ``remaining`` units may be used (the
    #: IETF effective window; when the window resets or the bucket has drained).
    reset: float | None = None
    #: Seconds to send nothing at all (``Retry-After``); it takes precedence over the rest.
    retry_after: float | None = None
    #: True when the budget is per calendar day, reset at local midnight (HubSpot's daily limit):
    #: it calibrates a ``DailyQuota``, not a window.
    daily: bool = False
    #: The header family that said it (``"ietf"``, ``"x-ratelimit"``, ``"retry-after"``, ...).
    family: str = ""

    def __repr__(self) -> str:
        names = ("limit", "remaining", "window", "reset", "retry_after", "daily", "family")
        shown = [f"policy={self.policy!r}"] + [
            f"{name}={value!r}" for name in names
            if (value := getattr(self, name)) is not None and value is not False and value != ""
        ]
        return f"Observation({', '.join(shown)})"


@runtime_checkable
class HeaderFamily(Protocol):
    """What ``parse_headers`` and ``Calibration(families=...)`` take: a class whose ``parse``
    reads its headers (None when absent or unreadable) and whose instances give observations."""

    @classmethod
    def parse(cls, headers: object, *, now: float | None = None, reset: str = "auto") -> HeaderFamily | None:
        """This family's headers in ``headers``, or None."""
        ...

    def observations(self) -> tuple[Observation, ...]:
        """What they say, normalised."""
        ...


# -- reading header fields --------------------------------------------------------------------
def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str) or len(value) > _MAX_VALUE:
        return None
    return value


def _fields(headers: object, names: Iterable[str] = ()) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    try:
        items = getattr(headers, "multi_items", None) or getattr(headers, "items", None)
        if callable(items):
            pairs: Iterable[object] = list(items())[:1000]
        else:
            getter = getattr(headers, "get", None)
            pairs = [(name, getter(name)) for name in names] if callable(getter) else []
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                continue
            name, value = _text(pair[0]), _text(pair[1])
            if name is None or value is None:
                continue
            found.setdefault(name.strip().lower(), []).append(value)
    except Exception:  # a headers object that misbehaves reads as no headers
        return {}
    return found


def fields_of(headers: object, names: Iterable[str] = ()) -> dict[str, str]:
    """The header fields of ``headers`` as lower-cased name -> value, several fields of one name
    joined with ``", "``. Objects without ``items()`` but with a case-insensitive ``get`` are asked
    for ``names`` only. Never raises: what cannot be read is left out.

    >>> fields_of({"X-RateLimit-Limit": "60", "x-ratelimit-limit": b"60"})
    {'x-ratelimit-limit': '60, 60'}
    """
    return {name: ", ".join(values) for name, values in _fields(headers, names).items()}


def _one(fields: dict[str, list[str]], name: str, *, split: bool = True) -> str | None:
    """The field's one value: None when absent, empty, or given twice with different values
    (contradictory). ``split``: a value with commas is a list of copies (numbers, not dates)."""
    values = fields.get(name)
    if not values:
        return None
    parts = {part.strip() for value in values for part in (value.split(",") if split else [value])}
    if len(parts) != 1:
        return None
    text = parts.pop()
    return text or None


def _joined(fields: dict[str, list[str]], name: str) -> str | None:
    values = fields.get(name)
    return ", ".join(values) if values else None


def _count(text: str | None) -> int | None:
    """A count >= 0 (a decimal is rounded down: a remaining of 99.0 is 99)."""
    if text is None or _NUMBER.fullmatch(text) is None:
        return None
    value = math.floor(float(text))
    return value if value <= _MAX_COUNT else None


def _seconds(text: str | None, bound: float = _MAX_SECONDS) -> float | None:
    if text is None or _NUMBER.fullmatch(text) is None:
        return None
    value = float(text)
    return value if value <= bound else None


def _now(now: float | None) -> float:
    return WallClock.now() if now is None else float(now)


def _date(text: str) -> float | None:
    """Unix time of an HTTP date (RFC 9110) or an ISO 8601 time with an offset; None otherwise."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        when = None
    if when is None:
        try:
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except (ValueError, OverflowError):
            return None
    if when.tzinfo is None:
        return None
    try:
        stamp = when.timestamp()
    except (OverflowError, ValueError, OSError):
        return None
    return stamp if math.isfinite(stamp) else None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds, or an HTTP date (then relative
    to ``now``, Unix seconds, default the current time; a date in the past is 0.0). None if
    absent or unreadable.

    >>> parse_retry_after("120"), parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0)
    (120.0, 10.0)
    """
    text = _text(value)
    if text is None:
        return None
    text = text.strip()
    seconds = _seconds(text)
    if seconds is not None:
        return seconds
    if not text or text[0].isdigit() or text[0] in "+-.":
        return None  # a number that is not delta-seconds ("-3", "1e9", "nan")
    when = _date(text)
    if when is None:
        return None
    return max(0.0, when - _now(now))


def _reset_seconds(text: str | None, reading: str, now: float | None) -> float | None:
    """Seconds from now until a reset given as Unix time, seconds from now, or a date.

    ``auto``: a number above ``EPOCH_AFTER`` (a year) is Unix time, a smaller one seconds from
    now, anything else a date. A time in the past gives -1.0 (stale)."""
    if text is None:
        return None
    number = _seconds(text, math.inf)
    if number is not None and reading != "date":
        if reading == "epoch" or (reading == "auto" and number > EPOCH_AFTER):
            left = number - _now(now)
            return min(left, _MAX_SECONDS) if left >= 0 else -1.0
        return number if number <= _MAX_SECONDS else None
    if number is not None or reading in ("epoch", "delta"):
        return None
    when = _date(text)
    if when is None:
        return None
    left = when - _now(now)
    return left if left >= 0 else -1.0


# -- Retry-After ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RetryAfter:
    """``Retry-After`` (RFC 9110 section 10.2.3): delta-seconds or an HTTP date. It takes
    precedence over every other header: a calibrated limiter pauses for it.

    >>> RetryAfter.parse({"Retry-After": "30"})
    RetryAfter(seconds=30.0)
    """

    #: Seconds to wait from the response.
    seconds: float

    @classmethod
    def parse(cls, headers: object, *, now: float | None = None, reset: str = "auto") -> RetryAfter | None:
        """``Retry-After`` in ``headers`` (an HTTP date relative to ``now``, Unix seconds), or None."""
        seconds = parse_retry_after(_one(_fields(headers, ["Retry-After"]), "retry-after", split=False), now)
        return None if seconds is None else cls(seconds)

    def observations(self) -> tuple[Observation, ...]:
        return (Observation(retry_after=self.seconds, family="retry-after"),)


# -- IETF RateLimit / RateLimit-Policy (and the older drafts' RateLimit-Limit/-Remaining/-Reset) --
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9:/!#$%&'*+\-.^_`|~]*")
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_SFNUM = re.compile(r"-?[0-9]{1,15}(?:\.[0-9]{1,3})?")


class _SFError(ValueError):
    pass


class _SF:
    """A small reader of RFC 8941 structured fields: lists of items with parameters, and
    dictionaries (the draft-07 ``RateLimit: limit=100, remaining=50, reset=30``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def bare(self) -> object:
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise _SFError("empty item")
        char = text[pos]
        if char == '"':
            out = []
            pos += 1
            while pos < len(text):
                c = text[pos]
                if c == "\\":
                    if pos + 1 >= len(text) or text[pos + 1] not in '"\\':
                        raise _SFError("bad escape")
                    out.append(text[pos + 1])
                    pos += 2
                    continue
                if c == '"':
                    self.pos = pos + 1
                    return "".join(out)
                if not " " <= c <= "~":
                    raise _SFError("bad string character")
                out.append(c)
                pos += 1
            raise _SFError("unterminated string")
        if char == ":":
            end = text.find(":", pos + 1)
            if end < 0:
                raise _SFError("unterminated byte sequence")
            try:
                value = base64.b64decode(text[pos + 1:end], validate=True)
            except (ValueError, TypeError) as exc:
                raise _SFError("bad byte sequence") from exc
            self.pos = end + 1
            return value
        if char == "?":
            if text[pos + 1:pos + 2] not in ("0", "1"):
                raise _SFError("bad boolean")
            self.pos = pos + 2
            return text[pos + 1] == "1"
        match = _SFNUM.match(text, pos)
        if match is not None and (char.isdigit() or char == "-"):
            self.pos = match.end()
            number = match.group()
            return float(number) if "." in number else int(number)
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _SFError("bad item")
        self.pos = match.end()
        return match.group()

    def params(self) -> dict[str, object]:
        params: dict[str, object] = {}
        while self.pos < len(self.text) and self.text[self.pos] == ";":
            self.pos += 1
            self._ws()
            match = _KEY.match(self.text, self.pos)
            if match is None:
                raise _SFError("bad parameter key")
            self.pos = match.end()
            value: object = True
            if self.pos < len(self.text) and self.text[self.pos] == "=":
                self.pos += 1
                value = self.bare()
            params[match.group()] = value
        return params

    def members(self, dictionary: bool) -> list[tuple[object, dict[str, object]]]:
        """``(item, params)`` per member; for a dictionary the item is ``(key, value)``."""
        out: list[tuple[object, dict[str, object]]] = []
        self._ws()
        if self.pos >= len(self.text):
            return out
        while True:
            if dictionary:
                match = _KEY.match(self.text, self.pos)
                if match is None:
                    raise _SFError("bad dictionary key")
                self.pos = match.end()
                value: object = True
                if self.pos < len(self.text) and self.text[self.pos] == "=":
                    self.pos += 1
                    value = self.bare()
                out.append(((match.group(), value), self.params()))
            else:
                item = self.bare()
                out.append((item, self.params()))
            self._ws()
            if self.pos >= len(self.text):
                return out
            if self.text[self.pos] != ",":
                raise _SFError("expected a comma")
            self.pos += 1
            self._ws()
            if self.pos >= len(self.text):
                raise _SFError("trailing comma")


def _sf_list(text: str | None) -> list[tuple[object, dict[str, object]]] | None:
    if text is None:
        return None
    try:
        return _SF(text.strip()).members(False)
    except _SFError:
        return None


def _sf_dict(text: str | None) -> dict[str, object] | None:
    if text is None:
        return None
    try:
        members = _SF(text.strip()).members(True)
    except _SFError:
        return None
    result: dict[str, object] = {}
    for item, _params in members:
        assert isinstance(item, tuple)
        result[str(item[0])] = item[1]
    return result


def _int_param(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        return None
    return value


def _window_param(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= _MAX_SECONDS:
        return None
    return float(value)


def _scope(name: str, params: dict[str, object]) -> str:
    pk = params.get("pk")
    if isinstance(pk, bytes):
        return f"{name};pk={base64.b64encode(pk).decode('ascii')}"
    return name


@dataclass(frozen=True)
class IETFRateLimit:
    """The IETF ``RateLimit`` and ``RateLimit-Policy`` fields (draft-ietf-httpapi-ratelimit-headers-11),
    and the older drafts' forms: ``RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (drafts 00-06,
    quota policies such as ``10, 10;w=1`` included) and draft-07's ``RateLimit: limit=, remaining=,
    reset=``.

    ``RateLimit-Policy: "burst";q=100;w=60`` gives a policy's quota ``q`` per window ``w`` seconds;
    ``RateLimit: "burst";r=50;t=30`` its available quota ``r`` within the next ``t`` seconds. A
    partition key (``pk``) is kept in the policy name. Policies counted in other units than
    requests (``qu``) are left out.

    >>> headers = {"RateLimit-Policy": '"burst";q=100;w=60', "RateLimit": '"burst";r=50;t=30'}
    >>> IETFRateLimit.parse(headers).items
    (Observation(policy='burst', limit=100, remaining=50, window=60.0, reset=30.0, family='ietf'),)
    """

    #: One observation per policy.
    items: tuple[Observation, ...]

    @classmethod
    def parse(cls, headers: object, *, now: float | None = None, reset: str = "auto") -> IETFRateLimit | None:
        """The RateLimit fields of ``headers``, or None if none can be read."""
        fields = _fields(headers, ["RateLimit", "RateLimit-Policy", "RateLimit-Limit",
                                   "RateLimit-Remaining", "RateLimit-Reset"])
        items = _ietf_current(fields) or _ietf_draft07(fields) or _ietf_old(fields)
        return cls(tuple(items)) if items else None

    def observations(self) -> tuple[Observation, ...]:
        return self.items


def _ietf_current(fields: dict[str, list[str]]) -> list[Observation]:
    policies = _sf_list(_joined(fields, "ratelimit-policy"))
    limits = _sf_list(_joined(fields, "ratelimit"))
    quotas: dict[str, tuple[int, float | None]] = {}
    seen_policy = set()
    for item, params in policies or ():
        if not isinstance(item, str):
            return []  # an old-draft policy list (integers): read by _ietf_old
        scope = _scope(item, params)
        q = _int_param(params.get("q"))
        unit = params.get("qu", "requests")
        if q is None or unit not in ("requests", "request") or scope in seen_policy:
            quotas.pop(scope, None)  # malformed, other units, or named twice: left out
            seen_policy.add(scope)
            continue
        seen_policy.add(scope)
        window = _window_param(params["w"]) if "w" in params else None
        if "w" in params and window is None:
            continue
        quotas[scope] = (q, window)
    out: dict[str, Observation] = {}
    contradicted: set[str] = set()
    for item, params in limits or ():
        if not isinstance(item, str):
            return []
        scope = _scope(item, params)
        r = _int_param(params.get("r"))
        t: float | None = None
        if "t" in params:
            t_value = _int_param(params["t"])
            if t_value is None:
                continue  # a malformed effective window: the item is left out
            t = float(t_value)
        if r is None or scope in contradicted:
            continue
        q, w = quotas.get(scope, (None, None))
        if q is None and scope in seen_policy:
            continue  # its policy was unreadable
        if q is not None and r > q:
            contradicted.add(scope)  # more available than the quota: contradictory
            out.pop(scope, None)
            continue
        observed = Observation(policy=scope, limit=q, remaining=r, window=w, reset=t, family="ietf")
        if scope in out and out[scope] != observed:
            contradicted.add(scope)
            del out[scope]
            continue
        out[scope] = observed
    for scope, (q, w) in quotas.items():
        if scope not in out and scope not in contradicted:
            out[scope] = Observation(policy=scope, limit=q, window=w, family="ietf")
    return list(out.values())


def _ietf_draft07(fields: dict[str, list[str]]) -> list[Observation]:
    values = _sf_dict(_joined(fields, "ratelimit"))
    if not values or not set(values) <= {"limit", "remaining", "reset", "policy"}:
        return []
    limit, remaining = _int_param(values.get("limit")), _int_param(values.get("remaining"))
    t = values.get("reset")
    reset = float(t) if isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= _MAX_SECONDS else None
    if remaining is None or (limit is not None and remaining > limit):
        return []
    window = None
    for item, params in _sf_list(_joined(fields, "ratelimit-policy")) or ():
        if item == limit and isinstance(item, int):
            window = _window_param(params.get("w"))
            break
    return [Observation(limit=limit, remaining=remaining, window=window, reset=reset, family="ietf")]


def _ietf_old(fields: dict[str, list[str]]) -> list[Observation]:
    listed = _sf_list(_joined(fields, "ratelimit-limit"))
    remaining = _count(_one(fields, "ratelimit-remaining"))
    reset_text = _one(fields, "ratelimit-reset")
    reset = _seconds(reset_text)
    if reset_text is not None and reset is None:
        return []
    limit = window = None
    if listed:
        first, _params = listed[0]
        limit = _int_param(first)
        if limit is None:
            return []
        for item, params in [*listed, *(_sf_list(_joined(fields, "ratelimit-policy")) or [])]:
            if item == limit:
                w = params.get("w", params.get("window"))
                if w is not None:
                    window = _window_param(w)
                    break
    elif "ratelimit-limit" in fields:
        return []
    if limit is None and remaining is None:
        return []
    if limit is not None and remaining is not None and remaining > limit:
        return []
    return [Observation(limit=limit, remaining=remaining, window=window, reset=reset, family="ietf")]


# -- X-RateLimit-* ----------------------------------------------------------------------------
@dataclass(frozen=True)
class XRateLimit:
    """``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` (GitHub, Twitter, Reddit, Jira, ...),
    with GitHub's ``X-RateLimit-Resource`` as the policy name and Jira's ``X-RateLimit-Interval-Seconds``
    as the window when present.

    The reset is read as ``reset`` says: ``"epoch"`` (Unix seconds: GitHub), ``"delta"``
    (seconds from now), ``"date"`` (an HTTP or ISO 8601 date: Jira), or ``"auto"``: a number
    larger than a year of seconds (``EPOCH_AFTER``) is Unix time, a smaller one seconds from now,
    anything else a date. A reset already past makes the headers stale: no observation.

    >>> XRateLimit.parse({"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59",
    ...                   "X-RateLimit-Reset": "30"})
    XRateLimit(limit=60, remaining=59, reset=30.0, resource='', window=None)
    """

    #: Units per window.
    limit: int | None
    #: Units left in the window.
    remaining: int | None
    #: Seconds from the response until the window resets; -1.0 when the reset is past (stale).
    reset: float | None
    #: ``X-RateLimit-Resource`` (GitHub's "core", "search", ...), "" if absent.
    resource: str = ""
    #: ``X-RateLimit-Interval-Seconds`` (Jira), None if absent.
    window: float | None = None

    @classmethod
    def parse(cls, headers: object, *, now: float | None = None, reset: str = "auto") -> XRateLimit | None:
        """The X-RateLimit headers of ``headers`` (reset read as ``reset`` says, relative to
        ``now``, Unix seconds), or None if none can be read.

        Raises:
            ValueError: ``reset`` is not one of ``"auto"``, ``"epoch"``, ``"delta"``, ``"date"``.
        """
        if reset not in RESETS:
            raise ValueError(f"reset must be one of {', '.join(map(repr, RESETS))}, got {reset!r}")
        names = ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Resource",
                 "X-RateLimit-Interval-Seconds"]
        fields = _fields(headers, names)
        limit_text, remaining_text = _one(fields, "x-ratelimit-limit"), _one(fields, "x-ratelimit-remaining")
        reset_text = _one(fields, "x-ratelimit-reset")
        parsed = cls(
            limit=_count(limit_text),
            remaining=_count(remaining_text),
            reset=_reset_seconds(reset_text, reset, now),
            resource=(_one(fields, "x-ratelimit-resource") or "")[:100],
            window=_window_param(_seconds(_one(fields, "x-ratelimit-interval-seconds"))),
        )
        texts = {"x-ratelimit-limit": (limit_text, parsed.limit),
                 "x-ratelimit-remaining": (remaining_text, parsed.remaining),
                 "x-ratelimit-reset": (reset_text, parsed.reset)}
        if any(name in fields and value is None for name, (_text_, value) in texts.items()):
            return None  # a field that is there but unreadable or given twice: the family is malformed
        if parsed.limit is None and parsed.remaining is None:
            return None
        return parsed

    def observations(self) -> tuple[Observation, ...]:
        if self.reset is not None and self.reset < 0:
            return ()  # the reset is past: stale
        if self.limit is not None and self.remaining is not None and self.remaining > self.limit:
            return ()  # contradictory
        return (Observation(policy=self.resource, limit=self.limit, remaining=self.remaining,
                            window=self.window, reset=self.reset, family="x-ratelimit"),)


# -- Shopify ----------------------------------------------------------------------------------
#: Shopify's REST Admin API leaks a bucket of 40 at 2 per second and one of 400 (Plus) at 20:
#: the bucket drains in this many seconds.
SHOPIFY_DRAIN = 20.0


@dataclass(frozen=True)
class ShopifyCallLimit:
    """Shopify's ``X-Shopify-Shop-Api-Call-Limit: 32/40``: 32 of a leaky bucket of 40 used.

    The bucket leaks ``limit / 20`` per second (2 per second for 40, 20 for Plus's 400), so it is
    read as ``limit`` units per 20-second window, which never overfills the bucket and keeps
    its pace; ``reset`` is the time the bucket takes to drain.

    >>> ShopifyCallLimit.parse({"X-Shopify-Shop-Api-Call-Limit": "32/40"})
    ShopifyCallLimit(used=32, limit=40)
    """

    #: Units in the bucket.
    used: int
    #: The bucket's size.
    limit: int

    @classmethod
    def parse(
        cls, headers: object, *, now: float | None = None, reset: str = "auto"
    ) -> ShopifyCallLimit | None:
        """The header in ``headers``, or None if absent, malformed, or more used than the bucket holds."""
        text = _one(_fields(headers, ["X-Shopify-Shop-Api-Call-Limit"]), "x-shopify-shop-api-call-limit")
        if text is None or text.count("/") != 1:
            return None
        used_text, limit_text = (part.strip() for part in text.split("/"))
        used = _count(used_text) if _INTEGER.fullmatch(used_text) else None
        limit = _count(limit_text) if _INTEGER.fullmatch(limit_text) else None
        if used is None or limit is None or limit < 1 or used > limit:
            return None
        return cls(used, limit)

    def observations(self) -> tuple[Observation, ...]:
        leak = self.limit / SHOPIFY_DRAIN
        return (Observation(policy="shopify", limit=self.limit, remaining=self.limit - self.used,
                            window=SHOPIFY_DRAIN, reset=self.used / leak, family="shopify"),)


# -- HubSpot ----------------------------------------------------------------------------------
_HUBSPOT = ("X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining",
            "X-HubSpot-RateLimit-Interval-Milliseconds", "X-HubSpot-RateLimit-Daily",
            "X-HubSpot-RateLimit-Daily-Remaining")


@dataclass(frozen=True)
class HubSpotRateLimit:
    """HubSpot's rate-limit headers of one response; a field is None when its header is absent
    or unreadable.

    Every non-search HubSpot response carries ``X-HubSpot-RateLimit-Max`` (requests per window),
    ``-Remaining`` (left in the window after this request), ``-Interval-Milliseconds`` (the
    window), and, except for OAuth apps, ``-Daily`` and ``-Daily-Remaining`` (the account's day,
    reset at its local midnight).

    >>> HubSpotRateLimit.parse({"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "12"})
    HubSpotRateLimit(limit=190, remaining=12, interval=None, daily=None, daily_remaining=None)
    """

    #: Requests allowed per window (``X-HubSpot-RateLimit-Max``).
    limit: int | None
    #: Requests left in the window after this one (``-Remaining``).
    remaining: int | None
    #: Window length in seconds (``-Interval-Milliseconds`` / 1000).
    interval: float | None
    #: Requests allowed per day (``-Daily``).
    daily: int | None
    #: Requests left today (``-Daily-Remaining``).
    daily_remaining: int | None

    @classmethod
    def parse(
        cls, headers: object, *, now: float | None = None, reset: str = "auto"
    ) -> HubSpotRateLimit | None:
        """Read the headers from any headers object (see the module docstring). None if the
        response carries none of them (search responses)."""
        fields = _fields(headers, _HUBSPOT)

        def count(name: str) -> int | None:
            text = _one(fields, name.lower())
            return _count(text) if text is not None and _INTEGER.fullmatch(text) else None

        interval_ms = count(_HUBSPOT[2])
        parsed = cls(
            limit=count(_HUBSPOT[0]),
            remaining=count(_HUBSPOT[1]),
            interval=None if not interval_ms else interval_ms / 1000.0,
            daily=count(_HUBSPOT[3]),
            daily_remaining=count(_HUBSPOT[4]),
        )
        if parsed == cls(None, None, None, None, None):
            return None
        return parsed

    def observations(self) -> tuple[Observation, ...]:
        out = []
        if (self.limit is not None or self.remaining is not None) and not (
                self.limit is not None and self.remaining is not None and self.remaining > self.limit):
            out.append(Observation(policy="hubspot", limit=self.limit, remaining=self.remaining,
                                   window=self.interval, family="hubspot"))
        if (self.daily is not None or self.daily_remaining is not None) and not (
                self.daily is not None and self.daily_remaining is not None
                and self.daily_remaining > self.daily):
            out.append(Observation(policy="hubspot-daily", limit=self.daily, remaining=self.daily_remaining,
                                   daily=True, family="hubspot"))
        return tuple(out)


# -- Salesforce -------------------------------------------------------------------------------
_USAGE = re.compile(r"api-usage=([0-9]{1,15})/([0-9]{1,15})")
#: Seconds of Salesforce's rolling allocation window (24 h).
SALESFORCE_WINDOW = 86_400.0


class SalesforceLimitInfo(NamedTuple):
    """Salesforce's ``Sforce-Limit-Info: api-usage=18/15000``: every app's use of the org's API
    allocation in the rolling 24 hours, and the allocation.

    ``parse`` takes the headers or the header's value.

    >>> SalesforceLimitInfo.parse("api-usage=18/15000; per-app-usage=17/250(appName=etl)")
    SalesforceLimitInfo(used=18, allocation=15000)
    """

    #: Requests the org used in the window (every app).
    used: int
    #: Requests the org may make per window.
    allocation: int

    @classmethod
    def parse(
        cls, headers: object, *, now: float | None = None, reset: str = "auto"
    ) -> SalesforceLimitInfo | None:
        """``Sforce-Limit-Info`` of ``headers`` (or the header's value itself), or None if absent
        or unreadable."""
        text = _text(headers) if isinstance(headers, (str, bytes)) else fields_of(
            headers, ["Sforce-Limit-Info"]).get("sforce-limit-info")
        if not text:
            return None
        match = _USAGE.search(text)
        if match is None:
            return None
        return cls(int(match.group(1)), int(match.group(2)))

    def observations(self) -> tuple[Observation, ...]:
        if self.allocation < 1:
            return ()
        remaining = max(0, self.allocation - self.used)
        return (Observation(policy="api-usage", limit=self.allocation, remaining=remaining,
                            window=SALESFORCE_WINDOW, family="salesforce"),)


#: Every family, in the order ``parse_headers`` reads them (``Retry-After`` first).
FAMILIES: tuple[type[HeaderFamily], ...] = (
    RetryAfter, IETFRateLimit, XRateLimit, ShopifyCallLimit, HubSpotRateLimit, SalesforceLimitInfo,
)


def parse_headers(
    headers: object,
    *,
    families: Iterable[type[HeaderFamily]] = FAMILIES,
    reset: str = "auto",
    now: float | None = None,
    malformed: Callable[[str], None] | None = None,
) -> tuple[Observation, ...]:
    """Every observation the ``families`` read in ``headers``; never raises on header content.

    Args:
        headers: any headers object (see the module docstring).
        families: the header families to read (default: all of them).
        reset: how ``X-RateLimit-Reset`` is read (see ``XRateLimit``).
        now: Unix seconds that dates and Unix times are relative to; default the current time.
        malformed: called with a family's name when its headers are there but cannot be read.

    Raises:
        ValueError: ``reset`` is not one of ``"auto"``, ``"epoch"``, ``"delta"``, ``"date"``.

    >>> parse_headers({"X-Shopify-Shop-Api-Call-Limit": "32/40", "Retry-After": "2"})
    (Observation(policy='', retry_after=2.0, family='retry-after'), Observation(policy='shopify', limit=40, \
remaining=8, window=20.0, reset=16.0, family='shopify'))
    """
    if reset not in RESETS:
        raise ValueError(f"reset must be one of {', '.join(map(repr, RESETS))}, got {reset!r}")
    out: list[Observation] = []
    present = set(_fields(headers, _ALL_NAMES)) if malformed is not None else set()
    for family in families:
        try:
            parsed = family.parse(headers, now=now, reset=reset)
            found = parsed.observations() if parsed is not None else ()
        except Exception:  # a family of the user's own that fails reads as nothing
            found = ()
        if not found and malformed is not None and present & _NAMES.get(family, set()):
            malformed(getattr(family, "__name__", repr(family)))
        out.extend(found)
    return tuple(out)


_NAMES: dict[object, set[str]] = {
    RetryAfter: {"retry-after"},
    IETFRateLimit: {"ratelimit", "ratelimit-policy", "ratelimit-limit", "ratelimit-remaining",
                    "ratelimit-reset"},
    XRateLimit: {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"},
    ShopifyCallLimit: {"x-shopify-shop-api-call-limit"},
    HubSpotRateLimit: {name.lower() for name in _HUBSPOT},
    SalesforceLimitInfo: {"sforce-limit-info"},
}
_ALL_NAMES = sorted({name for names in _NAMES.values() for name in names})
