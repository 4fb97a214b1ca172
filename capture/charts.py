"""The chart of a capture: what was found, when, and who did it, as a PNG drawn with Pillow.

Top: the title (VM, alert, the window in UTC) and the headline. Then the series that carries the headline
(SYNs per second for a flood, retransmissions for loss, failing DNS answers, ...) with the alert time
marked, then packets per second for context, then the culprits as bars (unanswered SYNs by source,
retransmissions by sender, ...; the busiest peers when nothing is abnormal). Units are written as
people write them (``pkt/s``, ``syn/s``, ``kB/s``).

Pillow (https://pillow.readthedocs.io) is imported inside ``render_chart`` only: the webhook never pays
for it. Its bundled font (``ImageFont.load_default(size)``, Aileron, via FreeType) keeps the package free
of font files. The PNG carries its title, headline, series and the alert marker's position as text
chunks, so a reader (or a test) can tell what the picture shows without looking at pixels.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from capture.analysis import Count, Findings

__all__ = ["HEIGHT", "WIDTH", "chart_title", "render_chart"]

WIDTH = 800
HEIGHT = 520

_INK = (33, 37, 41)
_MUTED = (108, 117, 125)
_GRID = (226, 230, 234)
_TRAFFIC = (25, 103, 190)
_TRAFFIC_FILL = (198, 222, 246)
_PROBLEM = (200, 35, 51)
_PROBLEM_FILL = (246, 196, 200)
_OK = (25, 135, 84)
_ALERT = (230, 120, 0)
_BAR = (242, 140, 40)

# Findings.series name -> (what the panel is called, unit)
_SERIES = {
    "syns": ("connection attempts (SYN)", "syn/s"),
    "rsts": ("TCP resets", "rst/s"),
    "retransmissions": ("retransmitted segments", "seg/s"),
    "dns_failures": ("failed DNS answers", "failures/s"),
    "icmp_unreachable": ("ICMP unreachable messages", "msg/s"),
    "zero_windows": ("zero-window advertisements", "zero windows/s"),
    "bytes": ("traffic", "B/s"),
}


@dataclass(frozen=True)
class _Axis:
    """The time axis: seconds since the capture's first packet, mapped onto pixels."""

    t0: float  # seconds relative to the first packet at the left edge (negative: the alert came first)
    t1: float
    left: int
    right: int

    def x(self, t: float) -> int:
        span = self.t1 - self.t0 or 1.0
        return self.left + round((t - self.t0) / span * (self.right - self.left))


