"""Stores named by URL: ``store_from_url``, ``RATEWINDOW_STORE``, and URLs without their passwords."""

from __future__ import annotations

from pathlib import Path

import pytest

from ratewindow import MemoryStore, RedisStore, SQLiteStore, store_from_env, store_from_url
from ratewindow.stores._url import redact_url


def test_memory() -> None:
    assert isinstance(store_from_url("memory://"), MemoryStore)
    assert store_from_url("memory://") is not store_from_url("memory://")


def test_sqlite_paths_and_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = store_from_url(f"sqlite:///{tmp_path}/abs.db?timeout=2.5")  # sqlite:////tmp/...
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == str(tmp_path / "abs.db") and absolute.timeout == 2.5
    monkeypatch.chdir(tmp_path)
    relative = store_from_url("sqlite:///rel.db")
    assert isinstance(relative, SQLiteStore) and relative.path == str(tmp_path / "rel.db")


def test_redis_options_are_ours_and_the_rest_go_to_redis_py() -> None:
    store = store_from_url("redis://:pw@localhost:6390/3?prefix=app:&timeout=0.5&client_name=x")
    assert isinstance(store, RedisStore)
    assert store.prefix == "app:" and store.timeout == 0.5
    assert repr(store) == "RedisStore('redis://localhost:6390/3', prefix='app:')"
    assert repr(store_from_url("rediss://h.example/0")).startswith("RedisStore('rediss://h.example:6379/0'")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://user:hunter2@db/x", "postgres://user:***@db/x"),
        ("memory://somewhere", "memory:// takes no host"),
        ("sqlite://", "needs a file path"),
        ("sqlite:///:memory:", "needs a file path"),
        ("sqlite://host/x.db", "no host"),
        ("sqlite:///x.db?timeout=soon", "timeout must be"),
        ("sqlite:///x.db?timeout=-1", "timeout must be"),
        ("sqlite:///x.db?mode=ro", "unknown option(s) mode"),
        ("redis://:hunter2@host:port/0", "redis://:***@host:port/0"),
        ("redis://:hunter2@host/0?timeout=0", "redis://:***@host/0?timeout=0"),
        ("", "expected memory://"),
    ],
)
def test_bad_urls_name_the_url_without_its_password(url: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        store_from_url(url)
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_not_a_string() -> None:
    with pytest.raises(TypeError, match="b'memory://'"):
        store_from_url(b"memory://")  # type: ignore[arg-type]


def test_environment_variable(tmp_path: Path) -> None:
    assert isinstance(store_from_env({}), MemoryStore)
    assert isinstance(store_from_env({"RATEWINDOW_STORE": "  "}), MemoryStore)
    store = store_from_env({"RATEWINDOW_STORE": f"sqlite:///{tmp_path}/env.db"})
    assert isinstance(store, SQLiteStore)
    with pytest.raises(ValueError, match=r"RATEWINDOW_STORE: invalid Redis URL 'redis://:\*\*\*@h:x/0'"):
        store_from_env({"RATEWINDOW_STORE": "redis://:hunter2@h:x/0"})


def test_environment_variable_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RATEWINDOW_STORE", raising=False)
    assert isinstance(store_from_env(), MemoryStore)
    monkeypatch.setenv("RATEWINDOW_STORE", "memory://")
    assert isinstance(store_from_env(), MemoryStore)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:pw@host:1/0", "redis://user:***@host:1/0"),
        ("redis://:pw@host/0", "redis://:***@host/0"),
        ("redis://secret@host/0", "redis://***@host/0"),
        ("redis://host/0", "redis://host/0"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
