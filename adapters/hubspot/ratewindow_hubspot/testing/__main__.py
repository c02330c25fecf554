"""Run :class:`FakeHubSpot` standalone: ``python -m ratewindow_hubspot.testing --port 8089``.

Prints the base URL and how to authenticate, then serves until interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence

from ._limits import TIERS
from ._server import FakeHubSpot


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
        prog="python -m ratewindow_hubspot.testing",
        description="Serve a local fake of HubSpot's CRM API with HubSpot's rate limits.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8089, help="TCP port, 0 for any free one (default 8089)")
    parser.add_argument("--tier", choices=sorted(TIERS), default="professional", help="limit preset")
    parser.add_argument("--window-limit", type=int, help="requests per rolling window per token")
    parser.add_argument("--daily-limit", type=int, help="requests per day per account")
    parser.add_argument("--time-zone", default="UTC", help="account time zone for the daily reset")
    parser.add_argument("--search-per-second", type=int, default=5, help="search requests per second")
    parser.add_argument(
        "--time-scale", type=float, default=None, help="time scale of the windows (0.1: 10 s -> 1 s)"
    )
    parser.add_argument("--scale", type=float, default=None, help=argparse.SUPPRESS)  # deprecated
    parser.add_argument("--latency", nargs="+", default=["0"], metavar=("LOW", "HIGH"),
                        help="seconds per response: SECONDS, or LOW HIGH for a uniform jitter")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the latency jitter")
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        help="accepted bearer token (repeatable); default: any non-empty token",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, stop_event: threading.Event | None = None) -> int:
    """Entry point; returns the exit status. ``stop_event`` ends serving (for embedding)."""
    parser = _parser()
    args = parser.parse_args(argv)
    latency = _latency(args.latency, parser)
    time_scale = args.time_scale
    if args.scale is not None:
        print(f"deprecated: --scale {args.scale:g}; write --time-scale {args.scale:g}", file=sys.stderr)
        time_scale = args.scale if time_scale is None else time_scale
    fake = FakeHubSpot(
        host=args.host,
        port=args.port,
        tier=args.tier,
        window_limit=args.window_limit,
        daily_limit=args.daily_limit,
        time_zone=args.time_zone,
        search_per_second=args.search_per_second,
        time_scale=1.0 if time_scale is None else time_scale,
        latency=latency,
        seed=args.seed,
        tokens=args.tokens,
    )
    stop = stop_event or threading.Event()
    with fake:
        hint = (
            f"{len(args.tokens)} configured token(s) accepted (values not shown)"
            if args.tokens
            else "any non-empty bearer token is accepted"
        )
        print(f"FakeHubSpot serving at {fake.url}", flush=True)
        print(f"  auth: 'Authorization: Bearer <token>'; {hint}", flush=True)
        print(
            f"  limits: {fake.window_limit} per {fake.effective_window_seconds:g} s per token, "
            f"daily {fake.daily_limit if fake.daily_limit is not None else 'none'} ({fake.time_zone}), "
            f"search {fake.search_per_second} per {fake.time_scale:g} s",
            flush=True,
        )
        print(f"  SDK: hubspot.HubSpot(access_token='<token>', host='{fake.url}')", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            print("stopping", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
