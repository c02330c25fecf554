"""The calibration core on a manual clock: header families, observations, and what a Calibrator
does with them (learned windows, tightening, phantom units, pauses, probing, sharing)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections import deque
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ratewindow import (
    Calibration,
    Calibrator,
    DailyQuota,
    HubSpotRateLimit,
    IETFRateLimit,
    Limits,
    MemoryStore,
    Observation,
    Probe,
    Rate,
    RetryAfter,
    SalesforceLimitInfo,
    ShopifyCallLimit,
    SlidingWindow,
    SQLiteStore,
    TokenBucket,
    XRateLimit,
    parse_headers,
)
from ratewindow._calibrate import SAFETY
from ratewindow.testing import ManualClock

NOW = 1_800_000_000.0  # a Unix time for the manual clock


# -- the families ---------------------------------------------------------------------------------
def test_ietf_current_draft_policies_and_service_limits() -> None:
    headers = {"RateLimit-Policy": '"burst";q=100;w=60, "daily";q=1000;w=86400',
               "RateLimit": '"burst";r=50;t=30, "daily";r=999;pk=:cHsdsRa894==:'}
    assert parse_headers(headers) == (
        Observation(policy="burst", limit=100, remaining=50, window=60.0, reset=30.0, family="ietf"),
        Observation(policy="daily;pk=cHsdsRa89w==", remaining=999, family="ietf"),
        Observation(policy="daily", limit=1000, window=86400.0, family="ietf"),
    )


def test_ietf_older_drafts() -> None:
    old = {"RateLimit-Limit": "10, 10;w=1, 50;w=60", "RateLimit-Remaining": "5", "RateLimit-Reset": "3"}
    assert IETFRateLimit.parse(old) == IETFRateLimit((
        Observation(limit=10, remaining=5, window=1.0, reset=3.0, family="ietf"),))
    draft07 = {"RateLimit": "limit=100, remaining=50, reset=30", "RateLimit-Policy": "100;w=60"}
    assert parse_headers(draft07) == (
        Observation(limit=100, remaining=50, window=60.0, reset=30.0, family="ietf"),)


def test_x_ratelimit_reset_readings() -> None:
    headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4999", "X-RateLimit-Reset": str(NOW + 600),
               "X-RateLimit-Resource": "core"}
    assert XRateLimit.parse(headers, now=NOW) == XRateLimit(5000, 4999, 600.0, "core")  # above a year: Unix time
    assert XRateLimit.parse({**headers, "X-RateLimit-Reset": "45"}, now=NOW).reset == 45.0  # seconds from now
    assert XRateLimit.parse({**headers, "X-RateLimit-Reset": "45"}, now=NOW, reset="epoch") is not None
    assert XRateLimit.parse({**headers, "X-RateLimit-Reset": "45"}, now=NOW, reset="epoch").observations() == ()
    dated = {**headers, "X-RateLimit-Reset": "2027-01-15T08:00:10Z"}  # Jira: a date
    when = dt.datetime(2027, 1, 15, 8, 0, 10, tzinfo=dt.timezone.utc).timestamp()
    assert XRateLimit.parse(dated, now=when - 10, reset="date").reset == 10.0  # type: ignore[union-attr]
    assert XRateLimit.parse(dated, now=when - 10).reset == 10.0  # type: ignore[union-attr]
    stale = XRateLimit.parse({**headers, "X-RateLimit-Reset": str(NOW - 5)}, now=NOW)
    assert stale is not None and stale.observations() == ()  # a reset already past: stale
    with pytest.raises(ValueError, match="reset must be one of"):
        XRateLimit.parse(headers, reset="soon")


def test_retry_after_shopify_hubspot_salesforce() -> None:
    assert RetryAfter.parse({"Retry-After": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0) == RetryAfter(10.0)
    assert ShopifyCallLimit.parse({"X-Shopify-Shop-Api-Call-Limit": "32/40"}).observations() == (
        Observation(policy="shopify", limit=40, remaining=8, window=20.0, reset=16.0, family="shopify"),)
    hubspot = HubSpotRateLimit.parse({"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "12",
                                      "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                                      "X-HubSpot-RateLimit-Daily": "625000",
                                      "X-HubSpot-RateLimit-Daily-Remaining": "600000"})
    assert hubspot is not None and hubspot.observations() == (
        Observation(policy="hubspot", limit=190, remaining=12, window=10.0, family="hubspot"),
        Observation(policy="hubspot-daily", limit=625_000, remaining=600_000, daily=True, family="hubspot"),
    )
    assert SalesforceLimitInfo.parse({"Sforce-Limit-Info": "api-usage=18/15000"}) == (18, 15_000)
    assert SalesforceLimitInfo.parse("api-usage=18/15000").observations() == (  # type: ignore[union-attr]
        Observation(policy="api-usage", limit=15_000, remaining=14_982, window=86_400.0, family="salesforce"),)


@pytest.mark.parametrize("headers", [
    {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "11"},  # more remaining than the limit
    {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "3, 7"},  # one field, two values
    {"X-RateLimit-Limit": "ten"},
    {"X-RateLimit-Limit": "-1"},
    {"RateLimit-Policy": '"a";q=10;w=1', "RateLimit": '"a";r=11'},
    {"RateLimit-Policy": '"a";q=10;w=1', "RateLimit": '"a";r=5, "a";r=6'},
    {"RateLimit": '"a";r=5;t=-1'},
    {"RateLimit": '"unterminated;r=5'},
    {"X-Shopify-Shop-Api-Call-Limit": "41/40"},
    {"X-Shopify-Shop-Api-Call-Limit": "4040"},
    {"Retry-After": "-3"},
    {"Retry-After": "nan"},
])
def test_malformed_and_contradictory_headers_give_nothing(headers: dict[str, str]) -> None:
    seen: list[str] = []
    assert parse_headers(headers, malformed=seen.append) == ()
    assert seen  # and the family is named, for the calibrator's DEBUG line


_BYTES = st.binary(max_size=60)
_TEXT = st.text(max_size=60)
_NAMES = st.sampled_from(["RateLimit", "RateLimit-Policy", "RateLimit-Limit", "RateLimit-Remaining",
                          "RateLimit-Reset", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset",
                          "X-RateLimit-Resource", "X-RateLimit-Interval-Seconds", "Retry-After", "Age",
                          "X-Shopify-Shop-Api-Call-Limit", "X-HubSpot-RateLimit-Max",
                          "X-HubSpot-RateLimit-Remaining", "X-HubSpot-RateLimit-Interval-Milliseconds",
                          "X-HubSpot-RateLimit-Daily", "X-HubSpot-RateLimit-Daily-Remaining",
                          "Sforce-Limit-Info"])
_VALUE_PIECES = st.sampled_from(['"burst"', ";q=", ";w=", ";r=", ";t=", ";pk=:", ":", ",", " ", "/", "=", "-",
                                 "1", "0", "999999999999999999999", "1.5", "nan", "inf", "\\", '"', "?1",
                                 "api-usage=", "Wed, 21 Oct 2015 07:28:10 GMT", "2026-12-31T00:00:00Z"])
_VALUES = st.one_of(_TEXT, _BYTES, st.lists(_VALUE_PIECES, max_size=12).map("".join))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.one_of(_NAMES, _TEXT), _VALUES), max_size=8), st.sampled_from(
    ["auto", "epoch", "delta", "date"]))
def test_no_header_bytes_make_any_parser_raise(pairs: list[tuple[str, str | bytes]], reset: str) -> None:
    headers = dict(pairs)
    for family in Calibration().families:
        parsed = family.parse(headers, now=NOW, reset=reset)
        if parsed is not None:
            for observation in parsed.observations():
                assert observation.limit is None or observation.limit >= 0
                assert observation.remaining is None or observation.remaining >= 0
                assert observation.window is None or observation.window > 0
    parse_headers(headers, now=NOW, reset=reset, malformed=lambda name: None)
    calibrator = Calibrator(SlidingWindow(5, 1.0, clock=ManualClock(NOW)))
    calibrator.observe(calibrator.acquire(), headers, 200)  # nor the calibrator


# -- the calibrator -----------------------------------------------------------------------------
def _ietf(q: int, w: int, r: int, t: int | None = None) -> dict[str, str]:
    service = f'"default";r={r}' + ("" if t is None else f";t={t}")
    return {"RateLimit-Policy": f'"default";q={q};w={w}', "RateLimit": service}


def test_a_generous_limiter_learns_the_servers_window_and_keeps_its_pace() -> None:
    clock = ManualClock(NOW)
    calibrator = Calibrator(SlidingWindow(1_000, 1.0, name="api", clock=clock))
    ticket = calibrator.acquire()
    calibrator.observe(ticket, _ietf(10, 60, 9), 200)
    assert calibrator.learned == {"default": Rate(10, 60.0)}
    effective = calibrator.limiter
    assert isinstance(effective, Limits)
    learned = effective.limiters[1]
    assert (learned.limit, learned.window, learned.margin, learned.name) == (10, 60.0, 0.6, "api")
    assert learned.available() == 9  # the probe, sent before the window was known, is counted (as a phantom)
    for _ in range(9):
        calibrator.acquire()
    assert clock.now() == NOW
    calibrator.acquire()  # the 11th waits for the server's window
    assert clock.now() == NOW + 60.6


def test_a_window_inferred_from_resets_grows_to_the_longest_reset_seen() -> None:
    clock = ManualClock(NOW)
    calibrator = Calibrator(SlidingWindow(1_000, 1.0, name="api", clock=clock))

    def x(remaining: int, reset: float) -> dict[str, str]:
        return {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}

    calibrator.observe(calibrator.acquire(), x(9, 1.5), 200)  # a fixed window met half-way
    assert calibrator.learned == {"": Rate(10, 2.0)}  # whole seconds, rounded up
    calibrator.observe(calibrator.acquire(), x(8, 4.2), 200)
    assert calibrator.learned == {"": Rate(10, 5.0)}
    windows = [m.window for m in calibrator.limiter.limiters]  # type: ignore[attr-defined]
    assert windows == [1.0, 5.0]  # the shorter guess is dropped


def test_a_configured_window_of_the_same_length_is_tightened_on_its_own_state() -> None:
    clock = ManualClock(NOW)
    configured = SlidingWindow(100, 10.0, name="api", clock=clock)
    calibrator = Calibrator(configured)
    calibrator.observe(calibrator.acquire(), _ietf(20, 10, 19), 200)
    effective = calibrator.limiter
    assert isinstance(effective, Limits) and len(effective.limiters) == 1
    assert effective.limiters[0].limit == 20
    assert configured.available() == 99  # the same state: the configured limiter sees the grant
    assert effective.available() == 19


def test_raising_above_the_configured_limit_is_opt_in() -> None:
    clock = ManualClock(NOW)
    kept = Calibrator(SlidingWindow(10, 10.0, name="a", clock=clock))
    kept.observe(kept.acquire(), _ietf(50, 10, 49), 200)
    assert kept.limiter is kept.configured  # nothing raised by default
    raised = Calibrator(SlidingWindow(10, 10.0, name="b", clock=clock), Calibration(raise_limits=True))
    raised.observe(raised.acquire(), _ietf(50, 10, 49), 200)
    assert raised.limiter.limiters[0].limit == 50  # type: ignore[attr-defined]


def test_others_use_is_yielded_once_as_phantom_units() -> None:
    clock = ManualClock(NOW)
    calibrator = Calibrator(SlidingWindow(100, 10.0, name="api", clock=clock))
    calibrator.observe(calibrator.acquire(), _ietf(100, 10, 59), 200)  # 41 counted, 1 ours: 40 others'
    assert calibrator.phantom_units == 40 + 5  # and 5 % of the window while others spend it
    calibrator.observe(calibrator.acquire(), _ietf(100, 10, 58), 200)  # the same 40: taken once
    assert calibrator.phantom_units == 45
    assert calibrator.limiter.available() == 100 - 2 - 45


def test_retry_after_takes_precedence_and_pauses_everyone() -> None:
    clock = ManualClock(NOW)
    store = MemoryStore()
    calibrator = Calibrator(SlidingWindow(100, 10.0, name="api", store=store, clock=clock))
    other_worker = SlidingWindow(100, 10.0, name="api", store=store, clock=clock)
    calibrator.observe(calibrator.acquire(), {**_ietf(100, 10, 0, 9), "Retry-After": "30"}, 429)
    assert other_worker.wait_time() == 30.0
    assert calibrator.pauses == 1 and calibrator.throttled == 1


def test_a_429_that_says_nothing_pauses_briefly_and_a_spent_budget_until_its_reset() -> None:
    clock = ManualClock(NOW)
    calibrator = Calibrator(TokenBucket(100.0, 100, name="api", clock=clock))
    calibrator.observe(calibrator.acquire(), {}, 429)
    assert calibrator.limiter.wait_time() == 1.0  # Calibration.pause_429
    clock.advance(1.0)
    # No window to hold the budget (a bucket): remaining 0 pauses until the reset.
    calibrator.observe(calibrator.acquire(), {"RateLimit": '"default";r=0;t=7'}, 200)
    assert calibrator.limiter.wait_time() == 7.0


def test_stale_headers_are_ignored_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(NOW)
    calibrator = Calibrator(SlidingWindow(1_000, 1.0, name="api", clock=clock))
    with caplog.at_level(logging.DEBUG, logger="ratewindow"):
        for _ in range(3):
            calibrator.observe(calibrator.acquire(), {**_ietf(10, 60, 0), "Age": "30"}, 200)
            calibrator.observe(calibrator.acquire(), {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "77"})
    assert calibrator.learned == {} and calibrator.limiter is calibrator.configured
    assert calibrator.ignored == 6
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 2  # once per kind


def test_configured_limits_hold_without_headers_and_no_ledger_is_kept() -> None:
    clock = ManualClock(NOW)
    calibrator = Calibrator(SlidingWindow(3, 10.0, name="api", clock=clock))
    first = calibrator.acquire()
    assert first.counts  # the first request is recorded: its response may show a budget
    calibrator.observe(first, {"Content-Type": "application/json"}, 200)
    assert not calibrator.probing
    second = calibrator.acquire()
    assert second.counts == {}  # the server says nothing: no store call added per request
    calibrator.acquire()
    calibrator.acquire()
    assert clock.now() == NOW + 10.0  # the configured 3 per 10 s


def test_the_daily_budget_calibrates_a_daily_quota() -> None:
    clock = ManualClock(NOW)
    daily = DailyQuota(1_000, name="api", clock=clock)
    calibrator = Calibrator(Limits(SlidingWindow(100, 10.0, name="api", clock=clock), daily))
    calibrator.observe(calibrator.acquire(), {"X-HubSpot-RateLimit-Daily": "1000",
                                              "X-HubSpot-RateLimit-Daily-Remaining": "700"})
    assert daily.available() == 700 and calibrator.daily_units == 299


def test_what_one_process_learns_is_known_to_the_next_before_its_first_request(tmp_path: Path) -> None:
    path = tmp_path / "limits.db"
    clock = ManualClock(NOW)
    first = Calibrator(SlidingWindow(1_000, 1.0, name="api", store=SQLiteStore(path, clock=clock), clock=clock))
    first.observe(first.acquire(), _ietf(10, 60, 9), 200)
    later = Calibrator(SlidingWindow(1_000, 1.0, name="api", store=SQLiteStore(path, clock=clock), clock=clock))
    assert later.enter() is False  # no probing: the store says what the server allows
    assert later.learned == {"default": Rate(10, 60.0)}
    assert later.limiter.available() == 9  # and the budget is one: the first process's request counts


def test_until_the_first_response_one_request_goes() -> None:
    calibrator = Calibrator(SlidingWindow(1_000, 1.0, name="api"), max_wait=5.0)
    ticket = calibrator.acquire()
    assert ticket.probe and calibrator.probing
    started: list[float] = []

    def second() -> None:
        calibrator.acquire()
        started.append(1.0)

    thread = threading.Thread(target=second)
    thread.start()
    thread.join(0.2)
    assert started == []  # waits for the probe's response
    calibrator.observe(ticket, {}, 200)
    thread.join(5.0)
    assert started == [1.0] and not calibrator.probing


def test_a_failed_probe_lets_the_next_request_probe() -> None:
    probe = Probe(1)
    assert probe.enter() is True
    probe.leave(learned=False)
    assert probe.enter(timeout=0.0) is True and not probe.known


def test_probe_waits_without_blocking_the_event_loop() -> None:
    async def main() -> tuple[bool, bool, int]:
        probe = Probe(1)
        first = await probe.enter_async()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            for _ in range(5):
                await asyncio.sleep(0.01)
                ticks += 1
            probe.leave(learned=True)

        waiter = asyncio.ensure_future(probe.enter_async(5.0))
        await tick()
        return first, await waiter, ticks

    assert asyncio.run(main()) == (True, False, 5)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="reset must be one of"):
        Calibration(reset="later")
    with pytest.raises(ValueError, match="probe must be an int >= 0"):
        Calibration(probe=-1)
    with pytest.raises(TypeError, match="calibration must be a Calibration"):
        Calibrator(SlidingWindow(1, 1.0), calibration=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limiter must be a ratewindow limiter"):
        Calibrator(object())  # type: ignore[arg-type]


# -- others' steady use, on a virtual clock: the server's rolling window, counted at arrival --------
def _steady_neighbour(share: float, workers: int, latency: float, seconds: float, *, limit: int = 100,
                      window: float = 10.0, margin: float = 0.0, jitter: float = 0.0,
                      seed: int = 0) -> tuple[int, int, int]:
    """Our ``workers`` (reserve, confirm, send; the response ``latency`` s after the send is
    observed, then the next request) beside another client sending ``share`` of the limit
    steadily, ignoring 429s. Each of our requests reaches the server 0 to ``jitter`` s after it
    was sent (a busy machine); the server counts a rolling window at each arrival. Returns (our
    429s, ours counted, the most the server counted in a window)."""
    import heapq
    import random

    rng = random.Random(seed)
    clock = ManualClock(NOW)
    calibrator = Calibrator(SlidingWindow(limit, window, name="api", margin=margin, clock=clock))
    calibrator.done()  # no probe: every worker starts at once (the hardest start)
    counted: deque[float] = deque()  # arrival times the server counted
    most = ours_refused = ours_counted = 0

    def arrive(at: float) -> tuple[int, int]:
        while counted and counted[0] <= at - window:
            counted.popleft()
        if len(counted) >= limit:
            return 429, 0
        counted.append(at)
        return 200, limit - len(counted)

    events: list[tuple[float, int, str, object]] = []
    seq = 0

    def push(at: float, kind: str, data: object = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (at, seq, kind, data))

    every = window / (share * limit)
    foreign_at = NOW - window  # the neighbour has been at it for a window already
    while foreign_at < NOW + seconds:
        push(foreign_at, "foreign")
        foreign_at += every
    for _ in range(workers):
        push(NOW, "ready")
    while events:
        at, _, kind, data = heapq.heappop(events)
        if at > NOW + seconds:
            break
        if at > clock.now():
            clock.set(at)
        if kind == "foreign":
            arrive(at)
        elif kind == "ready":
            reservation = calibrator.limiter.reserve(1)
            push(at + reservation.delay, "send", reservation)
        elif kind == "send":
            left = data.confirm()  # type: ignore[attr-defined]
            if left > 0:
                push(at + left, "send", data)
                continue
            push(at + rng.uniform(0.0, jitter), "arrive", (calibrator.sending(), at))
        elif kind == "arrive":
            ticket, sent = data  # type: ignore[misc]
            status, remaining = arrive(at)
            ours_refused += status == 429
            ours_counted += status == 200
            most = max(most, len(counted))
            push(max(at, sent + latency), "response", (ticket, status, remaining))
        else:
            ticket, status, remaining = data  # type: ignore[misc]
            calibrator.observe(ticket, _ietf(limit, int(window), remaining), status, pause=False)
            push(at, "ready")
    return ours_refused, ours_counted, most


@pytest.mark.parametrize(
    ("share", "workers", "latency", "limit", "window", "margin"),
    [(0.25, 60, 0.03, 300, 1.0, 0.05), (0.1, 20, 0.3, 100, 10.0, 0.1), (0.5, 30, 0.05, 300, 1.0, 0.02),
     (0.4, 120, 0.03, 300, 1.0, 0.01)],
)
def test_others_steady_use_is_yielded_at_every_window_boundary(
    share: float, workers: int, latency: float, limit: int, window: float, margin: float
) -> None:
    # Our requests come in bursts where our window frees room, one window + margin apart. Were
    # the ledger of what the server counts of ours to hold units as long as the limiter does
    # (window + margin), it would still count the last burst, which the server has forgotten,
    # just as the next burst goes: others' use read low then, and that burst met 429s.
    seconds = 60.0
    refused, ours, most = _steady_neighbour(share, workers, latency, seconds, limit=limit, window=window,
                                            margin=margin)
    assert refused == 0 and most <= limit
    room = limit * (1 - share - SAFETY)  # what others leave, less the 5 % yielded while they spend
    assert ours >= 0.95 * room * seconds / window  # ... and it is used


# -- two processes learning one window at once ---------------------------------------------------------
def test_a_process_that_learns_a_window_yields_the_probes_other_processes_have_in_flight() -> None:
    # Two processes (two calibrators, one store), each with a generous limiter; the server allows
    # 10 per 10 s and says so only in its headers. B's probe is on its way when A's answer comes
    # back without it: A learns the window, which holds nothing of B's probe yet.
    clock = ManualClock(NOW)
    store = MemoryStore()
    a = Calibrator(SlidingWindow(1_000, 1.0, name="api", store=store, clock=clock))
    b = Calibrator(SlidingWindow(1_000, 1.0, name="api", store=store, clock=clock))
    b_probe = b.acquire()  # sent; the server has not counted it yet
    assert b_probe.probe
    a.observe(a.acquire(), _ietf(10, 10, 9), 200)  # A's probe, the only one counted
    sent_by_a = 0
    while a.limiter.try_acquire():
        sent_by_a += 1
    assert 1 + sent_by_a + 1 <= 10  # A's probe, A's requests and B's probe: within the limit
    assert sent_by_a == 10 - 2  # ... and nothing more was yielded
    b.observe(b_probe, _ietf(10, 10, 0), 200)  # B's answer: the window is full, all of it known
    assert not b.limiter.try_acquire()


def test_a_probe_that_starts_after_another_process_learned_goes_with_the_learned_limits() -> None:
    clock = ManualClock(NOW)
    store = MemoryStore()
    a = Calibrator(SlidingWindow(1_000, 1.0, name="api", store=store, clock=clock))
    a.observe(a.acquire(), _ietf(10, 10, 9), 200)  # A learned 10 per 10 s and noted it on the store
    b = Calibrator(SlidingWindow(1_000, 1.0, name="api", store=store, clock=clock))
    assert b.enter() is False and not b.probing  # B reads the note: no probe, the learned limits
    assert b.learned == {"default": Rate(10, 10.0)}
