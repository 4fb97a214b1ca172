"""A tiny chart of a capture's findings as a PNG, with no dependencies beyond the standard library.

Top: packets per second over the capture (area chart, y axis from 0, time axis in s/min/h). Bottom: the
busiest peers by bytes (horizontal bars; the capture's own host, which is in every packet, is left out).
Text uses a built-in 5x7 bitmap font (digits, capitals and a little punctuation; lower case is drawn as
capitals). The image is an 8-bit palette PNG written with ``zlib`` and ``struct``: matplotlib or numpy
would add tens of megabytes to the deployed function package for one small picture.
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from capture.analysis import Findings, Talker

__all__ = ["render_chart", "write_png"]

WIDTH = 720
HEIGHT = 440

# palette indices
_BG, _INK, _GRID, _FILL, _LINE, _BAR, _MUTED = range(7)
_PALETTE = bytes(
    [
        255,
        255,
        255,  # background
        33,
        37,
        41,  # text, axes
        226,
        230,
        234,  # grid
        173,
        206,
        240,  # area fill
        25,
        103,
        190,  # area line
        242,
        140,
        40,  # bars
        120,
        126,
        132,  # secondary text
    ]
)

# 5x7 glyphs, one int per row, bit 4 = leftmost pixel
_FONT: dict[str, tuple[int, ...]] = {
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "J": (0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    " ": (0, 0, 0, 0, 0, 0, 0),
    ".": (0, 0, 0, 0, 0, 0x0C, 0x0C),
    ",": (0, 0, 0, 0, 0x0C, 0x04, 0x08),
    ":": (0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0),
    "/": (0, 0x01, 0x02, 0x04, 0x08, 0x10, 0),
    "%": (0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03),
    "-": (0, 0, 0, 0x1F, 0, 0, 0),
    "+": (0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0),
    "=": (0, 0, 0x1F, 0, 0x1F, 0, 0),
    "_": (0, 0, 0, 0, 0, 0, 0x1F),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "[": (0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E),
    "]": (0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E),
    ">": (0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08),
    "<": (0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02),
    "?": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04),
}


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.w = width
        self.h = height
        self.px = bytearray(width * height)  # palette index 0 = background

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: int) -> None:
        """Fill [x0, x1) x [y0, y1), clipped."""
        x0, x1 = max(0, x0), min(self.w, x1)
        y0, y1 = max(0, y0), min(self.h, y1)
        if x0 >= x1:
            return
        row = bytes([color]) * (x1 - x0)
        for y in range(y0, y1):
            start = y * self.w + x0
            self.px[start : start + (x1 - x0)] = row

    def text(self, x: int, y: int, text: str, color: int = _INK, scale: int = 1) -> int:
        """Draw text with its top-left at (x, y); returns the x after it."""
        for ch in text.upper():
            glyph = _FONT.get(ch, _FONT["?"])
            for r, bits in enumerate(glyph):
                for c in range(5):
                    if bits & (0x10 >> c):
                        self.rect(
                            x + c * scale, y + r * scale, x + (c + 1) * scale, y + (r + 1) * scale, color
                        )
            x += 6 * scale
        return x

    def png(self) -> bytes:
        return write_png(self.w, self.h, self.px, _PALETTE)


def text_width(text: str, scale: int = 1) -> int:
    return 6 * scale * len(text) - scale if text else 0


def write_png(width: int, height: int, pixels: bytes | bytearray, palette: bytes) -> bytes:
    """An 8-bit palette PNG (colour type 3) from row-major palette indices."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    raw = bytearray()
    for y in range(height):
        raw.append(0)  # filter: none
        raw += pixels[y * width : (y + 1) * width]
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"PLTE", palette)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def _nice_ceiling(value: float) -> float:
    """The smallest 1/2/5 x 10^k at or above value."""
    if value <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return 10.0 * power


def _short(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            number = value / scale
            return f"{number:.0f}{unit}" if number >= 10 or number == int(number) else f"{number:.1f}{unit}"
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}S" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f}S"
    if seconds < 7200:
        minutes = seconds / 60
        return f"{minutes:.0f}M" if minutes == int(minutes) or minutes >= 10 else f"{minutes:.1f}M"
    return f"{seconds / 3600:.1f}H"


