"""World file loading, programmatic building, TLS certificate helper and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from emulator import Emulator, World, WorldError, ensure_certificate
from emulator.testing import SAMPLE_SUBSCRIPTION, SAMPLE_WORLD

ROOT = Path(__file__).resolve().parents[2]


def test_sample_world_matches_the_brief() -> None:
    w = World.from_file(SAMPLE_WORLD)
    assert w.subscription_id == SAMPLE_SUBSCRIPTION
    watchers = {(x.name, x.resource_group, x.location) for x in w.watchers()}
    assert watchers == {
        ("NetworkWatcher_eastus", "NetworkWatcherRG", "eastus"),
        ("nw-weu-prod", "rg-network", "westeurope"),
    }
    assert w.watcher_in("southcentralus") is None
    assert [v.name for v in w.vms() if v.location == "southcentralus"] == ["vm-edge-01"]
    assert {v.os_type for v in w.vms()} == {"Linux", "Windows"}
    assert [v.name for v in w.vms() if not v.has_agent] == ["vm-noagent-01"]
    assert w.find_scale_set("vmss-web").instances == ["0", "1", "2"]
    assert w.find_storage_account("stcaptures").resource_group == "rg-capture"
    assert {v.scenario for v in w.vms()} == {"web", "synflood", "retransmissions", "dns-failures"}


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"virtualMachines": [{"name": "v", "location": "eastus"}]}, "resourceGroup"),
        (
            {"virtualMachines": [{"name": "v", "resourceGroup": "r", "location": "x", "osType": "BeOS"}]},
            "osType",
        ),
        (
            {"virtualMachines": [{"name": "v", "resourceGroup": "r", "location": "x", "failure": "Oops"}]},
            "failure",
        ),
        (
            {
                "networkWatchers": [
                    {"name": "a", "resourceGroup": "r", "location": "eastus"},
                    {"name": "b", "resourceGroup": "r", "location": "eastus"},
                ]
            },
            "already has",
        ),
        (
            {
                "storageAccounts": [
                    {"name": "s", "resourceGroup": "r", "location": "x"},
                    {"name": "S", "resourceGroup": "R", "location": "x"},
                ]
            },
            "duplicate",
        ),
    ],
)
def test_bad_worlds_are_refused(doc: dict[str, Any], match: str) -> None:
    with pytest.raises(WorldError, match=match):
        World.from_dict(doc)


def test_programmatic_world_and_case_insensitive_ids() -> None:
    w = World("00000000-0000-0000-0000-0000000000ff")
    vm = w.add_vm("Vm1", resource_group="RG", location="EastUS", os_type="windows", failure="AgentStopped")
    assert vm.location == "eastus"
    assert vm.os_type == "Windows"
    assert vm.behaviour.failure == "AgentStopped"
    assert w.vm(vm.id.upper()) is vm
    twin = World("00000000-0000-0000-0000-0000000000ff").add_vm("vm1", resource_group="rg", location="eastus")
    assert vm.vm_id == twin.vm_id  # deterministic vmId


def test_emulator_starts_fast_and_env_is_complete() -> None:
    t0 = time.perf_counter()
    with Emulator(SAMPLE_WORLD) as emu:
        elapsed = time.perf_counter() - t0
        env = emu.env()
        assert set(env) == {"ARM_ENDPOINT", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "REQUESTS_CA_BUNDLE"}
        assert env["ARM_ENDPOINT"].startswith("https://127.0.0.1:")
        assert env["IDENTITY_ENDPOINT"].startswith("http://127.0.0.1:")
        assert env["IDENTITY_ENDPOINT"].endswith("/msi/token")
        assert Path(env["REQUESTS_CA_BUNDLE"]).is_file()
    assert elapsed < 1.0
    assert not Path(env["REQUESTS_CA_BUNDLE"]).exists()  # temp cert dir removed on stop


def test_certificate_helper_reuses_and_covers_localhost(tmp_path: Path) -> None:
    cert, key = ensure_certificate(tmp_path)
    assert (cert, key) == ensure_certificate(tmp_path)
    pem = cert.read_bytes()
    parsed = x509.load_pem_x509_certificate(pem)
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    cert.write_text("garbage")
    ensure_certificate(tmp_path)
    assert cert.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    # shared directory: a second emulator on the same cert dir serves the same certificate
    with Emulator(None, cert_dir=tmp_path) as emu:
        assert Path(emu.ca_cert_path).read_bytes() == cert.read_bytes()
    assert cert.exists()  # a caller-provided cert dir is kept


def test_cli_prints_env_writes_env_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    env_file = tmp_path / "emulator.env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--world",
            str(SAMPLE_WORLD),
            "--port",
            "0",
            "--time-scale",
            "1",
            "--latency",
            "0",
            "--env-file",
            str(env_file),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        lines = []
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("Serving"):
                break
        out = "".join(lines)
        assert "export ARM_ENDPOINT=https://127.0.0.1:" in out
        assert "export IDENTITY_HEADER=" in out
        settings = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert set(settings) == {"ARM_ENDPOINT", "IDENTITY_ENDPOINT", "IDENTITY_HEADER", "REQUESTS_CA_BUNDLE"}
        code = (
            "import os,sys\n"
            "from azure.identity import ManagedIdentityCredential\n"
            "from azure.mgmt.network import NetworkManagementClient\n"
            f"c = NetworkManagementClient(ManagedIdentityCredential(), '{SAMPLE_SUBSCRIPTION}',\n"
            "                             base_url=os.environ['ARM_ENDPOINT'])\n"
            "print(sorted(w.name for w in c.network_watchers.list_all()))\n"
        )
        child = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, **settings},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(child.stdout.replace("'", '"')) == ["NetworkWatcher_eastus", "nw-weu-prod"]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0
        assert "Stopped." in rest
        assert not env_file.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_reports_a_bad_world(tmp_path: Path) -> None:
    bad = tmp_path / "w.json"
    bad.write_text("{nope")
    r = subprocess.run(
        [sys.executable, "-m", "emulator", "--world", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 2
    assert "cannot load world" in r.stderr
