"""One view of a capture, whatever asks: the webhook's answer, the live status, the final report.

The same fields, under the same camelCase names, from the moment ARM accepts the PUT to the stored
report after the resource is deleted; fields not known yet (the status before a query, the analysis
before the capture ends) are null. `GET /api/captures/{name}` therefore answers one shape whether or
not the resource still exists.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from capture.arm import CaptureInfo, CaptureStatus, Watcher
from capture.naming import parse_storage_path
from capture.resource_ids import fold

__all__ = ["AlertRef", "Analysis", "CaptureView", "Links", "capture_view", "stop_reason_text"]


# ISO 8601 as Python writes it ("+00:00"), as the reports always had it.
IsoTime = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json")]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, validate_assignment=True)


class AlertRef(_Camel):
    """Which alert a capture answered (read back from its storage path: no database)."""

    rule: str | None = None
    instance: str | None = None
    severity: str | None = None  # Sev0..Sev4, when the alert said


class Analysis(_Camel):
    """What the analysis of the finished capture's file found, or why there is nothing."""

    headline: str | None = None  # what was found, or that nothing abnormal was (the analysis's words)
    notable: list[str] = Field(default_factory=list)
    findings: dict[str, Any] | None = None
    error: str | None = None
    summary_path: str | None = None
    chart_path: str | None = None


class Links(_Camel):
    """Download links that open without keys: user-delegation SAS URLs, made fresh for each reader.

    Never stored (the stored report has none) and never logged: each URL carries a signature.
    """

    file: str | None = None  # the .cap (downloads as an attachment)
    summary: str | None = None  # the findings as JSON
    chart: str | None = None  # the PNG chart
    expires: IsoTime | None = None  # when every link above stops working


class CaptureView(_Camel):
    """A packet capture started by this app."""

    name: str
    id: str | None = None
    target: str | None = None
    target_type: str | None = None
    vm: str | None = None
    watcher: str | None = None
    region: str | None = None
    provisioning_state: str | None = None
    status: str | None = None  # queryStatus: NotStarted, Running, Stopped, Error, Unknown
    start_time: IsoTime | None = None
    stop_reason: str | None = None
    stop_reason_text: str | None = None
    errors: list[str] = Field(default_factory=list)
    status_error: str | None = None  # why the status could not be read
    time_limit_seconds: int | None = None
    storage_id: str | None = None
    storage_path: str | None = None
    file_path: str | None = None
    alert: AlertRef | None = None
    outcome: Literal["completed", "failed"] | None = None  # set once the capture has ended
    analysis: Analysis | None = None  # set in the final report
    recorder: dict[str, Any] | None = None  # a frozen flight-recorder ring: its timeline around the alert
    links: Links | None = None  # set when read (GET /api/captures/{name}, the notification), never stored
    follow: str | None = None

    def model_post_init(self, __context: Any) -> None:
        if self.follow is None:
            self.follow = f"GET /api/captures/{self.name}"

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    @property
    def notable(self) -> list[str]:
        return self.analysis.notable if self.analysis else []

    def headline(self) -> str:
        """The report's first line: what was found (or why nothing was), on which VM, for which alert."""
        analysis = self.analysis or Analysis()
        if self.outcome == "failed":
            what = f"Packet capture failed: {self.stop_reason_text or 'no reason given by Azure'}"
        elif analysis.headline:
            what = analysis.headline
        elif analysis.error:
            what = f"Packet capture finished, not analysed: {analysis.error}"
        elif self.outcome == "completed":
            what = f"Packet capture finished ({self.stop_reason_text or 'stopped'})"
        else:
            what = f"Packet capture {(self.status or 'requested').casefold()}"
        from capture.analysis import report_headline  # the analysis's words; not loaded by the webhook

        alert = self.alert or AlertRef()
        vm = self.vm or self.target or self.name
        return report_headline(what, vm=vm, alert=alert.rule, severity=alert.severity)

    def window(self) -> str | None:
        """The time the capture covers, in UTC: its packets' when analysed, else its start and limit."""
        findings = (self.analysis.findings if self.analysis else None) or {}
        first, last = _when(findings.get("start")), _when(findings.get("end"))
        if first is None and self.start_time is not None:
            first = self.start_time.astimezone(UTC)
            if self.time_limit_seconds:
                last = first + timedelta(seconds=self.time_limit_seconds)
        if first is None:
            return None
        if last is None:
            return f"from {first:%Y-%m-%d %H:%M:%S} UTC"
        seconds = (last - first).total_seconds()
        return f"{first:%Y-%m-%d %H:%M:%S} to {last:%H:%M:%S} UTC ({seconds:,.0f} s)"


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        return None


STOP_REASONS = {
    "timeexceeded": "time limit reached",
    "maxbytesexceeded": "bytes limit reached",
    "totalbytespersessionexceeded": "bytes limit reached",
    "bytesexceeded": "bytes limit reached",
    "manual": "stopped by a user",
    "userstopped": "stopped by a user",
}
ERRORS = {
    "agentstopped": "the Network Watcher agent on the VM stopped",
    "capturefailed": "the capture failed on the VM",
    "localfilefailed": "writing the local capture file failed",
    "storagefailed": "writing to the storage account failed",
    "internalerror": "Network Watcher had an internal error",
}


def stop_reason_text(reason: str | None, errors: list[str]) -> str:
    """Azure's stop reason and errors in words an on-call engineer reads at 2 a.m."""
    if errors:
        return "; ".join(ERRORS.get(fold(e), e) for e in errors)
    if not reason:
        return "stopped (no reason given by Azure)"
    return STOP_REASONS.get(fold(reason), reason)


def capture_view(
    resource: CaptureInfo,
    watcher: Watcher,
    status: CaptureStatus | None = None,
    status_error: str | None = None,
) -> CaptureView:
    """A capture's view from its resource, what its storage path says, and its status when queried."""
    path = parse_storage_path(resource.storage_path)
    ended = status is not None and status.ended
    return CaptureView(
        name=resource.name,
        id=resource.id,
        target=resource.target,
        target_type=resource.target_type,
        vm=path.vm if path else None,
        watcher=watcher.id,
        region=watcher.location,
        provisioning_state=resource.provisioning_state,
        status=status.status if status else None,
        start_time=status.start_time if status else None,
        stop_reason=status.stop_reason if status else None,
        stop_reason_text=stop_reason_text(status.stop_reason, list(status.errors))
        if status and ended
        else None,
        errors=list(status.errors) if status else [],
        status_error=status_error,
        time_limit_seconds=resource.time_limit_seconds,
        storage_id=resource.storage_id,
        storage_path=resource.storage_path,
        file_path=resource.file_path,
        alert=AlertRef(rule=path.rule, instance=path.alert, severity=path.severity) if path else None,
    )
