"""DNS on port 53: parse a message with dpkt, count queries, response codes and failing names."""

from __future__ import annotations

import struct
from typing import Any

import dpkt

from ._findings import Count, DnsServer, DnsStats, fmt_ip
from ._flows import ScanState, Totals

RCODE_NAMES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def count_dns(st: ScanState, payload: bytes, src: Any, dst: Any) -> int:
    """Parse one DNS message: 1 query, 2 answer, 3 failed answer, 0 unparsable."""
    try:
        msg = dpkt.dns.DNS(payload)
    except (dpkt.Error, struct.error, ValueError, IndexError, UnicodeDecodeError):
        return 0
    name = msg.qd[0].name.lower().rstrip(".") if msg.qd else "(no question)"
    if msg.qr == dpkt.dns.DNS_Q:
        st.dns_names.add(name)
        st.dns_queries_to.add(dst)
        return 1
    rcode = RCODE_NAMES.get(msg.rcode, f"RCODE{msg.rcode}")
    st.dns_rcodes[rcode] = st.dns_rcodes.get(rcode, 0) + 1
    st.dns_answers_from.add(src)
    if rcode != "NOERROR":
        st.dns_failed.add((name, rcode))
        st.dns_failures_from.add(src)
        return 3
    return 2


def dns_stats(st: ScanState, t: Totals) -> DnsStats:
    """The DNS part of the findings: answer codes, the most asked and the failing names."""
    rcodes = dict(sorted(st.dns_rcodes.items(), key=lambda kv: -kv[1]))
    failed = sum(v for k, v in rcodes.items() if k != "NOERROR")
    return DnsStats(
        packets=t.dns_packets,
        queries=t.dns_queries,
        responses=t.dns_responses,
        unparsed=t.dns_unparsed,
        rcodes=rcodes,
        failed=failed,
        failure_rate=round(failed / t.dns_responses, 4) if t.dns_responses else 0.0,
        nxdomain=rcodes.get("NXDOMAIN", 0),
        servfail=rcodes.get("SERVFAIL", 0),
        top_queried=[Count(str(k), v) for k, v in st.dns_names.top()],
        top_failed=[Count(f"{k[0]} ({k[1]})", v) for k, v in st.dns_failed.top()],
        servers=[
            DnsServer(
                fmt_ip(server),
                queries,
                st.dns_answers_from.counts.get(server, 0),
                st.dns_failures_from.counts.get(server, 0),
            )
            for server, queries in st.dns_queries_to.top()
        ],
    )
