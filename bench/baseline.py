"""The baseline: the alert-triggered packet capture function from Microsoft's documentation, re-implemented
step by step with the same Python SDK the app uses, against the same emulator and world.

The documented PowerShell function ("Monitor networks proactively with alerts and Azure Functions using
packet capture", Network Watcher docs) does, for every alert::

    $networkWatcher = Get-AzResource | Where {$_.ResourceType -eq "Microsoft.Network/networkWatchers"
                                              -and $_.Location -eq $requestBody.context.resourceRegion}
    $packetCaptures = Get-AzNetworkWatcherPacketCapture -NetworkWatcher $networkWatcher
    $packetCaptures | %{ if ($_.Name -eq $packetCaptureName) {
        Remove-AzNetworkWatcherPacketCapture -NetworkWatcher $networkWatcher `
            -PacketCaptureName $packetCaptureName }}
    if ((Get-AzNetworkWatcherPacketCapture -NetworkWatcher $networkWatcher).Count -lt $packetCaptureLimit) {
        New-AzNetworkWatcherPacketCapture -NetworkWatcher $networkWatcher -TargetVirtualMachineId ... `
            -PacketCaptureName $packetCaptureName -StorageAccountId ... `
            -TimeLimitInSeconds $packetCaptureDuration }

with a fixed ``$packetCaptureName = "PSAzureFunction"``. Here, with azure-mgmt-resource / azure-mgmt-network:
``resources.list()`` over the whole subscription (every page), filtered client-side to the region's watcher;
``network_watchers.get``; ``packet_captures.list``; ``begin_delete(...).result()`` of the same-named capture
(waits for the LRO); ``packet_captures.list`` again to count; ``begin_create(...).result()`` (waits for the
LRO, as New-AzNetworkWatcherPacketCapture does).

Choices that favour the baseline (so the ratios are lower bounds): the region comes with the alert (the
script's ``resourceRegion``), as if every alert carried it; one token and one pair of clients are kept for
the whole run (the script runs Connect-AzAccount on every invocation); the capture limit never blocks.

The LRO waits follow the emulator's ``Retry-After`` (the benchmark's ``retry_after``, 1 s by default, and the
emulated operations finish after that long, so each LRO costs one wait); ``polling_interval`` is set to the
same value for answers without the header. The live Network RP sends no Retry-After on capture creation, so
the SDK would wait its default ``polling_interval`` of 30 s there: the real script is slower than this.
The time spent sleeping in LRO polls is measured through the transport's ``sleep``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.core.pipeline.transport import RequestsTransport

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

CAPTURE_NAME = "PSAzureFunction"  # the documented script's fixed name
CAPTURE_LIMIT = 10_000  # the script's $packetCaptureLimit (100 there); high so that it never blocks here
TIME_LIMIT_SECONDS = 30  # the script's $packetCaptureDuration
WATCHER_TYPE = "microsoft.network/networkwatchers"


class TimedTransport(RequestsTransport):  # type: ignore[misc]
    """RequestsTransport that adds up the time the SDK sleeps (LRO poll waits, retry waits)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._slept = 0.0
        self._lock = threading.Lock()

    def sleep(self, duration: float) -> None:
        started = time.perf_counter()
        super().sleep(duration)
        with self._lock:
            self._slept += time.perf_counter() - started

    @property
    def slept(self) -> float:
        with self._lock:
            return self._slept


@dataclass
class BaselineRun:
    """One alert handled by the documented algorithm."""

    seconds: float
    slept: float  # seconds spent waiting between LRO polls
    resources_listed: int
    deleted: bool
    created: bool


class DocumentedScript:
    """Microsoft's documented alert → packet capture function, with the Python SDK."""

    def __init__(
        self,
        credential: TokenCredential,
        subscription: str,
        *,
        arm_endpoint: str,
        ca_bundle: str,
        storage_account_id: str,
        polling_interval: float,
    ) -> None:
        from azure.mgmt.network import NetworkManagementClient
        from azure.mgmt.resource.resources import ResourceManagementClient

        self._transports = [TimedTransport(connection_verify=ca_bundle) for _ in range(2)]
        self.resources = ResourceManagementClient(
            credential,
            subscription,
            base_url=arm_endpoint,
            polling_interval=polling_interval,
            transport=self._transports[0],
        )
        self.network = NetworkManagementClient(
            credential,
            subscription,
            base_url=arm_endpoint,
            polling_interval=polling_interval,
            transport=self._transports[1],
        )
        self.storage_account_id = storage_account_id

    @property
    def slept(self) -> float:
        return sum(t.slept for t in self._transports)

    def handle(self, vm_id: str, region: str) -> BaselineRun:
        """One alert for ``vm_id`` in ``region``: the documented steps, each waited for."""
        from azure.mgmt.network.models import (
            PacketCapture,
            PacketCaptureParameters,
            PacketCaptureStorageLocation,
        )

        started = time.perf_counter()
        slept_before = self.slept
        # Get-AzResource | Where {type is networkWatchers and location is the alert's region}
        listed = 0
        watchers = []
        for resource in self.resources.resources.list():
            listed += 1
            if (resource.type or "").casefold() == WATCHER_TYPE and _region(resource.location) == region:
                watchers.append(resource)
        if not watchers or not watchers[0].id:
            raise RuntimeError(f"no network watcher in {region}")
        parts = watchers[0].id.split("/")
        group, name = parts[4], parts[8]
        watcher = self.network.network_watchers.get(group, name)
        watcher_name = watcher.name or name
        # Get-AzNetworkWatcherPacketCapture; Remove-AzNetworkWatcherPacketCapture of the same name
        deleted = False
        for capture in list(self.network.packet_captures.list(group, watcher_name)):
            if capture.name == CAPTURE_NAME:
                self.network.packet_captures.begin_delete(group, watcher_name, CAPTURE_NAME).result()
                deleted = True
        # (Get-AzNetworkWatcherPacketCapture).Count -lt $packetCaptureLimit; New-AzNetworkWatcherPacketCapture
        created = False
        if len(list(self.network.packet_captures.list(group, watcher_name))) < CAPTURE_LIMIT:
            body = PacketCapture(
                properties=PacketCaptureParameters(
                    target=vm_id,
                    target_type="AzureVM",
                    time_limit_in_seconds=TIME_LIMIT_SECONDS,
                    storage_location=PacketCaptureStorageLocation(storage_id=self.storage_account_id),
                )
            )
            self.network.packet_captures.begin_create(group, watcher_name, CAPTURE_NAME, body).result()
            created = True
        return BaselineRun(
            seconds=time.perf_counter() - started,
            slept=self.slept - slept_before,
            resources_listed=listed,
            deleted=deleted,
            created=created,
        )

    def close(self) -> None:
        self.resources.close()
        self.network.close()


def _region(location: str | None) -> str:
    return (location or "").replace(" ", "").casefold()
