"""Realistic synthetic packet captures (dev only): what the emulator writes when an emulated capture stops.

The capture point is the VM's NIC (``10.0.0.4``), as with Network Watcher: every frame is to or from the VM,
inbound frames shorter than 60 bytes carry Ethernet padding, outbound ones do not. Frames are real
Ethernet/IPv4/TCP/UDP/ICMP with correct checksums; timing follows a simple but consistent model (inbound
frames are seen when they arrive, outbound ones when they leave, peers answer one round trip later).

Every scenario is deterministic from its seed and keeps the exact numbers it knows in ``Truth``, so tests can
assert findings exactly. Scenarios (``SCENARIOS``):

``web``              normal HTTPS to the VM: handshakes, TLS-sized exchanges, FIN or client RST, DNS lookups,
                     small PostgreSQL queries to 10.0.1.9:5432.
``synflood``         ``web`` plus SYNs from three sources to 10.0.0.4:443 that are never answered.
``retransmissions``  ``web`` plus bulk uploads from the VM to the database 10.0.1.9:5432 over a small
                     connection pool, with segments lost past the capture point (fast retransmit / RTO).
``dns-failures``     ``web`` plus many DNS lookups answered NXDOMAIN or SERVFAIL.
``unreachable``      ``web`` plus syslog to a closed UDP port (ICMP port unreachable), refused TCP
                     (RST) and SYNs towards an unreachable host (ICMP host unreachable from the gateway).
``zero-window``      ``web`` plus large query results from the database that the VM cannot keep up with
                     (zero-window advertisements, zero-window probes, window updates).

Sessions are created in start order and their frames merged through a heap that is flushed up to the
next session start, so ``write_capture`` streams hundreds of megabytes with bounded memory; frames are
assembled from per-direction templates with ``struct`` (no packet objects per frame).
"""

from __future__ import annotations

import heapq
import io
import ipaddress
import math
import os
import random
import statistics
import struct
import sys
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

__all__ = [
    "DB",
    "DEAD_HOST",
    "DNS_SERVER",
    "FLOOD_SOURCES",
    "SCENARIOS",
    "SYSLOG",
    "VM",
    "CaptureFilter",
    "GeneratedCapture",
    "Truth",
    "generate",
    "generate_for_capture",
    "write_capture",
]

Format = Literal["pcap", "pcapng"]

SCENARIOS: tuple[str, ...] = (
    "web",
    "synflood",
    "retransmissions",
    "dns-failures",
    "unreachable",
    "zero-window",
)

VM = "10.0.0.4"
DB = "10.0.1.9"
DNS_SERVER = "168.63.129.16"  # Azure's recursive resolver, as seen from a VM
GATEWAY = "10.0.0.1"
SYSLOG = "10.0.2.5"
DEAD_HOST = "10.0.3.7"
FLOOD_SOURCES = ("198.51.100.223", "203.0.113.177", "192.0.2.200")  # outside the web clients' .10-.69
FLOOD_WEIGHTS = (0.55, 0.3, 0.15)

_VM_MAC = bytes.fromhex("000d3a1f224b")
_GW_MAC = bytes.fromhex("123456789abc")  # the MAC every Azure VM sees for its default gateway
_MASK = 0xFFFFFFFF
_MS = 1_000_000  # ns
_US = 1_000
_NATIVE_LE = sys.byteorder == "little"

_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10
# MSS 1460, SACK permitted, NOP, window scale 7, NOP NOP: a 32-byte TCP header on SYN and SYN-ACK.
_SYN_OPTIONS = bytes.fromhex("020405b40402010303070101")
_MSS = 1460

_NORMAL_NAMES = (
    "login.microsoftonline.com",
    "management.azure.com",
    "stcapturesprod.blob.core.windows.net",
    "api.github.com",
    "pypi.org",
    "db.internal.example",
    "vault.azure.net",
    "time.windows.com",
)
_NX_NAMES = (
    ("api.internal.example", 6),
    ("api.internal.example.reddog.microsoft.com", 2),
    ("old-cache.internal.example", 1),
)
_SERVFAIL_NAMES = (("metrics.partner.example", 3), ("cdn.partner.example", 1))

_IP4 = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_ICMP = struct.Struct("!BBHI")


def _ip(text: str) -> bytes:
    return bytes(int(part) for part in text.split("."))


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    """Sum of the 16-bit words of data in native order (the checksum is byte-order independent)."""
    if len(data) & 1:
        data += b"\0"
    return sum(array("H", data))


def _csum_bytes(total: int) -> bytes:
    value = ~_fold(total) & 0xFFFF
    return struct.pack("=H", value)


@dataclass
class Truth:
    """What the generator knows exactly about the file it wrote (wire lengths, as in the record headers)."""

    scenario: str
    seed: int
    fmt: str
    snaplen: int
    packets: int = 0
    bytes: int = 0
    captured_bytes: int = 0
    file_bytes: int = 0
    first_ts: float = 0.0
    last_ts: float = 0.0
    protocols: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: {"packets": 0, "bytes": 0} for k in ("tcp", "udp", "icmp", "other")}
    )
    conversations: int = 0
    tcp_data_packets: int = 0
    syns: int = 0
    syns_unanswered: int = 0
    unanswered_connections: int = 0
    unanswered_by_source: dict[str, int] = field(default_factory=dict)
    unanswered_targets: dict[str, int] = field(default_factory=dict)
    handshakes: int = 0
    handshake_rtts_ms: list[float] = field(default_factory=list)
    retransmissions: int = 0
    retransmitted_bytes: int = 0
    retransmissions_by_service: dict[str, int] = field(default_factory=dict)
    zero_windows: int = 0
    zero_windows_by_source: dict[str, int] = field(default_factory=dict)
    rsts: int = 0
    rsts_by_source: dict[str, int] = field(default_factory=dict)
    dns_queries: int = 0
    dns_responses: int = 0
    dns_rcodes: dict[str, int] = field(default_factory=dict)
    dns_query_names: dict[str, int] = field(default_factory=dict)
    dns_failed_names: dict[str, int] = field(default_factory=dict)
    icmp_unreachable: int = 0
    icmp_unreachable_by_code: dict[str, int] = field(default_factory=dict)
    icmp_unreachable_sources: dict[str, int] = field(default_factory=dict)
    talker_bytes: dict[str, int] = field(default_factory=dict)
    talker_packets: dict[str, int] = field(default_factory=dict)
    service_bytes: dict[str, int] = field(default_factory=dict)
    top_conversation: str = ""
    top_conversation_bytes: int = 0

    @property
    def duration_s(self) -> float:
        return self.last_ts - self.first_ts

    @property
    def nxdomain(self) -> int:
        return self.dns_rcodes.get("NXDOMAIN", 0)

    @property
    def servfail(self) -> int:
        return self.dns_rcodes.get("SERVFAIL", 0)

    @property
    def top_talker(self) -> str:
        return max(self.talker_bytes.items(), key=lambda kv: (kv[1], kv[0]))[0] if self.talker_bytes else ""

    @property
    def top_service(self) -> str:
        """``"client → server:port/proto"`` carrying the most bytes (client side aggregated over ports)."""
        return max(self.service_bytes.items(), key=lambda kv: (kv[1], kv[0]))[0] if self.service_bytes else ""

    def handshake_rtt_ms(self, quantile: float) -> float | None:
        """Nearest-rank percentile of the SYN -> SYN-ACK times (as the file's timestamps give them)."""
        if not self.handshake_rtts_ms:
            return None
        ordered = sorted(self.handshake_rtts_ms)
        return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "handshake_rtts_ms"}
        out.update(
            duration_s=self.duration_s,
            nxdomain=self.nxdomain,
            servfail=self.servfail,
            top_talker=self.top_talker,
            top_service=self.top_service,
            handshake_rtt_median_ms=(
                statistics.median(self.handshake_rtts_ms) if self.handshake_rtts_ms else None
            ),
        )
        return out