def _bytes(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def render_chart(
    findings: Findings, *, width: int = WIDTH, height: int = HEIGHT, marker_s: float | None = None
) -> bytes:
    """PNG bytes: packets/s over time on top, the busiest peers by bytes below; `marker_s` (seconds from
    the first packet) draws the alert's time as a vertical line, so before and after read at a glance."""
    width, height = max(320, width), max(240, height)
    cv = _Canvas(width, height)
    left, right = 56, width - 16
    top_h = int(height * 0.52)
    _rate_panel(cv, findings, left, right, 10, top_h, marker_s)
    _talker_panel(cv, findings, 16, right, top_h + 24, height - 10)
    return cv.png()


def _rate_panel(
    cv: _Canvas, f: Findings, left: int, right: int, top: int, bottom: int, marker_s: float | None = None
) -> None:
    cv.text(left, top, "PACKETS/S")
    if f.start:
        stamp = f.start[:19].replace("T", " ") + "Z"
        cv.text(right - text_width(stamp), top, stamp, _MUTED)
    plot_top, plot_bottom = top + 18, bottom - 14
    plot_h = plot_bottom - plot_top
    series = f.series.packets_per_s
    peak = max(series, default=0.0)
    y_max = _nice_ceiling(peak)
    # grid and y labels: 0, half, max
    for frac in (0.0, 0.5, 1.0):
        y = plot_bottom - round(frac * plot_h)
        cv.rect(left, y, right, y + 1, _GRID if frac else _INK)
        label = _short(frac * y_max)
        cv.text(left - 6 - text_width(label), y - 3, label, _MUTED)
    if not series or not f.packets:
        cv.text(
            left + (right - left) // 2 - text_width("NO PACKETS") // 2, plot_top + plot_h // 2, "NO PACKETS"
        )
        return
    n = len(series)
    span = right - left
    prev_top: int | None = None
    for x in range(span):
        i = min(n - 1, x * n // span)
        h = round(series[i] / y_max * plot_h)
        y_top = plot_bottom - h
        cv.rect(left + x, y_top, left + x + 1, plot_bottom, _FILL)
        lo, hi = (y_top, y_top + 2) if prev_top is None else (min(prev_top, y_top), max(prev_top, y_top) + 2)
        cv.rect(left + x, lo, left + x + 1, min(hi, plot_bottom + 1), _LINE)
        prev_top = y_top
    cv.rect(left, plot_top, left + 1, plot_bottom + 1, _INK)
    total_s = f.series.bucket_s * n
    if marker_s is not None and total_s > 0 and 0 <= marker_s <= total_s:
        x = left + round(marker_s / total_s * (span - 1))
        cv.rect(x, plot_top, x + 2, plot_bottom + 1, _BAR)
        cv.text(min(x + 4, right - text_width("ALERT")), plot_top, "ALERT", _BAR)
    # time axis: start, middle, end (relative), and the bucket width
    total = f.series.bucket_s * n
    for frac in (0.0, 0.5, 1.0):
        x = left + round(frac * (span - 1))
        cv.rect(x, plot_bottom + 1, x + 1, plot_bottom + 4, _INK)
        label = _duration(frac * total)
        lx = x - text_width(label) // 2 if 0 < frac < 1 else x if frac == 0 else x - text_width(label)
        cv.text(lx, plot_bottom + 6, label, _MUTED)
    bucket = f.series.bucket_s
    width_label = f"PER {_duration(bucket)}" if bucket >= 1 else f"PER {bucket * 1000:.0f}MS"
    cv.text(left + text_width("PACKETS/S") + 12, top, width_label, _MUTED)


def _talker_panel(cv: _Canvas, f: Findings, left: int, right: int, top: int, bottom: int) -> None:
    peers: list[Talker] = [t for t in f.top_talkers if t.host != f.capture_host][:5]
    title = "TOP PEERS BY BYTES" if f.capture_host else "TOP TALKERS BY BYTES"
    x = cv.text(left, top, title)
    if f.capture_host:
        cv.text(x + 6, top, f"(OF {f.capture_host})", _MUTED)
    if not peers:
        cv.text(left, top + 20, "NONE", _MUTED)
        return
    label_w = max(text_width(t.host[:24]) for t in peers) + 10
    bar_left = left + label_w
    value_w = text_width("000.0 MB 100%") + 8
    bar_span = max(20, right - bar_left - value_w)
    row_h = max(14, min(28, (bottom - top - 18) // max(1, len(peers))))
    biggest = max(t.bytes for t in peers) or 1
    for k, t in enumerate(peers):
        y = top + 18 + k * row_h
        name = t.host[:24]
        cv.text(bar_left - 10 - text_width(name), y + (row_h - 7) // 2 - 1, name)
        length = max(1, round(t.bytes / biggest * bar_span))
        cv.rect(bar_left, y + 2, bar_left + length, y + row_h - 4, _BAR)
        share = f"{100 * t.share_of_bytes:.0f}%" if t.share_of_bytes >= 0.01 else "<1%"
        cv.text(bar_left + length + 6, y + (row_h - 7) // 2 - 1, f"{_bytes(t.bytes)} {share}", _MUTED)
