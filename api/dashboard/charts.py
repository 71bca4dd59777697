"""Small inline SVG charts, drawn on the server: no chart library, no JavaScript, nothing fetched.

Colours come from CSS classes (``s-succeeded`` ...), so the stylesheet owns the palette; every mark has a
``<title>`` so hovering explains it, and every chart sits next to a table or text with the same numbers.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape

from jobs import clock

from .format import duration

SERIES = ("succeeded", "failed", "cancelled", "active")


def _nice_ceiling(value: float) -> int:
    """A round, even axis maximum at or above ``value`` (so the half-way gridline is a whole number too)."""
    if value <= 10:
        return max(2, math.ceil(value / 2) * 2)
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.6, 2, 2.4, 3, 4, 5, 6, 8, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return int(10 * magnitude)


def runs_per_hour(hours: list[tuple[datetime, Counter[str]]]) -> Markup:
    """Stacked bars: one per hour, one segment per outcome."""
    width, height, left, bottom, top = 760, 200, 36, 22, 8
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = _nice_ceiling(max((sum(c.values()) for _, c in hours), default=0))
    slot = plot_w / max(len(hours), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Runs per hour by outcome">',
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{left}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{round(peak * fraction)}</text>'
        )
    for i, (hour, counts) in enumerate(hours):
        x = left + i * slot + slot * 0.15
        y = top + plot_h
        label = ", ".join(f"{counts[s]} {s}" for s in SERIES if counts[s]) or "no runs"
        parts.append(f"<g><title>{hour:%H}:00 UTC: {escape(label)}</title>")
        parts.append(f'<rect class="hover" x="{left + i * slot:.1f}" y="{top}" width="{slot:.1f}" height="{plot_h}"/>')
        for series in SERIES:
            if counts[series]:
                h = plot_h * counts[series] / peak
                y -= h
                parts.append(
                    f'<rect class="s-{series}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}"/>'
                )
        parts.append("</g>")
        if i % 3 == 0:
            parts.append(
                f'<text class="axis" x="{left + i * slot + slot / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                f"{hour:%H}:00</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def duration_bar(p50: float, p90: float, p99: float, scale_max: float) -> Markup:
    """One function's p50/p90/p99 as nested bars on a log scale shared by every row."""
    width, height = 130, 14

    def x(value: float) -> float:
        return width * math.log10(1 + value * 100) / math.log10(1 + max(scale_max, 0.01) * 100)

    title = f"p50 {duration(p50)}, p90 {duration(p90)}, p99 {duration(p99)} (log scale)"
    return Markup(
        f'<svg class="dbar" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<rect class="track" x="0" y="3" width="{width}" height="8" rx="4"/>'
        f'<rect class="p99" x="0" y="3" width="{x(p99):.1f}" height="8" rx="4"/>'
        f'<rect class="p90" x="0" y="3" width="{x(p90):.1f}" height="8" rx="4"/>'
        f'<rect class="p50" x="0" y="3" width="{x(p50):.1f}" height="8" rx="4"/>'
        "</svg>"
    )


_ATTEMPT_CLASS = {"succeeded": "succeeded", "failed": "failed", "timeout": "failed", "crashed": "failed",
                  "lost": "failed", "cancelled": "cancelled", None: "running"}  # fmt: skip


def attempts_timeline(run: dict[str, Any], now: datetime) -> Markup:
    """Waiting, each attempt (coloured by outcome) and the retry gaps, from creation to the end (or now)."""
    start = clock.parse_iso(run["created_at"])
    end = clock.parse_iso(run["finished_at"]) if run.get("finished_at") else now
    span = max((end - start).total_seconds(), 0.001)
    width, height = 760, 46

    def x(moment: str | None) -> float:
        at = clock.parse_iso(moment) if moment else now
        return 4 + (width - 8) * min(max((at - start).total_seconds() / span, 0.0), 1.0)

    parts = [f'<svg class="chart timeline" viewBox="0 0 {width} {height}" role="img" aria-label="Attempts over time">']
    parts.append(
        f'<rect class="wait" x="4" y="12" width="{width - 8}" height="14" rx="3"><title>waiting</title></rect>'
    )
    last_label = -100.0
    for attempt in run.get("attempts") or ():
        x0, x1 = x(attempt["started_at"]), x(attempt.get("finished_at"))
        outcome = attempt.get("outcome")
        seconds = (
            (clock.parse_iso(attempt["finished_at"]) if attempt.get("finished_at") else now)
            - clock.parse_iso(attempt["started_at"])
        ).total_seconds()
        label = f"attempt {attempt['n']}: {outcome or 'running'}, {duration(seconds)}"
        parts.append(
            f'<rect class="s-{_ATTEMPT_CLASS.get(outcome, "failed")}" x="{x0:.1f}" y="8" width="{max(x1 - x0, 3):.1f}" '
            f'height="22" rx="3"><title>{escape(label)}</title></rect>'
        )
        if x0 - last_label > 28:  # attempts close together share one label
            parts.append(f'<text class="axis" x="{x0 + 2:.1f}" y="{height - 4}">#{attempt["n"]}</text>')
            last_label = x0
    parts.append("</svg>")
    return Markup("".join(parts))
