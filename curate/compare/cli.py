"""`curate compare {fit,plot,optimal}`: compare datasets and recipes by their scaling laws.

`add_parser(subparsers)` registers the command; each handler takes the parsed args and returns an
exit code. Bad input raises CompareError, which the top-level CLI prints as one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from typing import TYPE_CHECKING

from curate.compare.args import (
    add_column_arguments,
    add_filter_arguments,
    add_fit_arguments,
    add_runs_argument,
    build_config,
    resolve_preset,
)
from curate.compare.errors import CompareError

if TYPE_CHECKING:

    from curate.compare.analysis import Report

log = logging.getLogger(__name__)

def add_parser(subparsers) -> None:
    """Register `compare` and its subcommands on an argparse subparsers object."""
    parser = subparsers.add_parser(
        "compare",
        help="compare datasets and recipes by scaling laws fitted to training runs",
        description="Fit error(C) = A (C + B)^-alpha + E on the compute-error frontier of each model "
        "family, dataset and schedule; report intervals, holdout errors, crossovers and compute-optimal "
        "samples seen.",
    )
    sub = parser.add_subparsers(dest="compare_command", metavar="{fit,plot,optimal}", required=True)
    fit = sub.add_parser("fit", help="fit scaling laws and report parameters, crossovers and holdout errors")
    plot = sub.add_parser("plot", help="draw points, frontiers, fitted curves with bands and crossovers")
    optimal = sub.add_parser("optimal", help="predict compute-optimal samples seen for compute budgets")
    for command in (fit, plot, optimal):
        add_runs_argument(command)
        add_column_arguments(command)
        add_filter_arguments(command)
        add_fit_arguments(command)
    fit.add_argument("--json", action="store_true", help="print the full report as JSON")
    optimal.add_argument("--json", action="store_true", help="print the predictions as JSON")
    plot.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs and index.html")
    fit.set_defaults(func=run_fit)
    plot.set_defaults(func=run_plot)
    optimal.set_defaults(func=run_optimal)


def report_from_args(args: argparse.Namespace) -> Report:
    """Read, tidy and compare the runs named by `args` (pandas and numpy are imported only here)."""
    from curate.compare.analysis import compare_runs
    from curate.compare.runs import read_table, select_curves, tidy_runs

    table = read_table(args.runs)
    if table.empty:
        raise CompareError(f"runs table {args.runs} has no rows")
    preset = resolve_preset(args, table)
    tidy = select_curves(tidy_runs(table, preset.columns), args.only or ())
    return compare_runs(tidy, build_config(args, preset))


def _clean(value):
    """JSON-safe copy: non-finite floats become null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def _g(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _print_text(report: Report) -> None:
    print(report.filters_line())
    print(f"{'curve':48} {'pts':>4} {'A':>24} {'ln B':>22} {'alpha':>24} {'E':>24} {'holdout MAE':>11}")
    for curve in report.curves:
        cells = []
        for name in ("A", "lnB", "alpha", "E"):
            iv = curve.params()[name].to_dict()
            cells.append(f"{_g(iv['value'])} [{_g(iv['low'])}, {_g(iv['high'])}]")
        mae = _g(curve.holdout.mae) if curve.holdout else "-"
        print(
            f"{curve.key.label:48} {len(curve.frontier):>4} "
            + " ".join(f"{c:>24}" for c in cells)
            + f" {mae:>11}"
        )
        if curve.dropped:
            print("    filtered out: " + ", ".join(f"{n} {reason}" for reason, n in curve.dropped.items()))
        for row in curve.predictions + curve.optimal:
            print(
                f"    at {row['compute']:.3g} GFLOPs: "
                + ", ".join(f"{k} {_g(v['value'])}" for k, v in row.items() if k != "compute")
            )
    for c in report.crossovers:
        where = f"at {_g(c.compute)} [{_g(c.low)}, {_g(c.high)}]" if c.compute else "no crossover"
        note = " (extrapolated)" if c.extrapolated else ""
        print(f"{c.first} x {c.second}: {where}{note}; leads above: {c.leader_above}")


def run_fit(args: argparse.Namespace) -> int:
    report = report_from_args(args)
    if args.json:
        print(json.dumps(_clean(report.to_dict()), indent=2))
    else:
        _print_text(report)
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from curate.compare.plot import plot_report  # matplotlib is slow to import; only `plot` needs it

    report = report_from_args(args)
    for path in plot_report(report, args.out):
        print(path)
    return 0


def run_optimal(args: argparse.Namespace) -> int:
    if not args.budget:
        raise CompareError("give at least one --budget GFLOPS")
    report = report_from_args(args)
    rows = [
        {
            "id": c.key.label,
            "samples_law": c.samples_law.__dict__ if c.samples_law else None,
            "optimal": c.optimal,
        }
        for c in report.curves
    ]
    if args.json:
        print(json.dumps(_clean(rows), indent=2))
        return 0
    for row in rows:
        for item in row["optimal"]:
            iv = item["samples_seen"]
            interval = f"[{_g(iv['low'])}, {_g(iv['high'])}]"
            print(f"{row['id']}: {item['compute']:.3g} GFLOPs -> {_g(iv['value'])} samples seen {interval}")
    return 0
