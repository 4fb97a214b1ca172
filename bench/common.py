"""Shared pieces of the benchmark: configuration, statistics, the benchmark world, app environment,
a keep-alive webhook client, the in-process host, and the emulator-side bookkeeping.

Every section runs the unmodified app against the local ARM emulator (``emulator.Emulator``) with the same
per-call latency; ARM calls are counted and timed from the emulator's request log.
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import capture
from emulator.core import FOREIGN_CREDENTIAL_ENV

if TYPE_CHECKING:
    from azure.mgmt.network import NetworkManagementClient

    from devhost import LocalHost
    from emulator import Emulator
    from emulator.world import VirtualMachine, World

ROOT = Path(__file__).resolve().parents[1]
FUNCTION_KEY = "bench-key"
# Watchers of the benchmark world: a default-named one and one with a custom name and group (both exist
# in real subscriptions; the app finds watchers by location, never by name).
REGIONS: tuple[tuple[str, str, str], ...] = (
    ("eastus", "NetworkWatcherRG", "NetworkWatcher_eastus"),
    ("westeurope", "rg-network", "nw-weu-prod"),
)
SECTIONS = (
    "latency",
    "scaling",
    "storm",
    "coldstart",
    "faults",
    "delivery",
    "analysis",
    "followthrough",
    "recorder",
)


@dataclass(frozen=True)
class Config:
    """Every size and knob of one benchmark run (the CLI flags map onto these)."""

    latency_ms: float = 25.0  # emulated ARM latency per call
    alerts: int = 300  # fired alerts per latency run (1/3 cold, 2/3 warm)
    runs: int = 3  # latency runs; the reported numbers are medians over runs
    first_ever: int = 5  # first-ever alerts per latency run (fresh app state each)
    resources: int = 1000  # unrelated resources in the subscription (latency, storm, capture sweep)
    baseline_alerts: int = 8  # measured baseline alerts per latency run
    scaling_resources: tuple[int, ...] = (100, 1000, 10000)
    scaling_captures: tuple[int, ...] = (1, 10, 100)
    scaling_warm: int = 40  # warm alerts of ours per scaling point
    scaling_cold: int = 10  # cold alerts of ours per scaling point
    scaling_baseline: int = 5  # baseline alerts per scaling point
    storm_deliveries: int = 1000
    storm_vms: int = 100
    storm_callers: int = 32
    storm_max_sessions: int = 40
    fault_alerts: int = 200
    fault_probability: float = 0.05
    fault_retry_after: float = 1.0
    fault_callers: int = 4
    # Targets of one manual request (the whole-delivery budget); 500 is the cap per delivery.
    delivery_targets: tuple[int, ...] = (300, 500)
    delivery_latency_ms: float = 100.0  # ARM latency per call in that section
    delivery_retries: int = 5  # at most this many redeliveries until nothing is unavailable
    coldstart_runs: int = 3
    import_runs: int = 5
    analysis_size_mb: float = 200.0
    analysis_repeat: int = 3
    recorder_runs: int = 5  # flight-recorder freezes (the first cold)
    followthrough_captures: int = 200  # captures finishing at once, worked by 1 and 2 worker processes
    followthrough_size_mb: float = 20.0
    page_size: int = 1000  # ARM list page size (resources, watchers, captures)
    # Retry-After on LRO answers, whole seconds (the SDK reads the header of LRO answers as an int); the
    # emulated operations finish after as long; 0 = no header and operations finish at once.
    retry_after: int = 1
    budget_s: float = 8.0  # the webhook's time budget (CAPTURE_WEBHOOK_BUDGET_SECONDS default)
    seed: int = 0
    sections: tuple[str, ...] = SECTIONS

    @property
    def latency_s(self) -> float:
        return self.latency_ms / 1000.0

    @classmethod
    def quick(cls, **overrides: Any) -> Config:
        """A few minutes less: fewer samples, smaller storm and analysis file."""
        base = cls(
            alerts=90,
            runs=1,
            first_ever=3,
            baseline_alerts=3,
            scaling_warm=15,
            scaling_cold=5,
            scaling_baseline=2,
            storm_deliveries=300,
            fault_alerts=60,
            coldstart_runs=1,
            import_runs=2,
            analysis_size_mb=20.0,
            analysis_repeat=1,
            recorder_runs=3,
            followthrough_captures=60,
            followthrough_size_mb=10.0,
        )
        return replace(base, **overrides)

    @classmethod
    def tiny(cls, **overrides: Any) -> Config:
        """The smoke test's configuration: every section, tiny sizes, ~1 ms latency, short LRO waits."""
        base = cls(
            latency_ms=1.0,
            alerts=9,
            runs=1,
            first_ever=1,
            resources=20,
            baseline_alerts=2,
            scaling_resources=(10, 40),
            scaling_captures=(1, 3),
            scaling_warm=3,
            scaling_cold=2,
            scaling_baseline=1,
            storm_deliveries=40,
            storm_vms=10,
            storm_callers=8,
            storm_max_sessions=3,
            fault_alerts=12,
            followthrough_captures=4,
            followthrough_size_mb=0.5,
            fault_retry_after=0.05,
            fault_callers=3,
            delivery_targets=(24,),
            delivery_latency_ms=1.0,
            coldstart_runs=1,
            import_runs=1,
            analysis_size_mb=2.0,
            analysis_repeat=1,
            recorder_runs=2,
            page_size=50,
            retry_after=0,
        )
        return replace(base, **overrides)


