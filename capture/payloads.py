"""Alert intake: every Azure Monitor alert webhook schema (and a manual request) -> one AlertEvent.

Field locations follow Microsoft's published payload samples and schema definitions. Principles:

* Strict on what we use (targets, status, custom properties, capture overrides, manual fields): a wrong
  type is an InputError that names the field and what was expected, so a 400 explains itself.
* Lenient on everything else: senders add fields, and informational ones (times, rule name, severity,
  description) that have an odd type are dropped instead of failing the alert.
* Keys are matched case-insensitively (PascalCase `AzureMonitorMetricAlert` bodies exist) and every ID
  is an opaque string: published samples contain malformed GUIDs and placeholders.
* Targets are returned as sent (de-duplicated case-insensitively); the decisions module parses them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError, model_validator

from capture.errors import InputError, input_error, kind_of, quote
from capture.resource_ids import InvalidResourceId, fold, parse_resource_id, region_name
from capture.settings import CaptureOverrides, OverrideLimits

__all__ = ["MAX_BODY_BYTES", "MAX_TARGETS", "SCHEMA_NAMES", "AlertEvent", "alert_from_json", "parse_alert"]

MAX_BODY_BYTES = 1024 * 1024

SCHEMA_NAMES: tuple[str, ...] = (
    "common/metric",
    "common/log-v1",
    "common/log-v2",
    "common/log",
    "common/activity-log",
    "common/resource-health",
    "common/service-health",
    "common/smart-detector",
    "common/budget",
    "common/prometheus",
    "common/other",
    "metric-alert",
    "activity-log",
    "classic-metric",
    "legacy-log",
    "budget",
    "manual",
)

_RESOURCE_ID_COLUMNS = ("_resourceid", "resourceid")
_LOG_FAMILIES = ("log-v1", "log-v2", "log")
_LOG_API_LINK = re.compile(
    r"^https://api\.loganalytics\.(?:io|azure\.com)/v1(/subscriptions/[^?#]+?)/query(?:[?#]|$)", re.IGNORECASE
)
_LOG_API_LINKS = ("linkToFilteredSearchResultsAPI", "linkToSearchResultsAPI")
MAX_TARGETS = 500  # per delivery: what one answer (and the webhook's time budget) can cover
MAX_NUMBER_DIGITS = 100
_SURROGATE = re.compile("[\ud800-\udfff]")
_US_TIME = "%m/%d/%Y %I:%M:%S %p"  # Log V1 sometimes sends "3/22/2019 1:36:31 PM"
_SCHEMA_IDS = (
    "azureMonitorCommonAlertSchema",
    "AzureMonitorMetricAlert",
    "Microsoft.Insights/activityLogs",
    "Microsoft.Insights/LogAlert",
    "AIP Budget Notification",
)
_UNKNOWN_SCHEMA = (
    "not a recognised alert: expected an Azure Monitor alert (a 'schemaId' of "
    + ", ".join(_SCHEMA_IDS)
    + "; a classic metric alert with 'status' and 'context'; a legacy log alert with 'AlertRuleName' "
    'and \'SearchQuery\') or a manual request {"targets": ["<VM resource ID>", ...], "reason": "..."}'
)


class AlertEvent(BaseModel):
    """One alert notification, whatever schema it came in."""

    model_config = ConfigDict(frozen=True)

    schema_name: str  # one of SCHEMA_NAMES
    instance_key: str  # the same for retries and action-group fan-out of one notification
    fired: bool  # fired / activated (vs resolved / deactivated)
    condition: str  # monitorCondition / status as sent ("Fired" for schemas that carry none)
    fired_at: datetime | None = None  # timezone-aware
    targets: list[str] = Field(default_factory=list)  # as sent, de-duplicated case-insensitively
    # Where each target is in the caller's body (`data.essentials.alertTargetIDs[0]`, `targets[2]`).
    target_locations: list[str] = Field(default_factory=list)
    region: str | None = None  # only when the payload carries the target's region (classic)
    rule: str | None = None
    severity: str | None = None  # as sent: "Sev3", "3", "Warning"
    description: str | None = None  # alert description / manual reason
    monitoring_service: str | None = None  # common monitoringService, activity-log eventSource, ...
    custom_properties: dict[str, str] = Field(default_factory=dict)  # non-string values as JSON text
    overrides: CaptureOverrides = Field(default_factory=CaptureOverrides)  # validated at intake
    not_resource_alert: str | None = None  # why this alert can never name a VM (budget, service health)


def parse_alert(body: bytes, limits: OverrideLimits | None = None) -> AlertEvent:
    """Decode and parse one webhook body; raises InputError.

    `limits` are the configured maxima the capture overrides are validated against (Network Watcher's
    own when not given).
    """
    return alert_from_json(_decode(body), limits)


def alert_from_json(payload: object, limits: OverrideLimits | None = None) -> AlertEvent:
    """Parse an already-decoded JSON value; raises InputError."""
    if not isinstance(payload, dict):
        raise InputError(
            f"expected a JSON object (an alert or a manual request), got {kind_of(payload)}", "body"
        )
    try:
        _check_unicode(payload)
        event = _dispatch(payload, limits or OverrideLimits())
    except RecursionError:
        raise InputError("the JSON is nested too deeply", "body") from None
    if len(event.targets) > MAX_TARGETS:
        raise InputError(
            f"the request names {len(event.targets)} targets; at most {MAX_TARGETS} are accepted per "
            "delivery (send the rest in further requests)",
            event.target_locations[MAX_TARGETS],
        )
    return event


# --- decoding and dispatch -------------------------------------------------------------------------


def _decode(body: bytes) -> Any:
    if not isinstance(body, bytes | bytearray | memoryview):
        raise InputError(f"expected the request body as bytes, got {type(body).__name__}", "body")
    raw = bytes(body)
    if len(raw) > MAX_BODY_BYTES:
        raise InputError(
            f"the body is {len(raw)} bytes; at most {MAX_BODY_BYTES} bytes (1 MiB) are accepted", "body"
        )
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the body is not UTF-8 text (invalid byte at offset {exc.start}); expected a JSON object", "body"
        ) from None
    if not text.strip():
        raise InputError("the body is empty; expected a JSON object (an alert or a manual request)", "body")
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_int=_bounded_int)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "expected a JSON object",
            "body",
        ) from None
    except RecursionError:
        raise InputError("the JSON is nested too deeply", "body") from None
    except ValueError as exc:  # NaN/Infinity, huge integers: our own messages (below)
        raise InputError(f"the body is not acceptable JSON: {exc}", "body") from None


def _check_unicode(payload: Any) -> None:
    """JSON may escape a lone surrogate ("\\ud800"); such text breaks hashing and logging later."""
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise InputError(
                    "a string contains an unpaired UTF-16 surrogate (an invalid \\u escape); "
                    "expected valid Unicode text",
                    "body",
                )
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _bounded_int(text: str) -> int:
    """JSON integers up to MAX_NUMBER_DIGITS digits (no alert field needs more; Python's own limit
    would answer with its internals)."""
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise ValueError(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _dispatch(payload: dict[str, Any], limits: OverrideLimits) -> AlertEvent:
    schema_id = _ci_get(payload, "schemaId")
    if schema_id is not None:
        if not isinstance(schema_id, str):
            raise InputError(f"expected a string, got {kind_of(schema_id)}", "schemaId")
        parser = _PARSERS.get(fold(schema_id.strip()))
        if parser is None:
            raise InputError(
                f"unknown schemaId {quote(schema_id)}; expected one of: {', '.join(_SCHEMA_IDS)}", "schemaId"
            )
        return parser(payload, limits)
    if _ci_has(payload, "targets"):
        return _manual(payload, limits)
    if _ci_has(payload, "status") and _ci_has(payload, "context"):
        return _classic(payload, limits)
    if _ci_has(payload, "AlertRuleName") and _ci_has(payload, "SearchQuery"):
        return _legacy_log(_validate(_LegacyLog, payload), "Log Analytics")
    raise InputError(_UNKNOWN_SCHEMA, "body")


# --- pydantic models: only the fields we read; `Any` marks the ones read leniently ----------------


class _Model(BaseModel):
    """Base: unknown fields ignored, field names matched case-insensitively (exact spelling wins)."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        aliases = {fold(f.alias or n): (f.alias or n) for n, f in cls.model_fields.items()}
        out: dict[Any, Any] = {}
        for key, value in data.items():
            alias = aliases.get(fold(key)) if isinstance(key, str) else None
            if alias is None:
                out.setdefault(key, value)
            elif key == alias or alias not in out:
                out[alias] = value
        return out