def _parse(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None


def chart_title(findings: Findings, *, vm: str | None = None, alert: str | None = None) -> str:
    """``vm-web-1 · alert vm-web-cpu · 2024-05-14 09:30:00 to 09:31:00 UTC (60 s)``."""
    parts = [vm or "capture"]
    if alert:
        parts.append(f"alert {alert}")
    start, end = _parse(findings.start), _parse(findings.end)
    if start and end:
        parts.append(
            f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC ({findings.duration_s:,.0f} s)"
            if findings.duration_s >= 10
            else f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC ({findings.duration_s:,.1f} s)"
        )
    return " · ".join(parts)


def _nice_step(span: float, ticks: int) -> float:
    """A 1/2/5 x 10^k step giving about ``ticks`` intervals over ``span``."""
    raw = max(span, 1e-9) / max(1, ticks)
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw:
            return m * power
    return 10 * power


def _time_step(span: float) -> float:
    """A readable clock step (1 s .. 1 h) giving 4 to 8 ticks."""
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if span / step <= 8:
            return float(step)
    return 3600.0 * math.ceil(span / 3600 / 8)


def _fmt(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            v = value / scale
            return f"{v:.0f}{unit}" if v >= 10 or v == int(v) else f"{v:.1f}{unit}"
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _size(value: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f} {unit}"
    return f"{value:.0f} B"


def _drawable(text: str) -> str:
    """The bundled font has no arrows: ``a → b`` is drawn ``a -> b`` (the text chunks keep the arrow)."""
    return text.replace("→", "->")


def _fit(draw: Any, text: str, font: Any, width: float) -> str:
    """The text, shortened with an ellipsis to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _wrap(draw: Any, text: str, font: Any, width: float, lines: int) -> list[str]:
    """Greedy word wrap into at most ``lines`` lines, the last one shortened if needed."""
    out: list[str] = []
    words = text.split(" ")
    while words and len(out) < lines:
        line = words.pop(0)
        while words and draw.textlength(f"{line} {words[0]}", font=font) <= width:
            line += " " + words.pop(0)
        out.append(line)
    if words:
        out[-1] = _fit(draw, out[-1] + " " + " ".join(words), font, width)
    return out


def render_chart(
    findings: Findings,
    *,
    vm: str | None = None,
    alert: str | None = None,
    alert_time: datetime | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> bytes:
    """PNG bytes of the capture's chart; ``vm``, ``alert`` and ``alert_time`` come from the report."""
    from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

    width, height = max(480, width), max(360, height)
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    title_font = ImageFont.load_default(size=17)
    font = ImageFont.load_default(size=13)
    small = ImageFont.load_default(size=11)
    f = findings
    problem = f.problems[0] if f.problems else None

    title = chart_title(f, vm=vm, alert=alert)
    draw.text((16, 10), _fit(draw, _drawable(title), title_font, width - 32), fill=_INK, font=title_font)
    headline = f.headline or "No analysis"
    for k, text in enumerate(_wrap(draw, _drawable(headline), font, width - 32, lines=2)):
        draw.text((16, 36 + 17 * k), text, fill=_PROBLEM if problem else _OK, font=font)

    left, right = 64, width - 24
    start = _parse(f.start)
    # the time axis covers the capture, and the alert when it came shortly before (or during) it
    t0, t1 = 0.0, max(f.duration_s, f.series.bucket_s * len(f.series.packets), 1e-3)
    alert_rel: float | None = None
    if alert_time is not None and start is not None:
        alert_rel = (alert_time.astimezone(UTC) - start).total_seconds()
        if -0.25 * (t1 - t0) <= alert_rel < t0:
            t0 = alert_rel
    axis = _Axis(t0, t1, left, right)

    show = problem.series if problem and problem.series not in ("packets",) else "packets"
    panels: list[tuple[str, str, list[float], tuple[int, int, int], tuple[int, int, int]]] = []
    width_s = f.series.bucket_s or 1.0
    if show == "bytes":
        panels.append(
            ("traffic", "kB/s", [b / width_s / 1e3 for b in f.series.bytes], _PROBLEM, _PROBLEM_FILL)
        )
    elif show != "packets":
        name, unit = _SERIES[show]
        values = [n / width_s for n in getattr(f.series, show)]
        panels.append((name, unit, values, _PROBLEM, _PROBLEM_FILL))
    panels.append(("all packets", "pkt/s", list(f.series.packets_per_s), _TRAFFIC, _TRAFFIC_FILL))

    top, bars_top = 84, int(height * 0.68)
    gap = 22
    heights = [3, 2] if len(panels) == 2 else [1]
    unit_h = (bars_top - top - gap * len(panels)) / sum(heights)
    y = top
    marker_x: int | None = None
    for (name, unit, values, line, fill), share in zip(panels, heights, strict=True):
        panel_bottom = y + gap + round(unit_h * share)
        marker_x = _time_panel(
            draw, axis, f, values, name, unit, line, fill, y + gap, panel_bottom, font, small, alert_rel
        )
        y = panel_bottom
    _time_ticks(draw, axis, start, y, small)
    _culprit_bars(
        draw,
        f,
        problem.culprits if problem else None,
        problem,
        left - 48,
        right,
        y + 34,
        height - 8,
        font,
        small,
    )

    info = PngImagePlugin.PngInfo()
    info.add_text("Title", title)
    info.add_text("Description", headline)
    info.add_text("Series", _SERIES.get(show, ("all packets", "pkt/s"))[1] if show != "packets" else "pkt/s")
    if alert_time is not None:
        where = f"x={marker_x}" if marker_x is not None else "outside the window"
        info.add_text("Alert", f"{alert_time.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ} {where}")
    info.add_text("Software", "alert-packet-capture (Pillow)")
    out = io.BytesIO()
    img.save(out, "PNG", pnginfo=info, optimize=True)
    return out.getvalue()


def _time_panel(
    draw: Any,
    axis: _Axis,
    f: Findings,
    values: list[float],
    name: str,
    unit: str,
    line: tuple[int, int, int],
    fill: tuple[int, int, int],
    top: int,
    bottom: int,
    font: Any,
    small: Any,
    alert_rel: float | None,
) -> int | None:
    """One time series as an area with y ticks; returns the alert marker's x when it is drawn."""
    draw.text((axis.left, top - 18), f"{name}, {unit}", fill=_INK, font=font)
    peak = max(values, default=0.0)
    step = _nice_step(peak or 1.0, 4)
    y_max = step * max(1, math.ceil((peak or 1.0) / step))
    span_h = bottom - top

    def y_of(v: float) -> int:
        return bottom - round(v / y_max * span_h)

    tick = 0.0
    while tick <= y_max + 1e-9:
        yy = y_of(tick)
        draw.line([(axis.left, yy), (axis.right, yy)], fill=_GRID if tick else _INK, width=1)
        label = _fmt(tick)
        draw.text(
            (axis.left - 6 - draw.textlength(label, font=small), yy - 7), label, fill=_MUTED, font=small
        )
        tick += step
    if not values or not f.packets:
        draw.text((axis.left + 8, top + span_h // 2 - 8), "no packets", fill=_MUTED, font=font)
    else:
        width_s = f.series.bucket_s or 1.0
        points = []
        for i, v in enumerate(values):
            points.append((axis.x(i * width_s), y_of(v)))
            points.append((axis.x((i + 1) * width_s), y_of(v)))
        draw.polygon([(points[0][0], bottom), *points, (points[-1][0], bottom)], fill=fill)
        draw.line(points, fill=line, width=2)
    draw.line([(axis.left, top), (axis.left, bottom)], fill=_INK, width=1)
    if alert_rel is None:
        return None
    x = axis.x(min(max(alert_rel, axis.t0), axis.t1))
    for y0 in range(top, bottom, 8):  # dashed
        draw.line([(x, y0), (x, min(bottom, y0 + 4))], fill=_ALERT, width=2)
    label = f"alert, {_ago(axis.t0 - alert_rel)} before the capture" if alert_rel < axis.t0 else "alert"
    draw.text(
        (min(x + 4, axis.right - draw.textlength(label, font=small)), top - 2), label, fill=_ALERT, font=small
    )
    return x


def _ago(seconds: float) -> str:
    return f"{seconds:,.0f} s" if seconds < 120 else f"{seconds / 60:,.0f} min"


def _time_ticks(draw: Any, axis: _Axis, start: datetime | None, y: int, small: Any) -> None:
    """Clock times (UTC) under the last time panel."""
    step = _time_step(axis.t1 - axis.t0)
    t = math.ceil(axis.t0 / step) * step
    while t <= axis.t1 + 1e-9:
        x = axis.x(t)
        draw.line([(x, y), (x, y + 4)], fill=_INK, width=1)
        if start is not None:
            when = start + timedelta(seconds=t)
            label = f"{when:%H:%M:%S}" if step >= 1 else f"{when:%H:%M:%S}.{when.microsecond // 100_000}"
        else:
            label = f"{t:g} s"
        lw = draw.textlength(label, font=small)
        draw.text((min(max(axis.left, x - lw / 2), axis.right - lw), y + 6), label, fill=_MUTED, font=small)
        t += step
    draw.text(
        (axis.right - draw.textlength("time (UTC)", font=small), y + 20),
        "time (UTC)",
        fill=_MUTED,
        font=small,
    )


def _culprit_bars(
    draw: Any,
    f: Findings,
    culprits: list[Count] | None,
    problem: Any,
    left: int,
    right: int,
    top: int,
    bottom: int,
    font: Any,
    small: Any,
) -> None:
    """The culprits of the headline as horizontal bars (the busiest peers when nothing is abnormal)."""
    if culprits:
        title = problem.culprits_are
        rows = [(_drawable(c.name), c.count, f"{c.count:,}") for c in culprits[:5]]
    else:
        peers = [t for t in f.top_talkers if t.host != f.capture_host][:5]
        title = f"busiest peers of {f.capture_host} by bytes" if f.capture_host else "busiest hosts by bytes"
        rows = [(t.host, t.bytes, f"{_size(t.bytes)}, {100 * t.share_of_bytes:.0f}%") for t in peers]
    draw.text((left, top - 20), title, fill=_INK, font=font)
    if not rows:
        draw.text((left, top + 4), "none", fill=_MUTED, font=small)
        return
    label_w = max(draw.textlength(name[:40], font=small) for name, _, _ in rows) + 10
    value_w = max(draw.textlength(text, font=small) for _, _, text in rows) + 12
    bar_left = left + label_w
    span = max(20.0, right - bar_left - value_w)
    row_h = max(14, min(24, (bottom - top) // len(rows)))
    biggest = max(v for _, v, _ in rows) or 1
    for k, (name, value, text) in enumerate(rows):
        y = top + k * row_h
        draw.text(
            (bar_left - 8 - draw.textlength(name[:40], font=small), y + 2), name[:40], fill=_INK, font=small
        )
        length = max(1, round(value / biggest * span))
        draw.rectangle([bar_left, y + 3, bar_left + length, y + row_h - 4], fill=_BAR)
        draw.text((bar_left + length + 6, y + 2), text, fill=_MUTED, font=small)
