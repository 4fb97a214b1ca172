"""Queue triggers against Azurite's queue service: delivery, retries, poison, batches, several hosts."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient

from devhost import LocalHost
from devhost.process import start_queue_host
from devhost.queues import QueueOptions, QueueTriggerError, connection_description, queue_options
from emulator import FOREIGN_CREDENTIAL_ENV, Emulator
from emulator.azurite import Azurite
from emulator.testing import SAMPLE_WORLD
from tests.devhost.devhost_support import SAMPLE_APP

KEY = "queue-key-7a1f"


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll ``condition`` until it is truthy; fail with ``what`` at the deadline (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        threading.Event().wait(0.02)


def send(queue: QueueClient, order: dict[str, Any]) -> str:
    """Enqueue as an app would for a host with messageEncoding base64; returns the message id."""
    return str(queue.send_message(base64.b64encode(json.dumps(order).encode()).decode()).id)


def visible(queue: QueueClient) -> int:
    return len(peek(queue))


def peek(queue: QueueClient) -> list[Any]:
    """The visible messages ([] while the queue does not exist)."""
    try:
        return list(queue.peek_messages(max_messages=32))
    except ResourceNotFoundError:
        return []


@pytest.fixture
def queues(
    monkeypatch: pytest.MonkeyPatch, azurite_queue: Azurite, tls_files: tuple[Path, Path]
) -> tuple[QueueClient, QueueClient]:
    """A fresh queue for this test (``%SAMPLE_QUEUE%``), the sample app's connection pointed at Azurite."""
    name = f"work-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("SAMPLE_QUEUE", name)
    monkeypatch.setenv("SampleQueue", azurite_queue.connection_string)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files[0]))
    monkeypatch.setenv("SAMPLE_TICK_SCHEDULE", "0 0 0 1 1 *")
    main = QueueClient.from_connection_string(azurite_queue.connection_string, name)
    main.create_queue()
    poison = QueueClient.from_connection_string(azurite_queue.connection_string, f"{name}-poison")
    return main, poison


@pytest.fixture
def host(queues: tuple[QueueClient, QueueClient]) -> Iterator[LocalHost]:
    with LocalHost(
        SAMPLE_APP, key=KEY, load_settings=False, run_queues=True, queue_poll_interval=0.05
    ) as running:
        yield running


def calls(host: LocalHost) -> list[tuple[float, Any]]:
    module = host.loaded.module
    with module.QUEUE_LOCK:
        return list(module.QUEUE_CALLS)


def test_host_json_queue_settings_and_their_documented_defaults() -> None:
    assert queue_options({}, cpu_count=2) == QueueOptions(
        batch_size=16,
        new_batch_threshold=16,  # N x batchSize / 2, N = 2 CPUs
        max_dequeue_count=5,
        visibility_timeout=0.0,
        max_polling_interval=60.0,
        message_encoding="base64",
    )
    sample = json.loads((SAMPLE_APP / "host.json").read_text())
    assert queue_options(sample) == QueueOptions(2, 1, 3, 1.0, 2.0, "base64")
    assert queue_options({"extensions": {"queues": {"maxPollingInterval": 2000}}}).max_polling_interval == 2.0
    for bad in ({"batchSize": 33}, {"visibilityTimeout": "soon"}, {"maxPollingInterval": "00:00:00.01"}):
        with pytest.raises(QueueTriggerError):
            queue_options({"extensions": {"queues": bad}})


def test_connections_resolve_like_the_host_and_never_show_the_secret() -> None:
    secret = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0;QueueEndpoint=https://q"
    uri = "https://account.queue.core.windows.net"
    assert (
        connection_description("CaptureQueue", {"CaptureQueue": secret})
        == "connection string in CaptureQueue"
    )
    assert (
        connection_description("CaptureQueue", {"CaptureQueue__queueServiceUri": uri}) == f"identity, {uri}"
    )
    assert (
        connection_description("Jobs", {"AzureWebJobsJobs": secret})
        == "connection string in AzureWebJobsJobs"
    )
    assert (
        connection_description("", {"AzureWebJobsStorage": secret})
        == "connection string in AzureWebJobsStorage"
    )
    with pytest.raises(QueueTriggerError, match="CaptureQueue__queueServiceUri"):
        connection_description("CaptureQueue", {"OtherQueue": secret})


