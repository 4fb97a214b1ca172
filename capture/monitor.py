"""Follow-through: the scheduler finds finished captures and queues them, a worker reports each one.

ARM is the only state. A capture of ours that still exists has not been reported yet; once its report
has been delivered the capture resource is deleted (the file stays in storage), which both frees a
slot under CAPTURE_MAX_SESSIONS and makes the report happen once.

* `Monitor.schedule()` (the timer) lists our captures and asks Azure for the status only of those due
  (`capture.schedule`); each finished one gets one queue message (`capture.queueing`).
* `Monitor.report(request)` (the queue trigger) does one capture: it reads the capture from ARM again
  (gone: already reported, so a duplicate message is harmless), analyses, notifies, and deletes only
  after every notification was delivered. Any failure raises, so the Functions host retries the message
  after visibilityTimeout and, after maxDequeueCount attempts, moves it to the poison queue.
* `Monitor.report_poisoned(request)` (the poison-queue trigger) reports the capture as failed, with the
  last failure's reason, and keeps it: it is never queued again.

Ownership: a capture is ours only when its name has our pattern AND it writes to our storage account,
in our path layout, into a file named after itself, in the folder of the VM it targets (`owns`).
Someone else's capture that merely looks like ours is never reported or deleted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from capture.arm import Arm, ArmError, CaptureInfo, CaptureStatus, Watcher, call_scope, watcher_from_id
from capture.blobs import Analyzer
from capture.naming import PathInfo, is_ours, names_capture, parse_storage_path
from capture.notify import deliver
from capture.queueing import Enqueued, ReportQueue, ReportRequest
from capture.resource_ids import InvalidResourceId, ResourceId, fold, parse_resource_id
from capture.schedule import is_due
from capture.settings import Settings
from capture.views import Analysis, CaptureView, capture_view, stop_reason_text

if TYPE_CHECKING:
    from capture.recorder import Recorder, RecorderRun

__all__ = ["Listing", "Monitor", "OurCapture", "ReportFailed", "ReportResult", "ScheduleResult", "owns"]

log = logging.getLogger(__name__)

# The timer's period with the default schedule: the window in which a check instant is "due".
SCHEDULE_WINDOW_SECONDS = 60.0


class ReportFailed(Exception):
    """A capture could not be reported this time; the queue delivers its message again."""


def _target(resource: CaptureInfo) -> ResourceId | None:
    """The VM a capture targets (a scale set's one included instance, as the app creates them)."""
    if not resource.target:
        return None
    raw = resource.target
    if fold(resource.target_type or "") == "azurevmss":
        if len(resource.include) != 1:
            return None
        raw = f"{raw.rstrip('/')}/virtualMachines/{resource.include[0]}"
    try:
        return parse_resource_id(raw)
    except InvalidResourceId:
        return None


def owns(resource: CaptureInfo, settings: Settings) -> bool:
    """The capture was provably started by this app, not just named like its captures."""
    if not is_ours(resource.name, settings.name_prefix):
        return False
    target = _target(resource)
    if target is None:
        return False
    if settings.storage_account_id and settings.storage_account_name:
        return (
            fold(resource.storage_id or "") == fold(settings.storage_account_id)
            and resource.storage_path is not None
            and names_capture(resource.storage_path, settings.storage_account_name, resource.name, target)
        )
    # CAPTURE_LOCAL_PATH only: the file on the VM is in our folder and named after the capture.
    local = settings.local_path
    return (
        resource.storage_id is None
        and local is not None
        and fold(resource.file_path or "").rstrip("/\\")
        in {fold(f"{local}/{resource.name}.cap"), fold(f"{local}\\{resource.name}.cap")}
    )


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


@dataclass(frozen=True)
class Listing:
    """One watcher's captures as one scheduler run listed them (shared with the flight recorder)."""

    subscription: str
    watcher: Watcher
    captures: list[CaptureInfo]
    listed_at: float  # time.monotonic() when the list was asked for (reservations compare to it)


@dataclass
class ScheduleResult:
    """What one scheduler run did (also what tests, the demo and the benchmark look at)."""

    queued: list[str] = field(default_factory=list)
    already_queued: list[str] = field(default_factory=list)
    checked: int = 0
    still_open: int = 0
    errors: list[str] = field(default_factory=list)
    arm_calls: int = 0
    skipped: bool = False
    recorder: RecorderRun | None = None  # the flight recorder's part of the run (None: not enabled)


@dataclass
class ReportResult:
    """What one worker invocation did with its message."""

    capture: str
    outcome: Literal["reported", "gone", "not_finished", "not_ours", "poison_reported"]
    report: CaptureView | None = None
    arm_calls: int = 0


class Monitor:
    """The follow-through for one settings object and one Azure access object."""

    def __init__(
        self,
        arm: Arm,
        settings: Settings,
        analyzer: Analyzer | None = None,
        clock: Callable[[], datetime] | None = None,
        queue: ReportQueue | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.arm = arm
        self.recorder = recorder
        self.settings = settings
        self.analyzer = analyzer
        self.queue = queue
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
        for listing in self.listings(self.subscriptions()):
            for resource in listing.captures:
                if owns(resource, self.settings):
                    yield OurCapture(listing.watcher, resource)

    def listings(self, subscriptions: list[str]) -> Iterator[Listing]:
        """Every watcher's captures (ours or not): one list per subscription and one per watcher."""
        for subscription in subscriptions:
            for watcher in self.arm.list_watchers(subscription):
                listed_at = time.monotonic()
                yield Listing(subscription, watcher, self.arm.list_captures(watcher), listed_at)

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

    # -- the scheduler (timer) -------------------------------------------------------------------

    def schedule(self) -> ScheduleResult:
        """One pass: queue every due capture that has ended, then the flight recorder's pass over the
        same subscriptions (arm, replace, disarm, queue frozen timelines); never raises for one capture's
        or one VM's trouble."""
        if not self._run_lock.acquire(blocking=False):
            return ScheduleResult(skipped=True)
        try:
            with call_scope() as scope:
                try:
                    subscriptions = self.subscriptions()
                except ArmError as exc:
                    log.warning(json.dumps({"event": "monitor_error", "error": exc.code}))
                    return ScheduleResult(
                        errors=[f"listing captures failed: ({exc.code}) {exc.message}"],
                        arm_calls=scope.calls,
                    )
                listings: list[Listing] | None = None
                try:
                    listings = list(self.listings(subscriptions))
                except ArmError as exc:
                    log.warning(json.dumps({"event": "monitor_error", "error": exc.code}))
                    result = ScheduleResult(errors=[f"listing captures failed: ({exc.code}) {exc.message}"])
                else:
                    result = self._schedule(listings)
            result.arm_calls = scope.calls
            if self.recorder is not None and self.recorder.enabled:
                # The same subscriptions and capture lists (the recorder adds one tag-filtered resource
                # list per subscription), in the recorder's own call scope.
                result.recorder = self.recorder.run(subscriptions, listings)
                result.arm_calls += result.recorder.arm_calls
            return result
        finally:
            self._run_lock.release()

    def due(self, capture: OurCapture, now: datetime) -> bool:
        """Whether this run asks Azure for the capture's status (`capture.schedule`)."""
        path = capture.path
        limit = capture.resource.time_limit_seconds or self.settings.max_time_limit_seconds
        window, longest = SCHEDULE_WINDOW_SECONDS, self.settings.check_max_interval_seconds
        if path is None:  # CAPTURE_LOCAL_PATH only: no start time, checked every CAPTURE_CHECK_MAX_INTERVAL
            return now.timestamp() % longest < window
        age = (now - path.started).total_seconds()
        return is_due(
            age, limit, window=window, max_interval=longest, grace=self.settings.start_grace_seconds
        )

    def _schedule(self, listings: list[Listing]) -> ScheduleResult:
        result = ScheduleResult()
        now = self.clock()
        captures = [
            OurCapture(listing.watcher, resource)
            for listing in listings
            for resource in listing.captures
            if owns(resource, self.settings)
        ]
        for capture in captures:
            state = fold(capture.resource.provisioning_state or "")
            if state == "deleting":
                continue  # being cleaned up: its report was delivered
            if state != "failed" and not self.due(capture, now):
                result.still_open += 1
                continue
            try:
                result.checked += state != "failed"
                report = self._finished(capture, state, now)
            except ArmError as exc:
                result.errors.append(f"{capture.name}: ({exc.code}) {exc.message}")
                continue
            if report is None:
                result.still_open += 1
                continue
            outcome = self._enqueue(capture, now)
            if outcome in ("queued", "requeued"):
                result.queued.append(capture.name)
            elif outcome == "failed":
                result.errors.append(f"{capture.name}: could not be queued")
            else:
                result.already_queued.append(capture.name)
        return result

    def _enqueue(self, capture: OurCapture, now: datetime) -> Enqueued:
        if self.queue is None:
            raise RuntimeError("the monitor has no report queue")
        request = ReportRequest(
            capture=capture.name,
            watcher=capture.watcher.id,
            region=capture.watcher.location,
            storage_path=capture.resource.storage_path,
            queued_at=now,
        )
        outcome = self.queue.enqueue_once(request)
        if outcome in ("queued", "requeued"):
            log.info(json.dumps({"event": "capture_queued", "capture": capture.name, "outcome": outcome}))
        return outcome

    def _finished(self, capture: OurCapture, provisioning: str, now: datetime) -> CaptureView | None:
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
        if fold(status.status) == "notstarted" and path is not None and now - path.started > grace:
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

    # -- the worker (queue trigger) --------------------------------------------------------------

    def _current(self, request: ReportRequest) -> OurCapture | None:
        """The capture as ARM has it now; None when it is gone (reported already) or not ours."""
        try:
            watcher = watcher_from_id(request.watcher, request.region)
        except InvalidResourceId:
            return None
        resource = self.arm.get_capture(watcher, request.capture)
        if resource is None or not owns(resource, self.settings):
            return None
        if fold(resource.provisioning_state or "") == "deleting":
            return None
        if request.storage_path and (resource.storage_path or "") != request.storage_path:
            return None  # a later capture reusing the name: the scheduler queues that one itself
        return OurCapture(watcher, resource)

    def report(self, request: ReportRequest) -> ReportResult:
        """Report one finished capture; raises ReportFailed (the message is retried) when it could not."""
        started = time.monotonic()
        with call_scope() as scope:
            try:
                result = self._timeline(request) if request.kind == "timeline" else self._report(request)
            except ArmError as exc:
                self._note(request, f"Azure: ({exc.code}) {exc.message}")
                raise ReportFailed(f"({exc.code}) {exc.message}") from None
        result.arm_calls = scope.calls
        log.info(
            json.dumps(
                {
                    "event": "capture_report_done",
                    "capture": request.capture,
                    "outcome": result.outcome,
                    "armCalls": result.arm_calls,
                    "durationMs": round((time.monotonic() - started) * 1000, 1),
                }
            )
        )
        return result

    def _timeline(self, request: ReportRequest) -> ReportResult:
        if self.recorder is None:
            return ReportResult(request.capture, "not_ours")
        return self.recorder.report(request)

    def _note(self, request: ReportRequest, error: str) -> None:
        if self.queue is not None:
            self.queue.note_failure(request, error)

    def _report(self, request: ReportRequest) -> ReportResult:
        capture = self._current(request)
        if capture is None:
            return ReportResult(request.capture, "gone")
        state = fold(capture.resource.provisioning_state or "")
        report = self._finished(capture, state, self.clock())
        if report is None:
            if self.queue is not None:
                self.queue.release(request)  # the scheduler queues it again when it has ended
            return ReportResult(request.capture, "not_finished")
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
            self._note(request, f"notification failed: {'; '.join(failures)[:400]}")
            raise ReportFailed(f"{len(failures)} notification(s) failed; the capture is kept")
        deleted = self.arm.delete_capture(capture.watcher, capture.name)
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
                }
            )
        )
        return ReportResult(request.capture, "reported", report)

    def report_poisoned(self, request: ReportRequest, attempts: int) -> ReportResult:
        """Report a capture whose message kept failing as failed, and keep it; raises when undelivered."""
        if request.kind == "timeline" and self.recorder is not None:
            return self.recorder.report_poisoned(request, attempts)
        with call_scope() as scope:
            try:
                capture = self._current(request)
            except ArmError as exc:
                raise ReportFailed(f"({exc.code}) {exc.message}") from None
            if capture is None:
                return ReportResult(request.capture, "gone", arm_calls=scope.calls)
            last_error = self.queue.mark_poisoned(request) if self.queue is not None else None
            try:
                status: CaptureStatus | None = self.arm.capture_status(capture.watcher, capture.name)
            except ArmError:
                status = None
            reason = f"the report could not be completed in {attempts} attempts"
            reason += (
                f" (last failure: {last_error})"
                if last_error
                else " (a worker failed or was stopped each time)"
            )
            report = self._final(
                capture.view(status), "failed", reason + "; the capture is kept for you to inspect"
            )
            assert report.analysis is not None
            report.analysis.error = "not analysed: the report kept failing"
            failures = deliver(report, self.settings.notify_urls, self.settings.notify_format)
        log.error(
            json.dumps(
                {
                    "event": "capture_report_poisoned",
                    "capture": request.capture,
                    "attempts": attempts,
                    "lastError": last_error,
                    "notifyFailures": failures,
                }
            )
        )
        if failures:
            raise ReportFailed(f"{len(failures)} notification(s) of the poisoned capture failed")
        return ReportResult(request.capture, "poison_reported", report, arm_calls=scope.calls)
