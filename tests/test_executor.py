"""RateLimitedExecutor on a ManualClock: permits per attempt, retries, the shared pause, the
circuit breaker, the daily quota, the journal, ordering and bounded memory. Exact counts."""

from __future__ import annotations

import datetime as dt
import gc
import itertools
import json
import logging
import math
import os
import re
import signal
import threading
import weakref
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from _executor_helpers import ApiError, HTTPError, RecordingWindow, peak_in_window

from ratewindow import (
    CircuitOpen,
    DailyQuota,
    JournalError,
    Limits,
    Outcome,
    QuotaExhausted,
    RateLimitedExecutor,
    Retry,
    RetryLater,
    SlidingWindow,
    StoreUnavailable,
    TokenBucket,
)
from ratewindow.testing import ManualClock

NO_JITTER = Retry(jitter=False)
MIDNIGHT = dt.datetime(2026, 5, 4, tzinfo=dt.timezone.utc).timestamp()  # a Monday, 00:00 UTC
DAY = 86_400.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=MIDNIGHT + 3600.0)


@pytest.fixture(autouse=True)
def _no_threads_left() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) == before


def executor(limiter: object, clock: ManualClock, **options: object) -> RateLimitedExecutor:
    options.setdefault("progress", False)
    options.setdefault("retry", NO_JITTER)
    return RateLimitedExecutor(limiter, clock=clock, **options)  # type: ignore[arg-type]


class Calls:
    """A function to run that records the clock time of every call, per item."""

    def __init__(self, clock: ManualClock, fail: dict[int, list[BaseException]] | None = None) -> None:
        self.clock = clock
        self.fail = fail or {}
        self.times: dict[int, list[float]] = {}
        self.lock = threading.Lock()

    def __call__(self, item: int) -> int:
        with self.lock:
            self.times.setdefault(item, []).append(self.clock.now() - MIDNIGHT - 3600.0)
            errors = self.fail.get(item)
            error = errors.pop(0) if errors else None
        if error is not None:
            raise error
        return item * 10

    @property
    def total(self) -> int:
        return sum(len(t) for t in self.times.values())


# -- outcomes and ordering -----------------------------------------------------------------------
def test_map_returns_one_outcome_per_item_in_input_order(clock: ManualClock) -> None:
    calls = Calls(clock, fail={3: [ValueError("bad item")]})
    with executor(SlidingWindow(5, 1.0, clock=clock), clock, max_workers=4) as ex:
        outcomes = ex.map(calls, range(20))
    assert [o.index for o in outcomes] == list(range(20))
    assert [o.item for o in outcomes] == list(range(20))
    assert [o.value for o in outcomes] == [None if i == 3 else i * 10 for i in range(20)]
    assert [o.ok for o in outcomes] == [i != 3 for i in range(20)]
    bad = outcomes[3]
    assert isinstance(bad.error, ValueError) and bad.attempts == 1
    with pytest.raises(ValueError, match="bad item"):
        bad.result()
    assert outcomes[0].result() == 0
    stats = ex.stats
    assert (stats.succeeded, stats.failed, stats.not_run, stats.calls, stats.retries) == (19, 1, 0, 20, 0)


def test_imap_yields_each_outcome_once_with_its_index(clock: ManualClock) -> None:
    with executor(SlidingWindow(100, 1.0, clock=clock), clock, max_workers=3) as ex:
        seen = list(ex.imap(lambda s: s.upper(), ["a", "b", "c", "d", "e"]))
    assert sorted((o.index, o.value) for o in seen) == [(0, "A"), (1, "B"), (2, "C"), (3, "D"), (4, "E")]


def test_every_attempt_takes_one_permit(clock: ManualClock) -> None:
    fail = {i: [ConnectionError("reset"), TimeoutError("slow")] for i in range(5)}
    limiter = SlidingWindow(100, 3600.0, clock=clock)
    with executor(limiter, clock, max_workers=2) as ex:
        outcomes = ex.map(Calls(clock, fail), range(5))
    assert [o.attempts for o in outcomes] == [3] * 5
    assert limiter.available() == 100 - 15
    assert (ex.stats.calls, ex.stats.retries) == (15, 10)


def test_without_a_limiter_no_permit_is_taken_here(clock: ManualClock) -> None:
    client_limiter = SlidingWindow(5, 3600.0, clock=clock)  # the SDK client's own limiter

    def call_api(item: int) -> int:
        client_limiter.acquire()  # one permit per HTTP request, taken by the client
        return item

    with executor(None, clock, max_workers=3) as ex:
        outcomes = ex.map(call_api, range(5))
    assert all(o.ok for o in outcomes)
    assert client_limiter.available() == 0  # exactly 5 taken: none by the executor
    assert clock.now() == MIDNIGHT + 3600.0  # nobody waited


