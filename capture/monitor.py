"""Follow-through: find the captures this app started, report each finished one once, clean up.

ARM is the only state. A capture of ours that still exists has not been reported yet; once its report
has been delivered the capture resource is deleted (the file stays in storage), which both frees a
slot under CAPTURE_MAX_SESSIONS and makes the report happen once. A failed delivery keeps the
capture, so the next run sends the report again: nothing is lost.

Runs never overlap within one process (a lock), and the Functions host runs a timer function on one
instance at a time (its singleton lease); a concurrent run elsewhere (a manual trigger) at worst sees
a 404 on delete, which is tolerated.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from capture.arm import Arm, ArmError, CaptureInfo, Watcher, count_calls, text
from capture.naming import PathInfo, is_ours, parse_storage_path
from capture.notify import Report, deliver, stop_reason_text
from capture.settings import Settings

if TYPE_CHECKING:
    from azure.mgmt.network.models import PacketCaptureQueryStatusResult

log = logging.getLogger("capture.monitor")

TERMINAL = frozenset({"stopped", "error"})
_run_lock = threading.Lock()

Analyzer = Callable[[Report], None]


@dataclass
class OurCapture:
    """A capture this app started, with where it lives."""

    watcher: Watcher
    resource: CaptureInfo

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def path(self) -> PathInfo | None:
        """What the storage path this app chose says about the alert (None for other paths)."""
        return parse_storage_path(self.resource.storage_path)


@dataclass
class LiveStatus:
    """A capture's resource plus its queryStatus answer."""

    capture: OurCapture
    status: PacketCaptureQueryStatusResult | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        resource = self.capture.resource
        path = self.capture.path
        errors = [text(e) or "" for e in (self.status.packet_capture_error or [])] if self.status else []
        stop_reason = self.status.stop_reason if self.status else None
        state = text(self.status.packet_capture_status) if self.status else None
        return {
            "name": self.capture.name,
            "id": resource.id,
            "target": resource.target,
            "vm": path.vm if path else None,
            "watcher": self.capture.watcher.id,
            "region": self.capture.watcher.location,
            "provisioningState": resource.provisioning_state,
            "status": state,
            "captureStartTime": self.status.capture_start_time.isoformat()
            if self.status and self.status.capture_start_time
            else None,
            "stopReason": stop_reason,
            "stopReasonText": stop_reason_text(stop_reason, errors)
            if state in {"Stopped", "Error"}
            else None,
            "errors": errors,
            "timeLimitSeconds": resource.time_limit_seconds,
            "storagePath": resource.storage_path,
            "filePath": resource.file_path,
            "alert": {"rule": path.rule, "instance": path.alert} if path else None,
            "statusError": self.error,
        }


@dataclass
class RunResult:
    """What one monitor run did (also what tests and the demo look at)."""

    reported: list[Report] = field(default_factory=list)
    still_open: int = 0
    undelivered: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    arm_calls: int = 0
    skipped: bool = False


