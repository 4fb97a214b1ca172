"""Write the README's sample charts, one per generated scenario, to docs/charts/ (run after changing the chart).

    .venv/bin/python -m tests.analysis.docs_charts

Each is what the app stores next to the capture file: a 60 s capture the emulator wrote for a VM of that
scenario, analysed and drawn for the alert that started it (fired 4 s before the capture began).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from capture.analysis import Findings, analyze
from capture.charts import render_chart
from emulator.pcapgen import SCENARIOS, generate_for_capture

DOCS = Path(__file__).resolve().parents[2] / "docs" / "charts"
START = datetime(2026, 11, 25, 2, 3, 4, tzinfo=UTC)
ALERT_TIME = START - timedelta(seconds=4)
VM_NAME = "vm-web-1"
ALERT_RULE = "vm-web-network-out"


def scenario_findings(scenario: str) -> Findings:
    """The findings of the 60 s capture the emulator writes for a VM of this scenario."""
    gen = generate_for_capture(scenario=scenario, start=START, stop=START + timedelta(seconds=60))
    return analyze(io.BytesIO(gen.data))


def scenario_chart(scenario: str) -> bytes:
    return render_chart(scenario_findings(scenario), vm=VM_NAME, alert=ALERT_RULE, alert_time=ALERT_TIME)


def main() -> int:
    DOCS.mkdir(parents=True, exist_ok=True)
    for scenario in SCENARIOS:
        (DOCS / f"{scenario}.png").write_bytes(scenario_chart(scenario))
        print(DOCS / f"{scenario}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
