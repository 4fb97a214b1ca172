"""Each generated scenario is analysed to exactly the numbers the generator knows it wrote."""

from __future__ import annotations

import io
import json
import re
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from capture.analysis import PROBLEM_KINDS, Findings, analyze, report_headline
from emulator.pcapgen import (
    DB,
    DEAD_HOST,
    DNS_SERVER,
    FLOOD_SOURCES,
    SCENARIOS,
    SYSLOG,
    VM,
    GeneratedCapture,
    Truth,
    generate_for_capture,
)

from .conftest import CaptureFactory


def run(gen: GeneratedCapture, **kwargs: int) -> Findings:
    return analyze(io.BytesIO(gen.data), **kwargs)


def assert_matches_truth(f: Findings, t: Truth) -> None:
    """Everything the generator counted, compared exactly."""
    assert f.packets == t.packets
    assert f.bytes == t.bytes
    assert f.captured_bytes == t.captured_bytes
    assert f.file.bytes_read == t.file_bytes
    assert not f.truncated
    assert f.duration_s == pytest.approx(t.duration_s, abs=2e-6)
    assert {k: (v.packets, v.bytes) for k, v in f.protocols.items()} == {
        k: (v["packets"], v["bytes"]) for k, v in t.protocols.items()
    }
    assert sum(f.series.packets) == t.packets
    assert sum(f.series.bytes) == t.bytes
    assert 1 <= len(f.series.packets) <= 120
    assert f.flows.conversations == t.conversations
    assert f.flows.evicted == 0
    assert f.capture_host == VM

    talkers = sorted(t.talker_bytes.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert [(x.host, x.bytes, x.packets) for x in f.top_talkers] == [
        (host, size, t.talker_packets[host]) for host, size in talkers
    ]
    top = f.top_services[0]
    assert f"{top.client} → {top.server}:{top.server_port}/{top.proto}" == t.top_service
    assert top.bytes == t.service_bytes[t.top_service]

    tcp = f.tcp
    assert tcp.data_packets == t.tcp_data_packets
    assert tcp.syns == t.syns
    assert tcp.syns_unanswered == t.syns_unanswered
    assert tcp.unanswered_connections == t.unanswered_connections
    assert {c.name: c.count for c in tcp.unanswered_by_source} == t.unanswered_by_source
    assert {c.name: c.count for c in tcp.unanswered_targets} == t.unanswered_targets
    assert tcp.handshakes == t.handshakes
    assert tcp.handshake_rtt.samples == len(t.handshake_rtts_ms)
    assert tcp.handshake_rtt.median_ms == pytest.approx(statistics.median(t.handshake_rtts_ms), abs=1e-3)
    assert tcp.handshake_rtt.p95_ms == pytest.approx(t.handshake_rtt_ms(0.95), abs=1e-3)
    assert tcp.rsts == t.rsts
    assert {c.name: c.count for c in tcp.rsts_by_source} == dict(
        sorted(t.rsts_by_source.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    )
    assert tcp.retransmissions == t.retransmissions
    assert tcp.zero_windows == t.zero_windows
    assert {c.name: c.count for c in tcp.zero_windows_by_source} == t.zero_windows_by_source
    assert tcp.headers_missing == 0

    dns = f.dns
    assert dns.queries == t.dns_queries
    assert dns.responses == t.dns_responses
    assert dns.unparsed == 0
    assert dns.rcodes == t.dns_rcodes
    assert dns.nxdomain == t.nxdomain
    assert dns.servfail == t.servfail
    assert dns.failed == t.nxdomain + t.servfail
    assert {c.name: c.count for c in dns.top_queried} == dict(
        sorted(t.dns_query_names.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    )

    icmp = f.icmp
    assert icmp.unreachable == t.icmp_unreachable
    assert {f"{u.type}/{u.code}": u.count for u in icmp.unreachable_by_code} == t.icmp_unreachable_by_code
    assert {c.name: c.count for c in icmp.unreachable_sources} == t.icmp_unreachable_sources


# the culprit each scenario's headline must name, and the problem kind it must report first
CULPRITS = {
    "synflood": ("syn-flood", [f"{VM}:443", *FLOOD_SOURCES]),
    "retransmissions": ("packet-loss", [f"{VM} → {DB}:5432"]),
    "dns-failures": ("dns-failures", [DNS_SERVER, "api.internal.example"]),
    "unreachable": ("unreachable", [SYSLOG, f"udp {SYSLOG}:514"]),
    "zero-window": ("zero-window", [VM, f"{VM} → {DB}:5432"]),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_findings_match_the_generator(capture: CaptureFactory, scenario: str) -> None:
    gen = capture(scenario)
    f = run(gen)
    assert_matches_truth(f, gen.truth)
    assert 1 <= len(f.notable) <= 6
    for line in f.notable:
        assert re.search(r"\d", line), f"notable line without a number: {line}"
    # the summary document is plain JSON, headline included
    doc = json.loads(json.dumps(f.to_dict()))
    assert doc["ok"] is True
    assert doc["version"] == 2
    assert doc["truncated"] is False
    assert doc["notable"] == f.notable
    assert doc["headline"] == f.headline
    assert doc["packets"] == gen.truth.packets
    assert sum(f.series.syns) == gen.truth.syns
    assert sum(f.series.retransmissions) == gen.truth.retransmissions
    assert sum(f.series.zero_windows) == gen.truth.zero_windows
    assert sum(f.series.dns_failures) == gen.truth.nxdomain + gen.truth.servfail
    assert sum(f.series.icmp_unreachable) == gen.truth.icmp_unreachable


@pytest.mark.parametrize("scenario", sorted(CULPRITS))
def test_headline_names_the_culprit(capture: CaptureFactory, scenario: str) -> None:
    f = run(capture(scenario))
    kind, culprits = CULPRITS[scenario]
    assert f.problems[0].kind == kind
    assert f.headline == f.notable[0]
    for culprit in culprits:
        assert culprit in f.headline, (culprit, f.headline)
    assert not f.headline.startswith("Nothing abnormal")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_problems_come_in_order_of_importance(capture: CaptureFactory, scenario: str) -> None:
    kinds = [p.kind for p in run(capture(scenario)).problems]
    assert kinds == sorted(kinds, key=PROBLEM_KINDS.index)
    assert len(set(kinds)) == len(kinds)


def test_report_headline_puts_the_vm_and_alert_after_the_finding(capture: CaptureFactory) -> None:
    f = run(capture("synflood"))
    line = report_headline(f.headline, vm="vm-web-1", alert="vm-web-cpu", severity="Sev2")
    assert line == f"{f.headline}; vm-web-1, alert vm-web-cpu Sev2"
    assert line.startswith(f"SYN flood towards {VM}:443 from 3 sources")
    assert report_headline("Nothing abnormal: 3 packets", vm="vm-1") == "Nothing abnormal: 3 packets; vm-1"
    assert report_headline("x", alert="rule") == "x; alert rule"
    assert report_headline("x") == "x"


def test_web_is_unremarkable(capture: CaptureFactory) -> None:
    gen = capture("web")
    f = run(gen)
    t = gen.truth
    assert t.retransmissions == 0
    assert t.syns_unanswered == 0
    assert t.icmp_unreachable == 0
    assert t.handshakes > 10
    assert t.dns_queries > 0
    assert t.rsts > 0
    assert f.problems == []
    assert f.headline.startswith(f"Nothing abnormal: {t.packets:,} packets, ")
    assert f.notable == [f.notable[0]]  # only the overview line
    assert f.notable[0].startswith(f"{t.packets:,} packets")
    assert "100% of bytes TCP" in f.notable[0] or "99% of bytes TCP" in f.notable[0]
    # inbound HTTPS: SYN -> ACK is the round trip to the internet clients (8..140 ms), not the VM's
    # sub-millisecond SYN-ACK
    assert f.tcp.handshake_rtt.median_ms is not None
    assert 8 <= f.tcp.handshake_rtt.median_ms <= 140


def test_synflood(capture: CaptureFactory) -> None:
    gen = capture("synflood")
    f = run(gen)
    t = gen.truth
    assert t.syns_unanswered > 300
    assert set(t.unanswered_by_source) == set(FLOOD_SOURCES)
    assert f.tcp.unanswered_targets[0].name == f"{VM}:443"
    top = sorted(t.unanswered_by_source.items(), key=lambda kv: -kv[1])
    assert f.headline == (
        f"SYN flood towards {VM}:443 from 3 sources, {t.syns_unanswered:,} SYNs unanswered, most from "
        + ", ".join(f"{host} ({n:,})" for host, n in top)
    )
    assert [c.name for c in f.problems[0].culprits] == [host for host, _ in top]
    assert f.problems[0].series == "syns"
    states = {c.state for c in f.top_conversations_by_bytes}
    assert "unanswered" not in states  # the flood's one-packet flows are not the big conversations


def test_retransmissions(capture: CaptureFactory) -> None:
    gen = capture("retransmissions")
    f = run(gen)
    t = gen.truth
    assert t.retransmissions > 20
    assert t.retransmissions_by_service == {f"{VM} → {DB}:5432/tcp": t.retransmissions}
    rate = 100 * t.retransmissions / t.tcp_data_packets
    assert f.headline == (
        f"Packet loss: {rate:.1f}% of TCP data segments were retransmitted ({t.retransmissions:,}), "
        f"mostly {VM} → {DB}:5432; retransmitted by {VM} ({t.retransmissions:,})"
    )
    assert f.tcp.retransmissions_by_sender[0].name == VM
    top = f.top_services[0]
    assert (top.client, top.server, top.server_port) == (VM, DB, 5432)
    assert top.retransmissions == t.retransmissions
    # the bulk uploads share a pool of three connections: no single one hogs the bytes
    assert [p.kind for p in f.problems] == ["packet-loss"]
    assert top.share_of_bytes > 0.5
    assert sum(c.retransmissions for c in f.top_conversations_by_bytes) <= t.retransmissions


def test_dns_failures(capture: CaptureFactory) -> None:
    gen = capture("dns-failures")
    f = run(gen)
    t = gen.truth
    assert t.nxdomain > 20
    assert t.servfail > 5
    failed_share = 100 * (t.nxdomain + t.servfail) / t.dns_responses
    top_failed = max(t.dns_failed_names.items(), key=lambda kv: kv[1])[0]
    assert top_failed == "api.internal.example"
    assert f.dns.top_failed[0].name == "api.internal.example (NXDOMAIN)"
    assert f.headline.startswith(
        f"DNS failures from {DNS_SERVER}: {failed_share:.0f}% of answers failed "
        f"({t.nxdomain:,} NXDOMAIN, {t.servfail:,} SERVFAIL), failing names api.internal.example ("
    )
    assert f.dns.servers[0].server == DNS_SERVER
    assert f.dns.servers[0].failures == t.nxdomain + t.servfail
    assert f.dns.servers[0].queries == t.dns_queries
    assert f.dns.failure_rate == pytest.approx((t.nxdomain + t.servfail) / t.dns_responses, abs=1e-4)
    assert f.dns.top_queried[0].name == "api.internal.example"
    assert all(c.client == VM for c in f.top_conversations_by_packets if c.server == DNS_SERVER)


def test_unreachable(capture: CaptureFactory) -> None:
    gen = capture("unreachable", duration_s=8.0)
    f = run(gen)
    t = gen.truth
    assert t.icmp_unreachable > 20
    assert f.icmp.unreachable_by_code[0].meaning == "port unreachable"
    assert f.icmp.unreachable_sources[0].name == SYSLOG
    assert f.icmp.unreachable_targets[0].name == f"udp {SYSLOG}:514"
    assert f"tcp {DEAD_HOST}:22" in {c.name for c in f.icmp.unreachable_targets}
    assert f.headline.startswith(f"ICMP unreachable: {t.icmp_unreachable:,} messages (")
    assert f.headline.endswith(f"port unreachable), most from {SYSLOG} about udp {SYSLOG}:514")
    # refused connections: a SYN answered by a reset names the closed port
    refused = t.rsts_by_source[SYSLOG]
    assert f.tcp.refused == refused
    assert f.tcp.refused_targets[0].name == f"{SYSLOG}:8080"
    kinds = [p.kind for p in f.problems]
    if refused >= 3:
        assert "refused" in kinds
        line = next(x for x in f.notable if x.startswith("Connections refused"))
        assert f"{refused:,} to closed port {SYSLOG}:8080, from {VM}" in line
    # SYNs to the dead host were answered by ICMP host unreachable: not "dropped silently"
    assert "dropped-syns" not in kinds


def test_zero_window(capture: CaptureFactory) -> None:
    gen = capture("zero-window")
    f = run(gen)
    t = gen.truth
    assert t.zero_windows >= 3
    assert f.headline == (
        f"Receiver overwhelmed: {VM} advertised a zero window {t.zero_windows:,} times on {VM} → {DB}:5432 "
        f"({t.zero_windows:,} zero-window advertisements in all)"
    )
    assert f.tcp.retransmissions == 0  # zero-window probes carry no data: not retransmissions


def test_generator_is_deterministic(capture: CaptureFactory) -> None:
    a = capture("web", seed=5, duration_s=1.0)
    again = capture("web", seed=5, duration_s=1.0, fmt="pcap")  # another cache entry, same arguments
    b = capture("web", seed=6, duration_s=1.0)
    assert a.data == again.data
    assert a.data != b.data


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_file_for_a_stopped_capture_spans_its_window(scenario: str) -> None:
    """What the emulator's stop hook writes for a 60 s capture holds 60 s of traffic, cut to the snap length."""
    start = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
    gen = generate_for_capture(
        scenario=scenario, start=start, stop=start + timedelta(seconds=60), bytes_per_packet=96
    )
    f = analyze(io.BytesIO(gen.data))
    assert f.duration_s == pytest.approx(60.0, abs=1.0)
    assert f.start is not None and f.end is not None
    assert datetime.fromisoformat(f.start) - start < timedelta(seconds=1)
    assert datetime.fromisoformat(f.end) < start + timedelta(seconds=60)
    assert f.file.snaplen == 96
    assert f.captured_bytes <= 96 * f.packets
    assert f.captured_bytes < f.bytes
    if scenario in CULPRITS:
        kind, culprits = CULPRITS[scenario]
        assert f.problems[0].kind == kind
        assert culprits[0] in f.headline
    else:
        assert f.headline.startswith("Nothing abnormal")


def test_file_for_a_stopped_capture_honours_limits_and_filters() -> None:
    start = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
    limited = generate_for_capture(
        scenario="synflood",
        start=start,
        stop=start + timedelta(minutes=2),
        bytes_per_packet=54,
        total_bytes_per_session=300_000,
    )
    assert len(limited.data) <= 300_000  # the service stops writing at the session's byte limit
    f = analyze(io.BytesIO(limited.data))
    assert f.file.snaplen == 54
    assert f.duration_s == pytest.approx(120.0, abs=1.0)  # scaled down to fit, still the whole window
    assert f.problems[0].kind == "syn-flood"

    dns_only = generate_for_capture(
        scenario="dns-failures",
        start=start,
        stop=start + timedelta(seconds=30),
        filters=[{"protocol": "UDP", "remoteIPAddress": DNS_SERVER, "remotePort": "53"}],
    )
    f = analyze(io.BytesIO(dns_only.data))
    assert f.packets == f.protocols["udp"].packets == dns_only.truth.packets > 0
    assert {t.host for t in f.top_talkers} == {VM, DNS_SERVER}
    assert f.problems[0].kind == "dns-failures"

    https_in = generate_for_capture(
        scenario="synflood",
        start=start,
        stop=start + timedelta(seconds=30),
        filters=[
            {"protocol": "TCP", "localIPAddress": VM, "localPort": "443"},
            {"protocol": "Any", "remotePort": "5432"},
        ],
    )
    f = analyze(io.BytesIO(https_in.data))
    assert f.protocols["udp"].packets == 0  # no DNS: neither filter lets it in
    assert f.protocols["icmp"].packets == 0
    ports = {c.server_port for c in f.top_conversations_by_packets} | {c.server_port for c in f.top_services}
    assert ports <= {443, 5432}
    assert 5432 in {s.server_port for s in f.top_services}  # the second filter (OR)
    assert f.problems[0].kind == "syn-flood"

    fallback = generate_for_capture(
        scenario=None, start=start, stop=start + timedelta(seconds=5), max_bytes=50_000
    )
    assert fallback.truth.scenario == "web"
