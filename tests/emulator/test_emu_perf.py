"""Speed and thread safety (generous bounds: these guard against regressions such as Nagle delays)."""

from __future__ import annotations

import statistics
import threading
import time

from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import PacketCapture, PacketCaptureParameters, PacketCaptureStorageLocation

from emulator import Emulator
from emulator.perf import _raw_rtt
from emulator.testing import (
    SAMPLE_WATCHER_EASTUS,
    network_client,
    storage_account_resource_id,
    vm_resource_id,
    watcher_resource_id,
)

NW_RG, NW = SAMPLE_WATCHER_EASTUS
STORAGE_ID = storage_account_resource_id("rg-capture", "stcaptures")


def test_keep_alive_round_trip_is_sub_millisecond_ish(
    emu: Emulator, fast_nc: NetworkManagementClient
) -> None:
    path = watcher_resource_id(NW_RG, NW)
    raw = _raw_rtt(emu.arm_endpoint, emu.ca_cert_path, emu.issue_token(), path, 200)
    assert statistics.median(raw) < 0.005  # measured ~0.3 ms; a Nagle/delayed-ACK stall would be 40 ms
    fast_nc.network_watchers.get(NW_RG, NW)
    samples = []
    for _ in range(100):
        t0 = time.perf_counter()
        fast_nc.network_watchers.get(NW_RG, NW)
        samples.append(time.perf_counter() - t0)
    assert statistics.median(samples) < 0.03  # measured ~2 ms in-process, mostly SDK client CPU


def test_concurrent_creates_from_many_threads(emu: Emulator) -> None:
    errors: list[BaseException] = []
    target = vm_resource_id("rg-web", "vm-web-01")

    def worker(n: int) -> None:
        try:
            with network_client(emu, emu.credential()) as client:
                for i in range(10):
                    body = PacketCapture(
                        properties=PacketCaptureParameters(
                            target=target,
                            storage_location=PacketCaptureStorageLocation(storage_id=STORAGE_ID),
                        )
                    )
                    client.packet_captures.begin_create(NW_RG, NW, f"t{n}-{i}", body).result()
                    client.packet_captures.begin_get_status(NW_RG, NW, f"t{n}-{i}").result()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(emu.capture_ids()) == 80
    assert len({r.client_request_id for r in emu.request_log if r.method == "PUT"}) == 80
