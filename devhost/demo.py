"""`make demo`: start everything, post the sample alerts, follow the first capture to its report, exit."""

from __future__ import annotations

import argparse
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from devhost.stack import ROOT, SAMPLES, LocalStack, printout

REPORT = ROOT / ".run" / "demo-report.json"


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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
