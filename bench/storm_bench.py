"""Alert storm: many deliveries of a few hundred alerts, each delivered 2-3 times (action-group retries and
fan-out), for many VMs in two regions, from concurrent callers, over real HTTP to the app in its own process
(``python -m devhost``), with a per-watcher capture limit.

The copies of one alert are spread over a short window of the delivery order, so they are usually in
flight at the same time (the hard case for de-duplication). Before the storm one unrelated alert warms the
process up (imports, token, watchers), so the numbers are those of a running instance; the capture it
starts is deleted again. At the end every capture in the emulator is attributed to its alert through the
storage path the app wrote (``capture.naming.parse_storage_path``) and counted per watcher.
"""

from __future__ import annotations

import random
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.common import (
    Config,
    SubprocessHost,
    WebhookClient,
    alert_body,
    app_settings,
    bench_network_client,
    build_world,
    delete_capture,
    latency_stats,
    new_alert_id,
    proc_cpu_seconds,
    proc_status_mb,
    progress,
    start_emulator,
)

if TYPE_CHECKING:
    from emulator.world import VirtualMachine

POOL_FULL = "Connection pool is full"


@dataclass(frozen=True)
class Delivery:
    alert: int
    alert_id: str
    vm: VirtualMachine


@dataclass
class Delivered:
    delivery: Delivery
    status: int  # 0: no answer (connection error)
    outcome: str
    seconds: float


def plan_deliveries(cfg: Config, vms: list[VirtualMachine], subscription: str) -> list[Delivery]:
    """``storm_deliveries`` deliveries: alerts on random VMs, each sent 2 or 3 times, copies close by."""
    rng = random.Random(cfg.seed)
    keyed: list[tuple[float, Delivery]] = []
    window = max(2.0, cfg.storm_callers / 4)  # copies of an alert land within ~window alerts of each other
    alert = 0
    total = 0
    while total < cfg.storm_deliveries:
        copies = min(rng.choice((2, 3)), cfg.storm_deliveries - total)
        delivery = Delivery(alert, new_alert_id(subscription), rng.choice(vms))
        keyed.extend((alert + rng.uniform(0.0, window), delivery) for _ in range(copies))
        total += copies
        alert += 1
    keyed.sort(key=lambda item: item[0])
    return [delivery for _, delivery in keyed]


def _storm(url: str, deliveries: list[Delivery], callers: int) -> tuple[list[Delivered], float]:
    lock = threading.Lock()
    queue: Iterator[Delivery] = iter(deliveries)
    results: list[Delivered] = []

    def caller() -> None:
        client = WebhookClient(url)
        mine: list[Delivered] = []
        try:
            while True:
                with lock:
                    delivery = next(queue, None)
                if delivery is None:
                    break
                started = time.perf_counter()
                try:
                    answer = client.post(alert_body(delivery.alert_id, delivery.vm.id, delivery.vm.name))
                    mine.append(Delivered(delivery, answer.status, answer.outcome, answer.seconds))
                except OSError as exc:
                    mine.append(Delivered(delivery, 0, type(exc).__name__, time.perf_counter() - started))
        finally:
            client.close()
            with lock:
                results.extend(mine)

    started = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        for future in [pool.submit(caller) for _ in range(callers)]:
            future.result()
    return results, time.perf_counter() - started


def storm_section(cfg: Config) -> dict[str, Any]:
    bench = build_world(cfg.storm_vms + 1, unrelated=cfg.resources)
    emu = start_emulator(bench, cfg, latency=cfg.latency_s)
    try:
        warm_vm, *vms = bench.take(cfg.storm_vms + 1)
        deliveries = plan_deliveries(cfg, vms, emu.subscription_id)
        settings = app_settings(emu, bench, CAPTURE_MAX_SESSIONS=str(cfg.storm_max_sessions))
        with tempfile.TemporaryDirectory(prefix="bench-storm-") as tmp:
            host = SubprocessHost(settings, Path(tmp) / "host.stderr")
            try:
                host.start()
                warm = WebhookClient(host.alert_url)
                answer = warm.post(alert_body(new_alert_id(emu.subscription_id), warm_vm.id, warm_vm.name))
                warm.close()
                if answer.capture is not None:
                    with bench_network_client(emu) as cleaner:
                        delete_capture(emu, cleaner, answer.capture)
                progress(
                    f"storm: {len(deliveries)} deliveries of {len({d.alert for d in deliveries})} alerts on "
                    f"{len(vms)} VMs, {cfg.storm_callers} callers, limit {cfg.storm_max_sessions} "
                    f"per watcher"
                )
                emu.clear_log()
                cpu_before = proc_cpu_seconds(host.pid)
                delivered, elapsed = _storm(host.alert_url, deliveries, cfg.storm_callers)
                cpu_after = proc_cpu_seconds(host.pid)
                host_cpu = (
                    cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
                )
                arm_log = emu.request_log
                host_rss = proc_status_mb(host.pid, "VmHWM")
            finally:
                host.stop()
            stderr = host.stderr_text()
        captures = [emu.capture_json(capture_id) for capture_id in emu.capture_ids()]
    finally:
        emu.stop()
    return _result(cfg, deliveries, delivered, elapsed, arm_log, captures, host_rss, host_cpu, stderr)


