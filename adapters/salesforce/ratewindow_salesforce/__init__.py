"""ratewindow_salesforce: simple-salesforce with every request inside the org's API limits.

``client(...)`` (or ``wrap(sf)``) gives a real ``simple_salesforce.Salesforce`` whose every HTTP
request takes its permits: the org's rolling 24-hour allocation (learned from
``Sforce-Limit-Info``, less a ``reserve`` for other integrations, adapting to what other apps
use), an optional per-minute pace, and a cap on requests in flight. ``executor(sf)`` runs work
over many items with the right retry policy; ``composite``, ``describe_many`` and
``query_all_parallel`` batch it.

>>> import ratewindow_salesforce as rs
>>> sf = rs.client(instance_url="https://acme.my.salesforce.com", session_id=token,
...                limits=rs.OrgLimits(reserve=0.1), concurrency=25)  # doctest: +SKIP
>>> described = rs.describe_many(sf, names)  # 25 describes per request  # doctest: +SKIP
"""

from ratewindow_salesforce._bulk import BulkPools, JobPoll, poll_job
from ratewindow_salesforce._client import bulk_pools, client, executor, limiter_of, wrap

# AllocationExhausted: DailyLimitExhausted's earlier name, kept importable (not part of the shape).
from ratewindow_salesforce._errors import RETRY, AllocationExhausted, DailyLimitExhausted, is_retryable  # noqa: F401
from ratewindow_salesforce._helpers import CompositeResult, composite, describe_many, query_all_parallel
from ratewindow_salesforce._limits import EDITIONS, ClientStats, Edition, OrgLimits, SalesforceLimiter

__version__ = "0.1.0"

__all__ = [
    "EDITIONS",
    "RETRY",
    "BulkPools",
    "ClientStats",
    "CompositeResult",
    "DailyLimitExhausted",
    "Edition",
    "JobPoll",
    "OrgLimits",
    "SalesforceLimiter",
    "__version__",
    "bulk_pools",
    "client",
    "composite",
    "describe_many",
    "executor",
    "is_retryable",
    "limiter_of",
    "poll_job",
    "query_all_parallel",
    "wrap",
]
