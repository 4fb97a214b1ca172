"""Runs the selected sections, evaluates the targets, prints the table, writes results.json / results.md."""

from __future__ import annotations

import contextlib
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import ROOT, Config, machine_info, progress
from bench.report import evaluate_targets, render

OUT_DIR = ROOT / "bench"


def _analysis(cfg: Config) -> dict[str, Any]:
    from bench import analysis_bench

    progress(f"analysis: {cfg.analysis_size_mb:g} MB capture, {cfg.analysis_repeat} repeat(s)")
    return analysis_bench.run(cfg.analysis_size_mb, repeat=cfg.analysis_repeat)


def _followthrough(cfg: Config) -> dict[str, Any]:
    from bench import followthrough_bench

    captures, size_mb = cfg.followthrough_captures, cfg.followthrough_size_mb
    progress(f"follow-through: {captures} captures of {size_mb:g} MB finishing at once, 1 and 2 workers")
    return followthrough_bench.run(captures, size_mb, (1, 2))


def _section(name: str) -> Callable[[Config], dict[str, Any]]:
    if name == "latency":
        from bench.webhook_bench import latency_section

        return latency_section
    if name == "scaling":
        from bench.webhook_bench import scaling_section

        return scaling_section
    if name == "faults":
        from bench.webhook_bench import faults_section

        return faults_section
    if name == "delivery":
        from bench.webhook_bench import delivery_section

        return delivery_section
    if name == "storm":
        from bench.storm_bench import storm_section

        return storm_section
    if name == "coldstart":
        from bench.coldstart_bench import coldstart_section

        return coldstart_section
    if name == "analysis":
        return _analysis
    if name == "recorder":
        from bench.recorder_bench import recorder_section

        return recorder_section
    if name == "followthrough":
        return _followthrough
    raise ValueError(f"unknown section {name!r}")


def run(cfg: Config, out_dir: Path | None = OUT_DIR, *, echo: bool = True) -> dict[str, Any]:
    """Run the benchmark; returns everything that results.json holds."""
    # The SDK logs each request at INFO and urllib3 warns about pool sizes: keep stdout for the tables.
    logging.getLogger("azure").setLevel(logging.WARNING)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "alert-packet-capture webhook vs the documented script",
        "machine": machine_info(),
        "config": asdict(cfg),
        "sections": {},
        "section_seconds": {},
        "errors": {},
    }
    for name in cfg.sections:
        section_started = time.perf_counter()
        try:
            results["sections"][name] = _section(name)(cfg)
        except Exception:
            results["errors"][name] = traceback.format_exc()
            progress(f"section {name} failed:\n{results['errors'][name]}")
        results["section_seconds"][name] = round(time.perf_counter() - section_started, 1)
    with contextlib.suppress(OSError):
        results["machine"]["loadavg_at_end"] = Path("/proc/loadavg").read_text().split()[:3]
    results["targets"] = [t.to_json() for t in evaluate_targets(results, results["config"])]
    results["duration_s"] = round(time.perf_counter() - started, 1)
    text = render(results)
    if echo:
        print(text, flush=True)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        (out_dir / "results.md").write_text(render(results, markdown=True))
        progress(f"wrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return results
