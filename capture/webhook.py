"""The HTTP side of the app: alert in, decisions and captures, one JSON answer out.

The precedence of the HTTP status is chosen for Azure Monitor's retry rules: it retries 503 (and
408/429/504) only, and silences an endpoint for 15 minutes after failed retries. A transient Azure
failure on any target therefore wins (a retry is safe: started captures come back as `duplicate`),
then `started`, then non-transient Azure errors, then `forbidden`; capacity and duplicates are 200 so
that a full watcher never looks like a broken endpoint. Rejected input (400) comes first of all.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.message import Message
from typing import TYPE_CHECKING, Any

from capture.arm import ArmError, call_scope
from capture.decisions import Outcome, TargetResult, outcome_for, plan
from capture.errors import InputError, quote
from capture.orchestrator import Listings
from capture.payloads import MAX_BODY_BYTES, AlertEvent, parse_alert
from capture.resource_ids import ResourceId
from capture.settings import CaptureOptions

if TYPE_CHECKING:
    from capture.context import AppContext

__all__ = [
    "RETRY_AFTER_SECONDS",
    "STATUS_CODES",
    "Answer",
    "UnsupportedMedia",
    "arm_failure",
    "handle_alert",
    "http_status",
    "read_body",
    "rejected",
]

log = logging.getLogger("capture.decisions")

RETRY_AFTER_SECONDS = 10
# Targets of one delivery are worked on this many at once, all within one deadline (the budget).
MAX_PARALLEL_TARGETS = 16
# A target is not begun with less than this left: the warm path is two ARM calls.
MIN_TARGET_SECONDS = 0.5
# The answer lists at most this many results (the most important first) and counts them all; the log
# has at most this many decision lines per delivery, and one summary line.
MAX_RESULTS = 20
MAX_DECISION_LOGS = 20
NOT_STARTED_REASON = "not begun within the webhook's time budget; retry (what started answers duplicate)"
# Content types the webhook reads as JSON (Azure Monitor sends application/json); no Content-Type at all
# is read as JSON too, for hand-written curl calls and scripts.
JSON_TYPES = ("application/json",)
FOLLOW = (
    "GET /api/captures/{name} shows each capture's live status; a notification "
    "is sent when it ends (CAPTURE_NOTIFY_URL)"
)

# In order of precedence: the first outcome any target has decides the answer's status.
STATUS_CODES: dict[Outcome, int] = {
    Outcome.REJECTED: 400,
    Outcome.UNAVAILABLE: 503,
    Outcome.STARTED: 202,
    Outcome.FROZEN: 202,
    Outcome.FAILED: 502,
    Outcome.FORBIDDEN: 403,
    Outcome.LIMITED: 200,
    Outcome.DUPLICATE: 200,
    Outcome.IGNORED: 200,
}


@dataclass
class Answer:
    """An HTTP answer, independent of the Functions types; 503 always carries Retry-After."""

    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status_code == 503:
            self.headers.setdefault("Retry-After", str(RETRY_AFTER_SECONDS))


def rejected(
    error: InputError,
    results: list[TargetResult] | None = None,
    *,
    status: int = 400,
    request_id: str | None = None,
) -> Answer:
    """400 (or 415): what is wrong with the input and where; logged, since the sender may never read
    the answer (the reason and location only: never the body, never the key)."""
    record = {"event": "request_rejected", "requestId": request_id, "status": status}
    log.info(json.dumps({**record, "location": error.location, "error": error.message}))
    error_body = {"message": error.message, "location": error.location}
    lines = [result_json(r) for r in (results or [])[:MAX_RESULTS]]
    return Answer(status, {"status": "rejected", "error": error_body, "results": lines})


class UnsupportedMedia(InputError):
    """A body the webhook does not read (its Content-Type or Content-Encoding): 415."""


def read_body(body: bytes, headers: Mapping[str, str]) -> bytes:
    """The JSON bytes of a delivery, by its headers; raises InputError (UnsupportedMedia for 415).

    Content-Type: application/json (any charset spelling of UTF-8), or none at all; anything else is
    415. Content-Encoding: none/identity, or gzip decoded to at most MAX_BODY_BYTES; anything else 415.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    content_type = lowered.get("content-type", "").strip()
    if content_type:
        parsed = Message()
        parsed["content-type"] = content_type
        charset = parsed.get_param("charset")
        if parsed.get_content_type() not in JSON_TYPES:
            raise UnsupportedMedia(
                f"Content-Type {quote(content_type)} is not accepted; send the alert as application/json",
                "headers.Content-Type",
            )
        if isinstance(charset, str) and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise UnsupportedMedia(
                f"charset {quote(charset)} is not accepted; JSON is sent as UTF-8", "headers.Content-Type"
            )
    encoding = lowered.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedMedia(
            f"Content-Encoding {quote(encoding)} is not accepted; send the body plain or gzip-compressed",
            "headers.Content-Encoding",
        )
    inflater = zlib.decompressobj(wbits=31)  # gzip framing
    try:
        data = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error:
        raise InputError("the body is not valid gzip data (Content-Encoding: gzip)", "body") from None
    if len(data) > MAX_BODY_BYTES:
        raise InputError(
            f"the body decompresses to more than {MAX_BODY_BYTES} bytes (1 MiB); at most 1 MiB is accepted",
            "body",
        )
    if not inflater.eof:
        raise InputError("the gzip body is truncated (Content-Encoding: gzip)", "body")
    return data


