"""Capture files in blob storage: stream one into the analyser, store its findings beside it.

Access uses the app's own identity (azure-storage-blob with the same credential as ARM), so the app
needs `Storage Blob Data Contributor` on the capture container: read the `.cap`, write the summary.
`CAPTURE_BLOB_ENDPOINT` points blob access at another endpoint (Azurite locally), the way
`ARM_ENDPOINT` does for ARM; the container and blob path always come from the capture's storage path.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from capture.naming import CONTAINER, blob_location
from capture.notify import Report
from capture.settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobServiceClient

    from capture.arm import Arm
    from capture.monitor import Analyzer

log = logging.getLogger(__name__)

REPORTS_PREFIX = "alert-captures/_reports/"


class ChunkStream(io.RawIOBase):
    """A read-only file over a blob download's chunks: the analyser streams, nothing is held whole."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def account_url(settings: Settings, storage_path: str | None = None) -> str | None:
    """Where blob requests go: CAPTURE_BLOB_ENDPOINT, else the account's public endpoint."""
    if settings.blob_endpoint:
        return settings.blob_endpoint
    if storage_path:
        from urllib.parse import urlsplit

        parts = urlsplit(storage_path)
        return f"{parts.scheme}://{parts.netloc}"
    if settings.storage_account_name:
        return f"https://{settings.storage_account_name}.blob.core.windows.net"
    return None


def _service(url: str, credential: TokenCredential) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient, LinearRetry

    # The storage SDK's default first backoff is 15 s; the monitor runs again within a minute anyway.
    retry = LinearRetry(backoff=1, random_jitter_range=0, retry_total=2)
    return BlobServiceClient(
        url, credential=credential, retry_policy=retry, connection_timeout=5, read_timeout=60
    )


def _sibling(path: str, suffix: str) -> str:
    return (path[: -len(".cap")] if path.endswith(".cap") else path) + suffix


def make_analyzer(settings: Settings, arm: Arm) -> Analyzer | None:
    """The monitor's hook: analyse a finished capture's file and store the report next to it."""
    if not settings.storage_account_id:
        return None

    def enrich(report: Report) -> None:
        url = account_url(settings, report.storage_path)
        if url is None:
            return
        service = _service(url, arm.credential())
        if settings.analyze and report.outcome == "completed" and report.storage_path:
            _analyze_into(report, service)
        _store_report(report, service)

    return enrich


def _analyze_into(report: Report, service: BlobServiceClient) -> None:
    """Fill the report's findings (or the reason there are none); never raises for a bad file."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    from capture.analysis import CaptureReadError, analyze
    from capture.charts import render_chart

    assert report.storage_path is not None
    container, name = blob_location(report.storage_path)
    blob = service.get_blob_client(container, name)
    try:
        downloader = blob.download_blob()
        findings = analyze(io.BufferedReader(ChunkStream(downloader.chunks()), buffer_size=1 << 20))
    except ResourceNotFoundError:
        report.analysis_error = "the capture file was not found in storage"
        return
    except CaptureReadError as exc:
        report.analysis_error = f"the capture file could not be read: {exc}"
        return
    except AzureError as exc:
        report.analysis_error = f"storage refused the download: {type(exc).__name__}"
        return
    report.findings = findings.to_dict()
    summary_path = _sibling(report.storage_path, ".summary.json")
    chart_path = _sibling(report.storage_path, ".png")
    try:
        service.get_blob_client(container, _sibling(name, ".summary.json")).upload_blob(
            json.dumps(report.findings, indent=2, default=str).encode(), overwrite=True
        )
        report.summary_path = summary_path
        service.get_blob_client(container, _sibling(name, ".png")).upload_blob(
            render_chart(findings, vm=report.vm, alert=report.rule), overwrite=True
        )
        report.chart_path = chart_path
    except AzureError as exc:
        log.warning("storing findings of %s failed: %s", report.name, type(exc).__name__)


def _store_report(report: Report, service: BlobServiceClient) -> None:
    """Keep the final report where `GET /api/captures/{name}` finds it after the resource is gone."""
    from azure.core.exceptions import AzureError

    try:
        service.get_blob_client(CONTAINER, f"{REPORTS_PREFIX}{report.name}.json").upload_blob(
            json.dumps(report.to_json(), default=str).encode(), overwrite=True
        )
    except AzureError as exc:
        log.warning("storing the report of %s failed: %s", report.name, type(exc).__name__)


def final_report(settings: Settings, name: str) -> dict[str, Any] | None:
    """The stored report of a finished capture, or None."""
    from azure.core.exceptions import AzureError

    from capture.arm import get_arm

    url = account_url(settings)
    if url is None:
        return None
    service = _service(url, get_arm(settings).credential())
    try:
        data = service.get_blob_client(CONTAINER, f"{REPORTS_PREFIX}{name}.json").download_blob().readall()
    except AzureError:
        return None
    document: dict[str, Any] = json.loads(data)
    return document
