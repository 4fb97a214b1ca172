"""Follow-through: captures watched to their end, queued once, reported once, analysed, and cleaned up."""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

import capture
from capture import app_context
from capture.monitor import Monitor
from capture.naming import blob_location
from devhost.stack import NotificationReceiver
from emulator import Emulator
from emulator.azurite import Azurite, dev_credential, upload_capture
from tests.conftest import RG, STORAGE_ID, SUB, VM_DB_1, VM_WEB_1, request
from tests.flow.conftest import captures, reporting_world
from tests.queues import Queues

# In the sample world vm-web-1 runs the synflood scenario and vm-db-1 the retransmissions one.
FLAKY = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-flaky-storage"
STUCK = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-agent-stuck"
PROVISION_FAILS = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-provision-fails"


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch,
    azurite: Azurite,
    tls_files: tuple[Path, Path],
    receiver: NotificationReceiver,
    queues: Queues,
) -> Iterator[Emulator]:
    """Emulator (frozen clock) writing capture files to Azurite; the app pointed at both and the queue."""
    with reporting_world(
        monkeypatch, azurite, tls_files, receiver, CAPTURE_ALLOWED_SCOPES=f"/subscriptions/{SUB}"
    ) as emu:
        yield emu


def start(call: Any, world: Emulator, target: str, reason: str | None = None) -> str:
    """Start a capture; the frozen emulated clock then catches up with the wall clock the app's
    storage path took its start time from, so ages on both clocks agree.

    Each test's alert is its own (a fresh reason): the tests share one Azurite, and the same alert in
    the same second would be the same capture, with the same file and queue marker.
    """
    reason = reason or f"incident {uuid.uuid4().hex[:8]}"
    status, body, _ = call("alert_webhook", request(body={"targets": [target], "reason": reason}))
    assert status == 202, body
    world.advance(max(0.0, time.time() - world.clock.now()))
    return str(body["results"][0]["capture"]["name"])


def monitor(world: Emulator, clock: datetime | None = None) -> Monitor:
    """The process's monitor living on the emulator's clock (or at `clock`), as the scheduler and worker see it."""
    ctx = app_context()
    ctx.monitor.clock = (lambda: clock) if clock is not None else world.clock.now_datetime
    return ctx.monitor


def follow(world: Emulator, queues: Queues, clock: datetime | None = None) -> list[str]:
    """One scheduler run, then the queue worked until empty: the names queued by that run."""
    queued = monitor(world, clock).schedule().queued
    queues.drain()
    return queued


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


def test_capture_runs_stops_and_is_reported_once_with_one_message_then_deleted(
    call, world, receiver, azurite, tls_files, queues
):
    name = start(call, world, VM_WEB_1, f"SYN storm on web {uuid.uuid4().hex[:8]}")
    first = monitor(world).schedule()
    assert (first.queued, first.still_open, first.checked) == ([], 1, 0)  # not due: no status query
    world.advance(5)
    assert monitor(world).schedule().still_open == 1  # running
    world.advance(120)  # 60 s time limit reached: the emulator writes the .cap to Azurite
    result = monitor(world).schedule()
    assert result.queued == [name]
    [message] = queues.peek()
    assert (message["capture"], message["region"]) == (name, "eastus")
    assert message["storagePath"].endswith(f"/{name}.cap")
    assert monitor(world).schedule().queued == []  # the next run does not queue it again
    assert queues.count() == 1
    assert queues.drain() == ["ok"]
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
    world.advance(600)
    assert follow(world, queues) == []
    assert len(receiver.received) == 1


def test_a_duplicate_message_is_harmless(call, world, receiver, queues):
    name = start(call, world, VM_WEB_1)
    world.advance(120)
    assert monitor(world).schedule().queued == [name]
    [message] = queues.peek()
    queues.main.send_message(json.dumps(message).encode())  # a redelivery, or an operator's resend
    assert queues.drain() == ["ok", "ok"]
    assert [n["capture"]["name"] for n in receiver.received] == [name]


def test_failed_capture_is_reported_with_azures_error_and_cleaned_up(call, world, receiver, queues):
    name = start(call, world, FLAKY)
    world.advance(70)
    assert follow(world, queues) == [name]
    note = receiver.received[0]
    assert (note["capture"]["name"], note["outcome"], note["capture"]["errors"]) == (
        name,
        "failed",
        ["StorageFailed"],
    )
    assert "storage account" in note["capture"]["stopReasonText"]
    assert note["analysis"]["findings"] is None


def test_capture_that_never_starts_is_reported_after_the_grace_period(call, world, receiver, queues):
    name = start(call, world, STUCK)
    world.advance(100)
    assert follow(world, queues) == []  # due (end of its 60 s), but within the grace period
    # The grace's own check instant (grace + 30 s after the start), with time past the grace:
    later = world.clock.now_datetime() + timedelta(seconds=app_context().settings.start_grace_seconds - 70)
    assert follow(world, queues, clock=later) == [name]
    [note] = receiver.received
    assert (note["capture"]["name"], note["outcome"]) == (name, "failed")
    assert "did not start within" in str(note["capture"]["stopReasonText"])


