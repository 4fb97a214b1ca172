"""Record the real captures under this folder (run as root on Linux; not part of the test run).

    sudo .venv/bin/python -m tests.analysis.captures.record [NAME ...]

Two network namespaces joined by a veth pair stand for a VM and a peer: ``pcap-vm`` (10.99.0.1) and
``pcap-peer`` (10.99.0.2). Each recording starts tcpdump on the VM's side of the link (where Network
Watcher captures: the VM's NIC), makes real traffic with the kernel's TCP/IP stack, the glibc resolver,
nmap and iptables, then stops tcpdump. ``tshark`` (Wireshark's dissectors) then counts what the tests
compare the analysis with, into ``reference.json``. Needs: iproute2, tcpdump, tshark, iptables, nmap,
ethtool (Debian packages of the same names).

Two pieces are written here: a small DNS responder in the peer (NOERROR, NXDOMAIN for names under
``broken.test``, SERVFAIL under ``flaky.test``), and, for the loss and round-trip recordings, a "wire": a
third namespace ``pcap-wan`` that forwards Ethernet frames between two veth pairs through AF_PACKET
sockets after a fixed delay, dropping a seeded share of the large (data) frames. It stands in for netem,
which this machine's kernel does not have; the TCP endpoints on both sides are the kernel's own. The SYN
flood's SYNs are written to a raw socket with spoofed sources, as flood tools do; the VM's answers are its
kernel's.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable
VM, PEER = "pcap-vm", "pcap-peer"
VM_IP, PEER_IP = "10.99.0.1", "10.99.0.2"
RESOLV = Path("/etc/netns") / VM / "resolv.conf"  # `ip netns exec` mounts it over /etc/resolv.conf

DNS_RESPONDER = r"""
import socket, dpkt
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
while True:
    data, peer = s.recvfrom(4096)
    q = dpkt.dns.DNS(data)
    name = q.qd[0].name if q.qd else ""
    r = dpkt.dns.DNS(id=q.id, qr=dpkt.dns.DNS_R, opcode=q.opcode, rd=q.rd, ra=1, qd=q.qd)
    if name.endswith("broken.test"):
        r.rcode = dpkt.dns.DNS_RCODE_NXDOMAIN
    elif name.endswith("flaky.test"):
        r.rcode = dpkt.dns.DNS_RCODE_SERVFAIL
    elif q.qd and q.qd[0].type == dpkt.dns.DNS_A:
        r.an = [dpkt.dns.DNS.RR(name=name, type=dpkt.dns.DNS_A, cls=1, ttl=60, ip=socket.inet_aton("10.99.0.2"))]
    s.sendto(bytes(r), peer)
"""
WIRE = r"""
import heapq, random, select, socket, sys, time
delay, loss = float(sys.argv[1]), float(sys.argv[2])
rng = random.Random(7)
ends = []
for dev in ("wan-a", "wan-b"):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(3))
    s.bind((dev, 0))
    ends.append(s)
other = {ends[0]: ends[1], ends[1]: ends[0]}
queue, n = [], 0
while True:
    wait = max(0.0, queue[0][0] - time.monotonic()) if queue else None
    ready, _, _ = select.select(ends, [], [], wait)
    for s in ready:
        frame, addr = s.recvfrom(65535)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        if len(frame) > 200 and rng.random() < loss:
            continue
        n += 1
        heapq.heappush(queue, (time.monotonic() + delay, n, other[s], frame))
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        _, _, out, frame = heapq.heappop(queue)
        out.send(frame)
"""
SPOOFED_SYNS = r"""
import random, socket, struct, time
rng = random.Random(3)
sources = ["198.51.100.23", "203.0.113.77", "192.0.2.200"]
dst = socket.inet_aton("10.99.0.1")
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # we write the IP header
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
for i in range(110):
    src = socket.inet_aton(rng.choices(sources, [0.55, 0.3, 0.15])[0])
    tcp = struct.pack("!HHIIBBHHH", 20000 + i, 443, rng.getrandbits(32), 0, 5 << 4, 0x02, 64240, 0, 0)
    tcp = tcp[:16] + struct.pack("!H", checksum(src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i, 0, 64, 6, 0, src, dst)  # the kernel fills the checksum
    raw.sendto(ip + tcp, ("10.99.0.1", 0))
    time.sleep(0.004)
"""
SINK = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9100)); s.listen()
while True:
    c, _ = s.accept()
    while c.recv(65536):
        pass
    c.close()
"""
FIREHOSE = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9200)); s.listen()
c, _ = s.accept()
c.sendall(b"x" * 3_000_000)
c.close()
"""
SLOW_READER = r"""
import socket, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("10.99.0.2", 9200))
time.sleep(2.5)                     # the application stops reading: the window closes
for _ in range(20):
    s.recv(2048); time.sleep(0.05)  # then reads slowly
