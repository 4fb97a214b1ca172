"""`make run`: the app on http://localhost:7071 against the bundled Azure emulator and Azurite.

One process starts, in order: the ARM + managed-identity emulator with the sample world, Azurite's blob and
queue services (with the emulator's certificate and OAuth), a small notification receiver, and the local
Functions host running the timers and queue triggers. The app settings that point the unmodified app at them
are set in the environment, exactly as a Function App's application settings would be.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import ssl
import threading
import urllib.request
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from devhost.host import LocalHost
from emulator import FOREIGN_CREDENTIAL_ENV, Emulator
from emulator.azurite import Azurite, dev_credential, upload_capture
from emulator.captures import StoppedCapture
from emulator.pcapgen import generate_for_capture

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_WORLD = ROOT / "samples" / "world.json"
SAMPLES = ROOT / "samples" / "alerts"
log = logging.getLogger("devhost.stack")
# The queue connection's app-setting prefix (the binding's ``connection``); locally identity-based, as in
# Azure: ``CaptureQueue__queueServiceUri`` names Azurite's queue service, tokens come from the emulator.
QUEUE_CONNECTION = "CaptureQueue"


REPORTS_DIR = ROOT / ".run" / "reports"


class NotificationReceiver:
    """A local stand-in for a Teams/Slack/JSON webhook: keeps and prints what the monitor sends.

    A report is printed as a person reads it; its chart is fetched through the report's own link (so the
    link is shown to work) into ``.run/reports/``. ``ca_bundle`` is the certificate Azurite serves.
    """

    def __init__(self, echo: bool = True, ca_bundle: str | None = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Event()
        self.ca_bundle = ca_bundle
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    document = json.loads(self.rfile.read(length) or b"null")
                except ValueError:
                    document = {"unparsable": True}
                receiver.received.append(document)
                receiver.arrived.set()
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if echo:
                    print(f"\n{printout(document, receiver.ca_bundle)}", flush=True)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="notify-receiver", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/notify"

    def start(self) -> NotificationReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def printout(document: Any, ca_bundle: str | None, save_to: Path = REPORTS_DIR) -> str:
    """A notification as `make run` prints it: the report's own text, then how to open its chart."""
    if not isinstance(document, dict) or "text" not in document:
        return f"[notification] {json.dumps(document)[:300]}"
    lines = ["[report] " + "─" * 60, str(document["text"])]
    chart = (document.get("links") or {}).get("chart")
    if chart and ca_bundle:
        name = str((document.get("capture") or {}).get("name") or "capture")
        lines.append("")
        try:
            saved = save_chart(chart, ca_bundle, save_to / f"{name}.png")
            shown = saved.relative_to(ROOT) if saved.is_relative_to(ROOT) else saved
            lines.append(f"Chart saved to {shown}: open it with any image viewer (xdg-open / open {shown}).")
        except OSError as exc:
            lines.append(f"The chart could not be fetched through its link: {type(exc).__name__}")
        lines.append(
            "The links are served by the local Azurite over HTTPS with the emulator's certificate: "
            f"curl --cacert {ca_bundle} -OJ '<link>' (a browser would first have to trust it)."
        )
    return "\n".join(lines)


def save_chart(url: str, ca_bundle: str, path: Path) -> Path:
    """Fetch a chart through its link alone (no credential), as a person's browser would."""
    context = ssl.create_default_context(cafile=ca_bundle)
    with urllib.request.urlopen(url, context=context, timeout=30) as response:  # noqa: S310 - https link
        data = response.read()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# Each ring file is generated at most this big, which keeps the local stack quick.
RING_FILE_MAX_BYTES = 1_000_000


