"""Compute reads by resource ID and the subscription's resource listing (azure-mgmt-resource)."""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.resource.resources import ResourceManagementClient

from emulator import Emulator, World
from emulator.testing import (
    SAMPLE_SUBSCRIPTION,
    emulator_fixture,
    error_code,
    error_message,
    properties_of,
    resource_client,
    scale_set_resource_id,
    vm_resource_id,
)


def test_vm_get_by_id_has_the_compute_shape(rc: ResourceManagementClient) -> None:
    vm = rc.resources.get_by_id(vm_resource_id("rg-web", "vm-app-win-01"), api_version="2024-07-01")
    assert (vm.name, vm.type, vm.location) == ("vm-app-win-01", "Microsoft.Compute/virtualMachines", "eastus")
    assert vm.id == vm_resource_id("rg-web", "vm-app-win-01")
    props = properties_of(vm)
    assert props["provisioningState"] == "Succeeded"
    assert len(props["vmId"]) == 36
    assert props["storageProfile"]["osDisk"]["osType"] == "Windows"


@pytest.mark.parametrize("version", ["2024-07-01", "2024-11-01", "2025-04-01", "2026-04-01"])
def test_known_compute_versions(rc: ResourceManagementClient, version: str) -> None:
    assert (
        rc.resources.get_by_id(vm_resource_id("rg-web", "vm-web-01"), api_version=version).location
        == "eastus"
    )


