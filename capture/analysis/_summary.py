"""From the state at the end of the pass to ``Findings``: each topic's module summarises its part."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

from ._dns import dns_stats
from ._findings import MAX_BUCKETS, FileInfo, Findings, FlowTable, Series, Traffic
from ._flows import ScanState, Totals, conversation, top_services, top_talkers
from ._icmp import icmp_stats
from ._notable import notable_lines, ports_hidden
from ._problems import diagnose, nothing_abnormal
from ._readers import ReadInfo
from ._tcp import tcp_health


def _iso(base_sec: int, rel: float) -> str | None:
    """ISO 8601 UTC, or None for a timestamp no calendar holds (a corrupt record)."""
    try:
        return datetime.fromtimestamp(base_sec + rel, tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return None


def series(t: Totals) -> Series:
    """The packets and bytes per bucket, merged down to at most ``MAX_BUCKETS``."""
    width, s_pk, s_by = t.bucket_s, t.series_packets, t.series_bytes
    k = max(1, math.ceil(len(s_pk) / MAX_BUCKETS))
    if k > 1:
        s_pk = [sum(s_pk[i : i + k]) for i in range(0, len(s_pk), k)]
        s_by = [sum(s_by[i : i + k]) for i in range(0, len(s_by), k)]
        width = round(width * k, 6)
    ev = t.series_events
    if k > 1:
        ev = {name: [sum(e[i : i + k]) for i in range(0, len(e), k)] for name, e in ev.items()}
    return Series(
        bucket_s=width,
        packets=s_pk,
        bytes=s_by,
        packets_per_s=[round(n / width, 1) for n in s_pk],
        syns=ev["syns"],
        rsts=ev["rsts"],
        retransmissions=ev["retransmissions"],
        dns_failures=ev["dns_failures"],
        icmp_unreachable=ev["icmp_unreachable"],
        zero_windows=ev["zero_windows"],
    )


def file_info(info: ReadInfo) -> FileInfo:
    """What the reader learnt about the file."""
    return FileInfo(
        format=info.format,
        byte_order=info.byte_order,
        timestamp_resolution=info.resolution,
        link_type=info.link_type,
        snaplen=info.snaplen,
        bytes_read=info.bytes_read,
        truncated=info.truncated,
        truncated_bytes=info.truncated_bytes,
        problem=info.problem,
    )


def build_findings(st: ScanState, info: ReadInfo, t: Totals) -> Findings:
    """The findings document, with its notable lines, from everything the pass counted."""
    packets = t.packets
    first, last = (t.first, t.last) if packets else (0.0, 0.0)
    proto_pk = dict(st.proto_pk)
    proto_by = dict(st.proto_by)
    proto_pk[0] += t.other_packets
    proto_by[0] += t.other_bytes
    talkers, capture_host = top_talkers(st, t.bytes, packets)
    base = info.base_sec if info.base_sec >= 0 else 0
    findings = Findings(
        file=file_info(info),
        start=_iso(base, first) if packets else None,
        end=_iso(base, last) if packets else None,
        duration_s=round(max(0.0, last - first), 6),
        packets=packets,
        bytes=t.bytes,
        captured_bytes=t.captured_bytes,
        capture_host=capture_host,
        series=series(t),
        protocols={
            name: Traffic(proto_pk[k], proto_by[k])
            for name, k in (("tcp", 6), ("udp", 17), ("icmp", 1), ("other", 0))
        },
        top_talkers=talkers,
        top_conversations_by_bytes=[
            conversation(f, first) for _, _, f in sorted(st.top_by_bytes, reverse=True)
        ],
        top_conversations_by_packets=[
            conversation(f, first) for _, _, f in sorted(st.top_by_packets, reverse=True)
        ],
        top_services=top_services(st, t.bytes),
        flows=FlowTable(
            conversations=st.conversations,
            max_flows=st.max_flows,
            peak_tracked=st.peak,
            evicted=st.evicted,
            packets_without_ports=t.packets_without_ports,
        ),
        tcp=tcp_health(st, t),
        dns=dns_stats(st, t),
        icmp=icmp_stats(st, t, proto_pk[1]),
    )
    problems = diagnose(findings, st)
    if problems:
        headline = problems[0].summary[0].upper() + problems[0].summary[1:]
    else:
        headline = nothing_abnormal(findings)
        if ports_hidden(findings, t.snap_cut):
            headline = (
                f"Nothing abnormal seen, but packets were cut to {findings.file.snaplen} bytes: "
                "ports, TCP and DNS were not visible"
            )
    findings = replace(findings, problems=problems, headline=headline)
    findings.notable.extend(notable_lines(findings, snap_cut=t.snap_cut, talkers_dropped=st.talkers_dropped))
    return findings
