"""What an analysis returns: the typed ``Findings`` (the summary document) or a ``CaptureReadError``."""

from __future__ import annotations

import socket
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA_VERSION = 2  # 2: headline, problems, event series, refused/scans/DNS servers; RTT is SYN -> ACK
MAX_BUCKETS = 120
TOP_N = 10


class CaptureReadError(Exception):
    """The file is not a readable capture (bad magic, unreadable header). ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
    """Per-bucket counts over the capture: a chart shows when a problem happened, not only that it did."""

    bucket_s: float
    packets: list[int]
    bytes: list[int]
    packets_per_s: list[float]
    syns: list[int]  # SYNs (without ACK): connection attempts
    rsts: list[int]
    retransmissions: list[int]
    dns_failures: list[int]  # DNS answers other than NOERROR
    icmp_unreachable: list[int]
    zero_windows: list[int]


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
        return endpoint_label(self.client, None, self.server, self.server_port, self.proto)


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
        return endpoint_label(self.client, None, self.server, self.server_port, self.proto)


@dataclass(frozen=True, slots=True)
class FlowTable:
    conversations: int  # conversations seen (a conversation retired and seen again counts twice)
    max_flows: int
    peak_tracked: int
    evicted: int
    packets_without_ports: int  # L4 header not captured (snap length) or not TCP/UDP


@dataclass(frozen=True, slots=True)
class Rtt:
    """Handshake round trips, SYN to the client's ACK (Wireshark's iRTT): right wherever the capture is."""

    samples: int
    median_ms: float | None
    p95_ms: float | None
    max_ms: float | None
    slowest: str | None  # the service with the highest mean round trip (label), when any was timed
    slowest_mean_ms: float | None


@dataclass(frozen=True, slots=True)
class TcpHealth:
    packets: int
    data_packets: int
    syns: int
    syns_unanswered: int
    unanswered_connections: int
    unanswered_by_source: list[Count]
    unanswered_targets: list[Count]
    half_open: int  # handshakes answered with a SYN-ACK that the client never acknowledged
    half_open_by_source: list[Count]
    half_open_targets: list[Count]
    handshakes: int
    handshake_rtt: Rtt
    rsts: int
    rsts_by_source: list[Count]
    refused: int  # connection attempts answered by a reset: nothing listens on that port
    refused_targets: list[Count]  # server:port
    refused_by_source: list[Count]
    port_scanners: list[Count]  # sources by distinct server:port pairs they tried without exchanging data
    retransmissions: int
    retransmitted_bytes: int
    retransmission_rate: float  # of data segments
    retransmissions_by_sender: list[Count]
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
    servers: list[DnsServer]  # by queries sent to them


@dataclass(frozen=True, slots=True)
class DnsServer:
    """One DNS server as the capture saw it: queries sent to it, answers and failures it sent back."""

    server: str
    queries: int
    answers: int
    failures: int  # answers other than NOERROR


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
class Problem:
    """Something abnormal the capture shows, in one sentence that names its culprits.

    ``kind`` is one of ``PROBLEM_KINDS``; ``culprits`` are the hosts or endpoints most responsible, with the
    count they are ranked by (``culprits_are`` says what it counts); ``series`` names the ``Series`` list that
    shows it over time (``packets`` when none does better).
    """

    kind: str
    summary: str
    culprits: list[Count]
    culprits_are: str
    series: str


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
    problems: list[Problem] = field(default_factory=list)  # most important first; empty: nothing abnormal
    headline: str = ""  # what was found (the first problem's summary) or that nothing abnormal was
    notable: list[str] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        return self.file.truncated

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        return {"version": SCHEMA_VERSION, "ok": True, "truncated": self.file.truncated, **body}


# how an endpoint is written in the findings
def fmt_ip(value: Any) -> str:
    """An address as the pass keeps it (IPv4 as int, IPv6 as 16 bytes) in text."""
    if isinstance(value, int):
        return socket.inet_ntoa(value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, bytes(value))


def hostport(host: str, port: int | None) -> str:
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def endpoint_label(client: str, cport: int | None, server: str, sport: int | None, proto: str) -> str:
    suffix = "" if proto == "tcp" else f" ({proto})"
    return f"{hostport(client, cport)} → {hostport(server, sport)}{suffix}"
