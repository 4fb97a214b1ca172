"""Azurite's queue service for the queue-trigger tests (one per session, HTTPS, --oauth basic)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.azurite import Azurite, AzuriteError


@pytest.fixture(scope="session")
def azurite_queue(tls_files: tuple[Path, Path]) -> Iterator[Azurite]:
    """A missing Azurite install is a failure, not a skip (CI runs ``npm ci`` first)."""
    cert, key = tls_files
    server = Azurite(cert, key, service="queue")
    try:
        server.start()
    except AzuriteError as exc:
        pytest.fail(f"cannot start Azurite's queue service: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
