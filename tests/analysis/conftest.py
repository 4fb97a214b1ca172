"""Fixtures: generated captures (cached per session); Azurite comes from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from emulator.pcapgen import GeneratedCapture, generate

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
