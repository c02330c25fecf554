"""Stores named by URL: ``store_from_url`` and the ``RATEWINDOW_STORE`` environment variable."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ratewindow.stores._memory import MemoryStore
from ratewindow.stores._protocol import Store

__all__ = ["ENV_VAR", "redact_url", "store_from_env", "store_from_url"]

#: The environment variable naming the store that adapters and the executor use by default.
ENV_VAR = "RATEWINDOW_STORE"

_REDIS_SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe for messages, logs and reprs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None and "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    # "user:password@" keeps the user; a lone "secret@" may be a password written without its colon.
    masked = f"{userinfo.split(':', 1)[0]}:***@{hostport}" if ":" in userinfo else f"***@{hostport}"
    return urlunsplit((parts.scheme, masked, parts.path, parts.query, parts.fragment))


def _bad(url: str, why: str) -> ValueError:
    return ValueError(f"invalid store URL {redact_url(url)!r}: {why}")


def _float_option(url: str, options: dict[str, str], name: str) -> float | None:
    if name not in options:
        return None
    try:
        value = float(options.pop(name))
    except ValueError:
        raise _bad(url, f"{name} must be a number of seconds") from None
    if not 0 < value < float("inf"):
        raise _bad(url, f"{name} must be a finite number of seconds > 0")
    return value


def store_from_url(url: str) -> Store:
    """Build the store that ``url`` names.

    - ``memory://``: a new in-process ``MemoryStore``.
    - ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` (as SQLAlchemy spells them):
      an ``SQLiteStore``; option ``?timeout=SECONDS`` (the busy timeout).
    - ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` (TLS), and
      ``redis+cluster://host:port`` / ``rediss+cluster://...`` (Redis Cluster): a ``RedisStore``;
      options ``?prefix=...&timeout=SECONDS``, other query options go to redis-py.

    Raises:
        ValueError: the URL is malformed or names no known store (the message shows the URL with
            any password masked).
        TypeError: ``url`` is not a string.
        ImportError: a Redis URL, and redis-py (``pip install 'ratewindow[redis]'``) is missing.
        StoreUnavailable: the SQLite file cannot be opened.

    >>> store_from_url("memory://")
    MemoryStore(keys=0)
    """
    if not isinstance(url, str):
        raise TypeError(f"store URL must be a string, got {url!r}")
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    scheme = parts.scheme.lower()
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    if scheme == "memory":
        if parts.netloc or parts.path.strip("/") or options:
            raise _bad(url, "memory:// takes no host, path or options")
        return MemoryStore()
    if scheme == "sqlite":
        if parts.netloc:
            raise _bad(url, "use sqlite:///relative.db or sqlite:////absolute/path.db (no host)")
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        if not path or path == ":memory:":
            raise _bad(url, "a SQLite store needs a file path that every process can open")
        timeout = _float_option(url, options, "timeout")
        if options:
            raise _bad(url, f"unknown option(s) {', '.join(sorted(options))}")
        from ratewindow.stores._sqlite import SQLiteStore

        return SQLiteStore(path, timeout=5.0 if timeout is None else timeout)
    if scheme in _REDIS_SCHEMES:
        from ratewindow.stores._redis import RedisStore

        ours: dict[str, str] = {name: options[name] for name in ("prefix", "timeout") if name in options}
        timeout = _float_option(url, ours, "timeout")
        query = parse_qsl(parts.query, keep_blank_values=True)
        rest = [(k, v) for k, v in query if k not in ("prefix", "timeout")]
        bare = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), parts.fragment))
        return RedisStore(
            bare, prefix=ours.get("prefix", "ratewindow:"), timeout=5.0 if timeout is None else timeout
        )
    raise _bad(url, "expected memory://, sqlite:///PATH, redis://, rediss:// or redis+cluster://")


def store_from_env(environ: Mapping[str, str] | None = None) -> Store:
    """The store named by ``RATEWINDOW_STORE`` (a URL for ``store_from_url``), else a new ``MemoryStore``.

    Adapters and the executor call this when they are given no store, so one variable points a
    whole deployment at one shared store. ``environ`` defaults to ``os.environ``.

    Raises:
        ValueError: the variable holds a bad URL (its password masked); as ``store_from_url``.
    """
    env = os.environ if environ is None else environ
    url = env.get(ENV_VAR, "").strip()
    if not url:
        return MemoryStore()
    try:
        return store_from_url(url)
    except ValueError as exc:
        raise ValueError(f"{ENV_VAR}: {exc}") from None
