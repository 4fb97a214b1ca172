"""The follow-through queue: one message per finished capture, enqueued once across runs and instances.

Idempotency rests on storage's own atomic write, not on any lock of ours: before enqueueing, the
scheduler creates a marker blob beside the capture file with `If-None-Match: *` (create only if
absent). Exactly one of any number of overlapping runs, on any instance, gets the create; the others
get 409/412 and leave the capture alone. The marker's states:

* `pending`: written, message not sent yet. The writer sends the message, then moves the marker to
  `queued` (`If-Match` its ETag). When the send fails it deletes the marker (`If-Match`), so the next
  run tries again; when the writer died in between, a `pending` marker older than PENDING_STALE_SECONDS
  is taken over (an `If-Match` overwrite: again exactly one run wins) and the message sent.
* `queued`: a message is in the queue or being worked. If the capture still exists
  CAPTURE_REQUEUE_AFTER_SECONDS later (the message was lost: a cleared queue, a poison message whose
  handler never ran), it is taken over and sent again the same way.
* `poisoned`: the poison-queue function reported the capture as failed; it is kept and never queued
  again (an operator deletes it after reading the report).

The marker lives in the capture storage account (the app already writes summaries there) and is
removed with the capture's other blobs by the container's lifecycle rule. Its path contains the
capture's start time, so a later capture that reuses the name (a late retry of the same alert) gets
a new marker. Without a storage account (CAPTURE_LOCAL_PATH only) there is nowhere to write one: the
message is sent every time the capture is found finished, and the worker's ARM re-check makes the
repeats harmless except for a possible second notification.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from capture.blobs import Blobs, account_url
from capture.errors import InputError
from capture.naming import blob_location
from capture.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobClient
    from azure.storage.queue import QueueClient

__all__ = ["PENDING_STALE_SECONDS", "Enqueued", "ReportQueue", "ReportRequest", "parse_request"]

log = logging.getLogger(__name__)

PENDING_STALE_SECONDS = 120.0  # a marker written but never followed by its message: the writer died
MARKER_SUFFIX = ".queued.json"
MAX_MESSAGE_BYTES = 16_000  # far below the queue's 64 KiB; a message names a capture, nothing more

Enqueued = Literal["queued", "requeued", "already_queued", "poisoned", "failed"]


class ReportRequest(BaseModel):
    """The queue message: which capture to report (everything else is read again from ARM).

    `kind` "timeline" names a flight-recorder post-alert ring: its report is the frozen ring's timeline
    around the alert (capture.recorder); the marker sits beside the post ring's file like any other.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)

    kind: Literal["capture", "timeline"] = "capture"
    capture: str = Field(min_length=1, max_length=80)
    watcher: str = Field(min_length=1, max_length=1000)
    region: str = Field(min_length=1, max_length=64)
    storage_path: str | None = Field(default=None, max_length=2048)
    queued_at: datetime

    def to_message(self) -> str:
        return self.model_dump_json(by_alias=True)