class _Essentials(_Model):
    alert_id: StrictStr = Field(alias="alertId", min_length=1, max_length=1024)
    alert_rule: Any = Field(None, alias="alertRule")
    severity: Any = None
    signal_type: Any = Field(None, alias="signalType")
    monitor_condition: StrictStr = Field(alias="monitorCondition")
    monitoring_service: StrictStr | None = Field(None, alias="monitoringService")
    alert_target_ids: list[StrictStr] | None = Field(None, alias="alertTargetIDs")
    fired_date_time: Any = Field(None, alias="firedDateTime")
    description: Any = None


class _CommonData(_Model):
    essentials: _Essentials
    alert_context: Any = Field(None, alias="alertContext")
    custom_properties: dict[str, Any] | None = Field(None, alias="customProperties")


class _CommonPayload(_Model):
    data: _CommonData


class _MetricContext(_Model):
    id: Any = None  # the rule's ID, not an instance ID
    name: Any = None
    description: Any = None
    severity: Any = None
    timestamp: Any = None
    resource_id: StrictStr = Field(alias="resourceId", min_length=1)


class _MetricData(_Model):
    status: StrictStr
    context: _MetricContext
    properties: dict[str, Any] | None = None


class _MetricPayload(_Model):
    data: _MetricData


class _ActivityLog(_Model):
    resource_id: StrictStr | None = Field(None, alias="resourceId")
    event_source: Any = Field(None, alias="eventSource")
    event_data_id: Any = Field(None, alias="eventDataId")
    correlation_id: Any = Field(None, alias="correlationId")
    operation_id: Any = Field(None, alias="operationId")
    operation_name: Any = Field(None, alias="operationName")
    event_timestamp: Any = Field(None, alias="eventTimestamp")
    submission_timestamp: Any = Field(None, alias="submissionTimestamp")
    description: Any = None