# -- retries ---------------------------------------------------------------------------------
def test_retry_schedule_doubles_from_backoff(clock: ManualClock) -> None:
    calls = Calls(clock, fail={0: [ConnectionError(), HTTPError(503), ApiError(502)]})
    with executor(None, clock, max_workers=1) as ex:
        [outcome] = ex.map(calls, [0])
    assert calls.times[0] == [0.0, 0.5, 1.5, 3.5]
    assert outcome.ok and outcome.attempts == 4 and outcome.elapsed == 3.5


def test_retry_gives_up_after_attempts_and_caps_backoff(clock: ManualClock) -> None:
    calls = Calls(clock, fail={0: [ConnectionError(f"try {n}") for n in range(1, 10)]})
    policy = Retry(attempts=5, backoff=1.0, max_backoff=3.0, jitter=False)
    with executor(None, clock, max_workers=1, retry=policy) as ex:
        [outcome] = ex.map(calls, [0])
    assert calls.times[0] == [0.0, 1.0, 3.0, 6.0, 9.0]
    assert outcome.attempts == 5 and str(outcome.error) == "try 5"


@pytest.mark.parametrize(
    "error", [ValueError("bad"), HTTPError(404), ApiError(400), HTTPError(501), PermissionError(13, "no")]
)
def test_non_retryable_errors_fail_at_once(clock: ManualClock, error: Exception) -> None:
    calls = Calls(clock, fail={0: [error]})
    with executor(None, clock, max_workers=1) as ex:
        [outcome] = ex.map(calls, [0])
    assert outcome.error is error and outcome.attempts == 1


def test_retry_on_classes_replaces_the_builtin_rule(clock: ManualClock) -> None:
    calls = Calls(clock, fail={0: [KeyError("k")], 1: [ConnectionError()]})
    with executor(None, clock, max_workers=1, retry=Retry(retry_on=(KeyError,), jitter=False)) as ex:
        first, second = ex.map(calls, [0, 1])
    assert first.ok and first.attempts == 2
    assert isinstance(second.error, ConnectionError) and second.attempts == 1


def test_jittered_backoffs_stay_within_half_and_all(clock: ManualClock) -> None:
    calls = Calls(clock, fail={i: [ConnectionError(), ConnectionError()] for i in range(40)})
    with executor(None, clock, max_workers=1, retry=Retry(backoff=2.0)) as ex:
        ex.map(calls, range(40))
    first_gaps = [t[1] - t[0] for t in calls.times.values()]
    second_gaps = [t[2] - t[1] for t in calls.times.values()]
    assert all(1.0 <= gap <= 2.0 for gap in first_gaps)
    assert all(2.0 <= gap <= 4.0 for gap in second_gaps)
    assert len({round(gap, 9) for gap in first_gaps}) > 30  # spread out, not one value


def test_store_unavailable_is_retried_before_any_call(clock: ManualClock) -> None:
    class FlakyStoreWindow(SlidingWindow):
        failures = 2

        def reserve(self, cost: int = 1):  # type: ignore[no-untyped-def]
            if self.failures:
                self.failures -= 1
                raise StoreUnavailable("redis://test", "connection refused")
            return super().reserve(cost)

    calls = Calls(clock)
    with executor(FlakyStoreWindow(10, 1.0, clock=clock), clock, max_workers=1) as ex:
        [outcome] = ex.map(calls, [7])
    assert outcome.ok and outcome.attempts == 1 and calls.times[7] == [1.5]


# -- rate-limit responses: honour Retry-After, pause everyone once ---------------------------------
@pytest.mark.parametrize(
    ("error", "wait"),
    [
        (RetryLater(after=7.0), 7.0),
        (ApiError(429, retry_after=2.5), 2.5),
        (HTTPError(429, headers={"Retry-After": "3"}), 3.0),
        (HTTPError(503, headers={"Retry-After": "4"}), 4.0),
        (HTTPError(429), 0.5),  # no Retry-After: the back-off
    ],
)
def test_retry_after_is_honoured_and_pauses_the_limiter(clock: ManualClock, error: Exception, wait: float
                                                         ) -> None:
    limiter = RecordingWindow(100, 60.0, clock=clock)
    calls = Calls(clock, fail={0: [error]})
    with executor(limiter, clock, max_workers=1) as ex:
        [outcome] = ex.map(calls, [0])
    assert calls.times[0] == [0.0, wait]
    assert limiter.pauses == [wait]
    assert outcome.ok and outcome.attempts == 2
    assert (ex.stats.rate_limited, ex.stats.pauses, ex.stats.failed) == (1, 1, 0)


def test_retry_after_as_an_http_date(clock: ManualClock) -> None:
    when = dt.datetime.fromtimestamp(clock.now() + 90, dt.timezone.utc)
    error = HTTPError(429, headers={"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")})
    calls = Calls(clock, fail={0: [error]})
    with executor(None, clock, max_workers=1, max_wait=120.0) as ex:
        ex.map(calls, [0])
    assert calls.times[0] == [0.0, 90.0]


