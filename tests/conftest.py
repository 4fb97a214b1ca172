"""Shared fixtures: the real function objects, real `func.HttpRequest`s, settings from env."""

from __future__ import annotations

import inspect
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest

import capture
from devhost.invoke import InvocationContext
from devhost.stack import NotificationReceiver
from emulator.azurite import Azurite, AzuriteError
from emulator.tls import ensure_certificate
from tests.queues import Queues

PAYLOADS = Path(__file__).parent / "payloads"
# The sample world (samples/world.json) that the payload fixtures target.
SUB = "00000000-0000-0000-0000-000000000001"
RG = f"/subscriptions/{SUB}/resourceGroups"
STORAGE_ID = f"{RG}/rg-capture/providers/Microsoft.Storage/storageAccounts/stcaptures"
VM_WEB_1 = f"{RG}/rg-app/providers/Microsoft.Compute/virtualMachines/vm-web-1"
VM_DB_1 = f"{RG}/rg-app/providers/Microsoft.Compute/virtualMachines/vm-db-1"
VM_WEU_1 = f"{RG}/rg-weu/providers/Microsoft.Compute/virtualMachines/vm-weu-1"
VMSS_API = f"{RG}/rg-app/providers/Microsoft.Compute/virtualMachineScaleSets/vmss-api"
# The functions function_app.py registers, as the README documents them.
FUNCTION_NAMES = frozenset(
    {
        "alert_webhook",
        "list_captures",
        "get_capture",
        "capture_monitor",
        "capture_report",
        "capture_report_poison",
    }
)


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / name).read_text())
    return data


@pytest.fixture(scope="session")
def functions() -> dict[str, Any]:
    """The app's functions, indexed once (FunctionApp.get_functions() is not idempotent)."""
    import function_app

    return {str(f.get_function_name()): f for f in function_app.app.get_functions()}


@pytest.fixture
def app_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set app settings for one test; the app re-reads them."""

    def apply(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)
        capture.reset()

    monkeypatch.setenv("CAPTURE_STORAGE_ACCOUNT_ID", STORAGE_ID)
    capture.reset()
    yield apply
    capture.reset()


def request(
    method: str = "POST",
    path: str = "/api/alerts",
    *,
    body: bytes | dict[str, Any] | list[Any] = b"",
    params: dict[str, str] | None = None,
    route_params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> func.HttpRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return func.HttpRequest(
        method,
        f"http://localhost:7071{path}",
        params=params or {"code": "secret-key"},
        route_params=route_params or {},
        headers=headers or {"content-type": "application/json"},
        body=raw,
    )


@pytest.fixture
def call(functions: dict[str, Any]) -> Callable[..., tuple[int, dict[str, Any], func.HttpResponse]]:
    """Invoke a function with a real HttpRequest; returns (status, JSON body, response)."""

    def invoke(
        name: str, req: func.HttpRequest, invocation_id: str = "test-invocation"
    ) -> tuple[int, dict[str, Any], func.HttpResponse]:
        user = functions[name].get_user_function()
        extra = {}
        if "context" in inspect.signature(user).parameters:
            extra["context"] = InvocationContext(invocation_id, name, str(Path(__file__).parents[1]))
        response = user(req, **extra)
        assert isinstance(response, func.HttpResponse)
        assert response.mimetype == "application/json"
        return response.status_code, json.loads(response.get_body()), response

    return invoke


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One certificate for the session, shared by Azurite and the emulators that need to trust each other."""
    cert, key = ensure_certificate(tmp_path_factory.mktemp("tls"))
    return cert, key


def _running_azurite(tls_files: tuple[Path, Path], service: str, what: str) -> Iterator[Azurite]:
    """Start one Azurite service for the session and stop it afterwards; failing to start fails the test."""
    cert, key = tls_files
    server = Azurite(cert, key, service=service)
    try:
        server.start()
    except AzuriteError as exc:
        pytest.fail(f"cannot start {what}: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def azurite(tls_files: tuple[Path, Path]) -> Iterator[Azurite]:
    """One Azurite (blob, HTTPS, --oauth basic) for the session. Missing node_modules is a FAILURE: CI runs
    ``npm ci`` before the tests, so a missing install means a broken setup, not an optional test."""
    yield from _running_azurite(tls_files, "blob", "Azurite")


@pytest.fixture(scope="session")
def azurite_queue(tls_files: tuple[Path, Path]) -> Iterator[Azurite]:
    """Azurite's queue service for the session (HTTPS, --oauth basic); a missing install is a failure."""
    yield from _running_azurite(tls_files, "queue", "Azurite's queue service")


@pytest.fixture
def queues(
    azurite_queue: Azurite,
    tls_files: tuple[Path, Path],
    functions: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> Queues:
    """A fresh queue pair per test, the app pointed at it (identity-based, like the CaptureQueue connection)."""
    name = f"reports-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("CAPTURE_QUEUE_NAME", name)
    monkeypatch.setenv("CaptureQueue__queueServiceUri", azurite_queue.queue_endpoint)
    capture.reset()
    return Queues(azurite_queue.queue_endpoint, name, str(tls_files[0]), functions)


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    """A notification endpoint that keeps what the app sends."""
    server = NotificationReceiver(echo=False).start()
    yield server
    server.stop()
