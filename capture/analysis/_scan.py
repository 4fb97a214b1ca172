"""The one streaming pass: the per-packet hot loop, kept in one function with its names bound locally."""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO

from ._dissect import IP4, IP6, PORTS, TCP, UDP, link_offset, skip_ipv6_ext
from ._dns import count_dns
from ._findings import MAX_BUCKETS, Findings
from ._flows import Flow, ScanState, Totals
from ._icmp import count_unreachable
from ._readers import READ_SIZE, open_capture
from ._summary import build_findings

_FINE_BUCKETS = 4 * MAX_BUCKETS  # the pass keeps a finer series and merges it down at the end
_MASK32 = 0xFFFFFFFF
_HALF32 = 0x80000000
# the per-bucket event series, in the order the pass keeps them
_EVENTS = ("syns", "rsts", "retransmissions", "dns_failures", "icmp_unreachable", "zero_windows")
# bucket widths in units of 10 ms; each divides the next, so buckets merge exactly
_LADDER = (1, 2, 10, 20, 100, 200, 1000, 2000, 6000, 12000, 60000, 120000, 360000, 720000)


def _merged(values: list[int], k: int) -> list[int]:
    """Buckets merged ``k`` to one, padded back to the fine length (the series grows into the rest)."""
    out = [sum(values[i : i + k]) for i in range(0, _FINE_BUCKETS, k)]
    return out + [0] * (_FINE_BUCKETS - len(out))


def analyze_file(path: str | Path, *, max_flows: int = 10_000) -> Findings:
    """``analyze`` on a local file."""
    with open(path, "rb", buffering=0) as fh:
        return analyze(fh, max_flows=max_flows)