class Monitor:
    """The follow-through for one settings object and one Azure access object."""

    def __init__(
        self,
        arm: Arm,
        settings: Settings,
        analyzer: Analyzer | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.arm = arm
        self.settings = settings
        self.analyzer = analyzer
        self.clock = clock or (lambda: datetime.now(UTC))

    def subscriptions(self) -> list[str]:
        """Those of CAPTURE_ALLOWED_SCOPES, else every subscription the identity can list."""
        if self.settings.allowed_scopes:
            seen: dict[str, str] = {}
            for scope in self.settings.allowed_scopes:
                seen.setdefault(scope.subscription.casefold(), scope.subscription)
            return list(seen.values())
        return self.arm.list_subscriptions()

    def our_captures(self) -> Iterator[OurCapture]:
        """Every capture of ours: one list per subscription (watchers) and one per watcher."""
        prefix = self.settings.name_prefix
        for subscription in self.subscriptions():
            for watcher in self.arm.list_watchers(subscription):
                for resource in self.arm.list_captures(watcher):
                    if is_ours(resource.name, prefix):
                        yield OurCapture(watcher, resource)

    def live(self, capture: OurCapture) -> LiveStatus:
        try:
            return LiveStatus(capture, self.arm.capture_status(capture.watcher, capture.name))
        except ArmError as exc:
            return LiveStatus(capture, None, error=f"({exc.code}) {exc.message}")

    def find(self, name: str) -> OurCapture | None:
        for capture in self.our_captures():
            if capture.name.casefold() == name.casefold():
                return capture
        return None

    def run(self) -> RunResult:
        """One pass over our open captures; never raises for one capture's trouble."""
        if not _run_lock.acquire(blocking=False):
            return RunResult(skipped=True)
        try:
            with count_calls() as calls:
                result = self._run()
            result.arm_calls = calls[0]
            return result
        finally:
            _run_lock.release()

    def _run(self) -> RunResult:
        result = RunResult()
        try:
            captures = list(self.our_captures())
        except ArmError as exc:
            result.errors.append(f"listing captures failed: ({exc.code}) {exc.message}")
            log.warning(json.dumps({"event": "monitor_error", "error": exc.code}))
            return result
        for capture in captures:
            state = (capture.resource.provisioning_state or "").casefold()
            if state == "deleting":
                continue  # being cleaned up: its report was delivered
            try:
                report = self._finished(capture, state)
                if report is None:
                    result.still_open += 1
                elif not self._report(capture, report, result):
                    result.undelivered.append(capture.name)
            except ArmError as exc:
                # A failed status query or delete: the capture stays, the next run tries again.
                result.errors.append(f"{capture.name}: ({exc.code}) {exc.message}")
        return result

    def _finished(self, capture: OurCapture, provisioning: str) -> Report | None:
        """The capture's report when it has ended (or failed to start); None while it runs."""
        path = capture.path
        if provisioning == "failed":
            return self._report_for(
                capture,
                None,
                "failed",
                ["ProvisioningFailed"],
                "Azure could not create the capture (provisioningState Failed)",
            )
        status = self.arm.capture_status(capture.watcher, capture.name)
        state = text(status.packet_capture_status) or "Unknown"
        errors = [text(e) or "" for e in (status.packet_capture_error or [])]
        if state.casefold() == "stopped" and not errors:
            return self._report_for(capture, status, "completed", [], None)
        if state.casefold() in TERMINAL:
            return self._report_for(capture, status, "failed", errors, None)
        grace = timedelta(seconds=self.settings.start_grace_seconds)
        if state.casefold() == "notstarted" and path is not None and self.clock() - path.started > grace:
            return self._report_for(
                capture,
                status,
                "failed",
                errors,
                f"the capture did not start within {self.settings.start_grace_seconds} s: is the VM running, "
                "and can its Network Watcher agent reach the storage account?",
            )
        return None

    def _report_for(
        self,
        capture: OurCapture,
        status: PacketCaptureQueryStatusResult | None,
        outcome: str,
        errors: list[str],
        reason_text: str | None,
    ) -> Report:
        path = capture.path
        stop_reason = status.stop_reason if status else None
        return Report(
            name=capture.name,
            capture_id=capture.resource.id,
            target=capture.resource.target,
            vm=path.vm if path else None,
            watcher=capture.watcher.id,
            outcome=outcome,
            status=text(status.packet_capture_status) if status else None,
            stop_reason=stop_reason,
            stop_reason_text=reason_text or stop_reason_text(stop_reason, errors),
            errors=errors,
            start_time=status.capture_start_time if status else None,
            storage_path=capture.resource.storage_path,
            file_path=capture.resource.file_path,
            rule=path.rule if path else None,
            alert=path.alert if path else None,
        )

    def _report(self, capture: OurCapture, report: Report, result: RunResult) -> bool:
        started = time.monotonic()
        if self.analyzer is not None:
            try:
                self.analyzer(report)
            except Exception as exc:  # analysis must never block the notification
                log.exception("analysis of %s failed", capture.name)
                report.analysis_error = f"analysis failed: {type(exc).__name__}"
        failures = deliver(report, self.settings.notify_urls, self.settings.notify_format)
        if failures:
            log.warning(
                json.dumps({"event": "capture_notify_failed", "capture": capture.name, "failures": failures})
            )
            return False
        deleted = self.arm.delete_capture(capture.watcher, capture.name)
        result.reported.append(report)
        log.info(
            json.dumps(
                {
                    "event": "capture_reported",
                    "capture": capture.name,
                    "vm": report.vm,
                    "target": report.target,
                    "outcome": report.outcome,
                    "stopReason": report.stop_reason,
                    "errors": report.errors,
                    "storagePath": report.storage_path,
                    "notified": len(self.settings.notify_urls),
                    "deleted": deleted,
                    "durationMs": round((time.monotonic() - started) * 1000, 1),
                }
            )
        )
        return True