# ------------------------------------------------------------------ statistics


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was actually measured."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def ms(seconds: float) -> float:
    return round(seconds * 1000.0, 2)


def latency_stats(samples_s: Sequence[float]) -> dict[str, Any]:
    """n, p50 / p95 / p99 / max and mean, in milliseconds."""
    if not samples_s:
        return {"n": 0}
    return {
        "n": len(samples_s),
        "p50_ms": ms(percentile(samples_s, 50)),
        "p95_ms": ms(percentile(samples_s, 95)),
        "p99_ms": ms(percentile(samples_s, 99)),
        "max_ms": ms(max(samples_s)),
        "mean_ms": ms(statistics.fmean(samples_s)),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
    }
    try:
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    try:
        from importlib.metadata import version

        info["sdk"] = {
            name: version(name)
            for name in (
                "azure-core",
                "azure-identity",
                "azure-mgmt-network",
                "azure-mgmt-resource",
                "azure-functions",
            )
        }
    except Exception:  # metadata is informative only
        pass
    return info


def proc_status_mb(pid: int | str, key: str) -> float | None:
    """VmHWM / VmRSS of a process in MB (None when /proc is not available)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def proc_cpu_seconds(pid: int | str) -> float | None:
    """User + system CPU seconds of a process so far (None when /proc is not available)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ the benchmark world


@dataclass
class BenchWorld:
    """A subscription with a watcher in two regions, a capture storage account, target VMs spread over
    both regions, "background" VMs that seeded captures record on, and unrelated resources."""

    world: World
    storage_id: str
    targets: list[VirtualMachine]
    background: list[VirtualMachine] = field(default_factory=list)
    unrelated: int = 0
    _next_target: int = 0

    def take(self, count: int) -> list[VirtualMachine]:
        """Fresh target VMs (never alerted on before in this world)."""
        if self._next_target + count > len(self.targets):
            raise RuntimeError(f"the benchmark world has only {len(self.targets)} target VMs")
        taken = self.targets[self._next_target : self._next_target + count]
        self._next_target += count
        return taken

    def add_unrelated(self, total: int) -> None:
        """Grow the unrelated resources to ``total``."""
        if total > self.unrelated:
            self.world.add_unrelated_resources(total - self.unrelated)
            self.unrelated = total


def build_world(targets: int, *, unrelated: int, background_per_region: int = 0) -> BenchWorld:
    from emulator.world import World

    world = World()
    for region, group, name in REGIONS:
        world.add_watcher(name, resource_group=group, location=region)
    storage = world.add_storage_account("stcaptures", resource_group="rg-capture", location="eastus")
    vms = []
    for i in range(targets):
        region = REGIONS[i % len(REGIONS)][0]
        vms.append(world.add_vm(f"vm-{region}-{i:05d}", resource_group=f"rg-app-{region}", location=region))
    background = []
    for region, _, _ in REGIONS:
        for i in range(background_per_region):
            background.append(
                world.add_vm(f"vm-bg-{region}-{i:03d}", resource_group=f"rg-bg-{region}", location=region)
            )
    bench = BenchWorld(world, storage.id, vms, background)
    bench.add_unrelated(unrelated)
    return bench