def test_unknown_compute_version_is_no_registered_provider(rc: ResourceManagementClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        rc.resources.get_by_id(vm_resource_id("rg-web", "vm-web-01"), api_version="2024-01-01")
    assert info.value.status_code == 400
    assert error_code(info.value) == "NoRegisteredProviderFound"
    assert "No registered resource provider found for location 'eastus' and API version '2024-01-01'" in str(
        info.value
    )


def test_missing_vm_and_group_are_arm_404s(rc: ResourceManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        rc.resources.get_by_id(vm_resource_id("rg-web", "myVM"), api_version="2024-07-01")
    assert error_code(info.value) == "ResourceNotFound"
    assert error_message(info.value) == (
        "The Resource 'Microsoft.Compute/virtualMachines/myVM' under resource group 'rg-web' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix"
    )
    with pytest.raises(ResourceNotFoundError) as info:
        rc.resources.get_by_id(vm_resource_id("rg-nope", "vm-web-01"), api_version="2024-07-01")
    assert error_code(info.value) == "ResourceGroupNotFound"
    assert error_message(info.value) == "Resource group 'rg-nope' could not be found."


def test_scale_set_and_instances(rc: ResourceManagementClient) -> None:
    ss = scale_set_resource_id("rg-web", "vmss-web")
    inst = rc.resources.get_by_id(f"{ss}/virtualMachines/1", api_version="2024-07-01")
    assert inst.type == "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
    assert inst.location == "eastus"
    assert properties_of(inst)["storageProfile"]["osDisk"]["osType"] == "Linux"
    assert (
        rc.resources.get_by_id(ss, api_version="2024-07-01").type
        == "Microsoft.Compute/virtualMachineScaleSets"
    )
    with pytest.raises(ResourceNotFoundError):
        rc.resources.get_by_id(f"{ss}/virtualMachines/9", api_version="2024-07-01")


def test_extensions_list_and_get(emu: Emulator, rc: ResourceManagementClient) -> None:
    def get(path: str) -> requests.Response:
        return requests.get(
            f"{emu.arm_endpoint}{path}?api-version=2024-07-01",
            verify=emu.ca_cert_path,
            timeout=5,
            headers={"Authorization": f"Bearer {emu.issue_token()}"},
        )

    exts = get(vm_resource_id("rg-data", "vm-db-01") + "/extensions").json()["value"]
    agent = next(e for e in exts if e["properties"]["publisher"] == "Microsoft.Azure.NetworkWatcher")
    assert agent["name"] == "NetworkWatcherAgent"
    assert agent["properties"]["type"] == "NetworkWatcherAgentLinux"
    assert agent["properties"]["typeHandlerVersion"] == "1.4"
    assert len(exts) == 2
    assert get(vm_resource_id("rg-web", "vm-noagent-01") + "/extensions").json() == {"value": []}
    one = rc.resources.get(
        "rg-web",
        "Microsoft.Compute",
        "virtualMachines/vm-app-win-01",
        "extensions",
        "AzureNetworkWatcherExtension",
        api_version="2024-07-01",
    )
    assert properties_of(one)["type"] == "NetworkWatcherAgentWindows"
    ss_exts = get(scale_set_resource_id("rg-web", "vmss-web") + "/virtualMachines/0/extensions").json()[
        "value"
    ]
    assert ss_exts[0]["properties"]["publisher"] == "Microsoft.Azure.NetworkWatcher"


def world_size(w: World) -> tuple[int, int]:
    """(top-level resources + VM extensions, VMs) as ARM lists them."""
    vms = w.vms()
    extensions = sum(len(v.extensions) for v in vms)
    unrelated = sum(1 for r in w.iter_resources()) - len(vms) - len(w.watchers()) - len(w.storage_accounts())
    return len(w.watchers()) + len(w.storage_accounts()) + len(vms) + extensions + unrelated, len(vms)


def test_resources_list_pages_through_everything(emu: Emulator, rc: ResourceManagementClient) -> None:
    items = list(rc.resources.list())
    total, vm_count = world_size(emu.world)
    assert total > 50  # the sample world's 40 unrelated resources make it span pages
    types = [i.type for i in items]
    assert types.count("Microsoft.Compute/virtualMachines") == vm_count
    assert types.count("Microsoft.Network/networkWatchers") == 2
    assert (
        types.count("Microsoft.Compute/virtualMachines/extensions") == vm_count
    )  # one lacks the agent, one has 2
    assert len(items) == total
    assert len(emu.request_log) == -(-total // 50)  # 50 per page
    assert all(r.query["api-version"] == "2025-04-01" for r in emu.request_log)


big = emulator_fixture(name="big", world=lambda: _big_world(), page_size=1000)


def _big_world() -> World:
    w = World.from_file("samples/world.json")
    w.add_unrelated_resources(2500)
    for i in range(100):
        w.add_vm(f"vm-bench-{i:03d}", resource_group="rg-bench", location="eastus", scenario="web")
    return w


def test_resources_list_with_filter_and_top(big: Emulator) -> None:
    with resource_client(big, big.credential()) as client:
        total, vm_count = world_size(big.world)
        vms = list(client.resources.list(filter="resourceType eq 'Microsoft.Compute/virtualMachines'"))
        assert len(vms) == vm_count >= 100
        assert len(big.request_log) == 1
        big.clear_log()
        everything = list(client.resources.list(top=500))
        assert len(everything) == total
        assert len(big.request_log) == -(-total // 500)
        rg = list(client.resources.list_by_resource_group("rg-bench"))
        assert len(rg) == 200  # 100 VMs + their agent extensions
        sub = list(client.resources.list(filter="substringof('bench-00', name) and location eq 'eastus'"))
        assert {r.name for r in sub if "/" not in r.name} == {f"vm-bench-00{i}" for i in range(10)}
        with pytest.raises(HttpResponseError) as info:
            list(client.resources.list(filter="startswith(tagName, 'x')"))
        assert error_code(info.value) == "InvalidFilterInQueryString"


def test_resource_groups_and_subscription(emu: Emulator, rc: ResourceManagementClient) -> None:
    groups = {g.name for g in rc.resource_groups.list()}
    assert {"NetworkWatcherRG", "rg-network", "rg-capture", "rg-unrelated-00"} <= groups
    assert rc.resource_groups.get("rg-web").location == "eastus"
    r = requests.get(
        f"{emu.arm_endpoint}/subscriptions/{SAMPLE_SUBSCRIPTION}?api-version=2022-12-01",
        verify=emu.ca_cert_path,
        headers={"Authorization": f"Bearer {emu.issue_token()}"},
        timeout=5,
    )
    assert r.json()["subscriptionId"] == SAMPLE_SUBSCRIPTION
    assert r.json()["state"] == "Enabled"
    other = requests.get(
        f"{emu.arm_endpoint}/subscriptions/{'1' * 8}-0000-0000-0000-000000000000/resources"
        "?api-version=2025-04-01",
        verify=emu.ca_cert_path,
        timeout=5,
        headers={"Authorization": f"Bearer {emu.issue_token()}"},
    )
    assert (other.status_code, other.json()["error"]["code"]) == (404, "SubscriptionNotFound")
