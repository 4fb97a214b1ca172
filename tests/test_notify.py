"""Notification documents: plain JSON, Teams Adaptive Card, Slack Block Kit, and delivery."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from capture.notify import deliver, render
from capture.views import AlertRef, Analysis, CaptureView, stop_reason_text
from devhost.stack import NotificationReceiver

ADAPTIVE_ELEMENTS = {"TextBlock", "FactSet", "Image", "ColumnSet", "Container"}


def report(**changes: object) -> CaptureView:
    values: dict[str, object] = {
        "name": "alertcap-vm-web-1-0123456789abcdef",
        "id": "/subscriptions/s/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/nw/packetCaptures/x",
        "target": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm-web-1",
        "vm": "vm-web-1",
        "watcher": "/subscriptions/s/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/nw",
        "outcome": "completed",
        "status": "Stopped",
        "stop_reason": "TimeExceeded",
        "stop_reason_text": "time limit reached",
        "errors": [],
        "start_time": datetime(2026, 11, 25, 2, 0, tzinfo=UTC),
        "storage_path": "https://st.blob.core.windows.net/network-watcher-logs/alert-captures/vm-web-1/x.cap",
        "file_path": None,
        "alert": AlertRef(rule="High-CPU", instance="abc-123", severity="Sev2"),
        "analysis": Analysis(
            headline="SYN flood towards 10.0.0.4:443",
            notable=[
                "SYN flood towards 10.0.0.4:443",  # the headline: said once, first
                "1,214 SYNs from 3 sources got no answer",
                "72% of bytes: a → b:5432",
            ],
        ),
    }
    values.update(changes)
    return CaptureView.model_validate(values)


@pytest.mark.parametrize(
    ("reason", "errors", "text"),
    [
        ("TimeExceeded", [], "time limit reached"),
        ("MaxBytesExceeded", [], "bytes limit reached"),
        ("Manual", [], "stopped by a user"),
        (None, ["AgentStopped"], "the Network Watcher agent on the VM stopped"),
        (
            None,
            ["StorageFailed", "LocalFileFailed"],
            "writing to the storage account failed; writing the local capture file failed",
        ),
        ("SomethingNew", [], "SomethingNew"),
        (None, [], "stopped (no reason given by Azure)"),
    ],
)
def test_stop_reasons_in_plain_words(reason, errors, text):
    assert stop_reason_text(reason, errors) == text


def test_json_document_carries_everything_on_call_needs():
    document = render(report(), "json")
    assert document["event"] == "packet_capture_finished"
    assert document["alert"] == {"rule": "High-CPU", "instance": "abc-123", "severity": "Sev2"}
    assert document["headline"] == "SYN flood towards 10.0.0.4:443; vm-web-1, alert High-CPU Sev2"
    assert document["text"].splitlines()[0] == document["headline"]
    capture = document["capture"]
    assert capture["vm"] == "vm-web-1"
    assert capture["startTime"] == "2026-11-25T02:00:00+00:00"
    assert capture["stopReasonText"] == "time limit reached"
    assert capture["storagePath"].endswith("x.cap")
    assert document["analysis"]["notable"][1].startswith("1,214 SYNs")  # the data keeps every line
    assert document["text"].count("SYN flood towards 10.0.0.4:443") == 1  # the words say it once
    json.dumps(document)


def test_teams_message_is_an_adaptive_card_attachment():
    message = render(report(), "teams")
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["version"] in {"1.2", "1.3", "1.4", "1.5"}
    assert all(element["type"] in ADAPTIVE_ELEMENTS for element in card["body"])
    assert card["body"][0]["text"] == "SYN flood towards 10.0.0.4:443; vm-web-1, alert High-CPU Sev2"
    assert "Stopped: time limit reached" in card["body"][1]["text"]  # then when and why it stopped
    assert "1,214 SYNs" in card["body"][2]["text"]  # then the notable lines
    facts = next(e for e in card["body"] if e["type"] == "FactSet")["facts"]
    assert all(set(f) == {"title", "value"} and isinstance(f["value"], str) for f in facts)
    assert {"title": "Alert rule", "value": "High-CPU Sev2"} in facts
    assert "actions" not in card  # no links (no storage access): nothing that would not open


def test_slack_message_has_text_fallback_and_valid_blocks():
    message = render(
        report(
            outcome="failed",
            errors=["StorageFailed"],
            stop_reason_text="writing to the storage account failed",
            analysis=Analysis(),
        ),
        "slack",
    )
    assert message["text"] == (
        "Packet capture failed: writing to the storage account failed; vm-web-1, alert High-CPU Sev2"
    )
    blocks = message["blocks"]
    assert blocks[0]["type"] == "header"
    assert blocks[0]["text"]["type"] == "plain_text" and len(blocks[0]["text"]["text"]) <= 150
    for block in blocks[1:]:
        assert block["type"] == "section"
        fields = block.get("fields", [])
        assert len(fields) <= 10
        assert all(f["type"] == "mrkdwn" and len(f["text"]) <= 2000 for f in fields)
    assert any("StorageFailed" in f["text"] for f in blocks[-1]["fields"])


def test_delivery_reports_failures_without_the_url_path():
    receiver = NotificationReceiver(echo=False).start()
    try:
        failures = deliver(report(), (receiver.url, "http://127.0.0.1:9/secret-token-path"), "slack")
        assert len(receiver.received) == 1
        assert receiver.received[0]["text"].startswith("SYN flood towards 10.0.0.4:443; vm-web-1")
        assert failures and "secret-token-path" not in failures[0]
    finally:
        receiver.stop()
