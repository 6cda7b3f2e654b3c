"""Draw a compare report: one PNG per metric and one self-contained HTML page.

Each figure shows, on log axes, every run (faint), the frontier runs (circles), the fitted curve
with its bootstrap band, and the crossovers of the curves drawn (crosses with their interval).
Figures are built with matplotlib's object API and the Agg canvas, so no global backend is touched.
"""

from __future__ import annotations

import base64
import html
import logging
import re
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from curate.compare.analysis import CurveReport, Report
from curate.compare.crossover import Crossover
from curate.compare.errors import CompareError

log = logging.getLogger(__name__)

CURVE_POINTS = 200


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_") or "metric"


def _compute_grid(curves: list[CurveReport], extra: tuple[float, ...]) -> np.ndarray:
    lows = [c.runs["compute"].min() for c in curves]
    highs = [c.runs["compute"].max() for c in curves] + list(extra)
    return np.logspace(np.log10(min(lows) / 2), np.log10(max(highs) * 3), CURVE_POINTS)


def _draw_curve(ax, curve: CurveReport, grid: np.ndarray, color) -> None:
    law = curve.fit.law
    ax.scatter(curve.runs["compute"], curve.runs["error"], s=6, color=color, alpha=0.2, linewidths=0)
    ax.scatter(
        curve.frontier["compute"],
        curve.frontier["error"],
        s=22,
        color=color,
        edgecolors="black",
        linewidths=0.4,
    )
    name = f"{curve.key.family}/{curve.key.dataset}/{curve.key.schedule}"
    label = f"{name}: A={law.a:.3g}, α={law.alpha:.3f}, E={law.e:.3f}"
    ax.plot(grid, law.predict(grid), color=color, linewidth=1.6, label=label)
    if curve.boot is not None:
        low, high = curve.boot.predict_interval(grid)
        ax.fill_between(grid, low, high, color=color, alpha=0.15, linewidth=0)


def _draw_crossover(ax, cross: Crossover, laws: dict) -> None:
    if cross.compute is None or cross.first not in laws:
        return
    y = float(laws[cross.first].predict(cross.compute))
    if cross.low is not None and cross.high is not None:
        xerr = [[cross.compute - cross.low], [cross.high - cross.compute]]
        ax.errorbar([cross.compute], [y], xerr=xerr, fmt="none", ecolor="black", elinewidth=0.8, capsize=3)
    ax.scatter([cross.compute], [y], marker="x", s=50, color="black", zorder=5)


def metric_figure(report: Report, metric: str) -> Figure:
    """The figure of all curves of one metric."""
    curves = [c for c in report.curves if c.key.metric == metric]
    fig = Figure(figsize=(9, 6), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    grid = _compute_grid(curves, report.config.predict_at)
    colors = [f"C{i % 10}" for i in range(len(curves))]
    for curve, color in zip(curves, colors, strict=True):
        _draw_curve(ax, curve, grid, color)
    laws = {c.key.label: c.fit.law for c in curves}
    for cross in report.crossovers:
        if (
            cross.first in laws
            and cross.second in laws
            and cross.compute
            and grid[0] <= cross.compute <= grid[-1]
        ):
            _draw_crossover(ax, cross, laws)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_xlabel("compute (GFLOPs)")
    ax.set_ylabel(f"error (1 - {metric})" if not report.config.columns.metric_is_error else metric)
    ax.set_title(f"{metric}: error(C) = A (C + B)^-α + E on the compute-error frontier")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def _fmt(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.4g}"


def _params_table(report: Report) -> str:
    rows = []
    for curve in report.curves:
        cells = [html.escape(curve.key.label), str(len(curve.frontier))]
        for name in ("A", "lnB", "alpha", "E"):
            iv = curve.params()[name]
            cells.append(f"{_fmt(iv.value)} [{_fmt(iv.low)}, {_fmt(iv.high)}]")
        held = curve.holdout
        cells.append(f"{_fmt(held.mae)} ({held.n_heldout} pts ≥ {held.threshold:.3g})" if held else "–")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("curve", "frontier", "A", "ln B", "α", "E", "holdout MAE"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _crossover_table(report: Report) -> str:
    rows = []
    for c in report.crossovers:
        cells = [c.first, c.second, _fmt(c.compute), f"[{_fmt(c.low)}, {_fmt(c.high)}]", c.leader_above]
        cells.append("yes" if c.extrapolated else "no")
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>" for h in ("first", "second", "compute", "interval", "leads above", "extrapolated")
    )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;font-size:12px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}img{max-width:100%}"
)


def write_html(report: Report, pngs: dict[str, Path], path: Path) -> None:
    """A self-contained page: tables of parameters and crossovers, and the PNGs inlined as base64."""
    images = []
    for metric, png in pngs.items():
        data = base64.b64encode(png.read_bytes()).decode("ascii")
        name = html.escape(metric)
        images.append(f"<h2>{name}</h2><img alt='{name}' src='data:image/png;base64,{data}'>")
    level = int(round(report.config.bootstrap.level * 100))
    body = (
        f"<h1>curate compare</h1><p>error(C) = A·(C + B)<sup>−α</sup> + E, C in GFLOPs; "
        f"{level}% bootstrap intervals.</p><p>{html.escape(report.filters_line())}</p>"
        f"<h2>Fitted laws</h2>{_params_table(report)}"
        f"<h2>Crossovers</h2>{_crossover_table(report)}{''.join(images)}"
    )
    head = f"<meta charset='utf-8'><title>curate compare</title><style>{STYLE}</style>"
    page = f"<!doctype html><html><head>{head}</head><body>{body}</body></html>"
    path.write_text(page, encoding="utf-8")


def plot_report(report: Report, out_dir: str | Path) -> list[Path]:
    """Write one PNG per metric and `index.html` into `out_dir`; returns the paths written."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompareError(f"cannot create output folder {out}: {exc.strerror}") from exc
    pngs: dict[str, Path] = {}
    for metric in sorted({c.key.metric for c in report.curves}):
        path = out / f"compare_{_slug(metric)}.png"
        metric_figure(report, metric).savefig(path)
        pngs[metric] = path
    page = out / "index.html"
    write_html(report, pngs, page)
    log.info("wrote %d figures and %s", len(pngs), page)
    return [*pngs.values(), page]
