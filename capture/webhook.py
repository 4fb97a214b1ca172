"""The alert webhook's use case: payload in, per-target decisions and one HTTP answer out."""

from __future__ import annotations

import contextvars
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from capture.arm import Arm, count_calls, deadline
from capture.decisions import Outcome, TargetResult, http_status, plan
from capture.orchestrator import Orchestrator
from capture.payloads import AlertEvent, PayloadError, parse_alert
from capture.resource_ids import ResourceId
from capture.settings import CaptureOptions, OverrideError, Settings

log = logging.getLogger("capture.decisions")

RETRY_AFTER_SECONDS = 10
# Several targets are worked on at once so that each gets the whole time budget.
MAX_PARALLEL_TARGETS = 4


@dataclass
class Answer:
    """An HTTP answer, independent of the Functions types."""

    status_code: int
    body: dict[str, Any]
    headers: dict[str, str]


def rejected(message: str, location: str) -> Answer:
    return Answer(
        400, {"status": "rejected", "error": {"message": message, "location": location}, "results": []}, {}
    )


def handle_alert(body: bytes, settings: Settings, arm: Arm) -> Answer:
    """Decide and act on one webhook delivery."""
    started = time.monotonic()
    try:
        event = parse_alert(body)
    except PayloadError as exc:
        return rejected(exc.message, exc.location)
    decided = plan(event, settings.allowed_scopes)
    if decided.malformed:
        first = decided.malformed[0]
        answer = rejected(first.reason, "target")
        answer.body["results"] = [r.to_json() for r in decided.malformed]
        return answer
    results = list(decided.results)
    if decided.capturable:
        try:
            options = settings.capture_options(event.overrides)
        except OverrideError as exc:
            return rejected(exc.message, exc.location)
        results.extend(_start_all(event, decided.capturable, options, settings, arm, started))
    else:
        for result in results:
            _log_decision(event, result, 0, started)
    status_code, word = http_status(results)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status_code == 503 else {}
    payload: dict[str, Any] = {
        "status": word.value,
        "alert": _alert_summary(event),
        "results": [r.to_json() for r in results],
    }
    if word is Outcome.STARTED:
        payload["follow"] = (
            "GET /api/captures/{name} shows each capture's live status; a notification "
            "is sent when it ends (CAPTURE_NOTIFY_URL)"
        )
    return Answer(status_code, payload, headers)


def _start_all(
    event: AlertEvent,
    targets: list[ResourceId],
    options: CaptureOptions,
    settings: Settings,
    arm: Arm,
    started: float,
) -> list[TargetResult]:
    orchestrator = Orchestrator(arm, settings)
    budget = settings.webhook_budget_seconds - (time.monotonic() - started)

    def one(target: ResourceId) -> TargetResult:
        with deadline(budget), count_calls() as calls:
            result = orchestrator.start(event, target, options)
        _log_decision(event, result, calls[0], started)
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
    }


def _log_decision(event: AlertEvent, result: TargetResult, arm_calls: int, started: float) -> None:
    """One structured line per decision; no URLs, keys or tokens ever reach it."""
    record = {
        "event": "capture_decision",
        "alert": event.instance_key,
        "rule": event.rule,
        "target": result.target,
        "outcome": result.outcome.value,
        "capture": (result.capture or {}).get("name"),
        "armCalls": arm_calls,
        "durationMs": round((time.monotonic() - started) * 1000, 1),
    }
    if result.error:
        record["error"] = result.error.get("code")
    log.info(json.dumps(record, default=str))
