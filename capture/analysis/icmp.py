"""ICMP destination unreachable: count the codes, the sources and the target quoted inside."""

from __future__ import annotations

from typing import Any

from .dissect import _IP4, _IP6, _PORTS, _PROTO_NAMES
from .findings import _fmt_ip, _hostport
from .flows import _State

_UNREACH_CODES = {
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


def _unreachable(
    st: _State, buf: bytes, l4: int, end: int, src: Any, proto: int, itype: int, code: int
) -> None:
    st.icmp_codes[(itype, code)] = st.icmp_codes.get((itype, code), 0) + 1
    st.icmp_sources.add(src)
    inner = l4 + 8
    target = "?"
    if proto == 1 and inner + 20 <= end:
        vihl, _len, _frag, iproto, _isrc, idst = _IP4.unpack_from(buf, inner)
        ip = _fmt_ip(idst)
        at = inner + ((vihl & 15) << 2)
        target = _target(buf, at, end, iproto, ip)
    elif proto == 58 and inner + 40 <= end:
        _plen, iproto, _isrc, idst = _IP6.unpack_from(buf, inner)
        target = _target(buf, inner + 40, end, iproto, _fmt_ip(idst))
    st.icmp_targets.add(target)


def _target(buf: bytes, at: int, end: int, proto: int, ip: str) -> str:
    name = _PROTO_NAMES.get(proto, f"proto {proto}")
    if proto in (6, 17) and at + 4 <= end:
        return f"{name} {_hostport(ip, _PORTS.unpack_from(buf, at)[1])}"
    return f"{name} {ip}"
