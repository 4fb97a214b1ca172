"""Each generated scenario is analysed to exactly the numbers the generator knows it wrote."""

from __future__ import annotations

import io
import json
import re
import statistics
from datetime import UTC, datetime, timedelta

import pytest

from capture.analysis import Findings, analyze
from emulator.pcapgen import (
    DB,
    DNS_SERVER,
    FLOOD_SOURCES,
    SCENARIOS,
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


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_findings_match_the_generator(capture: CaptureFactory, scenario: str) -> None:
    gen = capture(scenario)
    f = run(gen)
    assert_matches_truth(f, gen.truth)
    assert 1 <= len(f.notable) <= 6
    for line in f.notable:
        assert re.search(r"\d", line), f"notable line without a number: {line}"
    # the summary document is plain JSON
    doc = json.loads(json.dumps(f.to_dict()))
    assert doc["ok"] is True
    assert doc["version"] == 1
    assert doc["truncated"] is False
    assert doc["notable"] == f.notable
    assert doc["packets"] == gen.truth.packets


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
    assert f.notable == [f.notable[0]]  # only the overview line
    assert f.notable[0].startswith(f"{t.packets:,} packets")
    assert "100% of bytes TCP" in f.notable[0] or "99% of bytes TCP" in f.notable[0]
    # inbound HTTPS: the VM answers SYNs in well under a millisecond
    assert f.tcp.handshake_rtt.median_ms is not None
    assert f.tcp.handshake_rtt.median_ms < 1.5


def test_synflood(capture: CaptureFactory) -> None:
    gen = capture("synflood")
    f = run(gen)
    t = gen.truth
    assert t.syns_unanswered > 300
    assert set(t.unanswered_by_source) == set(FLOOD_SOURCES)
    assert f.tcp.unanswered_targets[0].name == f"{VM}:443"
    assert f.notable[0] == (
        f"{t.syns_unanswered:,} SYNs from 3 sources got no answer (possible SYN flood towards {VM}:443)"
    )
    states = {c.state for c in f.top_conversations_by_bytes}
    assert "unanswered" not in states  # the flood's one-packet flows are not the big conversations


def test_retransmissions(capture: CaptureFactory) -> None:
    gen = capture("retransmissions")
    f = run(gen)
    t = gen.truth
    assert t.retransmissions > 20
    assert t.retransmissions_by_service == {f"{VM} → {DB}:5432/tcp": t.retransmissions}
    rate = 100 * t.retransmissions / t.tcp_data_packets
    assert f.notable[0] == (
        f"{rate:.1f}% of TCP data segments were retransmissions ({t.retransmissions:,}), "
        f"mostly {VM} → {DB}:5432"
    )
    top = f.top_services[0]
    assert (top.client, top.server, top.server_port) == (VM, DB, 5432)
    assert top.retransmissions == t.retransmissions
    dominant = [line for line in f.notable if "of bytes:" in line]
    assert dominant
    assert dominant[0].startswith(f"{100 * top.bytes / f.bytes:.0f}% of bytes: {VM} → {DB}:5432, ")
    assert dominant[0].endswith("retransmitted")
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
    assert f.notable[0] == (
        f"{failed_share:.0f}% of DNS answers failed ({t.nxdomain:,} NXDOMAIN, {t.servfail:,} SERVFAIL), "
        "top name: api.internal.example"
    )
    assert f.dns.failure_rate == pytest.approx((t.nxdomain + t.servfail) / t.dns_responses, abs=1e-4)
    assert f.dns.top_queried[0].name == "api.internal.example"
    assert {(c.server, c.server_port, c.proto) for c in f.top_conversations_by_packets} >= set()
    assert all(c.client == VM for c in f.top_conversations_by_packets if c.server == DNS_SERVER)


def test_unreachable(capture: CaptureFactory) -> None:
    gen = capture("unreachable")
    f = run(gen)
    t = gen.truth
    assert t.icmp_unreachable > 20
    assert f.icmp.unreachable_by_code[0].meaning == "port unreachable"
    assert f.icmp.unreachable_sources[0].name == "10.0.2.5"
    assert f.icmp.unreachable_targets[0].name == "udp 10.0.2.5:514"
    assert "tcp 10.0.3.7:22" in {c.name for c in f.icmp.unreachable_targets}
    line = next(x for x in f.notable if "ICMP unreachable" in x)
    assert line.startswith(f"{t.icmp_unreachable:,} ICMP unreachable (")
    assert "top source 10.0.2.5, top target udp 10.0.2.5:514" in line
    # refused connections: SYN answered by RST is not "unanswered"
    assert f.tcp.rsts_by_source[0].name == "10.0.2.5" or t.rsts_by_source["10.0.2.5"] > 0


def test_zero_window(capture: CaptureFactory) -> None:
    gen = capture("zero-window")
    f = run(gen)
    t = gen.truth
    assert t.zero_windows >= 3
    assert f.notable[0] == (
        f"{t.zero_windows:,} zero-window advertisements, 100% from {VM}, mostly on {VM} → {DB}:5432 "
        "(a receiver could not keep up)"
    )
    assert f.tcp.retransmissions == 0  # zero-window probes carry no data: not retransmissions


def test_generator_is_deterministic(capture: CaptureFactory) -> None:
    a = capture("web", seed=5, duration_s=1.0)
    again = capture("web", seed=5, duration_s=1.0, fmt="pcap")  # another cache entry, same arguments
    b = capture("web", seed=6, duration_s=1.0)
    assert a.data == again.data
    assert a.data != b.data


def test_file_for_a_stopped_capture() -> None:
    """What the emulator's stop hook writes: the window, snap length and size limits are honoured."""
    start = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)
    gen = generate_for_capture(
        scenario="synflood",
        start=start,
        stop=start + timedelta(minutes=2),
        bytes_per_packet=54,
        total_bytes_per_session=300_000,
    )
    f = analyze(io.BytesIO(gen.data))
    assert gen.truth.scenario == "synflood"
    assert 250_000 <= len(gen.data) <= 300_000 + 70_000  # stops once the limit is reached
    assert f.file.snaplen == 54
    assert f.start is not None
    assert f.start.startswith("2024-05-14T09:3")
    assert f.tcp.syns_unanswered == gen.truth.syns_unanswered > 0
    fallback = generate_for_capture(
        scenario=None, start=start, stop=start + timedelta(seconds=5), max_bytes=50_000
    )
    assert fallback.truth.scenario == "web"
