"""From a fired alert to a running capture, through the real function, SDK and emulator."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import capture
from capture.payloads import parse_alert
from devhost.stack import capture_writer
from emulator import Emulator
from emulator.testing import SAMPLE_WORLD
from tests.conftest import RG, SUB, VM_DB_1, VM_WEB_1, VM_WEU_1, VMSS_API, payload, request
from tests.flow.conftest import arm_calls, captures, point_app_at

NO_AGENT = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-noagent-01"
NO_WATCHER = f"{RG}/rg-edge/providers/Microsoft.Compute/virtualMachines/vm-edge-01"
EASTUS_WATCHER = f"{RG}/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_eastus"
WEU_WATCHER = f"{RG}/rg-network/providers/Microsoft.Network/networkWatchers/nw-weu-prod"


def post(call: Any, body: Any) -> tuple[int, dict[str, Any]]:
    status, answer, response = call("alert_webhook", request(body=body))
    if status == 503:
        assert response.headers["Retry-After"]
    return status, answer


def manual(target: str, reason: str = "high latency", **capture: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"targets": [target], "reason": reason}
    if capture:
        body["capture"] = capture
    return body


@pytest.mark.parametrize(
    ("fixture", "target", "watcher"),
    [
        ("common-metric-fired-vm.json", VM_WEB_1, EASTUS_WATCHER),
        ("common-metric-fired-mixedcase.json", VM_WEU_1, WEU_WATCHER),
        ("common-log-v2-fired-workspace-dimension.json", VM_DB_1, EASTUS_WATCHER),
        ("common-activitylog-fired-vm.json", VM_WEU_1, WEU_WATCHER),
        ("common-resourcehealth-fired-vm.json", VM_DB_1, EASTUS_WATCHER),
        ("metric-alert-activated-vm.json", VM_WEB_1, EASTUS_WATCHER),
        ("activity-log-fired-vm.json", VM_DB_1, EASTUS_WATCHER),
        ("classic-metric-activated-vm.json", VM_WEB_1, EASTUS_WATCHER),
        ("legacy-log-analytics-fired.json", VM_DB_1, EASTUS_WATCHER),
        ("manual-fired-vm.json", VM_WEB_1, EASTUS_WATCHER),
    ],
)
def test_fired_vm_alert_of_each_schema_starts_one_capture(call, emu, fixture, target, watcher):
    body = payload(fixture)
    status, answer = post(call, body)
    assert (status, answer["status"]) == (202, "started"), answer
    [result] = answer["results"]
    assert result["outcome"] == "started"
    capture = result["capture"]
    assert capture["target"].casefold() == target.casefold()
    assert capture["watcher"].casefold() == watcher.casefold()
    [stored] = captures(emu)
    props = stored["properties"]
    assert stored["id"] == capture["id"]
    assert props["target"].casefold() == target.casefold()
    assert props["targetType"] == "AzureVM"
    assert props["storageLocation"]["storageId"].endswith("/storageAccounts/stcaptures")
    assert props["storageLocation"]["storagePath"] == capture["storagePath"]
    assert "/alert-captures/" in props["storageLocation"]["storagePath"]
    overrides = parse_alert(json.dumps(body).encode()).overrides.to_json()
    assert props["bytesToCapturePerPacket"] == int(overrides.get("bytesPerPacket", 0))
    assert props["totalBytesPerSession"] == int(overrides.get("bytesPerSession", 1073741824))
    assert (
        props["timeLimitInSeconds"]
        == int(overrides.get("timeLimitSeconds", 60))
        == capture["timeLimitSeconds"]
    )


def test_overrides_from_custom_properties_reach_the_put_body(call, emu):
    body = payload("common-metric-fired-vm.json")
    overrides = {k: v for k, v in body["data"]["customProperties"].items() if k.startswith("capture")}
    assert overrides, "the fixture carries capture overrides"
    assert post(call, body)[0] == 202
    props = captures(emu)[0]["properties"]
    assert props["timeLimitInSeconds"] == int(overrides["captureTimeLimitSeconds"])
    assert props["filters"] and props["filters"][0]["protocol"] in {"TCP", "UDP", "Any"}


def test_scale_set_instance_is_captured_through_the_scale_set_with_scope(call, emu):
    status, answer = post(call, payload("common-metric-fired-vmss-instance.json"))
    assert status == 202, answer
    props = captures(emu)[0]["properties"]
    assert props["target"].casefold() == VMSS_API.casefold()
    assert props["targetType"] == "AzureVMSS"
    assert props["scope"]["include"] == ["1"]


def test_multi_target_alert_gives_one_decision_per_target(call, emu):
    status, answer = post(call, payload("common-metric-fired-multi-vm.json"))
    assert status == 202
    assert [r["outcome"] for r in answer["results"]] == ["started", "started"]
    assert len(captures(emu)) == 2


def test_settings_and_local_path_reach_the_put_body(call, emu, app_env):
    app_env(
        CAPTURE_TIME_LIMIT_SECONDS="90",
        CAPTURE_BYTES_PER_PACKET="34",
        CAPTURE_BYTES_PER_SESSION="5000000",
        CAPTURE_FILTERS='[{"protocol": "TCP", "remotePort": "5432"}]',
        CAPTURE_LOCAL_PATH="/var/captures",
    )
    status, _ = post(call, manual(VM_WEB_1))
    assert status == 202
    props = captures(emu)[0]["properties"]
    assert (props["timeLimitInSeconds"], props["bytesToCapturePerPacket"], props["totalBytesPerSession"]) == (
        90,
        34,
        5000000,
    )
    assert props["filters"][0]["protocol"] == "TCP"
    assert props["filters"][0]["remotePort"] == "5432"
    assert props["storageLocation"]["filePath"].startswith("/var/captures/alertcap-vm-web-1-")


def test_the_same_alert_delivered_three_times_gives_one_capture(call, emu):
    body = payload("common-metric-fired-vm.json")
    outcomes = [post(call, body)[1]["status"] for _ in range(3)]
    assert outcomes == ["started", "duplicate", "duplicate"]
    assert len(captures(emu)) == 1


def test_twenty_concurrent_deliveries_give_one_capture(call, emu):
    body = payload("common-metric-fired-vm.json")
    barrier = threading.Barrier(20)

    def deliver(_: int) -> tuple[int, str]:
        barrier.wait()
        status, answer = post(call, body)
        return status, answer["status"]

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(deliver, range(20)))
    assert sorted(r[1] for r in results).count("started") == 1
    assert {r for r in results if r[1] != "started"} == {(200, "duplicate")}
    assert len(captures(emu)) == 1


def test_second_alert_while_running_is_duplicate_then_a_new_one_after_stop(call, emu):
    assert post(call, manual(VM_WEB_1, "first"))[1]["status"] == "started"
    emu.advance(5)  # running now
    status, answer = post(call, manual(VM_WEB_1, "second"))
    assert (status, answer["status"]) == (200, "duplicate")
    assert "Running" in answer["results"][0]["reason"]
    emu.advance(120)  # the 60 s capture stopped on its time limit
    status, answer = post(call, manual(VM_WEB_1, "third"))
    assert (status, answer["status"]) == (202, "started")
    assert len(captures(emu)) == 2


def test_at_the_limit_nothing_is_created(call, emu, app_env):
    app_env(CAPTURE_MAX_SESSIONS="2")
    assert post(call, manual(VM_WEB_1))[1]["status"] == "started"
    assert post(call, manual(VM_DB_1))[1]["status"] == "started"
    status, answer = post(call, manual(f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"))
    assert (status, answer["status"]) == (200, "limited")
    assert "CAPTURE_MAX_SESSIONS is 2" in answer["results"][0]["reason"]
    assert len(captures(emu)) == 2


def test_concurrent_alerts_for_many_vms_never_exceed_the_limit(call, emu, app_env):
    app_env(CAPTURE_MAX_SESSIONS="5")
    vms = [
        emu.world.add_vm(f"vm-burst-{i:02d}", resource_group="rg-burst", location="eastus").id
        for i in range(24)
    ]
    barrier = threading.Barrier(12)

    def deliver(vm: str) -> str:
        if vms.index(vm) < 12:
            barrier.wait()
        return str(post(call, manual(vm))[1]["status"])

    with ThreadPoolExecutor(12) as pool:
        outcomes = list(pool.map(deliver, vms))
    assert outcomes.count("started") == 5
    assert outcomes.count("limited") == 19
    assert len(captures(emu)) == 5


def test_arm_calls_cold_path_at_most_4_and_warm_path_at_most_2(call, emu):
    emu.clear_log()
    assert post(call, manual(VM_WEB_1, "one"))[0] == 202
    cold = arm_calls(emu)
    assert len(cold) <= 4, cold
    assert [m for m, _, _ in cold] == ["GET", "GET", "GET", "PUT"]
    emu.clear_log()
    assert post(call, manual(VM_DB_1, "two"))[0] == 202  # same region: region of this VM unknown
    emu.clear_log()
    assert post(call, manual(VM_DB_1, "two"))[1]["status"] == "duplicate"
    assert len(arm_calls(emu)) == 1  # the list shows our capture
    emu.clear_log()
    emu.advance(120)
    assert post(call, manual(VM_WEB_1, "three"))[0] == 202
    warm = arm_calls(emu)
    # list captures, one status query for the stopped capture on this VM, PUT
    assert [m for m, _, _ in warm] == ["GET", "POST", "PUT"]


def test_warm_path_is_two_arm_calls_once_the_follow_through_cleaned_up(
    call, functions, queues, azurite, tls_files, monkeypatch
):
    # The emulator shares Azurite's certificate, so the app's one CA bundle trusts both.
    with Emulator(SAMPLE_WORLD, time_scale=0.0, retry_after=0.0, cert_dir=tls_files[0].parent) as emu:
        emu.on_capture_stopped = capture_writer(azurite, emu.ca_cert_path)
        point_app_at(
            emu,
            monkeypatch,
            CAPTURE_ALLOWED_SCOPES=f"/subscriptions/{SUB}",
            CAPTURE_BLOB_ENDPOINT=azurite.blob_endpoint,
        )
        assert post(call, manual(VM_WEB_1, "first"))[0] == 202
        emu.advance(120)  # stopped on its time limit
        capture.app_context().monitor.clock = emu.clock.now_datetime
        functions["capture_monitor"].get_user_function()(None)  # queues it
        assert queues.drain() == ["ok"]  # the worker reports and deletes it
        assert captures(emu) == []
        emu.clear_log()
        assert post(call, manual(VM_WEB_1, "second"))[0] == 202
        assert [m for m, _, _ in arm_calls(emu)] == ["GET", "PUT"]  # list captures, create


def test_classic_alert_carries_its_region_so_no_vm_lookup_is_needed(call, emu):
    emu.clear_log()
    assert post(call, payload("classic-metric-activated-vm.json"))[0] == 202
    paths = [p for _, p, _ in arm_calls(emu)]
    assert not any("Microsoft.Compute/virtualMachines" in p for p in paths)
    assert len(paths) == 3  # watchers, list captures, PUT


def test_missing_watcher_is_502_naming_the_region(call, emu):
    status, answer = post(call, manual(NO_WATCHER))
    assert (status, answer["status"]) == (502, "failed")
    error = answer["results"][0]["error"]
    assert error["code"] == "NetworkWatcherNotFound"
    assert "southcentralus" in error["message"]
    assert "az network watcher configure" in error["message"]
    assert captures(emu) == []


def test_vm_without_agent_is_502_with_azures_error(call, emu):
    status, answer = post(call, manual(NO_AGENT))
    assert (status, answer["status"]) == (502, "failed")
    error = answer["results"][0]["error"]
    assert "AzureNetworkWatcherExtension" in error["message"]
    assert captures(emu) == []


def test_unknown_vm_is_502_resource_not_found(call, emu):
    status, answer = post(call, manual(VM_WEB_1.replace("vm-web-1", "vm-gone")))
    assert (status, answer["status"]) == (502, "failed")
    assert answer["results"][0]["error"]["code"] == "ResourceNotFound"


def test_target_outside_allowed_scopes_is_403_and_no_azure_call(call, emu, app_env):
    app_env(CAPTURE_ALLOWED_SCOPES=f"/subscriptions/{SUB}/resourceGroups/rg-weu")
    emu.clear_log()
    status, answer = post(call, manual(VM_WEB_1))
    assert (status, answer["status"]) == (403, "forbidden")
    assert arm_calls(emu) == []
    status, answer = post(call, manual(VM_WEU_1))
    assert status == 202


def test_throttling_storm_is_503_within_budget_and_leaves_no_capture(call, emu, app_env):
    app_env(CAPTURE_WEBHOOK_BUDGET_SECONDS="3")
    emu.faults.add(
        method="PUT",
        path="/packetCaptures/",
        status=429,
        retry_after=2,
        code="SubscriptionRequestsThrottled",
        message="Number of 'write' requests exceeded",
    )
    started = time.monotonic()
    status, answer = post(call, manual(VM_WEB_1))
    elapsed = time.monotonic() - started
    assert (status, answer["status"]) == (503, "unavailable")
    assert elapsed < 3.5
    assert captures(emu) == []


def test_a_short_throttle_is_absorbed_by_the_sdk_retry(call, emu):
    emu.faults.add(method="GET", path="/packetCaptures", status=429, retry_after=1, times=1)
    status, _ = post(call, manual(VM_WEB_1))
    assert status == 202
    assert len(captures(emu)) == 1


def test_persistent_500s_are_503_and_leave_no_capture(call, emu, app_env):
    app_env(CAPTURE_WEBHOOK_BUDGET_SECONDS="3")
    emu.faults.add(
        method="PUT",
        path="/packetCaptures/",
        status=500,
        code="InternalServerError",
        message="An error occurred.",
    )
    status, answer = post(call, manual(VM_WEB_1))
    assert (status, answer["status"]) == (503, "unavailable")
    assert answer["results"][0]["error"]["code"] in {"InternalServerError", "AzureTimeBudgetExceeded"}
    assert captures(emu) == []


def test_slow_arm_is_503_within_the_budget(call, emu, app_env):
    app_env(CAPTURE_WEBHOOK_BUDGET_SECONDS="2")
    emu.faults.add(method="GET", path="/packetCaptures", delay=10)
    started = time.monotonic()
    status, answer = post(call, manual(VM_WEB_1))
    assert time.monotonic() - started < 2.5
    assert (status, answer["status"]) == (503, "unavailable")
    assert captures(emu) == []


def test_decision_log_line_is_structured_and_secret_free(call, emu, caplog):
    caplog.set_level("INFO", logger="capture.decisions")
    status, _, _ = call("alert_webhook", request(body=manual(VM_WEB_1), params={"code": "k3y-never-logged"}))
    assert status == 202
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "capture.decisions"]
    decision, summary = lines[-2:]
    assert decision["outcome"] == "started"
    assert decision["armCalls"] == 4
    assert decision["capture"].startswith("alertcap-vm-web-1-")
    assert (summary["event"], summary["counts"], summary["status"]) == ("alert_answered", {"started": 1}, 202)
    assert "k3y" not in caplog.text
    assert "Bearer" not in caplog.text


def test_emulator_fixture_is_isolated(emu: Emulator):
    assert captures(emu) == []
