"""Follow-through: captures watched to their end, reported once, analysed, and cleaned up."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

import capture
from capture import app_context
from capture.monitor import Monitor
from devhost.stack import NotificationReceiver, capture_writer
from emulator import Emulator
from emulator.azurite import Azurite, dev_credential, upload_capture
from emulator.testing import SAMPLE_WORLD
from tests.conftest import RG, SUB, VM_DB_1, VM_WEB_1, request
from tests.flow.conftest import captures, point_app_at

# In the sample world vm-web-1 runs the synflood scenario and vm-db-1 the retransmissions one.
FLAKY = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-flaky-storage"
STUCK = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-agent-stuck"
PROVISION_FAILS = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-provision-fails"


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    server = NotificationReceiver(echo=False).start()
    yield server
    server.stop()


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch,
    azurite: Azurite,
    tls_files: tuple[Path, Path],
    receiver: NotificationReceiver,
) -> Iterator[Emulator]:
    """Emulator (frozen clock) writing capture files to Azurite; the app pointed at both."""
    with Emulator(SAMPLE_WORLD, time_scale=0.0, retry_after=0.0, cert_dir=tls_files[0].parent) as emu:
        emu.on_capture_stopped = capture_writer(azurite, emu.ca_cert_path)
        point_app_at(
            emu,
            monkeypatch,
            CAPTURE_BLOB_ENDPOINT=azurite.blob_endpoint,
            CAPTURE_NOTIFY_URL=receiver.url,
            CAPTURE_ALLOWED_SCOPES=f"/subscriptions/{SUB}",
        )
        yield emu
        capture.reset()


def start(call: Any, target: str, reason: str = "incident") -> str:
    status, body, _ = call("alert_webhook", request(body={"targets": [target], "reason": reason}))
    assert status == 202, body
    return str(body["results"][0]["capture"]["name"])


def monitor(clock: datetime | None = None) -> Monitor:
    """The process's monitor; with a clock, one that lives at that time (same Azure access)."""
    ctx = app_context()
    if clock is None:
        return ctx.monitor
    return Monitor(ctx.arm, ctx.settings, analyzer=ctx.blobs.analyzer(), clock=lambda: clock)


def blob_names(azurite: Azurite, tls_files: tuple[Path, Path]) -> list[str]:
    service = BlobServiceClient(
        azurite.blob_endpoint, credential=dev_credential(), connection_verify=str(tls_files[0])
    )
    return [b.name for b in service.get_container_client("network-watcher-logs").list_blobs()]


def blob_bytes(azurite: Azurite, tls_files: tuple[Path, Path], name: str) -> bytes:
    service = BlobServiceClient(
        azurite.blob_endpoint, credential=dev_credential(), connection_verify=str(tls_files[0])
    )
    return service.get_blob_client("network-watcher-logs", name).download_blob().readall()


def download(url: str, tls_files: tuple[Path, Path]) -> bytes:
    """What a person's browser gets for a link: no credential, only the URL."""
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    with urllib.request.urlopen(url, context=context, timeout=30) as response:
        body: bytes = response.read()
        return body