def test_provisioning_failure_is_reported(call, world, receiver, queues):
    name = start(call, world, PROVISION_FAILS)
    world.advance(5)
    assert follow(world, queues) == [name]  # not due by the clock, but a failed provisioning is final
    [note] = receiver.received
    assert (note["capture"]["name"], note["outcome"]) == (name, "failed")
    assert "could not create" in str(note["capture"]["stopReasonText"])


def test_notify_endpoint_down_retries_the_message_and_loses_nothing(
    call, world, receiver, queues, monkeypatch
):
    name = start(call, world, VM_DB_1)
    world.advance(120)
    assert monitor(world).schedule().queued == [name]
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", "http://127.0.0.1:9/down")
    capture.reset()
    assert queues.work() == ["ReportFailed"]
    assert len(captures(world)) == 1 and queues.count() == 1  # kept, the message visible again
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", receiver.url)
    capture.reset()
    assert queues.work() == ["ok"]
    assert [n["capture"]["name"] for n in receiver.received] == [name]
    assert "retransmi" in " ".join(receiver.received[0]["analysis"]["notable"])


def test_a_message_that_always_fails_ends_in_the_poison_queue_and_is_reported_as_failed(
    call, world, receiver, queues, monkeypatch
):
    name = start(call, world, VM_DB_1)
    world.advance(120)
    assert monitor(world).schedule().queued == [name]
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", f"{receiver.url},http://127.0.0.1:9/down")  # one URL always down
    capture.reset()
    outcomes = [outcome for _ in range(5) for outcome in queues.work()]
    assert outcomes == ["ReportFailed"] * 5
    assert (queues.count(), queues.count(poison=True)) == (0, 1)
    receiver.received.clear()
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", receiver.url)
    capture.reset()
    assert queues.work(poison=True) == ["ok"]
    [note] = receiver.received
    assert (note["capture"]["name"], note["outcome"]) == (name, "failed")
    assert "could not be completed in 5 attempts" in note["capture"]["stopReasonText"]
    assert "notification failed" in note["capture"]["stopReasonText"]  # the reason the worker noted
    assert len(captures(world)) == 1  # kept for inspection
    seen = []
    for _ in range(180):  # three hours of runs a minute apart, past CAPTURE_REQUEUE_AFTER_SECONDS
        world.advance(60)
        result = monitor(world).schedule()
        assert result.queued == []
        seen += result.already_queued
    assert seen and set(seen) == {name}
    assert (queues.count(), len(captures(world))) == (0, 1)


