"""The scaling-law fit: reproduction of the study's published fit, exactness, options, speed."""

from __future__ import annotations

import time

import numpy as np
import pytest

from curate.compare.analysis import compare_runs
from curate.compare.config import (
    BEST_PER_CELL,
    PRESETS,
    STUDY_OPENCLIP_DATACOMP,
    STUDY_OPENMAMMUT_DATACOMP,
    FitConfig,
    StudyGrid,
)
from curate.compare.errors import CompareError
from curate.compare.fit import ScalingLaw, fit_law
from curate.compare.runs import load_runs

CLIP_DC = "clip/datacomp_1b/cosine/imagenet1k/acc1"
MAMMUT_DC = "mammut/datacomp_1b/cosine/imagenet1k/acc1"
CLIP_RUNS = "clip/datacomp_1b/cosine/acc1"  # the per-run parquet's curve ids
MAMMUT_RUNS = "mammut/datacomp_1b/cosine/acc1"
TARGET_COMPUTE = 2.14e12  # openCLIP ViT-L-14 at 12.8B samples seen, roughly

# The study's full 3,200-start curve_fit grid (FitConfig(start_grid="study")) on the reproduction curve
# (openCLIP, per-run parquet, study settings), run by bench/bench_compare.py: this tool's own output,
# pinned so that the fast default is checked against it on every run.
STUDY_GRID_OPENCLIP = {"A": 57.86208, "lnB": 18.391321, "alpha": 0.2266043, "E": 0.1111689}


def _params(law: ScalingLaw) -> dict[str, float]:
    return {"A": law.a, "lnB": law.ln_b, "alpha": law.alpha, "E": law.e}


def test_reproduces_the_studys_openclip_fit_from_the_per_run_table(runs_report):
    # Expected: arXiv 2506.04598, Figure 1 fit of openCLIP on DataComp-1.4B, ImageNet-1k zero-shot error vs
    # GFLOPs, as the study's code wrote it (fig1 tables): A 57.862083, ln B 18.391321, alpha 0.226604,
    # E 0.111169. The study's procedure (filters of scripts/fig1.sh, pareto_bin with its automatic 27
    # bins and its row matching, which adds a 25th run to the 24 frontier points, linear least squares)
    # on the study's per-run table reproduces all four to 1e-6 relative; nothing is tuned. The table
    # lacks the ViT-H runs, but the only one that would be on this frontier (ViT-H-14, 3B samples,
    # 1.14e12 GFLOPs) is above the study's max_x = 1e12.
    curve = runs_report.curve(CLIP_RUNS)
    assert len(curve.frontier) == 25
    got = _params(curve.fit.law)
    for name, value in STUDY_OPENCLIP_DATACOMP.items():
        assert got[name] == pytest.approx(value, rel=1e-5), name


def test_openmammut_fit_from_the_per_run_table(runs_report):
    # Expected: the study's fig1 openMaMMUT fit, A 125.356572, ln B 19.289384, alpha 0.255670, E 0.101112.
    # Same procedure; ours gives 123.66 (-1.35%), 19.281 (-0.04%), 0.25509 (-0.23%), 0.10172 (+0.60%),
    # so the tolerances are what it achieves, not 1%: this table holds only the runs also evaluated on
    # segmentation and lacks the best runs of some openMaMMUT cells on the frontier (ViT-B-14 at 1.28B
    # samples: its best error here is 0.0077 above best_per_cell.csv's).
    got = _params(runs_report.curve(MAMMUT_RUNS).fit.law)
    rel = {"A": 0.015, "lnB": 0.001, "alpha": 0.003, "E": 0.007}
    for name, value in STUDY_OPENMAMMUT_DATACOMP.items():
        assert got[name] == pytest.approx(value, rel=rel[name]), name


def test_study_procedure_on_the_best_per_cell_table(cosine_report):
    # Expected: the same published fits. On best_per_cell.csv the study's procedure gives
    #   openCLIP   58.760 (+1.55%)  18.414 (+0.13%)  0.22734 (+0.33%)  0.11159 (+0.38%)
    #   openMaMMUT 125.96 (+0.48%)  19.261 (-0.15%)  0.25636 (+0.27%)  0.10368 (+2.54%)
    # so the tolerances are what it achieves, not 1%. The table rounds accuracy to 3 decimals (moving
    # each error within its rounding interval moves openCLIP's A by about +-2% and E by +-1.4%, 95%
    # range, bench_compare.py), and keeps one run per cell, so the study's row matching cannot add the
    # 25th run it adds to the per-run table (without that run the unrounded per-run table gives openCLIP
    # A +2.8%, E +1.4%).
    expected = {
        CLIP_DC: (STUDY_OPENCLIP_DATACOMP, {"A": 0.02, "lnB": 0.002, "alpha": 0.005, "E": 0.005}),
        MAMMUT_DC: (STUDY_OPENMAMMUT_DATACOMP, {"A": 0.01, "lnB": 0.002, "alpha": 0.005, "E": 0.03}),
    }
    for label, (published, rel) in expected.items():
        got = _params(cosine_report.curve(label).fit.law)
        for name, value in published.items():
            assert got[name] == pytest.approx(value, rel=rel[name]), (label, name)


def test_fast_default_reaches_the_study_grid_optimum(runs_report):
    # The default start grid (24 starts, one vectorised solve) against the study's 3,200 scipy fits,
    # pinned above from the bench: the same optimum, well within 1e-4 relative.
    got = _params(runs_report.curve(CLIP_RUNS).fit.law)
    for name, value in STUDY_GRID_OPENCLIP.items():
        assert got[name] == pytest.approx(value, rel=1e-5), name


