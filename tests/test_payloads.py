"""Alert intake: every fixture in tests/payloads, the error contract, and robustness properties.

Fixtures named `ms-*` are Microsoft's published samples, byte for byte; the others are written from the
schema reference and target the sample world (subscription ...0001, vm-web-1, vm-db-1, vm-weu-1,
vmss-api instance 1) so that HTTP-level tests can reuse them.
"""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from capture.errors import InputError
from capture.payloads import MAX_BODY_BYTES, SCHEMA_NAMES, AlertEvent, alert_from_json, parse_alert
from capture.settings import CaptureOverrides, OverrideLimits
from tests.conftest import PAYLOADS, SUB, VM_DB_1, VM_WEB_1, VM_WEU_1, VMSS_API

P = f"/subscriptions/{SUB}"
AM = f"{P}/providers/Microsoft.AlertsManagement/alerts"
VMSS_1 = f"{VMSS_API}/virtualMachines/1"
LOWER_WEB = f"{P}/resourcegroups/rg-app/providers/microsoft.compute/virtualmachines/vm-web-1"
LOWER_DB = f"{P}/resourcegroups/rg-app/providers/microsoft.compute/virtualmachines/vm-db-1"
FILTERS = '[{"protocol": "TCP", "remotePort": "443"}]'
FILTER_LIST = [{"protocol": "TCP", "remotePort": "443"}]
SERVICE_HEALTH = "service health alerts are about Azure services, not a resource: nothing to capture"
BUDGET = "budget (cost) alerts are about spending, not a resource: nothing to capture"


