"""The seed workload (1,462 objects x 4 calls) with the real simple-salesforce against FakeSalesforce:
16 threads one call at a time under a concurrency cap of 5, a small allocation with a reserve, a
stop with QuotaExhausted and a resume from the journal, another app spending mid-run, and the
batched version's answers and request count."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import Connect, MakeFake
from ratewindow import QuotaExhausted, RetryLater

import ratewindow_salesforce as rs
from ratewindow_salesforce import _seed


def run(sf: Any, names: list[str], journal: Path | None = None, workers: int = 16,
        hook: Any = None) -> list[Any]:
    def work(name: str) -> dict[str, Any]:
        if hook is not None:
            hook(name)
        return _seed.one_object(sf, name)

    with rs.executor(sf, max_workers=workers, progress=False) as pool:
        return pool.map(work, names, key=str if journal else None, journal=journal)


def journal_counts(path: Path) -> Counter[str]:
    ok: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["ok"]:
            ok[record["key"]] += 1
    return ok


@pytest.mark.realtime
def test_sixteen_threads_stop_at_the_reserve_without_a_refusal_and_resume(
    make_fake: MakeFake, connect: Connect, tmp_path: Path
) -> None:
    # Every request in flight counts as long-running (threshold 0): a 6th one at once is refused.
    fake = make_fake(allocation=300, concurrency_limit=5, long_running_threshold=0.0, latency=(0.001, 0.003))
    names = [info.name for info in fake.data.catalog]
    journal = tmp_path / "run.jsonl"
    sf = connect(fake, limits=rs.OrgLimits(reserve=0.1), concurrency=5)
    outcomes = run(sf, names, journal)
    assert fake.stats.refusals == 0
    assert fake.stats.max_concurrent <= 5
    assert fake.allocation_used == 270  # the allowance exactly: 300 less the 10 % reserve
    ok = [o for o in outcomes if o.ok]
    assert len(outcomes) == len(names)
    assert all(isinstance(o.error, QuotaExhausted) and o.error.retry_at is not None
               for o in outcomes if not o.ok)  # nothing lost: every item is done or says why not
    partial = [o for o in outcomes if not o.ok and o.attempts > 0]
    assert fake.stats.total == 270  # every request sent was counted: no refusal, no hidden re-send
    assert len(partial) <= 16  # at most one object in progress per worker when the stop came
    # The 270 calls are 4 per finished object plus 0-3 per object stopped part-way; how they split
    # depends on the threads' timing (CI once stopped 16 objects part-way, leaving 59 finished).
    assert 4 * len(ok) <= 270 <= 4 * len(ok) + 3 * len(partial)
    assert len(ok) >= (270 - 3 * 16) / 4
    assert set(journal_counts(journal)) == {o.item for o in ok}

    # The next day (the org's window has rolled, a new process): the same command resumes.
    fake.reset_allocation()
    again = connect(fake, limits=rs.OrgLimits(reserve=0.1), concurrency=5)
    second = run(again, names, journal)
    assert sum(o.resumed for o in second) == len(ok)
    newly = {o.item for o in second if o.ok and not o.resumed}
    assert newly and not newly & {o.item for o in ok}
    assert max(journal_counts(journal).values()) == 1  # no object done twice
    assert fake.stats.refusals == 0 and fake.allocation_used == 270


@pytest.mark.realtime
def test_without_the_cap_the_fake_refuses_and_the_executor_absorbs_it(make_fake: MakeFake, connect: Connect
                                                                     ) -> None:
    fake = make_fake(allocation=200, concurrency_limit=5, long_running_threshold=0.0, latency=(0.002, 0.004))
    names = [info.name for info in fake.data.catalog[:30]]
    sf = connect(fake, limits=rs.OrgLimits(busy_pause=0.01))
    outcomes = run(sf, names)
    assert fake.stats.refusals > 0  # the cap is real
    assert all(o.ok or isinstance(o.error, (RetryLater, QuotaExhausted)) for o in outcomes)


@pytest.mark.realtime
def test_another_app_spends_mid_run_and_the_client_adapts(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake(allocation=400, concurrency_limit=5, long_running_threshold=0.0, latency=(0.001, 0.003))
    names = [info.name for info in fake.data.catalog]
    sf = connect(fake, limits=rs.OrgLimits(reserve=0.1), concurrency=5)

    def other_app(name: str) -> None:
        if name == names[10]:
            fake.spend(100)

    outcomes = run(sf, names, hook=other_app)
    assert fake.stats.refusals == 0
    assert fake.allocation_used == 360  # the org as a whole stopped at its allowance
    assert fake.stats.units == 260  # ours yielded the 100 the other app used
    usage = rs.limiter_of(sf).stats
    assert (usage.foreign, usage.ours, usage.available) == (100, 260, 0)
    assert any(isinstance(o.error, QuotaExhausted) for o in outcomes)


def test_batched_answers_equal_one_by_one(make_fake: MakeFake, connect: Connect) -> None:
    fake = make_fake()
    names = [info.name for info in fake.data.catalog[:300]]
    sf = connect(fake, limits=rs.OrgLimits(allocation=15_000), concurrency=5)
    with rs.executor(sf, progress=False) as pool:
        batched = _seed.batched(sf, names, pool)
    calls = fake.stats.units
    assert calls == fake.stats.total <= 20
    sample = names[::15]
    one = run(sf, sample, workers=5)
    assert [o.value for o in one] == [batched[name] for name in sample]
    assert fake.stats.units - calls == _seed.CALLS_PER_OBJECT * len(sample)


def test_the_whole_seed_workload_batched_takes_at_most_300_requests(make_fake: MakeFake, connect: Connect
                                                                    ) -> None:
    fake = make_fake()
    names = [info.name for info in fake.data.catalog]
    assert len(names) == 1462
    sf = connect(fake, limits=rs.OrgLimits(reserve=0.1), concurrency=5)
    with rs.executor(sf, progress=False) as pool:
        batched = _seed.batched(sf, names, pool)
    assert all(isinstance(summary, dict) for summary in batched.values())
    assert sum(summary["fls"] for summary in batched.values()) == 48_456  # every FieldPermissions row
    describes = sum(1 for r in fake.stats.requests if r.path.endswith("/composite"))
    assert describes == 59  # ceil(1462 / 25)
    assert fake.stats.units == fake.stats.total <= 300
    assert fake.stats.total * 20 <= 1462 * _seed.CALLS_PER_OBJECT  # <= 1/20 of the one-by-one calls
    assert fake.stats.refusals == 0
