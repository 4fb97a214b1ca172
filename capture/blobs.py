"""Capture files in blob storage: stream one into the analyser, store its findings beside it.

Access uses the app's own identity (azure-storage-blob with the same credential as ARM), so the app
needs `Storage Blob Data Contributor` on the capture container: read the `.cap`, write the summary.
`CAPTURE_BLOB_ENDPOINT` points blob access at another endpoint (Azurite locally), the way
`ARM_ENDPOINT` does for ARM; the container and blob path always come from the capture's storage path.

Links a person can open are user-delegation SAS URLs: the identity asks storage for a delegation key
(`Storage Blob Delegator`: no account key anywhere) and signs read-only links to one blob each, valid for
`CAPTURE_LINK_LIFETIME_HOURS`. They are made for each reader and never stored or logged.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from capture.naming import CONTAINER, blob_location, parse_storage_path
from capture.settings import Settings
from capture.views import Analysis, CaptureView, Links

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.storage.blob import BlobServiceClient, UserDelegationKey


__all__ = ["Analyzer", "Blobs", "Timeline", "account_url"]
log = logging.getLogger(__name__)

REPORTS_PREFIX = "alert-captures/_reports/"
Analyzer = Callable[[CaptureView], None]
# Links start this much in the past: a reader's clock a little behind storage's still opens them.
CLOCK_SKEW = timedelta(minutes=5)
# A delegation key is reused while it outlives a new link; asked for with this much to spare.
KEY_SPARE = timedelta(hours=1)
MAX_KEY_LIFETIME = timedelta(days=7)  # storage refuses longer delegation keys


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


def _parse_time(text: str | None) -> datetime:
    """A delegation key's start or expiry (`2026-12-01T22:00:00Z`, as storage sends it)."""
    try:
        return datetime.fromisoformat((text or "").replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _sibling(path: str, suffix: str) -> str:
    return (path[: -len(".cap")] if path.endswith(".cap") else path) + suffix


class Blobs:
    """The app's blob access: one service client per account endpoint (normally one), kept for the process."""

    def __init__(
        self,
        settings: Settings,
        credential: Callable[[], TokenCredential],
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self._credential = credential
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._services: dict[str, BlobServiceClient] = {}
        self._keys: dict[str, UserDelegationKey] = {}

    def service(self, url: str) -> BlobServiceClient:
        with self._lock:
            client = self._services.get(url)
            if client is None:
                from azure.storage.blob import BlobServiceClient, LinearRetry

                # The storage SDK's default first backoff is 15 s; the scheduler runs again within a
                # minute and the queue retries a failed report (visibilityTimeout 30 s).
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
        """Analyse, store the report (without links), then give the notification its fresh links."""
        url = account_url(self.settings, report.storage_path)
        if url is None:
            return
        service = self.service(url)
        if self.settings.analyze and report.outcome == "completed" and report.storage_path:
            _analyze_into(report, service)
        _store_report(report, service)
        self.add_links(report)

    def add_links(self, view: CaptureView) -> None:
        """Set `view.links` for the files a finished capture has; on a storage error, none (logged)."""
        from azure.core.exceptions import AzureError

        try:
            view.links = self.links(view)
        except (AzureError, ValueError) as exc:
            # the exception's type only: a message could carry a URL, and links carry signatures
            log.warning("download links for %s could not be made: %s", view.name, type(exc).__name__)
            view.links = None

    def links(self, view: CaptureView) -> Links | None:
        """Read-only SAS links to the `.cap`, summary and chart of a finished capture, or None."""
        analysis = view.analysis or Analysis()
        paths = {
            # a frozen ring's timeline is many files (its report lists them): the chart and summary link
            "file": view.storage_path if view.outcome == "completed" and view.recorder is None else None,
            "summary": analysis.summary_path,
            "chart": analysis.chart_path,
        }
        url = account_url(self.settings, view.storage_path)
        if url is None or not any(paths.values()):
            return None
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        service = self.service(url)
        now = self._clock()
        key = self._delegation_key(url, service, now)
        # a link cannot outlive its key (at most 7 days after the key's start)
        lifetime = timedelta(hours=self.settings.link_lifetime_hours)
        expires = min(now + lifetime, _parse_time(key.signed_expiry))
        links = Links(expires=expires)
        for kind, path in paths.items():
            if not path:
                continue
            container, name = blob_location(path)
            filename = name.rsplit("/", 1)[-1]
            sas = generate_blob_sas(
                cast(str, service.account_name),
                container,
                name,
                user_delegation_key=key,
                permission=BlobSasPermissions(read=True),
                start=now - CLOCK_SKEW,
                expiry=expires,
                # the .cap downloads under its own name; the chart and summary open in the browser
                content_disposition=f'attachment; filename="{filename}"' if kind == "file" else None,
            )
            setattr(links, kind, f"{service.get_blob_client(container, name).url}?{sas}")
        return links

    def _delegation_key(self, url: str, service: BlobServiceClient, now: datetime) -> UserDelegationKey:
        """A key that covers a link made `now`: the cached one while it does, else a new one."""
        start = now - CLOCK_SKEW
        wanted = now + timedelta(hours=self.settings.link_lifetime_hours)
        with self._lock:
            key = self._keys.get(url)
        if (
            key is not None
            and _parse_time(key.signed_start) <= start
            and _parse_time(key.signed_expiry) >= wanted
        ):
            return key
        key = service.get_user_delegation_key(start, min(wanted + KEY_SPARE, start + MAX_KEY_LIFETIME))
        with self._lock:
            self._keys[url] = key
        return key

    def timeline(
        self,
        storage_path: str,
        folder: str,
        alert_at: datetime,
        *,
        only_complete: bool = False,
        vm: str | None = None,
        rule: str | None = None,
    ) -> Timeline:
        """A frozen ring's files (and its post-alert ring's) under `folder`, analysed as one timeline
        (with `only_complete`, only once files from both before and after the alert are there)."""
        url = account_url(self.settings, storage_path or None)
        if url is None:
            return Timeline(Analysis(error="no storage account configured"))
        container = blob_location(storage_path)[0] if storage_path else CONTAINER
        base = f"{storage_path.split(f'/{container}/', 1)[0]}/{container}/"
        return _timeline(
            self.service(url),
            container,
            base,
            folder,
            alert_at,
            self.settings.analyze,
            only_complete,
            (vm, rule),
        )

    def store_report(self, report: CaptureView) -> None:
        """Keep a final report where `GET /api/captures/{name}` finds it."""
        url = account_url(self.settings, report.storage_path)
        if url is not None:
            _store_report(report, self.service(url))

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


@dataclass
class Timeline:
    """A frozen ring's timeline: its analysis, what it covers around the alert, and what is missing."""

    analysis: Analysis
    summary: dict[str, Any] = field(default_factory=dict)
    pre_files: int = 0
    post_files: int = 0

    @property
    def complete(self) -> bool:
        return self.pre_files > 0 and self.post_files > 0

    @property
    def missing_text(self) -> str:
        missing = [w for w, n in (("before", self.pre_files), ("after", self.post_files)) if not n]
        return f"no capture files from {' or '.join(missing)} the alert were found in storage"


def _timeline(
    service: BlobServiceClient,
    container: str,
    base: str,
    folder: str,
    alert_at: datetime,
    analyze_files: bool,
    only_complete: bool,
    titles: tuple[str | None, str | None] = (None, None),
) -> Timeline:
    """List the folder (never guess names), sort its files by first packet, analyse them as one stream."""
    from azure.core.exceptions import AzureError

    from capture.analysis import CaptureReadError, analyze
    from capture.charts import render_chart
    from capture.timeline import PCAP_HEADER, ChainedFiles, TimelineFile, first_packet_time, summarize

    client = service.get_container_client(container)
    timeline = Timeline(Analysis())
    try:
        names = [b.name for b in client.list_blobs(name_starts_with=folder) if b.name.endswith(".cap")]
        files = []
        for name in names:
            head = client.get_blob_client(name).download_blob(offset=0, length=PCAP_HEADER + 8).readall()
            post = name[len(folder) :].startswith("post/")
            files.append(TimelineFile(name, post, first_packet_time(head), head))
    except AzureError as exc:
        timeline.analysis.error = f"storage refused the listing: {type(exc).__name__}"
        return timeline
    files = sorted((f for f in files if f.first is not None), key=lambda f: (f.first or 0.0, f.name))
    timeline.pre_files = sum(1 for f in files if not f.post)
    timeline.post_files = sum(1 for f in files if f.post)
    timeline.summary = {"files": [f.name for f in files]}
    if only_complete and not timeline.complete:
        return timeline
    if not files or not analyze_files:
        if not files:
            timeline.analysis.error = "no capture files were found under the ring's folder"
        return timeline
    stream = ChainedFiles(files, lambda name: cast(BinaryIO, client.get_blob_client(name).download_blob()))
    try:
        findings = analyze(cast(BinaryIO, stream))
    except (CaptureReadError, AzureError) as exc:
        timeline.analysis.error = f"the ring's files could not be read: {type(exc).__name__}"
        return timeline
    summary, lines = summarize(findings, alert_at, timeline.pre_files, timeline.post_files)
    timeline.summary.update(summary)
    timeline.analysis.findings = findings.to_dict()
    timeline.analysis.headline = findings.headline or None
    timeline.analysis.notable = lines + [str(n) for n in timeline.analysis.findings.get("notable", [])]
    try:
        summary_name = f"{folder}timeline.summary.json"
        client.get_blob_client(summary_name).upload_blob(
            json.dumps({**timeline.summary, "findings": timeline.analysis.findings}, default=str).encode(),
            overwrite=True,
        )
        chart = render_chart(findings, vm=titles[0], alert=titles[1], alert_time=alert_at)
        client.get_blob_client(f"{folder}timeline.png").upload_blob(chart, overwrite=True)
        # storage paths, as a capture's own summary and chart have: links are made from them
        timeline.analysis.summary_path = f"{base}{summary_name}"
        timeline.analysis.chart_path = f"{base}{folder}timeline.png"
    except AzureError as exc:
        log.warning("storing the timeline of %s failed: %s", folder, type(exc).__name__)
    return timeline


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
    analysis.headline = findings.headline or None
    analysis.notable = [str(line) for line in analysis.findings.get("notable", [])]
    try:
        service.get_blob_client(container, _sibling(name, ".summary.json")).upload_blob(
            json.dumps(analysis.findings, indent=2, default=str).encode(), overwrite=True
        )
        analysis.summary_path = _sibling(report.storage_path, ".summary.json")
        # The alert's time is when the webhook asked for the capture: its storage path says when.
        requested = parse_storage_path(report.storage_path)
        chart = render_chart(
            findings,
            vm=report.vm,
            alert=report.alert.rule if report.alert else None,
            alert_time=requested.started if requested else None,
        )
        service.get_blob_client(container, _sibling(name, ".png")).upload_blob(chart, overwrite=True)
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
