"""A capture stream as packet records: pcap/pcapng sniffing, chunked reads, truncation handling."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import dpkt

from ._dissect import LT_ETHERNET
from ._findings import CaptureReadError

READ_SIZE = 1 << 20  # bytes per read: big enough to amortise the call, small enough to stay bounded
_MAX_RECORD = 1 << 18  # 256 KiB: larger records are corruption, as in Wireshark
_MAX_BLOCK = 16 << 20

_MAGIC_PCAP = {
    struct.pack("<I", dpkt.pcap.TCPDUMP_MAGIC): ("<", False, 16),
    struct.pack(">I", dpkt.pcap.TCPDUMP_MAGIC): (">", False, 16),
    struct.pack("<I", dpkt.pcap.TCPDUMP_MAGIC_NANO): ("<", True, 16),
    struct.pack(">I", dpkt.pcap.TCPDUMP_MAGIC_NANO): (">", True, 16),
    struct.pack("<I", dpkt.pcap.MODPCAP_MAGIC): ("<", False, 24),
    struct.pack(">I", dpkt.pcap.MODPCAP_MAGIC): (">", False, 24),
}
_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D

# (relative ts, buffer, offset, captured length, wire length, link type) per record
Record = tuple[float, bytes, int, int, int, int]


@dataclass
class ReadInfo:
    """What the reader learnt about the file, filled in as it goes (truncation is known only at the end)."""

    format: str = "pcap"
    byte_order: str = "little"
    resolution: str = "us"
    link_type: int = LT_ETHERNET
    snaplen: int = 0
    base_sec: int = -1  # epoch second of the first packet: timestamps are relative to it (keeps precision)
    bytes_read: int = 0
    truncated: bool = False
    truncated_bytes: int = 0
    problem: str | None = None


def _read(stream: BinaryIO, size: int) -> bytes:
    """Read up to ``size`` bytes, looping over short reads (raw streams may return less)."""
    data = stream.read(size)
    if not data or len(data) >= size:
        return data or b""
    parts = [data]
    got = len(data)
    while got < size:
        more = stream.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def open_capture(stream: BinaryIO, read_size: int = READ_SIZE) -> tuple[ReadInfo, Iterator[Record]]:
    """Sniff the format and return its description and its records; ``CaptureReadError`` if not a capture."""
    head = _read(stream, 24)
    if not head:
        raise CaptureReadError("empty file")
    if len(head) < 4:
        raise CaptureReadError("not a capture file: too short")
    magic = head[:4]
    info = ReadInfo()
    if magic in _MAGIC_PCAP:
        endian, nano, rec_len = _MAGIC_PCAP[magic]
        if len(head) < 24:
            raise CaptureReadError("truncated pcap file header")
        major, _minor, _zone, _sigfigs, snaplen, link = struct.unpack_from(endian + "HHiIII", head, 4)
        if major not in (2, 1):
            raise CaptureReadError(f"unsupported pcap version {major}")
        info.byte_order = "little" if endian == "<" else "big"
        info.resolution = "ns" if nano else "us"
        info.snaplen = snaplen
        info.link_type = link & 0xFFFF
        info.bytes_read = 24
        return info, _pcap_records(stream, info, endian, nano, rec_len, read_size)
    if struct.unpack("<I", magic)[0] == _PCAPNG_SHB:
        info.format = "pcapng"
        return info, _pcapng_records(stream, head, info, read_size)
    raise CaptureReadError(f"not a pcap or pcapng file (magic {magic.hex()})")


def _pcap_records(
    stream: BinaryIO, info: ReadInfo, endian: str, nano: bool, rec_len: int, read_size: int
) -> Iterator[Record]:
    unpack = struct.Struct(endian + "IIII").unpack_from
    scale = 1e-9 if nano else 1e-6
    link = info.link_type
    limit = max(_MAX_RECORD, info.snaplen)
    buf = _read(stream, read_size)
    info.bytes_read += len(buf)
    pos = 0
    base = -1
    while True:
        n = len(buf)
        while pos + rec_len <= n:
            sec, frac, cap, wire = unpack(buf, pos)
            start = pos + rec_len
            end = start + cap
            if end > n:
                if cap > limit:
                    info.problem = f"implausible record length {cap} at byte {info.bytes_read - n + pos}"
                    info.truncated = True
                    info.truncated_bytes = n - pos
                    return
                break
            if base < 0:
                base = info.base_sec = sec
            yield sec - base + frac * scale, buf, start, cap, wire if wire >= cap else cap, link
            pos = end
        data = _read(stream, read_size)
        if not data:
            if pos < n:
                info.truncated = True
                info.truncated_bytes = n - pos
                info.problem = "the file ends inside a packet record"
            return
        info.bytes_read += len(data)
        buf = buf[pos:] + data
        pos = 0


def _tsresol(raw: bytes) -> tuple[int, str]:
    value = raw[0]
    if value & 0x80:
        return 2 ** (value & 0x7F), f"1/{2 ** (value & 0x7F)} s"
    power = value & 0x7F
    return 10**power, {6: "us", 9: "ns", 3: "ms", 0: "s"}.get(power, f"1e-{power} s")


def _pcapng_records(stream: BinaryIO, head: bytes, info: ReadInfo, read_size: int) -> Iterator[Record]:
    buf = head + _read(stream, read_size)
    info.bytes_read = len(buf)
    pos = 0
    endian = "<"
    # per interface: (link type, ticks per second, offset seconds, snaplen)
    interfaces: list[tuple[int, int, int, int]] = []
    base = -1
    seen_shb = False
    last_ts = 0.0
    unknown_iface = 0
    while True:
        n = len(buf)
        while pos + 12 <= n:
            btype = struct.unpack_from(endian + "I", buf, pos)[0]
            if btype == _PCAPNG_SHB:
                if pos + 12 > n:
                    break
                bom = buf[pos + 8 : pos + 12]
                if bom == b"\x4d\x3c\x2b\x1a":
                    endian = "<"
                elif bom == b"\x1a\x2b\x3c\x4d":
                    endian = ">"
                else:
                    if not seen_shb:
                        raise CaptureReadError("not a pcapng file: bad byte-order magic")
                    info.problem = f"bad pcapng section header at byte {info.bytes_read - n + pos}"
                    info.truncated, info.truncated_bytes = True, n - pos
                    return
                if not seen_shb:
                    info.byte_order = "little" if endian == "<" else "big"
                blen = struct.unpack_from(endian + "I", buf, pos + 4)[0]
            else:
                blen = struct.unpack_from(endian + "I", buf, pos + 4)[0]
            if blen < 12 or blen % 4 or blen > _MAX_BLOCK:
                if not seen_shb:
                    raise CaptureReadError("not a pcapng file: bad section header length")
                info.problem = f"implausible pcapng block length {blen} at byte {info.bytes_read - n + pos}"
                info.truncated, info.truncated_bytes = True, n - pos
                return
            if pos + blen > n:
                break
            body = pos + 8
            if btype == 6:  # enhanced packet block
                iface, th, tl, cap, wire = struct.unpack_from(endian + "IIIII", buf, body)
                if iface >= len(interfaces) or 28 + cap > blen:
                    unknown_iface += 1
                else:
                    link, per_s, offset, _snap = interfaces[iface]
                    sec, frac = divmod((th << 32) | tl, per_s)
                    sec += offset
                    if base < 0:
                        base = info.base_sec = sec
                    last_ts = sec - base + frac / per_s
                    yield last_ts, buf, body + 20, cap, wire if wire >= cap else cap, link
            elif btype == 3:  # simple packet block: no timestamp, no interface id (interface 0)
                wire = struct.unpack_from(endian + "I", buf, body)[0]
                if interfaces:
                    link, _per_s, _offset, snap = interfaces[0]
                    cap = min(wire, blen - 16, snap or wire)
                    yield last_ts, buf, body + 4, cap, wire, link
            elif btype == 2:  # obsolete packet block
                iface, _drops, th, tl, cap, wire = struct.unpack_from(endian + "HHIIII", buf, body)
                if iface < len(interfaces) and 28 + cap <= blen:
                    link, per_s, offset, _snap = interfaces[iface]
                    sec, frac = divmod((th << 32) | tl, per_s)
                    sec += offset
                    if base < 0:
                        base = info.base_sec = sec
                    last_ts = sec - base + frac / per_s
                    yield last_ts, buf, body + 20, cap, wire if wire >= cap else cap, link
            elif btype == 1:  # interface description block
                interfaces.append(_parse_idb(buf[pos : pos + blen], endian, info, first=not interfaces))
            elif btype == _PCAPNG_SHB:
                seen_shb = True
                interfaces = []  # a new section starts afresh
            pos += blen
        data = _read(stream, read_size)
        if not data:
            if pos < n:
                info.truncated = True
                info.truncated_bytes = n - pos
                info.problem = "the file ends inside a pcapng block"
            if unknown_iface:
                info.problem = (info.problem + "; " if info.problem else "") + (
                    f"{unknown_iface} packets referenced an unknown interface"
                )
            if not seen_shb:
                raise CaptureReadError("truncated pcapng section header")
            return
        info.bytes_read += len(data)
        buf = buf[pos:] + data
        pos = 0


def _parse_idb(block: bytes, endian: str, info: ReadInfo, *, first: bool) -> tuple[int, int, int, int]:
    link, snaplen = struct.unpack_from(endian + "H2xI", block, 8)
    per_s, offset, resolution = 1_000_000, 0, "us"
    try:
        idb = (
            dpkt.pcapng.InterfaceDescriptionBlockLE(block)
            if endian == "<"
            else dpkt.pcapng.InterfaceDescriptionBlock(block)
        )
        for opt in idb.opts:
            if opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSRESOL and opt.data:
                per_s, resolution = _tsresol(bytes(opt.data))
            elif opt.code == dpkt.pcapng.PCAPNG_OPT_IF_TSOFFSET and len(opt.data) >= 8:
                offset = struct.unpack(endian + "q", bytes(opt.data[:8]))[0]
    except (dpkt.Error, struct.error, ValueError, IndexError):
        pass  # options unreadable: the defaults (microseconds, no offset) apply
    if first:
        info.link_type, info.snaplen, info.resolution = link, snaplen, resolution
    return link, per_s, offset, snaplen
