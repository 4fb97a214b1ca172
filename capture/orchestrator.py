"""From a fired alert's capturable target to a running capture, the way a careful operator would.

Per target: region (payload, else cached VM lookup), watcher (cached, by location), one list of the
watcher's captures, a status query only for the few that target this VM, then a PUT that returns as
soon as ARM accepts it. Warm path: 2 ARM calls. ARM is the source of truth; the in-process
reservations below only stop concurrent deliveries in this process from racing each other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from capture.arm import Arm, ArmError, CaptureInfo, VmFacts, Watcher
from capture.decisions import Outcome, TargetResult
from capture.naming import capture_name, storage_path
from capture.payloads import AlertEvent
from capture.resource_ids import ResourceId, fold
from capture.settings import CaptureOptions, Settings, local_path_os
from capture.views import capture_view

if TYPE_CHECKING:
    from azure.mgmt.network.models import PacketCapture

    from capture.recorder import Recorder


__all__ = ["Listings", "Orchestrator", "Reservations", "build_body"]
# Reservations of captures this process created are dropped once a list that started later has
# been seen (that list then shows the capture, or shows that it is gone).
_RECENT_SECONDS = 600.0


@dataclass
class _Reservation:
    name: str
    target_key: str
    created_at: float | None = None


@dataclass
class _WatcherSlots:
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: dict[str, _Reservation] = field(default_factory=dict)


class Reservations:
    """Per-watcher bookkeeping so concurrent deliveries in one process never overshoot the limit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[str, _WatcherSlots] = {}

    def _slots(self, watcher: Watcher) -> _WatcherSlots:
        with self._lock:
            return self._watchers.setdefault(fold(watcher.id), _WatcherSlots())

    def reserve(
        self,
        watcher: Watcher,
        name: str,
        target: ResourceId,
        listed: list[str],
        listed_at: float,
        limit: int,
    ) -> TargetResult | None:
        """Claim a slot for `name`; or say why not (duplicate or limited)."""
        slots = self._slots(watcher)
        with slots.lock:
            now = time.monotonic()
            for key, held in list(slots.pending.items()):
                if held.created_at is not None and held.created_at < now - _RECENT_SECONDS:
                    del slots.pending[key]  # long since visible to every list (or gone)
            # A capture created before this caller's list started is in that list, or was deleted since:
            # the list is the truth for it. Others' reservations are skipped here, never removed, because a
            # concurrent caller with an older list still needs them.
            live = [h for h in slots.pending.values() if h.created_at is None or h.created_at >= listed_at]
            if any(fold(h.name) == fold(name) for h in live):
                return TargetResult(target.raw, Outcome.DUPLICATE, f"capture {name} is being created")
            for held in live:
                if held.target_key == target.key:
                    return TargetResult(
                        target.raw, Outcome.DUPLICATE, f"capture {held.name} was just started on this VM"
                    )
            names = {fold(n) for n in listed} | {fold(h.name) for h in live}
            if len(names) >= limit:
                return TargetResult(
                    target.raw,
                    Outcome.LIMITED,
                    f"watcher {watcher.name} has {len(names)} captures; CAPTURE_MAX_SESSIONS is {limit}",
                )
            slots.pending[fold(name)] = _Reservation(name, target.key)
            return None

    def created(self, watcher: Watcher, name: str) -> None:
        slots = self._slots(watcher)
        with slots.lock:
            held = slots.pending.get(fold(name))
            if held is not None:
                held.created_at = time.monotonic()

    def release(self, watcher: Watcher, name: str) -> None:
        slots = self._slots(watcher)
        with slots.lock:
            slots.pending.pop(fold(name), None)


@dataclass
class _Listing:
    lock: threading.Lock = field(default_factory=threading.Lock)
    listed_at: float = 0.0
    captures: list[CaptureInfo] | None = None


