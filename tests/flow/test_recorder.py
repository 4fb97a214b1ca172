"""Flight recorder end to end: the real app, the real SDK, the emulator's continuous capture, Azurite."""

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

import capture
from capture import app_context
from capture.monitor import owns
from capture.orchestrator import Reservations
from capture.recorder import Recorder, RecorderRun, is_ring, owns_ring, parse_post_path, ring_name
from devhost.stack import NotificationReceiver
from emulator import Emulator
from emulator.azurite import Azurite
from tests.conftest import RG, STORAGE_ID, SUB, VM_DB_1, VM_WEB_1, VMSS_API, request
from tests.flow.conftest import reporting_world
from tests.queues import Queues

TAG = "capture-recorder"
NOAGENT = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-noagent-01"
EDGE = f"{RG}/rg-edge/providers/Microsoft.Compute/virtualMachines/vm-edge-01"  # a region without a watcher


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch,
    azurite: Azurite,
    tls_files: tuple[Path, Path],
    receiver: NotificationReceiver,
    queues: Queues,
) -> Iterator[Emulator]:
    """Emulator on a frozen clock writing ring files to Azurite, the report queue in Azurite; small
    rings (3 files of 1 MiB)."""
    with reporting_world(
        monkeypatch,
        azurite,
        tls_files,
        receiver,
        CAPTURE_ALLOWED_SCOPES=f"/subscriptions/{SUB}",
        CAPTURE_RECORDER_FILE_COUNT="3",
        CAPTURE_RECORDER_FILE_SIZE_BYTES="1048576",
        CAPTURE_RECORDER_SESSION_SECONDS="3600",
    ) as emu:
        emu.world.find_vm("vm-web-1").behaviour.traffic_bytes_per_second = 20_000.0  # a file every 52 s
        app_context().recorder.clock = emu.clock.now_datetime
        yield emu


def tag(emu: Emulator, *targets: str, value: str = "on") -> None:
    for target in targets:
        emu.world.set_tags(target, {TAG: value})


def run(emu: Emulator) -> RecorderRun:
    """One scheduler run (the timer's `Monitor.schedule`): the recorder's part of it."""
    ctx = app_context()
    ctx.monitor.clock = ctx.recorder.clock = emu.clock.now_datetime
    result = ctx.monitor.schedule().recorder
    assert result is not None
    return result


def rings(emu: Emulator) -> list[dict[str, Any]]:
    found = [emu.capture_json(i) for i in emu.capture_ids()]
    return [c for c in found if is_ring(c["name"], "alertcap")]


def status_of(emu: Emulator, ring: dict[str, Any]) -> dict[str, Any]:
    return emu.capture_status(ring["id"])


def alert(call: Any, target: str, alert_id: str = "incident-1") -> tuple[int, dict[str, Any]]:
    body = {"targets": [target], "reason": "slow checkout", "id": alert_id}
    status, answer, _ = call("alert_webhook", request(body=body))
    return status, answer


def test_arming_one_ring_per_tagged_vm_with_a_continuous_body_on_the_wire(world: Emulator) -> None:
    tag(world, VM_WEB_1, VMSS_API)
    world.clear_log()
    result = run(world)
    assert len(result.armed) == 2 and result.problems == []
    # Discovery is one resource list per subscription, filtered by the tag in ARM.
    lists = [r for r in world.request_log if r.path.endswith("/resources")]
    assert [r.query["$filter"] for r in lists] == [f"tagName eq '{TAG}' and tagValue eq 'on'"]
    assert sorted(r["properties"]["target"] for r in rings(world)) == sorted([VM_WEB_1, VMSS_API])
    for put in (r for r in world.request_log if r.method == "PUT"):
        sent = json.loads(put.body)["properties"]
        assert sent["continuousCapture"] is True
        assert sent["captureSettings"] == {
            "fileCount": 3,
            "fileSizeInBytes": 1048576,
            "sessionTimeLimitInSeconds": 3600,
        }
        assert "totalBytesPerSession" not in sent and "timeLimitInSeconds" not in sent
        assert "filePath" not in sent["storageLocation"]
    world.advance(5)
    assert {status_of(world, r)["packetCaptureStatus"] for r in rings(world)} == {"Running"}
    # Idempotent: the next run changes nothing and creates nothing.
    world.clear_log()
    again = run(world)
    assert again.armed == [] and again.errors == []
    assert world.count("PUT") == 0
    assert len(rings(world)) == 2


