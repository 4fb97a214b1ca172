"""``python -m bench`` (``make bench``): the webhook against Microsoft's documented script, scaling, an alert
storm, cold start, faults and capture analysis, all against the local ARM emulator.

Prints a table with each target's PASS / MISS and writes ``bench/results.json`` (every number, machine
info) and ``bench/results.md`` (the README's Performance tables).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from bench.common import SECTIONS, Config
from bench.runner import OUT_DIR, run


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


def _parser() -> argparse.ArgumentParser:
    defaults = Config()
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick", action="store_true", help="fewer samples and smaller sizes (a few minutes less)"
    )
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    p.add_argument("--latency-ms", type=float, help=f"ARM latency per call (default {defaults.latency_ms:g})")
    p.add_argument("--alerts", type=int, help=f"alerts per latency run (default {defaults.alerts})")
    p.add_argument("--runs", type=int, help=f"latency runs, medians reported (default {defaults.runs})")
    p.add_argument(
        "--resources",
        type=int,
        help=f"unrelated resources in the subscription (default {defaults.resources})",
    )
    p.add_argument(
        "--baseline-alerts",
        type=int,
        help=f"baseline alerts per latency run (default {defaults.baseline_alerts})",
    )
    p.add_argument(
        "--scaling-resources", type=_ints, help="resource counts to sweep (default 100,1000,10000)"
    )
    p.add_argument("--scaling-captures", type=_ints, help="existing captures to sweep (default 1,10,100)")
    p.add_argument("--storm-deliveries", type=int, help=f"default {defaults.storm_deliveries}")
    p.add_argument("--storm-vms", type=int, help=f"default {defaults.storm_vms}")
    p.add_argument("--storm-callers", type=int, help=f"default {defaults.storm_callers}")
    p.add_argument(
        "--max-sessions",
        dest="storm_max_sessions",
        type=int,
        help=f"CAPTURE_MAX_SESSIONS in the storm (default {defaults.storm_max_sessions})",
    )
    p.add_argument("--fault-alerts", type=int, help=f"default {defaults.fault_alerts}")
    p.add_argument(
        "--retry-after",
        type=float,
        help=f"Retry-After of LRO answers, = emulated operation time (default {defaults.retry_after:g})",
    )
    p.add_argument("--page-size", type=int, help=f"ARM list page size (default {defaults.page_size})")
    p.add_argument(
        "--size-mb",
        dest="analysis_size_mb",
        type=float,
        help=f"analysis capture size (default {defaults.analysis_size_mb:g})",
    )
    p.add_argument(
        "--seed", type=int, help="seed of the storm's delivery plan and the emulator's faults (default 0)"
    )
    p.add_argument("--out-dir", type=Path, default=OUT_DIR, help="where results.json / results.md go")
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    sections = tuple(s.strip() for s in args.sections.split(",") if s.strip())
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    overrides = {
        key: value
        for key, value in vars(args).items()
        if value is not None and key not in {"quick", "sections", "out_dir"}
    }
    cfg = Config.quick() if args.quick else Config()
    return replace(cfg, sections=sections, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    results = run(config_from_args(args), args.out_dir)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