def test_capture_runs_stops_and_is_reported_once_then_deleted(call, world, receiver, azurite, tls_files):
    name = start(call, VM_WEB_1, "SYN storm on web")
    first = monitor().run()
    assert (len(first.reported), first.still_open) == (0, 1)
    world.advance(5)
    assert monitor().run().still_open == 1  # running
    world.advance(120)  # 60 s time limit reached: the emulator writes the .cap to Azurite
    result = monitor().run()
    assert [r.name for r in result.reported] == [name]
    assert captures(world) == [] or all(
        c["properties"]["provisioningState"] == "Deleting" for c in captures(world)
    )
    [note] = receiver.received
    assert note["outcome"] == "completed"
    assert note["capture"]["name"] == name
    assert note["capture"]["stopReason"] == "TimeExceeded"
    assert note["capture"]["stopReasonText"] == "time limit reached"
    assert note["capture"]["vm"] == "vm-web-1"
    assert note["capture"]["target"].casefold() == VM_WEB_1.casefold()
    assert note["capture"]["startTime"]
    assert note["capture"]["storagePath"].endswith(f"/{name}.cap")
    assert note["alert"]["instance"]
    # what did we catch: the synflood scenario's findings lead the notification
    notable = note["analysis"]["notable"]
    assert notable and "SYN" in notable[0]
    assert note["analysis"]["findings"]["tcp"]["syns_unanswered"] > 0
    names = blob_names(azurite, tls_files)
    cap = next(n for n in names if n.endswith(f"{name}.cap"))
    assert cap.replace(".cap", ".summary.json") in names
    assert cap.replace(".cap", ".png") in names
    # the notification's links open without keys and give the very bytes in storage
    assert note["text"].splitlines()[0] == note["headline"]
    assert note["headline"].startswith(note["analysis"]["headline"])  # what was found, first
    assert "SYN flood" in note["headline"] and "; vm-web-1" in note["headline"]
    for field, blob in (("file", cap), ("chart", cap.replace(".cap", ".png"))):
        assert download(note["links"][field], tls_files) == blob_bytes(azurite, tls_files, blob), field
    assert monitor().run().reported == []
    assert len(receiver.received) == 1


def test_failed_capture_is_reported_with_azures_error_and_cleaned_up(call, world, receiver):
    name = start(call, FLAKY)
    world.advance(30)
    result = monitor().run()
    [report] = result.reported
    assert (report.name, report.outcome, report.errors) == (name, "failed", ["StorageFailed"])
    note = receiver.received[0]
    assert note["outcome"] == "failed"
    assert "storage account" in note["capture"]["stopReasonText"]
    assert note["analysis"]["findings"] is None


def test_capture_that_never_starts_is_reported_after_the_grace_period(call, world, receiver):
    name = start(call, STUCK)
    world.advance(600)
    assert monitor().run().still_open == 1  # within the grace period by the path's start time
    later = datetime.now(UTC) + timedelta(seconds=app_context().settings.start_grace_seconds + 60)
    [report] = monitor(clock=later).run().reported
    assert (report.name, report.outcome) == (name, "failed")
    assert "did not start within" in str(report.stop_reason_text)


def test_provisioning_failure_is_reported(call, world, receiver):
    name = start(call, PROVISION_FAILS)
    world.advance(5)
    [report] = monitor().run().reported
    assert (report.name, report.outcome) == (name, "failed")
    assert "could not create" in str(report.stop_reason_text)


def test_notify_endpoint_down_loses_nothing(call, world, receiver, monkeypatch):
    name = start(call, VM_DB_1)
    world.advance(120)
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", "http://127.0.0.1:9/down")
    capture.reset()
    result = monitor().run()
    assert result.reported == [] and result.undelivered == [name]
    assert len(captures(world)) == 1  # kept for the next run
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", receiver.url)
    capture.reset()
    assert [r.name for r in monitor().run().reported] == [name]
    assert [n["capture"]["name"] for n in receiver.received] == [name]
    assert "retransmi" in " ".join(receiver.received[0]["analysis"]["notable"])


def test_two_runs_at_once_report_each_capture_once(call, world, receiver):
    names = {start(call, VM_WEB_1), start(call, VM_DB_1)}
    world.advance(120)
    barrier = threading.Barrier(2)
    results = []

    def run() -> None:
        barrier.wait()
        results.append(monitor().run())

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.append(monitor().run())  # and a third, after both
    reported = [r.name for result in results for r in result.reported]
    assert sorted(reported) == sorted(names)
    assert sorted(n["capture"]["name"] for n in receiver.received) == sorted(names)


