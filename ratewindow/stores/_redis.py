"""``RedisStore``: limiter state in Redis, shared by every process and host; one script call per decision.

Every operation is one ``EVALSHA`` of ``decide.lua`` (package data), a port of
``ratewindow._core`` that makes bit-identical decisions: a composite acquire is one round trip,
all-or-nothing, deciding before its first write. redis-py is imported only when a store is built
(``pip install 'ratewindow[redis]'``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import importlib.resources
import inspect
import logging
import math
import os
import struct
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Sequence
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from ratewindow._calendar import Calendar
from ratewindow._clock import Clock, MonotonicClock, WallClock
from ratewindow._core import BUCKET, DAILY, WINDOW, Grant, Spec
from ratewindow._errors import StoreUnavailable
from ratewindow._loops import LoopLocks
from ratewindow.stores._memory import MemoryStore
from ratewindow.stores._protocol import call_budget
from ratewindow.stores._url import redact_url

if sys.version_info >= (3, 11):
    from asyncio import timeout as _async_timeout
else:  # pragma: no cover - redis-py depends on async-timeout before 3.11.3
    from async_timeout import timeout as _async_timeout

__all__ = ["RedisStore"]

log = logging.getLogger("ratewindow")

Stamp = tuple[tuple[float, float], ...]

_KIND_CODE = {WINDOW: "w", BUCKET: "b", DAILY: "d"}
#: The script's argument, packed: the header after the op byte (now, cost, max_wait, min_ttl) and
#: two doubles (a member's limit and span, a stamp's at and aux); no periods for a member.
_HEADER = struct.Struct("<dddd")
_LIMIT_SPAN = struct.Struct("<dd")
_NO_PERIODS = struct.pack("<H", 0)
#: redis-py: hand the script's reply over as bytes, also on a client with decode_responses=True.
_RAW: dict[str, Any] = {"NEVER_DECODE": []}
_SCHEMES = ("redis", "rediss", "redis+cluster", "rediss+cluster")
#: Seconds a call that never waits (``try_acquire``, an acquire with a timeout below this) may take
#: in all: its retries of an unreachable server and the replies it waits for. Also the least a
#: confirmation gets, and how long a look for a server known to be down may take.
_TRY_BUDGET = 0.25
#: Seconds one try may wait for its reply at the least, even when its call's deadline has come.
_LAST_TRY = 0.01
#: With on_unavailable="local": how often to look whether the server is back, seconds.
_RECHECK = 1.0
#: Days whose count the local fallback remembers (one per daily quota key, least recently seen first out).
_SEEN_DAYS = 4096
#: With a manual clock (tests), TTLs in manual seconds mean nothing in real time: keep keys this long.
_MANUAL_MIN_TTL_MS = 3_600_000
#: Local grants remembered so that their cancel is routed to the local store.
_LOCAL_STAMPS = 4096


class SyncRedis(Protocol):
    """What ``RedisStore`` needs of a redis-py client (``redis.Redis`` or ``redis.cluster.RedisCluster``)."""

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | bytes) -> Any: ...

    def execute_command(self, *args: str | bytes | int, **options: Any) -> Any: ...

    def script_load(self, script: str) -> Any: ...

    def close(self) -> None: ...


class AsyncRedis(Protocol):
    """What ``RedisStore`` needs of a ``redis.asyncio`` client."""

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: str | bytes) -> Any: ...

    async def execute_command(self, *args: str | bytes | int, **options: Any) -> Any: ...

    async def script_load(self, script: str) -> Any: ...

    async def aclose(self) -> None: ...


@dataclasses.dataclass(frozen=True)
class _Member:
    """What the script needs to know about one limiter, built once per ``Spec``."""

    keys: tuple[bytes, ...]  # the state, and a window's log (bytes: redis-py sends them as they are)
    packed_keys: bytes  # the same keys as RESP bulk strings, for the direct path
    head: bytes  # kind, limit and span packed for the script (and, but for a daily quota, no periods)
    calendar: Calendar | None
    slot_tag: str  # the part of the key Redis Cluster hashes


def _slot_tag(key: str) -> str:
    """The substring of ``key`` that Redis Cluster hashes: the first non-empty ``{...}``, else all of it."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _load_script(name: str = "decide.lua") -> str:
    return importlib.resources.files("ratewindow.stores").joinpath(name).read_text(encoding="utf-8")


def _require_redis() -> None:
    """Import redis-py, or say how to install it."""
    try:
        import redis  # noqa: F401
    except ImportError as exc:
        raise ImportError("RedisStore needs redis-py: pip install 'ratewindow[redis]'") from exc


class _UnexpectedReply(Exception):
    """A reply that is not the script's (packed doubles): something else answers on the port."""


def _errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...], type[BaseException]]:
    """(errors meaning "unreachable, retry", errors meaning "refused, do not retry", NoScriptError).

    A reply that is not Redis's protocol (``InvalidResponse``: another server on the port, a proxy
    in a bad state) counts as unreachable: the connection is dropped and the call retried.
    """
    import redis.exceptions as rex

    transient = (
        rex.ConnectionError,
        rex.TimeoutError,
        rex.ClusterDownError,
        rex.TryAgainError,
        rex.ReadOnlyError,
        rex.ClusterError,
        rex.SlotNotCoveredError,
        rex.RedisClusterException,
        rex.InvalidResponse,
        _UnexpectedReply,
        OSError,
    )
    fatal = (rex.AuthenticationError, rex.AuthorizationError, rex.NoPermissionError)
    return transient, fatal, rex.NoScriptError


