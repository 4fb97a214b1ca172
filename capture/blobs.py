"""Capture files in blob storage: stream one into the analyser, store its findings beside it.

Access uses the app's own identity (azure-storage-blob with the same credential as ARM), so the app
needs `Storage Blob Data Contributor` on the capture container: read the `.cap`, write the summary.
`CAPTURE_BLOB_ENDPOINT` points blob access at another endpoint (Azurite locally), the way
`ARM_ENDPOINT` does for ARM; the container and blob path always come from the capture's storage path.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, cast

from capture.naming import CONTAINER, blob_location
from capture.settings import Settings
from capture.views import Analysis, CaptureView

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobServiceClient


__all__ = ["Analyzer", "Blobs", "account_url"]
log = logging.getLogger(__name__)

REPORTS_PREFIX = "alert-captures/_reports/"
Analyzer = Callable[[CaptureView], None]


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


def _sibling(path: str, suffix: str) -> str:
    return (path[: -len(".cap")] if path.endswith(".cap") else path) + suffix


class Blobs:
    """The app's blob access: one service client per account endpoint (normally one), kept for the process."""

    def __init__(self, settings: Settings, credential: Callable[[], TokenCredential]) -> None:
        self.settings = settings
        self._credential = credential
        self._lock = threading.Lock()
        self._services: dict[str, BlobServiceClient] = {}

    def service(self, url: str) -> BlobServiceClient:
        with self._lock:
            client = self._services.get(url)
            if client is None:
                from azure.storage.blob import BlobServiceClient, LinearRetry

                # The storage SDK's default first backoff is 15 s; the monitor runs again within a minute.
                retry = LinearRetry(backoff=1, random_jitter_range=0, retry_total=2)
                client = self._services[url] = BlobServiceClient(
                    url,
                    credential=self._credential(),
                    retry_policy=retry,
                    connection_timeout=5,
                    read_timeout=60,
                )
            return client

    def analyzer(self) -> Analyzer | None:
        """The monitor's hook: analyse a finished capture's file and store the report next to it."""
        if not self.settings.storage_account_id:
            return None
        return self.enrich

    def enrich(self, report: CaptureView) -> None:
        url = account_url(self.settings, report.storage_path)
        if url is None:
            return
        service = self.service(url)
        if self.settings.analyze and report.outcome == "completed" and report.storage_path:
            _analyze_into(report, service)
        _store_report(report, service)

    def final_report(self, name: str) -> CaptureView | None:
        """The stored report of a finished capture, or None."""
        from azure.core.exceptions import AzureError

        url = account_url(self.settings)
        if url is None:
            return None
        blob = self.service(url).get_blob_client(CONTAINER, f"{REPORTS_PREFIX}{name}.json")
        try:
            data = blob.download_blob().readall()
        except AzureError:
            return None
        return CaptureView.model_validate_json(data)


def _analyze_into(report: CaptureView, service: BlobServiceClient) -> None:
    """Fill the report's analysis (findings, or the reason there are none); never raises for a bad file."""
    from azure.core.exceptions import AzureError, ResourceNotFoundError

    from capture.analysis import CaptureReadError, analyze
    from capture.charts import render_chart

    assert report.storage_path is not None
    analysis = report.analysis = report.analysis or Analysis()
    container, name = blob_location(report.storage_path)
    blob = service.get_blob_client(container, name)
    try:
        # The downloader reads by size, chunk after chunk: the analyser streams, nothing is held whole.
        findings = analyze(cast(BinaryIO, blob.download_blob()))
    except ResourceNotFoundError:
        analysis.error = "the capture file was not found in storage"
        return
    except CaptureReadError as exc:
        analysis.error = f"the capture file could not be read: {exc}"
        return
    except AzureError as exc:
        analysis.error = f"storage refused the download: {type(exc).__name__}"
        return
    analysis.findings = findings.to_dict()
    analysis.notable = [str(line) for line in analysis.findings.get("notable", [])]
    try:
        service.get_blob_client(container, _sibling(name, ".summary.json")).upload_blob(
            json.dumps(analysis.findings, indent=2, default=str).encode(), overwrite=True
        )
        analysis.summary_path = _sibling(report.storage_path, ".summary.json")
        service.get_blob_client(container, _sibling(name, ".png")).upload_blob(
            render_chart(findings, vm=report.vm, alert=report.alert.rule if report.alert else None),
            overwrite=True,
        )
        analysis.chart_path = _sibling(report.storage_path, ".png")
    except AzureError as exc:
        log.warning("storing findings of %s failed: %s", report.name, type(exc).__name__)


def _store_report(report: CaptureView, service: BlobServiceClient) -> None:
    """Keep the final report where `GET /api/captures/{name}` finds it after the resource is gone."""
    from azure.core.exceptions import AzureError

    try:
        service.get_blob_client(CONTAINER, f"{REPORTS_PREFIX}{report.name}.json").upload_blob(
            report.model_dump_json(by_alias=True).encode(), overwrite=True
        )
    except AzureError as exc:
        log.warning("storing the report of %s failed: %s", report.name, type(exc).__name__)
