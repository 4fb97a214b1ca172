"""What did we catch? A first-pass analysis of a finished capture file, in one streaming pass.

``analyze(stream)`` reads a libpcap (``.cap``: micro- or nanosecond, either byte order, Kuznetzov's variant)
or pcapng file from any binary file-like object, in 1 MiB chunks, never holding the file: memory depends on
``max_flows`` and fixed caps, not on the file size. Frames are decoded with ``struct`` at fixed offsets
(Ethernet incl. VLAN tags, Linux cooked, raw IP and BSD loopback; IPv4 and IPv6; TCP, UDP, ICMP), which is
several times faster than building dpkt objects per packet; dpkt parses DNS messages (port 53 only) and the
rare pcapng interface blocks. Byte counts are frame lengths on the wire (the record's original length), so a
capture limited by ``bytesToCapturePerPacket`` still counts right; what a short snapshot hides (ports, TCP
flags, DNS) is skipped and counted. A file cut mid-packet is analysed up to the cut and reported
``truncated``; a file that is not a capture at all raises ``CaptureReadError``.

Bounded state: at most ``max_flows`` conversations are tracked; when the table is full the least recently
active quarter is retired (their totals go to the aggregates, the biggest are kept for the top lists) and
the number retired is reported. Per-host, per-name and per-source counters keep their heaviest entries
when they hit their caps (dropped entries are counted). Handshake round-trip times keep every sample up to
20,000, then a uniform reservoir. The packets-per-second series has at most 120 buckets: the bucket width
grows (10 ms, 20 ms, 100 ms, ... 1 s, 2 s, 10 s, 20 s, 1 min, ...) as the capture gets longer, over 480
fine buckets that are merged into 60 to 120 at the end.
"""

from __future__ import annotations

import heapq
import math
import random
import socket
import statistics
import struct
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import dpkt

__all__ = [
    "SCHEMA_VERSION",
    "CaptureReadError",
    "Findings",
    "analyze",
    "analyze_file",
]

SCHEMA_VERSION = 1
MAX_BUCKETS = 120
_FINE_BUCKETS = 4 * MAX_BUCKETS  # the pass keeps a finer series and merges it down at the end
TOP_N = 10
MAX_NOTABLE = 6
_CHUNK = 1 << 20
_MAX_RECORD = 1 << 18  # 256 KiB: larger records are corruption, as in Wireshark
_MAX_BLOCK = 16 << 20
_RTT_SAMPLES = 20_000
_MASK32 = 0xFFFFFFFF
_HALF32 = 0x80000000
# bucket widths in units of 10 ms; each divides the next, so buckets merge exactly
_LADDER = (1, 2, 10, 20, 100, 200, 1000, 2000, 6000, 12000, 60000, 120000, 360000, 720000)

_MAGIC_PCAP = {
    struct.pack("<I", dpkt.pcap.TCPDUMP_MAGIC): ("<", False, 16),
    struct.pack(">I", dpkt.pcap.TCPDUMP_MAGIC): (">", False, 16),
    struct.pack("<I", dpkt.pcap.TCPDUMP_MAGIC_NANO): ("<", True, 16),
    struct.pack(">I", dpkt.pcap.TCPDUMP_MAGIC_NANO): (">", True, 16),
    struct.pack("<I", dpkt.pcap.MODPCAP_MAGIC): ("<", False, 24),
    struct.pack(">I", dpkt.pcap.MODPCAP_MAGIC): (">", False, 24),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D

_LT_NULL = dpkt.pcap.DLT_NULL
_LT_ETHERNET = dpkt.pcap.DLT_EN10MB
# raw IP: LINKTYPE_RAW (101) in files, the platform DLT_RAW values (12, 14), LINKTYPE_IPV4/IPV6 (228, 229)
_LT_RAW = frozenset((101, dpkt.pcap.DLT_RAW, 12, 14, 228, 229))
_LT_SLL = dpkt.pcap.DLT_LINUX_SLL
_LT_SLL2 = 276
_SUPPORTED_LINKS = frozenset((_LT_NULL, _LT_ETHERNET, _LT_SLL, _LT_SLL2)) | _LT_RAW

_IP4 = struct.Struct("!BxHxxHxBxxII")  # ver/ihl, total length, flags/fragment, protocol, src, dst
_IP6 = struct.Struct("!4xHBx16s16s")  # payload length, next header, src, dst
_TCP = struct.Struct("!HHIIHH")  # ports, seq, ack, offset/flags, window
_PORTS = struct.Struct("!HH")
_UDP = struct.Struct("!HHH")

_PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}
_DNS_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
_UNREACH_CODES = {
    (3, 0): "network unreachable",
    (3, 1): "host unreachable",
    (3, 2): "protocol unreachable",
    (3, 3): "port unreachable",
    (3, 4): "fragmentation needed",
    (3, 9): "network prohibited",
    (3, 10): "host prohibited",
    (3, 13): "administratively prohibited",
    (1, 0): "no route (ICMPv6)",
    (1, 1): "administratively prohibited (ICMPv6)",
    (1, 3): "address unreachable (ICMPv6)",
    (1, 4): "port unreachable (ICMPv6)",
}


class CaptureReadError(Exception):
    """The file is not a readable capture (bad magic, unreadable header). ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        """The error form of a summary document (``<capture>.summary.json`` for an unreadable file)."""
        return {"version": SCHEMA_VERSION, "ok": False, "error": self.reason}


# --------------------------------------------------------------------------------------------------------
# Findings: a typed, JSON-serialisable result
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Count:
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class FileInfo:
    format: str  # "pcap" | "pcapng"
    byte_order: str  # "little" | "big"
    timestamp_resolution: str  # "us" | "ns" | other pcapng resolutions, e.g. "1/1024 s"
    link_type: int
    snaplen: int
    bytes_read: int
    truncated: bool  # the file ends inside a packet record (or a record is implausible): analysed up to there
    truncated_bytes: int
    problem: str | None  # what stopped the read early, if anything


@dataclass(frozen=True, slots=True)
class Traffic:
    packets: int
    bytes: int


@dataclass(frozen=True, slots=True)
class Series:
    bucket_s: float
    packets: list[int]
    bytes: list[int]
    packets_per_s: list[float]


@dataclass(frozen=True, slots=True)
class Talker:
    host: str
    bytes: int
    packets: int
    bytes_sent: int
    bytes_received: int
    packets_sent: int
    packets_received: int
    share_of_bytes: float


@dataclass(frozen=True, slots=True)
class Conversation:
    proto: str
    client: str
    client_port: int | None
    server: str
    server_port: int | None
    packets: int
    bytes: int
    packets_to_server: int
    bytes_to_server: int
    packets_to_client: int
    bytes_to_client: int
    start_s: float
    duration_s: float
    retransmissions: int
    state: str  # tcp: unanswered | refused | reset | closed | open; "" otherwise

    @property
    def label(self) -> str:
        return _endpoint_label(self.client, None, self.server, self.server_port, self.proto)


@dataclass(frozen=True, slots=True)
class Service:
    """Conversations aggregated over the client's ports: ``client → server:port/proto``."""

    proto: str
    client: str
    server: str
    server_port: int | None
    conversations: int
    packets: int
    bytes: int
    data_packets: int
    retransmissions: int
    zero_windows: int
    share_of_bytes: float

    @property
    def label(self) -> str:
        return _endpoint_label(self.client, None, self.server, self.server_port, self.proto)


