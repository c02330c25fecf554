"""Run the README code blocks as a reader would: in order, in one namespace, from an empty directory.

``tests/test_readme.py`` collects every ```` ```python ```` block of README.md and the adapters'
READMEs and runs each file's blocks with this module in a child process (``python _snippets.py
PLAN.json RESULTS.jsonl``), which writes one JSON line per block to RESULTS.jsonl: ``{"index",
"status", "error"}`` with status ``ok``, ``failed`` or ``skipped`` (the blocks' own output goes to
stdout and stderr).

A block may be preceded by an HTML comment that readers do not see::

    <!-- snippet fixtures="hubspot" -->

naming the hidden setup it needs, run once per file, just before the first block that names it.
What a block shows is run exactly as written; a fixture only supplies what a real reader has and
the test machine does not (a token, a server to talk to). The fixtures:

- ``hubspot``: a ``FakeHubSpot`` (HubSpot Professional's limits); ``TOKEN`` (a token it accepts),
  ``contact_id``, ``call_ids`` (10 calls) and ``ids`` (every engagement id by type) from its data;
  ``ratewindow_hubspot.client()`` sends to the fake unless given ``host=``.
- ``salesforce``: a ``FakeSalesforce``; ``access_token`` (a session id it accepts);
  ``ratewindow_salesforce.client()`` sends to that fake whatever org ``instance_url`` names (not a
  fake on 127.0.0.1 the block started itself), over a session that trusts the fake's throw-away
  CA (``fake.session()``).
- ``executor``: ``engagement_ids`` (20 ids) and ``fetch_associations(engagement_id)``, which returns
  a small dict, as the seed pipelines' function does.
- ``redis``: ``RedisStore("redis://cache:6379/0")`` opens the test's Redis server (``REDIS_URL`` or a
  private ``redis-server``; keys under a unique prefix); ``portal_id``. Without Redis the block is
  skipped (failed under ``CI=true``), as the Redis tests are.
- ``metrics``: ``PrometheusMetrics.serve(port)`` listens on a free port instead of ``port`` (two
  test runs on one machine must not race for 9108).

``xfail="REASON"`` with ``match="REGEX"`` marks a block known to fail for a tracked reason: the
test then fails unless the block fails with an error matching REGEX, and fails (XPASS, strict)
once the block runs, so the mark is removed when the fix lands.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import traceback
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

REDIS_ENV = "RATEWINDOW_SNIPPETS_REDIS_URL"


class Skip(Exception):
    """A fixture cannot be set up here (e.g. no Redis): skip the blocks that need it."""


def _hubspot(namespace: dict[str, Any], stack: contextlib.ExitStack) -> None:
    import ratewindow_hubspot
    from ratewindow_hubspot.testing import ENGAGEMENT_TYPES, FakeHubSpot

    fake = stack.enter_context(FakeHubSpot(tier="professional"))
    real = ratewindow_hubspot.client

    @functools.wraps(real)
    def client(*args: Any, host: str | None = None, **kwargs: Any) -> Any:
        return real(*args, host=fake.url if host is None else host, **kwargs)

    ratewindow_hubspot.client = client
    stack.callback(setattr, ratewindow_hubspot, "client", real)
    namespace.update(
        TOKEN="pat-na1-00000000-docs-example",
        contact_id=fake.dataset.ids("contacts")[0],
        call_ids=fake.dataset.ids("calls")[:10],
        ids={kind: fake.dataset.ids(kind) for kind in ENGAGEMENT_TYPES},
    )


def _salesforce(namespace: dict[str, Any], stack: contextlib.ExitStack) -> None:
    import ratewindow_salesforce
    from ratewindow_salesforce.testing import FakeSalesforce

    fake = stack.enter_context(FakeSalesforce())
    real = ratewindow_salesforce.client

    @functools.wraps(real)
    def client(*, instance_url: str, session: Any = None, **kwargs: Any) -> Any:
        if urlsplit(instance_url).hostname == "127.0.0.1":  # a fake the block started itself
            return real(instance_url=instance_url, session=session, **kwargs)
        if session is None:  # the reader's org; here, the fixture's fake
            session = stack.enter_context(fake.session())
        return real(instance_url=fake.instance_url, session=session, **kwargs)

    ratewindow_salesforce.client = client
    stack.callback(setattr, ratewindow_salesforce, "client", real)
    namespace["access_token"] = fake.session_id


def _executor(namespace: dict[str, Any], stack: contextlib.ExitStack) -> None:
    def fetch_associations(engagement_id: str) -> dict[str, list[str]]:
        return {"contacts": [f"{engagement_id}-contact"], "companies": [], "deals": []}

    namespace.update(engagement_ids=[f"engagement-{i}" for i in range(20)],
                     fetch_associations=fetch_associations)


def _redis(namespace: dict[str, Any], stack: contextlib.ExitStack) -> None:
    url = os.environ.get(REDIS_ENV)
    if not url:
        raise Skip("no Redis for the snippets (REDIS_URL unset and redis-server not on PATH)")
    import ratewindow
    import ratewindow.stores

    real = ratewindow.RedisStore
    prefix = f"snippets-{uuid.uuid4().hex[:12]}:"

    class RedisStore(real):
        """The README's ``redis://cache:6379/0`` is the test's Redis server."""

        def __init__(self, client_or_url: Any, **kwargs: Any) -> None:
            super().__init__(url, **{"prefix": prefix, **kwargs})

    for module in (ratewindow, ratewindow.stores):
        module.RedisStore = RedisStore
        stack.callback(setattr, module, "RedisStore", real)
    namespace["portal_id"] = 42


def _metrics(namespace: dict[str, Any], stack: contextlib.ExitStack) -> None:
    from ratewindow.metrics import PrometheusMetrics

    real = PrometheusMetrics.serve

    def serve(self: PrometheusMetrics, port: int, addr: str = "127.0.0.1") -> Any:
        server = real(self, 0, addr)  # any free port, not ``port``
        stack.callback(server.shutdown)
        return server

    PrometheusMetrics.serve = serve
    stack.callback(setattr, PrometheusMetrics, "serve", real)


FIXTURES: dict[str, Callable[[dict[str, Any], contextlib.ExitStack], None]] = {
    "hubspot": _hubspot, "salesforce": _salesforce, "executor": _executor, "redis": _redis,
    "metrics": _metrics,
}


def run(blocks: list[dict[str, Any]], results: Any) -> None:
    """Run ``blocks`` ({"code", "fixtures", "name", "line"}) in order in one namespace; one JSON line
    each to ``results``. Tracebacks show the README's own file name and line numbers."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    ready: dict[str, str | None] = {}  # fixture -> None when set up, else why it was skipped
    with contextlib.ExitStack() as stack:
        for index, block in enumerate(blocks):
            status, error = "ok", ""
            try:
                for name in block["fixtures"]:
                    if name not in ready:
                        try:
                            FIXTURES[name](namespace, stack)
                            ready[name] = None
                        except Skip as exc:
                            ready[name] = str(exc)
                    if ready[name] is not None:
                        raise Skip(ready[name])
                code = compile("\n" * block["line"] + block["code"], block["name"], "exec")
                exec(code, namespace)
            except Skip as exc:
                status, error = "skipped", str(exc)
            except BaseException:  # report every failure, even SystemExit
                status, error = "failed", traceback.format_exc()
            results.write(json.dumps({"index": index, "status": status, "error": error}) + "\n")
            results.flush()


if __name__ == "__main__":
    with open(sys.argv[1]) as plan, open(sys.argv[2], "w") as out:
        run(json.load(plan), out)