def test_one_429_pauses_every_worker(clock: ManualClock) -> None:
    """Item 0 gets a 429 while items 1-3 are in flight; no call starts during the pause."""
    limiter = RecordingWindow(1000, 60.0, clock=clock)
    starts: list[tuple[int, float]] = []
    seen: Counter[int] = Counter()
    lock = threading.Lock()
    first_wave = threading.Barrier(4, timeout=10)

    def call(item: int) -> int:
        with lock:
            starts.append((item, clock.now() - MIDNIGHT - 3600.0))
            seen[item] += 1
            first = seen[item] == 1
        if item < 4 and first:
            first_wave.wait()  # all four in flight at once
            if item == 0:
                raise ApiError(429, retry_after=10.0)
            assert limiter.paused.wait(10)  # still in flight when the 429 came back
        return item

    with executor(limiter, clock, max_workers=4) as ex:
        outcomes = ex.map(call, range(12))
    assert all(o.ok for o in outcomes) and outcomes[0].attempts == 2
    assert sorted(item for item, _ in starts[:4]) == [0, 1, 2, 3]
    during_pause = [(item, t) for item, t in starts[4:] if t < 10.0]
    assert during_pause == []
    assert len(starts) == 13
    assert limiter.pauses == [10.0]
    assert (ex.stats.rate_limited, ex.stats.pauses) == (1, 1)


def test_pause_without_limiter_holds_every_worker(clock: ManualClock) -> None:
    calls = Calls(clock, fail={0: [RetryLater(after=5.0)]})
    with executor(None, clock, max_workers=1) as ex:
        ex.map(calls, range(4))
    assert calls.times[0] == [0.0, 5.0]
    assert all(t[0] >= 5.0 for item, t in calls.times.items() if item)


def test_rate_limits_do_not_open_the_circuit(clock: ManualClock) -> None:
    calls = Calls(clock, fail={i: [RetryLater(after=1.0)] for i in range(6)})
    with executor(None, clock, max_workers=1, breaker=2) as ex:
        outcomes = ex.map(calls, range(6))
    assert all(o.ok for o in outcomes)
    assert ex.stats.rate_limited == 6


def test_rate_limited_until_attempts_run_out_fails_the_item(clock: ManualClock) -> None:
    calls = Calls(clock, fail={0: [ApiError(429, retry_after=1.0)] * 3})
    with executor(None, clock, max_workers=1, retry=Retry(attempts=3, jitter=False)) as ex:
        [outcome] = ex.map(calls, [0])
    assert isinstance(outcome.error, ApiError) and outcome.attempts == 3


# -- circuit breaker ----------------------------------------------------------------------------
def test_circuit_opens_after_consecutive_failures(clock: ManualClock) -> None:
    calls = Calls(clock, fail={i: [ValueError(f"bad {i}")] for i in range(5, 20)})
    with executor(None, clock, max_workers=1, breaker=3) as ex:
        outcomes = ex.map(calls, range(20))
    assert [o.ok for o in outcomes[:5]] == [True] * 5
    assert [str(o.error) for o in outcomes[5:8]] == ["bad 5", "bad 6", "bad 7"]
    for outcome in outcomes[8:]:
        assert isinstance(outcome.error, CircuitOpen) and outcome.attempts == 0
        assert outcome.error.failures == 3
        assert str(outcome.error.__cause__) == "bad 7"
    assert calls.total == 8
    assert (ex.stats.succeeded, ex.stats.failed, ex.stats.not_run) == (5, 3, 12)


def test_a_success_closes_the_count(clock: ManualClock) -> None:
    failing = {i: [ValueError()] for i in range(30) if i % 3 != 2}  # fail, fail, ok, fail, fail, ok...
    with executor(None, clock, max_workers=1, breaker=3) as ex:
        outcomes = ex.map(Calls(clock, failing), range(30))
    assert sum(o.ok for o in outcomes) == 10 and ex.stats.not_run == 0


def test_breaker_none_never_opens(clock: ManualClock) -> None:
    with executor(None, clock, max_workers=2, breaker=None) as ex:
        outcomes = ex.map(Calls(clock, {i: [ValueError()] for i in range(50)}), range(50))
    assert all(o.attempts == 1 and isinstance(o.error, ValueError) for o in outcomes)


def test_circuit_with_many_workers_reports_every_item(clock: ManualClock) -> None:
    with executor(None, clock, max_workers=4, breaker=5) as ex:
        outcomes = ex.map(Calls(clock, {i: [ValueError()] for i in range(1000)}), range(1000))
    ran = [o for o in outcomes if o.attempts]
    assert 5 <= len(ran) <= 5 + 4  # at most the calls already in flight when it opened
    assert len(outcomes) == 1000
    assert all(isinstance(o.error, CircuitOpen) for o in outcomes if not o.attempts)


