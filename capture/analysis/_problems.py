"""What is wrong, in words: the problems a capture shows, each naming its culprits, and the headline.

Each detector looks for one pattern that holds on real traffic wherever the capture point sits (the VM's NIC,
a peer, a hop between): thresholds are counts that a healthy minute of traffic does not reach, and every
sentence names who is responsible, so the person reading it knows where to look first. The order of
``PROBLEM_KINDS`` is the order of importance: the first problem found is the headline.
"""

from __future__ import annotations

from ._findings import Count, Findings, Problem, endpoint_label
from ._flows import ScanState
from ._tcp import scan_targets

PROBLEM_KINDS = (
    "syn-flood",
    "port-scan",
    "packet-loss",
    "dns-failures",
    "dns-unanswered",
    "unreachable",
    "refused",
    "dropped-syns",
    "zero-window",
    "resets",
    "slow-round-trips",
    "hog",
)
SLOW_RTT_MS = 200.0  # handshake p95 above this is slow for anything but the far side of the planet
HOG_SHARE = 0.5  # one connection with at least this share of the bytes ...
HOG_MIN_BYTES = 100_000  # ... and at least this many: a capture of a few small exchanges has no hog


def n(value: int) -> str:
    """A count with thousands separators."""
    return f"{value:,}"


def pct(part: float, whole: float) -> str:
    """A share as a percentage, with a decimal only where it matters."""
    if not whole:
        return "0%"
    share = 100.0 * part / whole
    if share >= 10 or share == 0:
        return f"{share:.0f}%"
    return f"{share:.1f}%" if share >= 0.1 else "<0.1%"