@dataclass
class GeneratedCapture:
    """A generated capture: ``data`` (empty when written to ``path``) and its ``truth``."""

    data: bytes
    truth: Truth
    path: Path | None = None


def _ranges(value: str | None, parse: Callable[[str], int]) -> tuple[tuple[int, int], ...] | None:
    """``"a"``, ``"a-b"`` or ``"a;b;c-d"`` (Network Watcher's filter syntax) as inclusive ranges."""
    if value is None or not value.strip():
        return None
    out = []
    for part in value.split(";"):
        low, _, high = part.strip().partition("-")
        out.append((parse(low.strip()), parse((high or low).strip())))
    return tuple(out)


def _ip_number(text: str) -> int:
    return int(ipaddress.ip_address(text))


@dataclass(frozen=True)
class CaptureFilter:
    """One of a capture's ``filters``: a frame is captured when any filter matches it (none: every frame).

    Local is the VM's side; ``protocol`` is ``TCP``, ``UDP`` or ``Any`` (only ``Any`` lets ICMP in, and a
    filter with ports never matches a frame without them).
    """

    protocol: str = "Any"
    local_ip: tuple[tuple[int, int], ...] | None = None
    remote_ip: tuple[tuple[int, int], ...] | None = None
    local_port: tuple[tuple[int, int], ...] | None = None
    remote_port: tuple[tuple[int, int], ...] | None = None

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CaptureFilter:
        """From the ARM shape: ``{"protocol": "TCP", "localIPAddress": "10.0.0.4", "remotePort": "80"}``."""
        return cls(
            protocol=str(raw.get("protocol") or "Any").upper(),
            local_ip=_ranges(raw.get("localIPAddress"), _ip_number),
            remote_ip=_ranges(raw.get("remoteIPAddress"), _ip_number),
            local_port=_ranges(raw.get("localPort"), int),
            remote_port=_ranges(raw.get("remotePort"), int),
        )

    def matches(self, proto: int, local_ip: str, remote_ip: str, local_port: int, remote_port: int) -> bool:
        if (self.protocol == "TCP" and proto != 6) or (self.protocol == "UDP" and proto != 17):
            return False
        has_ports = proto in (6, 17)
        for ranges, value in (
            (self.local_ip, _ip_number(local_ip)),
            (self.remote_ip, _ip_number(remote_ip)),
            (self.local_port, local_port if has_ports else None),
            (self.remote_port, remote_port if has_ports else None),
        ):
            if ranges is not None and (value is None or not any(lo <= value <= hi for lo, hi in ranges)):
                return False
        return True


def _bump(counter: dict[str, int], key: str, n: int = 1) -> None:
    counter[key] = counter.get(key, 0) + n


