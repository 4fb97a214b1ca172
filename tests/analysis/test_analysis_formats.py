"""File formats and damaged files: pcapng, nanosecond and big-endian pcap, other link types, IPv6,
truncated files, snap-length-limited packets, corrupt files and streams that return short reads."""

from __future__ import annotations

import dataclasses
import io
import random
import struct
from typing import Any

import dpkt
import pytest

from capture.analysis import CaptureReadError, Findings, analyze, analyze_file
from emulator.pcapgen import VM, GeneratedCapture

from .conftest import CaptureFactory
from .test_analysis_scenarios import assert_matches_truth


def run(data: bytes, **kwargs: Any) -> Findings:
    return analyze(io.BytesIO(data), **kwargs)


def records(data: bytes) -> list[tuple[int, int, bytes, int]]:
    """(sec, usec, frame, wire length) of a little-endian microsecond pcap."""
    out = []
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, cap, wire = struct.unpack_from("<IIII", data, pos)
        out.append((sec, usec, data[pos + 16 : pos + 16 + cap], wire))
        pos += 16 + cap
    return out


@pytest.mark.parametrize(
    ("options", "fmt", "order", "resolution"),
    [
        ({"fmt": "pcapng"}, "pcapng", "little", "us"),
        ({"fmt": "pcapng", "big_endian": True, "nanosecond": True}, "pcapng", "big", "ns"),
        ({"nanosecond": True}, "pcap", "little", "ns"),
        ({"big_endian": True}, "pcap", "big", "us"),
        ({"big_endian": True, "nanosecond": True}, "pcap", "big", "ns"),
    ],
)
def test_format_variants(
    capture: CaptureFactory, options: dict[str, Any], fmt: str, order: str, resolution: str
) -> None:
    gen = capture("retransmissions", duration_s=2.0, **options)
    f = run(gen.data)
    assert (f.file.format, f.file.byte_order, f.file.timestamp_resolution) == (fmt, order, resolution)
    assert f.file.link_type == 1
    assert_matches_truth(f, gen.truth)
    assert f.start is not None
    assert f.start.startswith("2024-05-14T09:30:00")  # absolute time survives every variant


def test_nanosecond_timestamps_keep_nanoseconds(capture: CaptureFactory) -> None:
    micro = run(capture("web", duration_s=2.0).data)
    nano = run(capture("web", duration_s=2.0, nanosecond=True).data)
    assert micro.packets == nano.packets
    assert (
        micro.tcp.handshake_rtt.median_ms != nano.tcp.handshake_rtt.median_ms
    )  # finer, not the same rounding
    assert micro.tcp.handshake_rtt.median_ms == pytest.approx(nano.tcp.handshake_rtt.median_ms, abs=1e-3)


def test_modified_pcap_and_raw_ip_link_type(capture: CaptureFactory) -> None:
    gen = capture("dns-failures", duration_s=2.0)
    recs = records(gen.data)
    # Kuznetzov's "modified" pcap: 24-byte records (ifindex, protocol, pkt_type, pad)
    modified = struct.pack("<IHHiIII", dpkt.pcap.MODPCAP_MAGIC, 2, 4, 0, 0, 262144, 1) + b"".join(
        struct.pack("<IIII", s, u, len(fr), w) + bytes(8) + fr for s, u, fr, w in recs
    )
    assert_matches_truth(run(modified), dataclasses.replace(gen.truth, file_bytes=len(modified)))
    # raw IP (LINKTYPE_RAW 101): the same frames without their Ethernet header
    raw = struct.pack("<IHHiIII", dpkt.pcap.TCPDUMP_MAGIC, 2, 4, 0, 0, 262144, 101) + b"".join(
        struct.pack("<IIII", s, u, len(fr) - 14, w - 14) + fr[14:] for s, u, fr, w in recs
    )
    f = run(raw)
    t = gen.truth
    assert f.file.link_type == 101
    assert (f.packets, f.bytes) == (t.packets, t.bytes - 14 * t.packets)
    assert (f.dns.nxdomain, f.dns.servfail, f.tcp.syns) == (t.nxdomain, t.servfail, t.syns)


def test_vlan_tagged_frames_are_decoded(capture: CaptureFactory) -> None:
    gen = capture("dns-failures", duration_s=2.0)
    tagged = gen.data[:24] + b"".join(
        struct.pack("<IIII", s, u, len(fr) + 4, w + 4) + fr[:12] + b"\x81\x00\x00\x64" + fr[12:]
        for s, u, fr, w in records(gen.data)
    )
    f = run(tagged)
    assert (f.dns.nxdomain, f.dns.servfail, f.tcp.handshakes) == (
        gen.truth.nxdomain,
        gen.truth.servfail,
        gen.truth.handshakes,
    )