def analyze(stream: BinaryIO, *, max_flows: int = 10_000, read_size: int = READ_SIZE) -> Findings:
    """Analyse a pcap/pcapng stream in one pass; raises ``CaptureReadError`` if it is not a capture.

    ``max_flows`` bounds the conversation table (memory); ``read_size`` is the bytes per read.
    """
    if max_flows < 4:
        raise ValueError("max_flows must be at least 4")
    info, records = open_capture(stream, read_size)
    st = ScanState(max_flows)
    flows = st.flows
    flows_get = flows.get
    ip4 = IP4.unpack_from
    ip6 = IP6.unpack_from
    tcp_u = TCP.unpack_from
    ports_u = PORTS.unpack_from
    udp_u = UDP.unpack_from

    packets = total = captured = 0
    first = math.inf
    last = -math.inf
    other_pk = other_by = 0  # frames that are not IP (or whose IP header was not captured)
    no_ports = 0
    snap_cut = 0
    tcp_pk = tcp_data = syns = rsts = rtx = rtx_by = zwin = tcp_nohdr = handshakes = 0
    dns_pk = dns_q = dns_r = dns_bad = 0
    icmp_unreach = 0
    # the series: fixed 120 buckets, width grows along _LADDER
    s_level = 0
    s_width = _LADDER[0] / 100.0
    s_inv = 1.0 / s_width
    s_pk = [0] * _FINE_BUCKETS
    s_by = [0] * _FINE_BUCKETS
    # the events a headline can rest on, per bucket (index: _EVENTS)
    s_syn, s_rst, s_rtx, s_dnsf, s_icmp, s_zw = ev = [[0] * _FINE_BUCKETS for _ in _EVENTS]
    s_t0 = 0.0
    s_hi = 0

    for ts, buf, off, cap, wire, link in records:
        if packets == 0:
            s_t0 = ts
        packets += 1
        total += wire
        captured += cap
        if cap < wire:
            snap_cut += 1
        if ts < first:
            first = ts
        if ts > last:
            last = ts
        idx = int((ts - s_t0) * s_inv)
        if idx >= _FINE_BUCKETS:
            while idx >= _FINE_BUCKETS:
                s_level += 1
                new_width = _LADDER[s_level] if s_level < len(_LADDER) else _LADDER[-1] * 2 ** (s_level - 13)
                old_width = (
                    _LADDER[s_level - 1] if s_level - 1 < len(_LADDER) else _LADDER[-1] * 2 ** (s_level - 14)
                )
                k = new_width // old_width
                s_pk = _merged(s_pk, k)
                s_by = _merged(s_by, k)
                s_syn, s_rst, s_rtx, s_dnsf, s_icmp, s_zw = ev = [_merged(e, k) for e in ev]
                s_hi //= k
                s_width = new_width / 100.0
                s_inv = 1.0 / s_width
                idx = int((ts - s_t0) * s_inv)
        elif idx < 0:
            idx = 0
        if idx > s_hi:
            s_hi = idx
        s_pk[idx] += 1
        s_by[idx] += wire

        # ---- link layer -> (l3 offset, ethertype)
        end = off + cap
        if link == 1:
            if cap < 14:
                other_pk += 1
                other_by += wire
                continue
            et = (buf[off + 12] << 8) | buf[off + 13]
            l3 = off + 14
            while et == 0x8100 or et == 0x88A8:
                if l3 + 4 > end:
                    et = 0
                    break
                et = (buf[l3 + 2] << 8) | buf[l3 + 3]
                l3 += 4
        else:
            l3, et = link_offset(link, buf, off, cap)

        # ---- network layer
        if et == 0x0800:
            if end - l3 < 20:
                other_pk += 1
                other_by += wire
                continue
            vihl, iplen, frag, proto, src, dst = ip4(buf, l3)
            ihl = (vihl & 15) << 2
            l4 = l3 + ihl
            payload_len = iplen - ihl if iplen else wire - (l4 - off)
            has_l4 = not (frag & 0x1FFF)
        elif et == 0x86DD:
            if end - l3 < 40:
                other_pk += 1
                other_by += wire
                continue
            payload_len, proto, src, dst = ip6(buf, l3)
            l4 = l3 + 40
            has_l4 = True
            if proto in (0, 43, 44, 60, 51):
                proto, l4, payload_len, has_l4 = skip_ipv6_ext(buf, l4, end, proto, payload_len)
        else:
            other_pk += 1
            other_by += wire
            continue

        # ---- transport: ports when captured
        avail = end - l4 if has_l4 else 0
        tcp_full = False
        sport = dport = -1
        if proto == 6:
            tcp_pk += 1
            if avail >= 16:
                sport, dport, seq, _ack, offflags, win = tcp_u(buf, l4)
                tcp_full = True
            else:
                tcp_nohdr += 1
                if avail >= 4:
                    sport, dport = ports_u(buf, l4)
        elif proto == 17 and avail >= 4:
            sport, dport = ports_u(buf, l4)
        if sport < 0:
            no_ports += 1

        # ---- the conversation
        if src < dst or (src == dst and sport <= dport):
            key = (src, dst, sport, dport, proto)
            fwd = True
        else:
            key = (dst, src, dport, sport, proto)
            fwd = False
        f = flows_get(key)
        if f is None:
            if len(flows) >= max_flows:
                st.evict()
            st.flow_order += 1
            st.conversations += 1
            f = flows[key] = Flow(key, ts, fwd, st.flow_order)
            if len(flows) > st.peak:
                st.peak = len(flows)
        if fwd:
            f.pk_ab += 1
            f.by_ab += wire
        else:
            f.pk_ba += 1
            f.by_ba += wire
        f.last = ts

        if tcp_full:
            flags = offflags & 0x3F
            if flags & 0x07:  # SYN, FIN or RST
                if flags & 0x02:
                    if flags & 0x10:
                        # SYN-ACK: the handshake RTT from the (last) SYN of the other side
                        if not f.synack and f.syns and f.client_a != fwd:
                            f.synack = True
                            f.ack_wait = True
                            handshakes += 1
                    else:
                        syns += 1
                        s_syn[idx] += 1
                        f.syns += 1
                        f.syn_ts = ts
                        f.client_a = fwd
                if flags & 0x04:
                    rsts += 1
                    s_rst[idx] += 1
                    st.rsts_by_source.add(src)
                    if f.syns and fwd != f.client_a:
                        flags |= 0x200
                f.flags |= flags
            else:
                if win == 0:
                    zwin += 1
                    s_zw[idx] += 1
                    f.zwin += 1
                    st.zwin_by_source.add(src)
                if f.ack_wait and fwd == f.client_a:
                    # the client's ACK of the SYN-ACK: SYN -> ACK is the whole round trip wherever the
                    # capture point sits (at the client SYN -> SYN-ACK is, at the server SYN-ACK -> ACK)
                    f.ack_wait = False
                    f.irtt = (ts - f.syn_ts) * 1000.0
                    st.rtt(f.irtt)
            plen = payload_len - ((offflags >> 12) << 2)
            if plen > 0:
                tcp_data += 1
                f.data_pk += 1
                e = (seq + plen) & _MASK32
                h = f.hi_ab if fwd else f.hi_ba
                if h < 0:
                    h = e
                else:
                    d = (e - h) & _MASK32
                    if d == 0 or d >= _HALF32:
                        # ends at or before the highest byte already seen: sent again (keep-alives excepted)
                        if not (plen == 1 and d == 0):
                            rtx += 1
                            rtx_by += wire
                            s_rtx[idx] += 1
                            if fwd:
                                f.rtx_ab += 1
                            else:
                                f.rtx_ba += 1
                    else:
                        h = e
                if fwd:
                    f.hi_ab = h
                else:
                    f.hi_ba = h
        elif proto == 17:
            if sport == 53 or dport == 53:
                dns_pk += 1
                ulen = udp_u(buf, l4)[2] if avail >= 6 else 0
                start = l4 + 8
                if ulen < 8 or start + ulen - 8 > end:
                    dns_bad += 1
                else:
                    kind = count_dns(st, buf[start : start + ulen - 8], src, dst)
                    if kind == 1:
                        dns_q += 1
                    elif kind >= 2:
                        dns_r += 1
                        if kind == 3:
                            s_dnsf[idx] += 1
                    else:
                        dns_bad += 1
        elif (proto == 1 or proto == 58) and avail >= 4:
            itype = buf[l4]
            if (itype == 3 and proto == 1) or (itype == 1 and proto == 58):
                icmp_unreach += 1
                s_icmp[idx] += 1
                count_unreachable(st, buf, l4, end, src, proto, itype, buf[l4 + 1])

    # -------------------------------------------------------------------------------------------------
    for f in list(flows.values()):
        st.retire(f)
    return build_findings(
        st,
        info,
        Totals(
            packets=packets,
            bytes=total,
            captured_bytes=captured,
            first=first,
            last=last,
            other_packets=other_pk,
            other_bytes=other_by,
            packets_without_ports=no_ports,
            snap_cut=snap_cut,
            tcp_packets=tcp_pk,
            tcp_data_packets=tcp_data,
            syns=syns,
            rsts=rsts,
            retransmissions=rtx,
            retransmitted_bytes=rtx_by,
            zero_windows=zwin,
            tcp_headers_missing=tcp_nohdr,
            handshakes=handshakes,
            dns_packets=dns_pk,
            dns_queries=dns_q,
            dns_responses=dns_r,
            dns_unparsed=dns_bad,
            icmp_unreachable=icmp_unreach,
            bucket_s=s_width,
            series_packets=s_pk[: s_hi + 1] if packets else [],
            series_bytes=s_by[: s_hi + 1] if packets else [],
            series_events={
                name: e[: s_hi + 1] if packets else [] for name, e in zip(_EVENTS, ev, strict=True)
            },
        ),
    )
