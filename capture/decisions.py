"""What an alert means for packet capture, target by target: the decisions, not the HTTP answer.

`plan` decides everything the payload and settings alone decide (ignored, forbidden, malformed);
`outcome_for` is the one place an Azure failure becomes an outcome (transient: `unavailable`, else
`failed`). The HTTP status each outcome gets, and which one wins, is the webhook's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from capture.arm import ArmError
from capture.errors import InputError
from capture.payloads import AlertEvent
from capture.resource_ids import InvalidResourceId, ResourceId, Scope, parse_resource_id
from capture.views import CaptureView

__all__ = ["Outcome", "Plan", "TargetResult", "outcome_for", "plan"]


class Outcome(StrEnum):
    STARTED = "started"
    FROZEN = "frozen"  # a flight-recorder ring was stopped: its files hold the traffic before the alert
    DUPLICATE = "duplicate"
    LIMITED = "limited"
    IGNORED = "ignored"
    FORBIDDEN = "forbidden"
    REJECTED = "rejected"
    FAILED = "failed"  # a non-transient Azure error (502)
    UNAVAILABLE = "unavailable"  # a transient Azure error (503 + Retry-After)


@dataclass
class TargetResult:
    """What was decided for one target (the webhook renders it as one line of `results`)."""

    target: str | None
    outcome: Outcome
    reason: str
    capture: CaptureView | None = None
    error: dict[str, str] | None = None
    window: dict[str, object] | None = None  # `frozen`: the time and bytes the ring holds

    @classmethod
    def from_arm_error(cls, target: str | None, exc: ArmError) -> TargetResult:
        outcome = outcome_for(exc)
        reason = (
            "Azure is busy or slow; retry later"
            if outcome is Outcome.UNAVAILABLE
            else "Azure refused the capture"
        )
        return cls(target, outcome, reason, error={"code": exc.code, "message": exc.message})


@dataclass
class Plan:
    """The decisions that need no Azure call, and the targets left to capture."""

    results: list[TargetResult] = field(default_factory=list)
    capturable: list[ResourceId] = field(default_factory=list)
    malformed: list[TargetResult] = field(default_factory=list)
    # The first malformed target, as the input error the whole alert is rejected with (where it is).
    rejection: InputError | None = None


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
    locations = event.target_locations or ["target"] * len(event.targets)
    for raw, location in zip(event.targets, locations, strict=True):
        try:
            target = parse_resource_id(raw)
        except InvalidResourceId as exc:
            reason = f"malformed resource ID: {exc}"
            result.malformed.append(TargetResult(raw, Outcome.REJECTED, reason))
            result.rejection = result.rejection or InputError(reason, location)
            continue
        if target.kind is None:
            kind = target.resource_type
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


def outcome_for(exc: ArmError) -> Outcome:
    """An Azure failure's outcome: transient ones (throttling, 5xx, time budget) are worth a retry."""
    return Outcome.UNAVAILABLE if exc.transient else Outcome.FAILED
