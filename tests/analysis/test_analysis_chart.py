"""The chart shows the finding: its title, the headline, the series that carries it, the alert marker."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
from datetime import timedelta

import dpkt
import pytest
from PIL import Image

from capture.analysis import analyze
from capture.charts import HEIGHT, WIDTH, chart_title, render_chart
from emulator.pcapgen import SCENARIOS

from .docs_charts import ALERT_RULE, ALERT_TIME, DOCS, START, VM_NAME, scenario_chart, scenario_findings

ALERT_ORANGE = (230, 120, 0)

# the series each scenario's chart must put first, with its unit
SERIES = {
    "web": "pkt/s",
    "synflood": "syn/s",
    "retransmissions": "seg/s",
    "dns-failures": "failures/s",
    "unreachable": "msg/s",
    "zero-window": "zero windows/s",
}


def opened(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def chunks(image: Image.Image) -> dict[str, str]:
    """The PNG's text chunks (what the chart says it shows)."""
    return dict(image.text)  # type: ignore[attr-defined]


def marker_x(image: Image.Image) -> int:
    alert = chunks(image)["Alert"]
    assert alert.startswith(f"{ALERT_TIME:%Y-%m-%dT%H:%M:%SZ} x=")
    return int(alert.rsplit("x=", 1)[1])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_scenario_chart_has_title_headline_series_and_alert(scenario: str) -> None:
    findings = scenario_findings(scenario)
    image = opened(scenario_chart(scenario))
    assert image.format == "PNG"
    assert image.size == (WIDTH, HEIGHT)
    text = chunks(image)
    # the window is the capture's: it starts at 02:03:04 and its last packet is just before 02:04:04
    assert text["Title"] == f"{VM_NAME} · alert {ALERT_RULE} · 2026-11-25 02:03:04 to 02:04:03 UTC (60 s)"
    assert text["Description"] == findings.headline
    assert text["Series"] == SERIES[scenario]
    # the alert came 4 s before the capture: the axis starts there, the marker is at its left edge,
    # and is drawn (orange pixels in its column)
    x = marker_x(image)
    assert 60 <= x <= 70
    column = [image.getpixel((x, y)) for y in range(90, HEIGHT // 2)]
    assert column.count(ALERT_ORANGE) > 20


def test_alert_during_the_capture_is_marked_where_it_happened() -> None:
    findings = scenario_findings("synflood")
    during = START + timedelta(seconds=30)
    image = opened(render_chart(findings, vm=VM_NAME, alert=ALERT_RULE, alert_time=during))
    x = int(chunks(image)["Alert"].rsplit("x=", 1)[1])
    assert WIDTH * 0.4 < x < WIDTH * 0.6  # half way along the axis
    long_before = START - timedelta(minutes=10)
    image = opened(render_chart(findings, alert_time=long_before))
    assert int(chunks(image)["Alert"].rsplit("x=", 1)[1]) == 64  # pinned to the left edge of the axis
    assert chunks(image)["Title"].startswith("capture · 2026-11-25 02:03:04 to ")


def test_chart_without_alert_or_packets() -> None:
    empty = analyze(io.BytesIO(struct.pack("<IHHiIII", dpkt.pcap.TCPDUMP_MAGIC, 2, 4, 0, 0, 65535, 1)))
    image = opened(render_chart(empty, width=400, height=300))
    assert image.size == (480, 360)  # the smallest readable size
    assert "Alert" not in chunks(image)
    assert chunks(image)["Title"] == "capture"
    assert chunks(image)["Description"].startswith("No packets captured")
    assert chart_title(empty, vm="vm-1", alert="rule") == "vm-1 · alert rule"


def test_pillow_is_imported_only_to_draw() -> None:
    code = (
        "import json, sys, capture.charts, capture.analysis; before = 'PIL' in sys.modules; "
        "import io; from capture.analysis import analyze; "
        "print(json.dumps(before))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_docs_charts_are_current(scenario: str) -> None:
    """docs/charts/*.png are what the chart draws today (regenerate: python -m tests.analysis.docs_charts)."""
    committed = opened((DOCS / f"{scenario}.png").read_bytes())
    fresh = opened(scenario_chart(scenario))
    for key in ("Title", "Description", "Series", "Alert"):
        assert chunks(committed)[key] == chunks(fresh)[key]
