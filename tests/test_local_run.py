"""`make run`'s pieces end to end: emulator + Azurite + local host, real HTTP, every sample, README curls."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import capture
from devhost.stack import SAMPLES, LocalStack

ROOT = Path(__file__).resolve().parents[1]
QUEUE_SETTING = "CaptureQueue__queueServiceUri"  # Functions' spelling: <connection>__queueServiceUri
README_PORT = "localhost:7071/"  # where the README's curl lines point (`make run`)
EXPECTED = {
    "01-metric-fired-vm.json": (202, "started"),
    "02-metric-resolved-vm.json": (200, "ignored"),
    "03-log-search-fired-vm.json": (202, "started"),
    "04-classic-webhook-vm.json": (202, "started"),
    "05-scale-set-instance-fired.json": (202, "started"),
    "06-non-vm-alert.json": (200, "ignored"),
    "07-manual-request.json": (502, "failed"),
    "08-malformed-body.json": (400, "rejected"),
}


def http(method: str, url: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"] == "application/json"
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_every_sample_through_the_local_host_then_a_notification(azurite):
    with LocalStack(
        port=0, key="test-key", time_scale=0.0, monitor_interval=None, echo_notifications=False
    ) as stack:
        base = stack.url.rstrip("/") + "/api"
        assert set(EXPECTED) == {p.name for p in SAMPLES.glob("*.json")}
        for name, (status, word) in EXPECTED.items():
            got_status, answer = http("POST", f"{base}/alerts?code=test-key", (SAMPLES / name).read_bytes())
            assert (got_status, answer["status"]) == (status, word), (name, answer)
        status, listing = http("GET", f"{base}/captures?code=test-key")
        assert status == 200 and listing["count"] == 4
        stack.emulator.advance(120)
        assert stack.host is not None
        capture.app_context().monitor.clock = stack.emulator.clock.now_datetime  # the app on emulated time
        stack.host.trigger_timer("capture_monitor")  # queues the four; the host's queue listener reports them
        deadline = time.monotonic() + 60
        while len(stack.receiver.received) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(stack.receiver.received) == 4
        assert {n["capture"]["vm"] for n in stack.receiver.received} == {
            "vm-web-1",
            "vm-db-1",
            "vm-weu-1",
            "vmss-api-1",
        }
        for note in stack.receiver.received:
            assert note["analysis"]["notable"], note["analysis"]


def test_wrong_or_missing_key_is_401():
    with LocalStack(
        port=0, key="test-key", time_scale=0.0, monitor_interval=None, echo_notifications=False
    ) as stack:
        url = stack.url.rstrip("/") + "/api/alerts"
        request = urllib.request.Request(url + "?code=nope", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code == 401


def readme_curls() -> list[tuple[str, int, str]]:
    commands = []
    for line in (ROOT / "README.md").read_text().splitlines():
        match = re.match(r"^(curl .+?)\s+# (\d{3}) (\w+)", line)
        if match:
            commands.append((match.group(1), int(match.group(2)), match.group(3)))
    return commands


def test_readme_curl_commands_give_the_documented_answers(azurite):
    commands = readme_curls()
    assert len(commands) >= 9
    assert all(README_PORT in command for command, _, _ in commands)
    assert shutil.which("curl"), "curl is needed to run the README's commands"
    # The README's lines as written, on a free port: `make run` may hold 7071 in another terminal.
    with LocalStack(
        port=0, key="local-dev-key", time_scale=0.0, monitor_interval=None, echo_notifications=False
    ) as stack:
        assert stack.host is not None
        for command, status, word in commands:
            command = command.replace(README_PORT, f"localhost:{stack.host.port}/")
            output = subprocess.run(
                command + " -w '\\n%{http_code}'",
                shell=True,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            body, _, code = output.rpartition("\n")
            assert (int(code), json.loads(body)["status"]) == (status, word), command


def test_the_app_gets_an_identity_based_queue_connection_to_azurite(azurite):
    from azure.identity import DefaultAzureCredential
    from azure.storage.queue import QueueServiceClient

    with LocalStack(
        port=0, key="test-key", time_scale=0.0, monitor_interval=None, echo_notifications=False
    ) as stack:
        assert stack.azurite_queue is not None
        uri = os.environ.get(QUEUE_SETTING)  # the app's connection "CaptureQueue"
        assert uri == stack.azurite_queue.queue_endpoint
        assert "CaptureQueue" not in os.environ  # no connection string: identity only, as in Azure
        credential = DefaultAzureCredential(exclude_interactive_browser_credential=True)
        queue = QueueServiceClient(uri, credential=credential).get_queue_client("probe")
        queue.create_queue()
        queue.send_message("hello")
        assert [m.content for m in queue.receive_messages()] == ["hello"]
    assert QUEUE_SETTING not in os.environ


def test_the_stack_stops_what_writes_to_azurite_before_azurite(azurite, monkeypatch):
    # The emulator's stop hook writes capture files to Azurite: stopping Azurite first left `make demo`
    # with tracebacks from hooks still running. The app goes first: it calls all the others.
    stopped: list[str] = []
    with LocalStack(
        port=0, key="test-key", time_scale=0.0, monitor_interval=None, echo_notifications=False
    ) as stack:
        pieces: dict[str, Any] = {
            "app": stack.host,
            "emulator": stack.emulator,
            "azurite-blob": stack.azurite,
            "azurite-queue": stack.azurite_queue,
            "receiver": stack.receiver,
        }
        for name, piece in pieces.items():

            def stop(real: Any = piece.stop, name: str = name, **kwargs: Any) -> None:
                stopped.append(name)
                real(**kwargs)

            monkeypatch.setattr(piece, "stop", stop)
    assert stopped == ["app", "emulator", "azurite-blob", "azurite-queue", "receiver"]
    assert stack.emulator.on_capture_stopped is None  # no hook starts while the emulator stops