def test_a_message_reaches_the_function_as_a_queue_message_and_is_deleted(
    host: LocalHost, queues: tuple[QueueClient, QueueClient]
) -> None:
    queue, _ = queues
    sent_at = datetime.now(UTC)
    message_id = send(queue, {"action": "ok", "capture": "alertcap-vm-1"})
    [(_, message)] = wait_for(lambda: calls(host), "the function to run")
    assert message.id == message_id
    assert message.get_json() == {"action": "ok", "capture": "alertcap-vm-1"}
    assert message.dequeue_count == 1
    assert message.pop_receipt
    assert abs(message.insertion_time - sent_at) < timedelta(seconds=5)
    assert message.expiration_time > message.insertion_time
    assert message.time_next_visible > sent_at  # invisible to others while it runs
    wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, "the message to be deleted")
    assert len(calls(host)) == 1
    info = {f.name: f for f in host.functions}["work"]
    assert (info.trigger, info.queue, info.connection) == ("queueTrigger", queue.queue_name, "SampleQueue")


def test_a_failed_message_is_retried_after_the_visibility_timeout(
    host: LocalHost, queues: tuple[QueueClient, QueueClient]
) -> None:
    queue, _ = queues
    send(queue, {"action": "fail-once"})
    first, second = wait_for(lambda: len(calls(host)) == 2 and calls(host), "the retry")
    assert (first[1].dequeue_count, second[1].dequeue_count) == (1, 2)
    assert second[0] - first[0] >= 0.9  # host.json visibilityTimeout 00:00:01
    wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, "the message to be deleted")


def test_a_message_that_keeps_failing_moves_to_the_poison_queue_after_max_dequeue_count(
    host: LocalHost, queues: tuple[QueueClient, QueueClient], caplog: pytest.LogCaptureFixture
) -> None:
    queue, poison = queues
    order = {"action": "fail", "capture": "alertcap-broken"}
    send(queue, order)
    moved = wait_for(lambda: peek(poison), "the poison queue")
    assert [json.loads(base64.b64decode(m.content)) for m in moved] == [order]  # the same content
    assert [m.dequeue_count for _, m in calls(host)] == [1, 2, 3]  # host.json maxDequeueCount 3
    wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, "the original to go")
    assert f"Moving message to queue '{poison.queue_name}'" in caplog.text
    assert "RuntimeError: fail as asked" in caplog.text


def test_batches_of_batch_size_and_a_new_batch_at_new_batch_threshold(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    queue, _ = queues
    for _ in range(6):  # all queued before the host polls, so its first receive sees all six
        send(queue, {"action": "gate"})
    with LocalHost(
        SAMPLE_APP, key=KEY, load_settings=False, run_queues=True, queue_poll_interval=0.05
    ) as host:
        module = host.loaded.module
        try:
            # batchSize 2: two run at once; the other four stay visible while above newBatchThreshold 1.
            wait_for(lambda: module.QUEUE_RUNNING[0] == 2 and visible(queue) == 4, "the first batch of 2")
            module.QUEUE_GATE.release()  # one finishes: 1 running <= threshold 1, so a new batch of 2
            wait_for(lambda: module.QUEUE_RUNNING[0] == 3 and visible(queue) == 2, "a batch at the threshold")
        finally:
            module.QUEUE_GATE.release(6)
        wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, "all six to finish")
        assert len(calls(host)) == 6
        assert {m.dequeue_count for _, m in calls(host)} == {1}


