"""The bounded state of the pass: the flow table and its eviction, TCP health, capped counters."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any

from ._dissect import proto_name
from ._findings import TOP_N, Conversation, Service, Talker, fmt_ip

_RTT_SAMPLES = 20_000


class TopCounter:
    """A counter keeping its heaviest keys: over ``cap`` keys the lighter half is dropped (bounded memory)."""

    __slots__ = ("cap", "counts")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.counts: dict[Any, int] = {}

    def add(self, key: Any, n: int = 1) -> None:
        counts = self.counts
        value = counts.get(key)
        if value is None:
            if len(counts) >= self.cap:
                self._prune()
            counts[key] = n
        else:
            counts[key] = value + n

    def _prune(self) -> None:
        keep = sorted(self.counts.items(), key=lambda kv: kv[1], reverse=True)[: self.cap // 2]
        self.counts = dict(keep)

    def top(self, n: int = TOP_N) -> list[tuple[Any, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]


class Flow:
    """One conversation (5-tuple, either direction) while it is in the table; ``a`` is the lower endpoint."""

    __slots__ = (
        "a",
        "ack_wait",
        "ap",
        "b",
        "bp",
        "by_ab",
        "by_ba",
        "client_a",
        "data_pk",
        "first",
        "flags",
        "hi_ab",
        "hi_ba",
        "irtt",
        "last",
        "order",
        "pk_ab",
        "pk_ba",
        "proto",
        "rtx_ab",
        "rtx_ba",
        "syn_ts",
        "synack",
        "syns",
        "zwin",
    )

    def __init__(self, key: tuple[Any, Any, int, int, int], ts: float, forward: bool, order: int) -> None:
        self.a, self.b, self.ap, self.bp, self.proto = key
        self.pk_ab = self.pk_ba = self.by_ab = self.by_ba = 0
        self.first = self.last = ts
        self.client_a = forward  # provisional: the first sender; a SYN sender or the higher port overrides
        self.hi_ab = self.hi_ba = -1
        self.syns = 0
        self.syn_ts = -1.0
        self.synack = False
        self.ack_wait = False  # SYN-ACK seen, the client's ACK not yet: it ends the handshake round trip
        self.irtt = -1.0  # SYN -> client's ACK in ms (the whole round trip, wherever the capture point is)
        self.flags = 0  # TCP flags seen (OR), bit 9 (0x200) = a RST from the responder
        self.data_pk = self.rtx_ab = self.rtx_ba = self.zwin = 0
        self.order = order


@dataclass
class ServiceAgg:
    """A service's totals over its conversations: ``client → server:port/proto``, client ports folded."""

    conversations: int = 0
    packets: int = 0
    bytes: int = 0
    data_packets: int = 0
    retransmissions: int = 0
    zero_windows: int = 0
    handshakes_timed: int = 0
    rtt_sum_ms: float = 0.0


