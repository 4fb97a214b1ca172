"""ICMP destination unreachable: count the codes, the sources and the target quoted inside."""

from __future__ import annotations

from typing import Any

from ._dissect import IP4, IP6, PORTS, PROTO_NAMES
from ._findings import Count, IcmpStats, Unreachable, fmt_ip, hostport
from ._flows import ScanState, Totals

UNREACHABLE_MEANINGS = {
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


def count_unreachable(
    st: ScanState, buf: bytes, l4: int, end: int, src: Any, proto: int, itype: int, code: int
) -> None:
    """Count one unreachable by code and source, and the destination of the packet it quotes."""
    st.icmp_codes[(itype, code)] = st.icmp_codes.get((itype, code), 0) + 1
    st.icmp_sources.add(src)
    inner = l4 + 8
    target = "?"
    if proto == 1 and inner + 20 <= end:
        vihl, _len, _frag, iproto, _isrc, idst = IP4.unpack_from(buf, inner)
        at = inner + ((vihl & 15) << 2)
        target = _target(buf, at, end, iproto, fmt_ip(idst))
    elif proto == 58 and inner + 40 <= end:
        _plen, iproto, _isrc, idst = IP6.unpack_from(buf, inner)
        target = _target(buf, inner + 40, end, iproto, fmt_ip(idst))
    st.icmp_targets.add(target)


def _target(buf: bytes, at: int, end: int, proto: int, ip: str) -> str:
    name = PROTO_NAMES.get(proto, f"proto {proto}")
    if proto in (6, 17) and at + 4 <= end:
        return f"{name} {hostport(ip, PORTS.unpack_from(buf, at)[1])}"
    return f"{name} {ip}"


def icmp_stats(st: ScanState, t: Totals, icmp_packets: int) -> IcmpStats:
    """The ICMP part of the findings: unreachables by meaning, who sent them, what they were about."""
    return IcmpStats(
        packets=icmp_packets,
        unreachable=t.icmp_unreachable,
        unreachable_by_code=[
            Unreachable(ty, code, UNREACHABLE_MEANINGS.get((ty, code), f"type {ty} code {code}"), n)
            for (ty, code), n in sorted(st.icmp_codes.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        unreachable_sources=[Count(fmt_ip(k), v) for k, v in st.icmp_sources.top()],
        unreachable_targets=[Count(str(k), v) for k, v in st.icmp_targets.top()],
    )
