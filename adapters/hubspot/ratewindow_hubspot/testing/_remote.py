"""``RemoteFakeHubSpot``: a ``FakeHubSpot`` served by a child process.

A fake in the client's own process stamps arrivals on threads that compete for the GIL with the
client's workers, so under load its arrival times drift by milliseconds and it can see a window
the real server would not. In a child process, arrivals are stamped by an otherwise idle
interpreter, as a real server would stamp them. The parent drives the child over its stdin
("stats", "reset") and reads one JSON line back per command.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from typing import Any

from ._server import FakeHubSpot
from ._stats import RequestRecord

__all__ = ["RemoteFakeHubSpot"]


class RemoteFakeHubSpot:
    """Run ``FakeHubSpot(**kwargs)`` in a child process; a context manager.

    For tests that measure timing at the full limit: the child's otherwise idle interpreter stamps
    each arrival as HubSpot's server would, while a fake in the test's own process competes for
    the GIL with the client's threads and can see windows the real server would not. ``url`` is
    the base URL once started; ``records()`` returns every request answered so far (the
    :class:`RequestRecord` values of ``FakeHubSpot.stats.records``) and ``reset()`` forgets them
    and the limits' state. ``kwargs`` are ``FakeHubSpot``'s and must be JSON values (a
    ``latency`` tuple may be given as a list); there is no ``clock=``: the child runs on real time.

    >>> with RemoteFakeHubSpot(time_scale=0.1, latency=[0.02, 0.04]) as fake:  # doctest: +SKIP
    ...     client = hubspot.HubSpot(access_token="t", host=fake.url)
    ...     records = fake.records()
    """

    def __init__(self, **kwargs: Any) -> None:
        self._config = json.dumps(kwargs)
        self._process: subprocess.Popen[str] | None = None
        #: Base URL of the fake, set once started.
        self.url = ""

    def start(self) -> RemoteFakeHubSpot:
        """Start the child and wait for its URL. Raises RuntimeError if it does not start."""
        self._process = subprocess.Popen(
            # ``-c``, not ``-m ...testing._remote``: the package imports this module first, and
            # runpy would warn (RuntimeWarning) on every start.
            [sys.executable, "-c", _CHILD, self._config],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.stop()
            raise RuntimeError("the fake's child process did not start")
        return self

    def _ask(self, command: str) -> str:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise RuntimeError("the fake is not running")
        process.stdin.write(command + "\n")
        process.stdin.flush()
        return process.stdout.readline()

    def records(self) -> list[RequestRecord]:
        """Every request the fake answered so far, in arrival order."""
        return [RequestRecord(**fields) for fields in json.loads(self._ask("stats"))]

    def reset(self) -> None:
        """Forget the recorded requests and the limits' state."""
        self._ask("reset")

    def stop(self) -> None:
        """Stop the child (idempotent)."""
        process, self._process = self._process, None
        if process is not None:
            assert process.stdin is not None
            process.stdin.close()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def __enter__(self) -> RemoteFakeHubSpot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: What the child process runs.
_CHILD = ("import json, sys; from ratewindow_hubspot.testing._remote import _serve; "
          "_serve(json.loads(sys.argv[1]))")


def _serve(config: dict[str, Any]) -> None:
    if isinstance(config.get("latency"), list):
        config["latency"] = tuple(config["latency"])
    with FakeHubSpot(**config) as fake:
        print(fake.url, flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                print(json.dumps([dataclasses.asdict(r) for r in fake.stats.records]), flush=True)
            elif command == "reset":
                fake.reset_stats()
                fake.reset_limits()
                print("ok", flush=True)


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