def result_json(result: TargetResult) -> dict[str, Any]:
    """One line of `results`: the target, its outcome and why, and the capture or Azure's error."""
    body: dict[str, Any] = {"target": result.target, "outcome": result.outcome.value, "reason": result.reason}
    if result.capture is not None:
        body["capture"] = result.capture.to_json()
    if result.error is not None:
        body["error"] = result.error
    if result.window is not None:
        body["window"] = result.window
    return body


def arm_failure(exc: ArmError) -> Answer:
    """502 or 503 for a request that is one Azure call (listing or reading captures)."""
    outcome = outcome_for(exc)
    log.warning(json.dumps({"event": "azure_failed", "outcome": outcome.value, "error": exc.code}))
    body = {"status": outcome.value, "error": {"code": exc.code, "message": exc.message}}
    return Answer(STATUS_CODES[outcome], body)


def http_status(results: list[TargetResult]) -> tuple[int, Outcome]:
    """The response status and its `status` word, from the per-target outcomes."""
    outcomes = {r.outcome for r in results}
    for outcome, status in STATUS_CODES.items():
        if outcome in outcomes:
            return status, outcome
    return 200, Outcome.IGNORED


def handle_alert(
    body: bytes,
    ctx: AppContext,
    *,
    headers: Mapping[str, str] | None = None,
    request_id: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Answer:
    """Decide and act on one webhook delivery, within one deadline for all its targets.

    `clock` is what the deadline is measured on (tests pass their own to move time).
    """
    delivery = _Delivery(request_id, clock(), clock)
    settings = ctx.settings
    try:
        event = parse_alert(read_body(body, headers or {}), settings.override_limits)
    except UnsupportedMedia as exc:
        return rejected(exc, status=415, request_id=request_id)
    except InputError as exc:
        return rejected(exc, request_id=request_id)
    decided = plan(event, settings.allowed_scopes)
    if decided.rejection is not None:
        return rejected(decided.rejection, decided.malformed, request_id=request_id)
    results = list(decided.results)
    for result in results:
        delivery.log_decision(event, result, 0)
    if decided.capturable:
        options = settings.capture_options(event.overrides)
        deadline = delivery.started + settings.webhook_budget_seconds
        results.extend(_start_all(event, decided.capturable, options, ctx, delivery, deadline))
    status_code, word = http_status(results)
    payload: dict[str, Any] = {
        "status": word.value,
        "alert": _alert_summary(event),
        "counts": dict(Counter(r.outcome.value for r in results)),
        "results": [result_json(r) for r in _shown(results)],
    }
    if len(results) > MAX_RESULTS:
        payload["resultsOmitted"] = len(results) - MAX_RESULTS
    if word in (Outcome.STARTED, Outcome.FROZEN):
        payload["follow"] = FOLLOW
    delivery.log_summary(event, word, status_code, payload["counts"])
    return Answer(status_code, payload)


def _shown(results: list[TargetResult]) -> list[TargetResult]:
    """All results when they fit; else the first MAX_RESULTS in status precedence (the deciding ones)."""
    if len(results) <= MAX_RESULTS:
        return results
    rank = {outcome: i for i, outcome in enumerate(STATUS_CODES)}
    return sorted(results, key=lambda r: rank[r.outcome])[:MAX_RESULTS]


def _start_all(
    event: AlertEvent,
    targets: list[ResourceId],
    options: CaptureOptions,
    ctx: AppContext,
    delivery: _Delivery,
    deadline: float,
) -> list[TargetResult]:
    """Every target within one deadline, MAX_PARALLEL_TARGETS at a time; what cannot begin in time is
    `unavailable` (503 + Retry-After), and its retry finds what did start as `duplicate`."""

    listings = Listings()  # each watcher listed once for the whole delivery

    def one(target: ResourceId) -> TargetResult:
        left = deadline - delivery.clock()
        if left < MIN_TARGET_SECONDS:
            result = TargetResult(target.raw, Outcome.UNAVAILABLE, NOT_STARTED_REASON)
            delivery.log_decision(event, result, 0)
            return result
        with call_scope(left) as scope:
            result = ctx.orchestrator.start(event, target, options, listings)
        delivery.log_decision(event, result, scope.calls)
        return result

    if len(targets) == 1:
        return [one(targets[0])]
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_TARGETS, len(targets))) as pool:
        futures = [pool.submit(contextvars.copy_context().run, one, t) for t in targets]
        return [f.result() for f in futures]


