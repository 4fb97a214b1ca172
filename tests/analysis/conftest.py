"""Fixtures: generated captures (cached per session) and one Azurite for the session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.azurite import Azurite, AzuriteError
from emulator.pcapgen import GeneratedCapture, generate
from emulator.tls import ensure_certificate

# the scenario files the tests analyse: short, but long enough for every effect to show
DURATION_S = 4.0

CaptureFactory = Callable[..., GeneratedCapture]


@pytest.fixture(scope="session")
def capture() -> CaptureFactory:
    """``capture(scenario, **generate_kwargs)``: a generated capture, made once per argument set."""
    cache: dict[tuple[Any, ...], GeneratedCapture] = {}

    def make(scenario: str, **kwargs: Any) -> GeneratedCapture:
        kwargs.setdefault("duration_s", DURATION_S)
        key = (scenario, *sorted(kwargs.items()))
        if key not in cache:
            cache[key] = generate(scenario, **kwargs)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    cert, key = ensure_certificate(tmp_path_factory.mktemp("tls"))
    return cert, key


@pytest.fixture(scope="session")
def azurite(tls_files: tuple[Path, Path]) -> Iterator[Azurite]:
    """One Azurite (blob, HTTPS, --oauth basic) for the session. Missing node_modules is a FAILURE: CI runs
    ``npm ci`` before the tests, so a missing install means a broken setup, not an optional test."""
    cert, key = tls_files
    server = Azurite(cert, key)
    try:
        server.start()
    except AzuriteError as exc:
        pytest.fail(f"cannot start Azurite: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