# -- daily quota and max_wait --------------------------------------------------------------------
def test_quota_exhausted_reports_the_rest_not_run_and_resumes_after_reset(
    clock: ManualClock, tmp_path: Path
) -> None:
    journal = tmp_path / "run.jsonl"
    quota = DailyQuota(10, tz="UTC", clock=clock)
    calls = Calls(clock)

    def run() -> list[Outcome[int, int]]:
        with executor(quota, clock, max_workers=3) as ex:
            return ex.map(calls, range(25), key=str, journal=journal)

    first = run()
    assert sum(o.ok for o in first) == 10
    not_run = [o for o in first if not o.ok]
    assert len(not_run) == 15
    for outcome in not_run:
        assert isinstance(outcome.error, QuotaExhausted) and outcome.attempts == 0
        assert outcome.error.retry_at == pytest.approx(MIDNIGHT + DAY)
    assert len(journal.read_text().splitlines()) == 10
    assert clock.now() == MIDNIGHT + 3600.0  # nobody slept towards tomorrow

    clock.advance(MIDNIGHT + DAY - clock.now())  # the quota resets
    second = run()
    assert sum(o.resumed for o in second) == 10
    assert sum(o.ok and not o.resumed for o in second) == 10
    assert sum(not o.ok for o in second) == 5
    assert all(o.error.retry_at == pytest.approx(MIDNIGHT + 2 * DAY) for o in second if o.error)  # type: ignore[attr-defined]

    clock.advance(DAY)
    third = run()
    assert all(o.ok for o in third)
    assert sorted(calls.times) == list(range(25))
    assert all(len(t) == 1 for t in calls.times.values())  # every item ran exactly once


def test_wait_within_max_wait_is_waited(clock: ManualClock) -> None:
    limiter = SlidingWindow(2, 30.0, clock=clock)
    calls = Calls(clock)
    with executor(limiter, clock, max_workers=1, max_wait=30.0) as ex:
        outcomes = ex.map(calls, range(4))
    assert all(o.ok for o in outcomes)
    assert [calls.times[i][0] for i in range(4)] == [0.0, 0.0, 30.0, 30.0]
    assert ex.stats.permit_wait == 30.0


def test_server_retry_after_beyond_max_wait_is_quota_exhausted(clock: ManualClock) -> None:
    limiter = RecordingWindow(100, 1.0, clock=clock)
    calls = Calls(clock, fail={1: [ApiError(429, retry_after=3600.0)]})
    with executor(limiter, clock, max_workers=1) as ex:
        outcomes = ex.map(calls, range(5))
        same_executor_later = ex.map(calls, range(3))  # its own hold: reported, not slept through
    assert all(isinstance(o.error, QuotaExhausted) and o.attempts == 0 for o in same_executor_later)
    assert outcomes[0].ok
    hit = outcomes[1]
    assert isinstance(hit.error, QuotaExhausted) and hit.attempts == 1
    assert hit.error.retry_at == MIDNIGHT + 7200.0
    assert isinstance(hit.error.__cause__, ApiError)
    assert all(isinstance(o.error, QuotaExhausted) and o.attempts == 0 for o in outcomes[2:])
    assert calls.total == 2
    assert limiter.pauses == [3600.0]  # other processes sharing the store hold too

    with executor(limiter, clock, max_workers=1) as ex:  # another executor: the store's pause
        later = ex.map(calls, range(3))
    assert all(isinstance(o.error, QuotaExhausted) and o.attempts == 0 for o in later)
    assert calls.total == 2 and clock.now() == MIDNIGHT + 3600.0


# -- journal ------------------------------------------------------------------------------------
def test_journal_resume_skips_done_keys_and_returns_stored_values(clock: ManualClock, tmp_path: Path
                                                                  ) -> None:
    journal = tmp_path / "run.jsonl"
    calls = Calls(clock, fail={3: [ValueError("not yet")]})

    def pair(item: int) -> tuple[int, str]:
        calls(item)
        return item, f"v{item}"

    with executor(None, clock, max_workers=2) as ex:
        first = ex.map(pair, range(6), key=lambda i: f"id-{i}", journal=journal)
    assert [o.ok for o in first] == [True, True, True, False, True, True]
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    assert sorted(r["key"] for r in records) == [f"id-{i}" for i in range(6)]
    assert next(r for r in records if not r["ok"])["error"] == "ValueError: not yet"

    with executor(None, clock, max_workers=2) as ex:
        second = ex.map(pair, range(6), key=lambda i: f"id-{i}", journal=journal)
    assert [o.resumed for o in second] == [True, True, True, False, True, True]
    assert second[0].value == [0, "v0"]  # stored as JSON: the tuple comes back as a list
    assert second[3].value == (3, "v3") and second[3].attempts == 1
    assert {i: len(t) for i, t in calls.times.items()} == {0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}
    assert ex.stats.resumed == 5


