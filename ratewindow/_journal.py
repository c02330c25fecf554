"""The run journal: one JSON line per finished item, so an interrupted run can resume.

Format (one object per line, UTF-8)::

    {"key": "eng-42", "ok": true, "value": {...}, "attempts": 1, "elapsed": 0.31}
    {"key": "eng-43", "ok": false, "error": "HTTPError: 404 ...", "attempts": 1, "elapsed": 0.12}

Each line is written with one ``write`` and flushed to the operating system at once, so a process
killed with SIGKILL loses nothing it had reported. Lines are not fsynced: an fsync per item would
cost milliseconds on most disks and cap the run's speed, and only a crash of the machine itself
(not of the process) can lose flushed lines. A line cut short by a kill in the middle of a write
is ignored when the journal is read back, and cut off before new lines are appended.
"""

from __future__ import annotations

import json
import logging
import os
from typing import IO, Any

__all__ = ["Journal", "key_text"]

_log = logging.getLogger("ratewindow")


def key_text(key: object) -> str:
    """The canonical text of a journal key (its compact JSON).

    Raises:
        TypeError: ``key`` is not JSON-serialisable.
    """
    try:
        return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"journal keys must be JSON-serialisable (str, int, or lists and dicts of them), got {key!r}"
        ) from exc


class Journal:
    """An append-only JSON-lines file of finished outcomes. Not safe for two writers at once.

    Args:
        path: the journal file; created if missing.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        #: The journal file.
        self.path = os.fspath(path)
        self._file: IO[str] | None = None
        self._good_size = 0  # bytes up to the end of the last whole record
        self._needs_newline = False  # the last record lacks only its newline

    def load(self) -> dict[str, dict[str, Any]]:
        """Read the journal: key text -> the record of each key that succeeded.

        A last line without its newline that does not parse is a write cut short by a kill: it
        is ignored. Any other line that does not parse is skipped with a warning.
        """
        done: dict[str, dict[str, Any]] = {}
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
                except ValueError:
                    if complete:
                        _log.warning("journal %s: line %d is not a record; skipped", self.path, number)
                        self._good_size += len(raw)
                    else:
                        _log.warning(
                            "journal %s: ignoring the last line, cut short (the writer was killed)",
                            self.path,
                        )
                    continue
                self._good_size += len(raw)
                self._needs_newline = not complete
                if record.get("ok") is True:
                    done[key_text(record["key"])] = record
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
        self._file = open(self.path, "a", encoding="utf-8", newline="\n")  # noqa: SIM115

    def append(self, key: object, ok: bool, value: object, error: BaseException | None, attempts: int,
               elapsed: float) -> None:
        """Append one finished outcome and flush it to the operating system.

        Raises:
            TypeError: ``value`` (on success) is not JSON-serialisable; nothing was written.
        """
        assert self._file is not None, "open() the journal first"
        record: dict[str, Any] = {"key": key, "ok": ok}
        if ok:
            record["value"] = value
        else:
            record["error"] = f"{type(error).__name__}: {error}"
        record["attempts"] = attempts
        record["elapsed"] = round(elapsed, 6)
        try:
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"journal: the value for key {key!r} is not JSON-serialisable "
                f"({type(value).__name__}); return plain data (dict, list, str, number, bool, None) "
                "or run without a journal"
            ) from exc
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __repr__(self) -> str:
        return f"Journal(path={self.path!r})"