def capture_writer(azurite: Azurite, ca_bundle: str) -> Any:
    """The emulator's stop hook: write a real capture file where the capture said it would be."""

    def write(stopped: StoppedCapture) -> None:
        if not stopped.storage_path:
            return
        for ring_file in stopped.ring_files:
            # A continuous capture leaves the files its ring kept, each one window of the VM's traffic.
            if ring_file.storage_path is None:
                continue
            part = generate_for_capture(
                scenario=stopped.scenario,
                start=ring_file.start_time,
                stop=ring_file.stop_time,
                bytes_per_packet=stopped.bytes_per_packet,
                total_bytes_per_session=stopped.file_size_bytes,
                traffic_bytes_per_second=stopped.traffic_bytes_per_second,
                filters=stopped.filters,
                seed=ring_file.sequence,
                max_bytes=RING_FILE_MAX_BYTES,
                anomaly_start=stopped.anomaly_start,
            )
            upload_capture(
                azurite.blob_endpoint,
                dev_credential(),
                ring_file.storage_path,
                part.data,
                connection_verify=ca_bundle,
            )
        if stopped.ring_files:
            return
        generated = generate_for_capture(
            scenario=stopped.scenario,
            start=stopped.start_time,
            stop=stopped.stop_time,
            bytes_per_packet=stopped.bytes_per_packet,
            total_bytes_per_session=stopped.total_bytes_per_session,
            traffic_bytes_per_second=stopped.traffic_bytes_per_second,
            filters=stopped.filters,
            anomaly_start=stopped.anomaly_start,
        )
        upload_capture(
            azurite.blob_endpoint,
            dev_credential(),
            stopped.storage_path,
            generated.data,
            connection_verify=ca_bundle,
        )

    return write


