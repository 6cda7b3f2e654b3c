"""`curate compare {fit,plot,optimal}`: compare datasets and recipes by their scaling laws.

`add_parser(subparsers)` registers the command; each handler takes the parsed args and returns an
exit code. Bad input raises CompareError, which the top-level CLI prints as one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING

from curate.compare.config import (
    FILTER_SETS,
    GENERIC,
    PRESETS,
    STUDY_FILTER,
    BootstrapConfig,
    CompareConfig,
    FitConfig,
    FrontierConfig,
    Preset,
    filter_set_name,
)
from curate.compare.errors import CompareError

if TYPE_CHECKING:
    import pandas as pd

    from curate.compare.analysis import Report

log = logging.getLogger(__name__)

COLUMN_OPTIONS = {
    "family": "model family, one curve each (e.g. clip, mammut)",
    "dataset": "pretraining dataset, one curve each",
    "schedule": "learning-rate schedule, one curve each",
    "arch": "architecture of the run (reported with frontier points)",
    "samples_seen": "samples seen by the run",
    "compute": "total compute of the run in GFLOPs",
    "gflops_per_sample": "GFLOPs per sample, times samples seen when there is no total-compute column",
}


def _column_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "columns (default: the preset's; 'none' if the table has no such column)"
    )
    group.add_argument(
        "--preset",
        choices=["auto", *PRESETS],
        default="auto",
        help="column mapping and default run filters: runs (the study's per-run parquet) and best-per-cell "
        "(its best-per-cell table), both with the study's filters; cherti2023 (Cherti et al. 2023), no "
        "filters; auto (default) picks the first whose columns the table has, else the column options on "
        "top of the runs preset's names, no filters",
    )
    for name, meaning in COLUMN_OPTIONS.items():
        flag = "--" + name.replace("_", "-") + "-col"
        group.add_argument(flag, dest=f"col_{name}", metavar="COL", help=f"column holding the {meaning}")
    group.add_argument(
        "--metric", action="append", metavar="COL", help="metric column (repeatable); error = 1 - metric"
    )
    group.add_argument(
        "--metric-is-error", action="store_true", help="the metric columns already hold an error or loss"
    )
    group.add_argument(
        "--compute-scale", type=float, help="multiply compute by this (2 turns GMACs into GFLOPs)"
    )
    group.add_argument(
        "--where",
        action="append",
        metavar="COL=VALUE",
        help="keep rows where COL equals VALUE (repeatable; replaces the preset's)",
    )
    group.add_argument(
        "--only", action="append", metavar="TEXT", help="keep curves whose id contains TEXT (repeatable)"
    )


def _optional_float(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


# flag: (RunFilter field, metavar, meaning)
FILTER_LIMITS = {
    "--max-compute": ("max_compute", "GFLOPS", "drop runs above this total compute"),
    "--min-compute": ("min_compute", "GFLOPS", "drop runs below this total compute"),
    "--max-samples-seen": ("max_samples_seen", "N", "drop runs that saw more samples than this"),
    "--divergence-compute": (
        "divergence_compute",
        "GFLOPS",
        f"drop runs above this compute whose error is {STUDY_FILTER.divergence_error:g} or more (diverged; "
        f"{', '.join(STUDY_FILTER.divergence_metrics)} metrics only)",
    ),
}


def _filter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "run filters (which runs enter the fits; the JSON and text output name the set applied and count "
        "the runs each filter dropped)"
    )
    group.add_argument(
        "--filters",
        choices=["preset", *FILTER_SETS],
        default="preset",
        help="preset (default): the preset's, which is 'study' for the study's own tables (presets runs, "
        "best-per-cell) and 'none' for cherti2023 and any other table; study: the filters of scripts/fig1.sh "
        "of LAION-AI/scaling-laws-for-comparison (" + STUDY_FILTER.describe() + "); none: keep every run. "
        "The options below change single limits of the chosen set",
    )
    for flag, (name, metavar, meaning) in FILTER_LIMITS.items():
        group.add_argument(
            flag,
            dest=name,
            type=_optional_float,
            default=argparse.SUPPRESS,
            metavar=metavar,
            help=f"{meaning}; overrides --filters (study: {getattr(STUDY_FILTER, name):g}; 'none': off)",
        )
    group.add_argument(
        "--no-divergence-filter",
        action="store_true",
        help="same as --divergence-compute none: keep runs with a large error above any compute",
    )


def _bins(text: str) -> int | None:
    if text == "auto":
        return None
    try:
        return int(text)
    except ValueError:
        raise CompareError(f"--bins takes 'auto' or a number of bins, not {text!r}") from None


def _fit_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("frontier and fit")
    group.add_argument(
        "--frontier",
        choices=["pareto_bin", "pareto"],
        default=FrontierConfig.method,
        help="pareto_bin: the best run per geometric compute bin, as the study; pareto: every run better "
        "than all cheaper runs",
    )
    group.add_argument(
        "--frontier-rows",
        choices=["study", "points"],
        default=FrontierConfig.rows,
        help="pareto_bin's runs: study: every run matching a frontier compute and a frontier error, as the "
        "study's code (can add a run off the frontier); points: one run per frontier point",
    )
    group.add_argument(
        "--bins",
        default="auto",
        help="pareto_bin's number of bins; auto: the study's int(log2(max compute / 1500)) edges",
    )
    group.add_argument(
        "--start-grid",
        choices=["fast", "study"],
        default=FitConfig.start_grid,
        help="fast: a small grid solved at once (default); study: the study's 3,200 scipy fits (minutes)",
    )
    group.add_argument("--pure-power-law", action="store_true", help="fix the irreducible error E = 0")
    group.add_argument("--no-offset", action="store_true", help="fix the compute offset B = 0")
    group.add_argument(
        "--loss", choices=["linear", "log"], default="linear", help="residuals on the error or on its log"
    )
    group.add_argument(
        "--bootstrap",
        type=int,
        default=BootstrapConfig.resamples,
        help="bootstrap resamples (0: no intervals)",
    )
    group.add_argument("--seed", type=int, default=BootstrapConfig.seed, help="seed of the bootstrap")
    group.add_argument(
        "--level", type=float, default=BootstrapConfig.level, help="confidence level of the intervals"
    )
    group.add_argument(
        "--holdout-compute", type=float, metavar="GFLOPS", help="fit below this compute, test above it"
    )
    group.add_argument(
        "--holdout-decades",
        type=float,
        default=1.0,
        help="without --holdout-compute, hold out the top decades of compute",
    )
    group.add_argument(
        "--predict",
        type=float,
        action="append",
        metavar="GFLOPS",
        help="predict the metric at this compute (repeatable)",
    )
    group.add_argument(
        "--budget",
        type=float,
        action="append",
        metavar="GFLOPS",
        help="predict compute-optimal samples seen for this budget (repeatable)",
    )


def _runs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", help="table of training runs (.csv, .tsv or .parquet)")


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
        _runs_argument(command)
        _column_arguments(command)
        _filter_arguments(command)
        _fit_arguments(command)
    fit.add_argument("--json", action="store_true", help="print the full report as JSON")
    optimal.add_argument("--json", action="store_true", help="print the predictions as JSON")
    plot.add_argument("--out", required=True, metavar="DIR", help="folder for the PNGs and index.html")
    fit.set_defaults(func=run_fit)
    plot.set_defaults(func=run_plot)
    optimal.set_defaults(func=run_optimal)


def _preset(args: argparse.Namespace, table: pd.DataFrame) -> Preset:
    """The preset named or detected, with the column options applied to its columns."""
    from curate.compare.runs import detect_preset

    if args.preset != "auto":
        base = PRESETS[args.preset]
    else:
        try:
            base = detect_preset(table)
        except CompareError:
            base = GENERIC  # the column options must then name what the table has
    changes: dict[str, object] = {}
    for name in COLUMN_OPTIONS:
        value = getattr(args, f"col_{name}")
        if value is not None:
            changes[name] = None if value.lower() == "none" else value
    if args.col_gflops_per_sample and args.col_compute is None:
        changes["compute"] = None
    if args.metric:
        changes.update(metrics=tuple(args.metric), metric_label=None)
    if args.metric_is_error:
        changes["metric_is_error"] = True
    if args.compute_scale is not None:
        changes["compute_scale"] = args.compute_scale
    if args.where:
        pairs = []
        for item in args.where:
            column, sep, value = item.partition("=")
            if not sep or not column:
                raise CompareError(f"--where needs COL=VALUE, got {item!r}")
            pairs.append((column, value))
        changes["filters"] = tuple(pairs)
        if base.columns.metric_label and not args.metric:
            changes["metric_label"] = "/".join(v for _, v in pairs)
    try:
        return replace(base, columns=replace(base.columns, **changes))
    except ValueError as exc:
        raise CompareError(str(exc)) from exc


def build_config(args: argparse.Namespace, preset: Preset) -> CompareConfig:
    """The CompareConfig of the parsed options for a table of this preset (columns already applied)."""
    bins = _bins(args.bins)
    if args.bootstrap < 0 or (bins is not None and bins < 1) or not 0 < args.level < 1:
        raise CompareError("--bootstrap must be 0 or more, --bins auto or 1 or more, and --level between 0 and 1")
    filters = preset.run_filter if args.filters == "preset" else FILTER_SETS[args.filters]
    limits = {name: getattr(args, name) for name, _, _ in FILTER_LIMITS.values() if hasattr(args, name)}
    if args.no_divergence_filter:
        if limits.get("divergence_compute") is not None:
            raise CompareError("--no-divergence-filter and --divergence-compute GFLOPS contradict each other")
        limits["divergence_compute"] = None
    filters = replace(filters, **limits)
    log.info("preset %s, filters %s: %s", preset.name, filter_set_name(filters), filters.describe())
    return CompareConfig(
        columns=preset.columns,
        filters=filters,
        preset=preset.name,
        frontier=FrontierConfig(method=args.frontier, bins=bins, rows=args.frontier_rows),
        fit=FitConfig(
            irreducible=not args.pure_power_law,
            offset=not args.no_offset,
            space=args.loss,
            start_grid=args.start_grid,
        ),
        bootstrap=BootstrapConfig(resamples=args.bootstrap, seed=args.seed, level=args.level),
        holdout_compute=args.holdout_compute,
        holdout_decades=args.holdout_decades,
        predict_at=tuple(args.predict or ()),
        budgets=tuple(args.budget or ()),
    )


def report_from_args(args: argparse.Namespace) -> Report:
    """Read, tidy and compare the runs named by `args` (pandas and numpy are imported only here)."""
    from curate.compare.analysis import compare_runs
    from curate.compare.runs import read_table, select_curves, tidy_runs

    table = read_table(args.runs)
    if table.empty:
        raise CompareError(f"runs table {args.runs} has no rows")
    preset = _preset(args, table)
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
