"""Continuous (ring-buffer) capture in the emulator: rolling files, eviction, session expiry, refusals."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import (
    PacketCapture,
    PacketCaptureParameters,
    PacketCaptureSettings,
    PacketCaptureStorageLocation,
)
from azure.mgmt.resource.resources import ResourceManagementClient

from emulator import Emulator, StoppedCapture
from emulator.pcapgen import generate
from emulator.testing import (
    SAMPLE_WATCHER_EASTUS,
    error_code,
    storage_account_resource_id,
    vm_resource_id,
)

NW_RG, NW = SAMPLE_WATCHER_EASTUS
STORAGE_ID = storage_account_resource_id("rg-capture", "stcaptures")
WEB1 = vm_resource_id("rg-web", "vm-web-01")
RING_PATH = "https://stcaptures.blob.core.windows.net/network-watcher-logs/ring/vm-web-01/ring.cap"


def ring(*, file_count: int = 3, file_size: int = 102400, session: int = 3600, **extra: Any) -> PacketCapture:
    return PacketCapture(
        properties=PacketCaptureParameters(
            target=WEB1,
            storage_location=PacketCaptureStorageLocation(storage_id=STORAGE_ID, storage_path=RING_PATH),
            continuous_capture=True,
            capture_settings=PacketCaptureSettings(
                file_count=file_count, file_size_in_bytes=file_size, session_time_limit_in_seconds=session
            ),
            **extra,
        )
    )


def status(nc: NetworkManagementClient, name: str) -> Any:
    return nc.packet_captures.begin_get_status(NW_RG, NW, name).result()


def test_ring_rolls_keeps_the_newest_files_and_uploads_them_after_the_stop(
    emu: Emulator, nc: NetworkManagementClient
) -> None:
    stopped: list[StoppedCapture] = []
    emu.on_capture_stopped = stopped.append
    emu.world.find_vm("vm-web-01").behaviour.traffic_bytes_per_second = 10240.0  # a file every 10 s
    created = nc.packet_captures.begin_create(NW_RG, NW, "ring", ring()).result()
    props = created.properties
    assert props is not None
    assert props.continuous_capture is True
    # A continuous capture echoes no session byte or time limit [REC-VM].
    assert props.total_bytes_per_session is None and props.time_limit_in_seconds is None
    emu.advance(1 + 35)  # agent start, then 35 s of traffic: files 1-4 written, file 1 evicted
    assert status(nc, "ring").packet_capture_status == "Running"
    assert stopped == []  # nothing reaches storage while the session runs
    nc.packet_captures.begin_stop(NW_RG, NW, "ring").result()
    st = status(nc, "ring")
    assert (st.packet_capture_status, st.stop_reason) == ("Stopped", "Manual")
    (rec,) = stopped
    assert [f.sequence for f in rec.ring_files] == [2, 3, 4]
    assert [f.storage_path for f in rec.ring_files] == [
        RING_PATH.replace("ring.cap", f"ring_{n:05d}.cap") for n in (2, 3, 4)
    ]
    assert rec.ring_files[0].start_time == rec.start_time + timedelta(seconds=10)
    assert rec.ring_files[-1].stop_time == rec.stop_time
    assert rec.file_size_bytes == 102400


def test_session_time_limit_stops_the_ring(emu: Emulator, nc: NetworkManagementClient) -> None:
    stopped: list[StoppedCapture] = []
    emu.on_capture_stopped = stopped.append
    nc.packet_captures.begin_create(NW_RG, NW, "short", ring(session=60)).result()
    emu.advance(1 + 59)
    assert status(nc, "short").packet_capture_status == "Running"
    emu.advance(1)
    st = status(nc, "short")
    assert (st.packet_capture_status, st.stop_reason) == ("Stopped", "TimeExceeded")
    assert len(stopped) == 1 and stopped[0].ring_files


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ({"time_limit_in_seconds": 60}, "properties.timeLimitInSeconds"),
        ({"total_bytes_per_session": 1000000}, "properties.totalBytesPerSession"),
    ],
)
def test_ring_refuses_standard_capture_limits(
    emu: Emulator, nc: NetworkManagementClient, extra: dict[str, int], where: str
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        nc.packet_captures.begin_create(NW_RG, NW, "mixed", ring(**extra)).result()
    assert caught.value.status_code == 400
    assert error_code(caught.value) == "InvalidRequestPropertiesInPacketCaptureRequest"
    assert where.rsplit(".", 1)[-1][1:] in str(caught.value)
    assert emu.capture_ids() == []


def test_ring_refuses_file_path(emu: Emulator, nc: NetworkManagementClient) -> None:
    body = ring()
    assert body.properties is not None and body.properties.storage_location is not None
    body.properties.storage_location.file_path = "/var/captures/ring.cap"
    with pytest.raises(HttpResponseError) as caught:
        nc.packet_captures.begin_create(NW_RG, NW, "withfile", body).result()
    assert caught.value.status_code == 400
    assert emu.capture_ids() == []


def test_put_body_is_in_the_request_log(emu: Emulator, nc: NetworkManagementClient) -> None:
    nc.packet_captures.begin_create(NW_RG, NW, "logged", ring()).result()
    (put,) = [r for r in emu.request_log if r.method == "PUT"]
    sent = json.loads(put.body)["properties"]
    assert sent["continuousCapture"] is True
    assert sent["captureSettings"] == {
        "fileCount": 3,
        "fileSizeInBytes": 102400,
        "sessionTimeLimitInSeconds": 3600,
    }


def test_resources_filtered_by_tag(emu: Emulator, rc: ResourceManagementClient) -> None:
    emu.world.set_tags(WEB1, {"Capture-Recorder": "on"})
    emu.world.set_tags(vm_resource_id("rg-web", "vm-web-02"), {"capture-recorder": "off"})
    found = list(rc.resources.list(filter="tagName eq 'capture-recorder' and tagValue eq 'on'"))
    assert [r.id for r in found] == [WEB1]
    assert found[0].tags is None  # ARM returns no tags when filtering by tag name and value [DOC]


def test_syn_flood_starts_when_asked() -> None:
    from datetime import UTC, datetime

    start = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    later = generate("synflood", duration_s=20, start=start, anomaly_start=start + timedelta(seconds=600))
    assert later.truth.syns_unanswered == 0  # before the anomaly: only the normal web mix
    flood = generate("synflood", duration_s=20, start=start, anomaly_start=start + timedelta(seconds=10))
    assert flood.truth.syns_unanswered > 100
