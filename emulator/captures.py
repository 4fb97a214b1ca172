"""Packet capture resources: request validation, the JSON the service returns, and the run lifecycle.

Lifecycle (all on the emulated clock, computed from the capture's fields, never stored as a state machine):

* provisioning: ``Updating`` until the create operation completes (after ``lro_in_progress_polls`` polls of
  the Azure-AsyncOperation URL, or ``provisioning_seconds`` emulated seconds), then ``Succeeded`` (or
  ``Failed`` for a VM with ``provisioningFails``).
* run: ``NotStarted`` until ``created + agent_start_seconds``; then ``Running``; then the first of:
  ``Stopped``/``TimeExceeded`` after ``timeLimitInSeconds`` ([DOC]/[SPEC-0101] example value),
  ``Stopped``/``MaxBytesExceeded`` when the VM's traffic rate fills ``totalBytesPerSession`` (UNCONFIRMED
  string, the emulator's choice), ``Error`` + ``[failure]`` for a VM with ``failure``, or
  ``Stopped``/``Manual`` after a stop request (UNCONFIRMED string, the emulator's choice).

Continuous capture (``continuousCapture: true``, docs/EMULATOR.md "Continuous capture"): a ring of files.
Files roll every ``fileSizeInBytes`` at the VM's traffic rate, only the newest ``fileCount`` are kept,
``sessionTimeLimitInSeconds`` ends the session (``Stopped``/``TimeExceeded``, UNCONFIRMED), and the kept
files reach storage once the session has stopped, named ``{storagePath without .cap}_{sequence:05d}.cap``
(UNCONFIRMED: no public source shows a continuous capture's blob names).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from .clock import iso, to_datetime
from .errors import ArmError, bad_request
from .world import Behaviour, NetworkWatcher, World, fold, parse_resource_id

CAPTURE_TYPE = (
    "Microsoft.Network/networkWatchers/packetCaptures"  # [REC] returns it though the swagger lacks it
)
UINT32_MAX = 4294967295
DEFAULT_BYTES_PER_PACKET = 0  # [REC] service-filled defaults
DEFAULT_TOTAL_BYTES = 1073741824
DEFAULT_TIME_LIMIT = 18000
_NAME_RE = re.compile(
    r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$"
)  # ARM-style name rule (emulator)
TARGET_TYPES = ("AzureVM", "AzureVMSS")  # closed enum [SPEC common.json PacketCaptureTargetType]
PROTOCOLS = ("TCP", "UDP", "Any")  # [SPEC PcProtocol]
STOP_REASON_TIME = "TimeExceeded"  # observed [DOC, SPEC-0101]
STOP_REASON_BYTES = "MaxBytesExceeded"  # UNCONFIRMED: the emulator's choice
STOP_REASON_MANUAL = "Manual"  # [REC-VM ring buffer, docs/EMULATOR.md]: a stopped continuous capture
# Ring defaults (swagger PacketCaptureSettings) and the rate assumed for a VM whose world gives none.
DEFAULT_FILE_COUNT = 10
DEFAULT_FILE_SIZE = 104857600
DEFAULT_SESSION_SECONDS = 86400
DEFAULT_RING_RATE = 100_000.0  # bytes/s, UNCONFIRMED: the emulator's choice
# Refused next to continuousCapture (the PowerShell client's wording; UNCONFIRMED for ARM).
NOT_WITH_CONTINUOUS = ("timeLimitInSeconds", "totalBytesPerSession")


@dataclass(frozen=True)
class RingFile:
    """One file a continuous capture kept: where it goes and the traffic window it holds."""

    sequence: int  # 1 = the session's first file; evicted files leave gaps below the first kept one
    storage_path: str | None
    local_path: str | None
    start_time: dt.datetime
    stop_time: dt.datetime


@dataclass(frozen=True)
class CaptureTarget:
    """One machine whose traffic a capture records (the VM, or one scale-set instance)."""

    vm_id: str  # resource ID of the VM / scale-set instance
    vm_name: str
    instance_id: str | None
    os_type: str
    scenario: str | None


@dataclass(frozen=True)
class StoppedCapture:
    """Passed to ``on_capture_stopped`` once per captured machine when a capture reaches ``Stopped``.

    For a VM capture there is one call; for a scale-set capture one call per selected instance (each with
    its own ``storage_path``). Times are emulated UTC.
    """

    subscription_id: str
    capture_id: str
    capture_name: str
    target_id: str  # the capture's target as sent (VM or scale set ID)
    target_vm_id: str  # the VM / scale-set instance whose traffic is captured
    vm_name: str
    instance_id: str | None  # scale-set instance id, else None
    os_type: str
    scenario: str | None  # the VM's "scenario" from the world file (web, synflood, ...)
    storage_path: str | None  # blob URL of the capture file; None for a local-file-only capture
    storage_id: str | None
    local_path: str | None
    start_time: dt.datetime
    stop_time: dt.datetime
    stop_reason: str
    bytes_per_packet: int  # bytesToCapturePerPacket (0 = whole packets)
    total_bytes_per_session: int
    time_limit_seconds: int
    filters: tuple[dict[str, Any], ...]
    traffic_bytes_per_second: float | None  # the world's rate for the VM, if any
    ring_files: tuple[RingFile, ...] = ()  # continuous capture: the files kept, oldest first
    file_size_bytes: int | None = None  # continuous capture: fileSizeInBytes
    anomaly_start: dt.datetime | None = None  # when the VM's scenario anomaly began, if set


@dataclass(frozen=True)
class RunState:
    status: str  # PcStatus: NotStarted / Running / Stopped / Error
    start: float | None
    end: float | None
    stop_reason: str | None
    errors: tuple[str, ...]


@dataclass
class Capture:
    id: str
    name: str
    watcher: NetworkWatcher
    subscription_id: str
    properties: dict[str, Any]  # the echoed (normalised) PacketCaptureParameters
    target_id: str
    targets: list[CaptureTarget]
    behaviour: Behaviour
    time_limit: int
    total_bytes: int
    bytes_per_packet: int
    storage_id: str | None
    storage_path: str | None
    local_path: str | None
    created: float
    agent_start_seconds: float
    provisioning_seconds: float
    continuous: bool = False  # continuousCapture: true (a ring of files)
    file_count: int = DEFAULT_FILE_COUNT
    file_size: int = DEFAULT_FILE_SIZE
    anomaly_start: float | None = None
    provisioned: bool = False  # set when the create operation reported its terminal status
    stop_requested_at: float | None = None
    notified: bool = False
    hook_done: threading.Event = field(default_factory=threading.Event)
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def key(self) -> str:
        return fold(self.id)

    @property
    def region(self) -> str:
        return self.watcher.location

    # ------------------------------------------------------------ lifecycle

    def provisioning_state(self, now: float) -> str:
        if self.provisioned or now >= self.created + self.provisioning_seconds:
            return "Failed" if self.behaviour.provisioning_error else "Succeeded"
        return "Updating"

    def effective_rate(self) -> float | None:
        rate = self.behaviour.traffic_bytes_per_second
        if not rate or rate <= 0:
            return None
        if self.bytes_per_packet > 0 and self.behaviour.avg_packet_bytes > 0:
            rate *= min(1.0, self.bytes_per_packet / self.behaviour.avg_packet_bytes)
        return rate

    def natural_end(self) -> tuple[float, str, str] | None:
        """(time, status, reason-or-error) of the first event that ends the run, stop requests included."""
        b = self.behaviour
        if b.agent_stuck or b.provisioning_error:
            return None
        start = self.created + self.agent_start_seconds
        events: list[tuple[float, str, str]] = []
        if self.time_limit > 0:  # 0: no time limit (UNCONFIRMED, the emulator's choice)
            events.append((start + self.time_limit, "Stopped", STOP_REASON_TIME))
        rate = self.effective_rate()
        if rate and self.total_bytes > 0:  # 0: no byte limit (UNCONFIRMED)
            events.append((start + self.total_bytes / rate, "Stopped", STOP_REASON_BYTES))
        if b.failure:
            events.append((start + b.failure_after_seconds, "Error", b.failure))
        if self.stop_requested_at is not None and self.stop_requested_at >= start:
            events.append((self.stop_requested_at, "Stopped", STOP_REASON_MANUAL))
        return min(events, key=lambda e: e[0]) if events else None

    def run_state(self, now: float) -> RunState:
        b = self.behaviour
        if b.provisioning_error:
            # A capture whose provisioning failed never runs; reported as Error/InternalError (UNCONFIRMED).
            if self.provisioning_state(now) == "Failed":
                return RunState("Error", None, None, None, ("InternalError",))
            return RunState("NotStarted", None, None, None, ())
        start = self.created + self.agent_start_seconds
        stop = self.stop_requested_at
        if b.agent_stuck or (stop is not None and stop < start):
            if stop is not None and stop <= now:
                return RunState("Stopped", None, stop, STOP_REASON_MANUAL, ())
            return RunState("NotStarted", None, None, None, ())
        if now < start:
            return RunState("NotStarted", None, None, None, ())
        end = self.natural_end()
        if end is None or now < end[0]:
            return RunState("Running", start, None, None, ())
        if end[1] == "Error":
            return RunState("Error", start, end[0], None, (end[2],))
        return RunState("Stopped", start, end[0], end[2], ())

    def request_stop(self, now: float) -> None:
        """Stop works on running and already stopped captures (a stopped one stays as it is) [DOC]."""
        if self.stop_requested_at is None and self.run_state(now).status in ("NotStarted", "Running"):
            self.stop_requested_at = now

    def ring_files(
        self, start: float, end: float, storage: str | None, local: str | None
    ) -> tuple[RingFile, ...]:
        """The files a ring kept by ``end``: one per ``file_size`` bytes, the newest ``file_count``."""
        if not self.continuous:
            return ()
        rate = self.effective_rate() or DEFAULT_RING_RATE
        span = max(self.file_size / rate, 0.001)
        written = max(1, math.ceil((end - start) / span - 1e-9))
        first = max(1, written - max(self.file_count, 1) + 1)
        return tuple(
            RingFile(
                sequence=n,
                storage_path=ring_file_path(storage, n),
                local_path=ring_file_path(local, n),
                start_time=to_datetime(start + (n - 1) * span),
                stop_time=to_datetime(min(end, start + n * span)),
            )
            for n in range(first, written + 1)
        )

    def stopped_records(self, now: float) -> list[StoppedCapture]:
        st = self.run_state(now)
        if st.status != "Stopped" or st.start is None or st.end is None or st.stop_reason is None:
            return []
        start, end = st.start, st.end
        # One file per instance only when several instances are captured; a single-instance scope writes
        # the path as given (UNCONFIRMED: the service's per-instance naming is undocumented).
        many = len(self.targets) > 1
        return [
            StoppedCapture(
                subscription_id=self.subscription_id,
                capture_id=self.id,
                capture_name=self.name,
                target_id=self.target_id,
                target_vm_id=t.vm_id,
                vm_name=t.vm_name,
                instance_id=t.instance_id,
                os_type=t.os_type,
                scenario=t.scenario,
                storage_path=(storage := per_target_path(self.storage_path, t, many)),
                storage_id=self.storage_id,
                local_path=(local := per_target_path(self.local_path, t, many)),
                start_time=to_datetime(st.start),
                stop_time=to_datetime(st.end),
                stop_reason=st.stop_reason,
                bytes_per_packet=self.bytes_per_packet,
                total_bytes_per_session=self.total_bytes,
                time_limit_seconds=self.time_limit,
                filters=tuple(dict(f) for f in self.properties["filters"]),
                traffic_bytes_per_second=self.behaviour.traffic_bytes_per_second,
                ring_files=self.ring_files(start, end, storage, local),
                file_size_bytes=self.file_size if self.continuous else None,
                anomaly_start=None if self.anomaly_start is None else to_datetime(self.anomaly_start),
            )
            for t in self.targets
        ]

    # ------------------------------------------------------------ JSON

    def etag(self, now: float) -> str:
        return f'W/"{uuid.uuid5(uuid.UUID(self.uid), self.provisioning_state(now))}"'

    def resource_json(self, now: float) -> dict[str, Any]:
        # Shape per [REC]: name, id, etag, properties{provisioningState, ...echoed + defaulted...}, type.
        return {
            "name": self.name,
            "id": self.id,
            "etag": self.etag(now),
            "properties": {"provisioningState": self.provisioning_state(now), **self.properties},
            "type": CAPTURE_TYPE,
        }

    def status_json(self, now: float) -> dict[str, Any]:
        # PacketCaptureQueryStatusResult; [REC] Running: name, id, captureStartTime, packetCaptureStatus,
        # packetCaptureError []. stopReason only once stopped.
        st = self.run_state(now)
        body: dict[str, Any] = {"name": self.name, "id": self.id}
        if st.start is not None:
            body["captureStartTime"] = iso(st.start)
        body["packetCaptureStatus"] = st.status
        if st.stop_reason is not None:
            body["stopReason"] = st.stop_reason
        body["packetCaptureError"] = list(st.errors)
        return body


# ---------------------------------------------------------------- validation


def _int(props: dict[str, Any], key: str, lo: int, hi: int, default: int | None, path: str) -> int | None:
    if key not in props or props[key] is None:
        return default
    value = props[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(
            "InvalidRequestFormat",
            f"Cannot parse the request: '{path}.{key}' must be an integer.",
            f"{path}.{key}",
        )
    if not lo <= value <= hi:
        # Bounds from [SPEC]; the code is the emulator's choice (UNCONFIRMED).
        raise bad_request(
            "ValueOutOfRange",
            f"The value {value} of '{key}' is out of range: it must be between {lo} and {hi}.",
            f"{path}.{key}",
        )
    return value


def _str(d: dict[str, Any], key: str, path: str) -> str | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request(
            "InvalidRequestFormat",
            f"Cannot parse the request: '{path}.{key}' must be a string.",
            f"{path}.{key}",
        )
    return value


def _check_list(value: str, kind: str, field_path: str) -> None:
    """Filter notation [SPEC]: single, ``a-b`` range, or ``a;b;`` list; no multiple ranges, no mixing."""
    if value == "":
        return
    entries = [e for e in value.split(";") if e != ""]
    ranges = [e for e in entries if "-" in e]
    if not entries or (ranges and len(entries) > 1):
        raise bad_request(
            "InvalidPacketCaptureFilter",
            f"'{value}' is not a valid {kind} filter: use a single "
            "entry, one range 'a-b', or a list 'a;b;' (multiple ranges and mixing ranges with "
            "lists are not supported).",
            field_path,
        )
    for entry in entries:
        for item in entry.split("-") if "-" in entry else [entry]:
            item = item.strip()
            try:
                if kind == "port":
                    if not item.isdigit() or not 0 <= int(item) <= 65535:
                        raise ValueError(item)
                else:
                    ipaddress.ip_address(item)
            except ValueError as exc:
                raise bad_request(
                    "InvalidPacketCaptureFilter",
                    f"'{item}' is not a valid {kind} in filter '{value}'.",
                    field_path,
                ) from exc


def _filters(props: dict[str, Any]) -> list[dict[str, Any]]:
    raw = props.get("filters")
    if raw is None:
        return []  # [REC] echoes "filters": [] when none were sent
    if not isinstance(raw, list):
        raise bad_request(
            "InvalidRequestFormat",
            "Cannot parse the request: 'filters' must be an array.",
            "properties.filters",
        )
    out = []
    for i, f in enumerate(raw):
        path = f"properties.filters[{i}]"
        if not isinstance(f, dict):
            raise bad_request(
                "InvalidRequestFormat", f"Cannot parse the request: '{path}' must be an object.", path
            )
        item = dict(f)
        proto = _str(f, "protocol", path)
        if proto is None:
            item["protocol"] = "Any"  # swagger default
        else:
            canon = next((p for p in PROTOCOLS if fold(p) == fold(proto)), None)
            if canon is None:
                raise bad_request(
                    "InvalidPacketCaptureFilter",
                    f"Protocol '{proto}' is not supported: use TCP, UDP or Any.",
                    f"{path}.protocol",
                )
            item["protocol"] = canon
        for key, kind in (
            ("localIPAddress", "IP address"),
            ("remoteIPAddress", "IP address"),
            ("localPort", "port"),
            ("remotePort", "port"),
        ):
            value = _str(f, key, path)
            if value is not None:
                _check_list(value, kind, f"{path}.{key}")
        out.append(item)
    return out


def _check_local_path(value: str, os_type: str, key: str) -> None:
    target = f"properties.storageLocation.{key}"
    if not fold(value).endswith(".cap"):
        # "Must include the name of the capture file (*.cap)" [SPEC]; code UNCONFIRMED.
        raise bad_request(
            "InvalidLocalPath",
            f"The local path '{value}' must include the capture file name (*.cap).",
            target,
        )
    if os_type == "Linux" and not (value == "/var/captures" or value.startswith("/var/captures/")):
        # "For linux virtual machine it must start with /var/captures" [SPEC, DOC]; code UNCONFIRMED.
        raise bad_request(
            "InvalidLocalPath",
            f"The local path '{value}' is invalid: for a Linux virtual machine "
            "it must start with /var/captures.",
            target,
        )


def _storage_path_for(account: str, subscription: str, target_id: str, created: float) -> str:
    """Documented blob path ([DOC] packet capture with the Azure CLI; docs/EMULATOR.md), e.g.
    .../virtualmachines/{vm}/2024/01/25/packetcapture_22_44_54_342.cap. The docs write the resource group
    segment as "{storageAccountResourceGroup}" but the path names the VM, so the VM's group is used here
    (emulator's reading). Scale sets use .../virtualmachinescalesets/{name}/... (UNCONFIRMED)."""
    parsed = parse_resource_id(target_id)
    assert parsed is not None
    t = to_datetime(created)
    kind = (
        "virtualmachinescalesets" if fold(parsed.types[0]) == "virtualmachinescalesets" else "virtualmachines"
    )
    return (
        f"https://{account}.blob.core.windows.net/network-watcher-logs/subscriptions/{fold(subscription)}"
        f"/resourcegroups/{fold(parsed.resource_group)}/providers/microsoft.compute/{kind}/"
        f"{fold(parsed.names[0])}/{t:%Y/%m/%d}/packetcapture_{t:%H_%M_%S}_{t.microsecond // 1000:03d}.cap"
    )


def per_target_path(path: str | None, target: CaptureTarget, many: bool) -> str | None:
    """For scale sets each instance writes its own file: ``..._{instance}.cap`` (UNCONFIRMED naming)."""
    if path is None or not many or target.instance_id is None:
        return path
    if fold(path).endswith(".cap"):
        return f"{path[:-4]}_{target.instance_id}{path[-4:]}"
    return f"{path.rstrip('/')}/{target.instance_id}.cap"


def ring_file_path(path: str | None, sequence: int) -> str | None:
    """A ring's file ``sequence``: ``{path without .cap}_{sequence:05d}.cap`` (UNCONFIRMED naming)."""
    if path is None:
        return None
    stem = path[:-4] if path.lower().endswith(".cap") else path.rstrip("/")
    return f"{stem}_{sequence:05d}.cap"


def build_capture(
    world: World,
    watcher: NetworkWatcher,
    name: str,
    body: bytes,
    *,
    now: float,
    agent_start_seconds: float,
    provisioning_seconds: float,
) -> Capture:
    """Validate a PUT body as the service would (codes marked UNCONFIRMED are the emulator's choice) and
    return the new capture. Called with ``world.lock`` held. Raises :class:`ArmError` (400)."""
    capture_id = f"{watcher.id}/packetCaptures/{name}"
    try:
        doc = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request("InvalidRequestFormat", "Cannot parse the request.") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("properties"), dict):
        # "required: [properties]" [SPEC PacketCapture].
        raise bad_request(
            "InvalidRequestFormat",
            "Cannot parse the request: the body must be a JSON object with 'properties'.",
            "properties",
        )
    props: dict[str, Any] = doc["properties"]

    # required: ["target", "storageLocation"] [SPEC PacketCaptureParameters]; code UNCONFIRMED.
    target = _str(props, "target", "properties")
    if not target:
        raise bad_request(
            "MissingRequiredProperty", "The required property 'target' is missing.", "properties.target"
        )
    loc = props.get("storageLocation")
    if loc is None:
        raise bad_request(
            "MissingRequiredProperty",
            "The required property 'storageLocation' is missing.",
            "properties.storageLocation",
        )
    if not isinstance(loc, dict):
        raise bad_request(
            "InvalidRequestFormat",
            "Cannot parse the request: 'storageLocation' must be an object.",
            "properties.storageLocation",
        )

    continuous = props.get("continuousCapture")
    if continuous is not None and not isinstance(continuous, bool):
        raise bad_request(
            "InvalidRequestFormat",
            "Cannot parse the request: 'continuousCapture' must be a boolean or null.",
            "properties.continuousCapture",
        )
    if continuous is not None:
        for key in NOT_WITH_CONTINUOUS:
            if props.get(key) is not None:
                # The PowerShell client refuses these with continuous capture set, in these words
                # (docs/EMULATOR.md "Continuous capture"); that ARM does too is UNCONFIRMED.
                raise bad_request(
                    "InvalidRequestPropertiesInPacketCaptureRequest",
                    f"{key[0].upper()}{key[1:]} is not supported in packet capture request "
                    "with continuousCapture; use captureSettings.",
                    f"properties.{key}",
                )
    # Bounds [SPEC]; defaults [REC].
    bpp = _int(props, "bytesToCapturePerPacket", 0, UINT32_MAX, DEFAULT_BYTES_PER_PACKET, "properties")
    total = _int(props, "totalBytesPerSession", 0, UINT32_MAX, DEFAULT_TOTAL_BYTES, "properties")
    limit = _int(props, "timeLimitInSeconds", 0, 18000, DEFAULT_TIME_LIMIT, "properties")
    assert bpp is not None
    assert total is not None
    assert limit is not None
    settings = props.get("captureSettings")
    settings_out: dict[str, Any] | None = None
    if settings is not None:
        if not isinstance(settings, dict):
            raise bad_request(
                "InvalidRequestFormat",
                "Cannot parse the request: 'captureSettings' must be an object.",
                "properties.captureSettings",
            )
        p = "properties.captureSettings"
        settings_out = {
            "fileCount": _int(settings, "fileCount", 0, 10000, 10, p),
            "fileSizeInBytes": _int(settings, "fileSizeInBytes", 0, UINT32_MAX, 104857600, p),
            "sessionTimeLimitInSeconds": _int(settings, "sessionTimeLimitInSeconds", 0, 604800, 86400, p),
        }
    if continuous is not None and settings_out is None:
        settings_out = {
            "fileCount": DEFAULT_FILE_COUNT,
            "fileSizeInBytes": DEFAULT_FILE_SIZE,
            "sessionTimeLimitInSeconds": DEFAULT_SESSION_SECONDS,
        }
    filters = _filters(props)

    # targetType: closed enum [SPEC]; absent = AzureVM (UNCONFIRMED default).
    raw_type = _str(props, "targetType", "properties")
    target_type = "AzureVM"
    if raw_type is not None:
        found = next((t for t in TARGET_TYPES if fold(t) == fold(raw_type)), None)
        if found is None:
            raise bad_request(
                "InvalidTargetType",
                f"Target type '{raw_type}' is not supported: only AzureVM and "
                "AzureVMSS are currently supported.",
                "properties.targetType",
            )
        target_type = found

    parsed = parse_resource_id(target)
    if parsed is None:
        # ARM's wording for malformed linked IDs.
        raise bad_request(
            "LinkedInvalidPropertyId",
            f"Property id '{target}' at path 'properties.target' is "
            "invalid. Expect fully qualified resource Id that start with '/subscriptions/"
            "{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.",
            "properties.target",
        )
    full_type = fold(parsed.full_type)
    kinds = {
        "microsoft.compute/virtualmachines": "AzureVM",
        "microsoft.compute/virtualmachinescalesets": "AzureVMSS",
    }
    actual = kinds.get(full_type)
    if actual is None:
        hint = ""
        if full_type == "microsoft.compute/virtualmachinescalesets/virtualmachines":
            hint = " For a scale-set instance use the scale set's ID, targetType AzureVMSS and scope.include."
        raise bad_request(
            "InvalidTargetType",
            f"The target '{target}' is not a virtual machine or a virtual "
            f"machine scale set: only AzureVM and AzureVMSS are currently supported.{hint}",
            "properties.target",
        )
    if actual != target_type:
        raise bad_request(
            "InvalidTargetType",
            f"The target '{target}' is a {actual} resource but targetType is '{target_type}'.",
            "properties.targetType",
        )

    def not_found(resource_id: str, what: str) -> ArmError:
        # Referenced resource missing: 400 InvalidResourceReference (Network RP style; UNCONFIRMED here).
        return bad_request(
            "InvalidResourceReference",
            f"Resource {resource_id} referenced by resource "
            f"{capture_id} was not found. Please make sure that the referenced resource exists, "
            "and that both resources are in the same region.",
            what,
        )

    if fold(parsed.subscription) != fold(world.subscription_id):
        raise not_found(target, "properties.target")
    scope_out: dict[str, Any] | None = None
    scope = props.get("scope")
    include: list[str] = []
    exclude: list[str] = []
    if scope is not None:
        if not isinstance(scope, dict):
            raise bad_request(
                "InvalidRequestFormat",
                "Cannot parse the request: 'scope' must be an object.",
                "properties.scope",
            )
        for key, dest in (("include", include), ("exclude", exclude)):
            vals = scope.get(key) or []
            if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
                raise bad_request(
                    "InvalidRequestFormat",
                    f"Cannot parse the request: 'scope.{key}' must be an array of strings.",
                    f"properties.scope.{key}",
                )
            dest.extend(vals)
        scope_out = {"include": include, "exclude": exclude}

    targets: list[CaptureTarget]
    if actual == "AzureVM":
        vm = world.vm(target)
        if vm is None:
            raise not_found(target, "properties.target")
        if include or exclude:
            raise bad_request(
                "InvalidPacketCaptureScope", "'scope' applies only to AzureVMSS targets.", "properties.scope"
            )
        region, os_type, has_agent, behaviour = vm.location, vm.os_type, vm.has_agent, vm.behaviour
        anomaly_start = vm.anomaly_start
        targets = [CaptureTarget(vm.id, vm.name, None, vm.os_type, vm.scenario)]
    else:
        ss = world.scale_set(target)
        if ss is None:
            raise not_found(target, "properties.target")
        for key, vals in (("include", include), ("exclude", exclude)):
            missing = [v for v in vals if not ss.has_instance(v)]
            if missing:
                # Brief: "AzureVMSS scope.include instance ids must exist"; code UNCONFIRMED.
                raise bad_request(
                    "InvalidPacketCaptureScope",
                    f"Instance(s) {', '.join(missing)} in scope.{key} "
                    f"do not exist in virtual machine scale set '{ss.name}'.",
                    f"properties.scope.{key}",
                )
        # "If both included and excluded are empty, then the packet capture will run on all instances" [SPEC].
        chosen = [i for i in (include or ss.instances) if i not in exclude]
        if not chosen:
            raise bad_request(
                "InvalidPacketCaptureScope",
                "The scope selects no instance of the scale set.",
                "properties.scope",
            )
        region, os_type, has_agent, behaviour = ss.location, ss.os_type, ss.has_agent, ss.behaviour
        anomaly_start = ss.anomaly_start
        targets = [
            CaptureTarget(ss.instance_id(i), f"{ss.name}_{i}", i, ss.os_type, ss.scenario) for i in chosen
        ]
        if scope_out is None:
            scope_out = {"include": [], "exclude": []}

    if region != watcher.location:
        # Watchers are regional ("one per region"); capturing a VM of another region is refused (UNCONFIRMED).
        raise bad_request(
            "TargetNotInNetworkWatcherRegion",
            f"The target '{target}' is in region '{region}' but "
            f"network watcher '{watcher.name}' is in region '{watcher.location}'. Use the network "
            "watcher of the target's region.",
            "properties.target",
        )

    # storageLocation: storageId "Required if no localPath or filePath is provided" [SPEC].
    storage_id = _str(loc, "storageId", "properties.storageLocation")
    storage_path = _str(loc, "storagePath", "properties.storageLocation")
    file_path = _str(loc, "filePath", "properties.storageLocation")
    local_path = _str(loc, "localPath", "properties.storageLocation")
    if not storage_id and not file_path and not local_path:
        raise bad_request(
            "InvalidStorageLocation",
            "The storage location must have a storageId, or a filePath or "
            "localPath on the target virtual machine.",
            "properties.storageLocation",
        )
    if file_path and continuous is not None:
        # "This path is invalid if 'Continuous Capture' is provided with 'true' or 'false'" [SPEC].
        raise bad_request(
            "InvalidStorageLocation",
            "filePath cannot be used when continuousCapture is set; use localPath.",
            "properties.storageLocation.filePath",
        )
    if local_path and continuous is None:
        # "This path is valid if 'Continuous Capture' is provided with 'true' or 'false'" [SPEC].
        raise bad_request(
            "InvalidStorageLocation",
            "localPath requires continuousCapture (true or false); use filePath otherwise.",
            "properties.storageLocation.localPath",
        )
    for key, value in (("filePath", file_path), ("localPath", local_path)):
        if value:
            _check_local_path(value, os_type, key)
    loc_out: dict[str, Any] = {}
    account_name: str | None = None
    if storage_id:
        sp = parse_resource_id(storage_id)
        if sp is None:
            raise bad_request(
                "LinkedInvalidPropertyId",
                f"Property id '{storage_id}' at path "
                "'properties.storageLocation.storageId' is invalid. Expect fully qualified resource "
                "Id that start with '/subscriptions/{subscriptionId}' or '/providers/"
                "{resourceProviderNamespace}/'.",
                "properties.storageLocation.storageId",
            )
        account = world.storage_account(storage_id)
        if account is None:
            raise not_found(storage_id, "properties.storageLocation.storageId")
        if fold(account.sku).startswith("premium"):
            # "Premium storage accounts are currently not supported for storing packet captures." [DOC]
            raise bad_request(
                "PremiumStorageNotSupported",
                f"Storage account '{account.name}' is a premium account"
                ": premium storage accounts are currently not supported for storing packet captures.",
                "properties.storageLocation.storageId",
            )
        account_name = account.name
        loc_out["storageId"] = storage_id
    if storage_path is not None:
        u = urlparse(storage_path)
        if fold(u.scheme) != "https" or not u.netloc or not storage_id:
            raise bad_request(
                "InvalidStorageLocation",
                f"storagePath '{storage_path}' must be a well-formed https "
                "URI, given together with storageId.",
                "properties.storageLocation.storagePath",
            )
        loc_out["storagePath"] = storage_path
        loc_out["storagePathFileName"] = storage_path.rstrip("/").rsplit("/", 1)[-1]  # [REC]
    elif account_name is not None:
        storage_path = _storage_path_for(account_name, world.subscription_id, target, now)
        loc_out["storagePath"] = storage_path
    if file_path:
        loc_out["filePath"] = file_path
    if local_path:
        loc_out["localPath"] = local_path

    if not has_agent:
        # Required by the docs (docs/EMULATOR.md, the agent extension); the error itself is
        # UNCONFIRMED (the emulator's choice).
        agent_type = "NetworkWatcherAgentLinux" if os_type == "Linux" else "NetworkWatcherAgentWindows"
        raise bad_request(
            "NetworkWatcherAgentNotInstalled",
            f"The Network Watcher agent is not installed on "
            f"'{target}'. Packet capture requires the Network Watcher agent VM extension: install "
            f"the AzureNetworkWatcherExtension (publisher Microsoft.Azure.NetworkWatcher, type "
            f"{agent_type}) on the target and retry.",
            "properties.target",
        )

    out: dict[str, Any] = {"target": target, "targetType": target_type}
    if scope_out is not None:
        out["scope"] = scope_out
    if continuous is None:
        out.update(
            {"bytesToCapturePerPacket": bpp, "totalBytesPerSession": total, "timeLimitInSeconds": limit}
        )
    else:
        # [REC-VM]: a continuous capture echoes no totalBytesPerSession / timeLimitInSeconds; the session
        # limit ends it and there is no byte limit.
        assert settings_out is not None
        out["bytesToCapturePerPacket"] = bpp
        limit, total = int(settings_out["sessionTimeLimitInSeconds"]), 0
    out.update({"storageLocation": loc_out, "filters": filters})
    if continuous is not None:
        out["continuousCapture"] = continuous
    if settings_out is not None:
        out["captureSettings"] = settings_out
    return Capture(
        id=capture_id,
        name=name,
        watcher=watcher,
        subscription_id=world.subscription_id,
        properties=out,
        target_id=target,
        targets=targets,
        behaviour=behaviour,
        time_limit=limit,
        total_bytes=total,
        bytes_per_packet=bpp,
        storage_id=storage_id,
        storage_path=storage_path,
        local_path=file_path or local_path,
        created=now,
        agent_start_seconds=agent_start_seconds,
        provisioning_seconds=provisioning_seconds,
        continuous=continuous is True,
        file_count=int(settings_out["fileCount"]) if settings_out else DEFAULT_FILE_COUNT,
        file_size=int(settings_out["fileSizeInBytes"]) if settings_out else DEFAULT_FILE_SIZE,
        anomaly_start=anomaly_start,
    )


def check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        # ARM-style naming rule (1-80 chars, letters/digits/_ . -); code and rule are the emulator's choice.
        raise bad_request(
            "InvalidResourceName",
            f"Resource name {name} is invalid. The name can be up to 80 "
            "characters long. It must begin with a word character, and it must end with a word "
            "character or with '_'. The name may contain word characters or '.', '-', '_'.",
        )
