"""Fault injection: the SDK's own retries, errors after retries, timeouts, drops, latency, the request log."""

from __future__ import annotations

import time

import pytest
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.identity import ManagedIdentityCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import PacketCapture, PacketCaptureParameters, PacketCaptureStorageLocation
from azure.mgmt.resource.resources import ResourceManagementClient

from emulator import Emulator
from emulator.testing import (
    SAMPLE_WATCHER_EASTUS,
    error_code,
    network_client,
    properties_of,
    storage_account_resource_id,
    vm_resource_id,
)

NW_RG, NW = SAMPLE_WATCHER_EASTUS
STORAGE_ID = storage_account_resource_id("rg-capture", "stcaptures")


def pc() -> PacketCapture:
    return PacketCapture(
        properties=PacketCaptureParameters(
            target=vm_resource_id("rg-web", "vm-web-01"),
            storage_location=PacketCaptureStorageLocation(storage_id=STORAGE_ID),
        )
    )


def test_sdk_retries_429_after_retry_after(emu: Emulator, nc: NetworkManagementClient) -> None:
    rule = emu.faults.add(method="PUT", path=r"/packetCaptures/", status=429, retry_after=1, times=1)
    t0 = time.perf_counter()
    result = nc.packet_captures.begin_create(NW_RG, NW, "throttled", pc()).result()
    elapsed = time.perf_counter() - t0
    assert properties_of(result).provisioning_state == "Succeeded"
    assert rule.hits == 1
    assert rule.exhausted
    puts = [r for r in emu.request_log if r.method == "PUT"]
    assert [r.status for r in puts] == [429, 201]
    assert puts[0].fault == "status=429"
    assert 0.9 < elapsed < 5  # the SDK waited Retry-After (1 s)


def test_fractional_retry_after_and_probability(emu: Emulator) -> None:
    emu.faults.add(method="GET", path=r"/networkWatchers$", status=503, retry_after=0.01, probability=0.5)
    with network_client(emu, emu.credential(), retry_total=20, retry_status=20) as client:
        for _ in range(10):
            assert len(list(client.network_watchers.list_all())) == 2
    statuses = [r.status for r in emu.request_log]
    assert 503 in statuses
    assert statuses.count(200) == 10


def test_500_surfaces_after_the_sdk_retries(emu: Emulator, fast_nc: NetworkManagementClient) -> None:
    emu.faults.add(path=r"/networkWatchers/", status=500)
    with pytest.raises(HttpResponseError) as info:
        fast_nc.network_watchers.get(NW_RG, NW)
    assert info.value.status_code == 500
    assert error_code(info.value) == "InternalServerError"
    assert "An error occurred." in str(info.value)
    assert len(emu.request_log) == 3  # 1 + retry_total=2
    emu.faults.clear()
    assert fast_nc.network_watchers.get(NW_RG, NW).name == NW


def test_custom_error_code_on_post(emu: Emulator, fast_nc: NetworkManagementClient) -> None:
    fast_nc.packet_captures.begin_create(NW_RG, NW, "p", pc()).result()
    emu.faults.add(
        method="POST",
        path=r"/queryStatus$",
        status=409,
        code="AnotherOperationInProgress",
        message="Another operation is in progress.",
        times=1,
    )
    with pytest.raises(ResourceExistsError) as info:
        fast_nc.packet_captures.begin_get_status(NW_RG, NW, "p")
    assert error_code(info.value) == "AnotherOperationInProgress"


def test_slow_response_times_out(emu: Emulator) -> None:
    emu.faults.add(method="GET", path=r"/networkWatchers/", delay=2.0, times=1)
    with network_client(emu, emu.credential(), retry_total=0, read_timeout=0.3) as client:
        t0 = time.perf_counter()
        with pytest.raises(ServiceResponseTimeoutError):
            client.network_watchers.get(NW_RG, NW)
        assert time.perf_counter() - t0 < 1.5
        assert client.network_watchers.get(NW_RG, NW).name == NW  # rule exhausted


def test_dropped_connection_is_retried_by_the_sdk(emu: Emulator, fast_nc: NetworkManagementClient) -> None:
    emu.faults.add(method="GET", path=r"/networkWatchers/", drop=True, times=1)
    assert fast_nc.network_watchers.get(NW_RG, NW).name == NW
    assert [r.status for r in emu.request_log] == [0, 200]
    emu.faults.add(method="GET", path=r"/networkWatchers/", drop=True)
    with pytest.raises((ServiceResponseError, ServiceRequestError)):
        fast_nc.network_watchers.get(NW_RG, NW)


def test_fault_after_processing_exposes_idempotency(emu: Emulator, fast_nc: NetworkManagementClient) -> None:
    # the PUT is applied but the client sees a 500: its retry then meets the capture already there
    emu.faults.add(method="PUT", path=r"/packetCaptures/", status=500, after=True, times=1)
    with pytest.raises(ResourceExistsError):
        fast_nc.packet_captures.begin_create(NW_RG, NW, "ghost", pc())
    assert len(emu.capture_ids()) == 1


def test_identity_endpoint_faults(emu: Emulator) -> None:
    emu.faults.add(endpoint="identity", status=500, times=1)
    token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    assert token.token
    assert [r.status for r in emu.identity_log] == [500, 200]


def test_latency_applies_to_arm_only(emu: Emulator, nc: NetworkManagementClient) -> None:
    nc.network_watchers.get(NW_RG, NW)  # token obtained
    emu.latency = 0.2
    t0 = time.perf_counter()
    nc.network_watchers.get(NW_RG, NW)
    assert time.perf_counter() - t0 >= 0.2
    t0 = time.perf_counter()
    ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    assert time.perf_counter() - t0 < 0.2
    emu.latency = 0
    assert emu.request_log[-1].duration >= 0.2


def test_request_log_fields(emu: Emulator, nc: NetworkManagementClient, rc: ResourceManagementClient) -> None:
    emu.clear_log()
    list(nc.network_watchers.list_all())
    rc.resources.get_by_id(vm_resource_id("rg-web", "vm-web-01"), api_version="2024-07-01")
    net, res = emu.request_log
    assert (net.method, net.status, net.endpoint) == ("GET", 200, "arm")
    assert net.query == {"api-version": "2026-03-01"}
    assert net.client.startswith("azsdk-python-mgmt-network/")
    assert res.client.startswith("azsdk-python-mgmt-resource/")
    assert net.client_request_id
    assert net.timestamp <= res.timestamp
    assert net.duration >= 0
    assert emu.count("GET", "/networkWatchers") == 1
    assert emu.count() == 2
    emu.clear_log()
    assert emu.request_log == []
    assert emu.identity_log == []


def test_world_file_faults_are_installed() -> None:
    world = {
        "subscriptionId": "00000000-0000-0000-0000-0000000000aa",
        "faults": [{"method": "GET", "path": "/networkWatchers$", "status": 429, "retryAfter": 2}],
    }
    with Emulator(world) as e:
        (rule,) = e.faults.rules
        assert (rule.status, rule.retry_after, rule.method) == (429, 2, "GET")


def test_bad_fault_rules_are_refused(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="status="):
        emu.faults.add(path="x")
    with pytest.raises(ValueError, match="4xx or 5xx"):
        emu.faults.add(status=200)
