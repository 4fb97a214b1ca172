"""Capture names de-duplicate deliveries; storage paths carry what the report needs."""

import re
from datetime import UTC, datetime

from capture.naming import blob_location, capture_name, is_ours, parse_storage_path, storage_path
from capture.resource_ids import parse_resource_id
from tests.conftest import VM_WEB_1, VMSS_API

INSTANCE = f"{VMSS_API}/virtualMachines/1"


def test_same_alert_and_vm_give_the_same_name_whatever_the_case():
    a = capture_name("alertcap", parse_resource_id(VM_WEB_1), "alert-1")
    b = capture_name(
        "alertcap", parse_resource_id(VM_WEB_1.upper().replace("SUBSCRIPTIONS", "subscriptions")), "ALERT-1"
    )
    assert a == b
    assert a.startswith("alertcap-vm-web-1-")
    assert is_ours(a, "alertcap")
    assert not is_ours(a, "other")


def test_different_alert_or_vm_gives_a_different_name():
    vm = parse_resource_id(VM_WEB_1)
    assert capture_name("alertcap", vm, "alert-1") != capture_name("alertcap", vm, "alert-2")
    assert capture_name("alertcap", vm, "alert-1") != capture_name(
        "alertcap", parse_resource_id(INSTANCE), "alert-1"
    )


def test_names_are_valid_arm_names_of_at_most_80_characters():
    long_vm = VM_WEB_1.replace("vm-web-1", "v" * 64 + "_X.Y")
    name = capture_name("a" * 24, parse_resource_id(long_vm), "k")
    assert len(name) <= 80
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*[a-z0-9]", name)
    assert capture_name("alertcap", parse_resource_id(INSTANCE), "k").startswith("alertcap-vmss-api-1-")


def test_storage_path_round_trips_vm_time_rule_and_alert():
    started = datetime(2026, 11, 25, 2, 3, 4, tzinfo=UTC)
    path = storage_path(
        "stcaptures",
        "alertcap-vm-web-1-0123456789abcdef",
        parse_resource_id(VM_WEB_1),
        started,
        "High CPU / web tier",
        "/subscriptions/x/providers/Microsoft.AlertsManagement/alerts/abc-123",
    )
    assert path.startswith(
        "https://stcaptures.blob.core.windows.net/network-watcher-logs/alert-captures/vm-web-1/2026/11/25/020304/"
    )
    assert path.endswith("/alertcap-vm-web-1-0123456789abcdef.cap")
    info = parse_storage_path(path)
    assert info is not None
    assert (info.vm, info.started, info.rule, info.alert) == (
        "vm-web-1",
        started,
        "High-CPU-web-tier",
        "abc-123",
    )
    assert info.severity is None  # an alert without a severity: the path has no severity segment
    with_severity = parse_storage_path(
        storage_path("st", "n", parse_resource_id(VM_WEB_1), started, "vm-web-cpu", "abc-123", "Sev2")
    )
    assert with_severity is not None
    assert (with_severity.rule, with_severity.severity, with_severity.alert) == (
        "vm-web-cpu",
        "Sev2",
        "abc-123",
    )
    assert blob_location(path)[0] == "network-watcher-logs"
    assert (
        parse_storage_path("https://x.blob.core.windows.net/network-watcher-logs/subscriptions/a/b.cap")
        is None
    )
    assert parse_storage_path(None) is None
