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

from capture.views import AlertRef, Analysis, CaptureView, Links

__all__ = ["deliver", "render", "report_json", "report_text", "slack_message", "teams_message"]

NOTIFY_TIMEOUT_SECONDS = 10.0
# Slack's Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks)
SLACK_HEADER_MAX = 150
SLACK_TEXT_MAX = 3000
SLACK_FIELD_MAX = 2000
SLACK_FIELDS_MAX = 10
SLACK_BUTTON_TEXT_MAX = 75
LINK_TITLES = {"file": "Capture file (.cap)", "chart": "Chart (PNG)", "summary": "Findings (JSON)"}


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _links(report: CaptureView) -> list[tuple[str, str, str]]:
    """(field, title, URL) of each download link the report carries, the capture file first."""
    links = report.links or Links()
    return [(field, title, url) for field, title in LINK_TITLES.items() if (url := getattr(links, field))]


def _expiry(report: CaptureView) -> str | None:
    expires = report.links.expires if report.links else None
    return f"open without sign-in until {expires:%Y-%m-%d %H:%M} UTC" if expires else None


def _notable(report: CaptureView) -> list[str]:
    """The notable lines under the headline, without the one the headline already says."""
    headline = report.analysis.headline if report.analysis else None
    return [line for line in report.notable if line != headline]


def _context(report: CaptureView) -> list[tuple[str, str]]:
    """What a reader needs right under the headline: when, why it stopped."""
    lines = []
    if window := report.window():
        lines.append(("Window", window))
    if report.stop_reason_text:
        lines.append(("Stopped", report.stop_reason_text))
    return lines


def report_text(report: CaptureView) -> str:
    """The report as a person reads it: headline, window, stop reason, notable lines, links."""
    lines = [report.headline()]
    lines += [f"{k}: {v}" for k, v in _context(report)]
    if notable := _notable(report):
        lines.append("Notable:")
        lines += [f"  - {n}" for n in notable]
    if report.analysis and report.analysis.error:
        lines.append(f"Analysis: {report.analysis.error}")
    alert = report.alert or AlertRef()
    lines.append(f"Capture: {report.name} (alert {alert.rule or '-'}, instance {alert.instance or '-'})")
    links = _links(report)
    if links:
        lines.append(f"Links (they {_expiry(report)}):")
        lines += [f"  {title}: {url}" for _, title, url in links]
    elif report.storage_path:
        lines.append(f"File: {report.storage_path}")
    return "\n".join(lines)


def report_json(report: CaptureView) -> dict[str, Any]:
    """The `json` notification: the report in words, then the capture's view with its parts up front."""
    capture = report.to_json()
    alert = capture.pop("alert") or {"rule": None, "instance": None, "severity": None}
    outcome = capture.pop("outcome")
    analysis = capture.pop("analysis") or Analysis().model_dump(mode="json", by_alias=True)
    links = capture.pop("links")
    return {
        "event": "packet_capture_finished",
        "headline": report.headline(),
        "text": report_text(report),
        "outcome": outcome,
        "alert": alert,
        "capture": capture,
        "analysis": analysis,
        "links": links,
    }


def _facts(report: CaptureView) -> list[tuple[str, str]]:
    alert = report.alert or AlertRef()
    analysis = report.analysis or Analysis()
    facts = [
        ("VM", report.vm or report.target or "-"),
        ("Alert rule", " ".join(x for x in (alert.rule or "-", alert.severity) if x)),
        ("Alert", alert.instance or "-"),
        ("Capture", report.name),
    ]
    if report.storage_path:
        facts.append(("File", report.storage_path))
    if report.file_path:
        facts.append(("File on VM", report.file_path))
    if report.errors:
        facts.append(("Errors", ", ".join(report.errors)))
    if analysis.error:
        facts.append(("Analysis", analysis.error))
    return facts


def _found_something(report: CaptureView) -> bool:
    findings = (report.analysis.findings if report.analysis else None) or {}
    return bool(findings.get("problems"))


def teams_message(report: CaptureView) -> dict[str, Any]:
    """A Teams incoming-webhook message carrying an Adaptive Card (1.4): the chart shown, the files linked."""
    ok = report.outcome == "completed" and not _found_something(report)
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Medium",
            "weight": "Bolder",
            "wrap": True,
            "text": report.headline(),
            "color": "Good" if ok else "Attention",
        },
    ]
    if context := _context(report):
        body.append(
            {
                "type": "TextBlock",
                "wrap": True,
                "isSubtle": True,
                "spacing": "None",
                "text": "  \n".join(f"{k}: {v}" for k, v in context),
            }
        )
    if notable := _notable(report):
        body.append({"type": "TextBlock", "wrap": True, "text": "\n".join(f"- {n}" for n in notable)})
    chart = report.links.chart if report.links else None
    if chart:
        body.append(
            {
                "type": "Image",
                "url": chart,
                "altText": f"Chart: {report.headline()}",
                "size": "Stretch",
                "selectAction": {"type": "Action.OpenUrl", "title": "Open the chart", "url": chart},
            }
        )
    body.append({"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(report)]})
    if expiry := _expiry(report):
        body.append(
            {"type": "TextBlock", "wrap": True, "isSubtle": True, "size": "Small", "text": f"Links {expiry}"}
        )
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if links := _links(report):
        card["actions"] = [{"type": "Action.OpenUrl", "title": title, "url": url} for _, title, url in links]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def slack_message(report: CaptureView) -> dict[str, Any]:
    """A Slack incoming-webhook message: `text` fallback plus Block Kit (chart image, link buttons)."""
    headline = report.headline()
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(headline, SLACK_HEADER_MAX)}},
    ]
    lines = [f"*{k}:* {v}" for k, v in _context(report)] + [f"• {n}" for n in _notable(report)]
    if lines:
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(lines), SLACK_TEXT_MAX)}}
        )
    chart = report.links.chart if report.links else None
    if chart:
        blocks.append(
            {
                "type": "image",
                "image_url": chart,
                "alt_text": _clip(f"Chart: {headline}", SLACK_FIELD_MAX),
                "title": {
                    "type": "plain_text",
                    "text": _clip(f"{report.vm or report.name}: the capture over time", SLACK_FIELD_MAX),
                },
            }
        )
    if links := _links(report):
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": _clip(title, SLACK_BUTTON_TEXT_MAX)},
                        "url": url,
                        "action_id": f"open-{field}",
                    }
                    for field, title, url in links
                ],
            }
        )
    blocks.append(
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": _clip(f"*{k}*\n{v}", SLACK_FIELD_MAX)}
                for k, v in _facts(report)[:SLACK_FIELDS_MAX]
            ],
        }
    )
    if expiry := _expiry(report):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"Links {expiry}"}]})
    return {"text": headline, "blocks": blocks}


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
