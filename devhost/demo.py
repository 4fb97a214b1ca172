"""`make demo`: start everything, post the sample alerts, follow the first capture to its report, then show
the flight recorder (arm a tagged VM, an incident that starts 3 minutes before its alert, freeze, report)."""

from __future__ import annotations

import argparse
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from devhost.stack import ROOT, SAMPLES, LocalStack, printout

REPORT = ROOT / ".run" / "demo-report.json"
RECORDER_REPORT = ROOT / ".run" / "demo-recorder-report.json"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
RECORDED_VM = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/"
    "vm-web-02"
)
# Small rings for the demo: 5 files of 1 MiB at the VM's 20 kB/s hold the last ~4 minutes.
RECORDER_SETTINGS = {
    "CAPTURE_RECORDER_FILE_COUNT": "5",
    "CAPTURE_RECORDER_FILE_SIZE_BYTES": "1048576",
}


def post(url: str, body: bytes) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local URL
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - local URL
        document: dict[str, Any] = json.loads(response.read())
        return document


def summary(answer: dict[str, Any]) -> str:
    if answer.get("error"):
        return str(answer["error"].get("message", ""))[:70]
    results = answer.get("results") or []
    if not results:
        return ""
    first = results[0]
    detail = (
        (first.get("capture") or {}).get("name") or (first.get("error") or {}).get("code") or first["reason"]
    )
    return f"{first['outcome']}: {detail}"[:70]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.demo", description=__doc__)
    parser.add_argument(
        "--time-scale",
        type=float,
        default=20.0,
        help="emulated seconds per real second (default 20: a 60 s capture takes 3 s)",
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with LocalStack(
        port=0,
        time_scale=args.time_scale,
        monitor_interval=1.0,
        queue_poll_interval=0.5,
        echo_notifications=False,
        settings=RECORDER_SETTINGS,
    ) as stack:
        assert stack.host is not None
        key = stack.host.key
        base = stack.url.rstrip("/") + "/api"
        print(
            f"App on {stack.url} (emulated Azure, time x{args.time_scale:g}); posting samples/alerts/*.json\n"
        )
        print(f"{'sample':36} {'HTTP':>4}  {'status':11} first result")
        print(f"{'-' * 36} {'-' * 4}  {'-' * 11} {'-' * 40}")
        started = []
        for path in sorted(SAMPLES.glob("*.json")):
            status, answer = post(f"{base}/alerts?code={key}", path.read_bytes())
            print(f"{path.name:36} {status:>4}  {answer.get('status', ''):11} {summary(answer)}")
            started += [r["capture"]["name"] for r in answer.get("results", []) if r["outcome"] == "started"]
        if not started:
            print("\nno capture was started")
            return 1
        print(f"\nFollowing {len(started)} captures (GET /api/captures) until the first report arrives…")
        deadline = time.monotonic() + args.timeout
        last = ""
        while not stack.receiver.received and time.monotonic() < deadline:
            listing = get(f"{base}/captures?code={key}")
            line = ", ".join(f"{c['vm'] or c['name']}={c['status']}" for c in listing["captures"])
            if line != last:
                print(f"  {time.strftime('%H:%M:%S')}  {line or '(all reported)'}")
                last = line
            stack.receiver.arrived.wait(0.5)
        if not stack.receiver.received:
            print("no notification arrived in time")
            return 1
        note = stack.receiver.received[0]
        capture = note["capture"]
        print(f"\n{printout(note, stack.emulator.ca_cert_path)}")
        # Fetched now: the app (and its storage) stop when the demo ends.
        report = get(f"{base}/captures/{capture['name']}?code={key}")
        REPORT.parent.mkdir(exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"\nFull report (GET /api/captures/{capture['name']}): {REPORT.relative_to(ROOT)}")
        return flight_recorder(stack, f"{base}/alerts?code={key}", args.timeout)


def flight_recorder(stack: LocalStack, alerts_url: str, timeout: float) -> int:
    """Tag a VM, let the timer arm its ring, start an incident 3 minutes before the alert, freeze, report."""
    from capture import app_context
    from capture.recorder import is_ring

    emulator = stack.emulator
    # The app's recorder reads the emulated clock, as its packets do (dev only: Azure has one clock).
    app_context().recorder.clock = emulator.clock.now_datetime
    emulator.world.find_vm("vm-web-02").behaviour.traffic_bytes_per_second = 20_000.0
    emulator.world.set_tags(RECORDED_VM, {"capture-recorder": "on"})
    print("\nFlight recorder: tagged vm-web-02 capture-recorder=on; waiting for the timer to arm its ring…")
    deadline = time.monotonic() + timeout

    def ring() -> str | None:
        names = [emulator.capture_json(i)["name"] for i in emulator.capture_ids()]
        return next((n for n in names if is_ring(n, "alertcap")), None)

    while ring() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    armed = ring()
    if armed is None:
        print("the ring was not armed in time")
        return 1
    print(f"  armed    {armed} (continuous capture: 5 files x 1 MiB)")
    emulator.advance(420)  # 7 quiet minutes go by...
    alert_at = emulator.clock.now_datetime()
    emulator.start_anomaly(RECORDED_VM, alert_at - timedelta(minutes=3))  # ...a SYN flood began 3 min ago
    body = {"targets": [RECORDED_VM], "reason": "vm-web-02 slow (flight recorder demo)"}
    status, answer = post(alerts_url, json.dumps(body).encode())
    line = (answer.get("results") or [{}])[0]
    print(f"  alert    HTTP {status} {answer.get('status')}: {line.get('reason')}")
    if status != 202:
        return 1
    emulator.advance(65)  # the post-alert ring records CAPTURE_TIME_LIMIT_SECONDS, then stops
    print("  waiting for the timer to queue the frozen timeline and the queue worker to report it…")
    report = None
    while report is None and time.monotonic() < deadline:
        report = next((n for n in stack.receiver.received if n["capture"]["name"] == armed), None)
        if report is None:
            time.sleep(0.2)
    if report is None:
        print("no recorder report arrived in time")
        return 1
    timeline = report["capture"].get("recorder") or {}
    print(f"\n{printout(report, emulator.ca_cert_path)}")
    print(f"\nRecorder report ({report['outcome']}): {report['capture']['stopReasonText']}")
    print(
        f"  evidence {timeline.get('start')} .. {timeline.get('end')} (alert {timeline.get('alertAt')}): "
        f"{timeline.get('preFiles')} files before, {timeline.get('postFiles')} after"
    )
    for note in report["analysis"]["notable"] or [report["analysis"].get("error") or "no findings"]:
        print(f"  • {note}")
    RECORDER_REPORT.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nFull recorder report: {RECORDER_REPORT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
