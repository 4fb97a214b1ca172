"""Fixtures for the emulator's own tests: the sample world on a frozen clock, real SDK clients over HTTPS."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # the project is not installed; `pytest` (not `python -m pytest`) needs this
    sys.path.insert(0, str(_ROOT))

import pytest  # noqa: E402
from azure.identity import ManagedIdentityCredential  # noqa: E402
from azure.mgmt.network import NetworkManagementClient  # noqa: E402
from azure.mgmt.resource.resources import ResourceManagementClient  # noqa: E402

from emulator import Emulator  # noqa: E402
from emulator.testing import (  # noqa: E402
    SAMPLE_SUBSCRIPTION,
    emulator_fixture,
    network_client,
    resource_client,
)

emu = emulator_fixture(name="emu")


@pytest.fixture
def nc(emu: Emulator) -> Iterator[NetworkManagementClient]:
    """NetworkManagementClient with ManagedIdentityCredential (env from emu.env()), CA trusted via env."""
    with (
        ManagedIdentityCredential() as cred,
        NetworkManagementClient(
            cred, SAMPLE_SUBSCRIPTION, base_url=emu.arm_endpoint, polling_interval=0
        ) as client,
    ):
        yield client


@pytest.fixture
def rc(emu: Emulator) -> Iterator[ResourceManagementClient]:
    with resource_client(emu) as client:
        yield client


@pytest.fixture
def fast_nc(emu: Emulator) -> Iterator[NetworkManagementClient]:
    """Network client on the emulator's direct credential (no identity calls) with tight retry settings."""
    with network_client(emu, emu.credential(), retry_total=2, retry_backoff_factor=0.0) as client:
        yield client
