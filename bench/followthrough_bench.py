"""The follow-through under load: many captures finishing at once, worked by 1 and 2 worker processes.

    python -m bench.followthrough_bench [--captures 200] [--size-mb 20] [--workers 1,2] [--json out.json]

One emulator (frozen clock) and Azurite (blob + queue) are shared by this process, which plays the
scheduler, and by `python -m devhost --queues` worker processes running the unmodified app, as Function
instances would. `--captures` captures in exactly the app's shape (our account and path layout) stop at
once; each has a real pcap of about `--size-mb` in Azurite (one generated file, uploaded under every
capture's path). Measured per worker count: the time from the scheduler's run to the last notification,
the ARM calls per capture (scheduler + worker, from the emulator's request log) and the peak RSS of each
worker process (VmHWM, read before it exits). The ARM calls a capture costs over its whole life are also
computed for a 60 s and a 5-hour time limit from the schedule (`capture.schedule`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SUB = "00000000-0000-0000-0000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-web-1"
STORAGE_ID = (
    f"/subscriptions/{SUB}/resourceGroups/rg-capture/providers/Microsoft.Storage/storageAccounts/stcaptures"
)


class _Receiver:
    """Counts notifications and remembers when the last one arrived."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.last = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                with receiver.lock:
                    receiver.names.add(doc["capture"]["name"])
                    receiver.last = time.perf_counter()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/notify"