def size(value: float) -> str:
    """Bytes in the largest unit that keeps a digit before the point."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def seconds(value: float) -> str:
    """A duration a person reads: ``41 ms``, ``2.5 s``, ``1,200 s``."""
    return f"{value * 1000:,.0f} ms" if value < 1 else f"{value:,.1f} s"


def plural(count: int, word: str) -> str:
    """``1 SYN``, ``2 SYNs``, ``2 queries``."""
    if count == 1:
        return f"{n(count)} {word}"
    return f"{n(count)} {word[:-1]}ies" if word.endswith("y") else f"{n(count)} {word}s"


def _who(counts: list[Count], limit: int = 3) -> str:
    """``a (12), b (3)``: the first few culprits with their counts."""
    return ", ".join(f"{c.name} ({n(c.count)})" for c in counts[:limit])


def diagnose(f: Findings, st: ScanState) -> list[Problem]:
    """Every problem the findings show, most important first (the order of ``PROBLEM_KINDS``)."""
    tcp, dns, icmp = f.tcp, f.dns, f.icmp
    found: list[Problem] = []

    # a SYN flood: many new connections to one port that never complete, either unanswered (the server
    # or a filter drops them) or answered with a SYN-ACK the (spoofed) client never acknowledges
    is_flood = False
    if tcp.unanswered_connections >= tcp.half_open:
        attempts, by_source, targets = (
            tcp.unanswered_connections,
            tcp.unanswered_by_source,
            tcp.unanswered_targets,
        )
        counted, distinct = tcp.syns_unanswered, len(st.unanswered_by_source.counts)
        what = f"{n(tcp.syns_unanswered)} SYNs unanswered"
    else:
        attempts, by_source, targets = tcp.half_open, tcp.half_open_by_source, tcp.half_open_targets
        counted, distinct = tcp.half_open, len(st.half_open_by_source.counts)
        what = f"{n(tcp.half_open)} handshakes never completed (SYN-ACK unanswered)"
    if targets and attempts >= 100 and counted < 1.5 * attempts and targets[0].count >= 0.8 * counted:
        is_flood = True
        found.append(
            Problem(
                "syn-flood",
                f"SYN flood towards {targets[0].name} from {plural(distinct, 'source')}, {what}, "
                f"most from {_who(by_source)}",
                by_source,
                "failed connection attempts by source",
                "syns",
            )
        )

    if tcp.port_scanners:
        scanner = tcp.port_scanners[0]
        targets = scan_targets(st, scanner.name)
        where = f" on {targets[0].name}" if targets else ""
        if len(targets) > 1:
            where += f" and {plural(len(targets) - 1, 'other host')}"
        found.append(
            Problem(
                "port-scan",
                f"port scan from {scanner.name}: {n(scanner.count)} ports probed{where}",
                tcp.port_scanners,
                "distinct ports probed by source",
                "syns",
            )
        )

    if tcp.retransmissions >= 10 and tcp.retransmission_rate >= 0.01:
        worst = max(f.top_services, key=lambda s: s.retransmissions, default=None)
        where = f", mostly {worst.label}" if worst is not None and worst.retransmissions else ""
        senders = tcp.retransmissions_by_sender
        by = f"; retransmitted by {_who(senders, 2)}" if senders else ""
        found.append(
            Problem(
                "packet-loss",
                f"packet loss: {pct(tcp.retransmissions, tcp.data_packets)} of TCP data segments were "
                f"retransmitted ({n(tcp.retransmissions)}){where}{by}",
                senders,
                "retransmitted segments by sender",
                "retransmissions",
            )
        )

    if dns.failed >= 5 and dns.failure_rate >= 0.05:
        kinds = ", ".join(f"{n(v)} {k}" for k, v in dns.rcodes.items() if k != "NOERROR")
        servers = [s for s in dns.servers if s.failures] or dns.servers
        server = f" from {servers[0].server}" if servers else ""
        names = [Count(c.name, c.count) for c in dns.top_failed]
        failing = ", ".join(f"{name} ({n(v)} {rcode})" for (name, rcode), v in st.dns_failed.top(3))
        found.append(
            Problem(
                "dns-failures",
                f"DNS failures{server}: {pct(dns.failed, dns.responses)} of answers failed ({kinds}), "
                f"failing names {failing}",
                names,
                "failed answers by name",
                "dns_failures",
            )
        )

    silent = [s for s in dns.servers if s.queries >= 3 and s.answers == 0]
    if silent:
        top = silent[0]
        asked = ", ".join(c.name for c in dns.top_queried[:3])
        found.append(
            Problem(
                "dns-unanswered",
                f"DNS server {top.server} did not answer: {plural(top.queries, 'query')} unanswered"
                + (f" (for {asked})" if asked else ""),
                [Count(s.server, s.queries) for s in silent],
                "unanswered queries by server",
                "packets",
            )
        )

    if icmp.unreachable >= 3 and icmp.unreachable_by_code:
        code = icmp.unreachable_by_code[0]
        src = icmp.unreachable_sources[0].name if icmp.unreachable_sources else "?"
        about = f" about {icmp.unreachable_targets[0].name}" if icmp.unreachable_targets else ""
        found.append(
            Problem(
                "unreachable",
                f"ICMP unreachable: {n(icmp.unreachable)} messages ({pct(code.count, icmp.unreachable)} "
                f"{code.meaning}), most from {src}{about}",
                icmp.unreachable_targets,
                "unreachable messages by destination",
                "icmp_unreachable",
            )
        )

    scanners = {c.name for c in tcp.port_scanners}
    refusing = [c for c in tcp.refused_by_source if c.name not in scanners]  # a scan explains its own
    if tcp.refused >= 3 and tcp.refused_targets and refusing:
        target = tcp.refused_targets[0]
        more = len(st.refused_targets.counts) - 1
        src = refusing[0].name
        found.append(
            Problem(
                "refused",
                f"connections refused: {n(tcp.refused)} attempts answered with a reset, "
                f"{n(target.count)} to closed port {target.name}"
                + (f" and more to {plural(more, 'other port')}" if more > 0 else "")
                + f", from {src}",
                tcp.refused_targets,
                "refused attempts by server port",
                "rsts",
            )
        )

    # unanswered SYNs that are neither a flood nor answered by an ICMP error: dropped on the way
    icmp_about = {c.name.split(" ", 1)[-1] for c in icmp.unreachable_targets}
    dropped = [c for c in tcp.unanswered_targets if c.name not in icmp_about]
    dropped_syns = sum(c.count for c in dropped)
    if not is_flood and dropped and dropped_syns >= 3:
        target = dropped[0]
        src = tcp.unanswered_by_source[0].name if tcp.unanswered_by_source else "?"
        found.append(
            Problem(
                "dropped-syns",
                f"SYNs dropped silently: {plural(dropped_syns, 'SYN')} to {target.name}"
                + (f" and {plural(len(dropped) - 1, 'other port')}" if len(dropped) > 1 else "")
                + f" got no answer at all (a firewall, or the host is down), from {src}",
                dropped,
                "unanswered SYNs by target",
                "syns",
            )
        )

    if tcp.zero_windows >= 3 and tcp.zero_windows_by_source:
        receiver = tcp.zero_windows_by_source[0]
        worst = max(f.top_services, key=lambda s: s.zero_windows, default=None)
        where = f" on {worst.label}" if worst is not None and worst.zero_windows else ""
        found.append(
            Problem(
                "zero-window",
                f"receiver overwhelmed: {receiver.name} advertised a zero window "
                f"{n(receiver.count)} times{where} ({plural(tcp.zero_windows, 'zero-window advertisement')} "
                "in all)",
                tcp.zero_windows_by_source,
                "zero-window advertisements by receiver",
                "zero_windows",
            )
        )

    other_rsts = tcp.rsts - tcp.refused
    conversations = tcp.handshakes + tcp.unanswered_connections + tcp.refused
    if other_rsts >= 10 and other_rsts >= 0.25 * max(1, conversations) and tcp.rsts_by_source:
        resetter = tcp.rsts_by_source[0]
        found.append(
            Problem(
                "resets",
                f"many TCP resets: {n(tcp.rsts)} for {plural(conversations, 'connection')}, "
                f"{pct(resetter.count, tcp.rsts)} from {resetter.name}",
                tcp.rsts_by_source,
                "resets by sender",
                "rsts",
            )
        )

    rtt = tcp.handshake_rtt
    if rtt.samples >= 3 and rtt.p95_ms is not None and rtt.p95_ms >= SLOW_RTT_MS:
        slowest = f", slowest {rtt.slowest} ({rtt.slowest_mean_ms:,.0f} ms on average)" if rtt.slowest else ""
        found.append(
            Problem(
                "slow-round-trips",
                f"slow round trips: TCP handshake p95 {rtt.p95_ms:,.0f} ms (median {rtt.median_ms:,.0f} ms, "
                f"{plural(rtt.samples, 'handshake')}){slowest}",
                [Count(rtt.slowest, round(rtt.slowest_mean_ms or 0))] if rtt.slowest else [],
                "mean handshake round trip (ms)",
                "packets",
            )
        )

    # one connection (not a service: a file transfer, a backup) with most of the bytes of a busy capture
    if f.top_conversations_by_bytes and f.bytes and f.flows.conversations >= 3:
        lead = f.top_conversations_by_bytes[0]
        if lead.bytes >= HOG_MIN_BYTES and lead.bytes >= HOG_SHARE * f.bytes:
            ends = endpoint_label(lead.client, lead.client_port, lead.server, lead.server_port, lead.proto)
            found.append(
                Problem(
                    "hog",
                    f"one conversation carried {pct(lead.bytes, f.bytes)} of bytes: {ends} "
                    f"({size(lead.bytes)} in {seconds(lead.duration_s)})",
                    [Count(c.label, c.bytes) for c in f.top_conversations_by_bytes],
                    "bytes by conversation",
                    "bytes",
                )
            )
    return found


def nothing_abnormal(f: Findings) -> str:
    """The headline of a capture without problems: say so, and what it held."""
    if not f.packets:
        return "No packets captured: nothing to judge (check the capture's filters and the VM's traffic)"
    rate = f.packets / f.duration_s if f.duration_s > 0 else 0.0
    text = (
        f"Nothing abnormal: {plural(f.packets, 'packet')}, {size(f.bytes)} in {f.duration_s:,.1f} s "
        f"({rate:,.0f} pkt/s)"
    )
    peers = [t for t in f.top_talkers if t.host != f.capture_host]
    if peers:
        text += f"; busiest peer {peers[0].host} ({pct(peers[0].bytes, f.bytes)} of bytes)"
    return text


def report_headline(
    what: str, *, vm: str | None = None, alert: str | None = None, severity: str | None = None
) -> str:
    """The report's first line: what was found (``Findings.headline``), then on which VM for which alert.

    ``report_headline("SYN flood towards 10.0.0.4:443 …", vm="vm-web-1", alert="vm-web-cpu",
    severity="Sev2")`` gives ``"SYN flood towards 10.0.0.4:443 …; vm-web-1, alert vm-web-cpu Sev2"``.
    """
    where = ", ".join(
        part
        for part in (vm, " ".join(x for x in (f"alert {alert}" if alert else None, severity) if x))
        if part
    )
    return f"{what}; {where}" if where else what
