"""The emulated Azure Resource Manager: routing, resource JSON, packet captures and their operations.

Wire behaviour follows docs/EMULATOR.md (with its public sources): [REC] is the recorded live traffic,
[SPEC] the swagger, [DOC] Microsoft docs; UNCONFIRMED marks the emulator's own choices.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .captures import Capture, StoppedCapture, build_capture, check_name
from .clock import Clock
from .errors import ArmError, bad_request, resource_group_not_found, resource_not_found
from .world import (
    GenericResource,
    NetworkWatcher,
    ScaleSet,
    StorageAccount,
    VirtualMachine,
    World,
    fold,
    parse_resource_id,
)

NETWORK_API_VERSION = "2026-03-01"  # what azure-mgmt-network 33.1.0 sends [SDK]
NETWORK_API_VERSIONS = frozenset(
    {
        "2020-04-01",
        "2020-05-01",
        "2020-06-01",
        "2020-07-01",
        "2020-08-01",
        "2020-11-01",
        "2021-02-01",
        "2021-03-01",
        "2021-05-01",
        "2021-08-01",
        "2021-12-01",
        "2022-01-01",
        "2022-05-01",
        "2022-07-01",
        "2022-09-01",
        "2022-11-01",
        "2023-02-01",
        "2023-04-01",
        "2023-05-01",
        "2023-06-01",
        "2023-09-01",
        "2023-11-01",
        "2024-01-01",
        "2024-03-01",
        "2024-05-01",
        "2024-07-01",
        "2024-10-01",
        "2025-01-01",
        "2025-03-01",
        "2025-05-01",
        "2025-07-01",
        "2026-01-01",
        NETWORK_API_VERSION,
    }
)
# Compute versions accepted on VM / scale-set reads: 2024-07-01 (a stable Compute version,
# docs/EMULATOR.md) and the other known stable versions, up to 2026-04-01 (azure-mgmt-compute 39.0.0's
# default). Others -> 400
# NoRegisteredProviderFound, as ARM answers (docs/EMULATOR.md, api-versions).
COMPUTE_API_VERSIONS = (
    "2022-03-01",
    "2022-08-01",
    "2022-11-01",
    "2023-03-01",
    "2023-07-01",
    "2023-09-01",
    "2024-03-01",
    "2024-07-01",
    "2024-11-01",
    "2025-04-01",
    "2026-04-01",
)
_DATE_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-(preview|privatepreview|beta|alpha))?$")
_FILTER_EQ = re.compile(r"^\s*(resourceType|location|name|resourceGroup)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)
# Resources - List by tag [DOC resources.list $filter]: "tagName eq 'x' and tagValue eq 'y'" (the pair only).
_FILTER_TAG = re.compile(
    r"^\s*tagName\s+eq\s+'([^']*)'(?:\s+and\s+tagValue\s+eq\s+'([^']*)')?\s*$", re.IGNORECASE
)
_FILTER_SUB = re.compile(r"^\s*substringof\(\s*'([^']*)'\s*,\s*(name|resourceGroup)\s*\)\s*$", re.IGNORECASE)
_AND = re.compile(r"\s+and\s+", re.IGNORECASE)


@dataclass
class ArmConfig:
    page_size: int = 50
    retry_after: float = 1.0  # Retry-After on LRO responses; 0 = omit the header
    lro_in_progress_polls: int = 1  # polls answered InProgress before an operation completes
    operation_seconds: float = 1.0  # ...or emulated seconds after which it completes anyway
    agent_start_seconds: float = 1.0  # NotStarted -> Running


@dataclass
class Operation:
    id: str
    kind: str  # create | stop | delete | queryStatus
    region: str
    capture: Capture
    created: float
    api_version: str
    polls: int = 0

    def done(self, now: float, cfg: ArmConfig) -> bool:
        if self.kind == "queryStatus":
            return True  # [REC]: the first GET of the Location URL answered 200
        return self.polls > cfg.lro_in_progress_polls or now >= self.created + cfg.operation_seconds


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    now: float
    base_url: str


Reply = tuple[int, Any, list[tuple[str, str]]]  # status, JSON-able body (None = empty), headers
_NO_BODY = object()


def _encode_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).rstrip(b"=").decode()


def _decode_token(token: str) -> dict[str, Any]:
    try:
        state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except ValueError as exc:
        raise bad_request("InvalidSkipToken", "The skip token is invalid.") from exc
    if not isinstance(state, dict):
        raise bad_request("InvalidSkipToken", "The skip token is invalid.")
    return state


class ArmService:
    """All ARM state beyond the static world: captures, operations and the stop-notification queue."""

    def __init__(self, world: World, clock: Clock, config: ArmConfig) -> None:
        self.world = world
        self.clock = clock
        self.config = config
        self.lock = world.lock
        self.captures: dict[str, Capture] = {}  # lower id -> capture
        self.by_watcher: dict[str, dict[str, Capture]] = {}  # lower watcher id -> lower name -> capture
        self.operations: dict[str, Operation] = {}
        self._events: list[tuple[float, int, Capture]] = []
        self._seq = itertools.count()
        self.on_new_event: Callable[[], None] = lambda: None
        self._resource_cache: tuple[int, list[dict[str, Any]]] | None = None

    # ------------------------------------------------------------ stop notifications

    def _schedule(self, capture: Capture) -> None:
        end = capture.natural_end()
        if end is not None and end[1] == "Stopped":
            heapq.heappush(self._events, (end[0], next(self._seq), capture))
            self.on_new_event()

    def next_event_time(self) -> float | None:
        with self.lock:
            return self._events[0][0] if self._events else None

    def collect_stopped(self, now: float) -> list[tuple[Capture, list[StoppedCapture]]]:
        """Pop due stop events + mark captures notified; returns what to hand to the hook (outside locks)."""
        with self.lock:
            if not self._events or self._events[0][0] > now:
                return []
            out = []
            while self._events and self._events[0][0] <= now:
                _, _, cap = heapq.heappop(self._events)
                if cap.notified:
                    continue
                st = cap.run_state(now)
                if st.status in ("Stopped", "Error"):
                    cap.notified = True
                    out.append((cap, cap.stopped_records(now)))
            return out

    # ------------------------------------------------------------ dispatch

    def handle(self, req: Request) -> Reply:
        segs = [unquote(s) for s in req.path.strip("/").split("/")]
        low = [fold(s) for s in segs]
        if low == ["subscriptions"]:
            # Subscriptions - List (GET /subscriptions): the identity sees the world's one subscription.
            self._only(req, "GET")
            self._date_version(req.query.get("api-version") or "")
            return self._page(req, [self._subscription_json()])
        if len(segs) < 2 or low[0] != "subscriptions":
            raise ArmError(404, "InvalidResourceType", f"The emulator does not serve '{req.path}'.")
        if fold(segs[1]) != fold(self.world.subscription_id):
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{segs[1]}' could not be found.")
        api_version = req.query.get("api-version")
        rest, low_rest = segs[2:], low[2:]
        n = len(rest)
        if n >= 4 and low_rest[:4] == ["providers", "microsoft.network", "locations", low_rest[3]] and n == 6:
            self._only(req, "GET")
            if low_rest[4] == "operations":
                return self._get_operation(req, rest[5])
            if low_rest[4] == "operationresults":
                return self._get_operation_result(req, rest[5])
        if not api_version:
            # ARM wording.
            raise bad_request(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if n == 0:
            self._only(req, "GET")
            self._date_version(api_version)
            return 200, self._subscription_json(), []
        if low_rest == ["resources"]:
            self._only(req, "GET")
            self._date_version(api_version)
            return self._list_resources(req, None)
        if low_rest == ["resourcegroups"]:
            self._only(req, "GET")
            self._date_version(api_version)
            groups = [self._group_json(g.name, g.location) for g in self.world.resource_groups()]
            return self._page(req, groups)
        if low_rest == ["providers", "microsoft.network", "networkwatchers"]:
            self._only(req, "GET")
            self._network_version(api_version, "networkWatchers")
            return self._page(req, [self._watcher_json(w) for w in self.world.watchers()])
        if n >= 2 and low_rest[0] == "resourcegroups":
            rg_name = rest[1]
            with self.lock:
                rg = self.world.resource_group(rg_name)
            if rg is None:
                raise resource_group_not_found(rg_name)
            if n == 2:
                self._only(req, "GET")
                self._date_version(api_version)
                return 200, self._group_json(rg.name, rg.location), []
            if low_rest[2:] == ["resources"]:
                self._only(req, "GET")
                self._date_version(api_version)
                return self._list_resources(req, rg.name)
            if n >= 5 and low_rest[2] == "providers":
                if low_rest[3] == "microsoft.network" and n >= 5 and low_rest[4] == "networkwatchers":
                    return self._network(req, rg.name, rg.location, rest[5:], low_rest[5:], api_version)
                return self._generic(req, rg.name, rg.location, rest[3:], api_version)
        raise ArmError(404, "InvalidResourceType", f"The emulator does not serve '{req.path}'.")

    @staticmethod
    def _only(req: Request, *methods: str) -> None:
        if req.method not in methods:
            raise ArmError(
                405,
                "MethodNotAllowed",
                f"The requested resource does not support http method '{req.method}'.",
            )

    def _date_version(self, api_version: str) -> None:
        if not _DATE_VERSION.match(api_version):
            raise bad_request(
                "InvalidApiVersionParameter",
                f"The api-version '{api_version}' is invalid. The "
                "supported versions are in the form 'yyyy-mm-dd'.",
            )

    def _no_provider(self, api_version: str, rtype: str, location: str, versions: Iterable[str]) -> ArmError:
        # ARM wording (docs/EMULATOR.md, api-versions): 400 NoRegisteredProviderFound.
        locations = ", ".join(sorted(self.world.regions()))
        return bad_request(
            "NoRegisteredProviderFound",
            f"No registered resource provider found for location "
            f"'{location}' and API version '{api_version}' for type '{rtype}'. The supported "
            f"api-versions are '{', '.join(sorted(versions))}'. The supported locations are "
            f"'{locations}'.",
        )

    def _network_version(self, api_version: str, rtype: str, location: str = "") -> None:
        if api_version not in NETWORK_API_VERSIONS:
            raise self._no_provider(api_version, rtype, location, NETWORK_API_VERSIONS)

    # ------------------------------------------------------------ paging

    def _page(
        self,
        req: Request,
        items: list[dict[str, Any]],
        *,
        token_extra: dict[str, Any] | None = None,
        page_size: int | None = None,
    ) -> Reply:
        """``{"value": [...], "nextLink": <full URL incl. api-version>}`` (docs/EMULATOR.md, paging)."""
        offset = 0
        state: dict[str, Any] = dict(token_extra or {})
        token = req.query.get("$skiptoken")
        if token:
            state = _decode_token(token)
            offset = int(state.get("o", 0))
        size = int(state.get("n") or page_size or self.config.page_size)
        body: dict[str, Any] = {"value": items[offset : offset + size]}
        if offset + size < len(items):
            state.update({"o": offset + size, "n": size})
            api_version = req.query.get("api-version", "")
            body["nextLink"] = (
                f"{req.base_url}{req.path}?api-version={api_version}&$skiptoken={_encode_token(state)}"
            )
        return 200, body, []

    # ------------------------------------------------------------ Microsoft.Resources

    def _subscription_json(self) -> dict[str, Any]:
        w = self.world
        return {
            "id": f"/subscriptions/{w.subscription_id}",
            "subscriptionId": w.subscription_id,
            "tenantId": w.tenant_id,
            "displayName": w.subscription_name,
            "state": "Enabled",
            "subscriptionPolicies": {
                "locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01",
                "spendingLimit": "Off",
            },
            "authorizationSource": "RoleBased",
        }

    def _group_json(self, name: str, location: str) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{self.world.subscription_id}/resourceGroups/{name}",
            "name": name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "properties": {"provisioningState": "Succeeded"},
        }

    def _all_resources(self) -> list[dict[str, Any]]:
        with self.lock:
            cache = self._resource_cache
            if cache is not None and cache[0] == self.world.version:
                return cache[1]
            items: list[dict[str, Any]] = []
            for r in self.world.iter_resources():
                items.append(self._list_item(r))
                if isinstance(r, VirtualMachine):  # ARM lists VM extensions as resources too
                    items.extend(
                        {
                            "id": e["id"],
                            "name": f"{r.name}/{e['name']}",
                            "type": e["type"],
                            "location": r.location,
                        }
                        for e in self._vm_extensions(r)
                    )
            self._resource_cache = (self.world.version, items)
            return items

    @staticmethod
    def _list_item(
        r: VirtualMachine | ScaleSet | StorageAccount | NetworkWatcher | GenericResource,
    ) -> dict[str, Any]:
        rtype = {
            VirtualMachine: "Microsoft.Compute/virtualMachines",
            ScaleSet: "Microsoft.Compute/virtualMachineScaleSets",
            StorageAccount: "Microsoft.Storage/storageAccounts",
            NetworkWatcher: "Microsoft.Network/networkWatchers",
        }.get(type(r))
        if isinstance(r, GenericResource):
            rtype = r.type
        item: dict[str, Any] = {"id": r.id, "name": r.name, "type": rtype, "location": r.location}
        if isinstance(r, StorageAccount):
            item.update({"sku": {"name": r.sku, "tier": r.sku.split("_")[0]}, "kind": r.kind})
        if isinstance(r, VirtualMachine | ScaleSet):
            item["tags"] = dict(r.tags)
        return item

    def _list_resources(self, req: Request, resource_group: str | None) -> Reply:
        """``resources.list()`` / ``list_by_resource_group``: ``$filter`` (eq on resourceType / location /
        name /
        resourceGroup, substringof on name / resourceGroup, joined by ``and``) and ``$top`` (page size)."""
        token = req.query.get("$skiptoken")
        state = _decode_token(token) if token else {}
        filt = state.get("f") if token else req.query.get("$filter")
        top = state.get("n") if token else req.query.get("$top")
        items = self._all_resources()
        preds: list[Callable[[dict[str, Any]], bool]] = []
        if resource_group is not None:
            rg = fold(resource_group)
            preds.append(lambda it: fold(str(it["id"]).split("/")[4]) == rg)
        tag = _FILTER_TAG.match(str(filt)) if filt else None
        if tag:
            # Tag names are case-insensitive in ARM, tag values case-sensitive [DOC tag resources].
            name, value = fold(tag.group(1)), tag.group(2)
            preds.append(
                lambda it: any(
                    fold(k) == name and (value is None or v == value)
                    for k, v in (it.get("tags") or {}).items()
                )
            )
        elif filt:
            for clause in _AND.split(str(filt)):
                m = _FILTER_EQ.match(clause)
                s = _FILTER_SUB.match(clause)
                if m:
                    prop, value = fold(m.group(1)), fold(m.group(2))
                    preds.append(_eq_pred(prop, value))
                elif s:
                    value, prop = fold(s.group(1)), fold(s.group(2))
                    preds.append(_sub_pred(prop, value))
                else:
                    # The emulator supports a subset of ARM's $filter grammar (UNCONFIRMED code).
                    raise bad_request(
                        "InvalidFilterInQueryString",
                        f"The $filter '{filt}' is not supported by the "
                        "emulator: use eq on resourceType/location/name/resourceGroup or substringof on "
                        "name/resourceGroup, joined by 'and', or tagName eq '...' and tagValue eq '...'.",
                    )
        if preds:
            items = [it for it in items if all(p(it) for p in preds)]
        if tag and tag.group(2) is not None:
            # "When you filter by a tag name and value, the tags for each resource are not returned" [DOC].
            items = [{k: v for k, v in it.items() if k != "tags"} for it in items]
        size: int | None = None
        if top is not None:
            try:
                size = int(top)
            except ValueError as exc:
                raise bad_request("InvalidTopInQueryString", f"The $top '{top}' is invalid.") from exc
            if size < 1:
                raise bad_request("InvalidTopInQueryString", f"The $top '{top}' is invalid.")
        extra: dict[str, Any] = {"f": filt} if filt else {}
        return self._page(req, items, token_extra=extra, page_size=size)

    # ------------------------------------------------------------ generic (compute, storage, unrelated)

    def _generic(self, req: Request, rg: str, rg_location: str, rest: list[str], api_version: str) -> Reply:
        self._only(req, "GET")
        if len(rest) < 2:
            raise ArmError(404, "InvalidResourceType", f"The emulator does not serve '{req.path}'.")
        namespace = rest[0]
        types, names = rest[1::2], rest[2::2]
        collection = len(types) > len(names)  # ends with a type: list the children
        top_type = fold(f"{namespace}/{types[0]}")
        sub = self.world.subscription_id
        if fold(namespace) == "microsoft.compute":
            if api_version not in COMPUTE_API_VERSIONS:
                raise self._no_provider(api_version, "/".join(types), rg_location, COMPUTE_API_VERSIONS)
        else:
            self._date_version(api_version)
        if collection and not names:
            raise ArmError(404, "InvalidResourceType", f"The emulator does not list '{req.path}'.")
        top_id = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{namespace}/{types[0]}/{names[0]}"
        not_found = resource_not_found("/".join([namespace, *types[: len(names)]]), "/".join(names), rg)
        with self.lock:
            if top_type == "microsoft.compute/virtualmachines":
                vm = self.world.vm(top_id)
                if vm is None:
                    raise not_found
                tail = [fold(t) for t in types[1:]]
                if tail == [] and not collection:
                    return 200, self._vm_json(vm), []
                if tail == ["extensions"]:
                    exts = self._vm_extensions(vm)
                    if collection:
                        return 200, {"value": exts}, []
                    ext = next((e for e in exts if fold(e["name"]) == fold(names[1])), None)
                    if ext is None:
                        raise not_found
                    return 200, ext, []
                raise not_found
            if top_type == "microsoft.compute/virtualmachinescalesets":
                ss = self.world.scale_set(top_id)
                if ss is None:
                    raise not_found
                tail = [fold(t) for t in types[1:]]
                if tail == [] and not collection:
                    return 200, self._vmss_json(ss), []
                if tail == ["extensions"]:
                    exts = self._vmss_extensions(
                        ss, ss.id, "Microsoft.Compute/virtualMachineScaleSets/extensions"
                    )
                    return self._child(exts, names, collection, not_found)
                if tail == ["virtualmachines"]:
                    if collection:
                        return 200, {"value": [self._vmss_vm_json(ss, i) for i in ss.instances]}, []
                    if not ss.has_instance(names[1]):
                        raise not_found
                    return 200, self._vmss_vm_json(ss, names[1]), []
                if tail == ["virtualmachines", "extensions"]:
                    if not ss.has_instance(names[1]):
                        raise not_found
                    exts = self._vmss_extensions(
                        ss,
                        ss.instance_id(names[1]),
                        "Microsoft.Compute/virtualMachineScaleSets/virtualMachines/extensions",
                    )
                    return self._child(exts, names, collection, not_found)
                raise not_found
            if len(types) == 1 and not collection:
                st = self.world.storage_account(top_id)
                if st is not None:
                    return 200, self._storage_json(st), []
                gen = self.world.generic(top_id)
                if gen is not None:
                    return (
                        200,
                        {
                            **self._list_item(gen),
                            "tags": {},
                            "properties": {"provisioningState": "Succeeded"},
                        },
                        [],
                    )
            raise not_found

    @staticmethod
    def _child(items: list[dict[str, Any]], names: list[str], collection: bool, not_found: ArmError) -> Reply:
        if collection:
            return 200, {"value": items}, []
        found = next((e for e in items if fold(e["name"]) == fold(names[-1])), None)
        if found is None:
            raise not_found
        return 200, found, []

    @staticmethod
    def _ext_json(
        ext_id: str, rtype: str, location: str | None, name: str, publisher: str, etype: str, version: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "id": ext_id, "type": rtype}
        if location:
            body["location"] = location
        body["properties"] = {
            "autoUpgradeMinorVersion": True,
            "provisioningState": "Succeeded",
            "publisher": publisher,
            "type": etype,
            "typeHandlerVersion": version,
            "settings": {},
        }
        return body

    def _vm_extensions(self, vm: VirtualMachine) -> list[dict[str, Any]]:
        return [
            self._ext_json(
                f"{vm.id}/extensions/{e.name}",
                "Microsoft.Compute/virtualMachines/extensions",
                vm.location,
                e.name,
                e.publisher,
                e.type,
                e.type_handler_version,
            )
            for e in vm.extensions
        ]

    def _vmss_extensions(self, ss: ScaleSet, parent: str, rtype: str) -> list[dict[str, Any]]:
        return [
            self._ext_json(
                f"{parent}/extensions/{e.name}",
                rtype,
                None,
                e.name,
                e.publisher,
                e.type,
                e.type_handler_version,
            )
            for e in ss.extensions
        ]

    def _vm_json(self, vm: VirtualMachine) -> dict[str, Any]:
        # Compute VM shape (docs/EMULATOR.md, read a VM): name, id, type, location, properties.vmId /
        # provisioningState / storageProfile.osDisk.osType; "resources" lists the child extensions as
        # the compute API does.
        body: dict[str, Any] = {
            "name": vm.name,
            "id": vm.id,
            "type": "Microsoft.Compute/virtualMachines",
            "location": vm.location,
            "tags": dict(vm.tags),
            "properties": {
                "vmId": vm.vm_id,
                "hardwareProfile": {"vmSize": vm.size},
                "storageProfile": {
                    "osDisk": {
                        "osType": vm.os_type,
                        "name": f"{vm.name}_OsDisk_1",
                        "createOption": "FromImage",
                        "caching": "ReadWrite",
                        "diskSizeGB": 30,
                    }
                },
                "osProfile": {"computerName": vm.name, "adminUsername": "azureuser"},
                "provisioningState": "Succeeded",
            },
        }
        exts = self._vm_extensions(vm)
        if exts:
            body["resources"] = exts
        return body

    def _vmss_json(self, ss: ScaleSet) -> dict[str, Any]:
        return {
            "name": ss.name,
            "id": ss.id,
            "type": "Microsoft.Compute/virtualMachineScaleSets",
            "location": ss.location,
            "tags": dict(ss.tags),
            "sku": {"name": ss.size, "tier": "Standard", "capacity": len(ss.instances)},
            "properties": {
                "uniqueId": ss.instance_vm_id("scale-set"),
                "provisioningState": "Succeeded",
                "upgradePolicy": {"mode": "Manual"},
                "virtualMachineProfile": {
                    "storageProfile": {"osDisk": {"osType": ss.os_type, "createOption": "FromImage"}},
                    "extensionProfile": {
                        "extensions": [
                            {
                                "name": e.name,
                                "properties": {
                                    "publisher": e.publisher,
                                    "type": e.type,
                                    "typeHandlerVersion": e.type_handler_version,
                                    "autoUpgradeMinorVersion": True,
                                },
                            }
                            for e in ss.extensions
                        ]
                    },
                },
            },
        }

    def _vmss_vm_json(self, ss: ScaleSet, instance: str) -> dict[str, Any]:
        return {
            "name": f"{ss.name}_{instance}",
            "id": ss.instance_id(instance),
            "instanceId": instance,
            "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
            "location": ss.location,
            "sku": {"name": ss.size, "tier": "Standard"},
            "properties": {
                "vmId": ss.instance_vm_id(instance),
                "latestModelApplied": True,
                "provisioningState": "Succeeded",
                "hardwareProfile": {"vmSize": ss.size},
                "storageProfile": {"osDisk": {"osType": ss.os_type, "createOption": "FromImage"}},
                "osProfile": {
                    "computerName": f"{ss.name}{int(instance):06x}" if instance.isdigit() else instance
                },
            },
        }

    @staticmethod
    def _storage_json(st: StorageAccount) -> dict[str, Any]:
        return {
            "id": st.id,
            "name": st.name,
            "type": "Microsoft.Storage/storageAccounts",
            "location": st.location,
            "sku": {"name": st.sku, "tier": st.sku.split("_")[0]},
            "kind": st.kind,
            "tags": {},
            "properties": {
                "provisioningState": "Succeeded",
                "primaryEndpoints": {"blob": f"https://{st.name}.blob.core.windows.net/"},
            },
        }

    # ------------------------------------------------------------ Microsoft.Network

    @staticmethod
    def _watcher_json(w: NetworkWatcher) -> dict[str, Any]:
        # [REC], docs/EMULATOR.md list watchers (runningOperationIds is in [REC] though not in the swagger).
        return {
            "name": w.name,
            "id": w.id,
            "etag": w.etag,
            "type": "Microsoft.Network/networkWatchers",
            "location": w.location,
            "tags": {},
            "properties": {"provisioningState": "Succeeded", "runningOperationIds": []},
        }

    def _network(
        self, req: Request, rg: str, rg_location: str, rest: list[str], low: list[str], api_version: str
    ) -> Reply:
        self._network_version(
            api_version, "networkWatchers" if len(rest) < 2 else "networkWatchers/packetCaptures", rg_location
        )
        if not rest:
            self._only(req, "GET")
            rgl = fold(rg)
            return self._page(
                req, [self._watcher_json(w) for w in self.world.watchers() if fold(w.resource_group) == rgl]
            )
        watcher_id = (
            f"/subscriptions/{self.world.subscription_id}/resourceGroups/{rg}"
            f"/providers/Microsoft.Network/networkWatchers/{rest[0]}"
        )
        with self.lock:
            watcher = self.world.watcher(watcher_id)
        if watcher is None:
            raise resource_not_found("Microsoft.Network/networkWatchers", rest[0], rg)
        n = len(rest)
        if n == 1:
            # network_watchers.create_or_update / delete are not emulated.
            self._only(req, "GET")
            return 200, self._watcher_json(watcher), []
        if low[1] != "packetcaptures" or n > 4:
            raise ArmError(404, "InvalidResourceType", f"The emulator does not serve '{req.path}'.")
        if n == 2:
            self._only(req, "GET")
            with self.lock:
                caps = list(self.by_watcher.get(fold(watcher.id), {}).values())
                items = [c.resource_json(req.now) for c in caps]
            return self._page(req, items)
        name = rest[2]
        if n == 3:
            self._only(req, "GET", "PUT", "DELETE")
            if req.method == "PUT":
                return self._create(req, watcher, name, api_version)
            if req.method == "DELETE":
                return self._delete(req, watcher, name, api_version)
            cap = self._capture(watcher, name)
            with self.lock:
                return 200, cap.resource_json(req.now), []
        self._only(req, "POST")
        if low[3] == "querystatus":
            return self._query_status(req, watcher, name, api_version)
        if low[3] == "stop":
            return self._stop(req, watcher, name, api_version)
        raise ArmError(404, "InvalidResourceType", f"The emulator does not serve '{req.path}'.")

    def _capture(self, watcher: NetworkWatcher, name: str) -> Capture:
        with self.lock:
            cap = self.by_watcher.get(fold(watcher.id), {}).get(fold(name))
        if cap is None:
            # Network RP body for a missing child resource: UNCONFIRMED (docs/EMULATOR.md).
            raise ArmError(404, "NotFound", f"Resource {watcher.id}/packetCaptures/{name} not found.")
        return cap

    def _op_urls(self, req: Request, op: Operation) -> tuple[str, str]:
        sub = self.world.subscription_id
        base = f"{req.base_url}/subscriptions/{sub}/providers/Microsoft.Network/locations/{op.region}"
        return (
            f"{base}/operations/{op.id}?api-version={op.api_version}",
            f"{base}/operationResults/{op.id}?api-version={op.api_version}",
        )

    def _new_op(self, kind: str, capture: Capture, now: float, api_version: str) -> Operation:
        op = Operation(str(uuid.uuid4()), kind, capture.region, capture, now, api_version)
        self.operations[op.id] = op
        if len(self.operations) > 50_000:
            for key in list(itertools.islice(self.operations, 10_000)):
                del self.operations[key]
        return op

    def _retry_after(self) -> list[tuple[str, str]]:
        ra = self.config.retry_after
        if ra <= 0:
            return []
        return [("Retry-After", str(int(ra)) if float(ra).is_integer() else str(ra))]

    def add_capture(self, capture: Capture) -> None:
        """Store a validated capture (lock held), enforcing the per-region session limit."""
        count = sum(
            len(c)
            for k, c in self.by_watcher.items()
            if (w := self.world.watcher(k)) is not None and w.location == capture.region
        )
        limit = self.world.session_limit_per_region
        if count >= limit:
            # Limit documented ("10,000 per region per subscription" [DOC]); status and code UNCONFIRMED.
            raise bad_request(
                "PacketCaptureSessionLimitExceeded",
                f"The limit of {limit} packet capture sessions in "
                f"region '{capture.region}' for subscription '{self.world.subscription_id}' has been "
                "reached. Delete packet captures that are no longer needed and retry.",
            )
        self.captures[capture.key] = capture
        self.by_watcher.setdefault(fold(capture.watcher.id), {})[fold(capture.name)] = capture
        self._schedule(capture)

    def _create(self, req: Request, watcher: NetworkWatcher, name: str, api_version: str) -> Reply:
        check_name(name)
        with self.lock:
            if fold(name) in self.by_watcher.get(fold(watcher.id), {}):
                # No documented duplicate-name error 409 is the emulator's choice (UNCONFIRMED,
                # docs/EMULATOR.md);
                # the SDK raises ResourceExistsError. Never 200: the SDK accepts only 201.
                raise ArmError(
                    409,
                    "PacketCaptureAlreadyExists",
                    f"A packet capture named '{name}' already exists "
                    f"in network watcher '{watcher.name}'. Delete it first or use another name.",
                    "name",
                )
            cap = build_capture(
                self.world,
                watcher,
                name,
                req.body,
                now=req.now,
                agent_start_seconds=self.config.agent_start_seconds,
                provisioning_seconds=self.config.operation_seconds,
            )
            self.add_capture(cap)
            op = self._new_op("create", cap, req.now, api_version)
            body = cap.resource_json(req.now)
        async_url, _ = self._op_urls(req, op)
        # [REC]: 201 Created, provisioningState Updating,
        # Azure-AsyncOperation: .../providers/Microsoft.Network/locations/{region}/operations/{guid}.
        return 201, body, [("Azure-AsyncOperation", async_url), *self._retry_after()]

    def _delete(self, req: Request, watcher: NetworkWatcher, name: str, api_version: str) -> Reply:
        with self.lock:
            cap = self.by_watcher.get(fold(watcher.id), {}).get(fold(name))
            if cap is None:
                return (
                    204,
                    _NO_BODY,
                    [],
                )  # deleting a missing resource: 204, as ARM does (UNCONFIRMED for NRP)
            # Deleting a running capture stops it first (the agent then uploads the file): UNCONFIRMED.
            cap.request_stop(req.now)
            self._schedule_stop(cap)
            del self.by_watcher[fold(watcher.id)][fold(name)]
            self.captures.pop(cap.key, None)
            op = self._new_op("delete", cap, req.now, api_version)
        async_url, location = self._op_urls(req, op)
        # [REC]: 202 with both Azure-AsyncOperation and Location.
        return (
            202,
            _NO_BODY,
            [("Azure-AsyncOperation", async_url), ("Location", location), *self._retry_after()],
        )

    def _schedule_stop(self, cap: Capture) -> None:
        if cap.stop_requested_at is not None:
            heapq.heappush(self._events, (cap.stop_requested_at, next(self._seq), cap))
            self.on_new_event()

    def _stop(self, req: Request, watcher: NetworkWatcher, name: str, api_version: str) -> Reply:
        cap = self._capture(watcher, name)
        with self.lock:
            cap.request_stop(req.now)
            self._schedule_stop(cap)
            op = self._new_op("stop", cap, req.now, api_version)
        async_url, location = self._op_urls(req, op)
        # [REC]: 202, empty body, Azure-AsyncOperation + Location.
        return (
            202,
            _NO_BODY,
            [("Azure-AsyncOperation", async_url), ("Location", location), *self._retry_after()],
        )

    def _query_status(self, req: Request, watcher: NetworkWatcher, name: str, api_version: str) -> Reply:
        cap = self._capture(watcher, name)
        with self.lock:
            op = self._new_op("queryStatus", cap, req.now, api_version)
            body = cap.status_json(req.now)
        _, location = self._op_urls(req, op)
        # [REC]: 202 + Location (operationResults) with the status in the body; the Location GET answers 200.
        return 202, body, [("Location", location), *self._retry_after()]

    def _get_operation(self, req: Request, op_id: str) -> Reply:
        with self.lock:
            op = self.operations.get(op_id)
            if op is None:
                raise ArmError(404, "OperationNotFound", f"Operation {op_id} was not found.")  # UNCONFIRMED
            op.polls += 1
            if not op.done(req.now, self.config):
                return 200, {"status": "InProgress"}, self._retry_after()
            cap = op.capture
            if op.kind == "create":
                cap.provisioned = True
                err = cap.behaviour.provisioning_error
                if err is not None:
                    # Failed LRO -> SDK raises HttpResponseError "(code) message" (docs/EMULATOR.md, create).
                    return 200, {"status": "Failed", "error": {"code": err[0], "message": err[1]}}, []
                return 200, {"status": "Succeeded"}, []
            if op.kind == "stop":
                return 200, {"status": "Succeeded", "properties": {}}, []  # [REC]
            return 200, {"status": "Succeeded"}, []  # delete [REC]

    def _get_operation_result(self, req: Request, op_id: str) -> Reply:
        with self.lock:
            op = self.operations.get(op_id)
            if op is None:
                raise ArmError(404, "OperationNotFound", f"Operation {op_id} was not found.")  # UNCONFIRMED
            op.polls += 1
            if not op.done(req.now, self.config):
                _, location = self._op_urls(req, op)
                return 202, _NO_BODY, [("Location", location), *self._retry_after()]
            if op.kind == "queryStatus":
                return 200, op.capture.status_json(req.now), []  # [REC]
            if op.kind == "stop":
                return 200, None, []  # [REC]: 200 with body null
            if op.kind == "delete":
                return 204, _NO_BODY, []
            op.capture.provisioned = True
            return 200, op.capture.resource_json(req.now), []


def _eq_pred(prop: str, value: str) -> Callable[[dict[str, Any]], bool]:
    if prop == "resourcegroup":
        return lambda it: fold(str(it["id"]).split("/")[4]) == value
    key = {"resourcetype": "type", "location": "location", "name": "name"}[prop]
    return lambda it: fold(str(it.get(key, ""))) == value


def _sub_pred(prop: str, value: str) -> Callable[[dict[str, Any]], bool]:
    if prop == "resourcegroup":
        return lambda it: value in fold(str(it["id"]).split("/")[4])
    return lambda it: value in fold(str(it.get("name", "")))


NO_BODY = _NO_BODY
__all__ = [
    "NETWORK_API_VERSION",
    "NO_BODY",
    "ArmConfig",
    "ArmService",
    "Operation",
    "Request",
    "parse_resource_id",
]
