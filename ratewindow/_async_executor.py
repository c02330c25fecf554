"""``AsyncRateLimitedExecutor``: ``RateLimitedExecutor`` for coroutine functions, on one event loop.

The same engine (``_Engine``) decides retries, pauses, the circuit breaker and the quota; here
concurrency comes from asyncio tasks instead of threads. The dispatch loop is an async
generator: it starts a task per item while fewer than ``workers`` run, and yields outcomes as
the tasks finish.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable
from operator import attrgetter
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from ratewindow._budget import DEFAULT_REFUSAL_BUDGET
from ratewindow._clock import Clock
from ratewindow._errors import AcquireTimeout, QuotaExhausted
from ratewindow._executor import _DEFAULT_RETRY, _TICK, FAILED, NOT_RUN, OK, STOPPED, _Batch, _Engine
from ratewindow._limiter import Limiter
from ratewindow._outcome import Outcome
from ratewindow._retry import Retry, is_rate_limit

__all__ = ["AsyncRateLimitedExecutor"]

T = TypeVar("T")
R = TypeVar("R")
F = TypeVar("F")

_log = logging.getLogger("ratewindow")
_MAX_TASKS = 512


class _Task:
    """What the dispatch loop knows about one running item."""

    __slots__ = ("in_call", "key")

    def __init__(self, key: object) -> None:
        self.key = key
        self.in_call = False  # inside ``func``: on Ctrl-C, let it finish rather than cancel it


class AsyncRateLimitedExecutor(_Engine):
    """``RateLimitedExecutor`` for coroutine functions: the same permits, retries, shared pause,
    circuit breaker, quota handling, journal and progress bar, with asyncio tasks for workers.

    ``func`` must return an awaitable (``async def fetch(item): ...``). ``items`` may be an
    iterable or an async iterable. When the task running ``map`` is cancelled (Ctrl-C under
    ``asyncio.run`` cancels it), items waiting for a permit or a back-off are cancelled (their
    bookings given back), calls in flight finish and are journaled, then the cancellation goes
    on; a second cancellation cancels the calls in flight too.

    Args:
        limiter: as for ``RateLimitedExecutor``.
        max_concurrency: most items in flight. None: sized by Little's law from the limiter's
            rate and the measured seconds per call, between 1 and 512 (``min(32, cpu count + 4)``
            if the rate is unknown).
        retry, progress, clock, max_wait, breaker, refusal_budget: as for ``RateLimitedExecutor``.

    Raises:
        ValueError, TypeError: a bad argument, named in the message.

    >>> import asyncio
    >>> from ratewindow import AsyncRateLimitedExecutor, TokenBucket
    >>> async def shout(word: str) -> str:
    ...     return word.upper()
    >>> async def main() -> list[str]:
    ...     async with AsyncRateLimitedExecutor(TokenBucket(10.0, 10), progress=False) as executor:
    ...         return [o.value for o in await executor.map(shout, ["a", "b"])]
    >>> asyncio.run(main())
    ['A', 'B']
    """

    _noun = "concurrent tasks"
    _size_name = "max_concurrency"
    _cap = _MAX_TASKS

    def __init__(
        self,
        limiter: Limiter | None,
        *,
        max_concurrency: int | None = None,
        retry: Retry = _DEFAULT_RETRY,
        progress: bool = True,
        clock: Clock | None = None,
        max_wait: float = 60.0,
        breaker: int | None = 10,
        refusal_budget: float | None = DEFAULT_REFUSAL_BUDGET,
    ) -> None:
        super().__init__(limiter, size=max_concurrency, retry=retry, progress=progress, clock=clock,
                         max_wait=max_wait, breaker=breaker, refusal_budget=refusal_budget)
        self._closed = False

    # -- public API -----------------------------------------------------------------------------
    async def map(self, func: Callable[[T], Awaitable[R]], items: Iterable[T] | AsyncIterable[T], *,
                  desc: str | None = None, key: Callable[[T], object] | None = None,
                  journal: str | os.PathLike[str] | None = None) -> list[Outcome[T, R]]:
        """Run ``await func(item)`` for every item; one ``Outcome`` per item, in input order.

        Arguments and journal semantics as ``RateLimitedExecutor.map``.

        Raises:
            asyncio.CancelledError: re-raised after the calls in flight finished and were
                journaled.
            TypeError: a journal key is not JSON-serialisable (a value that cannot be journaled
                fails its item with ``JournalError`` instead).
            RuntimeError: the executor is closed.
            Exception: whatever iterating ``items`` or calling ``key`` raised.
        """
        outcomes = [outcome async for outcome in self.imap(func, items, desc=desc, key=key, journal=journal)]
        outcomes.sort(key=attrgetter("index"))
        return outcomes

    def imap(self, func: Callable[[T], Awaitable[R]], items: Iterable[T] | AsyncIterable[T], *,
             desc: str | None = None, key: Callable[[T], object] | None = None,
             journal: str | os.PathLike[str] | None = None) -> AsyncIterator[Outcome[T, R]]:
        """An async iterator of outcomes as they finish; items are pulled only as tasks free up.

        Closing it early (``break`` then ``aclose()``) stops dispatching, lets the calls in flight
        finish, and journals them. Raises as ``map``.
        """
        if self._closed:
            raise RuntimeError("this AsyncRateLimitedExecutor is closed")
        self._check_call(func, key)
        return self._iterate(func, items, desc, key, journal)

    async def aclose(self) -> None:
        """Refuse new batches. There are no threads to join; idempotent."""
        self._closed = True

    async def __aenter__(self) -> AsyncRateLimitedExecutor:
        if self._closed:
            raise RuntimeError("this AsyncRateLimitedExecutor is closed")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return (
            f"AsyncRateLimitedExecutor(limiter={self.limiter!r}, concurrency={self._sizer.target}, "
            f"retry={self.retry!r}, max_wait={self.max_wait!r}, breaker={self.breaker!r}, "
            f"closed={self._closed})"
        )

    # -- the dispatch loop ----------------------------------------------------------------------
    async def _iterate(self, func: Callable[[T], Awaitable[R]], items: Iterable[T] | AsyncIterable[T],
                       desc: str | None, key: Callable[[T], object] | None,
                       journal: str | os.PathLike[str] | None) -> AsyncIterator[Outcome[T, R]]:
        batch, done = self._open(func, items, desc, key, journal)
        running: dict[asyncio.Task[tuple[str, Outcome[T, R] | None]], _Task] = {}
        finished: _Finished[asyncio.Task[tuple[str, Outcome[T, R] | None]]] = _Finished()
        try:
            if isinstance(items, AsyncIterable):
                source_async: AsyncIterator[T] | None = items.__aiter__()
                source_sync = None
            else:
                source_async, source_sync = None, iter(items)
            index = 0
            exhausted = False
            while True:
                while not exhausted and len(running) < self._sizer.target:
                    try:
                        if source_async is not None:
                            item = await source_async.__anext__()
                        else:
                            assert source_sync is not None
                            item = next(source_sync)
                    except (StopIteration, StopAsyncIteration):
                        exhausted = True
                        break
                    position, index = index, index + 1
                    item_key, outcome = self._resumed(batch, done, position, item)
                    if outcome is None:
                        error = batch.not_run_error()
                        if error is None:
                            state = _Task(item_key)
                            task = asyncio.create_task(self._process(batch, state, position, item))
                            running[task] = state
                            task.add_done_callback(finished.append)
                            continue
                        outcome = self._record(batch, NOT_RUN, Outcome(position, item, None, error),
                                               item_key)
                    else:
                        outcome = self._record(batch, OK, outcome, item_key)
                    yield outcome
                if not running:
                    break
                if not finished.items and not await finished.wait(_TICK):
                    self._tick(batch)
                    continue
                task = finished.items.popleft()
                state = running.pop(task)
                kind, outcome = task.result()
                if kind == STOPPED or outcome is None:  # only after _stop; defensive
                    continue
                outcome = self._record(batch, kind, outcome, state.key)
                yield outcome
        except BaseException as exc:
            await self._stop(batch, running, interrupted=not isinstance(exc, GeneratorExit))
            raise
        finally:
            self._close(batch)

    async def _stop(self, batch: _Batch[Any, Any], running: dict[asyncio.Task[Any], _Task],
                    interrupted: bool) -> None:
        """Stop dispatching: cancel the items not yet calling ``func``, let the calls in flight
        finish, and journal every item that finished."""
        batch.stop.set()
        for task, state in running.items():
            if not state.in_call:
                task.cancel()
        in_call = sum(state.in_call for state in running.values())
        if interrupted and in_call:
            _log.warning("executor: cancelled; waiting for %d call(s) in flight to finish", in_call)
        try:
            if running:
                await asyncio.wait(list(running))
        except BaseException:  # cancelled again: do not wait for the calls either
            for task in running:
                task.cancel()
            _log.warning("executor: stopped without waiting for the calls in flight")
            raise
        finally:
            for task, state in running.items():
                if not task.done() or task.cancelled():
                    continue
                if task.exception() is not None:
                    _log.error("executor: internal error", exc_info=task.exception())
                    continue
                kind, outcome = task.result()
                if kind in (OK, FAILED) and outcome is not None:
                    self._record(batch, kind, outcome, state.key)

    # -- one item -------------------------------------------------------------------------------
    async def _permit(self) -> None:
        """Wait out any shared pause, then take one permit (cancellation gives the booking back).

        Raises:
            AcquireTimeout: the permit is more than ``max_wait`` seconds away; nothing recorded.
        """
        clock = self._clock
        begin = clock.now()
        limiter = self.limiter
        while True:
            hold = self._hold_until - clock.now()
            if hold > self.max_wait:
                raise AcquireTimeout(hold, limiter.name if limiter is not None else "server")
            if hold > 0:
                await clock.asleep(hold)
            if limiter is None:
                break
            await limiter.acquire_async(timeout=self.max_wait)
            if self._hold_until <= clock.now():
                break
        waited = clock.now() - begin
        if waited > 0:
            self._telemetry.add("permit_wait", waited)

    async def _process(self, batch: _Batch[T, R], state: _Task, index: int, item: T
                       ) -> tuple[str, Outcome[T, R] | None]:
        clock = self._clock
        started = clock.now()
        attempts = 0
        tries = 0
        while True:
            if batch.stop.is_set():
                return STOPPED, None
            if attempts == 0:
                error = batch.not_run_error()
                if error is not None:
                    return NOT_RUN, Outcome(index, item, None, error, 0, clock.now() - started)
            try:
                await self._permit()
            except AcquireTimeout as exc:
                error = self._permit_timeout(batch, exc)
                return (FAILED if attempts else NOT_RUN), Outcome(index, item, None, error, attempts,
                                                                  clock.now() - started)
            except Exception as exc:  # e.g. StoreUnavailable: the try failed before any call
                failure: BaseException = exc
            else:
                call_start = self._telemetry.start(clock, attempts > 0)
                attempts += 1
                state.in_call = True
                try:
                    pending = batch.func(item)
                    if not inspect.isawaitable(pending):
                        raise TypeError(
                            f"func must return an awaitable (an async def function), got {pending!r}"
                        )
                    value = await cast(Awaitable[R], pending)
                except Exception as exc:
                    failure = exc
                    self._sizer.observe(clock.now() - call_start)
                    self._call_ended(batch, is_rate_limit(exc))
                else:
                    now = clock.now()
                    self._sizer.observe(now - call_start)
                    self._call_ended(batch, False)
                    batch.item_succeeded()
                    return OK, Outcome(index, item, value, None, attempts, now - started)
                finally:
                    state.in_call = False
            tries += 1
            action, delay, failure = self._after_failure(batch, failure, tries)
            if action == "fail":
                kind = FAILED if attempts or not isinstance(failure, QuotaExhausted) else NOT_RUN
                return kind, Outcome(index, item, None, failure, attempts, clock.now() - started)
            if action == "sleep":
                await clock.asleep(delay)


class _Finished(Generic[F]):
    """Finished tasks in completion order, and a way to wait for the next one with a timeout.

    (``asyncio.wait_for(queue.get(), timeout)`` can lose an item when the timeout and the item
    arrive together; waiting on a bare future cannot.)
    """

    def __init__(self) -> None:
        self.items: deque[F] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def append(self, task: F) -> None:
        self.items.append(task)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a finished task; True if one is there."""
        if not self.items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait((self._waiter,), timeout=timeout)
            finally:
                self._waiter = None
        return bool(self.items)
