"""``SQLiteStore``: limiter state in one SQLite file, shared by every process on a host.

Each decision is one ``BEGIN IMMEDIATE`` transaction that loads the members' states, runs the
decision core (``ratewindow._core``, the very code ``MemoryStore`` runs), writes back what changed
and prunes what expired. A window's log lives in rows ``(key, cum, t)``; ``_SQLWindow`` reads the
few rows a decision needs (the expired front, the one entry whose expiry makes room) instead of
loading the log, so a decision costs the same for a window of 10 or of 100,000.

One module past 600 lines: the row layout ``_SQLWindow`` reads and writes, the schema and the
transactions that hold it consistent change together; split, each would depend on the others'
private details.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ratewindow import _core
from ratewindow._clock import Clock, MonotonicClock, WallClock
from ratewindow._core import BUCKET, DAILY, WINDOW, BucketState, DailyState, Grant, Spec, State, WindowState
from ratewindow._errors import StoreUnavailable
from ratewindow.stores._protocol import call_budget

__all__ = ["SQLiteStore"]

T = TypeVar("T")
Stamp = tuple[tuple[float, float], ...]
Row = tuple[float, float, "float | None", float]  # a, b, last, hold

_NEG_INF = -math.inf
_SCHEMA_VERSION = 1
#: Seconds of store time between sweeps of rows whose state no longer matters (idle limiters).
_SWEEP_EVERY = 60.0

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS rw_state (
    key TEXT PRIMARY KEY,  -- Spec.key: kind, name (and a window's span)
    a REAL NOT NULL,       -- window: base (total before the first entry); bucket: tat; daily: day start
    b REAL NOT NULL,       -- window: total cost ever recorded; daily: count in that day
    last REAL,             -- window: time of the newest entry, NULL when the log is empty
    hold REAL NOT NULL,    -- paused until (store time)
    seen REAL NOT NULL,    -- latest store time a write was decided at: time never goes back per key
    expires REAL NOT NULL  -- store time from which the row is the same as no row
) WITHOUT ROWID
""",
    """
CREATE TABLE IF NOT EXISTS rw_lease (
    key TEXT NOT NULL,     -- a ConcurrencyLimit's Spec.key
    id TEXT NOT NULL,      -- the lease
    expires REAL NOT NULL, -- store time the lease ends at if not released
    PRIMARY KEY (key, id)
) WITHOUT ROWID
""",
    """
CREATE TABLE IF NOT EXISTS rw_note (
    key TEXT PRIMARY KEY,  -- a note's key (what a Calibrator learned for a limiter)
    value TEXT NOT NULL,
    expires REAL NOT NULL  -- store time the note is forgotten at
) WITHOUT ROWID
""",
    """
CREATE TABLE IF NOT EXISTS rw_log (
    key TEXT NOT NULL,
    cum REAL NOT NULL,     -- cumulative cost up to and including this entry
    t REAL NOT NULL,       -- store time the entry counts from
    PRIMARY KEY (key, cum)
) WITHOUT ROWID
""",
)

#: The row of a state that was never written (no row is written for it).
_FRESH: dict[str, Row] = {
    WINDOW: (0.0, 0.0, None, _NEG_INF),
    BUCKET: (_NEG_INF, 0.0, None, _NEG_INF),
    DAILY: (_NEG_INF, 0.0, None, _NEG_INF),
}

_LOAD_ONE = "SELECT key, a, b, last, hold, seen FROM rw_state WHERE key = ?"
_SAVE = "INSERT OR REPLACE INTO rw_state (key, a, b, last, hold, seen, expires) VALUES (?, ?, ?, ?, ?, ?, ?)"
_FRONT = "SELECT cum, t FROM rw_log WHERE key = ? ORDER BY cum LIMIT 2"
_AFTER = "SELECT cum, t FROM rw_log WHERE key = ? AND cum > ? ORDER BY cum LIMIT 64"
_PRUNE = "DELETE FROM rw_log WHERE key = ? AND cum <= ?"
_FIND = "SELECT t FROM rw_log WHERE key = ? AND cum >= ? AND cum > ? ORDER BY cum LIMIT 1"
_INSERT = "INSERT INTO rw_log (key, cum, t) VALUES (?, ?, ?)"
_BELOW = "SELECT cum, t FROM rw_log WHERE key = ? AND cum < ? ORDER BY cum DESC LIMIT 64"
_NEWEST = "SELECT t FROM rw_log WHERE key = ? ORDER BY cum DESC LIMIT 1"
_UPTO = "SELECT cum FROM rw_log WHERE key = ? AND t <= ? AND cum > ? ORDER BY cum DESC LIMIT 1"
_AT = "SELECT cum FROM rw_log WHERE key = ? AND t = ? AND cum > ? ORDER BY cum"