def seed_captures(emu: Emulator, bench: BenchWorld, per_watcher: int, *, start: int = 0) -> None:
    """Existing long-running captures on every watcher (numbered ``start`` .. ``per_watcher - 1``), on the
    background VMs of its region: listed by everyone, never on an alert's target VM."""
    for region, _, _ in REGIONS:
        hosts = [vm for vm in bench.background if vm.location == region]
        if not hosts:
            raise RuntimeError("seeding captures needs background VMs")
        for i in range(start, per_watcher):
            emu.seed_capture(f"existing-{region}-{i:04d}", hosts[i % len(hosts)], time_limit_in_seconds=18000)


def start_emulator(bench: BenchWorld, cfg: Config, *, latency: float = 0.0) -> Emulator:
    """The emulator as every section uses it: real-time clock (LROs finish after ``retry_after`` seconds,
    so one poll per LRO), the configured list page size and Retry-After."""
    from emulator import Emulator

    return Emulator(
        bench.world,
        time_scale=1.0,
        latency=latency,
        page_size=cfg.page_size,
        retry_after=cfg.retry_after,
        operation_seconds=cfg.retry_after,
        lro_in_progress_polls=1,
        seed=cfg.seed,
    ).start()


def bench_network_client(emu: Emulator) -> NetworkManagementClient:
    """The benchmark's own client (for cleaning up between alerts): tokens straight from the emulator."""
    from azure.mgmt.network import NetworkManagementClient

    return NetworkManagementClient(
        emu.credential(),
        emu.subscription_id,
        base_url=emu.arm_endpoint,
        connection_verify=emu.ca_cert_path,
        polling_interval=0,
    )


def split_watcher_id(watcher_id: str) -> tuple[str, str]:
    """(resource group, name) of a watcher resource ID."""
    parts = watcher_id.split("/")
    return parts[4], parts[8]


@contextmanager
def latency_paused(emu: Emulator) -> Iterator[None]:
    """No injected latency meanwhile (sequential sections only: the setting is global)."""
    saved = emu.latency
    emu.latency = 0.0
    try:
        yield
    finally:
        emu.latency = saved


def delete_capture(emu: Emulator, client: NetworkManagementClient, capture: dict[str, Any]) -> None:
    """What the capture monitor does once a capture ended: delete it (202, not waited for)."""
    group, watcher = split_watcher_id(str(capture["watcher"]))
    client.packet_captures.begin_delete(group, watcher, str(capture["name"]), polling=False)


# ------------------------------------------------------------------ app environment


def app_settings(emu: Emulator, bench: BenchWorld, **settings: str) -> dict[str, str]:
    """The application settings that point the unmodified app at the emulator."""
    return {**emu.env(), "CAPTURE_STORAGE_ACCOUNT_ID": bench.storage_id, **settings}


@contextmanager
def app_environment(values: dict[str, str]) -> Iterator[None]:
    """Set app settings in os.environ (restored afterwards) and reset the app's per-process state."""
    saved = {key: os.environ.get(key) for key in (*values, *FOREIGN_CREDENTIAL_ENV)}
    for key in FOREIGN_CREDENTIAL_ENV:
        os.environ.pop(key, None)
    os.environ.update(values)
    capture.reset()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        capture.reset()


def subprocess_env(values: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_CREDENTIAL_ENV}
    env.update(values)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@contextmanager
def in_process_host() -> Iterator[LocalHost]:
    """devhost.LocalHost serving function_app in this process (quiet: no request log lines)."""
    from devhost import LocalHost

    host = LocalHost(ROOT, key=FUNCTION_KEY, port=0, load_settings=False).start()
    try:
        yield host
    finally:
        host.stop()


# ------------------------------------------------------------------ alerts and the webhook client

_alert_counter = 0
_alert_lock = threading.Lock()


