"""Every validation error reaches the SDK as HttpResponseError (or a subclass) with an ARM-style code."""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.network.models import (
    PacketCapture,
    PacketCaptureMachineScope,
    PacketCaptureParameters,
    PacketCaptureSettings,
    PacketCaptureStorageLocation,
)
from emu_support import NW, NW_RG, STORAGE_ID, SUB, vm_id, vmss_id

from emulator import Emulator
from emulator.testing import emulator_fixture, network_client

WEB1 = vm_id("rg-web", "vm-web-01")
SS = vmss_id("rg-web", "vmss-web")
ST = PacketCaptureStorageLocation(storage_id=STORAGE_ID)
PREMIUM = STORAGE_ID.replace("stcaptures", "stpremiumlogs")


def params(**kw):
    kw.setdefault("target", WEB1)
    kw.setdefault("storage_location", ST)
    return PacketCapture(properties=PacketCaptureParameters(**kw))


CASES = {
    "time-limit-over-18000": (params(time_limit_in_seconds=18001), "ValueOutOfRange", "timeLimitInSeconds"),
    "time-limit-negative": (params(time_limit_in_seconds=-1), "ValueOutOfRange", "timeLimitInSeconds"),
    "bytes-per-packet-over-uint32": (params(bytes_to_capture_per_packet=2**32), "ValueOutOfRange", "bytesToCapture"),
    "total-bytes-negative": (params(total_bytes_per_session=-5), "ValueOutOfRange", "totalBytesPerSession"),
    "file-count-over-10000": (params(capture_settings=PacketCaptureSettings(file_count=10001)), "ValueOutOfRange",
                              "fileCount"),
    "session-limit-over-7-days": (params(capture_settings=PacketCaptureSettings(session_time_limit_in_seconds=604801)),
                                  "ValueOutOfRange", "sessionTimeLimitInSeconds"),
    "missing-target": (params(target=None), "MissingRequiredProperty", "properties.target"),
    "missing-storage": (params(storage_location=None), "MissingRequiredProperty", "storageLocation"),
    "empty-storage": (params(storage_location=PacketCaptureStorageLocation()), "InvalidStorageLocation",
                      "storageLocation"),
    "bad-target-type": (params(target_type="AzureVMX"), "InvalidTargetType", "targetType"),
    "vmss-as-azurevm": (params(target=SS), "InvalidTargetType", "targetType"),
    "vmss-instance-target": (params(target=f"{SS}/virtualMachines/0"), "InvalidTargetType", "properties.target"),
    "malformed-target": (params(target="vm-web-01"), "LinkedInvalidPropertyId", "properties.target"),
    "unknown-vm": (params(target=vm_id("rg-web", "vm-ghost")), "InvalidResourceReference", "properties.target"),
    "unknown-vm-group": (params(target=vm_id("rg-ghost", "vm-web-01")), "InvalidResourceReference",
                         "properties.target"),
    "unknown-storage": (params(storage_location=PacketCaptureStorageLocation(storage_id=STORAGE_ID + "x")),
                        "InvalidResourceReference", "storageId"),
    "premium-storage": (params(storage_location=PacketCaptureStorageLocation(storage_id=PREMIUM)),
                        "PremiumStorageNotSupported", "storageId"),
    "linux-path-outside-var-captures": (params(storage_location=PacketCaptureStorageLocation(file_path="/tmp/a.cap")),
                                        "InvalidLocalPath", "filePath"),
    "path-without-cap": (params(storage_location=PacketCaptureStorageLocation(file_path="/var/captures/a.pcap")),
                         "InvalidLocalPath", "filePath"),
    "local-path-needs-continuous": (params(storage_location=PacketCaptureStorageLocation(
        local_path="/var/captures/a.cap")), "InvalidStorageLocation", "localPath"),
    "bad-storage-path": (params(storage_location=PacketCaptureStorageLocation(storage_id=STORAGE_ID,
                                                                              storage_path="ftp://x/y.cap")),
                         "InvalidStorageLocation", "storagePath"),
    "vmss-unknown-instance": (params(target=SS, target_type="AzureVMSS",
                                     scope=PacketCaptureMachineScope(include=["0", "7"])),
                              "InvalidPacketCaptureScope", "scope.include"),
    "scope-on-vm": (params(scope=PacketCaptureMachineScope(include=["0"])), "InvalidPacketCaptureScope", "scope"),
    "no-agent": (params(target=vm_id("rg-web", "vm-noagent-01")), "NetworkWatcherAgentNotInstalled",
                 "properties.target"),
    "other-region": (params(target=vm_id("rg-edge", "vm-edge-01")), "TargetNotInNetworkWatcherRegion",
                     "properties.target"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_create_is_a_400_with_an_arm_code(fast_nc, emu: Emulator, case: str):
    body, code, target = CASES[case]
    with pytest.raises(HttpResponseError) as info:
        fast_nc.packet_captures.begin_create(NW_RG, NW, f"bad-{case}", body)
    err = info.value
    assert err.status_code == 400
    assert err.error.code == code
    assert target in (err.error.target or "")
    assert str(err).startswith(f"({code}) ") and err.error.message
    assert emu.capture_ids() == []


def test_agent_error_names_the_extension(fast_nc):
    with pytest.raises(HttpResponseError) as info:
        fast_nc.packet_captures.begin_create(NW_RG, NW, "x", params(target=vm_id("rg-web", "vm-noagent-01")))
    msg = info.value.error.message
    assert "AzureNetworkWatcherExtension" in msg and "Microsoft.Azure.NetworkWatcher" in msg
    assert "NetworkWatcherAgentLinux" in msg


def test_agent_found_by_publisher_and_type_not_name(fast_nc):
    # vm-db-01's agent extension is named "NetworkWatcherAgent" in the sample world
    r = fast_nc.packet_captures.begin_create("rg-network", "nw-weu-prod", "ok",
                                             params(target=vm_id("rg-data", "vm-db-01"))).result()
    assert r.properties.provisioning_state == "Succeeded"


def test_duplicate_name_is_409_resource_exists(fast_nc):
    fast_nc.packet_captures.begin_create(NW_RG, NW, "dup", params()).result()
    with pytest.raises(ResourceExistsError) as info:
        fast_nc.packet_captures.begin_create(NW_RG, NW, "DUP", params())
    assert info.value.error.code == "PacketCaptureAlreadyExists"


def test_unknown_watcher_and_group(fast_nc):
    with pytest.raises(ResourceNotFoundError) as info:
        fast_nc.packet_captures.begin_create(NW_RG, "NetworkWatcher_westus", "x", params())
    assert info.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        fast_nc.packet_captures.get("rg-ghost", NW, "x")
    assert info.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        fast_nc.packet_captures.get(NW_RG, NW, "never-created")
    assert info.value.error.code == "NotFound"
    assert fast_nc.packet_captures.begin_delete(NW_RG, NW, "never-created").result() is None  # 204


def test_invalid_name_and_bad_filter(fast_nc):
    from azure.mgmt.network.models import PacketCaptureFilter

    with pytest.raises(HttpResponseError) as info:
        fast_nc.packet_captures.begin_create(NW_RG, NW, "bad name!", params())
    assert info.value.error.code == "InvalidResourceName"
    for f in (PacketCaptureFilter(protocol="ICMP"), PacketCaptureFilter(local_port="80-85;443"),
              PacketCaptureFilter(remote_ip_address="10.0.0.300")):
        with pytest.raises(HttpResponseError) as info:
            fast_nc.packet_captures.begin_create(NW_RG, NW, "f", params(filters=[f]))
        assert info.value.error.code == "InvalidPacketCaptureFilter"


def test_malformed_json_body(emu: Emulator):
    url = (f"{emu.arm_endpoint}/subscriptions/{SUB}/resourceGroups/{NW_RG}/providers/Microsoft.Network/"
           f"networkWatchers/{NW}/packetCaptures/j?api-version=2026-03-01")
    auth = {"Authorization": f"Bearer {emu.issue_token()}", "Content-Type": "application/json"}
    for body in (b"{not json", b"[]", b'{"properties": {"target": 5, "storageLocation": {}}}',
                 b'{"properties": {"target": "x", "storageLocation": {}, "timeLimitInSeconds": "60"}}'):
        r = requests.put(url, data=body, headers=auth, verify=emu.ca_cert_path, timeout=5)
        assert r.status_code == 400, body
        assert r.json()["error"]["code"] == "InvalidRequestFormat"


def test_missing_and_unknown_api_version(emu: Emulator):
    base = f"{emu.arm_endpoint}/subscriptions/{SUB}/providers/Microsoft.Network/networkWatchers"
    auth = {"Authorization": f"Bearer {emu.issue_token()}"}
    r = requests.get(base, headers=auth, verify=emu.ca_cert_path, timeout=5)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "MissingApiVersionParameter")
    r = requests.get(base + "?api-version=2099-01-01", headers=auth, verify=emu.ca_cert_path, timeout=5)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "NoRegisteredProviderFound")


limited = emulator_fixture(name="limited", world=lambda: _limited_world())


def _limited_world():
    from emulator import World

    w = World.from_file("samples/world.json")
    w.session_limit_per_region = 2
    return w


def test_session_limit_per_region(limited: Emulator):
    with network_client(limited, limited.credential(), retry_total=0) as client:
        limited.seed_capture("a", limited.world.find_vm("vm-web-01"))
        client.packet_captures.begin_create(NW_RG, NW, "b", params()).result()
        with pytest.raises(HttpResponseError) as info:
            client.packet_captures.begin_create(NW_RG, NW, "c", params())
        assert (info.value.status_code, info.value.error.code) == (400, "PacketCaptureSessionLimitExceeded")
        # another region is counted separately
        client.packet_captures.begin_create("rg-network", "nw-weu-prod", "c",
                                            params(target=vm_id("rg-data", "vm-db-01"))).result()
        client.packet_captures.begin_delete(NW_RG, NW, "a").result()
        client.packet_captures.begin_create(NW_RG, NW, "c", params()).result()