def _ipv6_capture() -> bytes:
    """A hand-made IPv6 exchange: a handshake, a retransmitted segment, a DNS NXDOMAIN, an ICMPv6 error."""
    c, s, r = (
        bytes.fromhex(h)
        for h in (
            "20010db8000000000000000000000004",
            "20010db8000000000000000000000009",
            "20010db8000000000000000000000001",
        )
    )
    frames: list[tuple[float, bytes]] = []

    def eth(ip6: dpkt.ip6.IP6) -> bytes:
        return bytes(
            dpkt.ethernet.Ethernet(
                src=b"\x00\x0d\x3a\x00\x00\x04",
                dst=b"\x12\x34\x56\x78\x9a\xbc",
                type=dpkt.ethernet.ETH_TYPE_IP6,
                data=ip6,
            )
        )

    def tcp(
        ts: float, src: bytes, dst: bytes, sport: int, dport: int, seq: int, flags: int, data: bytes = b""
    ) -> None:
        seg = dpkt.tcp.TCP(sport=sport, dport=dport, seq=seq, flags=flags, win=500, data=data)
        frames.append(
            (ts, eth(dpkt.ip6.IP6(src=src, dst=dst, nxt=6, hlim=64, plen=len(bytes(seg)), data=seg)))
        )

    tcp(0.000, c, s, 50000, 443, 1000, dpkt.tcp.TH_SYN)
    tcp(0.025, s, c, 443, 50000, 9000, dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK)
    tcp(0.026, c, s, 50000, 443, 1001, dpkt.tcp.TH_ACK)
    tcp(0.030, c, s, 50000, 443, 1001, dpkt.tcp.TH_ACK, b"x" * 100)
    tcp(0.330, c, s, 50000, 443, 1001, dpkt.tcp.TH_ACK, b"x" * 100)  # sent again
    query = dpkt.dns.DNS(id=7, qd=[dpkt.dns.DNS.Q(name="nope.internal.example")])
    answer = dpkt.dns.DNS(id=7, qr=dpkt.dns.DNS_R, rcode=dpkt.dns.DNS_RCODE_NXDOMAIN, qd=query.qd)
    for ts, src, dst, sport, dport, msg in ((0.4, c, r, 40000, 53, query), (0.41, r, c, 53, 40000, answer)):
        udp = dpkt.udp.UDP(sport=sport, dport=dport, data=bytes(msg))
        udp.ulen = len(bytes(udp))
        frames.append((ts, eth(dpkt.ip6.IP6(src=src, dst=dst, nxt=17, hlim=64, plen=udp.ulen, data=udp))))
    # ICMPv6 port unreachable from r, quoting a UDP datagram to r:514
    quoted = bytes(
        dpkt.ip6.IP6(src=c, dst=r, nxt=17, hlim=64, plen=8, data=dpkt.udp.UDP(sport=40001, dport=514, ulen=8))
    )
    icmp = dpkt.icmp6.ICMP6(type=1, code=4, data=b"\0\0\0\0" + quoted)
    frames.append((0.5, eth(dpkt.ip6.IP6(src=r, dst=c, nxt=58, hlim=64, plen=len(bytes(icmp)), data=icmp))))
    out = io.BytesIO()
    writer = dpkt.pcap.Writer(out)
    for ts, frame in frames:
        writer.writepkt(frame, ts=1_700_000_000 + ts)
    return out.getvalue()


def test_ipv6() -> None:
    f = run(_ipv6_capture())
    assert f.packets == 8
    assert f.tcp.handshakes == 1
    assert f.tcp.handshake_rtt.median_ms == pytest.approx(26.0, abs=0.01)  # SYN -> the client's ACK
    assert f.tcp.retransmissions == 1
    assert f.dns.nxdomain == 1
    assert f.dns.top_failed[0].name == "nope.internal.example (NXDOMAIN)"
    assert f.icmp.unreachable == 1
    assert f.icmp.unreachable_by_code[0].meaning == "port unreachable (ICMPv6)"
    assert f.icmp.unreachable_targets[0].name == "udp [2001:db8::1]:514"
    conv = f.top_conversations_by_bytes[0]
    assert (conv.client, conv.client_port, conv.server, conv.server_port) == (
        "2001:db8::4",
        50000,
        "2001:db8::9",
        443,
    )
    assert conv.retransmissions == 1


def test_file_cut_mid_packet_is_truncated_not_an_error(capture: CaptureFactory) -> None:
    gen = capture("web", duration_s=2.0)
    recs = records(gen.data)
    # cut inside the last record's frame, then inside the last record header
    for cut in (len(gen.data) - 10, len(gen.data) - len(recs[-1][2]) - 8):
        f = run(gen.data[:cut])
        assert f.truncated
        assert f.file.truncated
        assert f.packets == len(recs) - 1
        assert f.bytes == gen.truth.bytes - recs[-1][3]
        assert f.file.truncated_bytes == cut - (len(gen.data) - 16 - len(recs[-1][2]))
        assert f.to_dict()["truncated"] is True
        assert any("ends early" in line for line in f.notable)


def test_pcapng_cut_mid_block(capture: CaptureFactory) -> None:
    gen = capture("web", duration_s=2.0, fmt="pcapng")
    f = run(gen.data[:-7])
    assert f.truncated
    assert f.packets == gen.truth.packets - 1


