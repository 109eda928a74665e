"""Small inline SVG charts for the HTML report: no library, no script, nothing fetched. Each
function returns one <svg> element sized by its viewBox, so it scales to the page's width."""

from __future__ import annotations

import math
import time
from html import escape
from typing import Iterable

from . import formatting as fmt
from .states import CSS_CLASS, State, Threshold

COLOURS = {State.UNKNOWN: "#8a8f98", State.OK: "#1e9e4a", State.WARNING: "#d39b00", State.CRITICAL: "#d0342c"}
SEVERITY_COLOURS = {"info": "#4a7fd0", "warning": COLOURS[State.WARNING], "critical": COLOURS[State.CRITICAL],
                    "emergency": "#7a0f0a"}
FONT = 'font-family="system-ui,sans-serif" font-size="12" fill="#555"'


def _value_label(value: float, unit: str) -> str:
    if value == 0:
        return "0"
    if unit == "%":
        return f"{value:.0f}%"
    if unit == "s":
        return fmt.duration(value)
    if unit == "USD":
        return fmt.usd(value)
    return fmt.count(value)


def line_chart(title: str, points: list[tuple[float, float]], unit: str, start: float, end: float,
               threshold: Threshold | None = None, width: int = 400, height: int = 170) -> str:
    """A line over [start, end] with warning/critical threshold lines, coloured by the last value's state."""
    left, right, top, bottom = 46, 10, 12, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for _, v in points]
    top_value = max(values, default=0.0)
    full_scale = unit == "%" and top_value <= 100 and (threshold is None or threshold.critical >= 50)
    if full_scale:  # utilizations read best on a fixed 0-100 scale; small rates get their own
        top_value = 100.0
    elif threshold is not None and threshold.higher_is_worse and threshold.critical <= top_value * 1.5:
        top_value = max(top_value, threshold.critical)
    top_value = top_value * (1 if full_scale else 1.1) or 1.0

    def x(when: float) -> float:
        return left + (when - start) / ((end - start) or 1) * plot_w

    def y(value: float) -> float:
        return top + plot_h - max(0.0, min(value, top_value)) / top_value * plot_h

    state = threshold.state(values[-1]) if threshold and values else (State.OK if values else State.UNKNOWN)
    parts = [f'<svg class="chart line {CSS_CLASS[state]}" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for fraction in (0.0, 0.5, 1.0):
        value = top_value * fraction
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e3e5e8"/>')
        parts.append(f'<text x="{left - 4}" y="{y(value) + 4:.1f}" text-anchor="end" {FONT}>{escape(_value_label(value, unit))}</text>')
    clock = "%H:%M" if end - start >= 600 else "%H:%M:%S"
    for index in range(4):
        when = start + (end - start) * index / 3
        anchor = "start" if index == 0 else "end" if index == 3 else "middle"
        parts.append(f'<text x="{x(when):.1f}" y="{height - 6}" text-anchor="{anchor}" {FONT}>'
                     f'{time.strftime(clock, time.gmtime(when))}</text>')
    if threshold is not None:
        for level, colour in ((threshold.warning, COLOURS[State.WARNING]), (threshold.critical, COLOURS[State.CRITICAL])):
            if 0 < level <= top_value:
                parts.append(f'<line class="threshold" x1="{left}" x2="{width - right}" y1="{y(level):.1f}" '
                             f'y2="{y(level):.1f}" stroke="{colour}" stroke-dasharray="4 3"/>')
    if points:
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        colour = COLOURS[state]
        if len(points) > 1:
            area = f"{x(points[0][0]):.1f},{y(0):.1f} {path} {x(points[-1][0]):.1f},{y(0):.1f}"
            parts.append(f'<polygon points="{area}" fill="{colour}" fill-opacity="0.12"/>')
            parts.append(f'<polyline class="series" points="{path}" fill="none" stroke="{colour}" stroke-width="1.8"/>')
        else:
            parts.append(f'<circle class="series" cx="{x(points[0][0]):.1f}" cy="{y(points[0][1]):.1f}" r="3" fill="{colour}"/>')
    else:
        parts.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" text-anchor="middle" {FONT}>no data</text>')
    parts.append("</svg>")
    return "".join(parts)


def percentile_bar(p50: float | None, p95: float | None, p99: float | None, low: float, high: float,
                   state: State, width: int = 160, height: int = 16) -> str:
    """p50 to p99 on a logarithmic scale shared by all rows, with p95 marked: slow tails stand out."""
    if p50 is None or low <= 0 or high <= low:
        return ""
    span = math.log10(high) - math.log10(low)

    def x(value: float) -> float:
        return 2 + (math.log10(max(min(value, high), low)) - math.log10(low)) / span * (width - 4)

    colour = COLOURS[state]
    parts = [f'<svg class="chart pct" viewBox="0 0 {width} {height}" role="img" aria-label="p50 to p99">',
             f'<line x1="2" x2="{width - 2}" y1="{height / 2}" y2="{height / 2}" stroke="#e3e5e8" stroke-width="2"/>',
             f'<line x1="{x(p50):.1f}" x2="{x(p99 or p50):.1f}" y1="{height / 2}" y2="{height / 2}" '
             f'stroke="{colour}" stroke-width="6" stroke-opacity="0.35"/>',
             f'<circle cx="{x(p50):.1f}" cy="{height / 2}" r="3.5" fill="#555"/>']
    if p95 is not None:
        parts.append(f'<line x1="{x(p95):.1f}" x2="{x(p95):.1f}" y1="2" y2="{height - 2}" stroke="{colour}" stroke-width="2.5"/>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_days(days: Iterable[tuple[str, dict[str, int]]], width: int = 400, height: int = 150) -> str:
    """Firing alerts per day, stacked by severity."""
    days = list(days)
    left, bottom, top = 30, 22, 10
    plot_h = height - top - bottom
    most = max((sum(d.values()) for _, d in days), default=0) or 1
    slot = (width - left - 6) / max(len(days), 1)
    parts = [f'<svg class="chart days" viewBox="0 0 {width} {height}" role="img" aria-label="Alerts per day">'
             f'<title>Alerts fired per day</title>']
    for fraction in (0.0, 1.0):
        y = top + plot_h - fraction * plot_h
        parts.append(f'<line x1="{left}" x2="{width - 6}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e5e8"/>')
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" {FONT}>{round(most * fraction)}</text>')
    for index, (day, counts) in enumerate(days):
        x = left + index * slot + slot * 0.2
        y = top + plot_h
        for severity in ("info", "warning", "critical", "emergency"):
            count = counts.get(severity, 0)
            if not count:
                continue
            bar = count / most * plot_h
            y -= bar
            parts.append(f'<rect class="bar {escape(severity)}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.6:.1f}" '
                         f'height="{bar:.1f}" fill="{SEVERITY_COLOURS[severity]}"><title>{escape(day)}: {count} '
                         f'{escape(severity)}</title></rect>')
        parts.append(f'<text x="{x + slot * 0.3:.1f}" y="{height - 6}" text-anchor="middle" {FONT}>{escape(day[5:])}</text>')
    parts.append("</svg>")
    return "".join(parts)