def load(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def doc(name: str) -> Any:
    return json.loads(load(name))


def parse_doc(value: Any) -> AlertEvent:
    return parse_alert(json.dumps(value).encode())


# Expected fields per fixture. `instance_key` ending in ":" means "a derived key with this prefix".
EXPECTED: dict[str, dict[str, Any]] = {
    # --- Microsoft's published samples ---
    "ms-classic-metric-webhook.json": {
        "schema_name": "classic-metric",
        "instance_key": "classic-metric:",
        "fired": True,
        "condition": "Activated",
        "targets": ["/subscriptions/s1/resourceGroups/useast/providers/microsoft.foo/sites/mysite1"],
        "region": "centralus",
        "rule": "ruleName1",
        "severity": None,
        "custom_properties": {"key1": "value1", "key2": "value2"},
        "overrides": {},
        "fired_at": datetime(2015, 8, 14, 22, 26, 41, 997539, tzinfo=UTC),
    },
    "ms-common-log-v2-vm-fired.json": {
        "schema_name": "common/log-v2",
        "instance_key": "/subscriptions/12345a-1234b-123c-123d-12345678e/providers/"
        "Microsoft.AlertsManagement/alerts/12345a-1234b-123c-123d-12345678e",
        "fired": True,
        "condition": "Fired",
        # The ResourceId dimension (the VM the query row was about) wins over alertTargetIDs.
        "targets": [
            "/subscriptions/12345a-1234b-123c-123d-12345678e/resourceGroups/TEST/providers/Microsoft.Compute/"
            "virtualMachines/testvm"
        ],
        "rule": "AcmeRule",
        "severity": "Sev4",
        "custom_properties": {"name1": "value1", "name2": "value2"},
        "overrides": {},
    },
    "ms-common-metric-static-resolved-vm.json": {
        "schema_name": "common/metric",
        "instance_key": "/subscriptions/<subscription ID>/providers/Microsoft.AlertsManagement/alerts/"
        "aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e",
        "fired": False,
        "condition": "Resolved",
        "targets": [
            "/subscriptions/<subscription ID>/resourcegroups/pipelinealertrg/providers/microsoft.compute/"
            "virtualmachines/wcus-r2-gen2"
        ],
        "rule": "WCUS-R2-Gen2",
        "severity": "Sev3",
        "custom_properties": {"Key1": "Value1", "Key2": "Value2"},
        "fired_at": datetime(2019, 3, 22, 13, 58, 24, 371321, tzinfo=UTC),
    },
    "ms-nocommon-activitylog-administrative-vm.json": {
        "schema_name": "activity-log",
        "instance_key": "activity-log:",
        "fired": True,
        "condition": "Activated",
        "targets": [
            "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/"
            "Microsoft.Compute/virtualMachines/test-VM"
        ],
        "monitoring_service": "Administrative",
        "custom_properties": {"customKey1": "value1", "customKey2": "value2"},
    },
    "ms-nocommon-metric-v2-static.json": {
        "schema_name": "metric-alert",
        "instance_key": "metric-alert:",
        "fired": True,
        "condition": "Activated",
        "targets": [
            "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/"
            "Microsoft.Storage/storageAccounts/test-storageAccount"
        ],
        "rule": "test-metricAlertRule",
        "severity": "3",
        "description": "Alert rule description",
    },
    "ms-testaction-common-budget.json": {
        "schema_name": "common/budget",
        "instance_key": "common:",  # the alertId is a cost-management path, not an alert instance
        "fired": True,
        "targets": [],
        "rule": None,
        "severity": None,
        "not_resource_alert": BUDGET,
    },
    "ms-testaction-common-metric-static.json": {
        "schema_name": "common/metric",
        "instance_key": "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/providers/"
        "Microsoft.AlertsManagement/alerts/eeeeeeee-4444-5555-6666-ffffffffffff",
        "fired": True,
        "targets": [
            "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/test-RG/providers/"
            "microsoft.storage/storageaccounts/test-storageAccount"
        ],
        "rule": "test-metricAlertRule",
        "severity": "Sev4",
        "not_resource_alert": None,
    },
    "ms-testaction-common-servicehealth.json": {
        "schema_name": "common/service-health",
        "fired": True,  # monitorCondition, not the event's own "Resolved" status
        "targets": ["/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e"],
        "not_resource_alert": SERVICE_HEALTH,
    },
    # --- common schema, sample world ---
    "common-metric-fired-vm.json": {
        "schema_name": "common/metric",
        "instance_key": f"{AM}/11111111-2222-4333-8444-000000000001",
        "fired": True,
        "condition": "Fired",
        "targets": [LOWER_WEB],
        "region": None,
        "rule": "vm-web-network-out",
        "severity": "Sev2",
        "description": "Network Out Total > 3 on vm-web-1",
        "monitoring_service": "Platform",
        "custom_properties": {"team": "web", "captureTimeLimitSeconds": "60", "captureFilters": FILTERS},
        "overrides": {"timeLimitSeconds": 60, "filters": FILTER_LIST},
        "not_resource_alert": None,
        "fired_at": datetime(2026, 3, 2, 10, 5, 12, 371321, tzinfo=UTC),
    },
    "common-metric-resolved-vm.json": {
        "schema_name": "common/metric",
        "instance_key": f"{AM}/11111111-2222-4333-8444-000000000001",  # same instance as the fired one
        "fired": False,
        "condition": "Resolved",
        "targets": [LOWER_WEB],
    },
    "common-metric-fired-multi-vm.json": {
        "schema_name": "common/metric",
        "fired": True,
        "targets": [LOWER_WEB, VM_DB_1],  # the third, an upper-case vm-web-1, is a duplicate
        "severity": "Sev1",
        # Raw values (an int stays an int); capture_local_path is a spelling of localPath.
        "overrides": {"bytesPerSession": 10485760, "localPath": "/var/captures/app"},
        "custom_properties": {
            "captureBytesPerSession": "10485760",
            "capture_local_path": "/var/captures/app",
        },
    },
    "common-metric-fired-vmss-instance.json": {
        "schema_name": "common/metric",
        "fired": True,
        "targets": [VMSS_1],
        "custom_properties": {},
        "overrides": {},
    },
    "common-metric-fired-mixedcase.json": {
        "schema_name": "common/metric",
        "instance_key": f"{AM}/11111111-2222-4333-8444-000000000004",
        "fired": True,
        "condition": "FIRED",
        "targets": [VM_WEU_1.upper().replace(SUB.upper(), SUB)],
        "rule": "VM-WEU-CPU",
        "severity": "Sev3",
        "overrides": {"timeLimitSeconds": 30, "bytesPerPacket": 128},
    },
    "common-log-v2-fired-workspace-dimension.json": {
        "schema_name": "common/log-v2",
        "instance_key": f"{AM}/11111111-2222-4333-8444-000000000005",
        "fired": True,
        "targets": [LOWER_DB],  # from the _ResourceId dimension, not the workspace
        "rule": "db-connection-storm",
        "severity": "Sev1",
        "monitoring_service": "Log Alerts V2",
        "overrides": {"bytesPerPacket": 96},
        "fired_at": datetime(2026, 3, 2, 14, 0, 31, 123456, tzinfo=UTC),
    },
    "common-log-v2-resolved-workspace-dimension.json": {
        "schema_name": "common/log-v2",
        "instance_key": f"{AM}/11111111-2222-4333-8444-000000000005",
        "fired": False,
        "condition": "Resolved",
        "targets": [LOWER_DB],
    },
    "common-log-v2-fired-link-only.json": {
        "schema_name": "common/log-v2",
        "fired": True,
        "targets": [VM_WEU_1],  # from linkToSearchResultsAPI: no targets, no _ResourceId dimension
    },
    "common-log-v1-fired-searchresults.json": {
        "schema_name": "common/log-v1",
        "fired": True,
        "targets": [LOWER_WEB, VM_WEU_1.lower()],  # the _ResourceId column, de-duplicated
        "monitoring_service": "Log Analytics",
        "region": None,  # dataSources[].region is the workspace's, not the VM's
    },
    "common-activitylog-fired-vm.json": {
        "schema_name": "common/activity-log",
        "instance_key": f"{AM}/11111111-2222-4333-8444-000000000008",
        "fired": True,
        "targets": [VM_WEU_1.replace("resourceGroups", "resourcegroups")],
        "monitoring_service": "Activity Log - Administrative",
        # alertContext.properties is the event's, not custom properties: its capture* key is ignored.
        "custom_properties": {"captureTimeLimitSeconds": "300"},
        "overrides": {"timeLimitSeconds": 300},
    },
    "common-resourcehealth-fired-vm.json": {
        "schema_name": "common/resource-health",
        "fired": True,
        "targets": [LOWER_DB],
        "not_resource_alert": None,
    },
    "common-servicehealth-fired.json": {
        "schema_name": "common/service-health",
        "fired": True,
        "targets": [P],
        "not_resource_alert": SERVICE_HEALTH,
    },
    "common-smartdetector-fired.json": {
        "schema_name": "common/smart-detector",
        "fired": True,
        "targets": [f"{P}/resourcegroups/rg-app/providers/microsoft.insights/components/appi-web"],
        "not_resource_alert": None,
    },
    "common-budget-fired.json": {
        "schema_name": "common/budget",
        "instance_key": "common:",
        "fired": True,
        "targets": [],
        "not_resource_alert": BUDGET,
    },
    "common-prometheus-fired.json": {
        "schema_name": "common/prometheus",
        "fired": True,
        "targets": [f"{P}/resourcegroups/rg-app/providers/microsoft.monitor/accounts/amw-app"],
        "not_resource_alert": "Prometheus alerts target an Azure Monitor workspace or cluster, not a VM",
    },
    # --- non-common schemas ---
    "metric-alert-activated-vm.json": {
        "schema_name": "metric-alert",
        "instance_key": "metric-alert:",
        "fired": True,
        "condition": "Activated",
        "targets": [VM_WEB_1],
        "rule": "vm-web-network-out",
        "severity": "2",
        "overrides": {"timeLimitSeconds": 90, "filters": FILTER_LIST},
        "custom_properties": {"captureTimeLimitSeconds": "90", "captureFilters": FILTERS, "ticket": "INC-1"},
        "fired_at": datetime(2026, 3, 3, 9, 35, 12, 970368, tzinfo=UTC),
    },
    "metric-alert-resolved-vm.json": {
        "schema_name": "metric-alert",
        "fired": False,
        "condition": "Resolved",
        "targets": [VM_WEB_1],
        "custom_properties": {},
    },
    "metric-alert-deactivated-vm-pascalcase.json": {
        "schema_name": "metric-alert",
        "fired": False,
        "condition": "Deactivated",
        "targets": [VM_DB_1],
        "rule": "vm-db-network-out",
    },
    "activity-log-fired-vm.json": {
        "schema_name": "activity-log",
        "instance_key": "activity-log:",
        "fired": True,
        "condition": "Activated",
        "targets": [VM_DB_1],
        "overrides": {"timeLimitSeconds": 120, "localPath": "/var/captures/restarts"},
        "not_resource_alert": None,
    },
    "activity-log-resourcehealth-vm.json": {
        "schema_name": "activity-log",
        "fired": True,
        "targets": [VM_WEU_1],
        "monitoring_service": "ResourceHealth",
        "not_resource_alert": None,
    },
    "activity-log-servicehealth.json": {
        "schema_name": "activity-log",
        "fired": True,
        "targets": [],
        "monitoring_service": "ServiceHealth",
        "not_resource_alert": SERVICE_HEALTH,
    },
    "classic-metric-activated-vm.json": {
        "schema_name": "classic-metric",
        "instance_key": "classic-metric:",
        "fired": True,
        "condition": "Activated",
        "targets": [VM_WEB_1],
        "region": "eastus",
        "rule": "network-out-classic",
        "overrides": {"timeLimitSeconds": 45},
        "custom_properties": {"captureTimeLimitSeconds": "45", "owner": "web"},
    },
    "classic-metric-resolved-vm.json": {
        "schema_name": "classic-metric",
        "fired": False,
        "condition": "Resolved",
        "targets": [VM_WEU_1],
        "region": "westeurope",
    },
    "legacy-log-analytics-fired.json": {
        "schema_name": "legacy-log",
        "instance_key": "legacy-log:",
        "fired": True,
        "condition": "Fired",
        "targets": [LOWER_DB],  # the _ResourceId column of SearchResult, not the workspace ResourceId
        "rule": "db-syn-flood-legacy",
        "severity": "Warning",
        "monitoring_service": "Log Analytics",
        "fired_at": datetime(2026, 3, 3, 13, 5, tzinfo=UTC),
    },
    "legacy-log-appinsights-fired.json": {
        "schema_name": "legacy-log",
        "fired": True,
        "targets": [],  # Application Insights names no resource
        "rule": "web-500s-legacy",
        "severity": "3",
        "monitoring_service": "Application Insights",
        "not_resource_alert": None,
    },
    "budget-notification.json": {
        "schema_name": "budget",
        "instance_key": "budget:",
        "fired": True,
        "targets": [],
        "rule": "app-monthly",
        "not_resource_alert": BUDGET,
    },
    "manual-fired-vm.json": {
        "schema_name": "manual",
        "instance_key": "manual:",
        "fired": True,
        "condition": "Fired",
        "targets": [VM_WEB_1],
        "description": "investigating slow checkout",
        "overrides": {"timeLimitSeconds": 120, "filters": [{"protocol": "TCP", "remotePort": "443"}]},
        "custom_properties": {},
        "fired_at": None,
    },
    "manual-fired-multi-with-id.json": {
        "schema_name": "manual",
        "instance_key": "manual:runbook-4711",
        "fired": True,
        "targets": [VM_DB_1, VMSS_1],
        "overrides": {"bytesPerPacket": 128, "localPath": "/var/captures/baseline"},
    },
}

INVALID: dict[str, tuple[str, str]] = {
    "invalid-common-targets-not-list.json": (
        "data.essentials.alertTargetIDs",
        "expected a list of resource ID strings, got a string",
    ),
    "invalid-unknown-schema.json": ("body", "not a recognised alert"),
    "invalid-manual-bad-target.json": ("targets[0]", "contains '..'"),
}

FIXTURES = sorted(p.name for p in PAYLOADS.glob("*.json"))
VALID = [name for name in FIXTURES if name in EXPECTED]


def test_every_fixture_is_checked() -> None:
    assert not set(EXPECTED) & set(INVALID)
    assert set(FIXTURES) == set(EXPECTED) | set(INVALID)
    assert {name for name in FIXTURES if name.startswith("ms-")} >= {
        "ms-classic-metric-webhook.json",
        "ms-common-log-v2-vm-fired.json",
        "ms-common-metric-static-resolved-vm.json",
        "ms-nocommon-activitylog-administrative-vm.json",
        "ms-nocommon-metric-v2-static.json",
        "ms-testaction-common-budget.json",
        "ms-testaction-common-metric-static.json",
        "ms-testaction-common-servicehealth.json",
    }


@pytest.mark.parametrize("name", VALID)
def test_fixture(name: str) -> None:
    event = parse_alert(load(name))
    assert event.schema_name in SCHEMA_NAMES
    for field, expected in EXPECTED[name].items():
        actual: Any = event.overrides.to_json() if field == "overrides" else getattr(event, field)
        if field == "instance_key" and expected.endswith(":"):
            assert actual.startswith(expected), (field, actual)
            assert len(actual) == len(expected) + 32
        else:
            assert actual == expected, (field, actual)
    assert event.fired_at is None or event.fired_at.tzinfo is not None


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_fixture(name: str) -> None:
    location, message = INVALID[name]
    with pytest.raises(InputError) as caught:
        parse_alert(load(name))
    assert caught.value.location == location
    assert message in caught.value.message


@pytest.mark.parametrize("name", VALID)
def test_a_retry_of_the_same_notification_has_the_same_key(name: str) -> None:
    """Retries and fan-out resend the same JSON; re-serialising it must not change the key."""
    first = parse_alert(load(name))
    again = parse_alert(json.dumps(json.loads(load(name)), separators=(",", ":")).encode())
    assert again == first


def test_schema_families_are_all_covered_by_fixtures() -> None:
    covered = {parse_alert(load(name)).schema_name for name in VALID}
    assert covered == set(SCHEMA_NAMES) - {"common/log", "common/other"}


# --- instance keys ---------------------------------------------------------------------------------


def test_metric_alert_key_is_stable_per_firing() -> None:
    body = doc("metric-alert-activated-vm.json")
    key = parse_doc(body).instance_key
    changed = copy.deepcopy(body)
    changed["data"]["context"]["portalLink"] = "https://example.invalid/"
    changed["data"]["context"]["resourceId"] = VM_WEB_1.lower()
    changed["data"]["properties"]["ticket"] = "INC-2"
    assert parse_doc(changed).instance_key == key
    later = copy.deepcopy(body)
    later["data"]["context"]["timestamp"] = "2026-03-03T09:40:12.0000000Z"
    assert parse_doc(later).instance_key != key
    other_vm = copy.deepcopy(body)
    other_vm["data"]["context"]["resourceId"] = VM_DB_1
    assert parse_doc(other_vm).instance_key != key


def test_activity_log_key_follows_the_event() -> None:
    body = doc("activity-log-fired-vm.json")
    other = copy.deepcopy(body)
    other["data"]["context"]["activityLog"]["eventDataId"] = "another-event"
    assert parse_doc(other).instance_key != parse_doc(body).instance_key


def test_common_rule_path_alert_id_gets_a_derived_key_per_event() -> None:
    """The test-action activity-log payload's alertId is the rule, the same for every firing."""
    body = doc("common-activitylog-fired-vm.json")
    body["data"]["essentials"]["alertId"] = (
        f"{P}/resourceGroups/rg-weu/providers/microsoft.insights/activityLogAlerts/x"
    )
    key = parse_doc(body).instance_key
    assert key.startswith("common:")
    body["data"]["alertContext"]["eventDataId"] = "another-event"
    assert parse_doc(body).instance_key != key


def test_classic_and_legacy_keys_change_with_the_firing() -> None:
    classic = doc("classic-metric-activated-vm.json")
    later = copy.deepcopy(classic)
    later["context"]["timestamp"] = "2026-03-03T12:31:41Z"
    assert parse_doc(classic).instance_key != parse_doc(later).instance_key
    legacy = doc("legacy-log-analytics-fired.json")
    later = copy.deepcopy(legacy)
    later["SearchIntervalEndtimeUtc"] = "2026-03-03T13:10:00Z"
    assert parse_doc(legacy).instance_key != parse_doc(later).instance_key


def test_manual_key_is_derived_from_sorted_targets_and_reason() -> None:
    a = parse_doc({"targets": [VM_WEB_1, VM_DB_1], "reason": "why"})
    b = parse_doc({"targets": [VM_DB_1.upper().replace(SUB.upper(), SUB), VM_WEB_1], "reason": "why"})
    assert a.instance_key == b.instance_key
    assert a.instance_key.startswith("manual:")
    # Overrides do not identify the request; the reason and the targets do.
    assert parse_doc(
        {"targets": [VM_WEB_1, VM_DB_1], "reason": "why", "capture": {"filters": "[]"}}
    ) == a.model_copy(update={"overrides": CaptureOverrides.parse({"filters": "[]"}, "capture")})
    assert parse_doc({"targets": [VM_WEB_1, VM_DB_1], "reason": "other"}).instance_key != a.instance_key
    assert parse_doc({"targets": [VM_WEB_1], "reason": "why"}).instance_key != a.instance_key
    assert parse_doc({"targets": [VM_WEB_1, VM_DB_1]}).instance_key != a.instance_key
    assert parse_doc({"targets": [VM_WEB_1], "id": "job-1"}).instance_key == "manual:job-1"


# --- targets ---------------------------------------------------------------------------------------


def test_log_dimension_names_are_case_insensitive_and_must_be_ids() -> None:
    body = doc("common-log-v2-fired-workspace-dimension.json")
    dims = body["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"]
    dims[0]["name"] = "_RESOURCEID"
    dims.append({"name": "resourceid", "value": VM_WEB_1})
    dims.append({"name": "ResourceId", "value": "b1b1b1b1-cccc-dddd-eeee-f2f2f2f2f2f2"})  # not an ARM ID
    dims.append({"name": "Computer", "value": VM_WEU_1})  # not a resource-ID dimension
    assert parse_doc(body).targets == [LOWER_DB, VM_WEB_1]
    # Without a usable dimension the workspace target is what the payload names.
    dims[:] = [{"name": "Computer", "value": "vm-db-1"}]
    assert parse_doc(body).targets == [body["data"]["essentials"]["alertTargetIDs"][0]]


def test_prometheus_with_a_vm_target_is_a_resource_alert() -> None:
    body = doc("common-prometheus-fired.json")
    body["data"]["essentials"]["alertTargetIDs"] = [VM_WEB_1]
    event = parse_doc(body)
    assert event.not_resource_alert is None
    assert event.targets == [VM_WEB_1]


def test_null_target_list_is_no_targets() -> None:
    body = doc("common-smartdetector-fired.json")
    body["data"]["essentials"]["alertTargetIDs"] = None
    assert parse_doc(body).targets == []


def test_unknown_monitoring_service_still_yields_targets() -> None:
    body = doc("common-metric-fired-vm.json")
    body["data"]["essentials"]["monitoringService"] = "Something New"
    body["data"]["essentials"]["signalType"] = "Other"
    event = parse_doc(body)
    assert event.schema_name == "common/other"
    assert event.targets == [LOWER_WEB]


# --- custom properties and overrides ---------------------------------------------------------------


def test_override_spellings_map_to_canonical_keys_and_are_validated_at_intake() -> None:
    body = doc("common-metric-fired-vm.json")
    body["data"]["customProperties"] = {
        "CAPTURE_TIME_LIMIT_SECONDS": 30,
        "capture.bytesToCapturePerPacket": "64",
        "captureTotalBytesPerSession": "1048576",
        "captureFilters": [{"protocol": "UDP"}],
        "captureLocalPath": "/var/captures/x",
        "notes": None,
        "count": 3,
        "nested": {"a": [1, True]},
    }
    event = parse_doc(body)
    assert event.overrides.to_json() == {
        "timeLimitSeconds": 30,
        "bytesPerPacket": 64,
        "bytesPerSession": 1048576,
        "filters": [{"protocol": "UDP"}],
        "localPath": "/var/captures/x",
    }
    assert event.custom_properties["notes"] == ""
    assert event.custom_properties["count"] == "3"
    assert event.custom_properties["nested"] == '{"a": [1, true]}'
    assert event.custom_properties["captureFilters"] == '[{"protocol": "UDP"}]'


def test_override_given_twice_is_an_error() -> None:
    body = doc("common-metric-fired-vm.json")
    body["data"]["customProperties"] = {"captureTimeLimitSeconds": "30", "CaptureTimeLimitInSeconds": "60"}
    with pytest.raises(InputError) as caught:
        parse_doc(body)
    assert caught.value.location == "data.customProperties.CaptureTimeLimitInSeconds"
    assert "'timeLimitSeconds' is given twice" in caught.value.message


def test_manual_capture_keys_with_or_without_prefix() -> None:
    event = parse_doc({"targets": [VM_WEB_1], "capture": {"TimeLimitSeconds": "10", "captureFilters": "[]"}})
    assert event.overrides.to_json() == {"timeLimitSeconds": 10, "filters": []}


@pytest.mark.parametrize(
    ("capture", "location"),
    [
        ({"x": 1}, "capture.x"),
        ({"timeLimitSeconds": 18001}, "capture.timeLimitSeconds"),
        ({"captureFilters": "[{"}, "capture.captureFilters"),
    ],
)
def test_invalid_overrides_are_rejected_at_intake(capture: dict[str, Any], location: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_doc({"targets": [VM_WEB_1], "capture": capture})
    assert caught.value.location == location
    body = doc("common-metric-fired-vm.json")
    body["data"]["customProperties"] = {"captureTimeLimitSeconds": "120"}
    with pytest.raises(InputError, match=r"1\.\.60"):
        parse_alert(json.dumps(body).encode(), OverrideLimits(max_time_limit_seconds=60))


def test_custom_properties_fall_back_to_alert_context_for_metric_and_log_rules() -> None:
    body = doc("common-metric-fired-vm.json")
    body["data"]["customProperties"] = None
    event = parse_doc(body)  # alertContext.properties holds the same values
    assert event.overrides.to_json() == {"timeLimitSeconds": 60, "filters": FILTER_LIST}
    body = doc("common-activitylog-fired-vm.json")
    body["data"]["customProperties"] = None
    event = parse_doc(body)  # here alertContext.properties is the event's, never custom properties
    assert event.custom_properties == {}
    assert event.overrides.to_json() == {}


# --- field strictness and errors -------------------------------------------------------------------


def _error(value: Any) -> InputError:
    with pytest.raises(InputError) as caught:
        parse_doc(value)
    return caught.value


def test_body_not_json() -> None:
    with pytest.raises(InputError) as caught:
        parse_alert(b"{'schemaId': 'x'}")
    assert caught.value.location == "body"
    assert "not valid JSON" in caught.value.message
    assert "expected a JSON object" in caught.value.message


def test_body_not_utf8() -> None:
    with pytest.raises(InputError) as caught:
        parse_alert(b'{"targets": ["\xff\xfe"]}')
    assert caught.value.location == "body"
    assert "not UTF-8" in caught.value.message
    assert "offset 14" in caught.value.message


def test_utf16_body_is_not_utf8() -> None:
    with pytest.raises(InputError, match="not UTF-8"):
        parse_alert(json.dumps({"targets": [VM_WEB_1]}).encode("utf-16"))


@pytest.mark.parametrize(
    ("body", "kind"),
    [(b"[]", "a list"), (b'"x"', "a string"), (b"3", "a number"), (b"null", "null"), (b"true", "a boolean")],
)
def test_body_not_an_object(body: bytes, kind: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_alert(body)
    assert caught.value.location == "body"
    assert caught.value.message == f"expected a JSON object (an alert or a manual request), got {kind}"


@pytest.mark.parametrize("body", [b"", b"  \r\n", "\ufeff".encode()])
def test_empty_body(body: bytes) -> None:
    with pytest.raises(InputError, match="the body is empty"):
        parse_alert(body)


def test_unknown_schema() -> None:
    error = _error({"text": "My Alert Rule fired with 18 records over threshold of 10 ."})
    assert error.location == "body"
    assert "azureMonitorCommonAlertSchema" in error.message
    assert '"targets"' in error.message


def test_unknown_schema_id() -> None:
    error = _error({"schemaId": "Microsoft.Insights/Other", "data": {}})
    assert error.location == "schemaId"
    assert error.message.startswith("unknown schemaId 'Microsoft.Insights/Other'; expected one of: ")
    error = _error({"schemaId": 7, "data": {}})
    assert (error.location, error.message) == ("schemaId", "expected a string, got a number")


def test_too_large() -> None:
    padding = MAX_BODY_BYTES - len(json.dumps({"targets": [VM_WEB_1]}))
    exact = json.dumps({"targets": [VM_WEB_1]}).encode() + b" " * padding
    assert len(exact) == MAX_BODY_BYTES
    assert parse_alert(exact).targets == [VM_WEB_1]
    with pytest.raises(InputError) as caught:
        parse_alert(exact + b" ")
    assert caught.value.location == "body"
    assert (
        caught.value.message
        == f"the body is {MAX_BODY_BYTES + 1} bytes; at most 1048576 bytes (1 MiB) are accepted"
    )


def test_bom_and_bytearray_are_accepted() -> None:
    assert parse_alert(b"\xef\xbb\xbf" + load("manual-fired-vm.json")).targets == [VM_WEB_1]
    assert parse_alert(bytearray(load("manual-fired-vm.json"))).targets == [VM_WEB_1]  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [b'{"targets": [NaN]}', b'{"x": Infinity}', b'{"x": ' + b"9" * 5000 + b"}"])
def test_json_python_accepts_but_we_do_not(body: bytes) -> None:
    with pytest.raises(InputError, match="not acceptable JSON"):
        parse_alert(body)


def test_deep_nesting() -> None:
    with pytest.raises(InputError, match="nested too deeply"):
        parse_alert(b'{"targets": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")


def test_targets_not_a_list() -> None:
    body = doc("common-metric-fired-vm.json")
    body["data"]["essentials"]["alertTargetIDs"] = {"id": VM_WEB_1}
    error = _error(body)
    assert (error.location, error.message) == (
        "data.essentials.alertTargetIDs",
        "expected a list of resource ID strings, got an object",
    )
    body["data"]["essentials"]["alertTargetIDs"] = [VM_WEB_1, 42]
    error = _error(body)
    assert (error.location, error.message) == (
        "data.essentials.alertTargetIDs[1]",
        "expected a string, got a number",
    )


def test_mixed_case_key_errors_use_the_documented_name() -> None:
    body = doc("common-metric-fired-mixedcase.json")
    body["Data"]["Essentials"]["AlertTargetIDs"] = "x"
    assert _error(body).location == "data.essentials.alertTargetIDs"


def test_exact_key_wins_over_a_case_variant() -> None:
    body = doc("metric-alert-activated-vm.json")
    body["data"]["Status"] = "Deactivated"
    assert parse_doc(body).fired is True  # "status": "Activated" is the exact spelling


@pytest.mark.parametrize(
    ("mutate", "location", "message"),
    [
        (lambda b: b["data"].pop("essentials"), "data.essentials", "required field is missing"),
        (lambda b: b.pop("data"), "data", "required field is missing"),
        (lambda b: b.update(data=[]), "data", "expected an object, got a list"),
        (
            lambda b: b["data"]["essentials"].pop("alertId"),
            "data.essentials.alertId",
            "required field is missing",
        ),
        (
            lambda b: b["data"]["essentials"].update(alertId=""),
            "data.essentials.alertId",
            "got an empty string",
        ),
        (lambda b: b["data"]["essentials"].update(alertId=None), "data.essentials.alertId", "got null"),
        (
            lambda b: b["data"]["essentials"].update(alertId="x" * 1025),
            "data.essentials.alertId",
            "at most 1024 characters",
        ),
        (
            lambda b: b["data"]["essentials"].update(monitorCondition="Suppressed"),
            "data.essentials.monitorCondition",
            'unknown value \'Suppressed\'; expected one of "Fired", "Resolved"',
        ),
        (
            lambda b: b["data"]["essentials"].update(monitorCondition=1),
            "data.essentials.monitorCondition",
            'expected "Fired" or "Resolved", got a number',
        ),
        (
            lambda b: b["data"].update(customProperties="captureTimeLimitSeconds=30"),
            "data.customProperties",
            "expected an object of custom properties (or null), got a string",
        ),
        (
            lambda b: b["data"]["essentials"].update(monitoringService=["Platform"]),
            "data.essentials.monitoringService",
            "expected a string, got a list",
        ),
    ],
)
def test_common_schema_errors(mutate: Any, location: str, message: str) -> None:
    body = doc("common-metric-fired-vm.json")
    mutate(body)
    error = _error(body)
    assert error.location == location
    assert message in error.message


def test_informational_fields_of_odd_types_are_dropped_not_fatal() -> None:
    body = doc("common-metric-fired-vm.json")
    body["data"]["essentials"].update(
        alertRule={"x": 1}, severity=3, description=[], firedDateTime="yesterday"
    )
    body["data"]["alertContext"] = "not an object"
    body["data"]["unexpected"] = {"extra": True}
    event = parse_doc(body)
    assert (event.rule, event.severity, event.description, event.fired_at) == (None, "3", None, None)
    assert event.targets == [LOWER_WEB]


@pytest.mark.parametrize(
    ("name", "mutate", "location", "message"),
    [
        (
            "metric-alert-activated-vm.json",
            lambda b: b["data"].update(status="Fired"),
            "data.status",
            'expected one of "Activated", "Deactivated", "Resolved"',
        ),
        (
            "metric-alert-activated-vm.json",
            lambda b: b["data"]["context"].pop("resourceId"),
            "data.context.resourceId",
            "required field is missing; expected the target resource ID string",
        ),
        (
            "metric-alert-activated-vm.json",
            lambda b: b["data"].update(properties=["captureFilters"]),
            "data.properties",
            "expected an object of custom properties (or null), got a list",
        ),
        (
            "activity-log-fired-vm.json",
            lambda b: b["data"]["context"]["activityLog"].update(resourceId=5),
            "data.context.activityLog.resourceId",
            "expected the target resource ID string, got a number",
        ),
        (
            "activity-log-fired-vm.json",
            lambda b: b["data"]["context"].pop("activityLog"),
            "data.context.activityLog",
            "required field is missing",
        ),
        ("classic-metric-activated-vm.json", lambda b: b.update(status="Fired"), "status", '"Activated"'),
        (
            "classic-metric-activated-vm.json",
            lambda b: b["context"].update(resourceRegion=1),
            "context.resourceRegion",
            "expected a string, got a number",
        ),
        (
            "legacy-log-appinsights-fired.json",
            lambda b: b["data"].update(AlertRuleName=None),
            "data.AlertRuleName",
            "expected a string, got null",
        ),
        (
            "budget-notification.json",
            lambda b: b.update(data="x"),
            "data",
            "expected an object, got a string",
        ),
    ],
)
def test_other_schema_errors(name: str, mutate: Any, location: str, message: str) -> None:
    body = doc(name)
    mutate(body)
    error = _error(body)
    assert error.location == location
    assert message in error.message


@pytest.mark.parametrize(
    ("body", "location", "message"),
    [
        (
            {"targets": VM_WEB_1},
            "targets",
            "expected a non-empty list of VM or scale-set instance resource ID strings, got a string",
        ),
        ({"targets": []}, "targets", "got an empty list"),
        ({"targets": [VM_WEB_1, None]}, "targets[1]", "expected a string, got null"),
        ({"targets": ["vm-web-1"]}, "targets[0]", "does not start with '/subscriptions/'"),
        ({"targets": [VM_WEB_1 + "?x"]}, "targets[0]", "query string"),
        (
            {"targets": [VM_WEB_1], "captrue": {}},
            "captrue",
            "unknown field; expected only: targets, reason, capture, id",
        ),
        (
            {"targets": [VM_WEB_1], "capture": "timeLimitSeconds=5"},
            "capture",
            "expected an object of capture options",
        ),
        ({"targets": [VM_WEB_1], "reason": 5}, "reason", "expected a string, got a number"),
        ({"targets": [VM_WEB_1], "id": ""}, "id", "got an empty string"),
        ({"targets": [VM_WEB_1], "id": "a\nb"}, "id", "control characters"),
        ({"targets": [VM_WEB_1], "id": "x" * 257}, "id", "at most 256"),
        (
            {"targets": [VM_WEB_1], "capture": {"filters": "[]", "captureFilters": "[]"}},
            "capture.captureFilters",
            "given twice",
        ),
    ],
)
def test_manual_request_errors(body: Any, location: str, message: str) -> None:
    error = _error(body)
    assert error.location == location
    assert message in error.message


def test_manual_keys_are_case_insensitive() -> None:
    event = parse_doc({"Targets": [VM_WEB_1], "Reason": "r", "ID": "x", "Capture": {"timeLimitSeconds": 5}})
    assert (event.instance_key, event.description, event.overrides.to_json()) == (
        "manual:x",
        "r",
        {"timeLimitSeconds": 5},
    )


def test_payload_error_text() -> None:
    error = InputError("expected a list", "data.essentials.alertTargetIDs")
    assert str(error) == "data.essentials.alertTargetIDs: expected a list"
    assert InputError("x").location == "body"


def test_alert_from_json_rejects_non_objects() -> None:
    with pytest.raises(InputError, match="got a list"):
        alert_from_json([{"targets": [VM_WEB_1]}])


def test_non_bytes_body() -> None:
    with pytest.raises(InputError, match="as bytes, got str"):
        parse_alert('{"targets": []}')  # type: ignore[arg-type]


def test_times() -> None:
    legacy = doc("legacy-log-analytics-fired.json")
    legacy["SearchIntervalEndtimeUtc"] = "3/22/2019 1:51:31 PM"
    assert parse_doc(legacy).fired_at == datetime(2019, 3, 22, 13, 51, 31, tzinfo=UTC)
    activity = doc("activity-log-fired-vm.json")
    activity["data"]["context"]["activityLog"]["eventTimestamp"] = "2026-03-03T12:00:00+02:00"
    assert parse_doc(activity).fired_at == datetime(2026, 3, 3, 10, 0, tzinfo=UTC)
    activity["data"]["context"]["activityLog"]["eventTimestamp"] = None
    assert parse_doc(activity).fired_at == datetime(2026, 3, 3, 11, 29, 0, 141807, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [b'{"targets": ["\\ud800"]}', b'{"\\udc00": 1}', b'{"targets": ["x"], "reason": "\\ud83d"}'],
)
def test_lone_surrogates_are_rejected(body: bytes) -> None:
    with pytest.raises(InputError, match="unpaired UTF-16 surrogate"):
        parse_alert(body)


def test_surrogate_pairs_are_text() -> None:
    event = parse_alert(b'{"targets": ["%s"], "reason": "\\ud83d\\ude00"}' % VM_WEB_1.encode())
    assert event.description == "\U0001f600"


def test_event_is_immutable() -> None:
    event = parse_alert(load("manual-fired-vm.json"))
    with pytest.raises(ValueError, match="frozen"):
        setattr(event, "fired", False)  # noqa: B010 (mypy does not know pydantic's frozen models)


# --- properties ------------------------------------------------------------------------------------


def _recase(value: Any, rnd: random.Random) -> Any:
    """Randomly change the case of every key (not of values): senders vary key case."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            recased = "".join(c.upper() if rnd.random() < 0.5 else c.lower() for c in key)
            out[recased] = _recase(item, rnd)
        return out
    if isinstance(value, list):
        return [_recase(item, rnd) for item in value]
    return value


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(VALID), seed=st.integers(0, 2**32))
def test_key_case_does_not_change_the_event(name: str, seed: int) -> None:
    original = parse_alert(load(name))
    recased = parse_doc(_recase(doc(name), random.Random(seed)))
    fields = {"custom_properties", "overrides"}
    assert recased.model_dump(exclude=fields) == original.model_dump(exclude=fields)
    assert recased.overrides == original.overrides
    assert {k.casefold(): v for k, v in recased.custom_properties.items()} == {
        k.casefold(): v for k, v in original.custom_properties.items()
    }


_KEYS = st.sampled_from(
    [
        "schemaId", "data", "essentials", "alertContext", "customProperties", "alertId", "alertTargetIDs",
        "monitorCondition", "monitoringService", "signalType", "firedDateTime", "condition", "allOf",
        "dimensions", "name", "value", "status", "context", "resourceId", "resourceRegion", "properties",
        "activityLog", "eventSource", "AlertRuleName", "SearchQuery", "SearchResult", "SearchResults",
        "tables", "columns", "rows", "targets", "reason", "capture", "id", "captureTimeLimitSeconds",
    ]
)  # fmt: skip
_VALUES = st.sampled_from(
    [
        "azureMonitorCommonAlertSchema", "AzureMonitorMetricAlert", "Microsoft.Insights/activityLogs",
        "Microsoft.Insights/LogAlert", "AIP Budget Notification", "Fired", "Resolved", "Activated",
        "Log Alerts V2", "Log Analytics", "Prometheus", "CostAlerts", "ServiceHealth", "_ResourceId", "Log",
        VM_WEB_1, VMSS_1, "/subscriptions/x", "2026-03-02T10:05:12Z",
    ]
)  # fmt: skip
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | _VALUES
)
JSON = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=8), inner, max_size=6)
    ),
    max_leaves=40,
)


def _outcome(body: bytes) -> None:
    try:
        event: AlertEvent | InputError = parse_alert(body)
    except InputError as exc:
        event = exc
    if isinstance(event, InputError):
        assert event.message
        assert event.location
    else:
        assert event.schema_name in SCHEMA_NAMES
        assert event.instance_key


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_arbitrary_json_gives_an_event_or_a_payload_error(value: Any) -> None:
    _outcome(json.dumps(value).encode())


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_an_event_or_a_payload_error(body: bytes) -> None:
    _outcome(body)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*path, index))
    return found


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(FIXTURES), data=st.data())
def test_mutated_fixtures_give_an_event_or_a_payload_error(name: str, data: st.DataObject) -> None:
    """Replace or delete one part of a real payload: near-misses exercise the schema code itself."""
    body = doc(name)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(body)))
        if not path:
            body = data.draw(JSON)
            continue
        parent = body
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON)
    _outcome(json.dumps(body).encode())