def test_concurrent_runs_arm_each_vm_once(world: Emulator) -> None:
    tag(world, VM_WEB_1, VM_DB_1)
    ctx = app_context()
    # Two worker processes: separate reservations, same ARM.
    others = [Recorder(ctx.arm, ctx.settings, Reservations(), ctx.blobs) for _ in range(3)]
    results: list[RecorderRun] = []
    threads = [threading.Thread(target=lambda r=r: results.append(r.run([SUB]))) for r in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["properties"]["target"] for r in rings(world)) == sorted([VM_WEB_1, VM_DB_1])
    assert all(not r.errors for r in results)


def test_rings_stay_within_recorder_max_and_leave_alerts_room(
    world: Emulator, monkeypatch: pytest.MonkeyPatch, call: Any
) -> None:
    monkeypatch.setenv("CAPTURE_RECORDER_MAX", "5")
    monkeypatch.setenv("CAPTURE_MAX_SESSIONS", "3")
    capture.reset()
    app_context().recorder.clock = world.clock.now_datetime
    tag(world, VM_WEB_1, VM_DB_1, VMSS_API)
    result = run(world)
    # CAPTURE_MAX_SESSIONS 3 leaves one slot for alerts: two rings, the third VM reported as waiting.
    assert len(rings(world)) == 2
    assert any("CAPTURE_RECORDER_MAX" in p for p in result.problems)
    untagged = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"
    status, answer = alert(call, untagged)
    assert (status, answer["status"]) == (202, "started")
    assert len(world.capture_ids()) == 3


def test_untagging_disarms_within_one_run_and_reports_nothing(
    world: Emulator, receiver: NotificationReceiver
) -> None:
    tag(world, VM_WEB_1)
    run(world)
    world.advance(5)
    tag(world, VM_WEB_1, value="off")  # another value: not armed any more
    world.clear_log()
    result = run(world)
    assert len(result.disarmed) == 1
    assert rings(world) == []
    assert world.count("POST", "/stop") == 1 and world.count("DELETE") == 1
    assert receiver.received == []


def test_a_ring_near_its_session_end_is_replaced(world: Emulator) -> None:
    tag(world, VM_WEB_1)
    (first,) = run(world).armed
    world.advance(3600 - 300 + 5)
    result = run(world)
    assert result.replaced == [first]
    ((ring),) = rings(world)
    assert ring["name"] != first and _gen(ring["name"]) > _gen(first)
    world.advance(2)
    assert status_of(world, ring)["packetCaptureStatus"] == "Running"


