"""The run journal: one JSON line per finished item, so an interrupted run can resume.

Format (one object per line, UTF-8)::

    {"key": "eng-42", "ok": true, "value": {...}, "attempts": 1, "elapsed": 0.31}
    {"key": "eng-43", "ok": false, "error": "HTTPError: 404 ...", "attempts": 1, "elapsed": 0.12}

Each line is written with one ``write`` and flushed to the operating system at once, so a process
killed with SIGKILL loses nothing it had reported. Lines are not fsynced: an fsync per item would
cost milliseconds on most disks and cap the run's speed, and only a crash of the machine itself
(not of the process) can lose flushed lines. A line cut short by a kill in the middle of a write
is ignored when the journal is read back, and cut off before new lines are appended.

The journal is at-least-once: an outcome is written when its call has finished, so the calls in
flight when the process is killed (at most one per worker) run again on resume.

Values are written through one documented conversion (``to_jsonable``): an object with a
``to_dict()`` method becomes that dict, ``datetime``/``date``/``time`` their ISO 8601 text,
an ``Enum`` its value, a ``set``/``frozenset`` a list (sorted when its members can be), a tuple
a list (JSON's own rule). Strings that are not valid Unicode (the lone surrogates ``os.fsdecode``
gives for a file name that is not UTF-8) are written as JSON ``\\uXXXX`` escapes and read back
unchanged. Anything else that JSON cannot hold raises ``JournalError``, and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import logging
import os
from typing import IO, Any

from ratewindow._errors import JournalError

__all__ = ["Journal", "key_text", "short_repr", "to_jsonable"]

_log = logging.getLogger("ratewindow")


def to_jsonable(value: object) -> object:
    """The journal's conversion of one value JSON does not know (``json.dumps``'s ``default``).

    Returns:
        ``value.to_dict()`` for an object with a ``to_dict`` method (SDK models); the ISO 8601
        text (``isoformat()``, with the UTC offset when the value has one) of a ``datetime``,
        ``date`` or ``time``; an ``Enum``'s value; a ``set`` or ``frozenset`` as a list, sorted
        when its members can be compared. JSON then converts what these contain the same way.

    Raises:
        TypeError: ``value`` is none of these (the message names its type).

    >>> import datetime as dt
    >>> to_jsonable(dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.timezone.utc))
    '2026-03-08T07:30:00+00:00'
    >>> to_jsonable({3, 1, 2})
    [1, 2, 3]
    """
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return to_dict()
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    raise TypeError(f"a {type(value).__name__} is not JSON-serialisable")


def _why(exc: BaseException) -> str:
    """Why ``json.dumps`` failed, in words."""
    if isinstance(exc, RecursionError):
        return f"it is nested too deeply for JSON ({exc})"
    if isinstance(exc, ValueError) and "circular reference" in str(exc).lower():
        return "it refers to itself (a circular reference)"
    return str(exc) or type(exc).__name__


def key_text(key: object) -> str:
    """The canonical text of a journal key (its compact JSON, converted as values are).

    Raises:
        TypeError: ``key`` cannot be written as JSON.
    """
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=to_jsonable)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(
            f"journal keys must be JSON-serialisable (str, int, or lists and dicts of them), got "
            f"{type(key).__name__} {short_repr(key)}: {_why(exc)}"
        ) from exc


def short_repr(value: object, limit: int = 200) -> str:
    """``repr(value)``, cut to ``limit`` characters; never raises."""
    try:
        text = repr(value)
    except Exception:  # a broken __repr__ (or one too deep) must not hide the real error
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(error: BaseException | None) -> str:
    """``"Type: message"`` of a failure, even when its ``__str__`` raises."""
    name = type(error).__name__
    try:
        return f"{name}: {error}"
    except Exception as exc:
        return f"{name}: <str() raised {type(exc).__name__}>"


def _encode(record: dict[str, Any]) -> bytes:
    """One journal line as UTF-8 bytes; text that UTF-8 cannot hold is written as JSON escapes.

    Raises:
        TypeError, ValueError, RecursionError: as ``json.dumps`` (and ``to_jsonable``), or any
            exception a ``to_dict()`` raised.
    """
    line = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=to_jsonable)
    try:
        return line.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # lone surrogates: escape them (and the rest of the non-ASCII text)
        return json.dumps(record, separators=(",", ":"), default=to_jsonable).encode("ascii") + b"\n"


class Journal:
    """An append-only JSON-lines file of finished outcomes. Not safe for two writers at once.

    It is at-least-once: an outcome is appended when its call has finished, so a process killed
    (``kill -9``, a crash) while calls are in flight runs those calls (at most one per worker)
    again on resume. See the module docstring for the format and the value conversion.

    Args:
        path: the journal file; created if missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        #: The journal file.
        self.path = os.fspath(path)
        self._file: IO[bytes] | None = None
        self._good_size = 0  # bytes up to the end of the last whole record
        self._needs_newline = False  # the last record lacks only its newline

    def load(self) -> dict[str, dict[str, Any]]:
        """Read the journal: key text -> the record of each key that succeeded.

        A last line without its newline that does not parse is a write cut short by a kill: it
        is ignored. Any other line that cannot be read (not JSON, not UTF-8, nested too deeply,
        an integer too long to convert, not a record) is skipped with a warning on the
        ``"ratewindow"`` logger. When a key succeeded more than once (two items of a run shared
        a key, or a run was repeated without its journal's skips), the last record counts, and
        one warning names the keys.
        """
        done: dict[str, dict[str, Any]] = {}
        lines: dict[str, int] = {}  # key text -> line of its latest success
        repeated: dict[str, tuple[int, int]] = {}  # key text -> (first, latest) lines of success
        self._good_size = 0
        self._needs_newline = False
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 (closed below, read line by line)
        except FileNotFoundError:
            return done
        with handle:
            number = 0
            for raw in handle:
                number += 1
                complete = raw.endswith(b"\n")
                try:
                    record = json.loads(raw)
                    if not isinstance(record, dict) or "key" not in record:
                        raise ValueError("not a journal record")
                    key = key_text(record["key"]) if record.get("ok") is True else None
                except (ValueError, TypeError, RecursionError) as exc:
                    if complete:
                        _log.warning("journal %s: line %d cannot be read (%s); skipped", self.path, number,
                                     _why(exc)[:200])
                        self._good_size += len(raw)
                    else:
                        _log.warning(
                            "journal %s: ignoring the last line, cut short (the writer was killed)",
                            self.path,
                        )
                    continue
                self._good_size += len(raw)
                self._needs_newline = not complete
                if key is not None:
                    if key in lines:
                        repeated[key] = (repeated.get(key, (lines[key], 0))[0], number)
                    lines[key] = number
                    done[key] = record
        if repeated:
            key, (first, last) = next(iter(repeated.items()))
            _log.warning(
                "journal %s: %d key(s) succeeded more than once, e.g. %s (lines %d and %d); the last "
                "record of each is used. Give each item its own key (key=...)",
                self.path, len(repeated), short_repr(json.loads(key)), first, last,
            )
        return done

    def open(self) -> None:
        """Open for appending, first cutting off a torn last line (call ``load`` before)."""
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        if size > self._good_size or self._needs_newline:
            with open(self.path, "rb+") as handle:
                handle.truncate(self._good_size)  # drop a torn last line
                if self._needs_newline:  # a whole last record that lacks only its newline
                    handle.seek(0, os.SEEK_END)
                    handle.write(b"\n")
        self._file = open(self.path, "ab")  # noqa: SIM115

    def append(self, key: object, ok: bool, value: object, error: BaseException | None, attempts: int,
               elapsed: float) -> None:
        """Append one finished outcome and flush it to the operating system.

        ``value`` (on success) is converted as the module docstring says; a failure is stored as
        the text ``"ErrorType: message"``.

        Raises:
            JournalError: ``value`` cannot be written as JSON, even converted (its type, nesting
                beyond Python's recursion limit, a circular reference, a ``to_dict()`` that
                raised); nothing was written.
            OSError: the file could not be written.
        """
        assert self._file is not None, "open() the journal first"
        record: dict[str, Any] = {"key": key, "ok": ok}
        if ok:
            record["value"] = value
        else:
            record["error"] = _error_text(error)
        record["attempts"] = attempts
        record["elapsed"] = round(elapsed, 6)
        try:
            data = _encode(record)
        except Exception as exc:  # TypeError, ValueError, RecursionError, or a to_dict() that raised
            raise JournalError(key, type(value).__name__, _why(exc)) from exc
        self._file.write(data)
        self._file.flush()

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __repr__(self) -> str:
        return f"Journal(path={self.path!r})"
