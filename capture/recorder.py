"""The flight recorder: a continuous-capture ring on opted-in VMs, frozen the moment an alert fires.

An alert fires minutes after a problem starts; a capture started then often catches nothing. A VM (or
scale set) tagged `CAPTURE_RECORDER_TAG: on` therefore gets a ring capture (Network Watcher continuous
capture, PREVIEW) that keeps the last `fileCount x fileSizeInBytes` of its traffic. ARM is the only
state, read from names and storage paths:

* ring `{prefix}-rec-{vm}-{hash8}-g{n}`, files under `recorder/{vm}/{ring}.{created}/` (capture container);
* a post-alert ring writes under its frozen ring's folder, `{that folder}/post/{frozenAt}/
  {firedAt}/{rule}/{alert}/`, so one folder listing finds the whole timeline around the alert, and
  the post ring's existence says "this ring was frozen, for this alert".

Freeze (webhook, `freeze`): the list of the watcher's captures the webhook fetches anyway shows a ring
on the VM by name, so non-armed VMs keep their 2-call warm path. An armed VM costs a status query, a
stop (only while it runs: a stopped ring is never stopped again) and the post ring's PUT.

Scheduler (`Recorder.run`, from the monitor timer): one tag-filtered resource list per subscription,
one capture list per watcher, a status per ring; it arms, replaces rings near their session's end,
stops post rings after CAPTURE_TIME_LIMIT_SECONDS, reports frozen timelines, re-arms, and disarms
untagged VMs (stop + delete, nothing reported).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from capture.arm import Arm, ArmError, CaptureInfo, CaptureStatus, Tagged, Watcher, call_scope
from capture.decisions import Outcome, TargetResult
from capture.naming import CONTAINER
from capture.payloads import AlertEvent
from capture.resource_ids import ResourceId, parse_resource_id
from capture.settings import Settings
from capture.views import AlertRef, Analysis, CaptureView, capture_view

if TYPE_CHECKING:
    from azure.mgmt.network.models import PacketCapture

    from capture.blobs import Blobs
    from capture.orchestrator import Reservations

__all__ = ["PostInfo", "Recorder", "RecorderRun", "is_ring", "parse_post_path", "ring_name"]

log = logging.getLogger(__name__)

TAG_VALUE = "on"
# A ring is replaced in its session's last minutes, well before it expires (several timer runs).
REPLACE_BEFORE_SECONDS = 300
# A VM whose ring cannot be created (no agent, no watcher) is retried after 5 min, doubling to 1 h.
BACKOFF_FIRST_SECONDS = 300.0
BACKOFF_MAX_SECONDS = 3600.0
_RING = re.compile(r"^(?P<stem>.+-rec-[a-z0-9-]+-[0-9a-f]{8}-g)(?P<gen>\d{1,6})$")
_STAMP = "%Y%m%dT%H%M%SZ"
_SEGMENT_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _slug(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.casefold()).strip("-")[:limit].strip("-") or "x"


def _segment(text: str | None) -> str:
    return _SEGMENT_UNSAFE.sub("-", text or "-").strip("-.")[:120] or "-"


def ring_stem(prefix: str, target_id: str) -> str:
    """`{prefix}-rec-{vm}-{hash8}-g`: the same for every ring of one VM or scale set."""
    digest = hashlib.sha256(target_id.casefold().encode()).hexdigest()[:8]
    label = _slug(target_id.rstrip("/").rsplit("/", 1)[-1], 80 - len(prefix) - 24)
    return f"{prefix}-rec-{label}-{digest}-g"


def ring_name(prefix: str, target_id: str, generation: int) -> str:
    return f"{ring_stem(prefix, target_id)}{generation}"


def is_ring(name: str, prefix: str) -> bool:
    match = _RING.match(name)
    return match is not None and match.group("stem").startswith(f"{prefix}-rec-")


def _generation(name: str) -> int:
    match = _RING.match(name)
    return int(match.group("gen")) if match else 0


@dataclass(frozen=True)
class PostInfo:
    """What a post-alert ring's storage path says: which ring it continues, and for which alert."""

    frozen: str
    frozen_at: datetime
    fired_at: datetime | None
    rule: str | None
    alert: str | None
    folder: str  # blob-name prefix of the whole timeline (the frozen ring's folder)


