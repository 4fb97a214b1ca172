"""Teams and Slack payloads checked by the platforms' own libraries, not by our reading of their docs.

The Adaptive Card goes through the official `adaptivecards` npm package (parse + validateProperties, run by a
small node script); the Slack blocks through slack-sdk's Block Kit models, which enforce Slack's limits.
"""

from __future__ import annotations

import copy
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from capture.notify import render
from capture.views import Analysis, CaptureView, Links
from tests.test_notify import report

CHECK = Path(__file__).with_name("adaptivecard_check.cjs")
SAS = "sv=2025-01-05&st=x&se=y&skoid=o&sktid=t&sr=b&sp=r&sig=abc%3D"
LINKS = Links(
    file=f"https://st.blob.core.windows.net/network-watcher-logs/a/x.cap?{SAS}",
    summary=f"https://st.blob.core.windows.net/network-watcher-logs/a/x.summary.json?{SAS}",
    chart=f"https://st.blob.core.windows.net/network-watcher-logs/a/x.png?{SAS}",
    expires=datetime(2026, 11, 26, 2, 5, tzinfo=UTC),
)


def adaptive_cards(card: dict[str, Any]) -> dict[str, Any]:
    """What the official library makes of the card: its errors, images, actions, and the card re-serialized."""
    done = subprocess.run(
        ["node", str(CHECK)], input=json.dumps(card).encode(), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def slack_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks as slack-sdk's models read and write them back (raises on any Block Kit limit)."""
    return [block.to_dict() for block in Block.parse_all(blocks)]


def finished(**changes: object) -> CaptureView:
    return report(links=LINKS, **changes)


def card_of(view: CaptureView) -> dict[str, Any]:
    content: dict[str, Any] = render(view, "teams")["attachments"][0]["content"]
    return content


def long_report() -> CaptureView:
    """Everything as long as it gets: the payloads must still fit each platform's limits."""
    return finished(
        vm="vm-" + "x" * 60,
        analysis=Analysis(
            headline="SYN flood towards 10.0.0.4:443 from " + ", ".join(f"10.1.{i}.{i}" for i in range(60)),
            notable=[f"line {i}: " + "y" * 120 for i in range(60)],
        ),
        errors=["StorageFailed"] * 400,
    )


@pytest.mark.parametrize("view", [finished(), long_report()], ids=["finding", "longest"])
def test_adaptive_card_is_accepted_by_the_official_library(view):
    card = card_of(view)
    checked = adaptive_cards(card)
    assert checked["errors"] == []
    assert checked["version"] == "1.4"
    assert checked["card"] == card  # nothing we send is unknown to the library (it would drop it)
    assert checked["images"] == [LINKS.chart]  # the chart is in the card, through its link
    titles = {a["title"]: a["url"] for a in checked["actions"] if a["type"] == "Action.OpenUrl"}
    assert titles["Capture file (.cap)"] == LINKS.file
    assert titles["Chart (PNG)"] == LINKS.chart
    assert titles["Findings (JSON)"] == LINKS.summary
    assert card["body"][0]["text"] == view.headline()


def test_adaptive_card_without_links_shows_no_image_and_is_accepted():
    view = report(
        outcome="failed", stop_reason_text="writing to the storage account failed", analysis=Analysis()
    )
    checked = adaptive_cards(card_of(view))
    assert checked["errors"] == []
    assert (checked["images"], checked["actions"]) == ([], [])


def test_the_card_check_does_fail_on_a_card_teams_would_not_render():
    card = copy.deepcopy(card_of(finished()))
    image = next(e for e in card["body"] if e["type"] == "Image")
    image["size"] = "Enormous"
    card["body"].append({"type": "NoSuchElement"})
    errors = adaptive_cards(card)["errors"]
    assert any("Enormous" in e for e in errors)
    assert any("NoSuchElement" in e for e in errors)


@pytest.mark.parametrize("view", [finished(), long_report()], ids=["finding", "longest"])
def test_slack_blocks_pass_block_kit_models(view):
    message = render(view, "slack")
    blocks = message["blocks"]
    assert slack_blocks(blocks) == blocks  # every limit held, nothing dropped
    assert len(blocks) <= 50
    assert message["text"] == view.headline()
    [image] = [b for b in blocks if b["type"] == "image"]
    assert image["image_url"] == LINKS.chart
    [actions] = [b for b in blocks if b["type"] == "actions"]
    assert [e["url"] for e in actions["elements"]] == [LINKS.file, LINKS.chart, LINKS.summary]
    [context] = [b for b in blocks if b["type"] == "context"]
    assert "2026-11-26 02:05 UTC" in context["elements"][0]["text"]


def test_slack_blocks_without_links_have_no_image_or_buttons():
    view = report(outcome="failed", stop_reason_text="the capture failed on the VM", analysis=Analysis())
    blocks = render(view, "slack")["blocks"]
    assert slack_blocks(blocks) == blocks
    assert {b["type"] for b in blocks} == {"header", "section"}


def test_the_block_kit_check_does_fail_beyond_slacks_limits():
    blocks = render(finished(), "slack")["blocks"]
    blocks[0]["text"]["text"] = "x" * 151
    with pytest.raises(SlackObjectFormationError):
        slack_blocks(blocks)


def test_the_report_text_reads_headline_first_then_when_why_what_and_links():
    view = finished(time_limit_seconds=60)
    lines = render(view, "json")["text"].splitlines()
    assert lines[0] == "SYN flood towards 10.0.0.4:443; vm-web-1, alert High-CPU Sev2"
    assert lines[1] == "Window: 2026-11-25 02:00:00 to 02:01:00 UTC (60 s)"
    assert lines[2] == "Stopped: time limit reached"
    assert lines[3:6] == [
        "Notable:",
        "  - 1,214 SYNs from 3 sources got no answer",
        "  - 72% of bytes: a → b:5432",
    ]
    assert "Links (they open without sign-in until 2026-11-26 02:05 UTC):" in lines
    assert f"  Capture file (.cap): {LINKS.file}" in lines
    assert f"  Chart (PNG): {LINKS.chart}" in lines