class _ActivityContext(_Model):
    activity_log: _ActivityLog = Field(alias="activityLog")


class _ActivityData(_Model):
    status: StrictStr | None = None
    context: _ActivityContext
    properties: dict[str, Any] | None = None


class _ActivityPayload(_Model):
    data: _ActivityData


class _ClassicContext(_Model):
    id: Any = None
    name: Any = None
    description: Any = None
    timestamp: Any = None
    resource_id: StrictStr = Field(alias="resourceId", min_length=1)
    resource_region: StrictStr | None = Field(None, alias="resourceRegion")


class _ClassicPayload(_Model):
    status: StrictStr
    context: _ClassicContext
    properties: dict[str, Any] | None = None


class _LegacyLog(_Model):
    """Log alerts up to API 2018-04-16; the search results and dimensions are read leniently."""

    model_config = ConfigDict(extra="allow")

    alert_rule_name: StrictStr = Field(alias="AlertRuleName")
    subscription_id: Any = Field(None, alias="SubscriptionId")
    workspace_id: Any = Field(None, alias="WorkspaceId")
    application_id: Any = Field(None, alias="ApplicationId")
    resource_id: Any = Field(None, alias="ResourceId")  # the workspace, when present
    severity: Any = Field(None, alias="Severity")
    description: Any = Field(None, alias="Description")
    start: Any = Field(None, alias="SearchIntervalStartTimeUtc")
    end: Any = Field(None, alias="SearchIntervalEndtimeUtc")