def test_alert_freezes_the_ring_and_retries_never_stop_it_twice(world: Emulator, call: Any) -> None:
    tag(world, VM_WEB_1)
    (ring_name,) = run(world).armed
    world.advance(300)
    world.clear_log()
    status, answer = alert(call, VM_WEB_1)
    assert (status, answer["status"]) == (202, "frozen")
    (line,) = answer["results"]
    assert line["outcome"] == "frozen" and line["capture"]["name"] == ring_name
    assert line["window"]["seconds"] == 299 and line["window"]["maxBytes"] == 3 * 1048576
    # Inside the webhook, after the (cold) region and watcher lookups: list, status, stop, post ring.
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in world.request_log][-4:] == [
        ("GET", "packetCaptures"),
        ("POST", "queryStatus"),
        ("POST", "stop"),
        ("PUT", line["window"]["postRing"]),
    ]
    frozen = next(r for r in rings(world) if r["name"] == ring_name)
    assert (status_of(world, frozen)["packetCaptureStatus"], status_of(world, frozen)["stopReason"]) == (
        "Stopped",
        "Manual",
    )
    post = next(r for r in rings(world) if r["name"] != ring_name)
    info = parse_post_path(post["properties"]["storageLocation"]["storagePath"])
    assert info is not None and info.frozen == ring_name and info.alert == "manual-incident-1"
    # A retried delivery and another alert for the same incident: no second stop, no second post ring.
    for alert_id in ("incident-1", "incident-2"):
        status, answer = alert(call, VM_WEB_1, alert_id)
        assert (status, answer["status"]) == (200, "duplicate")
    assert world.count("POST", "/stop") == 1
    assert len(rings(world)) == 2


def test_a_vm_without_a_ring_keeps_the_two_call_warm_path(world: Emulator, call: Any) -> None:
    tag(world, VM_WEB_1)
    run(world)
    alert(call, VM_DB_1, "warm-up")  # caches region and watcher
    world.clear_log()
    status, _ = alert(call, VM_DB_1, "second")
    assert status in (200, 202)
    assert len(world.request_log) == 2


def test_scale_set_instance_alert_freezes_the_scale_set_ring(world: Emulator, call: Any) -> None:
    tag(world, VMSS_API)
    (ring_name,) = run(world).armed
    world.advance(60)
    status, answer = alert(call, f"{VMSS_API}/virtualMachines/1")
    assert (status, answer["status"]) == (202, "frozen")
    assert answer["results"][0]["capture"]["name"] == ring_name


def test_stop_throttled_is_503_and_the_retry_freezes(world: Emulator, call: Any) -> None:
    tag(world, VM_WEB_1)
    run(world)
    world.advance(60)
    world.faults.add(method="POST", path="/stop", status=429, retry_after=30, times=1)
    status, answer = alert(call, VM_WEB_1)
    assert (status, answer["status"]) == (503, "unavailable")
    assert len(rings(world)) == 1
    status, answer = alert(call, VM_WEB_1)
    assert (status, answer["status"]) == (202, "frozen")


def test_report_covers_before_and_after_the_alert_then_re_arms(
    world: Emulator, call: Any, receiver: NotificationReceiver, queues: Queues, tls_files: tuple[Path, Path]
) -> None:
    tag(world, VM_WEB_1)
    (first,) = run(world).armed
    world.advance(600)
    alert_at = world.clock.now_datetime()
    world.start_anomaly(VM_WEB_1, alert_at - timedelta(minutes=3))  # a SYN flood that began 3 min earlier
    status, _ = alert(call, VM_WEB_1)
    assert status == 202
    world.advance(61)  # the post-alert ring records CAPTURE_TIME_LIMIT_SECONDS (60 s), then stops
    result = run(world)
    (post,) = result.queued
    assert result.armed == []  # one timeline message; not re-armed yet
    (message,) = queues.peek()
    assert (message["kind"], message["capture"]) == ("timeline", post)
    assert run(world).already_queued == [post]  # the marker: the next run sends nothing
    assert queues.drain() == ["ok"]
    (sent,) = receiver.received
    timeline = sent["capture"]["recorder"]
    assert timeline["secondsBefore"] > 120  # three files of ~52 s each before the alert
    assert timeline["secondsAfter"] > 30
    assert timeline["preFiles"] == 3 and timeline["postFiles"] >= 1
    assert sent["outcome"] == "completed"
    assert (
        sent["capture"]["name"] == first
        and timeline["alertAt"] == alert_at.replace(microsecond=0).isoformat()
    )
    notable = sent["analysis"]["notable"]
    assert notable[0].startswith("Evidence covers")
    assert "SYN" in sent["headline"] and sent["headline"].endswith("; vm-web-1")
    # The links, like any report's: the chart (the alert marked) and the summary; no single .cap.
    links = sent["links"]
    assert links["file"] is None and links["summary"] and links["chart"]
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    with urllib.request.urlopen(links["chart"], context=context, timeout=10) as answer:
        assert answer.read().startswith(b"\x89PNG")
    # Both rings deleted after the delivery; a duplicate message is harmless (the post ring is gone).
    assert rings(world) == []
    queues.main.send_message(json.dumps(message).encode())
    assert queues.drain() == ["ok"]
    assert len(receiver.received) == 1
    # The next run re-arms the VM.
    (again,) = run(world).armed
    assert _gen(again) > _gen(post) > _gen(first)  # never a name (or stored report) of before
    world.advance(2)
    (ring,) = rings(world)
    assert status_of(world, ring)["packetCaptureStatus"] == "Running"


