"""The adapters are siblings of one shape (README, "One shape for every adapter"): the same public
names for the same roles, the same arguments, the same exceptions on the core's bases. A name
added to one adapter fails here until its counterpart exists, or it is listed as specific to its
API with the reason."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import ratewindow_hubspot as hubspot
import ratewindow_salesforce as salesforce
from ratewindow_hubspot.testing import FakeHubSpot
from ratewindow_salesforce.testing import FakeSalesforce

from ratewindow import QuotaExhausted, Retry

#: HubSpot's name -> Salesforce's, for the same role.
COUNTERPARTS = {
    "__version__": "__version__",
    "client": "client",  # build an SDK client that takes its permits
    "wrap": "wrap",  # the same, on a client the user built
    "executor": "executor",  # a RateLimitedExecutor with the API's retry policy
    "limiter_of": "limiter_of",  # the client's limiter: stats, forecast, observe
    "RETRY": "RETRY",
    "is_retryable": "is_retryable",
    "ClientStats": "ClientStats",
    "DailyLimitExhausted": "DailyLimitExhausted",  # the day's quota spent: a QuotaExhausted
    "TIERS": "EDITIONS",  # the presets, a table of prebuilt limits
    "Tier": "Edition",
    "HubSpotLimiter": "SalesforceLimiter",
}

#: Names that serve one API's own endpoints (the batched helpers), and why the other has none.
SPECIFIC = {
    hubspot: {
        "batch_read": "HubSpot's batch read endpoint (100 records per request)",
        "iter_objects": "HubSpot's paged object lists",
        "read_associations": "HubSpot's associations v4 API",
        "read_associations_many": "HubSpot's associations v4 batch API",
        "search": "HubSpot's CRM search endpoints (5 per second, 10,000 results)",
        "SearchCapExceeded": "HubSpot's 10,000-result search cap",
    },
    salesforce: {
        "composite": "Salesforce's Composite API (25 subrequests per request)",
        "CompositeResult": "Salesforce's Composite API",
        "describe_many": "Salesforce's describe calls, batched through Composite",
        "query_all_parallel": "SOQL query locators, fetched in parallel",
        "bulk_pools": "Bulk API 2.0's own 24-hour pools of jobs and batches",
        "BulkPools": "Bulk API 2.0's own pools",
        "poll_job": "Bulk API 2.0 job polling",
        "JobPoll": "Bulk API 2.0 job polling",
        "OrgLimits": "the org-wide allocation's options (reserve, pace, waits) in one value",
    },
}


def _names(module: ModuleType) -> set[str]:
    return set(module.__all__)


@pytest.mark.parametrize(("module", "side"), [(hubspot, 0), (salesforce, 1)])
def test_every_public_name_has_its_counterpart_or_is_specific_to_its_api(module: ModuleType, side: int) -> None:
    shape = {pair[side] for pair in COUNTERPARTS.items()}
    assert _names(module) - shape == set(SPECIFIC[module])
    assert shape <= _names(module)


def _keywords(function: Callable[..., Any]) -> set[str]:
    return {name for name, p in inspect.signature(function).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


@pytest.mark.parametrize("function", ["client", "wrap"])
def test_client_and_wrap_take_the_same_limit_arguments(function: str) -> None:
    shared = {"limits", "store", "max_wait", "clock"}
    assert shared <= _keywords(getattr(hubspot, function))
    assert shared <= _keywords(getattr(salesforce, function))
    assert "tier" in _keywords(getattr(hubspot, function))  # the preset, by name
    assert "edition" in _keywords(getattr(salesforce, function))


def test_executors_take_the_same_arguments() -> None:
    assert {"max_workers", "retry"} <= _keywords(hubspot.executor) & _keywords(salesforce.executor)
    assert isinstance(hubspot.RETRY, Retry) and isinstance(salesforce.RETRY, Retry)
    assert hubspot.RETRY.retry_on is hubspot.is_retryable
    assert salesforce.RETRY.retry_on is salesforce.is_retryable


def test_the_same_situation_raises_the_same_name_on_the_cores_base() -> None:
    assert hubspot.DailyLimitExhausted.__name__ == salesforce.DailyLimitExhausted.__name__
    assert issubclass(hubspot.DailyLimitExhausted, QuotaExhausted)
    assert issubclass(salesforce.DailyLimitExhausted, QuotaExhausted)


def test_stats_tell_the_error_budget_the_same_way() -> None:
    for stats in (hubspot.ClientStats(), salesforce.ClientStats()):
        assert stats.requests == 0 and stats.refusal_share == 0.0


def test_the_fakes_take_the_same_server_options() -> None:
    shared = {"port", "latency", "time_scale", "seed", "clock"}
    assert shared <= set(inspect.signature(FakeHubSpot).parameters)
    assert shared <= set(inspect.signature(FakeSalesforce).parameters)
    assert "tier" in set(inspect.signature(FakeHubSpot).parameters)  # the presets, by name
    assert "edition" in set(inspect.signature(FakeSalesforce).parameters)


def test_a_fake_built_from_a_preset_serves_its_limits() -> None:
    with FakeSalesforce(edition="enterprise") as fake:
        assert (fake.allocation, fake.concurrency_limit) == (100_000, 25)
    with FakeSalesforce(edition="developer", allocation=500) as fake:
        assert (fake.allocation, fake.concurrency_limit) == (500, 5)
    with pytest.raises(ValueError, match="unknown edition 'gold'"):
        FakeSalesforce(edition="gold")
