"""TCP health from the pass: unanswered SYNs, resets, retransmissions, zero windows, handshake round trips."""

from __future__ import annotations

import math
import statistics
from typing import Any

from ._dissect import proto_name
from ._findings import TOP_N, Count, Rtt, TcpHealth, endpoint_label, fmt_ip, hostport
from ._flows import ScanState, Totals, port_or_none

# a source is a scanner when it tried this many distinct server ports without exchanging data
SCAN_MIN_PORTS = 20


def _percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _host_port(key: Any) -> str:
    host, port = key
    return hostport(fmt_ip(host), port_or_none(port))


def handshake_rtt(st: ScanState) -> Rtt:
    """Median, p95 and max of the handshake round trips the pass kept."""
    rtts = sorted(st.rtts)
    timed = [(k, a) for k, a in st.services.items() if a.handshakes_timed]
    slowest = max(timed, key=lambda kv: (kv[1].rtt_sum_ms / kv[1].handshakes_timed, str(kv[0])), default=None)
    label = mean = None
    if slowest is not None:
        (client, server, sport, proto), agg = slowest
        label = endpoint_label(fmt_ip(client), None, fmt_ip(server), port_or_none(sport), proto_name(proto))
        mean = round(agg.rtt_sum_ms / agg.handshakes_timed, 3)
    return Rtt(
        samples=st.rtt_seen,
        median_ms=round(statistics.median(rtts), 6) if rtts else None,
        p95_ms=round(_percentile(rtts, 0.95), 6) if rtts else None,
        max_ms=round(st.rtt_max, 6) if rtts else None,
        slowest=label,
        slowest_mean_ms=mean,
    )


def port_scanners(st: ScanState) -> list[Count]:
    """Sources that tried at least ``SCAN_MIN_PORTS`` distinct server ports without exchanging data."""
    ranked = sorted(st.probes.items(), key=lambda kv: (-len({port for _, port in kv[1]}), fmt_ip(kv[0])))
    out = []
    for host, tried in ranked[:TOP_N]:
        ports = len({port for _, port in tried})
        if ports < SCAN_MIN_PORTS:
            break
        out.append(Count(fmt_ip(host), ports))
    return out


def scan_targets(st: ScanState, scanner: str) -> list[Count]:
    """The hosts a scanner probed, by distinct ports tried."""
    for host, tried in st.probes.items():
        if fmt_ip(host) == scanner:
            per: dict[Any, int] = {}
            for server, _port in tried:
                per[server] = per.get(server, 0) + 1
            return [Count(fmt_ip(k), v) for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:TOP_N]]
    return []


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
        half_open=st.half_open,
        half_open_by_source=[Count(fmt_ip(k), v) for k, v in st.half_open_by_source.top()],
        half_open_targets=[Count(_host_port(k), v) for k, v in st.half_open_targets.top()],
        handshakes=t.handshakes,
        handshake_rtt=handshake_rtt(st),
        rsts=t.rsts,
        rsts_by_source=[Count(fmt_ip(k), v) for k, v in st.rsts_by_source.top()],
        refused=st.refused_connections,
        refused_targets=[Count(_host_port(k), v) for k, v in st.refused_targets.top()],
        refused_by_source=[Count(fmt_ip(k), v) for k, v in st.refused_by_source.top()],
        port_scanners=port_scanners(st),
        retransmissions=t.retransmissions,
        retransmitted_bytes=t.retransmitted_bytes,
        retransmission_rate=round(t.retransmissions / t.tcp_data_packets, 4) if t.tcp_data_packets else 0.0,
        retransmissions_by_sender=[Count(fmt_ip(k), v) for k, v in st.rtx_by_sender.top()],
        zero_windows=t.zero_windows,
        zero_windows_by_source=[Count(fmt_ip(k), v) for k, v in st.zwin_by_source.top()],
        headers_missing=t.tcp_headers_missing,
    )