s.close()
"""


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def in_ns(ns: str, *cmd: str) -> list[str]:
    return ["ip", "netns", "exec", ns, *cmd]


def python_in(ns: str, code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(in_ns(ns, PY, "-c", code), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_in(ns: str, code: str, timeout: float = 30) -> None:
    done = subprocess.run(
        in_ns(ns, PY, "-c", code), timeout=timeout, check=False, capture_output=True, text=True
    )
    if done.returncode:
        print(done.stderr.strip().splitlines()[-1], file=sys.stderr)


WAN = "pcap-wan"


def _link(pairs: list[tuple[str, str, str, str]]) -> None:
    for ns_a, dev_a, ns_b, dev_b in pairs:
        sh("ip", "link", "add", dev_a, "netns", ns_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b)
        for ns, dev in ((ns_a, dev_a), (ns_b, dev_b)):
            sh(*in_ns(ns, "ip", "link", "set", dev, "up"))
            # no offloads: frames as on a real wire (MTU-sized segments), not 64 kB super-frames
            sh(*in_ns(ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off"))


@contextmanager
def namespaces(*, wire: tuple[float, float] | None = None) -> Iterator[None]:
    """The VM and the peer, joined directly, or through the wire (delay in seconds, loss share)."""
    for ns in (VM, PEER, WAN):
        sh("ip", "netns", "del", ns, check=False)
    for ns in (VM, PEER, WAN):
        sh("ip", "netns", "add", ns)
        sh(*in_ns(ns, "ip", "link", "set", "lo", "up"))
        # no IPv6 link-local chatter (router and neighbour solicitations): only the traffic under test
        sh(*in_ns(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"))
        sh(*in_ns(ns, "sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"))
    if wire is None:
        _link([(VM, "veth-vm", PEER, "veth-peer")])
    else:
        _link([(VM, "veth-vm", WAN, "wan-a"), (PEER, "veth-peer", WAN, "wan-b")])
    for ns, dev, ip in ((VM, "veth-vm", VM_IP), (PEER, "veth-peer", PEER_IP)):
        sh(*in_ns(ns, "ip", "addr", "add", f"{ip}/24", "dev", dev))
    RESOLV.parent.mkdir(parents=True, exist_ok=True)
    line = None
    if wire is not None:
        line = subprocess.Popen(in_ns(WAN, PY, "-c", WIRE, str(wire[0]), str(wire[1])))
        time.sleep(0.5)
    try:
        yield
    finally:
        if line is not None:
            line.terminate()
            line.wait(timeout=10)
        for ns in (VM, PEER, WAN):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(RESOLV.parent, ignore_errors=True)


@contextmanager
def capture(name: str, *, ns: str = VM, dev: str = "veth-vm", snaplen: int = 96) -> Iterator[None]:
    path = HERE / f"{name}.pcap"
    dump = subprocess.Popen(
        in_ns(
            ns,
            "tcpdump",
            "--immediate-mode",
            "-Z",
            "root",
            "-i",
            dev,
            "-s",
            str(snaplen),
            "-U",
            "-w",
            str(path),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert dump.stderr is not None
    line = dump.stderr.readline()  # "listening on ...": the capture is running
    if "listening" not in line:
        raise RuntimeError(f"tcpdump did not start: {line}")
    try:
        yield
    finally:
        time.sleep(0.5)
        dump.terminate()
        print(" ", path.name, dump.communicate(timeout=10)[1].strip().replace("\n", "; "), flush=True)


def servers(*codes: str) -> list[subprocess.Popen[bytes]]:
    procs = [python_in(PEER, code) for code in codes]
    time.sleep(1.0)
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def normal() -> None:
    RESOLV.write_text(f"nameserver {PEER_IP}\n")
    procs = [
        subprocess.Popen(
            in_ns(PEER, PY, "-m", "http.server", "8000", "-d", str(HERE)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        *servers(DNS_RESPONDER),
    ]
    try:
        with capture("normal", snaplen=200):
            run_in(
                VM,
                "import socket, urllib.request, time\n"
                "for i in range(6):\n"
                "    socket.getaddrinfo(f'app{i}.example.test', 80)\n"
                "    urllib.request.urlopen('http://10.99.0.2:8000/__init__.py').read()\n"
                "    time.sleep(0.2)\n",
            )
    finally:
        stop(procs)


def firewall_drop() -> None:
    sh(*in_ns(PEER, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "9000", "-j", "DROP"))
    with capture("firewall-drop"):
        run_in(
            VM,
            "import socket, threading\n"
            "def go():\n"
            "    s = socket.socket(); s.settimeout(3.5)\n"
            "    try: s.connect(('10.99.0.2', 9000))\n"
            "    except OSError: pass\n"
            "ts = [threading.Thread(target=go) for _ in range(2)]\n"
            "[t.start() for t in ts]; [t.join() for t in ts]\n",
        )
    sh(*in_ns(PEER, "iptables", "-F"))


def refused() -> None:
    with capture("refused"):
        run_in(
            VM,
            "import socket, time\n"
            "for _ in range(6):\n"
            "    try: socket.create_connection(('10.99.0.2', 8081), timeout=2)\n"
            "    except OSError: pass\n"
            "    time.sleep(0.1)\n",
        )


def packet_loss() -> None:
    """Data segments from the peer lost on the wire (6 %, 2 ms one way): holes, then retransmissions."""
    procs = [
        subprocess.Popen(
            in_ns(PEER, PY, "-c", FIREHOSE.replace("3_000_000", "200_000")),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    time.sleep(1.0)
    try:
        with capture("packet-loss", snaplen=80):
            run_in(
                VM,
                "import socket\ns = socket.create_connection(('10.99.0.2', 9200))\n"
                "while s.recv(65536): pass\n",
            )
    finally:
        stop(procs)


def slow_round_trips() -> None:
    """150 ms each way on the wire, captured at both ends at once: the same round trip from either side."""
    procs = [
        subprocess.Popen(
            in_ns(PEER, PY, "-m", "http.server", "8000", "-d", str(HERE)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    time.sleep(1.0)
    try:
        with capture("slow-server-side", ns=PEER, dev="veth-peer"), capture("slow-client-side"):
            run_in(
                VM,
                "import urllib.request\n"
                "for _ in range(5): urllib.request.urlopen('http://10.99.0.2:8000/__init__.py').read()\n",
            )
    finally:
        stop(procs)


def dns_failures() -> None:
    RESOLV.write_text(f"nameserver {PEER_IP}\noptions attempts:1 timeout:1\n")
    procs = servers(DNS_RESPONDER)
    try:
        with capture("dns-failures", snaplen=200):
            run_in(
                VM,
                "import socket\n"
                "names = ['api.broken.test'] * 4 + ['cdn.flaky.test'] * 2 + ['www.example.test'] * 2\n"
                "for name in names:\n"
                "    try: socket.getaddrinfo(name, 443, type=socket.SOCK_STREAM)\n"
                "    except OSError: pass\n",
            )
    finally:
        stop(procs)


def dns_down() -> None:
    RESOLV.write_text(f"nameserver {PEER_IP}\noptions attempts:2 timeout:1\n")
    with capture("dns-down", snaplen=200):
        run_in(
            VM,
            "import socket\n"
            "for name in ('db.internal.test', 'api.internal.test'):\n"
            "    try: socket.getaddrinfo(name, 5432, type=socket.SOCK_STREAM)\n"
            "    except OSError: pass\n",
        )


def udp_unreachable() -> None:
    with capture("udp-unreachable"):
        run_in(
            VM,
            "import socket, time\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "for i in range(8):\n"
            "    s.sendto(b'<134>1 - vm app - - - event %d' % i, ('10.99.0.2', 514)); time.sleep(1.1)\n",
        )


def zero_window() -> None:
    procs = [subprocess.Popen(in_ns(PEER, PY, "-c", FIREHOSE), stdout=subprocess.DEVNULL)]
    time.sleep(1.0)
    try:
        with capture("zero-window"):
            run_in(VM, SLOW_READER)
    finally:
        stop(procs)


def syn_flood() -> None:
    """Spoofed SYNs from 3 addresses that do not exist to a listening port: the VM answers every one with
    a SYN-ACK (and retransmits it) that nobody acknowledges."""
    sh(*in_ns(VM, "ip", "route", "add", "default", "via", PEER_IP))  # SYN-ACKs go towards the spoofers ...
    for ns in (VM, PEER):
        sh(*in_ns(ns, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0"))
    listener = python_in(
        VM,
        "import socket, time\ns = socket.socket(); s.bind(('0.0.0.0', 443))\ns.listen(4096); time.sleep(30)",
    )
    time.sleep(1.0)
    try:
        with capture("syn-flood", snaplen=64):
            run_in(PEER, SPOOFED_SYNS)  # ... where nothing forwards them: they vanish
            time.sleep(1.2)  # the first SYN-ACK retransmissions
    finally:
        stop([listener])


def port_scan() -> None:
    procs = servers(SINK)
    try:
        with capture("port-scan"):
            sh(*in_ns(VM, "nmap", "-sS", "-Pn", "-n", "-T4", "-p", "1-40,9100", PEER_IP), check=False)
    finally:
        stop(procs)


def hog() -> None:
    procs = [
        *servers(SINK),
        subprocess.Popen(
            in_ns(PEER, PY, "-m", "http.server", "8000", "-d", str(HERE)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    time.sleep(1.0)
    try:
        with capture("hog", snaplen=80):
            run_in(
                VM,
                "import socket, urllib.request\n"
                "for _ in range(3): urllib.request.urlopen('http://10.99.0.2:8000/__init__.py').read()\n"
                "s = socket.create_connection(('10.99.0.2', 9100)); s.sendall(b'y' * 150_000); s.close()\n",
            )
    finally:
        stop(procs)


# name -> (recording, the wire it needs: (one-way delay s, loss share) or None for a direct link)
RECORDINGS: dict[str, tuple[Callable[[], None], tuple[float, float] | None]] = {
    "normal": (normal, None),
    "firewall-drop": (firewall_drop, None),
    "refused": (refused, None),
    "packet-loss": (packet_loss, (0.002, 0.06)),
    "slow": (slow_round_trips, (0.150, 0.0)),
    "dns-failures": (dns_failures, None),
    "dns-down": (dns_down, None),
    "udp-unreachable": (udp_unreachable, None),
    "zero-window": (zero_window, None),
    "port-scan": (port_scan, None),
    "syn-flood": (syn_flood, None),
    "hog": (hog, None),
}

# what tshark counts, as display filters (Wireshark's names), per file
COUNTS = {
    "packets": "frame",
    "syns": "tcp.flags.syn == 1 && tcp.flags.ack == 0",
    "synacks": "tcp.flags.syn == 1 && tcp.flags.ack == 1 && !tcp.analysis.retransmission",
    "rsts": "tcp.flags.reset == 1",
    # data segments sent again; at a receiver Wireshark calls a hole filled sooner than its RTT estimate
    # "out-of-order" (it cannot tell), and the wire here never reorders: those are retransmissions too
    "retransmissions": (
        "tcp.len > 0 && (tcp.analysis.retransmission || tcp.analysis.fast_retransmission"
        " || tcp.analysis.out_of_order)"
    ),
    "zero_windows": "tcp.analysis.zero_window",
    # DNS messages themselves, not the copies quoted inside ICMP errors
    "dns_queries": "dns.flags.response == 0 && !icmp",
    "dns_responses": "dns.flags.response == 1 && !icmp",
    "nxdomain": "dns.flags.rcode == 3 && !icmp",
    "servfail": "dns.flags.rcode == 2 && !icmp",
    "icmp_unreachable": "icmp.type == 3",
}


def tshark_reference(path: Path) -> dict[str, object]:
    """Counts by Wireshark's dissectors, and the median initial RTT (SYN to the client's ACK) per stream."""
    out: dict[str, object] = {}
    for key, display in COUNTS.items():
        rows = sh("tshark", "-n", "-r", str(path), "-Y", display, "-T", "fields", "-e", "frame.number").stdout
        out[key] = len(rows.split())
    irtt = sh(
        "tshark",
        "-n",
        "-r",
        str(path),
        "-Y",
        "tcp.analysis.initial_rtt",
        "-T",
        "fields",
        "-e",
        "tcp.stream",
        "-e",
        "tcp.analysis.initial_rtt",
    ).stdout
    per_stream = {
        line.split("\t")[0]: float(line.split("\t")[1]) for line in irtt.splitlines() if "\t" in line
    }
    out["initial_rtt_median_ms"] = (
        round(1000 * statistics.median(per_stream.values()), 3) if per_stream else None
    )
    out["tshark"] = sh("tshark", "--version").stdout.splitlines()[0]
    return out


def main(argv: list[str]) -> int:
    wanted = argv or list(RECORDINGS)
    reference_path = HERE / "reference.json"
    reference = json.loads(reference_path.read_text()) if reference_path.exists() else {}
    for name in wanted:
        print("recording", name, flush=True)
        record, wire = RECORDINGS[name]
        with namespaces(wire=wire):
            record()
    for path in sorted(HERE.glob("*.pcap")):
        reference[path.stem] = tshark_reference(path)
    reference_path.write_text(json.dumps(reference, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
