"""Azure access: one credential and one client per subscription, bounded by the webhook's budget.

Everything Azure goes through `Arm`. It owns the three things that make the webhook fast and safe:
clients built once per process (connection reuse), small caches of facts that do not change
(a VM's region, a region's watcher), and a deadline that bounds every SDK call and its retries, so
that a throttling or slow ARM turns into a clear 503 instead of a webhook timeout.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from capture.resource_ids import ResourceId, fold, parse_resource_id, region_name
from capture.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.network.models import PacketCapture, PacketCaptureResult
    from azure.mgmt.resource.resources import ResourceManagementClient


__all__ = [
    "Arm",
    "ArmError",
    "CallScope",
    "CaptureInfo",
    "CaptureStatus",
    "DeadlineExceeded",
    "Tagged",
    "VmFacts",
    "Watcher",
    "call_scope",
    "remaining",
    "watcher_from_id",
]
T = TypeVar("T")

TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# How long region and watcher facts are trusted; a stale entry only costs one failed call.
CACHE_SECONDS = 3600.0
SUBSCRIPTIONS_API_VERSION = "2022-12-01"
POOL_SIZE = 32
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
# The Microsoft.Network api-version azure-mgmt-network 33.1 sends, used for the raw capture list.
NETWORK_API_VERSION = "2026-03-01"


class ArmError(Exception):
    """An Azure failure, classified for the HTTP contract: transient (503) or not (502)."""

    def __init__(
        self, code: str, message: str, *, status: int | None = None, transient: bool = False
    ) -> None:
        super().__init__(f"({code}) {message}")
        self.code = code
        self.message = message
        self.status = status
        self.transient = transient


class DeadlineExceeded(Exception):
    """Raised by the retry policy instead of sleeping past the caller's deadline.

    Deliberately not an AzureError, so that azure-core's retry loop does not catch and retry it.
    """

    def __init__(self, status: int | None) -> None:
        super().__init__("the time budget ran out while Azure asked to wait")
        self.status = status


@dataclass
class CallScope:
    """Per-call state of one webhook target, scheduler run or report: its deadline, the ARM requests sent."""

    deadline: float | None = None
    calls: int = 0

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


# The one context variable: which CallScope the SDK calls of this thread/task belong to. It holds no
# process state; the scope lives as long as the `with call_scope()` block.
_scope: contextvars.ContextVar[CallScope | None] = contextvars.ContextVar("arm_call_scope", default=None)


@contextmanager
def call_scope(seconds: float | None = None) -> Iterator[CallScope]:
    """Count the ARM requests (retries included) sent in this block, and bound them to `seconds`."""
    scope = CallScope(None if seconds is None else time.monotonic() + seconds)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


def remaining() -> float | None:
    scope = _scope.get()
    return None if scope is None else scope.remaining()


def _on_request(_request: Any) -> None:
    scope = _scope.get()
    if scope is not None:
        scope.calls += 1


def _retry_policy() -> Any:
    """azure-core's RetryPolicy that gives up rather than sleep beyond the deadline."""
    from azure.core.pipeline.policies import RetryPolicy

    class DeadlineRetryPolicy(RetryPolicy):  # type: ignore[type-arg]
        def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
            left = remaining()
            if left is not None:
                wait = self.get_retry_after(response) if response is not None else None
                if wait is None:
                    wait = self.get_backoff_time(settings)
                if wait + 0.05 >= left:
                    status = response.http_response.status_code if response is not None else None
                    raise DeadlineExceeded(status)
            super().sleep(settings, transport, response)

    return DeadlineRetryPolicy(retry_total=3, retry_backoff_factor=0.3, retry_backoff_max=2.0)


def _timeouts() -> dict[str, float]:
    """Per-call socket timeouts that fit the remaining budget."""
    left = remaining()
    if left is None:
        return {"connection_timeout": 10.0, "read_timeout": 30.0}
    if left <= 0.05:
        raise DeadlineExceeded(None)
    return {"connection_timeout": min(3.0, left), "read_timeout": left, "timeout": left}


@dataclass(frozen=True)
class CaptureInfo:
    """What the app reads of a packet capture resource (from a list page or a create answer)."""

    name: str
    id: str | None
    target: str | None
    target_type: str | None
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    provisioning_state: str | None
    time_limit_seconds: int | None
    storage_id: str | None
    storage_path: str | None
    file_path: str | None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> CaptureInfo:
        """From the wire format (PacketCaptureResult); unknown or missing fields become None."""
        props = doc.get("properties") or {}
        scope = props.get("scope") or {}
        storage = props.get("storageLocation") or {}
        limit = props.get("timeLimitInSeconds")
        return cls(
            name=str(doc.get("name") or ""),
            id=doc.get("id"),
            target=props.get("target"),
            target_type=props.get("targetType"),
            include=tuple(str(i) for i in scope.get("include") or ()),
            exclude=tuple(str(i) for i in scope.get("exclude") or ()),
            provisioning_state=props.get("provisioningState"),
            time_limit_seconds=limit if isinstance(limit, int) else None,
            storage_id=storage.get("storageId"),
            storage_path=storage.get("storagePath"),
            file_path=storage.get("filePath") or storage.get("localPath"),
        )