def parse_post_path(path: str | None) -> PostInfo | None:
    """Read back a post ring's storage path; None for any other path."""
    if not path:
        return None
    parts = urlsplit(path).path.split("/")
    # ['', container, 'recorder', vm, '{frozen}.{created}', 'post', frozenAt, firedAt, rule, alert, file]
    if len(parts) != 11 or parts[2] != "recorder" or parts[5] != "post":
        return None
    try:
        frozen_at = datetime.strptime(parts[6], _STAMP).replace(tzinfo=UTC)
        fired_at = None if parts[7] == "-" else datetime.strptime(parts[7], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None
    return PostInfo(
        frozen=parts[4].split(".", 1)[0],
        frozen_at=frozen_at,
        fired_at=fired_at,
        rule=None if parts[8] == "-" else parts[8],
        alert=None if parts[9] == "-" else parts[9],
        folder=f"recorder/{parts[3]}/{parts[4]}/",
    )


@dataclass
class RecorderRun:
    """What one scheduler run did (also what tests, the demo and the log line look at)."""

    armed: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    disarmed: list[str] = field(default_factory=list)
    post_stopped: list[str] = field(default_factory=list)
    reported: list[CaptureView] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    arm_calls: int = 0
    skipped: bool = False


@dataclass
class _Backoff:
    retry_at: float
    delay: float


class Recorder:
    """Arms, freezes, follows through and re-arms flight-recorder rings."""

    def __init__(
        self,
        arm: Arm,
        settings: Settings,
        reservations: Reservations,
        blobs: Blobs | None = None,
        notify: Callable[[CaptureView], list[str]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.arm = arm
        self.settings = settings
        self.reservations = reservations
        self.blobs = blobs
        self.notify = notify
        self.clock = clock or (lambda: datetime.now(UTC))
        self._run_lock = threading.Lock()
        self._backoff: dict[str, _Backoff] = {}
        self._backoff_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.recorder_limit > 0 and bool(self.settings.storage_account_name)

    # -- names, paths, bodies ----------------------------------------------------------------------

    def _account_root(self) -> str:
        return f"https://{self.settings.storage_account_name}.blob.core.windows.net/{CONTAINER}/recorder"

    def _label(self, target_id: str) -> str:
        return _slug(target_id.rstrip("/").rsplit("/", 1)[-1], 64)

    def ring_path(self, target_id: str, name: str) -> str:
        """`recorder/{vm}/{ring}.{created}/ring.cap`: a fresh folder per ring, even when a name recurs."""
        now = self.clock().astimezone(UTC)
        stamp = f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z"
        return f"{self._account_root()}/{self._label(target_id)}/{name}.{stamp}/ring.cap"

    def post_path(self, frozen: CaptureInfo, frozen_at: datetime, event: AlertEvent) -> str:
        """Under the frozen ring's folder: one listing then finds the whole timeline around the alert."""
        folder = (frozen.storage_path or self.ring_path(frozen.target or "", frozen.name)).rsplit("/", 1)[0]
        fired = event.fired_at.astimezone(UTC).strftime(_STAMP) if event.fired_at else "-"
        alert = _segment(event.instance_key.rstrip("/").rsplit("/", 1)[-1])
        return f"{folder}/post/{frozen_at.strftime(_STAMP)}/{fired}/{_segment(event.rule)}/{alert}/ring.cap"

    def ring_body(self, target_id: str, path: str, session_seconds: int) -> PacketCapture:
        """A continuous capture: captureSettings only; no totalBytesPerSession, timeLimitInSeconds or
        filePath, which a continuous capture refuses (azure-mgmt-network >= 31 sends only what is set)."""
        from azure.mgmt.network.models import (
            PacketCapture,
            PacketCaptureFilter,
            PacketCaptureParameters,
            PacketCaptureSettings,
            PacketCaptureStorageLocation,
        )

        scale_set = "/virtualmachinescalesets/" in target_id.casefold()
        s = self.settings
        return PacketCapture(
            properties=PacketCaptureParameters(
                target=target_id,
                target_type="AzureVMSS" if scale_set else "AzureVM",
                bytes_to_capture_per_packet=s.bytes_per_packet,
                storage_location=PacketCaptureStorageLocation(
                    storage_id=s.storage_account_id, storage_path=path
                ),
                filters=[PacketCaptureFilter(f.to_arm()) for f in s.filters],
                continuous_capture=True,
                capture_settings=PacketCaptureSettings(
                    file_count=s.recorder_file_count,
                    file_size_in_bytes=s.recorder_file_size_bytes,
                    session_time_limit_in_seconds=session_seconds,
                ),
            )
        )

    def rings_on(self, captures: list[CaptureInfo], target: ResourceId) -> list[CaptureInfo]:
        """Our rings recording this VM: on the VM itself, or on the scale set it belongs to."""
        owners = {target.key}
        if target.scale_set_id:
            owners.add(target.scale_set_id.casefold())
        prefix = self.settings.name_prefix
        return [c for c in captures if is_ring(c.name, prefix) and (c.target or "").casefold() in owners]

    # -- freeze (inside the webhook) ---------------------------------------------------------------

    def freeze(
        self,
        event: AlertEvent,
        target: ResourceId,
        watcher: Watcher,
        captures: list[CaptureInfo],
        listed_at: float,
    ) -> TargetResult | None:
        """Stop the VM's ring and start the post-alert ring; None when no live ring records this VM."""
        rings = self.rings_on(captures, target)
        if not rings:
            return None
        posts = [(r, parse_post_path(r.storage_path)) for r in rings]
        for ring, post in posts:
            if post is not None and (ring.provisioning_state or "").casefold() != "failed":
                # Already frozen for this incident: never stop or report it twice.
                return TargetResult(
                    target.raw,
                    Outcome.DUPLICATE,
                    f"ring {post.frozen} was frozen at {post.frozen_at:%H:%M:%S} UTC for alert "
                    f"{post.alert or '?'}; post-alert ring {ring.name} records what follows",
                    capture=capture_view(ring, watcher),
                )
        frozen_names = {p.frozen.casefold() for _, p in posts if p is not None}
        plain = [r for r, p in posts if p is None and r.name.casefold() not in frozen_names]
        if not plain:
            return None
        ring = max(plain, key=lambda r: _generation(r.name))
        status = self.arm.capture_status(watcher, ring.name)
        stop_reason = (status.stop_reason or "").casefold()
        if not status.active and stop_reason != "manual":
            return None  # the session ended on its own: no evidence held, capture as usual
        owner = ring.target or target.raw
        post_name = ring_name(self.settings.name_prefix, owner, max(_generation(r.name) for r in rings) + 1)
        refusal = self.reservations.reserve(
            watcher, post_name, target, [c.name for c in captures], listed_at, self.settings.max_sessions
        )
        if refusal is not None and refusal.outcome is Outcome.DUPLICATE:
            return TargetResult(target.raw, Outcome.DUPLICATE, f"ring {ring.name} is being frozen")
        if refusal is not None:
            # No slot for the post-alert ring: a frozen ring without one could not be followed through,
            # so the ring keeps recording (nothing lost yet) and the answer says why.
            return TargetResult(
                target.raw, Outcome.LIMITED, f"ring {ring.name} keeps recording: {refusal.reason}"
            )
        now = self.clock()
        frozen_at = now.replace(microsecond=0)
        try:
            if status.active:
                self.arm.stop_capture(watcher, ring.name)
        except BaseException:
            self.reservations.release(watcher, post_name)
            raise
        window = self._window(status, now)
        view = capture_view(ring, watcher, status)
        path = self.post_path(ring, frozen_at, event)
        body = self.ring_body(owner, path, self.settings.time_limit_seconds)
        try:
            self.arm.create_capture(watcher, post_name, body)
        except ArmError as exc:
            self.reservations.release(watcher, post_name)
            if exc.status != 409:
                raise
        except BaseException:
            self.reservations.release(watcher, post_name)
            raise
        else:
            self.reservations.created(watcher, post_name)
        window["postRing"] = post_name
        window["postSeconds"] = self.settings.time_limit_seconds
        return TargetResult(
            target.raw,
            Outcome.FROZEN,
            f"ring {ring.name} frozen: it holds up to {window['maxBytes']:,} bytes recorded since "
            f"{window['from'] or 'its start'}; post-alert ring {post_name} records the next "
            f"{self.settings.time_limit_seconds} s",
            capture=view,
            window=window,
        )

    def _window(self, status: CaptureStatus, frozen_at: datetime) -> dict[str, object]:
        s = self.settings
        start = status.start_time
        return {
            "from": start.astimezone(UTC).isoformat() if start else None,
            "to": frozen_at.replace(microsecond=0).isoformat(),
            "seconds": round((frozen_at - start).total_seconds()) if start else None,
            "maxBytes": s.recorder_file_count * s.recorder_file_size_bytes,
            "files": s.recorder_file_count,
        }

    # -- scheduler ---------------------------------------------------------------------------------

    def run(self, subscriptions: list[str]) -> RecorderRun:
        """One scheduler pass over the given subscriptions; never raises for one VM's trouble."""
        if not self.enabled:
            return RecorderRun(skipped=True)
        if not self._run_lock.acquire(blocking=False):
            return RecorderRun(skipped=True)
        try:
            with call_scope() as scope:
                result = RecorderRun()
                for subscription in subscriptions:
                    try:
                        self._subscription(subscription, result)
                    except ArmError as exc:
                        result.errors.append(f"{subscription}: ({exc.code}) {exc.message}")
            result.arm_calls = scope.calls
            return result
        finally:
            self._run_lock.release()

    def _subscription(self, subscription: str, result: RecorderRun) -> None:
        tagged = [
            t
            for t in self.arm.tagged(subscription, self.settings.recorder_tag, TAG_VALUE)
            if t.type.casefold()
            in ("microsoft.compute/virtualmachines", "microsoft.compute/virtualmachinescalesets")
        ]
        watchers = self.arm.list_watchers(subscription)
        regions = {w.location for w in watchers}
        for item in tagged:
            if item.location not in regions:
                self._problem(
                    item.id,
                    f"no Network Watcher in region '{item.location}': the recorder cannot arm {item.id}",
                    result,
                )
        for watcher in watchers:
            here = [t for t in tagged if t.location == watcher.location]
            try:
                self._watcher(watcher, here, result)
            except ArmError as exc:
                result.errors.append(f"{watcher.name}: ({exc.code}) {exc.message}")

    def _watcher(self, watcher: Watcher, tagged: list[Tagged], result: RecorderRun) -> None:
        listed_at = time.monotonic()
        captures = self.arm.list_captures(watcher)
        prefix = self.settings.name_prefix
        rings = [c for c in captures if is_ring(c.name, prefix)]
        if not rings and not tagged:
            return
        by_target: dict[str, list[CaptureInfo]] = {}
        for ring in rings:
            by_target.setdefault((ring.target or "").casefold(), []).append(ring)
        wanted = {t.id.casefold(): t.id for t in tagged}
        active_rings = 0
        needs: list[str] = []
        for key in sorted(set(by_target) | set(wanted)):
            ring_list = by_target.get(key, [])
            target_id = wanted.get(key) or (ring_list[0].target if ring_list else key) or key
            try:
                live = self._target(watcher, target_id, ring_list, key in wanted, result)
            except ArmError as exc:
                result.errors.append(f"{target_id}: ({exc.code}) {exc.message}")
                live = True  # unknown: count it, do not arm over it
            active_rings += 1 if live else 0
            if key in wanted and not live:
                needs.append(target_id)
        names = [c.name for c in captures]
        for target_id in needs:
            if active_rings >= self.settings.recorder_limit:
                self._problem(
                    target_id,
                    f"CAPTURE_RECORDER_MAX ({self.settings.recorder_limit}) rings already run on watcher "
                    f"{watcher.name}: {target_id} stays unarmed",
                    result,
                    backoff=False,
                )
                continue
            generations = [_generation(r.name) for r in by_target.get(target_id.casefold(), [])]
            if self._arm(watcher, target_id, max(generations, default=0) + 1, names, listed_at, result):
                active_rings += 1

    def _target(
        self, watcher: Watcher, target_id: str, rings: list[CaptureInfo], wanted: bool, result: RecorderRun
    ) -> bool:
        """Bring one VM's rings to their next state; True when a ring (plain or post) is recording it."""
        now = self.clock()
        posts = {r.name.casefold(): (r, p) for r in rings if (p := parse_post_path(r.storage_path))}
        frozen = {p.frozen.casefold() for _, p in posts.values()}
        recording = False
        for ring, post in posts.values():
            status = self.arm.capture_status(watcher, ring.name)
            if status.active and now >= post.frozen_at + timedelta(seconds=self.settings.time_limit_seconds):
                self.arm.stop_capture(watcher, ring.name)
                result.post_stopped.append(ring.name)
                status = CaptureStatus("Stopped", status.start_time, "Manual")
            if status.active:
                recording = True
                continue
            parent = next((r for r in rings if r.name.casefold() == post.frozen.casefold()), None)
            self._follow_through(watcher, parent, ring, post, result)
        for ring in rings:
            if ring.name.casefold() in posts or ring.name.casefold() in frozen:
                continue
            status = self.arm.capture_status(watcher, ring.name)
            if not wanted:
                if status.active:
                    self.arm.stop_capture(watcher, ring.name)
                self.arm.delete_capture(watcher, ring.name)
                result.disarmed.append(ring.name)
                self._log("recorder_disarmed", ring=ring.name, target=target_id)
                continue
            if not status.active:
                # The session ended by itself (or a freeze never got its post ring): nothing to keep.
                self.arm.delete_capture(watcher, ring.name)
                self._log("recorder_ring_ended", ring=ring.name, stopReason=status.stop_reason)
                continue
            started = status.start_time
            ends = started + timedelta(seconds=self.settings.recorder_session_seconds) if started else None
            if ends is not None and now >= ends - timedelta(seconds=REPLACE_BEFORE_SECONDS) and not recording:
                # Replace before it expires: stop and delete the old ring; a new one is armed below.
                self.arm.stop_capture(watcher, ring.name)
                self.arm.delete_capture(watcher, ring.name)
                result.replaced.append(ring.name)
                self._log("recorder_replaced", ring=ring.name, target=target_id)
                continue
            if recording:
                # Two rings on one VM (a race of runs): keep the one already recording.
                self.arm.delete_capture(watcher, ring.name)
                continue
            recording = True
        return recording

    def _arm(
        self,
        watcher: Watcher,
        target_id: str,
        generation: int,
        names: list[str],
        listed_at: float,
        result: RecorderRun,
    ) -> bool:
        if not self._due(target_id):
            return False
        name = ring_name(self.settings.name_prefix, target_id, generation)
        target = parse_resource_id(target_id)
        refusal = self.reservations.reserve(
            watcher, name, target, names, listed_at, self.settings.max_sessions
        )
        if refusal is not None:
            if refusal.outcome is Outcome.LIMITED:
                result.problems.append(refusal.reason)
            return False
        try:
            self.arm.create_capture(
                watcher,
                name,
                self.ring_body(
                    target_id, self.ring_path(target_id, name), self.settings.recorder_session_seconds
                ),
            )
        except ArmError as exc:
            self.reservations.release(watcher, name)
            if exc.status == 409:
                return True  # a concurrent run armed it
            if exc.transient:
                raise
            self._problem(target_id, f"cannot arm {target_id}: ({exc.code}) {exc.message}", result)
            return False
        except BaseException:
            self.reservations.release(watcher, name)
            raise
        self.reservations.created(watcher, name)
        with self._backoff_lock:
            self._backoff.pop(target_id.casefold(), None)
        result.armed.append(name)
        self._log("recorder_armed", ring=name, target=target_id)
        return True

    def _due(self, target_id: str) -> bool:
        with self._backoff_lock:
            held = self._backoff.get(target_id.casefold())
            return held is None or held.retry_at <= time.monotonic()

    def _problem(self, target_id: str, message: str, result: RecorderRun, *, backoff: bool = True) -> None:
        """Report a VM that cannot be armed once, then retry it with a growing delay (not every run)."""
        key = target_id.casefold()
        with self._backoff_lock:
            held = self._backoff.get(key)
            if held is not None and held.retry_at > time.monotonic():
                return
            first = held is None
            delay = BACKOFF_FIRST_SECONDS if held is None else min(held.delay * 2, BACKOFF_MAX_SECONDS)
            if backoff:
                self._backoff[key] = _Backoff(time.monotonic() + delay, delay)
        if first or not backoff:
            result.problems.append(message)
            log.warning(
                json.dumps({"event": "recorder_problem", "target": target_id, "message": message[:300]})
            )

    # -- follow-through ----------------------------------------------------------------------------

    def _follow_through(
        self,
        watcher: Watcher,
        frozen: CaptureInfo | None,
        post_ring: CaptureInfo,
        post: PostInfo,
        result: RecorderRun,
    ) -> None:
        """Report the frozen timeline once its files are in storage (or the grace is over); clean up."""
        now = self.clock()
        ends = post.frozen_at + timedelta(seconds=self.settings.time_limit_seconds)
        grace_over = now >= ends + timedelta(seconds=self.settings.start_grace_seconds)
        if frozen is not None and self.arm.capture_status(watcher, frozen.name).active:
            return  # its files reach storage only once its session has stopped
        resource = frozen or post_ring
        report = capture_view(resource, watcher)
        report.name = post.frozen
        report.alert = AlertRef(rule=post.rule, instance=post.alert)
        report.vm = self._label(resource.target or "")
        report.stop_reason = "Manual"
        alert_at = post.fired_at or post.frozen_at
        timeline = None
        if self.blobs is not None:
            timeline = self.blobs.timeline(
                resource.storage_path or post_ring.storage_path or "",
                post.folder,
                alert_at,
                only_complete=not grace_over,
            )
            if not timeline.complete and not grace_over:
                return  # the files move to storage after each session stops: look again next run
        report.outcome = "completed" if timeline is not None and timeline.complete else "failed"
        report.stop_reason_text = f"frozen by alert {post.alert or '?'} at {post.frozen_at:%H:%M:%S} UTC"
        report.analysis = (
            timeline.analysis if timeline is not None else Analysis(error="no storage configured")
        )
        report.recorder = {
            "alertAt": alert_at.isoformat(),
            "frozenAt": post.frozen_at.isoformat(),
            "postRing": post_ring.name,
            **(timeline.summary if timeline is not None else {}),
        }
        if timeline is not None and not timeline.complete:
            report.stop_reason_text += f"; {timeline.missing_text}"
        if self.blobs is not None:
            self.blobs.store_report(report)
        failures = self.notify(report) if self.notify is not None else []
        if failures:
            result.errors.append(f"{post.frozen}: report not delivered")
            return
        self.arm.delete_capture(watcher, post_ring.name)
        if frozen is not None:
            self.arm.delete_capture(watcher, frozen.name)
        result.reported.append(report)
        self._log(
            "recorder_reported",
            ring=post.frozen,
            postRing=post_ring.name,
            outcome=report.outcome,
            secondsBefore=report.recorder.get("secondsBefore"),
            secondsAfter=report.recorder.get("secondsAfter"),
        )

    @staticmethod
    def _log(event: str, **fields: object) -> None:
        log.info(json.dumps({"event": event, **fields}, default=str))
