"""Crossovers: exact on known laws; openCLIP vs openMaMMUT and DataComp vs Re-LAION on the study's data."""

from __future__ import annotations

import numpy as np
import pytest

from curate.compare.config import STUDY_OPENCLIP_DATACOMP, STUDY_OPENMAMMUT_DATACOMP
from curate.compare.crossover import find_crossovers
from curate.compare.fit import ScalingLaw


def _pure(a: float, alpha: float) -> ScalingLaw:
    return ScalingLaw(a=a, ln_b=-np.inf, alpha=alpha, e=0.0)


@pytest.mark.parametrize(("alpha", "expected"), [(0.2, 1e10), (0.25, 10 ** (1 / 0.15))])
def test_crossing_of_two_power_laws_is_exact(alpha, expected):
    # 10 C^-0.1 = 100 C^-alpha  <=>  C = 10^(1 / (alpha - 0.1)); the steeper law leads above
    shallow, steep = _pure(10.0, 0.1), _pure(100.0, alpha)
    (cross,) = find_crossovers(("shallow", shallow, None), ("steep", steep, None), (1e6, 1e12))
    assert cross.compute == pytest.approx(expected, rel=1e-8)
    assert cross.leader_above == "steep" and cross.leader_below == "shallow"
    assert not cross.extrapolated and cross.low is None and cross.bootstrap_share is None


def test_parallel_laws_do_not_cross():
    better, worse = _pure(10.0, 0.1), _pure(12.0, 0.1)
    (cross,) = find_crossovers(("better", better, None), ("worse", worse, None), (1e8, 1e12))
    assert cross.compute is None
    assert cross.leader_above == cross.leader_below == "better"


def _crossings(report, first, second):
    return [c for c in report.crossovers if {c.first, c.second} == {first, second}]


def test_openmammut_overtakes_openclip_on_datacomp(cosine_report, runs_report):
    # The study finds openMaMMUT's curve steeper than openCLIP's: worse at small compute, better at large
    # compute. Expected value: the study's published fig1 laws (config.STUDY_*_DATACOMP) cross at
    # 6.66e10 GFLOPs (and again at 1.8e6, below the data). Ours, with the study's settings:
    # best_per_cell.csv 6.79e10 (95% interval about 2.7e10 to 1.4e11); the per-run parquet, whose
    # openMaMMUT fit misses some best runs, 7.33e10 (and 1.6e6, below the data). Values pinned from this
    # tool's output to catch regressions; the paper's crossing is checked at the tolerance they meet.
    published = _published_crossing()
    assert published == pytest.approx(6.66e10, rel=0.01)
    clip, mammut = "clip/datacomp_1b/cosine/imagenet1k/acc1", "mammut/datacomp_1b/cosine/imagenet1k/acc1"
    (cross,) = _crossings(cosine_report, clip, mammut)
    assert cross.compute == pytest.approx(6.785e10, rel=0.02)
    assert cross.compute == pytest.approx(published, rel=0.03)
    assert cross.low < published < cross.high
    assert cross.low > 1e10 and cross.high < 5e11
    assert cross.leader_above == mammut and cross.leader_below == clip
    assert not cross.extrapolated and cross.bootstrap_share > 0.95
    crossings = _crossings(runs_report, "clip/datacomp_1b/cosine/acc1", "mammut/datacomp_1b/cosine/acc1")
    (low,) = [c for c in crossings if c.extrapolated]
    (inside,) = [c for c in crossings if not c.extrapolated]
    assert low.compute == pytest.approx(1.61e6, rel=0.05) and low.leader_above == "clip/datacomp_1b/cosine/acc1"
    assert inside.compute == pytest.approx(7.33e10, rel=0.02)
    assert inside.low < published < inside.high
    assert inside.leader_above == "mammut/datacomp_1b/cosine/acc1"


def _published_crossing() -> float:
    def law(p: dict[str, float]) -> ScalingLaw:
        return ScalingLaw(p["A"], p["lnB"], p["alpha"], p["E"])

    clip, mammut = law(STUDY_OPENCLIP_DATACOMP), law(STUDY_OPENMAMMUT_DATACOMP)
    found = find_crossovers(("clip", clip, None), ("mammut", mammut, None), (7e6, 5.2e11))
    (inside,) = [c for c in found if not c.extrapolated]
    return inside.compute


def test_datacomp_leads_relaion_over_the_studied_compute(cosine_report):
    # This tool's own output on best_per_cell.csv with the study's settings, pinned to catch regressions
    # (the study compares these curves in its Figure 2 but publishes no crossing): the DataComp-1.4B and
    # Re-LAION-2B-en curves cross only near the smallest runs (openCLIP 1.21e7, openMaMMUT 2.07e7
    # GFLOPs), and DataComp leads above; openMaMMUT's Re-LAION fit (E at its bound 0) would overtake again
    # only far beyond the data (1.14e13).
    def label(family: str, dataset: str) -> str:
        return f"{family}/{dataset}/cosine/imagenet1k/acc1"

    for family, low_cross in (("clip", 1.21e7), ("mammut", 2.07e7)):
        dc, re = label(family, "datacomp_1b"), label(family, "relaion2b-en")
        first = min(_crossings(cosine_report, dc, re), key=lambda c: c.compute)
        assert first.compute == pytest.approx(low_cross, rel=0.05)
        assert first.leader_above == dc
        grid = np.logspace(8, np.log10(cosine_report.curve(re).runs["compute"].max()), 20)
        dc_error = cosine_report.curve(dc).fit.law.predict(grid)
        assert np.all(dc_error < cosine_report.curve(re).fit.law.predict(grid))
    crossings = _crossings(cosine_report, label("mammut", "datacomp_1b"), label("mammut", "relaion2b-en"))
    (late,) = [c for c in crossings if c.compute > 1e12]
    assert late.compute == pytest.approx(1.14e13, rel=0.05)
    assert late.extrapolated
    assert late.leader_above == label("mammut", "relaion2b-en")
