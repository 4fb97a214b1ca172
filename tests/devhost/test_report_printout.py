"""`make run` prints a finished capture's report as a person reads it, with links that open locally."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from pathlib import Path

from azure.storage.blob import BlobServiceClient

from devhost.stack import SAMPLES, LocalStack, printout
from emulator.azurite import dev_credential
from tests.test_local_run import http


def test_make_run_prints_the_report_headline_first_and_its_links_download(tmp_path: Path) -> None:
    with LocalStack(
        port=0, key="test-key", time_scale=0.0, monitor_interval=None, echo_notifications=False
    ) as stack:
        assert stack.host is not None and stack.azurite is not None
        base = stack.url.rstrip("/") + "/api"
        body = (SAMPLES / "01-metric-fired-vm.json").read_bytes()
        status, answer = http("POST", f"{base}/alerts?code=test-key", body)
        assert status == 202, answer
        stack.emulator.advance(120)
        stack.host.trigger_timer("capture_monitor")  # queues it; the host's queue listener reports it
        deadline = time.monotonic() + 60
        while not stack.receiver.received and time.monotonic() < deadline:
            stack.receiver.arrived.wait(0.2)
        [note] = stack.receiver.received
        ca = stack.emulator.ca_cert_path
        printed = printout(note, ca, save_to=tmp_path).splitlines()

        # headline first: the finding's line names the VM, the alert rule and its severity
        assert printed[1] == note["headline"]
        assert printed[1].startswith(
            "SYN flood towards 10.0.0.4:443"
        )  # the sample VM's scenario, filtered to :443
        assert printed[1].endswith("; vm-web-1, alert vm-web-network-out Sev2")
        assert printed[2].startswith("Window: ") and printed[3] == "Stopped: time limit reached"
        assert "Notable:" in printed
        assert any(line.startswith("Links (they open without sign-in until ") for line in printed)

        # the chart came through its own link, byte for byte what storage holds
        service = BlobServiceClient(
            stack.azurite.blob_endpoint, credential=dev_credential(), connection_verify=ca
        )
        path = note["capture"]["storagePath"].split("/network-watcher-logs/", 1)[1]
        stored = service.get_blob_client("network-watcher-logs", path.replace(".cap", ".png"))
        saved = tmp_path / f"{note['capture']['name']}.png"
        assert saved.read_bytes() == stored.download_blob().readall()
        assert any(f"Chart saved to {saved}" in line for line in printed)

        # the printed curl line, with the .cap link: what a person pastes in a second terminal
        [hint] = [line for line in printed if "curl --cacert" in line]
        command = shlex.split(
            hint.split(": ", 1)[1].split(" (a browser")[0].replace("<link>", note["links"]["file"])
        )
        assert shutil.which("curl")
        subprocess.run(command, cwd=tmp_path, check=True, capture_output=True, timeout=60)
        original = service.get_blob_client("network-watcher-logs", path).download_blob().readall()
        assert (tmp_path / f"{note['capture']['name']}.cap").read_bytes() == original  # saved under its name
