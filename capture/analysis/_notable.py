"""The notable lines: at most six sentences, most important first, a person reads before the numbers."""

from __future__ import annotations

from ._dissect import SUPPORTED_LINKS
from ._findings import TOP_N, Findings

MAX_NOTABLE = 6


def _n(value: int) -> str:
    return f"{value:,}"


def _pct(part: float, whole: float) -> str:
    if not whole:
        return "0%"
    share = 100.0 * part / whole
    if share >= 10 or share == 0:
        return f"{share:.0f}%"
    return f"{share:.1f}%" if share >= 0.1 else "<0.1%"


def _size(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def _plural(n: int, word: str) -> str:
    return f"{_n(n)} {word}{'' if n == 1 else 's'}"


def notable_lines(
    f: Findings, *, snap_cut: int, talkers_dropped: int, worst_rtx: str | None, worst_zwin: str | None
) -> list[str]:
    """At most six lines a person reads first, most important first; each carries its number."""
    lines: list[tuple[int, str]] = []
    tcp, dns, icmp = f.tcp, f.dns, f.icmp

    if f.packets and f.file.link_type not in SUPPORTED_LINKS:
        lines.append(
            (
                96,
                f"Link type {f.file.link_type} is not decoded: only packet and byte counts "
                f"({_plural(f.packets, 'packet')})",
            )
        )
    elif f.packets and f.flows.packets_without_ports >= 0.5 * f.packets and snap_cut:
        lines.append(
            (
                95,
                f"Packets were cut to {f.file.snaplen} bytes: ports, TCP and DNS details were unavailable "
                f"for {_pct(f.flows.packets_without_ports, f.packets)} of packets",
            )
        )
    if tcp.syns_unanswered >= 10:
        sources = tcp.unanswered_by_source
        target = tcp.unanswered_targets[0] if tcp.unanswered_targets else None
        n_sources = len(sources) + (1 if len(sources) == TOP_N else 0)
        who = f"{_n(n_sources)}{'+' if len(sources) == TOP_N else ''} source{'s' if n_sources != 1 else ''}"
        text = f"{_plural(tcp.syns_unanswered, 'SYN')} from {who} got no answer"
        if target and tcp.syns_unanswered >= 100 and target.count >= 0.8 * tcp.syns_unanswered:
            text += f" (possible SYN flood towards {target.name})"
        elif target:
            text += f" (top target {target.name}: {_n(target.count)})"
        lines.append((100 if tcp.syns_unanswered >= 100 else 60, text))
    if tcp.retransmissions >= 10 and tcp.retransmission_rate >= 0.01:
        text = (
            f"{_pct(tcp.retransmissions, tcp.data_packets)} of TCP data segments were retransmissions "
            f"({_n(tcp.retransmissions)})"
        )
        if worst_rtx:
            text += f", mostly {worst_rtx}"
        lines.append((90, text))
    if dns.failed >= 5 and dns.failure_rate >= 0.05:
        kinds = ", ".join(f"{_n(v)} {k}" for k, v in dns.rcodes.items() if k != "NOERROR")
        top = dns.top_failed[0].name.rsplit(" (", 1)[0] if dns.top_failed else "?"
        lines.append(
            (80, f"{_pct(dns.failed, dns.responses)} of DNS answers failed ({kinds}), top name: {top}")
        )
    if tcp.zero_windows >= 3:
        src = tcp.zero_windows_by_source[0] if tcp.zero_windows_by_source else None
        text = f"{_plural(tcp.zero_windows, 'zero-window advertisement')}"
        if src:
            text += f", {_pct(src.count, tcp.zero_windows)} from {src.name}"
        if worst_zwin:
            text += f", mostly on {worst_zwin}"
        lines.append((75, text + " (a receiver could not keep up)"))
    if icmp.unreachable >= 5:
        code = icmp.unreachable_by_code[0]
        src = icmp.unreachable_sources[0] if icmp.unreachable_sources else None
        target = icmp.unreachable_targets[0] if icmp.unreachable_targets else None
        text = (
            f"{_n(icmp.unreachable)} ICMP unreachable ({_pct(code.count, icmp.unreachable)} {code.meaning})"
        )
        if src:
            text += f", top source {src.name}"
        if target:
            text += f", top target {target.name}"
        lines.append((70, text))
    if f.top_services and f.bytes:
        lead = f.top_services[0]
        if (lead.share_of_bytes >= 0.4 and lead.server != f.capture_host) or lead.share_of_bytes >= 0.6:
            text = f"{_pct(lead.bytes, f.bytes)} of bytes: {lead.label}"
            if lead.proto == "tcp" and lead.data_packets:
                text += f", {_pct(lead.retransmissions, lead.data_packets)} retransmitted"
            lines.append((65 if lead.retransmissions else 45, text))
    tcp_conversations = tcp.handshakes + tcp.unanswered_connections
    if tcp.rsts >= 10 and tcp.rsts >= 0.25 * max(1, tcp_conversations):
        src = tcp.rsts_by_source[0] if tcp.rsts_by_source else None
        text = f"{_plural(tcp.rsts, 'TCP reset')}"
        if src:
            text += f", {_pct(src.count, tcp.rsts)} from {src.name}"
        lines.append((40, text))
    rtt = tcp.handshake_rtt
    if rtt.samples >= 10 and rtt.p95_ms is not None and rtt.p95_ms >= 200:
        lines.append(
            (
                30,
                f"TCP handshake round trip p95 {rtt.p95_ms:,.0f} ms (median {rtt.median_ms:,.1f} ms, "
                f"{_plural(rtt.samples, 'handshake')})",
            )
        )
    if f.file.truncated:
        lines.append(
            (
                20,
                f"The file ends early ({f.file.problem}); {_size(f.file.truncated_bytes)} at the end "
                "were not analysed",
            )
        )
    if f.flows.evicted:
        lines.append(
            (
                10,
                f"{_plural(f.flows.evicted, 'conversation')} were retired from a full flow table "
                f"(max {_n(f.flows.max_flows)}); per-conversation numbers are partial",
            )
        )
    if talkers_dropped:
        lines.append((9, f"{_plural(talkers_dropped, 'light host')} were dropped from the talker table"))
    # the overview, last: what the capture holds at all
    if f.packets:
        rate = f.packets / f.duration_s if f.duration_s > 0 else 0.0
        tcp_share = _pct(f.protocols["tcp"].bytes, f.bytes)
        peers = [t for t in f.top_talkers if t.host != f.capture_host]
        text = (
            f"{_plural(f.packets, 'packet')}, {_size(f.bytes)} in {f.duration_s:,.1f} s "
            f"({rate:,.0f} packets/s), {tcp_share} of bytes TCP"
        )
        if peers:
            text += f"; busiest peer {peers[0].host} ({_pct(peers[0].bytes, f.bytes)} of bytes)"
        lines.append((0, text))
    else:
        lines.append((0, "The capture holds no packets"))
    lines.sort(key=lambda item: -item[0])
    return [text for _, text in lines[:MAX_NOTABLE]]