def test_journal_key_defaults_to_the_item(clock: ManualClock, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    with executor(None, clock) as ex:
        ex.map(str.upper, ["a", "b"], journal=journal)
        again = ex.map(str.upper, ["a", "b", "c"], journal=str(journal))
    assert [o.resumed for o in again] == [True, True, False]


class Model:
    """Shaped like an SDK model: ``to_dict()`` holds datetimes."""

    def __init__(self, n: int) -> None:
        self.n = n

    def to_dict(self) -> dict[str, object]:
        return {"id": str(self.n), "created_at": dt.datetime(2026, 5, 4, tzinfo=dt.timezone.utc)}


def awkward_value(item: int) -> object:
    """Values a journal has to cope with, by item: most are fine."""
    if item == 2:
        return os.fsdecode(b"report-\xff.csv")  # a lone surrogate: escaped, kept
    if item == 4:
        deep: list[object] = []
        for _ in range(100_000):
            deep = [deep]
        return deep  # RecursionError: this item fails
    if item == 6:
        return object()  # not JSON at all: this item fails
    if item == 8:
        return Model(item)  # converted through to_dict()
    return item


@pytest.mark.parametrize("workers", [1, 3])
def test_a_value_the_journal_cannot_hold_fails_only_its_item(clock: ManualClock, tmp_path: Path,
                                                             workers: int) -> None:
    journal = tmp_path / "run.jsonl"
    with executor(None, clock, max_workers=workers) as ex:
        outcomes = ex.map(awkward_value, range(12), journal=journal)
    assert [o.ok for o in outcomes] == [i not in (4, 6) for i in range(12)]
    assert outcomes[2].value == os.fsdecode(b"report-\xff.csv")
    assert isinstance(outcomes[8].value, Model)  # the live outcome keeps what the function returned
    for bad, kind, why in ((outcomes[4], "list", "nested too deeply"), (outcomes[6], "object", "not JSON")):
        assert isinstance(bad.error, JournalError) and isinstance(bad.error, TypeError)
        assert (bad.error.key, bad.error.value_type) == (bad.item, kind)
        assert why in str(bad.error) and "to_dict()" in str(bad.error)
        assert bad.attempts == 1 and bad.value is None
    assert (ex.stats.succeeded, ex.stats.failed) == (10, 2)
    records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["key"] for r in records) == list(range(12))  # every finished outcome is journaled
    assert {r["key"] for r in records if not r["ok"]} == {4, 6}

    with executor(None, clock, max_workers=workers) as ex:
        again = ex.map(awkward_value, range(12), journal=journal)
    assert [o.resumed for o in again] == [i not in (4, 6) for i in range(12)]
    assert again[2].value == os.fsdecode(b"report-\xff.csv")
    assert again[8].value == {"id": "8", "created_at": "2026-05-04T00:00:00+00:00"}  # the journaled form


