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

The package, by what each module does: ``readers`` turns a pcap/pcapng stream into records, ``dissect``
holds the header layouts and link types, ``scan`` is the one pass (the hot loop), ``flows`` the bounded
state it fills, ``dns`` and ``icmp`` the two payloads it looks into, ``summary`` turns the state into
``Findings`` (defined in ``findings``) and ``notable`` writes the lines a person reads first.
"""

from __future__ import annotations

from .findings import SCHEMA_VERSION, CaptureReadError, Findings
from .findings import Conversation as Conversation
from .findings import Count as Count
from .findings import DnsStats as DnsStats
from .findings import FileInfo as FileInfo
from .findings import FlowTable as FlowTable
from .findings import IcmpStats as IcmpStats
from .findings import Rtt as Rtt
from .findings import Series as Series
from .findings import Service as Service
from .findings import Talker as Talker
from .findings import TcpHealth as TcpHealth
from .findings import Traffic as Traffic
from .findings import Unreachable as Unreachable
from .scan import analyze, analyze_file

__all__ = [
    "SCHEMA_VERSION",
    "CaptureReadError",
    "Findings",
    "analyze",
    "analyze_file",
]
