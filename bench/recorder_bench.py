"""Flight-recorder section: alert → ring frozen (ARM calls, ms inside the webhook) and the seconds of
pre-alert traffic the report then covers.

Method
------
The sample world on a frozen emulated clock (the benchmark moves time), ``latency`` added to every ARM
call, Azurite for the ring files. Per run: the scheduler arms a ring on a tagged VM, ten minutes go by,
a SYN flood starts three minutes before the alert, the alert is handled by the webhook in this process
(``webhook.handle_alert``, no HTTP layer: the HTTP cost is in the latency section), the post-alert ring
runs its ``CAPTURE_TIME_LIMIT_SECONDS``, the scheduler (``Monitor.schedule``) queues the timeline and
the worker (``Monitor.report``, the queue function's body) reports it from the Azurite queue; the next
scheduler run re-arms. The first run is cold (the VM's region and watcher unknown), the others warm.

The emulator writes the ring's files to Azurite inside the stop request (its stop hook), which real ARM
does not: ``freeze_ms`` therefore counts each ARM call as the configured latency plus the app's own time
(wall time - time spent in the emulator + calls x latency); the wall time is kept as ``wall_ms``.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import timedelta
from typing import Any

from bench.common import Config, app_environment, ms, progress

SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
VM = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/"
    + "vm-web-02"
)
STORAGE = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-capture/providers/Microsoft.Storage/storageAccounts/"
)


def recorder_section(cfg: Config) -> dict[str, Any]:
    from capture import app_context
    from capture.webhook import handle_alert
    from devhost.stack import capture_writer
    from emulator import Emulator
    from emulator.azurite import Azurite
    from emulator.testing import SAMPLE_WORLD

    progress(f"recorder: {cfg.recorder_runs} freezes, {cfg.latency_ms:g} ms ARM latency")
    runs: list[dict[str, Any]] = []
    emulator = Emulator(SAMPLE_WORLD, time_scale=0.0, retry_after=0.0, latency=cfg.latency_s)
    with (
        emulator as emu,
        Azurite(emu.ca_cert_path, emu.key_path) as azurite,
        Azurite(emu.ca_cert_path, emu.key_path, service="queue") as queues,
    ):
        emu.on_capture_stopped = capture_writer(azurite, emu.ca_cert_path)
        emu.world.find_vm("vm-web-02").behaviour.traffic_bytes_per_second = 20_000.0
        settings = {
            **emu.env(),
            "CAPTURE_STORAGE_ACCOUNT_ID": f"{STORAGE}stcaptures",
            "CAPTURE_BLOB_ENDPOINT": azurite.blob_endpoint,
            "CAPTURE_ALLOWED_SCOPES": f"/subscriptions/{SUBSCRIPTION}",
            "CAPTURE_RECORDER_FILE_COUNT": "5",
            "CAPTURE_RECORDER_FILE_SIZE_BYTES": "1048576",
            "CaptureQueue__queueServiceUri": queues.queue_endpoint,
            "CAPTURE_QUEUE_NAME": "bench-recorder",
        }
        with app_environment(settings):
            ctx = app_context()
            ctx.recorder.clock = ctx.monitor.clock = emu.clock.now_datetime
            emu.world.set_tags(VM, {"capture-recorder": "on"})
            for n in range(cfg.recorder_runs):
                runs.append(_one(emu, ctx, handle_alert, n))
    warm = runs[1:] or runs
    before = [r["seconds_before"] for r in runs if r["seconds_before"] is not None]
    return {
        "latency_ms": cfg.latency_ms,
        "runs": runs,
        "cold_ms": runs[0]["freeze_ms"],
        "cold_arm_calls": runs[0]["arm_calls"],
        "warm_ms_p50": round(statistics.median(r["freeze_ms"] for r in warm), 1),
        "warm_arm_calls_max": max(r["arm_calls"] for r in warm),
        "pre_alert_seconds_p50": round(statistics.median(before), 1) if before else None,
        "all_frozen": all(r["status"] == "frozen" for r in runs),
        "all_reported": all(r["reported"] for r in runs),
    }


def _schedule(ctx: Any) -> Any:
    run = ctx.monitor.schedule().recorder
    assert run is not None
    return run


def _work(ctx: Any) -> list[Any]:
    """What the queue function does for each waiting message (the report requests the scheduler sent)."""
    from capture.queueing import parse_request

    queue = ctx.reports.client()
    results = []
    for message in queue.receive_messages(messages_per_page=32, visibility_timeout=60):
        results.append(ctx.monitor.report(parse_request(message.content)))
        queue.delete_message(message)
    return results


def _one(emu: Any, ctx: Any, handle_alert: Any, n: int) -> dict[str, Any]:
    armed = _schedule(ctx).armed
    emu.advance(600)
    alert_at = emu.clock.now_datetime()
    emu.start_anomaly(VM, alert_at - timedelta(minutes=3))
    body = json.dumps({"targets": [VM], "reason": "bench", "id": f"recorder-bench-{n}-{time.time_ns()}"})
    emu.clear_log()
    started = time.perf_counter()
    answer = handle_alert(body.encode(), ctx)
    elapsed = time.perf_counter() - started
    log = emu.request_log
    calls = len(log)
    inside = sum(r.duration for r in log)
    modeled = elapsed - inside + calls * emu.latency
    emu.advance(ctx.settings.time_limit_seconds + 2)
    queued = _schedule(ctx).queued
    reported = [r.report for r in _work(ctx) if r.outcome == "reported" and r.report is not None]
    timeline = (reported[0].recorder or {}) if reported else {}
    return {
        "armed": armed,
        "status": answer.body["status"],
        "freeze_ms": round(ms(modeled), 1),
        "wall_ms": round(ms(elapsed), 1),
        "arm_calls": calls,
        "queued": len(queued),
        "reported": bool(reported),
        "seconds_before": timeline.get("secondsBefore"),
        "seconds_after": timeline.get("secondsAfter"),
    }
