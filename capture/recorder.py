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

Scheduler (`Recorder.run`, from `Monitor.schedule`, the timer): one tag-filtered resource list per
subscription, one capture list per watcher, a status per ring; it arms, replaces rings near their
session's end, stops post rings after CAPTURE_TIME_LIMIT_SECONDS, disarms untagged VMs (stop + delete,
nothing reported), and queues each stopped post ring as one `timeline` report request, through the
same `ReportQueue.enqueue_once` (marker blob beside the post ring's file) as any finished capture.

Worker (`Recorder.report`, from `Monitor.report` for a `timeline` message): reads the post ring again
from ARM (gone: reported already, a duplicate is harmless), waits for the files (not there yet within
the grace: the marker is released and the next run queues it again), analyses the timeline, stores
the report, adds the links, notifies, and only once every notification was delivered deletes both
rings; the next scheduler run re-arms the VM.

Ownership (`owns_ring`): a ring is ours only when its name has the ring pattern for its own target
(the name's hash is the target's), it writes to our storage account, and its path is the recorder
layout for that VM and that name. Anything else is never frozen, stopped, reported or deleted, and
`monitor.owns` never takes a ring for an ordinary capture (ring names do not end in a 16-hex hash).
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

from capture.arm import (
    Arm,
    ArmError,
    CaptureInfo,
    CaptureStatus,
    Tagged,
    Watcher,
    call_scope,
    watcher_from_id,
)
from capture.decisions import Outcome, TargetResult
from capture.monitor import Listing, ReportFailed, ReportResult
from capture.naming import CONTAINER
from capture.notify import deliver
from capture.payloads import AlertEvent
from capture.queueing import ReportQueue, ReportRequest
from capture.resource_ids import InvalidResourceId, ResourceId, fold, parse_resource_id
from capture.settings import Settings
from capture.views import AlertRef, Analysis, CaptureView, capture_view

if TYPE_CHECKING:
    from azure.mgmt.network.models import PacketCapture

    from capture.blobs import Blobs
    from capture.orchestrator import Reservations

__all__ = ["PostInfo", "Recorder", "RecorderRun", "is_ring", "owns_ring", "parse_post_path", "ring_name"]

log = logging.getLogger(__name__)

TAG_VALUE = "on"
# A ring is replaced in its session's last minutes, well before it expires (several timer runs).
REPLACE_BEFORE_SECONDS = 300
# A VM whose ring cannot be created (no agent, no watcher) is retried after 5 min, doubling to 1 h.
BACKOFF_FIRST_SECONDS = 300.0
BACKOFF_MAX_SECONDS = 3600.0
_RING = re.compile(r"^(?P<stem>.+-rec-[a-z0-9-]+-[0-9a-f]{8}-g)(?P<gen>\d{1,8})$")
# Generations never go back: at least the minutes since this instant (8 digits last 190 years), so a
# VM re-armed after its rings were reported and deleted never reuses a name (nor its stored report).
_GENERATION_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
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


def _next_generation(names: list[str], stem: str, now: datetime) -> int:
    """One above every capture named with this VM's stem, ours or not (a PUT never overwrites another),
    and at least the minutes since _GENERATION_EPOCH (a name never recurs after the rings are gone)."""
    taken = [_generation(n) for n in names if n.startswith(stem) and _RING.match(n)]
    floor = int((now - _GENERATION_EPOCH).total_seconds() // 60)
    return max(max(taken, default=0) + 1, floor, 1)


def owns_ring(resource: CaptureInfo, settings: Settings) -> bool:
    """The ring was provably armed by this app (see the module docstring), not just named like one."""
    name, target = resource.name, resource.target or ""
    account = settings.storage_account_name
    if not account or not target or not is_ring(name, settings.name_prefix):
        return False
    if not name.startswith(ring_stem(settings.name_prefix, target)):
        return False  # the name's hash is another target's
    if fold(resource.storage_id or "") != fold(settings.storage_account_id or "-"):
        return False
    parsed = urlsplit(resource.storage_path or "")
    if fold(parsed.netloc) != fold(f"{account}.blob.core.windows.net"):
        return False
    parts = parsed.path.split("/")
    label = _slug(target.rstrip("/").rsplit("/", 1)[-1], 64)
    if len(parts) < 6 or parts[1] != CONTAINER or parts[2] != "recorder" or parts[3] != label:
        return False
    folder_ring = parts[4].split(".", 1)[0]
    if len(parts) == 6:  # recorder/{vm}/{ring}.{created}/ring.cap
        return parts[5] == "ring.cap" and folder_ring == name
    post = parse_post_path(resource.storage_path)
    # a post ring: under a ring of the same VM, never the folder of itself
    return (
        post is not None
        and parts[10] == "ring.cap"
        and folder_ring != name
        and folder_ring.startswith(ring_stem(settings.name_prefix, target))
    )


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
    queued: list[str] = field(default_factory=list)  # post rings whose timeline report was queued
    already_queued: list[str] = field(default_factory=list)
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
        queue: ReportQueue | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.arm = arm
        self.settings = settings
        self.reservations = reservations
        self.blobs = blobs
        self.queue = queue
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
        return [
            c
            for c in captures
            if owns_ring(c, self.settings)
            and (c.target or "").casefold() in owners
            and fold(c.provisioning_state or "") != "deleting"
        ]

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
        names = [c.name for c in captures]
        post_name = ring_name(
            self.settings.name_prefix,
            owner,
            _next_generation(names, ring_stem(self.settings.name_prefix, owner), self.clock()),
        )
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

    def run(self, subscriptions: list[str], listings: list[Listing] | None = None) -> RecorderRun:
        """One scheduler pass over the given subscriptions; never raises for one VM's trouble.

        `listings`: the watchers' capture lists the scheduler's run made just before (then the pass
        adds only the tag-filtered resource list per subscription); None: list them here."""
        if not self.enabled:
            return RecorderRun(skipped=True)
        if not self._run_lock.acquire(blocking=False):
            return RecorderRun(skipped=True)
        try:
            with call_scope() as scope:
                result = RecorderRun()
                for subscription in subscriptions:
                    try:
                        shared = (
                            None
                            if listings is None
                            else [item for item in listings if item.subscription == subscription]
                        )
                        self._subscription(subscription, result, shared)
                    except ArmError as exc:
                        result.errors.append(f"{subscription}: ({exc.code}) {exc.message}")
            result.arm_calls = scope.calls
            return result
        finally:
            self._run_lock.release()

    def _subscription(self, subscription: str, result: RecorderRun, listings: list[Listing] | None) -> None:
        tagged = [
            t
            for t in self.arm.tagged(subscription, self.settings.recorder_tag, TAG_VALUE)
            if t.type.casefold()
            in ("microsoft.compute/virtualmachines", "microsoft.compute/virtualmachinescalesets")
        ]
        if listings is None:
            listings = []
            for watcher in self.arm.list_watchers(subscription):
                listed_at = time.monotonic()
                listings.append(Listing(subscription, watcher, self.arm.list_captures(watcher), listed_at))
        regions = {item.watcher.location for item in listings}
        for item in tagged:
            if item.location not in regions:
                self._problem(
                    item.id,
                    f"no Network Watcher in region '{item.location}': the recorder cannot arm {item.id}",
                    result,
                )
        for listing in listings:
            here = [t for t in tagged if t.location == listing.watcher.location]
            try:
                self._watcher(listing, here, result)
            except ArmError as exc:
                result.errors.append(f"{listing.watcher.name}: ({exc.code}) {exc.message}")

    def _watcher(self, listing: Listing, tagged: list[Tagged], result: RecorderRun) -> None:
        watcher, captures, listed_at = listing.watcher, listing.captures, listing.listed_at
        # A ring being deleted (reported, replaced) is gone for every purpose but its name.
        rings = [
            c
            for c in captures
            if owns_ring(c, self.settings) and fold(c.provisioning_state or "") != "deleting"
        ]
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
            generation = _next_generation(
                names, ring_stem(self.settings.name_prefix, target_id), self.clock()
            )
            if self._arm(watcher, target_id, generation, names, listed_at, result):
                active_rings += 1

    def _target(
        self, watcher: Watcher, target_id: str, rings: list[CaptureInfo], wanted: bool, result: RecorderRun
    ) -> bool:
        """Bring one VM's rings to their next state; True when a ring records it, or a frozen timeline
        waits for its report (the VM is re-armed by the run after the report deleted it)."""
        now = self.clock()
        posts = {r.name.casefold(): (r, p) for r in rings if (p := parse_post_path(r.storage_path))}
        frozen = {p.frozen.casefold() for _, p in posts.values()}
        recording = False
        for ring, post in posts.values():
            recording = True  # recording after the alert, or waiting for its report: not armed over
            status = self.arm.capture_status(watcher, ring.name)
            if status.active and now >= post.frozen_at + timedelta(seconds=self.settings.time_limit_seconds):
                self.arm.stop_capture(watcher, ring.name)
                result.post_stopped.append(ring.name)
                status = CaptureStatus("Stopped", status.start_time, "Manual")
            if not status.active:
                self._enqueue(watcher, ring, now, result)
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

    # -- follow-through (the queue) ----------------------------------------------------------------

    def _enqueue(self, watcher: Watcher, post_ring: CaptureInfo, now: datetime, result: RecorderRun) -> None:
        """One `timeline` report request per stopped post ring (the marker makes repeats no-ops)."""
        if self.queue is None:
            result.errors.append(f"{post_ring.name}: no report queue")
            return
        request = ReportRequest(
            kind="timeline",
            capture=post_ring.name,
            watcher=watcher.id,
            region=watcher.location,
            storage_path=post_ring.storage_path,
            queued_at=now,
        )
        outcome = self.queue.enqueue_once(request)
        if outcome in ("queued", "requeued"):
            result.queued.append(post_ring.name)
            self._log("recorder_queued", postRing=post_ring.name, outcome=outcome)
        elif outcome == "failed":
            result.errors.append(f"{post_ring.name}: could not be queued")
        else:
            result.already_queued.append(post_ring.name)

    def _current(self, request: ReportRequest) -> tuple[Watcher, CaptureInfo, PostInfo] | None:
        """The post ring the message names, as ARM has it now; None when gone (reported) or not ours."""
        try:
            watcher = watcher_from_id(request.watcher, request.region)
        except InvalidResourceId:
            return None
        ring = self.arm.get_capture(watcher, request.capture)
        if ring is None or not owns_ring(ring, self.settings):
            return None
        if fold(ring.provisioning_state or "") == "deleting" or ring.storage_path != request.storage_path:
            return None
        post = parse_post_path(ring.storage_path)
        return None if post is None else (watcher, ring, post)

    def _frozen(self, watcher: Watcher, post: PostInfo) -> CaptureInfo | None:
        frozen = self.arm.get_capture(watcher, post.frozen)
        return frozen if frozen is not None and owns_ring(frozen, self.settings) else None

    def report(self, request: ReportRequest) -> ReportResult:
        """The worker: report one frozen timeline; raises ReportFailed (the message is retried) when a
        notification was not delivered. Runs inside `Monitor.report`'s call scope."""
        current = self._current(request)
        if current is None:
            return ReportResult(request.capture, "gone")
        watcher, post_ring, post = current
        frozen = self._frozen(watcher, post)
        report = None
        if not self.arm.capture_status(watcher, post_ring.name).active and not (
            frozen is not None and self.arm.capture_status(watcher, frozen.name).active
        ):
            # the files reach storage only once both sessions have stopped
            report = self._timeline_report(watcher, frozen, post_ring, post)
        if report is None:
            if self.queue is not None:
                self.queue.release(request)  # the next scheduler run queues it again
            return ReportResult(request.capture, "not_finished")
        failures = deliver(report, self.settings.notify_urls, self.settings.notify_format)
        if failures:
            log.warning(
                json.dumps({"event": "capture_notify_failed", "capture": report.name, "failures": failures})
            )
            if self.queue is not None:
                self.queue.note_failure(request, f"notification failed: {'; '.join(failures)[:400]}")
            raise ReportFailed(f"{len(failures)} notification(s) failed; the rings are kept")
        self._clean_up(watcher, post_ring, frozen)
        self._log(
            "recorder_reported",
            ring=post.frozen,
            postRing=post_ring.name,
            outcome=report.outcome,
            secondsBefore=(report.recorder or {}).get("secondsBefore"),
            secondsAfter=(report.recorder or {}).get("secondsAfter"),
        )
        return ReportResult(request.capture, "reported", report)

    def report_poisoned(self, request: ReportRequest, attempts: int) -> ReportResult:
        """A timeline whose report kept failing: report it as failed, then delete both rings (their files
        stay in storage) so that the VM is re-armed; raises when the failed report was not delivered."""
        with call_scope() as scope:
            try:
                current = self._current(request)
                if current is None:
                    return ReportResult(request.capture, "gone", arm_calls=scope.calls)
                watcher, post_ring, post = current
                last_error = self.queue.mark_poisoned(request) if self.queue is not None else None
                frozen = self._frozen(watcher, post)
                report = self._base_report(watcher, frozen, post_ring, post)
                report.outcome = "failed"
                report.stop_reason_text = (
                    f"the timeline report could not be completed in {attempts} attempts"
                    + (f" (last failure: {last_error})" if last_error else "")
                    + "; its files stay in storage under "
                    + post.folder
                )
                report.analysis = Analysis(error="not analysed: the report kept failing")
                failures = deliver(report, self.settings.notify_urls, self.settings.notify_format)
                if failures:
                    raise ReportFailed(f"{len(failures)} notification(s) of the poisoned timeline failed")
                self._clean_up(watcher, post_ring, frozen)
            except ArmError as exc:
                raise ReportFailed(f"({exc.code}) {exc.message}") from None
        log.error(
            json.dumps(
                {"event": "recorder_report_poisoned", "postRing": request.capture, "attempts": attempts}
            )
        )
        return ReportResult(request.capture, "poison_reported", report, arm_calls=scope.calls)

    def _clean_up(self, watcher: Watcher, post_ring: CaptureInfo, frozen: CaptureInfo | None) -> None:
        """The post ring first: once it is gone a repeated message is a no-op (`gone`); a frozen ring
        left behind is a stopped plain ring, which the scheduler deletes."""
        self.arm.delete_capture(watcher, post_ring.name)
        if frozen is not None:
            self.arm.delete_capture(watcher, frozen.name)

    def _base_report(
        self, watcher: Watcher, frozen: CaptureInfo | None, post_ring: CaptureInfo, post: PostInfo
    ) -> CaptureView:
        resource = frozen or post_ring
        report = capture_view(resource, watcher)
        report.name = post.frozen
        report.alert = AlertRef(rule=post.rule, instance=post.alert)
        report.vm = self._label(resource.target or "")
        report.stop_reason = "Manual"
        alert_at = post.fired_at or post.frozen_at
        report.recorder = {
            "alertAt": alert_at.isoformat(),
            "frozenAt": post.frozen_at.isoformat(),
            "postRing": post_ring.name,
        }
        return report

    def _timeline_report(
        self, watcher: Watcher, frozen: CaptureInfo | None, post_ring: CaptureInfo, post: PostInfo
    ) -> CaptureView | None:
        """The frozen timeline's report once its files are in storage (or the grace is over); None to
        wait for them."""
        now = self.clock()
        ends = post.frozen_at + timedelta(seconds=self.settings.time_limit_seconds)
        grace_over = now >= ends + timedelta(seconds=self.settings.start_grace_seconds)
        report = self._base_report(watcher, frozen, post_ring, post)
        resource = frozen or post_ring
        alert_at = post.fired_at or post.frozen_at
        timeline = None
        if self.blobs is not None:
            timeline = self.blobs.timeline(
                resource.storage_path or post_ring.storage_path or "",
                post.folder,
                alert_at,
                only_complete=not grace_over,
                vm=report.vm,
                rule=post.rule,
            )
            if not timeline.complete and not grace_over:
                return None  # the files move to storage after each session stops: look again next run
        report.outcome = "completed" if timeline is not None and timeline.complete else "failed"
        report.stop_reason_text = f"frozen by alert {post.alert or '?'} at {post.frozen_at:%H:%M:%S} UTC"
        report.analysis = (
            timeline.analysis if timeline is not None else Analysis(error="no storage configured")
        )
        report.recorder = {**(report.recorder or {}), **(timeline.summary if timeline is not None else {})}
        if timeline is not None and not timeline.complete:
            report.stop_reason_text += f"; {timeline.missing_text}"
        if self.blobs is not None:
            self.blobs.store_report(report)  # without links: they are made per reader
            self.blobs.add_links(report)
        return report

    @staticmethod
    def _log(event: str, **fields: object) -> None:
        log.info(json.dumps({"event": event, **fields}, default=str))
