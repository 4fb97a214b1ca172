"""Fixed-offset frame decoding: link types, header layouts and the rarer link/IPv6 paths of the pass."""

from __future__ import annotations

import struct

import dpkt

LT_NULL = dpkt.pcap.DLT_NULL
LT_ETHERNET = dpkt.pcap.DLT_EN10MB
# raw IP: LINKTYPE_RAW (101) in files, the platform DLT_RAW values (12, 14), LINKTYPE_IPV4/IPV6 (228, 229)
LT_RAW = frozenset((101, dpkt.pcap.DLT_RAW, 12, 14, 228, 229))
LT_SLL = dpkt.pcap.DLT_LINUX_SLL
LT_SLL2 = 276
SUPPORTED_LINKS = frozenset((LT_NULL, LT_ETHERNET, LT_SLL, LT_SLL2)) | LT_RAW

IP4 = struct.Struct("!BxHxxHxBxxII")  # ver/ihl, total length, flags/fragment, protocol, src, dst
IP6 = struct.Struct("!4xHBx16s16s")  # payload length, next header, src, dst
TCP = struct.Struct("!HHIIHH")  # ports, seq, ack, offset/flags, window
PORTS = struct.Struct("!HH")
UDP = struct.Struct("!HHH")

PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}


def link_offset(link: int, buf: bytes, off: int, cap: int) -> tuple[int, int]:
    """(l3 offset, ethertype) for the less common link types; ethertype 0 when unknown."""
    if link in LT_RAW:
        if cap < 1:
            return off, 0
        version = buf[off] >> 4
        return off, 0x0800 if version == 4 else 0x86DD if version == 6 else 0
    if link == LT_SLL:
        return (off + 16, (buf[off + 14] << 8) | buf[off + 15]) if cap >= 16 else (off, 0)
    if link == LT_SLL2:
        return (off + 20, (buf[off] << 8) | buf[off + 1]) if cap >= 20 else (off, 0)
    if link == LT_NULL:
        if cap < 4:
            return off, 0
        family = struct.unpack_from("<I", buf, off)[0]
        if family > 0xFFFF:  # written in the other byte order
            family = struct.unpack_from(">I", buf, off)[0]
        return off + 4, 0x0800 if family == 2 else 0x86DD if family in (10, 24, 28, 30) else 0
    return off, 0


def skip_ipv6_ext(buf: bytes, l4: int, end: int, proto: int, payload_len: int) -> tuple[int, int, int, bool]:
    """Skip IPv6 extension headers: (protocol, l4 offset, payload length, has l4 header)."""
    for _ in range(8):
        if proto not in (0, 43, 44, 60, 51) or l4 + 8 > end:
            break
        if proto == 44:
            nxt = buf[l4]
            frag_offset = ((buf[l4 + 2] << 8) | buf[l4 + 3]) >> 3
            l4 += 8
            payload_len -= 8
            proto = nxt
            if frag_offset:
                return proto, l4, payload_len, False
            continue
        size = (buf[l4 + 1] + 2) * 4 if proto == 51 else (buf[l4 + 1] + 1) * 8
        proto = buf[l4]
        l4 += size
        payload_len -= size
    return proto, l4, payload_len, proto not in (0, 43, 44, 60, 51)


def proto_name(proto: int) -> str:
    """How the findings name an IP protocol number."""
    return PROTO_NAMES.get(proto, f"ip-proto-{proto}")
