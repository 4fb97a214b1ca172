"""From the state at the end of the pass to ``Findings``: rankings, percentiles, the merged series."""

from __future__ import annotations

import math
import statistics
from datetime import UTC, datetime
from typing import Any

from .dissect import _PROTO_NAMES
from .findings import (
    MAX_BUCKETS,
    TOP_N,
    Conversation,
    Count,
    DnsStats,
    FileInfo,
    Findings,
    FlowTable,
    IcmpStats,
    Rtt,
    Series,
    Service,
    Talker,
    TcpHealth,
    Traffic,
    Unreachable,
    _endpoint_label,
    _fmt_ip,
    _hostport,
)
from .flows import _Flow, _State, _TopCounter
from .icmp import _UNREACH_CODES
from .notable import _notable
from .readers import _ReadInfo


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
