"""Capture reports and their delivery: plain JSON, a Microsoft Teams card, or a Slack message.

A report is built only from what the capture itself carries (name, target, status, storage path),
so that no database is needed. Delivery is all-or-nothing per run: if any URL fails, the capture is
kept and the whole report is sent again on the next run (at-least-once; never lost).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from capture.views import AlertRef, Analysis, CaptureView

__all__ = ["deliver", "render", "report_json", "slack_message", "teams_message"]

NOTIFY_TIMEOUT_SECONDS = 10.0


def report_json(report: CaptureView) -> dict[str, Any]:
    """The `json` notification: the capture's view, with its alert, outcome and analysis up front."""
    capture = report.to_json()
    alert = capture.pop("alert") or {"rule": None, "instance": None}
    outcome = capture.pop("outcome")
    analysis = capture.pop("analysis") or Analysis().model_dump(mode="json", by_alias=True)
    return {
        "event": "packet_capture_finished",
        "outcome": outcome,
        "alert": alert,
        "capture": capture,
        "analysis": analysis,
    }


def _facts(report: CaptureView) -> list[tuple[str, str]]:
    alert = report.alert or AlertRef()
    analysis = report.analysis or Analysis()
    facts = [
        ("Alert rule", alert.rule or "-"),
        ("Alert", alert.instance or "-"),
        ("VM", report.vm or report.target or "-"),
        ("Capture", report.name),
        ("Started", report.start_time.isoformat() if report.start_time else "-"),
        ("Stop reason", report.stop_reason_text or "-"),
    ]
    if report.storage_path:
        facts.append(("File", report.storage_path))
    if report.file_path:
        facts.append(("File on VM", report.file_path))
    if report.errors:
        facts.append(("Errors", ", ".join(report.errors)))
    if analysis.error:
        facts.append(("Analysis", analysis.error))
    if analysis.chart_path:
        facts.append(("Chart", analysis.chart_path))
    return facts


def teams_message(report: CaptureView) -> dict[str, Any]:
    """A Teams incoming-webhook message carrying an Adaptive Card (schema 1.4)."""
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Medium",
            "weight": "Bolder",
            "wrap": True,
            "text": report.headline(),
            "color": "Good" if report.outcome == "completed" else "Attention",
        },
    ]
    if report.notable:
        body.append({"type": "TextBlock", "wrap": True, "text": "\n".join(f"- {n}" for n in report.notable)})
    body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(report)]})
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if report.storage_path:
        card["actions"] = [{"type": "Action.OpenUrl", "title": "Capture file", "url": report.storage_path}]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def slack_message(report: CaptureView) -> dict[str, Any]:
    """A Slack-compatible incoming-webhook message: `text` fallback plus Block Kit `blocks`."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": report.headline()[:150]}},
    ]
    if report.notable:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "\n".join(f"• {n}" for n in report.notable)},
            }
        )
    blocks.append(
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in _facts(report)[:10]],
        }
    )
    return {"text": report.headline(), "blocks": blocks}


def render(report: CaptureView, fmt: str) -> dict[str, Any]:
    if fmt == "teams":
        return teams_message(report)
    if fmt == "slack":
        return slack_message(report)
    return report_json(report)


def deliver(report: CaptureView, urls: tuple[str, ...], fmt: str) -> list[str]:
    """POST the report to every URL; returns the failures (empty: all delivered)."""
    failures = []
    body = json.dumps(render(report, fmt), default=str).encode()
    for url in urls:
        # URLs are validated as http(s) when settings are read.
        headers = {"Content-Type": "application/json"}
        request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT_SECONDS) as response:  # noqa: S310
                if not 200 <= response.status < 300:
                    failures.append(f"{_host(url)}: HTTP {response.status}")
        except urllib.error.HTTPError as exc:
            failures.append(f"{_host(url)}: HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            failures.append(f"{_host(url)}: {type(exc).__name__}")
    return failures


def _host(url: str) -> str:
    """Only the host of a notification URL is logged: webhook URLs carry secrets in their path."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc or "?"
