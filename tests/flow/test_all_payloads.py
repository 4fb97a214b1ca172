"""Every payload fixture (the published samples and our own, all schema families) through the real function."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PAYLOADS, request

# file: (HTTP status, status word, outcome per target, a fragment of the first reason / error)
EXPECTED: dict[str, tuple[int, str, list[str], str]] = {
    "activity-log-fired-vm.json": (202, "started", ["started"], "capture started for 120 s"),
    "activity-log-resourcehealth-vm.json": (202, "started", ["started"], "capture started for 60 s"),
    "activity-log-servicehealth.json": (
        200,
        "ignored",
        ["ignored"],
        "service health alerts are about Azure se",
    ),
    "budget-notification.json": (200, "ignored", ["ignored"], "budget (cost) alerts are about spending,"),
    "classic-metric-activated-vm.json": (202, "started", ["started"], "capture started for 45 s"),
    "classic-metric-resolved-vm.json": (200, "ignored", ["ignored"], "alert is Resolved: nothing to capture"),
    "common-activitylog-fired-vm.json": (202, "started", ["started"], "capture started for 300 s"),
    "common-budget-fired.json": (200, "ignored", ["ignored"], "budget (cost) alerts are about spending,"),
    "common-log-v1-fired-searchresults.json": (
        202,
        "started",
        ["started", "started"],
        "capture started for 60 s",
    ),
    "common-log-v2-fired-link-only.json": (202, "started", ["started"], "capture started for 60 s"),
    "common-log-v2-fired-workspace-dimension.json": (202, "started", ["started"], "capture started for 60 s"),
    "common-log-v2-resolved-workspace-dimension.json": (
        200,
        "ignored",
        ["ignored"],
        "alert is Resolved: nothing to capture",
    ),
    "common-metric-fired-mixedcase.json": (202, "started", ["started"], "capture started for 30 s"),
    "common-metric-fired-multi-vm.json": (202, "started", ["started", "started"], "capture started for 60 s"),
    "common-metric-fired-vm.json": (202, "started", ["started"], "capture started for 60 s"),
    "common-metric-fired-vmss-instance.json": (202, "started", ["started"], "capture started for 60 s"),
    "common-metric-resolved-vm.json": (200, "ignored", ["ignored"], "alert is Resolved: nothing to capture"),
    "common-prometheus-fired.json": (200, "ignored", ["ignored"], "Prometheus alerts target an Azure Monito"),
    "common-resourcehealth-fired-vm.json": (202, "started", ["started"], "capture started for 60 s"),
    "common-servicehealth-fired.json": (
        200,
        "ignored",
        ["ignored"],
        "service health alerts are about Azure se",
    ),
    "common-smartdetector-fired.json": (
        200,
        "ignored",
        ["ignored"],
        "microsoft.insights/components is not a V",
    ),
    "invalid-common-targets-not-list.json": (400, "rejected", [], "expected a list of resource ID strings, "),
    "invalid-manual-bad-target.json": (400, "rejected", [], "'/subscriptions/00000000-0000-0000-0000-"),
    "invalid-unknown-schema.json": (400, "rejected", [], "not a recognised alert: expected an Azur"),
    "legacy-log-analytics-fired.json": (202, "started", ["started"], "capture started for 60 s"),
    "legacy-log-appinsights-fired.json": (200, "ignored", ["ignored"], "the alert names no target resource"),
    "manual-fired-multi-with-id.json": (202, "started", ["started", "started"], "capture started for 60 s"),
    "manual-fired-vm.json": (202, "started", ["started"], "capture started for 120 s"),
    "metric-alert-activated-vm.json": (202, "started", ["started"], "capture started for 90 s"),
    "metric-alert-deactivated-vm-pascalcase.json": (
        200,
        "ignored",
        ["ignored"],
        "alert is Deactivated: nothing to capture",
    ),
    "metric-alert-resolved-vm.json": (200, "ignored", ["ignored"], "alert is Resolved: nothing to capture"),
    "ms-classic-metric-webhook.json": (
        200,
        "ignored",
        ["ignored"],
        "microsoft.foo/sites is not a VM or scale",
    ),
    "ms-common-log-v2-vm-fired.json": (502, "failed", ["failed"], "SubscriptionNotFound"),
    "ms-common-metric-static-resolved-vm.json": (
        200,
        "ignored",
        ["ignored"],
        "alert is Resolved: nothing to capture",
    ),
    "ms-nocommon-activitylog-administrative-vm.json": (502, "failed", ["failed"], "SubscriptionNotFound"),
    "ms-nocommon-metric-v2-static.json": (
        200,
        "ignored",
        ["ignored"],
        "Microsoft.Storage/storageAccounts is not",
    ),
    "ms-testaction-common-budget.json": (
        200,
        "ignored",
        ["ignored"],
        "budget (cost) alerts are about spending,",
    ),
    "ms-testaction-common-metric-static.json": (
        200,
        "ignored",
        ["ignored"],
        "microsoft.storage/storageaccounts is not",
    ),
    "ms-testaction-common-servicehealth.json": (
        200,
        "ignored",
        ["ignored"],
        "service health alerts are about Azure se",
    ),
}


def test_every_fixture_has_an_expectation():
    assert {p.name for p in Path(PAYLOADS).glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_payload_through_the_webhook(call, emu, name):
    status, word, outcomes, fragment = EXPECTED[name]
    got_status, body, _ = call("alert_webhook", request(body=(PAYLOADS / name).read_bytes()))
    assert (got_status, body["status"]) == (status, word), body
    assert [r["outcome"] for r in body["results"]] == outcomes
    first = body.get("error") or (body["results"][0].get("error") if body["results"] else None) or {}
    text = first.get("message", "") + first.get("code", "") + "".join(r["reason"] for r in body["results"])
    assert fragment in text
    started = [r for r in body["results"] if r["outcome"] == "started"]
    assert len(emu.capture_ids()) == len(started)
