"""The seeded world: one subscription's resource groups, VMs, scale sets, storage accounts and watchers.

Loaded from a small JSON file (format in ``emulator/README.md``; sample: ``samples/world.json``) or built in
code (``World(subscription_id=...)`` then ``add_vm`` / ``add_scale_set`` / ...). Names and IDs compare
case-insensitively, as in ARM. All mutation goes through ``world.lock`` (shared with the emulator's state).
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
DEFAULT_TENANT = "72f988bf-0000-4000-8000-00000000e001"
DEFAULT_PRINCIPAL = "5b2c5a8e-0000-4000-8000-00000000a001"
DEFAULT_CLIENT = "0c3c4b1d-0000-4000-8000-00000000c001"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold(text: str) -> str:
    """ASCII-only lower case, as ARM compares names and IDs (``str.lower`` maps the Kelvin sign to 'k')."""
    return text.translate(_ASCII_LOWER)


_NS = uuid.UUID("6f1d2b1e-5c1e-4f53-9b7a-0e6a3c3d2e10")

NW_AGENT_PUBLISHER = "Microsoft.Azure.NetworkWatcher"
NW_AGENT_TYPES = {"linux": "NetworkWatcherAgentLinux", "windows": "NetworkWatcherAgentWindows"}
PC_ERRORS = ("InternalError", "AgentStopped", "CaptureFailed", "LocalFileFailed", "StorageFailed")  # [SPEC]
SCENARIOS = ("web", "synflood", "retransmissions", "dns-failures")

_UNRELATED_TYPES = (
    "Microsoft.Web/sites",
    "Microsoft.KeyVault/vaults",
    "Microsoft.Insights/components",
    "Microsoft.Sql/servers",
    "Microsoft.DocumentDB/databaseAccounts",
    "Microsoft.ContainerRegistry/registries",
    "Microsoft.Logic/workflows",
    "Microsoft.ManagedIdentity/userAssignedIdentities",
)

T = TypeVar("T")


class WorldError(ValueError):
    """The world file (or an ``add_*`` call) is invalid."""


def stable_uuid(*parts: str) -> str:
    """A deterministic GUID for a resource (same world → same vmId across runs)."""
    return str(uuid.uuid5(_NS, "/".join(fold(p) for p in parts)))


@dataclass(frozen=True)
class ParsedId:
    """``/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{type}/{name}[/{type}/{name}]...``"""

    subscription: str
    resource_group: str
    namespace: str
    types: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def full_type(self) -> str:
        return "/".join((self.namespace, *self.types))

    @property
    def name(self) -> str:
        return self.names[-1]


def parse_resource_id(resource_id: str) -> ParsedId | None:
    parts = resource_id.split("/")
    if len(parts) < 9 or parts[0] != "" or any(p == "" for p in parts[1:]):
        return None
    if fold(parts[1]) != "subscriptions" or fold(parts[3]) != "resourcegroups":
        return None
    if fold(parts[5]) != "providers" or (len(parts) - 7) % 2 != 0:
        return None
    rest = parts[7:]
    return ParsedId(parts[2], parts[4], parts[6], tuple(rest[0::2]), tuple(rest[1::2]))


@dataclass
class Behaviour:
    """How the Network Watcher agent behaves for captures on this VM / scale set (emulator-only knobs)."""

    failure: str | None = None  # a PcError: capture goes Running -> Error [failure]
    failure_after_seconds: float = 1.0  # emulated seconds after the capture started
    agent_stuck: bool = False  # the capture stays NotStarted forever
    provisioning_error: tuple[str, str] | None = None  # create LRO ends Failed with this (code, message)
    traffic_bytes_per_second: float | None = None  # captured bytes/s (enables the bytes-limit stop)
    avg_packet_bytes: int = 500  # used with bytesToCapturePerPacket to scale the captured rate

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> Behaviour:
        failure = d.get("failure")
        if failure is not None and failure not in PC_ERRORS:
            raise WorldError(f"{where}: failure must be one of {', '.join(PC_ERRORS)}")
        prov = d.get("provisioningFails", False)
        prov_error: tuple[str, str] | None = None
        if prov is True:
            prov_error = ("InternalServerError", "An error occurred.")
        elif isinstance(prov, dict):
            prov_error = (
                str(prov.get("code", "InternalServerError")),
                str(prov.get("message", "An error occurred.")),
            )
        elif prov not in (False, None):
            raise WorldError(f"{where}: provisioningFails must be true/false or {{code, message}}")
        rate = d.get("trafficBytesPerSecond")
        return cls(
            failure=failure,
            failure_after_seconds=float(d.get("failureAfterSeconds", 1.0)),
            agent_stuck=bool(d.get("agentStuck", False)),
            provisioning_error=prov_error,
            traffic_bytes_per_second=float(rate) if rate is not None else None,
            avg_packet_bytes=int(d.get("avgPacketBytes", 500)),
        )


@dataclass
class Extension:
    name: str
    publisher: str
    type: str
    type_handler_version: str = "1.4"

    @property
    def is_network_watcher_agent(self) -> bool:
        # The docs say to match on publisher + type, not on the extension's name (docs/EMULATOR.md).
        return fold(self.publisher) == fold(NW_AGENT_PUBLISHER) and fold(self.type) in {
            fold(t) for t in NW_AGENT_TYPES.values()
        }


def _extensions(os_type: str, agent: bool, agent_name: str, extra: Iterable[Extension]) -> list[Extension]:
    exts = list(extra)
    if agent:
        exts.insert(0, Extension(agent_name, NW_AGENT_PUBLISHER, NW_AGENT_TYPES[fold(os_type)]))
    return exts


@dataclass
class ResourceGroup:
    name: str
    location: str


@dataclass
class VirtualMachine:
    subscription_id: str
    name: str
    resource_group: str
    location: str
    os_type: str = "Linux"
    scenario: str | None = None
    behaviour: Behaviour = field(default_factory=Behaviour)
    extensions: list[Extension] = field(default_factory=list)
    size: str = "Standard_D2s_v3"
    tags: dict[str, str] = field(default_factory=dict)
    # Emulated epoch seconds when the scenario's anomaly begins (None: it runs from every capture's start).
    anomaly_start: float | None = None

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.name}"
        )

    @property
    def vm_id(self) -> str:
        return stable_uuid(self.id)

    @property
    def has_agent(self) -> bool:
        return any(e.is_network_watcher_agent for e in self.extensions)


@dataclass
class ScaleSet:
    subscription_id: str
    name: str
    resource_group: str
    location: str
    instances: list[str] = field(default_factory=lambda: ["0", "1", "2"])
    os_type: str = "Linux"
    scenario: str | None = None
    behaviour: Behaviour = field(default_factory=Behaviour)
    extensions: list[Extension] = field(default_factory=list)
    size: str = "Standard_D2s_v3"
    tags: dict[str, str] = field(default_factory=dict)
    # Emulated epoch seconds when the scenario's anomaly begins (None: it runs from every capture's start).
    anomaly_start: float | None = None

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachineScaleSets/{self.name}"
        )

    def instance_id(self, instance: str) -> str:
        return f"{self.id}/virtualMachines/{instance}"

    def instance_vm_id(self, instance: str) -> str:
        return stable_uuid(self.instance_id(instance))

    def has_instance(self, instance: str) -> bool:
        return instance in self.instances

    @property
    def has_agent(self) -> bool:
        return any(e.is_network_watcher_agent for e in self.extensions)


@dataclass
class StorageAccount:
    subscription_id: str
    name: str
    resource_group: str
    location: str
    sku: str = "Standard_LRS"
    kind: str = "StorageV2"

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Storage/storageAccounts/{self.name}"
        )


@dataclass
class NetworkWatcher:
    subscription_id: str
    name: str
    resource_group: str
    location: str
    etag: str = field(default_factory=lambda: f'W/"{uuid.uuid4()}"')

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Network/networkWatchers/{self.name}"
        )


@dataclass
class GenericResource:
    """An unrelated resource: only listed (``GET /subscriptions/{sub}/resources``) and readable by ID."""

    subscription_id: str
    name: str
    resource_group: str
    location: str
    type: str

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{self.type}/{self.name}"
        )


@dataclass
class Identity:
    principal_id: str
    client_id: str
    resource_id: str | None = None


class World:
    """Static resources of one subscription. Thread-safe through ``lock`` (an RLock)."""

    def __init__(
        self,
        subscription_id: str = DEFAULT_SUBSCRIPTION,
        *,
        tenant_id: str = DEFAULT_TENANT,
        subscription_name: str = "Emulated subscription",
        identity: Identity | None = None,
        session_limit_per_region: int = 10_000,
    ) -> None:
        self.subscription_id = subscription_id
        self.tenant_id = tenant_id
        self.subscription_name = subscription_name
        self.identity = identity or Identity(DEFAULT_PRINCIPAL, DEFAULT_CLIENT)
        self.user_assigned: list[Identity] = []
        self.session_limit_per_region = session_limit_per_region
        self.fault_specs: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self.version = 0  # bumped on every change (resource-list cache key)
        self._groups: dict[str, ResourceGroup] = {}
        self._vms: dict[str, VirtualMachine] = {}
        self._scale_sets: dict[str, ScaleSet] = {}
        self._storage: dict[str, StorageAccount] = {}
        self._watchers: dict[str, NetworkWatcher] = {}
        self._generic: dict[str, GenericResource] = {}

    # ---------------------------------------------------------------- loading

    @classmethod
    def load(cls, source: str | os.PathLike[str] | dict[str, Any] | World | None) -> World:
        if source is None:
            return cls()
        if isinstance(source, World):
            return source
        if isinstance(source, dict):
            return cls.from_dict(source)
        return cls.from_file(source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> World:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise WorldError(f"{path}: not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise WorldError(f"{path}: the world must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> World:
        ident = data.get("identity") or {}
        world = cls(
            str(data.get("subscriptionId", DEFAULT_SUBSCRIPTION)),
            tenant_id=str(data.get("tenantId", DEFAULT_TENANT)),
            subscription_name=str(data.get("subscriptionName", "Emulated subscription")),
            identity=Identity(
                str(ident.get("principalId", DEFAULT_PRINCIPAL)),
                str(ident.get("clientId", DEFAULT_CLIENT)),
                ident.get("resourceId"),
            ),
            session_limit_per_region=int(data.get("sessionLimitPerRegion", 10_000)),
        )
        for i, ua in enumerate(data.get("userAssignedIdentities", [])):
            try:
                world.user_assigned.append(
                    Identity(str(ua["principalId"]), str(ua["clientId"]), ua.get("resourceId"))
                )
            except KeyError as exc:
                raise WorldError(f"userAssignedIdentities[{i}]: missing {exc}") from exc
        for i, rg in enumerate(data.get("resourceGroups", [])):
            world.add_resource_group(
                _req(rg, "name", f"resourceGroups[{i}]"), _req(rg, "location", f"resourceGroups[{i}]")
            )
        for i, nw in enumerate(data.get("networkWatchers", [])):
            where = f"networkWatchers[{i}]"
            world.add_watcher(
                _req(nw, "name", where),
                resource_group=_req(nw, "resourceGroup", where),
                location=_req(nw, "location", where),
            )
        for i, st in enumerate(data.get("storageAccounts", [])):
            where = f"storageAccounts[{i}]"
            world.add_storage_account(
                _req(st, "name", where),
                resource_group=_req(st, "resourceGroup", where),
                location=_req(st, "location", where),
                sku=str(st.get("sku", "Standard_LRS")),
                kind=str(st.get("kind", "StorageV2")),
            )
        for i, vm in enumerate(data.get("virtualMachines", [])):
            where = f"virtualMachines[{i}]"
            world.add_vm(
                _req(vm, "name", where),
                resource_group=_req(vm, "resourceGroup", where),
                location=_req(vm, "location", where),
                os_type=str(vm.get("osType", "Linux")),
                agent=bool(vm.get("agent", True)),
                scenario=vm.get("scenario"),
                behaviour=Behaviour.from_dict(vm, where),
                size=str(vm.get("size", "Standard_D2s_v3")),
                agent_extension_name=str(vm.get("agentExtensionName", "AzureNetworkWatcherExtension")),
                extensions=_extra_extensions(vm, where),
                tags=dict(vm.get("tags", {})),
            )
        for i, ss in enumerate(data.get("scaleSets", [])):
            where = f"scaleSets[{i}]"
            world.add_scale_set(
                _req(ss, "name", where),
                resource_group=_req(ss, "resourceGroup", where),
                location=_req(ss, "location", where),
                instances=[str(x) for x in ss.get("instances", ["0", "1", "2"])],
                os_type=str(ss.get("osType", "Linux")),
                agent=bool(ss.get("agent", True)),
                scenario=ss.get("scenario"),
                behaviour=Behaviour.from_dict(ss, where),
                agent_extension_name=str(ss.get("agentExtensionName", "AzureNetworkWatcherExtension")),
                extensions=_extra_extensions(ss, where),
                tags=dict(ss.get("tags", {})),
            )
        unrelated = int(data.get("unrelatedResources", 0))
        if unrelated:
            world.add_unrelated_resources(unrelated)
        faults = data.get("faults", [])
        if not isinstance(faults, list):
            raise WorldError("faults must be a list")
        world.fault_specs = [dict(f) for f in faults]
        return world

    # ---------------------------------------------------------------- building

    def _bump(self) -> None:
        self.version += 1

    def set_tags(self, resource_id: str, tags: dict[str, str]) -> None:
        """Replace a VM's or scale set's tags, as a PATCH of its tags would (resource lists see it)."""
        with self.lock:
            resource = self.vm(resource_id) or self.scale_set(resource_id)
            if resource is None:
                raise WorldError(f"no VM or scale set {resource_id}")
            resource.tags = dict(tags)
            self._bump()

    def _touch_group(self, name: str, location: str) -> None:
        if fold(name) not in self._groups:
            self._groups[fold(name)] = ResourceGroup(name, location)

    def _check_unique(self, resource_id: str) -> None:
        key = fold(resource_id)
        if any(key in m for m in (self._vms, self._scale_sets, self._storage, self._watchers, self._generic)):
            raise WorldError(f"duplicate resource {resource_id}")

    def add_resource_group(self, name: str, location: str) -> ResourceGroup:
        with self.lock:
            self._groups.setdefault(fold(name), ResourceGroup(name, fold(location)))
            self._bump()
            return self._groups[fold(name)]

    def add_vm(
        self,
        name: str,
        *,
        resource_group: str,
        location: str,
        os_type: str = "Linux",
        agent: bool = True,
        scenario: str | None = None,
        behaviour: Behaviour | None = None,
        size: str = "Standard_D2s_v3",
        agent_extension_name: str = "AzureNetworkWatcherExtension",
        extensions: Iterable[Extension] = (),
        tags: dict[str, str] | None = None,
        **behaviour_kw: Any,
    ) -> VirtualMachine:
        """Add a VM. ``behaviour_kw`` are :class:`Behaviour` fields (``failure=``, ``agent_stuck=``, ...)."""
        os_type = _os(os_type, name)
        vm = VirtualMachine(
            self.subscription_id,
            name,
            resource_group,
            fold(location),
            os_type,
            scenario,
            behaviour or Behaviour(**behaviour_kw),
            _extensions(os_type, agent, agent_extension_name, extensions),
            size,
            dict(tags or {}),
        )
        with self.lock:
            self._check_unique(vm.id)
            self._touch_group(resource_group, vm.location)
            self._vms[fold(vm.id)] = vm
            self._bump()
        return vm

    def add_scale_set(
        self,
        name: str,
        *,
        resource_group: str,
        location: str,
        instances: Iterable[str] = ("0", "1", "2"),
        os_type: str = "Linux",
        agent: bool = True,
        scenario: str | None = None,
        behaviour: Behaviour | None = None,
        agent_extension_name: str = "AzureNetworkWatcherExtension",
        extensions: Iterable[Extension] = (),
        tags: dict[str, str] | None = None,
        **behaviour_kw: Any,
    ) -> ScaleSet:
        os_type = _os(os_type, name)
        ss = ScaleSet(
            self.subscription_id,
            name,
            resource_group,
            fold(location),
            [str(i) for i in instances],
            os_type,
            scenario,
            behaviour or Behaviour(**behaviour_kw),
            _extensions(os_type, agent, agent_extension_name, extensions),
            tags=dict(tags or {}),
        )
        with self.lock:
            self._check_unique(ss.id)
            self._touch_group(resource_group, ss.location)
            self._scale_sets[fold(ss.id)] = ss
            self._bump()
        return ss

    def add_storage_account(
        self,
        name: str,
        *,
        resource_group: str,
        location: str,
        sku: str = "Standard_LRS",
        kind: str = "StorageV2",
    ) -> StorageAccount:
        st = StorageAccount(self.subscription_id, name, resource_group, fold(location), sku, kind)
        with self.lock:
            self._check_unique(st.id)
            self._touch_group(resource_group, st.location)
            self._storage[fold(st.id)] = st
            self._bump()
        return st

    def add_watcher(self, name: str, *, resource_group: str, location: str) -> NetworkWatcher:
        nw = NetworkWatcher(self.subscription_id, name, resource_group, fold(location))
        with self.lock:
            self._check_unique(nw.id)
            if self.watcher_in(nw.location) is not None:
                # "1 per region per subscription" [DOC includes/network-watcher-limits.md]
                raise WorldError(f"region {nw.location} already has a network watcher")
            self._touch_group(resource_group, nw.location)
            self._watchers[fold(nw.id)] = nw
            self._bump()
        return nw

    def add_generic(self, name: str, *, resource_group: str, location: str, type: str) -> GenericResource:
        res = GenericResource(self.subscription_id, name, resource_group, fold(location), type)
        with self.lock:
            self._check_unique(res.id)
            self._touch_group(resource_group, res.location)
            self._generic[fold(res.id)] = res
            self._bump()
        return res

    def add_unrelated_resources(self, count: int) -> None:
        """Add ``count`` resources of unrelated types over 10 resource groups and the world's regions."""
        with self.lock:
            regions = sorted(self.regions()) or ["eastus"]
            start = len(self._generic)
            for i in range(start, start + count):
                self.add_generic(
                    f"unrelated-{i:05d}",
                    resource_group=f"rg-unrelated-{i % 10:02d}",
                    location=regions[i % len(regions)],
                    type=_UNRELATED_TYPES[i % len(_UNRELATED_TYPES)],
                )

    # ---------------------------------------------------------------- queries (hold the lock or accept races)

    def regions(self) -> set[str]:
        with self.lock:
            return {r.location for r in self.iter_resources()}

    def resource_group(self, name: str) -> ResourceGroup | None:
        return self._groups.get(fold(name))

    def resource_groups(self) -> list[ResourceGroup]:
        with self.lock:
            return list(self._groups.values())

    def vm(self, resource_id: str) -> VirtualMachine | None:
        return self._vms.get(fold(resource_id))

    def scale_set(self, resource_id: str) -> ScaleSet | None:
        return self._scale_sets.get(fold(resource_id))

    def storage_account(self, resource_id: str) -> StorageAccount | None:
        return self._storage.get(fold(resource_id))

    def watcher(self, resource_id: str) -> NetworkWatcher | None:
        return self._watchers.get(fold(resource_id))

    def generic(self, resource_id: str) -> GenericResource | None:
        return self._generic.get(fold(resource_id))

    def watchers(self) -> list[NetworkWatcher]:
        with self.lock:
            return list(self._watchers.values())

    def watcher_in(self, region: str) -> NetworkWatcher | None:
        region = fold(region)
        return next((w for w in self._watchers.values() if w.location == region), None)

    def vms(self) -> list[VirtualMachine]:
        with self.lock:
            return list(self._vms.values())

    def scale_sets(self) -> list[ScaleSet]:
        with self.lock:
            return list(self._scale_sets.values())

    def storage_accounts(self) -> list[StorageAccount]:
        with self.lock:
            return list(self._storage.values())

    def find_vm(self, name: str) -> VirtualMachine:
        """The VM named ``name`` (any resource group); KeyError if absent or ambiguous."""
        return self._find(self._vms, name)

    def find_scale_set(self, name: str) -> ScaleSet:
        return self._find(self._scale_sets, name)

    def find_storage_account(self, name: str) -> StorageAccount:
        return self._find(self._storage, name)

    def _find(self, resources: dict[str, T], name: str) -> T:
        with self.lock:
            found = [r for r in resources.values() if fold(getattr(r, "name", "")) == fold(name)]
        if len(found) != 1:
            raise KeyError(name)
        return found[0]

    def iter_resources(
        self,
    ) -> Iterator[VirtualMachine | ScaleSet | StorageAccount | NetworkWatcher | GenericResource]:
        """Top-level resources in listing order (watchers, storage, VMs, scale sets, unrelated)."""
        yield from self._watchers.values()
        yield from self._storage.values()
        yield from self._vms.values()
        yield from self._scale_sets.values()
        yield from self._generic.values()

    def identities(self) -> list[Identity]:
        return [self.identity, *self.user_assigned]


def _req(d: dict[str, Any], key: str, where: str) -> str:
    value = d.get(key)
    if not isinstance(value, str) or not value:
        raise WorldError(f"{where}: '{key}' is required (non-empty string)")
    return value


def _os(os_type: str, name: str) -> str:
    if fold(os_type) not in NW_AGENT_TYPES:
        raise WorldError(f"{name}: osType must be Linux or Windows")
    return "Linux" if fold(os_type) == "linux" else "Windows"


def _extra_extensions(d: dict[str, Any], where: str) -> list[Extension]:
    out = []
    for j, e in enumerate(d.get("extensions", [])):
        w = f"{where}.extensions[{j}]"
        out.append(
            Extension(
                _req(e, "name", w),
                _req(e, "publisher", w),
                _req(e, "type", w),
                str(e.get("typeHandlerVersion", "1.0")),
            )
        )
    return out
