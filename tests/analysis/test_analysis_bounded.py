"""Bounded memory: the flow table respects max_flows, and memory does not grow with the file."""

from __future__ import annotations

import io
import tracemalloc

from capture.analysis import Findings, analyze
from emulator.pcapgen import VM

from .conftest import CaptureFactory


def peak_memory(data: bytes, **kwargs: int) -> tuple[int, Findings]:
    stream = io.BytesIO(data)  # the input is allocated before tracing starts
    tracemalloc.start()
    try:
        # smaller reads, so that both files span many of them (the default read is 1 MiB)
        findings = analyze(stream, read_size=32 * 1024, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, findings


def test_max_flows_is_respected_and_counts_stay_exact(capture: CaptureFactory) -> None:
    gen = capture("synflood", duration_s=6.0)
    t = gen.truth
    assert t.conversations > 600  # every flood SYN is its own conversation
    f = analyze(io.BytesIO(gen.data), max_flows=64)
    assert f.flows.max_flows == 64
    assert f.flows.peak_tracked <= 64
    assert f.flows.evicted > t.conversations - 64 - 1
    # what does not depend on the table is exact
    assert (f.packets, f.bytes, f.tcp.syns, f.tcp.rsts) == (t.packets, t.bytes, t.syns, t.rsts)
    # retired flows are still judged: unanswered SYNs and their sources are exact
    assert f.tcp.syns_unanswered == t.syns_unanswered
    assert {c.name: c.count for c in f.tcp.unanswered_by_source} == t.unanswered_by_source
    assert f.tcp.unanswered_targets[0].name == f"{VM}:443"
    # the biggest conversations survive retirement into the top lists
    full = analyze(io.BytesIO(gen.data))
    assert full.flows.evicted == 0
    assert [c.bytes for c in f.top_conversations_by_bytes][:3] == [
        c.bytes for c in full.top_conversations_by_bytes
    ][:3]
    assert any("flow table" in line for line in f.notable)


def test_memory_is_flat_in_file_size(capture: CaptureFactory) -> None:
    small = capture("synflood", duration_s=1.5, seed=1)
    large = capture("synflood", duration_s=6.0, seed=1)
    assert len(large.data) > 3.5 * len(small.data)
    peak_small, f_small = peak_memory(small.data, max_flows=128)
    peak_large, f_large = peak_memory(large.data, max_flows=128)
    assert f_large.flows.evicted > f_small.flows.evicted > 0
    # memory is the read buffer plus bounded tables: the same for a 4x longer capture
    assert peak_large < 1.2 * peak_small + 64 * 1024, (peak_small, peak_large)
    assert peak_large < 2 * 1024 * 1024
