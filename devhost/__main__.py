"""``python -m devhost``: serve a Functions app locally until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from devhost.host import LocalHost
from devhost.loader import AppLoadError, local_http_port
from devhost.queues import DEFAULT_LEASE_SECONDS, QueueTriggerError
from devhost.schedule import ScheduleError

DEFAULT_PORT = 7071


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devhost",
        description="Local Azure Functions host for a v2-model Python app (function_app.py).",
    )
    parser.add_argument(
        "--app-dir", default=".", help="folder holding function_app.py and host.json (default: .)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=int,
        help="port (default: Host.LocalHttpPort from local.settings.json, else 7071; 0 picks a free one)",
    )
    parser.add_argument(
        "--key",
        help="function key for FUNCTION/ADMIN routes (default: the FUNCTIONS_KEY setting, else a random one)",
    )
    parser.add_argument(
        "--timers", action="store_true", help="run timer-triggered functions on their schedule"
    )
    parser.add_argument(
        "--timer-interval",
        type=float,
        metavar="SECONDS",
        help="with --timers: run every timer function every SECONDS instead of its schedule",
    )
    parser.add_argument(
        "--queues", action="store_true", help="poll the queues of queue-triggered functions and run them"
    )
    parser.add_argument(
        "--queue-poll-interval",
        type=float,
        metavar="SECONDS",
        help="with --queues: poll an empty queue at most this far apart (default: maxPollingInterval)",
    )
    parser.add_argument(
        "--queue-lease",
        type=float,
        default=DEFAULT_LEASE_SECONDS,
        metavar="SECONDS",
        help="how long a running message stays invisible before a renewal (default 600, the host's)",
    )
    parser.add_argument(
        "--method-mismatch",
        type=int,
        choices=(404, 405),
        default=405,
        help="status for a known route called with the wrong method (Azure answers 404; default 405)",
    )
    parser.add_argument(
        "--no-local-settings", action="store_true", help="do not load local.settings.json Values"
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.timer_interval is not None and args.timer_interval <= 0:
        print("devhost: --timer-interval must be positive", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        port = args.port
        if port is None:
            port = (None if args.no_local_settings else local_http_port(Path(args.app_dir))) or DEFAULT_PORT
        host = LocalHost(
            args.app_dir,
            key=args.key,
            host=args.host,
            port=port,
            run_timers=args.timers,
            timer_interval=args.timer_interval,
            load_settings=not args.no_local_settings,
            method_mismatch_status=args.method_mismatch,
            run_queues=args.queues,
            queue_poll_interval=args.queue_poll_interval,
            queue_lease=args.queue_lease,
        )
    except (AppLoadError, ValueError) as exc:
        print(f"devhost: cannot load the app: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        host.start()
    except (OSError, ScheduleError, QueueTriggerError) as exc:
        host.stop()
        print(f"devhost: cannot start: {exc}", file=sys.stderr)
        return 1
    print(host.banner(), flush=True)
    print("\nPress Ctrl-C to stop.", flush=True)
    while not stop.wait(0.5):
        pass
    print("devhost: shutting down", flush=True)
    host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
