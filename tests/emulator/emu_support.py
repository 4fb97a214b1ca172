"""Constants and helpers shared by the emulator tests (ids in samples/world.json)."""

from __future__ import annotations

SUB = "00000000-0000-0000-0000-000000000001"
NW_RG, NW = "NetworkWatcherRG", "NetworkWatcher_eastus"
WEU_RG, WEU_NW = "rg-network", "nw-weu-prod"


def vm_id(rg: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/{name}"


def vmss_id(rg: str, name: str) -> str:
    return f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"


STORAGE_ID = f"/subscriptions/{SUB}/resourceGroups/rg-capture/providers/Microsoft.Storage/storageAccounts/stcaptures"
