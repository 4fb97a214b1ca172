"""The custom roles hold exactly the ARM actions the app uses: derived from the app's own calls.

A representative run of the real app (webhook -> capture on a VM, on a scale-set instance and in a second
region, duplicate, the captures endpoints, the monitor following captures to their end and deleting them,
the subscription list, the flight recorder arming a tagged VM, freezing it on an alert, reporting and
disarming it) goes against the ARM emulator; its request log is mapped to RBAC operations and
compared with infra/app/roles.json, scope by scope. An ARM request without a mapping fails the test, so
a new ARM call in the app cannot slip past the role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from capture import app_context, reset
from capture.monitor import Monitor
from capture.recorder import RecorderRun
from devhost.stack import NotificationReceiver
from emulator import Emulator, RequestRecord
from emulator.azurite import Azurite
from tests.conftest import RG, VM_WEB_1, VM_WEU_1, VMSS_API, payload, request
from tests.flow.conftest import reporting_world
from tests.infra.bicep import main, module_body, module_file, reference, roles
from tests.queues import Queues

# Kinds of scope the custom roles are assigned at (infra/app/roles.json keys, main.bicep modules).
WATCHERS = "watchers"  # the Network Watcher resource groups
LOOKUP = "watcherLookup"  # each subscription of the capture scopes
TARGETS = "targets"  # the capture scopes (subscriptions or resource groups of the VMs)
STORAGE = "captureStorage"  # the capture storage account

Need = tuple[str, str]  # (scope kind, RBAC action)

RECORDED = f"{RG}/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"

_SUB = r"/subscriptions/[^/]+"
_RG = _SUB + r"/resourcegroups/[^/]+"
_CAPTURES = _RG + r"/providers/microsoft\.network/networkwatchers/[^/]+/packetcaptures"
_COMPUTE = _RG + r"/providers/microsoft\.compute"


@dataclass(frozen=True)
class Operation:
    """One ARM request shape and the RBAC operations Azure checks for it."""

    method: str
    path: str  # regular expression over the lower-cased path
    needs: tuple[Need, ...]
    why: str

    def matches(self, record: RequestRecord) -> bool:
        return record.method == self.method and re.fullmatch(self.path, record.path.casefold()) is not None


# Operation names: Azure resource provider operations (Microsoft.Network, Microsoft.Compute) and Network
# Watcher's "Azure RBAC permissions required to use Network Watcher capabilities".
OPERATIONS = (
    Operation(
        "GET",
        r"/subscriptions",
        (),
        "tenant-level subscription list: returns the subscriptions where the caller holds any role; "
        "it checks no action of ours",
    ),
    Operation(
        "GET",
        _SUB + r"/resources",
        ((LOOKUP, "Microsoft.Resources/subscriptions/resources/read"),),
        "Resources_List filtered by tag: the flight recorder finds the opted-in VMs, one call per subscription",
    ),
    Operation(
        "GET",
        _SUB + r"/providers/microsoft\.network/networkwatchers",
        ((LOOKUP, "Microsoft.Network/networkWatchers/read"),),
        "NetworkWatchers_ListAll: the watcher of a region is found by location at subscription scope",
    ),
    Operation(
        "GET",
        _CAPTURES,
        ((WATCHERS, "Microsoft.Network/networkWatchers/packetCaptures/read"),),
        "PacketCaptures_List",
    ),
    Operation(
        "GET",
        _CAPTURES + r"/[^/]+",
        ((WATCHERS, "Microsoft.Network/networkWatchers/packetCaptures/read"),),
        "PacketCaptures_Get",
    ),
    Operation(
        "PUT",
        _CAPTURES + r"/[^/]+",
        ((WATCHERS, "Microsoft.Network/networkWatchers/packetCaptures/write"),),
        "PacketCaptures_Create; Network Watcher also checks the caller on the target and the storage "
        "account (LINKED_ACCESS below)",
    ),
    Operation(
        "POST",
        _CAPTURES + r"/[^/]+/querystatus",
        ((WATCHERS, "Microsoft.Network/networkWatchers/packetCaptures/queryStatus/action"),),
        "PacketCaptures_GetStatus",
    ),
    Operation(
        "POST",
        _CAPTURES + r"/[^/]+/stop",
        ((WATCHERS, "Microsoft.Network/networkWatchers/packetCaptures/stop/action"),),
        "PacketCaptures_Stop",
    ),
    Operation(
        "DELETE",
        _CAPTURES + r"/[^/]+",
        ((WATCHERS, "Microsoft.Network/networkWatchers/packetCaptures/delete"),),
        "PacketCaptures_Delete",
    ),
    Operation(
        "GET",
        _COMPUTE + r"/virtualmachines/[^/]+",
        ((TARGETS, "Microsoft.Compute/virtualMachines/read"),),
        "the VM's region (resources.get_by_id)",
    ),
    Operation(
        "GET",
        _COMPUTE + r"/virtualmachinescalesets/[^/]+/virtualmachines/[^/]+",
        ((TARGETS, "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/read"),),
        "the scale-set instance's region (resources.get_by_id)",
    ),
    Operation(
        "GET",
        _COMPUTE + r"/virtualmachinescalesets/[^/]+",
        ((TARGETS, "Microsoft.Compute/virtualMachineScaleSets/read"),),
        "a scale set",
    ),
)

# What Network Watcher checks on the caller when it creates a capture (its RBAC page: reading the target
# and its Network Watcher agent, fetching SAS for the storage account). Keyed by what the PUT carried.
# The write actions the page also lists (install the agent) are left out: the app never installs it.
LINKED_ACCESS: dict[str, tuple[Need, ...]] = {
    "AzureVM": (
        (TARGETS, "Microsoft.Compute/virtualMachines/read"),
        (TARGETS, "Microsoft.Compute/virtualMachines/extensions/read"),
    ),
    "AzureVMSS": (
        (TARGETS, "Microsoft.Compute/virtualMachineScaleSets/read"),
        (TARGETS, "Microsoft.Compute/virtualMachineScaleSets/extensions/read"),
    ),
    "storageId": (
        (STORAGE, "Microsoft.Storage/storageAccounts/read"),
        (STORAGE, "Microsoft.Storage/storageAccounts/listServiceSas/action"),
        (STORAGE, "Microsoft.Storage/storageAccounts/listAccountSas/action"),
        (STORAGE, "Microsoft.Storage/storageAccounts/listKeys/action"),
    ),
}


def operation_for(record: RequestRecord) -> Operation:
    for operation in OPERATIONS:
        if operation.matches(record):
            return operation
    raise AssertionError(
        f"the app made an ARM request with no RBAC mapping: {record.method} {record.path}. Add it to "
        "OPERATIONS in tests/infra/test_roles.py with the operation Azure checks, then the action to "
        "infra/app/roles.json under the scope it is assigned at."
    )


def needs_of(log: list[RequestRecord]) -> dict[Need, set[str]]:
    """Every (scope kind, action) the logged requests need, with the requests that need it (a PUT's
    linked access from the body it sent)."""
    needs: dict[Need, set[str]] = {}
    for record in log:
        operation = operation_for(record)
        wanted = list(operation.needs)
        if record.method == "PUT":
            body = json.loads(record.body)["properties"]
            wanted += LINKED_ACCESS[body["targetType"]]
            if (body.get("storageLocation") or {}).get("storageId"):
                wanted += LINKED_ACCESS["storageId"]
        for need in wanted:
            needs.setdefault(need, set()).add(f"{record.method} {re.split('[:;]', operation.why)[0]}")
    return needs


def role_actions() -> dict[Need, str]:
    granted = {}
    for kind, role in roles().items():
        for action in role["actions"]:
            granted[(kind, action)] = kind
    return granted


def compare(needs: dict[Need, set[str]], granted: set[Need]) -> list[str]:
    problems = []
    for kind, action in sorted(set(needs) - granted):
        problems.append(
            f"missing: the app needs {action} on the {kind} scope ({', '.join(sorted(needs[(kind, action)]))})"
        )
    for kind, action in sorted(granted - set(needs)):
        problems.append(f"unused: roles.json grants {action} on the {kind} scope, no app call needs it")
    for kind, action in sorted(granted):
        if "*" in action:
            problems.append(f"wildcard: {action} in {kind}")
    return problems


# ---------------------------------------------------------------- the representative run


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch,
    azurite: Azurite,
    tls_files: tuple[Path, Path],
    receiver: NotificationReceiver,
    queues: Queues,
) -> Iterator[Emulator]:
    """The sample world writing capture files to Azurite; no allowed scopes, so the monitor lists subscriptions."""
    with reporting_world(monkeypatch, azurite, tls_files, receiver) as emu:
        monkeypatch.delenv("CAPTURE_ALLOWED_SCOPES", raising=False)
        reset()
        yield emu


def monitor(world: Emulator) -> Monitor:
    """The process's monitor, on the emulator's clock."""
    app_context().monitor.clock = world.clock.now_datetime
    return app_context().monitor


@pytest.fixture
def app_run(call, world, receiver, queues) -> tuple[list[RequestRecord], dict[str, dict[str, Any]]]:
    """Drive the app through everything it does against ARM; return the ARM log and the captures created."""
    world.clear_log()
    started = []
    for body in (
        {"targets": [VM_WEB_1], "reason": "web"},  # VM, eastus watcher in NetworkWatcherRG
        payload("common-metric-fired-vmss-instance.json"),  # scale-set instance (AzureVMSS + scope)
        {"targets": [VM_WEU_1], "reason": "weu"},  # second region, watcher in another group
    ):
        status, answer, _ = call("alert_webhook", request(body=body))
        assert status == 202, answer
        started.append(answer["results"][0]["capture"]["name"])
    status, answer, _ = call("alert_webhook", request(body={"targets": [VM_WEB_1], "reason": "web"}))
    assert (status, answer["status"]) == (200, "duplicate")
    created = {capture_id.casefold(): world.capture_json(capture_id) for capture_id in world.capture_ids()}
    assert len(created) == 3

    status, answer, _ = call("list_captures", request("GET", "/api/captures"))
    assert (status, answer["count"]) == (200, 3)
    status, answer, _ = call(
        "get_capture", request("GET", f"/api/captures/{started[0]}", route_params={"name": started[0]})
    )
    assert status == 200
    world.advance(125)  # ended: status queries, then queued
    assert sorted(monitor(world).schedule().queued) == sorted(started)
    assert queues.drain() == ["ok"] * 3  # the worker: get, status, delete
    assert len(receiver.received) == 3
    # The flight recorder, run by the scheduler: arm a tagged VM, freeze it on an alert, queue the
    # timeline, the worker reports it, re-arm, disarm on untag.
    app_context().recorder.clock = world.clock.now_datetime
    world.world.set_tags(RECORDED, {"capture-recorder": "on"})

    def recorder_run() -> RecorderRun:
        run = monitor(world).schedule().recorder
        assert run is not None
        return run

    assert len(recorder_run().armed) == 1
    world.advance(60)
    status, answer, _ = call("alert_webhook", request(body={"targets": [RECORDED], "reason": "recorder"}))
    assert (status, answer["status"]) == (202, "frozen")
    world.advance(61)
    assert len(recorder_run().queued) == 1
    assert queues.drain() == ["ok"]  # the worker: get, status, get, status, delete both rings
    assert len(receiver.received) == 4
    assert len(recorder_run().armed) == 1  # re-armed by the run after the report
    world.world.set_tags(RECORDED, {})
    assert len(recorder_run().disarmed) == 1
    assert {r.method for r in world.request_log} >= {"GET", "PUT", "POST", "DELETE"}
    return world.request_log, created


def test_custom_roles_hold_exactly_the_actions_the_app_uses(app_run):
    log, _ = app_run
    needs = needs_of(log)
    problems = compare(needs, set(role_actions()))
    assert not problems, "infra/app/roles.json and the app's ARM calls disagree:\n  " + "\n  ".join(problems)


def test_every_scope_kind_is_exercised(app_run):
    log, _ = app_run
    assert {kind for kind, _ in needs_of(log)} == set(roles()) == {WATCHERS, LOOKUP, TARGETS, STORAGE}


def test_an_unmapped_arm_request_fails_with_a_clear_message():
    record = RequestRecord(0.0, "arm", "POST", f"{VMSS_API}/restart", {}, 200, 0.0, "", "", None)
    with pytest.raises(AssertionError, match=r"no RBAC mapping: POST .*/restart"):
        operation_for(record)


def test_compare_reports_missing_unused_and_wildcards():
    needs: dict[Need, set[str]] = {
        (WATCHERS, "Microsoft.Network/networkWatchers/packetCaptures/read"): {"GET x"}
    }
    problems = compare(needs, {(WATCHERS, "Microsoft.Network/networkWatchers/*")})
    assert [p.split(":")[0] for p in problems] == ["missing", "unused", "wildcard"]


# ---------------------------------------------------------------- the template uses roles.json at the right scopes

ROLE_RESOURCES = {
    WATCHERS: "watchersRole",
    LOOKUP: "watcherLookupRole",
    TARGETS: "targetsRole",
    STORAGE: "captureStorageRole",
}
# main.bicep modules assigning each role, and the scope function each must use.
ASSIGNMENT_SCOPES = {
    WATCHERS: {"watchersDefaultAssignments": "resource_group", "watchersAssignments": "resource_group"},
    LOOKUP: {"watcherLookupAssignments": "subscription"},
    TARGETS: {
        "targetsSubscriptionAssignments": "subscription",
        "targetsResourceGroupAssignments": "resource_group",
    },
}


def test_each_role_definition_is_built_from_roles_json():
    resources = main()["resources"]
    assert set(roles()) == set(ROLE_RESOURCES)
    for kind, symbol in ROLE_RESOURCES.items():
        properties = resources[symbol]["config"]["properties"]
        assert resources[symbol]["type"] == "Microsoft.Authorization/roleDefinitions"
        [permission] = properties["permissions"]
        assert reference(permission["actions"]) == f"roles.{kind}.actions"
        assert permission["notActions"] == []
        assert properties["type"] == "CustomRole"


def test_each_role_is_assigned_only_at_its_kind_of_scope():
    modules = main()["modules"]
    for kind, expected in ASSIGNMENT_SCOPES.items():
        for name, body in ((n, module_body(m)) for n, m in modules.items()):
            if reference(body["params"].get("roleDefinitionId")) == f"{ROLE_RESOURCES[kind]}.id":
                assert name in expected, f"{ROLE_RESOURCES[kind]} is also assigned by module {name}"
                assert body["scope"]["function"]["type"] == expected[name], f"{name} has the wrong scope"
        for name in expected:
            assert (
                reference(module_body(modules[name])["params"]["roleDefinitionId"])
                == f"{ROLE_RESOURCES[kind]}.id"
            )
    # the capture-storage role: on the capture account only (app-roles.bicep), never in main.bicep
    assert (
        reference(module_body(modules["appRoles"])["params"]["captureStorageRoleId"])
        == "captureStorageRole.id"
    )
    assignment = module_file("app-roles")["resources"]["captureStorageCustom"]["config"]
    assert assignment["scope"] == "captureStorage"
    assert assignment["properties"]["roleDefinitionId"] == "captureStorageRoleId"
