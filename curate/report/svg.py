"""Small inline-SVG charts: histograms with vertical threshold lines, and horizontal bars. No JavaScript,
no external files, so the page stays self-contained and renders anywhere."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

W, H = 420, 200
PAD_L, PAD_R, PAD_T, PAD_B = 44, 12, 12, 34
COLORS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2")


def _nice(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def edges(lo: float, hi: float, thresholds: Sequence[tuple[str, float]] = (), bins: int = 30,
          integer: bool = False) -> np.ndarray:
    """The bin edges of a histogram of values in [lo, hi], widened to show every threshold: one bin per
    integer, or `bins` equal bins. Fixed before any value is counted, so counts per part add up."""
    for _, t in thresholds:
        lo, hi = min(lo, t), max(hi, t)
    if integer:
        return np.arange(math.floor(lo), math.floor(hi) + 2) - 0.5
    hi = hi if hi > lo else lo + 1.0
    return np.linspace(lo, hi, bins + 1)


def finite(values: Sequence[float | None]) -> np.ndarray:
    """The values that are numbers (no None, no NaN), as float64."""
    a = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    return a[~np.isnan(a)]


def histogram(series: dict[str, Sequence[float]], title: str, thresholds: Sequence[tuple[str, float]] = (),
              bins: int = 30, integer: bool = False) -> str:
    """One histogram per named series (overlaid), with labelled vertical lines at `thresholds`."""
    arrays = {k: a for k, a in ((k, finite(vals)) for k, vals in series.items()) if a.size}
    if not arrays:
        return '<p class="na">no values</p>'
    allv = np.concatenate(list(arrays.values()))
    e = edges(float(allv.min()), float(allv.max()), thresholds, bins, integer)
    return histogram_counts({k: np.histogram(a, bins=e)[0] for k, a in arrays.items()}, e, title, thresholds)


def histogram_counts(counts: dict[str, Sequence[int]], edges: Sequence[float], title: str,
                     thresholds: Sequence[tuple[str, float]] = ()) -> str:
    """The chart of `histogram` from counts per bin already made (by the engine, per part, then added)."""
    counts = {k: np.asarray(c, dtype=np.int64) for k, c in counts.items() if int(np.sum(c))}
    if not counts:
        return '<p class="na">no values</p>'
    edges = np.asarray(edges, dtype=float)
    ymax = max(int(c.max()) for c in counts.values()) or 1
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(v: float) -> float:
        return PAD_L + (v - edges[0]) / (edges[-1] - edges[0]) * pw

    def y(c: float) -> float:
        return PAD_T + ph - c / ymax * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
             f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<line x1="{PAD_L}" y1="{PAD_T + ph}" x2="{W - PAD_R}" y2="{PAD_T + ph}" stroke="#333"/>',
             f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{PAD_T + ph}" stroke="#333"/>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end" class="ax">{ymax}</text>',
             f'<text x="{PAD_L - 4}" y="{PAD_T + ph}" text-anchor="end" class="ax">0</text>',
             f'<text x="{PAD_L}" y="{H - 18}" text-anchor="start" class="ax">{_nice(edges[0])}</text>',
             f'<text x="{W - PAD_R}" y="{H - 18}" text-anchor="end" class="ax">{_nice(edges[-1])}</text>']
    for i, (name, c) in enumerate(counts.items()):
        color = COLORS[i % len(COLORS)]
        opacity = 0.85 if len(counts) == 1 else 0.55
        for j, n in enumerate(c):
            if n:
                width = max(x(edges[j + 1]) - x(edges[j]) - 1, 1)
                parts.append(f'<rect x="{x(edges[j]):.1f}" y="{y(n):.1f}" width="{width:.1f}" '
                             f'height="{PAD_T + ph - y(n):.1f}" fill="{color}" fill-opacity="{opacity}">'
                             f'<title>{escape(name)}: [{_nice(edges[j])}, {_nice(edges[j + 1])}) {n}</title></rect>')
        if len(counts) > 1:
            parts.append(f'<rect x="{PAD_L + 8 + 110 * i}" y="{H - 12}" width="10" height="10" fill="{color}"/>'
                         f'<text x="{PAD_L + 22 + 110 * i}" y="{H - 3}" class="ax">{escape(name)}</text>')
    for label, t in thresholds:
        parts.append(f'<line x1="{x(t):.1f}" y1="{PAD_T}" x2="{x(t):.1f}" y2="{PAD_T + ph}" stroke="#d62728" '
                     f'stroke-width="2" stroke-dasharray="4 3" class="threshold" data-value="{t}"/>'
                     f'<text x="{x(t) + (-3 if x(t) > W * 0.6 else 3):.1f}" y="{PAD_T + 10}" class="thr" '
                     f'text-anchor="{"end" if x(t) > W * 0.6 else "start"}">{escape(label)} {_nice(t)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(rows: Sequence[tuple[str, Sequence[float]]], series: Sequence[str], title: str, percent: bool = True) -> str:
    """Horizontal grouped bars: one row per label, one bar per series (e.g. language share before/after)."""
    if not rows:
        return '<p class="na">no values</p>'
    row_h, bar_h, label_w = 8 + 12 * len(series), 11, 70
    h = PAD_T + row_h * len(rows) + 22
    vmax = max((max(v) for _, v in rows), default=1) or 1
    pw = W - label_w - 60
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>']
    for r, (label, values) in enumerate(rows):
        y0 = PAD_T + r * row_h
        parts.append(f'<text x="{label_w - 6}" y="{y0 + bar_h}" text-anchor="end" class="ax">{escape(label)}</text>')
        for s, v in enumerate(values):
            color = COLORS[s % len(COLORS)]
            text = f"{v * 100:.1f}%" if percent else _nice(v)
            parts.append(f'<rect x="{label_w}" y="{y0 + s * 12}" width="{max(v / vmax * pw, 0.5):.1f}" '
                         f'height="{bar_h}" fill="{color}"><title>{escape(series[s])}: {text}</title></rect>'
                         f'<text x="{label_w + v / vmax * pw + 4:.1f}" y="{y0 + s * 12 + 9}" class="ax">{text}</text>')
    for s, name in enumerate(series):
        parts.append(f'<rect x="{label_w + 120 * s}" y="{h - 14}" width="10" height="10" '
                     f'fill="{COLORS[s % len(COLORS)]}"/><text x="{label_w + 14 + 120 * s}" y="{h - 5}" '
                     f'class="ax">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def integer_histogram(series: dict[str, dict[int, int]], title: str) -> str:
    """`histogram(..., integer=True)` from counts per value (value → rows), one bin per integer."""
    present = [int(v) for c in series.values() for v, n in c.items() if n]
    if not present:
        return '<p class="na">no values</p>'
    e = edges(min(present), max(present), integer=True)
    counts = {}
    for name, c in series.items():
        bins = np.zeros(len(e) - 1, dtype=np.int64)
        for v, n in c.items():
            bins[int(v) - math.floor(min(present))] += n
        counts[name] = bins
    return histogram_counts(counts, e, title)
