"""Benchmark, reproduction check and sensitivity reports of `curate compare` on the published tables.

    python bench/bench_compare.py [--bootstrap 200] [--no-study-grid | --study-grid-all] [--rounding-draws 200]

1. Times fitting every curve of the best-per-cell table (every task and metric it holds: filters,
   frontier, fit, bootstrap, holdout, crossovers) with the best-per-cell preset's settings (the study's).
2. Reproduction: the study's procedure (STUDY_FILTER and the default frontier and fit) on the per-run
   parquet and on best-per-cell,
   against the openCLIP and openMaMMUT parameters published in arXiv 2506.04598 (Figure 1).
3. The study's full 3,200-start scipy grid (`--start-grid study`) against the fast default on the
   openCLIP curves (with --study-grid-all, every compared ImageNet curve): time and largest relative
   parameter difference. About 3 minutes per curve on 2 cores.
4. Sensitivity reports, none of which is a setting of the reproduction: frontier rows "points" instead
   of the study's row matching; best-per-cell errors moved within their 3-decimal rounding interval;
   and a scan of the number of frontier bins.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from curate.compare.analysis import compare_runs
from curate.compare.config import (
    BEST_PER_CELL,
    STUDY_FILTER,
    STUDY_OPENCLIP_DATACOMP,
    STUDY_OPENMAMMUT_DATACOMP,
    STUDY_RUNS,
    BootstrapConfig,
    CompareConfig,
    FitConfig,
    FrontierConfig,
)
from curate.compare.filters import filter_runs
from curate.compare.fit import ScalingLaw, fit_law
from curate.compare.frontier import bin_edges, frontier_index
from curate.compare.runs import read_table, tidy_runs

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests/data/scaling"
FULL_TABLE = [ROOT.parent / "shared/data/scaling/best_per_cell.csv", DATA / "best_per_cell_imagenet1k.csv"]
PUBLISHED = {"clip": STUDY_OPENCLIP_DATACOMP, "mammut": STUDY_OPENMAMMUT_DATACOMP}
TARGET = 2.14e12  # GFLOPs, openCLIP ViT-L-14 at 12.8B samples seen


def _params(law: ScalingLaw) -> dict[str, float]:
    return {"A": law.a, "lnB": law.ln_b, "alpha": law.alpha, "E": law.e}


def time_full_table(table: pd.DataFrame, resamples: int) -> None:
    tasks = table[["downstream_dataset", "metric"]].drop_duplicates().itertuples(index=False)
    start = time.perf_counter()
    n_curves = n_cross = 0
    for task, metric in tasks:
        columns = replace(BEST_PER_CELL, filters=(("downstream_dataset", task), ("metric", metric)))
        columns = replace(columns, metric_label=f"{task}/{metric}")
        config = CompareConfig(columns=columns, filters=STUDY_FILTER, bootstrap=BootstrapConfig(resamples=resamples))
        report = compare_runs(tidy_runs(table, columns), config)
        n_curves += len(report.curves)
        n_cross += len(report.crossovers)
    elapsed = time.perf_counter() - start
    print(f"full table: {n_curves} curves, {n_cross} crossovers, {resamples} bootstrap refits each: {elapsed:.2f} s")


def curve_points(
    tidy: pd.DataFrame, family: str, frontier: FrontierConfig | None = None, dataset: str = "datacomp_1b"
) -> tuple[np.ndarray, np.ndarray, int]:
    """Frontier (compute, error) of a family's cosine curve on `dataset`, and its bin count."""
    runs = tidy[(tidy.family == family) & (tidy.dataset == dataset) & (tidy.schedule == "cosine")]
    runs, _ = filter_runs(runs.reset_index(drop=True), STUDY_FILTER, str(runs.metric.iloc[0]))
    compute, error = runs["compute"].to_numpy(), runs["error"].to_numpy()
    frontier = frontier or FrontierConfig()
    idx = frontier_index(compute, error, frontier)
    return compute[idx], error[idx], len(bin_edges(compute, frontier)) - 1


def _row(name: str, law: ScalingLaw, ref: dict[str, float], extra: str = "") -> None:
    got = _params(law)
    cells = " ".join(f"{got[k]:9.5g} ({100 * (got[k] / ref[k] - 1):+6.2f}%)" for k in ref)
    print(f"  {name:34} {cells}  acc@2.14e12 {1 - float(law.predict(TARGET)):.4f} {extra}")


def reproduction(tables: dict[str, pd.DataFrame]) -> None:
    print("\nreproduction, study settings (published vs ours, relative error):")
    for family, ref in PUBLISHED.items():
        law = ScalingLaw(ref["A"], ref["lnB"], ref["alpha"], ref["E"])
        print(f"  {family + ' published':34} " + " ".join(f"{v:9.5g}          " for v in ref.values()), end="")
        print(f"  acc@2.14e12 {1 - float(law.predict(TARGET)):.4f}")
        for name, tidy in tables.items():
            compute, error, bins = curve_points(tidy, family)
            _row(f"{family} {name}", fit_law(compute, error).law, ref, f"[{len(compute)} points, {bins} bins]")


