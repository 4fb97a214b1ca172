"""TCP health from the pass: unanswered SYNs, resets, retransmissions, zero windows, handshake round trips."""

from __future__ import annotations

import math
import statistics
from typing import Any

from ._findings import Count, Rtt, TcpHealth, fmt_ip, hostport
from ._flows import ScanState, Totals, port_or_none


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _host_port(key: Any) -> str:
    host, port = key
    return hostport(fmt_ip(host), port_or_none(port))


def handshake_rtt(st: ScanState) -> Rtt:
    """Median, p95 and max of the handshake round trips the pass kept."""
    rtts = sorted(st.rtts)
    return Rtt(
        samples=st.rtt_seen,
        median_ms=round(statistics.median(rtts), 6) if rtts else None,
        p95_ms=round(_percentile(rtts, 0.95), 6) if rtts else None,
        max_ms=round(st.rtt_max, 6) if rtts else None,
    )


def tcp_health(st: ScanState, t: Totals) -> TcpHealth:
    """The TCP part of the findings, culprits by source and target."""
    return TcpHealth(
        packets=t.tcp_packets,
        data_packets=t.tcp_data_packets,
        syns=t.syns,
        syns_unanswered=st.syns_unanswered,
        unanswered_connections=st.unanswered_connections,
        unanswered_by_source=[Count(fmt_ip(k), v) for k, v in st.unanswered_by_source.top()],
        unanswered_targets=[Count(_host_port(k), v) for k, v in st.unanswered_targets.top()],
        handshakes=t.handshakes,
        handshake_rtt=handshake_rtt(st),
        rsts=t.rsts,
        rsts_by_source=[Count(fmt_ip(k), v) for k, v in st.rsts_by_source.top()],
        retransmissions=t.retransmissions,
        retransmitted_bytes=t.retransmitted_bytes,
        retransmission_rate=round(t.retransmissions / t.tcp_data_packets, 4) if t.tcp_data_packets else 0.0,
        zero_windows=t.zero_windows,
        zero_windows_by_source=[Count(fmt_ip(k), v) for k, v in st.zwin_by_source.top()],
        headers_missing=t.tcp_headers_missing,
    )
