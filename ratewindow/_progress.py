"""The executor's tqdm progress bar: rate, ETA, and ok / failed / retried / throttled counts.

On a terminal it redraws in place. Elsewhere (CI logs, files) it writes one plain ASCII line at
most every ``_LOG_INTERVAL`` seconds, instead of carriage-return redraws that logs show as one
endless line. It never starts tqdm's monitor thread, so an executor leaves no thread behind.
"""

from __future__ import annotations

import functools
import sys
from typing import IO, Any

from ratewindow._clock import MonotonicClock

__all__ = ["Progress"]

_TTY_INTERVAL = 0.1  # seconds between redraws on a terminal
_LOG_INTERVAL = 10.0  # seconds between lines when not on a terminal


@functools.lru_cache(maxsize=1)
def _bar_class() -> Any:
    """tqdm without its monitor thread; imported on first use, so ``import ratewindow`` stays fast."""
    from tqdm import tqdm

    class _Bar(tqdm):  # type: ignore[misc]  # tqdm has no type hints
        monitor_interval = 0  # no TMonitor thread (a class attribute: read per class, not global)

    return _Bar


class _Lines:
    """A file for tqdm that turns each redraw into one line (for logs that are not terminals)."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self._file.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self._file.flush()


class Progress:
    """One bar for one ``map``/``imap`` call; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int | None, desc: str | None,
                 file: IO[str] | None = None) -> None:
        self.ok = 0
        self.failed = 0
        self.not_run = 0
        self.resumed = 0
        self._clock = MonotonicClock()  # display cadence is real time, whatever clock runs the work
        self._last_refresh = self._clock.now()
        self._bar: Any = None
        if not enabled:
            return
        out = file if file is not None else sys.stderr
        try:
            tty = bool(out.isatty())
        except (AttributeError, ValueError):
            tty = False
        options: dict[str, Any] = {
            "total": total,
            "desc": desc,
            "unit": "item",
            "dynamic_ncols": tty,
            "smoothing": 0.1,
        }
        if tty:
            options.update(file=out, mininterval=_TTY_INTERVAL)
        else:
            options.update(file=_Lines(out), mininterval=_LOG_INTERVAL, ascii=True, ncols=110)
        self._interval: float = options["mininterval"]
        self._bar = _bar_class()(**options)

    def update(self, kind: str, retries: int, throttled: int, paused: float) -> None:
        """Count one outcome: ``kind`` is "ok", "failed", "not_run" or "resumed"."""
        setattr(self, kind, getattr(self, kind) + 1)
        bar = self._bar
        if bar is None:
            return
        bar.set_postfix_str(self._postfix(retries, throttled, paused), refresh=False)
        bar.update(1)

    def tick(self, retries: int, throttled: int, paused: float) -> None:
        """Redraw while nothing finishes (a long pause), so the run never looks stuck."""
        bar = self._bar
        if bar is None:
            return
        now = self._clock.now()
        if now - self._last_refresh >= self._interval:
            self._last_refresh = now
            bar.set_postfix_str(self._postfix(retries, throttled, paused), refresh=False)
            bar.refresh()

    def _postfix(self, retries: int, throttled: int, paused: float) -> str:
        text = f"ok={self.ok} failed={self.failed} retried={retries} throttled={throttled}"
        if self.resumed:
            text += f" resumed={self.resumed}"
        if self.not_run:
            text += f" not_run={self.not_run}"
        if paused > 0:
            text += f" paused={paused:.0f}s"
        return text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
