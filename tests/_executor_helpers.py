"""Shared by the executor tests: HTTP-like errors, a limiter that records its pauses, counting."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from ratewindow import SlidingWindow


class Response:
    """The part of a requests/httpx response that error classifiers read."""

    def __init__(self, status_code: int, headers: Mapping[str, str] | None = None) -> None:
        self.status_code = status_code
        self.headers = dict(headers or {})


class HTTPError(Exception):
    """Like ``requests.HTTPError``: the status lives on ``.response``."""

    def __init__(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status, headers)


class ApiError(Exception):
    """Like an SDK's error: ``.status`` and, optionally, ``.retry_after`` seconds."""

    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"status {status}")
        self.status = status
        self.retry_after = retry_after


class RecordingWindow(SlidingWindow):
    """A real ``SlidingWindow`` that also remembers each ``pause`` and signals the first."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.pauses: list[float] = []
        self.paused = threading.Event()

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        self.pauses.append(seconds)
        self.paused.set()


def peak_in_window(times: Iterable[float], window: float) -> int:
    """The most of ``times`` inside any half-open interval [t, t + window)."""
    ordered = sorted(times)
    best = 0
    first = 0
    for last, t in enumerate(ordered):
        while ordered[first] + window <= t:
            first += 1
        best = max(best, last - first + 1)
    return best
