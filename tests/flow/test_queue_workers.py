"""The follow-through under the local Functions host, in separate worker processes as instances run it.

The scheduler runs here (on the emulator's clock); the reports are worked by `python -m devhost --queues`
processes that load the unmodified app and share Azurite and the emulator with this test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

import capture
from capture import app_context
from capture.naming import storage_path
from capture.resource_ids import parse_resource_id
from devhost.stack import capture_writer
from emulator import Emulator
from emulator.azurite import Azurite
from emulator.testing import SAMPLE_WORLD
from tests.conftest import STORAGE_ID, SUB, VM_WEB_1
from tests.flow.conftest import captures, point_app_at
from tests.queues import Queues

REPO_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, seconds: float = 60.0) -> T:
    """Poll until `condition` is truthy (no sleeping for a fixed time); fail naming `what`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        threading.Event().wait(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class HoldingReceiver:
    """A notification endpoint that holds the reports `hold(name)` selects until released."""

    def __init__(self, hold: Callable[[str], bool]) -> None:
        self.received: list[dict[str, Any]] = []
        self.held: list[str] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                document = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                name = document["capture"]["name"]
                if hold(name) and not receiver.release.is_set():
                    receiver.held.append(name)
                    receiver.release.wait(120)
                    self.close_connection = True
                    return  # no answer: the sender never learns it was delivered
                receiver.received.append(document)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/notify"

    def names(self) -> list[str]:
        return [d["capture"]["name"] for d in self.received]

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


def start_worker(*args: str) -> subprocess.Popen[str]:
    """A local Functions host process running the app's queue triggers (timers off)."""
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "devhost", "--app-dir", str(REPO_ROOT), "--port", "0", "--key", "k"),
            *("--no-local-settings", "--queues", "--queue-poll-interval", "0.1", *args),
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Press Ctrl-C"):
            return proc
    proc.kill()
    raise AssertionError("the worker host did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
    proc.communicate(timeout=30)


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch, azurite: Azurite, tls_files: tuple[Path, Path], queues: Queues
) -> Iterator[Emulator]:
    with Emulator(SAMPLE_WORLD, time_scale=0.0, retry_after=0.0, cert_dir=tls_files[0].parent) as emu:
        emu.on_capture_stopped = capture_writer(azurite, emu.ca_cert_path)
        point_app_at(
            emu,
            monkeypatch,
            CAPTURE_BLOB_ENDPOINT=azurite.blob_endpoint,
            CAPTURE_ALLOWED_SCOPES=f"/subscriptions/{SUB}",
        )
        yield emu
        capture.reset()


def seed_ours(world: Emulator, name: str, total_bytes: int = 1_000_000) -> None:
    """A capture in exactly the shape the app creates (our account, our path layout), started now."""
    started = world.clock.now_datetime()
    path = storage_path("stcaptures", name, parse_resource_id(VM_WEB_1), started, "rule", "alert-1")
    world.seed_capture(
        name,
        VM_WEB_1,
        time_limit_in_seconds=60,
        total_bytes_per_session=total_bytes,
        properties={"storageLocation": {"storageId": STORAGE_ID, "storagePath": path}},
    )


def schedule_finished(world: Emulator) -> list[str]:
    """The scheduler's run once the captures have ended (on the emulator's clock)."""
    world.advance(120)
    monitor = app_context().monitor
    monitor.clock = world.clock.now_datetime
    return monitor.schedule().queued


def test_a_worker_killed_mid_report_loses_nothing(world, queues, monkeypatch):
    name = "alertcap-vm-web-1-00000000000000a1"
    receiver = HoldingReceiver(hold=lambda _: True)  # holds the first delivery (the doomed worker's)
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", receiver.url)
    capture.reset()
    try:
        seed_ours(world, name)
        assert schedule_finished(world) == [name]
        doomed = start_worker("--queue-lease", "2")
        try:
            wait_for(lambda: receiver.held == [name], "the first worker to be mid-report")
        finally:
            doomed.kill()  # SIGKILL: no settling, no lease renewal any more
            doomed.communicate(timeout=30)
        assert receiver.received == [] and len(captures(world)) == 1  # not reported, not deleted
        receiver.release.set()  # the endpoint answers again
        survivor = start_worker()
        try:
            wait_for(lambda: receiver.names() == [name], "the report, after the lease lapsed")
            wait_for(lambda: queues.count() == 0, "the message to be deleted")
            assert all(c["properties"]["provisioningState"] == "Deleting" for c in captures(world))
        finally:
            stop(survivor)
        assert receiver.received[0]["outcome"] == "completed"
    finally:
        receiver.stop()


def test_twenty_small_captures_are_reported_while_a_big_one_is_still_being_worked(world, queues, monkeypatch):
    big = "alertcap-vm-web-1-00000000000000b1"
    small = [f"alertcap-vm-web-1-{index:016x}" for index in range(20)]
    # The big capture's report stays in flight until all twenty small ones have arrived: if they
    # waited behind it, they would never arrive.
    receiver = HoldingReceiver(hold=lambda name: name == big)
    monkeypatch.setenv("CAPTURE_NOTIFY_URL", receiver.url)
    capture.reset()
    worker = None
    try:
        seed_ours(world, big, total_bytes=1 << 30)
        for name in small:
            seed_ours(world, name)
        assert sorted(schedule_finished(world)) == sorted([big, *small])
        worker = start_worker()
        wait_for(lambda: big in receiver.held, "the big capture's report to be in flight")
        wait_for(lambda: sorted(receiver.names()) == sorted(small), "the twenty small reports", 120)
        assert set(receiver.held) == {big} and big not in receiver.names()  # still being worked
        receiver.release.set()
        # Its held delivery got no answer: the worker retries it after visibilityTimeout.
        wait_for(lambda: big in receiver.names(), "the big report", 120)
        wait_for(lambda: queues.count() == 0, "every message to be deleted")
    finally:
        if worker is not None:
            stop(worker)
        receiver.stop()