def new_alert_id(subscription: str) -> str:
    """A unique Azure Monitor alert instance ID (the app's de-duplication key)."""
    global _alert_counter
    with _alert_lock:
        _alert_counter += 1
        n = _alert_counter
    return (
        f"/subscriptions/{subscription}/providers/Microsoft.AlertsManagement/alerts/"
        f"{os.getpid():08x}-0000-4000-8000-{n:012x}"
    )


def alert_body(alert_id: str, vm_id: str, vm_name: str, rule: str = "bench-network-out") -> bytes:
    """A fired metric alert in the common alert schema, as Azure Monitor posts it (region not included:
    metric alerts do not carry it, so the app looks the VM up once)."""
    return json.dumps(
        {
            "schemaId": "azureMonitorCommonAlertSchema",
            "data": {
                "essentials": {
                    "alertId": alert_id,
                    "alertRule": rule,
                    "severity": "Sev2",
                    "signalType": "Metric",
                    "monitorCondition": "Fired",
                    "monitoringService": "Platform",
                    "alertTargetIDs": [vm_id.lower()],
                    "configurationItems": [vm_name],
                    "originAlertId": f"{rule}_{vm_name}",
                    "firedDateTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "description": f"Network Out Total > 3 on {vm_name}",
                    "essentialsVersion": "1.0",
                    "alertContextVersion": "1.0",
                },
                "alertContext": {
                    "conditionType": "SingleResourceMultipleMetricCriteria",
                    "condition": {
                        "windowSize": "PT5M",
                        "allOf": [
                            {
                                "metricName": "Network Out Total",
                                "metricNamespace": "Microsoft.Compute/virtualMachines",
                                "operator": "GreaterThan",
                                "threshold": "3",
                                "timeAggregation": "Total",
                                "dimensions": [],
                                "metricValue": 1234.0,
                            }
                        ],
                    },
                },
                "customProperties": None,
            },
        }
    ).encode()


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    seconds: float

    @property
    def outcome(self) -> str:
        return str(self.body.get("status", f"http-{self.status}"))

    @property
    def capture(self) -> dict[str, Any] | None:
        for result in self.body.get("results") or []:
            if result.get("outcome") == "started" and result.get("capture"):
                return dict(result["capture"])
        return None


class WebhookClient:
    """One keep-alive HTTP/1.1 connection to the webhook, as an action group's sender keeps one."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        self.url = url
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._target = parts.path + (f"?{parts.query}" if parts.query else "")
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> Answer:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
            started = time.perf_counter()
            try:
                self._conn.request(
                    "POST", self._target, body=body, headers={"Content-Type": "application/json"}
                )
                response = self._conn.getresponse()
                raw = response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                continue
            elapsed = time.perf_counter() - started
            try:
                parsed = json.loads(raw) if raw else {}
            except ValueError:
                parsed = {}
            return Answer(response.status, parsed if isinstance(parsed, dict) else {}, elapsed)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class DecisionLog(logging.Handler):
    """Collects the app's own decision lines (``capture.decisions``: armCalls, durationMs) by alert."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.by_alert: dict[str, dict[str, Any]] = {}
        self._logger = logging.getLogger("capture.decisions")
        self._saved_level = self._logger.level

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.loads(record.getMessage())
        except ValueError:
            return
        if isinstance(line, dict) and line.get("event") == "capture_decision":
            self.by_alert[str(line.get("alert"))] = line

    def __enter__(self) -> DecisionLog:
        self._logger.addHandler(self)
        self._logger.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._saved_level)


@dataclass
class Sample:
    """One fired alert, as measured."""

    path: str  # first | cold | warm
    status: int
    outcome: str
    latency_s: float
    arm_calls: int  # from the emulator's request log (retries included)
    arm_wait_s: float  # sum of the emulator-side durations of those requests (injected latency included)
    identity_calls: int = 0
    app_arm_calls: int | None = None  # what the app itself counted (call_scope), from its decision line
    app_duration_s: float | None = None  # the app's own durationMs (handler start to decision)

    @property
    def overhead_s(self) -> float:
        return self.latency_s - self.arm_wait_s


