"""``Emulator``: ARM over HTTPS + the App Service managed-identity endpoint, on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from .arm import NO_BODY, ArmConfig, ArmService, Request
from .captures import Capture, StoppedCapture, build_capture
from .clock import Clock
from .errors import ArmError
from .faults import FaultRule, Faults
from .server import HttpServer, Response, tls_context
from .tls import ensure_certificate
from .tokens import ARM_AUDIENCES, TokenError, TokenIssuer
from .world import Identity, NetworkWatcher, ScaleSet, VirtualMachine, World, fold

_LOG = logging.getLogger("emulator")
IDENTITY_PATH = "/msi/token"
IDENTITY_API_VERSION = (
    "2019-08-01"  # what azure-identity 1.27 / msal send for App Service [SDK msal/managed_identity.py]
)

StoppedHook = Callable[[StoppedCapture], None]
# Settings that would make DefaultAzureCredential use another identity than the emulator's endpoint:
# whoever points an app at the emulator removes them.
FOREIGN_CREDENTIAL_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_USERNAME",
    "AZURE_FEDERATED_TOKEN_FILE",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
)


@dataclass(frozen=True)
class RequestRecord:
    """One served request. ``status`` 0 = connection dropped without an answer (injected fault)."""

    timestamp: float  # wall-clock epoch seconds when the request arrived
    endpoint: str  # "arm" or "identity"
    method: str
    path: str
    query: dict[str, str]
    status: int
    duration: float  # seconds spent in the emulator, injected latency included
    user_agent: str
    client: str  # first User-Agent product, e.g. "azsdk-python-mgmt-network/33.1.0"
    client_request_id: str | None
    fault: str | None = None  # description of the injected fault, if one fired
    body: bytes = b""  # the request body as sent (PUT bodies: what went on the wire)


@dataclass
class _Outcome:
    status: int
    body: Any = NO_BODY
    headers: list[tuple[str, str]] = field(default_factory=list)
    wait_for: list[Capture] = field(default_factory=list)


class Emulator:
    """Local ARM + managed identity. Use as a context manager or ``start()`` / ``stop()``.

    ``world``: a :class:`World`, a path to a world JSON file, a dict in that format, or None (empty world).
    """

    def __init__(
        self,
        world: World | str | os.PathLike[str] | dict[str, Any] | None = None,
        *,
        time_scale: float = 1.0,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
        identity_port: int = 0,
        page_size: int = 50,
        retry_after: float = 1.0,
        lro_in_progress_polls: int = 1,
        operation_seconds: float = 1.0,
        agent_start_seconds: float = 1.0,
        cert_dir: str | os.PathLike[str] | None = None,
        on_capture_stopped: StoppedHook | None = None,
        seed: int | None = 0,
        token_lifetime: float = 86400.0,
        identity_header: str | None = None,
        log_limit: int = 100_000,
        hook_wait_timeout: float = 30.0,
    ) -> None:
        self.world = World.load(world)
        self.clock = Clock(time_scale)
        self.faults = Faults(seed)
        self.config = ArmConfig(
            page_size=page_size,
            retry_after=retry_after,
            lro_in_progress_polls=lro_in_progress_polls,
            operation_seconds=operation_seconds,
            agent_start_seconds=agent_start_seconds,
        )
        self.arm = ArmService(self.world, self.clock, self.config)
        self.on_capture_stopped: StoppedHook | None = on_capture_stopped
        self.latency = latency
        self.token_lifetime = token_lifetime
        self.hook_wait_timeout = hook_wait_timeout
        self._host = host
        self._port = port
        self._identity_port = identity_port
        self._cert_dir = Path(cert_dir) if cert_dir is not None else None
        self._tmp_dir: str | None = None
        self._identity_header = identity_header or secrets.token_hex(16)
        self._arm_log: deque[RequestRecord] = deque(maxlen=log_limit)
        self._identity_log: deque[RequestRecord] = deque(maxlen=log_limit)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._issuer: TokenIssuer | None = None
        self._arm_server: HttpServer | None = None
        self._identity_server: HttpServer | None = None
        self._ticker: threading.Thread | None = None
        self._cert_path: Path | None = None
        self._key_path: Path | None = None
        self.arm.on_new_event = self._wake.set
        for spec in self.world.fault_specs:
            self.faults.add_from_dict(spec)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> Emulator:
        if self._arm_server is not None:
            return self
        if self._cert_dir is None:
            self._tmp_dir = tempfile.mkdtemp(prefix="arm-emulator-")
        cert_dir = self._cert_dir or Path(self._tmp_dir or ".")
        self._cert_path, self._key_path = ensure_certificate(cert_dir)
        self._issuer = TokenIssuer(self.world.tenant_id)
        self._stopping.clear()
        self._arm_server = HttpServer(
            self._host, self._port, self._arm_app, tls_context(str(self._cert_path), str(self._key_path))
        )
        self._identity_server = HttpServer(self._host, self._identity_port, self._identity_app)
        self._arm_server.start("arm-emulator")
        self._identity_server.start("identity-emulator")
        self._ticker = threading.Thread(target=self._tick_loop, name="arm-emulator-clock", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        servers = [s for s in (self._arm_server, self._identity_server) if s is not None]
        stoppers = [threading.Thread(target=s.stop, daemon=True) for s in servers]
        for t in stoppers:  # in parallel: each shutdown waits for its serve_forever poll
            t.start()
        for t in stoppers:
            t.join(timeout=10)
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self._arm_server = self._identity_server = None
        self._ticker = None
        if self._tmp_dir is not None:
            shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._arm_server is not None

    # ------------------------------------------------------------ endpoints and settings

    def _server(self, server: HttpServer | None) -> HttpServer:
        if server is None:
            raise RuntimeError("the emulator is not started")
        return server

    @property
    def arm_endpoint(self) -> str:
        """``https://127.0.0.1:PORT`` (no trailing slash): pass as ``base_url=``."""
        return f"https://{self._host}:{self._server(self._arm_server).port}"

    @property
    def identity_endpoint(self) -> str:
        """``http://127.0.0.1:PORT/msi/token`` (plain HTTP, like App Service's local endpoint)."""
        return f"http://{self._host}:{self._server(self._identity_server).port}{IDENTITY_PATH}"

    @property
    def identity_header(self) -> str:
        return self._identity_header

    @property
    def ca_cert_path(self) -> str:
        """PEM of the self-signed certificate: the CA bundle clients must trust."""
        if self._cert_path is None:
            raise RuntimeError("the emulator is not started")
        return str(self._cert_path)

    cert_path = ca_cert_path

    @property
    def key_path(self) -> str:
        if self._key_path is None:
            raise RuntimeError("the emulator is not started")
        return str(self._key_path)

    @property
    def subscription_id(self) -> str:
        return self.world.subscription_id

    @property
    def tenant_id(self) -> str:
        return self.world.tenant_id

    @property
    def time_scale(self) -> float:
        return self.clock.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self.clock.time_scale = value
        self._wake.set()

    def env(self) -> dict[str, str]:
        """The app settings that point an app at this emulator."""
        return {
            "ARM_ENDPOINT": self.arm_endpoint,
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_cert_path,
        }

    # ------------------------------------------------------------ tokens

    def issue_token(
        self,
        resource: str = "https://management.azure.com",
        *,
        lifetime: float | None = None,
        identity: Identity | None = None,
    ) -> str:
        """A token as the identity endpoint would issue it (``lifetime`` < 0 gives an expired one)."""
        return self._issue(resource, lifetime=lifetime, identity=identity)[0]

    def _issue(
        self, resource: str, *, lifetime: float | None = None, identity: Identity | None = None
    ) -> tuple[str, int]:
        if self._issuer is None:
            raise RuntimeError("the emulator is not started")
        ident = identity or self.world.identity
        return self._issuer.issue(
            resource,
            object_id=ident.principal_id,
            client_id=ident.client_id,
            lifetime=self.token_lifetime if lifetime is None else lifetime,
            mi_resource_id=ident.resource_id,
        )

    def credential(self) -> Any:
        """A ``TokenCredential`` getting tokens directly from this emulator (no identity-endpoint calls)."""
        from .credential import EmulatorCredential

        return EmulatorCredential(lambda resource: self._issue(resource))

    # ------------------------------------------------------------ clock and captures

    def advance(self, seconds: float) -> None:
        """Move the emulated clock forward; stop notifications that became due run before this returns."""
        self.clock.advance(seconds)
        self._process_due(self.clock.now())
        self._wake.set()

    def start_anomaly(self, resource_id: str, at: dt.datetime | None = None) -> None:
        """The VM's (or scale set's) scenario anomaly begins at ``at`` (default: now, emulated), e.g. a SYN
        flood that starts minutes before the alert; files of captures that stop later show it from then."""
        when = self.clock.now() if at is None else at.timestamp()
        with self.world.lock:
            resource = self.world.vm(resource_id) or self.world.scale_set(resource_id)
            if resource is None:
                raise KeyError(resource_id)
            resource.anomaly_start = when
            for cap in self.arm.captures.values():
                if cap.target_id.lower() == resource_id.lower():
                    cap.anomaly_start = when

    def seed_capture(
        self,
        name: str,
        target: str | VirtualMachine | ScaleSet,
        *,
        watcher: NetworkWatcher | str | None = None,
        storage_account: str | None = "",
        file_path: str | None = None,
        time_limit_in_seconds: int = 18000,
        bytes_to_capture_per_packet: int = 0,
        total_bytes_per_session: int = 1073741824,
        age_seconds: float = 0.0,
        properties: dict[str, Any] | None = None,
    ) -> str:
        """Create a capture directly (already provisioned, created ``age_seconds`` emulated seconds ago).

        ``target``: a VM / scale set object or resource ID. ``watcher``: object, ID or name; default the
        watcher of the target's region. ``storage_account``: a storage account name; ``""`` (default) = the
        world's first account, None = no storage (then give ``file_path``). ``properties`` overrides the
        PacketCaptureParameters sent. Validation is the same as for a PUT (raises :class:`ArmError`).
        Returns the capture's resource ID.
        """
        target_id = target if isinstance(target, str) else target.id
        with self.world.lock:
            res = self.world.vm(target_id) or self.world.scale_set(target_id)
            if res is None:
                raise KeyError(f"unknown target {target_id}")
            nw = self._resolve_watcher(watcher, res.location)
            loc: dict[str, Any] = {}
            if storage_account is not None:
                accounts = self.world.storage_accounts()
                acct = self.world.find_storage_account(storage_account) if storage_account else accounts[0]
                loc["storageId"] = acct.id
            if file_path:
                loc["filePath"] = file_path
            props: dict[str, Any] = {
                "target": target_id,
                "targetType": "AzureVMSS" if isinstance(res, ScaleSet) else "AzureVM",
                "timeLimitInSeconds": time_limit_in_seconds,
                "bytesToCapturePerPacket": bytes_to_capture_per_packet,
                "totalBytesPerSession": total_bytes_per_session,
                "storageLocation": loc,
            }
            props.update(properties or {})
            now = self.clock.now()
            created = now - age_seconds
            if fold(name) in self.arm.by_watcher.get(fold(nw.id), {}):
                raise ArmError(
                    409, "PacketCaptureAlreadyExists", f"A packet capture named '{name}' already exists."
                )
            cap = build_capture(
                self.world,
                nw,
                name,
                json.dumps({"properties": props}).encode(),
                now=created,
                agent_start_seconds=self.config.agent_start_seconds,
                provisioning_seconds=self.config.operation_seconds,
            )
            cap.provisioned = True
            self.arm.add_capture(cap)
        self._process_due(self.clock.now())
        return cap.id

    def _resolve_watcher(self, watcher: NetworkWatcher | str | None, region: str) -> NetworkWatcher:
        if isinstance(watcher, NetworkWatcher):
            return watcher
        if watcher is None:
            found = self.world.watcher_in(region)
        else:
            found = self.world.watcher(watcher) or next(
                (w for w in self.world.watchers() if fold(w.name) == fold(watcher)), None
            )
        if found is None:
            raise KeyError(f"no network watcher {watcher or 'in region ' + region}")
        return found

    def capture_ids(self) -> list[str]:
        with self.world.lock:
            return [c.id for c in self.arm.captures.values()]

    def capture_json(self, capture_id: str) -> dict[str, Any]:
        """The capture resource as GET returns it now."""
        with self.world.lock:
            return self.arm.captures[fold(capture_id)].resource_json(self.clock.now())

    def capture_status(self, capture_id: str) -> dict[str, Any]:
        """The PacketCaptureQueryStatusResult as queryStatus would return it now."""
        with self.world.lock:
            return self.arm.captures[fold(capture_id)].status_json(self.clock.now())

    def _process_due(self, now: float) -> None:
        for cap, records in self.arm.collect_stopped(now):
            try:
                hook = self.on_capture_stopped
                for rec in records:
                    if hook is None:
                        break
                    try:
                        hook(rec)
                    except Exception:
                        _LOG.exception("on_capture_stopped hook failed for %s", rec.capture_id)
            finally:
                cap.hook_done.set()

    def _tick_loop(self) -> None:
        while not self._stopping.is_set():
            wait = 0.1
            nxt = self.arm.next_event_time()
            if nxt is not None:
                real = self.clock.real_seconds_until(nxt)
                if real is not None:
                    wait = min(max(real, 0.001), 0.1)
            self._wake.wait(wait)
            self._wake.clear()
            if self._stopping.is_set():
                break
            try:
                self._process_due(self.clock.now())
            except Exception:  # never let the clock thread die
                _LOG.exception("emulator clock tick failed")

    # ------------------------------------------------------------ request log

    @property
    def request_log(self) -> list[RequestRecord]:
        """ARM requests only (identity-endpoint calls are in :attr:`identity_log`), oldest first."""
        return list(self._arm_log)

    @property
    def identity_log(self) -> list[RequestRecord]:
        return list(self._identity_log)

    def clear_log(self) -> None:
        self._arm_log.clear()
        self._identity_log.clear()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Logged ARM requests with this method whose path contains ``path`` (case-insensitive)."""
        needle = fold(path) if path else None
        return sum(
            1
            for r in self._arm_log
            if (method is None or r.method == method.upper()) and (needle is None or needle in fold(r.path))
        )

    # ------------------------------------------------------------ HTTP apps

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _record(
        self,
        endpoint: str,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Any,
        status: int,
        started: float,
        t0: float,
        fault: FaultRule | None,
        body: bytes = b"",
    ) -> None:
        ua = headers.get("User-Agent") or ""
        rec = RequestRecord(
            timestamp=started,
            endpoint=endpoint,
            method=method,
            path=path,
            query=query,
            status=status,
            duration=time.perf_counter() - t0,
            user_agent=ua,
            client=ua.split(" ", 1)[0],
            client_request_id=headers.get("x-ms-client-request-id"),
            fault=_describe(fault),
            body=bytes(body or b""),
        )
        (self._arm_log if endpoint == "arm" else self._identity_log).append(rec)

    def _with_faults(
        self,
        endpoint: str,
        method: str,
        raw_path: str,
        headers: Any,
        serve: Callable[[str, dict[str, str]], Response],
        body: bytes = b"",
    ) -> Response | None:
        started, t0 = time.time(), time.perf_counter()
        path, _, qs = raw_path.partition("?")
        query = {k: v[-1] for k, v in parse_qs(qs, keep_blank_values=True).items()}
        rule = self.faults.pick("arm" if endpoint == "arm" else "identity", method, path)
        if endpoint == "arm":
            self._sleep(self.latency)
        if rule is not None and rule.delay > 0:
            self._sleep(rule.delay)
        response: Response | None = None
        if rule is None or rule.after or (rule.status is None and not rule.drop):
            response = serve(path, query)
        if rule is not None and (rule.status is not None or rule.drop) and (response is None or rule.after):
            if rule.drop:
                response = None
            else:
                assert rule.status is not None
                hdrs = [("x-ms-request-id", str(uuid.uuid4()))]
                if rule.retry_after is not None:
                    ra = rule.retry_after
                    hdrs.append(("Retry-After", str(int(ra)) if float(ra).is_integer() else str(ra)))
                response = Response(rule.status, _dump(rule.error_body()), hdrs)
        self._record(
            endpoint,
            method,
            path,
            query,
            headers,
            0 if response is None else response.status,
            started,
            t0,
            rule,
            body,
        )
        return response

    def _arm_app(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response | None:
        return self._with_faults(
            "arm",
            method,
            raw_path,
            headers,
            lambda path, query: self._serve_arm(method, path, query, headers, body),
            body,
        )

    def _serve_arm(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> Response:
        now = self.clock.now()
        self._process_due(now)
        host = headers.get("Host")
        base_url = f"https://{host}" if host else self.arm_endpoint
        req = Request(method, path, query, headers, body, now, base_url)
        try:
            self._authenticate(headers)
            status, payload, hdrs = self.arm.handle(req)
        except ArmError as exc:
            status, payload, hdrs = exc.status, exc.body(), list(exc.headers.items())
        except Exception:
            _LOG.exception("emulator bug serving %s %s", method, path)
            status, payload, hdrs = (
                500,
                {"error": {"code": "InternalServerError", "message": "An error occurred."}},
                [],
            )
        self._process_due(now)
        if isinstance(payload, dict) and payload.get("packetCaptureStatus") == "Stopped":
            # queryStatus says Stopped: make sure the capture file hook (running in another thread) finished.
            with self.world.lock:
                cap = self.arm.captures.get(fold(str(payload.get("id", ""))))
            if cap is not None and cap.notified:
                cap.hook_done.wait(self.hook_wait_timeout)
        request_id = headers.get("x-ms-client-request-id") or str(uuid.uuid4())
        hdrs = [*hdrs, ("x-ms-request-id", str(uuid.uuid4())), ("x-ms-correlation-request-id", request_id)]
        return Response(status, b"" if payload is NO_BODY else _dump(payload), hdrs)

    def _authenticate(self, headers: Any) -> None:
        auth = headers.get("Authorization")
        if not auth:
            # ARM wording for a missing header.
            raise _unauthorized(
                "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        scheme, _, token = auth.partition(" ")
        if fold(scheme) != "bearer" or not token.strip():
            raise _unauthorized(
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid format.",
            )
        assert self._issuer is not None
        try:
            claims = self._issuer.verify(token.strip())
        except TokenError as exc:
            raise _unauthorized(exc.code, exc.message) from exc
        if claims.audience not in ARM_AUDIENCES:
            raise _unauthorized(
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{claims.audience}'. "
                "It should "
                "exactly match with one of the allowed audiences 'https://management.core.windows.net/',"
                "'https://management.core.windows.net','https://management.azure.com/','https://management.azure.com'.",
            )

    def _identity_app(self, method: str, raw_path: str, headers: Any, body: bytes) -> Response | None:
        return self._with_faults(
            "identity",
            method,
            raw_path,
            headers,
            lambda path, query: self._serve_identity(method, path, query, headers),
        )

    def _serve_identity(self, method: str, path: str, query: dict[str, str], headers: Any) -> Response:
        """App Service managed identity protocol, api-version 2019-08-01: GET ?resource=&api-version=
        [&client_id=|principal_id=|object_id=|mi_res_id=] with X-IDENTITY-HEADER; answers
        {access_token, expires_on (epoch seconds, string), resource, token_type, client_id}."""

        def error(status: int, message: str) -> Response:
            # App Service error shape {statusCode, message} (msal reads these two fields).
            return Response(status, _dump({"statusCode": status, "message": message}))

        if fold(path.rstrip("/")) != IDENTITY_PATH:
            return error(404, "Not Found")
        if method != "GET":
            return error(405, "Method not allowed")
        secret = headers.get("X-IDENTITY-HEADER")
        if not secret or not hmac.compare_digest(secret.encode(), self._identity_header.encode()):
            # App Service refuses a missing / wrong X-IDENTITY-HEADER with 401.
            return error(401, "Unauthorized: the X-IDENTITY-HEADER header is missing or invalid.")
        if query.get("api-version") != IDENTITY_API_VERSION:
            return error(
                400, f"Unsupported api-version '{query.get('api-version')}': use {IDENTITY_API_VERSION}."
            )
        resource = query.get("resource")
        if not resource:
            return error(400, "The 'resource' query parameter is required.")
        identity = self._select_identity(query)
        if identity is None:
            return error(
                400,
                "No User Assigned or Delegated Managed Identity found for specified "
                "ClientId/ResourceId/PrincipalId.",
            )
        token, exp = self._issue(resource, identity=identity)
        return Response(
            200,
            _dump(
                {
                    "access_token": token,
                    "expires_on": str(exp),
                    "resource": resource,
                    "token_type": "Bearer",
                    "client_id": identity.client_id,
                }
            ),
        )

    def _select_identity(self, query: dict[str, str]) -> Identity | None:
        idents = self.world.identities()
        if query.get("client_id"):
            return next((i for i in idents if fold(i.client_id) == fold(query["client_id"])), None)
        for key in ("principal_id", "object_id"):
            if query.get(key):
                return next((i for i in idents if fold(i.principal_id) == fold(query[key])), None)
        if query.get("mi_res_id"):
            return next((i for i in idents if fold(i.resource_id or "") == fold(query["mi_res_id"])), None)
        return self.world.identity


def _unauthorized(code: str, message: str) -> ArmError:
    # ARM's 401 challenge. error="invalid_token" makes ARMChallengeAuthenticationPolicy.on_challenge return
    # False
    # (only "insufficient_claims" is retried), so the SDK surfaces ClientAuthenticationError without looping.
    challenge = (
        f'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
        f'error_description="{message.replace(chr(34), chr(39))}"'
    )
    return ArmError(401, code, message, headers={"WWW-Authenticate": challenge})


def _dump(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _describe(rule: FaultRule | None) -> str | None:
    if rule is None:
        return None
    parts: Iterable[str] = (
        f"status={rule.status}" if rule.status is not None else "",
        "drop" if rule.drop else "",
        f"delay={rule.delay}" if rule.delay else "",
        "after" if rule.after else "",
    )
    return " ".join(p for p in parts if p) or "fault"