def _alert_summary(event: AlertEvent) -> dict[str, Any]:
    return {
        "schema": event.schema_name,
        "id": event.instance_key,
        "rule": event.rule,
        "condition": event.condition,
        "severity": event.severity,
        "firedAt": event.fired_at.isoformat() if event.fired_at else None,
        "description": event.description,
        "monitoringService": event.monitoring_service,
        "customProperties": event.custom_properties,
    }


class _Delivery:
    """One delivery's log: its request id, start, and the cap on its decision lines."""

    def __init__(self, request_id: str | None, started: float, clock: Callable[[], float]) -> None:
        self.request_id = request_id
        self.started = started
        self.clock = clock
        self._logged = 0
        self._lock = threading.Lock()

    def _ms(self) -> float:
        return round((self.clock() - self.started) * 1000, 1)

    def log_decision(self, event: AlertEvent, result: TargetResult, arm_calls: int) -> None:
        """One structured line per decision, the first MAX_DECISION_LOGS of a delivery; no URLs, keys
        or tokens ever reach it."""
        with self._lock:
            self._logged += 1
            if self._logged > MAX_DECISION_LOGS:
                return
        record = {
            "event": "capture_decision",
            "requestId": self.request_id,
            "alert": event.instance_key,
            "rule": event.rule,
            "target": result.target,
            "outcome": result.outcome.value,
            "capture": result.capture.name if result.capture else None,
            "armCalls": arm_calls,
            "durationMs": self._ms(),
        }
        if result.error:
            record["error"] = result.error.get("code")
        log.info(json.dumps(record, default=str))

    def log_summary(self, event: AlertEvent, word: Outcome, status: int, counts: dict[str, int]) -> None:
        """The delivery's one summary line: its answer and how many targets had each outcome."""
        record = {
            "event": "alert_answered",
            "requestId": self.request_id,
            "alert": event.instance_key,
            "rule": event.rule,
            "status": status,
            "outcome": word.value,
            "counts": counts,
            "decisionLinesOmitted": max(0, self._logged - MAX_DECISION_LOGS),
            "durationMs": self._ms(),
        }
        log.info(json.dumps(record, default=str))