class Listings:
    """The watchers' capture lists, shared by the targets of one delivery: one list per watcher, not one
    per target (a delivery naming 300 VMs of one region lists that watcher once).

    Sharing is safe for the limit and duplicate checks: captures this process creates after the list
    are in `Reservations` (created after `listed_at`), exactly as for a list taken per target.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[str, _Listing] = {}

    def get(
        self, watcher: Watcher, fetch: Callable[[Watcher], list[CaptureInfo]]
    ) -> tuple[float, list[CaptureInfo]]:
        """(when the list started, the captures), listing the watcher if this delivery has not yet."""
        with self._lock:
            entry = self._watchers.setdefault(fold(watcher.id), _Listing())
        with entry.lock:
            if entry.captures is None:
                listed_at = time.monotonic()
                entry.captures = fetch(watcher)
                entry.listed_at = listed_at
            return entry.listed_at, entry.captures

    def forget(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.pop(fold(watcher.id), None)


def _targets_vm(capture: CaptureInfo, target: ResourceId) -> bool:
    """Does this capture record on the target VM (directly, or as its scale set's instance)?"""
    if not capture.target:
        return False
    if target.kind == "vm":
        return fold(capture.target) == target.key
    if fold(capture.target) != fold(target.scale_set_id or ""):
        return False
    instance = target.instance_id or ""
    return (not capture.include or instance in capture.include) and instance not in capture.exclude


def build_body(
    target: ResourceId, name: str, options: CaptureOptions, settings: Settings, event: AlertEvent
) -> PacketCapture:
    """The PacketCapture PUT body (SDK model) for one target."""
    from azure.mgmt.network.models import (
        PacketCapture,
        PacketCaptureFilter,
        PacketCaptureMachineScope,
        PacketCaptureParameters,
        PacketCaptureStorageLocation,
    )

    location = PacketCaptureStorageLocation()
    if settings.storage_account_id and settings.storage_account_name:
        location.storage_id = settings.storage_account_id
        location.storage_path = storage_path(
            settings.storage_account_name,
            name,
            target,
            datetime.now(UTC),
            event.rule,
            event.instance_key,
            event.severity,
        )
    if options.local_path:
        windows = local_path_os(options.local_path) == "Windows"
        location.file_path = options.local_path + ("\\" if windows else "/") + f"{name}.cap"
    params = PacketCaptureParameters(
        target=target.raw if target.kind == "vm" else (target.scale_set_id or target.raw),
        target_type="AzureVM" if target.kind == "vm" else "AzureVMSS",
        bytes_to_capture_per_packet=options.bytes_per_packet,
        total_bytes_per_session=options.bytes_per_session,
        time_limit_in_seconds=options.time_limit_seconds,
        storage_location=location,
        filters=[PacketCaptureFilter(f.to_arm()) for f in options.filters],
    )
    if target.kind == "vmss_instance":
        params.scope = PacketCaptureMachineScope(include=[target.instance_id or ""])
    return PacketCapture(properties=params)


def _region_note(hinted: str | None, actual: str) -> str:
    return f"the alert named region '{hinted}', but the VM is in '{actual}'" if hinted else ""


class Orchestrator:
    """Starts captures for the capturable targets of fired alerts."""

    def __init__(
        self, arm: Arm, settings: Settings, reservations: Reservations, recorder: Recorder | None = None
    ) -> None:
        self.arm = arm
        self.settings = settings
        self.reservations = reservations
        self.recorder = recorder

    def start(
        self,
        event: AlertEvent,
        target: ResourceId,
        options: CaptureOptions,
        listings: Listings | None = None,
    ) -> TargetResult:
        """One target's outcome; Azure failures become `failed` (502) or `unavailable` (503).

        The targets of one delivery pass one `Listings`, so each watcher is listed once per delivery.
        """
        try:
            return self._start(event, target, options, listings or Listings())
        except ArmError as exc:
            return TargetResult.from_arm_error(target.raw, exc)

    def _start(
        self, event: AlertEvent, target: ResourceId, options: CaptureOptions, listings: Listings
    ) -> TargetResult:
        """The payload's region is a hint that saves the VM lookup; the VM's own region is the truth.

        A disagreement is seen for free when the VM's region is cached; otherwise only when Azure refuses
        (then one lookup, on the failure path only): the capture then goes to the VM's region and the
        answer says the alert named another. The warm path stays at 2 calls.
        """
        facts = self.arm.known_vm(target)
        hinted = event.region
        if hinted is None or (facts is not None and facts.location != hinted):
            facts = facts or self.arm.vm_facts(target)
            return self._start_in(
                event, target, options, listings, facts, _region_note(hinted, facts.location)
            )
        try:
            return self._start_in(event, target, options, listings, facts or VmFacts(hinted, None), "")
        except ArmError as exc:
            if exc.transient:
                raise
            facts = self.arm.vm_facts(target)
            if facts.location == hinted:
                raise
        return self._start_in(event, target, options, listings, facts, _region_note(hinted, facts.location))

    def _start_in(
        self,
        event: AlertEvent,
        target: ResourceId,
        options: CaptureOptions,
        listings: Listings,
        facts: VmFacts,
        note: str,
    ) -> TargetResult:
        try:
            result = self._capture(event, target, options, listings, facts)
        except ArmError as exc:
            if note:
                raise ArmError(
                    exc.code, f"{exc.message} ({note})", status=exc.status, transient=exc.transient
                ) from None
            raise
        if note:
            result.reason = f"{result.reason} ({note})"
        return result

    def _capture(
        self,
        event: AlertEvent,
        target: ResourceId,
        options: CaptureOptions,
        listings: Listings,
        facts: VmFacts,
    ) -> TargetResult:
        name = capture_name(self.settings.name_prefix, target, event.instance_key)
        region = facts.location
        if options.local_path and facts.os_type and local_path_os(options.local_path) != facts.os_type:
            # Azure would refuse it (or write somewhere unintended): answered like Azure's own refusal.
            kind = local_path_os(options.local_path)
            return TargetResult(
                target.raw,
                Outcome.FAILED,
                f"the local path is a {kind} path but the VM runs {facts.os_type}",
                error={
                    "code": "LocalPathNotForThisOs",
                    "message": f"a {kind} local path cannot be used on a {facts.os_type} VM; give a path "
                    f"under the {facts.os_type} root (CAPTURE_LOCAL_ROOT_{facts.os_type.upper()})",
                },
            )
        watcher = self.arm.watcher(target.subscription, region)
        try:
            listed_at, captures = listings.get(watcher, self.arm.list_captures)
        except ArmError as exc:
            if exc.status != 404:
                raise
            # The cached watcher is gone (deleted or recreated under another name): look again once.
            listings.forget(watcher)
            self.arm.forget_watcher(watcher)
            watcher = self.arm.watcher(target.subscription, region)
            listed_at, captures = listings.get(watcher, self.arm.list_captures)
        for capture in captures:
            if fold(capture.name or "") == fold(name):
                return TargetResult(
                    target.raw,
                    Outcome.DUPLICATE,
                    f"capture {name} for this alert already exists",
                    capture=capture_view(capture, watcher),
                )
        if self.recorder is not None:
            # A flight-recorder ring on this VM (seen by name in the list above: no extra call for
            # VMs without one) is frozen instead: its files hold the minutes before the alert.
            frozen = self.recorder.freeze(event, target, watcher, captures, listed_at)
            if frozen is not None:
                return frozen
        for capture in captures:
            if not _targets_vm(capture, target):
                continue
            if fold(capture.provisioning_state or "") in {
                "failed",
                "deleting",
            }:
                continue
            status = self.arm.capture_status(watcher, capture.name or "")
            if status.active:
                return TargetResult(
                    target.raw,
                    Outcome.DUPLICATE,
                    f"capture {capture.name} is still {status.status} on this VM",
                    capture=capture_view(capture, watcher),
                )
        refusal = self.reservations.reserve(
            watcher,
            name,
            target,
            [c.name or "" for c in captures],
            listed_at,
            self.settings.max_sessions,
        )
        if refusal is not None:
            return refusal
        try:
            result = self.arm.create_capture(
                watcher, name, build_body(target, name, options, self.settings, event)
            )
        except ArmError as exc:
            self.reservations.release(watcher, name)
            if exc.status == 409 or (exc.status == 200 and "invalid status" in exc.message):
                return TargetResult(target.raw, Outcome.DUPLICATE, f"capture {name} already exists")
            raise
        except BaseException:
            self.reservations.release(watcher, name)
            raise
        self.reservations.created(watcher, name)
        return TargetResult(
            target.raw,
            Outcome.STARTED,
            f"capture started for {options.time_limit_seconds} s",
            capture=capture_view(result, watcher),
        )
