"""HubSpot's 429 responses, and the errors this adapter raises.

A 429 from HubSpot carries a JSON body whose ``policyName`` says which limit was hit:

* ``TEN_SECONDLY_ROLLING``: the rolling 10-second window of the app (or, for OAuth apps, of the
  installing account);
* ``SECONDLY``: the search endpoints' 5 requests per second;
* ``DAILY``: the account's daily limit, until midnight in the account's time zone.

The wrapped client turns them into ratewindow's retry signals: the SDK's own ``ApiException``
is re-raised with ``retry_after`` (seconds) and ``policy_name`` set on it, which every
``RateLimitedExecutor`` honours and ``except ApiException`` still catches; a ``DAILY`` 429
becomes :class:`DailyLimitExhausted`, which stops an executor's batch.
"""

from __future__ import annotations

import json
import time

from ratewindow import QuotaExhausted, Retry

__all__ = [
    "DAILY",
    "RETRY",
    "SECONDLY",
    "TEN_SECONDLY_ROLLING",
    "DailyLimitExhausted",
    "SearchCapExceeded",
    "is_retryable",
    "policy_of",
]

TEN_SECONDLY_ROLLING = "TEN_SECONDLY_ROLLING"
SECONDLY = "SECONDLY"
DAILY = "DAILY"
_POLICIES = frozenset({TEN_SECONDLY_ROLLING, SECONDLY, DAILY})

def is_retryable(exc: BaseException) -> bool:
    """The executor's retry rule for HubSpot (besides rate limits, which are always retried).

    True for connection errors, timeouts and HTTP 408/429/5xx (``ratewindow.Retry.is_transient``,
    which reads the SDK's ``ApiException.status``). Other 4xx answers (a bad property, no scope,
    not found) are the request's own fault and are not retried; nor is an expired token (401).
    """
    return Retry.is_transient(exc)


#: The retry policy of :func:`ratewindow_hubspot.executor`. A 429 comes back from the wrapped
#: client with ``retry_after`` set from its ``policyName``, and is retried after exactly that
#: (every worker waits; rate limits are always retried); a spent day comes back as
#: :class:`DailyLimitExhausted`, whose wait (until midnight) exceeds the executor's ``max_wait``
#: and stops the batch; connection errors, timeouts and 5xx back off from 0.5 s up to 30 s; other
#: 4xx (the request's own fault) are not retried. Six tries in all.
RETRY = Retry(attempts=6, backoff=0.5, max_backoff=30.0, retry_on=is_retryable)


def policy_of(body: object) -> str | None:
    """The ``policyName`` of a 429 body (bytes, str or a parsed dict), or None if it has none.

    >>> policy_of(b'{"status": "error", "policyName": "SECONDLY"}')
    'SECONDLY'
    """
    if isinstance(body, (bytes, bytearray)):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return None
    if isinstance(body, dict):
        name = body.get("policyName")
        if isinstance(name, str) and name.upper() in _POLICIES:
            return name.upper()
    return None


class DailyLimitExhausted(QuotaExhausted):
    """The account's daily request limit is spent until ``retry_at``, local midnight in the
    account's time zone: HubSpot answered 429 ``DAILY``, or the local daily quota (kept in step
    with the ``X-HubSpot-RateLimit-Daily-Remaining`` header) has nothing left.

    No request was sent when the local quota refused. Inside a ``RateLimitedExecutor`` it stops
    the batch: the remaining items are reported not run with ``QuotaExhausted``, and a journal
    lets the run resume after the reset.

    Attributes:
        retry_at: Unix time (seconds) of the reset.
        limiter: name of the daily quota (an account fingerprint, never a token).
        retry_after: seconds from when this was raised until the reset.
    """

    def __init__(self, retry_at: float, limiter: str = "hubspot", retry_after: float | None = None) -> None:
        super().__init__(retry_at, limiter)
        #: Seconds from when this error was raised until the reset (by the client's clock).
        self.retry_after = max(0.0, retry_at - time.time()) if retry_after is None else retry_after
        self.args = (retry_at, limiter, self.retry_after)

    def __str__(self) -> str:
        return f"HubSpot daily limit of {self.limiter!r} spent; it resets at {self.retry_at_text}"


class SearchCapExceeded(Exception):
    """A search matches more results than HubSpot serves for one query (10,000).

    Raised before any result is returned. Narrow the filters, or pass ``split=True`` to
    :func:`ratewindow_hubspot.search` to walk the results in ``hs_object_id`` order, restarting
    the query past the last id seen whenever the cap is near.

    Attributes:
        total: results the query matches.
        cap: the most HubSpot serves for one query.
    """

    def __init__(self, total: int, cap: int = 10_000) -> None:
        super().__init__(total, cap)
        #: Results the query matches.
        self.total = total
        #: The most results HubSpot serves for one query.
        self.cap = cap

    def __str__(self) -> str:
        return (
            f"the search matches {self.total} results but HubSpot serves at most {self.cap} per query; "
            "narrow the filters or pass split=True"
        )
