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
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from capture.arm import ArmError, call_scope
from capture.decisions import Outcome, TargetResult, outcome_for, plan
from capture.errors import InputError
from capture.payloads import AlertEvent, parse_alert
from capture.resource_ids import ResourceId
from capture.settings import CaptureOptions

if TYPE_CHECKING:
    from capture.context import AppContext

__all__ = [
    "RETRY_AFTER_SECONDS",
    "STATUS_CODES",
    "Answer",
    "arm_failure",
    "handle_alert",
    "http_status",
    "rejected",
]

log = logging.getLogger("capture.decisions")

RETRY_AFTER_SECONDS = 10
# Several targets are worked on at once so that each gets the whole time budget.
MAX_PARALLEL_TARGETS = 4
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


def rejected(error: InputError, results: list[TargetResult] | None = None) -> Answer:
    """400: what is wrong with the input and where (logged: the sender may never read the answer)."""
    log.info(
        json.dumps({"event": "alert_rejected", "location": error.location, "error": error.message[:300]})
    )
    error_body = {"message": error.message, "location": error.location}
    body = {"status": "rejected", "error": error_body, "results": [result_json(r) for r in results or []]}
    return Answer(400, body)


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


def handle_alert(body: bytes, ctx: AppContext) -> Answer:
    """Decide and act on one webhook delivery."""
    started = time.monotonic()
    settings = ctx.settings
    try:
        event = parse_alert(body, settings.override_limits)
    except InputError as exc:
        return rejected(exc)
    decided = plan(event, settings.allowed_scopes)
    if decided.malformed:
        return rejected(InputError(decided.malformed[0].reason, "target"), decided.malformed)
    results = list(decided.results)
    if decided.capturable:
        options = settings.capture_options(event.overrides)
        results.extend(_start_all(event, decided.capturable, options, ctx, started))
    else:
        for result in results:
            _log_decision(event, result, 0, started)
    status_code, word = http_status(results)
    payload: dict[str, Any] = {
        "status": word.value,
        "alert": _alert_summary(event),
        "results": [result_json(r) for r in results],
    }
    if word in (Outcome.STARTED, Outcome.FROZEN):
        payload["follow"] = FOLLOW
    return Answer(status_code, payload)


def _start_all(
    event: AlertEvent,
    targets: list[ResourceId],
    options: CaptureOptions,
    ctx: AppContext,
    started: float,
) -> list[TargetResult]:
    budget = ctx.settings.webhook_budget_seconds - (time.monotonic() - started)

    def one(target: ResourceId) -> TargetResult:
        with call_scope(budget) as scope:
            result = ctx.orchestrator.start(event, target, options)
        _log_decision(event, result, scope.calls, started)
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


def _log_decision(event: AlertEvent, result: TargetResult, arm_calls: int, started: float) -> None:
    """One structured line per decision; no URLs, keys or tokens ever reach it."""
    record = {
        "event": "capture_decision",
        "alert": event.instance_key,
        "rule": event.rule,
        "target": result.target,
        "outcome": result.outcome.value,
        "capture": result.capture.name if result.capture else None,
        "armCalls": arm_calls,
        "durationMs": round((time.monotonic() - started) * 1000, 1),
    }
    if result.error:
        record["error"] = result.error.get("code")
    log.info(json.dumps(record, default=str))
