"""Follow-through: find the captures this app started, report each finished one once, clean up.

ARM is the only state. A capture of ours that still exists has not been reported yet; once its report
has been delivered the capture resource is deleted (the file stays in storage), which both frees a
slot under CAPTURE_MAX_SESSIONS and makes the report happen once. A failed delivery keeps the
capture, so the next run sends the report again: nothing is lost.

Runs never overlap within one process (the monitor's lock; one monitor per process, in the app
context), and the Functions host runs a timer function on one
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
from typing import Literal

from capture.arm import Arm, ArmError, CaptureInfo, CaptureStatus, Watcher, call_scope
from capture.blobs import Analyzer
from capture.naming import PathInfo, is_ours, parse_storage_path
from capture.notify import deliver
from capture.resource_ids import fold
from capture.settings import Settings
from capture.views import Analysis, CaptureView, capture_view, stop_reason_text

__all__ = ["Monitor", "OurCapture", "RunResult"]

log = logging.getLogger(__name__)


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

    def view(self, status: CaptureStatus | None = None, status_error: str | None = None) -> CaptureView:
        return capture_view(self.resource, self.watcher, status, status_error)


@dataclass
class RunResult:
    """What one monitor run did (also what tests and the demo look at)."""

    reported: list[CaptureView] = field(default_factory=list)
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
        self._run_lock = threading.Lock()

    def subscriptions(self) -> list[str]:
        """Those of CAPTURE_ALLOWED_SCOPES, else every subscription the identity can list."""
        if self.settings.allowed_scopes:
            seen: dict[str, str] = {}
            for scope in self.settings.allowed_scopes:
                seen.setdefault(fold(scope.subscription), scope.subscription)
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

    def live(self, capture: OurCapture) -> CaptureView:
        """The capture's view with its current status (or why the status could not be read)."""
        try:
            return capture.view(self.arm.capture_status(capture.watcher, capture.name))
        except ArmError as exc:
            return capture.view(status_error=f"({exc.code}) {exc.message}")

    def find(self, name: str) -> OurCapture | None:
        for capture in self.our_captures():
            if fold(capture.name) == fold(name):
                return capture
        return None

    def run(self) -> RunResult:
        """One pass over our open captures; never raises for one capture's trouble."""
        if not self._run_lock.acquire(blocking=False):
            return RunResult(skipped=True)
        try:
            with call_scope() as scope:
                result = self._run()
            result.arm_calls = scope.calls
            return result
        finally:
            self._run_lock.release()

    def _run(self) -> RunResult:
        result = RunResult()
        try:
            captures = list(self.our_captures())
        except ArmError as exc:
            result.errors.append(f"listing captures failed: ({exc.code}) {exc.message}")
            log.warning(json.dumps({"event": "monitor_error", "error": exc.code}))
            return result
        for capture in captures:
            state = fold(capture.resource.provisioning_state or "")
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

    def _finished(self, capture: OurCapture, provisioning: str) -> CaptureView | None:
        """The capture's final report when it has ended (or failed to start); None while it runs."""
        if provisioning == "failed":
            report = capture.view()
            report.errors = ["ProvisioningFailed"]
            return self._final(
                report, "failed", "Azure could not create the capture (provisioningState Failed)"
            )
        status = self.arm.capture_status(capture.watcher, capture.name)
        if fold(status.status) == "stopped" and not status.errors:
            return self._final(capture.view(status), "completed")
        if status.ended:
            return self._final(capture.view(status), "failed")
        grace = timedelta(seconds=self.settings.start_grace_seconds)
        path = capture.path
        if fold(status.status) == "notstarted" and path is not None and self.clock() - path.started > grace:
            return self._final(
                capture.view(status),
                "failed",
                f"the capture did not start within {self.settings.start_grace_seconds} s: is the VM running, "
                "and can its Network Watcher agent reach the storage account?",
            )
        return None

    @staticmethod
    def _final(
        report: CaptureView, outcome: Literal["completed", "failed"], reason: str | None = None
    ) -> CaptureView:
        report.outcome = outcome
        report.stop_reason_text = reason or stop_reason_text(report.stop_reason, report.errors)
        report.analysis = Analysis()
        return report

    def _report(self, capture: OurCapture, report: CaptureView, result: RunResult) -> bool:
        started = time.monotonic()
        if self.analyzer is not None:
            try:
                self.analyzer(report)
            except Exception as exc:  # analysis must never block the notification
                log.exception("analysis of %s failed", capture.name)
                (report.analysis or Analysis()).error = f"analysis failed: {type(exc).__name__}"
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