def _result(
    cfg: Config,
    deliveries: list[Delivery],
    delivered: list[Delivered],
    elapsed: float,
    arm_log: list[Any],
    captures: list[dict[str, Any]],
    host_rss: float | None,
    host_cpu: float | None,
    stderr: str,
) -> dict[str, Any]:
    from capture.naming import parse_storage_path

    by_guid = {d.alert_id.rsplit("/", 1)[-1]: d for d in deliveries}
    per_alert_vm: Counter[tuple[int, str]] = Counter()
    per_vm: Counter[str] = Counter()
    per_watcher: Counter[str] = Counter()
    unattributed = 0
    for capture in captures:
        props = capture.get("properties") or {}
        target = str(props.get("target", "")).casefold()
        watcher = str(capture["id"]).split("/packetCaptures/")[0].rsplit("/", 1)[-1]
        per_watcher[watcher] += 1
        per_vm[target] += 1
        info = parse_storage_path((props.get("storageLocation") or {}).get("storagePath"))
        delivery = by_guid.get(info.alert) if info is not None and info.alert else None
        if delivery is None:
            unattributed += 1
            continue
        per_alert_vm[(delivery.alert, delivery.vm.id.casefold())] += 1
    statuses = Counter(str(d.status) for d in delivered)
    outcomes = Counter(d.outcome for d in delivered)
    non_2xx = sum(1 for d in delivered if not 200 <= d.status < 300)
    alerts = len({d.alert for d in deliveries})
    return {
        "deliveries": len(delivered),
        "alerts": alerts,
        "copies_per_alert": round(len(deliveries) / alerts, 2) if alerts else 0,
        "vms": cfg.storm_vms,
        "regions": 2,
        "callers": cfg.storm_callers,
        "max_sessions_per_watcher": cfg.storm_max_sessions,
        "latency_ms_per_call": cfg.latency_ms,
        "total_s": round(elapsed, 2),
        "throughput_per_s": round(len(delivered) / elapsed, 1) if elapsed else 0.0,
        **latency_stats([d.seconds for d in delivered]),
        "statuses": dict(statuses),
        "outcomes": dict(outcomes),
        "non_2xx": non_2xx,
        "captures_created": len(captures),
        "started_answers": outcomes.get("started", 0),
        "captures_per_watcher": dict(per_watcher),
        "duplicates": sum(n - 1 for n in per_alert_vm.values() if n > 1),
        "vms_with_more_than_one_capture": sum(1 for n in per_vm.values() if n > 1),
        "unattributed_captures": unattributed,
        "overshoot": sum(max(0, n - cfg.storm_max_sessions) for n in per_watcher.values()),
        "arm_calls": len(arm_log),
        "arm_calls_per_delivery": round(len(arm_log) / len(delivered), 2) if delivered else 0.0,
        "arm_statuses": dict(Counter(str(r.status) for r in arm_log)),
        "host_peak_rss_mb": round(host_rss, 1) if host_rss is not None else None,
        "host_cpu_s": round(host_cpu, 2) if host_cpu is not None else None,
        "host_cpu_ms_per_delivery": round(host_cpu / len(delivered) * 1000, 2)
        if host_cpu and delivered
        else None,
        "host_pool_full_warnings": stderr.count(POOL_FULL),
        "host_errors": stderr.count("Traceback"),
    }