ACTIVE_STATUSES = frozenset({"notstarted", "running", "unknown"})
TERMINAL_STATUSES = frozenset({"stopped", "error"})


@dataclass(frozen=True)
class CaptureStatus:
    """A capture's queryStatus answer, in wire text ("NotStarted", "TimeExceeded", "AgentStopped")."""

    status: str
    start_time: datetime | None = None
    stop_reason: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        """Not started yet, running, or not known to have ended: it still occupies the VM."""
        return fold(self.status) in ACTIVE_STATUSES

    @property
    def ended(self) -> bool:
        return fold(self.status) in TERMINAL_STATUSES


@dataclass(frozen=True)
class VmFacts:
    """What one VM lookup tells the app: the region (for the watcher) and the OS (for local paths)."""

    location: str
    os_type: str | None  # "Linux" / "Windows", None when Azure did not say


@dataclass(frozen=True)
class Tagged:
    """A resource found by its tag: what the recorder needs to arm it without reading it."""

    id: str
    type: str
    location: str


@dataclass(frozen=True)
class Watcher:
    """A regional Network Watcher, as found by location."""

    id: str
    subscription: str
    resource_group: str
    name: str
    location: str


class _TtlCache:
    """A tiny thread-safe cache; its entries are hints that ARM confirms on use."""

    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._data: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> Any:
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] < time.monotonic():
                return None
            return hit[1]

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + self._ttl, value)

    def drop(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)


