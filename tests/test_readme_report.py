"""The README's sample report and chart (near the top) exist and agree with each other."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def test_readme_shows_a_sample_report_headline_first_and_its_chart():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## What the on-call engineer reads", 1)[1].split("\n## ", 1)[0]
    assert readme.index("## What the on-call engineer reads") < readme.index(
        "## Two commands"
    )  # near the top
    report = section.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    assert report[0].startswith("SYN flood towards 10.0.0.4:443")
    assert report[0].endswith("; vm-web-1, alert vm-web-network-out Sev2")
    assert report[1].startswith("Window: ") and report[2] == "Stopped: time limit reached"
    [image] = re.findall(r"!\[[^]]+\]\((docs/charts/[^)]+\.png)\)", section)
    with Image.open(ROOT / image) as chart:
        title = chart.text["Title"]  # type: ignore[attr-defined]
    assert title.startswith("vm-web-1 · alert vm-web-network-out · ")
    assert report[1].removeprefix("Window: ") in title  # the chart is this report's
