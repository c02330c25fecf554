"""Retry: a frozen value; back-off with equal jitter; which errors are retried; Retry-After."""

from __future__ import annotations

import dataclasses
import errno
import pickle
import random
import socket

import pytest
from _executor_helpers import ApiError, HTTPError

from ratewindow import RateWindowError, Retry, RetryLater, StoreUnavailable
from ratewindow._retry import is_rate_limit, retry_after_of, status_of


def test_defaults_and_repr() -> None:
    assert repr(Retry()) == "Retry(attempts=5, backoff=0.5, max_backoff=60.0, jitter=True, retry_on=None)"
    assert repr(Retry(retry_on=(KeyError, ValueError))).endswith("retry_on=(KeyError, ValueError))")

    def transient_or_key(exc: BaseException) -> bool:
        return Retry.is_transient(exc) or isinstance(exc, KeyError)

    assert "retry_on=test_retry_on_predicate" not in repr(Retry(retry_on=transient_or_key))
    assert "transient_or_key" in repr(Retry(retry_on=transient_or_key))


def test_is_frozen_hashable_and_comparable() -> None:
    policy = Retry(attempts=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.attempts = 4  # type: ignore[misc]
    assert policy == Retry(attempts=3) and hash(policy) == hash(Retry(attempts=3))
    assert policy != Retry()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"attempts": 0}, ValueError),
        ({"attempts": 1.5}, TypeError),
        ({"backoff": -1}, ValueError),
        ({"max_backoff": float("inf")}, ValueError),
        ({"jitter": 1}, TypeError),
        ({"retry_on": (KeyError, "ValueError")}, TypeError),
        ({"retry_on": 42}, TypeError),
    ],
)
def test_bad_values_are_refused(options: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error, match=next(iter(options))):
        Retry(**options)  # type: ignore[arg-type]


def test_backoff_doubles_up_to_the_cap() -> None:
    policy = Retry(backoff=0.5, max_backoff=5.0, jitter=False)
    assert [policy.backoff_for(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert policy.backoff_for(10_000) == 5.0  # no overflow
    assert Retry(backoff=0.0).backoff_for(3) == 0.0
    with pytest.raises(ValueError, match="retry"):
        policy.backoff_for(0)


def test_equal_jitter_bounds_and_spread() -> None:
    policy = Retry(backoff=1.0, max_backoff=8.0)
    rng = random.Random(7)
    for n, full in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        draws = [policy.backoff_for(n, rng) for _ in range(2000)]
        assert all(full / 2 <= d < full for d in draws)
        assert min(draws) < full / 2 * 1.01 and max(draws) > full * 0.99  # fills [half, all)


def test_seeded_jitter_is_repeatable() -> None:
    policy = Retry()
    first = [policy.backoff_for(n, random.Random(42)) for n in range(1, 6)]
    assert first == [policy.backoff_for(n, random.Random(42)) for n in range(1, 6)]
    assert first[0] == 0.25 + random.Random(42).random() * 0.25


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(),
        ConnectionRefusedError(),
        TimeoutError(),
        socket.gaierror(-3, "Temporary failure in name resolution"),
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        StoreUnavailable("redis://x"),
        HTTPError(500),
        HTTPError(502),
        HTTPError(503),
        ApiError(504),
        ApiError(408),
        ApiError(429),
        RetryLater(1.0),
        type("ConnectionError", (Exception,), {})(),  # e.g. requests.exceptions.ConnectionError
        type("ReadTimeout", (type("TransportError", (Exception,), {}),), {})(),  # httpx
    ],
)
def test_transient_errors_are_retried(exc: BaseException) -> None:
    assert Retry().is_retryable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError(),
        KeyError("k"),
        HTTPError(400),
        HTTPError(401),
        ApiError(404),
        ApiError(501),
        PermissionError(errno.EACCES, "denied"),
        FileNotFoundError(),
        RateWindowError(),
    ],
)
def test_other_errors_are_not(exc: BaseException) -> None:
    assert not Retry().is_retryable(exc)


def test_retry_on_classes_and_predicates_replace_the_rule_but_rate_limits_stay() -> None:
    only_keys = Retry(retry_on=(KeyError,))
    assert only_keys.is_retryable(KeyError()) and not only_keys.is_retryable(ConnectionError())
    assert only_keys.is_retryable(ApiError(429)) and only_keys.is_retryable(RetryLater(2.0))
    predicate = Retry(retry_on=lambda exc: "flaky" in str(exc))
    assert predicate.is_retryable(ValueError("flaky thing")) and not predicate.is_retryable(ValueError("no"))


def test_status_is_found_where_clients_put_it() -> None:
    assert status_of(HTTPError(418)) == 418  # exc.response.status_code (requests, httpx)
    assert status_of(ApiError(503)) == 503  # exc.status (SDKs, aiohttp, urllib)
    assert status_of(type("E", (Exception,), {"status_code": 429})()) == 429
    assert status_of(ValueError()) is None
    assert status_of(type("E", (Exception,), {"status": True})()) is None
    assert status_of(type("E", (Exception,), {"status": "500"})()) is None


def test_retry_after_sources() -> None:
    assert retry_after_of(RetryLater(after=2.5)) == 2.5
    assert retry_after_of(ApiError(429, retry_after=4)) == 4.0
    assert retry_after_of(HTTPError(429, {"Retry-After": " 12 "})) == 12.0
    assert retry_after_of(HTTPError(429, {"Retry-After": "soon"})) is None
    date = "Wed, 21 Oct 2015 07:28:00 GMT"  # 1445412480
    assert retry_after_of(HTTPError(503, {"Retry-After": date}), now=1445412480 - 30) == 30.0
    assert retry_after_of(HTTPError(503, {"Retry-After": date})) is None  # a date needs the time now
    assert retry_after_of(ApiError(429, retry_after=-1)) is None
    assert retry_after_of(ApiError(429, retry_after=float("nan"))) is None
    assert retry_after_of(HTTPError(429)) is None


def test_rate_limit_signals() -> None:
    assert is_rate_limit(ApiError(429)) and is_rate_limit(RetryLater(0.0))
    assert is_rate_limit(HTTPError(503, {"Retry-After": "5"}))  # the server said how long
    assert is_rate_limit(type("Throttled", (Exception,), {"retry_after": 3.0})())
    assert not is_rate_limit(HTTPError(503)) and not is_rate_limit(ConnectionError())


def test_retry_later_carries_data_and_pickles() -> None:
    error = pickle.loads(pickle.dumps(RetryLater(after=3.0, message="burst limit")))
    assert isinstance(error, RateWindowError)
    assert (error.after, error.message) == (3.0, "burst limit")
    assert str(error) == "rate limited; retry in 3.000 s: burst limit"
