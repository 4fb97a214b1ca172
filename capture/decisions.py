"""What an alert means for packet capture, target by target, and the one HTTP answer that results.

The precedence of the HTTP status is chosen for Azure Monitor's retry rules: it retries 503 (and
408/429/504) only, and silences an endpoint for 15 minutes after failed retries. A transient Azure
failure on any target therefore wins (a retry is safe: started captures come back as `duplicate`),
then `started`, then non-transient Azure errors, then `forbidden`; capacity and duplicates are 200 so
that a full watcher never looks like a broken endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from capture.payloads import AlertEvent
from capture.resource_ids import InvalidResourceId, ResourceId, Scope, parse_resource_id


class Outcome(StrEnum):
    STARTED = "started"
    DUPLICATE = "duplicate"
    LIMITED = "limited"
    IGNORED = "ignored"
    FORBIDDEN = "forbidden"
    REJECTED = "rejected"
    FAILED = "failed"  # a non-transient Azure error (502)
    UNAVAILABLE = "unavailable"  # a transient Azure error (503 + Retry-After)


@dataclass
class TargetResult:
    """One line of the webhook's answer."""

    target: str | None
    outcome: Outcome
    reason: str
    capture: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"target": self.target, "outcome": self.outcome.value, "reason": self.reason}
        if self.capture is not None:
            body["capture"] = self.capture
        if self.error is not None:
            body["error"] = self.error
        return body


@dataclass
class Plan:
    """The decisions that need no Azure call, and the targets left to capture."""

    results: list[TargetResult] = field(default_factory=list)
    capturable: list[ResourceId] = field(default_factory=list)
    malformed: list[TargetResult] = field(default_factory=list)


def plan(event: AlertEvent, allowed_scopes: tuple[Scope, ...]) -> Plan:
    """Decide every target that can be decided from the payload and settings alone."""
    result = Plan()
    if event.not_resource_alert:
        result.results.append(TargetResult(None, Outcome.IGNORED, event.not_resource_alert))
        return result
    if not event.fired:
        reason = f"alert is {event.condition or 'not fired'}: nothing to capture"
        result.results.extend(TargetResult(t, Outcome.IGNORED, reason) for t in event.targets)
        if not event.targets:
            result.results.append(TargetResult(None, Outcome.IGNORED, reason))
        return result
    if not event.targets:
        result.results.append(TargetResult(None, Outcome.IGNORED, "the alert names no target resource"))
        return result
    for raw in event.targets:
        try:
            target = parse_resource_id(raw)
        except InvalidResourceId as exc:
            result.malformed.append(TargetResult(raw, Outcome.REJECTED, f"malformed resource ID: {exc}"))
            continue
        if target.kind is None:
            kind = "/".join([target.provider, *target.types]) if target.provider else "resource"
            result.results.append(
                TargetResult(
                    raw,
                    Outcome.IGNORED,
                    f"{kind} is not a VM or scale-set instance; packet capture needs one",
                )
            )
        elif allowed_scopes and not any(scope.contains(target) for scope in allowed_scopes):
            result.results.append(
                TargetResult(raw, Outcome.FORBIDDEN, "target is outside CAPTURE_ALLOWED_SCOPES")
            )
        else:
            result.capturable.append(target)
    return result


_PRECEDENCE: list[tuple[Outcome, int]] = [
    (Outcome.REJECTED, 400),
    (Outcome.UNAVAILABLE, 503),
    (Outcome.STARTED, 202),
    (Outcome.FAILED, 502),
    (Outcome.FORBIDDEN, 403),
    (Outcome.LIMITED, 200),
    (Outcome.DUPLICATE, 200),
]


def http_status(results: list[TargetResult]) -> tuple[int, Outcome]:
    """The response status and its `status` word, from the per-target outcomes."""
    outcomes = {r.outcome for r in results}
    for outcome, status in _PRECEDENCE:
        if outcome in outcomes:
            return status, outcome
    return 200, Outcome.IGNORED