def test_items_sharing_a_journal_key_run_and_warn(clock: ManualClock, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    journal = tmp_path / "run.jsonl"
    with executor(None, clock, max_workers=1) as ex, caplog.at_level(logging.WARNING, logger="ratewindow"):
        outcomes = ex.map(str.upper, ["a", "b", "a", "c", "b"], key=lambda s: s, journal=journal)
    assert [o.value for o in outcomes] == ["A", "B", "A", "C", "B"]  # documented: each item runs
    warnings = [r.getMessage() for r in caplog.records if "same journal key" in r.getMessage()]
    assert len(warnings) == 1
    assert "item 2 has the same journal key as an earlier item: 'a'" in warnings[0]
    assert "2 items of this batch" in caplog.text


def test_torn_last_line_is_ignored_and_cut_off(clock: ManualClock, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    journal.write_text('{"key":0,"ok":true,"value":0,"attempts":1,"elapsed":0.1}\n{"key":1,"ok":tr')
    calls = Calls(clock)
    with executor(None, clock, max_workers=1) as ex:
        outcomes = ex.map(calls, range(3), journal=journal)
    assert [o.resumed for o in outcomes] == [True, False, False]
    assert sorted(calls.times) == [1, 2]
    keys = [json.loads(line)["key"] for line in journal.read_text().splitlines()]
    assert keys[0] == 0 and sorted(keys) == [0, 1, 2]


# -- bounded memory -----------------------------------------------------------------------------
def test_imap_pulls_items_lazily_from_an_endless_generator(clock: ManualClock) -> None:
    pulled = 0

    def endless() -> Iterator[int]:
        nonlocal pulled
        for n in itertools.count():
            pulled += 1
            yield n

    with executor(SlidingWindow(1000, 1.0, clock=clock), clock, max_workers=4) as ex:
        stream = ex.imap(lambda n: n * 2, endless())
        first = list(itertools.islice(stream, 100))
        stream.close()
    assert len(first) == 100 and {o.value for o in first} <= set(range(0, 2 * 104, 2))
    assert pulled <= 100 + 4


def test_breaking_out_of_imap_stops_and_journals_in_flight(clock: ManualClock, tmp_path: Path) -> None:
    journal = tmp_path / "run.jsonl"
    with executor(None, clock, max_workers=4) as ex:
        stream = ex.imap(lambda n: n, range(1000), journal=journal)
        taken = list(itertools.islice(stream, 10))
        stream.close()
        done = ex.stats.succeeded
    assert len(taken) == 10
    assert 10 <= done <= 10 + 4  # and the calls in flight when it was closed
    assert len(journal.read_text().splitlines()) == done


# -- sizing, stats, progress, lifecycle ----------------------------------------------------------
def test_worker_count_follows_littles_law_from_the_limiter_rate() -> None:
    prior = 0.02  # seconds per call assumed until one is measured: start small, then grow
    assert RateLimitedExecutor(TokenBucket(1000.0, 10)).stats.workers == math.ceil(1000 * prior * 1.25) + 1
    assert RateLimitedExecutor(SlidingWindow(10_000, 10.0, margin=10.0)).stats.workers == 14  # 500/s
    hubspot = Limits(SlidingWindow(10_000, 10.0, name="burst"), DailyQuota(625_000, name="day"))
    assert RateLimitedExecutor(hubspot).stats.workers == 26  # the daily quota does not bound the second
    assert RateLimitedExecutor(DailyQuota(8_640_000)).stats.workers == 4  # ...unless it is all there is
    assert RateLimitedExecutor(TokenBucket(1e6, 10)).stats.workers == 64  # capped
    assert RateLimitedExecutor(None).stats.workers == min(32, (os.cpu_count() or 1) + 4)
    assert RateLimitedExecutor(None, max_workers=3).stats.workers == 3


def test_window_peaks_count_call_starts(clock: ManualClock) -> None:
    limiter = Limits(SlidingWindow(3, 1.0, clock=clock, name="s"), SlidingWindow(10, 60.0, clock=clock, name="m"))
    with executor(limiter, clock, max_workers=1) as ex:
        ex.map(lambda n: n, range(12))
    assert dict(ex.stats.window_peaks) == {1.0: 3, 60.0: 10}


def test_a_late_start_does_not_crowd_the_next_window(clock: ManualClock) -> None:
    """Grants are exact; a call that starts late must not let the next window's calls crowd in."""

    class SlowWake(SlidingWindow):
        woke_late = False

        def reserve(self, cost: int = 1):  # type: ignore[no-untyped-def]
            booking = super().reserve(cost)
            if not self.woke_late:
                self.woke_late = True
                clock.advance(0.5)  # the first worker wakes half a second after its grant
            return booking

    calls = Calls(clock)
    with executor(SlowWake(2, 1.0, clock=clock), clock, max_workers=1) as ex:
        ex.map(calls, range(6))
    starts = [calls.times[i][0] for i in range(6)]
    assert starts == [0.5, 0.5, 1.5, 1.5, 2.5, 2.5]  # not 0.5, 0.5, 1.0, ...: 3 in [0.5, 1.5)
    assert peak_in_window(starts, 1.0) == 2 and ex.stats.window_peaks[1.0] == 2
    # grants at 0, 0.5, 1.0, 1.5, 2.0, 2.5: the late wake-up (0.5 s), then items 2 and 4 each
    # wait 0.5 s for their permit and 0.5 s more for the start guard
    assert ex.stats.permit_wait == 2.5


def test_progress_bar_writes_plain_lines_when_not_a_terminal(clock: ManualClock,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    calls = Calls(clock, fail={1: [ConnectionError()], 2: [ValueError()]})
    with executor(None, clock, max_workers=1, progress=True) as ex:
        ex.map(calls, range(5), desc="Fetching")
    err = capsys.readouterr().err
    assert "\r" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Fetching: 100%") and "5/5" in last
    assert "ok=4 failed=1 retried=1 throttled=0" in last


def test_progress_false_is_silent(clock: ManualClock, capsys: pytest.CaptureFixture[str]) -> None:
    with executor(None, clock, progress=False) as ex:
        ex.map(lambda n: n, range(5))
    assert capsys.readouterr() == ("", "")


def test_sizing_is_logged_once_at_info(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ratewindow")
    with executor(SlidingWindow(100, 1.0, clock=clock), clock) as ex:
        ex.map(lambda n: n, range(50))
        ex.map(lambda n: n, range(50))
    sizing = [r for r in caplog.records if "Little's law" in r.getMessage()]
    assert len(sizing) == 1 and sizing[0].levelno == logging.INFO


def test_a_fixed_worker_count_is_logged_as_fixed_by_max_workers(clock: ManualClock,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ratewindow")
    with executor(None, clock, max_workers=3) as ex:
        ex.map(lambda n: n, range(5))
    with executor(None, clock) as ex:
        ex.map(lambda n: n, range(5))
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith("executor: ")]
    assert messages[0] == "executor: 3 workers (fixed by max_workers=3, not sized from the rate)"
    assert "(the limiter's rate is unknown)" in messages[1]
    assert "as given" not in caplog.text


def test_closed_executor_refuses_work(clock: ManualClock) -> None:
    ex = executor(None, clock)
    ex.map(lambda n: n, range(3))
    ex.close()
    ex.close()
    with pytest.raises(RuntimeError, match="closed"):
        ex.map(lambda n: n, range(3))
    assert "closed=True" in repr(ex)


def test_a_dropped_executor_lets_its_worker_threads_end() -> None:
    """Like the standard library's ThreadPoolExecutor: an executor dropped without ``close()``
    must not leave its threads blocked forever (they held it alive, too)."""
    before = set(threading.enumerate())
    ex = RateLimitedExecutor(None, max_workers=4, progress=False)
    assert [o.value for o in ex.map(lambda n: n * 2, range(20))] == [n * 2 for n in range(20)]
    workers = [t for t in set(threading.enumerate()) - before if t.name.startswith("ratewindow-worker-")]
    assert len(workers) == 4
    dropped = weakref.ref(ex)
    del ex
    gc.collect()
    assert dropped() is None
    for thread in workers:
        thread.join(timeout=10.0)
    assert [t.name for t in workers if t.is_alive()] == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_workers": 0}, "max_workers"),
        ({"max_workers": 2.5}, "max_workers"),
        ({"max_wait": -1}, "max_wait"),
        ({"breaker": 0}, "breaker"),
    ],
)
def test_bad_arguments_are_named(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimitedExecutor(None, **options)  # type: ignore[arg-type]


def test_func_and_key_are_checked_when_imap_is_called(clock: ManualClock) -> None:
    ex = executor(None, clock)
    with pytest.raises(TypeError, match="func"):
        ex.imap(42, range(3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key"):
        ex.imap(str, range(3), key="id")  # type: ignore[arg-type]


def test_bad_limiter_and_retry_types() -> None:
    with pytest.raises(TypeError, match="limiter"):
        RateLimitedExecutor("190/10s")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="retry"):
        RateLimitedExecutor(None, retry=3)  # type: ignore[arg-type]


def test_ctrl_c_handler_is_installed_during_a_batch_and_restored(clock: ManualClock) -> None:
    handlers: list[object] = []

    def look(item: int) -> int:
        handlers.append(signal.getsignal(signal.SIGINT))
        return item

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with executor(None, clock, max_workers=1) as ex:
        stream = ex.imap(look, range(3))
        next(stream)
        during = signal.getsignal(signal.SIGINT)
        stream.close()
    assert during is not signal.default_int_handler  # the first Ctrl-C stops at a safe point
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_an_application_sigint_handler_is_left_alone(clock: ManualClock) -> None:
    def app_handler(signum: int, frame: object) -> None:
        return None

    previous = signal.signal(signal.SIGINT, app_handler)
    try:
        with executor(None, clock, max_workers=1) as ex:
            stream = ex.imap(lambda n: n, range(3))
            next(stream)
            assert signal.getsignal(signal.SIGINT) is app_handler
            stream.close()
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_batch_of_known_length_logs_its_forecast_at_info(clock: ManualClock,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ratewindow")
    limiter = Limits(SlidingWindow(190, 10.0, name="portal", clock=clock),
                     DailyQuota(500, name="portal", clock=clock))
    with executor(limiter, clock, max_workers=4) as ex:
        began = clock.now()
        outcomes = ex.map(lambda n: n, range(600))
        took = clock.now() - began
        ex.map(lambda n: n, (n for n in range(5)))  # a generator: its length is unknown
    forecasts = [r for r in caplog.records if "forecast" in r.getMessage()]
    assert len(forecasts) == 1 and forecasts[0].levelno == logging.INFO
    # 500 left today at 190 per 10 s, then the quota stops them until midnight (23 h away).
    assert forecasts[0].getMessage() == (
        "executor: forecast, one call per item: 600 calls of 1 unit on 'portal+portal': the last starts in "
        "82,800 s (23 h), at 2026-05-05T00:00:00+00:00; daily quota 'portal' (500 per day) stops them after "
        "500 calls; it resets in 82,800 s (23 h), at 2026-05-05T00:00:00+00:00"
    )
    assert sum(o.ok for o in outcomes) == 500 and took < 60.0  # max_wait stops the rest, as forecast


def test_a_forecast_that_fails_does_not_stop_the_batch(clock: ManualClock,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    class Broken(SlidingWindow):
        def forecast(self, n: int, cost: int = 1) -> object:  # type: ignore[override]
            raise StoreUnavailable("down")

    caplog.set_level(logging.DEBUG, logger="ratewindow")
    with executor(Broken(5, 1.0, clock=clock), clock) as ex:
        assert all(o.ok for o in ex.map(lambda n: n, range(10)))
    assert "executor: no forecast for this batch: " in caplog.text


# -- the error budget -----------------------------------------------------------------------------------
class Responses:
    """An observer with the optional ``on_response``, next to one written before it existed."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []
        self.lock = threading.Lock()

    def on_acquire(self, limiter: str, cost: float, granted: bool, waited: float) -> None: ...

    def on_pause(self, limiter: str, seconds: float) -> None: ...

    def on_response(self, limiter: str, refused: bool) -> None:
        with self.lock:
            self.seen.append((limiter, refused))


class OldObserver:
    def on_acquire(self, limiter: str, cost: float, granted: bool, waited: float) -> None: ...

    def on_pause(self, limiter: str, seconds: float) -> None: ...


def over_budget(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "refusal_budget" in r.getMessage()]


def test_the_share_of_refused_calls_is_in_stats_and_told_to_observers(clock: ManualClock,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    limiter = SlidingWindow(1_000, 1.0, name="api", clock=clock)
    responses, old = Responses(), OldObserver()
    limiter.observe(old)
    limiter.observe(responses)
    # Items 0-9 are refused once (a 429 saying 0 s), then succeed: 10 refusals in 110 calls.
    calls = Calls(clock, fail={i: [HTTPError(429, {"Retry-After": "0"})] for i in range(10)})
    with executor(limiter, clock, max_workers=1) as ex, caplog.at_level(logging.WARNING, logger="ratewindow"):
        assert all(o.ok for o in ex.map(calls, range(100)))
        stats = ex.stats
    assert (stats.calls, stats.rate_limited) == (110, 10)
    assert stats.refusal_share == 10 / 110
    assert len(responses.seen) == 110 and responses.seen.count(("api", True)) == 10
    # Under 20 calls when the last refusal came: judged once, at the end of the batch.
    assert over_budget(caplog) == [
        "executor: 10 of 110 calls of this batch (9.1 %) were refused for the rate limit, above "
        "refusal_budget=0.05 (HubSpot asks apps to stay under 5 %): other clients may spend the same budget "
        "(share the limiter's store with them), or the limiter runs faster than the server counts (raise "
        "its margin)"
    ]


def test_the_budget_warning_comes_once_per_batch_while_it_runs(clock: ManualClock,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    def every_fifth_refused() -> Calls:
        return Calls(clock, fail={i: [RetryLater(0.0)] for i in range(0, 100, 5)})

    with executor(SlidingWindow(1_000, 1.0, clock=clock), clock, max_workers=1) as ex, \
            caplog.at_level(logging.WARNING, logger="ratewindow"):
        ex.map(every_fifth_refused(), range(100))  # 20 of 120 calls
        assert len(over_budget(caplog)) == 1  # at the first refusal from the 20th call on: item 20's
        assert over_budget(caplog)[0].startswith("executor: 5 of 25 calls of this batch (20.0 %)")
        ex.map(lambda n: n, range(100))  # no refusal: no warning
        assert len(over_budget(caplog)) == 1
        ex.map(every_fifth_refused(), range(100))
        assert len(over_budget(caplog)) == 2
    assert ex.stats.refusal_share == 40 / 340


@pytest.mark.parametrize(("budget", "warnings"), [(None, 0), (0.0, 1), (0.2, 0), (1, 0)])
def test_the_refusal_budget_is_configurable(clock: ManualClock, caplog: pytest.LogCaptureFixture,
                                            budget: float | None, warnings: int) -> None:
    calls = Calls(clock, fail={i: [RetryLater(0.0)] for i in range(0, 100, 10)})  # 10 of 110 calls
    with executor(SlidingWindow(1_000, 1.0, clock=clock), clock, max_workers=2, refusal_budget=budget) as ex, \
            caplog.at_level(logging.WARNING, logger="ratewindow"):
        ex.map(calls, range(100))
        assert ex.refusal_budget == budget
    assert len(over_budget(caplog)) == warnings


@pytest.mark.parametrize(
    ("budget", "error"),
    [(5, ValueError), (-0.01, ValueError), (1.5, ValueError), (math.nan, ValueError), ("5%", TypeError),
     (True, TypeError)],
)
def test_a_bad_refusal_budget_is_refused_at_construction(budget: object, error: type[Exception]) -> None:
    message = f"refusal_budget must be None or a share of calls in [0, 1] (0.05 is 5 %), got {budget!r}"
    with pytest.raises(error, match=re.escape(message)):
        RateLimitedExecutor(None, refusal_budget=budget)  # type: ignore[arg-type]
    from ratewindow import AsyncRateLimitedExecutor

    with pytest.raises(error, match=re.escape(message)):
        AsyncRateLimitedExecutor(None, refusal_budget=budget)  # type: ignore[arg-type]
