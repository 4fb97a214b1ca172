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
when they hit their caps. Handshake round-trip times keep every sample up to 20,000, then a uniform
reservoir. The series (packets, bytes and the events a headline rests on: SYNs, resets, retransmissions,
failed DNS answers, ICMP unreachables, zero windows) have at most 120 buckets: the bucket width
grows (10 ms, 20 ms, 100 ms, ... 1 s, 2 s, 10 s, 20 s, 1 min, ...) as the capture gets longer, over 480
fine buckets that are merged into 60 to 120 at the end.

This module is the package's one public face: every name a caller may use is in ``__all__`` (a test keeps
the two in step). The modules behind it are private (``_scan`` and so on) and use each other's public names:
``_readers`` turns a pcap/pcapng stream into records, ``_dissect`` holds the header layouts and link types,
``_scan`` is the one pass (the hot loop), ``_flows`` the bounded state it fills and the ``Totals`` it hands
on, ``_tcp``, ``_dns`` and ``_icmp`` count and summarise their topics, ``_summary`` assembles ``Findings``
(defined in ``_findings``), ``_problems`` says what is wrong and who is responsible (``Findings.problems``
and the ``headline``) and ``_notable`` writes the lines a person reads first.

The headline says what was found; the report adds where: ``report_headline(findings.headline, vm=...,
alert=..., severity=...)`` gives ``"SYN flood towards 10.0.0.4:443 from 3 sources, ...; vm-web-1, alert
vm-web-cpu Sev2"``.
"""

from __future__ import annotations

from ._findings import (
    SCHEMA_VERSION,
    CaptureReadError,
    Conversation,
    Count,
    DnsServer,
    DnsStats,
    FileInfo,
    Findings,
    FlowTable,
    IcmpStats,
    Problem,
    Rtt,
    Series,
    Service,
    Talker,
    TcpHealth,
    Traffic,
    Unreachable,
)
from ._problems import PROBLEM_KINDS, report_headline
from ._scan import analyze, analyze_file

__all__ = [
    "PROBLEM_KINDS",
    "SCHEMA_VERSION",
    "CaptureReadError",
    "Conversation",
    "Count",
    "DnsServer",
    "DnsStats",
    "FileInfo",
    "Findings",
    "FlowTable",
    "IcmpStats",
    "Problem",
    "Rtt",
    "Series",
    "Service",
    "Talker",
    "TcpHealth",
    "Traffic",
    "Unreachable",
    "analyze",
    "analyze_file",
    "report_headline",
]
