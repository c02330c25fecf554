"""A faithful local fake of HubSpot's CRM API for tests, standard library only.

:class:`FakeHubSpot` serves HubSpot's CRM object, search and association endpoints over loopback
HTTP with deterministic data (3,067 engagements by default) and enforces HubSpot's rate limits:
the rolling 10-second window per access token, the daily limit per account and the
five-per-second limit on search, answering 429 with HubSpot's bodies and headers. Its
:attr:`~FakeHubSpot.stats` record every request, so tests can assert what a client did.

Example::

    import hubspot
    from ratewindow_hubspot.testing import FakeHubSpot

    with FakeHubSpot(tier="starter", time_scale=0.1) as fake:
        client = hubspot.HubSpot(access_token="test-token", host=fake.url)
        page = client.crm.objects.calls.basic_api.get_page(limit=100)
        assert fake.stats.max_in_window(fake.effective_window_seconds) <= fake.window_limit

Run it standalone with ``python -m ratewindow_hubspot.testing --port 8089``, or in a child process
of the test with :class:`RemoteFakeHubSpot` (for timing measured at the full limit).
"""

from ._data import (
    DEFAULT_ENGAGEMENT_COUNTS,
    DEFAULT_ENGAGEMENT_TOTAL,
    ENGAGEMENT_TYPES,
    OBJECT_TYPES,
    CrmObject,
    Dataset,
)
from ._limits import TIERS, TierPreset
from ._remote import RemoteFakeHubSpot
from ._server import FakeHubSpot
from ._stats import FakeStats, RequestRecord, max_in_window, token_fingerprint

__all__ = [
    "DEFAULT_ENGAGEMENT_COUNTS",
    "DEFAULT_ENGAGEMENT_TOTAL",
    "ENGAGEMENT_TYPES",
    "OBJECT_TYPES",
    "TIERS",
    "CrmObject",
    "Dataset",
    "FakeHubSpot",
    "FakeStats",
    "RemoteFakeHubSpot",
    "RequestRecord",
    "TierPreset",
    "max_in_window",
    "token_fingerprint",
]
