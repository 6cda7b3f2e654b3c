"""The options of `curate compare` and how they become a frozen CompareConfig (parsed at the edge)."""

from __future__ import annotations

import argparse
import logging
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


def add_column_arguments(parser: argparse.ArgumentParser) -> None:
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


def add_filter_arguments(parser: argparse.ArgumentParser) -> None:
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


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
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


def add_runs_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", help="table of training runs (.csv, .tsv or .parquet)")


def resolve_preset(args: argparse.Namespace, table: pd.DataFrame) -> Preset:
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