def study_grid(curves: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    print("\nstudy's 3,200-start scipy grid vs the fast default:")
    for name, (compute, error) in curves.items():
        start = time.perf_counter()
        fast = fit_law(compute, error)
        t_fast = time.perf_counter() - start
        start = time.perf_counter()
        study = fit_law(compute, error, FitConfig(start_grid="study"))
        t_study = time.perf_counter() - start
        a, b = _params(fast.law), _params(study.law)
        diff = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-6) for k in a)  # E can sit at its bound 0
        print(f"  {name}: study {t_study:.1f} s ({study.agreeing_starts}/{study.starts} starts agree), ", end="")
        print(f"fast {t_fast * 1000:.0f} ms ({fast.agreeing_starts}/{fast.starts}); max rel. difference {diff:.1e}")
        print("    study grid: " + ", ".join(f"{k} {v:.7g}" for k, v in b.items()))


def study_grid_curves(tables: dict[str, pd.DataFrame], every: bool) -> dict[str, tuple[np.ndarray, ...]]:
    """Frontiers to run the study's grid on: openCLIP on DataComp-1.4B, or every compared ImageNet curve."""
    curves = {f"clip {name}": curve_points(tidy, "clip")[:2] for name, tidy in tables.items()}
    if every:
        curves |= {f"mammut {name}": curve_points(tidy, "mammut")[:2] for name, tidy in tables.items()}
        for family in ("clip", "mammut"):
            points = curve_points(tables["best-per-cell"], family, dataset="relaion2b-en")
            curves[f"{family} relaion2b-en best-per-cell"] = points[:2]
    return curves


def rows_sensitivity(tables: dict[str, pd.DataFrame]) -> None:
    print("\nsensitivity (not the reproduction): frontier rows 'points' instead of the study's matching:")
    for family, ref in PUBLISHED.items():
        for name, tidy in tables.items():
            compute, error, _ = curve_points(tidy, family, FrontierConfig(rows="points"))
            _row(f"{family} {name}", fit_law(compute, error).law, ref, f"[{len(compute)} points]")


def rounding_sensitivity(tidy: pd.DataFrame, draws: int) -> None:
    print(f"\nsensitivity (not the reproduction): best-per-cell errors moved within +-0.0005, {draws} draws:")
    rng = np.random.default_rng(0)
    for family, ref in PUBLISHED.items():
        runs = tidy[(tidy.family == family) & (tidy.dataset == "datacomp_1b") & (tidy.schedule == "cosine")]
        runs, _ = filter_runs(runs.reset_index(drop=True), STUDY_FILTER, str(runs.metric.iloc[0]))
        compute, error = runs["compute"].to_numpy(), runs["error"].to_numpy()
        fits = []
        for _ in range(draws):
            moved = error + rng.uniform(-5e-4, 5e-4, len(error))
            idx = frontier_index(compute, moved)
            fits.append(list(_params(fit_law(compute[idx], moved[idx]).law).values()))
        low, high = np.percentile(np.array(fits), [2.5, 97.5], axis=0)
        ranges = zip(ref, low, high, strict=True)
        cells = ", ".join(f"{k} [{lo:.5g}, {hi:.5g}] (published {ref[k]:.5g})" for k, lo, hi in ranges)
        print(f"  {family}: 95% range {cells}")


def scan_bins(tidy: pd.DataFrame) -> None:
    print("\nsensitivity (not the reproduction): number of frontier bins, openCLIP best-per-cell:")
    ref = STUDY_OPENCLIP_DATACOMP
    for bins in [None, *range(20, 46, 3)]:
        compute, error, n_bins = curve_points(tidy, "clip", FrontierConfig(bins=bins))
        label = f"{n_bins} bins" + (" (study rule)" if bins is None else "")
        _row(label, fit_law(compute, error).law, ref, f"[{len(compute)} points]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples per curve")
    grid = parser.add_mutually_exclusive_group()
    grid.add_argument("--no-study-grid", action="store_true", help="skip the 3,200-start fits (minutes)")
    grid.add_argument("--study-grid-all", action="store_true", help="run them on all 6 compared curves")
    parser.add_argument("--rounding-draws", type=int, default=200, help="refits of the rounding sensitivity")
    args = parser.parse_args()
    full = next(p for p in FULL_TABLE if p.is_file())
    print(f"full table: {full}")
    time_full_table(read_table(full), args.bootstrap)
    tables = {
        "per-run parquet": tidy_runs(read_table(DATA / "openclip_openmammut_datacomp_runs.parquet"), STUDY_RUNS),
        "best-per-cell": tidy_runs(read_table(DATA / "best_per_cell_imagenet1k.csv"), BEST_PER_CELL),
    }
    reproduction(tables)
    if not args.no_study_grid:
        study_grid(study_grid_curves(tables, args.study_grid_all))
    rows_sensitivity(tables)
    rounding_sensitivity(tables["best-per-cell"], args.rounding_draws)
    scan_bins(tables["best-per-cell"])


if __name__ == "__main__":
    main()
