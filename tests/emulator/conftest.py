"""Fixtures for the emulator's own tests: the sample world on a frozen clock, real SDK clients over HTTPS."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # the project is not installed; `pytest` (not `python -m pytest`) needs this
    sys.path.insert(0, str(_ROOT))

import pytest  # noqa: E402

from emulator import Emulator  # noqa: E402
from emulator.testing import emulator_fixture, network_client, resource_client  # noqa: E402
from emu_support import SUB  # noqa: E402

emu = emulator_fixture(name="emu")


@pytest.fixture
def nc(emu: Emulator):
    """NetworkManagementClient with ManagedIdentityCredential (env from emu.env()), CA trusted via env."""
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.network import NetworkManagementClient

    with ManagedIdentityCredential() as cred, NetworkManagementClient(
        cred, SUB, base_url=emu.arm_endpoint, polling_interval=0
    ) as client:
        yield client


@pytest.fixture
def rc(emu: Emulator):
    with resource_client(emu) as client:
        yield client


@pytest.fixture
def fast_nc(emu: Emulator):
    """Network client on the emulator's direct credential (no identity calls) with tight retry settings."""
    with network_client(emu, emu.credential(), retry_total=2, retry_backoff_factor=0.0) as client:
        yield client
