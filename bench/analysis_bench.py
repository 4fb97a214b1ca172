"""Capture analysis throughput and memory, against tshark and capinfos on the same file.

    python -m bench.analysis_bench [--size-mb 200] [--repeat 3] [--scenario web] [--json out.json]

Generates a realistic capture (``emulator.pcapgen``, a 5-minute ``web`` mix by default) of ``--size-mb`` and
of a quarter of that, in a temporary directory, then measures each file in child processes:

* ``capture.analysis.analyze_file``: wall and CPU time of the call (MB/s, packets/s) and of the whole
  process, and peak RSS (the child's VmHWM); plus the peak RSS of a child that only imports the module (the
  interpreter's floor), so the analysis' own memory shows;
* ``tshark -q -z conv,tcp -r FILE`` and ``capinfos FILE`` when installed: wall and CPU time, peak RSS.

Peak RSS is never taken from a child's ``ru_maxrss`` via ``wait4``: Linux carries the parent's RSS high-water
mark into the child's maxrss across fork + exec, so the benchmark's own memory would show up. Python children
report VmHWM (per address space, reset by exec); tools run under GNU ``/usr/bin/time`` (a tiny process before
its exec), falling back to ``wait4`` (an upper bound, marked as such) when it is missing.

Each measurement is repeated and the fastest run kept (the machine may be shared). ``run()`` returns the
results as a dict (for bench/results.json); ``--size-mb 2`` is a quick smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_MB_S = 50.0
_GNU_TIME = "/usr/bin/time"

_HWM = """
def hwm():
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""
_CHILD_ANALYZE = (
    _HWM
    + """
import json, sys, time
from capture.analysis import analyze_file
t0 = time.perf_counter(); c0 = time.process_time()
f = analyze_file(sys.argv[1])
wall = time.perf_counter() - t0; cpu = time.process_time() - c0
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "packets": f.packets, "bytes_read": f.file.bytes_read,
                  "notable": f.notable, "hwm_mb": hwm()}))
"""
)
_CHILD_BASELINE = _HWM + "\nimport json, capture.analysis\nprint(json.dumps({'hwm_mb': hwm()}))\n"


def _gnu_time() -> str | None:
    if not os.path.exists(_GNU_TIME):
        return None
    probe = subprocess.run([_GNU_TIME, "-f", "%M", "true"], capture_output=True, text=True, check=False)
    return _GNU_TIME if probe.returncode == 0 and probe.stderr.strip().isdigit() else None


def _measure(cmd: list[str], *, env: dict[str, str] | None = None, timed: bool = False) -> dict[str, Any]:
    """Run a command: wall time, CPU time (user + sys) and, with ``timed``, peak RSS under GNU time."""
    timer = _gnu_time() if timed else None
    if timer:
        cmd = [timer, "-f", "BENCH_RUSAGE %U %S %M", *cmd]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT, env=env)
    out, err = proc.communicate()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = {"wall_s": wall, "stdout": out.decode(errors="replace")}
    marker = err.rfind(b"BENCH_RUSAGE ")
    if timer and marker >= 0:
        user, system, rss = err[marker:].split()[1:4]
        result.update(cpu_s=float(user) + float(system), peak_rss_mb=int(rss) / 1024, rss_source="GNU time")
    return result