class _SQLWindow(WindowState):
    """A ``WindowState`` whose log stays in ``rw_log``: same methods, same arithmetic, read lazily.

    The in-memory lists of the parent are unused. Rows are deleted (pruned) only when ``write``.
    """

    __slots__ = ("_conn", "_key", "_write", "last")

    def __init__(self, conn: sqlite3.Connection, key: str, write: bool, row: Row | None) -> None:
        self._conn = conn
        self._key = key
        self._write = write
        if row is None:
            self.base, self.total, self.last, self.hold = 0.0, 0.0, None, _NEG_INF
        else:
            self.base, self.total, self.last, self.hold = row

    def _scan(self, now: float, span: float) -> tuple[bool, float, float | None]:
        """WindowState.prune, read-only: (empty after pruning, base after pruning, cum of the
        last expired entry or None)."""
        last = self.last
        if last is None:
            return True, self.base, None
        if last + span <= now:  # times never decrease along the log: the newest expired, so all did
            return True, self.total, self.total
        front = self._conn.execute(_FRONT, (self._key,)).fetchall()
        if not front or front[0][1] + span > now:
            return False, self.base, None
        cut = front[0][0]
        if len(front) > 1:
            if front[1][1] + span > now:  # the usual case: exactly one entry expired since last time
                return False, cut, cut
            cut = front[1][0]
        while True:
            rows = self._conn.execute(_AFTER, (self._key, cut)).fetchall()
            for cum, t in rows:
                if t + span > now:
                    return False, cut, cut
                cut = cum
            if not rows:  # pragma: no cover - the newest entry is live, so the loop returns above
                return True, cut, cut

    def prune(self, now: float, span: float) -> None:
        self._prune(now, span)

    def _prune(self, now: float, span: float) -> tuple[bool, float]:
        """WindowState.prune: deletes the expired rows when writing; (empty, base after)."""
        empty, live_base, cut = self._scan(now, span)
        if cut is not None and self._write:
            self._conn.execute(_PRUNE, (self._key, cut))
            self.base = live_base
            if empty:
                self.last = None
        return empty, live_base

    def earliest(self, now: float, cost: float, limit: float, span: float) -> float:
        empty, live_base = self._prune(now, span)
        if empty:
            base = now
        else:
            last = self.last
            assert last is not None
            base = last if last > now else now
            if self.total - live_base + cost > limit:
                # bisect_left over the live entries: the first whose cumulative cost reaches target
                target = self.total - (limit - cost)
                row = self._conn.execute(_FIND, (self._key, target, live_base)).fetchone()
                free = row[0] + span
                if free > base:
                    base = free
        return base if base >= self.hold else self.hold

    def record(self, at: float, cost: float) -> float:
        self.total += cost
        self._conn.execute(_INSERT, (self._key, self.total, at))
        self.last = at
        return 0.0

    def unrecord(self, at: float, cost: float, aux: float) -> None:
        conn, key = self._conn, self._key
        upper = math.inf
        while True:
            rows = conn.execute(_BELOW, (key, upper)).fetchall()
            for i, (cum, t) in enumerate(rows):
                if t == at:
                    if i + 1 < len(rows):
                        before = rows[i + 1][0]
                    else:
                        prev = conn.execute(_BELOW, (key, cum)).fetchone()
                        before = prev[0] if prev is not None else self.base
                    if cum - before == cost:
                        conn.execute("DELETE FROM rw_log WHERE key = ? AND cum = ?", (key, cum))
                        # Shift the later entries down by cost, via negative values: no transient
                        # clash with the primary key whatever order SQLite updates rows in.
                        conn.execute(
                            "UPDATE rw_log SET cum = -(cum - ?) WHERE key = ? AND cum > ?", (cost, key, cum)
                        )
                        conn.execute("UPDATE rw_log SET cum = -cum WHERE key = ? AND cum < 0", (key,))
                        self.total -= cost
                        newest = conn.execute(_NEWEST, (key,)).fetchone()
                        self.last = newest[0] if newest is not None else None
                        return
                elif t < at:
                    return
            if not rows:
                return
            upper = rows[-1][0]

    def _upto(self, now: float, live_base: float) -> float:
        """The cumulative cost of the newest live entry recorded at or before ``now``."""
        row = self._conn.execute(_UPTO, (self._key, now, live_base)).fetchone()
        return live_base if row is None else float(row[0])

    def _find_cum(self, at: float, cost: float, live_base: float) -> float | None:
        """The cumulative cost of a live entry recorded at ``at`` for ``cost``; None if none."""
        conn, key = self._conn, self._key
        for (cum,) in conn.execute(_AT, (key, at, live_base)).fetchall():
            prev = conn.execute(_BELOW, (key, cum)).fetchone()
            before = prev[0] if prev is not None and prev[0] > live_base else live_base
            if cum - before == cost:
                return float(cum)
        return None

    def confirm_wait(self, now: float, at: float, cost: float, limit: float, span: float) -> float:
        if at > now:
            return at - now
        _, live_base = self._prune(now, span)
        upto = self._upto(now, live_base)
        in_window = upto - live_base
        found = self._find_cum(at, cost, live_base)
        if found is None or found > upto:
            in_window += cost
        wait = self.hold - now
        if in_window > limit:
            target = live_base + (in_window - limit)
            row = self._conn.execute(_FIND, (self._key, target, live_base)).fetchone()
            free = row[0] + span - now
            if free > wait:
                wait = free
        return wait if wait > 0 else 0.0

    def confirm(self, now: float, at: float, cost: float) -> None:
        conn, key = self._conn, self._key
        upto = self._upto(now, self.base)
        found = self._find_cum(at, cost, self.base)
        if found is None:  # recorded anew at now: later entries' cumulative costs grow by cost
            conn.execute("UPDATE rw_log SET cum = -(cum + ?) WHERE key = ? AND cum > ?", (cost, key, upto))
            conn.execute("UPDATE rw_log SET cum = -cum WHERE key = ? AND cum < 0", (key,))
            conn.execute(_INSERT, (key, upto + cost, now))
            self.total += cost
            upto += cost
        elif found == upto:
            conn.execute("UPDATE rw_log SET t = ? WHERE key = ? AND cum = ?", (now, key, found))
        else:  # the entries between move down one place, each cumulative cost less cost
            conn.execute("DELETE FROM rw_log WHERE key = ? AND cum = ?", (key, found))
            conn.execute(
                "UPDATE rw_log SET cum = -(cum - ?) WHERE key = ? AND cum > ? AND cum <= ?",
                (cost, key, found, upto),
            )
            conn.execute("UPDATE rw_log SET cum = -cum WHERE key = ? AND cum < 0", (key,))
            conn.execute(_INSERT, (key, upto, now))
        if upto == self.total:
            self.last = now

    def used(self, now: float, span: float) -> float:
        return self.total - self._scan(now, span)[1]

    def available(self, now: float, limit: float, span: float) -> float:
        empty, live_base, _ = self._scan(now, span)
        if self.hold > now or (not empty and self.last is not None and self.last > now):
            return 0.0
        return limit - (self.total - live_base)


