"""Webhook sections: latency (cold / warm / first-ever) with the baseline in the same world, scaling with
the subscription's size and the watcher's captures, and latency under throttling faults.

Method
------
The app runs unmodified in this process, served over real HTTP by ``devhost.LocalHost``; alerts are posted
one at a time on a keep-alive connection (the fault section uses a few concurrent callers). The emulator
adds ``latency`` to every ARM call (not to identity calls).

* **Latency** is measured at the HTTP client: request sent to answer read.
* **ARM calls** are the emulator's request log entries made while the alert was handled (retries
  included); the app's own count (``call_scope()``, from its decision log line) is kept as a cross-check.
* **In-process overhead** = latency − the sum of the emulator-side durations of those requests (their
  handler time, injected latency included). It is everything that is not ARM: payload parsing and
  decisions, the SDK pipeline (serialization, auth header, requests/urllib3, TLS), devhost's HTTP layer, and
  the emulator's HTTP parsing outside its timer (~0.2 ms per call, measured by ``python -m emulator.perf``).
  ``sdk_floor_ms`` is the client-side time of a bare SDK call (``network_watchers.get`` from a plain
  client) on the same emulator, sampled once between every two alerts (the machine's speed drifts), so
  ``own_code = overhead − calls × floor`` estimates what is ours (parsing, decisions, our SDK use, devhost).
* **Cold path**: the first alert for a VM in a warm process (VM region unknown, watchers cached).
  **Warm path**: a later alert for a VM whose previous capture has ended and been deleted (the monitor's
  job; done here by the benchmark between alerts, with the latency paused, outside the measurement).
  **First-ever**: the first alert after the app's per-process state was reset (new credential and token,
  new clients and TLS connections, watchers unknown); SDK modules are already imported (a new process's
  import cost is in the cold-start section).
* The baseline (``bench.baseline``) runs after ours in the same emulator and world; its first alert per
  watcher (nothing to delete yet) is reported separately, the measured ones each delete and re-create.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import capture
from bench import baseline as baseline_module
from bench.baseline import DocumentedScript
from bench.common import (
    Answer,
    BenchWorld,
    Config,
    DecisionLog,
    Sample,
    WebhookClient,
    alert_body,
    app_environment,
    app_settings,
    bench_network_client,
    build_world,
    delete_capture,
    fire,
    in_process_host,
    latency_paused,
    latency_stats,
    median,
    ms,
    new_alert_id,
    progress,
    seed_captures,
    split_watcher_id,
    start_emulator,
    summarize_samples,
)

if TYPE_CHECKING:
    from azure.mgmt.network import NetworkManagementClient

    from emulator import Emulator
    from emulator.world import VirtualMachine

METHOD = __doc__.split("Method\n------\n", 1)[1].strip() if __doc__ else ""
# Generous: the app's settings cap any one capture's ARM calls far below this; only an invariant check.
NOMINAL_CALLS = {"cold": 3, "warm": 2}


@dataclass
class BaselineSample:
    latency_s: float
    slept_s: float
    arm_calls: int
    arm_wait_s: float
    identity_calls: int
    resources_listed: int
    deleted: bool
    created: bool


@dataclass
class _Session:
    """One emulator + the app served in-process + the benchmark's helpers."""

    emu: Emulator
    bench: BenchWorld
    client: WebhookClient
    cleaner: NetworkManagementClient
    decisions: DecisionLog
    floor: list[float] = field(default_factory=list)

    def fire(self, vm: VirtualMachine, path: str) -> Sample:
        sample, answer = fire(self.client, self.emu, vm, path, self.decisions)
        self.cleanup(answer)
        return sample

    def cleanup(self, answer: Answer) -> None:
        """Delete the alert's capture and time one bare SDK call, both with the latency paused."""
        capture = answer.capture
        with latency_paused(self.emu):
            if capture is not None:
                delete_capture(self.emu, self.cleaner, capture)
            self.floor.append(_bare_call(self.emu, self.cleaner))