def test_a_connection_that_does_not_resolve_stops_the_start(
    queues: tuple[QueueClient, QueueClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SampleQueue")
    host = LocalHost(SAMPLE_APP, key=KEY, load_settings=False, run_queues=True)
    try:
        assert "SampleQueue__queueServiceUri" in ({f.name: f for f in host.functions}["work"].problem or "")
        with pytest.raises(QueueTriggerError, match="SampleQueue"):
            host.start()
    finally:
        host.stop()


def test_identity_based_connection_uses_the_apps_credential(
    queues: tuple[QueueClient, QueueClient],
    monkeypatch: pytest.MonkeyPatch,
    azurite_queue: Azurite,
    tls_files: tuple[Path, Path],
) -> None:
    queue, _ = queues
    monkeypatch.delenv("SampleQueue")
    monkeypatch.setenv("SampleQueue__queueServiceUri", azurite_queue.queue_endpoint)
    for name in FOREIGN_CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    with Emulator(SAMPLE_WORLD, time_scale=0.0, cert_dir=tls_files[0].parent) as emu:
        for name, value in emu.env().items():  # the managed-identity endpoint the credential uses
            monkeypatch.setenv(name, value)
        with LocalHost(
            SAMPLE_APP, key=KEY, load_settings=False, run_queues=True, queue_poll_interval=0.05
        ) as host:
            assert "identity, https://" in host.banner()
            send(queue, {"action": "ok"})
            wait_for(lambda: calls(host), "the function to run")
            wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, "the delete")
        assert any("storage.azure.com" in entry.query.get("resource", "") for entry in emu.identity_log)


def start_host_process(*args: str) -> subprocess.Popen[str]:
    return start_queue_host(SAMPLE_APP, *args, key=KEY, poll_interval="0.05", keep_stderr=True)


def test_two_host_processes_on_one_queue_split_the_messages(
    queues: tuple[QueueClient, QueueClient], tmp_path: Path
) -> None:
    queue, _ = queues
    hosts = [start_host_process(), start_host_process()]
    try:
        # Four messages that finish only once all four run at the same time. One host runs at most
        # two before one finishes (batchSize 2, newBatchThreshold 1), so this needs both hosts.
        ids = {send(queue, {"action": "rendezvous", "dir": str(tmp_path), "parties": 4}) for _ in range(4)}
        done = wait_for(lambda: len(found := list(tmp_path.glob("done-*"))) == 4 and found, "all four", 60)
        assert {p.name.removeprefix("done-") for p in done} == ids
        assert {p.read_text().split()[0] for p in done} == {str(h.pid) for h in hosts}
        wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, "the deletes")
    finally:
        for proc in hosts:
            proc.terminate()
        for proc in hosts:
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 0, err


def test_a_running_message_stays_invisible_past_its_lease_because_the_host_renews_it(
    queues: tuple[QueueClient, QueueClient],
) -> None:
    queue, _ = queues
    send(queue, {"action": "gate"})
    with LocalHost(
        SAMPLE_APP, key=KEY, load_settings=False, run_queues=True, queue_poll_interval=0.05, queue_lease=2
    ) as host:
        module = host.loaded.module
        try:
            started = wait_for(lambda: calls(host), "the function to start")[0][0]
            # Let the 2-second lease pass twice over: renewed at half-time, the message never shows.
            while time.monotonic() < started + 4.5:
                assert visible(queue) == 0
                threading.Event().wait(0.2)
        finally:
            module.QUEUE_GATE.release()
        wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, "the delete")
        assert len(calls(host)) == 1  # deleted with the renewed pop receipt, never redelivered


def test_a_message_whose_process_was_killed_is_delivered_again_after_its_lease(
    queues: tuple[QueueClient, QueueClient], tmp_path: Path
) -> None:
    queue, _ = queues
    doomed = start_host_process("--queue-lease", "2")
    try:
        message_id = send(queue, {"action": "stall-first", "dir": str(tmp_path)})
        wait_for(lambda: (tmp_path / f"stalled-{message_id}").exists(), "the first run to start")
    finally:
        doomed.kill()  # SIGKILL mid-run: no settling, no renewal any more
        doomed.communicate(timeout=30)
    survivor = start_host_process()
    try:
        done = tmp_path / f"done-{message_id}"
        wait_for(done.exists, "the second delivery", 60)
        assert done.read_text() == f"{survivor.pid} 2"
        wait_for(lambda: queue.get_queue_properties().approximate_message_count == 0, "the delete")
    finally:
        survivor.terminate()
        _, err = survivor.communicate(timeout=30)
    assert survivor.returncode == 0, err
