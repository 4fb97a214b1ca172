"""Every validation error reaches the SDK as HttpResponseError (or a subclass) with an ARM-style code."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import (
    PacketCapture,
    PacketCaptureMachineScope,
    PacketCaptureParameters,
    PacketCaptureSettings,
    PacketCaptureStorageLocation,
)

from emulator import Emulator, World
from emulator.testing import (
    SAMPLE_SUBSCRIPTION,
    SAMPLE_WATCHER_EASTUS,
    emulator_fixture,
    error_code,
    error_message,
    error_target,
    network_client,
    properties_of,
    scale_set_resource_id,
    storage_account_resource_id,
    vm_resource_id,
)

NW_RG, NW = SAMPLE_WATCHER_EASTUS
STORAGE_ID = storage_account_resource_id("rg-capture", "stcaptures")
WEB1 = vm_resource_id("rg-web", "vm-web-01")
SS = scale_set_resource_id("rg-web", "vmss-web")
ST = PacketCaptureStorageLocation(storage_id=STORAGE_ID)
PREMIUM = STORAGE_ID.replace("stcaptures", "stpremiumlogs")


def params(**kw: Any) -> PacketCapture:
    kw.setdefault("target", WEB1)
    kw.setdefault("storage_location", ST)
    return PacketCapture(properties=PacketCaptureParameters(**kw))


CASES = {
    "time-limit-over-18000": (params(time_limit_in_seconds=18001), "ValueOutOfRange", "timeLimitInSeconds"),
    "time-limit-negative": (params(time_limit_in_seconds=-1), "ValueOutOfRange", "timeLimitInSeconds"),
    "bytes-per-packet-over-uint32": (
        params(bytes_to_capture_per_packet=2**32),
        "ValueOutOfRange",
        "bytesToCapture",
    ),
    "total-bytes-negative": (params(total_bytes_per_session=-5), "ValueOutOfRange", "totalBytesPerSession"),
    "file-count-over-10000": (
        params(capture_settings=PacketCaptureSettings(file_count=10001)),
        "ValueOutOfRange",
        "fileCount",
    ),
    "session-limit-over-7-days": (
        params(capture_settings=PacketCaptureSettings(session_time_limit_in_seconds=604801)),
        "ValueOutOfRange",
        "sessionTimeLimitInSeconds",
    ),
    "missing-target": (params(target=None), "MissingRequiredProperty", "properties.target"),
    "missing-storage": (params(storage_location=None), "MissingRequiredProperty", "storageLocation"),
    "empty-storage": (
        params(storage_location=PacketCaptureStorageLocation()),
        "InvalidStorageLocation",
        "storageLocation",
    ),
    "bad-target-type": (params(target_type="AzureVMX"), "InvalidTargetType", "targetType"),
    "vmss-as-azurevm": (params(target=SS), "InvalidTargetType", "targetType"),
    "vmss-instance-target": (
        params(target=f"{SS}/virtualMachines/0"),
        "InvalidTargetType",
        "properties.target",
    ),
    "malformed-target": (params(target="vm-web-01"), "LinkedInvalidPropertyId", "properties.target"),
    "unknown-vm": (
        params(target=vm_resource_id("rg-web", "vm-ghost")),
        "InvalidResourceReference",
        "properties.target",
    ),
    "unknown-vm-group": (
        params(target=vm_resource_id("rg-ghost", "vm-web-01")),
        "InvalidResourceReference",
        "properties.target",
    ),
    "unknown-storage": (
        params(storage_location=PacketCaptureStorageLocation(storage_id=STORAGE_ID + "x")),
        "InvalidResourceReference",
        "storageId",
    ),
    "premium-storage": (
        params(storage_location=PacketCaptureStorageLocation(storage_id=PREMIUM)),
        "PremiumStorageNotSupported",
        "storageId",
    ),
    "linux-path-outside-var-captures": (
        params(storage_location=PacketCaptureStorageLocation(file_path="/tmp/a.cap")),
        "InvalidLocalPath",
        "filePath",
    ),
    "path-without-cap": (
        params(storage_location=PacketCaptureStorageLocation(file_path="/var/captures/a.pcap")),
        "InvalidLocalPath",
        "filePath",
    ),
    "local-path-needs-continuous": (
        params(storage_location=PacketCaptureStorageLocation(local_path="/var/captures/a.cap")),
        "InvalidStorageLocation",
        "localPath",
    ),
    "bad-storage-path": (
        params(
            storage_location=PacketCaptureStorageLocation(storage_id=STORAGE_ID, storage_path="ftp://x/y.cap")
        ),
        "InvalidStorageLocation",
        "storagePath",
    ),
    "vmss-unknown-instance": (
        params(target=SS, target_type="AzureVMSS", scope=PacketCaptureMachineScope(include=["0", "7"])),
        "InvalidPacketCaptureScope",
        "scope.include",
    ),
    "scope-on-vm": (
        params(scope=PacketCaptureMachineScope(include=["0"])),
        "InvalidPacketCaptureScope",
        "scope",
    ),
    "no-agent": (
        params(target=vm_resource_id("rg-web", "vm-noagent-01")),
        "NetworkWatcherAgentNotInstalled",
        "properties.target",
    ),
    "other-region": (
        params(target=vm_resource_id("rg-edge", "vm-edge-01")),
        "TargetNotInNetworkWatcherRegion",
        "properties.target",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_create_is_a_400_with_an_arm_code(
    fast_nc: NetworkManagementClient, emu: Emulator, case: str
) -> None:
    body, code, target = CASES[case]
    with pytest.raises(HttpResponseError) as info:
        fast_nc.packet_captures.begin_create(NW_RG, NW, f"bad-{case}", body)
    err = info.value
    assert err.status_code == 400
    assert error_code(err) == code
    assert target in (error_target(err))
    assert str(err).startswith(f"({code}) ")
    assert error_message(err)
    assert emu.capture_ids() == []


def test_agent_error_names_the_extension(fast_nc: NetworkManagementClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        fast_nc.packet_captures.begin_create(
            NW_RG, NW, "x", params(target=vm_resource_id("rg-web", "vm-noagent-01"))
        )
    msg = error_message(info.value)
    assert "AzureNetworkWatcherExtension" in msg
    assert "Microsoft.Azure.NetworkWatcher" in msg
    assert "NetworkWatcherAgentLinux" in msg


def test_agent_found_by_publisher_and_type_not_name(fast_nc: NetworkManagementClient) -> None:
    # vm-db-01's agent extension is named "NetworkWatcherAgent" in the sample world
    r = fast_nc.packet_captures.begin_create(
        "rg-network", "nw-weu-prod", "ok", params(target=vm_resource_id("rg-data", "vm-db-01"))
    ).result()
    assert properties_of(r).provisioning_state == "Succeeded"


def test_duplicate_name_is_409_resource_exists(fast_nc: NetworkManagementClient) -> None:
    fast_nc.packet_captures.begin_create(NW_RG, NW, "dup", params()).result()
    with pytest.raises(ResourceExistsError) as info:
        fast_nc.packet_captures.begin_create(NW_RG, NW, "DUP", params())
    assert error_code(info.value) == "PacketCaptureAlreadyExists"


def test_unknown_watcher_and_group(fast_nc: NetworkManagementClient) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        fast_nc.packet_captures.begin_create(NW_RG, "NetworkWatcher_westus", "x", params())
    assert error_code(info.value) == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        fast_nc.packet_captures.get("rg-ghost", NW, "x")
    assert error_code(info.value) == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        fast_nc.packet_captures.get(NW_RG, NW, "never-created")
    assert error_code(info.value) == "NotFound"
    assert fast_nc.packet_captures.begin_delete(NW_RG, NW, "never-created").result() is None  # 204


def test_invalid_name_and_bad_filter(fast_nc: NetworkManagementClient) -> None:
    from azure.mgmt.network.models import PacketCaptureFilter

    with pytest.raises(HttpResponseError) as info:
        fast_nc.packet_captures.begin_create(NW_RG, NW, "bad name!", params())
    assert error_code(info.value) == "InvalidResourceName"
    for f in (
        PacketCaptureFilter(protocol="ICMP"),
        PacketCaptureFilter(local_port="80-85;443"),
        PacketCaptureFilter(remote_ip_address="10.0.0.300"),
    ):
        with pytest.raises(HttpResponseError) as info:
            fast_nc.packet_captures.begin_create(NW_RG, NW, "f", params(filters=[f]))
        assert error_code(info.value) == "InvalidPacketCaptureFilter"


def test_malformed_json_body(emu: Emulator) -> None:
    url = (
        f"{emu.arm_endpoint}/subscriptions/{SAMPLE_SUBSCRIPTION}/resourceGroups/{NW_RG}/providers/Microsoft.Network/"
        f"networkWatchers/{NW}/packetCaptures/j?api-version=2026-03-01"
    )
    auth = {"Authorization": f"Bearer {emu.issue_token()}", "Content-Type": "application/json"}
    for body in (
        b"{not json",
        b"[]",
        b'{"properties": {"target": 5, "storageLocation": {}}}',
        b'{"properties": {"target": "x", "storageLocation": {}, "timeLimitInSeconds": "60"}}',
    ):
        r = requests.put(url, data=body, headers=auth, verify=emu.ca_cert_path, timeout=5)
        assert r.status_code == 400, body
        assert r.json()["error"]["code"] == "InvalidRequestFormat"


def test_missing_and_unknown_api_version(emu: Emulator) -> None:
    base = (
        f"{emu.arm_endpoint}/subscriptions/{SAMPLE_SUBSCRIPTION}/providers/Microsoft.Network/networkWatchers"
    )
    auth = {"Authorization": f"Bearer {emu.issue_token()}"}
    r = requests.get(base, headers=auth, verify=emu.ca_cert_path, timeout=5)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "MissingApiVersionParameter")
    r = requests.get(base + "?api-version=2099-01-01", headers=auth, verify=emu.ca_cert_path, timeout=5)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "NoRegisteredProviderFound")


limited = emulator_fixture(name="limited", world=lambda: _limited_world())


def _limited_world() -> World:
    w = World.from_file("samples/world.json")
    w.session_limit_per_region = 2
    return w


def test_session_limit_per_region(limited: Emulator) -> None:
    with network_client(limited, limited.credential(), retry_total=0) as client:
        limited.seed_capture("a", limited.world.find_vm("vm-web-01"))
        client.packet_captures.begin_create(NW_RG, NW, "b", params()).result()
        with pytest.raises(HttpResponseError) as info:
            client.packet_captures.begin_create(NW_RG, NW, "c", params())
        assert (info.value.status_code, error_code(info.value)) == (400, "PacketCaptureSessionLimitExceeded")
        # another region is counted separately
        client.packet_captures.begin_create(
            "rg-network", "nw-weu-prod", "c", params(target=vm_resource_id("rg-data", "vm-db-01"))
        ).result()
        client.packet_captures.begin_delete(NW_RG, NW, "a").result()
        client.packet_captures.begin_create(NW_RG, NW, "c", params()).result()
