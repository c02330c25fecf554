"""Fixtures: FakeSalesforce servers and real simple-salesforce clients wrapped by ratewindow.

Nothing of simple-salesforce is mocked: every test talks HTTPS to a fake on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import requests
from ratewindow import MemoryStore
from simple_salesforce.api import Salesforce

import ratewindow_salesforce as rs
from ratewindow_salesforce.testing import FakeSalesforce

MakeFake = Callable[..., FakeSalesforce]
Connect = Callable[..., Salesforce]


@pytest.fixture
def make_fake() -> Iterator[MakeFake]:
    """``make_fake(**kwargs)`` -> a running FakeSalesforce, stopped (and checked) at teardown."""
    with ExitStack() as stack:
        fakes: list[FakeSalesforce] = []

        def make(**kwargs: Any) -> FakeSalesforce:
            fake = stack.enter_context(FakeSalesforce(**kwargs))
            fakes.append(fake)
            return fake

        yield make
    for fake in fakes:
        assert fake.internal_errors == []


@pytest.fixture
def fake(make_fake: MakeFake) -> FakeSalesforce:
    return make_fake()


@pytest.fixture
def sessions() -> Iterator[list[requests.Session]]:
    """Sessions a test created; closed at teardown (ResourceWarnings are errors)."""
    created: list[requests.Session] = []
    yield created
    for http in created:
        http.close()


@pytest.fixture
def connect(sessions: list[requests.Session]) -> Connect:
    """``connect(fake, session_id=..., **wrap_kwargs)`` -> ``ratewindow_salesforce.client(...)`` on a
    private MemoryStore (a fresh process, as far as the limiters know) unless ``store`` is given."""

    def make(fake: FakeSalesforce, session_id: str | None = None, **kwargs: Any) -> Salesforce:
        http = fake.session()
        sessions.append(http)
        kwargs.setdefault("store", MemoryStore())
        return rs.client(instance_url=fake.instance_url, session_id=session_id or fake.session_id,
                         session=http, **kwargs)

    return make


@pytest.fixture
def plain(sessions: list[requests.Session]) -> Callable[[FakeSalesforce], Salesforce]:
    """An unwrapped simple-salesforce client for ``fake`` (the one-by-one reference answers)."""

    def make(fake: FakeSalesforce) -> Salesforce:
        http = fake.session()
        sessions.append(http)
        return Salesforce(instance_url=fake.instance_url, session_id=fake.session_id, session=http)

    return make
