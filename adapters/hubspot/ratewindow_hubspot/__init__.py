"""ratewindow for HubSpot: wrap the official client once; every request limited, 429s absorbed.

>>> import ratewindow_hubspot
>>> hs = ratewindow_hubspot.client(access_token="pat-na1-...", tier="professional")
>>> # every request of hs (any API object, and hs.api_request) now takes one permit first
>>> # with ratewindow_hubspot.executor(hs) as ex:
>>> #     outcomes = ex.map(lambda i: hs.crm.objects.calls.basic_api.get_by_id(i), call_ids)
>>> # links = ratewindow_hubspot.read_associations(hs, "calls", "contacts", call_ids)

``ratewindow_hubspot.testing.FakeHubSpot`` is a local fake of HubSpot's CRM API with its limits.
"""

from ratewindow_hubspot._client import ClientStats, HubSpotLimiter, client, executor, limiter_of, wrap
from ratewindow_hubspot._errors import RETRY, DailyLimitExhausted, SearchCapExceeded, is_retryable
from ratewindow_hubspot._helpers import (
    batch_read,
    iter_objects,
    read_associations,
    read_associations_many,
    search,
)
from ratewindow_hubspot._limits import TIERS, Tier

__version__ = "0.1.0"

__all__ = [
    "RETRY",
    "TIERS",
    "ClientStats",
    "DailyLimitExhausted",
    "HubSpotLimiter",
    "SearchCapExceeded",
    "Tier",
    "__version__",
    "batch_read",
    "client",
    "executor",
    "is_retryable",
    "iter_objects",
    "limiter_of",
    "read_associations",
    "read_associations_many",
    "search",
    "wrap",
]