def _measure_wait4(cmd: list[str]) -> dict[str, Any]:
    """Fallback without GNU time: CPU and (upper-bound) peak RSS of the child from wait4."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO_ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode})")
    return {
        "wall_s": time.perf_counter() - start,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "rss_source": "wait4 (upper bound)",
    }


def _tool(cmd: list[str], repeat: int, size_mb: float) -> dict[str, Any]:
    runs = [_measure(cmd, timed=True) if _gnu_time() else _measure_wait4(cmd) for _ in range(max(1, repeat))]
    best = min(runs, key=lambda r: r["wall_s"])
    return {
        "wall_s": round(best["wall_s"], 3),
        "cpu_s": round(min(r["cpu_s"] for r in runs), 3),
        "mb_per_s": round(size_mb / best["wall_s"], 1),
        "peak_rss_mb": round(max(r["peak_rss_mb"] for r in runs), 1),
        "rss_source": best["rss_source"],
    }


def _python_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _tool_version(tool: str) -> str | None:
    path = shutil.which(tool)
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.splitlines()[0].strip() if out.stdout else None


def measure_file(path: Path, *, repeat: int) -> dict[str, Any]:
    """Analysis (and tshark / capinfos when installed) on one capture file."""
    size_mb = path.stat().st_size / 1e6
    env = _python_env()
    py = sys.executable
    runs = []
    for _ in range(max(1, repeat)):
        process = _measure([py, "-c", _CHILD_ANALYZE, str(path)], env=env)
        runs.append((process["wall_s"], json.loads(process["stdout"])))
    process_wall, inner = min(runs, key=lambda r: r[1]["wall_s"])
    baseline = json.loads(_measure([py, "-c", _CHILD_BASELINE], env=env)["stdout"])
    peak = max(r[1]["hwm_mb"] for r in runs)
    result: dict[str, Any] = {
        "file_mb": round(size_mb, 1),
        "packets": inner["packets"],
        "analysis": {
            "wall_s": round(inner["wall_s"], 3),  # the analyze_file call
            "cpu_s": round(min(r[1]["cpu_s"] for r in runs), 3),
            "process_wall_s": round(process_wall, 3),  # with interpreter start-up and imports
            "mb_per_s": round(size_mb / inner["wall_s"], 1),
            "mb_per_s_cpu": round(size_mb / min(r[1]["cpu_s"] for r in runs), 1),
            "packets_per_s": round(inner["packets"] / inner["wall_s"]),
            "peak_rss_mb": round(peak, 1),
            "interpreter_rss_mb": round(baseline["hwm_mb"], 1),
            "own_rss_mb": round(peak - baseline["hwm_mb"], 1),
            "notable": inner["notable"],
        },
    }
    tshark = shutil.which("tshark")
    if tshark:
        result["tshark_conv_tcp"] = _tool([tshark, "-q", "-z", "conv,tcp", "-r", str(path)], repeat, size_mb)
    capinfos = shutil.which("capinfos")
    if capinfos:
        result["capinfos"] = _tool([capinfos, str(path)], repeat, size_mb)
    return result


def run(
    size_mb: float = 200.0, *, repeat: int = 3, scenario: str = "web", duration_s: float = 300.0
) -> dict[str, Any]:
    """Generate the captures, measure everything, print a table; returns the results."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from emulator.pcapgen import write_capture

    sizes = sorted({max(1.0, size_mb / 4), size_mb}) if size_mb >= 4 else [size_mb]
    results: dict[str, Any] = {
        "benchmark": "capture analysis",
        "scenario": scenario,
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "tshark": _tool_version("tshark"),
        },
        "target_mb_per_s": TARGET_MB_S,
        "files": [],
    }
    with tempfile.TemporaryDirectory(prefix="analysis-bench-") as tmp:
        for size in sizes:
            path = Path(tmp) / f"{scenario}-{size:g}MB.cap"
            start = time.perf_counter()
            gen = write_capture(path, scenario, duration_s=duration_s, target_bytes=int(size * 1e6))
            elapsed = time.perf_counter() - start
            entry = measure_file(path, repeat=repeat)
            entry["generator"] = {
                "wall_s": round(elapsed, 2),
                "mb_per_s": round(gen.truth.file_bytes / 1e6 / elapsed, 1),
                "truth_packets": gen.truth.packets,
            }
            if entry["packets"] != gen.truth.packets:
                raise RuntimeError(
                    f"analysis saw {entry['packets']} packets, the generator wrote {gen.truth.packets}"
                )
            results["files"].append(entry)
            path.unlink()
    big, small = results["files"][-1], results["files"][0]
    summary: dict[str, Any] = {
        "mb_per_s": big["analysis"]["mb_per_s"],
        "packets_per_s": big["analysis"]["packets_per_s"],
        "peak_rss_mb": big["analysis"]["peak_rss_mb"],
        "meets_throughput_target": big["analysis"]["mb_per_s"] >= TARGET_MB_S,
        "rss_growth_mb": round(big["analysis"]["peak_rss_mb"] - small["analysis"]["peak_rss_mb"], 1),
    }
    if "tshark_conv_tcp" in big:
        tshark = big["tshark_conv_tcp"]
        summary["speedup_vs_tshark"] = round(tshark["wall_s"] / big["analysis"]["process_wall_s"], 2)
        summary["rss_fraction_of_tshark"] = round(big["analysis"]["peak_rss_mb"] / tshark["peak_rss_mb"], 3)
    results["summary"] = summary
    _print_table(results)
    return results


def _print_table(results: dict[str, Any]) -> None:
    rows = [("file", "tool", "process s", "work s", "cpu s", "MB/s", "packets/s", "peak RSS MB")]
    for entry in results["files"]:
        a = entry["analysis"]
        rows.append(
            (
                f"{entry['file_mb']:.0f} MB, {entry['packets']:,} pkts",
                "capture.analysis",
                f"{a['process_wall_s']:.2f}",
                f"{a['wall_s']:.2f}",
                f"{a['cpu_s']:.2f}",
                f"{a['mb_per_s']:.0f}",
                f"{a['packets_per_s']:,}",
                f"{a['peak_rss_mb']:.0f} ({a['own_rss_mb']:.0f} own)",
            )
        )
        for tool, label in (("tshark_conv_tcp", "tshark -z conv,tcp"), ("capinfos", "capinfos")):
            if tool in entry:
                t = entry[tool]
                rows.append(
                    ("", label, f"{t['wall_s']:.2f}", "", f"{t['cpu_s']:.2f}", f"{t['mb_per_s']:.0f}", "",
                     f"{t['peak_rss_mb']:.0f}")
                )  # fmt: skip
        g = entry["generator"]
        rows.append(("", "pcapgen (writing)", "", f"{g['wall_s']:.2f}", "", f"{g['mb_per_s']:.0f}", "", ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print(
            "  ".join(cell.ljust(widths[i]) if i < 2 else cell.rjust(widths[i]) for i, cell in enumerate(r))
        )
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print(json.dumps(results["summary"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mb", type=float, default=200.0, help="size of the larger capture (default 200)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the fastest is kept")
    parser.add_argument("--scenario", default="web")
    parser.add_argument("--duration", type=float, default=300.0, help="capture duration in seconds")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    results = run(args.size_mb, repeat=args.repeat, scenario=args.scenario, duration_s=args.duration)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