def test_an_undelivered_timeline_report_is_retried_then_reported_as_failed_and_re_armed(
    world: Emulator,
    call: Any,
    receiver: NotificationReceiver,
    queues: Queues,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tag(world, VM_WEB_1)
    run(world)
    world.advance(300)
    alert(call, VM_WEB_1)
    world.advance(61)
    assert len(run(world).queued) == 1
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", f"{receiver.url},http://127.0.0.1:9/down")  # one URL always down
    capture.reset()
    app_context().recorder.clock = world.clock.now_datetime
    outcomes = [outcome for _ in range(5) for outcome in queues.work()]
    assert outcomes == ["ReportFailed"] * 5
    assert (queues.count(), queues.count(poison=True)) == (0, 1)
    assert len(rings(world)) == 2  # kept while no report was delivered
    assert run(world).queued == []  # the message is not lost: it is in the poison queue
    receiver.received.clear()
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", receiver.url)
    capture.reset()
    assert queues.work(poison=True) == ["ok"]
    (sent,) = receiver.received
    assert sent["outcome"] == "failed"
    assert "could not be completed in 5 attempts" in sent["capture"]["stopReasonText"]
    assert "notification failed" in sent["capture"]["stopReasonText"]
    assert rings(world) == []  # the files stay in storage; the rings go, so the VM is armed again
    assert len(run(world).armed) == 1


def test_missing_files_are_reported_after_the_grace_and_the_vm_is_re_armed(
    world: Emulator, call: Any, receiver: NotificationReceiver, queues: Queues
) -> None:
    world.on_capture_stopped = None  # nothing reaches storage
    tag(world, VM_WEB_1)
    run(world)
    world.advance(120)
    alert(call, VM_WEB_1)
    world.advance(61)
    (post,) = run(world).queued
    assert queues.drain() == ["ok"]  # within the grace: the worker releases the marker and waits
    assert receiver.received == [] and len(rings(world)) == 2
    world.advance(300)
    assert run(world).queued == [post]  # queued again
    assert queues.drain() == ["ok"]
    (sent,) = receiver.received
    assert sent["outcome"] == "failed"
    assert "no capture files" in (sent["capture"]["stopReasonText"] or "")
    assert rings(world) == []
    run(world)
    assert len(rings(world)) == 1


def test_rings_and_captures_are_told_apart_and_nothing_foreign_is_touched(
    world: Emulator, call: Any, receiver: NotificationReceiver, queues: Queues
) -> None:
    prefix = "alertcap"
    # Named exactly like vm-web-1's next ring, but writing elsewhere in our account: not ours.
    minutes = int((world.clock.now_datetime() - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds() // 60)
    lookalike = ring_name(prefix, VM_WEB_1, minutes + 5)
    world.seed_capture(lookalike, VM_WEB_1, time_limit_in_seconds=600)
    # A ring name with vm-db-1's hash on vm-web-1, in our recorder layout: not ours either.
    crossed = ring_name(prefix, VM_DB_1, 1)
    world.seed_capture(
        crossed,
        VM_WEB_1,
        time_limit_in_seconds=600,
        properties={
            "storageLocation": {
                "storageId": STORAGE_ID,
                "storagePath": "https://stcaptures.blob.core.windows.net/network-watcher-logs/recorder/"
                f"vm-web-1/{crossed}.20260101T000000000Z/ring.cap",
            }
        },
    )
    foreign = {lookalike, crossed}
    tag(world, VM_WEB_1)
    (armed,) = run(world).armed
    assert armed == ring_name(prefix, VM_WEB_1, minutes + 6)  # never a PUT over the look-alike's name
    settings = app_context().settings
    by_name = {c.name: c for c in app_context().arm.list_captures(_watcher())}
    assert owns_ring(by_name[armed], settings) and not owns(by_name[armed], settings)
    assert not any(owns_ring(by_name[n], settings) for n in foreign)
    # An ordinary capture of ours is no ring; its report goes its own way.
    started = alert(call, VM_DB_1, "db-incident")[1]["results"][0]["capture"]["name"]
    by_name = {c.name: c for c in app_context().arm.list_captures(_watcher())}
    assert owns(by_name[started], settings) and not owns_ring(by_name[started], settings)
    # The alert freezes our ring, never the look-alikes; untagging disarms ours only.
    world.advance(60)
    status, answer = alert(call, VM_WEB_1)
    assert (status, answer["status"]) == (202, "frozen")
    assert answer["results"][0]["capture"]["name"] == armed
    world.advance(61)
    run(world)
    queues.drain()
    tag(world, VM_WEB_1, value="off")
    run(world)
    assert foreign <= {c["name"] for c in (world.capture_json(i) for i in world.capture_ids())}
    for name in foreign:
        capture_id = next(i for i in world.capture_ids() if i.endswith(f"/{name}"))
        assert world.capture_status(capture_id)["packetCaptureStatus"] == "Running"


def _gen(name: str) -> int:
    return int(name.rsplit("-g", 1)[1])


def _watcher() -> Any:
    from capture.arm import Watcher

    return next(
        w for w in app_context().arm.list_watchers(SUB) if isinstance(w, Watcher) and w.location == "eastus"
    )


def test_a_vm_without_the_agent_or_watcher_is_reported_once_then_backed_off(world: Emulator) -> None:
    tag(world, NOAGENT, EDGE)
    first = run(world)
    assert len(first.problems) == 2
    assert any("NetworkWatcherAgentNotInstalled" in p for p in first.problems)
    assert any("southcentralus" in p for p in first.problems)
    world.clear_log()
    second = run(world)
    assert second.problems == []
    assert world.count("PUT") == 0


def test_the_monitor_timer_runs_the_recorder(world: Emulator, functions: dict[str, Any]) -> None:
    from azure.functions.timer import TimerRequest

    tag(world, VM_WEB_1)
    timer = TimerRequest(past_due=False)
    functions["capture_monitor"].get_user_function()(timer)
    (ring,) = rings(world)
    assert ring["properties"]["target"] == VM_WEB_1 and ring["properties"]["continuousCapture"] is True


def test_no_slot_for_the_post_alert_ring_keeps_the_ring_recording(
    world: Emulator, monkeypatch: pytest.MonkeyPatch, call: Any
) -> None:
    monkeypatch.setenv("CAPTURE_MAX_SESSIONS", "2")
    capture.reset()
    app_context().recorder.clock = world.clock.now_datetime
    tag(world, VM_WEB_1)
    run(world)
    status, _ = alert(call, VM_DB_1, "other-incident")  # the watcher's last slot
    assert status == 202
    world.advance(30)
    status, answer = alert(call, VM_WEB_1)
    assert (status, answer["status"]) == (200, "limited")
    assert world.count("POST", "/stop") == 0
    (ring,) = rings(world)
    assert status_of(world, ring)["packetCaptureStatus"] == "Running"