class ScanState:
    """Everything the pass accumulates; bounded by construction."""

    def __init__(self, max_flows: int) -> None:
        self.max_flows = max_flows
        self.flows: dict[tuple[Any, Any, int, int, int], Flow] = {}
        self.flow_order = 0
        self.peak = 0
        self.evicted = 0
        self.conversations = 0
        self.top_by_bytes: list[tuple[int, int, Flow]] = []
        self.top_by_packets: list[tuple[int, int, Flow]] = []
        self.services: dict[tuple[Any, Any, int, int], ServiceAgg] = {}
        self.service_cap = max(256, min(max_flows, 20_000))
        self.syns_unanswered = 0
        self.unanswered_connections = 0
        self.unanswered_by_source = TopCounter(4096)
        self.unanswered_targets = TopCounter(4096)
        # handshakes the server answered but the client never completed (a spoofed SYN flood's signature
        # when the server is listening): by client and by server:port
        self.half_open = 0
        self.half_open_by_source = TopCounter(4096)
        self.half_open_targets = TopCounter(4096)
        self.rsts_by_source = TopCounter(4096)
        self.refused_connections = 0
        self.refused_targets = TopCounter(4096)
        self.refused_by_source = TopCounter(4096)
        self.rtx_by_sender = TopCounter(4096)
        self.zwin_by_source = TopCounter(4096)
        # connection attempts that carried no data (unanswered, refused, or reset right after the
        # handshake), per client: the distinct (server, port) pairs it tried, to tell a scan from a flood
        self.probes: dict[Any, set[tuple[Any, int]]] = {}
        self.probe_cap = 4096
        self.rtts: list[float] = []
        self.rtt_seen = 0
        self.rtt_rng = random.Random(0)  # noqa: S311 - reservoir sampling, not security
        self.rtt_max = 0.0
        self.dns_names = TopCounter(4096)
        self.dns_failed = TopCounter(4096)
        self.dns_rcodes: dict[str, int] = {}
        self.dns_queries_to = TopCounter(1024)  # by server
        self.dns_answers_from = TopCounter(1024)
        self.dns_failures_from = TopCounter(1024)
        self.icmp_codes: dict[tuple[int, int], int] = {}
        self.icmp_sources = TopCounter(4096)
        self.icmp_targets = TopCounter(4096)
        # per host [bytes sent, bytes received, packets sent, packets received], from retired flows
        self.talkers: dict[Any, list[int]] = {}
        self.talker_cap = max(1024, min(4 * max_flows, 65_536))
        self.talkers_dropped = 0
        # per protocol class (6 tcp, 17 udp, 1 icmp/icmpv6, 0 other): packets and bytes, from retired flows
        self.proto_pk = {6: 0, 17: 0, 1: 0, 0: 0}
        self.proto_by = {6: 0, 17: 0, 1: 0, 0: 0}

    # flows ---------------------------------------------------------------------------------------------
    def evict(self) -> None:
        """Retire the least recently active quarter of the table."""
        flows = self.flows
        count = max(1, len(flows) // 4)
        oldest = heapq.nsmallest(count, flows.items(), key=lambda kv: (kv[1].last, kv[1].order))
        for key, flow in oldest:
            del flows[key]
            self.retire(flow)
        self.evicted += len(oldest)

    def retire(self, f: Flow) -> None:
        """Judge a conversation leaving the table (evicted or at the end) and fold it into the aggregates."""
        # who is the client: the SYN sender, else the side with the higher (ephemeral) port, else first sender
        client_a = f.client_a
        if not f.syns and f.ap >= 0 and f.ap != f.bp:
            client_a = f.ap > f.bp
        f.client_a = client_a
        responder_packets = f.pk_ba if client_a else f.pk_ab
        client, server = (f.a, f.b) if client_a else (f.b, f.a)
        sport = f.bp if client_a else f.ap
        if f.syns:
            refused = not f.synack and f.flags & 0x200
            if responder_packets == 0:
                self.syns_unanswered += f.syns
                self.unanswered_connections += 1
                self.unanswered_by_source.add(client, f.syns)
                self.unanswered_targets.add((server, sport), f.syns)
            elif refused:
                self.refused_connections += 1
                self.refused_targets.add((server, sport))
                self.refused_by_source.add(client)
            elif f.ack_wait and not f.data_pk and not f.flags & 0x05:
                self.half_open += 1
                self.half_open_by_source.add(client)
                self.half_open_targets.add((server, sport))
            if not f.data_pk and (responder_packets == 0 or refused or f.flags & 0x04):
                self._probe(client, server, sport)
        if f.rtx_ab:
            self.rtx_by_sender.add(f.a, f.rtx_ab)
        if f.rtx_ba:
            self.rtx_by_sender.add(f.b, f.rtx_ba)
        packets = f.pk_ab + f.pk_ba
        size = f.by_ab + f.by_ba
        # the flow's totals feed the protocol mix and the talkers: every IP packet is in exactly one flow,
        # and every flow is retired exactly once (evicted or at the end), so these stay exact
        proto = f.proto
        pclass = proto if proto in (6, 17, 1) else 1 if proto == 58 else 0
        self.proto_pk[pclass] += packets
        self.proto_by[pclass] += size
        talkers = self.talkers
        for host, sent, received, pk_sent, pk_received in (
            (f.a, f.by_ab, f.by_ba, f.pk_ab, f.pk_ba),
            (f.b, f.by_ba, f.by_ab, f.pk_ba, f.pk_ab),
        ):
            t = talkers.get(host)
            if t is None:
                if len(talkers) >= self.talker_cap:
                    self.talkers_dropped += _prune_talkers(talkers)
                t = talkers[host] = [0, 0, 0, 0]
            t[0] += sent
            t[1] += received
            t[2] += pk_sent
            t[3] += pk_received
        for heap, value in ((self.top_by_bytes, size), (self.top_by_packets, packets)):
            item = (value, -f.order, f)
            if len(heap) < TOP_N:
                heapq.heappush(heap, item)
            elif item > heap[0]:
                heapq.heapreplace(heap, item)
        key = (client, server, sport, f.proto)
        agg = self.services.get(key)
        if agg is None:
            if len(self.services) >= self.service_cap:
                keep = sorted(self.services.items(), key=lambda kv: kv[1].bytes, reverse=True)
                self.services = dict(keep[: self.service_cap // 2])
            agg = self.services[key] = ServiceAgg()
        agg.conversations += 1
        agg.packets += packets
        agg.bytes += size
        agg.data_packets += f.data_pk
        agg.retransmissions += f.rtx_ab + f.rtx_ba
        agg.zero_windows += f.zwin
        if f.irtt >= 0:
            agg.handshakes_timed += 1
            agg.rtt_sum_ms += f.irtt

    def _probe(self, client: Any, server: Any, port: int) -> None:
        tried = self.probes.get(client)
        if tried is None:
            if len(self.probes) >= self.probe_cap:
                keep = sorted(self.probes.items(), key=lambda kv: len(kv[1]), reverse=True)
                self.probes = dict(keep[: self.probe_cap // 2])
            tried = self.probes[client] = set()
        if len(tried) < 4096:
            tried.add((server, port))

    def rtt(self, value: float) -> None:
        """Keep a handshake round trip: every sample up to the cap, then a uniform reservoir."""
        self.rtt_seen += 1
        if value > self.rtt_max:
            self.rtt_max = value
        if len(self.rtts) < _RTT_SAMPLES:
            self.rtts.append(value)
        else:
            j = self.rtt_rng.randrange(self.rtt_seen)
            if j < _RTT_SAMPLES:
                self.rtts[j] = value


def _prune_talkers(talkers: dict[Any, list[int]]) -> int:
    keep = sorted(talkers.items(), key=lambda kv: kv[1][0] + kv[1][1], reverse=True)[: len(talkers) // 2]
    dropped = len(talkers) - len(keep)
    talkers.clear()
    talkers.update(keep)
    return dropped


@dataclass(frozen=True, slots=True)
class Totals:
    """The pass's plain counters, handed to the summary by name (the loop keeps them in locals for speed)."""

    packets: int
    bytes: int
    captured_bytes: int
    first: float  # relative seconds of the first and last packet (inf / -inf when there are none)
    last: float
    other_packets: int  # frames that are not IP, or whose IP header was not captured
    other_bytes: int
    packets_without_ports: int
    snap_cut: int  # frames shorter than on the wire
    tcp_packets: int
    tcp_data_packets: int
    syns: int
    rsts: int
    retransmissions: int
    retransmitted_bytes: int
    zero_windows: int
    tcp_headers_missing: int
    handshakes: int
    dns_packets: int
    dns_queries: int
    dns_responses: int
    dns_unparsed: int
    icmp_unreachable: int
    bucket_s: float  # the series before merging down to at most MAX_BUCKETS
    series_packets: list[int]
    series_bytes: list[int]
    series_events: dict[str, list[int]]  # syns, rsts, retransmissions, dns_failures, ... per bucket


def port_or_none(value: int) -> int | None:
    """Ports are -1 in the pass when they were not captured; the findings say None."""
    return value if value >= 0 else None


def conversation(f: Flow, first: float) -> Conversation:
    """A retired flow as the findings show it: client and server sides, TCP state in a word."""
    client_a = f.client_a
    if client_a:
        client, cport, server, sport = f.a, f.ap, f.b, f.bp
        pk_up, by_up, pk_down, by_down = f.pk_ab, f.by_ab, f.pk_ba, f.by_ba
    else:
        client, cport, server, sport = f.b, f.bp, f.a, f.ap
        pk_up, by_up, pk_down, by_down = f.pk_ba, f.by_ba, f.pk_ab, f.by_ab
    state = ""
    if f.proto == 6:
        if f.syns and pk_down == 0:
            state = "unanswered"
        elif f.syns and not f.synack and f.flags & 0x04:
            state = "refused"
        elif f.flags & 0x04:
            state = "reset"
        elif f.flags & 0x01:
            state = "closed"
        else:
            state = "open"
    return Conversation(
        proto=proto_name(f.proto),
        client=fmt_ip(client),
        client_port=port_or_none(cport),
        server=fmt_ip(server),
        server_port=port_or_none(sport),
        packets=f.pk_ab + f.pk_ba,
        bytes=f.by_ab + f.by_ba,
        packets_to_server=pk_up,
        bytes_to_server=by_up,
        packets_to_client=pk_down,
        bytes_to_client=by_down,
        start_s=round(f.first - first, 6),
        duration_s=round(f.last - f.first, 6),
        retransmissions=f.rtx_ab + f.rtx_ba,
        state=state,
    )


def top_talkers(st: ScanState, total: int, packets: int) -> tuple[list[Talker], str | None]:
    """The hosts by bytes, and the capture's own host (in at least 90 % of packets) when there is one."""
    talkers = st.talkers
    ranked = sorted(talkers.items(), key=lambda kv: (-(kv[1][0] + kv[1][1]), fmt_ip(kv[0])))
    top = [
        Talker(
            host=fmt_ip(host),
            bytes=v[0] + v[1],
            packets=v[2] + v[3],
            bytes_sent=v[0],
            bytes_received=v[1],
            packets_sent=v[2],
            packets_received=v[3],
            share_of_bytes=round((v[0] + v[1]) / total, 4) if total else 0.0,
        )
        for host, v in ranked[:TOP_N]
    ]
    capture_host = None
    if ranked and packets:
        host, v = max(talkers.items(), key=lambda kv: kv[1][2] + kv[1][3])
        if v[2] + v[3] >= 0.9 * packets:
            capture_host = fmt_ip(host)
    return top, capture_host


def top_services(st: ScanState, total: int) -> list[Service]:
    """The services (client ports folded) by bytes."""
    return [
        Service(
            proto=proto_name(proto),
            client=fmt_ip(client),
            server=fmt_ip(server),
            server_port=port_or_none(sport),
            conversations=agg.conversations,
            packets=agg.packets,
            bytes=agg.bytes,
            data_packets=agg.data_packets,
            retransmissions=agg.retransmissions,
            zero_windows=agg.zero_windows,
            share_of_bytes=round(agg.bytes / total, 4) if total else 0.0,
        )
        for (client, server, sport, proto), agg in sorted(
            st.services.items(), key=lambda kv: (-kv[1].bytes, -kv[1].packets, str(kv[0]))
        )[:TOP_N]
    ]