def test_duplicate_and_concurrent_scheduler_runs_enqueue_once(call, world, receiver, queues):
    names = {start(call, world, VM_WEB_1), start(call, world, VM_DB_1)}
    world.advance(120)
    ctx = app_context()
    # Four runs at once, each its own Monitor as on separate instances (no shared lock), same ARM state.
    runners = [
        Monitor(ctx.arm, ctx.settings, clock=world.clock.now_datetime, queue=ctx.reports) for _ in range(4)
    ]
    barrier = threading.Barrier(len(runners))
    results = []

    def run(runner: Monitor) -> None:
        barrier.wait()
        results.append(runner.schedule())

    threads = [threading.Thread(target=run, args=(runner,)) for runner in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.append(monitor(world).schedule())  # and a fifth, after them
    queued = [name for result in results for name in result.queued]
    assert sorted(queued) == sorted(names)
    assert sorted(m["capture"] for m in queues.peek()) == sorted(names)
    queues.drain()
    assert sorted(n["capture"]["name"] for n in receiver.received) == sorted(names)


def test_an_enqueue_that_fails_is_retried_by_the_next_run(call, world, receiver, queues, monkeypatch):
    name = start(call, world, VM_WEB_1)
    world.advance(120)
    monkeypatch.setenv("CaptureQueue__queueServiceUri", "https://127.0.0.1:9/devstoreaccount1")  # queue down
    capture.reset()
    down = monitor(world).schedule()
    assert down.queued == [] and down.errors == [f"{name}: could not be queued"]
    monkeypatch.setenv("CaptureQueue__queueServiceUri", queues.main.url.rsplit("/", 1)[0])
    capture.reset()
    world.advance(150)  # the next check instant
    assert monitor(world).schedule().queued == [name]  # the failed send removed its marker
    assert queues.drain() == ["ok"]
    assert [n["capture"]["name"] for n in receiver.received] == [name]


def test_a_marker_whose_writer_died_before_sending_is_taken_over(
    call, world, receiver, queues, azurite, tls_files
):
    name = start(call, world, VM_WEB_1)
    [resource] = captures(world)
    container, cap = blob_location(resource["properties"]["storageLocation"]["storagePath"])
    service = BlobServiceClient(
        azurite.blob_endpoint, credential=dev_credential(), connection_verify=str(tls_files[0])
    )
    world.advance(120)  # ended; a scheduler wrote its marker now, then died before sending
    pending = {"state": "pending", "at": world.clock.now_datetime().isoformat()}
    service.get_blob_client(container, cap.replace(".cap", ".queued.json")).upload_blob(
        json.dumps(pending).encode()
    )
    assert monitor(world).schedule().already_queued == [name]  # a fresh marker: its writer may still send
    world.advance(150)  # past PENDING_STALE_SECONDS, at the next check instant
    assert monitor(world).schedule().queued == [name]
    assert queues.drain() == ["ok"]
    assert [n["capture"]["name"] for n in receiver.received] == [name]


def test_arm_calls_per_run_follow_due_captures_not_the_watchers_content(call, world, monkeypatch):
    monkeypatch.setenv("CAPTURE_MAX_SESSIONS", "100")  # the 25 foreign captures count against the limit
    capture.reset()
    for index in range(25):  # somebody else's captures on the same watcher
        world.seed_capture(
            f"manual-{index}",
            f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01",
            age_seconds=10,
        )
    world.clear_log()
    idle = monitor(world).schedule()
    # Watchers of the subscription, one list per watcher; the flight recorder shares those lists and
    # adds its one tag-filtered resource list per subscription (nothing tagged: nothing else).
    assert idle.arm_calls == 1 + 2 + 1
    assert idle.recorder is not None and idle.recorder.arm_calls == 1
    start(call, world, VM_WEB_1)
    start(call, world, VM_DB_1)
    world.clear_log()
    assert monitor(world).schedule().arm_calls == 1 + 2 + 1  # just started: not due, no status query
    world.advance(61)
    busy = monitor(world).schedule()
    assert busy.checked == 2  # both due at 60 s (and both ended: queued)
    assert busy.arm_calls == 1 + 2 + 1 + 2  # + one status query per due capture of ours


def test_a_capture_named_like_ours_but_started_by_someone_else_is_never_reported_or_deleted(
    call, world, receiver, queues
):
    foreign = "alertcap-foreign-0123456789abcdef"
    world.seed_capture(
        foreign, VM_WEB_1, time_limit_in_seconds=60, age_seconds=3600
    )  # our account, not our path
    world.seed_capture(  # our account and layout, but the path names another VM than the target
        "alertcap-vm-db-1-0123456789abcdef",
        VM_WEB_1,
        time_limit_in_seconds=60,
        age_seconds=3600,
        properties={
            "storageLocation": {
                "storageId": STORAGE_ID,
                "storagePath": "https://stcaptures.blob.core.windows.net/network-watcher-logs/alert-captures/"
                "vm-db-1/2026/01/01/000000/-/x/alertcap-vm-db-1-0123456789abcdef.cap",
            }
        },
    )
    ours = start(call, world, VM_DB_1)
    world.advance(120)
    assert follow(world, queues) == [ours]
    assert [n["capture"]["name"] for n in receiver.received] == [ours]
    left = sorted(c["name"] for c in captures(world))
    assert left == sorted([foreign, "alertcap-vm-db-1-0123456789abcdef"])
    status, body, _ = call("list_captures", request("GET", "/api/captures"))
    assert (status, body["count"]) == (200, 0)
    status, body, _ = call(
        "get_capture", request("GET", f"/api/captures/{foreign}", route_params={"name": foreign})
    )
    assert status == 404


def test_captures_endpoints_show_live_status_then_the_stored_report(
    call, world, receiver, queues, tls_files, caplog
):
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
    follow(world, queues)
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


def test_unreadable_capture_file_is_reported_with_the_reason(call, world, receiver, azurite, queues):
    world.on_capture_stopped = None  # no file is written: the blob is missing
    start(call, world, VM_WEB_1)
    world.advance(120)
    assert len(follow(world, queues)) == 1
    assert receiver.received[0]["analysis"]["error"] == "the capture file was not found in storage"


def test_corrupt_capture_file_is_reported_with_the_reason(call, world, receiver, azurite, queues):
    def corrupt(stopped: Any) -> None:
        upload_capture(
            azurite.blob_endpoint,
            dev_credential(),
            stopped.storage_path,
            b"this is not a pcap file",
            connection_verify=world.ca_cert_path,
        )

    world.on_capture_stopped = corrupt
    start(call, world, VM_WEB_1)
    world.advance(120)
    assert len(follow(world, queues)) == 1
    [note] = receiver.received
    assert note["analysis"]["error"].startswith("the capture file could not be read")