class Arm:
    """The app's Azure access, shared by every invocation in the process."""

    def __init__(self, settings: Settings, credential: TokenCredential | None = None) -> None:
        self.settings = settings
        self._credential = credential
        self._lock = threading.Lock()
        self._network: dict[str, NetworkManagementClient] = {}
        self._resources: dict[str, ResourceManagementClient] = {}
        self.regions = _TtlCache(CACHE_SECONDS)
        self.watchers = _TtlCache(CACHE_SECONDS)

    # -- clients ---------------------------------------------------------------------------------

    def credential(self) -> TokenCredential:
        with self._lock:
            if self._credential is None:
                from azure.identity import DefaultAzureCredential

                # Managed identity in Azure (AZURE_CLIENT_ID selects a user-assigned one); the
                # emulator's identity endpoint locally. Nothing interactive, no secrets in settings.
                self._credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
            return self._credential

    def _client_kwargs(self) -> dict[str, Any]:
        return {
            "base_url": self.settings.arm_endpoint,
            "retry_policy": _retry_policy(),
            "raw_request_hook": _on_request,
            "polling_interval": 1,
            "transport": self._transport(),
        }

    def _transport(self) -> Any:
        """A keep-alive connection pool sized for concurrent deliveries (requests' default is 10).

        Without a proxy configured, requests' per-call scan of proxy and CA variables is skipped (about
        0.6 ms a call); the CA bundle a test or the local emulator sets is still honoured.
        """
        import requests
        from azure.core.pipeline.transport import RequestsTransport

        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
        session.mount("https://", adapter)
        proxied = any(os.environ.get(name) for name in _PROXY_VARIABLES)
        verify: bool | str = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.trust_env = proxied
        return RequestsTransport(
            session=session, session_owner=False, use_env_settings=proxied, connection_verify=verify
        )

    def network(self, subscription: str) -> NetworkManagementClient:
        from azure.mgmt.network import NetworkManagementClient

        client: NetworkManagementClient = self._client(self._network, NetworkManagementClient, subscription)
        return client

    def resources(self, subscription: str) -> ResourceManagementClient:
        from azure.mgmt.resource.resources import ResourceManagementClient

        client: ResourceManagementClient = self._client(
            self._resources, ResourceManagementClient, subscription
        )
        return client

    def _client(self, cache: dict[str, Any], factory: Callable[..., Any], subscription: str) -> Any:
        """One client per subscription and kind, built on first use and shared by every thread."""
        key = fold(subscription)
        client = cache.get(key)
        if client is None:
            credential = self.credential()
            with self._lock:
                client = cache.get(key)
                if client is None:
                    client = cache[key] = factory(credential, subscription, **self._client_kwargs())
        return client

    # -- calls -----------------------------------------------------------------------------------

    def call(self, operation: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK operation within the deadline and translate its failures into ArmError."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            return operation(*args, **_timeouts(), **kwargs)
        except DeadlineExceeded as exc:
            detail = f" (ARM answered {exc.status})" if exc.status else ""
            raise ArmError(
                "AzureTimeBudgetExceeded",
                f"Azure did not answer within the webhook's time budget{detail}; retry later",
                status=exc.status,
                transient=True,
            ) from None
        except ClientAuthenticationError as exc:
            raise ArmError(
                _code(exc, "AuthenticationFailed"),
                f"the app's identity could not authenticate to Azure: {_message(exc)}",
                status=401,
            ) from None
        except HttpResponseError as exc:
            status = exc.status_code
            raise ArmError(
                _code(exc, f"Http{status}"),
                _message(exc),
                status=status,
                transient=status in TRANSIENT_STATUSES,
            ) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise ArmError(
                "AzureUnreachable",
                f"Azure Resource Manager could not be reached: {type(exc).__name__}",
                transient=True,
            ) from None

    def known_vm(self, target: ResourceId) -> VmFacts | None:
        """What an earlier lookup found about the VM (no Azure call)."""
        cached: VmFacts | None = self.regions.get(target.key)
        return cached

    def vm_facts(self, target: ResourceId) -> VmFacts:
        """The target's region and OS: cached per VM, else one GET through azure-mgmt-resource (the
        same answer carries both, so knowing the OS costs no extra call)."""
        cached = self.known_vm(target)
        if cached:
            return cached
        resource = self.call(
            self.resources(target.subscription).resources.get_by_id,
            target.raw,
            api_version=self.settings.compute_api_version,
        )
        location = region_name(resource.location or "")
        if not location:
            raise ArmError("LocationUnknown", f"Azure returned no usable location for {target.raw}")
        facts = VmFacts(location, _os_type(resource.properties))
        self.regions.put(target.key, facts)
        return facts

    def watcher(self, subscription: str, region: str) -> Watcher:
        """The subscription's Network Watcher in `region`, found by location, never by name."""
        key = f"{fold(subscription)}|{fold(region)}"
        cached: Watcher | None = self.watchers.get(key)
        if cached:
            return cached
        found = None
        for watcher in self.list_watchers(subscription):
            self.watchers.put(f"{fold(subscription)}|{watcher.location}", watcher)
            if watcher.location == fold(region):
                found = watcher
        if found is None:
            raise ArmError("NetworkWatcherNotFound", _no_watcher(subscription, region))
        return found

    def forget_watcher(self, watcher: Watcher) -> None:
        self.watchers.drop(f"{fold(watcher.subscription)}|{watcher.location}")

    def list_watchers(self, subscription: str) -> list[Watcher]:
        client = self.network(subscription)
        return [
            _watcher(w.id, w.location)
            for w in self.call(lambda **kw: list(client.network_watchers.list_all(**kw)))
            if w.id and w.location
        ]

    def list_captures(self, watcher: Watcher) -> list[CaptureInfo]:
        """Every capture on the watcher, all pages.

        This is the hot path's one read, so it goes through the client's own pipeline (auth, retries,
        deadline) but reads the JSON directly: building SDK models costs ~0.3 ms per capture, which on a
        busy watcher (100 captures) was half of the webhook's own time.
        """
        client = self.network(watcher.subscription)
        url = f"{watcher.id}/packetCaptures?api-version={NETWORK_API_VERSION}"
        return [CaptureInfo.from_json(item) for item in self._items(client, url)]

    def _items(self, client: Any, url: str | None) -> Iterator[dict[str, Any]]:
        """The `value` items of an ARM list, following `nextLink` (a complete URL, as ARM sends it)."""
        from azure.core.rest import HttpRequest

        while url:
            request = HttpRequest("GET", url, headers={"Accept": "application/json"})
            response = self.call(client.send_request, request)
            if response.status_code != 200:
                raise _response_error(response)
            page = response.json()
            yield from page.get("value") or []
            url = page.get("nextLink")

    def create_capture(self, watcher: Watcher, name: str, body: PacketCapture) -> CaptureInfo:
        """PUT the capture and return as soon as ARM accepted it (201): no waiting on the LRO."""
        client = self.network(watcher.subscription)
        poller = self.call(
            client.packet_captures.begin_create,
            watcher.resource_group,
            watcher.name,
            name,
            body,
            polling=False,
        )
        result: PacketCaptureResult = poller.result()
        return CaptureInfo.from_json(result.as_dict())

    def get_capture(self, watcher: Watcher, name: str) -> CaptureInfo | None:
        """The capture resource as it is now; None when it no longer exists (already reported)."""
        client = self.network(watcher.subscription)
        try:
            result = self.call(client.packet_captures.get, watcher.resource_group, watcher.name, name)
        except ArmError as exc:
            if exc.status == 404:
                return None
            raise
        return CaptureInfo.from_json(result.as_dict())

    def capture_status(self, watcher: Watcher, name: str) -> CaptureStatus:
        """queryStatus; its first answer carries the status, so one call usually suffices."""
        client = self.network(watcher.subscription)
        poller = self.call(
            client.packet_captures.begin_get_status, watcher.resource_group, watcher.name, name, polling=False
        )
        result = poller.result()
        if result is None or result.packet_capture_status is None:
            result = self.call(
                lambda **kw: client.packet_captures.begin_get_status(
                    watcher.resource_group, watcher.name, name, polling_interval=0.2, **kw
                ).result()
            )
        return CaptureStatus(
            status=_text(result.packet_capture_status) or "Unknown",
            start_time=result.capture_start_time,
            stop_reason=result.stop_reason,
            errors=tuple(_text(e) or "" for e in result.packet_capture_error or ()),
        )

    def delete_capture(self, watcher: Watcher, name: str) -> bool:
        """Start deleting; False when it was already gone (another report of the capture got there first)."""
        client = self.network(watcher.subscription)
        try:
            self.call(
                client.packet_captures.begin_delete, watcher.resource_group, watcher.name, name, polling=False
            )
        except ArmError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def stop_capture(self, watcher: Watcher, name: str) -> None:
        """Ask Network Watcher to stop a capture; returns once ARM accepted (202), no waiting on the LRO."""
        client = self.network(watcher.subscription)
        self.call(
            client.packet_captures.begin_stop, watcher.resource_group, watcher.name, name, polling=False
        )

    def tagged(self, subscription: str, tag: str, value: str) -> list[Tagged]:
        """The subscription's resources tagged `tag: value`, in one list (ARM filters; no tags come back)."""
        client = self.resources(subscription)
        flt = f"tagName eq '{tag}' and tagValue eq '{value}'"
        return [
            Tagged(str(r.id), str(r.type or ""), (r.location or "").replace(" ", "").casefold())
            for r in self.call(lambda **kw: list(client.resources.list(filter=flt, **kw)))
            if r.id
        ]

    def list_subscriptions(self) -> list[str]:
        """Subscriptions the identity can see (used when no allowed scopes are configured)."""
        client = self.resources("00000000-0000-0000-0000-000000000000")
        url = f"/subscriptions?api-version={SUBSCRIPTIONS_API_VERSION}"
        return [str(item["subscriptionId"]) for item in self._items(client, url)]


def _no_watcher(subscription: str, region: str) -> str:
    """The message for a region without a watcher; the suggested command is built from a checked
    region name only (never from raw payload text)."""
    name = region_name(region)
    text = f"subscription {subscription} has no Network Watcher in region '{name or 'unknown'}'."
    if name is None:
        return f"{text} Enable Network Watcher in the VM's region (portal: Network Watcher > Overview > Add)."
    return (
        f"{text} Enable it with `az network watcher configure --locations {name} --enabled true "
        "--resource-group NetworkWatcherRG` (or in the portal: Network Watcher > Overview > Add)."
    )


def _os_type(properties: Any) -> str | None:
    """`storageProfile.osDisk.osType` of a VM (or scale-set instance) resource: "Linux" / "Windows"."""
    value: Any = properties
    for key in ("storageProfile", "osDisk", "osType"):
        value = value.get(key) if isinstance(value, dict) else None
    return {"linux": "Linux", "windows": "Windows"}.get(fold(value)) if isinstance(value, str) else None


def _response_error(response: Any) -> ArmError:
    """An ArmError from a raw response, classified like the SDK operations' errors."""
    status = int(response.status_code)
    try:
        error = (response.json() or {}).get("error") or {}
    except ValueError:
        error = {}
    return ArmError(
        str(error.get("code") or f"Http{status}"),
        str(error.get("message") or f"ARM answered {status}")[:500],
        status=status,
        transient=status in TRANSIENT_STATUSES,
    )


def _text(value: Any) -> str | None:
    """An SDK enum or string as its wire text ("NotStarted", not "PcStatus.NOT_STARTED")."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def watcher_from_id(resource_id: str, location: str) -> Watcher:
    """A watcher from its ID and region (as a queue message carries it); raises InvalidResourceId."""
    return _watcher(resource_id, location)


def _watcher(resource_id: str, location: str) -> Watcher:
    rid = parse_resource_id(resource_id)
    return Watcher(
        id=resource_id,
        subscription=rid.subscription,
        resource_group=rid.resource_group,
        name=rid.names[-1],
        location=fold(location.replace(" ", "")),
    )


def _code(exc: Any, default: str) -> str:
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", None) or default)


def _message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return str(message).splitlines()[0][:500]
