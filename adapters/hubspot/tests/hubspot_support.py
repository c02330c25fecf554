"""Constants and helpers shared by the adapter's tests (fixtures live in ``conftest.py``)."""

from __future__ import annotations

import importlib

from ratewindow_hubspot.testing import ENGAGEMENT_TYPES, FakeHubSpot

#: A realistic private-app token; it must never show up in logs, reprs or messages.
TOKEN = "pat-na1-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
#: 2026-03-04 12:00:00 UTC, a Unix time to start manual clocks at.
NOON = 1772625600.0

# Each generated package of the SDK has its own ApiException class.
API_EXCEPTIONS: tuple[type[Exception], ...] = tuple(
    importlib.import_module(f"hubspot.crm.{name}").ApiException
    for name in ("objects", "objects.calls", "associations.v4")
)


def engagement_ids(fake: FakeHubSpot) -> list[tuple[str, str]]:
    """Every engagement of the fake's dataset as ``(type, id)``, 3,067 by default."""
    return [(t, i) for t in ENGAGEMENT_TYPES for i in fake.dataset.ids(t)]
