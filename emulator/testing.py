"""pytest helpers for any test folder: a fixture factory and SDK client builders aimed at an emulator.

    # tests/<area>/conftest.py
    from emulator.testing import emulator_fixture
    emu = emulator_fixture(name="emu")                       # sample world, frozen clock, fast LROs

    def test_x(emu): ...                                      # env vars from emu.env() are set meanwhile

Defaults favour fast, deterministic tests: ``time_scale=0`` (move time with ``emu.advance``) and
``retry_after=0`` (no Retry-After on LROs, so the SDK's ``polling_interval`` applies; the clients built here
use ``polling_interval=0``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .core import FOREIGN_CREDENTIAL_ENV, Emulator
from .world import World

SAMPLE_WORLD = Path(__file__).resolve().parents[1] / "samples" / "world.json"

WorldSource = World | str | os.PathLike[str] | dict[str, Any] | Callable[[], World] | None


def _world(source: WorldSource) -> World | str | os.PathLike[str] | dict[str, Any] | None:
    if callable(source) and not isinstance(source, World):
        return source()
    return source


def emulator_fixture(
    world: WorldSource = SAMPLE_WORLD,
    *,
    name: str = "emulator",
    scope: str = "function",
    set_env: bool = True,
    **emulator_kwargs: Any,
) -> Any:
    """Return a pytest fixture (registered under ``name``) yielding a started :class:`Emulator`.

    ``world``: a path / dict (loaded afresh for every fixture instance), a zero-argument callable returning a
    new :class:`World`, or a World object (shared: avoid with function scope if tests mutate it).
    ``set_env``: export ``emu.env()`` (ARM_ENDPOINT, IDENTITY_ENDPOINT, IDENTITY_HEADER, REQUESTS_CA_BUNDLE)
    for the fixture's lifetime, so ``ManagedIdentityCredential()`` / ``DefaultAzureCredential()`` and
    requests-based clients use the emulator unchanged. ``emulator_kwargs`` go to :class:`Emulator`
    (defaults here: ``time_scale=0``, ``retry_after=0``).
    """
    kwargs: dict[str, Any] = {"time_scale": 0.0, "retry_after": 0.0, **emulator_kwargs}

    @pytest.fixture(name=name, scope=scope)  # type: ignore[call-overload, untyped-decorator]
    def _fixture() -> Iterator[Emulator]:
        with Emulator(_world(world), **kwargs) as emu, pytest.MonkeyPatch.context() as mp:
            if set_env:
                for key, value in emu.env().items():
                    mp.setenv(key, value)
                for key in FOREIGN_CREDENTIAL_ENV:
                    mp.delenv(key, raising=False)
            yield emu

    return _fixture


def network_client(emu: Emulator, credential: Any = None, **kwargs: Any) -> Any:
    """``NetworkManagementClient`` on the emulator: ``polling_interval=0``, the emulator's CA trusted.
    ``credential`` defaults to ``ManagedIdentityCredential()`` (needs the env from ``emu.env()``)."""
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.network import NetworkManagementClient

    opts: dict[str, Any] = {"polling_interval": 0, "connection_verify": emu.ca_cert_path, **kwargs}
    return NetworkManagementClient(
        credential or ManagedIdentityCredential(), emu.subscription_id, base_url=emu.arm_endpoint, **opts
    )


def resource_client(emu: Emulator, credential: Any = None, **kwargs: Any) -> Any:
    """``ResourceManagementClient`` on the emulator (same defaults as :func:`network_client`)."""
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.resource.resources import ResourceManagementClient

    opts: dict[str, Any] = {"polling_interval": 0, "connection_verify": emu.ca_cert_path, **kwargs}
    return ResourceManagementClient(
        credential or ManagedIdentityCredential(), emu.subscription_id, base_url=emu.arm_endpoint, **opts
    )


# -------------------------------------------------------- names in the sample world (samples/world.json)

SAMPLE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
SAMPLE_WATCHER_EASTUS = ("NetworkWatcherRG", "NetworkWatcher_eastus")  # (resource group, name): default
SAMPLE_WATCHER_WESTEUROPE = ("rg-network", "nw-weu-prod")  # non-default name and group


def resource_group_id(rg: str, sub: str = SAMPLE_SUBSCRIPTION) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def vm_resource_id(rg: str, name: str, sub: str = SAMPLE_SUBSCRIPTION) -> str:
    return f"{resource_group_id(rg, sub)}/providers/Microsoft.Compute/virtualMachines/{name}"


def scale_set_resource_id(rg: str, name: str, sub: str = SAMPLE_SUBSCRIPTION) -> str:
    return f"{resource_group_id(rg, sub)}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"


def storage_account_resource_id(rg: str, name: str, sub: str = SAMPLE_SUBSCRIPTION) -> str:
    return f"{resource_group_id(rg, sub)}/providers/Microsoft.Storage/storageAccounts/{name}"


def watcher_resource_id(rg: str, name: str, sub: str = SAMPLE_SUBSCRIPTION) -> str:
    return f"{resource_group_id(rg, sub)}/providers/Microsoft.Network/networkWatchers/{name}"


# ---------------------------------------------------------------- SDK error helpers


def error_code(exc: Any) -> str:
    """The ARM ``error.code`` an ``HttpResponseError`` carries (AssertionError when it has none)."""
    assert exc.error is not None, f"no ARM error body in {exc!r}"
    return str(exc.error.code)


def error_message(exc: Any) -> str:
    assert exc.error is not None, f"no ARM error body in {exc!r}"
    return str(exc.error.message)


def error_target(exc: Any) -> str:
    assert exc.error is not None, f"no ARM error body in {exc!r}"
    return str(exc.error.target or "")


def properties_of(model: Any) -> Any:
    """``model.properties`` asserted present, typed ``Any`` (SDK models make every field Optional)."""
    assert model.properties is not None, f"{model!r} has no properties"
    return model.properties