class _LegacyLogPayload(_Model):
    data: _LegacyLog


class _Manual(_Model):
    """The manual request: strict, since a typo (e.g. 'captrue') would otherwise be silently ignored."""

    model_config = ConfigDict(extra="forbid")

    targets: list[StrictStr] = Field(min_length=1)
    reason: StrictStr | None = Field(None, max_length=2000)
    capture: dict[str, Any] | None = None
    id: StrictStr | None = Field(None, min_length=1, max_length=256)


_FIELD_HINTS = {
    "alertTargetIDs": "a list of resource ID strings",
    "targets": "a non-empty list of VM or scale-set instance resource ID strings",
    "customProperties": "an object of custom properties (or null)",
    "properties": "an object of custom properties (or null)",
    "capture": "an object of capture options",
    "essentials": "the common alert schema's essentials object",
    "data": "an object",
    "context": "an object",
    "activityLog": "an object",
    "alertId": "the alert instance ID string",
    "monitorCondition": '"Fired" or "Resolved"',
    "status": "a status string",
    "resourceId": "the target resource ID string",
    "id": "a non-empty ID string of at most 256 characters",
}


_M = TypeVar("_M", bound=_Model)
_Target = tuple[str, str]  # a target as sent, and where it is in the body


def _validate(model: type[_M], payload: Any, prefix: str = "") -> _M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        known = [f.alias or n for n, f in model.model_fields.items()]
        raise input_error(exc, prefix=prefix, hints=_FIELD_HINTS, known=known) from None


# --- the schemas -----------------------------------------------------------------------------------


def _common(payload: dict[str, Any], limits: OverrideLimits) -> AlertEvent:
    model = _validate(_CommonPayload, payload)
    ess = model.data.essentials
    context = model.data.alert_context if isinstance(model.data.alert_context, dict) else {}
    family = _common_family(ess.monitoring_service, ess.signal_type)
    fired = _state(
        ess.monitor_condition, {"Fired": True, "Resolved": False}, "data.essentials.monitorCondition"
    )

    found = [(t, f"data.essentials.alertTargetIDs[{i}]") for i, t in enumerate(ess.alert_target_ids or [])]
    if family in _LOG_FAMILIES:
        # Workspace-scoped rules name the workspace; the VM is in the _ResourceId / ResourceId dimension
        # (v2) or search-result column (v1), which is also the most specific resource for any log rule.
        from_logs = _log_resource_ids(context, "data.alertContext")
        if from_logs:
            found = from_logs
        elif not found:
            found = _link_resource_ids(context, "data.alertContext")
    targets = [t for t, _ in found]

    # Custom properties: data.customProperties; metric and log-v2 rules also (or only) carry them in
    # alertContext.properties. Elsewhere alertContext.properties is the activity-log event's own.
    props, where = model.data.custom_properties, "data.customProperties"
    if props is None and family in ("metric", "log-v2", "log"):
        ctx_props = _ci_get(context, "properties")
        props, where = (ctx_props if isinstance(ctx_props, dict) else None), "data.alertContext.properties"
    custom, overrides = _custom_properties(props, where, limits)

    # instance_key: essentials.alertId, "the unique resource ID that identifies the alert instance"; the
    # fired and resolved notifications of one instance share it. Test-action activity-log and budget
    # payloads carry a rule/cost path instead, so those get a hash that adds the fire time and event.
    alert_id = ess.alert_id
    if "/providers/microsoft.alertsmanagement/alerts/" in fold(alert_id):
        key = alert_id
    else:
        key = _derived_key("common", fold(alert_id), ess.fired_date_time, _ci_get(context, "eventDataId"))

    not_resource = None
    if family == "budget":
        not_resource = "budget (cost) alerts are about spending, not a resource: nothing to capture"
    elif family == "service-health":
        not_resource = "service health alerts are about Azure services, not a resource: nothing to capture"
    elif family == "prometheus" and not any(_is_capturable(t) for t in targets):
        not_resource = "Prometheus alerts target an Azure Monitor workspace or cluster, not a VM"

    return AlertEvent(
        schema_name=f"common/{family}",
        instance_key=key,
        fired=fired,
        condition=ess.monitor_condition,
        fired_at=_time(ess.fired_date_time),
        **_targets(found),
        rule=_text(ess.alert_rule),
        severity=_text(ess.severity),
        description=_text(ess.description),
        monitoring_service=ess.monitoring_service,
        custom_properties=custom,
        overrides=overrides,
        not_resource_alert=not_resource,
    )


