"""Fixtures for the adapter's tests: the real HubSpot SDK against ``FakeHubSpot``, no mocks.

Timing tests put the wrapped client's limiters and the fake on one ``ManualClock`` (Unix time, so
daily quotas work): a limiter's sleep moves the fake's clock too, and every count is exact.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hubspot_support import NOON, TOKEN
from ratewindow_hubspot.testing import FakeHubSpot

from ratewindow.testing import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    """A manual Unix-time clock for the client's limiters and the fake alike."""
    return ManualClock(NOON)


@pytest.fixture
def manual_fake(clock: ManualClock) -> Iterator[FakeHubSpot]:
    """A professional-tier fake (190 per 10 s) on the manual clock."""
    with FakeHubSpot(clock=clock, wall_clock=clock, tokens=[TOKEN]) as fake:
        yield fake


@pytest.fixture(scope="module")
def roomy() -> Iterator[FakeHubSpot]:
    """A fake whose limits never get in the way (real time)."""
    with FakeHubSpot(window_limit=1_000_000, search_per_second=1_000_000, tokens=[TOKEN]) as fake:
        yield fake
