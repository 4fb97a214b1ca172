"""The bounded state of the pass: the flow table and its eviction, TCP health, capped counters."""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Any

from .findings import TOP_N

_RTT_SAMPLES = 20_000


class _TopCounter:
    """A counter keeping its heaviest keys: over ``cap`` keys the lighter half is dropped (and counted)."""

    __slots__ = ("cap", "counts", "dropped_count", "dropped_keys")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.counts: dict[Any, int] = {}
        self.dropped_keys = 0
        self.dropped_count = 0

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
        self.dropped_keys += len(self.counts) - len(keep)
        self.dropped_count += sum(self.counts.values()) - sum(v for _, v in keep)
        self.counts = dict(keep)

    def top(self, n: int) -> list[tuple[Any, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]

    def total(self) -> int:
        return sum(self.counts.values()) + self.dropped_count


class _Flow:
    __slots__ = (
        "a",
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
        "last",
        "order",
        "pk_ab",
        "pk_ba",
        "proto",
        "rtx",
        "rtx_by",
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
        self.flags = 0  # TCP flags seen (OR), bit 8 = SYN-ACK, bit 9 = RST from the responder
        self.data_pk = self.rtx = self.rtx_by = self.zwin = 0
        self.order = order


@dataclass
class _ServiceAgg:
    conversations: int = 0
    packets: int = 0
    bytes: int = 0
    data_packets: int = 0
    retransmissions: int = 0
    zero_windows: int = 0


class _State:
    """Everything the pass accumulates; bounded by construction."""

    def __init__(self, max_flows: int) -> None:
        self.max_flows = max_flows
        self.flows: dict[tuple[Any, Any, int, int, int], _Flow] = {}
        self.flow_order = 0
        self.peak = 0
        self.evicted = 0
        self.conversations = 0
        self.top_by_bytes: list[tuple[int, int, _Flow]] = []
        self.top_by_packets: list[tuple[int, int, _Flow]] = []
        self.services: dict[tuple[Any, Any, int, int], _ServiceAgg] = {}
        self.service_cap = max(256, min(max_flows, 20_000))
        self.services_dropped = 0
        self.syns_unanswered = 0
        self.unanswered_connections = 0
        self.unanswered_by_source = _TopCounter(4096)
        self.unanswered_targets = _TopCounter(4096)
        self.rsts_by_source = _TopCounter(4096)
        self.zwin_by_source = _TopCounter(4096)
        self.rtts: list[float] = []
        self.rtt_seen = 0
        self.rtt_rng = random.Random(0)  # noqa: S311 - reservoir sampling, not security
        self.rtt_max = 0.0
        self.dns_names = _TopCounter(4096)
        self.dns_failed = _TopCounter(4096)
        self.dns_rcodes: dict[str, int] = {}
        self.icmp_codes: dict[tuple[int, int], int] = {}
        self.icmp_sources = _TopCounter(4096)
        self.icmp_targets = _TopCounter(4096)
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

    def retire(self, f: _Flow) -> None:
        # who is the client: the SYN sender, else the side with the higher (ephemeral) port, else first sender
        client_a = f.client_a
        if not f.syns and f.ap >= 0 and f.ap != f.bp:
            client_a = f.ap > f.bp
        f.client_a = client_a
        responder_packets = f.pk_ba if client_a else f.pk_ab
        client, server = (f.a, f.b) if client_a else (f.b, f.a)
        sport = f.bp if client_a else f.ap
        if f.syns and responder_packets == 0:
            self.syns_unanswered += f.syns
            self.unanswered_connections += 1
            self.unanswered_by_source.add(client, f.syns)
            self.unanswered_targets.add((server, sport), f.syns)
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
                keep = keep[: self.service_cap // 2]
                self.services_dropped += len(self.services) - len(keep)
                self.services = dict(keep)
            agg = self.services[key] = _ServiceAgg()
        agg.conversations += 1
        agg.packets += packets
        agg.bytes += size
        agg.data_packets += f.data_pk
        agg.retransmissions += f.rtx
        agg.zero_windows += f.zwin

    def rtt(self, value: float) -> None:
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