class RedisStore:
    """Limiter state in Redis: shared by every process and host that uses the same server and prefix.

    Each call is one ``EVALSHA`` of a Lua port of the decision core: a composite such as
    ``Limits(SlidingWindow(190, 10), DailyQuota(625_000, tz="America/New_York"))`` is decided in one
    round trip, all-or-nothing, in about 15 µs of the server's time. On a plain single-node
    ``redis.Redis`` client (the kind a URL builds) the command is packed here and sent on a
    connection of the client's own pool, skipping redis-py's per-command machinery (its
    instrumentation hooks do not see these calls); cluster, single-connection and client-side
    caching clients go through ``execute_command``. ``acquire_async`` does the same on
    ``redis.asyncio`` (the event loop's own client, or a plain ``async_client=``).

    Time is the Redis server's ``TIME``, one time base for every member and every client, so client
    clock skew does not matter (the in-process ``MemoryStore`` reads each member's own clock
    instead); each key also keeps the latest time it was written at, so a server clock stepped back
    (a failover) makes limits stricter for a while, never looser.
    Every key expires once its state no longer matters (plus a quarter of its window or refill
    time, so that most grants need not move the expiry): an idle limiter leaves nothing behind.

    Redis without persistence forgets every grant when it restarts; use AOF or a replica if the
    few seconds after a restart must stay limited. Scripts survive ``SCRIPT FLUSH``, restarts and
    failovers (a ``NOSCRIPT`` reply loads the script again and retries).

    Keys are ``{prefix}{{name}}:{kind}:{name}...``: all keys of limiters with the same name share
    the hash tag ``{name}``, so on Redis Cluster give the members of one ``Limits`` the same name
    (e.g. ``SlidingWindow(190, 10, name="portal-42")`` and ``DailyQuota(..., name="portal-42")``),
    or put a tag in the prefix (``prefix="{ratewindow}:"``) to keep every limiter on one slot.

    Args:
        client_or_url: a ``redis://``, ``rediss://`` or ``redis+cluster://`` URL, or a redis-py
            client (``redis.Redis``, ``redis.cluster.RedisCluster``). A client keeps its own
            retry policy; one built from a URL retries only as this store says.
        prefix: prepended to every key.
        clock: for tests only: decide at ``clock.now()`` instead of the server's time.
        timeout: seconds a call may take at most, retrying an unreachable server and waiting
            for its replies, before raising ``StoreUnavailable``; > 0. A call that may wait
            less takes less: ``acquire(timeout=t)`` ``t`` but at least 0.25 s (and what is left
            of ``t`` for the confirmation after its sleep), ``try_acquire`` (it never waits)
            0.25 s, the give-back of an interrupted caller's booking 0.05 s; the last try of a
            call may still wait 0.01 s for its reply. A stalled server (a long command, a
            network black hole) costs each call its own budget, not this timeout.
        on_unavailable: ``"raise"`` (default): raise ``StoreUnavailable``, never letting a call
            through unlimited. ``"local"``: while the server is unreachable, decide in a local
            ``MemoryStore`` at ``limit / expected_processes`` per limiter, logging a warning, and
            look for the server again once a second, each look at most 0.25 s; a waiting
            acquire's local decision gets what is left of its timeout. Grants made locally are
            unknown to Redis when it is back, so the window that spans the recovery may hold up
            to that share more. A ``DailyQuota`` is shared more carefully, since its count
            outlives any outage: its local share is what Redis had left of today's quota at the
            latest grant this store saw, divided by ``expected_processes``, and 0 when it saw
            none today (a process started during the outage, a quiet one); a call that needs
            more raises ``StoreUnavailable``. So each process adds at most its share of what
            was left, never a whole day's share on top of what Redis counted.
        expected_processes: how many processes share the limits (required with ``"local"``).
        async_client: a ``redis.asyncio`` client for ``acquire_async``; by default one is made
            per event loop from the URL or the client's connection settings, and closed when
            that loop shuts down.

    Every call raises ``StoreUnavailable`` (with redis-py's error as its ``__cause__``) when the
    server cannot be reached, refuses the call (authentication, permissions, an error reply) or
    answers something that is not Redis (another server on the port), and falls back with
    ``"local"`` in each of those cases; it raises ``ValueError`` on the first use of a store the
    server says is set up wrong: a database number the server does not have, a server or proxy
    without Lua scripting, a key of another type under the prefix. The per-call bounds above
    hold on the direct path (a URL, a plain ``redis.Redis``) and on every ``redis.asyncio``
    client; another synchronous client (a cluster, one with a single connection) keeps its own
    socket timeout for each try.

    Raises:
        ValueError: a bad URL or argument (the message masks any password).
        TypeError: ``client_or_url`` is neither a URL nor a redis-py client.
        ImportError: redis-py is not installed.
        StoreUnavailable: a ``redis+cluster://`` URL whose nodes cannot be reached (a cluster
            client connects when it is built; a single-node client on first use).

    >>> store = RedisStore("redis://localhost:6379/0")                     # doctest: +SKIP
    >>> hubspot = SlidingWindow(190, 10.0, name="portal-42", store=store)  # doctest: +SKIP
    """

    def __init__(
        self,
        client_or_url: str | SyncRedis,
        *,
        prefix: str = "ratewindow:",
        clock: Clock | None = None,
        timeout: float = 5.0,
        on_unavailable: str = "raise",
        expected_processes: int | None = None,
        async_client: AsyncRedis | None = None,
    ) -> None:
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string, got {prefix!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise ValueError(f"timeout must be a finite number of seconds > 0, got {timeout!r}")
        if on_unavailable not in ("raise", "local"):
            raise ValueError(f"on_unavailable must be 'raise' or 'local', got {on_unavailable!r}")
        if on_unavailable == "local" and (
            isinstance(expected_processes, bool)
            or not isinstance(expected_processes, int)
            or expected_processes < 1
        ):
            raise ValueError(
                "on_unavailable='local' needs expected_processes, a positive int (each process then "
                f"grants limit / expected_processes while the server is down), got {expected_processes!r}"
            )
        self.prefix = prefix
        self.timeout = float(timeout)
        self.on_unavailable = on_unavailable
        self.expected_processes = expected_processes
        self._clock = clock
        self._real = MonotonicClock()
        self._wall = WallClock()
        self._min_ttl = float(_MANUAL_MIN_TTL_MS if clock is not None else 1)
        self._secrets: tuple[str, ...] = ()
        self._url: str | None = None
        self._owns_client = False
        self._cluster = False
        _require_redis()
        if isinstance(client_or_url, str):
            self._client, self._where = self._from_url(client_or_url)
            self._url = client_or_url
            self._owns_client = True
        elif callable(getattr(client_or_url, "evalsha", None)):
            if type(client_or_url).__module__.startswith("redis.asyncio") or inspect.iscoroutinefunction(
                getattr(client_or_url, "execute_command", None)
            ):
                raise TypeError(
                    "RedisStore needs a synchronous redis-py client or a URL; pass a redis.asyncio "
                    "client as async_client= next to it"
                )
            self._client = client_or_url
            self._where = self._describe(client_or_url)
            self._cluster = callable(getattr(client_or_url, "get_node_from_key", None))
        else:
            raise TypeError(f"client_or_url must be a Redis URL or a redis-py client, got {client_or_url!r}")
        self._user_async = async_client
        self._pool, self._pool_args = _direct_pool(self._client)
        user_pool, user_args = _direct_pool(async_client, aio=True)
        self._user_lane = None if user_pool is None else _AsyncLane(user_pool, user_args, owned=False)
        # A client built from a URL is ours alone: its connections are kept here, idle ones in a
        # list (pop and append are atomic), which costs far less per call than the pool's
        # get_connection and release. A client passed in keeps its own pool's rules.
        self._idle: list[Any] = []
        self._idle_pid = os.getpid()
        self._heads: dict[int, bytes] = {}
        import redis.exceptions

        self._reply_error: type[BaseException] = redis.exceptions.ResponseError
        self._cross_slot: type[BaseException] = redis.exceptions.ClusterCrossSlotError
        self._script = _load_script()
        self._sha = hashlib.sha1(self._script.encode("utf-8")).hexdigest()
        self._load_command = b"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n" + _bulk(self._script.encode("utf-8"))
        self._transient, self._fatal, self._noscript = _errors()
        #: Every error a try can end with that this store turns into its own (see ``_failed``).
        self._caught: tuple[type[BaseException], ...] = (
            *self._transient, *self._fatal, redis.exceptions.RedisError)
        kwargs = getattr(getattr(self._client, "connection_pool", None), "connection_kwargs", None)
        self._db = kwargs.get("db") if isinstance(kwargs, dict) else None
        self._lease_script = _load_script("lease.lua")
        self._lease_sha = hashlib.sha1(self._lease_script.encode("utf-8")).hexdigest()
        self._members: weakref.WeakKeyDictionary[Spec, _Member] = weakref.WeakKeyDictionary()
        self._local_specs: weakref.WeakKeyDictionary[Spec, Spec] = weakref.WeakKeyDictionary()
        # Calendar periods sent to the script, per time zone and reset time: (starts, as text).
        self._bounds: dict[tuple[str, object], tuple[list[float], bytes]] = {}
        self._lock = threading.Lock()
        self._loading = LoopLocks()  # one task reloads the script per event loop (_arun)
        self._script_loads = 0  # script loads made on the asyncio path, to load once per NOSCRIPT wave
        self._async: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[AsyncRedis, _AsyncLane | None, AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()
        self._local: MemoryStore | None = None
        self._local_until = -math.inf
        self._local_stamps: OrderedDict[Stamp, None] = OrderedDict()
        # Per daily quota key: (start of the day, units counted in it) as the latest grant saw it.
        self._seen: OrderedDict[str, tuple[float, float]] = OrderedDict()

    # -- construction helpers ----------------------------------------------------------------
    def _from_url(self, url: str) -> tuple[SyncRedis, str]:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"invalid Redis URL {redact_url(url)!r}: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ValueError(f"invalid Redis URL {redact_url(url)!r}: the scheme must be one of {_SCHEMES}")
        if not parts.hostname:
            raise ValueError(f"invalid Redis URL {redact_url(url)!r}: no host")
        db = parts.path.strip("/") or "0"
        if not db.isdigit() or (scheme.endswith("cluster") and db != "0"):
            raise ValueError(f"invalid Redis URL {redact_url(url)!r}: the path must be a database number")
        # A password, or a lone "secret@" that may be one written without its colon: never shown.
        self._secrets = tuple(s for s in (parts.password, None if parts.password else parts.username) if s)
        self._cluster = scheme.endswith("+cluster")
        plain = scheme.replace("+cluster", "")
        where = f"{plain}{'+cluster' if self._cluster else ''}://{parts.hostname}:{port or 6379}"
        where += "" if self._cluster else f"/{int(db)}"
        options = self._socket_options()
        base_url = url.replace(parts.scheme + "://", plain + "://", 1)
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        try:
            if self._cluster:
                from redis.cluster import RedisCluster

                client: SyncRedis = RedisCluster.from_url(base_url, retry=Retry(NoBackoff(), 0), **options)
            else:
                client = redis.Redis.from_url(base_url, retry=Retry(NoBackoff(), 0), **options)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"invalid Redis URL {redact_url(url)!r}: {self._scrub(str(exc))}") from None
        except Exception as exc:  # a cluster client connects at once; an unreachable one is unavailable
            if isinstance(exc, _errors()[0]):
                raise StoreUnavailable(where, self._scrub(f"{type(exc).__name__}: {exc}")) from None
            raise
        return client, where

    def _socket_options(self) -> dict[str, Any]:
        return {"socket_timeout": self.timeout, "socket_connect_timeout": min(self.timeout, 1.0)}

    @staticmethod
    def _describe(client: object) -> str:
        """host:port/db of a client, never its password."""
        pool = getattr(client, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", None)
        if isinstance(kwargs, dict):
            if kwargs.get("path"):
                return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
            ssl = "SSL" in getattr(getattr(pool, "connection_class", None), "__name__", "")
            scheme = "rediss" if ssl else "redis"
            host, port, db = kwargs.get("host", "localhost"), kwargs.get("port", 6379), kwargs.get("db", 0)
            return f"{scheme}://{host}:{port}/{db}"
        nodes = getattr(client, "get_nodes", None)
        if callable(nodes):
            try:
                first = sorted(f"{n.host}:{n.port}" for n in nodes())
            except Exception:  # pragma: no cover - a description must never raise
                first = []
            return "redis+cluster://" + (",".join(first[:3]) + (",..." if len(first) > 3 else "") or "?")
        return f"<{type(client).__module__}.{type(client).__name__}>"

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # -- keys and arguments ------------------------------------------------------------------
    def _member(self, spec: Spec) -> _Member:
        member = self._members.get(spec)
        if member is None:
            kind = _KIND_CODE.get(spec.kind)
            if kind is None:
                raise ValueError(f"RedisStore cannot hold a limiter of kind {spec.kind!r}")
            skey = f"{self.prefix}{{{spec.name}}}:{spec.key}"
            keys = (skey.encode(), (skey + ":log").encode()) if kind == "w" else (skey.encode(),)
            head = kind.encode() + _LIMIT_SPAN.pack(float(spec.limit), float(spec.span))
            if spec.calendar is None:
                head += _NO_PERIODS
            member = _Member(keys, b"".join(_bulk(k) for k in keys), head, spec.calendar, _slot_tag(skey))
            with self._lock:
                self._members[spec] = member
        return member

    def _members_of(self, specs: Sequence[Spec]) -> list[_Member]:
        members = [self._member(spec) for spec in specs]
        if self._cluster and len(members) > 1:
            tags = {m.slot_tag for m in members}
            if len(tags) > 1:
                hashed: dict[str, str] = {}  # the value Redis hashes -> the first member's name
                for member, spec in zip(members, specs):
                    hashed.setdefault(member.slot_tag, spec.name)
                (tag_a, name_a), (tag_b, name_b) = list(hashed.items())[:2]
                if name_a != name_b:
                    why = f"their names {name_a!r} and {name_b!r} differ"
                elif "{}" in self.prefix:
                    why = f"the prefix {self.prefix!r} has an empty {{}}, so Redis hashes each whole key"
                else:
                    why = f"the prefix {self.prefix!r} makes Redis hash different parts of their keys"
                raise ValueError(
                    "on Redis Cluster the members of one Limits must share a hash tag, but their keys "
                    f"hash on {tag_a!r} (limiter {name_a!r}) and {tag_b!r} (limiter {name_b!r}): {why}. "
                    "Give them the same name, and a prefix with no tag or a common tag such as "
                    "prefix='{ratewindow}:'"
                )
        return members

    def _boundaries(self, calendar: Calendar, t: float) -> bytes:
        """Period starts around ``t`` (packed, count first) for the script, cached until ``t`` leaves them."""
        key = (calendar.tz_name, calendar.reset_time)
        cached = self._bounds.get(key)
        if cached is None or not cached[0][1] <= t < cached[0][-2]:
            cached = self._encode_bounds(calendar.boundaries(t, before=1, after=2))
            self._bounds[key] = cached
        return cached[1]

    @staticmethod
    def _encode_bounds(bounds: list[float]) -> tuple[list[float], bytes]:
        return bounds, struct.pack(f"<H{len(bounds)}d", len(bounds), *bounds)

    def _extend(self, members: Sequence[_Member], need: float) -> None:
        """The script needs the local day containing ``need``: widen every daily member's boundaries."""
        if not math.isfinite(need):
            raise RuntimeError(f"ratewindow: no calendar period for time {need!r}")
        for member in members:
            calendar = member.calendar
            if calendar is None:
                continue
            key = (calendar.tz_name, calendar.reset_time)
            cached = self._bounds.get(key)
            bounds = list(cached[0]) if cached is not None else calendar.boundaries(need)
            for _ in range(100_000):
                if bounds[0] > need:
                    bounds.insert(0, calendar.period(bounds[0] - 1e-3)[0])
                elif bounds[-1] <= need:
                    bounds.append(calendar.period(bounds[-1])[1])
                else:
                    break
            self._bounds[key] = self._encode_bounds(bounds)

    def _now(self) -> str:
        return "" if self._clock is None else repr(float(self._clock.now()))

    def _argv(
        self, op: bytes, members: Sequence[_Member], x: float, max_wait: float | None, stamp: Stamp | None
    ) -> bytes:
        """The script's one argument (see decide.lua): op, now, cost, max_wait, min_ttl, members, stamps."""
        now = -math.inf if self._clock is None else float(self._clock.now())
        parts = [op, _HEADER.pack(now, float(x), math.inf if max_wait is None else float(max_wait),
                                  self._min_ttl)]
        t = now if self._clock is not None else self._wall.now()
        for member in members:
            calendar = member.calendar
            parts.append(member.head)
            if calendar is not None:
                parts.append(self._boundaries(calendar, t))
        if stamp is not None:
            parts.extend(_LIMIT_SPAN.pack(float(at), float(aux)) for at, aux in stamp)
        return b"".join(parts)

    @staticmethod
    def _keys(members: Sequence[_Member]) -> list[bytes]:
        return [key for member in members for key in member.keys]

    def _budget(self, op: bytes, max_wait: float | None, within: float | None) -> float:
        """Seconds one call may take in all, its retries and the replies it waits for (see ``timeout``)."""
        budget = call_budget(self.timeout, _TRY_BUDGET, max_wait=max_wait if op == b"a" else None,
                             within=within, confirming=op == b"k")
        if self._local_until > -math.inf:  # down at the last look (with "local"): look again briefly
            budget = min(budget, _TRY_BUDGET)
        return budget

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        return StoreUnavailable(self._where, self._scrub(f"{type(exc).__name__}: {exc}"))

    def _failed(self, tries: _Tries, exc: BaseException) -> float:
        """After a try that ended in ``exc`` (one of ``_caught``): seconds to pause before the next.

        Raises:
            StoreUnavailable: from ``exc``: the server refused the call (authentication,
                permissions, an error reply), or stayed unreachable until the call's deadline.
            ValueError: from ``exc``: the server says the configuration is wrong (no such
                database, no scripting, a key of another type under the prefix).
        """
        if isinstance(exc, self._fatal):
            raise self._unavailable(exc) from exc
        if isinstance(exc, self._transient):
            return tries.pause(exc)
        if isinstance(exc, self._reply_error):
            wrong = self._misconfigured(exc)
            if wrong is not None:
                raise wrong from exc
            if str(exc).startswith("BUSY"):  # a long script of someone else's: it may end soon
                return tries.pause(exc)
        raise self._unavailable(exc) from exc

    def _misconfigured(self, exc: BaseException) -> ValueError | None:
        """The error for a reply that says this store is set up wrong, else None."""
        text = self._scrub(str(exc))
        if "DB index is out of range" in text or "invalid DB index" in text:
            db = "the database" if self._db is None else f"database {self._db}"
            return ValueError(f"{db} does not exist on {self._where} ({text}); the server's 'databases' "
                              "setting bounds the index")
        if "WRONGTYPE" in text:
            return ValueError(
                f"a key under the prefix {self.prefix!r} on {self._where} holds a value ratewindow did not "
                f"write ({text}); use another prefix, or delete that key"
            )
        if isinstance(exc, self._cross_slot):
            return ValueError(f"the keys of one call hash to different slots on {self._where} ({text}); "
                              "give the members of one Limits the same name, or a prefix with a common "
                              "tag such as prefix='{ratewindow}:'")
        if "unknown command" in text.lower():
            return ValueError(f"{self._where} does not run Lua scripts ({text}); RedisStore needs EVALSHA "
                              "and SCRIPT LOAD (Redis >= 2.6, or a proxy that passes them)")
        return None

    # -- one script call, with NOSCRIPT reload and retries -----------------------------------
    def _run(
        self,
        op: bytes,
        specs: Sequence[Spec],
        x: float,
        max_wait: float | None = None,
        stamp: Stamp | None = None,
        within: float | None = None,
    ) -> tuple[float, ...]:
        members = self._members_of(specs)
        keys = self._keys(members)
        tries = _Tries(self, self._budget(op, max_wait, within), max_wait)
        while tries.next():
            argv = self._argv(op, members, x, tries.max_wait, stamp)
            try:
                if self._pool is not None:
                    reply = _doubles(self._direct(self._pool, self._packed(members, len(keys), argv),
                                                  tries.left()))
                else:
                    reply = _doubles(self._client.execute_command(
                        "EVALSHA", self._sha, len(keys), *keys, argv, **_RAW))
            except self._noscript as exc:
                if not tries.reload():
                    raise self._unavailable(exc) from exc
                try:
                    self._load(tries.left())
                except self._caught as failure:  # e.g. a pooled connection the restart killed
                    self._real.sleep(self._failed(tries, failure))
                continue
            except self._caught as exc:
                self._real.sleep(self._failed(tries, exc))  # the last try is at the deadline
                continue
            if reply[0] == -math.inf:  # the script needs another calendar period
                self._extend(members, reply[1])
                continue
            self._back()
            return reply
        raise RuntimeError("ratewindow: the Redis script did not settle")  # pragma: no cover

    def _packed(self, members: Sequence[_Member], nkeys: int, argv: bytes) -> bytes:
        """The EVALSHA command for these members and argument, as RESP bytes (what redis-py would send)."""
        head = self._heads.get(nkeys)
        if head is None:
            head = b"*%d\r\n$7\r\nEVALSHA\r\n%s%s" % (nkeys + 4, _bulk(self._sha.encode()),
                                                        _bulk(b"%d" % nkeys))
            self._heads[nkeys] = head
        return b"".join([head, *[m.packed_keys for m in members], _bulk(argv)])

    def _direct(self, pool: Any, command: bytes, seconds: float) -> Any:
        """One packed command on a connection of the client's own pool; its reply within ``seconds``.

        The same wire bytes and reply as ``execute_command`` sends and reads, without redis-py's
        per-command machinery (argument encoding, retry wrapper, response callbacks), which costs
        about as much as the network round trip on loopback. Errors are redis-py's own.
        """
        if not self._owns_client:
            connection = pool.get_connection(*self._pool_args)
            try:
                return self._send(connection, command, seconds)
            finally:
                pool.release(connection)
        idle = self._idle
        if self._idle_pid != os.getpid():  # a forked child: the parent's sockets are not ours
            idle.clear()
            self._idle_pid = os.getpid()
        try:
            connection = idle.pop()
        except IndexError:
            connection = pool.make_connection()
        try:
            return self._send(connection, command, seconds)
        finally:
            idle.append(connection)

    def _send(self, connection: Any, command: bytes, seconds: float) -> Any:
        """Send ``command`` and read its reply, each socket wait (connecting too) at most ``seconds``:
        a stalled server costs a call its own budget, not the connection's socket timeout."""
        try:
            sock = getattr(connection, "_sock", None)
            if sock is None:
                _connect_within(connection, seconds)
                sock = getattr(connection, "_sock", None)
            if sock is not None:
                current = sock.gettimeout()
                if current is None or abs(current - seconds) > 1e-3:  # a system call: only on a change
                    sock.settimeout(seconds)
            connection.send_packed_command((command,))
            return connection.read_response(disable_decoding=True)
        except self._reply_error:
            raise  # an error reply (NOSCRIPT ...): the connection is fine
        except BaseException:
            connection.disconnect()  # mid-command: its state is unknown; it reconnects when used again
            raise
        finally:
            if not self._owns_client:  # the client's own calls keep its socket timeout
                sock = getattr(connection, "_sock", None)
                if sock is not None:
                    sock.settimeout(connection.socket_timeout)

    def _load(self, seconds: float) -> None:
        """SCRIPT LOAD: on the direct path when there is one (a fresh connection, bounded like a try)."""
        if self._pool is not None:
            self._direct(self._pool, self._load_command, seconds)
        else:
            self._client.script_load(self._script)

    async def _arun(
        self,
        op: bytes,
        specs: Sequence[Spec],
        x: float,
        max_wait: float | None = None,
        stamp: Stamp | None = None,
        within: float | None = None,
    ) -> tuple[float, ...]:
        members = self._members_of(specs)
        keys = self._keys(members)
        tries = _Tries(self, self._budget(op, max_wait, within), max_wait)
        while tries.next():
            argv = self._argv(op, members, x, tries.max_wait, stamp)
            loads = self._script_loads
            try:
                client, lane = await self._async_client()
                if lane is not None:
                    reply = _doubles(await lane.send(self._packed(members, len(keys), argv), tries.left()))
                else:
                    reply = _doubles(await _within(tries.left(), client.execute_command(
                        "EVALSHA", self._sha, len(keys), *keys, argv, **_RAW)))
            except self._noscript as exc:
                if not tries.reload():
                    raise self._unavailable(exc) from exc
                # Many tasks meet NOSCRIPT at once (a restarted server): one loads, the rest retry.
                try:
                    async with self._loading.get():
                        if loads == self._script_loads:
                            await self._aload(client, lane, tries.left())
                            self._script_loads += 1
                except self._caught as failure:  # e.g. a pooled connection the restart killed
                    await asyncio.sleep(self._failed(tries, failure))
                continue
            except self._caught as exc:
                await asyncio.sleep(self._failed(tries, exc))
                continue
            if reply[0] == -math.inf:  # the script needs another calendar period
                self._extend(members, reply[1])
                continue
            self._back()
            return reply
        raise RuntimeError("ratewindow: the Redis script did not settle")  # pragma: no cover

    async def _aload(self, client: AsyncRedis, lane: _AsyncLane | None, seconds: float) -> None:
        """``_load`` on ``redis.asyncio``: on the lane when there is one."""
        if lane is not None:
            await lane.send(self._load_command, seconds)
        else:
            await _within(seconds, client.script_load(self._script))

    # -- asyncio clients, one per event loop -------------------------------------------------
    async def _async_client(self) -> tuple[AsyncRedis, _AsyncLane | None]:
        """This event loop's client, and its direct path (None: use ``execute_command``)."""
        if self._user_async is not None:
            return self._user_async, self._user_lane
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            client = self._make_async()
            pool, args = _direct_pool(client, aio=True)
            lane = None if pool is None else _AsyncLane(pool, args, owned=True)
            closer = _close_on_shutdown(client, lane)
            # The loop finalizes live async generators when it shuts down (asyncio.run does):
            # that closes this loop's connections instead of leaking them.
            await closer.__anext__()
            entry = (client, lane, closer)
            self._async[loop] = entry
        return entry[0], entry[1]

    def _make_async(self) -> AsyncRedis:
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options: dict[str, Any] = {"retry": Retry(NoBackoff(), 0)}
        if self._url is not None:
            parts = urlsplit(self._url)
            plain = parts.scheme.lower().replace("+cluster", "")
            url = self._url.replace(parts.scheme + "://", plain + "://", 1)
            options.update(self._socket_options())
            if self._cluster:
                from redis.asyncio.cluster import RedisCluster

                return cast(AsyncRedis, RedisCluster.from_url(url, **options))
            return cast(AsyncRedis, aioredis.Redis.from_url(url, **options))
        wanted = ("username", "password", "db", "socket_timeout", "socket_connect_timeout", "client_name")
        if self._cluster:
            from redis.asyncio.cluster import ClusterNode, RedisCluster

            sync = cast(Any, self._client)
            kwargs = getattr(getattr(sync, "nodes_manager", None), "connection_kwargs", {}) or {}
            options.update({k: kwargs[k] for k in wanted if k in kwargs and k != "db"})
            nodes = [ClusterNode(n.host, n.port) for n in sync.get_nodes()]
            return cast(AsyncRedis, RedisCluster(startup_nodes=nodes, **options))
        pool = getattr(self._client, "connection_pool", None)
        kwargs = getattr(pool, "connection_kwargs", {}) or {}
        options.update({k: kwargs[k] for k in wanted if k in kwargs})
        if kwargs.get("path"):
            options["unix_socket_path"] = kwargs["path"]
        else:
            options["host"] = kwargs.get("host", "localhost")
            options["port"] = kwargs.get("port", 6379)
        if "SSL" in getattr(getattr(pool, "connection_class", object), "__name__", ""):
            options["ssl"] = True
            options.update({k: v for k, v in kwargs.items() if k.startswith("ssl_")})
        return cast(AsyncRedis, aioredis.Redis(**options))

    # -- the local fallback (on_unavailable="local") -----------------------------------------
    def _local_store(self) -> MemoryStore:
        with self._lock:
            if self._local is None:
                self._local = MemoryStore()
            return self._local

    def _use_local(self) -> bool:
        return self.on_unavailable == "local" and self._real.now() < self._local_until

    def _go_local(self, exc: StoreUnavailable) -> None:
        if self._local_until == -math.inf:  # once per outage, not at every look for the server
            log.warning(
                "ratewindow: %s is unavailable (%s); granting locally at 1/%d of each limit until it is back",
                self._where, exc.reason, self.expected_processes,
            )
        else:
            log.debug("ratewindow: %s still unavailable (%s)", self._where, exc.reason)
        self._local_until = self._real.now() + _RECHECK

    def _back(self) -> None:
        if self._local_until > -math.inf:
            self._local_until = -math.inf
            log.warning("ratewindow: %s is reachable again; deciding there", self._where)

    def _granted(self, specs: Sequence[Spec], reply: tuple[float, ...]) -> Grant:
        """An acquire's reply as a ``Grant``. With ``"local"``, each daily member's count in the
        day it was booked into is remembered: the local fallback grants only what was left."""
        n = 2 + 2 * len(specs)
        if len(reply) > n:  # granted, with daily members' counts after the stamps
            if self.on_unavailable == "local":
                counts = iter(reply[n:])
                with self._lock:
                    seen = self._seen
                    for i, spec in enumerate(specs):
                        if spec.kind != DAILY:
                            continue
                        day, count = reply[3 + 2 * i], next(counts)
                        before = seen.pop(spec.key, None)
                        if before is not None and before[0] == day:
                            count = max(count, before[1])  # replies of threads may come out of order
                        seen[spec.key] = (day, count)
                        if len(seen) > _SEEN_DAYS:
                            seen.popitem(last=False)
            reply = reply[:n]
        return _grant(reply)

    def _day_left(self, spec: Spec) -> float:
        """Units of a daily quota left today as the latest grant here saw Redis count them; 0.0
        when no grant here saw today's count (then nothing is known of what others took)."""
        seen = self._seen.get(spec.key)
        if seen is None or spec.calendar is None:
            return 0.0
        day, count = seen
        if day != spec.calendar.period(spec.clock.now())[0]:  # an earlier day, or a later one (today is full)
            return 0.0
        return max(0.0, spec.limit - count)

    def _local_specs_of(self, specs: Sequence[Spec], cost: float, exc: StoreUnavailable) -> list[Spec]:
        share = float(self.expected_processes or 1)
        out = []
        for spec in specs:
            limit = (self._day_left(spec) if spec.kind == DAILY else spec.limit) / share
            local = self._local_specs.get(spec)
            if local is None or local.limit != limit:  # a daily share changes with what was seen
                local = dataclasses.replace(spec, limit=limit)
                with self._lock:
                    self._local_specs[spec] = local
            if cost > local.limit:
                why = ""
                if spec.kind == DAILY:
                    why = " (a daily quota's local share is what Redis had left of today at the last grant " \
                          "seen here, divided among the processes; 0 if none was seen today)"
                raise StoreUnavailable(
                    self._where,
                    f"{exc.reason}; the local share {local.limit:g} of {spec.name!r} is below {cost:g}{why}",
                ) from exc
            out.append(local)
        return out

    def _local_acquire(self, specs: Sequence[Spec], cost: float, max_wait: float | None,
                       exc: StoreUnavailable) -> Grant:
        grant = self._local_store().acquire(self._local_specs_of(specs, cost, exc), cost, max_wait)
        if grant.stamp is not None:
            with self._lock:
                self._local_stamps[grant.stamp] = None
                while len(self._local_stamps) > _LOCAL_STAMPS:
                    self._local_stamps.popitem(last=False)
        return grant

    def _cancel_local(self, specs: Sequence[Spec], cost: float, stamp: Stamp) -> bool:
        """Cancel locally if the local fallback made this grant; True if it did."""
        if self.on_unavailable != "local":
            return False
        with self._lock:
            if stamp not in self._local_stamps:
                return False
            del self._local_stamps[stamp]
        local = self._local_specs_of(specs, 0.0, StoreUnavailable(self._where))
        self._local_store().cancel(local, cost, stamp)
        return True

    def _fallback(self, exc: StoreUnavailable) -> bool:
        if self.on_unavailable != "local":
            return False
        self._go_local(exc)
        return True

    def _left(self, max_wait: float | None, began: float) -> float | None:
        """What is left of ``max_wait`` seconds after the tries begun at ``began`` (real time)."""
        return None if max_wait is None else max(0.0, max_wait - (self._real.now() - began))

    # -- the Store protocol ------------------------------------------------------------------
    def acquire(self, specs: Sequence[Spec], cost: float, max_wait: float | None) -> Grant:
        """Record ``cost`` units on every member at the earliest time all allow, if within
        ``max_wait`` seconds (None: any time); one script call. Returns the verdict and delay.

        The call takes at most ``max_wait`` (at least the try budget, 0.25 s), or ``timeout``
        when that is shorter or ``max_wait`` is None, plus one last short wait for a reply.
        With ``"local"`` the local fallback gets what is left of ``max_wait``.

        Raises:
            StoreUnavailable: the server could not be reached within that time, refused the
                call, or answered something that is not Redis (the cause is chained), and
                ``on_unavailable`` is ``"raise"``.
            ValueError: on Redis Cluster, members whose keys hash to different slots; the
                server says the configuration is wrong (a database that does not exist, no Lua
                scripting, a key of another type under the prefix).
        """
        if self._use_local():
            return self._local_acquire(specs, cost, max_wait, StoreUnavailable(self._where, "down"))
        began = self._real.now()
        try:
            reply = self._run(b"a", specs, cost, max_wait)
        except StoreUnavailable as exc:
            if not self._fallback(exc):
                raise
            return self._local_acquire(specs, cost, self._left(max_wait, began), exc)
        return self._granted(specs, reply)

    async def acquire_async(self, specs: Sequence[Spec], cost: float, max_wait: float | None) -> Grant:
        """``acquire`` on ``redis.asyncio``: never blocks the event loop. Raises as ``acquire``."""
        if self._use_local():
            return self._local_acquire(specs, cost, max_wait, StoreUnavailable(self._where, "down"))
        began = self._real.now()
        try:
            reply = await self._arun(b"a", specs, cost, max_wait)
        except StoreUnavailable as exc:
            if not self._fallback(exc):
                raise
            return self._local_acquire(specs, cost, self._left(max_wait, began), exc)
        return self._granted(specs, reply)

    def wait_time(self, specs: Sequence[Spec], cost: float) -> float:
        """Exact seconds until ``cost`` could be granted on every member; writes nothing.

        Raises:
            StoreUnavailable, ValueError: as ``acquire``.
        """
        try:
            reply = self._run(b"w", specs, cost)
        except StoreUnavailable as exc:
            if not self._fallback(exc):
                raise
            local = self._local_specs_of(specs, cost, exc)
            return self._local_store().wait_time(local, cost)
        return max(0.0, reply[1])

    def cancel(self, specs: Sequence[Spec], cost: float, stamp: Stamp, *,
               within: float | None = None) -> None:
        """Undo an unused grant that ``acquire`` recorded (exact when it is the latest booking).

        Args:
            within: seconds the call may take in all, retries and replies (at most ``timeout``;
                None: ``timeout``). A limiter gives back the booking of a caller that was
                interrupted (Ctrl-C, a cancelled task) this way, within 0.05 s: the booking
                expires anyway, and the caller's exception must not wait for an unreachable server.

        Raises:
            StoreUnavailable, ValueError: as ``acquire`` (a grant made locally is cancelled locally).
        """
        if not self._cancel_local(specs, cost, stamp):
            self._run(b"c", specs, cost, None, stamp, within)

    async def cancel_async(self, specs: Sequence[Spec], cost: float, stamp: Stamp, *,
                           within: float | None = None) -> None:
        """``cancel`` on ``redis.asyncio``. Takes and raises as ``cancel``."""
        if not self._cancel_local(specs, cost, stamp):
            await self._arun(b"c", specs, cost, None, stamp, within)

    def _confirm_locally(self, specs: Sequence[Spec], cost: float, stamp: Stamp) -> Grant | None:
        """Confirm locally if the local fallback made this grant; None if it did not."""
        if self.on_unavailable != "local":
            return None
        with self._lock:
            if stamp not in self._local_stamps:
                return None
        local = self._local_specs_of(specs, 0.0, StoreUnavailable(self._where))
        grant = self._local_store().confirm(local, cost, stamp)
        if grant.stamp is not None:
            with self._lock:
                self._local_stamps.pop(stamp, None)
                self._local_stamps[grant.stamp] = None
        return grant

    def _confirm_down(self, exc: StoreUnavailable, stamp: Stamp) -> Grant:
        if not self._fallback(exc):
            raise exc
        return Grant(True, 0.0, stamp)  # the booking stands as it was made: nothing better is known

    def confirm(self, specs: Sequence[Spec], cost: float, stamp: Stamp, *,
                within: float | None = None) -> Grant:
        """Confirm a booked grant as its caller resumes (see ``Store.confirm``); one script call.

        Args:
            within: seconds the call may take in all (at least the try budget, 0.25 s, at most
                ``timeout``; None: ``timeout``): a limiter's ``acquire(timeout=...)`` passes
                what is left of its timeout.

        Raises:
            StoreUnavailable, ValueError: as ``acquire``. With ``on_unavailable="local"`` a grant
                booked on Redis is taken as confirmed at its booked time while Redis is unreachable.
        """
        local = self._confirm_locally(specs, cost, stamp)
        if local is not None:
            return local
        try:
            return _grant(self._run(b"k", specs, cost, None, stamp, within))
        except StoreUnavailable as exc:
            return self._confirm_down(exc, stamp)

    async def confirm_async(self, specs: Sequence[Spec], cost: float, stamp: Stamp, *,
                            within: float | None = None) -> Grant:
        """``confirm`` on ``redis.asyncio``. Takes and raises as ``confirm``."""
        local = self._confirm_locally(specs, cost, stamp)
        if local is not None:
            return local
        try:
            return _grant(await self._arun(b"k", specs, cost, None, stamp, within))
        except StoreUnavailable as exc:
            return self._confirm_down(exc, stamp)

    def pause(self, specs: Sequence[Spec], seconds: float) -> None:
        """Grant nothing on these members for ``seconds`` seconds from now, for every client.

        Raises:
            StoreUnavailable: as ``acquire`` (with ``"local"``, the local limiter is paused).
        """
        try:
            self._run(b"p", specs, seconds)
        except StoreUnavailable as exc:
            if not self._fallback(exc):
                raise
            self._local_store().pause(self._local_specs_of(specs, 0.0, exc), seconds)

    def used(self, spec: Spec) -> float:
        """Units counted now (window, day), or tokens left (bucket).

        Raises:
            StoreUnavailable: as ``acquire``.
        """
        try:
            reply = self._run(b"u", [spec], 0.0)
        except StoreUnavailable as exc:
            if not self._fallback(exc):
                raise
            return self._local_store().used(self._local_specs_of([spec], 0.0, exc)[0])
        return reply[0]

    def available(self, specs: Sequence[Spec]) -> float:
        """Units every member could grant now without waiting.

        Raises:
            StoreUnavailable: as ``acquire``.
        """
        try:
            reply = self._run(b"v", specs, 0.0)
        except StoreUnavailable as exc:
            if not self._fallback(exc):
                raise
            return self._local_store().available(self._local_specs_of(specs, 0.0, exc))
        return reply[0]

    def reset(self, specs: Sequence[Spec]) -> None:
        """Delete every key of these members.

        Raises:
            StoreUnavailable: as ``acquire``.
        """
        self._run(b"r", specs, 0.0)
        if self._local is not None:
            self._local.reset(self._local_specs_of(specs, 0.0, StoreUnavailable(self._where)))

    # -- leases (ConcurrencyLimit): one small script, ratewindow/stores/lease.lua ---------------
    def _lease_args(self, op: str, spec: Spec, lease_id: str, limit: int) -> tuple[str, list[str]]:
        key = f"{self.prefix}{{{spec.name}}}:{spec.key}"
        return key, [op, self._now() or "-", lease_id, str(limit), repr(float(spec.span))]

    def _lease_call(self, op: str, spec: Spec, lease_id: str = "-", limit: int = 0) -> str:
        key, argv = self._lease_args(op, spec, lease_id, limit)
        tries = _Tries(self, self._budget(b"l", None, None), None)
        while tries.next():
            try:
                return _text(self._client.evalsha(self._lease_sha, 1, key, *argv))
            except self._noscript as exc:
                if not tries.reload():
                    raise self._unavailable(exc) from exc
                try:
                    self._client.script_load(self._lease_script)
                except self._caught as failure:
                    self._real.sleep(self._failed(tries, failure))
            except self._caught as exc:
                self._real.sleep(self._failed(tries, exc))
        raise RuntimeError("ratewindow: the Redis lease script did not settle")  # pragma: no cover

    async def _alease_call(self, op: str, spec: Spec, lease_id: str, limit: int = 0) -> str:
        key, argv = self._lease_args(op, spec, lease_id, limit)
        tries = _Tries(self, self._budget(b"l", None, None), None)
        while tries.next():
            try:
                client = (await self._async_client())[0]
                return _text(await _within(tries.left(), client.evalsha(self._lease_sha, 1, key, *argv)))
            except self._noscript as exc:
                if not tries.reload():
                    raise self._unavailable(exc) from exc
                try:
                    await _within(tries.left(), client.script_load(self._lease_script))
                except self._caught as failure:
                    await asyncio.sleep(self._failed(tries, failure))
            except self._caught as exc:
                await asyncio.sleep(self._failed(tries, exc))
        raise RuntimeError("ratewindow: the Redis lease script did not settle")  # pragma: no cover

    async def lease_async(self, spec: Spec, lease_id: str, limit: int) -> float:
        """``lease`` on ``redis.asyncio``: never blocks the event loop. Raises as ``lease``."""
        return float(await self._alease_call("l", spec, lease_id, limit))

    async def release_async(self, spec: Spec, lease_id: str) -> None:
        """``release`` on ``redis.asyncio``. Raises as ``release``."""
        await self._alease_call("x", spec, lease_id)

    def lease(self, spec: Spec, lease_id: str, limit: int) -> float:
        """Take a ``ConcurrencyLimit`` slot for ``spec.span`` seconds of server time if fewer than
        ``limit`` are held: 0.0 if taken, else seconds until the earliest lease expires."""
        return float(self._lease_call("l", spec, lease_id, limit))

    def release(self, spec: Spec, lease_id: str) -> None:
        """Give a slot back (no effect if it expired or was released)."""
        self._lease_call("x", spec, lease_id)

    def leases(self, spec: Spec) -> int:
        """Live leases now."""
        return int(self._lease_call("n", spec))

    # -- notes (what a Calibrator learned from responses, for every host) ----------------------
    def _note_key(self, key: str) -> str:
        return f"{self.prefix}note:{key}"

    def note(self, key: str, value: str, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds (a Redis string with an expiry).

        Raises:
            StoreUnavailable: the server could not be reached.
        """
        try:
            milliseconds = max(1, math.ceil(ttl * 1000))
            self._client.execute_command("SET", self._note_key(key), value, "PX", milliseconds)
        except (*self._transient, *self._fatal) as exc:
            raise self._unavailable(exc) from exc

    def read_note(self, key: str) -> str | None:
        """The note under ``key``, or None if there is none (or it expired).

        Raises:
            StoreUnavailable: the server could not be reached.
        """
        try:
            value = self._client.execute_command("GET", self._note_key(key))
        except (*self._transient, *self._fatal) as exc:
            raise self._unavailable(exc) from exc
        return None if value is None else _text(value)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connections this store opened (a client passed in stays open)."""
        if self._owns_client:
            while self._idle:
                self._idle.pop().disconnect()
            self._client.close()

    async def aclose(self) -> None:
        """Close the connections this store opened, including the current event loop's."""
        entry = self._async.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            # Finish the loop's closer (its finally closes the connections) rather than dropping it:
            # a dropped one would be finalized by the loop later, maybe after the loop has closed.
            await entry[2].aclose()
        self.close()

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        extra = ""
        if self.on_unavailable == "local":
            extra = f", on_unavailable='local', expected_processes={self.expected_processes}"
        return f"RedisStore({self._where!r}, prefix={self.prefix!r}{extra})"


class _Tries:
    """The retries of one store call: until ``budget`` seconds of real time have passed, with a
    doubling pause (5 ms to 250 ms) after each unreachable try, the last one at the deadline.
    Each try waits for its reply until the deadline (at least ``_LAST_TRY``, at most the store's
    timeout), so a call takes its budget plus at most that last short wait."""

    __slots__ = ("_deadline", "_failed", "_gap", "_left", "_max_wait", "_reloads", "_start", "_store")

    def __init__(self, store: RedisStore, budget: float, max_wait: float | None) -> None:
        self._store = store
        self._start = store._real.now()
        self._deadline = self._start + budget
        self._max_wait = max_wait
        self._gap = 0.005
        self._reloads = 0
        self._failed = False
        self._left = 1_000_000  # tries: a bound never reached in practice

    def next(self) -> bool:
        """Whether to make another try."""
        self._left -= 1
        return self._left >= 0

    def left(self) -> float:
        """Seconds this try may wait for its reply (connecting included)."""
        return min(self._store.timeout, max(self._deadline - self._store._real.now(), _LAST_TRY))

    @property
    def max_wait(self) -> float | None:
        """The caller's max_wait (seconds) less the time lost to unreachable tries: a waiting
        acquire never waits longer in all than it was allowed."""
        if self._max_wait is None or not self._failed:
            return self._max_wait
        return max(0.0, self._max_wait - (self._store._real.now() - self._start))

    def reload(self) -> bool:
        """After NOSCRIPT: whether to load the script and try again (three times at most)."""
        self._reloads += 1
        return self._reloads <= 3

    def pause(self, exc: BaseException) -> float:
        """After an unreachable try: seconds to sleep before the next, or raise ``StoreUnavailable``."""
        store = self._store
        left = self._deadline - store._real.now()
        if left <= 0:
            raise store._unavailable(exc) from exc
        log.debug("ratewindow: %s unreachable (%s); retrying", store._where, exc)
        self._failed = True
        pause = min(self._gap, left)
        self._gap = min(self._gap * 2, 0.25)
        return pause


#: Connections one event loop's store-built lane opens at most; more callers queue for them.
_LANE_CONNECTIONS = 32


def _bulk(value: bytes) -> bytes:
    """``value`` as a RESP bulk string."""
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _direct_pool(client: object, *, aio: bool = False) -> tuple[Any, tuple[str, ...]]:
    """The connection pool of a plain single-node ``redis.Redis`` (``redis.asyncio.Redis`` with
    ``aio=True``) and the arguments its ``get_connection`` takes, for the direct path; None
    for anything else (a cluster client, a single-connection client, client-side caching, a class
    we do not know): those keep ``execute_command``."""
    if client is None:
        return None, ()
    if aio:
        import redis.asyncio as redis
    else:
        import redis  # type: ignore[no-redef]

    pool = getattr(client, "connection_pool", None)
    if (
        type(client) is not redis.Redis
        or getattr(client, "connection", None) is not None
        or getattr(client, "single_connection_client", False)  # redis.asyncio connects it on first use
        or getattr(client, "cache", None) is not None
        or not isinstance(pool, redis.ConnectionPool)
        or getattr(pool, "cache", None) is not None
    ):
        return None, ()
    try:  # redis-py < 5.3 wants a command name; later versions warn when given one
        first = next(iter(inspect.signature(pool.get_connection).parameters.values()), None)
    except (TypeError, ValueError):  # pragma: no cover - a builtin or odd override
        return None, ()
    needs_name = first is not None and first.default is inspect.Parameter.empty and first.kind in (
        inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return pool, ("EVALSHA",) if needs_name else ()


def _doubles(reply: Any) -> tuple[float, ...]:
    """The script's reply: packed little-endian doubles.

    Raises:
        _UnexpectedReply: anything else (not the script answering).
    """
    if not isinstance(reply, bytes) or not reply or len(reply) & 7:
        raise _UnexpectedReply(f"not the script's reply: {reply!r:.80}")
    return struct.unpack(f"<{len(reply) >> 3}d", reply)


def _grant(reply: tuple[float, ...]) -> Grant:
    granted = reply[0] == 1.0
    if len(reply) <= 2:
        return Grant(granted, reply[1], None)
    return Grant(granted, reply[1], tuple((reply[i], reply[i + 1]) for i in range(2, len(reply), 2)))


class _AsyncLane:
    """The direct path on ``redis.asyncio``: packed EVALSHA commands sent on the connections of
    one event loop's plain client.

    A client passed in keeps its pool's rules (``owned`` False). A client the store built keeps
    its idle connections here, a list: no lock and no pool bookkeeping per call. Those
    connections have no socket timeout of their own. Either way one deadline per try covers the
    whole command (redis-py's per-send timeout starts a task for every command).

    The connection's own send and read disconnect it on any failure, cancellation included, so a
    connection with a half-read reply is never used again without reconnecting.
    """

    __slots__ = ("_args", "_idle", "_pool", "_slots")

    def __init__(self, pool: Any, args: tuple[str, ...], owned: bool) -> None:
        self._pool = pool
        self._args = args
        self._idle: list[Any] | None = [] if owned else None
        # Thousands of tasks may call at once: beyond this many connections they queue for one.
        self._slots = asyncio.Semaphore(_LANE_CONNECTIONS)

    async def send(self, command: bytes, seconds: float) -> Any:
        """Send one packed command and return its undecoded reply within ``seconds`` (connecting
        included; a wait for a free connection of this lane is not counted). Raises redis-py's
        errors (``TimeoutError`` when the reply is late)."""
        idle = self._idle
        if idle is None:
            return await _within(seconds, self._send_pooled(command))
        async with self._slots:
            try:
                connection = idle.pop()
            except IndexError:
                pool = self._pool
                connection = pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
            try:
                return await _within(seconds, _send_on(connection, command))
            finally:
                idle.append(connection)

    async def _send_pooled(self, command: bytes) -> Any:
        connection = await self._pool.get_connection(*self._args)
        try:
            return await _send_on(connection, command)
        finally:
            await self._pool.release(connection)

    async def close(self) -> None:
        """Disconnect the idle connections this lane made."""
        while self._idle:
            await self._idle.pop().disconnect()


async def _send_on(connection: Any, command: bytes) -> Any:
    await connection.send_packed_command(command)
    return await connection.read_response(disable_decoding=True)


async def _within(seconds: float, awaitable: Awaitable[Any]) -> Any:
    """``awaitable``'s result within ``seconds``, else redis-py's ``TimeoutError`` (a connection
    abandoned mid-command disconnects itself: redis-py's send and read do on any exception)."""
    try:
        async with _async_timeout(seconds):
            return await awaitable
    except asyncio.TimeoutError:
        from redis.exceptions import TimeoutError as RedisTimeout

        raise RedisTimeout(f"no reply within {seconds:.3g} s") from None


def _connect_within(connection: Any, seconds: float) -> None:
    """Connect a redis-py connection, its TCP connect and handshake (AUTH, SELECT) each within
    ``seconds``; its own timeouts are set back afterwards."""
    saved = getattr(connection, "socket_connect_timeout", None), connection.socket_timeout
    connection.socket_connect_timeout = seconds if saved[0] is None else min(saved[0], seconds)
    connection.socket_timeout = seconds
    try:
        connection.connect()
    finally:
        connection.socket_connect_timeout, connection.socket_timeout = saved


async def _close_async(client: AsyncRedis, lane: _AsyncLane | None) -> None:
    try:
        if lane is not None:
            await lane.close()
    finally:
        await client.aclose()


async def _close_on_shutdown(client: AsyncRedis, lane: _AsyncLane | None) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await _close_async(client, lane)