class LocalStack:
    """Emulator + Azurite + notification receiver + local Functions host, as one context manager."""

    def __init__(
        self,
        *,
        port: int = 7071,
        key: str | None = None,
        time_scale: float = 1.0,
        monitor_interval: float | None = 5.0,
        queue_poll_interval: float | None = 2.0,
        world: str | os.PathLike[str] = SAMPLE_WORLD,
        settings: dict[str, str] | None = None,
        echo_notifications: bool = True,
    ) -> None:
        self.emulator = Emulator(world, time_scale=time_scale)
        self.receiver = NotificationReceiver(echo=echo_notifications)
        self.azurite: Azurite | None = None
        self.azurite_queue: Azurite | None = None
        self._queue_poll_interval = queue_poll_interval
        self.host: LocalHost | None = None
        self._port = port
        self._key = key
        self._monitor_interval = monitor_interval
        self._settings = settings or {}
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> LocalStack:
        try:
            self.emulator.start()
            self.azurite = Azurite(self.emulator.ca_cert_path, self.emulator.key_path).start()
            self.azurite_queue = Azurite(
                self.emulator.ca_cert_path, self.emulator.key_path, service="queue"
            ).start()
            self.emulator.on_capture_stopped = capture_writer(self.azurite, self.emulator.ca_cert_path)
            self.receiver.ca_bundle = self.emulator.ca_cert_path
            self.receiver.start()
            self._set_env(self.app_settings())
            self.host = LocalHost(
                ROOT,
                key=self._key,
                port=self._port,
                run_timers=True,
                timer_interval=self._monitor_interval,
                load_settings=False,
                run_queues=True,
                queue_poll_interval=self._queue_poll_interval,
            ).start()
            self._app_on_emulated_time()
        except BaseException:
            self.stop()
            raise
        return self

    def _app_on_emulated_time(self) -> None:
        """The scheduler decides which captures are due from their age, the flight recorder when a ring
        ends: let both read the emulator's clock, so `--time-scale` speeds up the follow-through as it
        speeds up the captures."""
        import capture

        # With invalid settings there is no monitor; every request says what is wrong.
        with contextlib.suppress(capture.SettingsError):
            ctx = capture.app_context()
            ctx.monitor.clock = ctx.recorder.clock = self.emulator.clock.now_datetime

    def app_settings(self) -> dict[str, str]:
        """The application settings a real Function App would have, aimed at the local pieces."""
        assert self.azurite is not None and self.azurite_queue is not None
        subscription = self.emulator.subscription_id
        return {
            **self.emulator.env(),
            "CAPTURE_STORAGE_ACCOUNT_ID": f"/subscriptions/{subscription}/resourceGroups/rg-capture"
            "/providers/Microsoft.Storage/storageAccounts/stcaptures",
            "CAPTURE_BLOB_ENDPOINT": self.azurite.blob_endpoint,
            f"{QUEUE_CONNECTION}__queueServiceUri": self.azurite_queue.queue_endpoint,
            "CAPTURE_NOTIFY_URL": self.receiver.url,
            "CAPTURE_ALLOWED_SCOPES": f"/subscriptions/{subscription}",
            **self._settings,
        }

    def _set_env(self, values: dict[str, str]) -> None:
        for key in FOREIGN_CREDENTIAL_ENV:  # e.g. an AZURE_CLIENT_ID in the developer's shell
            self._saved_env.setdefault(key, os.environ.pop(key, None))
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value
        import capture

        capture.reset()

    def stop(self) -> None:
        """Stop in dependency order: the app (it calls everything), then the emulator, whose stop hook
        writes capture files to Azurite (no new hook runs; a running one finishes while the emulator
        stops), then Azurite, then the receiver the app was notifying."""
        if self.host is not None:
            self.host.stop()
        self.emulator.on_capture_stopped = None
        self.emulator.stop()
        for azurite in (self.azurite, self.azurite_queue):
            if azurite is not None:
                azurite.stop()
        self.receiver.stop()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self.host is not None
        return self.host.url

    def webhook_url(self) -> str:
        assert self.host is not None
        return self.host.function_url("alert_webhook")

    def banner(self) -> str:
        assert self.host is not None and self.azurite is not None and self.azurite_queue is not None
        key = self.host.key
        base = f"http://localhost:{self.host.port}/api"
        samples = sorted(p.name for p in SAMPLES.glob("*.json"))
        lines = [
            "",
            "Alert → packet capture, running locally",
            f"  webhook      POST {base}/alerts?code={key}",
            f"  captures     GET  {base}/captures?code={key}",
            f"  ARM emulator {self.emulator.arm_endpoint}   (sample world: {SAMPLE_WORLD.relative_to(ROOT)})",
            f"  Azurite      {self.azurite.blob_endpoint} (blob)",
            f"  Azurite      {self.azurite_queue.queue_endpoint} ({QUEUE_CONNECTION}__queueServiceUri)",
            f"  reports are printed here as they arrive (receiver {self.receiver.url}); each chart is",
            f"  fetched through its link into {REPORTS_DIR.relative_to(ROOT)}/ (any image viewer opens it)",
            "",
            "Try (from the repository folder):",
        ]
        for name in samples:
            lines.append(
                f"  curl -s -X POST '{base}/alerts?code={key}' -H 'Content-Type: application/json' "
                f"--data @samples/alerts/{name}"
            )
        lines += [f"  curl -s '{base}/captures?code={key}'", "", "Ctrl-C stops everything."]
        return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.stack", description=__doc__)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument(
        "--key",
        default=os.environ.get("FUNCTIONS_KEY") or "local-dev-key",
        help="function key (default: local-dev-key, or FUNCTIONS_KEY)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="emulated seconds per real second (10 makes a 60 s capture take 6 s)",
    )
    parser.add_argument(
        "--monitor-interval",
        type=float,
        default=5.0,
        help="run the capture monitor every N seconds (its schedule in Azure: every minute)",
    )
    parser.add_argument(
        "--queue-poll-interval",
        type=float,
        default=2.0,
        help="poll an empty queue at least every N seconds (Azure: host.json maxPollingInterval)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("emulator").setLevel(logging.WARNING)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):  # Ctrl-C, also when started in the background
        signal.signal(number, lambda *_: stop.set())
    with LocalStack(
        port=args.port,
        key=args.key,
        time_scale=args.time_scale,
        monitor_interval=args.monitor_interval,
        queue_poll_interval=args.queue_poll_interval,
    ) as stack:
        print(stack.banner(), flush=True)
        stop.wait()
        print("\nstopping…", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
