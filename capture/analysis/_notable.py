"""The notable lines: at most six sentences a person reads before the numbers, most important first.

The problems come first (each names its culprits), then what limits the analysis (a cut snap length, a
truncated file, a full flow table), then one line of what the capture holds.
"""

from __future__ import annotations

from ._dissect import SUPPORTED_LINKS
from ._findings import Findings
from ._problems import n, pct, plural, size

MAX_NOTABLE = 6


def ports_hidden(f: Findings, snap_cut: int) -> bool:
    """Most packets were cut before their ports: the problems that need ports cannot be seen."""
    return bool(f.packets and f.flows.packets_without_ports >= 0.5 * f.packets and snap_cut)


def notable_lines(f: Findings, *, snap_cut: int, talkers_dropped: int) -> list[str]:
    """The problems' sentences, then the analysis' limits, then the overview; at most ``MAX_NOTABLE``."""
    lines = [p.summary[0].upper() + p.summary[1:] for p in f.problems]
    limits: list[str] = []
    if f.packets and f.file.link_type not in SUPPORTED_LINKS:
        limits.append(
            f"Link type {f.file.link_type} is not decoded: only packet and byte counts "
            f"({plural(f.packets, 'packet')})"
        )
    elif ports_hidden(f, snap_cut):
        limits.append(
            f"Packets were cut to {f.file.snaplen} bytes: ports, TCP and DNS details were unavailable "
            f"for {pct(f.flows.packets_without_ports, f.packets)} of packets"
        )
    if f.file.truncated:
        limits.append(
            f"The file ends early ({f.file.problem}); {size(f.file.truncated_bytes)} at the end "
            "were not analysed"
        )
    if f.flows.evicted:
        limits.append(
            f"{plural(f.flows.evicted, 'conversation')} were retired from a full flow table "
            f"(max {n(f.flows.max_flows)}); per-conversation numbers are partial"
        )
    if talkers_dropped:
        limits.append(f"{plural(talkers_dropped, 'light host')} were dropped from the talker table")
    # the limits go first when they hide what the problems would need
    lines = (
        limits + lines
        if limits and limits[0].startswith(("Link type", "Packets were cut"))
        else lines + limits
    )
    if f.packets:
        rate = f.packets / f.duration_s if f.duration_s > 0 else 0.0
        text = (
            f"{plural(f.packets, 'packet')}, {size(f.bytes)} in {f.duration_s:,.1f} s "
            f"({rate:,.0f} pkt/s), {pct(f.protocols['tcp'].bytes, f.bytes)} of bytes TCP"
        )
        peers = [t for t in f.top_talkers if t.host != f.capture_host]
        if peers:
            text += f"; busiest peer {peers[0].host} ({pct(peers[0].bytes, f.bytes)} of bytes)"
        overview = text
    else:
        overview = "The capture holds no packets"
    return [*lines[: MAX_NOTABLE - 1], overview]
