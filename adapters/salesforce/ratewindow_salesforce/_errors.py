"""What Salesforce refusals become, and which failures the executor retries.

Salesforce answers an org-wide limit with HTTP 403 and ``errorCode`` ``REQUEST_LIMIT_EXCEEDED``
(simple-salesforce would raise ``SalesforceRefusedRequest``). The wrapped client turns it into
ratewindow's rate-limit signals before simple-salesforce sees it:

- ``TotalRequests Limit exceeded.`` (the rolling 24-hour allocation is spent) ->
  ``DailyLimitExhausted``, a ``QuotaExhausted`` with ``retry_at``;
- ``ConcurrentPerOrgLongTxn Limit exceeded`` (too many long-running requests) and any other
  ``REQUEST_LIMIT_EXCEEDED`` -> ``ratewindow.RetryLater`` after a pause shared by every worker.

Nothing here ever includes a session id: messages are built from status codes, error codes and
numbers only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ratewindow import QuotaExhausted, Retry

__all__ = [
    "RETRY",
    "AllocationExhausted",
    "DailyLimitExhausted",
    "bulk_exception_code_of",
    "error_code_of",
    "is_retryable",
]

#: Salesforce error codes that mean "try the same request again a little later".
_TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"})


class DailyLimitExhausted(QuotaExhausted):
    """The org's rolling 24-hour API allocation (less the ``reserve`` kept for other
    integrations) is spent; no request was sent (or Salesforce refused it with ``TotalRequests
    Limit exceeded``). The same name as ``ratewindow_hubspot.DailyLimitExhausted``, for the same
    situation: a day's quota spent, a ``ratewindow.QuotaExhausted``.

    ``RateLimitedExecutor`` treats it as a rate-limit answer that tells how long to wait: when
    ``retry_after`` exceeds the executor's ``max_wait``, the remaining items are reported not run
    with ``QuotaExhausted(retry_at=...)``, and a rerun with the same journal resumes them.

    Attributes:
        retry_at: Unix time (seconds) at which the rolling window frees enough for the request,
            as far as the responses seen tell; when other apps' use alone fills the allowance,
            an upper bound (one window after that use was last measured).
        retry_after: seconds from the moment it was raised until ``retry_at``.
        limiter: the org's limiter name (from the instance host, never the session id).
        allocation: the org's allocation (requests per window), if known.
        allowance: requests per window this client may use (the allocation less the reserve).

    >>> error = DailyLimitExhausted(1_700_000_100.0, "salesforce:acme", 100.0, 15_000, 13_500)
    >>> error.retry_after
    100.0
    """

    def __init__(self, retry_at: float, limiter: str, retry_after: float, allocation: int | None = None,
                 allowance: int | None = None) -> None:
        super().__init__(retry_at, limiter)
        self.args = (retry_at, limiter, retry_after, allocation, allowance)
        #: Seconds from raising until ``retry_at``.
        self.retry_after = retry_after
        #: The org's allocation (requests per rolling window), if known.
        self.allocation = allocation
        #: Requests per window this client may use: the allocation less the reserve.
        self.allowance = allowance

    def __str__(self) -> str:
        share = ""
        if self.allocation is not None and self.allowance is not None:
            share = f" ({self.allowance:,} of the org's {self.allocation:,} requests may be used)"
        return (
            f"Salesforce allocation {self.limiter!r} spent{share}; it frees in {self.retry_after:.3f} s, "
            f"at {self.retry_at_text}"
        )


def error_code_of(content: Any) -> tuple[str | None, str]:
    """The first ``errorCode`` and ``message`` of a Salesforce error body (decoded JSON, bytes or
    text); ``(None, "")`` if it holds none."""
    if isinstance(content, (bytes, str)):
        try:
            content = json.loads(content)
        except ValueError:
            return None, ""
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        code = first.get("errorCode")
        message = first.get("message")
        return (str(code) if code is not None else None), (str(message) if message is not None else "")
    return None, ""


_XML_EXCEPTION_CODE = re.compile(rb"<exceptionCode>\s*([A-Za-z_]+)\s*</exceptionCode>")


def bulk_exception_code_of(content: Any) -> str | None:
    """The ``exceptionCode`` of a Bulk API 1.0 error body (``{"exceptionCode": ...}`` in JSON, or
    ``<error><exceptionCode>...`` in XML, as bytes or text); None if it holds none.

    >>> bulk_exception_code_of(b'{"exceptionCode": "InvalidSessionId", "exceptionMessage": "Invalid"}')
    'InvalidSessionId'
    >>> bulk_exception_code_of("<error><exceptionCode>InvalidSessionId</exceptionCode></error>")
    'InvalidSessionId'
    """
    raw = content.encode("utf-8", "replace") if isinstance(content, str) else content
    if not isinstance(raw, bytes):
        return None
    match = _XML_EXCEPTION_CODE.search(raw)
    if match is not None:
        return match.group(1).decode("ascii")
    try:
        decoded = json.loads(raw)
    except ValueError:
        return None
    code = decoded.get("exceptionCode") if isinstance(decoded, dict) else None
    return str(code) if code is not None else None


def is_retryable(exc: BaseException) -> bool:
    """The executor's retry rule for Salesforce (besides rate limits, which are always retried).

    True for connection errors, timeouts, HTTP 408/429/5xx (``Retry.is_transient``) and for the
    Salesforce error codes ``UNABLE_TO_LOCK_ROW`` and ``SERVER_UNAVAILABLE``. Never for an expired
    session (401 ``INVALID_SESSION_ID``): sending it again cannot succeed. Other 4xx answers
    (malformed SOQL, no access, not found) are the request's own fault and are not retried.
    """
    if getattr(exc, "status", None) == 401:
        return False
    if Retry.is_transient(exc):
        return True
    code, _ = error_code_of(getattr(exc, "content", None))
    return code in _TRANSIENT_CODES


#: The name of :class:`DailyLimitExhausted` before 0.x; kept so existing ``except`` clauses work.
AllocationExhausted = DailyLimitExhausted

#: The retry policy of ``ratewindow_salesforce.executor``: ``Retry()`` with ``is_retryable``.
RETRY = Retry(retry_on=is_retryable)