def _hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(pattern: str) -> int | None:
    """The pid of this process's child whose command line contains `pattern` (Azurite's node process)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and pattern in cmdline:
            return int(entry.name)
    return None


def _start_worker() -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "devhost", "--app-dir", str(REPO_ROOT), "--port", "0", "--key", "k"),
            *("--no-local-settings", "--queues", "--queue-poll-interval", "0.2"),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Press Ctrl-C"):
            return proc
    proc.kill()
    raise RuntimeError("a worker host did not start")


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def lifetime_arm_calls(time_limit: int) -> dict[str, int]:
    """ARM calls one capture costs the follow-through over its life (the webhook's own are separate)."""
    from capture.schedule import check_instants
    from capture.settings import Settings

    defaults = Settings.model_fields
    longest = defaults["check_max_interval_seconds"].default
    grace = defaults["start_grace_seconds"].default
    status = len(set(check_instants(time_limit, longest, grace, time_limit + 30)))
    return {"status_queries": status, "worker": 3, "total": status + 3}


def run_once(captures: int, size_mb: float, workers: int) -> dict[str, Any]:
    from azure.storage.blob import BlobServiceClient

    import capture
    from capture.naming import blob_location, storage_path
    from capture.resource_ids import parse_resource_id
    from emulator import FOREIGN_CREDENTIAL_ENV, Emulator
    from emulator.azurite import Azurite, dev_credential
    from emulator.pcapgen import generate
    from emulator.testing import SAMPLE_WORLD
    from emulator.tls import ensure_certificate

    with tempfile.TemporaryDirectory() as tmp:
        cert, key = ensure_certificate(Path(tmp))
        receiver = _Receiver()
        with (
            Azurite(cert, key, memory_limit_mb=int(captures * size_mb * 1.3) + 1024) as blobs,
            Azurite(cert, key, service="queue") as queues,
            Emulator(SAMPLE_WORLD, time_scale=0.0, retry_after=0.0, cert_dir=Path(tmp)) as emu,
        ):
            for name in FOREIGN_CREDENTIAL_ENV:
                os.environ.pop(name, None)
            settings = {
                **emu.env(),
                "CAPTURE_STORAGE_ACCOUNT_ID": STORAGE_ID,
                "CAPTURE_BLOB_ENDPOINT": blobs.blob_endpoint,
                "CaptureQueue__queueServiceUri": queues.queue_endpoint,
                "CAPTURE_NOTIFY_URL": receiver.url,
                "CAPTURE_ALLOWED_SCOPES": f"/subscriptions/{SUB}",
                "CAPTURE_MAX_SESSIONS": "10000",
            }
            with _environment(settings):
                capture.reset()
                service = BlobServiceClient(
                    blobs.blob_endpoint, credential=dev_credential(), connection_verify=str(cert)
                )
                container = service.get_container_client("network-watcher-logs")
                container.create_container()
                data = generate("web", duration_s=300, target_bytes=int(size_mb * 1_000_000)).data
                started = emu.clock.now_datetime()
                names = [f"alertcap-vm-web-1-{index:016x}" for index in range(captures)]
                for name in names:
                    path = storage_path(
                        "stcaptures", name, parse_resource_id(VM), started, "bench", "alert-1"
                    )
                    emu.seed_capture(
                        name,
                        VM,
                        time_limit_in_seconds=60,
                        properties={"storageLocation": {"storageId": STORAGE_ID, "storagePath": path}},
                    )
                    container.upload_blob(blob_location(path)[1], data, overwrite=True)
                emu.advance(120)
                monitor = capture.app_context().monitor
                monitor.clock = lambda: started + timedelta(seconds=120)
                procs = [_start_worker() for _ in range(workers)]
                azurite_pid = _child("azurite-blob")
                cpu_before = {p.pid: _cpu_seconds(p.pid) for p in procs}
                azurite_before = _cpu_seconds(azurite_pid) if azurite_pid else 0.0
                own_before = time.process_time()
                try:
                    emu.clear_log()
                    t0 = time.perf_counter()
                    queued = monitor.schedule().queued
                    deadline = t0 + 1800
                    while len(receiver.names) < captures and time.perf_counter() < deadline:
                        time.sleep(0.2)
                    elapsed = receiver.last - t0
                    memory = [_hwm_mb(p.pid) for p in procs]
                    cpu = {
                        "workers": [round(_cpu_seconds(p.pid) - cpu_before[p.pid], 1) for p in procs],
                        "azurite_blob": round(_cpu_seconds(azurite_pid) - azurite_before, 1)
                        if azurite_pid
                        else None,
                        "scheduler_and_emulator": round(time.process_time() - own_before, 1),
                    }
                finally:
                    for proc in procs:
                        proc.terminate()
                    for proc in procs:
                        proc.communicate(timeout=60)
                log = emu.request_log
                per_capture = {
                    "status": sum(1 for r in log if r.path.endswith("/queryStatus")) / captures,
                    "get": sum(
                        1
                        for r in log
                        if r.method == "GET"
                        and "/packetCaptures/" in r.path
                        and not r.path.endswith("/queryStatus")
                    )
                    / captures,
                    "delete": sum(1 for r in log if r.method == "DELETE") / captures,
                    "lists_per_run": sum(
                        1 for r in log if r.method == "GET" and r.path.endswith("/packetCaptures")
                    ),
                }
                capture.reset()
        receiver.server.shutdown()
    return {
        "workers": workers,
        "captures": captures,
        "file_mb": round(len(data) / 1e6, 1),
        "queued": len(queued),
        "reported": len(receiver.names),
        "seconds_to_last_report": round(elapsed, 1),
        "captures_per_s": round(captures / elapsed, 1) if elapsed > 0 else None,
        "arm_calls_per_capture": per_capture,
        "peak_rss_mb_per_worker": [round(m, 1) if m else None for m in memory],
        "cpu_seconds": cpu,
        "machine_cpus": os.cpu_count(),
        "loadavg_at_end": Path("/proc/loadavg").read_text().split()[:3],
    }


def run(captures: int = 200, size_mb: float = 20.0, workers: tuple[int, ...] = (1, 2)) -> dict[str, Any]:
    return {
        "runs": [run_once(captures, size_mb, n) for n in workers],
        "lifetime_arm_calls": {"60s": lifetime_arm_calls(60), "5h": lifetime_arm_calls(18000)},
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.followthrough_bench", description=__doc__)
    parser.add_argument("--captures", type=int, default=200)
    parser.add_argument("--size-mb", type=float, default=20.0)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = run(args.captures, args.size_mb, tuple(int(w) for w in args.workers.split(",")))
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
