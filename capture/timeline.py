"""One timeline from many capture files: a frozen ring's files and its post-alert ring's, in time order.

A ring leaves several pcap files (the newest `fileCount`), and the post-alert ring a few more. They are
read as one stream: the files sorted by their first packet's time, every file's pcap header after the
first skipped when it matches the first (same byte order, link type and snap length), so the analyser
makes one streaming pass and its per-second series runs across the alert. What changed at the alert is
read off that series: packets/s before and after, and where the busiest second was.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from capture.analysis import Findings

__all__ = ["PCAP_HEADER", "ChainedFiles", "TimelineFile", "first_packet_time", "summarize"]

PCAP_HEADER = 24
_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6)}
_MAGIC.update({b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)})


@dataclass(frozen=True)
class TimelineFile:
    """One file of the timeline: its blob name, whether it came after the alert, its first packet."""

    name: str
    post: bool
    first: float | None  # epoch seconds of the first packet (None: not a pcap, or empty)
    header: bytes = b""


def first_packet_time(head: bytes) -> float | None:
    """The first packet's time from a pcap file's first 40 bytes; None for anything else."""
    if len(head) < PCAP_HEADER + 8 or head[:4] not in _MAGIC:
        return None
    order, unit = _MAGIC[head[:4]]
    seconds, fraction = struct.unpack_from(f"{order}II", head, PCAP_HEADER)
    return float(seconds + fraction * unit)


@dataclass
class ChainedFiles:
    """A readable stream over several pcap files opened one after the other, repeated headers skipped."""

    files: list[TimelineFile]
    opener: Callable[[str], BinaryIO]
    _iter: Iterator[TimelineFile] | None = None
    _current: BinaryIO | None = None
    _header: bytes | None = None
    opened: list[str] = field(default_factory=list)

    def _next(self) -> bool:
        if self._iter is None:
            self._iter = iter(self.files)
        for item in self._iter:
            stream = self.opener(item.name)
            if self._header is None:
                self._header = item.header[:PCAP_HEADER]
            elif item.header[:PCAP_HEADER] == self._header:
                _skip(stream, PCAP_HEADER)
            else:
                continue  # another format: left out rather than corrupting the stream
            self._current = stream
            self.opened.append(item.name)
            return True
        self._current = None
        return False

    def read(self, size: int = -1) -> bytes:
        if self._current is None and not self._next():
            return b""
        out = bytearray()
        while self._current is not None and (size < 0 or len(out) < size):
            chunk = self._current.read(-1 if size < 0 else size - len(out))
            if chunk:
                out += chunk
            elif not self._next():
                break
        return bytes(out)


def _skip(stream: BinaryIO, count: int) -> None:
    while count > 0:
        chunk = stream.read(count)
        if not chunk:
            return
        count -= len(chunk)


def summarize(
    findings: Findings, alert_at: datetime, pre: int, post: int
) -> tuple[dict[str, Any], list[str]]:
    """Minutes covered before and after the alert, and what changed there (the summary, its lines)."""
    start = _time(findings.start)
    end = _time(findings.end)
    alert = alert_at.timestamp()
    summary: dict[str, Any] = {
        "preFiles": pre,
        "postFiles": post,
        "start": findings.start,
        "end": findings.end,
    }
    lines: list[str] = []
    if start is None or end is None:
        return summary, lines
    before = max(0.0, min(end, alert) - start)
    after = max(0.0, end - max(start, alert))
    summary.update({"secondsBefore": round(before, 1), "secondsAfter": round(after, 1)})
    lines.append(
        f"Evidence covers {before / 60:.1f} min before and {after / 60:.1f} min after the alert "
        f"({alert_at.astimezone(UTC):%H:%M:%S} UTC)"
    )
    series = findings.series
    if series.packets_per_s and series.bucket_s > 0:
        cut = int((alert - start) / series.bucket_s)
        early = series.packets_per_s[: max(0, cut)]
        late = series.packets_per_s[max(0, cut) :]
        rate_before = sum(early) / len(early) if early else None
        rate_after = sum(late) / len(late) if late else None
        peak = max(range(len(series.packets_per_s)), key=series.packets_per_s.__getitem__)
        peak_offset = start + peak * series.bucket_s - alert
        summary.update(
            {
                "packetsPerSecondBefore": None if rate_before is None else round(rate_before, 1),
                "packetsPerSecondAfter": None if rate_after is None else round(rate_after, 1),
                "peakSecondsFromAlert": round(peak_offset, 1),
            }
        )
        if rate_before is not None and rate_after is not None:
            lines.append(
                f"At the alert: {rate_before:,.0f} packets/s before, {rate_after:,.0f} after; the busiest "
                f"moment was {_offset(peak_offset)} the alert"
            )
    return summary, lines


def _offset(seconds: float) -> str:
    if abs(seconds) < 1:
        return "at"
    word = "before" if seconds < 0 else "after"
    return f"{abs(seconds) / 60:.1f} min {word}" if abs(seconds) >= 60 else f"{abs(seconds):.0f} s {word}"


def _time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