def _common_family(service: str | None, signal: Any) -> str:
    name = re.sub(r"[\s_\-]", "", fold(service or ""))
    signal_type = re.sub(r"\s", "", fold(signal)) if isinstance(signal, str) else ""
    if name in ("costalerts", "budget", "budgets"):
        return "budget"
    if name == "servicehealth":
        return "service-health"
    if name == "resourcehealth":
        return "resource-health"
    if name.startswith("activitylog"):
        return "activity-log"
    if name == "smartdetector":
        return "smart-detector"
    if name == "prometheus":
        return "prometheus"
    if name == "logalertsv2":
        return "log-v2"
    if name in ("loganalytics", "applicationinsights") and signal_type != "metric":
        return "log-v1"
    if signal_type == "log":
        return "log"
    if name == "platform" or signal_type == "metric":
        return "metric"
    return "other"


def _metric_alert(payload: dict[str, Any], limits: OverrideLimits) -> AlertEvent:
    """Non-common `AzureMonitorMetricAlert` (data.version 2.0)."""
    model = _validate(_MetricPayload, payload)
    data, ctx = model.data, model.data.context
    # Docs show only "Activated"; "Deactivated" is what users report for the resolution.
    fired = _state(data.status, {"Activated": True, "Deactivated": False, "Resolved": False}, "data.status")
    custom, overrides = _custom_properties(data.properties, "data.properties", limits)
    # instance_key: there is no instance ID (context.id is the rule). One notification = one rule, one
    # resource, one evaluation time; retries and fan-out resend the same body, so these are stable.
    key = _derived_key("metric-alert", _fold(ctx.id), fold(ctx.resource_id), ctx.timestamp)
    return AlertEvent(
        schema_name="metric-alert",
        instance_key=key,
        fired=fired,
        condition=data.status,
        fired_at=_time(ctx.timestamp),
        **_targets([(ctx.resource_id, "data.context.resourceId")]),
        rule=_text(ctx.name),
        severity=_text(ctx.severity),
        description=_text(ctx.description),
        custom_properties=custom,
        overrides=overrides,
    )


def _activity_log(payload: dict[str, Any], limits: OverrideLimits) -> AlertEvent:
    """Non-common `Microsoft.Insights/activityLogs`: always fired (status is always "Activated")."""
    model = _validate(_ActivityPayload, payload)
    data, log = model.data, model.data.context.activity_log
    custom, overrides = _custom_properties(data.properties, "data.properties", limits)
    source = _text(log.event_source)
    operation = fold(_text(log.operation_name) or "")
    service_health = _fold(source) == "servicehealth" or operation.startswith("microsoft.servicehealth/")
    # instance_key: eventDataId is "the unique identifier for the event"; the other IDs only guard
    # against senders that leave it out.
    key = _derived_key(
        "activity-log",
        log.event_data_id,
        log.correlation_id,
        log.operation_id,
        _fold(log.resource_id),
        log.event_timestamp,
    )
    return AlertEvent(
        schema_name="activity-log",
        instance_key=key,
        fired=True,
        condition=data.status or "Activated",
        fired_at=_time(log.event_timestamp) or _time(log.submission_timestamp),
        **_targets([(log.resource_id, "data.context.activityLog.resourceId")] if log.resource_id else []),
        description=_text(log.description),
        monitoring_service=source,
        custom_properties=custom,
        overrides=overrides,
        not_resource_alert=(
            "service health alerts are about Azure services, not a resource: nothing to capture"
            if service_health
            else None
        ),
    )