@pytest.mark.parametrize("snaplen", [34, 54])
def test_snap_length_limited(capture: CaptureFactory, snaplen: int) -> None:
    gen = capture("retransmissions", duration_s=2.0, snaplen=snaplen)
    full = capture("retransmissions", duration_s=2.0)
    t = gen.truth
    f = run(gen.data)
    assert f.file.snaplen == snaplen
    assert not f.truncated
    # counts from the record headers' original lengths, not from what was captured
    assert (f.packets, f.bytes) == (t.packets, t.bytes) == (full.truth.packets, full.truth.bytes)
    assert f.captured_bytes == t.captured_bytes < t.bytes
    assert {k: v.packets for k, v in f.protocols.items()} == {k: v["packets"] for k, v in t.protocols.items()}
    assert [(x.host, x.bytes) for x in f.top_talkers] == [
        (x.host, x.bytes) for x in run(full.data).top_talkers
    ]
    dns_packets = 2 * t.dns_queries
    assert f.dns.packets == (0 if snaplen == 34 else dns_packets)
    assert f.dns.unparsed == f.dns.packets  # the DNS message itself was cut off
    if snaplen == 34:
        # only Ethernet + IPv4: no ports, no TCP flags; conversations are host pairs
        assert f.flows.packets_without_ports == t.packets
        assert f.tcp.headers_missing == t.protocols["tcp"]["packets"]
        assert f.tcp.syns == f.tcp.retransmissions == 0
        assert all(c.server_port is None for c in f.top_conversations_by_bytes)
        assert f.notable[0].startswith("Packets were cut to 34 bytes")
    else:
        # the fixed TCP header is there: flags, sequence numbers and (from the IP length) payload sizes
        assert f.flows.packets_without_ports == 0
        assert (f.tcp.syns, f.tcp.handshakes, f.tcp.retransmissions, f.tcp.rsts) == (
            t.syns,
            t.handshakes,
            t.retransmissions,
            t.rsts,
        )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"\x00\x01", "too short"),
        (b"GIF89a" + bytes(100), "not a pcap or pcapng file"),
        (struct.pack("<I", dpkt.pcap.TCPDUMP_MAGIC) + bytes(10), "truncated pcap file header"),
        (b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 28) + b"XXXX" + bytes(16), "bad byte-order magic"),
        (b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 7) + b"\x4d\x3c\x2b\x1a" + bytes(16), "bad section header"),
    ],
)
def test_corrupt_files_raise(data: bytes, reason: str) -> None:
    with pytest.raises(CaptureReadError, match=reason) as info:
        run(data)
    assert info.value.reason == str(info.value)


def test_garbage_after_a_good_start_is_reported_not_raised(capture: CaptureFactory) -> None:
    gen = capture("web", duration_s=2.0)
    recs = records(gen.data)
    keep = 24 + sum(16 + len(fr) for _, _, fr, _ in recs[:50])
    garbage = struct.pack("<IIII", 1, 2, 0x7FFFFFFF, 0x7FFFFFFF) + random.Random(1).randbytes(5000)
    f = run(gen.data[:keep] + garbage)
    assert f.packets == 50
    assert f.truncated
    assert f.file.problem is not None
    assert "implausible record length" in f.file.problem


def test_empty_capture() -> None:
    header = struct.pack("<IHHiIII", dpkt.pcap.TCPDUMP_MAGIC, 2, 4, 0, 0, 65535, 1)
    f = run(header)
    assert (f.packets, f.bytes, f.duration_s, f.start, f.series.packets) == (0, 0, 0.0, None, [])
    assert f.notable == ["The capture holds no packets"]


class ShortReads(io.RawIOBase):
    """A stream that hands out data in small, irregular pieces (as a network download may)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.rng = random.Random(3)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self.rng.randrange(1, 5000), len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_short_reads(capture: CaptureFactory, fmt: str) -> None:
    gen: GeneratedCapture = capture("unreachable", duration_s=2.0, fmt=fmt)
    f = analyze(ShortReads(gen.data))  # type: ignore[arg-type]  # RawIOBase is a binary stream
    assert_matches_truth(f, gen.truth)


def test_analyze_file(capture: CaptureFactory, tmp_path: Any) -> None:
    gen = capture("synflood", duration_s=2.0)
    path = tmp_path / "capture.cap"
    path.write_bytes(gen.data)
    f = analyze_file(path)
    assert f.packets == gen.truth.packets
    assert f.capture_host == VM


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_damaged_files_never_crash(capture: CaptureFactory, fmt: str) -> None:
    """Random byte damage and cuts: findings, a truncation note, or CaptureReadError; nothing else."""
    base = capture("unreachable", duration_s=0.5, fmt=fmt, snaplen=80).data
    rng = random.Random(fmt)
    outcomes = {"ok": 0, "truncated": 0, "unreadable": 0}
    for _ in range(80):
        data = bytearray(base)
        for _ in range(rng.choice((1, 10, 200))):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        try:
            f = run(bytes(data), max_flows=rng.choice((4, 10_000)))
        except CaptureReadError:
            outcomes["unreadable"] += 1
            continue
        f.to_dict()
        outcomes["truncated" if f.truncated else "ok"] += 1
    assert outcomes["ok"] > 0
    assert outcomes["truncated"] > 0