@dataclass(frozen=True, slots=True)
class FlowTable:
    conversations: int  # conversations seen (a conversation retired and seen again counts twice)
    max_flows: int
    peak_tracked: int
    evicted: int
    packets_without_ports: int  # L4 header not captured (snap length) or not TCP/UDP


@dataclass(frozen=True, slots=True)
class Rtt:
    samples: int
    median_ms: float | None
    p95_ms: float | None
    max_ms: float | None


@dataclass(frozen=True, slots=True)
class TcpHealth:
    packets: int
    data_packets: int
    syns: int
    syns_unanswered: int
    unanswered_connections: int
    unanswered_by_source: list[Count]
    unanswered_targets: list[Count]
    handshakes: int
    handshake_rtt: Rtt
    rsts: int
    rsts_by_source: list[Count]
    retransmissions: int
    retransmitted_bytes: int
    retransmission_rate: float  # of data segments
    zero_windows: int
    zero_windows_by_source: list[Count]
    headers_missing: int  # TCP packets whose header was cut by the snap length


@dataclass(frozen=True, slots=True)
class DnsStats:
    packets: int
    queries: int
    responses: int
    unparsed: int
    rcodes: dict[str, int]
    failed: int
    failure_rate: float
    nxdomain: int
    servfail: int
    top_queried: list[Count]
    top_failed: list[Count]  # name (rcode)


@dataclass(frozen=True, slots=True)
class Unreachable:
    type: int
    code: int
    meaning: str
    count: int


@dataclass(frozen=True, slots=True)
class IcmpStats:
    packets: int
    unreachable: int
    unreachable_by_code: list[Unreachable]
    unreachable_sources: list[Count]
    unreachable_targets: list[Count]


@dataclass(frozen=True, slots=True)
class Findings:
    """The analysis of one capture; ``to_dict()`` is the ``<capture>.summary.json`` document."""

    file: FileInfo
    start: str | None  # ISO 8601 UTC of the first packet
    end: str | None
    duration_s: float
    packets: int
    bytes: int
    captured_bytes: int
    capture_host: str | None  # the address in >= 90 % of packets (the VM the capture ran on), if any
    series: Series
    protocols: dict[str, Traffic]
    top_talkers: list[Talker]
    top_conversations_by_bytes: list[Conversation]
    top_conversations_by_packets: list[Conversation]
    top_services: list[Service]
    flows: FlowTable
    tcp: TcpHealth
    dns: DnsStats
    icmp: IcmpStats
    notable: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.file.truncated

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        return {"version": SCHEMA_VERSION, "ok": True, "truncated": self.file.truncated, **body}


# --------------------------------------------------------------------------------------------------------
# Bounded counting helpers
# --------------------------------------------------------------------------------------------------------