def _classic(payload: dict[str, Any], limits: OverrideLimits) -> AlertEvent:
    """The retired classic metric alert: no wrapper, and the only schema with the target's region."""
    model = _validate(_ClassicPayload, payload)
    ctx = model.context
    fired = _state(model.status, {"Activated": True, "Resolved": False, "Deactivated": False}, "status")
    custom, overrides = _custom_properties(model.properties, "properties", limits)
    # instance_key: no instance ID (context.id is the rule); rule + resource + trigger time is stable.
    key = _derived_key("classic-metric", _fold(ctx.id), fold(ctx.resource_id), ctx.timestamp)
    return AlertEvent(
        schema_name="classic-metric",
        instance_key=key,
        fired=fired,
        condition=model.status,
        fired_at=_time(ctx.timestamp),
        **_targets([(ctx.resource_id, "context.resourceId")]),
        region=_region(ctx.resource_region, "context.resourceRegion"),
        rule=_text(ctx.name),
        description=_text(ctx.description),
        custom_properties=custom,
        overrides=overrides,
    )


def _legacy_app_insights(payload: dict[str, Any], limits: OverrideLimits) -> AlertEvent:
    return _legacy_log(_validate(_LegacyLogPayload, payload).data, "Application Insights", "data")


def _legacy_log(log: _LegacyLog, service: str, where: str = "") -> AlertEvent:
    """Log alerts up to API 2018-04-16: they only fire, and name a VM only if the query returns one."""
    fields = log.model_extra or {}
    # Log Analytics sends these fields at the top level: their locations then have no prefix.
    targets = _log_resource_ids(fields, where or "body")
    if not targets and isinstance(log.resource_id, str) and _looks_like_id(log.resource_id):
        targets = [(log.resource_id, f"{where or 'body'}.ResourceId")]  # the workspace: not a VM
    if not targets:
        targets = _link_resource_ids(fields, where or "body")
    targets = [(t, at.removeprefix("body.")) for t, at in targets]
    # instance_key: no ID at all; the rule and its search window identify one firing.
    key = _derived_key(
        "legacy-log",
        log.alert_rule_name,
        _fold(log.subscription_id),
        _fold(log.workspace_id),
        _fold(log.application_id),
        log.start,
        log.end,
    )
    return AlertEvent(
        schema_name="legacy-log",
        instance_key=key,
        fired=True,
        condition="Fired",
        fired_at=_time(log.end),
        **_targets(targets),
        rule=log.alert_rule_name,
        severity=_text(log.severity),
        description=_text(log.description),
        monitoring_service=service,
    )


def _budget(payload: dict[str, Any], limits: OverrideLimits) -> AlertEvent:
    """Non-common `AIP Budget Notification`: never about a resource."""
    data = _ci_get(payload, "data")
    if not isinstance(data, dict):
        raise InputError(f"expected an object, got {kind_of(data)}", "data")
    fields = [
        _ci_get(data, name)
        for name in (
            "SubscriptionId",
            "ResourceGroup",
            "BudgetName",
            "BudgetStartDate",
            "NotificationThresholdAmount",
            "SpendingAmount",
        )
    ]
    # instance_key: no ID; the budget and the threshold/spend it reports identify one notification.
    return AlertEvent(
        schema_name="budget",
        instance_key=_derived_key("budget", *fields),
        fired=True,
        condition="Fired",
        rule=_text(_ci_get(data, "BudgetName")),
        not_resource_alert="budget (cost) alerts are about spending, not a resource: nothing to capture",
    )


