"""Real traffic, recorded between network namespaces (captures/record.py): counts as tshark counts them,
and a headline that names the right culprit for each kind of trouble."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capture.analysis import Findings, analyze_file

CAPTURES = Path(__file__).resolve().parent / "captures"
REFERENCE: dict[str, dict[str, float | int | str | None]] = json.loads(
    (CAPTURES / "reference.json").read_text(encoding="utf-8")
)
VM, PEER = "10.99.0.1", "10.99.0.2"

# file -> (the first problem's kind, None for nothing abnormal; what the headline must name)
EXPECTED: dict[str, tuple[str | None, list[str]]] = {
    "normal": (None, ["Nothing abnormal"]),
    "firewall-drop": ("dropped-syns", [f"{PEER}:9000", VM, "no answer"]),
    "refused": ("refused", [f"closed port {PEER}:8081", VM]),
    "packet-loss": ("packet-loss", [f"retransmitted by {PEER}", f"{VM} → {PEER}:9200"]),
    "slow-client-side": ("slow-round-trips", [f"{VM} → {PEER}:8000"]),
    "slow-server-side": ("slow-round-trips", [f"{VM} → {PEER}:8000"]),
    "dns-failures": ("dns-failures", [f"from {PEER}", "api.broken.test", "cdn.flaky.test", "NXDOMAIN"]),
    "dns-down": ("dns-unanswered", [f"DNS server {PEER} did not answer", "db.internal.test"]),
    "udp-unreachable": ("unreachable", [f"udp {PEER}:514", f"from {PEER}"]),
    "zero-window": ("zero-window", [VM, f"{VM} → {PEER}:9200"]),
    "port-scan": ("port-scan", [f"Port scan from {VM}", f"on {PEER}"]),
    "hog": ("hog", [f"→ {PEER}:9100"]),
    "syn-flood": ("syn-flood", [f"SYN flood towards {VM}:443 from 3 sources", "198.51.100.23 (57)"]),
}


def analysed(name: str) -> Findings:
    return analyze_file(CAPTURES / f"{name}.pcap")


def test_every_recording_is_checked() -> None:
    assert sorted(p.stem for p in CAPTURES.glob("*.pcap")) == sorted(EXPECTED) == sorted(REFERENCE)
    assert all(p.stat().st_size < 32_000 for p in CAPTURES.glob("*.pcap"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_counts_match_tshark(name: str) -> None:
    f = analysed(name)
    ref = REFERENCE[name]
    ours = {
        "packets": f.packets,
        "syns": f.tcp.syns,
        "synacks": f.tcp.handshakes,
        "rsts": f.tcp.rsts,
        "retransmissions": f.tcp.retransmissions,
        "zero_windows": f.tcp.zero_windows,
        "dns_queries": f.dns.queries,
        "dns_responses": f.dns.responses,
        "nxdomain": f.dns.nxdomain,
        "servfail": f.dns.servfail,
        "icmp_unreachable": f.icmp.unreachable,
    }
    assert ours == {key: ref[key] for key in ours}
    if f.tcp.handshake_rtt.median_ms is not None:  # tshark also times handshakes that never completed
        assert f.tcp.handshake_rtt.median_ms == pytest.approx(ref["initial_rtt_median_ms"], abs=0.01)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_headline_names_the_culprit(name: str) -> None:
    f = analysed(name)
    kind, named = EXPECTED[name]
    assert (f.problems[0].kind if f.problems else None) == kind, f.headline
    if kind is not None:
        assert f.notable[0] == f.headline  # the problems lead the notable lines too
    for text in named:
        assert text in f.headline, (text, f.headline)


def test_round_trip_is_the_same_from_either_end() -> None:
    """150 ms each way on the wire: SYN -> ACK is 300 ms whether the capture is at the client or the server."""
    client, server = analysed("slow-client-side"), analysed("slow-server-side")
    for f in (client, server):
        assert f.tcp.handshake_rtt.median_ms is not None
        assert 300 <= f.tcp.handshake_rtt.median_ms < 310
    # at the server the SYN-ACK leaves at once: the old SYN -> SYN-ACK measure would have said ~0 ms there
    assert client.tcp.handshake_rtt.median_ms == pytest.approx(server.tcp.handshake_rtt.median_ms, abs=2)


def test_nothing_abnormal_says_so_and_what_was_there() -> None:
    f = analysed("normal")
    assert f.problems == []
    assert f.headline.startswith(f"Nothing abnormal: {f.packets} packets, ")
    assert f"busiest peer {PEER}" in f.headline
    assert f.dns.servers[0].server == PEER
    assert f.dns.servers[0].answers == f.dns.servers[0].queries == 12


def test_a_flood_on_a_listening_port_is_half_open_handshakes() -> None:
    """The VM answers spoofed SYNs; nobody completes the handshakes: the flood is the SYN-ACKs left hanging."""
    f = analysed("syn-flood")
    assert f.tcp.syns_unanswered == 0
    assert f.tcp.half_open == f.tcp.syns == 110
    assert {c.name for c in f.tcp.half_open_by_source} == {"198.51.100.23", "203.0.113.77", "192.0.2.200"}
    assert f.tcp.half_open_targets[0].name == f"{VM}:443"
    assert f.problems[0].culprits[0].name == "198.51.100.23"


def test_a_scan_is_not_reported_as_refused_connections() -> None:
    f = analysed("port-scan")
    assert f.tcp.port_scanners[0].name == VM
    assert f.tcp.port_scanners[0].count == 41
    assert f.tcp.refused == 40  # closed ports answer with a reset ...
    assert [p.kind for p in f.problems] == ["port-scan"]  # ... which the scan explains
