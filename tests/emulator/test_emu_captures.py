"""Packet captures end to end with the real azure-mgmt-network client over HTTPS (frozen emulated clock)."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import (
    PacketCapture,
    PacketCaptureFilter,
    PacketCaptureMachineScope,
    PacketCaptureParameters,
    PacketCaptureStorageLocation,
)

from emulator import Emulator, StoppedCapture
from emulator.testing import (
    SAMPLE_SUBSCRIPTION,
    SAMPLE_WATCHER_EASTUS,
    SAMPLE_WATCHER_WESTEUROPE,
    emulator_fixture,
    error_code,
    error_message,
    network_client,
    properties_of,
    scale_set_resource_id,
    storage_account_resource_id,
    vm_resource_id,
    watcher_resource_id,
)

NW_RG, NW = SAMPLE_WATCHER_EASTUS
STORAGE_ID = storage_account_resource_id("rg-capture", "stcaptures")
WEU_RG, WEU_NW = SAMPLE_WATCHER_WESTEUROPE
WEB1 = vm_resource_id("rg-web", "vm-web-01")


def capture(target: str = WEB1, **kwargs: Any) -> PacketCapture:
    storage = kwargs.pop("storage_location", PacketCaptureStorageLocation(storage_id=STORAGE_ID))
    return PacketCapture(
        properties=PacketCaptureParameters(target=target, storage_location=storage, **kwargs)
    )


def status(nc: NetworkManagementClient, name: str, rg: str = NW_RG, nw: str = NW) -> Any:
    return nc.packet_captures.begin_get_status(rg, nw, name).result()


def test_create_polls_the_async_operation_then_gets_the_put_url(
    emu: Emulator, nc: NetworkManagementClient
) -> None:
    result = nc.packet_captures.begin_create(NW_RG, NW, "pc1", capture(time_limit_in_seconds=60)).result()
    props = properties_of(result)
    assert props.provisioning_state == "Succeeded"
    assert result.name == "pc1"
    assert (result.etag or "").startswith('W/"')
    assert (result.id or "").endswith("/networkWatchers/NetworkWatcher_eastus/packetCaptures/pc1")
    # service-filled defaults [REC]
    assert (props.bytes_to_capture_per_packet, props.total_bytes_per_session) == (0, 1073741824)
    assert props.time_limit_in_seconds == 60
    assert props.filters == []
    path = props.storage_location.storage_path
    assert re.fullmatch(
        r"https://stcaptures\.blob\.core\.windows\.net/network-watcher-logs/subscriptions/"
        rf"{SAMPLE_SUBSCRIPTION}/resourcegroups/rg-web/providers/microsoft\.compute/virtualmachines/vm-web-01/"
        r"\d{4}/\d{2}/\d{2}/packetcapture_\d{2}_\d{2}_\d{2}_\d{3}\.cap",
        path,
    ), path
    calls = [(r.method, r.path.rsplit("/", 2)[-2], r.status) for r in emu.request_log]
    assert calls == [
        ("PUT", "packetCaptures", 201),
        ("GET", "operations", 200),
        ("GET", "operations", 200),
        ("GET", "packetCaptures", 200),
    ]
    assert {r.client.split("/")[0] for r in emu.request_log} == {"azsdk-python-mgmt-network"}


def test_raw_wire_shape_of_create(emu: Emulator) -> None:
    import requests

    url = f"{emu.arm_endpoint}{watcher_resource_id(NW_RG, NW)}/packetCaptures/raw?api-version=2026-03-01"
    auth = {"Authorization": f"Bearer {emu.issue_token()}"}
    body: dict[str, Any] = {
        "properties": {
            "target": WEB1,
            "storageLocation": {
                "storageId": STORAGE_ID,
                "storagePath": "https://stcaptures.blob.core.windows.net/capture/pc1.cap",
            },
        }
    }
    with requests.Session() as s:
        s.verify = emu.ca_cert_path
        r = s.put(url, json=body, headers=auth)
        assert r.status_code == 201
        op = r.headers["Azure-AsyncOperation"]
        assert re.fullmatch(
            rf"{emu.arm_endpoint}/subscriptions/{SAMPLE_SUBSCRIPTION}/providers/Microsoft\.Network/locations/eastus/"
            r"operations/[0-9a-f-]{36}\?api-version=2026-03-01",
            op,
        )
        doc = r.json()
        assert doc["type"] == "Microsoft.Network/networkWatchers/packetCaptures"
        assert doc["properties"]["provisioningState"] == "Updating"
        assert doc["properties"]["storageLocation"]["storagePathFileName"] == "pc1.cap"  # [REC]
        assert s.get(op, headers=auth).json() == {"status": "InProgress"}
        assert s.get(op, headers=auth).json() == {"status": "Succeeded"}
        assert s.get(url, headers=auth).json()["properties"]["provisioningState"] == "Succeeded"


def test_default_lro_headers_carry_retry_after_1() -> None:
    with Emulator(None, time_scale=0) as plain:  # default retry_after=1 (what the brief asks for)
        plain.world.add_watcher("nw", resource_group="rg", location="eastus")
        plain.world.add_vm("vm", resource_group="rg", location="eastus")
        plain.world.add_storage_account("st", resource_group="rg", location="eastus")
        import requests

        base = (
            f"{plain.arm_endpoint}{watcher_resource_id('rg', 'nw', plain.subscription_id)}/packetCaptures/p"
        )
        auth = {"Authorization": f"Bearer {plain.issue_token()}"}
        body: dict[str, Any] = {
            "properties": {
                "target": plain.world.find_vm("vm").id,
                "storageLocation": {"storageId": plain.world.find_storage_account("st").id},
            }
        }
        r = requests.put(f"{base}?api-version=2026-03-01", json=body, headers=auth, verify=plain.ca_cert_path)
        assert r.headers["Retry-After"] == "1"
        for verb in ("queryStatus", "stop"):
            r = requests.post(
                f"{base}/{verb}?api-version=2026-03-01", headers=auth, verify=plain.ca_cert_path
            )
            assert r.status_code == 202
            assert r.headers["Retry-After"] == "1"
            assert "Location" in r.headers
        r = requests.delete(f"{base}?api-version=2026-03-01", headers=auth, verify=plain.ca_cert_path)
        assert r.status_code == 202
        assert {"Azure-AsyncOperation", "Location", "Retry-After"} <= set(r.headers)


def test_lifecycle_query_status_stop_delete(emu: Emulator, nc: NetworkManagementClient) -> None:
    stopped: list[StoppedCapture] = []
    emu.on_capture_stopped = stopped.append
    nc.packet_captures.begin_create(NW_RG, NW, "life", capture(time_limit_in_seconds=60)).result()
    st = status(nc, "life")
    assert st.packet_capture_status == "NotStarted"
    assert st.capture_start_time is None
    emu.advance(1)  # agent start: 1 emulated second
    st = status(nc, "life")
    assert st.packet_capture_status == "Running"
    assert st.packet_capture_error == []
    assert st.stop_reason is None
    assert st.capture_start_time is not None
    emu.advance(59.5)
    assert status(nc, "life").packet_capture_status == "Running"
    emu.advance(0.5)  # timeLimitInSeconds counts from the capture start
    st = status(nc, "life")
    assert (st.packet_capture_status, st.stop_reason) == ("Stopped", "TimeExceeded")
    (rec,) = stopped
    assert rec.capture_name == "life"
    assert rec.target_vm_id == WEB1
    assert rec.scenario == "web"
    assert (rec.stop_time - rec.start_time).total_seconds() == pytest.approx(60)
    assert rec.time_limit_seconds == 60
    assert rec.bytes_per_packet == 0
    assert rec.subscription_id == SAMPLE_SUBSCRIPTION
    assert (
        rec.storage_path
        == properties_of(nc.packet_captures.get(NW_RG, NW, "life")).storage_location.storage_path
    )
    # stop on an already stopped capture succeeds and changes nothing [DOC]
    assert nc.packet_captures.begin_stop(NW_RG, NW, "life").result() is None
    assert status(nc, "life").stop_reason == "TimeExceeded"
    assert len(stopped) == 1
    emu.clear_log()
    assert nc.packet_captures.begin_delete(NW_RG, NW, "life").result() is None
    # DELETE -> 202 + Azure-AsyncOperation, op polled, and no final GET (docs/EMULATOR.md, delete)
    assert [(r.method, r.path.split("/")[-2], r.status) for r in emu.request_log] == [
        ("DELETE", "packetCaptures", 202),
        ("GET", "operations", 200),
        ("GET", "operations", 200),
    ]
    with pytest.raises(ResourceNotFoundError):
        nc.packet_captures.get(NW_RG, NW, "life")
    with pytest.raises(ResourceNotFoundError):
        status(nc, "life")


def test_manual_stop_of_a_running_capture(emu: Emulator, nc: NetworkManagementClient) -> None:
    stopped: list[StoppedCapture] = []
    emu.on_capture_stopped = stopped.append
    nc.packet_captures.begin_create(NW_RG, NW, "man", capture()).result()
    emu.advance(5)
    assert nc.packet_captures.begin_stop(NW_RG, NW, "man").result() is None
    st = status(nc, "man")
    assert (st.packet_capture_status, st.stop_reason) == ("Stopped", "Manual")
    assert len(stopped) == 1
    assert stopped[0].stop_reason == "Manual"
    emu.advance(20000)
    assert status(nc, "man").stop_reason == "Manual"
    assert len(stopped) == 1


def test_get_and_list_across_pages(emu: Emulator, nc: NetworkManagementClient) -> None:
    for i in range(120):
        emu.seed_capture(f"seeded-{i:03d}", WEB1)
    emu.clear_log()
    names = [c.name for c in nc.packet_captures.list(NW_RG, NW)]
    assert names == [f"seeded-{i:03d}" for i in range(120)]
    pages = [r for r in emu.request_log if r.path.endswith("/packetCaptures")]
    assert len(pages) == 3  # page size 50
    assert all(r.query["api-version"] == "2026-03-01" for r in pages)  # nextLink carries the api-version
    assert properties_of(nc.packet_captures.get(NW_RG, NW, "seeded-007")).provisioning_state == "Succeeded"


small_pages = emulator_fixture(name="small_pages", page_size=2)


def test_page_size_option_and_watcher_listing(small_pages: Emulator) -> None:
    with network_client(small_pages) as client:
        assert {w.name for w in client.network_watchers.list_all()} == {WEU_NW, NW}
        assert len([r for r in small_pages.request_log if r.path.endswith("/networkWatchers")]) == 1
        for i in range(5):
            small_pages.seed_capture(
                f"c{i}", small_pages.world.find_vm("vm-db-01"), storage_account="stcaptures"
            )
        assert len(list(client.packet_captures.list(WEU_RG, WEU_NW))) == 5
        assert len([r for r in small_pages.request_log if r.path.endswith("/packetCaptures")]) == 3


def test_watchers_list_by_group_get_and_not_found(nc: NetworkManagementClient) -> None:
    assert [w.name for w in nc.network_watchers.list(WEU_RG)] == [WEU_NW]
    w = nc.network_watchers.get(WEU_RG, WEU_NW)
    assert (w.location, w.provisioning_state, w.type) == (
        "westeurope",
        "Succeeded",
        "Microsoft.Network/networkWatchers",
    )
    with pytest.raises(ResourceNotFoundError) as info:
        nc.network_watchers.get(NW_RG, "NetworkWatcher_southcentralus")  # that region has no watcher
    assert error_code(info.value) == "ResourceNotFound"
    assert "For more details please go to https://aka.ms/ARMResourceNotFoundFix" in error_message(info.value)
    with pytest.raises(ResourceNotFoundError) as info:
        nc.network_watchers.list("rg-missing").next()
    assert error_code(info.value) == "ResourceGroupNotFound"


def test_storage_path_and_filters_echoed(nc: NetworkManagementClient) -> None:
    loc = PacketCaptureStorageLocation(
        storage_id=STORAGE_ID, storage_path="https://stcaptures.blob.core.windows.net/capture/x/pc9.cap"
    )
    filters = [
        PacketCaptureFilter(protocol="TCP", local_port="443", remote_ip_address="10.0.0.1-10.0.0.255"),
        PacketCaptureFilter(local_ip_address="127.0.0.1;127.0.0.5"),
    ]
    r = nc.packet_captures.begin_create(
        NW_RG, NW, "pc9", capture(storage_location=loc, filters=filters)
    ).result()
    sl = properties_of(r).storage_location
    assert sl.storage_path == loc.storage_path
    assert properties_of(r).filters[0].remote_ip_address == "10.0.0.1-10.0.0.255"
    assert properties_of(r).filters[1].protocol == "Any"


def test_local_file_capture_on_linux(nc: NetworkManagementClient) -> None:
    loc = PacketCaptureStorageLocation(file_path="/var/captures/pc.cap")
    r = nc.packet_captures.begin_create(NW_RG, NW, "local", capture(storage_location=loc)).result()
    assert properties_of(r).storage_location.file_path == "/var/captures/pc.cap"
    assert properties_of(r).storage_location.storage_path is None


def test_scale_set_capture_with_scope_notifies_each_instance(
    emu: Emulator, nc: NetworkManagementClient
) -> None:
    stopped: list[StoppedCapture] = []
    emu.on_capture_stopped = stopped.append
    ss = scale_set_resource_id("rg-web", "vmss-web")
    pc = capture(
        ss,
        target_type="AzureVMSS",
        scope=PacketCaptureMachineScope(include=["0", "2"]),
        time_limit_in_seconds=10,
    )
    r = nc.packet_captures.begin_create(NW_RG, NW, "ss", pc).result()
    assert properties_of(r).scope.include == ["0", "2"]
    emu.advance(11)
    assert status(nc, "ss").packet_capture_status == "Stopped"
    assert sorted(s.instance_id or "" for s in stopped) == ["0", "2"]
    assert {s.target_vm_id for s in stopped} == {f"{ss}/virtualMachines/0", f"{ss}/virtualMachines/2"}
    assert len({s.storage_path for s in stopped}) == 2


def test_agent_failure_goes_to_error(emu: Emulator, nc: NetworkManagementClient) -> None:
    stopped: list[StoppedCapture] = []
    emu.on_capture_stopped = stopped.append
    nc.packet_captures.begin_create(
        NW_RG, NW, "f", capture(vm_resource_id("rg-web", "vm-flaky-storage"))
    ).result()
    emu.advance(1.5)
    assert status(nc, "f").packet_capture_status == "Running"
    emu.advance(1)
    st = status(nc, "f")
    assert (st.packet_capture_status, st.packet_capture_error) == ("Error", ["StorageFailed"])
    assert stopped == []  # no capture file


def test_stuck_agent_never_starts(emu: Emulator, nc: NetworkManagementClient) -> None:
    nc.packet_captures.begin_create(
        NW_RG, NW, "s", capture(vm_resource_id("rg-web", "vm-agent-stuck"))
    ).result()
    emu.advance(100_000)
    assert status(nc, "s").packet_capture_status == "NotStarted"
    nc.packet_captures.begin_stop(NW_RG, NW, "s").result()
    assert status(nc, "s").packet_capture_status == "Stopped"


def test_provisioning_failure_fails_the_lro(emu: Emulator, nc: NetworkManagementClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        nc.packet_captures.begin_create(
            NW_RG, NW, "p", capture(vm_resource_id("rg-web", "vm-provision-fails"))
        ).result()
    assert "(InternalServerError) An error occurred." in str(info.value)
    assert properties_of(nc.packet_captures.get(NW_RG, NW, "p")).provisioning_state == "Failed"
    assert status(nc, "p").packet_capture_status == "Error"


def test_byte_limit_stop(emu: Emulator, nc: NetworkManagementClient) -> None:
    # vm-db-02 produces 1 MiB/s in the sample world: 10 MiB fill up after 10 emulated seconds.
    pc = capture(vm_resource_id("rg-data", "vm-db-02"), total_bytes_per_session=10 * 1048576)
    nc.packet_captures.begin_create(WEU_RG, WEU_NW, "b", pc).result()
    emu.advance(10.5)
    assert status(nc, "b", WEU_RG, WEU_NW).packet_capture_status == "Running"
    emu.advance(1)
    st = status(nc, "b", WEU_RG, WEU_NW)
    assert (st.packet_capture_status, st.stop_reason) == ("Stopped", "MaxBytesExceeded")


def test_time_scale_runs_the_clock_and_the_hook_fires_on_its_own() -> None:
    done = threading.Event()
    got: list[StoppedCapture] = []

    def hook(rec: StoppedCapture) -> None:
        got.append(rec)
        done.set()

    with Emulator("samples/world.json", time_scale=1000, retry_after=0, on_capture_stopped=hook) as fast:
        fast.seed_capture("fast", fast.world.find_vm("vm-web-02"), time_limit_in_seconds=60)
        assert done.wait(10), "a 60 s capture should end within ~61 ms real"
        assert got[0].scenario == "synflood"
        assert fast.capture_status(got[0].capture_id)["stopReason"] == "TimeExceeded"


def test_hook_exceptions_do_not_break_the_server(emu: Emulator, nc: NetworkManagementClient) -> None:
    def boom(rec: StoppedCapture) -> None:
        raise RuntimeError("generator exploded")

    emu.on_capture_stopped = boom
    nc.packet_captures.begin_create(NW_RG, NW, "x", capture(time_limit_in_seconds=5)).result()
    emu.advance(10)
    assert status(nc, "x").stop_reason == "TimeExceeded"
    assert nc.network_watchers.get(NW_RG, NW).name == NW


def test_seeded_captures_with_age(emu: Emulator) -> None:
    stopped: list[StoppedCapture] = []
    emu.on_capture_stopped = stopped.append
    old = emu.seed_capture("old", WEB1, time_limit_in_seconds=60, age_seconds=3600)
    young = emu.seed_capture("young", WEB1, time_limit_in_seconds=60, age_seconds=30)
    assert emu.capture_status(old)["packetCaptureStatus"] == "Stopped"
    assert emu.capture_status(young)["packetCaptureStatus"] == "Running"
    assert [s.capture_name for s in stopped] == ["old"]
    assert sorted(emu.capture_ids()) == sorted([old, young])