def parse_request(body: bytes | str) -> ReportRequest:
    """A message's report request; raises InputError for anything else (it is then dropped, logged)."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise InputError(f"the message has {len(body)} bytes; a report request has far fewer", "message")
    try:
        return ReportRequest.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "message"
        raise InputError(f"not a report request: {first['msg']}", where) from None


class _Marker(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    state: Literal["pending", "queued", "poisoned"]
    at: datetime
    attempts: int = 1
    last_error: str | None = None


class ReportQueue:
    """Sends report requests to CAPTURE_QUEUE_NAME, once per capture (see the module docstring)."""

    def __init__(self, settings: Settings, credential: Callable[[], TokenCredential], blobs: Blobs) -> None:
        self.settings = settings
        self._credential = credential
        self._blobs = blobs
        self._lock = threading.Lock()
        self._client: QueueClient | None = None

    def client(self) -> QueueClient:
        """The `CaptureQueue` connection's queue (identity-based; base64 messages, as the host reads them)."""
        with self._lock:
            if self._client is None:
                from azure.storage.queue import (
                    BinaryBase64DecodePolicy,
                    BinaryBase64EncodePolicy,
                    LinearRetry,
                    QueueClient,
                )

                if not self.settings.queue_service_uri:
                    raise RuntimeError(
                        "CaptureQueue__queueServiceUri is not set: the follow-through cannot queue reports"
                    )
                self._client = QueueClient(
                    self.settings.queue_service_uri,
                    self.settings.queue_name,
                    credential=self._credential(),
                    message_encode_policy=BinaryBase64EncodePolicy(),
                    message_decode_policy=BinaryBase64DecodePolicy(),
                    retry_policy=LinearRetry(backoff=1, random_jitter_range=0, retry_total=2),
                    connection_timeout=5,
                    read_timeout=30,
                )
            return self._client

    def _send(self, request: ReportRequest) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        body = request.to_message().encode()
        try:
            self.client().send_message(body)
        except ResourceNotFoundError:
            # The template creates the queue; locally, or after someone deleted it, create it once.
            self.client().create_queue()
            self.client().send_message(body)

    def _marker(self, request: ReportRequest) -> BlobClient | None:
        path = request.storage_path
        url = account_url(self.settings, path)
        if not path or url is None:
            return None
        container, name = blob_location(path)
        stem = name[: -len(".cap")] if name.endswith(".cap") else name
        return self._blobs.service(url).get_blob_client(container, stem + MARKER_SUFFIX)

    def enqueue_once(self, request: ReportRequest) -> Enqueued:
        """Send the request unless this capture is already queued or poisoned; never raises for storage."""
        from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError

        if not self.settings.queue_service_uri:
            _log_failure(
                logging.ERROR, "capture_enqueue_failed", request, "CaptureQueue__queueServiceUri is not set"
            )
            return "failed"
        marker = self._marker(request)
        if marker is None:
            return self._send_plain(request)
        now = request.queued_at
        try:
            written = marker.upload_blob(_dump(_Marker(state="pending", at=now)), overwrite=False)
            return self._send_marked(marker, request, str(written["etag"]), "queued")
        except (ResourceExistsError, ResourceModifiedError):
            pass
        except AzureError as exc:
            _log_failure(logging.WARNING, "capture_marker_failed", request, type(exc).__name__)
            return "failed"
        return self._take_over_if_stale(marker, request)

    def _send_plain(self, request: ReportRequest) -> Enqueued:
        from azure.core.exceptions import AzureError

        try:
            self._send(request)
        except AzureError as exc:
            _log_failure(logging.WARNING, "capture_enqueue_failed", request, type(exc).__name__)
            return "failed"
        return "queued"

    def _send_marked(
        self, marker: BlobClient, request: ReportRequest, etag: str, outcome: Enqueued
    ) -> Enqueued:
        """Send the message under a pending marker we hold; undo the marker when the send fails."""
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError

        try:
            self._send(request)
        except AzureError as exc:
            _log_failure(logging.WARNING, "capture_enqueue_failed", request, type(exc).__name__)
            # Let the next run try again at once rather than after PENDING_STALE_SECONDS.
            with contextlib.suppress(AzureError):
                marker.delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
            return "failed"
        try:
            current = self._read(marker)
            attempts = current[0].attempts if current else 1
            queued = _Marker(state="queued", at=request.queued_at, attempts=attempts)
            marker.upload_blob(
                _dump(queued), overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except AzureError:
            pass  # still pending: at worst taken over after PENDING_STALE_SECONDS, a harmless duplicate
        return outcome

    def _read(self, marker: BlobClient) -> tuple[_Marker, str] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            downloader = marker.download_blob()
            data = downloader.readall()
        except ResourceNotFoundError:
            return None
        try:
            return _Marker.model_validate_json(data), str(downloader.properties.etag)
        except ValidationError:
            return _Marker(state="pending", at=datetime.min.replace(tzinfo=None)), str(
                downloader.properties.etag
            )

    def _take_over_if_stale(self, marker: BlobClient, request: ReportRequest) -> Enqueued:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, ResourceModifiedError

        try:
            current = self._read(marker)
        except AzureError:
            return "failed"
        if current is None:
            return "already_queued"  # deleted in between (a send failed): the next run queues it
        state, etag = current
        if state.state == "poisoned":
            return "poisoned"
        stale_after = (
            PENDING_STALE_SECONDS if state.state == "pending" else self.settings.requeue_after_seconds
        )
        if _age(request.queued_at, state.at) < stale_after:
            return "already_queued"
        taken = _Marker(
            state="pending", at=request.queued_at, attempts=state.attempts + 1, last_error=state.last_error
        )
        try:
            written = marker.upload_blob(
                _dump(taken), overwrite=True, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except ResourceModifiedError:
            return "already_queued"  # another run took it over first
        except AzureError:
            return "failed"
        log.info(
            json.dumps(
                {
                    "event": "capture_requeued",
                    "capture": request.capture,
                    "was": state.state,
                    "attempts": taken.attempts,
                }
            )
        )
        return self._send_marked(marker, request, str(written["etag"]), "requeued")

    def release(self, request: ReportRequest) -> None:
        """Forget the marker: the capture is not finished after all, the scheduler queues it when it is."""
        from azure.core.exceptions import AzureError

        marker = self._marker(request)
        if marker is not None:
            with contextlib.suppress(AzureError):
                marker.delete_blob()

    def note_failure(self, request: ReportRequest, error: str) -> None:
        """Keep the last failure beside the marker, for the poison report's reason (best effort)."""
        self._update(request, lambda m: m.model_copy(update={"last_error": error[:500]}))

    def mark_poisoned(self, request: ReportRequest) -> str | None:
        """Never queue this capture again; returns the last failure a worker noted."""
        before = self._update(request, lambda m: m.model_copy(update={"state": "poisoned"}))
        return before.last_error if before else None

    def _update(self, request: ReportRequest, change: Callable[[_Marker], _Marker]) -> _Marker | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError

        marker = self._marker(request)
        if marker is None:
            return None
        for _ in range(3):  # compare-and-swap against concurrent writers
            try:
                current = self._read(marker)
                if current is None:
                    fresh = _Marker(state="queued", at=request.queued_at)
                    marker.upload_blob(_dump(change(fresh)), overwrite=False)
                    return None
                state, etag = current
                marker.upload_blob(
                    _dump(change(state)),
                    overwrite=True,
                    etag=etag,
                    match_condition=MatchConditions.IfNotModified,
                )
                return state
            except AzureError:
                continue
        return None


def _log_failure(level: int, event: str, request: ReportRequest, error: str) -> None:
    log.log(level, json.dumps({"event": event, "capture": request.capture, "error": error}))


def _dump(marker: _Marker) -> bytes:
    return marker.model_dump_json(by_alias=True).encode()


def _age(now: datetime, then: datetime) -> float:
    if then.tzinfo is None or now.tzinfo is None:
        return float("inf")
    return (now - then) / timedelta(seconds=1)