class _Dir:
    """One direction of one conversation: precomputed Ethernet/IP templates and checksum partial sums."""

    __slots__ = (
        "conv",
        "dport",
        "dst",
        "dst_b",
        "eth",
        "gen",
        "inbound",
        "ip_base",
        "ip_id",
        "kept",
        "proto",
        "pseudo",
        "service",
        "sport",
        "src",
        "src_b",
    )

    def __init__(
        self, gen: _Gen, src: str, dst: str, proto: int, sport: int, dport: int, service: str
    ) -> None:
        self.gen = gen
        self.src, self.dst, self.proto, self.sport, self.dport = src, dst, proto, sport, dport
        self.src_b, self.dst_b = _ip(src), _ip(dst)
        self.inbound = dst == VM
        self.eth = (_VM_MAC + _GW_MAC if self.inbound else _GW_MAC + _VM_MAC) + b"\x08\x00"
        ttl = 64 if not self.inbound else 52 if not src.startswith("10.") else 64
        # IPv4 header words that do not change: version/IHL/TOS, flags (DF), TTL/proto, addresses.
        self.ip_base = (
            ttl,
            _sum16(bytes([0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, proto, 0, 0]) + self.src_b + self.dst_b),
        )
        self.pseudo = _sum16(self.src_b + self.dst_b + bytes([0, proto]))
        self.ip_id = gen.rng.randrange(1, 0xFFFF)
        a, b = sorted([(src, sport), (dst, dport)])
        self.conv = (a, b, proto)
        self.service = service
        self.kept = gen.wanted(self)  # the capture's filters, decided once per direction

    def _ip_header(self, payload_len: int) -> bytes:
        total = 20 + payload_len
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        ttl, base = self.ip_base
        # the constant words are summed natively; add total length and id in native word order too
        words = array("H", struct.pack("!HH", total, self.ip_id))
        csum = _csum_bytes(base + words[0] + words[1])
        return (
            _IP4.pack(0x45, 0, total, self.ip_id, 0x4000, ttl, self.proto, 0, self.src_b, self.dst_b)[:10]
            + csum
            + self.src_b
            + self.dst_b
        )

    def tcp(
        self,
        t: int,
        seq: int,
        ack: int,
        flags: int,
        win: int,
        payload: bytes = b"",
        options: bytes = b"",
    ) -> None:
        hlen = 20 + len(options)
        head = _TCP.pack(self.sport, self.dport, seq & _MASK, ack & _MASK, (hlen // 4) << 4, flags, win, 0, 0)
        segment = head + options + payload
        total = self.pseudo + _sum16(struct.pack("!H", len(segment))) + _sum16(segment)
        segment = segment[:16] + _csum_bytes(total) + segment[18:]
        self.gen.push(t, self.eth + self._ip_header(len(segment)) + segment, self, "tcp")

    def udp(self, t: int, payload: bytes) -> None:
        length = 8 + len(payload)
        head = _UDP.pack(self.sport, self.dport, length, 0)
        total = self.pseudo + _sum16(struct.pack("!H", length)) + _sum16(head + payload)
        csum = _csum_bytes(total)
        if csum == b"\0\0":
            csum = b"\xff\xff"
        self.gen.push(t, self.eth + self._ip_header(length) + head[:6] + csum + payload, self, "udp")

    def icmp(self, t: int, icmp_type: int, code: int, body: bytes) -> None:
        head = _ICMP.pack(icmp_type, code, 0, 0)
        csum = _csum_bytes(_sum16(head + body))
        message = head[:2] + csum + head[4:] + body
        self.gen.push(t, self.eth + self._ip_header(len(message)) + message, self, "icmp")


class _Conn:
    """A TCP connection seen from the VM, with a simple timing model and exact bookkeeping for Truth."""

    def __init__(
        self,
        gen: _Gen,
        client: str,
        cport: int,
        server: str,
        sport: int,
        *,
        rtt: int,
        remote_gap: int,
    ) -> None:
        self.gen = gen
        service = f"{client} → {server}:{sport}/tcp"
        self.up = _Dir(gen, client, server, 6, cport, sport, service)
        self.down = _Dir(gen, server, client, 6, sport, cport, service)
        self.vm_is_client = client == VM
        self.rtt = rtt
        self.remote_gap = remote_gap  # spacing of a remote sender's segments as they arrive (its bandwidth)
        self.c_isn = gen.rng.getrandbits(32)
        self.s_isn = gen.rng.getrandbits(32)
        self.c_nxt = 1  # relative sequence numbers (SYN took 0)
        self.s_nxt = 1
        self.busy_until = 0
        self.established = False
        self.c_win = 501
        self.s_win = 509

    # -- helpers -------------------------------------------------------------------------------------
    def _side(self, from_client: bool) -> tuple[_Dir, _Dir, int, int]:
        if from_client:
            return self.up, self.down, self.c_isn, self.s_isn
        return self.down, self.up, self.s_isn, self.c_isn

    def _remote(self, d: _Dir) -> bool:
        return d.src != VM

    def handshake(self, t: int) -> int:
        """SYN, SYN-ACK, ACK; returns when the client may send (as seen at the VM)."""
        g = self.gen
        self.up.tcp(t, self.c_isn, 0, _SYN, 64240, options=_SYN_OPTIONS)
        g.truth.syns += 1
        t2 = t + (self.rtt if self.vm_is_client else g.rng.randrange(40 * _US, 160 * _US))
        self.down.tcp(t2, self.s_isn, self.c_isn + 1, _SYN | _ACK, 65160, options=_SYN_OPTIONS)
        g.truth.handshakes += 1
        t3 = t2 + (g.rng.randrange(20 * _US, 80 * _US) if self.vm_is_client else self.rtt)
        self.up.tcp(t3, self.c_isn + 1, self.s_isn + 1, _ACK, self.c_win)
        g.truth.handshake_rtts_ms.append((g.q(t3) - g.q(t)) / _MS)  # SYN -> ACK: the whole round trip
        self.established = True
        return t3 + (g.rng.randrange(5 * _US, 50 * _US))

    def send(
        self, t: int, from_client: bool, nbytes: int, *, loss: float = 0.0, payload: bytes | None = None
    ) -> int:
        """Send a message; returns when (at the VM) the receiver's answer could first be seen."""
        g = self.gen
        tx, rx, tx_isn, rx_isn = self._side(from_client)
        if nbytes % _MSS == 1:
            nbytes += 1  # never end on a 1-byte segment (it would look like a keep-alive)
        start = self.c_nxt if from_client else self.s_nxt
        rx_nxt = self.s_nxt if from_client else self.c_nxt
        win_tx = self.c_win if from_client else self.s_win
        win_rx = self.s_win if from_client else self.c_win
        remote_tx = self._remote(tx)
        gap = self.remote_gap if remote_tx else 12 * _US
        segments: list[tuple[int, int, int]] = []  # (observed time, relative seq, length)
        offset = 0
        i = 0
        while offset < nbytes:
            length = min(_MSS, nbytes - offset)
            segments.append((t + i * gap, start + offset, length))
            offset += length
            i += 1
        end = start + nbytes
        body = payload if payload is not None else g.pool
        lost: set[int] = set()
        if loss > 0.0 and not remote_tx:
            lost = {k for k in range(len(segments)) if g.rng.random() < loss}
        deliveries: list[tuple[int, int, int]] = []  # (arrival at receiver, seq, len) of copies that arrive
        for k, (ts, seq, length) in enumerate(segments):
            flags = _ACK | (_PSH if k == len(segments) - 1 else 0)
            tx.tcp(ts, tx_isn + seq, rx_isn + rx_nxt, flags, win_tx, g.payload(body, seq, length))
            g.truth.tcp_data_packets += 1
            one_way = self.rtt // 2 if not remote_tx else 15 * _US
            if k not in lost:
                deliveries.append((ts + one_way, seq, length))
                continue
            # lost past the capture point: fast retransmit if enough later segments produce dup ACKs,
            # otherwise an RTO; the retransmission may be lost again (then another RTO, doubled)
            if k + 3 < len(segments):
                rts = segments[k + 3][0] + self.rtt + g.rng.randrange(10 * _US, 60 * _US)
            else:
                rts = ts + max(200 * _MS, 3 * self.rtt)
            rto = max(200 * _MS, 3 * self.rtt)
            while True:
                tx.tcp(rts, tx_isn + seq, rx_isn + rx_nxt, _ACK, win_tx, g.payload(body, seq, length))
                g.truth.tcp_data_packets += 1
                g.truth.retransmissions += 1
                g.truth.retransmitted_bytes += 54 + length
                _bump(g.truth.retransmissions_by_service, tx.service)
                if g.rng.random() >= loss:
                    deliveries.append((rts + one_way, seq, length))
                    break
                rto *= 2
                rts += rto
        # the receiver's ACKs: delayed (every second in-order segment), immediate on out-of-order/hole filled
        deliveries.sort()
        rcv_nxt = start
        ooo: dict[int, int] = {}
        pending = 0
        last_arrival = t
        for n, (arrival, seq, length) in enumerate(deliveries):
            last_arrival = max(last_arrival, arrival)
            immediate = False
            if seq == rcv_nxt:
                rcv_nxt = seq + length
                if ooo:
                    immediate = True
                    while rcv_nxt in ooo:
                        rcv_nxt = ooo.pop(rcv_nxt)
                pending += 1
            elif seq > rcv_nxt:
                ooo[seq] = seq + length
                immediate = True
            else:
                immediate = True
            if immediate or pending >= 2 or n == len(deliveries) - 1:
                pending = 0
                back = arrival + (self.rtt // 2 if not remote_tx else g.rng.randrange(15 * _US, 60 * _US))
                rx.tcp(back, rx_isn + rx_nxt, tx_isn + rcv_nxt, _ACK, win_rx)
        if from_client:
            self.c_nxt = end
        else:
            self.s_nxt = end
        if remote_tx:
            return last_arrival + 20 * _US  # the VM has it all
        return last_arrival + self.rtt // 2  # the remote's answer leaves it now and is seen one way later

    def close(self, t: int, *, by_client: bool = True, rst: bool = False) -> int:
        g = self.gen
        a, b, a_isn, b_isn = self._side(by_client)
        a_nxt = self.c_nxt if by_client else self.s_nxt
        b_nxt = self.s_nxt if by_client else self.c_nxt
        if rst:
            a.tcp(t, a_isn + a_nxt, b_isn + b_nxt, _RST | _ACK, 0)
            g.truth.rsts += 1
            _bump(g.truth.rsts_by_source, a.src)
            return t
        a.tcp(t, a_isn + a_nxt, b_isn + b_nxt, _FIN | _ACK, self.c_win)
        delay = self.rtt if self._remote(b) else g.rng.randrange(40 * _US, 200 * _US)
        t2 = t + delay
        b.tcp(t2, b_isn + b_nxt, a_isn + a_nxt + 1, _FIN | _ACK, self.s_win)
        t3 = t2 + (self.rtt if self._remote(a) else g.rng.randrange(20 * _US, 80 * _US))
        a.tcp(t3, a_isn + a_nxt + 1, b_isn + b_nxt + 1, _ACK, self.c_win)
        return t3


def _dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


_RCODES = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
_HEARTBEAT_NS = 500 * _MS


class _Gen:
    """The scenario engine: session arrivals, the frame heap, the writer and the truth."""

    def __init__(
        self,
        scenario: str,
        *,
        seed: int,
        start: datetime,
        duration_s: float,
        snaplen: int,
        fmt: Format,
        nanosecond: bool,
        big_endian: bool,
        out: BinaryIO | None,
        rate_scale: float = 1.0,
        target_bytes: int | None = None,
        window: bool = False,
        filters: tuple[CaptureFilter, ...] = (),
        max_file_bytes: int | None = None,
        anomaly_start: datetime | None = None,
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
        if fmt not in ("pcap", "pcapng"):
            raise ValueError(f"unknown format {fmt!r}")
        self.rng = random.Random(f"{scenario}/{seed}")
        self.scenario = scenario
        self.truth = Truth(scenario=scenario, seed=seed, fmt=fmt, snaplen=snaplen)
        self.t0 = int(start.timestamp()) * 1_000_000_000 + start.microsecond * 1000
        self.end = self.t0 + int(duration_s * 1e9)
        # The scenario's own traffic (a SYN flood...) begins here; the normal web mix runs from t0.
        self.anomaly_t0 = (
            self.t0
            if anomaly_start is None
            else int(anomaly_start.timestamp()) * 1_000_000_000 + anomaly_start.microsecond * 1000
        )
        # With a late anomaly the pilot's rate is not the file's: keep the file inside its window.
        self.bounded = anomaly_start is not None
        self.snaplen = snaplen
        self.fmt = fmt
        self.nano = nanosecond
        self.endian = ">" if big_endian else "<"
        self.out = out
        self.chunks: list[bytes] = []
        self.chunk_bytes = 0
        self.heap: list[tuple[int, int, bytes, _Dir, str]] = []
        self.counter = 0
        self.rate_scale = rate_scale
        self.target = target_bytes
        self.window = (
            window  # the file holds exactly [start, start + duration): later frames are not captured
        )
        self.filters = filters
        self.max_file_bytes = max_file_bytes  # the capture stops writing at this size
        self.full = False
        self.pool = self.rng.randbytes(1 << 16)
        self.pg_pool = b"".join(
            struct.pack("!cI", b"D", 60) + self.rng.randbytes(56) for _ in range(1100)
        )  # PostgreSQL DataRow messages
        self.conversations: set[tuple[Any, ...]] = set()
        self.conv_bytes: dict[tuple[Any, ...], int] = {}
        self.ports: dict[str, int] = {}
        self.pool_conns: list[_Conn] = []
        self.last_frame = b""
        self.created_bytes = 0
        self.written = 0
        self.rec = struct.Struct(self.endian + "IIII")
        self.epb = struct.Struct(self.endian + "IIIIIII")
        self.epb_tail = struct.Struct(self.endian + "I")
        header = self._file_header()
        self.created_bytes = len(header)
        self._write(header)

    # -- output ----------------------------------------------------------------------------------------
    def _file_header(self) -> bytes:
        e = self.endian
        snap = self.snaplen or 262144
        if self.fmt == "pcap":
            magic = 0xA1B23C4D if self.nano else 0xA1B2C3D4
            return struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, snap, 1)
        appl = b"alert-packet-capture emulator"
        opt = struct.pack(e + "HH", 4, len(appl)) + appl + b"\0" * (-len(appl) % 4) + b"\0\0\0\0"
        shb_len = 28 + len(opt)
        shb = struct.pack(e + "IIIHHq", 0x0A0D0D0A, shb_len, 0x1A2B3C4D, 1, 0, -1) + opt
        shb += struct.pack(e + "I", shb_len)
        idb_opts = struct.pack(e + "HHB3x", 9, 1, 9 if self.nano else 6) + struct.pack(e + "HH", 0, 0)
        idb_len = 20 + len(idb_opts)
        idb = struct.pack(e + "IIHHI", 1, idb_len, 1, 0, snap) + idb_opts + struct.pack(e + "I", idb_len)
        return shb + idb

    def _write(self, data: bytes) -> None:
        self.chunks.append(data)
        self.chunk_bytes += len(data)
        self.truth.file_bytes += len(data)
        if self.out is not None and self.chunk_bytes >= 4 << 20:
            self.out.write(b"".join(self.chunks))
            self.chunks.clear()
            self.chunk_bytes = 0

    def q(self, t: int) -> int:
        """A timestamp as the file will store it (microsecond files lose the nanoseconds)."""
        return t if self.nano else t - t % 1000

    def wanted(self, d: _Dir) -> bool:
        """Whether the capture's filters let this direction's frames in (any filter may match)."""
        if not self.filters:
            return True
        local_first = d.src == VM
        local_ip, remote_ip = (d.src, d.dst) if local_first else (d.dst, d.src)
        local_port, remote_port = (d.sport, d.dport) if local_first else (d.dport, d.sport)
        return any(f.matches(d.proto, local_ip, remote_ip, local_port, remote_port) for f in self.filters)

    def push(self, t: int, frame: bytes, d: _Dir, proto: str) -> None:
        if d.inbound and len(frame) < 60:
            frame += b"\0" * (60 - len(frame))
        self.last_frame = frame
        if not d.kept or (self.window and t >= self.end):
            return  # filtered out, or after the capture stopped
        self.counter += 1
        cap = min(len(frame), self.snaplen) if self.snaplen else len(frame)
        self.created_bytes += 16 + cap if self.fmt == "pcap" else 32 + cap + (-cap % 4)
        heapq.heappush(self.heap, (t, self.counter, frame, d, proto))

    def _count(self, wire: int, d: _Dir, proto: str) -> None:
        """The per-frame truth, for frames written to the file."""
        truth = self.truth
        truth.packets += 1
        truth.bytes += wire
        p = truth.protocols[proto]
        p["packets"] += 1
        p["bytes"] += wire
        _bump(truth.talker_bytes, d.src, wire)
        _bump(truth.talker_bytes, d.dst, wire)
        _bump(truth.talker_packets, d.src)
        _bump(truth.talker_packets, d.dst)
        _bump(truth.service_bytes, d.service, wire)
        conv = d.conv
        if conv not in self.conversations:
            self.conversations.add(conv)
            truth.conversations += 1
        size = self.conv_bytes.get(conv, 0) + wire
        self.conv_bytes[conv] = size
        if size > truth.top_conversation_bytes:
            truth.top_conversation_bytes = size
            (a, ap), (b, bp), pr = conv
            truth.top_conversation = f"{a}:{ap} ↔ {b}:{bp}/{pr}"
        if self.target is not None and len(self.conv_bytes) > 200_000:
            self.conv_bytes.clear()  # bounded for huge files: top_conversation is then approximate

    def flush(self, until: int | None) -> None:
        heap = self.heap
        snap = self.snaplen
        rec = self.rec.pack
        truth = self.truth
        pcapng = self.fmt == "pcapng"
        epb = self.epb.pack
        tail = self.epb_tail.pack
        out: list[bytes] = []
        size = 0
        count = self._count
        while heap and (until is None or heap[0][0] < until):
            t, _, frame, d, proto = heapq.heappop(heap)
            if self.full:
                continue
            wire = len(frame)
            if snap and wire > snap:
                frame = frame[:snap]
            cap = len(frame)
            if self.max_file_bytes is not None:
                record = 16 + cap if not pcapng else 32 + cap + (-cap % 4)
                if truth.file_bytes + size + record > self.max_file_bytes:
                    self.full = True  # the session's byte limit: the capture writes nothing more
                    continue
            count(wire, d, proto)
            truth.captured_bytes += cap
            if not pcapng:
                out.append(
                    rec(t // 1_000_000_000, (t % 1_000_000_000) // (1 if self.nano else 1000), cap, wire)
                )
                out.append(frame)
                size += 16 + cap
            else:
                ticks = t if self.nano else t // 1000
                pad = -cap % 4
                blen = 32 + cap + pad
                out.append(epb(6, blen, 0, ticks >> 32, ticks & _MASK, cap, wire))
                out.append(frame + b"\0" * pad + tail(blen))
                size += blen
            if not self.written:
                truth.first_ts = self.q(t) / 1e9
            self.written += 1
            truth.last_ts = self.q(t) / 1e9
            if size >= 1 << 20:
                self._write(b"".join(out))
                out.clear()
                size = 0
        if out:
            self._write(b"".join(out))

    def finish(self) -> bytes:
        self.flush(None)
        data = b"".join(self.chunks)
        if self.out is not None:
            self.out.write(data)
            return b""
        return data

    # -- payloads and ports ------------------------------------------------------------------------------
    def payload(self, body: bytes, seq: int, length: int) -> bytes:
        off = (seq * 7) % (len(body) - _MSS)
        return body[off : off + length]

    def port(self, host: str) -> int:
        p = self.ports.get(host)
        if p is None:
            p = self.rng.randrange(32768, 60000)
        p = p + 1 if p < 60999 else 32768
        self.ports[host] = p
        return p

    def client(self) -> tuple[str, int, int]:
        """A random internet client: address, round-trip time and the spacing of its segments."""
        n = self.rng.randrange(60)
        net = ("203.0.113", "198.51.100", "192.0.2")[n % 3]
        host = f"{net}.{10 + n}"
        crng = random.Random(host)
        rtt = int(crng.uniform(8, 140) * _MS)
        gap = int(crng.choice((120, 240, 600, 1200)) * _US)  # ~100 Mbit/s .. 10 Mbit/s
        return host, rtt, gap

    # -- sessions ---------------------------------------------------------------------------------------
    def https_session(self, t: int) -> None:
        rng = self.rng
        host, rtt, gap = self.client()
        c = _Conn(self, host, self.port(host), VM, 443, rtt=rtt, remote_gap=gap)
        t = c.handshake(t)
        t = c.send(t, True, rng.randrange(280, 560))  # ClientHello
        t = c.send(t + rng.randrange(100, 400) * _US, False, rng.randrange(2800, 4600))  # ServerHello..Done
        t = c.send(t, True, rng.randrange(90, 140))  # key exchange, Finished
        t = c.send(t + rng.randrange(50, 200) * _US, False, rng.randrange(240, 300))  # tickets, Finished
        for _ in range(rng.choice((1, 1, 2, 3, 4))):
            t = c.send(t + rng.randrange(1, 40) * _MS, True, rng.randrange(300, 900))
            size = int(min(400_000, rng.lognormvariate(9.2, 1.3)))
            t = c.send(t + rng.randrange(300, 8000) * _US, False, max(200, size))
        if rng.random() < 0.15:
            c.close(t + rng.randrange(1, 50) * _MS, by_client=True, rst=True)
        else:
            c.close(t + rng.randrange(1, 50) * _MS, by_client=rng.random() < 0.7)

    def db_query_session(self, t: int) -> None:
        rng = self.rng
        c = _Conn(self, VM, self.port(VM), DB, 5432, rtt=rng.randrange(600, 1400) * _US, remote_gap=15 * _US)
        t = c.handshake(t)
        t = c.send(t, True, 8, payload=self.pg_pool)  # SSLRequest-ish startup
        t = c.send(t + 50 * _US, False, 120, payload=self.pg_pool)
        for _ in range(rng.randrange(1, 4)):
            t = c.send(t + rng.randrange(100, 2000) * _US, True, rng.randrange(60, 400), payload=self.pg_pool)
            t = c.send(
                t + rng.randrange(200, 3000) * _US, False, rng.randrange(200, 6000), payload=self.pg_pool
            )
        c.close(t + rng.randrange(1, 5) * _MS, by_client=True)

    def _dns(self, t: int, name: str, rcode: int) -> None:
        rng = self.rng
        sport = self.port(VM)
        service = f"{VM} → {DNS_SERVER}:53/udp"
        q = _Dir(self, VM, DNS_SERVER, 17, sport, 53, service)
        r = _Dir(self, DNS_SERVER, VM, 17, 53, sport, service)
        qid = rng.getrandbits(16)
        question = _dns_name(name) + b"\x00\x01\x00\x01"
        q.udp(t, struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question)
        answers = b""
        if rcode == 0:
            answers = (
                b"\xc0\x0c\x00\x01\x00\x01"
                + struct.pack("!IH", rng.randrange(10, 3600), 4)
                + rng.randbytes(4)
            )
        flags = 0x8180 | rcode
        latency = rng.randrange(300, 2500) * _US if rcode != 2 else rng.randrange(200, 2000) * _MS
        r.udp(
            t + latency, struct.pack("!HHHHHH", qid, flags, 1, 1 if answers else 0, 0, 0) + question + answers
        )
        tr = self.truth
        tr.dns_queries += 1
        tr.dns_responses += 1
        _bump(tr.dns_query_names, name)
        _bump(tr.dns_rcodes, _RCODES[rcode])
        if rcode in (2, 3):
            _bump(tr.dns_failed_names, name)

    def dns_lookup(self, t: int) -> None:
        self._dns(t, self.rng.choice(_NORMAL_NAMES), 0)

    def dns_failing_lookup(self, t: int) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.5:
            self._dns(t, rng.choice(_NORMAL_NAMES), 0)
        elif roll < 0.85:
            self._dns(t, rng.choices([n for n, _ in _NX_NAMES], [w for _, w in _NX_NAMES])[0], 3)
        else:
            self._dns(t, rng.choices([n for n, _ in _SERVFAIL_NAMES], [w for _, w in _SERVFAIL_NAMES])[0], 2)

    def syn_flood(self, t: int) -> None:
        rng = self.rng
        src = rng.choices(FLOOD_SOURCES, FLOOD_WEIGHTS)[0]
        key = f"flood:{src}"
        port = self.ports.get(key, 1024 + rng.randrange(20000)) + 1
        if port > 65535:
            port = 1024
        self.ports[key] = port
        d = _Dir(self, src, VM, 6, port, 443, f"{src} → {VM}:443/tcp")
        d.tcp(t, rng.getrandbits(32), 0, _SYN, 512)
        tr = self.truth
        tr.syns += 1
        tr.syns_unanswered += 1
        tr.unanswered_connections += 1
        _bump(tr.unanswered_by_source, src)
        _bump(tr.unanswered_targets, f"{VM}:443")

    def db_bulk(self, t: int) -> None:
        """An upload (COPY) over one of three pooled connections to the database, with loss."""
        rng = self.rng
        if not self.pool_conns:
            for _ in range(3):
                c = _Conn(
                    self, VM, self.port(VM), DB, 5432, rtt=rng.randrange(700, 1500) * _US, remote_gap=15 * _US
                )
                self.pool_conns.append(c)
        c = min(self.pool_conns, key=lambda conn: conn.busy_until)
        t = max(t, c.busy_until)
        if not c.established:
            t = c.handshake(t)
        t = c.send(t, True, rng.randrange(50_000, 600_000), loss=0.04, payload=self.pg_pool)
        t = c.send(t + rng.randrange(100, 900) * _US, False, rng.randrange(20, 60), payload=self.pg_pool)
        c.busy_until = t + 1 * _MS

    def db_slow_reader(self, t: int) -> None:
        """A big result set from the database that the VM stops reading for a while: zero windows."""
        rng = self.rng
        c = _Conn(self, VM, self.port(VM), DB, 5432, rtt=rng.randrange(600, 1200) * _US, remote_gap=15 * _US)
        t = c.handshake(t)
        t = c.send(t, True, rng.randrange(80, 300), payload=self.pg_pool)
        t = c.send(t + 200 * _US, False, rng.randrange(60_000, 200_000), payload=self.pg_pool)
        # the VM's receive buffer is full: it advertises a zero window; the database probes (seq = nxt - 1,
        # no payload) with exponential back-off and each probe is answered with the zero window again
        tr = self.truth
        stalls = rng.randrange(1, 4)
        vm_seq = c.c_isn + c.c_nxt
        db_seq = c.s_isn + c.s_nxt
        c.up.tcp(t, vm_seq, db_seq, _ACK, 0)
        tr.zero_windows += 1
        _bump(tr.zero_windows_by_source, VM)
        back = 200 * _MS
        probe_t = t
        for _ in range(stalls):
            probe_t += back
            c.down.tcp(probe_t, db_seq - 1, vm_seq, _ACK, c.s_win)
            c.up.tcp(probe_t + 30 * _US, vm_seq, db_seq, _ACK, 0)
            tr.zero_windows += 1
            _bump(tr.zero_windows_by_source, VM)
            back *= 2
        t = probe_t + rng.randrange(10, 80) * _MS
        c.up.tcp(t, vm_seq, db_seq, _ACK, c.c_win)  # window update
        t = c.send(t + c.rtt, False, rng.randrange(8_000, 40_000), payload=self.pg_pool)
        c.close(t + 2 * _MS, by_client=True)

    def syslog_unreachable(self, t: int) -> None:
        rng = self.rng
        sport = self.port(VM)
        service = f"{VM} → {SYSLOG}:514/udp"
        d = _Dir(self, VM, SYSLOG, 17, sport, 514, service)
        msg = b"<134>1 - vm-app-01 app - - - " + rng.randbytes(rng.randrange(40, 200)).hex().encode()
        d.udp(t, msg)
        # the quoted datagram: the original IP header + as much as fits (Linux quotes up to 576 bytes total)
        original = self._last_frame_ip()
        icmp = _Dir(self, SYSLOG, VM, 1, 0, 0, f"{SYSLOG} → {VM}/icmp")
        icmp.icmp(t + rng.randrange(300, 900) * _US, 3, 3, original[:548])
        self._unreachable(SYSLOG, 3, 3)

    def _last_frame_ip(self) -> bytes:
        return self.last_frame[14:]

    def _unreachable(self, source: str, icmp_type: int, code: int) -> None:
        tr = self.truth
        tr.icmp_unreachable += 1
        _bump(tr.icmp_unreachable_by_code, f"{icmp_type}/{code}")
        _bump(tr.icmp_unreachable_sources, source)

    def refused(self, t: int) -> None:
        rng = self.rng
        sport = self.port(VM)
        service = f"{VM} → {SYSLOG}:8080/tcp"
        up = _Dir(self, VM, SYSLOG, 6, sport, 8080, service)
        down = _Dir(self, SYSLOG, VM, 6, 8080, sport, service)
        isn = rng.getrandbits(32)
        up.tcp(t, isn, 0, _SYN, 64240, options=_SYN_OPTIONS)
        down.tcp(t + rng.randrange(400, 1200) * _US, 0, isn + 1, _RST | _ACK, 0)
        tr = self.truth
        tr.syns += 1
        tr.rsts += 1
        _bump(tr.rsts_by_source, SYSLOG)

    def dead_host(self, t: int) -> None:
        rng = self.rng
        sport = self.port(VM)
        up = _Dir(self, VM, DEAD_HOST, 6, sport, 22, f"{VM} → {DEAD_HOST}:22/tcp")
        isn = rng.getrandbits(32)
        up.tcp(t, isn, 0, _SYN, 64240, options=_SYN_OPTIONS)
        original = self._last_frame_ip()
        icmp = _Dir(self, GATEWAY, VM, 1, 0, 0, f"{GATEWAY} → {VM}/icmp")
        icmp.icmp(t + rng.randrange(1, 3) * _MS, 3, 1, original[:28])
        tr = self.truth
        tr.syns += 1
        tr.syns_unanswered += 1
        tr.unanswered_connections += 1
        _bump(tr.unanswered_by_source, VM)
        _bump(tr.unanswered_targets, f"{DEAD_HOST}:22")
        self._unreachable(GATEWAY, 3, 1)

    # -- the arrival loop ------------------------------------------------------------------------------------
    def mix(self) -> list[tuple[Callable[[int], None], float]]:
        web: list[tuple[Callable[[int], None], float]] = [
            (self.https_session, 6.0),
            (self.dns_lookup, 1.5),
            (self.db_query_session, 2.0),
        ]
        extra: dict[str, list[tuple[Callable[[int], None], float]]] = {
            "web": [],
            "synflood": [(self.syn_flood, 120.0)],
            "retransmissions": [(self.db_bulk, 2.5)],
            "dns-failures": [(self.dns_failing_lookup, 25.0)],
            "unreachable": [(self.syslog_unreachable, 12.0), (self.refused, 1.0), (self.dead_host, 0.5)],
            "zero-window": [(self.db_slow_reader, 0.6)],
        }
        return web + extra[self.scenario]

    def run(self) -> None:
        arrivals: list[tuple[int, int, Callable[[int], None], float]] = []
        for n, (fn, rate) in enumerate(self.mix()):
            r = rate * self.rate_scale
            # in a capture window the first session starts with the capture: its file begins at its start
            first = 0 if self.window and n == 0 else int(self.rng.expovariate(r) * 1e9)
            begin = self.t0 if n < _WEB_MIX else max(self.t0, self.anomaly_t0)
            arrivals.append((begin + first, n, fn, r))
        if self.window:
            # a lookup every half second whatever the scale: the file spans its window even when the
            # traffic is scaled down to a trickle (a negative rate is a fixed period in seconds)
            arrivals.append(
                (self.t0 + _HEARTBEAT_NS // 2, len(arrivals), self.dns_lookup, -_HEARTBEAT_NS / 1e9)
            )
        heapq.heapify(arrivals)
        while arrivals:
            t, n, fn, rate = arrivals[0]
            if self.target is None or self.window:
                if t >= self.end:
                    break
            elif self.created_bytes >= self.target or (self.bounded and t >= self.end):
                break
            self.flush(t)
            fn(t)
            gap = int(-rate * 1e9) if rate < 0 else max(1, int(self.rng.expovariate(rate) * 1e9))
            heapq.heapreplace(arrivals, (t + gap, n, fn, rate))


# The first entries of every mix are the normal web traffic; the scenario's anomaly follows them.
_WEB_MIX = 3


def _simulate(
    scenario: str,
    *,
    duration_s: float,
    start: datetime,
    snaplen: int,
    seed: int,
    fmt: Format,
    nanosecond: bool,
    big_endian: bool,
    target_bytes: int | None,
    out: BinaryIO | None,
    window: bool = False,
    filters: tuple[CaptureFilter, ...] = (),
    max_file_bytes: int | None = None,
    max_scale: float | None = None,
    anomaly_start: datetime | None = None,
) -> tuple[bytes, Truth]:
    scale = 1.0
    if target_bytes is not None:
        # a short pilot run of the same mix tells the bytes per second; scale the arrival rates to fit
        pilot = _Gen(
            scenario,
            seed=seed + 7919,
            start=start,
            duration_s=5.0,
            snaplen=snaplen,
            fmt=fmt,
            nanosecond=nanosecond,
            big_endian=big_endian,
            out=None,
            window=window,
        )
        pilot.run()
        pilot.finish()
        per_s = max(1.0, pilot.truth.file_bytes / 5.0)
        scale = max(0.001, target_bytes / (per_s * max(duration_s, 0.001)))
        if max_scale is not None:
            scale = min(scale, max_scale)
    for _ in range(6):
        g = _Gen(
            scenario,
            seed=seed,
            start=start,
            duration_s=duration_s,
            snaplen=snaplen,
            fmt=fmt,
            nanosecond=nanosecond,
            big_endian=big_endian,
            out=out,
            rate_scale=scale,
            target_bytes=target_bytes,
            window=window,
            filters=filters,
            max_file_bytes=max_file_bytes,
            anomaly_start=anomaly_start,
        )
        g.run()
        data = g.finish()
        if not (g.full and window and out is None):
            break
        # the byte limit cut the window short: the pilot's estimate was high; a little less traffic
        scale *= 0.8
    return data, g.truth


_DEFAULT_START = datetime(2024, 5, 14, 9, 30, tzinfo=UTC)


def generate(
    scenario: str,
    *,
    duration_s: float = 10.0,
    start: datetime = _DEFAULT_START,
    snaplen: int = 0,
    seed: int = 0,
    fmt: Format = "pcap",
    nanosecond: bool = False,
    big_endian: bool = False,
    target_bytes: int | None = None,
    anomaly_start: datetime | None = None,
) -> GeneratedCapture:
    """Generate a capture in memory.

    ``snaplen`` emulates Network Watcher's bytesToCapturePerPacket (0 = whole frames). ``fmt`` is ``pcap``
    (libpcap, what Network Watcher writes) or ``pcapng``; ``nanosecond`` and ``big_endian`` pick the other
    pcap variants. With ``target_bytes`` the arrival rates are scaled so the file is about that big and
    spans about ``duration_s`` (it stops once the target is reached). ``anomaly_start``: the scenario's
    own traffic (the SYN flood of ``synflood``...) begins then instead of at ``start``, as an incident
    that starts minutes before the alert fires (None: from the start; after the end: never).
    """
    data, truth = _simulate(
        scenario,
        duration_s=duration_s,
        start=start,
        snaplen=snaplen,
        seed=seed,
        fmt=fmt,
        nanosecond=nanosecond,
        big_endian=big_endian,
        target_bytes=target_bytes,
        out=None,
        anomaly_start=anomaly_start,
    )
    return GeneratedCapture(data=data, truth=truth)


def write_capture(
    path: str | os.PathLike[str],
    scenario: str,
    *,
    duration_s: float = 10.0,
    start: datetime = _DEFAULT_START,
    snaplen: int = 0,
    seed: int = 0,
    fmt: Format = "pcap",
    nanosecond: bool = False,
    big_endian: bool = False,
    target_bytes: int | None = None,
) -> GeneratedCapture:
    """Like ``generate`` but streams the file to ``path`` (bounded memory; for the benchmark's big files)."""
    target = Path(path)
    with target.open("wb") as fh:
        buffered = io.BufferedWriter(fh, buffer_size=1 << 20) if not isinstance(fh, io.BufferedWriter) else fh
        _, truth = _simulate(
            scenario,
            duration_s=duration_s,
            start=start,
            snaplen=snaplen,
            seed=seed,
            fmt=fmt,
            nanosecond=nanosecond,
            big_endian=big_endian,
            target_bytes=target_bytes,
            out=buffered,
        )
    return GeneratedCapture(data=b"", truth=truth, path=target)


DEFAULT_MAX_BYTES = 8_000_000


def generate_for_capture(
    *,
    scenario: str | None,
    start: datetime,
    stop: datetime,
    bytes_per_packet: int = 0,
    total_bytes_per_session: int | None = None,
    traffic_bytes_per_second: float | None = None,
    filters: Sequence[dict[str, Any]] = (),
    seed: int = 0,
    max_bytes: int = DEFAULT_MAX_BYTES,
    anomaly_start: datetime | None = None,
) -> GeneratedCapture:
    """The file an emulated capture leaves behind when it stops (the emulator's stop hook calls this).

    True to the capture's settings: the file holds the traffic of ``start``..``stop`` and nothing after
    (the first session starts with the capture, frames after the stop are not captured), frames matching
    the capture's ``filters`` (Network Watcher's ``PacketCaptureFilter`` shape; none: every frame), cut to
    ``bytes_per_packet`` (0: whole frames), and the file stops growing at ``total_bytes_per_session``, as
    the service stops writing. ``scenario`` is the VM's scenario from the world file (unknown or None:
    ``web``); the traffic is scaled to ``traffic_bytes_per_second`` when given, and down so the window's
    file stays near ``max_bytes`` (keeps the local emulator quick) and under the session limit.
    """
    duration = max(0.5, (stop - start).total_seconds())
    limits = [max_bytes]
    if total_bytes_per_session:
        limits.append(int(0.85 * total_bytes_per_session))  # room for the rate estimate's error
    if traffic_bytes_per_second:
        limits.append(int(traffic_bytes_per_second * duration))
    name = scenario if scenario in SCENARIOS else "web"
    data, truth = _simulate(
        name,
        duration_s=duration,
        start=start,
        snaplen=bytes_per_packet,
        seed=seed,
        fmt="pcap",
        nanosecond=False,
        big_endian=False,
        target_bytes=max(4096, min(limits)),
        out=None,
        window=True,
        filters=tuple(CaptureFilter.from_json(f) for f in filters),
        max_file_bytes=total_bytes_per_session or None,
        max_scale=None if traffic_bytes_per_second else 1.0,  # the scenario's own rate unless told
        anomaly_start=anomaly_start,
    )
    return GeneratedCapture(data=data, truth=truth)


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Write a synthetic capture file.")
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("path")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--snaplen", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("pcap", "pcapng"), default="pcap")
    parser.add_argument("--size-mb", type=float, default=None)
    args = parser.parse_args(argv)
    result = write_capture(
        args.path,
        args.scenario,
        duration_s=args.duration,
        snaplen=args.snaplen,
        seed=args.seed,
        fmt=args.format,
        target_bytes=int(args.size_mb * 1e6) if args.size_mb else None,
    )
    summary = result.truth.to_dict()
    for key in ("talker_bytes", "talker_packets", "service_bytes", "dns_query_names"):
        summary.pop(key)
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
