"""Fixtures for the emulator's own tests: the sample world on a frozen clock, real SDK clients over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.identity import ManagedIdentityCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from emulator import Emulator
from emulator.testing import (
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