def _run_session(
    bench: BenchWorld,
    cfg: Config,
    body: Callable[[_Session], dict[str, Any]],
    *,
    captures: int = 1,
    max_sessions: int = 10000,
) -> dict[str, Any]:
    emu = start_emulator(bench, cfg)
    try:
        if captures:
            seed_captures(emu, bench, captures)
        settings = app_settings(emu, bench, CAPTURE_MAX_SESSIONS=str(max_sessions))
        with app_environment(settings), in_process_host() as host, DecisionLog() as decisions:
            session = _Session(
                emu,
                bench,
                WebhookClient(host.function_url("alert_webhook")),
                bench_network_client(emu),
                decisions,
            )
            try:
                # Unmeasured: loads the SDK's lazily imported parts, so that no sample pays for them.
                session.fire(bench.take(1)[0], "warmup")
                return body(session)
            finally:
                session.client.close()
                session.cleaner.close()
    finally:
        emu.stop()


def _bare_call(emu: Emulator, client: NetworkManagementClient) -> float:
    """Client-side seconds of one bare SDK GET (network_watchers.get) on this emulator: the SDK's floor."""
    group, name = split_watcher_id(emu.world.watchers()[0].id)
    emu.clear_log()
    started = time.perf_counter()
    client.network_watchers.get(group, name)
    elapsed = time.perf_counter() - started
    return elapsed - sum(r.duration for r in emu.request_log)


# ------------------------------------------------------------------ baseline


def _baseline_script(session: _Session, cfg: Config) -> DocumentedScript:
    from azure.identity import ManagedIdentityCredential

    return DocumentedScript(
        ManagedIdentityCredential(),  # the emulator's identity endpoint, from the app settings in os.environ
        session.emu.subscription_id,
        arm_endpoint=session.emu.arm_endpoint,
        ca_bundle=session.emu.ca_cert_path,
        storage_account_id=session.bench.storage_id,
        polling_interval=cfg.retry_after,
    )


def _baseline_alert(session: _Session, script: DocumentedScript, vm: VirtualMachine) -> BaselineSample:
    session.emu.clear_log()
    run = script.handle(vm.id, vm.location)
    log = session.emu.request_log
    return BaselineSample(
        latency_s=run.seconds,
        slept_s=run.slept,
        arm_calls=len(log),
        arm_wait_s=sum(r.duration for r in log),
        identity_calls=len(session.emu.identity_log),
        resources_listed=run.resources_listed,
        deleted=run.deleted,
        created=run.created,
    )


def _baseline_first(
    session: _Session, script: DocumentedScript, vms: Sequence[VirtualMachine]
) -> list[BaselineSample]:
    """One alert per region: creates the script's capture there (nothing to delete yet)."""
    out = []
    for region in sorted({vm.location for vm in vms}):
        vm = next(v for v in vms if v.location == region)
        out.append(_baseline_alert(session, script, vm))
    return out


def summarize_baseline(samples: Sequence[BaselineSample]) -> dict[str, Any]:
    if not samples:
        return {"n": 0}
    calls = [s.arm_calls for s in samples]
    return {
        **latency_stats([s.latency_s for s in samples]),
        "arm_calls_p50": median(calls),
        "arm_calls_max": max(calls),
        "arm_wait_p50_ms": ms(median([s.arm_wait_s for s in samples])),
        "lro_wait_p50_ms": ms(median([s.slept_s for s in samples])),
        "without_lro_wait_p50_ms": ms(median([s.latency_s - s.slept_s for s in samples])),
        "overhead_p50_ms": ms(median([s.latency_s - s.slept_s - s.arm_wait_s for s in samples])),
        "resources_listed": max(s.resources_listed for s in samples),
        "deleted_and_recreated": sum(1 for s in samples if s.deleted and s.created),
    }


def _ratios(baseline: dict[str, Any], ours: dict[str, Any]) -> dict[str, float]:
    if not baseline.get("n") or not ours.get("n"):
        return {}
    return {
        "latency_p50": round(baseline["p50_ms"] / ours["p50_ms"], 1),
        "arm_calls_p50": round(baseline["arm_calls_p50"] / ours["arm_calls_p50"], 2),
        "latency_p50_without_lro_wait": round(baseline["without_lro_wait_p50_ms"] / ours["p50_ms"], 1),
    }


# ------------------------------------------------------------------ latency (with the baseline)