def test_arm_calls_per_run_follow_our_open_captures_not_the_watchers_content(call, world, monkeypatch):
    monkeypatch.setenv("CAPTURE_MAX_SESSIONS", "100")  # the 25 foreign captures count against the limit
    capture.reset()
    for index in range(25):  # somebody else's captures on the same watcher
        world.seed_capture(
            f"manual-{index}",
            f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01",
            age_seconds=10,
        )
    world.clear_log()
    idle = monitor().run()
    assert idle.arm_calls == 1 + 2  # watchers of the subscription, one list per watcher
    start(call, VM_WEB_1)
    start(call, VM_DB_1)
    world.clear_log()
    busy = monitor().run()
    assert busy.still_open == 2
    assert busy.arm_calls == 1 + 2 + 2  # + one status query per open capture of ours


def test_captures_endpoints_show_live_status_then_the_stored_report(call, world, receiver, tls_files, caplog):
    started_status, started, _ = call("alert_webhook", request(body={"targets": [VM_WEB_1], "reason": "x"}))
    assert started_status == 202
    as_started = started["results"][0]["capture"]
    name = as_started["name"]
    world.advance(5)
    status, body, _ = call("list_captures", request("GET", "/api/captures"))
    assert status == 200
    [live] = body["captures"]
    assert (live["name"], live["status"], live["vm"]) == (name, "Running", "vm-web-1")
    assert live["storagePath"].endswith(f"{name}.cap")
    status, body, _ = call(
        "get_capture", request("GET", f"/api/captures/{name}", route_params={"name": name})
    )
    assert (status, body["capture"]["status"]) == (200, "Running")
    as_running = body["capture"]
    world.advance(120)
    monitor().run()
    status, body, _ = call(
        "get_capture", request("GET", f"/api/captures/{name}", route_params={"name": name})
    )
    assert status == 200
    as_reported = body["capture"]
    assert as_reported["outcome"] == "completed"
    assert as_reported["analysis"]["notable"]
    # One shape from the webhook's answer to the stored report; what is fixed stays the same.
    assert as_started.keys() == as_running.keys() == as_reported.keys() == live.keys()
    for key in ("name", "id", "vm", "watcher", "region", "storagePath", "alert", "follow"):
        assert as_started[key] == as_running[key] == as_reported[key], key
    assert (as_running["outcome"], as_running["analysis"]) == (None, None)
    assert as_reported["stopReasonText"] == "time limit reached"
    # links: none while running, fresh ones on every read of the report (never stored), all downloading
    assert as_running["links"] is None
    links = as_reported["links"]
    assert {k for k, v in links.items() if v} == {"file", "summary", "chart", "expires"}
    assert json.loads(download(links["summary"], tls_files))["tcp"]["syns_unanswered"] > 0
    _, again, _ = call("get_capture", request("GET", f"/api/captures/{name}", route_params={"name": name}))
    assert again["capture"]["links"]["expires"] >= links["expires"]
    assert app_context().blobs.final_report(name).links is None  # type: ignore[union-attr]
    assert "sig=" not in caplog.text
    status, body, _ = call("get_capture", request("GET", "/api/captures/nope", route_params={"name": "nope"}))
    assert (status, body["status"]) == (404, "not_found")
    status, body, _ = call("get_capture", request("GET", "/api/captures/..", route_params={"name": "../x"}))
    assert status == 400


def test_unreadable_capture_file_is_reported_with_the_reason(call, world, receiver, azurite):
    world.on_capture_stopped = None  # no file is written: the blob is missing
    start(call, VM_WEB_1)
    world.advance(120)
    [report] = monitor().run().reported
    assert report.analysis is not None
    assert report.analysis.error == "the capture file was not found in storage"
    assert receiver.received[0]["analysis"]["error"] == report.analysis.error


def test_corrupt_capture_file_is_reported_with_the_reason(call, world, receiver, azurite):
    def corrupt(stopped: Any) -> None:
        upload_capture(
            azurite.blob_endpoint,
            dev_credential(),
            stopped.storage_path,
            b"this is not a pcap file",
            connection_verify=world.ca_cert_path,
        )

    world.on_capture_stopped = corrupt
    start(call, VM_WEB_1)
    world.advance(120)
    [report] = monitor().run().reported
    assert report.analysis is not None
    assert report.analysis.error is not None
    assert report.analysis.error.startswith("the capture file could not be read")
    assert len(receiver.received) == 1