def fire(
    client: WebhookClient, emu: Emulator, vm: VirtualMachine, path: str, decisions: DecisionLog | None = None
) -> tuple[Sample, Answer]:
    """Post one alert, sequentially: the emulator's log then holds exactly this alert's requests."""
    alert_id = new_alert_id(emu.subscription_id)
    emu.clear_log()
    answer = client.post(alert_body(alert_id, vm.id, vm.name))
    log = emu.request_log
    decision = decisions.by_alert.pop(alert_id, None) if decisions is not None else None
    sample = Sample(
        path=path,
        status=answer.status,
        outcome=answer.outcome,
        latency_s=answer.seconds,
        arm_calls=len(log),
        arm_wait_s=sum(r.duration for r in log),
        identity_calls=len(emu.identity_log),
        app_arm_calls=int(decision["armCalls"]) if decision else None,
        app_duration_s=float(decision["durationMs"]) / 1000.0 if decision else None,
    )
    return sample, answer


def summarize_samples(samples: Sequence[Sample]) -> dict[str, Any]:
    """Latency percentiles, ARM calls and in-process overhead of a set of alerts of one path."""
    if not samples:
        return {"n": 0}
    calls = [s.arm_calls for s in samples]
    outcomes: dict[str, int] = {}
    for s in samples:
        outcomes[s.outcome] = outcomes.get(s.outcome, 0) + 1
    summary: dict[str, Any] = {
        **latency_stats([s.latency_s for s in samples]),
        "arm_calls_p50": median(calls),
        "arm_calls_max": max(calls),
        "arm_calls_mean": round(statistics.fmean(calls), 2),
        "arm_wait_p50_ms": ms(median([s.arm_wait_s for s in samples])),
        "overhead_p50_ms": ms(median([s.overhead_s for s in samples])),
        "overhead_p95_ms": ms(percentile([s.overhead_s for s in samples], 95)),
        "identity_calls_max": max(s.identity_calls for s in samples),
        "outcomes": outcomes,
    }
    app_calls = [s.app_arm_calls for s in samples if s.app_arm_calls is not None]
    if app_calls:
        summary["app_counted_calls_max"] = max(app_calls)
    app_times = [s.app_duration_s for s in samples if s.app_duration_s is not None]
    if app_times:
        summary["app_duration_p50_ms"] = ms(median(app_times))
    return summary


def progress(message: str) -> None:
    """Progress lines go to stderr, so stdout keeps the tables."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ the app in its own process


class SubprocessHost:
    """``python -m devhost`` serving function_app in a new process (as a Functions worker would)."""

    def __init__(self, settings: dict[str, str], stderr_path: Path, *, start_timeout: float = 120.0) -> None:
        self._env = subprocess_env(settings)
        self._stderr_path = stderr_path
        self._timeout = start_timeout
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("the host is not started")
        return self._proc.pid

    @property
    def alert_url(self) -> str:
        return f"{self.url}/api/alerts?code={FUNCTION_KEY}"

    def start(self) -> float:
        """Spawn it and wait for its banner; returns the seconds from spawn to listening."""
        started = time.perf_counter()
        with self._stderr_path.open("w") as stderr:
            self._proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "devhost",
                    "--app-dir",
                    str(ROOT),
                    "--port",
                    "0",
                    "--key",
                    FUNCTION_KEY,
                    "--no-local-settings",
                    "--log-level",
                    "WARNING",
                ],
                cwd=ROOT,
                env=self._env,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        watchdog = threading.Timer(self._timeout, self._proc.kill)
        watchdog.start()
        try:
            assert self._proc.stdout is not None
            for line in self._proc.stdout:
                match = re.search(r"Listening on (http://\S+)", line)
                if match:
                    self.url = match.group(1)
                if line.startswith("Press Ctrl-C"):
                    break
        finally:
            watchdog.cancel()
        if not self.url or self._proc.poll() is not None:
            self.stop()
            raise RuntimeError(f"the local host did not start: {self.stderr_tail()}")
        return time.perf_counter() - started

    def stderr_text(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, chars: int = 2000) -> str:
        return self.stderr_text()[-chars:]

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        self._proc = None
