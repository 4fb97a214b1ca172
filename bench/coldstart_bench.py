"""Cold start: a new process serving function_app (``python -m devhost``) answering its first alert, and
the import time of ``function_app`` alone in a fresh interpreter.

* **Process to first answer**: spawn → listening (interpreter, devhost, ``import function_app``, indexing)
  → the first alert answered (the SDK's lazy imports, DefaultAzureCredential and its token, new clients and
  TLS connections, the watcher list, the VM lookup, the capture list and the PUT). A second alert (another
  VM) shows what the same process pays once warm.
* **Peak RSS**: the host process's VmHWM (``/proc/PID/status``), after listening and after the first alert.
* **Import time**: ``time.perf_counter()`` around ``import function_app`` in a fresh interpreter (median of
  several), plus ``-X importtime``'s biggest top-level imports; and the same for the SDK modules the first
  alert imports lazily.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    Config,
    SubprocessHost,
    WebhookClient,
    alert_body,
    app_settings,
    build_world,
    median,
    ms,
    new_alert_id,
    proc_status_mb,
    progress,
    start_emulator,
    subprocess_env,
)

_HWM = """
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None
"""
_IMPORT_APP = (
    _HWM
    + """
import json, time
t0 = time.perf_counter()
import function_app
elapsed = time.perf_counter() - t0
print(json.dumps({"import_s": elapsed, "hwm_mb": hwm()}))
"""
)
_IMPORT_SDK = (
    _HWM
    + """
import json, time
import function_app
t0 = time.perf_counter()
from azure.identity import DefaultAzureCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient
elapsed = time.perf_counter() - t0
print(json.dumps({"import_s": elapsed, "hwm_mb": hwm()}))
"""
)


def _python(code: str, *flags: str) -> tuple[dict[str, Any], float, str]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *flags, "-c", code],
        cwd=ROOT,
        env=subprocess_env({}),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    wall = time.perf_counter() - started
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall, proc.stderr


def _importtime_top(stderr: str, count: int = 6) -> list[dict[str, Any]]:
    """``-X importtime``'s self times added up per package (``azure.*`` by its first two names), biggest
    first: where the import time of function_app goes."""
    per_package: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        fields = line[len("import time:") :].split("|")
        name = fields[2].strip()
        parts = name.split(".")
        package = ".".join(parts[:2]) if parts[0] == "azure" else parts[0]
        per_package[package] = per_package.get(package, 0) + int(fields[0])
    ranked = sorted(per_package.items(), key=lambda item: -item[1])[:count]
    return [{"package": package, "self_ms": round(us / 1000, 1)} for package, us in ranked]


def import_times(runs: int) -> dict[str, Any]:
    app = [_python(_IMPORT_APP) for _ in range(max(1, runs))]
    sdk = [_python(_IMPORT_SDK) for _ in range(max(1, runs))]
    _, _, profile = _python("import json; import function_app; print(json.dumps({}))", "-X", "importtime")
    _, bare_wall, _ = _python("print('{}')")
    return {
        "function_app_import_ms": ms(median([r[0]["import_s"] for r in app])),
        "function_app_process_ms": ms(median([r[1] for r in app])),
        "function_app_peak_rss_mb": round(median([r[0]["hwm_mb"] for r in app]), 1),
        "bare_interpreter_ms": ms(bare_wall),
        "sdk_lazy_import_ms": ms(median([r[0]["import_s"] for r in sdk])),
        "sdk_peak_rss_mb": round(median([r[0]["hwm_mb"] for r in sdk]), 1),
        "top_imports": _importtime_top(profile),
        "runs": max(1, runs),
    }


def coldstart_section(cfg: Config) -> dict[str, Any]:
    bench = build_world(cfg.coldstart_runs * 2, unrelated=cfg.resources)
    emu = start_emulator(bench, cfg, latency=cfg.latency_s)
    runs: list[dict[str, Any]] = []
    try:
        settings = app_settings(emu, bench)
        for index in range(cfg.coldstart_runs):
            progress(f"cold start {index + 1}/{cfg.coldstart_runs}")
            first_vm, second_vm = bench.take(2)
            with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
                host = SubprocessHost(settings, Path(tmp) / "host.stderr")
                started = time.perf_counter()
                try:
                    ready = host.start()
                    rss_ready = proc_status_mb(host.pid, "VmHWM")
                    client = WebhookClient(host.alert_url)
                    emu.clear_log()
                    first = client.post(
                        alert_body(new_alert_id(emu.subscription_id), first_vm.id, first_vm.name)
                    )
                    to_first = time.perf_counter() - started
                    first_calls, first_identity = len(emu.request_log), len(emu.identity_log)
                    rss_first = proc_status_mb(host.pid, "VmHWM")
                    emu.clear_log()
                    second = client.post(
                        alert_body(new_alert_id(emu.subscription_id), second_vm.id, second_vm.name)
                    )
                    second_calls = len(emu.request_log)
                    client.close()
                finally:
                    host.stop()
            runs.append(
                {
                    "ready_ms": ms(ready),
                    "first_alert_ms": ms(first.seconds),
                    "process_to_first_answer_ms": ms(to_first),
                    "first_alert_status": first.status,
                    "first_alert_arm_calls": first_calls,
                    "first_alert_identity_calls": first_identity,
                    "second_alert_ms": ms(second.seconds),
                    "second_alert_arm_calls": second_calls,
                    "peak_rss_ready_mb": round(rss_ready or 0.0, 1),
                    "peak_rss_mb": round(rss_first or 0.0, 1),
                }
            )
    finally:
        emu.stop()
    progress("cold start: import times")
    summary = {
        key: round(median([float(r[key]) for r in runs]), 1)
        for key in (
            "ready_ms",
            "first_alert_ms",
            "process_to_first_answer_ms",
            "second_alert_ms",
            "peak_rss_ready_mb",
            "peak_rss_mb",
        )
    }
    summary["first_alert_arm_calls"] = max(int(r["first_alert_arm_calls"]) for r in runs)
    summary["first_alert_identity_calls"] = max(int(r["first_alert_identity_calls"]) for r in runs)
    return {
        "method": (__doc__ or "").strip(),
        "latency_ms_per_call": cfg.latency_ms,
        "runs": runs,
        "summary": summary,
        "imports": import_times(cfg.import_runs),
    }