def _manual(payload: dict[str, Any], limits: OverrideLimits) -> AlertEvent:
    """`{"targets": [...], "reason": "...", "capture": {...}, "id": "..."}` from other automation."""
    model = _validate(_Manual, payload)
    for index, target in enumerate(model.targets):
        try:
            parse_resource_id(target)
        except InvalidResourceId as exc:
            raise InputError(str(exc), f"targets[{index}]") from None
    if model.id is not None and any(not ch.isprintable() for ch in model.id):
        raise InputError("expected a printable ID without control characters", "id")
    overrides = CaptureOverrides.parse(model.capture or {}, "capture", limits)
    # instance_key: the caller's id, else a hash of the sorted, casefolded targets and the reason, so a
    # retried request (same targets and reason) de-duplicates.
    if model.id is not None:
        key = f"manual:{model.id}"
    else:
        key = _derived_key("manual", sorted({fold(t) for t in model.targets}), model.reason or "")
    return AlertEvent(
        schema_name="manual",
        instance_key=key,
        fired=True,
        condition="Fired",
        **_targets((t, f"targets[{i}]") for i, t in enumerate(model.targets)),
        description=model.reason,
        overrides=overrides,
    )


_PARSERS: dict[str, Callable[[dict[str, Any], OverrideLimits], AlertEvent]] = {
    "azuremonitorcommonalertschema": _common,
    "azuremonitormetricalert": _metric_alert,
    "microsoft.insights/activitylogs": _activity_log,
    "microsoft.insights/logalert": _legacy_app_insights,
    "aip budget notification": _budget,
}


# --- helpers ---------------------------------------------------------------------------------------


def _region(value: str | None, location: str) -> str | None:
    """A payload's region, checked to be an Azure region name ("eastus", "West Europe" -> "westeurope").

    It is used to find the watcher and may end up in a suggested `az` command, so only a short name of
    ASCII letters and digits passes; anything else is refused before any Azure call.
    """
    if value is None or not value.strip():
        return None
    name = region_name(value)
    if name is None:
        raise InputError(f"{quote(value)} is not an Azure region name (such as 'eastus')", location)
    return name


def _state(value: str, states: dict[str, bool], location: str) -> bool:
    """Fired or not, from a status word matched case-insensitively; unknown words are an error."""
    for word, fired in states.items():
        if fold(value.strip()) == fold(word):
            return fired
    expected = ", ".join(f'"{word}"' for word in states)
    raise InputError(f"unknown value {quote(value)}; expected one of {expected}", location)


def _custom_properties(
    props: dict[str, Any] | None, where: str, limits: OverrideLimits
) -> tuple[dict[str, str], CaptureOverrides]:
    """Custom properties as text, and the `capture*` ones validated as overrides."""
    if not props:
        return {}, CaptureOverrides()
    custom = {key: _prop_text(value) for key, value in props.items()}
    prefixed = {key: value for key, value in props.items() if fold(key).startswith("capture")}
    return custom, CaptureOverrides.parse(prefixed, where, limits)


