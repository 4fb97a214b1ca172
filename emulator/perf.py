"""Per-call latency of the emulator: ``python -m emulator.perf [-n 500] [--external]``.

Measures, with keep-alive connections: the raw HTTPS round trip (a bare TLS socket: the emulator's own
cost) and a reused SDK client's calls (azure-mgmt-network ``network_watchers.get`` and azure-mgmt-resource
``resources.get_by_id``). By default the emulator runs in this process (so client and server share the GIL);
``--external`` measures an emulator started separately (``python -m emulator``), using the environment it
printed (ARM_ENDPOINT, IDENTITY_ENDPOINT, IDENTITY_HEADER, REQUESTS_CA_BUNDLE).
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import time
from collections.abc import Callable
from urllib.parse import urlparse

from .core import Emulator
from .world import DEFAULT_SUBSCRIPTION

_WATCHER_PATH = (
    "/subscriptions/{sub}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/"
    "NetworkWatcher_eastus"
)
_VM_ID = "/subscriptions/{sub}/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/vm-web-01"


def _stats(samples: list[float]) -> str:
    s = sorted(samples)

    def p(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))] * 1000

    return f"median {statistics.median(s) * 1000:.3f} ms  p90 {p(0.9):.3f} ms  p99 {p(0.99):.3f} ms"


def _measure(fn: Callable[[], object], n: int) -> list[float]:
    for _ in range(min(20, n)):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _raw_rtt(endpoint: str, ca: str, token: str, path: str, n: int) -> list[float]:
    u = urlparse(endpoint)
    host, port = u.hostname or "127.0.0.1", u.port or 443
    ctx = ssl.create_default_context(cafile=ca)
    with ctx.wrap_socket(socket.create_connection((host, port)), server_hostname=host) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = (
            f"GET {path}?api-version=2026-03-01 HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {token}\r\nUser-Agent: emulator-perf\r\n\r\n"
        ).encode()

        def once() -> None:
            sock.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += sock.recv(65536)
            head, body = buf.split(b"\r\n\r\n", 1)
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += sock.recv(65536)

        return _measure(once, n)


def run(n: int, external: bool) -> dict[str, list[float]]:
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.network import NetworkManagementClient
    from azure.mgmt.resource.resources import ResourceManagementClient

    emu: Emulator | None = None
    if external:
        endpoint, ca, sub = os.environ["ARM_ENDPOINT"], os.environ["REQUESTS_CA_BUNDLE"], DEFAULT_SUBSCRIPTION
    else:
        from .testing import SAMPLE_WORLD

        emu = Emulator(SAMPLE_WORLD, time_scale=0).start()
        os.environ.update(emu.env())
        endpoint, ca, sub = emu.arm_endpoint, emu.ca_cert_path, emu.subscription_id
    try:
        cred = ManagedIdentityCredential()
        token = cred.get_token("https://management.azure.com/.default").token
        results = {"raw HTTPS round trip": _raw_rtt(endpoint, ca, token, _WATCHER_PATH.format(sub=sub), n)}
        with NetworkManagementClient(cred, sub, base_url=endpoint) as nc:
            results["SDK network_watchers.get"] = _measure(
                lambda: nc.network_watchers.get("NetworkWatcherRG", "NetworkWatcher_eastus"), n
            )
        with ResourceManagementClient(cred, sub, base_url=endpoint) as rc:
            vm = _VM_ID.format(sub=sub)
            results["SDK resources.get_by_id"] = _measure(
                lambda: rc.resources.get_by_id(vm, api_version="2024-07-01"), n
            )
        if emu is not None:
            durations = [r.duration for r in emu.request_log]
            results["server time in handler"] = durations
        return results
    finally:
        if emu is not None:
            emu.stop()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m emulator.perf", description=__doc__.strip().splitlines()[0])
    p.add_argument("-n", type=int, default=500, help="calls per measurement")
    p.add_argument("--external", action="store_true", help="measure an emulator from `python -m emulator`")
    args = p.parse_args()
    for name, samples in run(args.n, args.external).items():
        print(f"{name:28s} {_stats(samples)}")


if __name__ == "__main__":
    main()
