"""DNS on port 53: parse a message with dpkt, count queries, response codes and failing names."""

from __future__ import annotations

import struct

import dpkt

from .flows import _State

_DNS_RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def _dns(st: _State, payload: bytes) -> int:
    """Parse one DNS message: 1 query, 2 response, 0 unparsable."""
    try:
        msg = dpkt.dns.DNS(payload)
    except (dpkt.Error, struct.error, ValueError, IndexError, UnicodeDecodeError):
        return 0
    name = msg.qd[0].name.lower().rstrip(".") if msg.qd else "(no question)"
    if msg.qr == dpkt.dns.DNS_Q:
        st.dns_names.add(name)
        return 1
    rcode = _DNS_RCODES.get(msg.rcode, f"RCODE{msg.rcode}")
    st.dns_rcodes[rcode] = st.dns_rcodes.get(rcode, 0) + 1
    if rcode != "NOERROR":
        st.dns_failed.add((name, rcode))
    return 2