def _log_resource_ids(context: Any, where: str) -> list[_Target]:
    """ARM IDs from log dimensions (v2 condition.allOf[].dimensions, v1 Dimensions) and result columns,
    each with its location under `where`."""
    found: list[_Target] = []
    dimensions: list[tuple[Any, str]] = []
    for j, criterion in enumerate(_list(_ci_get(_ci_get(context, "condition"), "allOf"))):
        at = f"{where}.condition.allOf[{j}].dimensions"
        dimensions.extend((d, f"{at}[{k}]") for k, d in enumerate(_list(_ci_get(criterion, "dimensions"))))
    dimensions.extend(
        (d, f"{where}.Dimensions[{k}]") for k, d in enumerate(_list(_ci_get(context, "Dimensions")))
    )
    for dimension, at in dimensions:
        name, value = _ci_get(dimension, "name"), _ci_get(dimension, "value")
        if isinstance(name, str) and fold(name) in _RESOURCE_ID_COLUMNS and _looks_like_id(value):
            found.append((value, f"{at}.value"))
    for label in ("SearchResults", "SearchResult"):
        for t, table in enumerate(_list(_ci_get(_ci_get(context, label), "tables"))):
            columns = [_ci_get(column, "name") for column in _list(_ci_get(table, "columns"))]
            wanted = [i for i, n in enumerate(columns) if _fold(n) in _RESOURCE_ID_COLUMNS]
            if not wanted:
                continue
            for r, row in enumerate(_list(_ci_get(table, "rows"))):
                if isinstance(row, list):
                    found.extend(
                        (row[i], f"{where}.{label}.tables[{t}].rows[{r}][{i}]")
                        for i in wanted
                        if i < len(row) and _looks_like_id(row[i])
                    )
    return found


def _link_resource_ids(context: Any, where: str) -> list[_Target]:
    """Last resort: the resource a resource-centric query ran on, from the Log Analytics API link."""
    links: list[tuple[Any, str]] = []
    for j, criterion in enumerate(_list(_ci_get(_ci_get(context, "condition"), "allOf"))):
        links += [(_ci_get(criterion, n), f"{where}.condition.allOf[{j}].{n}") for n in _LOG_API_LINKS]
    links += [(_ci_get(context, n), f"{where}.{n}") for n in _LOG_API_LINKS]
    for link, at in links:
        match = _LOG_API_LINK.match(link) if isinstance(link, str) else None
        if match and "/providers/" in fold(match.group(1)):
            return [(match.group(1), at)]
    return []


def _is_capturable(target: str) -> bool:
    try:
        return parse_resource_id(target).kind is not None
    except InvalidResourceId:
        return False


def _looks_like_id(value: Any) -> bool:
    return isinstance(value, str) and fold(value[:15]) == "/subscriptions/"


def _targets(found: Iterable[_Target]) -> dict[str, Any]:
    """AlertEvent's `targets` (de-duplicated case-insensitively) and where each is in the body."""
    seen: set[str] = set()
    targets, locations = [], []
    for target, location in found:
        if fold(target) not in seen:
            seen.add(fold(target))
            targets.append(target)
            locations.append(location)
    return {"targets": targets, "target_locations": locations}


def _derived_key(prefix: str, *parts: Any) -> str:
    """A stable key for schemas without an instance ID: a hash of the identifying fields."""
    text = json.dumps(parts, sort_keys=True, default=str)  # ASCII-only, so lone surrogates are safe
    return f"{prefix}:{hashlib.sha256(text.encode()).hexdigest()[:32]}"


def _ci_get(obj: Any, key: str) -> Any:
    """`obj[key]` matched case-insensitively (exact spelling first); None when absent or not an object."""
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    folded = fold(key)
    for name, value in obj.items():
        if isinstance(name, str) and fold(name) == folded:
            return value
    return None


def _ci_has(obj: dict[str, Any], key: str) -> bool:
    folded = fold(key)
    return any(isinstance(name, str) and fold(name) == folded for name in obj)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _fold(value: Any) -> Any:
    return fold(value) if isinstance(value, str) else value


def _text(value: Any) -> str | None:
    """Informational text: strings as sent (empty -> None), numbers as text, anything else dropped."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _prop_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value)


def _time(value: Any) -> datetime | None:
    """Timestamps are informational: unparseable ones become None rather than failing the alert."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text))
    except ValueError:
        try:
            parsed = datetime.strptime(text, _US_TIME)
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
