"""One view of a capture, whatever asks: the webhook's answer, the live status, the final report.

The same fields, under the same camelCase names, from the moment ARM accepts the PUT to the stored
report after the resource is deleted; fields not known yet (the status before a query, the analysis
before the capture ends) are null. `GET /api/captures/{name}` therefore answers one shape whether or
not the resource still exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

__all__ = ["AlertRef", "Analysis", "CaptureView"]


# ISO 8601 as Python writes it ("+00:00"), as the reports always had it.
IsoTime = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json")]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, validate_assignment=True)


class AlertRef(_Camel):
    """Which alert a capture answered (read back from its storage path: no database)."""

    rule: str | None = None
    instance: str | None = None


class Analysis(_Camel):
    """What the analysis of the finished capture's file found, or why there is nothing."""

    notable: list[str] = Field(default_factory=list)
    findings: dict[str, Any] | None = None
    error: str | None = None
    summary_path: str | None = None
    chart_path: str | None = None


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
        what = "Packet capture finished" if self.outcome == "completed" else "Packet capture FAILED"
        return f"{what}: {self.vm or self.target or self.name} ({self.stop_reason_text})"
