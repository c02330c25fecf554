"""The access token never appears in logs, reprs, messages or output, whatever happens."""

from __future__ import annotations

import logging

import hubspot
import pytest
import ratewindow_hubspot
from hubspot.crm.objects import PublicObjectSearchRequest
from hubspot_support import API_EXCEPTIONS, TOKEN
from ratewindow_hubspot import DailyLimitExhausted, limiter_of
from ratewindow_hubspot.testing import FakeHubSpot

from ratewindow import SlidingWindow
from ratewindow.testing import ManualClock


def test_the_token_never_shows(
    clock: ManualClock, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and urllib3's included
    seen: list[str] = []
    with FakeHubSpot(
        window_limit=3, daily_limit=8, search_per_second=1, clock=clock, wall_clock=clock,
        tokens=[TOKEN],
    ) as fake:  # fmt: skip
        hs = ratewindow_hubspot.client(
            TOKEN, host=fake.url, limits=SlidingWindow(3, 10.0, clock=clock), clock=clock
        )
        calls = fake.dataset.ids("calls")
        api = hs.crm.objects.calls.basic_api
        errors: list[BaseException] = []
        api.get_by_id(calls[0])
        other = hubspot.HubSpot(access_token=TOKEN, host=fake.url).crm.objects.calls.basic_api
        other.get_page(limit=1)
        other.get_page(limit=1)
        try:
            api.get_by_id(calls[1])  # 429 TEN_SECONDLY_ROLLING: the other client filled the window
        except API_EXCEPTIONS as exc:
            errors.append(exc)
        for _ in range(2):  # the 2nd: 429 SECONDLY
            try:
                hs.crm.objects.search_api.do_search("calls", PublicObjectSearchRequest(limit=1))
            except API_EXCEPTIONS as exc:
                errors.append(exc)
        clock.advance(20.0)
        response = hs.api_request({"method": "GET", "path": f"/crm/v3/objects/calls/{calls[0]}"})
        seen += [repr(response), response.text, str(response.headers)]
        with ratewindow_hubspot.executor(hs, max_workers=1, progress=False, clock=clock) as ex:
            outcomes = ex.map(lambda i: api.get_by_id(i).id, calls[:6])  # the day runs out
            seen.append(repr(ex))
        errors += [o.error for o in outcomes if o.error is not None]
        with pytest.raises(DailyLimitExhausted) as info:
            api.get_by_id(calls[0])
        errors.append(info.value)
        unauthorized = ratewindow_hubspot.client("pat-wrong-" + TOKEN[::-1], host=fake.url, clock=clock)
        with pytest.raises(API_EXCEPTIONS) as denied:
            unauthorized.crm.objects.calls.basic_api.get_page(limit=1)
        errors.append(denied.value)

        limiter = limiter_of(hs)
        assert {"TEN_SECONDLY_ROLLING", "SECONDLY", "DAILY"} <= set(limiter.stats.rate_limited)
        seen += [repr(limiter), str(limiter), repr(limiter.stats)]
        seen += [repr(limiter.account), repr(limiter.search)]
        seen += [repr(hs.config["api_factory"]), repr(api.api_client.rest_client.request)]
        seen += [repr(hs.api_request), repr(limiter._requests_adapter())]
        seen += [repr(outcomes)]
        for error in errors:
            chain: BaseException | None = error
            while chain is not None:
                seen += [repr(chain), str(chain)]
                chain = chain.__cause__ or chain.__context__
        seen.append(repr(fake.stats.records))
    out, err = capfd.readouterr()
    seen += [caplog.text, out, err]
    seen += [r.getMessage() for r in caplog.records]
    assert errors and caplog.records
    for text in seen:
        assert TOKEN not in text
        assert TOKEN[8:] not in text  # not even the part after "pat-na1-"
