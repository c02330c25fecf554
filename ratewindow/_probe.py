"""``Probe``: until a budget is known, only a few requests go out (the rest wait for their answers)."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from ratewindow._clock import MonotonicClock

__all__ = ["Probe"]


class Probe:
    """Until a budget is known, at most ``size`` requests go out at once; the others wait.

    ``enter`` returns True to a caller that may go as a probe (it must ``leave`` when its
    response came, or failed); False once the budget is known, or when the wait ran out (the
    caller goes anyway). ``leave(learned=True)`` or ``done()`` makes the budget known and lets
    every waiter go; ``leave(learned=False)`` frees the slot for the next probe.

    >>> probe = Probe(1)
    >>> probe.enter(), probe.enter(timeout=0.0)
    (True, False)
    >>> probe.leave(learned=True); probe.known
    True
    """

    def __init__(self, size: int = 1) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"size must be an int >= 0, got {size!r}")
        self.size = size
        self._cond = threading.Condition()
        self._known = size == 0
        self._out = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    @property
    def known(self) -> bool:
        """Whether the budget is known (probing is over)."""
        return self._known

    def enter(self, timeout: float | None = None) -> bool:
        """Wait until the caller may go, at most ``timeout`` seconds (None: as long as needed).
        True: it goes as a probe and must call ``leave``."""
        if self._known:
            return False
        clock = MonotonicClock()
        deadline = None if timeout is None else clock.now() + timeout
        with self._cond:
            while not self._known:
                if self._out < self.size:
                    self._out += 1
                    return True
                left = None if deadline is None else deadline - clock.now()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return False

    async def enter_async(self, timeout: float | None = None) -> bool:
        """``enter`` without blocking the event loop."""
        if self._known:
            return False
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            with self._cond:
                if self._known:
                    return False
                if self._out < self.size:
                    self._out += 1
                    return True
                event = asyncio.Event()
                self._waiters.append((loop, event))
            left = None if deadline is None else deadline - loop.time()
            try:
                if left is not None and left <= 0:
                    raise asyncio.TimeoutError
                await asyncio.wait_for(event.wait(), left)
            except asyncio.TimeoutError:
                with self._cond:
                    if (loop, event) in self._waiters:
                        self._waiters.remove((loop, event))
                return False

    def leave(self, learned: bool) -> None:
        """A probe's response came (``learned``: it showed the budget) or it failed."""
        with self._cond:
            self._out = max(0, self._out - 1)
            if learned:
                self._known = True
            self._wake()

    def done(self) -> None:
        """The budget is known: let every waiter go."""
        with self._cond:
            self._known = True
            self._wake()

    def _wake(self) -> None:
        self._cond.notify_all()
        waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed
                loop.call_soon_threadsafe(event.set)

    def __repr__(self) -> str:
        return f"Probe(size={self.size}, known={self._known}, out={self._out})"
