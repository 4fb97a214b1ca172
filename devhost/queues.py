"""Queue-triggered functions, run the way the Functions host's Azure Storage queue listener runs them.

* **Settings** from host.json ``extensions.queues`` with the documented defaults: ``batchSize`` 16,
  ``newBatchThreshold`` N×batchSize/2 (N = CPUs), ``maxDequeueCount`` 5, ``visibilityTimeout``
  0 (the delay before a failed message is retried), ``maxPollingInterval`` 1 minute,
  ``messageEncoding`` base64.
* **Polling**: a batch of up to ``batchSize`` messages is fetched while no more than
  ``newBatchThreshold`` run; an empty queue is polled again after 100 ms, doubling up to
  ``maxPollingInterval``.
* **While a function runs** its message is invisible to everyone else: it is received with a
  10-minute visibility (the host's value) which is renewed at half-time until the run ends, so a
  crashed process only delays the message until that visibility lapses.
* **Outcome**: success deletes the message; failure makes it visible again after
  ``visibilityTimeout``; a message that failed on its ``maxDequeueCount``-th dequeue (or arrives
  with a higher count, after crashes) is moved to ``<queue>-poison``.
* **Connection** (the binding's ``connection``, as the host resolves it): the app setting
  ``<connection>`` (or ``AzureWebJobs<connection>``) holds a connection string, or
  ``<connection>__queueServiceUri`` names the queue service for an identity-based connection (token
  from ``DefaultAzureCredential``: the managed identity in Azure, the emulator's locally;
  ``<connection>__clientId`` picks a user-assigned identity). An empty connection means
  ``AzureWebJobsStorage``.

Several processes polling one queue split the messages between them through the queue's own
semantics (a received message is invisible to the others), as instances do in Azure.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import os
import re
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from azure.functions.meta import Datum
from azure.functions.queue import QueueMessageInConverter

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueMessage

__all__ = [
    "DEFAULT_LEASE_SECONDS",
    "QueueListener",
    "QueueOptions",
    "QueueTriggerError",
    "connection_description",
    "queue_client_factory",
    "queue_options",
]

log = logging.getLogger("devhost")

DEFAULT_LEASE_SECONDS = 600.0  # the host receives with a 10-minute visibility, renewed while running
MIN_POLL_SECONDS = 0.1  # the host's first back-off step after an empty poll
_TIMESPAN_RE = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


class QueueTriggerError(ValueError):
    """A queue trigger the host could not start: bad host.json settings or no connection."""


@dataclass(frozen=True)
class QueueOptions:
    """host.json ``extensions.queues`` (documented defaults)."""

    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0  # seconds before a failed message is visible again
    max_polling_interval: float = 60.0  # seconds
    message_encoding: str = "base64"


def _seconds(name: str, value: Any, *, int_is_ms: bool = False) -> float:
    """A host.json TimeSpan (``hh:mm:ss[.fff]``, ``d.hh:mm:ss``); a number is milliseconds where the
    host reads it so (``maxPollingInterval``)."""
    if int_is_ms and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000
    match = _TIMESPAN_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise QueueTriggerError(f"host.json extensions.queues.{name}: {value!r} is not a TimeSpan (hh:mm:ss)")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def queue_options(host_json: Mapping[str, Any], cpu_count: int | None = None) -> QueueOptions:
    """Read ``extensions.queues``; out-of-range values are refused as the host refuses them."""
    section = (host_json.get("extensions") or {}).get("queues") or {}
    if not isinstance(section, dict):
        raise QueueTriggerError("host.json extensions.queues must be an object")

    def _int(name: str, default: int, low: int, high: int) -> int:
        value = section.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise QueueTriggerError(f"host.json extensions.queues.{name} must be an integer {low}-{high}")
        return value

    batch_size = _int("batchSize", 16, 1, 32)
    threshold_default = (cpu_count or os.cpu_count() or 1) * batch_size // 2
    encoding = str(section.get("messageEncoding", "base64")).lower()
    if encoding not in ("base64", "none"):
        raise QueueTriggerError("host.json extensions.queues.messageEncoding must be base64 or none")
    polling = _seconds("maxPollingInterval", section.get("maxPollingInterval", "00:01:00"), int_is_ms=True)
    if polling < 0.1:
        raise QueueTriggerError("host.json extensions.queues.maxPollingInterval must be at least 100 ms")
    return QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=_int("newBatchThreshold", threshold_default, 0, 100_000),
        max_dequeue_count=_int("maxDequeueCount", 5, 1, 100_000),
        visibility_timeout=_seconds("visibilityTimeout", section.get("visibilityTimeout", "00:00:00")),
        max_polling_interval=polling,
        message_encoding=encoding,
    )


def _setting_names(connection: str) -> list[str]:
    return [connection, f"AzureWebJobs{connection}"] if connection else ["AzureWebJobsStorage"]


@dataclass(frozen=True)
class _Connection:
    setting: str  # the app setting it resolved from
    connection_string: str | None = None
    service_uri: str | None = None  # identity-based
    client_id: str | None = None  # a user-assigned identity


def _resolve(connection: str, environ: Mapping[str, str]) -> _Connection:
    for name in _setting_names(connection):
        if environ.get(name):
            return _Connection(name, connection_string=environ[name])
        uri = environ.get(f"{name}__queueServiceUri")
        if uri:
            return _Connection(
                f"{name}__queueServiceUri", service_uri=uri, client_id=environ.get(f"{name}__clientId")
            )
    names = " or ".join(f"{n} / {n}__queueServiceUri" for n in _setting_names(connection))
    raise QueueTriggerError(f"connection {connection!r}: no app setting {names}")


def connection_description(connection: str, environ: Mapping[str, str]) -> str:
    """How ``connection`` resolves, without secrets (for the banner); raises when it does not."""
    resolved = _resolve(connection, environ)
    if resolved.service_uri:
        return f"identity, {resolved.service_uri}"
    return f"connection string in {resolved.setting}"


def queue_client_factory(connection: str, environ: Mapping[str, str]) -> Callable[[str], QueueClient]:
    """``queue name -> QueueClient`` for the binding's connection, resolved as the host resolves it.

    Clients send and read message text as is: base64 decoding is the listener's job, so a message
    moved to the poison queue keeps its exact content.
    """
    from azure.storage.queue import QueueServiceClient

    resolved = _resolve(connection, environ)
    if resolved.connection_string:
        return QueueServiceClient.from_connection_string(resolved.connection_string).get_queue_client
    from azure.identity import DefaultAzureCredential

    credential = DefaultAzureCredential(
        exclude_interactive_browser_credential=True, managed_identity_client_id=resolved.client_id
    )
    return QueueServiceClient(str(resolved.service_uri), credential=credential).get_queue_client


def _datetime_text(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


class QueueListener:
    """Polls one queue for one function and runs its messages (see the module docstring)."""

    def __init__(
        self,
        function_name: str,
        queue_name: str,
        clients: Callable[[str], QueueClient],
        invoke: Callable[[Any], Any],
        options: QueueOptions,
        *,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        max_poll_seconds: float | None = None,
        mask: Callable[[str], str] = lambda text: text,
    ) -> None:
        self.function_name = function_name
        self.queue_name = queue_name
        self.options = options
        self._queue = clients(queue_name)
        self._poison_name = f"{queue_name}-poison"
        self._poison = clients(self._poison_name)
        self._invoke = invoke
        self._lease = max(1, round(lease_seconds))
        self._max_poll = min(options.max_polling_interval, max_poll_seconds or options.max_polling_interval)
        self._min_poll = min(MIN_POLL_SECONDS, self._max_poll)
        self._mask = mask
        self._cond = threading.Condition()
        self._in_flight = 0
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(
            max_workers=options.batch_size + options.new_batch_threshold,
            thread_name_prefix=f"devhost-queue-{function_name}",
        )
        self._thread = threading.Thread(
            target=self._poll_loop, name=f"devhost-queue-poll-{function_name}", daemon=True
        )
        self._poll_failing = False

    def start(self) -> QueueListener:
        self._thread.start()
        return self

    def stop(self, deadline: float) -> None:
        """Stop polling; wait for running messages until ``deadline`` (monotonic). A message still
        running afterwards stays invisible until its visibility lapses, as after a crash."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._cond.wait_for(lambda: self._in_flight == 0, timeout=max(0.0, deadline - time.monotonic()))
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- polling ---------------------------------------------------------------------------------

    def _poll_loop(self) -> None:
        delay = self._min_poll
        while not self._stopping.is_set():
            with self._cond:  # a new batch only once no more than newBatchThreshold messages run
                self._cond.wait_for(
                    lambda: self._in_flight <= self.options.new_batch_threshold or self._stopping.is_set()
                )
            if self._stopping.is_set():
                return
            messages = self._receive()
            if not messages:
                if self._stopping.wait(delay):
                    return
                delay = min(delay * 2, self._max_poll)
                continue
            delay = self._min_poll
            with self._cond:
                self._in_flight += len(messages)
            for message in messages:
                self._pool.submit(self._process, message)

    def _receive(self) -> list[QueueMessage]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            pages = self._queue.receive_messages(
                messages_per_page=self.options.batch_size, visibility_timeout=self._lease
            ).by_page()
            messages = list(next(pages, []))
        except ResourceNotFoundError:
            messages = []  # the queue does not exist yet: keep polling, as the host does
        except Exception as exc:  # Azurite down, a bad URI, no token: say so once, keep polling
            if not self._poll_failing:
                log.warning(
                    "queue %r of function %s cannot be polled: %s", self.queue_name, self.function_name, exc
                )
            self._poll_failing = True
            return []
        if self._poll_failing:
            log.info("queue %r of function %s can be polled again", self.queue_name, self.function_name)
            self._poll_failing = False
        return messages

    # -- one message -----------------------------------------------------------------------------

    def _process(self, message: QueueMessage) -> None:
        try:
            self._handle(message)
        except Exception:  # a storage error while settling: the message reappears after its lease
            log.error(
                "function %s: message %s could not be settled\n%s",
                self.function_name,
                message.id,
                self._mask(traceback.format_exc().rstrip()),
            )
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    def _handle(self, message: QueueMessage) -> None:
        if message.dequeue_count is not None and message.dequeue_count > self.options.max_dequeue_count:
            self._to_poison(message, message.pop_receipt)  # it failed (or its process died) too often
            return
        try:
            body = self._decode(message.content)
        except ValueError:
            log.warning(
                "function %s: message %s is not valid base64 (messageEncoding base64)",
                self.function_name,
                message.id,
            )
            self._to_poison(message, message.pop_receipt)
            return
        lease = _Lease(self._queue, message, self._lease)
        succeeded = False
        started = time.perf_counter()
        log.info(
            "Executing 'Functions.%s' (Reason='New queue message detected on '%s'.', Id=%s)",
            self.function_name,
            self.queue_name,
            uuid.uuid4(),
        )
        log.info("Trigger Details: MessageId: %s, DequeueCount: %s", message.id, message.dequeue_count)
        try:
            self._invoke(self._function_argument(message, body, lease.pop_receipt))
            succeeded = True
        except Exception:
            log.error(
                "Executed 'Functions.%s' (Failed, Duration=%.0fms)\n%s",
                self.function_name,
                (time.perf_counter() - started) * 1000,
                self._mask(traceback.format_exc().rstrip()),
            )
        finally:
            pop_receipt = lease.end()
        if succeeded:
            log.info(
                "Executed 'Functions.%s' (Succeeded, Duration=%.0fms)",
                self.function_name,
                (time.perf_counter() - started) * 1000,
            )
            self._queue.delete_message(message.id, pop_receipt)
        elif (message.dequeue_count or 0) >= self.options.max_dequeue_count:
            self._to_poison(message, pop_receipt)
        else:
            self._queue.update_message(
                message.id, pop_receipt, visibility_timeout=round(self.options.visibility_timeout)
            )

    def _decode(self, content: Any) -> bytes:
        raw = content.encode("utf-8") if isinstance(content, str) else bytes(content or b"")
        if self.options.message_encoding == "base64":
            try:
                return base64.b64decode(raw, validate=True)
            except binascii.Error as exc:
                raise ValueError("not base64") from exc
        return raw

    def _function_argument(self, message: QueueMessage, body: bytes, pop_receipt: str | None) -> Any:
        """A ``func.QueueMessage`` built by the worker's own converter from what the host sends."""
        try:
            datum = Datum(body.decode("utf-8"), "string")
        except UnicodeDecodeError:
            datum = Datum(body, "bytes")
        metadata = {
            "Id": Datum(message.id, "string"),
            "DequeueCount": Datum(str(message.dequeue_count or 0), "json"),
            "InsertionTime": Datum(_datetime_text(message.inserted_on), "string"),
            "ExpirationTime": Datum(_datetime_text(message.expires_on), "string"),
            "NextVisibleTime": Datum(_datetime_text(message.next_visible_on), "string"),
            "PopReceipt": Datum(pop_receipt, "string"),
        }
        return QueueMessageInConverter.decode(datum, trigger_metadata=metadata)

    def _to_poison(self, message: QueueMessage, pop_receipt: str | None) -> None:
        from azure.core.exceptions import ResourceExistsError

        log.warning(
            "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
            self.options.max_dequeue_count,
            self._poison_name,
        )
        with contextlib.suppress(ResourceExistsError):
            self._poison.create_queue()
        self._poison.send_message(message.content)
        self._queue.delete_message(message.id, pop_receipt)


class _Lease:
    """Keeps a running message invisible: renews its visibility at half-time until :meth:`end`."""

    def __init__(self, queue: QueueClient, message: QueueMessage, seconds: int) -> None:
        self._queue = queue
        self._id = message.id
        self.pop_receipt: str | None = message.pop_receipt
        self._seconds = seconds
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._renew, name="devhost-queue-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._done.wait(self._seconds / 2):
            with self._lock:
                try:
                    receipt = self._queue.update_message(
                        self._id, self.pop_receipt, visibility_timeout=self._seconds
                    )
                    self.pop_receipt = receipt.pop_receipt
                except Exception as exc:  # lost: another host may now have it; settling will fail
                    log.warning("message %s: visibility could not be renewed: %s", self._id, exc)
                    return

    def end(self) -> str | None:
        """Stop renewing; the current pop receipt (the one settling the message needs)."""
        self._done.set()
        self._thread.join()
        with self._lock:
            return self.pop_receipt