def test_study_start_grid_runs_the_studys_scipy_fits(runs_report):
    # The "study" path itself, on a 16-start subset of the study's grid (a0, b0 in {0, 50}, c0 in
    # {-0.2, -0.1}, d0 in {0, 0.0005}) to stay fast: scipy's curve_fit lands on the same optimum.
    front = runs_report.curve(CLIP_RUNS).frontier
    grid = StudyGrid(a=(0.0, 100.0, 50.0), b=(0.0, 100.0, 50.0), c=(-0.2, 0.0, 0.1))
    result = fit_law(front["compute"], front["error"], FitConfig(start_grid="study", study_grid=grid))
    assert result.starts == 16 and result.agreeing_starts >= 2
    for name, value in _params(result.law).items():
        assert value == pytest.approx(STUDY_GRID_OPENCLIP[name], rel=1e-5), name


def test_study_start_grid_with_fixed_offset_and_irreducible_error():
    # E = 0 and B = 0 leave a * C^c: the study path fits only a and c, from the grid's a0 and c0.
    compute = np.logspace(7, 12, 12)
    grid = StudyGrid(a=(0.0, 100.0, 50.0), c=(-0.2, 0.0, 0.1))
    config = FitConfig(start_grid="study", study_grid=grid, offset=False, irreducible=False)
    result = fit_law(compute, 30.0 * compute**-0.25, config)
    assert result.starts == 4
    assert result.law.a == pytest.approx(30.0, rel=1e-6)
    assert result.law.alpha == pytest.approx(0.25, rel=1e-6)
    assert result.law.b == 0.0 and result.law.e == 0.0


def test_predicts_about_79_6_percent_at_2_14e12_gflops(runs_report, cosine_report):
    # Expected: the study's law predicts 79.6% ImageNet-1k accuracy at 2.14e12 GFLOPs (computed from the
    # published parameters here, so the check does not depend on our fit). Ours: 79.59% from the per-run
    # table, 79.60% from best_per_cell.csv.
    p = STUDY_OPENCLIP_DATACOMP
    published = 1 - ScalingLaw(p["A"], p["lnB"], p["alpha"], p["E"]).predict(TARGET_COMPUTE)
    assert published == pytest.approx(0.796, abs=0.0005)
    for prediction in (runs_report.curve(CLIP_RUNS).predictions[0], cosine_report.curve(CLIP_DC).predictions[0]):
        assert prediction["compute"] == TARGET_COMPUTE
        assert prediction["metric"]["value"] == pytest.approx(published, abs=0.0005)
        assert prediction["metric"]["low"] < prediction["metric"]["value"] < prediction["metric"]["high"]


def test_recovers_a_known_law_from_exact_points():
    truth = ScalingLaw(a=30.0, ln_b=17.0, alpha=0.25, e=0.15)
    compute = np.logspace(7, 12, 25)
    result = fit_law(compute, truth.predict(compute))
    assert result.law.a == pytest.approx(truth.a, rel=1e-4)
    assert result.law.ln_b == pytest.approx(truth.ln_b, rel=1e-5)
    assert result.law.alpha == pytest.approx(truth.alpha, rel=1e-5)
    assert result.law.e == pytest.approx(truth.e, rel=1e-5)
    assert result.rmse < 1e-7
    assert result.agreeing_starts > result.starts // 2


def _frontier_points(report):
    front = report.curve(CLIP_DC).frontier
    return front["compute"].to_numpy(), front["error"].to_numpy()


def test_pure_power_law_in_log_space_is_the_loglog_regression(cosine_report):
    # Cherti et al. 2023 fit a straight line in log-log; with E = 0, B = 0 and log residuals, the fit
    # must equal ordinary least squares of log error on log compute.
    compute, error = _frontier_points(cosine_report)
    law = fit_law(compute, error, FitConfig(irreducible=False, offset=False, space="log")).law
    slope, intercept = np.polyfit(np.log(compute), np.log(error), 1)
    assert law.alpha == pytest.approx(-slope, rel=1e-6)
    assert np.log(law.a) == pytest.approx(intercept, rel=1e-6)
    assert law.e == 0.0 and law.b == 0.0


def test_pure_power_law_option_fixes_e_and_cannot_fit_better(cosine_report):
    compute, error = _frontier_points(cosine_report)
    full = fit_law(compute, error)
    pure = fit_law(compute, error, FitConfig(irreducible=False))
    assert pure.law.e == 0.0
    assert pure.law.alpha > 0
    # nested model: fixing E = 0 can only raise the least-squares residual
    assert pure.rmse >= full.rmse - 1e-12


def test_too_few_points_is_a_compare_error():
    with pytest.raises(CompareError, match="at least 3"):
        fit_law(np.array([1e8, 1e9]), np.array([0.5, 0.4]))


def test_the_published_table_fits_in_seconds(scaling_data):
    # The issue asks that the whole published table fits in seconds: all 8 ImageNet curves of the
    # best-per-cell table (4 families, 2 datasets, 2 schedules) with 200 bootstrap refits each.
    start = time.perf_counter()
    report = compare_runs(
        load_runs(scaling_data / "best_per_cell_imagenet1k.csv", BEST_PER_CELL),
        PRESETS["best-per-cell"].config(),
    )
    elapsed = time.perf_counter() - start
    assert len(report.curves) == 8 and not report.skipped
    assert elapsed < 20.0