def _row_of(state: State) -> Row:
    if isinstance(state, _SQLWindow):
        return (state.base, state.total, state.last, state.hold)
    if isinstance(state, BucketState):
        return (state.tat, 0.0, None, state.hold)
    assert isinstance(state, DailyState)
    return (state.start, state.count, None, state.hold)


def _expires(spec: Spec, state: State) -> float:
    """Store time from which this state decides exactly as a fresh one."""
    at = state.hold
    if isinstance(state, _SQLWindow):
        if state.last is not None and state.last + spec.span > at:
            at = state.last + spec.span
    elif isinstance(state, BucketState):
        at = max(at, state.tat)
    elif isinstance(state, DailyState) and state.start > _NEG_INF and spec.calendar is not None:
        at = max(at, spec.calendar.period(state.start)[1])
    return at


#: Least seconds a call may spend waiting for the database (another process's transaction, or
#: this process's connection in use by another thread) when its caller would wait less: a file
#: busy with healthy traffic answers well within it, a stalled one costs the call this, not ``timeout``.
MIN_BUDGET = 1.0


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock; worth another try."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in (5, 6)
    text = str(exc)
    return "locked" in text or "busy" in text


class SQLiteStore:
    """Limiter state in a SQLite file: every process on the host that opens the same file shares it.

    Each decision is one ``BEGIN IMMEDIATE`` transaction (WAL mode, ``synchronous=NORMAL``): it
    loads the members' states, runs the same decision core as ``MemoryStore``, writes back and
    prunes in the same transaction, so a ``Limits`` composite is all-or-nothing across processes.
    Nothing sleeps inside a transaction; callers wait afterwards, in their own clock.

    Time is one base for every member and process: ``time.time()`` (or ``clock``), never allowed
    to go backwards for a key (each key keeps the latest time a write was decided at), so a wall
    clock stepped back makes limits stricter for a while, never looser. The in-process
    ``MemoryStore`` reads each member's own clock instead.

    Thread-safe (one connection per process, behind a lock) and fork-safe (a child opens its own
    connection on first use). With ``synchronous=NORMAL`` a power loss (not a process crash) may
    lose the last grants, which the limit then forgets.

    Args:
        path: the database file; created if missing. Every sharing process must use the same file
            on a local disk (SQLite locking is unreliable on network filesystems).
        timeout: the longest a call waits for the database (another process's transaction, or
            this process's connection in use by another thread) before raising
            ``StoreUnavailable``; finite, >= 0. A call whose caller would wait less is bounded by
            that instead, but given at least ``MIN_BUDGET`` (1 s): ``try_acquire`` on a file a
            stalled process keeps locked raises after 1 s, ``acquire(timeout=2.0)`` after 2 s.
        clock: time source for decisions; ``WallClock()`` by default. Tests pass a ``ManualClock``.

    Raises:
        ValueError, TypeError: a bad argument, named in the message.
        StoreUnavailable: the file cannot be opened or its schema created.

    >>> store = SQLiteStore("/tmp/limits.db")                               # doctest: +SKIP
    >>> hubspot = SlidingWindow(190, 10.0, name="portal-42", store=store)  # doctest: +SKIP
    """

    def __init__(
        self, path: str | os.PathLike[str], *, timeout: float = 5.0, clock: Clock | None = None
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a file path, got {path!r}")
        text = os.fspath(path)
        if not text or text == ":memory:" or text.startswith("file::memory:"):
            raise ValueError(f"SQLiteStore needs a file every process can open, got {text!r}; "
                             "use MemoryStore for one process")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < math.inf:
            raise ValueError(f"timeout must be a finite number of seconds >= 0, got {timeout!r}")
        #: The database file.
        self.path = os.path.abspath(text)
        #: Busy timeout in seconds.
        self.timeout = float(timeout)
        self._clock: Clock = clock if clock is not None else WallClock()
        self._orphans: list[sqlite3.Connection] = []  # a parent's connections, never closed in a child
        self._pid = -1
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._busy_ms = -1  # the connection's busy timeout, in ms, as last set
        self._next_sweep = _NEG_INF
        self._connect()

    # -- connection ----------------------------------------------------------------------------
    def _where(self) -> str:
        return f"sqlite:///{self.path}"

    def _connect(self) -> sqlite3.Connection:
        """Open this process's connection and make sure of the schema.

        Setting WAL mode can fail at once with "database is locked" while another process opens
        the same file (SQLite's busy handler does not cover every step of it), so the whole setup
        is retried for up to ``timeout`` seconds of real time.
        """
        real = MonotonicClock()
        deadline = real.now() + self.timeout
        pause = 0.002
        while True:
            try:
                conn = self._open()
                break
            except sqlite3.OperationalError as exc:
                left = deadline - real.now()
                if not _is_busy(exc) or left <= 0:
                    raise StoreUnavailable(self._where(), f"{type(exc).__name__}: {exc}") from exc
                real.sleep(min(pause, left))
                pause = min(pause * 2, 0.1)
            except sqlite3.Error as exc:
                raise StoreUnavailable(self._where(), f"{type(exc).__name__}: {exc}") from exc
        self._conn = conn
        self._busy_ms = round(self.timeout * 1000)  # sqlite3.connect(timeout=...) set it
        self._pid = os.getpid()
        return conn


    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False,
            cached_statements=64,
        )
        try:
            conn.execute("PRAGMA page_size=1024")  # a new file only: fewer bytes per commit to the WAL
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint=10000")  # fewer checkpoint fsyncs; WAL <= ~10 MB
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version not in (0, _SCHEMA_VERSION):
                    raise StoreUnavailable(
                        self._where(), f"schema version {version}, expected {_SCHEMA_VERSION}"
                    )
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        """This process's connection; called with the lock held."""
        conn = self._conn
        if conn is None:
            conn = self._connect()
        return conn

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            # A forked child: the parent's connection and lock state must not be used (or closed) here.
            if self._conn is not None:
                self._orphans.append(self._conn)
            self._conn = None
            self._lock = threading.Lock()
            self._pid = os.getpid()

    def _run(self, write: bool, body: Callable[[sqlite3.Connection], T], budget: float | None = None) -> T:
        """Run ``body`` in one transaction: BEGIN IMMEDIATE when ``write``, else a read snapshot;
        waiting at most ``budget`` seconds (default ``timeout``) in all for this process's
        connection and for the database's write lock.

        Raises:
            StoreUnavailable: the budget ran out, or the database failed.
        """
        if self._pid != os.getpid():
            self._check_fork()
        budget = self.timeout if budget is None else budget
        deadline = time.monotonic() + budget
        if not self._lock.acquire(timeout=budget):
            raise StoreUnavailable(self._where(), f"this process's connection stayed in use by another "
                                   f"thread's call for {budget:.3f} s (the database is busy)")
        try:
            conn = self._connection()
            ms = max(0, int((deadline - time.monotonic()) * 1000))
            if ms < self._busy_ms or ms > self._busy_ms + 50:  # re-set only when it matters
                conn.execute(f"PRAGMA busy_timeout = {ms}")
                self._busy_ms = ms
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = body(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(self._where(), f"{type(exc).__name__}: {exc}") from exc
        finally:
            self._lock.release()
        return result

    # -- states ----------------------------------------------------------------------------------
    def _load(
        self, conn: sqlite3.Connection, specs: Sequence[Spec], write: bool
    ) -> tuple[list[State], list[Row | None], list[float]]:
        if len(specs) == 1:
            found = conn.execute(_LOAD_ONE, (specs[0].key,)).fetchall()
        else:
            marks = ", ".join("?" * len(specs))
            found = conn.execute(
                f"SELECT key, a, b, last, hold, seen FROM rw_state WHERE key IN ({marks})",
                [spec.key for spec in specs],
            ).fetchall()
        by_key: dict[str, Any] = {row[0]: row for row in found}
        states: list[State] = []
        rows: list[Row | None] = []
        seens: list[float] = []
        for spec in specs:
            hit = by_key.get(spec.key)
            row: Row | None = None if hit is None else (hit[1], hit[2], hit[3], hit[4])
            rows.append(row)
            seens.append(_NEG_INF if hit is None else hit[5])
            state: State
            if spec.kind == WINDOW:
                state = _SQLWindow(conn, spec.key, write, row)
            elif spec.kind == BUCKET:
                state = BucketState()
                if row is not None:
                    state.tat, state.hold = row[0], row[3]
            elif spec.kind == DAILY:
                state = DailyState()
                if row is not None:
                    state.start, state.count, state.hold = row[0], row[1], row[3]
            else:
                raise ValueError(f"SQLiteStore cannot hold a limiter of kind {spec.kind!r}")
            states.append(state)
        return states, rows, seens

    def _nows(self, seens: Sequence[float]) -> list[float]:
        t = self._clock.now()
        return [seen if seen > t else t for seen in seens]

    def _save(
        self,
        conn: sqlite3.Connection,
        specs: Sequence[Spec],
        states: Sequence[State],
        rows: Sequence[Row | None],
        seens: Sequence[float],
    ) -> None:
        for spec, state, old, seen in zip(specs, states, rows, seens):
            new = _row_of(state)
            if new != old and (old is not None or new != _FRESH[spec.kind]):
                conn.execute(_SAVE, (spec.key, *new, seen, _expires(spec, state)))

    def _sweep(self, conn: sqlite3.Connection, now: float) -> None:
        """Delete idle limiters' rows (those whose state is the same as none) every minute or so."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY
        conn.execute("DELETE FROM rw_log WHERE key IN (SELECT key FROM rw_state WHERE expires <= ?)", (now,))
        conn.execute("DELETE FROM rw_state WHERE expires <= ?", (now,))

    # -- the Store protocol ----------------------------------------------------------------------
    def acquire(self, specs: Sequence[Spec], cost: float, max_wait: float | None) -> Grant:
        """Record ``cost`` units on every member at the earliest time all allow, if within
        ``max_wait`` seconds (None: any time), in one transaction. Returns the verdict and delay.

        Raises:
            StoreUnavailable: the database stayed locked for ``timeout`` seconds, or failed.
        """

        def body(conn: sqlite3.Connection) -> Grant:
            states, rows, seens = self._load(conn, specs, True)
            nows = self._nows(seens)
            grant = _core.decide(specs, states, nows, cost, max_wait)
            self._save(conn, specs, states, rows, nows)
            self._sweep(conn, nows[0])
            return grant

        return self._run(True, body, call_budget(self.timeout, MIN_BUDGET, max_wait=max_wait))

    def wait_time(self, specs: Sequence[Spec], cost: float) -> float:
        """Exact seconds until ``cost`` could be granted on every member; writes nothing.

        Raises:
            StoreUnavailable: as ``acquire``.
        """

        def body(conn: sqlite3.Connection) -> float:
            states, _, seens = self._load(conn, specs, False)
            return max(0.0, _core.decide(specs, states, self._nows(seens), cost, None, commit=False).delay)

        return self._run(False, body)

    def cancel(self, specs: Sequence[Spec], cost: float, stamp: Stamp, *,
               within: float | None = None) -> None:
        """Undo an unused grant that ``acquire`` recorded (exact when it is the latest booking),
        taking at most ``within`` seconds (None: ``timeout``).

        Raises:
            StoreUnavailable: as ``acquire``.
        """

        def body(conn: sqlite3.Connection) -> None:
            states, rows, seens = self._load(conn, specs, True)
            _core.cancel(specs, states, cost, stamp)
            self._save(conn, specs, states, rows, seens)

        self._run(True, body, call_budget(self.timeout, MIN_BUDGET, within=within))

    def confirm(self, specs: Sequence[Spec], cost: float, stamp: Stamp, *,
                within: float | None = None) -> Grant:
        """Confirm a booked grant as its caller resumes (see ``Store.confirm``), in one transaction
        of at most ``within`` seconds (at least ``MIN_BUDGET``; None: ``timeout``).

        Raises:
            StoreUnavailable: as ``acquire``.
        """

        def body(conn: sqlite3.Connection) -> Grant:
            states, rows, seens = self._load(conn, specs, True)
            nows = self._nows(seens)
            grant = _core.confirm(specs, states, nows, cost, stamp)
            self._save(conn, specs, states, rows, nows)
            return grant

        return self._run(True, body, call_budget(self.timeout, MIN_BUDGET, within=within, confirming=True))

    def pause(self, specs: Sequence[Spec], seconds: float) -> None:
        """Grant nothing on these members for ``seconds`` seconds from now, for every process.

        Raises:
            StoreUnavailable: as ``acquire``.
        """

        def body(conn: sqlite3.Connection) -> None:
            states, rows, seens = self._load(conn, specs, True)
            nows = self._nows(seens)
            _core.pause(states, [now + seconds for now in nows])
            self._save(conn, specs, states, rows, nows)

        self._run(True, body)

    def used(self, spec: Spec) -> float:
        """Units counted now (window, day), or tokens left (bucket).

        Raises:
            StoreUnavailable: as ``acquire``.
        """

        def body(conn: sqlite3.Connection) -> float:
            states, _, seens = self._load(conn, [spec], False)
            return _core.used(spec, states[0], self._nows(seens)[0])

        return self._run(False, body)

    def available(self, specs: Sequence[Spec]) -> float:
        """Units every member could grant now without waiting.

        Raises:
            StoreUnavailable: as ``acquire``.
        """

        def body(conn: sqlite3.Connection) -> float:
            states, _, seens = self._load(conn, specs, False)
            nows = self._nows(seens)
            return min(_core.available(spec, state, now) for spec, state, now in zip(specs, states, nows))

        return self._run(False, body)

    def reset(self, specs: Sequence[Spec]) -> None:
        """Forget every grant and pause of these members.

        Raises:
            StoreUnavailable: as ``acquire``.
        """

        def body(conn: sqlite3.Connection) -> None:
            for spec in specs:
                conn.execute("DELETE FROM rw_log WHERE key = ?", (spec.key,))
                conn.execute("DELETE FROM rw_state WHERE key = ?", (spec.key,))

        self._run(True, body)

    async def acquire_async(self, specs: Sequence[Spec], cost: float, max_wait: float | None) -> Grant:
        """``acquire`` in a worker thread: waiting for another process's lock never blocks the
        event loop. Raises as ``acquire``."""
        return await asyncio.to_thread(self.acquire, specs, cost, max_wait)

    async def cancel_async(self, specs: Sequence[Spec], cost: float, stamp: Stamp, *,
                           within: float | None = None) -> None:
        """``cancel`` in a worker thread. Raises as ``cancel``."""
        await asyncio.to_thread(functools.partial(self.cancel, specs, cost, stamp, within=within))

    async def confirm_async(self, specs: Sequence[Spec], cost: float, stamp: Stamp, *,
                            within: float | None = None) -> Grant:
        """``confirm`` in a worker thread. Raises as ``confirm``."""
        return await asyncio.to_thread(functools.partial(self.confirm, specs, cost, stamp, within=within))

    # -- notes (what a Calibrator learned from responses, for every process) ------------------
    def note(self, key: str, value: str, ttl: float) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds (replacing any note of that key).

        Raises:
            StoreUnavailable: the database stayed locked for ``timeout`` seconds, or failed.
        """

        def body(conn: sqlite3.Connection) -> None:
            now = self._clock.now()
            conn.execute("DELETE FROM rw_note WHERE expires <= ?", (now,))
            conn.execute("INSERT OR REPLACE INTO rw_note (key, value, expires) VALUES (?, ?, ?)",
                         (key, value, now + ttl))

        self._run(True, body)

    def read_note(self, key: str) -> str | None:
        """The note under ``key``, or None if there is none (or it expired).

        Raises:
            StoreUnavailable: the database stayed locked for ``timeout`` seconds, or failed.
        """

        def body(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM rw_note WHERE key = ? AND expires > ?",
                               (key, self._clock.now())).fetchone()
            return None if row is None else str(row[0])

        return self._run(False, body)

    # -- lifecycle -------------------------------------------------------------------------------
    # -- leases (ConcurrencyLimit) ---------------------------------------------------------------
    def lease(self, spec: Spec, lease_id: str, limit: int) -> float:
        """Take a ``ConcurrencyLimit`` slot for ``spec.span`` seconds if fewer than ``limit`` are held,
        in one transaction: 0.0 if taken, else seconds until the earliest lease expires."""

        def body(conn: sqlite3.Connection) -> float:
            now = self._clock.now()
            conn.execute("DELETE FROM rw_lease WHERE key = ? AND expires <= ?", (spec.key, now))
            held, first = conn.execute(
                "SELECT COUNT(*), MIN(expires) FROM rw_lease WHERE key = ?", (spec.key,)
            ).fetchone()
            if held < limit:
                conn.execute("INSERT INTO rw_lease VALUES (?, ?, ?)", (spec.key, lease_id, now + spec.span))
                return 0.0
            return max(float(first) - now, 1e-9)

        return self._run(True, body)

    def release(self, spec: Spec, lease_id: str) -> None:
        """Give a slot back (no effect if it expired or was released)."""

        def body(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM rw_lease WHERE key = ? AND id = ?", (spec.key, lease_id))

        self._run(True, body)

    def leases(self, spec: Spec) -> int:
        """Live leases now."""

        def body(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM rw_lease WHERE key = ? AND expires <= ?", (spec.key, self._clock.now()))
            return int(conn.execute("SELECT COUNT(*) FROM rw_lease WHERE key = ?", (spec.key,)).fetchone()[0])

        return self._run(True, body)

    async def lease_async(self, spec: Spec, lease_id: str, limit: int) -> float:
        """``lease`` in a worker thread (another process's lock never blocks the event loop)."""
        return await asyncio.to_thread(self.lease, spec, lease_id, limit)

    async def release_async(self, spec: Spec, lease_id: str) -> None:
        """``release`` in a worker thread."""
        await asyncio.to_thread(self.release, spec, lease_id)

    def close(self) -> None:
        """Close this process's connection (a later call opens a new one)."""
        if self._pid != os.getpid():
            self._check_fork()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __del__(self) -> None:
        # A store dropped without close(): close this process's connection now, as sqlite3 itself
        # asks (Python 3.13 warns about a connection left to the garbage collector). A forked
        # child never closes its parent's connection.
        conn = getattr(self, "_conn", None)
        if conn is not None and getattr(self, "_pid", -1) == os.getpid():
            conn.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