class _TopCounter:
    """A counter keeping its heaviest keys: over ``cap`` keys the lighter half is dropped (and counted)."""

    __slots__ = ("cap", "counts", "dropped_count", "dropped_keys")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.counts: dict[Any, int] = {}
        self.dropped_keys = 0
        self.dropped_count = 0

    def add(self, key: Any, n: int = 1) -> None:
        counts = self.counts
        value = counts.get(key)
        if value is None:
            if len(counts) >= self.cap:
                self._prune()
            counts[key] = n
        else:
            counts[key] = value + n

    def _prune(self) -> None:
        keep = sorted(self.counts.items(), key=lambda kv: kv[1], reverse=True)[: self.cap // 2]
        self.dropped_keys += len(self.counts) - len(keep)
        self.dropped_count += sum(self.counts.values()) - sum(v for _, v in keep)
        self.counts = dict(keep)

    def top(self, n: int) -> list[tuple[Any, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]

    def total(self) -> int:
        return sum(self.counts.values()) + self.dropped_count


class _Flow:
    __slots__ = (
        "a",
        "ap",
        "b",
        "bp",
        "by_ab",
        "by_ba",
        "client_a",
        "data_pk",
        "first",
        "flags",
        "hi_ab",
        "hi_ba",
        "last",
        "order",
        "pk_ab",
        "pk_ba",
        "proto",
        "rtx",
        "rtx_by",
        "syn_ts",
        "synack",
        "syns",
        "zwin",
    )

    def __init__(self, key: tuple[Any, Any, int, int, int], ts: float, forward: bool, order: int) -> None:
        self.a, self.b, self.ap, self.bp, self.proto = key
        self.pk_ab = self.pk_ba = self.by_ab = self.by_ba = 0
        self.first = self.last = ts
        self.client_a = forward  # provisional: the first sender; a SYN sender or the higher port overrides
        self.hi_ab = self.hi_ba = -1
        self.syns = 0
        self.syn_ts = -1.0
        self.synack = False
        self.flags = 0  # TCP flags seen (OR), bit 8 = SYN-ACK, bit 9 = RST from the responder
        self.data_pk = self.rtx = self.rtx_by = self.zwin = 0
        self.order = order


@dataclass
class _ServiceAgg:
    conversations: int = 0
    packets: int = 0
    bytes: int = 0
    data_packets: int = 0
    retransmissions: int = 0
    zero_windows: int = 0


class _State:
    """Everything the pass accumulates; bounded by construction."""

    def __init__(self, max_flows: int) -> None:
        self.max_flows = max_flows
        self.flows: dict[tuple[Any, Any, int, int, int], _Flow] = {}
        self.flow_order = 0
        self.peak = 0
        self.evicted = 0
        self.conversations = 0
        self.top_by_bytes: list[tuple[int, int, _Flow]] = []
        self.top_by_packets: list[tuple[int, int, _Flow]] = []
        self.services: dict[tuple[Any, Any, int, int], _ServiceAgg] = {}
        self.service_cap = max(256, min(max_flows, 20_000))
        self.services_dropped = 0
        self.syns_unanswered = 0
        self.unanswered_connections = 0
        self.unanswered_by_source = _TopCounter(4096)
        self.unanswered_targets = _TopCounter(4096)
        self.rsts_by_source = _TopCounter(4096)
        self.zwin_by_source = _TopCounter(4096)
        self.rtts: list[float] = []
        self.rtt_seen = 0
        self.rtt_rng = random.Random(0)  # noqa: S311 - reservoir sampling, not security
        self.rtt_max = 0.0
        self.dns_names = _TopCounter(4096)
        self.dns_failed = _TopCounter(4096)
        self.dns_rcodes: dict[str, int] = {}
        self.icmp_codes: dict[tuple[int, int], int] = {}
        self.icmp_sources = _TopCounter(4096)
        self.icmp_targets = _TopCounter(4096)
        # per host [bytes sent, bytes received, packets sent, packets received], from retired flows
        self.talkers: dict[Any, list[int]] = {}
        self.talker_cap = max(1024, min(4 * max_flows, 65_536))
        self.talkers_dropped = 0
        # per protocol class (6 tcp, 17 udp, 1 icmp/icmpv6, 0 other): packets and bytes, from retired flows
        self.proto_pk = {6: 0, 17: 0, 1: 0, 0: 0}
        self.proto_by = {6: 0, 17: 0, 1: 0, 0: 0}

    # flows ---------------------------------------------------------------------------------------------
    def evict(self) -> None:
        """Retire the least recently active quarter of the table."""
        flows = self.flows
        count = max(1, len(flows) // 4)
        oldest = heapq.nsmallest(count, flows.items(), key=lambda kv: (kv[1].last, kv[1].order))
        for key, flow in oldest:
            del flows[key]
            self.retire(flow)
        self.evicted += len(oldest)

    def retire(self, f: _Flow) -> None:
        # who is the client: the SYN sender, else the side with the higher (ephemeral) port, else first sender
        client_a = f.client_a
        if not f.syns and f.ap >= 0 and f.ap != f.bp:
            client_a = f.ap > f.bp
        f.client_a = client_a
        responder_packets = f.pk_ba if client_a else f.pk_ab
        client, server = (f.a, f.b) if client_a else (f.b, f.a)
        sport = f.bp if client_a else f.ap
        if f.syns and responder_packets == 0:
            self.syns_unanswered += f.syns
            self.unanswered_connections += 1
            self.unanswered_by_source.add(client, f.syns)
            self.unanswered_targets.add((server, sport), f.syns)
        packets = f.pk_ab + f.pk_ba
        size = f.by_ab + f.by_ba
        # the flow's totals feed the protocol mix and the talkers: every IP packet is in exactly one flow,
        # and every flow is retired exactly once (evicted or at the end), so these stay exact
        proto = f.proto
        pclass = proto if proto in (6, 17, 1) else 1 if proto == 58 else 0
        self.proto_pk[pclass] += packets
        self.proto_by[pclass] += size
        talkers = self.talkers
        for host, sent, received, pk_sent, pk_received in (
            (f.a, f.by_ab, f.by_ba, f.pk_ab, f.pk_ba),
            (f.b, f.by_ba, f.by_ab, f.pk_ba, f.pk_ab),
        ):
            t = talkers.get(host)
            if t is None:
                if len(talkers) >= self.talker_cap:
                    self.talkers_dropped += _prune_talkers(talkers)
                t = talkers[host] = [0, 0, 0, 0]
            t[0] += sent
            t[1] += received
            t[2] += pk_sent
            t[3] += pk_received
        for heap, value in ((self.top_by_bytes, size), (self.top_by_packets, packets)):
            item = (value, -f.order, f)
            if len(heap) < TOP_N:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
        key = (client, server, sport, f.proto)
        agg = self.services.get(key)
        if agg is None:
            if len(self.services) >= self.service_cap:
                keep = sorted(self.services.items(), key=lambda kv: kv[1].bytes, reverse=True)
                keep = keep[: self.service_cap // 2]
                self.services_dropped += len(self.services) - len(keep)
                self.services = dict(keep)
            agg = self.services[key] = _ServiceAgg()
        agg.conversations += 1
        agg.packets += packets
        agg.bytes += size
        agg.data_packets += f.data_pk
        agg.retransmissions += f.rtx
        agg.zero_windows += f.zwin

    def rtt(self, value: float) -> None:
        self.rtt_seen += 1
        if value > self.rtt_max:
            self.rtt_max = value
        if len(self.rtts) < _RTT_SAMPLES:
            self.rtts.append(value)
        else:
            j = self.rtt_rng.randrange(self.rtt_seen)
            if j < _RTT_SAMPLES:
                self.rtts[j] = value


# --------------------------------------------------------------------------------------------------------
# Readers: (relative ts, buffer, offset, captured length, wire length, link type) per record
# --------------------------------------------------------------------------------------------------------

Record = tuple[float, bytes, int, int, int, int]


@dataclass
class _ReadInfo:
    format: str = "pcap"
    byte_order: str = "little"
    resolution: str = "us"
    link_type: int = _LT_ETHERNET
    snaplen: int = 0
    base_sec: int = -1  # epoch second of the first packet: timestamps are relative to it (keeps precision)
    bytes_read: int = 0
    truncated: bool = False
    truncated_bytes: int = 0
    problem: str | None = None


def _read(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads (raw streams may return less)."""
    data = stream.read(size)
    if not data or len(data) >= size:
        return data or b""
    parts = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _open(stream: BinaryIO) -> tuple[_ReadInfo, Iterator[Record]]:
    head = _read(stream, 24)
    if not head:
        raise CaptureReadError("empty file")
    if len(head) < 4:
        raise CaptureReadError("not a capture file: too short")
    magic = head[:4]
    info = _ReadInfo()
    if magic in _MAGIC_PCAP:
        endian, nano, rec_len = _MAGIC_PCAP[magic]
        if len(head) < 24:
            raise CaptureReadError("truncated pcap file header")
        major, _minor, _zone, _sigfigs, snaplen, link = struct.unpack_from(endian + "HHiIII", head, 4)
        if major not in (2, 1):
            raise CaptureReadError(f"unsupported pcap version {major}")
        info.byte_order = "little" if endian == "<" else "big"
        info.resolution = "ns" if nano else "us"
        info.snaplen = snaplen
        info.link_type = link & 0xFFFF
        info.bytes_read = 24
        return info, _pcap_records(stream, info, endian, nano, rec_len)
    if struct.unpack("<I", magic)[0] == _PCAPNG_SHB:
        info.format = "pcapng"
        return info, _pcapng_records(stream, head, info)
    raise CaptureReadError(f"not a pcap or pcapng file (magic {magic.hex()})")


def _pcap_records(
    stream: BinaryIO, info: _ReadInfo, endian: str, nano: bool, rec_len: int
) -> Iterator[Record]:
    unpack = struct.Struct(endian + "IIII").unpack_from
    scale = 1e-9 if nano else 1e-6
    link = info.link_type
    limit = max(_MAX_RECORD, info.snaplen)
    buf = _read(stream, _CHUNK)
    info.bytes_read += len(buf)
    pos = 0
    base = -1
    while True:
        n = len(buf)
        while pos + rec_len <= n:
            sec, frac, cap, wire = unpack(buf, pos)
            start = pos + rec_len
            end = start + cap
            if end > n:
                if cap > limit:
                    info.problem = f"implausible record length {cap} at byte {info.bytes_read - n + pos}"
                    info.truncated = True
                    info.truncated_bytes = n - pos
                    return
                break
            if base < 0:
                base = info.base_sec = sec
            yield sec - base + frac * scale, buf, start, cap, wire if wire >= cap else cap, link
            pos = end
        data = _read(stream, _CHUNK)
        if not data:
            if pos < n:
                info.truncated = True
                info.truncated_bytes = n - pos
                info.problem = "the file ends inside a packet record"
            return
        info.bytes_read += len(data)
        buf = buf[pos:] + data
        pos = 0


def _tsresol(raw: bytes) -> tuple[int, str]:
    value = raw[0]
    if value & 0x80:
        return 2 ** (value & 0x7F), f"1/{2 ** (value & 0x7F)} s"
    power = value & 0x7F
    return 10**power, {6: "us", 9: "ns", 3: "ms", 0: "s"}.get(power, f"1e-{power} s")


def _pcapng_records(stream: BinaryIO, head: bytes, info: _ReadInfo) -> Iterator[Record]:
    buf = head + _read(stream, _CHUNK)
    info.bytes_read = len(buf)
    pos = 0
    endian = "<"
    # per interface: (link type, ticks per second, offset seconds, snaplen)
    interfaces: list[tuple[int, int, int, int]] = []
    base = -1
    seen_shb = False
    last_ts = 0.0
    unknown_iface = 0
    while True:
        n = len(buf)
        while pos + 12 <= n:
            btype = struct.unpack_from(endian + "I", buf, pos)[0]
            if btype == _PCAPNG_SHB:
                if pos + 12 > n:
                    break
                bom = buf[pos + 8 : pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    if not seen_shb:
                        raise CaptureReadError("not a pcapng file: bad byte-order magic")
                    info.problem = f"bad pcapng section header at byte {info.bytes_read - n + pos}"
                    info.truncated, info.truncated_bytes = True, n - pos
                    return
                if not seen_shb:
                    info.byte_order = "little" if endian == "<" else "big"
                blen = struct.unpack_from(endian + "I", buf, pos + 4)[0]
            else:
                blen = struct.unpack_from(endian + "I", buf, pos + 4)[0]
            if blen < 12 or blen % 4 or blen > _MAX_BLOCK:
                if not seen_shb:
                    raise CaptureReadError("not a pcapng file: bad section header length")
                info.problem = f"implausible pcapng block length {blen} at byte {info.bytes_read - n + pos}"
                info.truncated, info.truncated_bytes = True, n - pos
                return
            if pos + blen > n:
                break
            body = pos + 8
            if btype == 6:  # enhanced packet block
                iface, th, tl, cap, wire = struct.unpack_from(endian + "IIIII", buf, body)
                if iface >= len(interfaces) or 28 + cap > blen:
                    unknown_iface += 1
                else:
                    link, per_s, offset, _snap = interfaces[iface]
                    sec, frac = divmod((th << 32) | tl, per_s)
                    sec += offset
                    if base < 0:
                        base = info.base_sec = sec
                    last_ts = sec - base + frac / per_s
                    yield last_ts, buf, body + 20, cap, wire if wire >= cap else cap, link
            elif btype == 3:  # simple packet block: no timestamp, no interface id (interface 0)
                wire = struct.unpack_from(endian + "I", buf, body)[0]
                if interfaces:
                    link, _per_s, _offset, snap = interfaces[0]
                    cap = min(wire, blen - 16, snap or wire)
                    yield last_ts, buf, body + 4, cap, wire, link
            elif btype == 2:  # obsolete packet block
                iface, _drops, th, tl, cap, wire = struct.unpack_from(endian + "HHIIII", buf, body)
                if iface < len(interfaces) and 28 + cap <= blen:
                    link, per_s, offset, _snap = interfaces[iface]
                    sec, frac = divmod((th << 32) | tl, per_s)
                    sec += offset
                    if base < 0:
                        base = info.base_sec = sec
                    last_ts = sec - base + frac / per_s
                    yield last_ts, buf, body + 20, cap, wire if wire >= cap else cap, link
            elif btype == 1:  # interface description block
                interfaces.append(_parse_idb(buf[pos : pos + blen], endian, info, first=not interfaces))
            elif btype == _PCAPNG_SHB:
                seen_shb = True
                interfaces = []  # a new section starts afresh
            pos += blen
        data = _read(stream, _CHUNK)
        if not data:
            if pos < n:
                info.truncated = True
                info.truncated_bytes = n - pos
                info.problem = "the file ends inside a pcapng block"
            if unknown_iface:
                info.problem = (info.problem + "; " if info.problem else "") + (
                    f"{unknown_iface} packets referenced an unknown interface"
                )
            if not seen_shb:
                raise CaptureReadError("truncated pcapng section header")
            return
        info.bytes_read += len(data)
        buf = buf[pos:] + data
        pos = 0


def _parse_idb(block: bytes, endian: str, info: _ReadInfo, *, first: bool) -> tuple[int, int, int, int]:
    link, snaplen = struct.unpack_from(endian + "H2xI", block, 8)
    per_s, offset, resolution = 1_000_000, 0, "us"
    try:
        idb = (
            dpkt.pcapng.InterfaceDescriptionBlockLE(block)
            if endian == "<"
            else dpkt.pcapng.InterfaceDescriptionBlock(block)
        )
        for opt in idb.opts:
            if opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL and opt.data:
                per_s, resolution = _tsresol(bytes(opt.data))
            elif opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSOFFSET and len(opt.data) >= 8:
                offset = struct.unpack(endian + "q", bytes(opt.data[:8]))[0]
    except (dpkt.Error, struct.error, ValueError, IndexError):
        pass  # options unreadable: the defaults (microseconds, no offset) apply
    if first:
        info.link_type, info.snaplen, info.resolution = link, snaplen, resolution
    return link, per_s, offset, snaplen


# --------------------------------------------------------------------------------------------------------
# The pass
# --------------------------------------------------------------------------------------------------------


def analyze_file(path: str | Path, *, max_flows: int = 10_000) -> Findings:
    """``analyze`` on a local file."""
    with open(path, "rb", buffering=0) as fh:
        return analyze(fh, max_flows=max_flows)


def analyze(stream: BinaryIO, *, max_flows: int = 10_000) -> Findings:
    """Analyse a pcap/pcapng stream in one pass; raises ``CaptureReadError`` if it is not a capture."""
    if max_flows < 4:
        raise ValueError("max_flows must be at least 4")
    info, records = _open(stream)
    st = _State(max_flows)
    flows = st.flows
    flows_get = flows.get
    ip4 = _IP4.unpack_from
    ip6 = _IP6.unpack_from
    tcp_u = _TCP.unpack_from
    ports_u = _PORTS.unpack_from
    udp_u = _UDP.unpack_from

    packets = total = captured = 0
    first = math.inf
    last = -math.inf
    other_pk = other_by = 0  # frames that are not IP (or whose IP header was not captured)
    no_ports = 0
    snap_cut = 0
    tcp_pk = tcp_data = syns = rsts = rtx = rtx_by = zwin = tcp_nohdr = handshakes = 0
    dns_pk = dns_q = dns_r = dns_bad = 0
    icmp_unreach = 0
    # the series: fixed 120 buckets, width grows along _LADDER
    s_level = 0
    s_width = _LADDER[0] / 100.0
    s_inv = 1.0 / s_width
    s_pk = [0] * _FINE_BUCKETS
    s_by = [0] * _FINE_BUCKETS
    s_t0 = 0.0
    s_hi = 0

    for ts, buf, off, cap, wire, link in records:
        if packets == 0:
            s_t0 = ts
        packets += 1
        total += wire
        captured += cap
        if cap < wire:
            snap_cut += 1
        if ts < first:
            first = ts
        if ts > last:
            last = ts
        idx = int((ts - s_t0) * s_inv)
        if idx >= _FINE_BUCKETS:
            while idx >= _FINE_BUCKETS:
                s_level += 1
                new_width = _LADDER[s_level] if s_level < len(_LADDER) else _LADDER[-1] * 2 ** (s_level - 13)
                old_width = (
                    _LADDER[s_level - 1] if s_level - 1 < len(_LADDER) else _LADDER[-1] * 2 ** (s_level - 14)
                )
                k = new_width // old_width
                s_pk = [sum(s_pk[i : i + k]) for i in range(0, _FINE_BUCKETS, k)]
                s_by = [sum(s_by[i : i + k]) for i in range(0, _FINE_BUCKETS, k)]
                s_pk += [0] * (_FINE_BUCKETS - len(s_pk))
                s_by += [0] * (_FINE_BUCKETS - len(s_by))
                s_hi //= k
                s_width = new_width / 100.0
                s_inv = 1.0 / s_width
                idx = int((ts - s_t0) * s_inv)
        elif idx < 0:
            idx = 0
        if idx > s_hi:
            s_hi = idx
        s_pk[idx] += 1
        s_by[idx] += wire

        # ---- link layer -> (l3 offset, ethertype)
        end = off + cap
        if link == 1:
            if cap < 14:
                other_pk += 1
                other_by += wire
                continue
            et = (buf[off + 12] << 8) | buf[off + 13]
            l3 = off + 14
            while et == 0x8100 or et == 0x88A8:
                if l3 + 4 > end:
                    et = 0
                    break
                et = (buf[l3 + 2] << 8) | buf[l3 + 3]
                l3 += 4
        else:
            l3, et = _link(link, buf, off, cap)

        # ---- network layer
        if et == 0x0800:
            if end - l3 < 20:
                other_pk += 1
                other_by += wire
                continue
            vihl, iplen, frag, proto, src, dst = ip4(buf, l3)
            ihl = (vihl & 15) << 2
            l4 = l3 + ihl
            payload_len = iplen - ihl if iplen else wire - (l4 - off)
            has_l4 = not (frag & 0x1FFF)
        elif et == 0x86DD:
            if end - l3 < 40:
                other_pk += 1
                other_by += wire
                continue
            payload_len, proto, src, dst = ip6(buf, l3)
            l4 = l3 + 40
            has_l4 = True
            if proto in (0, 43, 44, 60, 51):
                proto, l4, payload_len, has_l4 = _ipv6_ext(buf, l4, end, proto, payload_len)
        else:
            other_pk += 1
            other_by += wire
            continue

        # ---- transport: ports when captured
        avail = end - l4 if has_l4 else 0
        tcp_full = False
        sport = dport = -1
        if proto == 6:
            tcp_pk += 1
            if avail >= 16:
                sport, dport, seq, _ack, offflags, win = tcp_u(buf, l4)
                tcp_full = True
            else:
                tcp_nohdr += 1
                if avail >= 4:
                    sport, dport = ports_u(buf, l4)
        elif proto == 17 and avail >= 4:
            sport, dport = ports_u(buf, l4)
        if sport < 0:
            no_ports += 1

        # ---- the conversation
        if src < dst or (src == dst and sport <= dport):
            key = (src, dst, sport, dport, proto)
            fwd = True
        else:
            key = (dst, src, dport, sport, proto)
            fwd = False
        f = flows_get(key)
        if f is None:
            if len(flows) >= max_flows:
                st.evict()
            st.flow_order += 1
            st.conversations += 1
            f = flows[key] = _Flow(key, ts, fwd, st.flow_order)
            if len(flows) > st.peak:
                st.peak = len(flows)
        if fwd:
            f.pk_ab += 1
            f.by_ab += wire
        else:
            f.pk_ba += 1
            f.by_ba += wire
        f.last = ts

        if tcp_full:
            flags = offflags & 0x3F
            if flags & 0x07:  # SYN, FIN or RST
                if flags & 0x02:
                    if flags & 0x10:
                        # SYN-ACK: the handshake RTT from the (last) SYN of the other side
                        if not f.synack and f.syns and f.client_a != fwd:
                            f.synack = True
                            handshakes += 1
                            st.rtt((ts - f.syn_ts) * 1000.0)
                    else:
                        syns += 1
                        f.syns += 1
                        f.syn_ts = ts
                        f.client_a = fwd
                if flags & 0x04:
                    rsts += 1
                    st.rsts_by_source.add(src)
                f.flags |= flags
            elif win == 0:
                zwin += 1
                f.zwin += 1
                st.zwin_by_source.add(src)
            plen = payload_len - ((offflags >> 12) << 2)
            if plen > 0:
                tcp_data += 1
                f.data_pk += 1
                e = (seq + plen) & _MASK32
                h = f.hi_ab if fwd else f.hi_ba
                if h < 0:
                    h = e
                else:
                    d = (e - h) & _MASK32
                    if d == 0 or d >= _HALF32:
                        # ends at or before the highest byte already seen: sent again (keep-alives excepted)
                        if not (plen == 1 and d == 0):
                            rtx += 1
                            rtx_by += wire
                            f.rtx += 1
                            f.rtx_by += wire
                    else:
                        h = e
                if fwd:
                    f.hi_ab = h
                else:
                    f.hi_ba = h
        elif proto == 17:
            if sport == 53 or dport == 53:
                dns_pk += 1
                ulen = udp_u(buf, l4)[2] if avail >= 6 else 0
                start = l4 + 8
                if ulen < 8 or start + ulen - 8 > end:
                    dns_bad += 1
                else:
                    kind = _dns(st, buf[start : start + ulen - 8])
                    if kind == 1:
                        dns_q += 1
                    elif kind == 2:
                        dns_r += 1
                    else:
                        dns_bad += 1
        elif (proto == 1 or proto == 58) and avail >= 4:
            itype = buf[l4]
            if (itype == 3 and proto == 1) or (itype == 1 and proto == 58):
                icmp_unreach += 1
                _unreachable(st, buf, l4, end, src, proto, itype, buf[l4 + 1])

    # -------------------------------------------------------------------------------------------------
    for f in list(flows.values()):
        st.retire(f)
    return _findings(
        st,
        info,
        packets=packets,
        total=total,
        captured=captured,
        first=first,
        last=last,
        other=(other_pk, other_by),
        no_ports=no_ports,
        snap_cut=snap_cut,
        tcp=(tcp_pk, tcp_data, syns, rsts, rtx, rtx_by, zwin, tcp_nohdr, handshakes),
        dns=(dns_pk, dns_q, dns_r, dns_bad),
        icmp_unreach=icmp_unreach,
        series=(s_width, s_pk[: s_hi + 1] if packets else [], s_by[: s_hi + 1] if packets else []),
    )


def _link(link: int, buf: bytes, off: int, cap: int) -> tuple[int, int]:
    """(l3 offset, ethertype) for the less common link types; ethertype 0 when unknown."""
    if link in _LT_RAW:
        if cap < 1:
            return off, 0
        version = buf[off] >> 4
        return off, 0x0800 if version == 4 else 0x86DD if version == 6 else 0
    if link == _LT_SLL:
        return (off + 16, (buf[off + 14] << 8) | buf[off + 15]) if cap >= 16 else (off, 0)
    if link == _LT_SLL2:
        return (off + 20, (buf[off] << 8) | buf[off + 1]) if cap >= 20 else (off, 0)
    if link == _LT_NULL:
        if cap < 4:
            return off, 0
        family = struct.unpack_from("<I", buf, off)[0]
        if family > 0xFFFF:  # written in the other byte order
            family = struct.unpack_from(">I", buf, off)[0]
        return off + 4, 0x0800 if family == 2 else 0x86DD if family in (10, 24, 28, 30) else 0
    return off, 0


def _ipv6_ext(buf: bytes, l4: int, end: int, proto: int, payload_len: int) -> tuple[int, int, int, bool]:
    """Skip IPv6 extension headers: (protocol, l4 offset, payload length, has l4 header)."""
    for _ in range(8):
        if proto not in (0, 43, 44, 60, 51) or l4 + 8 > end:
            break
        if proto == 44:
            nxt = buf[l4]
            frag_offset = ((buf[l4 + 2] << 8) | buf[l4 + 3]) >> 3
            l4 += 8
            payload_len -= 8
            proto = nxt
            if frag_offset:
                return proto, l4, payload_len, False
            continue
        size = (buf[l4 + 1] + 2) * 4 if proto == 51 else (buf[l4 + 1] + 1) * 8
        proto = buf[l4]
        l4 += size
        payload_len -= size
    return proto, l4, payload_len, proto not in (0, 43, 44, 60, 51)


def _prune_talkers(talkers: dict[Any, list[int]]) -> int:
    keep = sorted(talkers.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)[: len(talkers) // 2]
    dropped = len(talkers) - len(keep)
    talkers.clear()
    talkers.update(keep)
    return dropped


def _dns(st: _State, payload: bytes) -> int:
    """Parse one DNS message: 1 query, 2 response, 0 unparsable."""
    try:
        msg = dpkt.dns.DNS(payload)
    except (dpkt.Error, struct.error, ValueError, IndexError, UnicodeDecodeError):
        return 0
    name = msg.qd[0].name.lower().rstrip(".") if msg.qd else "(no question)"
    if msg.qr == dpkt.dns.DNS_Q:
        st.dns_names.add(name)
        return 1
    rcode = _DNS_RCODES.get(msg.rcode, f"RCODE{msg.rcode}")
    st.dns_rcodes[rcode] = st.dns_rcodes.get(rcode, 0) + 1
    if rcode != "NOERROR":
        st.dns_failed.add((name, rcode))
    return 2


def _unreachable(
    st: _State, buf: bytes, l4: int, end: int, src: Any, proto: int, itype: int, code: int
) -> None:
    st.icmp_codes[(itype, code)] = st.icmp_codes.get((itype, code), 0) + 1
    st.icmp_sources.add(src)
    inner = l4 + 8
    target = "?"
    if proto == 1 and inner + 20 <= end:
        vihl, _len, _frag, iproto, _isrc, idst = _IP4.unpack_from(buf, inner)
        ip = _fmt_ip(idst)
        at = inner + ((vihl & 15) << 2)
        target = _target(buf, at, end, iproto, ip)
    elif proto == 58 and inner + 40 <= end:
        _plen, iproto, _isrc, idst = _IP6.unpack_from(buf, inner)
        target = _target(buf, inner + 40, end, iproto, _fmt_ip(idst))
    st.icmp_targets.add(target)


def _target(buf: bytes, at: int, end: int, proto: int, ip: str) -> str:
    name = _PROTO_NAMES.get(proto, f"proto {proto}")
    if proto in (6, 17) and at + 4 <= end:
        return f"{name} {_hostport(ip, _PORTS.unpack_from(buf, at)[1])}"
    return f"{name} {ip}"


# --------------------------------------------------------------------------------------------------------
# Results and the notable lines
# --------------------------------------------------------------------------------------------------------


def _fmt_ip(value: Any) -> str:
    if isinstance(value, int):
        return socket.inet_ntoa(value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, bytes(value))


def _hostport(host: str, port: int | None) -> str:
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _endpoint_label(client: str, cport: int | None, server: str, sport: int | None, proto: str) -> str:
    suffix = "" if proto == "tcp" else f" ({proto})"
    return f"{_hostport(client, cport)} → {_hostport(server, sport)}{suffix}"


def _port(value: int) -> int | None:
    return value if value >= 0 else None


def _proto_name(proto: int) -> str:
    return _PROTO_NAMES.get(proto, f"ip-proto-{proto}")


def _conversation(f: _Flow, first: float) -> Conversation:
    client_a = f.client_a
    if client_a:
        client, cport, server, sport = f.a, f.ap, f.b, f.bp
        pk_up, by_up, pk_down, by_down = f.pk_ab, f.by_ab, f.pk_ba, f.by_ba
    else:
        client, cport, server, sport = f.b, f.bp, f.a, f.ap
        pk_up, by_up, pk_down, by_down = f.pk_ba, f.by_ba, f.pk_ab, f.by_ab
    state = ""
    if f.proto == 6:
        if f.syns and pk_down == 0:
            state = "unanswered"
        elif f.syns and not f.synack and f.flags & 0x04:
            state = "refused"
        elif f.flags & 0x04:
            state = "reset"
        elif f.flags & 0x01:
            state = "closed"
        else:
            state = "open"
    return Conversation(
        proto=_proto_name(f.proto),
        client=_fmt_ip(client),
        client_port=_port(cport),
        server=_fmt_ip(server),
        server_port=_port(sport),
        packets=f.pk_ab + f.pk_ba,
        bytes=f.by_ab + f.by_ba,
        packets_to_server=pk_up,
        bytes_to_server=by_up,
        packets_to_client=pk_down,
        bytes_to_client=by_down,
        start_s=round(f.first - first, 6),
        duration_s=round(f.last - f.first, 6),
        retransmissions=f.rtx,
        state=state,
    )


def _counts(counter: _TopCounter, fmt: Any = str, n: int = TOP_N) -> list[Count]:
    return [Count(fmt(k), v) for k, v in counter.top(n)]


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _iso(base_sec: int, rel: float) -> str | None:
    """ISO 8601 UTC, or None for a timestamp no calendar holds (a corrupt record)."""
    try:
        return datetime.fromtimestamp(base_sec + rel, tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return None


def _findings(
    st: _State,
    info: _ReadInfo,
    *,
    packets: int,
    total: int,
    captured: int,
    first: float,
    last: float,
    other: tuple[int, int],
    no_ports: int,
    snap_cut: int,
    tcp: tuple[int, ...],
    dns: tuple[int, int, int, int],
    icmp_unreach: int,
    series: tuple[float, list[int], list[int]],
) -> Findings:
    tcp_pk, tcp_data, syns, rsts, rtx, rtx_by, zwin, tcp_nohdr, handshakes = tcp
    dns_pk, dns_q, dns_r, dns_bad = dns
    if not packets:
        first = last = 0.0
    duration = max(0.0, last - first)
    width, s_pk, s_by = series
    talkers = st.talkers
    proto_pk = dict(st.proto_pk)
    proto_by = dict(st.proto_by)
    proto_pk[0] += other[0]
    proto_by[0] += other[1]
    k = max(1, math.ceil(len(s_pk) / MAX_BUCKETS))
    if k > 1:
        s_pk = [sum(s_pk[i : i + k]) for i in range(0, len(s_pk), k)]
        s_by = [sum(s_by[i : i + k]) for i in range(0, len(s_by), k)]
        width = round(width * k, 6)

    ranked = sorted(talkers.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), _fmt_ip(kv[0])))
    top_talkers = [
        Talker(
            host=_fmt_ip(host),
            bytes=v[0] + v[1],
            packets=v[2] + v[3],
            bytes_sent=v[0],
            bytes_received=v[1],
            packets_sent=v[2],
            packets_received=v[3],
            share_of_bytes=round((v[0] + v[1]) / total, 4) if total else 0.0,
        )
        for host, v in ranked[:TOP_N]
    ]
    capture_host = None
    if ranked and packets:
        host, v = max(talkers.items(), key=lambda kv: kv[1][2] + kv[1][3])
        if v[2] + v[3] >= 0.9 * packets:
            capture_host = _fmt_ip(host)

    by_bytes = [_conversation(f, first) for _, _, f in sorted(st.top_by_bytes, reverse=True)]
    by_packets = [_conversation(f, first) for _, _, f in sorted(st.top_by_packets, reverse=True)]
    services = [
        Service(
            proto=_proto_name(proto),
            client=_fmt_ip(client),
            server=_fmt_ip(server),
            server_port=_port(sport),
            conversations=agg.conversations,
            packets=agg.packets,
            bytes=agg.bytes,
            data_packets=agg.data_packets,
            retransmissions=agg.retransmissions,
            zero_windows=agg.zero_windows,
            share_of_bytes=round(agg.bytes / total, 4) if total else 0.0,
        )
        for (client, server, sport, proto), agg in sorted(
            st.services.items(), key=lambda kv: (-kv[1].bytes, -kv[1].packets, str(kv[0]))
        )[:TOP_N]
    ]

    rtts = sorted(st.rtts)
    rtt = Rtt(
        samples=st.rtt_seen,
        median_ms=round(statistics.median(rtts), 6) if rtts else None,
        p95_ms=round(_percentile(rtts, 0.95), 6) if rtts else None,
        max_ms=round(st.rtt_max, 6) if rtts else None,
    )

    def hostport(key: Any) -> str:
        host, port = key
        return _hostport(_fmt_ip(host), _port(port))

    tcp_health = TcpHealth(
        packets=tcp_pk,
        data_packets=tcp_data,
        syns=syns,
        syns_unanswered=st.syns_unanswered,
        unanswered_connections=st.unanswered_connections,
        unanswered_by_source=_counts(st.unanswered_by_source, _fmt_ip),
        unanswered_targets=_counts(st.unanswered_targets, hostport),
        handshakes=handshakes,
        handshake_rtt=rtt,
        rsts=rsts,
        rsts_by_source=_counts(st.rsts_by_source, _fmt_ip),
        retransmissions=rtx,
        retransmitted_bytes=rtx_by,
        retransmission_rate=round(rtx / tcp_data, 4) if tcp_data else 0.0,
        zero_windows=zwin,
        zero_windows_by_source=_counts(st.zwin_by_source, _fmt_ip),
        headers_missing=tcp_nohdr,
    )
    rcodes = dict(sorted(st.dns_rcodes.items(), key=lambda kv: -kv[1]))
    failed = sum(v for k, v in rcodes.items() if k != "NOERROR")
    dns_stats = DnsStats(
        packets=dns_pk,
        queries=dns_q,
        responses=dns_r,
        unparsed=dns_bad,
        rcodes=rcodes,
        failed=failed,
        failure_rate=round(failed / dns_r, 4) if dns_r else 0.0,
        nxdomain=rcodes.get("NXDOMAIN", 0),
        servfail=rcodes.get("SERVFAIL", 0),
        top_queried=_counts(st.dns_names),
        top_failed=_counts(st.dns_failed, lambda k: f"{k[0]} ({k[1]})"),
    )
    icmp_stats = IcmpStats(
        packets=proto_pk[1],
        unreachable=icmp_unreach,
        unreachable_by_code=[
            Unreachable(t, c, _UNREACH_CODES.get((t, c), f"type {t} code {c}"), n)
            for (t, c), n in sorted(st.icmp_codes.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        unreachable_sources=_counts(st.icmp_sources, _fmt_ip),
        unreachable_targets=_counts(st.icmp_targets),
    )
    base = info.base_sec if info.base_sec >= 0 else 0
    findings = Findings(
        file=FileInfo(
            format=info.format,
            byte_order=info.byte_order,
            timestamp_resolution=info.resolution,
            link_type=info.link_type,
            snaplen=info.snaplen,
            bytes_read=info.bytes_read,
            truncated=info.truncated,
            truncated_bytes=info.truncated_bytes,
            problem=info.problem,
        ),
        start=_iso(base, first) if packets else None,
        end=_iso(base, last) if packets else None,
        duration_s=round(duration, 6),
        packets=packets,
        bytes=total,
        captured_bytes=captured,
        capture_host=capture_host,
        series=Series(
            bucket_s=width,
            packets=s_pk,
            bytes=s_by,
            packets_per_s=[round(n / width, 1) for n in s_pk],
        ),
        protocols={
            name: Traffic(proto_pk[k], proto_by[k])
            for name, k in (("tcp", 6), ("udp", 17), ("icmp", 1), ("other", 0))
        },
        top_talkers=top_talkers,
        top_conversations_by_bytes=by_bytes,
        top_conversations_by_packets=by_packets,
        top_services=services,
        flows=FlowTable(
            conversations=st.conversations,
            max_flows=st.max_flows,
            peak_tracked=st.peak,
            evicted=st.evicted,
            packets_without_ports=no_ports,
        ),
        tcp=tcp_health,
        dns=dns_stats,
        icmp=icmp_stats,
    )

    def worst(attr: str) -> str | None:
        key, agg = max(st.services.items(), key=lambda kv: getattr(kv[1], attr), default=(None, None))
        if key is None or agg is None or not getattr(agg, attr):
            return None
        client, server, sport, proto = key
        return _endpoint_label(_fmt_ip(client), None, _fmt_ip(server), _port(sport), _proto_name(proto))

    notable = _notable(
        findings,
        snap_cut=snap_cut,
        talkers_dropped=st.talkers_dropped,
        worst_rtx=worst("retransmissions"),
        worst_zwin=worst("zero_windows"),
    )
    findings.notable.extend(notable)
    return findings


def _n(value: int) -> str:
    return f"{value:,}"


def _pct(part: float, whole: float) -> str:
    if not whole:
        return "0%"
    share = 100.0 * part / whole
    if share >= 10 or share == 0:
        return f"{share:.0f}%"
    return f"{share:.1f}%" if share >= 0.1 else "<0.1%"


def _size(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def _plural(n: int, word: str) -> str:
    return f"{_n(n)} {word}{'' if n == 1 else 's'}"


def _notable(
    f: Findings, *, snap_cut: int, talkers_dropped: int, worst_rtx: str | None, worst_zwin: str | None
) -> list[str]:
    """At most six lines a person reads first, most important first; each carries its number."""
    lines: list[tuple[int, str]] = []
    tcp, dns, icmp = f.tcp, f.dns, f.icmp

    if f.packets and f.file.link_type not in _SUPPORTED_LINKS:
        lines.append(
            (
                96,
                f"Link type {f.file.link_type} is not decoded: only packet and byte counts "
                f"({_plural(f.packets, 'packet')})",
            )
        )
    elif f.packets and f.flows.packets_without_ports >= 0.5 * f.packets and snap_cut:
        lines.append(
            (
                95,
                f"Packets were cut to {f.file.snaplen} bytes: ports, TCP and DNS details were unavailable "
                f"for {_pct(f.flows.packets_without_ports, f.packets)} of packets",
            )
        )
    if tcp.syns_unanswered >= 10:
        sources = tcp.unanswered_by_source
        target = tcp.unanswered_targets[0] if tcp.unanswered_targets else None
        n_sources = len(sources) + (1 if len(sources) == TOP_N else 0)
        who = f"{_n(n_sources)}{'+' if len(sources) == TOP_N else ''} source{'s' if n_sources != 1 else ''}"
        text = f"{_plural(tcp.syns_unanswered, 'SYN')} from {who} got no answer"
        if target and tcp.syns_unanswered >= 100 and target.count >= 0.8 * tcp.syns_unanswered:
            text += f" (possible SYN flood towards {target.name})"
        elif target:
            text += f" (top target {target.name}: {_n(target.count)})"
        lines.append((100 if tcp.syns_unanswered >= 100 else 60, text))
    if tcp.retransmissions >= 10 and tcp.retransmission_rate >= 0.01:
        text = (
            f"{_pct(tcp.retransmissions, tcp.data_packets)} of TCP data segments were retransmissions "
            f"({_n(tcp.retransmissions)})"
        )
        if worst_rtx:
            text += f", mostly {worst_rtx}"
        lines.append((90, text))
    if dns.failed >= 5 and dns.failure_rate >= 0.05:
        kinds = ", ".join(f"{_n(v)} {k}" for k, v in dns.rcodes.items() if k != "NOERROR")
        top = dns.top_failed[0].name.rsplit(" (", 1)[0] if dns.top_failed else "?"
        lines.append(
            (80, f"{_pct(dns.failed, dns.responses)} of DNS answers failed ({kinds}), top name: {top}")
        )
    if tcp.zero_windows >= 3:
        src = tcp.zero_windows_by_source[0] if tcp.zero_windows_by_source else None
        text = f"{_plural(tcp.zero_windows, 'zero-window advertisement')}"
        if src:
            text += f", {_pct(src.count, tcp.zero_windows)} from {src.name}"
        if worst_zwin:
            text += f", mostly on {worst_zwin}"
        lines.append((75, text + " (a receiver could not keep up)"))
    if icmp.unreachable >= 5:
        code = icmp.unreachable_by_code[0]
        src = icmp.unreachable_sources[0] if icmp.unreachable_sources else None
        target = icmp.unreachable_targets[0] if icmp.unreachable_targets else None
        text = (
            f"{_n(icmp.unreachable)} ICMP unreachable ({_pct(code.count, icmp.unreachable)} {code.meaning})"
        )
        if src:
            text += f", top source {src.name}"
        if target:
            text += f", top target {target.name}"
        lines.append((70, text))
    if f.top_services and f.bytes:
        lead = f.top_services[0]
        if (lead.share_of_bytes >= 0.4 and lead.server != f.capture_host) or lead.share_of_bytes >= 0.6:
            text = f"{_pct(lead.bytes, f.bytes)} of bytes: {lead.label}"
            if lead.proto == "tcp" and lead.data_packets:
                text += f", {_pct(lead.retransmissions, lead.data_packets)} retransmitted"
            lines.append((65 if lead.retransmissions else 45, text))
    tcp_conversations = tcp.handshakes + tcp.unanswered_connections
    if tcp.rsts >= 10 and tcp.rsts >= 0.25 * max(1, tcp_conversations):
        src = tcp.rsts_by_source[0] if tcp.rsts_by_source else None
        text = f"{_plural(tcp.rsts, 'TCP reset')}"
        if src:
            text += f", {_pct(src.count, tcp.rsts)} from {src.name}"
        lines.append((40, text))
    rtt = tcp.handshake_rtt
    if rtt.samples >= 10 and rtt.p95_ms is not None and rtt.p95_ms >= 200:
        lines.append(
            (
                30,
                f"TCP handshake round trip p95 {rtt.p95_ms:,.0f} ms (median {rtt.median_ms:,.1f} ms, "
                f"{_plural(rtt.samples, 'handshake')})",
            )
        )
    if f.file.truncated:
        lines.append(
            (
                20,
                f"The file ends early ({f.file.problem}); {_size(f.file.truncated_bytes)} at the end "
                "were not analysed",
            )
        )
    if f.flows.evicted:
        lines.append(
            (
                10,
                f"{_plural(f.flows.evicted, 'conversation')} were retired from a full flow table "
                f"(max {_n(f.flows.max_flows)}); per-conversation numbers are partial",
            )
        )
    if talkers_dropped:
        lines.append((9, f"{_plural(talkers_dropped, 'light host')} were dropped from the talker table"))
    # the overview, last: what the capture holds at all
    if f.packets:
        rate = f.packets / f.duration_s if f.duration_s > 0 else 0.0
        tcp_share = _pct(f.protocols["tcp"].bytes, f.bytes)
        peers = [t for t in f.top_talkers if t.host != f.capture_host]
        text = (
            f"{_plural(f.packets, 'packet')}, {_size(f.bytes)} in {f.duration_s:,.1f} s "
            f"({rate:,.0f} packets/s), {tcp_share} of bytes TCP"
        )
        if peers:
            text += f"; busiest peer {peers[0].host} ({_pct(peers[0].bytes, f.bytes)} of bytes)"
        lines.append((0, text))
    else:
        lines.append((0, "The capture holds no packets"))
    lines.sort(key=lambda item: -item[0])
    return [text for _, text in lines[:MAX_NOTABLE]]
