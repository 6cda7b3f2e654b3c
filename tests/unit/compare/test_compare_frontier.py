"""Frontier selection: the study's pareto_bin rule on hand-made points, and its properties on real runs."""

from __future__ import annotations

import numpy as np
import pytest

from curate.compare.config import FrontierConfig
from curate.compare.errors import CompareError
from curate.compare.frontier import bin_edges, frontier_index
from curate.compare.runs import load_runs

CLIP_DC = "clip/datacomp_1b/cosine/imagenet1k/acc1"


@pytest.fixture(scope="module")
def clip_runs(scaling_data):
    tidy = load_runs(scaling_data / "openclip_openmammut_datacomp_runs.parquet")
    clip = tidy[tidy["family"] == "clip"]
    return clip["compute"].to_numpy(), clip["error"].to_numpy()


def test_study_bin_rule_counts_edges_not_bins():
    # pareto_frontier_bins: int(ln(max / 1500) / ln 2) edges from min to max compute
    compute = np.array([1e7, 5.18e11])
    edges = bin_edges(compute, FrontierConfig())
    assert len(edges) == int(np.log(5.18e11 / 1500) / np.log(2)) == 28
    assert edges[0] == 1e7 and edges[-1] == 5.18e11
    assert len(bin_edges(compute, FrontierConfig(bins=10))) == 11


def test_pareto_bin_on_hand_made_points():
    # 3 bins with edges 1e3 .. 1e6 (bins=3): [1e3, 1e4), [1e4, 1e5), [1e5, 1e6); 1e6 is in no bin.
    compute = np.array([1e3, 5e3, 2e4, 3e4, 2e5, 9e5, 1e6, 1e6])
    error = np.array([0.9, 0.8, 0.85, 0.7, 0.75, 0.6, 0.5, 0.4])
    idx = frontier_index(compute, error, FrontierConfig(bins=3))
    # bin winners: 5e3 (0.8), 3e4 (0.7), 9e5 (0.6); all improve; then the best run at 1e6 (0.4)
    assert idx.tolist() == [1, 3, 5, 7]
    # a bin winner that does not improve on a cheaper one is dropped; so is a largest run that does not
    worse = error.copy()
    worse[[3, 6, 7]] = [0.95, 0.7, 0.65]
    idx = frontier_index(compute, worse, FrontierConfig(bins=3))
    assert idx.tolist() == [1, 5]


def test_plain_pareto_frontier(clip_runs):
    compute, error = clip_runs
    idx = frontier_index(compute, error, FrontierConfig(method="pareto"))
    expected = set()
    for c in np.unique(compute):
        best_here = error[compute == c].min()
        if best_here < error[compute < c].min(initial=np.inf):
            expected.add((c, best_here))
    assert {(compute[i], error[i]) for i in idx} == expected


@pytest.mark.parametrize("bins", [None, 5, 20, 43])
def test_frontier_points_are_monotone_and_best_of_their_bin(clip_runs, bins):
    compute, error = clip_runs
    config = FrontierConfig(bins=bins, rows="points")
    idx = frontier_index(compute, error, config)
    assert len(idx) >= 3
    assert np.all(np.diff(compute[idx]) > 0)
    assert np.all(np.diff(error[idx]) < 0)
    edges = bin_edges(compute, config)
    which = np.searchsorted(edges, compute, side="right") - 1
    for i in idx:  # each frontier run is the best run of its bin (or the best of the largest compute)
        same = which == which[i] if compute[i] < edges[-1] else compute == edges[-1]
        assert error[i] == error[same].min()


def test_study_rows_match_compute_and_error_independently():
    # pareto_frontier_bins returns rows whose compute is a frontier compute and whose error is a
    # frontier error, each matched on its own. Bins [1e3, 1e4), [1e4, 1e5), [1e5, 1e6); frontier points
    # (1e3, 0.9), (2e4, 0.7), (2e5, 0.6), (1e6, 0.5). The worse run (2e4, 0.9) shares its compute with one
    # frontier point and its error with another, so "study" keeps it; (2e5, 0.8) matches no error.
    compute = np.array([1e3, 2e4, 2e4, 2e5, 1e6, 2e5])
    error = np.array([0.9, 0.7, 0.9, 0.6, 0.5, 0.8])
    assert frontier_index(compute, error, FrontierConfig(bins=3, rows="points")).tolist() == [0, 1, 3, 4]
    assert frontier_index(compute, error, FrontierConfig(bins=3, rows="study")).tolist() == [0, 1, 2, 3, 4]


def test_study_rows_add_a_run_off_the_frontier_in_the_per_run_table(runs_report):
    # The study's openCLIP fit has 25 rows: the 24 frontier runs, and a ViT-S-16 run at 1.28M samples
    # (1.504e7 GFLOPs) whose error 0.98696 equals the ViT-S-32 frontier point's at 7.05e6 GFLOPs; the
    # best ViT-S-16 run of that cell (0.98000) is the frontier point. Read off the per-run parquet.
    front = runs_report.curve("clip/datacomp_1b/cosine/acc1").frontier
    assert len(front) == 25
    at = front[front["compute"] == 1.504e7]
    assert sorted(at["error"].round(5)) == [0.98, 0.98696]
    assert set(at["arch"]) == {"ViT-S-16"}


def test_frontier_does_not_depend_on_row_order(clip_runs):
    compute, error = clip_runs
    perm = np.random.default_rng(0).permutation(len(compute))
    first = frontier_index(compute, error)
    second = perm[frontier_index(compute[perm], error[perm])]
    assert np.array_equal(compute[first], compute[second])
    assert np.array_equal(error[first], error[second])


def test_study_rule_needs_enough_compute():
    with pytest.raises(CompareError, match="--bins N or --frontier pareto"):
        frontier_index(np.array([10.0, 100.0, 5000.0]), np.array([0.9, 0.8, 0.7]))


def test_the_study_frontier_of_openclip_on_datacomp(cosine_report):
    # With the study's filters the ViT-H-14 run at 3B samples (1.14e12 GFLOPs) is above max_x = 1e12,
    # so the largest run is ViT-L-14 at 3B samples (5.18e11 GFLOPs, 76.6%); 28 edges give 27 bins and
    # 24 frontier points (this tool's output on best_per_cell.csv, pinned to catch regressions).
    curve = cosine_report.curve(CLIP_DC)
    assert curve.dropped == {"above_max_compute": 1}
    assert len(bin_edges(curve.runs["compute"].to_numpy(), FrontierConfig())) == 28
    front = curve.frontier
    assert len(front) == 24
    assert front["compute"].iloc[-1] == curve.runs["compute"].max() == pytest.approx(5.1797e11, rel=1e-4)
    assert front["arch"].iloc[-1] == "ViT-L-14"
    assert front["error"].iloc[-1] == pytest.approx(1 - 0.766)
