"""Fixtures for end-to-end tests: the real function app, the real SDK, the emulator over HTTPS."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import capture
from devhost.stack import NotificationReceiver, capture_writer
from emulator import FOREIGN_CREDENTIAL_ENV, Emulator
from emulator.azurite import Azurite
from emulator.testing import SAMPLE_WORLD
from tests.conftest import STORAGE_ID


def point_app_at(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """App settings aimed at the emulator (and nothing else), as a fresh worker process would read them."""
    for key, value in {**emulator.env(), "CAPTURE_STORAGE_ACCOUNT_ID": STORAGE_ID, **settings}.items():
        monkeypatch.setenv(key, value)
    for key in FOREIGN_CREDENTIAL_ENV:
        monkeypatch.delenv(key, raising=False)
    capture.reset()


@contextlib.contextmanager
def reporting_world(
    monkeypatch: pytest.MonkeyPatch,
    azurite: Azurite,
    tls_files: tuple[Path, Path],
    receiver: NotificationReceiver,
    **settings: str,
) -> Iterator[Emulator]:
    """The sample world on a frozen clock, writing capture files to Azurite; the app pointed at both and
    at the receiver (plus `settings`), as a fresh worker process would read them."""
    with Emulator(SAMPLE_WORLD, time_scale=0.0, retry_after=0.0, cert_dir=tls_files[0].parent) as emulator:
        emulator.on_capture_stopped = capture_writer(azurite, emulator.ca_cert_path)
        point_app_at(
            emulator,
            monkeypatch,
            CAPTURE_BLOB_ENDPOINT=azurite.blob_endpoint,
            CAPTURE_NOTIFY_URL=receiver.url,
            **settings,
        )
        yield emulator
        capture.reset()


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The sample world on a frozen clock (tests move time with emu.advance)."""
    with Emulator(SAMPLE_WORLD, time_scale=0.0, retry_after=0.0) as emulator:
        point_app_at(emulator, monkeypatch)
        yield emulator
        capture.reset()


def arm_calls(emu: Emulator) -> list[tuple[str, str, int]]:
    """The ARM requests the app made (identity endpoint excluded), as (method, path, status)."""
    return [(r.method, r.path, r.status) for r in emu.request_log]


def captures(emu: Emulator) -> list[dict[str, Any]]:
    return [emu.capture_json(capture_id) for capture_id in emu.capture_ids()]
