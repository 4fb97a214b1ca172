"""The chart is a valid PNG, decodable with zlib alone, and shows both panels."""

from __future__ import annotations

import io
import struct
import zlib

import dpkt

from capture.analysis import analyze
from capture.charts import HEIGHT, WIDTH, render_chart

from .conftest import CaptureFactory


def decode_png(data: bytes) -> tuple[int, int, bytes, list[bytes]]:
    """(width, height, palette, rows of palette indices); checks signature, CRCs and filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos = 8
    chunks: dict[bytes, bytes] = {}
    idat = b""
    order = []
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc, kind
        order.append(kind)
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
        pos += 12 + length
    assert order[0] == b"IHDR"
    assert order[-1] == b"IEND"
    width, height, depth, color, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, color) == (8, 3)
    raw = zlib.decompress(idat)
    assert len(raw) == height * (width + 1)
    rows = [raw[y * (width + 1) : (y + 1) * (width + 1)] for y in range(height)]
    assert all(row[0] == 0 for row in rows)
    return width, height, chunks[b"PLTE"], [row[1:] for row in rows]


def test_chart_is_a_valid_png_with_both_panels(capture: CaptureFactory, tmp_path: object) -> None:
    f = analyze(io.BytesIO(capture("retransmissions").data))
    png = render_chart(f)
    width, height, palette, rows = decode_png(png)
    assert (width, height) == (WIDTH, HEIGHT)
    assert len(palette) % 3 == 0
    top = set().union(*(set(r) for r in rows[: height // 2]))
    bottom = set().union(*(set(r) for r in rows[height // 2 :]))
    assert {3, 4} <= top  # area fill and line in the rate panel
    assert 5 in bottom  # bars in the peers panel
    assert 1 in top
    assert 1 in bottom
    # the biggest peer (the database) has the longest bar: it spans most of the width
    bar_rows = [r for r in rows[height // 2 :] if r.count(5) > 0]
    assert max(r.count(5) for r in bar_rows) > width // 2
    assert len(png) < 20_000


def test_chart_of_an_empty_capture() -> None:
    empty = analyze(io.BytesIO(struct.pack("<IHHiIII", dpkt.pcap.TCPDUMP_MAGIC, 2, 4, 0, 0, 65535, 1)))
    width, height, _, rows = decode_png(render_chart(empty, width=400, height=300))
    assert (width, height) == (400, 300)
    assert all(5 not in r for r in rows)  # no bars


def test_the_alert_marker_is_a_vertical_line_where_the_alert_was(capture: CaptureFactory) -> None:
    f = analyze(io.BytesIO(capture("synflood").data))
    total = f.series.bucket_s * len(f.series.packets_per_s)
    _, height, _, rows = decode_png(render_chart(f, marker_s=total / 2))
    _, _, _, plain = decode_png(render_chart(f))
    top = rows[20 : height // 2 - 20]
    # The marker (and its label) in the bar colour (5), which the plain rate panel never uses, starts at
    # the middle of the plot (x 56..703).
    columns = {x for r in top for x, v in enumerate(r) if v == 5}
    assert columns and min(columns) == 56 + round((WIDTH - 16 - 56 - 1) / 2)
    assert max(columns) < WIDTH // 2 + 80
    assert all(5 not in r for r in plain[20 : height // 2 - 20])
