"""Fixtures for end-to-end tests: the real function app, the real SDK, the emulator over HTTPS."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.functions.meta import Datum
from azure.functions.queue import QueueMessageInConverter

import capture
from emulator import FOREIGN_CREDENTIAL_ENV, Emulator
from emulator.azurite import Azurite, dev_credential
from emulator.testing import SAMPLE_WORLD
from tests.conftest import STORAGE_ID


def point_app_at(emulator: Emulator, monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    """App settings aimed at the emulator (and nothing else), as a fresh worker process would read them."""
    for key, value in {**emulator.env(), "CAPTURE_STORAGE_ACCOUNT_ID": STORAGE_ID, **settings}.items():
        monkeypatch.setenv(key, value)
    for key in FOREIGN_CREDENTIAL_ENV:
        monkeypatch.delenv(key, raising=False)
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


class Queues:
    """The follow-through's queue and its poison queue in Azurite, and the real queue functions run on them.

    `work()` does what the Functions host's queue listener does for one poll (receive a batch, run the
    function per message with a real `func.QueueMessage`, delete on success, make a failed message
    visible again, move it to `<queue>-poison` on its maxDequeueCount-th failure); devhost's listener
    does the same continuously across processes.
    """

    def __init__(self, endpoint: str, name: str, ca: str, functions: dict[str, Any]) -> None:
        from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, QueueClient

        def client(queue: str) -> QueueClient:
            return QueueClient(
                endpoint,
                queue,
                credential=dev_credential(),
                connection_verify=ca,
                message_encode_policy=BinaryBase64EncodePolicy(),
                message_decode_policy=BinaryBase64DecodePolicy(),
            )

        self.name = name
        self.main, self.poison = client(name), client(f"{name}-poison")
        for queue in (self.main, self.poison):
            queue.create_queue()
        self.functions = functions

    def peek(self, poison: bool = False) -> list[dict[str, Any]]:
        queue = self.poison if poison else self.main
        return [json.loads(m.content) for m in queue.peek_messages(max_messages=32)]

    def count(self, poison: bool = False) -> int:
        queue = self.poison if poison else self.main
        return int(queue.get_queue_properties().approximate_message_count)

    def work(self, *, poison: bool = False, max_dequeue: int = 5, lease: int = 60) -> list[str]:
        """One batch: returns 'ok' or the failure per message."""
        queue = self.poison if poison else self.main
        function = self.functions["capture_report_poison" if poison else "capture_report"].get_user_function()
        outcomes = []
        batch = list(
            next(queue.receive_messages(messages_per_page=32, visibility_timeout=lease).by_page(), [])
        )
        for message in batch:
            msg = QueueMessageInConverter.decode(
                Datum(message.content, "bytes"),
                trigger_metadata={
                    "Id": Datum(message.id, "string"),
                    "DequeueCount": Datum(str(message.dequeue_count), "json"),
                    "PopReceipt": Datum(message.pop_receipt, "string"),
                },
            )
            try:
                function(msg)
            except Exception as exc:
                outcomes.append(type(exc).__name__)
                if message.dequeue_count >= max_dequeue and not poison:
                    self.poison.send_message(message.content)
                    queue.delete_message(message)
                else:
                    queue.update_message(message, visibility_timeout=0)
                continue
            queue.delete_message(message)
            outcomes.append("ok")
        return outcomes

    def drain(self, rounds: int = 10) -> list[str]:
        """Work the queue (and the poison queue) until both are empty."""
        outcomes: list[str] = []
        for _ in range(rounds):
            batch = self.work() + self.work(poison=True)
            outcomes += batch
            if not batch:
                break
        return outcomes


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