def _latency_run(cfg: Config, index: int) -> dict[str, Any]:
    per_path = max(1, cfg.alerts // 3)
    bench = build_world(per_path + cfg.first_ever + 1, unrelated=cfg.resources, background_per_region=1)

    def body(session: _Session) -> dict[str, Any]:
        session.emu.latency = cfg.latency_s
        first = []
        for vm in bench.take(cfg.first_ever):
            capture.reset()
            first.append(session.fire(vm, "first"))
        vms = bench.take(per_path)
        cold = [session.fire(vm, "cold") for vm in vms]
        warm = [session.fire(vm, "warm") for _ in range(2) for vm in vms]
        script = _baseline_script(session, cfg)
        try:
            baseline_first = _baseline_first(session, script, vms)
            baseline = [
                _baseline_alert(session, script, vms[i % len(vms)]) for i in range(cfg.baseline_alerts)
            ]
        finally:
            script.close()
        paths = {
            "first": summarize_samples(first),
            "cold": summarize_samples(cold),
            "warm": summarize_samples(warm),
        }
        base = summarize_baseline(baseline)
        floor = median(session.floor)
        for key, samples in (("first", first), ("cold", cold), ("warm", warm)):
            calls = median([s.arm_calls for s in samples])
            paths[key]["own_code_p50_ms"] = ms(median([s.overhead_s for s in samples]) - calls * floor)
        return {
            "run": index,
            "sdk_floor_ms": ms(floor),
            "paths": paths,
            "baseline": base,
            "baseline_first": summarize_baseline(baseline_first),
            "ratio_vs_warm": _ratios(base, paths["warm"]),
            "ratio_vs_cold": _ratios(base, paths["cold"]),
        }

    return _run_session(bench, cfg, body)


def _median_dicts(dicts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Key-wise median of numeric values (nested dicts recursively; other values from the first)."""
    out: dict[str, Any] = {}
    for key, value in dicts[0].items():
        values = [d.get(key) for d in dicts]
        if isinstance(value, dict):
            out[key] = _median_dicts([v for v in values if isinstance(v, dict)])
        elif isinstance(value, bool) or not isinstance(value, int | float):
            out[key] = value
        elif key.endswith("_max") or key == "max_ms":
            out[key] = max(v for v in values if isinstance(v, int | float))
        else:
            numbers = [v for v in values if isinstance(v, int | float)]
            middle = statistics.median(numbers)
            out[key] = int(middle) if all(isinstance(v, int) for v in numbers) else round(float(middle), 2)
    return out


def latency_section(cfg: Config) -> dict[str, Any]:
    runs = []
    for index in range(cfg.runs):
        progress(
            f"latency run {index + 1}/{cfg.runs}: {cfg.alerts} alerts, {cfg.baseline_alerts} baseline "
            f"alerts, {cfg.resources} unrelated resources, {cfg.latency_ms:g} ms per ARM call"
        )
        runs.append(_latency_run(cfg, index))
    summary = _median_dicts(runs)
    summary.pop("run", None)
    return {
        "method": METHOD,
        "baseline_method": (baseline_module.__doc__ or "").strip(),
        "latency_ms_per_call": cfg.latency_ms,
        "unrelated_resources": cfg.resources,
        "existing_captures_per_watcher": 1,
        "retry_after_s": cfg.retry_after,
        "page_size": cfg.page_size,
        "runs": runs,
        "summary": summary,
    }


# ------------------------------------------------------------------ scaling


def _measure_point(session: _Session, cfg: Config, script: DocumentedScript) -> dict[str, Any]:
    vms = session.bench.take(cfg.scaling_cold)
    cold = [session.fire(vm, "cold") for vm in vms]
    warm = [session.fire(vms[i % len(vms)], "warm") for i in range(cfg.scaling_warm)]
    baseline = [_baseline_alert(session, script, vms[i % len(vms)]) for i in range(cfg.scaling_baseline)]
    ours_warm, ours_cold = summarize_samples(warm), summarize_samples(cold)
    base = summarize_baseline(baseline)
    return {
        "ours_warm": ours_warm,
        "ours_cold": ours_cold,
        "baseline": base,
        "ratio_vs_warm": _ratios(base, ours_warm),
    }


def _sweep(cfg: Config, kind: str, points: Sequence[int]) -> list[dict[str, Any]]:
    points = sorted(points)
    per_point = cfg.scaling_cold
    if kind == "resources":
        bench = build_world(per_point * len(points) + 2, unrelated=points[0], background_per_region=1)
        captures = 1
    else:
        bench = build_world(per_point * len(points) + 2, unrelated=cfg.resources, background_per_region=10)
        captures = points[0]
    results: list[dict[str, Any]] = []

    def body(session: _Session) -> dict[str, Any]:
        session.emu.latency = cfg.latency_s
        script = _baseline_script(session, cfg)
        try:
            _baseline_first(session, script, bench.targets)
            seeded = captures
            for point in points:
                if kind == "resources":
                    bench.add_unrelated(point)
                else:
                    seed_captures(session.emu, bench, point, start=seeded)
                    seeded = point
                progress(f"scaling: {kind} = {point}")
                entry = _measure_point(session, cfg, script)
                entry["unrelated_resources"] = bench.unrelated
                entry["existing_captures_per_watcher"] = captures if kind == "resources" else point
                results.append(entry)
        finally:
            script.close()
        return {}

    _run_session(bench, cfg, body, captures=captures)
    return results


def scaling_section(cfg: Config) -> dict[str, Any]:
    by_resources = _sweep(cfg, "resources", cfg.scaling_resources)
    by_captures = _sweep(cfg, "captures", cfg.scaling_captures)
    low, high = by_resources[0], by_resources[-1]
    p50_low, p50_high = low["ours_warm"]["p50_ms"], high["ours_warm"]["p50_ms"]
    return {
        "latency_ms_per_call": cfg.latency_ms,
        "by_resources": by_resources,
        "by_captures": by_captures,
        "flatness": {
            "from_resources": low["unrelated_resources"],
            "to_resources": high["unrelated_resources"],
            "ours_warm_p50_change_pct": round((p50_high - p50_low) / p50_low * 100.0, 1),
            "ours_warm_calls": [low["ours_warm"]["arm_calls_p50"], high["ours_warm"]["arm_calls_p50"]],
            "ours_cold_calls": [low["ours_cold"]["arm_calls_p50"], high["ours_cold"]["arm_calls_p50"]],
            "baseline_p50_ms": [low["baseline"].get("p50_ms"), high["baseline"].get("p50_ms")],
            "baseline_calls": [low["baseline"].get("arm_calls_p50"), high["baseline"].get("arm_calls_p50")],
        },
    }


# ------------------------------------------------------------------ faults


def faults_section(cfg: Config) -> dict[str, Any]:
    """Alerts (1/3 cold, 2/3 warm) from a few concurrent callers while a share of the app's ARM calls is
    answered 429 with Retry-After. The benchmark's own cleanup (DELETE) is not faulted."""
    per_path = max(cfg.fault_callers, cfg.fault_alerts // 3)
    bench = build_world(per_path + 1, unrelated=cfg.resources, background_per_region=1)
    progress(
        f"faults: {per_path * 3} alerts, {cfg.fault_probability:.0%} of ARM calls answered 429 "
        f"Retry-After {cfg.fault_retry_after:g}, {cfg.fault_callers} callers"
    )

    def body(session: _Session) -> dict[str, Any]:
        emu = session.emu
        emu.latency = cfg.latency_s
        rules = [
            emu.faults.add(
                method=method,
                status=429,
                retry_after=cfg.fault_retry_after,
                probability=cfg.fault_probability,
            )
            for method in ("GET", "PUT", "POST")
        ]
        vms = bench.take(per_path)
        lock = threading.Lock()
        records: list[tuple[str, str, Answer]] = []

        def caller(mine: Sequence[VirtualMachine]) -> None:
            client = WebhookClient(session.client.url)
            cleaner = bench_network_client(emu)
            try:
                for path in ("cold", "warm", "warm"):
                    for vm in mine:
                        alert_id = new_alert_id(emu.subscription_id)
                        answer = client.post(alert_body(alert_id, vm.id, vm.name))
                        with lock:
                            records.append((path, alert_id, answer))
                        if answer.capture is not None:
                            delete_capture(emu, cleaner, answer.capture)
            finally:
                client.close()
                cleaner.close()

        emu.clear_log()
        started = time.perf_counter()
        with ThreadPoolExecutor(cfg.fault_callers) as pool:
            futures = [pool.submit(caller, vms[i :: cfg.fault_callers]) for i in range(cfg.fault_callers)]
            for future in futures:
                future.result()
        elapsed = time.perf_counter() - started
        log = emu.request_log
        for rule in rules:
            emu.faults.remove(rule)
        latencies = [a.seconds for _, _, a in records]
        statuses: dict[str, int] = {}
        outcomes: dict[str, int] = {}
        retried = 0
        for path, alert_id, answer in records:
            statuses[str(answer.status)] = statuses.get(str(answer.status), 0) + 1
            outcomes[answer.outcome] = outcomes.get(answer.outcome, 0) + 1
            decision = session.decisions.by_alert.pop(alert_id, None)
            if decision is not None and int(decision["armCalls"]) > NOMINAL_CALLS[path]:
                retried += 1
        app_calls = [r for r in log if r.method != "DELETE"]
        within = sum(1 for s in latencies if s <= cfg.budget_s)
        return {
            "alerts": len(records),
            "callers": cfg.fault_callers,
            "fault": {
                "status": 429,
                "retry_after_s": cfg.fault_retry_after,
                "probability": cfg.fault_probability,
                "methods": ["GET", "PUT", "POST"],
            },
            "elapsed_s": round(elapsed, 2),
            **latency_stats(latencies),
            "budget_s": cfg.budget_s,
            "within_budget": within,
            "within_budget_pct": round(within / len(latencies) * 100.0, 2) if latencies else 0.0,
            "statuses": statuses,
            "outcomes": outcomes,
            "app_arm_calls": len(app_calls),
            "injected_429": sum(1 for r in app_calls if r.status == 429 and r.fault),
            "alerts_retried": retried,
        }

    result = _run_session(bench, cfg, body)
    result["latency_ms_per_call"] = cfg.latency_ms
    return result


# ------------------------------------------------------------------ one delivery, many targets


def delivery_section(cfg: Config) -> dict[str, Any]:
    """One manual request naming many VMs (none seen before: each needs its VM lookup), with every ARM
    call slowed to `delivery_latency_ms`; then the same request again, as Azure Monitor retries a 503,
    until nothing is left unavailable. Shows that one deadline bounds the whole delivery and that a
    retry finishes the job (what started answers `duplicate`)."""
    bench = build_world(sum(cfg.delivery_targets) + 1, unrelated=cfg.resources)
    progress(
        f"delivery: one request naming {', then '.join(map(str, cfg.delivery_targets))} VMs, "
        f"{cfg.delivery_latency_ms:g} ms per ARM call, redelivered while any target is unavailable"
    )

    def one_request(session: _Session, count: int) -> dict[str, Any]:
        emu = session.emu
        targets = [vm.id for vm in bench.take(count)]
        request = json.dumps({"targets": targets, "reason": f"bench: one delivery, {count} targets"}).encode()
        before = len(emu.capture_ids())
        deliveries = []
        for _ in range(1 + cfg.delivery_retries):
            emu.clear_log()
            answer = session.client.post(request)
            deliveries.append(
                {
                    "status": answer.status,
                    "seconds": round(answer.seconds, 3),
                    "counts": dict(answer.body.get("counts") or {}),
                    "results_shown": len(answer.body.get("results") or []),
                    "answer_bytes": len(json.dumps(answer.body)),
                    "arm_calls": len(emu.request_log),
                }
            )
            if answer.status != 503:
                break
        return {
            "targets": count,
            "deliveries": deliveries,
            "captures_created": len(emu.capture_ids()) - before,
        }

    def body(session: _Session) -> dict[str, Any]:
        session.emu.latency = cfg.delivery_latency_ms / 1000.0
        try:
            runs = [one_request(session, count) for count in cfg.delivery_targets]
        finally:
            session.emu.latency = 0.0
        return {"latency_ms_per_call": cfg.delivery_latency_ms, "budget_s": cfg.budget_s, "runs": runs}

    return _run_session(bench, cfg, body, captures=0)
