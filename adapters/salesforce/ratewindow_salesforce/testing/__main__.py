"""Run a standalone FakeSalesforce: ``python -m ratewindow_salesforce.testing --port 8443``.

Prints the instance URL, a session id the fake accepts and the CA bundle to trust, then serves
until interrupted (Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import argparse
import secrets
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ratewindow_salesforce.testing._server import FakeSalesforce


def _latency(values: Sequence[str], parser: argparse.ArgumentParser) -> tuple[float, float]:
    """``--latency SECONDS`` or ``--latency LOW HIGH``, spelled the same by both fakes; FakeHubSpot's
    older ``LOW-HIGH`` still works, with a deprecation notice on stderr."""
    texts = list(values)
    if len(texts) == 1 and "-" in texts[0].lstrip("-"):
        low, _, high = texts[0].lstrip("-").partition("-")
        print(f"deprecated: --latency {texts[0]}; write --latency {low} {high}", file=sys.stderr)
        texts = [low, high]
    if len(texts) not in (1, 2):
        parser.error(f"--latency takes SECONDS or LOW HIGH, got {' '.join(values)!r}")
    try:
        bounds = (float(texts[0]), float(texts[-1]))
    except ValueError:
        parser.error(f"--latency takes SECONDS or LOW HIGH, got {' '.join(values)!r}")
    if not 0 <= bounds[0] <= bounds[1]:
        parser.error("--latency must satisfy 0 <= LOW <= HIGH")
    return bounds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ratewindow_salesforce.testing",
        description="Serve a fake Salesforce REST API on https://127.0.0.1:PORT.",
    )
    parser.add_argument("--port", type=int, default=8443, help="TCP port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--api-version", default="59.0", help="newest API version served (default 59.0)")
    parser.add_argument("--allocation", type=int, default=15_000, help="API requests per rolling 24 h")
    parser.add_argument("--concurrency-limit", type=int, default=25, help="concurrent long-running requests")
    parser.add_argument(
        "--long-running-threshold", type=float, default=20.0, help="seconds before a request is long-running"
    )
    parser.add_argument("--per-minute", type=int, default=None, help="optional cap on requests per minute")
    parser.add_argument("--latency", nargs="+", default=["0"], metavar=("LOW", "HIGH"),
                        help="seconds per response: SECONDS, or LOW HIGH for a uniform jitter")
    parser.add_argument("--time-scale", type=float, default=1.0, help="scales the day, minute and threshold")
    parser.add_argument("--seed", type=int, default=0, help="seed for data and jitter")
    parser.add_argument("--session-id", default=None, help="token to accept (default: a random one)")
    parser.add_argument("--job-polls", type=int, default=2,
                        help="status requests a Bulk API 2.0 job answers before JobComplete (default 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    latency = _latency(args.latency, parser)
    session_id = args.session_id or "00DFAKE!" + secrets.token_urlsafe(24)
    fake = FakeSalesforce(
        port=args.port,
        api_version=args.api_version,
        allocation=args.allocation,
        concurrency_limit=args.concurrency_limit,
        long_running_threshold=args.long_running_threshold,
        per_minute=args.per_minute,
        latency=latency,
        time_scale=args.time_scale,
        seed=args.seed,
        session_ids=[session_id],
        job_polls=args.job_polls,
    )
    done = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with fake:
        print(f"instance_url: {fake.instance_url}")
        print(f"session_id:   {session_id}")
        print(f"ca_path:      {fake.ca_path}")
        print("Press Ctrl-C to stop.", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
