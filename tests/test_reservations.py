"""In-process reservations: concurrent deliveries never overshoot the limit nor block a VM forever."""

from __future__ import annotations

import time

from capture.arm import Watcher
from capture.decisions import Outcome
from capture.orchestrator import Reservations
from capture.resource_ids import parse_resource_id

WATCHER = Watcher(
    id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkWatchers/nw",
    subscription="s",
    resource_group="rg",
    name="nw",
    location="eastus",
)


def vm(name: str):
    return parse_resource_id(
        f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}"
    )


def test_a_fresh_list_does_not_hide_a_capture_from_a_caller_with_an_older_list():
    slots = Reservations()
    older_list = time.monotonic()  # caller A listed before X existed
    assert slots.reserve(WATCHER, "x", vm("vm-x"), [], older_list, limit=1) is None
    slots.created(WATCHER, "x")
    fresh_list = time.monotonic()  # caller B's list already shows X
    refused_b = slots.reserve(WATCHER, "b", vm("vm-b"), ["x"], fresh_list, limit=1)
    refused_a = slots.reserve(WATCHER, "a", vm("vm-a"), [], older_list, limit=1)
    assert refused_b is not None and refused_b.outcome is Outcome.LIMITED
    assert refused_a is not None and refused_a.outcome is Outcome.LIMITED


def test_a_capture_gone_from_a_later_list_no_longer_blocks_its_vm():
    slots = Reservations()
    assert slots.reserve(WATCHER, "first", vm("vm-1"), [], time.monotonic(), limit=5) is None
    slots.created(WATCHER, "first")
    racing = slots.reserve(WATCHER, "second", vm("vm-1"), [], time.monotonic() - 60, limit=5)
    assert racing is not None and racing.outcome is Outcome.DUPLICATE  # its list predates "first"
    later = time.monotonic()  # the monitor deleted "first"; this list no longer shows it
    assert slots.reserve(WATCHER, "third", vm("vm-1"), [], later, limit=5) is None


def test_pending_creation_is_a_duplicate_for_the_same_name_and_vm():
    slots = Reservations()
    now = time.monotonic()
    assert slots.reserve(WATCHER, "n", vm("vm-1"), [], now, limit=5) is None
    same_name = slots.reserve(WATCHER, "N", vm("vm-1"), [], now, limit=5)
    other_alert = slots.reserve(WATCHER, "m", vm("VM-1"), [], now, limit=5)
    assert same_name is not None and same_name.outcome is Outcome.DUPLICATE
    assert other_alert is not None and other_alert.outcome is Outcome.DUPLICATE
    slots.release(WATCHER, "n")
    assert slots.reserve(WATCHER, "m", vm("vm-1"), [], now, limit=5) is None
